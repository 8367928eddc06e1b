//! The load report of a capture: per-client rows, /24 and /48 aggregates, the egress cost model
//! extrapolated to a month and a year, the seed's what-if table ("block clients above N queries"),
//! the CDF "share of traffic from clients with ≤ N queries", rate-limit simulations, client types
//! by polling profile, and the per-minute request rate with Holt–Winters bands.

use super::load::{
    ChronyRateLimit, ClientState, ClientTypeParams, Load, NtpdDiscard, Totals, ns_to_s, prefix_addr, prefix_of,
};
use crate::forecast::{HoltWintersParams, forecast_series};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Default egress price, US dollars per GB (10^9 bytes): AWS EC2 data transfer out to the
/// internet, first 10 TB per month, us-east-1 list price (2024). Set another with `--price-per-gb`.
pub const DEFAULT_PRICE_PER_GB: f64 = 0.09;
/// Seconds in an average month (365.25 / 12 days).
pub const SECONDS_PER_MONTH: f64 = 365.25 / 12.0 * 86_400.0;
/// Seconds in an average year (365.25 days).
pub const SECONDS_PER_YEAR: f64 = 365.25 * 86_400.0;
/// Frame size assumed for a reply never seen (an IPv4 NTP reply on Ethernet: 14+20+8+48).
pub const DEFAULT_REPLY_WIRE_BYTES: f64 = 90.0;
/// Traffic shares (percent kept, of egress) at which the what-if table places its thresholds.
pub const WHAT_IF_SHARES: [f64; 7] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0];

/// Options of the report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReportOptions {
    /// Egress price, $/GB.
    pub price_per_gb: f64,
    /// Holt–Winters parameters of the per-minute rate.
    pub forecast: HoltWintersParams,
    /// Client and prefix rows to build, busiest first (`None`: all).
    pub client_rows: Option<usize>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            price_per_gb: DEFAULT_PRICE_PER_GB,
            forecast: HoltWintersParams { min_band: 1.0, ..HoltWintersParams::default() },
            client_rows: None,
        }
    }
}

/// One client's row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClientRow {
    /// Address.
    pub address: IpAddr,
    /// /24 (IPv4) or /48 (IPv6) prefix.
    pub prefix: String,
    /// Requests it sent.
    pub requests: u32,
    /// Responses it received.
    pub responses: u32,
    /// Wire bytes it sent to the server.
    pub bytes_in: u64,
    /// Wire bytes the server sent to it.
    pub bytes_out: u64,
    /// First packet, Unix seconds.
    pub first_seen: f64,
    /// Last packet, Unix seconds.
    pub last_seen: f64,
    /// Requests per second over the capture's duration.
    pub rate_per_s: Option<f64>,
    /// Median interval between its requests, seconds (P² estimate beyond 5 intervals).
    pub median_interval_s: Option<f64>,
    /// Shortest interval between its requests, seconds.
    pub min_interval_s: Option<f64>,
    /// log2 histogram of its polling intervals, `log2:count` pairs.
    pub interval_log2_histogram: String,
    /// Versions it sent.
    pub versions: String,
    /// Modes it sent.
    pub modes: String,
    /// KoD replies it received.
    pub kod_received: u32,
    /// Mode 6/7 requests it sent.
    pub control_requests: u32,
    /// Mode 7 monlist requests it sent.
    pub monlist_requests: u32,
    /// Client type by polling profile.
    pub client_type: ClientType,
    /// Requests chrony's ratelimit would have dropped.
    pub chrony_dropped: u32,
    /// Requests ntpd's discard/limited would have dropped.
    pub ntpd_dropped: u32,
}

