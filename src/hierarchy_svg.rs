//! Draws the fleet hierarchy of `timeaudit audit --svg` with plotters: one row per stratum,
//! stratum 1 on top, an arrow from each server to the server it synchronises from, boxes coloured
//! by the worst finding. Text uses DejaVu Sans embedded in the binary (assets/fonts), so no system
//! font is needed.

use anyhow::anyhow;
use plotters::prelude::*;
use std::collections::{BTreeMap, HashMap};
use timeaudit_analysis::fleet::{FleetReport, Upstream};
use timeaudit_analysis::severity::Severity;

use crate::report::plots::{FONT as FONT_FAMILY, register_font};

const BOX_W: i32 = 200;
const BOX_H: i32 = 54;
const GAP_X: i32 = 30;
const ROW_H: i32 = 120;
const MARGIN: i32 = 30;
/// Row of servers that did not answer or are unsynchronised.
const LEVEL_NONE: u8 = 16;

/// Rows by level, box positions, worst severity per server, canvas size.
type Layout<'a> = (BTreeMap<u8, Vec<&'a str>>, HashMap<&'a str, (i32, i32)>, HashMap<&'a str, Severity>, i32, i32);

/// Places every server: one row per stratum (servers that were not queried one above the
/// shallowest server naming them; silent and unsynchronised ones at the bottom).
fn layout(report: &FleetReport) -> Layout<'_> {
    // Level of each node: its stratum, or for servers that were not queried one above the
    // shallowest server naming them.
    let mut level: HashMap<&str, u8> = HashMap::new();
    for n in &report.nodes {
        if let Some(s @ 1..=15) = n.stratum {
            level.insert(&n.address, s);
        }
    }
    for n in report.nodes.iter().filter(|n| !n.queried) {
        let below =
            report.edges.iter().filter(|e| e.to == n.address).filter_map(|e| level.get(e.from.as_str()).copied()).min();
        level.insert(&n.address, below.map_or(LEVEL_NONE, |s| s.saturating_sub(1).max(1)));
    }
    let mut rows: BTreeMap<u8, Vec<&str>> = BTreeMap::new();
    for n in &report.nodes {
        rows.entry(*level.get(n.address.as_str()).unwrap_or(&LEVEL_NONE)).or_default().push(&n.address);
    }
    let widest = rows.values().map(Vec::len).max().unwrap_or(1).max(1) as i32;
    let width = (MARGIN * 2 + widest * BOX_W + (widest - 1) * GAP_X).max(400);
    let height = MARGIN * 2 + 30 + rows.len().max(1) as i32 * ROW_H;

    let mut pos: HashMap<&str, (i32, i32)> = HashMap::new();
    for (r, (_, addrs)) in rows.iter().enumerate() {
        let n = addrs.len() as i32;
        let row_w = n * BOX_W + (n - 1) * GAP_X;
        let x0 = (width - row_w) / 2;
        for (i, a) in addrs.iter().enumerate() {
            pos.insert(a, (x0 + i as i32 * (BOX_W + GAP_X), MARGIN + 30 + r as i32 * ROW_H + 30));
        }
    }
    let mut worst: HashMap<&str, Severity> = HashMap::new();
    for f in &report.findings {
        let e = worst.entry(&f.server).or_insert(f.severity);
        *e = (*e).max(f.severity);
    }

    (rows, pos, worst, width, height)
}

/// Renders the hierarchy of `report` as an SVG document.
pub fn render(report: &FleetReport) -> anyhow::Result<String> {
    register_font();
    let (rows, pos, worst, width, height) = layout(report);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width as u32, height as u32)).into_drawing_area();
        draw(&root, report, &rows, &pos, &worst)?;
    }
    Ok(svg)
}

