//! Report data of the capture part: totals, cost and what-if tables, the traffic CDF, the
//! polling-interval scatter, the per-minute rate with its Holt–Winters band, top talkers and
//! mode 6/7 / KoD findings. Filled from the capture analyzer's results; the CDF is derived here
//! from the per-client request counts.

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
}

/// "Share of traffic from clients with ≤ N queries": for each distinct per-client count N (ascending),
/// the share of all requests sent by clients with at most N requests.
pub fn traffic_cdf(requests_per_client: &[u64]) -> Vec<(f64, f64)> {
    let mut v: Vec<u64> = requests_per_client.iter().copied().filter(|n| *n > 0).collect();
    v.sort_unstable();
    let total: u64 = v.iter().sum();
    if total == 0 {
        return Vec::new();
    }
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut acc = 0u64;
    for (i, n) in v.iter().enumerate() {
        acc += n;
        if v.get(i + 1) != Some(n) {
            out.push((*n as f64, acc as f64 / total as f64));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_of_counts() {
        // 3 clients with 1, 1 and 8 queries: those with ≤1 sent 2/10, with ≤8 all.
        assert_eq!(traffic_cdf(&[1, 8, 1, 0]), vec![(1.0, 0.2), (8.0, 1.0)]);
        assert!(traffic_cdf(&[]).is_empty());
    }
}
