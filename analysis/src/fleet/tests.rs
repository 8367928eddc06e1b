//! Fleet checks on literal hierarchies: a healthy one gives no finding; each planted fault gives
//! exactly its finding.

use super::*;
use std::net::Ipv6Addr;

const NOW: f64 = 1_800_000_000.0;

/// A synchronised answer from `addr` at `stratum` with `refid`.
fn obs(addr: &str, stratum: u8, refid: &str) -> Observation {
    Observation {
        target: addr.into(),
        address: addr.into(),
        t_send: NOW - 0.001,
        t_recv: NOW,
        offset: Some(0.0005),
        delay: Some(0.001),
        stratum: Some(stratum),
        refid: Some(refid.into()),
        leap: Some(0),
        root_delay: Some(0.002),
        root_dispersion: Some(0.01),
        reference_time: Some(NOW - 30.0),
        ..Default::default()
    }
}

fn healthy() -> Vec<Observation> {
    vec![
        obs("127.0.8.1", 1, "GPS"),
        obs("127.0.8.2", 2, "127.0.8.1"),
        obs("127.0.8.3", 2, "127.0.8.1"),
        obs("127.0.8.4", 3, "127.0.8.2"),
        obs("127.0.8.5", 3, "127.0.8.3"),
    ]
}

fn codes(r: &FleetReport) -> Vec<(&str, Severity, &'static str)> {
    r.findings.iter().map(|f| (f.server.as_str(), f.severity, f.code)).collect()
}

fn run(o: &[Observation]) -> FleetReport {
    audit(o, &[], &[], &FleetParams::default())
}

