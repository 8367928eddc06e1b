//! `timeaudit probe` against real chronyd servers whose clocks libfaketime bends, a DNS name
//! with several addresses, and misbehaving responders.

use crate::support::chrony::Chrony;
use crate::support::dns::Dns;
use crate::support::ntp_responder::{Behaviour, Responder};
use crate::support::{json_lines, net, timeaudit};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Tolerance on a measured offset against the value computed from FAKETIME (loopback delays
/// are ~0.1 ms; chronyd's own timestamping adds some tens of µs).
const OFFSET_TOLERANCE: f64 = 0.003;

fn probe_json(args: &[&str]) -> (Vec<serde_json::Value>, i32) {
    let out = timeaudit(&[&["probe", "--format", "json", "--interval", "0.1", "--timeout", "1"], args].concat());
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 1, "exit {code}: {}", String::from_utf8_lossy(&out.stderr));
    (json_lines(&out.stdout), code)
}

fn f(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

#[test]
fn constant_offset_plus_37_25_s() {
    let (addrs, port) = net::endpoints(1, false);
    let chrony = Chrony::start(addrs[0], port, "+37.25");
    let (rows, code) = probe_json(&[&chrony.url()]);
    assert_eq!(code, 0);
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["error"], serde_json::Value::Null, "{r}");
    assert_eq!(r["address"], addrs[0].to_string());
    assert_eq!(r["method"], "ntp");
    assert_eq!(r["stratum"], 3);
    assert_eq!(r["samples"], 4);
    assert!((f(r, "offset") - 37.25).abs() < OFFSET_TOLERANCE, "{r}");
    assert!(f(r, "offset_lo") <= f(r, "offset") && f(r, "offset") <= f(r, "offset_hi"));
}

/// Runs `timeaudit probe` on one chronyd and checks the offset against `expected(t)`, where `t`
/// is the real time of the kept exchange's midpoint and `t0` libfaketime's start.
fn check_chrony(faketime: &str, expected: impl Fn(f64, f64) -> f64) {
    let (addrs, port) = net::endpoints(1, false);
    let chrony = Chrony::start(addrs[0], port, faketime);
    let (rows, code) = probe_json(&[&chrony.url()]);
    assert_eq!((code, rows.len()), (0, 1), "{rows:?}");
    let r = &rows[0];
    assert_eq!(r["error"], serde_json::Value::Null, "{r}");
    let t = (f(r, "t_send") + f(r, "t_recv")) / 2.0;
    // libfaketime started somewhere between the spawn and the first answer: the expected value
    // is bracketed by those two starts.
    let (a, b) = (expected(t, chrony.spawned_at), expected(t, chrony.ready_at));
    let (lo, hi) = (a.min(b) - OFFSET_TOLERANCE, a.max(b) + OFFSET_TOLERANCE);
    let offset = f(r, "offset");
    assert!(lo <= offset && offset <= hi, "FAKETIME {faketime:?}: offset {offset} not in [{lo}, {hi}]: {r}");
}

#[test]
fn constant_offset_minus_3_hours() {
    check_chrony("-10800", |_, _| -10800.0);
}

#[test]
fn clock_running_1000_ppm_fast() {
    // chronyd under libfaketime halves sub-second offsets, so the drift rides on +5 s.
    const RATE: f64 = 1.001;
    check_chrony("+5 x1.001", |t, t0| 5.0 + (t - t0) * (RATE - 1.0));
}

