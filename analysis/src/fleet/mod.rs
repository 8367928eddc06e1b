//! Fleet audit without I/O: from one NTP answer per server (an [`Observation`]) and the results
//! of mode 6/7 exposure probes, builds the graph of who synchronises from whom (from refids) and
//! reports what is wrong with the hierarchy as a whole — unsynchronised or silent servers, stale
//! references, large root distances, offsets against the fleet's majority, stratum inversions,
//! loops, single points of failure, local clocks serving others, control-mode exposure.

mod graph;

pub use graph::{Upstream, refid_bytes, resolve_upstream};

use crate::observation::Observation;
use crate::severity::Severity;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

/// Thresholds of the fleet checks, as named parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FleetParams {
    /// A reference time older than this (seconds, on the server's clock) is stale. Default 4096 s:
    /// four times the longest default poll interval (2^10 s) of chrony and ntpd.
    pub stale_reference_age: f64,
    /// Root distance (root delay / 2 + root dispersion) above this (seconds) is flagged. Default
    /// 1.0 s (RFC 5905's MAXDIST is 1.5 s; a well-run fleet is far below).
    pub max_root_distance: f64,
    /// An offset further than this (seconds) from the fleet's median is flagged. Default 0.128 s,
    /// ntpd's step threshold.
    pub max_offset_from_majority: f64,
    /// The median is only trusted with at least this many synchronised servers answering.
    pub min_servers_for_majority: usize,
    /// A single point of failure must carry at least this many other audited servers.
    pub min_dependents_for_spof: usize,
}

impl Default for FleetParams {
    fn default() -> Self {
        Self {
            stale_reference_age: 4096.0,
            max_root_distance: 1.0,
            max_offset_from_majority: 0.128,
            min_servers_for_majority: 3,
            min_dependents_for_spof: 2,
        }
    }
}

/// What a mode 6 or mode 7 query of one server from the auditing host gave.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ControlProbe {
    /// Server address.
    pub address: String,
    /// 6 (control, ntpq) or 7 (private, ntpdc).
    pub mode: u8,
    /// Whether a reply came back.
    pub answered: bool,
    /// What was asked, e.g. `READVAR` or `MON_GETLIST_1`.
    pub request: String,
    /// Bytes sent (UDP payload).
    pub request_bytes: usize,
    /// Bytes received in all reply datagrams (UDP payload).
    pub response_bytes: usize,
    /// Short description of the reply (e.g. the server's `version` variable).
    pub detail: Option<String>,
    /// Mode 6 only: the addresses of the server's associations (`srcadr` of each peer), i.e.
    /// every source it is configured with, selected or not.
    #[serde(default)]
    pub sources: Vec<String>,
}

/// One server in the graph.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    /// Its address.
    pub address: String,
    /// The name it was given as, when audited by name.
    pub target: Option<String>,
    /// Whether it was queried (given by the user or reached by walking upstream).
    pub queried: bool,
    /// Whether it answered a time query.
    pub answered: bool,
    /// Stratum it reported.
    pub stratum: Option<u8>,
    /// Refid as reported.
    pub refid: Option<String>,
    /// What the refid points at.
    pub upstream: Upstream,
    /// Offset of its clock (seconds, positive = ahead of the auditing host).
    pub offset: Option<f64>,
    /// Root distance (seconds).
    pub root_distance: Option<f64>,
}

/// `from` synchronises from `to`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Edge {
    /// The downstream server.
    pub from: String,
    /// Its upstream (its refid).
    pub to: String,
}

/// One problem of the fleet, with the evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FleetFinding {
    /// How serious.
    pub severity: Severity,
    /// Stable short name (e.g. `loop`, `stale_reference`).
    pub code: &'static str,
    /// The server to blame (for a loop, its lowest address).
    pub server: String,
    /// What is wrong.
    pub message: String,
    /// The values that show it.
    pub evidence: BTreeMap<&'static str, String>,
}

