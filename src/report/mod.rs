//! Report rendering: reads observations (CSV or the store), classifications and capture
//! summaries, builds the report data (`timeaudit_analysis::report`) and writes `index.html`
//! (self-contained, inline SVG), `report.md` and `report.json` into one directory.

pub mod capture;
pub mod html;
pub mod markdown;
pub mod plots;

use anyhow::Context;
use std::path::Path;
use timeaudit_analysis::observation::Observation;
use timeaudit_analysis::report::{Classification, ReportData};

/// Reads observations from a CSV file (gzip-compressed when its name ends in `.gz`) whose
/// header names [`Observation`] fields; other columns (e.g. `truth`) are ignored.
pub fn read_observations_csv(path: &Path) -> anyhow::Result<Vec<Observation>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let input: Box<dyn std::io::Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file)))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(input);
    let mut out = Vec::new();
    for (i, rec) in rdr.deserialize::<Observation>().enumerate() {
        let o = rec.with_context(|| format!("{}: bad observation on data row {}", path.display(), i + 1))?;
        out.push(o);
    }
    Ok(out)
}

/// Every observation in the survey store `db` (SQLite path or PostgreSQL URL).
pub fn read_store(db: &str) -> anyhow::Result<Vec<Observation>> {
    let mut st = crate::store::open(Some(db)).with_context(|| format!("opening the survey store {db}"))?;
    let mut out = Vec::new();
    st.for_each_observation(None, None, &mut |row| {
        out.push(row.obs);
        Ok(())
    })
    .with_context(|| format!("reading observations from {}", st.describe()))?;
    Ok(out)
}

/// Reads the findings of `timeaudit audit --format json` (its `findings` and `config_findings`).
pub fn read_audit(path: &Path) -> anyhow::Result<Vec<timeaudit_analysis::report::AuditFinding>> {
    use timeaudit_analysis::report::AuditFinding;
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON (expected timeaudit audit --format json)", path.display()))?;
    let text_of = |x: &serde_json::Value| match x {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut out = Vec::new();
    let findings = v.get("findings").and_then(|f| f.as_array());
    let configs = v.get("config_findings").and_then(|f| f.as_array());
    if findings.is_none() && configs.is_none() {
        anyhow::bail!(
            "{}: no `findings` or `config_findings` array (expected timeaudit audit --format json)",
            path.display()
        );
    }
    for f in findings.into_iter().flatten() {
        let evidence: Vec<String> = f
            .get("evidence")
            .and_then(|e| e.as_object())
            .map(|m| m.iter().map(|(k, v)| format!("{k}={}", text_of(v))).collect())
            .unwrap_or_default();
        out.push(AuditFinding {
            severity: text_of(&f["severity"]),
            code: text_of(&f["code"]),
            subject: text_of(&f["server"]),
            message: if evidence.is_empty() {
                text_of(&f["message"])
            } else {
                format!("{} [{}]", text_of(&f["message"]), evidence.join(" "))
            },
        });
    }
    for f in configs.into_iter().flatten() {
        let line = f.get("line").and_then(|l| l.as_u64()).map_or(String::new(), |l| format!(":{l}"));
        let fix = text_of(&f["fix"]);
        out.push(AuditFinding {
            severity: text_of(&f["severity"]),
            code: text_of(&f["code"]),
            subject: format!("{}{line}", text_of(&f["file"])),
            message: if fix.is_empty() {
                text_of(&f["message"])
            } else {
                format!("{} — fix: {fix}", text_of(&f["message"]))
            },
        });
    }
    Ok(out)
}

/// Reads classifications: a JSON array (or JSON lines) of [`Classification`] objects.
pub fn read_classifications(path: &Path) -> anyhow::Result<Vec<Classification>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed)
            .with_context(|| format!("{}: not a JSON array of classifications", path.display()));
    }
    trimmed
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}: line {}: not a classification", path.display(), i + 1))
        })
        .collect()
}

