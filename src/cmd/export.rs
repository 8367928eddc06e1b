//! `timeaudit export`: writes the observations of a survey store as CSV, JSON Lines or Parquet.
//! Columns are the `Observation` fields with the names `timeaudit probe --format json` uses;
//! the CSV is the classifier's input format. CSV and JSONL stream row by row; Parquet goes
//! through polars (`crate::tables`).

use crate::store;
use crate::tables::{self, TableFormat};
use anyhow::Context;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use timeaudit_analysis::observation::Observation;

/// Output format of `timeaudit export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

/// Arguments of `timeaudit export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Store: a SQLite file or `postgres://…` (default: the survey's default store).
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Output file (`-` for standard output, CSV and JSONL only).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Only observations sent at or after T (Unix seconds or RFC 3339 UTC, e.g. 2026-11-22T03:00:00Z).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub since: Option<f64>,
    /// Only observations sent before T (same forms as --since).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub until: Option<f64>,
}

/// Parses Unix seconds or `YYYY-MM-DD[THH:MM[:SS[.frac]]][Z]` (UTC).
pub fn parse_time(s: &str) -> Result<f64, String> {
    if let Ok(v) = s.parse::<f64>()
        && v.is_finite()
    {
        return Ok(v);
    }
    let bad = || format!("bad time {s:?} (expected Unix seconds or YYYY-MM-DDTHH:MM:SSZ, UTC)");
    let t = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = t.split_once(['T', ' ']).unwrap_or((t, "00:00:00"));
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 {
        return Err(bad());
    }
    let y: i64 = d[0].parse().map_err(|_| bad())?;
    let m: i64 = d[1].parse().map_err(|_| bad())?;
    let day: i64 = d[2].parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let parts: Vec<&str> = time.split(':').collect();
    if parts.is_empty() || parts.len() > 3 {
        return Err(bad());
    }
    let hh: f64 = parts[0].parse().map_err(|_| bad())?;
    let mm: f64 = parts.get(1).map_or(Ok(0.0), |p| p.parse()).map_err(|_| bad())?;
    let ss: f64 = parts.get(2).map_or(Ok(0.0), |p| p.parse()).map_err(|_| bad())?;
    if !(0.0..24.0).contains(&hh) || !(0.0..60.0).contains(&mm) || !(0.0..61.0).contains(&ss) {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days as f64 * 86_400.0 + hh * 3600.0 + mm * 60.0 + ss)
}

/// Runs the export subcommand.
pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let mut store = store::open(args.db.as_deref())?;
    let to_stdout = args.out.as_os_str() == "-";
    let out_name = args.out.display().to_string();
    match args.format {
        ExportFormat::Parquet => {
            if to_stdout {
                anyhow::bail!("Parquet cannot be written to standard output: give --out FILE");
            }
            let mut rows: Vec<Observation> = Vec::new();
            store.for_each_observation(args.since, args.until, &mut |o| {
                rows.push(o.obs);
                Ok(())
            })?;
            if rows.is_empty() {
                // Keep the columns even with no rows.
                rows.push(Observation::default());
                let mut frame = tables::frame_from_rows(&rows)?;
                frame = frame.head(Some(0));
                tables::write_frame(&mut frame, &args.out, TableFormat::Parquet)?;
            } else {
                tables::write_rows(&rows, &args.out, TableFormat::Parquet)?;
            }
        }
        ExportFormat::Csv | ExportFormat::Jsonl => {
            let sink: Box<dyn Write> = if to_stdout {
                Box::new(std::io::stdout().lock())
            } else {
                Box::new(std::fs::File::create(&args.out).with_context(|| format!("creating {out_name}"))?)
            };
            let mut out = BufWriter::new(sink);
            if args.format == ExportFormat::Csv {
                let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(&mut out);
                let header: Vec<&str> = store::columns::OBSERVATION_COLUMNS.iter().map(|(n, _)| *n).collect();
                w.write_record(&header).with_context(|| format!("writing {out_name}"))?;
                store.for_each_observation(args.since, args.until, &mut |o| {
                    // Floats in Rust's shortest round-trip form, so the CSV reads back exactly.
                    let cells = store::columns::to_cells(&o.obs).into_iter().map(|c| match c {
                        store::columns::Cell::Null => String::new(),
                        store::columns::Cell::Int(i) => i.to_string(),
                        store::columns::Cell::Real(f) => f.to_string(),
                        store::columns::Cell::Text(t) => t,
                    });
                    w.write_record(cells).with_context(|| format!("writing {out_name}"))
                })?;
                w.flush().with_context(|| format!("writing {out_name}"))?;
            } else {
                store.for_each_observation(args.since, args.until, &mut |o| {
                    serde_json::to_writer(&mut out, &o.obs)?;
                    out.write_all(b"\n").with_context(|| format!("writing {out_name}"))
                })?;
            }
            out.flush().with_context(|| format!("writing {out_name}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn parses_times() {
        assert_eq!(parse_time("1700000000.5").unwrap(), 1_700_000_000.5);
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0.0);
        assert_eq!(parse_time("2000-03-01").unwrap(), 951_868_800.0);
        assert_eq!(parse_time("2026-11-22T03:00:00Z").unwrap(), 1_795_316_400.0);
        assert_eq!(parse_time("2026-11-22 03:00").unwrap(), 1_795_316_400.0);
        assert!(parse_time("yesterday").unwrap_err().contains("bad time \"yesterday\""));
        assert!(parse_time("2026-13-01").is_err());
    }
}
