//! Report data: the tables and series a report shows, computed from observations, classifier
//! results and capture summaries. No drawing and no formatting here: `report.json` is this
//! structure serialised, and the HTML and Markdown renderers read nothing else.

use crate::observation::{Method, Observation};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Upper bounds (seconds, exclusive) of the offset bands of the survey report: <1 s, 1–59 s,
/// 1 min–1 h, 1 h–1 day, 1 day–1 month (30 days), and more than a month after the last bound.
pub const OFFSET_BAND_BOUNDS_S: [f64; 5] = [1.0, 60.0, 3600.0, 86_400.0, 30.0 * 86_400.0];
/// Labels of the offset bands, in order (one more than the bounds).
pub const OFFSET_BAND_LABELS: [&str; 6] = ["<1 s", "1–59 s", "1 min–1 h", "1 h–1 day", "1 day–1 month", ">1 month"];
/// Percentiles of |offset| tabulated, as ntpviz does.
pub const PERCENTILES: [f64; 5] = [1.0, 5.0, 50.0, 95.0, 99.0];

/// Tunables of the survey report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportParams {
    /// How many of the worst clocks to list.
    pub worst_count: usize,
    /// Representative series plotted per class.
    pub representatives_per_class: usize,
    /// Most points kept per plotted series (evenly decimated beyond).
    pub max_points_per_series: usize,
    /// Addresses of one name whose median offsets differ by more than this disagree (seconds).
    pub disagreement_s: f64,
}

impl Default for ReportParams {
    fn default() -> Self {
        Self { worst_count: 10, representatives_per_class: 2, max_points_per_series: 400, disagreement_s: 1.0 }
    }
}

/// One backend of a load-balanced series (from the classifier).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Backend {
    /// Share of the observations it answered.
    pub share: f64,
    /// Its class.
    pub class: String,
    /// Its offset, seconds.
    pub offset_s: Option<f64>,
    /// Its rate, ppm.
    pub rate_ppm: Option<f64>,
}

/// One segment of a changed series (from the classifier).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Start, Unix seconds.
    pub start: f64,
    /// End, Unix seconds.
    pub end: f64,
    /// Class within the segment.
    pub class: String,
}

/// The classifier's verdict on one series (target, address, method), as `timeaudit classify
/// --format json` reports it. `offset_s` is the offset at the series' last reading and
/// `rate_ppm` the slope (the report draws that line through the last reading, or the sawtooth
/// with `reset_period_s`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// Target.
    pub target: String,
    /// Address.
    pub address: String,
    /// Method.
    pub method: Option<Method>,
    /// Class name (DESIGN.md §5).
    pub class: String,
    /// Confidence in [0, 1].
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Offset, seconds.
    #[serde(default)]
    pub offset_s: Option<f64>,
    /// Rate, ppm.
    #[serde(default)]
    pub rate_ppm: Option<f64>,
    /// Number of resets seen.
    #[serde(default)]
    pub resets: Option<u32>,
    /// Period of the resets, seconds.
    #[serde(default)]
    pub reset_period_s: Option<f64>,
    /// Backends of a load-balanced series.
    #[serde(default)]
    pub backends: Vec<Backend>,
    /// Segments of a changed series.
    #[serde(default)]
    pub segments: Vec<Segment>,
    /// The offset is within a minute of a whole number of hours.
    #[serde(default)]
    pub timezone_suspect: bool,
}

/// One plotted observation: time and the interval containing the offset.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntervalPoint {
    /// Local time of the probe (midpoint of send and receive), Unix seconds.
    pub t: f64,
    /// Lower bound, seconds.
    pub lo: f64,
    /// Upper bound, seconds.
    pub hi: f64,
}

/// The model drawn over a series' intervals.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitModel {
    /// Time the model starts, Unix seconds.
    pub t0: f64,
    /// Offset at `t0`, seconds.
    pub offset_s: f64,
    /// Slope, ppm.
    pub rate_ppm: f64,
    /// Reset period of a sawtooth, seconds (None: a line).
    pub period_s: Option<f64>,
}