impl fmt::Display for FleetFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}: {}", self.server, self.severity, self.code, self.message)?;
        let ev: Vec<String> = self.evidence.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !ev.is_empty() {
            write!(f, " [{}]", ev.join(" "))?;
        }
        Ok(())
    }
}

/// The audit of a fleet: graph and findings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FleetReport {
    /// Every server seen (queried or named by a refid), in address order.
    pub nodes: Vec<Node>,
    /// Who synchronises from whom.
    pub edges: Vec<Edge>,
    /// Findings, most serious first, then by server.
    pub findings: Vec<FleetFinding>,
    /// Median offset of the synchronised servers, when there were enough of them.
    pub majority_offset: Option<f64>,
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// Whether an observation says its server is not synchronised: leap 3, stratum 16, or stratum 0
/// with the INIT/STEP codes.
pub fn unsynchronised_reason(o: &Observation) -> Option<String> {
    if o.leap == Some(3) {
        return Some("leap indicator 3 (alarm)".into());
    }
    if o.stratum == Some(16) {
        return Some("stratum 16".into());
    }
    let refid = o.refid.as_deref().unwrap_or("");
    if (o.stratum == Some(0) || o.stratum.is_none()) && matches!(refid, "INIT" | "STEP") {
        return Some(format!("kiss code {refid}"));
    }
    if let Some(code) = o.error.as_deref().and_then(|e| e.strip_prefix("kod:"))
        && matches!(code, "INIT" | "STEP")
    {
        return Some(format!("kiss code {code}"));
    }
    if o.error.as_deref() == Some("unsynchronized") {
        return Some("server reports it is unsynchronised".into());
    }
    None
}

/// Upstream addresses named by refids that were not queried yet: what to query next when
/// walking up the hierarchy. Addresses in 127.127.0.0/16 (reference-clock pseudo addresses) are
/// never returned.
pub fn unvisited_upstreams(observations: &[Observation]) -> Vec<IpAddr> {
    let known: Vec<IpAddr> = observations.iter().filter_map(|o| parse_ip(&o.address)).collect();
    let queried: HashSet<IpAddr> = known.iter().copied().collect();
    let mut out = BTreeSet::new();
    for o in observations {
        if let Upstream::Server(addr) = resolve_upstream(o, &known)
            && !queried.contains(&addr)
            && !addr.is_unspecified()
        {
            out.insert(addr);
        }
    }
    out.into_iter().collect()
}

