//! `timeaudit audit`: queries a fleet of NTP servers (mode 3; mode 6/7 only with `--control`),
//! walks up their refids a bounded number of hops, reports the hierarchy's findings, lints
//! chrony.conf / ntp.conf files, and draws the hierarchy as Graphviz DOT and SVG.

use anyhow::{Context, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use timeaudit_analysis::config_lint::{self, ConfigFinding, LintParams};
use timeaudit_analysis::fleet::{self, ControlProbe, FleetParams, FleetReport, Upstream};
use timeaudit_analysis::observation::{Method, Observation};
use timeaudit_analysis::severity::Severity;
use timeaudit_analysis::target::{Host, Target};
use timeaudit_probes::control::{self, ControlOptions, Mode6Report};
use timeaudit_probes::probe::{ProbeOptions, probe_address};
use timeaudit_probes::resolve::Resolver;

/// Pause between the time queries and the control queries of `--control`.
const CONTROL_PAUSE: Duration = Duration::from_secs(2);

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text tables.
    Table,
    /// One JSON document.
    Json,
}

/// Arguments of `timeaudit audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// NTP servers: `HOST`, `HOST:PORT`, `ntp://HOST[:PORT]` (every address of a name is audited).
    pub servers: Vec<String>,
    /// Read more servers from FILE (one per line; `#` starts a comment).
    #[arg(long, value_name = "FILE")]
    pub targets: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also send mode 6 (READSTAT/READVAR) and one mode 7 (monlist) request to each listed server
    /// to test exposure. Off by default: without it only ordinary mode 3 queries are sent.
    #[arg(long, alias = "exposure")]
    pub control: bool,
    /// Walk up the refids this many hops beyond the listed servers.
    #[arg(long, default_value_t = 2)]
    pub hops: usize,
    /// Port for upstreams found by walking refids (default: the port of the server naming them).
    #[arg(long)]
    pub upstream_port: Option<u16>,
    /// Lint these chrony.conf / ntp.conf files (includes are followed).
    #[arg(long = "config", value_name = "FILE")]
    pub configs: Vec<PathBuf>,
    /// Write the hierarchy as Graphviz DOT to FILE.
    #[arg(long, value_name = "FILE")]
    pub dot: Option<PathBuf>,
    /// Write the hierarchy as SVG to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Exchanges per NTP query (the minimum-delay one is kept).
    #[arg(long, default_value_t = 2)]
    pub samples: u32,
    /// Seconds to wait for each reply.
    #[arg(long, default_value_t = 2.0)]
    pub timeout: f64,
    /// A reference time older than this many seconds is stale.
    #[arg(long, default_value_t = FleetParams::default().stale_reference_age)]
    pub stale_after: f64,
    /// Root distance (root delay / 2 + root dispersion) above this many seconds is flagged.
    #[arg(long, default_value_t = FleetParams::default().max_root_distance)]
    pub max_root_distance: f64,
    /// An offset further than this many seconds from the fleet's median is flagged.
    #[arg(long, default_value_t = FleetParams::default().max_offset_from_majority)]
    pub max_offset: f64,
    /// DNS server to resolve names with, `IP:PORT` (default: the system's).
    #[arg(long, value_name = "IP:PORT")]
    pub resolver: Option<SocketAddr>,
}

/// Everything `--format json` prints.
#[derive(Debug, Serialize)]
struct AuditOutput<'a> {
    servers: &'a [Observation],
    nodes: &'a [fleet::Node],
    edges: &'a [fleet::Edge],
    majority_offset: Option<f64>,
    findings: &'a [fleet::FleetFinding],
    control: &'a [ControlDetail],
    config_findings: &'a [ConfigFinding],
}

/// The mode 6 variables read from one server (JSON output).
#[derive(Debug, Serialize)]
struct ControlDetail {
    address: String,
    mode6_answered: bool,
    mode6_error: Option<String>,
    system: BTreeMap<String, String>,
    peers: Vec<BTreeMap<String, String>>,
    mode7_answered: bool,
    mode7_response_bytes: usize,
}

/// The servers to audit, each with where it came from (`FILE:LINE` for a targets file).
fn read_targets(args: &AuditArgs) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let mut out: Vec<(String, Option<String>)> = args.servers.iter().map(|s| (s.clone(), None)).collect();
    if let Some(path) = &args.targets {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read targets file {}", path.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if !line.is_empty() {
                out.push((line.to_string(), Some(format!("{}:{}", path.display(), i + 1))));
            }
        }
    }
    Ok(out)
}