/// Client types by polling profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    /// A single request in the capture (SNTP one-shots, ntpdate, or a long poller seen once).
    OneShot,
    /// Median interval below a second.
    Abusive,
    /// Several intervals of a few seconds between otherwise longer ones (iburst, restarts).
    Bursty,
    /// Stuck at the 64 s minimum poll.
    MinpollStuck,
    /// Backing off towards 1024 s as a well-behaved client does.
    BackingOff,
    /// Polls faster than 64 s but not abusively.
    Fast,
    /// Anything else (e.g. only mode 6/7 queries, or a profile between the classes).
    Other,
}

impl ClientType {
    /// The snake_case name (as in JSON and CSV).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OneShot => "one_shot",
            Self::Abusive => "abusive",
            Self::Bursty => "bursty",
            Self::MinpollStuck => "minpoll_stuck",
            Self::BackingOff => "backing_off",
            Self::Fast => "fast",
            Self::Other => "other",
        }
    }
}

/// Classifies one client by its polling profile.
pub fn classify_client(c: &ClientState, p: &ClientTypeParams) -> ClientType {
    if c.requests == 0 {
        return ClientType::Other;
    }
    let Some(median) = c.median.median() else { return ClientType::OneShot };
    let h = &c.histogram;
    if median < p.abusive_max_median_s {
        return ClientType::Abusive;
    }
    let short = h.count_below(p.burst_log2);
    if short >= p.burst_min_intervals && median >= 2f64.powi(p.burst_log2) {
        return ClientType::Bursty;
    }
    let longest = h.bins().last().map_or(i32::MIN, |(k, _)| k);
    if (p.minpoll_median_s.0..p.minpoll_median_s.1).contains(&median) && longest < p.minpoll_max_log2 {
        return ClientType::MinpollStuck;
    }
    if median >= p.backoff_min_median_s || longest >= p.backoff_log2 {
        return ClientType::BackingOff;
    }
    if median < p.minpoll_median_s.0 {
        return ClientType::Fast;
    }
    ClientType::Other
}

fn bits(mask: u8) -> String {
    (0..8).filter(|b| mask & (1 << b) != 0).map(|b| b.to_string()).collect::<Vec<_>>().join(",")
}

/// Aggregate of the clients in one /24 or /48.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PrefixRow {
    /// The prefix.
    pub prefix: String,
    /// Client addresses in it.
    pub clients: u64,
    /// Requests.
    pub requests: u64,
    /// Responses.
    pub responses: u64,
    /// Wire bytes in.
    pub bytes_in: u64,
    /// Wire bytes out.
    pub bytes_out: u64,
    /// First packet, Unix seconds.
    pub first_seen: f64,
    /// Last packet, Unix seconds.
    pub last_seen: f64,
}

/// The egress cost model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cost {
    /// $/GB (10^9 bytes).
    pub price_per_gb: f64,
    /// Wire bytes the server sent (replies and its own upstream queries).
    pub egress_bytes: u64,
    /// Capture duration used for extrapolation, seconds.
    pub duration_s: f64,
    /// Cost of the capture's egress.
    pub capture_cost: f64,
    /// Egress extrapolated to a month, bytes.
    pub bytes_per_month: Option<f64>,
    /// Egress extrapolated to a year, bytes.
    pub bytes_per_year: Option<f64>,
    /// Cost per month.
    pub cost_per_month: Option<f64>,
    /// Cost per year.
    pub cost_per_year: Option<f64>,
}

/// One row of "block clients with more than N queries in the window".
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WhatIfRow {
    /// Clients with more than this many requests are blocked.
    pub more_than: u32,
    /// Clients blocked.
    pub clients_blocked: u64,
    /// Share of the reply traffic (bytes out to clients) cut, percent.
    pub traffic_cut_pct: f64,
    /// Saving per year.
    pub saving_per_year: Option<f64>,
    /// What is still spent per year.
    pub spend_per_year: Option<f64>,
}

/// One point of the CDF "share of traffic from clients with ≤ N queries".
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CdfPoint {
    /// Requests per client.
    pub queries: u32,
    /// Clients with at most this many requests.
    pub clients: u64,
    /// Share of reply traffic (bytes out) to those clients, percent.
    pub traffic_pct: f64,
}