#[test]
fn clock_running_1000_ppm_fast_gains_a_millisecond_per_second() {
    let (addrs, port) = net::endpoints(1, false);
    let chrony = Chrony::start(addrs[0], port, "+5 x1.001");
    let (first, _) = probe_json(&["--samples", "2", &chrony.url()]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (second, _) = probe_json(&["--samples", "2", &chrony.url()]);
    let (a, b) = (&first[0], &second[0]);
    let elapsed = f(b, "t_send") - f(a, "t_send");
    let gained = f(b, "offset") - f(a, "offset");
    let expected = elapsed * 0.001;
    assert!((gained - expected).abs() < 0.0005, "gained {gained} s in {elapsed} s, expected {expected}");
}

#[test]
fn nearly_stopped_clock() {
    // 2020-01-01T00:00:00Z, advancing at 1/1000 of real time.
    const START: f64 = 1_577_836_800.0;
    check_chrony("@2020-01-01 00:00:00 x0.001", |t, t0| START + (t - t0) * 0.001 - t);
}

#[test]
fn every_address_of_a_name_is_probed() {
    let (addrs, port) = net::endpoints(3, false);
    let offsets = [10.0, -20.0, 3600.0];
    let servers: Vec<Chrony> =
        addrs.iter().zip(offsets).map(|(&a, o)| Chrony::start(a, port, &format!("{o:+}"))).collect();
    let records: Vec<(&str, IpAddr)> = addrs.iter().map(|&a| ("multi.ntp.test", IpAddr::V4(a))).collect();
    let dns = Dns::start(&records);
    let resolver = dns.addr.to_string();
    let target = format!("ntp://multi.ntp.test:{port}");
    let (rows, code) = probe_json(&["--resolver", &resolver, &target, "ntp://missing.ntp.test"]);
    assert_eq!(code, 1, "the unresolvable name makes the run incomplete");
    assert_eq!(rows.len(), 4, "{rows:?}");
    let mut seen: Vec<(String, f64)> = rows[..3]
        .iter()
        .map(|r| {
            assert_eq!(r["target"], target.as_str());
            assert_eq!(r["error"], serde_json::Value::Null, "{r}");
            (r["address"].as_str().unwrap_or_default().to_string(), f(r, "offset"))
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want: Vec<(String, f64)> = addrs.iter().map(|a| a.to_string()).zip(offsets).collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    for ((addr, got), (want_addr, want_offset)) in seen.iter().zip(&want) {
        assert_eq!(addr, want_addr);
        assert!((got - want_offset).abs() < OFFSET_TOLERANCE, "{addr}: {got} vs {want_offset}");
    }
    let missing = &rows[3];
    assert_eq!(missing["target"], "ntp://missing.ntp.test");
    assert_eq!(missing["error"], "dns");
    assert_eq!(missing["address"], "");
    assert_eq!(missing["offset"], serde_json::Value::Null);
    drop(servers);
}

#[test]
fn misbehaving_servers_get_their_error_kind_and_others_are_still_measured() {
    let (addrs, port) = net::endpoints(1, false);
    let chrony = Chrony::start(addrs[0], port, "+2.5");
    let cases = [
        (Behaviour::Garbage, "bad_reply", 2),
        (Behaviour::WrongOrigin, "bad_origin", 2),
        (Behaviour::Kod(*b"RATE"), "kod:RATE", 1),
        (Behaviour::Kod(*b"DENY"), "kod:DENY", 1),
        (Behaviour::Kod(*b"RSTR"), "kod:RSTR", 1),
        (Behaviour::Silence, "timeout", 2),
    ];
    let responders: Vec<Responder> = cases.iter().map(|c| Responder::start(c.0)).collect();
    let sub_second = Responder::start(Behaviour::Offset(0.4));
    let unsynced = Responder::start(Behaviour::Unsynchronized(-0.75));
    let mut targets: Vec<String> = responders.iter().map(Responder::url).collect();
    targets.extend([chrony.url(), sub_second.url(), unsynced.url()]);
    let mut args = vec!["--samples", "2"];
    args.extend(targets.iter().map(String::as_str));
    let (rows, code) = probe_json(&args);
    assert_eq!(code, 1);
    assert_eq!(rows.len(), targets.len());
    for ((row, (_, kind, queries)), responder) in rows.iter().zip(&cases).zip(&responders) {
        assert_eq!(row["error"], *kind, "{row}");
        assert_eq!(row["offset"], serde_json::Value::Null, "{row}");
        assert_eq!(row["samples"], *queries, "{row}");
        assert_eq!(responder.queries(), *queries, "queries received by the {kind} responder");
    }
    let n = cases.len();
    assert_eq!(rows[n]["error"], serde_json::Value::Null);
    assert!((f(&rows[n], "offset") - 2.5).abs() < OFFSET_TOLERANCE, "{}", rows[n]);
    assert_eq!(rows[n + 1]["error"], serde_json::Value::Null);
    assert_eq!(rows[n + 1]["refid"], "192.0.2.1");
    assert!((f(&rows[n + 1], "offset") - 0.4).abs() < OFFSET_TOLERANCE, "{}", rows[n + 1]);
    // Unsynchronised: flagged, and the measured values are kept.
    assert_eq!(rows[n + 2]["error"], "unsynchronized");
    assert_eq!((rows[n + 2]["leap"].as_u64(), rows[n + 2]["stratum"].as_u64()), (Some(3), Some(16)));
    assert!((f(&rows[n + 2], "offset") + 0.75).abs() < OFFSET_TOLERANCE, "{}", rows[n + 2]);
}

#[test]
fn rsntp_agrees_with_timeaudit_on_the_same_chronyd() {
    let (addrs, port) = net::endpoints(1, false);
    let chrony = Chrony::start(addrs[0], port, "-42.5");
    let (rows, _) = probe_json(&["--samples", "1", &chrony.url()]);
    let ours = f(&rows[0], "offset");
    let mut client = rsntp::SntpClient::new();
    client.set_timeout(std::time::Duration::from_secs(2));
    let theirs = client
        .synchronize(chrony.addr.to_string())
        .unwrap_or_else(|e| panic!("rsntp against {}: {e}", chrony.addr))
        .clock_offset()
        .as_secs_f64();
    // Both measure the same clock; rsntp timestamps after its task wakes (ms-level error).
    assert!((ours - theirs).abs() < 0.005, "timeaudit {ours} vs rsntp {theirs}");
    assert!((ours + 42.5).abs() < OFFSET_TOLERANCE);
}

#[test]
fn usage_errors_exit_2() {
    for args in [&["probe", "ftp://x"][..], &["probe", "ntp://h:99999"], &["probe", "--samples", "0", "ntp://h"]] {
        let out = timeaudit(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty());
    }
    let out = timeaudit(&["probe", "ntp://h:99999"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad port \"99999\""));
}

#[test]
fn ipv6_literal_and_aaaa_records() {
    // One name with an A and an AAAA record, a responder on each address at the same port.
    let (v4, v6) = (0..20)
        .find_map(|_| {
            let v4 = Responder::start(Behaviour::Offset(1.5));
            let v6 = Responder::start_at(
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), v4.addr.port()),
                Behaviour::Offset(-2.25),
            )?;
            Some((v4, v6))
        })
        .expect("no port free on both 127.x and ::1");
    let dns = Dns::start(&[("dual.ntp.test", v4.addr.ip()), ("dual.ntp.test", IpAddr::V6(Ipv6Addr::LOCALHOST))]);
    let port = v4.addr.port();
    let by_name = format!("ntp://dual.ntp.test:{port}");
    let literal = format!("[::1]:{port}");
    let (rows, code) =
        probe_json(&["--resolver", &dns.addr.to_string(), "--methods", "ntp", "--samples", "1", &by_name, &literal]);
    assert_eq!(code, 0, "{rows:?}");
    assert_eq!(rows.len(), 3);
    // Input order; within a name, IPv4 first.
    assert_eq!(
        (rows[0]["address"].as_str(), rows[1]["address"].as_str()),
        (Some(v4.addr.ip().to_string().as_str()), Some("::1"))
    );
    assert!((f(&rows[0], "offset") - 1.5).abs() < OFFSET_TOLERANCE);
    assert!((f(&rows[1], "offset") + 2.25).abs() < OFFSET_TOLERANCE);
    assert_eq!((rows[2]["target"].as_str(), rows[2]["address"].as_str()), (Some(literal.as_str()), Some("::1")));
    assert!((f(&rows[2], "offset") + 2.25).abs() < OFFSET_TOLERANCE);
    assert_eq!((v4.queries(), v6.queries()), (1, 2));
}
