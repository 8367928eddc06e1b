//! `timeaudit report`: writes the HTML, Markdown and JSON report of a survey (CSV export or
//! store) and of NTP captures.

use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use timeaudit_analysis::classify::ClassifierParams;
use timeaudit_analysis::report::{ReportData, ReportParams, classify_series, survey_report};

use crate::report;

/// Arguments of `timeaudit report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Survey store (SQLite).
    #[arg(long, conflicts_with = "input")]
    pub db: Option<PathBuf>,
    /// Observations as CSV (the export format; columns as `timeaudit probe --format json`).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Classifier results (JSON array or JSON lines as `timeaudit classify --format json`);
    /// without it every series is classified with the default classifier parameters.
    #[arg(long)]
    pub classes: Option<PathBuf>,
    /// NTP captures to analyse for the capture part.
    #[arg(long, num_args = 1..)]
    pub pcap: Vec<PathBuf>,
    /// Fleet audit results (`timeaudit audit --format json`) to include.
    #[arg(long)]
    pub audit: Option<PathBuf>,
    /// Output directory (index.html, report.md, report.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Report title.
    #[arg(long, default_value = "timeaudit report")]
    pub title: String,
}

/// Runs the report subcommand.
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let mut data = ReportData { title: args.title.clone(), ..ReportData::default() };
    let observations = match (&args.input, &args.db) {
        (Some(path), _) => {
            data.sources.push(path.display().to_string());
            Some(report::read_observations_csv(path)?)
        }
        (None, Some(db)) => {
            data.sources.push(db.display().to_string());
            Some(report::read_store(&db.display().to_string())?)
        }
        (None, None) if args.pcap.is_empty() && args.audit.is_none() => {
            anyhow::bail!("nothing to report: give --input FILE.csv, --db PATH, --pcap FILE or --audit FILE.json")
        }
        (None, None) => None,
    };
    let classes = match &args.classes {
        Some(p) => {
            data.sources.push(p.display().to_string());
            report::read_classifications(p)?
        }
        None => Vec::new(),
    };
    if let Some(obs) = observations {
        let classes =
            if args.classes.is_none() { classify_series(&obs, &ClassifierParams::default()) } else { classes };
        data.survey = Some(survey_report(&obs, &classes, &ReportParams::default()));
    }
    if !args.pcap.is_empty() {
        let (capture, notes) = report::capture::analyse(&args.pcap)?;
        data.sources.extend(args.pcap.iter().map(|p| p.display().to_string()));
        data.notes.extend(notes);
        data.capture = Some(capture);
    }
    if let Some(path) = &args.audit {
        data.sources.push(path.display().to_string());
        data.audit = report::read_audit(path)?;
    }
    report::write_report(&data, &args.out).with_context(|| format!("writing the report to {}", args.out.display()))?;
    eprintln!("timeaudit report: wrote {}/index.html, report.md, report.json", args.out.display());
    Ok(ExitCode::SUCCESS)
}
