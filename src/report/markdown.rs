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
    let tabs = tables(data);
    let mut sections: Vec<String> = Vec::new();
    for (sec, _, _) in &tabs {
        if !sections.contains(sec) {
            sections.push(sec.clone());
        }
    }
    for sec in &sections {
        m += &format!("## {sec}\n\n");
        for (_, title, t) in tabs.iter().filter(|(s, _, _)| s == sec) {
            m += &format!("### {title}\n\n{}", table_md(t));
        }
        let plots = sec.strip_prefix("Class: ").and_then(|c| data.survey.as_ref().and_then(|s| s.plots.get(c)));
        for p in plots.into_iter().flatten() {
            let fit = p.fit.map_or(String::new(), |f| {
                format!(
                    "; fitted model: offset {} at {}, rate {:+.1} ppm{}",
                    super::fmt_seconds(f.offset_s),
                    super::fmt_time(f.t0),
                    f.rate_ppm,
                    f.period_s.map_or(String::new(), |p| format!(", reset every {p:.1} s"))
                )
            });
            m += &format!(
                "- plot in index.html: {} {} ({}), {} intervals{fit}\n",
                p.target,
                p.address,
                p.method,
                p.points.len()
            );
        }
        if plots.is_some() {
            m += "\n";
        }
    }
    m
}
