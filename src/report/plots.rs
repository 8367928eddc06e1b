//! Plot helpers for reports: SVG strings drawn with plotters (offset versus time with interval
//! bars and the fitted model, CDF with a log x axis, log–log scatter, rate with a band and
//! flagged points). Every plot has a title, labelled axes with units, and distinguishes its
//! series by marker shape and dash pattern as well as by colour.

use plotters::coord::Shift;
use plotters::prelude::*;
use std::sync::Once;
use timeaudit_analysis::capture_report::RatePoint;
use timeaudit_analysis::report::SeriesPlot;

/// The font used for every label, shipped in the repository (see assets/fonts/README.md).
pub static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// Font family name plots ask for.
pub const FONT: &str = "sans-serif";
/// Plot size in pixels.
pub const SIZE: (u32, u32) = (760, 420);
/// Smallest positive value drawn on a log axis (values at or below are clamped to it).
pub const LOG_FLOOR: f64 = 1e-6;

static REGISTER: Once = Once::new();

/// Registers the shipped font with plotters (once per process).
pub fn register_font() {
    REGISTER.call_once(|| {
        // The bytes are a valid TTF shipped with the binary; failure would only mean no text.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

/// A plotting failure, with the plot's title.
#[derive(Debug)]
pub struct PlotError(pub String);

impl std::fmt::Display for PlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlotError {}

fn err<E: std::fmt::Debug>(title: &str) -> impl Fn(E) -> PlotError + '_ {
    move |e| PlotError(format!("drawing plot {title:?}: {e:?}"))
}

/// Palette that stays distinguishable in grey (paired with markers and dashes).
const COLOURS: [RGBColor; 5] =
    [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(148, 103, 189), RGBColor(0, 0, 0)];

/// Tick label of a log axis: whole numbers as such, small values in engineering form (`1e-3`).
pub fn log_tick(v: &f64) -> String {
    let v = *v;
    if (1.0..1e7).contains(&v) {
        format!("{v:.0}")
    } else {
        let e = v.log10().round() as i32;
        let m = v / 10f64.powi(e);
        if (m - 1.0).abs() < 1e-6 { format!("1e{e}") } else { format!("{m:.1}e{e}") }
    }
}

fn range(values: impl Iterator<Item = f64>, pad_frac: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = (hi - lo).abs();
    let pad = if span > 0.0 { span * pad_frac } else { lo.abs().max(1e-3) * 0.1 };
    (lo - pad, hi + pad)
}

fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        let v = v.max(LOG_FLOOR);
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (LOG_FLOOR, 1.0);
    }
    (lo / 1.5, hi * 1.5)
}

fn svg(draw: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), PlotError>) -> Result<String, PlotError> {
    register_font();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| PlotError(format!("{e:?}")))?;
        draw(root.clone())?;
        root.present().map_err(|e| PlotError(format!("{e:?}")))?;
    }
    Ok(out)
}

/// Offset versus time of one series: a vertical bar per interval, a dot at its midpoint, and the
/// fitted model (line or sawtooth) dashed over them. x: seconds since the first probe.
pub fn offset_vs_time(title: &str, p: &SeriesPlot) -> Result<String, PlotError> {
    let t0 = p.points.first().map_or(0.0, |q| q.t);
    let (x0, x1) = range(p.points.iter().map(|q| q.t - t0), 0.03);
    let mut ys: Vec<f64> = p.points.iter().flat_map(|q| [q.lo, q.hi]).collect();
    let fit_pts: Vec<(f64, f64)> = match p.fit {
        Some(f) => (0..=800).map(|i| x0 + (x1 - x0) * i as f64 / 800.0).map(|x| (x, f.at(t0 + x))).collect(),
        None => Vec::new(),
    };
    ys.extend(fit_pts.iter().map(|q| q.1));
    let (y0, y1) = range(ys.into_iter(), 0.08);
    svg(|root| {
        let e = err(title);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(&e)?;
        chart
            .configure_mesh()
            .x_desc("time since first probe (s)")
            .y_desc("offset (s)")
            .label_style((FONT, 12))
            .draw()
            .map_err(&e)?;
        let c = COLOURS[0];
        chart
            .draw_series(
                p.points.iter().map(|q| PathElement::new(vec![(q.t - t0, q.lo), (q.t - t0, q.hi)], c.stroke_width(2))),
            )
            .map_err(&e)?
            .label("interval containing the offset")
            .legend(move |(x, y)| PathElement::new(vec![(x + 5, y - 6), (x + 5, y + 6)], c.stroke_width(2)));
        chart
            .draw_series(p.points.iter().map(|q| Circle::new((q.t - t0, (q.lo + q.hi) / 2.0), 2, c.filled())))
            .map_err(&e)?
            .label("midpoint")
            .legend(move |(x, y)| Circle::new((x + 5, y), 3, c.filled()));
        if !fit_pts.is_empty() {
            let fc = COLOURS[1];
            chart
                .draw_series(DashedLineSeries::new(fit_pts.clone(), 6, 4, fc.stroke_width(2)))
                .map_err(&e)?
                .label(format!("fitted model ({})", p.class))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 6, y), (x + 10, y), (x + 16, y)], fc.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 12))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(&e)?;
        Ok(())
    })
}