impl FitModel {
    /// The model's offset at time `t`.
    pub fn at(&self, t: f64) -> f64 {
        let dt = t - self.t0;
        let dt = match self.period_s {
            Some(p) if p > 0.0 => dt.rem_euclid(p),
            _ => dt,
        };
        self.offset_s + dt * self.rate_ppm * 1e-6
    }
}

/// Summary of one series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesSummary {
    /// Target.
    pub target: String,
    /// Address.
    pub address: String,
    /// Method.
    pub method: String,
    /// Class (from the classifier; `unreachable` when nothing answered, `unclassified` when no
    /// classification was given).
    pub class: String,
    /// Observations.
    pub n: usize,
    /// Observations with an offset.
    pub answered: usize,
    /// First probe, Unix seconds.
    pub first: f64,
    /// Last probe, Unix seconds.
    pub last: f64,
    /// Last measured offset, seconds.
    pub latest_offset_s: Option<f64>,
    /// Median offset, seconds.
    pub median_offset_s: Option<f64>,
    /// Classifier's rate, ppm.
    pub rate_ppm: Option<f64>,
    /// The offset is within a minute of a whole number of hours ("timezone?").
    #[serde(default)]
    pub timezone_suspect: bool,
}

/// One row of the offset-band table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BandRow {
    /// Method.
    pub method: String,
    /// Series per band, in the order of [`OFFSET_BAND_LABELS`] (by |latest offset|).
    pub counts: Vec<usize>,
}

/// One row of the percentile table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PercentileRow {
    /// Method, or `all`.
    pub method: String,
    /// Series counted.
    pub n: usize,
    /// |latest offset| at the percentiles of [`PERCENTILES`], seconds.
    pub values_s: Vec<f64>,
}

/// A plotted series: offset intervals over time and the model fitted to them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesPlot {
    /// Target.
    pub target: String,
    /// Address.
    pub address: String,
    /// Method.
    pub method: String,
    /// Class.
    pub class: String,
    /// The intervals (decimated to at most `max_points_per_series`).
    pub points: Vec<IntervalPoint>,
    /// The fitted model, when the classifier gave one.
    pub fit: Option<FitModel>,
}

/// One address of a name that resolves to several.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NameBackend {
    /// Address.
    pub address: String,
    /// Method.
    pub method: String,
    /// Median offset, seconds.
    pub median_offset_s: Option<f64>,
    /// Class.
    pub class: String,
}

/// A name with several addresses (round-robin DNS), or one address with several machines behind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancedName {
    /// Target.
    pub target: String,
    /// Spread of the backends' median offsets, seconds.
    pub spread_s: f64,
    /// Whether the backends disagree by more than `disagreement_s`.
    pub disagree: bool,
    /// Its addresses.
    pub backends: Vec<NameBackend>,
    /// Machines seen behind single addresses classified `load_balanced`.
    pub hidden_backends: Vec<Backend>,
}

/// A change of behaviour found by the classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeRow {
    /// Target.
    pub target: String,
    /// Address.
    pub address: String,
    /// Method.
    pub method: String,
    /// When the new behaviour started, Unix seconds.
    pub at: f64,
    /// Class before.
    pub from: String,
    /// Class after.
    pub to: String,
}