/// What one rate-limit configuration would have done.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateLimitOutcome {
    /// Requests dropped.
    pub dropped_requests: u64,
    /// Share of requests dropped, percent.
    pub dropped_pct: f64,
    /// Clients with at least one drop.
    pub clients_limited: u64,
    /// Reply bytes not sent (each client's mean reply size, or 90 bytes when it got none).
    pub saved_bytes: f64,
    /// Saving per year.
    pub saving_per_year: Option<f64>,
}

/// Both simulations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateLimitReport {
    /// chrony parameters.
    pub chrony: ChronyRateLimit,
    /// chrony outcome.
    pub chrony_outcome: RateLimitOutcome,
    /// ntpd parameters.
    pub ntpd: NtpdDiscard,
    /// ntpd outcome.
    pub ntpd_outcome: RateLimitOutcome,
}

/// Count of clients of one type.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClientTypeRow {
    /// Type.
    pub client_type: ClientType,
    /// Clients.
    pub clients: u64,
    /// Their requests.
    pub requests: u64,
    /// Share of all requests, percent.
    pub requests_pct: f64,
}

/// One minute of the request rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MinuteRow {
    /// Start of the minute, Unix seconds.
    pub minute: i64,
    /// Requests in it.
    pub requests: u32,
    /// Holt–Winters prediction.
    pub predicted: f64,
    /// Lower band.
    pub lower: f64,
    /// Upper band.
    pub upper: f64,
    /// Outside the band.
    pub violation: bool,
    /// Brutlag aberration (enough violations in the window).
    pub aberrant: bool,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadReport {
    /// Server analysed.
    pub server: Option<IpAddr>,
    /// All of the server's addresses (a dual-stack server has one per family).
    pub servers: Vec<IpAddr>,
    /// Totals.
    pub totals: Totals,
    /// Cost model.
    pub cost: Cost,
    /// The clients (all, or the busiest `client_rows`), most requests first (ties by address).
    pub clients: Vec<ClientRow>,
    /// /24 and /48 aggregates (all, or the busiest `client_rows`), most requests first.
    pub prefixes: Vec<PrefixRow>,
    /// What-if table.
    pub what_if: Vec<WhatIfRow>,
    /// CDF of traffic by queries per client.
    pub traffic_cdf: Vec<CdfPoint>,
    /// Rate-limit simulations.
    pub rate_limit: RateLimitReport,
    /// Client types.
    pub client_types: Vec<ClientTypeRow>,
    /// Requests per minute with Holt–Winters bands.
    pub rate_per_minute: Vec<MinuteRow>,
    /// Minutes flagged aberrant.
    pub aberrant_minutes: u64,
}

fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { 100.0 * part / whole } else { 0.0 }
}

/// Sorts `items` by `order` and keeps the first `limit` (all when `None`), without sorting the
/// rest.
fn keep_first<T>(items: &mut Vec<T>, limit: Option<usize>, order: impl Fn(&T, &T) -> std::cmp::Ordering) {
    let limit = limit.unwrap_or(usize::MAX).min(items.len());
    if limit < items.len() {
        if limit > 0 {
            items.select_nth_unstable_by(limit - 1, &order);
        }
        items.truncate(limit);
    }
    items.sort_by(order);
}

