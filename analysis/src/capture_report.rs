//! Report data of the capture part: totals, cost and what-if tables, the traffic CDF, the
//! polling-interval scatter, the per-minute rate with its Holt–Winters band, top talkers and
//! mode 6/7 / KoD findings, in the form the report renders; filled from the capture analyzer's
//! results ([`crate::capture::report::LoadReport`]) by [`from_load_report`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Capture totals.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureTotals {
    /// Files read.
    pub files: Vec<String>,
    /// Frames read.
    pub packets: u64,
    /// NTP packets.
    pub ntp_packets: u64,
    /// Bytes on the wire (frame lengths).
    pub bytes: u64,
    /// Seconds from first to last frame.
    pub duration_s: f64,
    /// Requests to the server.
    pub requests: u64,
    /// Responses from the server.
    pub responses: u64,
    /// Distinct client addresses.
    pub unique_clients: u64,
    /// Bytes into the server.
    pub bytes_in: u64,
    /// Bytes out of the server.
    pub bytes_out: u64,
    /// Packets per NTP mode.
    pub modes: BTreeMap<String, u64>,
    /// Packets per NTP version.
    pub versions: BTreeMap<String, u64>,
    /// KoD replies per kiss code.
    pub kod: BTreeMap<String, u64>,
    /// Malformed NTP packets.
    pub malformed: u64,
    /// The server the capture was taken on.
    pub server: Option<String>,
}

/// The egress bill extrapolated from the capture.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostRow {
    /// Price per GB of egress.
    pub price_per_gb: f64,
    /// GB out per month at the captured rate.
    pub gb_per_month: f64,
    /// Cost per month.
    pub cost_per_month: f64,
    /// Cost per year.
    pub cost_per_year: f64,
}

/// One row of the what-if table: clients above N queries in the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WhatIfRow {
    /// The threshold N (queries in the capture window).
    pub threshold: u64,
    /// Clients above it.
    pub clients_above: u64,
    /// Their share of the traffic.
    pub traffic_share: f64,
    /// Saving per year if they were blocked or limited to N.
    pub saving_per_year: f64,
}

/// One client in the per-client tables.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientRow {
    /// Address (or subnet).
    pub address: String,
    /// Requests sent.
    pub requests: u64,
    /// Responses received.
    #[serde(default)]
    pub responses: u64,
    /// Bytes in and out.
    #[serde(default)]
    pub bytes: u64,
    /// Median polling interval, seconds.
    #[serde(default)]
    pub median_interval_s: Option<f64>,
    /// KoD replies received.
    #[serde(default)]
    pub kod: u64,
}

/// One minute of the request rate with its Holt–Winters prediction band.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RatePoint {
    /// Start of the minute, Unix seconds.
    pub t: f64,
    /// Requests in that minute.
    pub count: f64,
    /// Lower edge of the band.
    pub lo: f64,
    /// Upper edge of the band.
    pub hi: f64,
    /// Whether the minute was flagged aberrant.
    pub aberrant: bool,
}

/// A finding about mode 6/7 or KoD traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Short kind (`mode6`, `mode7`, `monlist`, `kod:RATE`, ...).
    pub kind: String,
    /// What was seen.
    pub detail: String,
    /// Packets involved.
    pub packets: u64,
}

/// The capture part of a report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureReport {
    /// Totals.
    pub totals: CaptureTotals,
    /// Cost.
    pub cost: Option<CostRow>,
    /// What-if table.
    pub what_if: Vec<WhatIfRow>,
    /// Share of traffic from clients with ≤ N queries: (N, share).
    pub traffic_cdf: Vec<(f64, f64)>,
    /// Per-client (requests, median polling interval s) for the scatter.
    pub polling: Vec<(f64, f64)>,
    /// Rate per minute with the band.
    pub rate: Vec<RatePoint>,
    /// Top clients by requests.
    pub top_clients: Vec<ClientRow>,
    /// Top subnets (/24, /48) by requests.
    pub top_subnets: Vec<ClientRow>,
    /// Mode 6/7 and KoD findings.
    pub findings: Vec<Finding>,
    /// What chrony's and ntpd's rate limiting would have dropped.
    pub rate_limits: Vec<RateLimitRow>,
    /// Clients by polling behaviour.
    pub client_types: Vec<ClientTypeRow>,
}

/// One simulated rate-limit policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimitRow {
    /// The policy and its parameters.
    pub policy: String,
    /// Requests it would have dropped.
    pub dropped_requests: u64,
    /// Their share of all requests, percent.
    pub dropped_pct: f64,
    /// Clients it would have limited.
    pub clients_limited: u64,
    /// Egress saved per year.
    pub saving_per_year: Option<f64>,
}

/// Clients of one polling behaviour.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientTypeRow {
    /// The behaviour (`minpoll_stuck`, `backing_off`, `abusive`, ...).
    pub client_type: String,
    /// Clients.
    pub clients: u64,
    /// Their requests.
    pub requests: u64,
    /// Share of all requests, percent.
    pub requests_pct: f64,
}

/// Rows kept in the top-clients and top-subnets tables.
pub const TOP_ROWS: usize = 10;

