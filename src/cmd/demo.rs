//! `timeaudit demo`: the whole tool offline in one command. Starts the lab (loopback NTP/HTTP/DNS
//! servers whose clocks misbehave in each class), surveys it through its own DNS name for about
//! a minute, classifies every series, analyses a shipped sample capture, and writes the report
//! with a check of each lab server's class.

use anyhow::Context;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use timeaudit_analysis::classify::ClassifierParams;
use timeaudit_analysis::observation::{Method, Observation};
use timeaudit_analysis::report::{LabCheck, ReportData, ReportParams, classify_series, survey_report};
use timeaudit_analysis::target::Target;
use timeaudit_probes::lab::{LAB_ALL_NAME, Lab, LabConfig};
use timeaudit_probes::probe::{ProbeOptions, probe_address};
use timeaudit_probes::resolve::Resolver;

use super::lab::{DEFAULT_BEHAVIOURS, parse_behaviours, print_listing};
use crate::report;

/// Arguments of `timeaudit demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where to write the report (index.html, report.md, report.json, observations.csv).
    #[arg(long, default_value = "timeaudit-demo")]
    pub out: PathBuf,
    /// Seconds of surveying.
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,
    /// Seconds between survey rounds.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Address of the lab's DNS server; its clock servers take the next addresses (127.0.0.0/8).
    #[arg(long, default_value = "127.0.0.90")]
    pub base_addr: Ipv4Addr,
    /// The lab's behaviours (as `timeaudit lab --behaviours`).
    #[arg(long, default_value = DEFAULT_BEHAVIOURS)]
    pub behaviours: String,
}

/// The sample capture the demo analyses (see datasets/MANIFEST.md): a synthetic NTP server
/// capture with known totals, embedded so that the demo runs from anywhere.
pub static SAMPLE_CAPTURE: &[u8] = include_bytes!("../../datasets/pcaps/synthetic-server-400-clients.pcap.gz");
/// File name the sample capture is written under in the output directory.
pub const SAMPLE_CAPTURE_NAME: &str = "sample-capture.pcap.gz";

/// How long each probe waits for a reply (the silent server costs this per round).
pub const DEMO_PROBE_TIMEOUT: Duration = Duration::from_millis(400);

/// Runs the demo subcommand.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if !(args.duration.is_finite() && args.duration > 0.0 && args.interval.is_finite() && args.interval > 0.0) {
        anyhow::bail!("--duration and --interval must be positive numbers of seconds");
    }
    let behaviours = parse_behaviours(&args.behaviours)?;
    let config = LabConfig { behaviours, base: args.base_addr, ntp_port: 0, http_port: 0, dns_port: 0, seed: 1 };
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let (lab_servers, observations) = rt.block_on(async {
        let lab = Lab::start(&config).await?;
        print_listing(&lab, false)?;
        let obs =
            survey_lab(&lab, Duration::from_secs_f64(args.duration), Duration::from_secs_f64(args.interval)).await?;
        anyhow::Ok((lab.servers.clone(), obs))
    })?;
    drop(rt);

    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    write_observations_csv(&args.out.join("observations.csv"), &observations)?;
    let capture_path = args.out.join(SAMPLE_CAPTURE_NAME);
    std::fs::write(&capture_path, SAMPLE_CAPTURE)
        .with_context(|| format!("cannot write {}", capture_path.display()))?;
    let (capture, capture_notes) = report::capture::analyse(std::slice::from_ref(&capture_path))?;
    let classes = classify_series(&observations, &ClassifierParams::default());
    let survey = survey_report(&observations, &classes, &ReportParams::default());
    let lab: Vec<LabCheck> = lab_servers
        .iter()
        .map(|s| {
            let found = classes
                .iter()
                .find(|c| c.address == s.address.to_string() && c.method == Some(Method::Ntp))
                .map_or_else(|| "missing".to_string(), |c| c.class.clone());
            LabCheck {
                name: s.name.clone(),
                address: s.address.to_string(),
                behaviour: s.behaviour.clone(),
                expected_class: s.expected_class.clone(),
                agrees: found == s.expected_class,
                found_class: found,
            }
        })
        .collect();
    let data = ReportData {
        title: "timeaudit demo: a lab of misbehaving clocks".into(),
        sources: vec![
            format!("lab survey of {LAB_ALL_NAME} over NTP and HTTP, {} observations", observations.len()),
            format!("{SAMPLE_CAPTURE_NAME} (synthetic NTP server capture shipped with timeaudit)"),
        ],
        survey: Some(survey),
        capture: Some(capture),
        lab,
        notes: vec![
            "The lab check compares each server's NTP series with the class its clock was built to show; HTTP series \
             have one-second resolution, so slow drifts and small sawtooths are not visible through them in a minute."
                .into(),
        ]
        .into_iter()
        .chain(capture_notes)
        .collect(),
    };
    report::write_report(&data, &args.out)?;
    println!("\n{:<22} {:<12} {:<14} {:<14} agrees", "server", "address", "expected", "found");
    for l in &data.lab {
        println!(
            "{:<22} {:<12} {:<14} {:<14} {}",
            l.name,
            l.address,
            l.expected_class,
            l.found_class,
            if l.agrees { "yes" } else { "NO" }
        );
    }
    let agree = data.lab.iter().filter(|l| l.agrees).count();
    println!(
        "\n{agree} of {} lab servers classified as built; report in {}/index.html",
        data.lab.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Probes every address of the lab's all-servers name over NTP and HTTP, once per `interval`,
/// for `duration`; the name is resolved through the lab's own DNS server each round.
async fn survey_lab(lab: &Lab, duration: Duration, interval: Duration) -> anyhow::Result<Vec<Observation>> {
    let resolver = Resolver::new(Some(lab.dns)).context("building the resolver for the lab's DNS server")?;
    let port_ntp = lab.servers.first().map_or(123, |s| s.ntp_port);
    let port_http = lab.servers.first().map_or(80, |s| s.http_port);
    let ntp = Target::parse(&format!("ntp://{LAB_ALL_NAME}:{port_ntp}"), &[Method::Ntp])?;
    let http = Target::parse(&format!("http://{LAB_ALL_NAME}:{port_http}/"), &[Method::Http])?;
    let opts = ProbeOptions { timeout: DEMO_PROBE_TIMEOUT, samples: 1, interval: Duration::ZERO, precise: None };
    let started = Instant::now();
    let mut out = Vec::new();
    let mut round = 0u32;
    while started.elapsed() < duration {
        let due = started + interval * round;
        tokio::time::sleep_until(due.into()).await;
        round += 1;
        let addrs =
            resolver.resolve(&ntp.host).await.with_context(|| format!("resolving {LAB_ALL_NAME} at {}", lab.dns))?;
        let mut handles = Vec::new();
        for a in addrs {
            for (target, method) in [(&ntp, Method::Ntp), (&http, Method::Http)] {
                let (target, opts) = (target.clone(), opts.clone());
                handles.push(tokio::spawn(async move { probe_address(&target, a, method, &opts).await }));
            }
        }
        for h in handles {
            out.push(h.await.context("a probe task failed")?);
        }
        if round.is_multiple_of(10) {
            eprintln!("demo: {round} rounds, {} observations, {:.0} s", out.len(), started.elapsed().as_secs_f64());
        }
    }
    Ok(out)
}

/// Writes observations as CSV (the export's columns).
fn write_observations_csv(path: &Path, obs: &[Observation]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    for o in obs {
        w.serialize(o).with_context(|| format!("writing {}", path.display()))?;
    }
    w.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
