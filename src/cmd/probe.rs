//! `timeaudit probe`: one-shot measurement of every address of every target, run concurrently,
//! printed as a table or as JSON lines (one `Observation` per target, method and address).

use anyhow::{Context, bail};
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;
use timeaudit_analysis::observation::{Method, Observation};
use timeaudit_analysis::target::Target;
use timeaudit_probes::probe::ProbeOptions;
use timeaudit_probes::resolve::{ResolveError, Resolver};

/// Default number of probes in flight.
pub const DEFAULT_CONCURRENCY: u32 = 64;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON object per line per (target, method, address).
    Json,
}

/// Arguments of `timeaudit probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Targets: `ntp://HOST[:PORT]`, `http(s)://HOST[:PORT][/path]`, or a bare host or address
    /// (probed with every method of `--methods`). IPv6 literals as `[::1]:123` or `::1`.
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// Output format (default: table on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Probes in flight at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub concurrency: u32,
    /// DNS server to resolve names with, `IP[:PORT]` (default: the system's).
    #[arg(long, value_name = "IP[:PORT]")]
    pub resolver: Option<String>,
    /// Seconds to wait for each reply.
    #[arg(long, default_value_t = 2.0)]
    pub timeout: f64,
    /// NTP exchanges per address; the minimum-delay one is kept.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub samples: u32,
    /// Seconds between the NTP exchanges of one probe.
    #[arg(long, default_value_t = 2.0)]
    pub interval: f64,
    /// Methods for bare hosts, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = Method::ALL.to_vec())]
    pub methods: Vec<Method>,
    /// HTTP(S): refine the one-second `Date` reading with up to N extra requests on one
    /// keep-alive connection, timed around the server's second rollover (resolution about
    /// 2^-N s plus one round trip; takes up to N seconds).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "8",
          value_parser = clap::value_parser!(u32).range(1..=30))]
    pub precise: Option<u32>,
}

fn seconds(name: &str, value: f64) -> anyhow::Result<Duration> {
    if !value.is_finite() || !(0.0..=3600.0).contains(&value) {
        bail!("--{name} must be between 0 and 3600 seconds, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

fn parse_resolver(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let ip: IpAddr = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .with_context(|| format!("--resolver {text:?}: expected IP or IP:PORT (e.g. 127.0.0.1:5353)"))?;
    Ok(SocketAddr::new(ip, 53))
}

/// Usage problems are reported with exit status 2 before anything is sent.
struct Plan {
    targets: Vec<Target>,
    format: Format,
    opts: ProbeOptions,
    resolver: Option<SocketAddr>,
    concurrency: usize,
}

fn plan(args: ProbeArgs) -> anyhow::Result<Plan> {
    let targets = args.targets.iter().map(|t| Target::parse(t, &args.methods)).collect::<Result<Vec<_>, _>>()?;
    let opts = ProbeOptions {
        timeout: seconds("timeout", args.timeout)?,
        samples: args.samples,
        interval: seconds("interval", args.interval)?,
        precise: args.precise,
    };
    let resolver = args.resolver.as_deref().map(parse_resolver).transpose()?;
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() { Format::Table } else { Format::Json });
    Ok(Plan { targets, format, opts, resolver, concurrency: args.concurrency as usize })
}

/// Runs the probe subcommand.
pub fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let plan = plan(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let observations = runtime.block_on(probe_all(&plan))?;
    let mut out = std::io::stdout().lock();
    match plan.format {
        Format::Json => {
            for o in &observations {
                serde_json::to_writer(&mut out, o)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Table => write_table(&mut out, &observations)?,
    }
    out.flush()?;
    Ok(if observations.iter().all(Observation::answered) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

async fn probe_all(plan: &Plan) -> anyhow::Result<Vec<Observation>> {
    let resolver = Resolver::new(plan.resolver)?;
    let report = |_: &Target, e: &ResolveError| eprintln!("timeaudit: {e}");
    Ok(timeaudit_probes::probe::probe_all(&plan.targets, &resolver, &plan.opts, plan.concurrency, report).await)
}

fn fmt_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn write_table(out: &mut impl Write, rows: &[Observation]) -> std::io::Result<()> {
    let header = ["TARGET", "ADDRESS", "METHOD", "OFFSET s", "± s", "DELAY s", "STRATUM", "REFID", "LEAP", "ERROR"];
    let mut cells: Vec<[String; 10]> = vec![header.map(String::from)];
    for o in rows {
        cells.push([
            o.target.clone(),
            if o.address.is_empty() { "-".into() } else { o.address.clone() },
            fmt_opt(o.method),
            fmt_opt(o.offset.map(|v| format!("{v:+.6}"))),
            fmt_opt(o.offset_lo.zip(o.offset_hi).map(|(lo, hi)| format!("{:.6}", (hi - lo) / 2.0))),
            fmt_opt(o.delay.map(|v| format!("{v:.6}"))),
            fmt_opt(o.stratum),
            fmt_opt(o.refid.clone()),
            fmt_opt(o.leap),
            fmt_opt(o.error.clone()),
        ]);
    }
    let mut widths = [0usize; 10];
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in &cells {
        let line: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}
