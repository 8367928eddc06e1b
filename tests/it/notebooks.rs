//! The notebooks run headless against real data: a survey of the lab exported to Parquet (with
//! the report of the same store, which the survey notebook must agree with), and the per-client
//! Parquet tables of the shipped sample capture for the seed-003 notebook.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::{TestDir, require_program};

fn timeaudit(args: &[&str]) -> std::process::Output {
    let o = Command::new(env!("CARGO_BIN_EXE_timeaudit")).args(args).output().unwrap();
    assert!(o.status.success(), "timeaudit {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

#[test]
fn notebooks_execute_on_survey_export_and_capture_tables() {
    let python = require_program("python3");
    let probe = Command::new(&python)
        .args(["-c", "import polars, matplotlib, nbformat, nbclient, ipykernel"])
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "the notebook test needs the Python packages of notebooks/requirements.txt: run scripts/install-deps \
         (python3 -m pip install -r notebooks/requirements.txt)"
    );
    let dir = TestDir::new("notebooks");
    let d = |name: &str| dir.path().join(name).display().to_string();

    // A lab of five clocks, surveyed five times through its own DNS name.
    let mut lab = Command::new(env!("CARGO_BIN_EXE_timeaudit"))
        .args(["lab", "--format", "json", "--ntp-port", "0", "--http-port", "0", "--dns-port", "0"])
        .args(["--base-addr", "127.0.0.140", "--duration", "60"])
        .args(["--behaviours", "ok,offset=+90s,drift=+2000ppm,stuck,silent"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(lab.stdout.take().unwrap());
    let mut text = String::new();
    while !text.lines().any(|l| l.starts_with('}')) {
        assert!(out.read_line(&mut text).unwrap() > 0, "lab exited: {text}");
    }
    let listing: serde_json::Value = serde_json::from_str(&text).unwrap();
    let port = &listing["servers"][0]["ntp_port"];
    std::fs::write(d("targets.txt"), format!("ntp://all.lab.test:{port}\n")).unwrap();
    let dns = listing["dns"].as_str().unwrap();
    for _ in 0..5 {
        let st = Command::new(env!("CARGO_BIN_EXE_timeaudit"))
            .args(["survey", "--all", "--targets", &d("targets.txt"), "--db", &d("survey.sqlite")])
            .args(["--resolver", dns, "--samples", "1", "--timeout", "0.3", "--gap", "0"])
            .output()
            .unwrap();
        // Exit 1: some addresses (the silent one) did not answer.
        assert!(matches!(st.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&st.stderr));
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    lab.kill().unwrap();
    lab.wait().unwrap();
    timeaudit(&["export", "--db", &d("survey.sqlite"), "--format", "parquet", "--out", &d("survey.parquet")]);
    timeaudit(&["report", "--db", &d("survey.sqlite"), "--out", &d("report")]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report/report.json")).unwrap()).unwrap();
    assert_eq!(report["survey"]["observations"], 25, "5 addresses x 5 rounds");

    let capture = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/pcaps/synthetic-server-400-clients.pcap.gz");
    let o = Command::new(env!("CARGO_BIN_EXE_timeaudit"))
        .args(["pcap", capture, "--out-dir", &d("pcap"), "--table-format", "parquet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let run = Command::new(&python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/run-notebooks.py"))
        .arg(d("executed"))
        .env("TIMEAUDIT_SURVEY", d("survey.parquet"))
        .env("TIMEAUDIT_REPORT_JSON", d("report/report.json"))
        .env("TIMEAUDIT_PCAP_TABLES", d("pcap"))
        .env("MPLBACKEND", "Agg")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("seed-003-ntp-server-cost.ipynb: 7 code cells executed"), "{stdout}");
    assert!(stdout.contains("survey-analysis.ipynb: 10 code cells executed"), "{stdout}");
    // The survey notebook checked its bands and percentiles against report.json.
    let executed = std::fs::read_to_string(dir.path().join("executed/survey-analysis.ipynb")).unwrap();
    assert!(executed.contains("report.json agrees: 5 series, 25 observations"), "cross-check ran");
}
