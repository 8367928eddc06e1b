//! `timeaudit pcap`: the NTP capture analyzer — per-client load, cost, what-if tables, rate-limit
//! simulations, client types and the per-minute rate from one or more captures; or, with
//! `--packets`, one JSON object per NTP packet.

use crate::tables::{TableFormat, write_rows};
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::{BufWriter, IsTerminal, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use timeaudit_analysis::capture::load::{ChronyRateLimit, LoadConfig, MAX_SERVER_ADDRS, NtpdDiscard, Servers};
use timeaudit_analysis::capture::record::{FrameClass, NtpFrame, classify_frame};
use timeaudit_analysis::capture::report::{DEFAULT_PRICE_PER_GB, LoadReport, ReportOptions, build_report};
use timeaudit_analysis::ntp::NtpMessage;
use timeaudit_probes::capture::{FileRead, analyse_files, order_files, read_frames};

/// Captures larger than this (bytes on disk, all files) get a progress bar on a terminal.
const PROGRESS_MIN_BYTES: u64 = 64 * 1024 * 1024;
/// Default number of threads: the CPUs, at most this many (each thread reads every file).
const DEFAULT_MAX_THREADS: usize = 8;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable tables.
    Table,
    /// One JSON document.
    Json,
    /// One JSON object per line (with `--packets`).
    Jsonl,
}

/// Arguments of `timeaudit pcap`.
#[derive(Debug, clap::Args)]
pub struct PcapArgs {
    /// Capture files (pcap or pcapng, optionally gzip-compressed); several files are read as one
    /// timeline, ordered by their first packet.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The server's address; repeat it (or separate with commas) for each address of a
    /// dual-stack or multi-homed server. Default: the address answering most mode 3 requests
    /// from port 123, plus its address in the other family when that answers several clients.
    #[arg(long, value_delimiter = ',')]
    pub server: Vec<IpAddr>,
    /// Output format (default: table; jsonl with --packets).
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
    /// Clients and prefixes shown in the table and JSON.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Write the full tables (clients, prefixes, what-if, CDF, client types, per-minute rate)
    /// into this directory.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Format of the tables in --out-dir.
    #[arg(long, default_value = "csv")]
    pub table_format: TableFormat,
    /// Egress price in $ per GB (10^9 bytes). Default: AWS EC2 internet egress, first 10 TB/month.
    #[arg(long, default_value_t = DEFAULT_PRICE_PER_GB)]
    pub price_per_gb: f64,
    /// Print one JSON object per NTP packet instead of the load report.
    #[arg(long)]
    pub packets: bool,
    /// chrony `ratelimit interval` to simulate (log2 seconds).
    #[arg(long, default_value_t = 3, allow_hyphen_values = true)]
    pub chrony_interval: i8,
    /// chrony `ratelimit burst` to simulate.
    #[arg(long, default_value_t = 8)]
    pub chrony_burst: u32,
    /// chrony `ratelimit leak` to simulate (log2).
    #[arg(long, default_value_t = 2)]
    pub chrony_leak: u8,
    /// ntpd `discard average` to simulate (log2 seconds).
    #[arg(long, default_value_t = 3)]
    pub ntpd_average: u8,
    /// ntpd `discard minimum` to simulate (seconds).
    #[arg(long, default_value_t = 2)]
    pub ntpd_minimum: u32,
    /// Threads: each reads every file and aggregates its share of the clients (results do not
    /// depend on the number). Default: the number of CPUs, at most 8.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub threads: Option<u8>,
}

/// One NTP packet of `--packets` output.
#[derive(Debug, Serialize)]
struct PacketLine {
    ts: f64,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    length: u32,
    version: Option<u8>,
    mode: Option<u8>,
    stratum: Option<u8>,
    poll: Option<i8>,
    precision: Option<i8>,
    root_delay: Option<f64>,
    root_dispersion: Option<f64>,
    refid: Option<String>,
    reference_ts: Option<f64>,
    origin_ts: Option<f64>,
    receive_ts: Option<f64>,
    transmit_ts: Option<f64>,
    kiss: Option<String>,
}