/// Runs the audit subcommand. Exit code 1 when any finding is a warning or worse.
pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let raw_targets = read_targets(&args)?;
    if raw_targets.is_empty() && args.configs.is_empty() {
        bail!("nothing to audit: give servers, --targets FILE or --config FILE");
    }
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!("--timeout must be a positive number of seconds");
    }
    let mut targets = Vec::new();
    for (raw, origin) in &raw_targets {
        let at = origin.as_ref().map(|o| format!("{o}: ")).unwrap_or_default();
        let t = Target::parse(raw, &[Method::Ntp]).with_context(|| format!("{at}bad server {raw:?}"))?;
        if t.methods != [Method::Ntp] {
            bail!("{at}server {raw:?}: only NTP servers can be audited");
        }
        targets.push(t);
    }
    let params = FleetParams {
        stale_reference_age: args.stale_after,
        max_root_distance: args.max_root_distance,
        max_offset_from_majority: args.max_offset,
        ..FleetParams::default()
    };

    // Configuration lint first: it needs no network.
    let mut config_findings = Vec::new();
    let mut loaded = Vec::new();
    for path in &args.configs {
        let cfg = timeaudit_probes::config_files::load(path, None)?;
        config_findings.extend(cfg.notes.iter().cloned());
        config_findings.extend(config_lint::lint(cfg.dialect, &cfg.main, &cfg.directives, &LintParams::default()));
        loaded.push(cfg);
    }
    let together: Vec<(&str, config_lint::Dialect, &[config_lint::Directive])> =
        loaded.iter().map(|c| (c.main.as_str(), c.dialect, &c.directives[..])).collect();
    config_findings.extend(config_lint::lint_fleet(&together, &LintParams::default()));

    let (observations, control_probes, details) = if targets.is_empty() {
        (Vec::new(), Vec::new(), Vec::new())
    } else {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        rt.block_on(query_fleet(&targets, &args))?
    };
    let report = if observations.is_empty() {
        FleetReport { nodes: vec![], edges: vec![], findings: vec![], majority_offset: None }
    } else {
        fleet::audit(&observations, &control_probes, &[], &params)
    };

    if let Some(path) = &args.dot {
        std::fs::write(path, fleet::to_dot(&report)).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.svg {
        let svg = crate::hierarchy_svg::render(&report)?;
        std::fs::write(path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    }

    match args.format {
        Format::Json => {
            let out = AuditOutput {
                servers: &observations,
                nodes: &report.nodes,
                edges: &report.edges,
                majority_offset: report.majority_offset,
                findings: &report.findings,
                control: &details,
                config_findings: &config_findings,
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Table => print!("{}", table(&observations, &report, &config_findings)),
    }
    let bad = report.findings.iter().any(|f| f.severity >= Severity::Warning)
        || config_findings.iter().any(|f| f.severity >= Severity::Warning);
    Ok(if bad { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

async fn query_fleet(
    targets: &[Target],
    args: &AuditArgs,
) -> anyhow::Result<(Vec<Observation>, Vec<ControlProbe>, Vec<ControlDetail>)> {
    let opts = ProbeOptions {
        timeout: Duration::from_secs_f64(args.timeout),
        samples: args.samples.max(1),
        // ntpd's `discard minimum` is 2 s: faster samples from one host earn a RATE kiss.
        interval: Duration::from_secs(2),
        precise: None,
    };
    let needs_dns = targets.iter().any(|t| matches!(t.host, Host::Name(_)));
    let resolver = if needs_dns { Some(Resolver::new(args.resolver)?) } else { None };

    // The listed servers: every address of every name.
    let mut listed: Vec<(Target, IpAddr)> = Vec::new();
    let mut failed = Vec::new();
    for t in targets {
        let addrs = match (&t.host, &resolver) {
            (Host::Ip(ip), _) => vec![*ip],
            (_, Some(r)) => match r.resolve(&t.host).await {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("timeaudit: {t}: {e}");
                    failed.push(timeaudit_probes::probe::failed(
                        t,
                        None,
                        Method::Ntp,
                        timeaudit_analysis::observation::ErrorKind::Dns,
                        now_unix(),
                    ));
                    continue;
                }
            },
            (_, None) => unreachable!("a resolver exists whenever a name is given"),
        };
        for a in addrs {
            if !listed.iter().any(|(_, x)| *x == a) {
                listed.push((t.clone(), a));
            }
        }
    }
    let mut observations: Vec<Observation> =
        run_all(listed.iter().map(|(t, a)| (t.clone(), *a)).collect(), &opts).await;

    // Walk upstream.
    for _ in 0..args.hops {
        let next = fleet::unvisited_upstreams(&observations);
        if next.is_empty() {
            break;
        }
        let mut jobs = Vec::new();
        for addr in next {
            let port = args.upstream_port.unwrap_or_else(|| port_of_referrer(&observations, addr));
            let raw = match addr {
                IpAddr::V4(v4) => format!("ntp://{v4}:{port}"),
                IpAddr::V6(v6) => format!("ntp://[{v6}]:{port}"),
            };
            jobs.push((Target::parse(&raw, &[Method::Ntp])?, addr));
        }
        observations.extend(run_all(jobs, &opts).await);
    }

    // Exposure, only when asked, only for the listed servers.
    let mut probes = Vec::new();
    let mut details = Vec::new();
    if args.control {
        // Servers with `restrict ... limited` drop a control query that follows a time query from
        // the same host within their minimum interval (2 s).
        tokio::time::sleep(CONTROL_PAUSE).await;
        let copts = ControlOptions { timeout: Duration::from_secs_f64(args.timeout), ..ControlOptions::default() };
        // Servers are asked concurrently; each server's two requests one after the other.
        let mut set = tokio::task::JoinSet::new();
        for (i, (t, a)) in listed.iter().enumerate() {
            let sa = SocketAddr::new(*a, t.port_for(Method::Ntp));
            set.spawn(async move {
                let m6: Mode6Report = control::query_mode6(sa, &copts).await;
                let m7 = control::query_mode7(sa, &copts).await;
                (i, m6, m7)
            });
        }
        let mut results = Vec::new();
        while let Some(r) = set.join_next().await {
            results.push(r.context("a control probe task failed")?);
        }
        results.sort_by_key(|(i, _, _)| *i);
        for (i, m6, m7) in results {
            let a = listed[i].1;
            probes.push(m6.to_probe(&a.to_string()));
            details.push(ControlDetail {
                address: a.to_string(),
                mode6_answered: m6.answered,
                mode6_error: m6.error.clone(),
                system: m6.system.iter().cloned().collect(),
                peers: m6.peers.iter().map(|(_, v)| v.iter().cloned().collect()).collect(),
                mode7_answered: m7.answered,
                mode7_response_bytes: m7.response_bytes,
            });
            probes.push(m7);
        }
    }
    observations.extend(failed);
    Ok((observations, probes, details))
}

fn now_unix() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The port of the first server whose refid names `addr` (upstreams are assumed to listen where
/// their downstream does, which holds for port 123 and for a test fleet on one port).
fn port_of_referrer(observations: &[Observation], addr: IpAddr) -> u16 {
    let known: Vec<IpAddr> = observations.iter().filter_map(|o| o.address.parse().ok()).collect();
    observations
        .iter()
        .find(|o| fleet::resolve_upstream(o, &known) == Upstream::Server(addr))
        .and_then(|o| o.port)
        .unwrap_or(123)
}

async fn run_all(jobs: Vec<(Target, IpAddr)>, opts: &ProbeOptions) -> Vec<Observation> {
    let mut set = tokio::task::JoinSet::new();
    for (i, (t, a)) in jobs.into_iter().enumerate() {
        let opts = opts.clone();
        set.spawn(async move { (i, probe_address(&t, a, Method::Ntp, &opts).await) });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(v) = r {
            out.push(v);
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, o)| o).collect()
}

fn fmt_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn table(observations: &[Observation], report: &FleetReport, config: &[ConfigFinding]) -> String {
    let mut rows: Vec<Vec<String>> = vec![
        ["SERVER", "STRATUM", "REFID", "LEAP", "OFFSET_S", "ROOT_DIST_S", "REF_AGE_S", "UPSTREAM", "ERROR"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    ];
    for o in observations {
        let node = report.nodes.iter().find(|n| n.address == o.address);
        let upstream = match node.map(|n| &n.upstream) {
            Some(Upstream::Server(a)) => a.to_string(),
            Some(Upstream::Reference(r)) => format!("refclock {r}"),
            Some(Upstream::LocalClock) => "local clock".into(),
            _ => "-".into(),
        };
        let age = match (o.reference_time, o.offset) {
            (Some(r), Some(off)) => format!("{:.1}", o.t_recv + off - r),
            _ => "-".into(),
        };
        let addr = match o.port {
            Some(p) if p != 123 => format!("{}:{p}", o.address),
            _ => o.address.clone(),
        };
        rows.push(vec![
            if o.address.is_empty() { o.target.clone() } else { addr },
            fmt_opt(o.stratum),
            o.refid.clone().unwrap_or("-".into()),
            fmt_opt(o.leap),
            o.offset.map_or("-".into(), |v| format!("{v:+.6}")),
            fleet::root_distance(o).map_or("-".into(), |v| format!("{v:.6}")),
            age,
            upstream,
            o.error.clone().unwrap_or("-".into()),
        ]);
    }
    let mut out = String::new();
    if !observations.is_empty() {
        out.push_str(&align(&rows));
        out.push('\n');
        if report.findings.is_empty() {
            out.push_str("No findings.\n");
        } else {
            let mut f =
                vec![vec!["SEVERITY".to_string(), "CODE".into(), "SERVER".into(), "MESSAGE".into(), "EVIDENCE".into()]];
            for x in &report.findings {
                let ev: Vec<String> = x.evidence.iter().map(|(k, v)| format!("{k}={v}")).collect();
                f.push(vec![x.severity.to_string(), x.code.into(), x.server.clone(), x.message.clone(), ev.join(" ")]);
            }
            out.push_str(&align(&f));
        }
    }
    if !config.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str("Configuration findings:\n");
        for c in config {
            out.push_str(&format!("{}: {} {}: {}\n    fix: {}\n", c.location(), c.severity, c.code, c.message, c.fix));
        }
    }
    out
}

fn align(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, s)| if i + 1 == r.len() { s.clone() } else { format!("{s:<w$}", w = widths[i]) })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_servers_findings_and_config() {
        let o = |addr: &str, stratum: u8, refid: &str, offset: f64| Observation {
            target: addr.into(),
            address: addr.into(),
            port: Some(123),
            t_recv: 1000.0,
            offset: Some(offset),
            delay: Some(0.001),
            stratum: Some(stratum),
            refid: Some(refid.into()),
            leap: Some(0),
            root_delay: Some(0.002),
            root_dispersion: Some(0.001),
            reference_time: Some(990.0 + offset),
            ..Default::default()
        };
        let obs =
            vec![o("10.0.0.1", 1, "GPS", 0.0), o("10.0.0.2", 2, "10.0.0.1", 0.0), o("10.0.0.3", 2, "10.0.0.1", -60.0)];
        let report = fleet::audit(&obs, &[], &[], &FleetParams::default());
        let config = config_lint::lint_text(
            config_lint::Dialect::Chrony,
            "c.conf",
            "server a\nmakestep 1 3\ndriftfile /d\nserver b\nserver c\nserver d\n",
            &LintParams::default(),
        );
        assert_eq!(config, vec![]);
        let config =
            config_lint::lint_text(config_lint::Dialect::Chrony, "c.conf", "makestep 1 3\n", &LintParams::default());
        assert_eq!(
            table(&obs, &report, &config[..1]),
            "\
SERVER    STRATUM  REFID     LEAP  OFFSET_S    ROOT_DIST_S  REF_AGE_S  UPSTREAM      ERROR
10.0.0.1  1        GPS       0     +0.000000   0.002000     10.0       refclock GPS  -
10.0.0.2  2        10.0.0.1  0     +0.000000   0.002000     10.0       10.0.0.1      -
10.0.0.3  2        10.0.0.1  0     -60.000000  0.002000     10.0       10.0.0.1      -

SEVERITY  CODE    SERVER    MESSAGE                                       EVIDENCE
critical  offset  10.0.0.3  clock is -60.000 s from the fleet's majority  delay=0.001000 majority_offset=0.000000 offset=-60.000000 threshold=0.128

Configuration findings:
c.conf: critical few_sources: no usable time source: the clock runs free
    fix: configure at least 4 independent sources (servers on different upstreams, or a pool)
"
        );
    }
}