/// Audits a fleet. `observations` holds one answer (or failure) per queried server;
/// `audited` the addresses the user asked about (the others were reached by walking upstream),
/// `control` the mode 6/7 probes made, `known_addresses` extra addresses to match IPv6 refid
/// hashes against (every queried address is matched anyway).
pub fn audit(
    observations: &[Observation],
    control: &[ControlProbe],
    known_addresses: &[IpAddr],
    params: &FleetParams,
) -> FleetReport {
    let mut known: Vec<IpAddr> = observations.iter().filter_map(|o| parse_ip(&o.address)).collect();
    known.extend_from_slice(known_addresses);

    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut by_addr: HashMap<String, &Observation> = HashMap::new();
    for o in observations {
        by_addr.insert(o.address.clone(), o);
        let upstream = resolve_upstream(o, &known);
        nodes.insert(
            o.address.clone(),
            Node {
                address: o.address.clone(),
                target: (o.target != o.address).then(|| o.target.clone()),
                queried: true,
                answered: o.stratum.is_some(),
                stratum: o.stratum,
                refid: o.refid.clone(),
                upstream,
                offset: o.offset,
                root_distance: root_distance(o),
            },
        );
    }
    let mut edges = BTreeSet::new();
    for node in nodes.values().cloned().collect::<Vec<_>>() {
        if let Upstream::Server(up) = node.upstream {
            let to = up.to_string();
            nodes.entry(to.clone()).or_insert_with(|| Node {
                address: to.clone(),
                target: None,
                queried: false,
                answered: false,
                stratum: None,
                refid: None,
                upstream: Upstream::None,
                offset: None,
                root_distance: None,
            });
            edges.insert(Edge { from: node.address.clone(), to });
        }
    }
    let upstream_of: HashMap<&str, &str> = edges.iter().map(|e| (e.from.as_str(), e.to.as_str())).collect();

    let mut findings = Vec::new();
    let mut synced_offsets = Vec::new();
    for o in observations {
        if let Some(f) = server_health(o, params) {
            findings.extend(f);
        } else if let Some(off) = o.offset {
            synced_offsets.push((o.address.as_str(), off, o.delay.unwrap_or(0.0).max(0.0)));
        }
    }

    // A silent server that others synchronise from works for them: the auditing host is
    // probably filtered (port 123 blocked), which is worth a warning, not an alarm.
    for f in findings.iter_mut().filter(|f| f.code == "silent") {
        let dependents: Vec<&str> = edges.iter().filter(|e| e.to == f.server).map(|e| e.from.as_str()).collect();
        if !dependents.is_empty() {
            f.severity = Severity::Warning;
            f.message = format!(
                "{}, though {} server(s) synchronise from it: filtered from the auditing host?",
                f.message,
                dependents.len()
            );
            f.evidence.insert("dependents", dependents.join(","));
        }
    }

    // Offsets against the majority (median of the synchronised servers).
    let majority_offset = (synced_offsets.len() >= params.min_servers_for_majority).then(|| {
        let mut v: Vec<f64> = synced_offsets.iter().map(|(_, o, _)| *o).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
    });
    if let Some(median) = majority_offset {
        for (addr, off, delay) in &synced_offsets {
            let diff = off - median;
            // The true offset lies within ± delay/2 of the estimate: flag only when the whole
            // interval is beyond the tolerance (a slow reply must not look like a bad clock).
            if diff.abs() - delay / 2.0 > params.max_offset_from_majority {
                findings.push(finding(
                    Severity::Critical,
                    "offset",
                    addr,
                    format!("clock is {diff:+.3} s from the fleet's majority"),
                    [
                        ("offset", format!("{off:.6}")),
                        ("delay", format!("{delay:.6}")),
                        ("majority_offset", format!("{median:.6}")),
                        ("threshold", format!("{}", params.max_offset_from_majority)),
                    ],
                ));
            }
        }
    }

    // Loops: follow each node's single upstream until a repeat.
    let mut in_cycle: HashSet<String> = HashSet::new();
    let mut cycles: BTreeSet<Vec<String>> = BTreeSet::new();
    for start in nodes.keys() {
        let mut path: Vec<&str> = vec![start.as_str()];
        let mut cur = start.as_str();
        while let Some(&next) = upstream_of.get(cur) {
            if let Some(pos) = path.iter().position(|p| *p == next) {
                let mut cycle: Vec<String> = path[pos..].iter().map(|s| s.to_string()).collect();
                // Rotate so the lowest address comes first (one report per cycle).
                let min = cycle.iter().enumerate().min_by(|a, b| a.1.cmp(b.1)).map_or(0, |(i, _)| i);
                cycle.rotate_left(min);
                cycles.insert(cycle);
                break;
            }
            path.push(next);
            cur = next;
        }
    }
    for cycle in &cycles {
        in_cycle.extend(cycle.iter().cloned());
        let mut ring = cycle.clone();
        ring.push(cycle[0].clone());
        let strata: Vec<String> =
            cycle.iter().map(|a| nodes.get(a).and_then(|n| n.stratum).map_or("?".into(), |s| s.to_string())).collect();
        findings.push(finding(
            Severity::Critical,
            "loop",
            &cycle[0],
            format!("synchronisation loop: {}", ring.join(" -> ")),
            [("members", cycle.join(",")), ("strata", strata.join(","))],
        ));
    }

    // Stratum inversions: a server must sit below the server it synchronises from.
    for e in &edges {
        if in_cycle.contains(&e.from) && in_cycle.contains(&e.to) {
            continue;
        }
        let (Some(down), Some(up)) = (nodes[&e.from].stratum, nodes[&e.to].stratum) else { continue };
        if by_addr.get(e.to.as_str()).is_some_and(|o| unsynchronised_reason(o).is_some()) {
            continue; // reported as unsynchronised
        }
        if (1..16).contains(&down) && (1..16).contains(&up) && down <= up {
            findings.push(finding(
                Severity::Warning,
                "stratum_inversion",
                &e.from,
                format!("claims stratum {down} but synchronises from {} at stratum {up}", e.to),
                [("stratum", down.to_string()), ("upstream", e.to.clone()), ("upstream_stratum", up.to_string())],
            ));
        }
    }

    // Local clocks serving others.
    for n in nodes.values() {
        if n.upstream == Upstream::LocalClock {
            let dependents: Vec<&str> = edges.iter().filter(|e| e.to == n.address).map(|e| e.from.as_str()).collect();
            let severity = if dependents.is_empty() { Severity::Warning } else { Severity::Critical };
            let mut ev: BTreeMap<&'static str, String> = BTreeMap::new();
            ev.insert("refid", n.refid.clone().unwrap_or_default());
            ev.insert("stratum", n.stratum.map_or("?".into(), |s| s.to_string()));
            ev.insert("dependents", dependents.join(","));
            findings.push(FleetFinding {
                severity,
                code: "local_clock_source",
                server: n.address.clone(),
                message: format!(
                    "serves time from its undisciplined local clock{}",
                    if dependents.is_empty() {
                        String::new()
                    } else {
                        format!(" to {} fleet server(s)", dependents.len())
                    }
                ),
                evidence: ev,
            });
        }
    }

    // Unsynchronised servers are reported as such, not as single points of failure.
    let mut excluded = in_cycle.clone();
    excluded.extend(observations.iter().filter(|o| unsynchronised_reason(o).is_some()).map(|o| o.address.clone()));
    spof(&nodes, &upstream_of, &excluded, by_addr.keys().map(String::as_str).collect(), params, &mut findings);
    exposure(control, &mut findings);
    single_sources(control, &mut findings);

    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.server.cmp(&b.server)).then(a.code.cmp(b.code)));
    FleetReport { nodes: nodes.into_values().collect(), edges: edges.into_iter().collect(), findings, majority_offset }
}