/// A family of CDFs on a log x axis: (x, share) per named series, drawn as steps with a distinct
/// marker and dash per series.
pub fn cdf_log_x(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<String, PlotError> {
    // Points at x ≤ 0 have no place on a log axis: they are left out.
    let series: Vec<(String, Vec<(f64, f64)>)> =
        series.iter().map(|(n, v)| (n.clone(), v.iter().copied().filter(|p| p.0 > 0.0).collect())).collect();
    let (x0, x1) = log_range(series.iter().flat_map(|(_, v)| v.iter().map(|p| p.0)));
    svg(|root| {
        let e = err(title);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((x0..x1).log_scale(), 0.0..1.02)
            .map_err(&e)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&log_tick)
            .label_style((FONT, 12))
            .draw()
            .map_err(&e)?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let c = COLOURS[i % COLOURS.len()];
            let mut steps = Vec::with_capacity(pts.len() * 2);
            let mut prev = 0.0;
            for (x, y) in pts {
                let x = x.max(LOG_FLOOR);
                steps.push((x, prev));
                steps.push((x, *y));
                prev = *y;
            }
            if let Some(last) = steps.last().copied() {
                steps.push((x1, last.1));
            }
            let style = c.stroke_width(2);
            if i % 2 == 0 {
                chart.draw_series(LineSeries::new(steps, style)).map_err(&e)?;
            } else {
                chart.draw_series(DashedLineSeries::new(steps, 6, 4, style)).map_err(&e)?;
            }
            let shown: Vec<(f64, f64)> = pts.iter().map(|(x, y)| (x.max(LOG_FLOOR), *y)).collect();
            let m = i % 3;
            chart
                .draw_series(shown.iter().map(move |p| marker(*p, m, c)))
                .map_err(&e)?
                .label(name.clone())
                .legend(move |(x, y)| marker_px((x + 8, y), m, c));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 12))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(&e)?;
        Ok(())
    })
}

fn marker<DB: DrawingBackend>(p: (f64, f64), kind: usize, c: RGBColor) -> DynElement<'static, DB, (f64, f64)> {
    match kind {
        0 => Circle::new(p, 3, c.filled()).into_dyn(),
        1 => TriangleMarker::new(p, 4, c.filled()).into_dyn(),
        _ => Cross::new(p, 4, c.stroke_width(2)).into_dyn(),
    }
}

fn marker_px<DB: DrawingBackend>(p: (i32, i32), kind: usize, c: RGBColor) -> DynElement<'static, DB, (i32, i32)> {
    match kind {
        0 => Circle::new(p, 3, c.filled()).into_dyn(),
        1 => TriangleMarker::new(p, 4, c.filled()).into_dyn(),
        _ => Cross::new(p, 4, c.stroke_width(2)).into_dyn(),
    }
}

/// A log–log scatter of (x, y) points.
pub fn scatter_log_log(title: &str, x_desc: &str, y_desc: &str, pts: &[(f64, f64)]) -> Result<String, PlotError> {
    let (x0, x1) = log_range(pts.iter().map(|p| p.0));
    let (y0, y1) = log_range(pts.iter().map(|p| p.1));
    svg(|root| {
        let e = err(title);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
            .map_err(&e)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&log_tick)
            .y_label_formatter(&log_tick)
            .label_style((FONT, 12))
            .draw()
            .map_err(&e)?;
        let c = COLOURS[0];
        chart
            .draw_series(
                pts.iter().map(|(x, y)| Circle::new((x.max(LOG_FLOOR), y.max(LOG_FLOOR)), 3, c.stroke_width(1))),
            )
            .map_err(&e)?;
        Ok(())
    })
}

/// Requests per minute with the Holt–Winters band (shaded) and aberrant minutes (crosses).
/// x: minutes since the first minute.
pub fn rate_with_band(title: &str, rate: &[RatePoint]) -> Result<String, PlotError> {
    let t0 = rate.first().map_or(0.0, |r| r.t);
    let m = |t: f64| (t - t0) / 60.0;
    let (x0, x1) = range(rate.iter().map(|r| m(r.t)), 0.02);
    let (_, y1) = range(rate.iter().flat_map(|r| [r.count, r.hi]), 0.08);
    svg(|root| {
        let e = err(title);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, 0.0..y1.max(1.0))
            .map_err(&e)?;
        chart
            .configure_mesh()
            .x_desc("time since capture start (min)")
            .y_desc("requests per minute")
            .label_style((FONT, 12))
            .draw()
            .map_err(&e)?;
        let band: Vec<(f64, f64)> =
            rate.iter().map(|r| (m(r.t), r.hi)).chain(rate.iter().rev().map(|r| (m(r.t), r.lo.max(0.0)))).collect();
        let grey = RGBColor(170, 170, 170);
        chart
            .draw_series(std::iter::once(Polygon::new(band, grey.mix(0.4).filled())))
            .map_err(&e)?
            .label("Holt–Winters band")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], grey.mix(0.4).filled()));
        let c = COLOURS[0];
        chart
            .draw_series(LineSeries::new(rate.iter().map(|r| (m(r.t), r.count)), c.stroke_width(2)))
            .map_err(&e)?
            .label("requests")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2)));
        let a = COLOURS[1];
        chart
            .draw_series(
                rate.iter().filter(|r| r.aberrant).map(|r| Cross::new((m(r.t), r.count), 6, a.stroke_width(2))),
            )
            .map_err(&e)?
            .label("aberrant minute")
            .legend(move |(x, y)| Cross::new((x + 6, y), 5, a.stroke_width(2)));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 12))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(&e)?;
        Ok(())
    })
}
