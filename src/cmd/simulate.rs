//! `timeaudit simulate`: writes synthetic probe histories with known behaviour (ground truth for
//! the classifier) as the same CSV `classify --input` reads, plus a `truth` column.

use anyhow::{Context, bail};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use timeaudit_analysis::classify::Class;
use timeaudit_analysis::observation::Method;
use timeaudit_analysis::simulate::{SimConfig, simulate};

/// Arguments of `timeaudit simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Classes to generate (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ok,offset,drifting,stuck,resetting,load_balanced,random,changed"
    )]
    pub classes: Vec<String>,
    /// Methods (comma-separated: http, https, ntp).
    #[arg(long, value_delimiter = ',', default_value = "http,ntp")]
    pub methods: Vec<String>,
    /// Series per class and method.
    #[arg(long, default_value_t = 3)]
    pub per_class: usize,
    /// Probes per series (5 to 10,000 are the intended range).
    #[arg(long, short = 'n', default_value_t = 100)]
    pub points: usize,
    /// RNG seed (same seed, same output).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Mean time between probes, seconds.
    #[arg(long, default_value_t = 600.0)]
    pub mean_interval: f64,
    /// Median round-trip time, seconds (log-normal).
    #[arg(long, default_value_t = 0.06)]
    pub rtt_median: f64,
    /// Path asymmetry (outbound share of the RTT in 0.5 ± asymmetry/2).
    #[arg(long, default_value_t = 0.6)]
    pub asymmetry: f64,
    /// Gaussian jitter of the remote clock (σ, seconds).
    #[arg(long, default_value_t = 0.001)]
    pub clock_jitter: f64,
    /// Probability of an outlier reply.
    #[arg(long, default_value_t = 0.01)]
    pub outlier_prob: f64,
    /// HTTP: probability of a stale cached Date.
    #[arg(long, default_value_t = 0.03)]
    pub stale_prob: f64,
    /// Probability of a failed probe.
    #[arg(long, default_value_t = 0.02)]
    pub fail_prob: f64,
    /// Output file (default: standard output).
    #[arg(long, short = 'o', value_name = "FILE.csv")]
    pub out: Option<PathBuf>,
}

fn num(x: Option<f64>) -> String {
    x.map_or(String::new(), |v| v.to_string())
}

/// Runs the simulate subcommand.
pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let classes: Vec<Class> =
        args.classes.iter().map(|c| c.parse::<Class>().map_err(anyhow::Error::msg)).collect::<Result<_, _>>()?;
    let methods: Vec<Method> =
        args.methods.iter().map(|m| m.parse::<Method>().map_err(anyhow::Error::msg)).collect::<Result<_, _>>()?;
    if args.points == 0 {
        bail!("-n/--points must be at least 1");
    }
    for (name, v) in [
        ("outlier-prob", args.outlier_prob),
        ("stale-prob", args.stale_prob),
        ("fail-prob", args.fail_prob),
        ("asymmetry", args.asymmetry),
    ] {
        if !(0.0..=1.0).contains(&v) {
            bail!("--{name} {v}: must be between 0 and 1");
        }
    }
    if !(args.clock_jitter >= 0.0 && args.clock_jitter.is_finite()) {
        bail!("--clock-jitter {}: must be a finite number >= 0", args.clock_jitter);
    }
    if !(args.mean_interval > 0.0 && args.rtt_median > 0.0) {
        bail!("--mean-interval and --rtt-median must be positive");
    }
    let cfg = SimConfig {
        mean_interval_s: args.mean_interval,
        rtt_median_s: args.rtt_median,
        asymmetry: args.asymmetry,
        clock_jitter_s: args.clock_jitter,
        outlier_prob: args.outlier_prob,
        stale_prob: args.stale_prob,
        fail_prob: args.fail_prob,
        ..SimConfig::default()
    };
    let sink: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(sink));
    w.write_record([
        "target",
        "address",
        "method",
        "port",
        "t_send",
        "t_recv",
        "offset",
        "offset_lo",
        "offset_hi",
        "delay",
        "age",
        "error",
        "truth",
    ])?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut host = 0u32;
    for &class in &classes {
        for k in 0..args.per_class {
            for &method in &methods {
                host += 1;
                let s = simulate(class, method, args.points, &cfg, &mut rng);
                let target = format!("{}-{k}.sim.test", class.as_str().replace('_', "-"));
                // Documentation address ranges (RFC 5737): never a real host.
                let address = format!("192.0.2.{}", host % 254 + 1);
                for o in &s.observations {
                    w.write_record([
                        target.clone(),
                        address.clone(),
                        method.as_str().to_string(),
                        o.port.map_or(String::new(), |p| p.to_string()),
                        o.t_send.to_string(),
                        o.t_recv.to_string(),
                        num(o.offset),
                        num(o.offset_lo),
                        num(o.offset_hi),
                        num(o.delay),
                        o.age.map_or(String::new(), |a| a.to_string()),
                        o.error.clone().unwrap_or_default(),
                        s.truth.as_str().to_string(),
                    ])?;
                }
            }
        }
    }
    w.flush().context("writing the CSV")?;
    Ok(ExitCode::SUCCESS)
}