/// Root distance: root delay / 2 + root dispersion.
pub fn root_distance(o: &Observation) -> Option<f64> {
    Some(o.root_delay? / 2.0 + o.root_dispersion?)
}

fn finding<const N: usize>(
    severity: Severity,
    code: &'static str,
    server: &str,
    message: String,
    evidence: [(&'static str, String); N],
) -> FleetFinding {
    FleetFinding { severity, code, server: server.to_string(), message, evidence: evidence.into_iter().collect() }
}

/// Checks of one server on its own. `None` when it answered and is synchronised (it then takes
/// part in the majority), else the findings that exclude it.
fn server_health(o: &Observation, params: &FleetParams) -> Option<Vec<FleetFinding>> {
    let mut out = Vec::new();
    if let Some(reason) = unsynchronised_reason(o) {
        out.push(finding(
            Severity::Critical,
            "unsynchronised",
            &o.address,
            format!("not synchronised: {reason}"),
            [
                ("leap", o.leap.map_or("?".into(), |l| l.to_string())),
                ("stratum", o.stratum.map_or("?".into(), |s| s.to_string())),
                ("refid", o.refid.clone().unwrap_or_default()),
            ],
        ));
        return Some(out);
    }
    if let Some(err) = o.error.as_deref() {
        if let Some(code) = err.strip_prefix("kod:") {
            out.push(finding(
                Severity::Warning,
                "kod",
                &o.address,
                format!("answered with a Kiss-o'-Death ({code})"),
                [("kiss_code", code.to_string())],
            ));
            return Some(out);
        }
        if o.stratum.is_none() {
            out.push(finding(
                Severity::Critical,
                "silent",
                &o.address,
                format!("no answer to an NTP query ({err})"),
                [("error", err.to_string())],
            ));
            return Some(out);
        }
    }
    o.stratum?;
    if let (Some(reference), Some(offset)) = (o.reference_time, o.offset) {
        // Age on the server's own clock at the moment it answered.
        let age = o.t_recv + offset - reference;
        if age > params.stale_reference_age {
            out.push(finding(
                Severity::Warning,
                "stale_reference",
                &o.address,
                format!("reference time last updated {age:.0} s ago"),
                [("reference_age", format!("{age:.1}")), ("threshold", format!("{}", params.stale_reference_age))],
            ));
        }
    }
    if let Some(dist) = root_distance(o)
        && dist > params.max_root_distance
    {
        out.push(finding(
            Severity::Warning,
            "root_distance",
            &o.address,
            format!("root distance {dist:.3} s is over {} s", params.max_root_distance),
            [
                ("root_delay", format!("{:.6}", o.root_delay.unwrap_or(0.0))),
                ("root_dispersion", format!("{:.6}", o.root_dispersion.unwrap_or(0.0))),
                ("root_distance", format!("{dist:.6}")),
            ],
        ));
    }
    if out.is_empty() { None } else { Some(out) }
}

/// Single points of failure: a secondary server that every other audited server's path to a
/// primary goes through.
fn spof(
    nodes: &BTreeMap<String, Node>,
    upstream_of: &HashMap<&str, &str>,
    in_cycle: &HashSet<String>,
    queried: Vec<&str>,
    params: &FleetParams,
    findings: &mut Vec<FleetFinding>,
) {
    // Chains of the queried servers that synchronise from someone.
    let chains: BTreeMap<&str, Vec<&str>> = queried
        .iter()
        .filter(|a| upstream_of.contains_key(**a))
        .map(|a| {
            let mut chain = Vec::new();
            let mut cur = *a;
            while let Some(&next) = upstream_of.get(cur) {
                if chain.contains(&next) || next == *a {
                    break;
                }
                chain.push(next);
                cur = next;
            }
            (*a, chain)
        })
        .collect();
    // Stratum of a node: reported, else one less than the lowest of its dependents.
    let stratum_of = |addr: &str| -> Option<u8> {
        nodes.get(addr).and_then(|n| n.stratum).or_else(|| {
            upstream_of
                .iter()
                .filter(|(_, to)| **to == addr)
                .filter_map(|(from, _)| nodes.get(*from).and_then(|n| n.stratum))
                .min()
                .map(|s| s.saturating_sub(1))
        })
    };
    let mut candidates: Vec<&str> = Vec::new();
    for chain in chains.values() {
        for c in chain {
            if !candidates.contains(c) {
                candidates.push(c);
            }
        }
    }
    let mut best: Option<(&str, usize)> = None;
    for x in candidates {
        if in_cycle.contains(x) || stratum_of(x).is_none_or(|s| s <= 1) {
            continue;
        }
        let others: Vec<&Vec<&str>> = chains.iter().filter(|(a, _)| **a != x).map(|(_, c)| c).collect();
        if others.len() < params.min_dependents_for_spof || !others.iter().all(|c| c.contains(&x)) {
            continue;
        }
        // Prefer the dominator closest to the fleet (the one with most servers above it in chains).
        let depth = others.iter().map(|c| c.iter().position(|n| *n == x).unwrap_or(0)).min().unwrap_or(0);
        if best.is_none_or(|(_, d)| depth < d) {
            best = Some((x, depth));
        }
    }
    if let Some((x, _)) = best {
        let dependents: Vec<&str> =
            chains.iter().filter(|(a, c)| **a != x && c.contains(&x)).map(|(a, _)| *a).collect();
        findings.push(finding(
            Severity::Warning,
            "single_point_of_failure",
            x,
            format!("every other audited server ({}) synchronises through this one server", dependents.len()),
            [("dependents", dependents.join(",")), ("stratum", stratum_of(x).map_or("?".into(), |s| s.to_string()))],
        ));
    }
}

/// Servers whose mode 6 association list shows a single source: one failure away from running
/// free, whatever their refid says.
fn single_sources(control: &[ControlProbe], findings: &mut Vec<FleetFinding>) {
    for c in control.iter().filter(|c| c.mode == 6 && c.answered) {
        let mut distinct: Vec<&str> = c.sources.iter().map(String::as_str).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() == 1 {
            findings.push(finding(
                Severity::Warning,
                "single_source",
                &c.address,
                format!("configured with a single source ({})", distinct[0]),
                [("sources", distinct[0].to_string())],
            ));
        }
    }
}

fn exposure(control: &[ControlProbe], findings: &mut Vec<FleetFinding>) {
    for c in control.iter().filter(|c| c.answered) {
        let ratio = if c.request_bytes > 0 { c.response_bytes as f64 / c.request_bytes as f64 } else { 0.0 };
        let (severity, code, what) = match c.mode {
            7 => (Severity::Critical, "mode7_exposed", "mode 7 (ntpdc/monlist) requests: an amplification risk"),
            _ => {
                (Severity::Warning, "mode6_exposed", "mode 6 (ntpq) queries: its state, version and peers are readable")
            }
        };
        let mut ev: BTreeMap<&'static str, String> = BTreeMap::new();
        ev.insert("request", c.request.clone());
        ev.insert("request_bytes", c.request_bytes.to_string());
        ev.insert("response_bytes", c.response_bytes.to_string());
        ev.insert("amplification", format!("{ratio:.1}"));
        if let Some(d) = &c.detail {
            ev.insert("detail", d.clone());
        }
        findings.push(FleetFinding {
            severity,
            code,
            server: c.address.clone(),
            message: format!("answers {what} from the auditing host"),
            evidence: ev,
        });
    }
}

#[cfg(test)]
mod tests;

/// The hierarchy as Graphviz DOT: one node per server (label: address, stratum, refid; red
/// outline when a critical finding names it, orange for a warning), one edge per "synchronises
/// from", drawn upstream at the top.
pub fn to_dot(report: &FleetReport) -> String {
    let mut worst: HashMap<&str, Severity> = HashMap::new();
    for f in &report.findings {
        let e = worst.entry(f.server.as_str()).or_insert(f.severity);
        *e = (*e).max(f.severity);
    }
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::from("digraph fleet {\n  rankdir=BT;\n  node [shape=box, fontname=\"DejaVu Sans\"];\n");
    for n in &report.nodes {
        let mut label = n.target.clone().map_or(n.address.clone(), |t| format!("{t}\\n{}", n.address));
        match (n.stratum, &n.refid) {
            (Some(s), Some(r)) => label.push_str(&format!("\\nstratum {s}, refid {}", quote(r))),
            _ if !n.queried => label.push_str("\\n(not queried)"),
            _ => label.push_str("\\n(no answer)"),
        }
        let color = match worst.get(n.address.as_str()) {
            Some(Severity::Critical) => "red",
            Some(Severity::Warning) => "orange",
            _ => "black",
        };
        let style = if n.queried { "solid" } else { "dashed" };
        out.push_str(&format!("  \"{}\" [label=\"{label}\", color={color}, style={style}];\n", quote(&n.address)));
        match &n.upstream {
            Upstream::Reference(name) => {
                out.push_str(&format!(
                    "  \"ref:{a}\" [label=\"{r}\", shape=ellipse];\n  \"{a}\" -> \"ref:{a}\";\n",
                    a = quote(&n.address),
                    r = quote(name)
                ));
            }
            Upstream::LocalClock => {
                out.push_str(&format!(
                    "  \"local:{a}\" [label=\"local clock\", shape=ellipse, color=red];\n  \"{a}\" -> \"local:{a}\";\n",
                    a = quote(&n.address)
                ));
            }
            _ => {}
        }
    }
    for e in &report.edges {
        out.push_str(&format!("  \"{}\" -> \"{}\";\n", quote(&e.from), quote(&e.to)));
    }
    out.push_str("}\n");
    out
}
