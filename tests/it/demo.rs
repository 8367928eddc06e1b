//! `timeaudit demo`: finishes in under two minutes and classifies every lab server as built.

use std::process::Command;
use std::time::Instant;

#[test]
fn demo_classifies_each_lab_server_as_its_class() {
    let dir = crate::support::TestDir::new("demo");
    let out = dir.path();
    let started = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_timeaudit"))
        .args(["demo", "--base-addr", "127.0.0.120", "--out"])
        .arg(out)
        .output()
        .unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(elapsed < 120.0, "demo took {elapsed:.1} s");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let lab = json["lab"].as_array().unwrap();
    let classes: Vec<(&str, &str)> =
        lab.iter().map(|l| (l["expected_class"].as_str().unwrap(), l["found_class"].as_str().unwrap())).collect();
    assert_eq!(
        classes,
        [
            ("ok", "ok"),
            ("offset", "offset"),
            ("drifting", "drifting"),
            ("stuck", "stuck"),
            ("resetting", "resetting"),
            ("random", "random"),
            ("load_balanced", "load_balanced"),
            ("unreachable", "unreachable"),
        ]
    );
    // The load-balanced name lists all eight addresses.
    let names = json["survey"]["load_balanced"].as_array().unwrap();
    assert!(names.iter().all(|n| n["backends"].as_array().unwrap().len() == 8));
    // One observation per address, method and one-second round.
    let n = json["survey"]["observations"].as_u64().unwrap();
    assert_eq!(n % 16, 0, "{n} observations");
    assert!((55 * 16..=61 * 16).contains(&n), "{n} observations in 60 s");
    // The shipped sample capture is analysed: its generator's totals.
    assert_eq!(json["capture"]["totals"]["unique_clients"], 400);
    assert_eq!(json["capture"]["totals"]["requests"], 12074);
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    let ids: Vec<String> = super::report::plot_figures(&html).into_iter().map(|f| f.0).collect();
    for id in ["offset-cdf", "class-drifting-1", "class-resetting-1", "traffic-cdf", "polling-scatter", "rate-band"] {
        assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
    }
    assert!(out.join("index.html").exists() && out.join("report.md").exists() && out.join("observations.csv").exists());
    // The survey went through the store: `timeaudit report --db` on it gives the same tables.
    let again = out.join("again");
    let o = Command::new(env!("CARGO_BIN_EXE_timeaudit"))
        .args(["report", "--db"])
        .arg(out.join("survey.sqlite"))
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(again.join("report.json")).unwrap()).unwrap();
    assert_eq!(j2["survey"]["bands"], json["survey"]["bands"]);
    assert_eq!(j2["survey"]["by_class"], json["survey"]["by_class"]);
}
