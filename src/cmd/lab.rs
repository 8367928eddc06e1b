//! `timeaudit lab`: runs NTP, HTTP and DNS servers on loopback whose clocks misbehave in chosen
//! ways, for testing one's own monitoring (and for `timeaudit demo`).

use anyhow::Context;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;
use timeaudit_analysis::lab::Behaviour;
use timeaudit_probes::lab::{LAB_ALL_NAME, Lab, LabConfig};

/// The behaviours started when none are given: one server per class.
pub const DEFAULT_BEHAVIOURS: &str =
    "ok,offset=+90s,drift=+2000ppm,stuck,resetting=+20000ppm/15s,random=30s,balanced=0/+30,silent";

/// Arguments of `timeaudit lab`.
#[derive(Debug, clap::Args)]
pub struct LabArgs {
    /// Comma-separated behaviours, one server each: ok, offset[=S], drift[=PPMppm], stuck[=S],
    /// resetting[=PPMppm/PERIODs], random[=S], balanced[=S/S...], silent.
    #[arg(long, default_value = DEFAULT_BEHAVIOURS)]
    pub behaviours: String,
    /// Address of the DNS server; the clock servers take the next addresses (must be in 127.0.0.0/8).
    #[arg(long, default_value = "127.0.0.50")]
    pub base_addr: Ipv4Addr,
    /// NTP port of every server (0: a free port, the same for all).
    #[arg(long, default_value_t = 12300)]
    pub ntp_port: u16,
    /// HTTP port of every server (0: a free port, the same for all).
    #[arg(long, default_value_t = 8080)]
    pub http_port: u16,
    /// DNS port.
    #[arg(long, default_value_t = 5353)]
    pub dns_port: u16,
    /// Seed of the random and load-balanced clocks.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Output of the listing: text or json.
    #[arg(long, default_value = "text")]
    pub format: String,
}

/// Parses a comma-separated list of behaviours.
pub fn parse_behaviours(list: &str) -> anyhow::Result<Vec<Behaviour>> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.parse::<Behaviour>().map_err(anyhow::Error::from))
        .collect()
}

/// Prints what runs where.
pub fn print_listing(lab: &Lab, json: bool) -> anyhow::Result<()> {
    if json {
        let v = serde_json::json!({
            "dns": lab.dns.to_string(),
            "all_name": LAB_ALL_NAME,
            "start": lab.start,
            "servers": lab.servers,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("timeaudit lab: DNS on {} (udp), names *.lab.test; {LAB_ALL_NAME} resolves to every server", lab.dns);
    println!("{:<22} {:<16} {:<8} {:<8} {:<30} expected class", "name", "address", "ntp", "http", "behaviour");
    for s in &lab.servers {
        println!(
            "{:<22} {:<16} {:<8} {:<8} {:<30} {}",
            s.name, s.address, s.ntp_port, s.http_port, s.behaviour, s.expected_class
        );
    }
    Ok(())
}

/// Runs the lab subcommand.
pub fn run(args: LabArgs) -> anyhow::Result<ExitCode> {
    let behaviours = parse_behaviours(&args.behaviours)?;
    let json = match args.format.as_str() {
        "text" => false,
        "json" => true,
        other => anyhow::bail!("unknown --format {other:?} (expected text or json)"),
    };
    let config = LabConfig {
        behaviours,
        base: args.base_addr,
        ntp_port: args.ntp_port,
        http_port: args.http_port,
        dns_port: args.dns_port,
        seed: args.seed,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    rt.block_on(async {
        let lab = Lab::start(&config).await?;
        print_listing(&lab, json)?;
        use std::io::Write;
        std::io::stdout().flush()?;
        match args.duration {
            Some(secs) if secs.is_finite() && secs >= 0.0 => tokio::time::sleep(Duration::from_secs_f64(secs)).await,
            Some(secs) => anyhow::bail!("--duration must be a non-negative number of seconds, not {secs}"),
            None => {
                tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
            }
        }
        drop(lab);
        Ok(ExitCode::SUCCESS)
    })
}