/// Draws the laid-out hierarchy on any plotters backend.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    report: &FleetReport,
    rows: &BTreeMap<u8, Vec<&str>>,
    pos: &HashMap<&str, (i32, i32)>,
    worst: &HashMap<&str, Severity>,
) -> anyhow::Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing the hierarchy failed: {e:?}");
    root.fill(&WHITE).map_err(err)?;
    let title = TextStyle::from((FONT_FAMILY, 18).into_font()).color(&BLACK);
    root.draw(&Text::new(
        format!("NTP hierarchy: {} servers, {} findings", report.nodes.len(), report.findings.len()),
        (MARGIN, MARGIN),
        title,
    ))
    .map_err(err)?;
    let small = TextStyle::from((FONT_FAMILY, 12).into_font()).color(&BLACK);
    let label = TextStyle::from((FONT_FAMILY, 14).into_font()).color(&BLACK);
    // Row captions.
    for (r, (lvl, _)) in rows.iter().enumerate() {
        let caption = if *lvl == LEVEL_NONE { "unsynchronised / silent".to_string() } else { format!("stratum {lvl}") };
        root.draw(&Text::new(caption, (6, MARGIN + 30 + r as i32 * ROW_H + 10), small.clone())).map_err(err)?;
    }
    // Edges first, boxes over them.
    for e in &report.edges {
        let (Some(&(fx, fy)), Some(&(tx, ty))) = (pos.get(e.from.as_str()), pos.get(e.to.as_str())) else {
            continue;
        };
        let from = (fx + BOX_W / 2, fy);
        let to = if ty < fy { (tx + BOX_W / 2, ty + BOX_H) } else { (tx + BOX_W / 2, ty) };
        root.draw(&PathElement::new(vec![from, to], BLACK.stroke_width(2))).map_err(err)?;
        root.draw(&Polygon::new(arrow_head(from, to), BLACK.filled())).map_err(err)?;
    }
    for n in &report.nodes {
        let Some(&(x, y)) = pos.get(n.address.as_str()) else { continue };
        let fill = match worst.get(n.address.as_str()) {
            Some(Severity::Critical) => RGBColor(250, 200, 200),
            Some(Severity::Warning) => RGBColor(252, 228, 180),
            _ if !n.queried => RGBColor(235, 235, 235),
            _ => RGBColor(210, 236, 210),
        };
        root.draw(&Rectangle::new([(x, y), (x + BOX_W, y + BOX_H)], fill.filled())).map_err(err)?;
        root.draw(&Rectangle::new([(x, y), (x + BOX_W, y + BOX_H)], BLACK.stroke_width(1))).map_err(err)?;
        root.draw(&Text::new(n.address.clone(), (x + 8, y + 8), label.clone())).map_err(err)?;
        let line2 = match (n.stratum, &n.refid) {
            (Some(s), Some(r)) => format!("stratum {s}  refid {r}"),
            _ if !n.queried => "not queried".into(),
            _ => "no answer".into(),
        };
        root.draw(&Text::new(line2, (x + 8, y + 30), small.clone())).map_err(err)?;
        let above = match &n.upstream {
            Upstream::Reference(r) => Some(format!("reference clock {r}")),
            Upstream::LocalClock => Some("LOCAL CLOCK".to_string()),
            _ => None,
        };
        if let Some(a) = above {
            root.draw(&Text::new(a, (x + 8, y - 16), small.clone())).map_err(err)?;
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Renders the hierarchy as a PNG file (used to look at the layout in tests).
#[cfg(test)]
pub fn render_png(report: &FleetReport, path: &std::path::Path) -> anyhow::Result<()> {
    register_font();
    let (rows, pos, worst, width, height) = layout(report);
    let root = BitMapBackend::new(path, (width as u32, height as u32)).into_drawing_area();
    draw(&root, report, &rows, &pos, &worst)
}

/// A small triangle at `to`, pointing from `from` to `to`.
fn arrow_head(from: (i32, i32), to: (i32, i32)) -> Vec<(i32, i32)> {
    let (dx, dy) = ((to.0 - from.0) as f64, (to.1 - from.1) as f64);
    let len = (dx * dx + dy * dy).sqrt().max(1.0);
    let (ux, uy) = (dx / len, dy / len);
    let (bx, by) = (to.0 as f64 - ux * 12.0, to.1 as f64 - uy * 12.0);
    let (px, py) = (-uy * 6.0, ux * 6.0);
    vec![to, ((bx + px) as i32, (by + py) as i32), ((bx - px) as i32, (by - py) as i32)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use timeaudit_analysis::fleet::{FleetParams, audit};
    use timeaudit_analysis::observation::Observation;

    #[test]
    fn renders_boxes_edges_and_text() {
        let o = |a: &str, s: u8, r: &str| Observation {
            target: a.into(),
            address: a.into(),
            stratum: Some(s),
            refid: Some(r.into()),
            leap: Some(0),
            offset: Some(0.0),
            ..Default::default()
        };
        let report = audit(
            &[o("10.0.0.1", 1, "GPS"), o("10.0.0.2", 2, "10.0.0.1"), o("10.0.0.3", 2, "10.0.0.1")],
            &[],
            &[],
            &FleetParams::default(),
        );
        let svg = render(&report).unwrap();
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<rect").count(), 1 + 3 * 2, "background plus filled and outlined box per server");
        assert_eq!(svg.matches("<polygon").count(), 2, "one arrow head per edge");
        assert_eq!(svg.matches("\n10.0.0.2\n</text>").count(), 1);
        assert_eq!(svg.matches("\nreference clock GPS\n</text>").count(), 1);
    }

    #[test]
    fn png_of_a_troubled_fleet_has_the_layout_size() {
        let o = |a: &str, s: u8, r: &str| Observation {
            target: a.into(),
            address: a.into(),
            stratum: Some(s),
            refid: Some(r.into()),
            leap: Some(0),
            offset: Some(0.0),
            ..Default::default()
        };
        let mut unsynced = o("10.0.0.6", 16, "INIT");
        unsynced.leap = Some(3);
        let fleet = [
            o("10.0.0.1", 1, "LOCL"),
            o("10.0.0.2", 2, "10.0.0.1"),
            o("10.0.0.3", 3, "10.0.0.2"),
            o("10.0.0.4", 3, "10.0.0.2"),
            o("10.0.0.5", 4, "10.0.0.3"),
            unsynced,
            o("10.0.0.7", 3, "192.0.2.9"),
        ];
        let report = audit(&fleet, &[], &[], &FleetParams::default());
        let path = std::env::temp_dir().join(format!("timeaudit-hierarchy-{}.png", std::process::id()));
        render_png(&report, &path).unwrap();
        let png = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        // Rows: strata 1..4 and the unsynchronised row (192.0.2.9 sits at stratum 2); widest row
        // (stratum 3) holds 3 boxes.
        let (w, h) =
            (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
        assert_eq!((w, h), (2 * 30 + 3 * 200 + 2 * 30, 2 * 30 + 30 + 5 * 120));
    }
}
