//! The self-contained HTML report: inline CSS and inline SVG plots, no scripts, no external
//! fonts, images or links to fetch.

use super::plots;
use super::{Table, tables};
use timeaudit_analysis::report::ReportData;

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A plot of the report: section, id, title, caption and SVG.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Section it belongs to (`Survey`, `Capture`, or `Class: NAME`).
    pub section: String,
    /// Stable id (`offset-cdf`, `class-drifting-1`, ...).
    pub id: String,
    /// Caption.
    pub caption: String,
    /// The SVG.
    pub svg: String,
}

/// Every plot of a report, in order.
pub fn figures(data: &ReportData) -> Result<Vec<Figure>, plots::PlotError> {
    let mut out = Vec::new();
    if let Some(s) = &data.survey {
        let series: Vec<(String, Vec<(f64, f64)>)> =
            s.offset_cdf.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.clone(), v.clone())).collect();
        if !series.is_empty() {
            let title = "Share of series with |offset| ≤ x, by method";
            out.push(Figure {
                section: "Survey".into(),
                id: "offset-cdf".into(),
                caption: "Cumulative share of series (target, address, method) by their latest |offset|; log x axis."
                    .into(),
                svg: plots::cdf_log_x(title, "|offset| (s, log scale)", "share of series", &series)?,
            });
        }
        for (class, list) in &s.plots {
            for (i, p) in list.iter().enumerate() {
                let title = format!("{} {} ({}) — {}", p.target, p.address, p.method, class);
                out.push(Figure {
                    section: format!("Class: {class}"),
                    id: format!("class-{class}-{}", i + 1),
                    caption: format!(
                        "Offset of {} at {} over time: bars are the intervals certain to contain the offset{}.",
                        p.target,
                        p.address,
                        if p.fit.is_some() { ", the dashed line the fitted model" } else { "" }
                    ),
                    svg: plots::offset_vs_time(&title, p)?,
                });
            }
        }
    }
    if let Some(c) = &data.capture {
        if !c.traffic_cdf.is_empty() {
            out.push(Figure {
                section: "Capture".into(),
                id: "traffic-cdf".into(),
                caption:
                    "Share of all requests sent by clients that sent at most N queries in the capture; log x axis."
                        .into(),
                svg: plots::cdf_log_x(
                    "Share of traffic from clients with ≤ N queries",
                    "N, queries per client in the capture (log scale)",
                    "share of outbound bytes",
                    &[("outbound bytes".to_string(), c.traffic_cdf.clone())],
                )?,
            });
        }
        if !c.polling.is_empty() {
            out.push(Figure {
                section: "Capture".into(),
                id: "polling-scatter".into(),
                caption: "One point per client: queries sent and median polling interval; both axes log.".into(),
                svg: plots::scatter_log_log(
                    "Polling interval by client",
                    "queries in the capture (log scale)",
                    "median polling interval (s, log scale)",
                    &c.polling,
                )?,
            });
        }
        if !c.rate.is_empty() {
            out.push(Figure {
                section: "Capture".into(),
                id: "rate-band".into(),
                caption: "Requests per minute, the Holt–Winters prediction band and the minutes flagged aberrant."
                    .into(),
                svg: plots::rate_with_band("Request rate with Holt–Winters band", &c.rate)?,
            });
        }
    }
    Ok(out)
}

fn table_html(t: &Table) -> String {
    if t.rows.is_empty() {
        return "<p class=\"empty\">none</p>\n".into();
    }
    let mut s = String::from("<div class=\"t\"><table>\n<thead><tr>");
    for h in &t.header {
        s += &format!("<th>{}</th>", esc(h));
    }
    s += "</tr></thead>\n<tbody>\n";
    for r in &t.rows {
        s += "<tr>";
        for c in r {
            s += &format!("<td>{}</td>", esc(c));
        }
        s += "</tr>\n";
    }
    s + "</tbody>\n</table></div>\n"
}

const CSS: &str = "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#111}\
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left}\
th{background:#eee}td{font-variant-numeric:tabular-nums;white-space:nowrap}.t{overflow-x:auto}figure{margin:1em 0}figcaption{font-size:.9em;color:#333}\
.notes{background:#fff7e0;border:1px solid #e0c060;padding:.5em 1em}svg{max-width:100%;height:auto}";

/// Renders the whole report.
pub fn render(data: &ReportData) -> Result<String, plots::PlotError> {
    let figs = figures(data)?;
    let tabs = tables(data);
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&data.title),
        esc(&data.title)
    );
    if !data.sources.is_empty() {
        h += &format!("<p>Sources: {}</p>\n", esc(&data.sources.join(", ")));
    }
    if !data.notes.is_empty() {
        h += "<div class=\"notes\"><ul>\n";
        for n in &data.notes {
            h += &format!("<li>{}</li>\n", esc(n));
        }
        h += "</ul></div>\n";
    }
    let mut sections: Vec<String> = Vec::new();
    for (s, _, _) in &tabs {
        if !sections.contains(s) {
            sections.push(s.clone());
        }
    }
    for f in &figs {
        if !sections.contains(&f.section) {
            sections.push(f.section.clone());
        }
    }
    // Class sections follow the survey tables, the capture comes last.
    sections.sort_by_key(|s| match s.as_str() {
        "Lab" => 0,
        "Survey" => 1,
        s if s.starts_with("Class: ") => 2,
        "Capture" => 3,
        _ => 4,
    });
    for sec in &sections {
        h += &format!("<section>\n<h2>{}</h2>\n", esc(sec));
        for (_, title, t) in tabs.iter().filter(|(s, _, _)| s == sec) {
            h += &format!("<h3>{}</h3>\n{}", esc(title), table_html(t));
        }
        for f in figs.iter().filter(|f| &f.section == sec) {
            h += &format!(
                "<figure class=\"plot\" id=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
                esc(&f.id),
                f.svg,
                esc(&f.caption)
            );
        }
        h += "</section>\n";
    }
    h += "</body>\n</html>\n";
    Ok(h)
}
