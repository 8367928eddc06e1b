//! `timeaudit simulate` and `timeaudit classify` through the real binary: ground truth in,
//! verdicts out; per-name agreement on a hand-made round-robin name; malformed input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_timeaudit"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("timeaudit-it-classify-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("running timeaudit")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn simulate(dir: &Path, extra: &[&str]) -> PathBuf {
    let out = dir.join("sim.csv");
    let mut args = vec!["simulate", "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    stdout(&run(&args));
    out
}

#[test]
fn classify_recovers_simulated_truth_at_200_points() {
    let dir = tmp("truth");
    let csv = simulate(&dir, &["--per-class", "2", "-n", "200", "--seed", "11"]);
    let text = stdout(&run(&["classify", "--input", csv.to_str().unwrap(), "--format", "csv"]));
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let h = rdr.headers().unwrap().clone();
    let ci = h.iter().position(|c| c == "class").unwrap();
    let ti = h.iter().position(|c| c == "truth").unwrap();
    let ni = h.iter().position(|c| c == "n").unwrap();
    let fi = h.iter().position(|c| c == "failed").unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    // 8 classes x 2 series x 2 methods.
    assert_eq!(rows.len(), 32);
    for r in &rows {
        assert_eq!(r[ci].to_string(), r[ti].to_string(), "{r:?}");
        let n: usize = r[ni].parse().unwrap();
        let failed: usize = r[fi].parse().unwrap();
        assert_eq!(n + failed, 200, "{r:?}");
    }
}

#[test]
fn simulate_is_deterministic_and_writes_every_probe() {
    let a = tmp("det-a");
    let b = tmp("det-b");
    let fa =
        simulate(&a, &["--per-class", "1", "-n", "30", "--seed", "5", "--classes", "ok,stuck", "--methods", "ntp"]);
    let fb =
        simulate(&b, &["--per-class", "1", "-n", "30", "--seed", "5", "--classes", "ok,stuck", "--methods", "ntp"]);
    let (ta, tb) = (std::fs::read_to_string(fa).unwrap(), std::fs::read_to_string(fb).unwrap());
    assert_eq!(ta, tb);
    // Header plus 2 series x 30 probes.
    assert_eq!(ta.lines().count(), 61);
    assert!(ta.lines().next().unwrap().ends_with(",truth"));
}