/// The capture part of a report from the analyzer's load report of `files`.
pub fn from_load_report(r: &crate::capture::report::LoadReport, files: &[String]) -> CaptureReport {
    let t = &r.totals;
    let totals = CaptureTotals {
        files: files.to_vec(),
        packets: t.packets,
        ntp_packets: t.ntp_packets,
        bytes: t.bytes,
        duration_s: t.duration_s,
        requests: t.requests,
        responses: t.responses,
        unique_clients: t.unique_clients,
        bytes_in: t.bytes_in,
        bytes_out: t.bytes_out,
        modes: t.modes.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        versions: t.versions.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        kod: t.kod.clone(),
        malformed: t.malformed,
        server: (!r.servers.is_empty())
            .then(|| r.servers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    };
    let cost = r.cost.cost_per_year.map(|per_year| CostRow {
        price_per_gb: r.cost.price_per_gb,
        gb_per_month: r.cost.bytes_per_month.unwrap_or(0.0) / 1e9,
        cost_per_month: r.cost.cost_per_month.unwrap_or(0.0),
        cost_per_year: per_year,
    });
    let what_if = r
        .what_if
        .iter()
        .map(|w| WhatIfRow {
            threshold: u64::from(w.more_than),
            clients_above: w.clients_blocked,
            traffic_share: w.traffic_cut_pct / 100.0,
            saving_per_year: w.saving_per_year.unwrap_or(0.0),
        })
        .collect();
    let traffic_cdf = r.traffic_cdf.iter().map(|c| (f64::from(c.queries), c.traffic_pct / 100.0)).collect();
    let polling = r.clients.iter().filter_map(|c| c.median_interval_s.map(|m| (f64::from(c.requests), m))).collect();
    let rate = r
        .rate_per_minute
        .iter()
        .map(|m| RatePoint {
            t: m.minute as f64,
            count: f64::from(m.requests),
            lo: m.lower,
            hi: m.upper,
            aberrant: m.aberrant,
        })
        .collect();
    let mut clients: Vec<&crate::capture::report::ClientRow> = r.clients.iter().collect();
    clients.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.address.cmp(&b.address)));
    let top_clients = clients
        .iter()
        .take(TOP_ROWS)
        .map(|c| ClientRow {
            address: c.address.to_string(),
            requests: u64::from(c.requests),
            responses: u64::from(c.responses),
            bytes: c.bytes_in + c.bytes_out,
            median_interval_s: c.median_interval_s,
            kod: u64::from(c.kod_received),
        })
        .collect();
    let mut prefixes: Vec<&crate::capture::report::PrefixRow> = r.prefixes.iter().collect();
    prefixes.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.prefix.cmp(&b.prefix)));
    let top_subnets = prefixes
        .iter()
        .take(TOP_ROWS)
        .map(|p| ClientRow {
            address: format!("{} ({} clients)", p.prefix, p.clients),
            requests: p.requests,
            responses: p.responses,
            bytes: p.bytes_in + p.bytes_out,
            median_interval_s: None,
            kod: 0,
        })
        .collect();
    let mut findings = Vec::new();
    if t.mode6_packets > 0 {
        let askers = r.clients.iter().filter(|c| c.control_requests > 0).count();
        findings.push(Finding {
            kind: "mode6".into(),
            detail: format!("control (ntpq) packets; {askers} clients sent control requests"),
            packets: t.mode6_packets,
        });
    }
    if t.mode7_packets > 0 {
        let askers = r.clients.iter().filter(|c| c.monlist_requests > 0).count();
        findings.push(Finding {
            kind: "mode7".into(),
            detail: format!("private (ntpdc) packets; {askers} clients asked for monlist"),
            packets: t.mode7_packets,
        });
    }
    if t.monlist_responses > 0 {
        findings.push(Finding {
            kind: "monlist".into(),
            detail: "MON_GETLIST responses: the monlist amplification signature".into(),
            packets: t.monlist_responses,
        });
    }
    let kod_clients = r.clients.iter().filter(|c| c.kod_received > 0).count();
    for (code, n) in &t.kod {
        findings.push(Finding {
            kind: format!("kod:{code}"),
            detail: format!("Kiss-o'-Death {code} sent; {kod_clients} clients received a KoD"),
            packets: *n,
        });
    }
    let rl = &r.rate_limit;
    let rate_limits = vec![
        RateLimitRow {
            policy: format!(
                "chrony ratelimit interval {} burst {} leak {}",
                rl.chrony.interval, rl.chrony.burst, rl.chrony.leak
            ),
            dropped_requests: rl.chrony_outcome.dropped_requests,
            dropped_pct: rl.chrony_outcome.dropped_pct,
            clients_limited: rl.chrony_outcome.clients_limited,
            saving_per_year: rl.chrony_outcome.saving_per_year,
        },
        RateLimitRow {
            policy: format!("ntpd discard average {} minimum {}", rl.ntpd.average, rl.ntpd.minimum),
            dropped_requests: rl.ntpd_outcome.dropped_requests,
            dropped_pct: rl.ntpd_outcome.dropped_pct,
            clients_limited: rl.ntpd_outcome.clients_limited,
            saving_per_year: rl.ntpd_outcome.saving_per_year,
        },
    ];
    let client_types = r
        .client_types
        .iter()
        .map(|c| ClientTypeRow {
            client_type: c.client_type.as_str().to_string(),
            clients: c.clients,
            requests: c.requests,
            requests_pct: c.requests_pct,
        })
        .collect();
    CaptureReport {
        totals,
        cost,
        what_if,
        traffic_cdf,
        polling,
        rate,
        top_clients,
        top_subnets,
        findings,
        rate_limits,
        client_types,
    }
}
