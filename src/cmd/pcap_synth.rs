//! `timeaudit pcap-synth`: writes a synthetic NTP server capture with known content (Zipf-like
//! query counts, 64 s pollers, clients backing off, abusive clients with KoD, mode 6/7, malformed
//! packets) and prints its exact totals as JSON, for testing and benchmarking `timeaudit pcap`.

use anyhow::Context;
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use timeaudit_analysis::capture::load::ns_to_s;
use timeaudit_analysis::capture::synth::{SynthCapture, SynthParams};
use timeaudit_probes::capture::{PcapWriter, WriterOptions};

/// Arguments of `timeaudit pcap-synth`.
#[derive(Debug, clap::Args)]
pub struct PcapSynthArgs {
    /// Output file (gzip-compressed when it ends in .gz).
    pub out: PathBuf,
    /// Number of clients.
    #[arg(long, default_value_t = 1000)]
    pub clients: u32,
    /// Stop after this many packets.
    #[arg(long, default_value_t = 100_000)]
    pub packets: u64,
    /// Stop when the capture spans this many seconds.
    #[arg(long, default_value_t = 2700.0)]
    pub duration: f64,
    /// PRNG seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Server address (IPv4 clients).
    #[arg(long, default_value = "192.0.2.123")]
    pub server: Ipv4Addr,
    /// Server address (IPv6 clients).
    #[arg(long, default_value = "2001:db8::123")]
    pub server6: Ipv6Addr,
    /// Spread IPv4 clients over the unicast space (first octets 11 to 211, as a public
    /// server's clients are) instead of numbering them from 10.0.0.1.
    #[arg(long)]
    pub spread_addresses: bool,
    /// Percent of clients on IPv6 (they talk to --server6).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub ipv6_percent: u32,
    /// Abusive (sub-second) clients per million.
    #[arg(long, default_value_t = 2000)]
    pub abusive_ppm: u32,
    /// Percent of clients stuck at 64 s.
    #[arg(long, default_value_t = 20)]
    pub minpoll_pct: u32,
    /// Percent of clients backing off to 1024 s.
    #[arg(long, default_value_t = 30)]
    pub backoff_pct: u32,
    /// Nanosecond timestamps.
    #[arg(long)]
    pub nanoseconds: bool,
    /// Big-endian file.
    #[arg(long)]
    pub big_endian: bool,
    /// Also list the requests of the N busiest clients in the totals.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

#[derive(Debug, Serialize)]
struct TopClient {
    address: IpAddr,
    requests: u32,
}

#[derive(Debug, Serialize)]
struct Truth {
    servers: Vec<IpAddr>,
    packets: u64,
    bytes: u64,
    requests: u64,
    responses: u64,
    kod: std::collections::BTreeMap<String, u64>,
    mode6_packets: u64,
    mode7_packets: u64,
    monlist_responses: u64,
    malformed: u64,
    bytes_in: u64,
    bytes_out: u64,
    unique_clients: u64,
    first_ts: Option<f64>,
    last_ts: Option<f64>,
    top_clients: Vec<TopClient>,
}

/// Runs the generator.
pub fn run(args: PcapSynthArgs) -> anyhow::Result<ExitCode> {
    let params = SynthParams {
        clients: args.clients,
        max_packets: args.packets,
        duration_s: args.duration,
        seed: args.seed,
        server: args.server,
        server_v6: args.server6,
        ipv6_pct: args.ipv6_percent,
        spread_v4: args.spread_addresses,
        abusive_ppm: args.abusive_ppm,
        minpoll_pct: args.minpoll_pct,
        backoff_pct: args.backoff_pct,
        ..SynthParams::default()
    };
    let file = File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let gzip = args.out.extension().is_some_and(|e| e == "gz");
    let opts =
        WriterOptions { nanoseconds: args.nanoseconds, big_endian: args.big_endian, gzip, ..WriterOptions::default() };
    let mut w = PcapWriter::new(file, opts).with_context(|| format!("writing {}", args.out.display()))?;
    let mut gen_ = SynthCapture::new(params);
    let mut buf = Vec::with_capacity(600);
    while let Some(ts) = gen_.next_frame(&mut buf) {
        w.write_frame(ts, &buf).with_context(|| format!("writing {}", args.out.display()))?;
    }
    w.finish().with_context(|| format!("writing {}", args.out.display()))?;
    let t = gen_.truth();
    let mut top: Vec<TopClient> = t
        .requests_per_client
        .iter()
        .enumerate()
        .filter(|(_, r)| **r > 0)
        .map(|(i, r)| TopClient { address: params.client_addr(i as u32), requests: *r })
        .collect();
    top.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.address.cmp(&b.address)));
    top.truncate(args.top);
    let mut kod = std::collections::BTreeMap::new();
    if t.kod_rate > 0 {
        kod.insert("RATE".to_string(), t.kod_rate);
    }
    let truth = Truth {
        servers: params.servers(),
        packets: t.packets,
        bytes: t.bytes,
        requests: t.requests,
        responses: t.responses,
        kod,
        mode6_packets: t.mode6,
        mode7_packets: t.mode7,
        monlist_responses: t.monlist_responses,
        malformed: t.malformed,
        bytes_in: t.bytes_in,
        bytes_out: t.bytes_out,
        unique_clients: t.unique_clients(),
        first_ts: (t.packets > 0).then(|| ns_to_s(t.first_ns)),
        last_ts: (t.packets > 0).then(|| ns_to_s(t.last_ns)),
        top_clients: top,
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &truth)?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}
