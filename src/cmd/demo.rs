//! `timeaudit demo`: the whole tool offline in one command. Starts the lab (loopback NTP/HTTP/DNS
//! servers whose clocks misbehave in each class), surveys it through its own DNS name for about
//! a minute with `timeaudit survey` into a store in the output directory, classifies every series, analyses a shipped sample capture, and writes the report
//! with a check of each lab server's class.

use anyhow::Context;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use timeaudit_analysis::classify::ClassifierParams;
use timeaudit_analysis::observation::{Method, Observation};
use timeaudit_analysis::report::{LabCheck, ReportData, ReportParams, classify_series, survey_report};
use timeaudit_probes::lab::{LAB_ALL_NAME, Lab, LabConfig};

use super::lab::{DEFAULT_BEHAVIOURS, parse_behaviours, print_listing};
use super::survey::{self, SurveyArgs};
use crate::report;

/// Arguments of `timeaudit demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where to write the report (index.html, report.md, report.json), the survey store
    /// (survey.sqlite) and its observations (observations.csv).
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
/// Queries per second of each survey round (16 probes: a round takes about half a second).
pub const DEMO_SURVEY_RATE: f64 = 200.0;

/// Runs the demo subcommand.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if !(args.duration.is_finite() && args.duration > 0.0 && args.interval.is_finite() && args.interval > 0.0) {
        anyhow::bail!("--duration and --interval must be positive numbers of seconds");
    }
    let behaviours = parse_behaviours(&args.behaviours)?;
    let config = LabConfig { behaviours, base: args.base_addr, ntp_port: 0, http_port: 0, dns_port: 0, seed: 1 };
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    // The lab's servers run on this runtime's worker threads while the survey rounds run here.
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let lab = rt.block_on(Lab::start(&config))?;
    print_listing(&lab, false)?;
    let db = args.out.join("survey.sqlite");
    let _ = std::fs::remove_file(&db);
    survey_lab(&lab, &args.out, &db, Duration::from_secs_f64(args.duration), Duration::from_secs_f64(args.interval))?;
    let lab_servers = lab.servers.clone();
    drop(lab);
    drop(rt);
    let observations = report::read_store(&db.display().to_string())?;

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
        audit: Vec::new(),
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

/// Surveys every address of the lab's all-servers name over NTP and HTTP, once per `interval`
/// for `duration`, with `timeaudit survey --all` into the store `db` (the name is resolved
/// through the lab's own DNS server each round).
fn survey_lab(lab: &Lab, out: &Path, db: &Path, duration: Duration, interval: Duration) -> anyhow::Result<()> {
    let port_ntp = lab.servers.first().map_or(123, |s| s.ntp_port);
    let port_http = lab.servers.first().map_or(80, |s| s.http_port);
    let targets = out.join("targets.txt");
    std::fs::write(&targets, format!("ntp://{LAB_ALL_NAME}:{port_ntp}\nhttp://{LAB_ALL_NAME}:{port_http}/\n"))
        .with_context(|| format!("cannot write {}", targets.display()))?;
    let started = Instant::now();
    let mut round = 0u32;
    while started.elapsed() < duration {
        let due = started + interval * round;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        round += 1;
        let args = SurveyArgs {
            targets: targets.clone(),
            db: Some(db.display().to_string()),
            all: true,
            shard: None,
            rate: DEMO_SURVEY_RATE,
            concurrency: 32,
            gap: 0.0,
            timeout: DEMO_PROBE_TIMEOUT.as_secs_f64(),
            deadline: None,
            resolver: Some(lab.dns),
            samples: 1,
            prober: Some("demo".into()),
            lock: None,
        };
        survey::run(args).with_context(|| format!("survey round {round}"))?;
    }
    Ok(())
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
