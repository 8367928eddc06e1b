//! The capture part of a report: reads NTP captures with the capture reader, runs the load
//! analyzer over them as one timeline, and converts its report into the report's tables.

use std::path::PathBuf;
use timeaudit_analysis::capture::load::LoadConfig;
use timeaudit_analysis::capture::report::{DEFAULT_PRICE_PER_GB, ReportOptions, build_report};
use timeaudit_analysis::capture_report::{CaptureReport, from_load_report};
use timeaudit_probes::capture::analyse_files;

/// Analyses `files` (pcap, pcapng, gzip'd) as one capture. Damage is reported in the returned
/// notes; an error only when nothing could be read.
pub fn analyse(files: &[PathBuf]) -> anyhow::Result<(CaptureReport, Vec<String>)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    let analysis = analyse_files(files, LoadConfig::default(), threads, &|_| {});
    let notes: Vec<String> =
        analysis.files.iter().filter_map(|r| r.error.as_ref()).map(|e| format!("capture {e}")).collect();
    if analysis.frames() == 0 {
        anyhow::bail!(
            "nothing could be read from the capture(s) {}{}",
            files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            if notes.is_empty() { String::new() } else { format!(": {}", notes.join("; ")) }
        );
    }
    let names: Vec<String> =
        analysis.files.iter().filter(|r| r.frames > 0 || r.error.is_none()).map(|r| r.file.clone()).collect();
    let opts = ReportOptions { price_per_gb: DEFAULT_PRICE_PER_GB, client_rows: None, ..ReportOptions::default() };
    let load = build_report(analysis.load, &opts);
    Ok((from_load_report(&load, &names), notes))
}