/// The survey part of a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurveyReport {
    /// Distinct hosts (targets without scheme, port and path).
    pub hosts: usize,
    /// Distinct (host, address) pairs.
    pub addresses: usize,
    /// Distinct (host, address) pairs that answered at least once (by any method).
    pub addresses_answered: usize,
    /// Series (target, address, method).
    pub series_count: usize,
    /// Observations.
    pub observations: usize,
    /// First and last probe, Unix seconds.
    pub span: (f64, f64),
    /// Series per class.
    pub by_class: BTreeMap<String, usize>,
    /// Labels of the band columns.
    pub band_labels: Vec<String>,
    /// Offset bands by method.
    pub bands: Vec<BandRow>,
    /// Percentiles (labels).
    pub percentiles: Vec<f64>,
    /// Percentiles of |offset| by method.
    pub percentile_rows: Vec<PercentileRow>,
    /// The worst clocks by |latest offset|.
    pub worst: Vec<SeriesSummary>,
    /// Every series.
    pub series: Vec<SeriesSummary>,
    /// Representative plotted series, by class.
    pub plots: BTreeMap<String, Vec<SeriesPlot>>,
    /// CDF of |latest offset| per method: (|offset| s, share of series ≤ it).
    pub offset_cdf: BTreeMap<String, Vec<(f64, f64)>>,
    /// Names with several backends.
    pub load_balanced: Vec<LoadBalancedName>,
    /// Changes of behaviour.
    pub changes: Vec<ChangeRow>,
}

/// The model drawn over a classified series: the line through the last reading with the
/// classifier's rate, or for a sawtooth the same line restarted at each reset (the last reset is
/// located in the data: the last drop of more than half a tooth; the level each tooth starts
/// from is fitted to the readings).
pub fn fit_model(c: &Classification, points: &[IntervalPoint]) -> Option<FitModel> {
    let last = points.last()?;
    let offset_last = c.offset_s?;
    match c.class.as_str() {
        "ok" | "offset" | "drifting" | "stuck" => {
            let rate = c.rate_ppm.unwrap_or(if c.class == "stuck" { -1e6 } else { 0.0 });
            Some(FitModel { t0: last.t, offset_s: offset_last, rate_ppm: rate, period_s: None })
        }
        "resetting" => {
            let rate = c.rate_ppm?;
            let period = c.reset_period_s.filter(|p| *p > 0.0)?;
            let tooth = (rate * 1e-6 * period).abs();
            let mid = |p: &IntervalPoint| (p.lo + p.hi) / 2.0;
            let reset_at = points
                .windows(2)
                .rev()
                .find(|w| (mid(&w[1]) - mid(&w[0])) * rate.signum() < -tooth / 2.0)
                .map(|w| (w[0].t + w[1].t) / 2.0)?;
            // The level each tooth starts from: the median of the readings minus the ramp.
            let mut model = FitModel { t0: reset_at, offset_s: 0.0, rate_ppm: rate, period_s: Some(period) };
            let residuals: Vec<f64> = points.iter().map(|p| mid(p) - model.at(p.t)).collect();
            model.offset_s = median(&residuals).unwrap_or(offset_last);
            Some(model)
        }
        _ => None,
    }
}

/// Classifies every (target, address, method) series of `obs` with the classifier
/// ([`crate::classify`]) and returns the verdicts in the report's form.
pub fn classify_series(obs: &[Observation], params: &crate::classify::ClassifierParams) -> Vec<Classification> {
    let mut groups: BTreeMap<(String, String, Option<Method>), Vec<&Observation>> = BTreeMap::new();
    for o in obs {
        groups.entry((o.target.clone(), o.address.clone(), o.method)).or_default().push(o);
    }
    let mut classifier = crate::classify::Classifier::new(params.clone());
    groups
        .into_iter()
        .map(|((target, address, method), mut list)| {
            list.sort_by(|a, b| a.t_send.total_cmp(&b.t_send));
            let (samples, failed) = crate::classify::samples_from_observations(list.iter().copied());
            let v = classifier.classify(&samples, failed);
            Classification {
                target,
                address,
                method,
                class: v.class.as_str().to_string(),
                confidence: Some(v.confidence),
                offset_s: v.offset_s,
                rate_ppm: v.rate_ppm,
                resets: v.resets.map(|r| u32::try_from(r).unwrap_or(u32::MAX)),
                reset_period_s: v.reset_period_s,
                backends: v
                    .backends
                    .iter()
                    .map(|b| Backend {
                        share: b.share,
                        class: b.class.as_str().to_string(),
                        offset_s: Some(b.offset_s),
                        rate_ppm: Some(b.rate_ppm),
                    })
                    .collect(),
                segments: v
                    .segments
                    .iter()
                    .map(|s| Segment { start: s.start, end: s.end, class: s.class.as_str().to_string() })
                    .collect(),
                timezone_suspect: v.timezone_suspect,
            }
        })
        .collect()
}

