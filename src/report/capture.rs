//! The capture part of a report: reads NTP captures with the capture reader, runs the load
//! analyzer over them as one timeline, and converts its report into the report's tables.

use std::path::PathBuf;
use timeaudit_analysis::capture::load::{LoadAnalyzer, LoadConfig};
use timeaudit_analysis::capture::report::{DEFAULT_PRICE_PER_GB, ReportOptions, build_report};
use timeaudit_analysis::capture_report::{CaptureReport, from_load_report};
use timeaudit_probes::capture::{CaptureFile, order_files};

/// Analyses `files` (pcap, pcapng, gzip'd) as one capture. Damage is reported in the returned
/// notes; an error only when nothing could be read.
pub fn analyse(files: &[PathBuf]) -> anyhow::Result<(CaptureReport, Vec<String>)> {
    let mut analyzer = LoadAnalyzer::new(LoadConfig::default());
    let mut notes = Vec::new();
    let mut frames = 0u64;
    let mut names = Vec::new();
    for (path, first) in order_files(files) {
        let name = path.display().to_string();
        if let Err(e) = first {
            notes.push(format!("capture {name}: {e}"));
            continue;
        }
        let mut file = match CaptureFile::open(&path) {
            Ok(f) => f,
            Err(e) => {
                notes.push(format!("capture {name}: {e}"));
                continue;
            }
        };
        loop {
            match file.next_frame() {
                Ok(Some(f)) => analyzer.add_frame(f.linktype, f.ts_ns, f.orig_len, f.data),
                Ok(None) => break,
                Err(damage) => {
                    notes.push(format!("capture {name}: {damage} ({} frames read before it)", file.frames()));
                    break;
                }
            }
        }
        frames += file.frames();
        names.push(name);
    }
    if frames == 0 {
        anyhow::bail!(
            "nothing could be read from the capture(s) {}{}",
            files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            if notes.is_empty() { String::new() } else { format!(": {}", notes.join("; ")) }
        );
    }
    let opts = ReportOptions { price_per_gb: DEFAULT_PRICE_PER_GB, client_rows: None, ..ReportOptions::default() };
    let load = build_report(analyzer.finish(), &opts);
    Ok((from_load_report(&load, &names), notes))
}