/// Writes `index.html`, `report.md` and `report.json` into `out` (created if missing).
pub fn write_report(data: &ReportData, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let json = serde_json::to_string_pretty(data)?;
    std::fs::write(out.join("report.json"), json + "\n")
        .with_context(|| format!("cannot write {}/report.json", out.display()))?;
    std::fs::write(out.join("report.md"), markdown::render(data))
        .with_context(|| format!("cannot write {}/report.md", out.display()))?;
    std::fs::write(out.join("index.html"), html::render(data)?)
        .with_context(|| format!("cannot write {}/index.html", out.display()))?;
    Ok(())
}

/// Formats seconds for tables: sign, three significant decimals, units that fit.
pub fn fmt_seconds(s: f64) -> String {
    let a = s.abs();
    if !s.is_finite() {
        "–".into()
    } else if a >= 86_400.0 {
        format!("{:+.2} d", s / 86_400.0)
    } else if a >= 3600.0 {
        format!("{:+.2} h", s / 3600.0)
    } else if a >= 1.0 {
        format!("{s:+.3} s")
    } else if a >= 1e-3 {
        format!("{:+.3} ms", s * 1e3)
    } else {
        format!("{:+.1} µs", s * 1e6)
    }
}

/// Formats an optional number of seconds.
pub fn fmt_opt_seconds(s: Option<f64>) -> String {
    s.map_or_else(|| "–".into(), fmt_seconds)
}

/// Formats Unix seconds as UTC `YYYY-MM-DD HH:MM:SS`.
pub fn fmt_time(unix: f64) -> String {
    let secs = unix.floor() as i64;
    let (y, m, d) = timeaudit_analysis::lab::reply::civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", sod / 3600, (sod / 60) % 60, sod % 60)
}

/// Rows of the per-class series table.
pub const CLASS_TABLE_ROWS: usize = 20;

/// A table: header and rows of cells, shared by the HTML and Markdown renderers.
#[derive(Debug, Clone)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<String>>,
}