#[test]
fn healthy_hierarchy_has_no_findings() {
    let r = run(&healthy());
    assert_eq!(codes(&r), vec![]);
    let edges: Vec<(&str, &str)> = r.edges.iter().map(|e| (e.from.as_str(), e.to.as_str())).collect();
    assert_eq!(
        edges,
        vec![
            ("127.0.8.2", "127.0.8.1"),
            ("127.0.8.3", "127.0.8.1"),
            ("127.0.8.4", "127.0.8.2"),
            ("127.0.8.5", "127.0.8.3")
        ]
    );
    assert_eq!(r.nodes[0].upstream, Upstream::Reference("GPS".into()));
    assert_eq!(r.majority_offset, Some(0.0005));
    assert_eq!(
        unvisited_upstreams(&r.nodes.iter().map(|_| obs("127.0.8.9", 2, "10.1.2.3")).collect::<Vec<_>>()),
        vec!["10.1.2.3".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn single_upstream_is_a_single_point_of_failure() {
    let mut o = healthy();
    o[2] = obs("127.0.8.3", 3, "127.0.8.2"); // master 2 follows master 1 instead of the root
    o[4] = obs("127.0.8.5", 4, "127.0.8.3");
    let r = run(&o);
    assert_eq!(codes(&r), vec![("127.0.8.2", Severity::Warning, "single_point_of_failure")]);
    assert_eq!(r.findings[0].evidence["dependents"], "127.0.8.3,127.0.8.4,127.0.8.5");
}

#[test]
fn loop_is_reported_once_without_inversions() {
    let o = vec![obs("127.0.8.1", 6, "127.0.8.3"), obs("127.0.8.2", 7, "127.0.8.1"), obs("127.0.8.3", 8, "127.0.8.2")];
    let r = run(&o);
    assert_eq!(codes(&r), vec![("127.0.8.1", Severity::Critical, "loop")]);
    assert_eq!(r.findings[0].message, "synchronisation loop: 127.0.8.1 -> 127.0.8.3 -> 127.0.8.2 -> 127.0.8.1");
    assert_eq!(r.findings[0].evidence["strata"], "6,8,7");
}

#[test]
fn stale_reference_and_root_distance() {
    let mut o = healthy();
    o[1].reference_time = Some(NOW - 5000.0);
    o[2].root_delay = Some(0.5);
    o[2].root_dispersion = Some(0.8);
    let r = run(&o);
    assert_eq!(
        codes(&r),
        vec![("127.0.8.2", Severity::Warning, "stale_reference"), ("127.0.8.3", Severity::Warning, "root_distance")]
    );
    // Age is measured on the server's clock: 5000 s old reference, clock 0.0005 s ahead.
    assert_eq!(r.findings[0].evidence["reference_age"], "5000.0");
    assert_eq!(r.findings[1].evidence["root_distance"], "1.050000");
}

#[test]
fn master_bent_sixty_seconds_is_off_the_majority() {
    let mut o = healthy();
    o[1].offset = Some(-60.0002);
    o[1].reference_time = Some(NOW - 60.0 - 30.0);
    let r = run(&o);
    assert_eq!(codes(&r), vec![("127.0.8.2", Severity::Critical, "offset")]);
    assert_eq!(r.findings[0].message, "clock is -60.001 s from the fleet's majority");
    // 0.3 s off with a 0.5 s round trip: the interval reaches within the tolerance, no finding.
    let mut o = healthy();
    o[1].offset = Some(0.3);
    o[1].delay = Some(0.5);
    assert_eq!(codes(&run(&o)), vec![]);
    o[1].delay = Some(0.2);
    assert_eq!(codes(&run(&o)), vec![("127.0.8.2", Severity::Critical, "offset")]);
}

#[test]
fn unsynchronised_kod_silent() {
    let mut o = healthy();
    o[1].leap = Some(3);
    o[1].stratum = Some(16);
    o[2] = Observation {
        stratum: None,
        refid: None,
        offset: None,
        error: Some("timeout".into()),
        ..obs("127.0.8.3", 2, "")
    };
    o[4] = Observation {
        stratum: Some(0),
        refid: Some("RATE".into()),
        error: Some("kod:RATE".into()),
        ..obs("127.0.8.5", 0, "")
    };
    let r = run(&o);
    assert_eq!(
        codes(&r),
        vec![
            ("127.0.8.2", Severity::Critical, "unsynchronised"),
            ("127.0.8.3", Severity::Critical, "silent"),
            ("127.0.8.5", Severity::Warning, "kod"),
        ]
    );
    assert_eq!(r.findings[0].message, "not synchronised: leap indicator 3 (alarm)");
    // Client 4 still names the unsynchronised master: no inversion is reported on top.
    let init = Observation { stratum: Some(0), refid: Some("INIT".into()), ..obs("127.0.8.7", 0, "") };
    assert_eq!(unsynchronised_reason(&init).as_deref(), Some("kiss code INIT"));
}

#[test]
fn stratum_inversion() {
    let mut o = healthy();
    o[3].stratum = Some(2); // claims the stratum of its upstream 127.0.8.2
    let r = run(&o);
    assert_eq!(codes(&r), vec![("127.0.8.4", Severity::Warning, "stratum_inversion")]);
    assert_eq!(r.findings[0].message, "claims stratum 2 but synchronises from 127.0.8.2 at stratum 2");
}

#[test]
fn local_clock_serving_the_fleet() {
    let mut o = healthy();
    // chrony's `local stratum 1`: refid 127.127.1.1 rendered as ASCII at stratum 1.
    o[0].refid = Some("\\x7f\\x7f\\x01\\x01".into());
    o.push(obs("127.0.8.9", 5, "LOCL"));
    let r = run(&o);
    assert_eq!(
        codes(&r),
        vec![
            ("127.0.8.1", Severity::Critical, "local_clock_source"),
            ("127.0.8.9", Severity::Warning, "local_clock_source")
        ]
    );
    assert_eq!(r.findings[0].evidence["dependents"], "127.0.8.2,127.0.8.3");
}

#[test]
fn ipv6_refid_is_matched_by_md5() {
    // MD5 of 2001:db8::1's 16 bytes starts 39 ab 9b 37 (computed with Python's hashlib).
    let up: IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!(graph::refid_of(up), [57, 171, 155, 55]);
    let o = obs("127.0.8.2", 3, "57.171.155.55");
    assert_eq!(resolve_upstream(&o, &[up]), Upstream::Server(up));
    assert_eq!(resolve_upstream(&o, &[]), Upstream::Server("57.171.155.55".parse().unwrap()));
    assert_eq!(
        resolve_upstream(&o, &[IpAddr::V6(Ipv6Addr::LOCALHOST)]),
        Upstream::Server("57.171.155.55".parse().unwrap())
    );
}

#[test]
fn exposure_findings() {
    let control = vec![
        ControlProbe {
            address: "127.0.8.1".into(),
            mode: 6,
            answered: true,
            request: "READVAR".into(),
            request_bytes: 12,
            response_bytes: 480,
            detail: Some("ntpd ntpsec-1.2.2".into()),
            sources: vec!["127.0.8.9".into(), "127.0.8.9".into()],
        },
        ControlProbe {
            address: "127.0.8.2".into(),
            mode: 7,
            answered: true,
            request: "MON_GETLIST_1".into(),
            request_bytes: 48,
            response_bytes: 4400,
            detail: None,
            sources: vec![],
        },
        ControlProbe {
            address: "127.0.8.3".into(),
            mode: 7,
            answered: false,
            request: "MON_GETLIST_1".into(),
            request_bytes: 48,
            response_bytes: 0,
            detail: None,
            sources: vec![],
        },
    ];
    let r = audit(&healthy(), &control, &[], &FleetParams::default());
    assert_eq!(
        codes(&r),
        vec![
            ("127.0.8.2", Severity::Critical, "mode7_exposed"),
            ("127.0.8.1", Severity::Warning, "mode6_exposed"),
            ("127.0.8.1", Severity::Warning, "single_source"),
        ]
    );
    assert_eq!(r.findings[0].evidence["amplification"], "91.7");
    assert_eq!(r.findings[1].evidence["amplification"], "40.0");
}

#[test]
fn refid_text_round_trip() {
    assert_eq!(refid_bytes("GPS"), Some(*b"GPS\0"));
    assert_eq!(refid_bytes("10.0.0.1"), Some([10, 0, 0, 1]));
    assert_eq!(refid_bytes("\\x7f\\x7f\\x01\\x01"), Some([127, 127, 1, 1]));
    assert_eq!(refid_bytes("TOOLONG"), None);
    assert_eq!(refid_bytes("\\xZZ"), None);
}

#[test]
fn dot_output() {
    let o = vec![obs("127.0.8.1", 1, "GPS"), obs("127.0.8.2", 2, "127.0.8.1"), obs("127.0.8.3", 3, "10.9.9.9")];
    let dot = to_dot(&run(&o));
    assert_eq!(
        dot,
        "digraph fleet {
  rankdir=BT;
  node [shape=box, fontname=\"DejaVu Sans\"];
  \"10.9.9.9\" [label=\"10.9.9.9\\n(not queried)\", color=black, style=dashed];
  \"127.0.8.1\" [label=\"127.0.8.1\\nstratum 1, refid GPS\", color=black, style=solid];
  \"ref:127.0.8.1\" [label=\"GPS\", shape=ellipse];
  \"127.0.8.1\" -> \"ref:127.0.8.1\";
  \"127.0.8.2\" [label=\"127.0.8.2\\nstratum 2, refid 127.0.8.1\", color=black, style=solid];
  \"127.0.8.3\" [label=\"127.0.8.3\\nstratum 3, refid 10.9.9.9\", color=black, style=solid];
  \"127.0.8.2\" -> \"127.0.8.1\";
  \"127.0.8.3\" -> \"10.9.9.9\";
}
"
    );
}

#[test]
fn stratum_zero_with_an_address_refid_is_unsynchronised_not_kod() {
    // What chronyd sends when a loop pushed it to stratum 16: stratum 0 and its old refid
    // 127.0.8.11, which the client reports as `unsynchronized` (not a kiss code).
    let mut o = healthy();
    o[3] = Observation {
        stratum: None,
        refid: None,
        offset: None,
        error: Some("unsynchronized".into()),
        ..obs("127.0.8.4", 3, "")
    };
    // Server 5 now synchronises from 4: 4 is unsynchronised, not a single point of failure.
    o[4] = obs("127.0.8.5", 4, "127.0.8.4");
    let r = run(&o);
    assert_eq!(codes(&r), vec![("127.0.8.4", Severity::Critical, "unsynchronised")]);
    assert_eq!(r.findings[0].message, "not synchronised: server reports it is unsynchronised");
}

#[test]
fn silent_upstream_with_dependents_is_a_warning() {
    let mut o = healthy();
    o[0] = Observation {
        stratum: None,
        refid: None,
        offset: None,
        error: Some("timeout".into()),
        ..obs("127.0.8.1", 1, "")
    };
    let r = run(&o);
    assert_eq!(codes(&r), vec![("127.0.8.1", Severity::Warning, "silent")]);
    assert_eq!(
        r.findings[0].message,
        "no answer to an NTP query (timeout), though 2 server(s) synchronise from it: filtered from the auditing host?"
    );
}

#[test]
fn random_fleets_never_panic() {
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let refids = ["GPS", "LOCL", "INIT", "\\x7f\\x7f\\x01\\x01", "", "\\xZZ", "TOOLONG5", "2001:db8::1"];
    for _ in 0..500 {
        let n = (next() % 8) as usize + 1;
        let mut fleet = Vec::new();
        for i in 0..n {
            let r = next();
            let refid = if r % 3 == 0 {
                refids[(r >> 8) as usize % refids.len()].to_string()
            } else {
                format!("127.0.9.{}", (r >> 16) % 10)
            };
            let mut o = obs(&format!("127.0.9.{i}"), ((r >> 24) % 18) as u8, &refid);
            if r % 7 == 0 {
                o.error = Some(format!("kod:{}", refids[(r >> 32) as usize % refids.len()]));
            }
            if r % 11 == 0 {
                o.leap = Some(3);
            }
            o.offset = Some(((r >> 40) % 200) as f64 - 100.0);
            fleet.push(o);
        }
        let r = audit(&fleet, &[], &["2001:db8::1".parse().unwrap()], &FleetParams::default());
        let _ = to_dot(&r);
        let _ = unvisited_upstreams(&fleet);
    }
}
