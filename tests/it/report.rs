//! `timeaudit report`: report.json (golden, plus figures recomputed here from the CSV), the HTML
//! (every plot present and drawn, nothing external), the Markdown, and a render in headless
//! Chromium.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{TestDir, require_program};

const DATASET: &str = "datasets/survey/lab-demo-60s.csv";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_report(out: &Path) -> serde_json::Value {
    let st = Command::new(env!("CARGO_BIN_EXE_timeaudit"))
        .args(["report", "--input"])
        .arg(repo().join(DATASET))
        .arg("--out")
        .arg(out)
        .args(["--title", "lab dataset"])
        .status()
        .unwrap();
    assert!(st.success());
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

#[test]
fn report_json_matches_the_dataset_and_the_golden_file() {
    let dir = TestDir::new("report-json");
    let out = dir.path();
    let json = run_report(out);
    let s = &json["survey"];

    // Recompute the headline figures straight from the CSV.
    let mut rdr = csv::Reader::from_path(repo().join(DATASET)).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (ti, ai, mi, oi) = (col("target"), col("address"), col("method"), col("offset"));
    let (mut rows, mut targets, mut addrs, mut answered) = (0, BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut latest: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    for r in rdr.records() {
        let r = r.unwrap();
        rows += 1;
        // Every target of the dataset is `scheme://all.lab.test:PORT[/]`.
        let host = r[ti].split("://").nth(1).unwrap().split([':', '/']).next().unwrap().to_string();
        targets.insert(host.clone());
        addrs.insert((host.clone(), r[ai].to_string()));
        if !r[oi].is_empty() {
            answered.insert((host, r[ai].to_string()));
            latest.insert((r[ti].to_string(), r[ai].to_string(), r[mi].to_string()), r[oi].parse().unwrap());
        }
    }
    assert_eq!(s["observations"], rows);
    assert_eq!(s["hosts"], targets.len());
    assert_eq!(s["addresses"], addrs.len());
    assert_eq!(s["addresses_answered"], answered.len());
    // Bands of |latest offset| for NTP: <1 s, 1–59 s, 1 min–1 h, ...
    let mut bands = [0usize; 6];
    for ((_, _, m), off) in &latest {
        if m == "ntp" {
            let a = off.abs();
            let i = [1.0, 60.0, 3600.0, 86_400.0, 2_592_000.0].iter().position(|b| a < *b).unwrap_or(5);
            bands[i] += 1;
        }
    }
    let ntp_band = s["bands"].as_array().unwrap().iter().find(|b| b["method"] == "ntp").unwrap();
    assert_eq!(ntp_band["counts"], serde_json::json!(bands));

    // Every lab server's NTP series gets the class its clock was built with.
    let expected = [
        ("127.0.0.91", "ok"),
        ("127.0.0.92", "offset"),
        ("127.0.0.93", "drifting"),
        ("127.0.0.94", "stuck"),
        ("127.0.0.95", "resetting"),
        ("127.0.0.96", "random"),
        ("127.0.0.97", "load_balanced"),
        ("127.0.0.98", "unreachable"),
    ];
    for (addr, class) in expected {
        let found =
            s["series"].as_array().unwrap().iter().find(|x| x["address"] == addr && x["method"] == "ntp").unwrap();
        assert_eq!(found["class"], class, "{addr}");
    }

    // Golden file of the whole report, plotted points summarised by their count.
    let mut golden = json.clone();
    if let Some(plots) = golden["survey"]["plots"].as_object_mut() {
        for list in plots.values_mut() {
            for p in list.as_array_mut().unwrap() {
                let n = p["points"].as_array().map_or(0, |v| v.len());
                p["points"] = serde_json::json!(n);
            }
        }
    }
    golden["sources"] = serde_json::json!(["<dataset>"]);
    // Fitted parameters are compared to 6 significant digits: the golden file pins the report's
    // facts, not the last bits of a numerical fit.
    round_floats(&mut golden, 6);
    insta::assert_json_snapshot!("report_lab_dataset", golden);
}

/// The `<figure class="plot">` elements of a page: (id, inner SVG).
pub fn plot_figures(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<figure class=\"plot\" id=\"") {
        rest = &rest[i + 25..];
        let id_end = rest.find('"').unwrap();
        let id = rest[..id_end].to_string();
        let end = rest.find("</figure>").expect("figure closed");
        let body = &rest[..end];
        let svg_start = body.find("<svg").expect("figure holds an svg");
        let svg_end = body.rfind("</svg>").expect("svg closed") + 6;
        out.push((id, body[svg_start..svg_end].to_string()));
        rest = &rest[end..];
    }
    out
}

#[test]
fn report_html_has_every_plot_drawn_and_nothing_external() {
    let dir = TestDir::new("report-html");
    let out = dir.path();
    let json = run_report(out);
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();

    let mut want = vec!["offset-cdf".to_string()];
    for (class, list) in json["survey"]["plots"].as_object().unwrap() {
        for i in 0..list.as_array().unwrap().len() {
            want.push(format!("class-{class}-{}", i + 1));
        }
    }
    let figs = plot_figures(&html);
    let ids: Vec<String> = figs.iter().map(|f| f.0.clone()).collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>(), want.iter().collect::<BTreeSet<_>>());
    assert!(figs.len() >= 9, "one CDF and a plot per class present: {ids:?}");

    for (id, svg) in &figs {
        // Each plot has its title, its axis labels with units, and drawn data.
        assert!(svg.contains("<text"), "{id}: no text");
        let shapes = svg.matches("<circle").count() + svg.matches("<polyline").count() + svg.matches("<path").count();
        if id == "offset-cdf" {
            assert!(svg.contains("|offset| (s, log scale)") && svg.contains("share of series"), "{id}: axis labels");
        } else {
            assert!(svg.contains("offset (s)") && svg.contains("time since first probe (s)"), "{id}: axis labels");
            let class = id.trim_start_matches("class-").rsplit_once('-').unwrap().0;
            let plot = &json["survey"]["plots"][class][0];
            let points = plot["points"].as_array().unwrap().len();
            assert!(svg.contains(&format!("— {class}")), "{id}: title names the class");
            // One bar and one midpoint dot per interval.
            assert!(svg.matches("<circle").count() >= points, "{id}: {points} midpoints expected");
        }
        assert!(shapes > 10, "{id}: only {shapes} shapes");
    }
    // Self-contained: no scripts, no links, no external resources.
    for bad in ["<script", "src=", "href=", "<link", "@import", "url("] {
        assert!(!html.contains(bad), "index.html contains {bad}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let n = json["survey"]["observations"].as_u64().unwrap();
    assert!(md.contains(&format!(
        "| {} | {} | {} |",
        json["survey"]["hosts"], json["survey"]["addresses"], json["survey"]["addresses_answered"]
    )));
    assert!(md.contains(&format!("| {n} |")), "observations in the Markdown totals");
}

/// Path of the Chromium executable (Debian package chromium), or a failure naming how to install it.
pub fn chromium() -> PathBuf {
    require_program("chromium")
}

/// Renders `html` in headless Chromium to a PNG; returns (width, height, RGBA pixels, stderr).
pub fn render_png(html: &Path, png: &Path, profile: &Path) -> (u32, u32, Vec<u8>, String) {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1000,3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "chromium failed: {stderr}");
    let decoder = png::Decoder::new(std::fs::File::open(png).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let rgba: Vec<u8> = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf.chunks(3).flat_map(|c| [c[0], c[1], c[2], 255]).collect(),
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    (info.width, info.height, rgba, stderr)
}

#[test]
fn report_renders_in_headless_chromium() {
    let dir = TestDir::new("report-chromium");
    let out = dir.path();
    run_report(out);
    let (w, h, px, stderr) = render_png(&out.join("index.html"), &out.join("page.png"), &out.join("profile"));
    for line in stderr.lines() {
        assert!(!line.contains(":CONSOLE("), "console message: {line}");
        assert!(!line.contains("Failed to load resource"), "{line}");
    }
    assert_eq!((w, h), (1000, 3000));
    // Not blank: a real share of dark (text, axes) and coloured (data) pixels, spread down the page.
    let dark_rows = (0..h)
        .filter(|y| {
            (0..w).any(|x| {
                let i = ((y * w + x) * 4) as usize;
                px[i] < 80 && px[i + 1] < 80 && px[i + 2] < 80
            })
        })
        .count();
    let blue = px.chunks(4).filter(|p| p[2] > 150 && p[0] < 80 && p[1] > 90 && p[1] < 150).count();
    assert!(dark_rows > (h as usize) / 4, "only {dark_rows} rows with text or lines");
    assert!(blue > 1000, "only {blue} pixels of the data colour: plots not drawn?");
}

#[test]
fn report_rejects_bad_input_naming_the_file() {
    let dir = TestDir::new("report-bad");
    let out = dir.path();
    let bad = out.join("bad.csv");
    std::fs::write(
        &bad,
        "target,address,method,t_send,t_recv,offset,offset_lo,offset_hi,delay,error\nx,1.2.3.4,ntp,abc,1,,,,,\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_timeaudit"))
        .args(["report", "--input"])
        .arg(&bad)
        .arg("--out")
        .arg(out.join("r"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.csv: bad observation on data row 1"), "{err}");
}

#[test]
fn datasets_match_their_manifest_checksums() {
    let o = Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(repo().join("datasets"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let manifest = std::fs::read_to_string(repo().join("datasets/MANIFEST.md")).unwrap();
    let sums = std::fs::read_to_string(repo().join("datasets/SHA256SUMS")).unwrap();
    for line in sums.lines() {
        let file = line.split_whitespace().nth(1).unwrap();
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        assert!(manifest.contains(name), "{file} is not described in MANIFEST.md");
    }
}

/// (frames, frame bytes) of a capture as tshark counts them.
fn tshark_totals(file: &Path) -> (u64, u64) {
    let o = Command::new(require_program("tshark"))
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-e", "frame.len"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lens: Vec<u64> = String::from_utf8_lossy(&o.stdout).lines().map(|l| l.trim().parse().unwrap()).collect();
    (lens.len() as u64, lens.iter().sum())
}

#[test]
fn report_capture_part_matches_tshark_and_draws_its_plots() {
    let dir = TestDir::new("report-capture");
    let out = dir.path();
    let real = repo().join("datasets/pcaps/zeek-ntp.pcap");
    let synth = repo().join("datasets/pcaps/synthetic-server-400-clients.pcap.gz");
    for (file, name) in [(&real, "real"), (&synth, "synth")] {
        let st = Command::new(env!("CARGO_BIN_EXE_timeaudit"))
            .args(["report", "--pcap"])
            .arg(file)
            .arg("--out")
            .arg(out.join(name))
            .status()
            .unwrap();
        assert!(st.success());
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(name).join("report.json")).unwrap()).unwrap();
        let t = &json["capture"]["totals"];
        let (frames, bytes) = tshark_totals(file);
        assert_eq!((t["packets"].as_u64().unwrap(), t["bytes"].as_u64().unwrap()), (frames, bytes), "{name}");
        let html = std::fs::read_to_string(out.join(name).join("index.html")).unwrap();
        let ids: Vec<String> = plot_figures(&html).into_iter().map(|f| f.0).collect();
        if name == "synth" {
            // The generator's own totals (pcap-synth prints them): 400 clients, 12074 requests,
            // 2085 KoD RATE, 21 monlist responses.
            assert_eq!(t["unique_clients"], 400);
            assert_eq!(t["requests"], 12074);
            assert_eq!(t["kod"]["RATE"], 2085);
            let kinds: Vec<&str> =
                json["capture"]["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
            assert_eq!(kinds, ["mode6", "mode7", "monlist", "kod:RATE"]);
            assert_eq!(ids, ["traffic-cdf", "polling-scatter", "rate-band"]);
            let md = std::fs::read_to_string(out.join(name).join("report.md")).unwrap();
            assert!(md.contains("| 10.0.0.157 | 4368 |"), "busiest client in the Markdown");
        }
    }
}

#[test]
fn report_includes_fleet_audit_findings() {
    let dir = TestDir::new("report-audit");
    let out = dir.path();
    // The shape of `timeaudit audit --format json`: fleet findings with evidence, config findings.
    let audit = serde_json::json!({
        "servers": [],
        "findings": [
            {"severity": "warning", "code": "single_upstream", "server": "10.0.0.2", "message": "only one upstream",
             "evidence": {"upstream": "10.0.0.1"}},
            {"severity": "error", "code": "loop", "server": "10.0.0.3", "message": "sync loop", "evidence": {}}
        ],
        "config_findings": [
            {"severity": "warning", "code": "few_sources", "file": "chrony.conf", "line": 3,
             "message": "one server", "fix": "add servers"}
        ]
    });
    std::fs::write(out.join("audit.json"), audit.to_string()).unwrap();
    let st = Command::new(env!("CARGO_BIN_EXE_timeaudit"))
        .args(["report", "--audit"])
        .arg(out.join("audit.json"))
        .arg("--out")
        .arg(out.join("r"))
        .status()
        .unwrap();
    assert!(st.success());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("r/report.json")).unwrap()).unwrap();
    assert_eq!(
        json["audit"],
        serde_json::json!([
            {"severity": "warning", "code": "single_upstream", "subject": "10.0.0.2", "message": "only one upstream [upstream=10.0.0.1]"},
            {"severity": "error", "code": "loop", "subject": "10.0.0.3", "message": "sync loop"},
            {"severity": "warning", "code": "few_sources", "subject": "chrony.conf:3", "message": "one server — fix: add servers"}
        ])
    );
    let md = std::fs::read_to_string(out.join("r/report.md")).unwrap();
    assert!(md.contains("## Fleet audit") && md.contains("| error | loop | 10.0.0.3 | sync loop |"), "{md}");
    let html = std::fs::read_to_string(out.join("r/index.html")).unwrap();
    assert!(html.contains("<h2>Fleet audit</h2>"));
}

/// Rounds every non-integer number in `value` to `digits` significant digits.
fn round_floats(value: &mut serde_json::Value, digits: i32) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap();
            if x != 0.0 && x.is_finite() {
                let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
                *value = serde_json::json!((x * scale).round() / scale);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| round_floats(v, digits)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| round_floats(v, digits)),
        _ => {}
    }
}