/// The tables of a report, in order, each with its section and title.
pub fn tables(data: &ReportData) -> Vec<(String, String, Table)> {
    use timeaudit_analysis::report::PERCENTILES;
    let mut out = Vec::new();
    let t = |h: &[&str], rows: Vec<Vec<String>>| Table { header: h.iter().map(|s| s.to_string()).collect(), rows };
    if !data.lab.is_empty() {
        out.push((
            "Lab".into(),
            "Lab servers and the class found for each".into(),
            t(
                &["name", "address", "behaviour", "expected", "found", "agrees"],
                data.lab
                    .iter()
                    .map(|l| {
                        vec![
                            l.name.clone(),
                            l.address.clone(),
                            l.behaviour.clone(),
                            l.expected_class.clone(),
                            l.found_class.clone(),
                            if l.agrees { "yes" } else { "NO" }.into(),
                        ]
                    })
                    .collect(),
            ),
        ));
    }
    if !data.audit.is_empty() {
        out.push((
            "Fleet audit".into(),
            "Findings".into(),
            t(
                &["severity", "check", "server or file", "finding"],
                data.audit
                    .iter()
                    .map(|f| vec![f.severity.clone(), f.code.clone(), f.subject.clone(), f.message.clone()])
                    .collect(),
            ),
        ));
    }
    if let Some(s) = &data.survey {
        let sec = "Survey".to_string();
        out.push((
            sec.clone(),
            "Totals".into(),
            t(
                &["hosts", "addresses", "answered", "series", "observations", "from", "to"],
                vec![vec![
                    s.hosts.to_string(),
                    s.addresses.to_string(),
                    s.addresses_answered.to_string(),
                    s.series_count.to_string(),
                    s.observations.to_string(),
                    fmt_time(s.span.0),
                    fmt_time(s.span.1),
                ]],
            ),
        ));
        out.push((
            sec.clone(),
            "Series by class".into(),
            t(&["class", "series"], s.by_class.iter().map(|(k, v)| vec![k.clone(), v.to_string()]).collect()),
        ));
        let mut h = vec!["method"];
        h.extend(s.band_labels.iter().map(|x| x.as_str()));
        out.push((
            sec.clone(),
            "Series by |latest offset|".into(),
            t(
                &h,
                s.bands
                    .iter()
                    .map(|b| std::iter::once(b.method.clone()).chain(b.counts.iter().map(|c| c.to_string())).collect())
                    .collect(),
            ),
        ));
        let ph: Vec<String> = PERCENTILES.iter().map(|p| format!("{p}%")).collect();
        let mut h = vec!["method", "series"];
        h.extend(ph.iter().map(|x| x.as_str()));
        out.push((
            sec.clone(),
            "Percentiles of |latest offset|".into(),
            t(
                &h,
                s.percentile_rows
                    .iter()
                    .map(|r| {
                        [r.method.clone(), r.n.to_string()]
                            .into_iter()
                            .chain(r.values_s.iter().map(|v| fmt_seconds(*v).replace('+', "")))
                            .collect()
                    })
                    .collect(),
            ),
        ));
        out.push((
            sec.clone(),
            "Worst clocks".into(),
            t(
                &[
                    "target",
                    "address",
                    "method",
                    "class",
                    "latest offset",
                    "median offset",
                    "rate (ppm)",
                    "last probe",
                    "note",
                ],
                s.worst
                    .iter()
                    .map(|w| {
                        vec![
                            w.target.clone(),
                            w.address.clone(),
                            w.method.clone(),
                            w.class.clone(),
                            fmt_opt_seconds(w.latest_offset_s),
                            fmt_opt_seconds(w.median_offset_s),
                            w.rate_ppm.map_or("–".into(), |r| format!("{r:+.1}")),
                            fmt_time(w.last),
                            if w.timezone_suspect { "timezone?" } else { "" }.into(),
                        ]
                    })
                    .collect(),
            ),
        ));
        out.push((
            sec.clone(),
            "Names with several backends".into(),
            t(
                &["target", "backends", "spread", "disagree", "addresses (median offset, class)"],
                s.load_balanced
                    .iter()
                    .map(|n| {
                        let mut parts: Vec<String> = n
                            .backends
                            .iter()
                            .map(|b| {
                                format!(
                                    "{} {} ({}, {})",
                                    b.address,
                                    b.method,
                                    fmt_opt_seconds(b.median_offset_s),
                                    b.class
                                )
                            })
                            .collect();
                        parts.extend(n.hidden_backends.iter().map(|b| {
                            format!(
                                "behind one address: {:.0}% {} {}",
                                b.share * 100.0,
                                fmt_opt_seconds(b.offset_s),
                                b.class
                            )
                        }));
                        vec![
                            n.target.clone(),
                            (n.backends.len() + n.hidden_backends.len()).to_string(),
                            fmt_seconds(n.spread_s).replace('+', ""),
                            if n.disagree { "yes" } else { "no" }.into(),
                            parts.join("; "),
                        ]
                    })
                    .collect(),
            ),
        ));
        out.push((
            sec.clone(),
            "Changes of behaviour".into(),
            t(
                &["when (UTC)", "target", "address", "method", "from", "to"],
                s.changes
                    .iter()
                    .map(|c| {
                        vec![
                            fmt_time(c.at),
                            c.target.clone(),
                            c.address.clone(),
                            c.method.clone(),
                            c.from.clone(),
                            c.to.clone(),
                        ]
                    })
                    .collect(),
            ),
        ));
        for class in s.plots.keys() {
            let members: Vec<&timeaudit_analysis::report::SeriesSummary> =
                s.series.iter().filter(|x| &x.class == class).collect();
            out.push((
                format!("Class: {class}"),
                if members.len() > CLASS_TABLE_ROWS {
                    format!("{} series classified {class} (the first {CLASS_TABLE_ROWS})", members.len())
                } else {
                    format!("Series classified {class}")
                },
                t(
                    &["target", "address", "method", "probes", "answered", "median offset", "rate (ppm)"],
                    members
                        .iter()
                        .take(CLASS_TABLE_ROWS)
                        .map(|m| {
                            vec![
                                m.target.clone(),
                                m.address.clone(),
                                m.method.clone(),
                                m.n.to_string(),
                                m.answered.to_string(),
                                fmt_opt_seconds(m.median_offset_s),
                                m.rate_ppm.map_or("–".into(), |r| format!("{r:+.1}")),
                            ]
                        })
                        .collect(),
                ),
            ));
        }
    }
    if let Some(c) = &data.capture {
        let sec = "Capture".to_string();
        let tt = &c.totals;
        let ratio =
            if tt.bytes_in > 0 { format!("{:.2}", tt.bytes_out as f64 / tt.bytes_in as f64) } else { "–".into() };
        out.push((
            sec.clone(),
            "Totals".into(),
            t(
                &[
                    "frames",
                    "NTP packets",
                    "bytes",
                    "duration",
                    "requests",
                    "responses",
                    "clients",
                    "bytes in",
                    "bytes out",
                    "out/in",
                    "malformed",
                ],
                vec![vec![
                    tt.packets.to_string(),
                    tt.ntp_packets.to_string(),
                    tt.bytes.to_string(),
                    format!("{:.1} s", tt.duration_s),
                    tt.requests.to_string(),
                    tt.responses.to_string(),
                    tt.unique_clients.to_string(),
                    tt.bytes_in.to_string(),
                    tt.bytes_out.to_string(),
                    ratio,
                    tt.malformed.to_string(),
                ]],
            ),
        ));
        let kv = |m: &std::collections::BTreeMap<String, u64>| {
            m.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
        };
        out.push((
            sec.clone(),
            "Modes, versions and KoD".into(),
            t(&["modes", "versions", "KoD sent"], vec![vec![kv(&tt.modes), kv(&tt.versions), kv(&tt.kod)]]),
        ));
        if let Some(cost) = &c.cost {
            out.push((
                sec.clone(),
                "Egress cost at the captured rate".into(),
                t(
                    &["price per GB", "GB per month", "cost per month", "cost per year"],
                    vec![vec![
                        format!("{:.3}", cost.price_per_gb),
                        format!("{:.3}", cost.gb_per_month),
                        format!("{:.2}", cost.cost_per_month),
                        format!("{:.2}", cost.cost_per_year),
                    ]],
                ),
            ));
        }
        out.push((
            sec.clone(),
            "What if clients above N queries were limited".into(),
            t(
                &["N (queries in window)", "clients above", "share of traffic", "saving per year"],
                c.what_if
                    .iter()
                    .map(|w| {
                        vec![
                            w.threshold.to_string(),
                            w.clients_above.to_string(),
                            format!("{:.1}%", w.traffic_share * 100.0),
                            format!("{:.2}", w.saving_per_year),
                        ]
                    })
                    .collect(),
            ),
        ));
        let client_rows = |v: &[timeaudit_analysis::capture_report::ClientRow]| -> Vec<Vec<String>> {
            v.iter()
                .map(|r| {
                    vec![
                        r.address.clone(),
                        r.requests.to_string(),
                        r.responses.to_string(),
                        r.bytes.to_string(),
                        fmt_opt_seconds(r.median_interval_s).replace('+', ""),
                        r.kod.to_string(),
                    ]
                })
                .collect()
        };
        let ch = ["address", "requests", "responses", "bytes", "median interval", "KoD"];
        out.push((sec.clone(), "Top clients".into(), t(&ch, client_rows(&c.top_clients))));
        out.push((sec.clone(), "Top subnets".into(), t(&ch, client_rows(&c.top_subnets))));
        out.push((
            sec.clone(),
            "What rate limiting would have dropped".into(),
            t(
                &["policy", "dropped requests", "dropped", "clients limited", "saving per year"],
                c.rate_limits
                    .iter()
                    .map(|r| {
                        vec![
                            r.policy.clone(),
                            r.dropped_requests.to_string(),
                            format!("{:.1}%", r.dropped_pct),
                            r.clients_limited.to_string(),
                            r.saving_per_year.map_or("–".into(), |v| format!("{v:.2}")),
                        ]
                    })
                    .collect(),
            ),
        ));
        out.push((
            sec.clone(),
            "Clients by polling behaviour".into(),
            t(
                &["type", "clients", "requests", "share of requests"],
                c.client_types
                    .iter()
                    .map(|r| {
                        vec![
                            r.client_type.clone(),
                            r.clients.to_string(),
                            r.requests.to_string(),
                            format!("{:.1}%", r.requests_pct),
                        ]
                    })
                    .collect(),
            ),
        ));
        out.push((
            sec.clone(),
            "Mode 6/7 and KoD findings".into(),
            t(
                &["kind", "packets", "detail"],
                c.findings.iter().map(|f| vec![f.kind.clone(), f.packets.to_string(), f.detail.clone()]).collect(),
            ),
        ));
    }
    out
}