/// The host of a target as written: scheme, path and port removed (`ntp://a.example:123` →
/// `a.example`, `http://[::1]:8080/` → `::1`).
pub fn host_of(target: &str) -> &str {
    let rest = target.split_once("://").map_or(target, |(_, r)| r);
    let rest = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    match rest.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => rest,
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len().is_multiple_of(2) { (v[m - 1] + v[m]) / 2.0 } else { v[m] })
}

/// Index of the band of an |offset|.
pub fn band_of(abs_offset: f64) -> usize {
    OFFSET_BAND_BOUNDS_S.iter().position(|b| abs_offset < *b).unwrap_or(OFFSET_BAND_BOUNDS_S.len())
}

fn method_name(m: Option<Method>) -> String {
    m.map_or_else(|| "unknown".to_string(), |m| m.as_str().to_string())
}

fn decimate<T: Copy>(v: &[T], max: usize) -> Vec<T> {
    if v.len() <= max || max == 0 {
        return v.to_vec();
    }
    (0..max).map(|i| v[i * (v.len() - 1) / (max - 1).max(1)]).collect()
}

type Key = (String, String, String);

/// Builds the survey part from observations and (possibly no) classifications.
pub fn survey_report(obs: &[Observation], classes: &[Classification], params: &ReportParams) -> SurveyReport {
    let mut groups: BTreeMap<Key, Vec<&Observation>> = BTreeMap::new();
    for o in obs {
        groups.entry((o.target.clone(), o.address.clone(), method_name(o.method))).or_default().push(o);
    }
    let class_of: BTreeMap<Key, &Classification> =
        classes.iter().map(|c| ((c.target.clone(), c.address.clone(), method_name(c.method)), c)).collect();
    let mut series = Vec::new();
    let mut plots_all: Vec<(usize, SeriesPlot)> = Vec::new();
    for (key, list) in &mut groups {
        list.sort_by(|a, b| a.t_send.total_cmp(&b.t_send));
        // An offset that is not a finite number (NaN or infinite in a hand-made CSV) is no answer.
        let answered: Vec<&&Observation> = list.iter().filter(|o| o.offset.is_some_and(f64::is_finite)).collect();
        let c = class_of.get(key);
        let class = match c {
            Some(c) => c.class.clone(),
            None if answered.is_empty() => "unreachable".to_string(),
            None => "unclassified".to_string(),
        };
        let offsets: Vec<f64> = answered.iter().filter_map(|o| o.offset).collect();
        let summary = SeriesSummary {
            target: key.0.clone(),
            address: key.1.clone(),
            method: key.2.clone(),
            class: class.clone(),
            n: list.len(),
            answered: answered.len(),
            first: list.first().map_or(0.0, |o| o.t_send),
            last: list.last().map_or(0.0, |o| o.t_send),
            latest_offset_s: offsets.last().copied(),
            median_offset_s: median(&offsets),
            rate_ppm: c.and_then(|c| c.rate_ppm),
            timezone_suspect: c.is_some_and(|c| c.timezone_suspect),
        };
        let points: Vec<IntervalPoint> = answered
            .iter()
            .map(|o| {
                let mid = o.offset.unwrap_or(0.0);
                let bound = |b: Option<f64>| b.filter(|x| x.is_finite()).unwrap_or(mid);
                IntervalPoint { t: (o.t_send + o.t_recv) / 2.0, lo: bound(o.offset_lo), hi: bound(o.offset_hi) }
            })
            .collect();
        if !points.is_empty() {
            let fit = c.and_then(|c| fit_model(c, &points));
            let plot = SeriesPlot {
                target: key.0.clone(),
                address: key.1.clone(),
                method: key.2.clone(),
                class: class.clone(),
                points: decimate(&points, params.max_points_per_series),
                fit,
            };
            plots_all.push((points.len(), plot));
        }
        series.push(summary);
    }

    let mut by_class = BTreeMap::new();
    for s in &series {
        *by_class.entry(s.class.clone()).or_insert(0) += 1;
    }
    let methods: BTreeSet<String> = series.iter().map(|s| s.method.clone()).collect();
    let latest_abs = |m: Option<&str>| -> Vec<f64> {
        let mut v: Vec<f64> = series
            .iter()
            .filter(|s| m.is_none_or(|m| s.method == m))
            .filter_map(|s| s.latest_offset_s.map(f64::abs))
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let bands = methods
        .iter()
        .map(|m| {
            let mut counts = vec![0; OFFSET_BAND_LABELS.len()];
            for v in latest_abs(Some(m)) {
                counts[band_of(v)] += 1;
            }
            BandRow { method: m.clone(), counts }
        })
        .collect();
    let mut percentile_rows: Vec<PercentileRow> = methods
        .iter()
        .map(|m| m.as_str())
        .map(Some)
        .chain(std::iter::once(None))
        .map(|m| {
            let v = latest_abs(m);
            PercentileRow {
                method: m.unwrap_or("all").to_string(),
                n: v.len(),
                values_s: PERCENTILES.iter().filter_map(|p| percentile(&v, *p)).collect(),
            }
        })
        .collect();
    percentile_rows.retain(|r| r.n > 0);
    let offset_cdf = methods
        .iter()
        .map(|m| {
            let v = latest_abs(Some(m));
            let n = v.len() as f64;
            (m.clone(), v.iter().enumerate().map(|(i, x)| (*x, (i + 1) as f64 / n)).collect())
        })
        .collect();

    let mut worst: Vec<SeriesSummary> = series.iter().filter(|s| s.latest_offset_s.is_some()).cloned().collect();
    worst.sort_by(|a, b| {
        let k = |s: &SeriesSummary| s.latest_offset_s.map_or(0.0, f64::abs);
        k(b).total_cmp(&k(a)).then_with(|| (&a.target, &a.address).cmp(&(&b.target, &b.address)))
    });
    worst.truncate(params.worst_count);

    // Representatives: the longest series of each class.
    plots_all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| (&a.1.target, &a.1.address).cmp(&(&b.1.target, &b.1.address))));
    let mut plots: BTreeMap<String, Vec<SeriesPlot>> = BTreeMap::new();
    for (_, p) in plots_all {
        let slot = plots.entry(p.class.clone()).or_default();
        if slot.len() < params.representatives_per_class {
            slot.push(p);
        }
    }

    // Names with several addresses, and addresses with several machines behind.
    let mut by_target: BTreeMap<&str, Vec<&SeriesSummary>> = BTreeMap::new();
    for s in &series {
        by_target.entry(&s.target).or_default().push(s);
    }
    let mut load_balanced = Vec::new();
    for (target, list) in by_target {
        let addrs: BTreeSet<&str> = list.iter().map(|s| s.address.as_str()).collect();
        let hidden: Vec<Backend> = classes
            .iter()
            .filter(|c| c.target == target && c.class == "load_balanced")
            .flat_map(|c| c.backends.iter().cloned())
            .collect();
        if addrs.len() < 2 && hidden.is_empty() {
            continue;
        }
        let meds: Vec<f64> = list.iter().filter_map(|s| s.median_offset_s).collect();
        let spread = match (meds.iter().copied().reduce(f64::min), meds.iter().copied().reduce(f64::max)) {
            (Some(lo), Some(hi)) => hi - lo,
            _ => 0.0,
        };
        load_balanced.push(LoadBalancedName {
            target: target.to_string(),
            spread_s: spread,
            disagree: spread > params.disagreement_s || !hidden.is_empty(),
            backends: list
                .iter()
                .map(|s| NameBackend {
                    address: s.address.clone(),
                    method: s.method.clone(),
                    median_offset_s: s.median_offset_s,
                    class: s.class.clone(),
                })
                .collect(),
            hidden_backends: hidden,
        });
    }

    let mut changes = Vec::new();
    for c in classes {
        for w in c.segments.windows(2) {
            changes.push(ChangeRow {
                target: c.target.clone(),
                address: c.address.clone(),
                method: method_name(c.method),
                at: w[1].start,
                from: w[0].class.clone(),
                to: w[1].class.clone(),
            });
        }
    }
    changes.sort_by(|a, b| a.at.total_cmp(&b.at));

    let addresses: BTreeSet<(&str, &str)> = series.iter().map(|s| (host_of(&s.target), s.address.as_str())).collect();
    let answered: BTreeSet<(&str, &str)> =
        series.iter().filter(|s| s.answered > 0).map(|s| (host_of(&s.target), s.address.as_str())).collect();
    let t_first = obs.iter().map(|o| o.t_send).reduce(f64::min).unwrap_or(0.0);
    let t_last = obs.iter().map(|o| o.t_send).reduce(f64::max).unwrap_or(0.0);
    SurveyReport {
        hosts: series.iter().map(|s| host_of(&s.target)).collect::<BTreeSet<_>>().len(),
        addresses: addresses.len(),
        addresses_answered: answered.len(),
        series_count: series.len(),
        observations: obs.len(),
        span: (t_first, t_last),
        by_class,
        band_labels: OFFSET_BAND_LABELS.iter().map(|s| s.to_string()).collect(),
        bands,
        percentiles: PERCENTILES.to_vec(),
        percentile_rows,
        worst,
        series,
        plots,
        offset_cdf,
        load_balanced,
        changes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(target: &str, addr: &str, t: f64, off: Option<f64>) -> Observation {
        Observation {
            target: target.into(),
            address: addr.into(),
            method: Some(Method::Ntp),
            t_send: t,
            t_recv: t + 0.002,
            offset: off,
            offset_lo: off.map(|o| o - 0.001),
            offset_hi: off.map(|o| o + 0.001),
            ..Observation::default()
        }
    }

    #[test]
    fn bands_and_percentiles() {
        assert_eq!(band_of(0.5), 0);
        assert_eq!(band_of(1.0), 1);
        assert_eq!(band_of(59.9), 1);
        assert_eq!(band_of(3599.0), 2);
        assert_eq!(band_of(86_399.0), 3);
        assert_eq!(band_of(86_400.0 * 29.0), 4);
        assert_eq!(band_of(86_400.0 * 31.0), 5);
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), Some(2.0));
        assert_eq!(percentile(&v, 99.0), Some(4.0));
        assert_eq!(percentile(&v, 1.0), Some(1.0));
        assert_eq!(percentile(&[], 1.0), None);
    }

    #[test]
    fn survey_tables_from_literals() {
        let o = vec![
            obs("a", "10.0.0.1", 0.0, Some(0.2)),
            obs("a", "10.0.0.1", 10.0, Some(0.3)),
            obs("a", "10.0.0.2", 0.0, Some(-120.0)),
            obs("b", "10.0.0.3", 5.0, None),
        ];
        let c = vec![Classification {
            target: "a".into(),
            address: "10.0.0.1".into(),
            method: Some(Method::Ntp),
            class: "drifting".into(),
            offset_s: Some(0.3),
            rate_ppm: Some(10_000.0),
            segments: vec![
                Segment { start: 0.0, end: 5.0, class: "ok".into() },
                Segment { start: 5.0, end: 10.0, class: "drifting".into() },
            ],
            ..Classification::default()
        }];
        let r = survey_report(&o, &c, &ReportParams::default());
        assert_eq!((r.hosts, r.addresses, r.addresses_answered, r.series_count, r.observations), (2, 3, 2, 3, 4));
        assert_eq!(host_of("ntp://a.example:123"), "a.example");
        assert_eq!(host_of("http://[::1]:8080/x"), "::1");
        assert_eq!(host_of("https://b.example/"), "b.example");
        assert_eq!(host_of("c.example"), "c.example");
        assert_eq!(host_of("2001:db8::1"), "2001:db8::1");
        assert_eq!(r.by_class.get("drifting"), Some(&1));
        assert_eq!(r.by_class.get("unclassified"), Some(&1));
        assert_eq!(r.by_class.get("unreachable"), Some(&1));
        assert_eq!(r.bands[0].counts, vec![1, 0, 1, 0, 0, 0]);
        assert_eq!(r.worst[0].address, "10.0.0.2");
        assert_eq!(r.percentile_rows.last().unwrap().values_s, vec![0.3, 0.3, 0.3, 120.0, 120.0]);
        assert_eq!(r.load_balanced.len(), 1);
        assert!((r.load_balanced[0].spread_s - 120.25).abs() < 1e-9);
        assert_eq!(r.changes.len(), 1);
        assert_eq!((r.changes[0].from.as_str(), r.changes[0].to.as_str(), r.changes[0].at), ("ok", "drifting", 5.0));
        let fit = r.plots["drifting"][0].fit.unwrap();
        assert!((fit.at(fit.t0 - 10.0) - 0.2).abs() < 1e-9);
    }

    #[test]
    fn non_finite_offsets_are_not_answers() {
        let mut bad = obs("a", "10.0.0.1", 0.0, Some(f64::NAN));
        bad.offset_lo = Some(f64::NEG_INFINITY);
        let o = vec![bad, obs("b", "10.0.0.2", 0.0, Some(3.0))];
        let r = survey_report(&o, &[], &ReportParams::default());
        assert_eq!(r.bands[0].counts, vec![0, 1, 0, 0, 0, 0]);
        assert_eq!(r.addresses_answered, 1);
        assert_eq!(r.by_class.get("unreachable"), Some(&1));
    }

    #[test]
    fn sawtooth_model() {
        let m = FitModel { t0: 100.0, offset_s: 0.0, rate_ppm: 20_000.0, period_s: Some(15.0) };
        assert!((m.at(110.0) - 0.2).abs() < 1e-9);
        assert!((m.at(116.0) - 0.02).abs() < 1e-9);
    }
}