/// Writes a CSV of HTTP readings for the given (target, address, offset) at 10-minute steps.
fn handmade(dir: &Path, series: &[(&str, &str, f64)], n: usize) -> PathBuf {
    let mut s = String::from("target,address,method,t_send,t_recv,offset_lo,offset_hi\n");
    for &(target, addr, off) in series {
        for i in 0..n {
            let t0 = 1.7e9 + i as f64 * 600.0 + (i as f64 * 0.618).fract();
            let t1 = t0 + 0.08;
            let d = (t0 + 0.04 + off).floor();
            s += &format!("{target},{addr},http,{t0},{t1},{},{}\n", d - t1, d + 1.0 - t0);
        }
    }
    let p = dir.join("hand.csv");
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn addresses_of_one_name_agree_or_not() {
    let dir = tmp("names");
    // The seed's example: three addresses of one name all 21:57:13 behind; and a second name
    // whose two addresses differ by 40 s.
    let off = -(21.0 * 3600.0 + 57.0 * 60.0 + 13.0);
    let p = handmade(
        &dir,
        &[
            ("www.example.test", "192.0.2.10", off),
            ("www.example.test", "192.0.2.11", off),
            ("www.example.test", "192.0.2.12", off),
            ("rr.example.test", "192.0.2.20", 3.0),
            ("rr.example.test", "192.0.2.21", 43.0),
        ],
        24,
    );
    let text = stdout(&run(&["classify", "--input", p.to_str().unwrap(), "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let series = v["series"].as_array().unwrap();
    assert_eq!(series.len(), 5);
    for s in series {
        assert_eq!(s["class"], "offset", "{s}");
        assert_eq!(s["n"], 24);
    }
    let www = series.iter().find(|s| s["address"] == "192.0.2.10").unwrap();
    assert!((www["offset_s"].as_f64().unwrap() - off).abs() < 0.1, "{www}");
    let names = v["names"].as_array().unwrap();
    let rr = names.iter().find(|n| n["target"] == "rr.example.test").unwrap();
    assert_eq!(rr["clocks"], 2);
    assert_eq!(rr["agree"], false);
    assert!((rr["spread_s"].as_f64().unwrap() - 40.0).abs() < 0.2, "{rr}");
    let w = names.iter().find(|n| n["target"] == "www.example.test").unwrap();
    assert_eq!(w["clocks"], 1);
    assert_eq!(w["addresses"], 3);
    assert_eq!(w["agree"], true);
    assert!(w["spread_s"].as_f64().unwrap() < 0.2, "{w}");
}

#[test]
fn parameters_from_flags_and_file() {
    let dir = tmp("params");
    let p = handmade(&dir, &[("a.test", "192.0.2.1", 2.0)], 20);
    let input = p.to_str().unwrap();
    let class = |extra: &[&str]| -> String {
        let mut args = vec!["classify", "--input", input, "--format", "json"];
        args.extend_from_slice(extra);
        let v: serde_json::Value = serde_json::from_str(&stdout(&run(&args))).unwrap();
        v["series"][0]["class"].as_str().unwrap().to_string()
    };
    assert_eq!(class(&[]), "offset");
    assert_eq!(class(&["--set", "ok_max_offset_s=5"]), "ok");
    let cfg = dir.join("p.json");
    std::fs::write(&cfg, r#"{"ok_max_offset_s": 3.0}"#).unwrap();
    assert_eq!(class(&["--params", cfg.to_str().unwrap()]), "ok");
    // --set wins over the file.
    assert_eq!(class(&["--params", cfg.to_str().unwrap(), "--set", "ok_max_offset_s=0.1"]), "offset");
    let bad = run(&["classify", "--input", input, "--set", "no_such_param=1"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown classifier parameter \"no_such_param\""));
    let bad = run(&["classify", "--input", input, "--set", "min_inlier_frac=2"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("min_inlier_frac = 2 is invalid"));
}

#[test]
fn malformed_csv_names_file_line_and_column() {
    let dir = tmp("bad");
    let p = dir.join("bad.csv");
    std::fs::write(&p, "target,address,method,t_send,t_recv,offset_lo,offset_hi\na,1.2.3.4,ntp,1,1.1,0,0.1\na,1.2.3.4,ntp,zz,1.1,0,0.1\n").unwrap();
    let o = run(&["classify", "--input", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{}: line 3: column t_send: \"zz\" is not a finite number", p.display())), "{err}");

    std::fs::write(&p, "target,address,method,t_send\na,1.2.3.4,ntp,1\n").unwrap();
    let err = String::from_utf8_lossy(&run(&["classify", "--input", p.to_str().unwrap()]).stderr).to_string();
    assert!(err.contains("line 1: missing column(s) t_recv, offset_lo, offset_hi"), "{err}");

    std::fs::write(&p, "target,address,method,t_send,t_recv,offset_lo,offset_hi\na,1.2.3.4,smtp,1,1.1,0,0.1\n")
        .unwrap();
    let err = String::from_utf8_lossy(&run(&["classify", "--input", p.to_str().unwrap()]).stderr).to_string();
    assert!(err.contains("line 2: column method: unknown method \"smtp\""), "{err}");

    let err = String::from_utf8_lossy(&run(&["classify", "--input", dir.join("absent.csv").to_str().unwrap()]).stderr)
        .to_string();
    assert!(err.contains("absent.csv"), "{err}");
}

#[test]
fn failed_probes_only_is_unreachable() {
    let dir = tmp("unreach");
    let p = dir.join("u.csv");
    let mut s = String::from("target,address,method,t_send,t_recv,offset_lo,offset_hi,error\n");
    for i in 0..5 {
        s += &format!(
            "gone.test,192.0.2.9,ntp,{},{},,,timeout\n",
            1.7e9 + i as f64 * 60.0,
            1.7e9 + i as f64 * 60.0 + 2.0
        );
    }
    std::fs::write(&p, s).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&run(&["classify", "--input", p.to_str().unwrap(), "--format", "json"]))).unwrap();
    assert_eq!(v["series"][0]["class"], "unreachable");
    assert_eq!(v["series"][0]["failed"], 5);
    assert_eq!(v["series"][0]["n"], 0);
}

#[test]
fn db_input_is_reported_unavailable() {
    let o = run(&["classify", "--db", "/nonexistent/survey.db"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not available in this build yet"));
}

/// The end-to-end path with real servers: four chronyd on loopback under libfaketime (right,
/// 37.25 s ahead, running 1 % fast, nearly stopped), probed once a second by separate
/// `timeaudit probe` runs (as cron would), the answers exported as CSV, then classified.
#[test]
fn probe_history_of_faked_chronyd_servers_is_classified() {
    use crate::support::chrony::Chrony;
    use crate::support::{json_lines, net, timeaudit};
    let (addrs, port) = net::endpoints(4, false);
    let specs = ["+0", "+37.25", "+5 x1.01", "@2020-01-01 00:00:00 x0.001"];
    let servers: Vec<Chrony> = addrs.iter().zip(specs).map(|(a, s)| Chrony::start(*a, port, s)).collect();
    let urls: Vec<String> = servers.iter().map(Chrony::url).collect();
    let mut csv = String::from("target,address,method,t_send,t_recv,offset,offset_lo,offset_hi,delay,error\n");
    let num = |v: &serde_json::Value| v.as_f64().map_or(String::new(), |x| x.to_string());
    let probes = 12;
    for k in 0..probes {
        let mut args = vec!["probe", "--format", "json", "--timeout", "1", "--interval", "0.1"];
        args.extend(urls.iter().map(String::as_str));
        let out = timeaudit(&args);
        let rows = json_lines(&out.stdout);
        assert_eq!(rows.len(), 4, "probe run {k}: {}", String::from_utf8_lossy(&out.stderr));
        for r in rows {
            csv += &format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                r["target"].as_str().unwrap(),
                r["address"].as_str().unwrap(),
                r["method"].as_str().unwrap(),
                num(&r["t_send"]),
                num(&r["t_recv"]),
                num(&r["offset"]),
                num(&r["offset_lo"]),
                num(&r["offset_hi"]),
                num(&r["delay"]),
                r["error"].as_str().unwrap_or("")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(700));
    }
    let dir = tmp("e2e");
    let input = dir.join("history.csv");
    std::fs::write(&input, &csv).unwrap();
    let out = stdout(&run(&["classify", "--input", input.to_str().unwrap(), "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let by_addr = |a: &std::net::Ipv4Addr| -> serde_json::Value {
        v["series"].as_array().unwrap().iter().find(|s| s["address"] == a.to_string()).cloned().unwrap()
    };
    let right = by_addr(&addrs[0]);
    assert_eq!(right["class"], "ok", "{right}\n{csv}");
    assert_eq!(right["n"], probes);
    let ahead = by_addr(&addrs[1]);
    assert_eq!(ahead["class"], "offset", "{ahead}");
    // FAKETIME +37.25: chronyd's offsets of seconds are exact to ~30 µs.
    assert!((ahead["offset_s"].as_f64().unwrap() - 37.25).abs() < 0.003, "{ahead}");
    let fast = by_addr(&addrs[2]);
    assert_eq!(fast["class"], "drifting", "{fast}");
    // x1.01: the clock gains 10,000 ppm.
    assert!((fast["rate_ppm"].as_f64().unwrap() - 10_000.0).abs() < 500.0, "{fast}");
    let stopped = by_addr(&addrs[3]);
    assert_eq!(stopped["class"], "stuck", "{stopped}");
    // x0.001: rate 0.001, i.e. -999,000 ppm.
    assert!((stopped["rate_ppm"].as_f64().unwrap() + 999_000.0).abs() < 5_000.0, "{stopped}");
}