fn packet_line(f: &NtpFrame<'_>) -> PacketLine {
    let ts_opt = |t: timeaudit_analysis::ntp::NtpTimestamp| (!t.is_zero()).then(|| t.to_unix());
    let mut line = PacketLine {
        ts: timeaudit_analysis::capture::load::ns_to_s(f.ts_ns),
        src: f.src,
        dst: f.dst,
        sport: f.sport,
        dport: f.dport,
        length: f.udp_len,
        version: None,
        mode: None,
        stratum: None,
        poll: None,
        precision: None,
        root_delay: None,
        root_dispersion: None,
        refid: None,
        reference_ts: None,
        origin_ts: None,
        receive_ts: None,
        transmit_ts: None,
        kiss: f.kiss().map(|k| k.as_text()),
    };
    match &f.message {
        Ok(NtpMessage::Time(p)) => {
            let h = &p.header;
            line.version = Some(h.version);
            line.mode = Some(h.mode.0);
            line.stratum = Some(h.stratum);
            line.poll = Some(h.poll);
            line.precision = Some(h.precision);
            line.root_delay = Some(h.root_delay.to_seconds());
            line.root_dispersion = Some(h.root_dispersion.to_seconds());
            line.refid = Some(h.refid_text());
            line.reference_ts = ts_opt(h.reference_ts);
            line.origin_ts = ts_opt(h.origin_ts);
            line.receive_ts = ts_opt(h.receive_ts);
            line.transmit_ts = ts_opt(h.transmit_ts);
        }
        Ok(m) => {
            line.version = Some(m.version());
            line.mode = Some(m.mode().0);
        }
        Err(_) => {}
    }
    line
}

/// Runs the pcap subcommand.
pub fn run(args: PcapArgs) -> anyhow::Result<ExitCode> {
    let format = args.format.unwrap_or(if args.packets { OutputFormat::Jsonl } else { OutputFormat::Table });
    if args.packets && format != OutputFormat::Jsonl {
        bail!("--packets prints JSON lines: use --format jsonl (or leave --format out)");
    }
    if !args.packets && format == OutputFormat::Jsonl {
        bail!("--format jsonl needs --packets");
    }
    if !(args.price_per_gb.is_finite() && args.price_per_gb >= 0.0) {
        bail!("--price-per-gb must be a non-negative number, got {}", args.price_per_gb);
    }
    let total_bytes: u64 = args.files.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let progress = (std::io::stderr().is_terminal() && total_bytes >= PROGRESS_MIN_BYTES).then(|| {
        let pb = ProgressBar::new(total_bytes);
        pb.set_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    });

    let cfg = LoadConfig {
        servers: Servers::new(&args.server)
            .with_context(|| format!("--server: at most {MAX_SERVER_ADDRS} addresses"))?,
        chrony: ChronyRateLimit { interval: args.chrony_interval, burst: args.chrony_burst, leak: args.chrony_leak },
        ntpd: NtpdDiscard { average: args.ntpd_average, minimum: args.ntpd_minimum },
        ..LoadConfig::default()
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get().min(DEFAULT_MAX_THREADS)),
        usize::from,
    );
    let on_progress = |bytes: u64| {
        if let Some(pb) = &progress {
            pb.set_position(bytes);
        }
    };
    let (reads, analysis) = if args.packets {
        let mut write_err = None;
        let reads = read_frames(&order_files(&args.files), &on_progress, |frame| {
            if write_err.is_some() {
                return;
            }
            if let FrameClass::Ntp(f) = classify_frame(frame.linktype, frame.ts_ns, frame.orig_len, frame.data) {
                let written = serde_json::to_writer(&mut out, &packet_line(&f))
                    .map_err(anyhow::Error::from)
                    .and_then(|()| out.write_all(b"\n").map_err(anyhow::Error::from));
                if let Err(e) = written {
                    write_err = Some(e);
                }
            }
        });
        if let Some(e) = write_err {
            return Err(e.context("writing packets"));
        }
        (reads, None)
    } else {
        let analysis = analyse_files(&args.files, cfg, threads, &on_progress);
        (analysis.files.clone(), Some(analysis))
    };
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    for r in &reads {
        if let Some(e) = &r.error {
            eprintln!("timeaudit: warning: {e}");
        }
    }
    let total_frames: u64 = reads.iter().map(|r| r.frames).sum();
    if total_frames == 0 && reads.iter().any(|r| r.error.is_some()) {
        bail!("nothing could be read from {} file(s)", reads.len());
    }
    let Some(analysis) = analysis else {
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    };

    // Full client and prefix tables only when they are written out.
    let client_rows = if args.out_dir.is_some() { None } else { Some(args.top) };
    let opts = ReportOptions { price_per_gb: args.price_per_gb, client_rows, ..ReportOptions::default() };
    let report = build_report(analysis.load, &opts);
    if let Some(dir) = &args.out_dir {
        write_tables(&report, dir, args.table_format)?;
    }
    match format {
        OutputFormat::Json => {
            let mut shown = report;
            shown.clients.truncate(args.top);
            shown.prefixes.truncate(args.top);
            #[derive(Serialize)]
            struct Doc<'a> {
                files: &'a [FileRead],
                #[serde(flatten)]
                report: &'a LoadReport,
            }
            serde_json::to_writer_pretty(&mut out, &Doc { files: &reads, report: &shown })?;
            out.write_all(b"\n")?;
        }
        _ => render_tables(&mut out, &report, &reads, args.top)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn write_tables(report: &LoadReport, dir: &std::path::Path, format: TableFormat) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ext = match format {
        TableFormat::Csv => "csv",
        TableFormat::Parquet => "parquet",
    };
    let path = |name: &str| dir.join(format!("{name}.{ext}"));
    write_rows(&report.clients, &path("clients"), format)?;
    write_rows(&report.prefixes, &path("prefixes"), format)?;
    write_rows(&report.what_if, &path("what_if"), format)?;
    write_rows(&report.traffic_cdf, &path("traffic_cdf"), format)?;
    write_rows(&report.client_types, &path("client_types"), format)?;
    write_rows(&report.rate_per_minute, &path("rate_per_minute"), format)?;
    Ok(())
}

