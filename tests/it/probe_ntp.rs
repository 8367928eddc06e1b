//! `timeaudit probe` against real chronyd servers whose clocks libfaketime bends, a DNS name
//! with several addresses, and misbehaving responders.

use crate::support::chrony::Chrony;
use crate::support::{json_lines, net, timeaudit};

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