/// Builds the report.
pub fn build_report(load: Load, opts: &ReportOptions) -> LoadReport {
    let totals = load.totals;
    let duration = totals.duration_s;
    let per_year = |bytes: f64| (duration > 0.0).then(|| bytes / duration * SECONDS_PER_YEAR);
    let dollars = |bytes: f64| bytes / 1e9 * opts.price_per_gb;
    let egress = totals.server_egress_bytes as f64;
    let cost = Cost {
        price_per_gb: opts.price_per_gb,
        egress_bytes: totals.server_egress_bytes,
        duration_s: duration,
        capture_cost: dollars(egress),
        bytes_per_month: (duration > 0.0).then(|| egress / duration * SECONDS_PER_MONTH),
        bytes_per_year: per_year(egress),
        cost_per_month: (duration > 0.0).then(|| dollars(egress / duration * SECONDS_PER_MONTH)),
        cost_per_year: per_year(egress).map(dollars),
    };
    let year_cost_of = |bytes: f64| per_year(bytes).map(dollars);

    let types = load.config.types;
    let row = |c: &ClientState| ClientRow {
        address: c.addr,
        prefix: prefix_of(c.addr),
        requests: c.requests,
        responses: c.responses,
        bytes_in: c.bytes_in,
        bytes_out: c.bytes_out,
        first_seen: ns_to_s(c.first_ns),
        last_seen: ns_to_s(c.last_ns),
        rate_per_s: (duration > 0.0).then(|| f64::from(c.requests) / duration),
        median_interval_s: c.median.median(),
        min_interval_s: c.min_interval_ns().map(|n| n as f64 * 1e-9),
        interval_log2_histogram: c.histogram.to_compact_string(),
        versions: bits(c.versions),
        modes: bits(c.modes),
        kod_received: c.kod_received,
        control_requests: c.control_requests,
        monlist_requests: c.monlist_requests,
        client_type: classify_client(c, &types),
        chrony_dropped: c.chrony_dropped,
        ntpd_dropped: c.ntpd_dropped,
    };
    // Rows only for the clients shown: 300,000 full rows would cost more than the counters.
    let mut order: Vec<&ClientState> = load.clients.iter().collect();
    let by_load = |a: &&ClientState, b: &&ClientState| b.requests.cmp(&a.requests).then(a.addr.cmp(&b.addr));
    keep_first(&mut order, opts.client_rows, by_load);
    let clients: Vec<ClientRow> = order.into_iter().map(row).collect();

    // /24 and /48 aggregates: clients sorted by prefix (a 16-byte key and a reference each),
    // then one pass over the runs. A public server's clients are nearly one per /24: a hash map
    // of aggregates would hold 300,000 of them twice over.
    struct PrefixAgg {
        prefix: IpAddr,
        clients: u64,
        requests: u64,
        responses: u64,
        bytes_in: u64,
        bytes_out: u64,
        first_ns: i64,
        last_ns: i64,
    }
    let prefix_key = |a: IpAddr| match prefix_addr(a) {
        IpAddr::V4(p) => u128::from(u32::from(p)),
        IpAddr::V6(p) => u128::from(p) | 1,
    };
    let mut by_prefix: Vec<(u128, &ClientState)> = load.clients.iter().map(|c| (prefix_key(c.addr), c)).collect();
    by_prefix.sort_unstable_by_key(|(k, _)| *k);
    let mut aggs: Vec<PrefixAgg> = Vec::new();
    let mut last_key = None;
    for (key, c) in by_prefix {
        if last_key != Some(key) {
            last_key = Some(key);
            aggs.push(PrefixAgg {
                prefix: prefix_addr(c.addr),
                clients: 0,
                requests: 0,
                responses: 0,
                bytes_in: 0,
                bytes_out: 0,
                first_ns: c.first_ns,
                last_ns: c.last_ns,
            });
        }
        if let Some(p) = aggs.last_mut() {
            p.clients += 1;
            p.requests += u64::from(c.requests);
            p.responses += u64::from(c.responses);
            p.bytes_in += c.bytes_in;
            p.bytes_out += c.bytes_out;
            p.first_ns = p.first_ns.min(c.first_ns);
            p.last_ns = p.last_ns.max(c.last_ns);
        }
    }
    let by_requests = |a: &PrefixAgg, b: &PrefixAgg| b.requests.cmp(&a.requests).then(a.prefix.cmp(&b.prefix));
    keep_first(&mut aggs, opts.client_rows, by_requests);
    let prefixes: Vec<PrefixRow> = aggs
        .into_iter()
        .map(|p| PrefixRow {
            prefix: prefix_of(p.prefix),
            clients: p.clients,
            requests: p.requests,
            responses: p.responses,
            bytes_in: p.bytes_in,
            bytes_out: p.bytes_out,
            first_seen: ns_to_s(p.first_ns),
            last_seen: ns_to_s(p.last_ns),
        })
        .collect();

    // CDF over clients sorted by requests ascending.
    let out_total = totals.bytes_out as f64;
    let mut by_queries: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for c in &load.clients {
        let e = by_queries.entry(c.requests).or_default();
        e.0 += 1;
        e.1 += c.bytes_out;
    }
    let mut traffic_cdf = Vec::with_capacity(by_queries.len());
    let (mut n, mut bytes) = (0u64, 0u64);
    for (&q, &(k, b)) in &by_queries {
        n += k;
        bytes += b;
        traffic_cdf.push(CdfPoint { queries: q, clients: n, traffic_pct: pct(bytes as f64, out_total) });
    }

    // What-if thresholds: 0 (block everyone who asked), and the query counts at which the
    // clients with at most that many queries reach each share of the traffic.
    let mut thresholds = vec![0u32];
    for share in WHAT_IF_SHARES {
        if let Some(p) = traffic_cdf.iter().find(|p| p.traffic_pct >= share) {
            thresholds.push(p.queries);
        }
    }
    let busiest = by_queries.keys().next_back().copied().unwrap_or(0);
    thresholds.retain(|&n| n == 0 || n < busiest);
    thresholds.sort_unstable();
    thresholds.dedup();
    let what_if = thresholds
        .into_iter()
        .map(|n| {
            // Clients with more than n requests, from the per-count totals.
            let (blocked, cut) =
                by_queries.range(n.saturating_add(1)..).fold((0u64, 0u64), |(k, b), (_, &(kn, bn))| (k + kn, b + bn));
            WhatIfRow {
                more_than: n,
                clients_blocked: blocked,
                traffic_cut_pct: pct(cut as f64, out_total),
                saving_per_year: year_cost_of(cut as f64),
                spend_per_year: year_cost_of(egress - cut as f64),
            }
        })
        .collect();

    let mean_reply =
        if totals.responses > 0 { totals.bytes_out as f64 / totals.responses as f64 } else { DEFAULT_REPLY_WIRE_BYTES };
    let outcome = |dropped_of: fn(&ClientState) -> u32| {
        let mut dropped = 0u64;
        let mut limited = 0u64;
        let mut saved = 0.0;
        for c in &load.clients {
            let d = dropped_of(c);
            if d > 0 {
                limited += 1;
                dropped += u64::from(d);
                let reply = if c.responses > 0 { c.bytes_out as f64 / f64::from(c.responses) } else { mean_reply };
                saved += f64::from(d) * reply;
            }
        }
        RateLimitOutcome {
            dropped_requests: dropped,
            dropped_pct: pct(dropped as f64, totals.requests as f64),
            clients_limited: limited,
            saved_bytes: saved,
            saving_per_year: year_cost_of(saved),
        }
    };
    let rate_limit = RateLimitReport {
        chrony: load.config.chrony,
        chrony_outcome: outcome(|c| c.chrony_dropped),
        ntpd: load.config.ntpd,
        ntpd_outcome: outcome(|c| c.ntpd_dropped),
    };

    let mut type_counts: BTreeMap<ClientType, (u64, u64)> = BTreeMap::new();
    for c in &load.clients {
        let e = type_counts.entry(classify_client(c, &types)).or_default();
        e.0 += 1;
        e.1 += u64::from(c.requests);
    }
    let client_types = type_counts
        .into_iter()
        .map(|(t, (k, r))| ClientTypeRow {
            client_type: t,
            clients: k,
            requests: r,
            requests_pct: pct(r as f64, totals.requests as f64),
        })
        .collect();

    let base = load.minute_base.unwrap_or(0);
    let points: Vec<(f64, f64)> = load
        .requests_per_minute
        .iter()
        .enumerate()
        .map(|(i, &r)| ((base + 60 * i as i64) as f64, f64::from(r)))
        .collect();
    let steps = forecast_series(opts.forecast, &points);
    let rate_per_minute: Vec<MinuteRow> = steps
        .iter()
        .zip(&load.requests_per_minute)
        .map(|(s, &r)| MinuteRow {
            minute: s.t as i64,
            requests: r,
            predicted: s.predicted,
            lower: s.lower,
            upper: s.upper,
            violation: s.violation,
            aberrant: s.aberrant,
        })
        .collect();
    let aberrant_minutes = rate_per_minute.iter().filter(|m| m.aberrant).count() as u64;

    LoadReport {
        server: load.servers.primary(),
        servers: load.servers.as_slice().to_vec(),
        totals,
        cost,
        clients,
        prefixes,
        what_if,
        traffic_cdf,
        rate_limit,
        client_types,
        rate_per_minute,
        aberrant_minutes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::load::{LoadAnalyzer, LoadConfig, Servers};
    use crate::capture::record::{NtpKind, PacketSummary};

    const S: i64 = 1_000_000_000;

    fn request(client: [u8; 4], ts_ns: i64) -> PacketSummary {
        PacketSummary {
            ts_ns,
            src: IpAddr::from(client),
            dst: IpAddr::from([192, 0, 2, 1]),
            sport: 40000,
            dport: 123,
            wire_len: 90,
            udp_len: 48,
            kind: NtpKind::Time {
                version: 4,
                mode: 3,
                stratum: 0,
                kiss: None,
                extensions: 0,
                mac: crate::capture::record::MacKind::None,
            },
        }
    }

    fn reply(client: [u8; 4], ts_ns: i64) -> PacketSummary {
        let mut p = request(client, ts_ns);
        std::mem::swap(&mut p.src, &mut p.dst);
        std::mem::swap(&mut p.sport, &mut p.dport);
        p.kind = NtpKind::Time {
            version: 4,
            mode: 4,
            stratum: 2,
            kiss: None,
            extensions: 0,
            mac: crate::capture::record::MacKind::None,
        };
        p
    }

    fn analyze(packets: &[PacketSummary]) -> LoadReport {
        let mut a =
            LoadAnalyzer::new(LoadConfig { servers: Servers::one(IpAddr::from([192, 0, 2, 1])), ..Default::default() });
        for p in packets {
            a.count_frame(p.ts_ns, p.wire_len);
            a.add_ntp(*p);
        }
        build_report(a.finish(), &ReportOptions::default())
    }

    #[test]
    fn rate_limit_simulations_follow_chrony_and_ntpd() {
        // A 64 s poller is never limited; ten requests in the same instant are.
        let mut packets: Vec<PacketSummary> = (0..20).map(|i| request([10, 0, 0, 1], i * 64 * S)).collect();
        packets.extend((0..10).map(|_| request([10, 0, 0, 2], 5 * S)));
        packets.sort_by_key(|p| p.ts_ns);
        let r = analyze(&packets);
        let poller = r.clients.iter().find(|c| c.address == IpAddr::from([10, 0, 0, 1])).unwrap();
        assert_eq!((poller.chrony_dropped, poller.ntpd_dropped), (0, 0));
        let burst = r.clients.iter().find(|c| c.address == IpAddr::from([10, 0, 0, 2])).unwrap();
        // chrony: 8 tokens (burst 8), the 2 limited ones are not leaked (1 in 4 is).
        assert_eq!(burst.chrony_dropped, 2);
        // ntpd: every packet after the first comes less than `minimum` (2 s) after the last.
        assert_eq!(burst.ntpd_dropped, 9);
        assert_eq!(r.rate_limit.chrony_outcome.dropped_requests, 2);
        // No replies seen: each drop saves the default 90-byte reply.
        assert_eq!(r.rate_limit.ntpd_outcome.saved_bytes, 9.0 * 90.0);
    }

    #[test]
    fn what_if_cdf_cost_and_types() {
        let mut packets = Vec::new();
        // Client A: 64 s poller, 10 exchanges; client B: 2 exchanges 1024 s apart;
        // client C: 30 requests 0.5 s apart, all answered.
        for i in 0..10 {
            packets.push(request([10, 0, 0, 1], i * 64 * S));
            packets.push(reply([10, 0, 0, 1], i * 64 * S + 1000));
        }
        for i in 0..2 {
            packets.push(request([10, 0, 1, 2], i * 1024 * S));
            packets.push(reply([10, 0, 1, 2], i * 1024 * S + 1000));
        }
        for i in 0..30 {
            packets.push(request([10, 0, 0, 3], 100 * S + i * S / 2));
            packets.push(reply([10, 0, 0, 3], 100 * S + i * S / 2 + 1000));
        }
        packets.sort_by_key(|p| p.ts_ns);
        let r = analyze(&packets);
        assert_eq!(r.totals.requests, 42);
        assert_eq!(r.totals.bytes_out, 42 * 90);
        assert_eq!(r.totals.duration_s, 1024.0 + 1e-6);
        let types: Vec<(IpAddr, ClientType)> = r.clients.iter().map(|c| (c.address, c.client_type)).collect();
        assert_eq!(
            types,
            vec![
                (IpAddr::from([10, 0, 0, 3]), ClientType::Abusive),
                (IpAddr::from([10, 0, 0, 1]), ClientType::MinpollStuck),
                (IpAddr::from([10, 0, 1, 2]), ClientType::BackingOff),
            ]
        );
        let a = &r.clients[1];
        assert_eq!(a.median_interval_s, Some(64.0));
        assert_eq!(a.interval_log2_histogram, "6:9");
        // CDF: ≤2 queries: 2/42 of the traffic, ≤10: 12/42, ≤30: all.
        let cdf: Vec<(u32, u64)> = r.traffic_cdf.iter().map(|p| (p.queries, p.clients)).collect();
        assert_eq!(cdf, vec![(2, 1), (10, 2), (30, 3)]);
        assert!((r.traffic_cdf[1].traffic_pct - 100.0 * 12.0 / 42.0).abs() < 1e-9);
        // What-if: 0 blocks everyone; clients with ≤ 10 queries pass 10% (and 25%) of the
        // traffic, so N = 10 blocks C alone; 30 is the busiest client (blocks nobody).
        let rows: Vec<(u32, u64)> = r.what_if.iter().map(|w| (w.more_than, w.clients_blocked)).collect();
        assert_eq!(rows, vec![(0, 3), (10, 1)]);
        let year = r.cost.cost_per_year.unwrap();
        let want = 42.0 * 90.0 / (1024.0 + 1e-6) * SECONDS_PER_YEAR / 1e9 * DEFAULT_PRICE_PER_GB;
        assert!((year - want).abs() < 1e-12);
        assert!((r.what_if[1].saving_per_year.unwrap() - year * 30.0 / 42.0).abs() < 1e-12);
        // Prefixes: 10.0.0.0/24 holds A and C.
        assert_eq!(r.prefixes[0].prefix, "10.0.0.0/24");
        assert_eq!((r.prefixes[0].clients, r.prefixes[0].requests), (2, 40));
    }

    #[test]
    fn prefixes_of_both_families() {
        assert_eq!(prefix_of("198.51.100.77".parse().unwrap()), "198.51.100.0/24");
        assert_eq!(prefix_of("2001:db8:1:2::5".parse().unwrap()), "2001:db8:1::/48");
    }
}