/// One lab server and what the report found for it (the demo's self-check).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabCheck {
    /// DNS name of the server.
    pub name: String,
    /// Address.
    pub address: String,
    /// Behaviour it was started with.
    pub behaviour: String,
    /// Class it should get.
    pub expected_class: String,
    /// Class its NTP series got.
    pub found_class: String,
    /// Whether they agree.
    pub agrees: bool,
}

/// One finding of the fleet audit (`timeaudit audit --format json`): hierarchy, health, exposure
/// or configuration lint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditFinding {
    /// `info`, `warning`, `error`, ...
    pub severity: String,
    /// Stable short name of the check.
    pub code: String,
    /// The server (or `file:line` for a configuration finding) it concerns.
    pub subject: String,
    /// What is wrong, with the evidence (and the fix for configuration findings).
    pub message: String,
}

/// Everything a report shows; `report.json` is this structure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportData {
    /// Report title.
    pub title: String,
    /// Inputs read (files, store), as given.
    pub sources: Vec<String>,
    /// The survey part.
    pub survey: Option<SurveyReport>,
    /// The capture part.
    pub capture: Option<crate::capture_report::CaptureReport>,
    /// The lab self-check (demo only).
    pub lab: Vec<LabCheck>,
    /// Fleet audit findings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit: Vec<AuditFinding>,
    /// What the report could not include, and why.
    pub notes: Vec<String>,
}
