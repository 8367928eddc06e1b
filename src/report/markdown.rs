//! The Markdown report: the same tables as the HTML one; plots are listed by id (they are drawn
//! in `index.html`).

use super::{Table, tables};
use timeaudit_analysis::report::ReportData;

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn table_md(t: &Table) -> String {
    if t.rows.is_empty() {
        return "none\n\n".into();
    }
    let mut s = format!("| {} |\n", t.header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | "));
    s += &format!("|{}\n", "---|".repeat(t.header.len()));
    for r in &t.rows {
        s += &format!("| {} |\n", r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | "));
    }
    s + "\n"
}

/// Renders the report as Markdown.
pub fn render(data: &ReportData) -> String {
    let mut m = format!("# {}\n\n", data.title);
    if !data.sources.is_empty() {
        m += &format!("Sources: {}\n\n", data.sources.join(", "));
    }
    for n in &data.notes {
        m += &format!("> {n}\n\n");
    }
    let mut last = String::new();
    for (sec, title, t) in tables(data) {
        if sec != last {
            m += &format!("## {sec}\n\n");
            last = sec.clone();
        }
        m += &format!("### {title}\n\n{}", table_md(&t));
    }
    if let Some(s) = &data.survey {
        for (class, list) in &s.plots {
            m += &format!("## Class: {class}\n\n");
            for p in list {
                let fit = p.fit.map_or(String::new(), |f| {
                    format!(
                        "; fitted offset {} at the first probe, rate {:+.1} ppm{}",
                        super::fmt_seconds(f.offset_s),
                        f.rate_ppm,
                        f.period_s.map_or(String::new(), |p| format!(", reset every {p:.1} s"))
                    )
                });
                m += &format!(
                    "- {} {} ({}): {} intervals plotted in index.html{fit}\n",
                    p.target,
                    p.address,
                    p.method,
                    p.points.len()
                );
            }
            m += "\n";
        }
    }
    m
}