/// Dollars: cents, or four decimals below a dollar (small captures cost fractions of a cent).
fn money(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| if x.abs() >= 1.0 { format!("{x:.2}") } else { format!("{x:.4}") })
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.digits$}"))
}

fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line =
        |cells: Vec<&str>| cells.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect::<Vec<_>>().join("  ");
    writeln!(out, "{}", line(header.to_vec()))?;
    for r in rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    writeln!(out)
}

fn render_tables(out: &mut impl Write, r: &LoadReport, reads: &[FileRead], top: usize) -> std::io::Result<()> {
    let t = &r.totals;
    for f in reads {
        writeln!(
            out,
            "file {}: {} frames{}",
            f.file,
            f.frames,
            f.error.as_ref().map_or(String::new(), |e| format!(" — {e}"))
        )?;
    }
    let servers: Vec<String> = r.servers.iter().map(ToString::to_string).collect();
    writeln!(out, "server {}", if servers.is_empty() { "not found".to_string() } else { servers.join(", ") })?;
    writeln!(
        out,
        "packets {} ({} bytes on the wire), NTP packets {}, duration {:.1} s",
        t.packets, t.bytes, t.ntp_packets, t.duration_s
    )?;
    writeln!(out, "requests {}, responses {}, unique clients {}", t.requests, t.responses, t.unique_clients)?;
    writeln!(
        out,
        "bytes in {}, bytes out {} (frame lengths), out/in {}",
        t.bytes_in,
        t.bytes_out,
        fmt_opt(t.out_in_ratio, 3)
    )?;
    let map = |m: &std::collections::BTreeMap<u8, u64>| {
        m.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(" ")
    };
    writeln!(out, "modes {}; versions {}", map(&t.modes), map(&t.versions))?;
    writeln!(
        out,
        "KoD {}; malformed {}; mode 6 {}, mode 7 {} (monlist responses {}); IP fragments {}",
        if t.kod.is_empty() {
            "none".to_string()
        } else {
            t.kod.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(" ")
        },
        t.malformed,
        t.mode6_packets,
        t.mode7_packets,
        t.monlist_responses,
        t.ip_fragments
    )?;
    let c = &r.cost;
    writeln!(
        out,
        "egress {} bytes at ${}/GB: ${} in the capture, ${} per month, ${} per year\n",
        c.egress_bytes,
        c.price_per_gb,
        money(Some(c.capture_cost)),
        money(c.cost_per_month),
        money(c.cost_per_year)
    )?;
    writeln!(out, "top {} clients", top.min(r.clients.len()))?;
    let rows: Vec<Vec<String>> = r
        .clients
        .iter()
        .take(top)
        .map(|c| {
            vec![
                c.address.to_string(),
                c.requests.to_string(),
                c.responses.to_string(),
                c.bytes_in.to_string(),
                c.bytes_out.to_string(),
                fmt_opt(c.rate_per_s, 3),
                fmt_opt(c.median_interval_s, 1),
                fmt_opt(c.min_interval_s, 3),
                c.interval_log2_histogram.clone(),
                c.kod_received.to_string(),
                c.client_type.as_str().to_string(),
            ]
        })
        .collect();
    table(
        out,
        &[
            "address",
            "requests",
            "responses",
            "bytes_in",
            "bytes_out",
            "rate/s",
            "median_s",
            "min_s",
            "log2 intervals",
            "kod",
            "type",
        ],
        &rows,
    )?;
    writeln!(out, "top {} prefixes (/24, /48)", top.min(r.prefixes.len()))?;
    let rows: Vec<Vec<String>> = r
        .prefixes
        .iter()
        .take(top)
        .map(|p| vec![p.prefix.clone(), p.clients.to_string(), p.requests.to_string(), p.bytes_out.to_string()])
        .collect();
    table(out, &["prefix", "clients", "requests", "bytes_out"], &rows)?;
    writeln!(out, "block clients with more than N queries in the capture")?;
    let rows: Vec<Vec<String>> = r
        .what_if
        .iter()
        .map(|w| {
            vec![
                w.more_than.to_string(),
                w.clients_blocked.to_string(),
                format!("{:.1}%", w.traffic_cut_pct),
                money(w.saving_per_year),
                money(w.spend_per_year),
            ]
        })
        .collect();
    table(out, &["N", "clients", "traffic cut", "saving $/yr", "spend $/yr"], &rows)?;
    let rl = &r.rate_limit;
    writeln!(out, "rate-limit simulation")?;
    let rows = vec![
        vec![
            format!(
                "chrony ratelimit interval {} burst {} leak {}",
                rl.chrony.interval, rl.chrony.burst, rl.chrony.leak
            ),
            rl.chrony_outcome.dropped_requests.to_string(),
            format!("{:.1}%", rl.chrony_outcome.dropped_pct),
            rl.chrony_outcome.clients_limited.to_string(),
            format!("{:.0}", rl.chrony_outcome.saved_bytes),
            money(rl.chrony_outcome.saving_per_year),
        ],
        vec![
            format!("ntpd discard average {} minimum {}", rl.ntpd.average, rl.ntpd.minimum),
            rl.ntpd_outcome.dropped_requests.to_string(),
            format!("{:.1}%", rl.ntpd_outcome.dropped_pct),
            rl.ntpd_outcome.clients_limited.to_string(),
            format!("{:.0}", rl.ntpd_outcome.saved_bytes),
            money(rl.ntpd_outcome.saving_per_year),
        ],
    ];
    table(out, &["configuration", "dropped", "of requests", "clients", "bytes saved", "saving $/yr"], &rows)?;
    writeln!(out, "client types by polling profile")?;
    let rows: Vec<Vec<String>> = r
        .client_types
        .iter()
        .map(|c| {
            vec![
                c.client_type.as_str().to_string(),
                c.clients.to_string(),
                c.requests.to_string(),
                format!("{:.1}%", c.requests_pct),
            ]
        })
        .collect();
    table(out, &["type", "clients", "requests", "of requests"], &rows)?;
    writeln!(
        out,
        "requests per minute: {} minutes, {} aberrant (Holt-Winters, Brutlag bands)",
        r.rate_per_minute.len(),
        r.aberrant_minutes
    )?;
    let rows: Vec<Vec<String>> = r
        .rate_per_minute
        .iter()
        .filter(|m| m.aberrant)
        .take(top)
        .map(|m| {
            vec![m.minute.to_string(), m.requests.to_string(), format!("{:.1}", m.lower), format!("{:.1}", m.upper)]
        })
        .collect();
    if !rows.is_empty() {
        table(out, &["minute (unix)", "requests", "lower", "upper"], &rows)?;
    }
    Ok(())
}
