//! Clock-behaviour classifier (DESIGN.md §5): from the history of one (target, address, method)
//! series of offset intervals to one of `ok, offset, drifting, stuck, resetting, load_balanced,
//! random, changed, insufficient, unreachable`, with the parameters of the class and a
//! confidence. Sans-IO: observations in, a [`Classification`] out.
//!
//! Every observation is an interval known to contain the true offset; a behaviour is a model
//! whose line(s) pass through (nearly) all intervals ([`line`]). Decision order:
//! 1. one robust line through at least `min_inlier_frac` of the intervals: `stuck` when the
//!    remote clock's rate is below `stuck_max_rate`, else `ok`/`offset` when a constant explains
//!    about as many intervals as the sloped line (a drift too small to show in the span is no
//!    drift), else `drifting` — unless the outliers of that line themselves form a line
//!    (a second structure), which sends the series on to step 2;
//! 2. 2–3 lines found one after the other (RANSAC on what the previous lines left), which
//!    alternate in time (a Wald–Wolfowitz runs test tells alternation from a one-time change):
//!    `load_balanced`, with each backend's share, class, offset and rate;
//! 3. a segmentation into time-contiguous pieces ([`segment`]): parallel drifting pieces with
//!    jumps back against the drift are a sawtooth, `resetting`; a few pieces of other shapes are
//!    `changed`, reported as segments;
//! 4. nothing fits: `random` (or the single line of step 1 when it did fit).
//!
//! The sawtooth and the load balancer cannot be confused (teeth are contiguous in time, backends
//! alternate), so testing alternation before segmenting only saves work.

pub mod line;
pub mod names;
pub mod params;
pub mod score;
pub mod segment;

pub use line::{Fitter, Line, Pt};
pub use names::{NameAgreement, agreement};
pub use params::{ClassifierParams, ParamError};

use crate::observation::{Method, Observation};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Behaviour class of a clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Within `ok_max_offset_s` of true time, rate 1.
    Ok,
    /// A constant error, rate 1.
    Offset,
    /// Rate differs from 1.
    Drifting,
    /// Not advancing (or nearly).
    Stuck,
    /// Sawtooth: drifts, is reset, drifts again.
    Resetting,
    /// Several clocks behind one address, alternating.
    LoadBalanced,
    /// No model explains the readings.
    Random,
    /// Behaviour changed during the history (see the segments).
    Changed,
    /// Too few answered probes to say.
    Insufficient,
    /// No probe was answered.
    Unreachable,
}

impl Class {
    /// Every class, in report order.
    pub const ALL: [Class; 10] = [
        Class::Ok,
        Class::Offset,
        Class::Drifting,
        Class::Stuck,
        Class::Resetting,
        Class::LoadBalanced,
        Class::Random,
        Class::Changed,
        Class::Insufficient,
        Class::Unreachable,
    ];

    /// The snake_case name used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Ok => "ok",
            Class::Offset => "offset",
            Class::Drifting => "drifting",
            Class::Stuck => "stuck",
            Class::Resetting => "resetting",
            Class::LoadBalanced => "load_balanced",
            Class::Random => "random",
            Class::Changed => "changed",
            Class::Insufficient => "insufficient",
            Class::Unreachable => "unreachable",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Class {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Class::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown class {s:?} (expected one of ok, offset, drifting, stuck, resetting, load_balanced, random, changed, insufficient, unreachable)"))
    }
}

/// One reading as the classifier takes it: when (local Unix seconds) and the interval of
/// offsets (seconds) that contains the true offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Local time of the reading (midpoint of send and receive), Unix seconds.
    pub t: f64,
    /// Lower bound of the offset.
    pub lo: f64,
    /// Upper bound of the offset.
    pub hi: f64,
}

impl Sample {
    /// The interval of an answered observation; `None` for a failed probe (no offset).
    ///
    /// Uses `offset_lo`/`offset_hi` when present, else `offset ± delay/2`, else the point
    /// `offset`. An HTTP reply served from a cache with an `Age` header carries the origin's old
    /// `Date`: the interval is moved forward by the age and widened by its one-second resolution.
    pub fn from_observation(o: &Observation) -> Option<Sample> {
        let (lo, hi) = match (o.offset_lo, o.offset_hi, o.offset) {
            (Some(lo), Some(hi), _) if lo <= hi => (lo, hi),
            (Some(lo), Some(hi), _) => (hi, lo),
            (_, _, Some(x)) => {
                let h = o.delay.map_or(0.0, |d| d.abs() / 2.0);
                (x - h, x + h)
            }
            _ => return None,
        };
        if !(lo.is_finite() && hi.is_finite() && o.t_send.is_finite() && o.t_recv.is_finite()) {
            return None;
        }
        let (mut lo, mut hi) = (lo, hi);
        if let (Some(age), Some(Method::Http | Method::Https)) = (o.age, o.method)
            && age > 0
        {
            lo += age as f64;
            hi += age as f64 + 1.0;
        }
        Some(Sample { t: 0.5 * (o.t_send + o.t_recv), lo, hi })
    }
}

/// Splits observations of one series into samples and the number of failed probes.
pub fn samples_from_observations<'a>(obs: impl IntoIterator<Item = &'a Observation>) -> (Vec<Sample>, usize) {
    let mut out = Vec::new();
    let mut failed = 0;
    for o in obs {
        match Sample::from_observation(o) {
            Some(s) => out.push(s),
            None => failed += 1,
        }
    }
    (out, failed)
}

/// One backend behind a load-balanced address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backend {
    /// Share of the answered probes this backend served.
    pub share: f64,
    /// Its own behaviour (ok, offset, drifting or stuck).
    pub class: Class,
    /// Its offset at the end of the history, seconds.
    pub offset_s: f64,
    /// Its rate error, ppm.
    pub rate_ppm: f64,
}

/// One time-contiguous piece of a changed history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Local time of its first reading, Unix seconds.
    pub start: f64,
    /// Local time of its last reading.
    pub end: f64,
    /// Behaviour during the piece (ok, offset, drifting or stuck).
    pub class: Class,
    /// Offset at the end of the piece, seconds.
    pub offset_s: f64,
    /// Rate error during the piece, ppm.
    pub rate_ppm: f64,
    /// Readings in the piece.
    pub n: usize,
}

/// The verdict on one series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// The behaviour class.
    pub class: Class,
    /// 0..1: share of the readings the model explains, discounted for short series.
    pub confidence: f64,
    /// Answered probes.
    pub n: usize,
    /// Failed probes (no offset).
    pub failed: usize,
    /// Seconds from the first to the last answered probe.
    pub span_s: f64,
    /// Offset at the last reading (for drifting and stuck clocks it changes), seconds.
    pub offset_s: Option<f64>,
    /// Rate error in ppm: remote seconds per true second, minus 1, times 1e6 (stuck ≈ −1e6).
    pub rate_ppm: Option<f64>,
    /// Number of resets seen (resetting).
    pub resets: Option<usize>,
    /// Mean time between resets, seconds (resetting).
    pub reset_period_s: Option<f64>,
    /// Backends (load_balanced), largest share first.
    pub backends: Vec<Backend>,
    /// Pieces of the history (changed), in time order.
    pub segments: Vec<Segment>,
    /// The offset is within `timezone_tol_s` of a non-zero whole number of hours.
    pub timezone_suspect: bool,
}

impl Classification {
    fn bare(class: Class, n: usize, failed: usize) -> Self {
        Classification {
            class,
            confidence: if class == Class::Unreachable { 1.0 } else { 0.0 },
            n,
            failed,
            span_s: 0.0,
            offset_s: None,
            rate_ppm: None,
            resets: None,
            reset_period_s: None,
            backends: Vec::new(),
            segments: Vec::new(),
            timezone_suspect: false,
        }
    }
}

/// A single-line model of some points.
#[derive(Clone, Copy, Debug)]
struct LineModel {
    /// The fitted line (intercept where the most intervals overlap).
    line: Line,
    /// The intercept to report: for a constant, the middle of the near-best range.
    report_a: f64,
    class: Class,
    inliers: usize,
}

impl LineModel {
    /// Offset reported at relative time `t`.
    fn offset_at(&self, t: f64) -> f64 {
        self.report_a + self.line.b * t
    }
}

/// The classifier: parameters plus reusable scratch space. Cheap to create; reuse one per thread
/// for speed.
#[derive(Debug, Default)]
pub struct Classifier {
    params: ClassifierParams,
    f: Fitter,
    pts: Vec<Pt>,
    /// The best single line of the series being classified (reused by the noise retry).
    last_best: Option<Line>,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let m = v.len() / 2;
    *v.select_nth_unstable_by(m, f64::total_cmp).1
}

/// Whether an offset is within `tol` of a non-zero whole number of hours.
pub fn timezone_suspect(offset_s: f64, tol: f64) -> bool {
    let h = (offset_s / 3600.0).round();
    h != 0.0 && (offset_s - h * 3600.0).abs() <= tol
}

impl Classifier {
    /// A classifier with these parameters (call [`ClassifierParams::validate`] first on user input).
    pub fn new(params: ClassifierParams) -> Self {
        Self { params, f: Fitter::default(), pts: Vec::new(), last_best: None }
    }

    /// Stabbing sweeps run so far and points swept (a cost measure for benchmarks).
    pub fn work(&self) -> (u64, u64) {
        (self.f.sweeps, self.f.swept)
    }

    /// The parameters in use.
    pub fn params(&self) -> &ClassifierParams {
        &self.params
    }

    fn size_factor(&self, n: usize) -> f64 {
        1.0 - (-(n as f64) / self.params.confidence_n_scale).exp()
    }

    /// Classifies one series. `failed` is the number of probes that got no answer.
    pub fn classify(&mut self, samples: &[Sample], failed: usize) -> Classification {
        let p = self.params.clone();
        self.last_best = None;
        // Non-finite readings are failed probes; inverted intervals are turned round.
        let usable = samples.iter().filter(|s| s.t.is_finite() && s.lo.is_finite() && s.hi.is_finite());
        let mut sorted: Vec<Sample> =
            usable.map(|s| Sample { t: s.t, lo: s.lo.min(s.hi), hi: s.lo.max(s.hi) }).collect();
        let failed = failed + (samples.len() - sorted.len());
        let n = sorted.len();
        if n == 0 {
            let c = if failed > 0 { Class::Unreachable } else { Class::Insufficient };
            return Classification::bare(c, 0, failed);
        }
        sorted.sort_by(|a, b| a.t.total_cmp(&b.t));
        let t0 = sorted[0].t;
        let span = sorted[n - 1].t - t0;
        let mut pts = std::mem::take(&mut self.pts);
        pts.clear();
        pts.extend(sorted.iter().map(|s| {
            let s_w = p.slack_s + p.slack_frac * (s.hi - s.lo);
            Pt { t: s.t - t0, lo: s.lo - s_w, hi: s.hi + s_w }
        }));
        let mut out = if n < p.min_points || span <= 0.0 {
            let mut c = Classification::bare(Class::Insufficient, n, failed);
            c.span_s = span;
            c
        } else {
            let c = self.decide(&pts, t0, failed);
            let extra = if c.class == Class::Random { self.noise_slack(&pts) } else { None };
            match (c.class, extra) {
                (Class::Random, Some(extra)) => {
                    // Readings noisier than their intervals admit (a jittery clock, timestamps
                    // taken late): widen by the measured noise and decide again.
                    let wider: Vec<Pt> =
                        pts.iter().map(|q| Pt { t: q.t, lo: q.lo - extra, hi: q.hi + extra }).collect();
                    let c2 = self.decide(&wider, t0, failed);
                    if c2.class == Class::Random { c } else { c2 }
                }
                _ => c,
            }
        };
        out.span_s = span;
        self.pts = pts;
        if let Some(o) = out.offset_s
            && matches!(out.class, Class::Offset | Class::Drifting | Class::Changed)
        {
            out.timezone_suspect = timezone_suspect(o, p.timezone_tol_s);
        }
        out
    }

    /// Extra slack for readings scattered around a line by more than their intervals: three
    /// robust standard deviations of the midpoints about the best line (estimated from the
    /// closest 30 %, so a second backend or outliers do not inflate it), if at most
    /// `max_noise_s`.
    fn noise_slack(&mut self, pts: &[Pt]) -> Option<f64> {
        let p = &self.params;
        if p.max_noise_s <= 0.0 {
            return None;
        }
        let l = match self.last_best {
            Some(l) => l,
            None => self.f.best_line(pts, p.ransac_pairs, p.ransac_min_span_frac, 0x0153),
        };
        let mut r: Vec<f64> = pts.iter().map(|q| (q.mid() - l.at(q.t)).abs()).collect();
        let k = ((0.3 * r.len() as f64).ceil() as usize).clamp(1, r.len()) - 1;
        let q30 = *r.select_nth_unstable_by(k, f64::total_cmp).1;
        // For Gaussian noise the 30th percentile of |e| is 0.385 sigma.
        let extra = 3.0 * q30 / 0.385;
        (extra > 0.0 && extra <= p.max_noise_s).then_some(extra)
    }

    fn need(&self, n: usize) -> usize {
        (self.params.min_inlier_frac * n as f64).ceil() as usize
    }

    /// Fits one line to `pts` and names its behaviour.
    fn fit_model(&mut self, pts: &[Pt], seed: u64) -> LineModel {
        let p = &self.params;
        let n = pts.len();
        if n == 0 {
            let line = Line { a: 0.0, b: 0.0, a_lo: 0.0, a_hi: 0.0, count: 0 };
            return LineModel { line, report_a: 0.0, class: Class::Insufficient, inliers: 0 };
        }
        let best = self.f.best_line(pts, p.ransac_pairs, p.ransac_min_span_frac, seed);
        self.model_of(pts, best)
    }

    /// Names the behaviour of `pts` given the best line through them (non-empty `pts`).
    fn model_of(&mut self, pts: &[Pt], best: Line) -> LineModel {
        let p = &self.params;
        let n = pts.len();
        if (1.0 + best.b).abs() <= p.stuck_max_rate {
            return LineModel { line: best, report_a: best.a, class: Class::Stuck, inliers: best.count };
        }
        let cst = self.f.stab(pts, 0.0);
        let gain = best.count.saturating_sub(cst.count);
        let need = p.drift_gain_min.max((p.drift_gain_frac * n as f64).ceil() as usize);
        // The constant misses only the first and/or last readings, all of which the line
        // explains: the signature of a drift, not of outliers.
        let ends_only = gain >= 1 && best.count == n && {
            let first_in = pts.iter().position(|q| cst.stabs(q));
            let last_in = pts.iter().rposition(|q| cst.stabs(q));
            match (first_in, last_in) {
                (Some(a), Some(b)) => pts[a..=b].iter().all(|q| cst.stabs(q)),
                _ => false,
            }
        };
        let big_enough = best.b.abs() * 1e6 >= p.drift_min_ppm;
        if big_enough && (gain >= need || ends_only) {
            return LineModel { line: best, report_a: best.a, class: Class::Drifting, inliers: best.count };
        }
        // A constant offset: the best constant, unless the line is better and only its rate is
        // too small to call (then keep the line's intercept but report rate 0).
        let line = if !big_enough && best.count > cst.count { best } else { cst };
        // The offsets nearly as consistent as the best (all but `offset_range_frac` of the
        // readings it explains): with probes that always hit the same phase of the server's
        // second (cron starts on whole seconds) a one-second `Date` pins the offset only to
        // within that second, and a few odd readings must not pick an end of it.
        let slack_count = (p.offset_range_frac * n as f64).ceil() as usize;
        let (lo, hi) = self
            .f
            .depth_range(pts, line.b, line.count.saturating_sub(slack_count).max(1))
            .unwrap_or((line.a_lo, line.a_hi));
        let report_a = 0.5 * (lo + hi);
        let tmid = 0.5 * (pts[0].t + pts[n - 1].t);
        let (lo, hi) = (lo + line.b * tmid, hi + line.b * tmid);
        let ok = lo <= p.ok_max_offset_s && hi >= -p.ok_max_offset_s;
        LineModel { line, report_a, class: if ok { Class::Ok } else { Class::Offset }, inliers: line.count }
    }

    /// Centres the slope of a sloped model in its range of equally good slopes (for reporting).
    fn finish(&mut self, pts: &[Pt], m: LineModel) -> LineModel {
        match m.class {
            Class::Drifting | Class::Stuck => {
                let line = self.f.centre(pts, m.line);
                LineModel { line, report_a: line.a, ..m }
            }
            _ => m,
        }
    }

    fn rate_of(m: &LineModel) -> f64 {
        match m.class {
            Class::Ok | Class::Offset => 0.0,
            _ => m.line.b * 1e6,
        }
    }

    fn decide(&mut self, pts: &[Pt], t0: f64, failed: usize) -> Classification {
        let n = pts.len();
        let tend = pts[n - 1].t;
        let need = self.need(n);
        let size = self.size_factor(n);
        let one = self.fit_model(pts, 0x5eed);
        self.last_best = Some(one.line);
        let single = |m: &LineModel| {
            let mut c = Classification::bare(m.class, n, failed);
            c.offset_s = Some(if m.class == Class::Ok || m.class == Class::Offset {
                m.offset_at(0.5 * tend)
            } else {
                m.offset_at(tend)
            });
            c.rate_ppm = Some(Self::rate_of(m));
            c.confidence = m.inliers as f64 / n as f64 * size;
            c
        };
        let fits_one = one.inliers >= need;
        let single = |me: &mut Self| {
            let m = me.finish(pts, one);
            single(&m)
        };
        if fits_one {
            let p = &self.params;
            let smin = p.min_segment_points.max((p.structure_min_frac * n as f64).ceil() as usize);
            let outl: Vec<Pt> = pts.iter().filter(|q| !one.line.stabs(q)).copied().collect();
            let structured = outl.len() >= smin && {
                let l2 = self.f.best_line_until(&outl, p.ransac_pairs, p.ransac_min_span_frac, 0xb0b, smin);
                l2.count >= smin
            };
            if !structured {
                return single(self);
            }
        }
        if let Some(c) = self.multi(pts, t0, failed, one.line) {
            return c;
        }
        if fits_one {
            return single(self);
        }
        let mut c = Classification::bare(Class::Random, n, failed);
        c.confidence = (1.0 - one.inliers as f64 / n as f64) * size;
        c
    }

    /// Load balancer, sawtooth or change; `None` when none explains the series.
    fn multi(&mut self, pts: &[Pt], t0: f64, failed: usize, first: Line) -> Option<Classification> {
        let p = self.params.clone();
        let n = pts.len();
        let tend = pts[n - 1].t;
        let need = self.need(n);
        let size = self.size_factor(n);
        // 1. Lines one after the other.
        let min_b = p.min_segment_points.max((p.min_backend_share * n as f64).ceil() as usize);
        let mut label: Vec<Option<usize>> = vec![None; n];
        let mut lines: Vec<Line> = Vec::new();
        let mut rest: Vec<Pt> = Vec::with_capacity(n);
        // Cheap pre-test: if the readings the first line explains form blocks in time (far
        // fewer runs than random alternation), this is no load balancer: skip the search.
        let inl: Vec<bool> = pts.iter().map(|q| first.stabs(q)).collect();
        let n_in = inl.iter().filter(|&&x| x).count();
        let runs1 = 1 + inl.windows(2).filter(|w| w[0] != w[1]).count();
        let alternating = first.count >= min_b && runs_z(runs1, &[n_in, n - n_in]) >= -p.lb_runs_z;
        for k in 0..if alternating { p.max_backends } else { 0 } {
            rest.clear();
            rest.extend((0..n).filter(|&i| label[i].is_none()).map(|i| pts[i]));
            if rest.len() < min_b {
                break;
            }
            let l = if k == 0 {
                first
            } else {
                self.f.best_line(&rest, p.ransac_pairs, p.ransac_min_span_frac, 0x1b + k as u64)
            };
            if l.count < min_b {
                break;
            }
            for i in 0..n {
                if label[i].is_none() && l.stabs(&pts[i]) {
                    label[i] = Some(lines.len());
                }
            }
            lines.push(l);
        }
        // Lines closer than the separation over the whole span are one clock.
        let sep = p.backend_min_separation_s;
        let mut root: Vec<usize> = (0..lines.len()).collect();
        for j in 1..lines.len() {
            for i in 0..j {
                if root[i] == i
                    && (lines[i].at(0.0) - lines[j].at(0.0)).abs() <= sep
                    && (lines[i].at(tend) - lines[j].at(tend)).abs() <= sep
                {
                    root[j] = i;
                    break;
                }
            }
        }
        for l in label.iter_mut().flatten() {
            *l = root[*l];
        }
        // A line left with too few points of its own is no backend.
        let mut own = vec![0usize; lines.len()];
        for &l in label.iter().flatten() {
            own[l] += 1;
        }
        for l in label.iter_mut() {
            if l.is_some_and(|g| own[g] < min_b) {
                *l = None;
            }
        }
        let groups: Vec<usize> = (0..lines.len()).filter(|&i| root[i] == i && own[i] >= min_b).collect();
        let assigned = label.iter().filter(|l| l.is_some()).count();
        if groups.len() >= 2 && assigned >= need {
            let seq: Vec<usize> = label.iter().flatten().copied().collect();
            let counts: Vec<usize> = groups.iter().map(|g| seq.iter().filter(|x| *x == g).count()).collect();
            let runs = 1 + seq.windows(2).filter(|w| w[0] != w[1]).count();
            let z = runs_z(runs, &counts);
            if runs >= 3 && z >= -p.lb_runs_z {
                let mut backends = Vec::new();
                for (gi, &g) in groups.iter().enumerate() {
                    let sub: Vec<Pt> = (0..n).filter(|&i| label[i] == Some(g)).map(|i| pts[i]).collect();
                    let m = self.fit_model(&sub, 0xbac + g as u64);
                    let m = self.finish(&sub, m);
                    backends.push(Backend {
                        share: counts[gi] as f64 / seq.len() as f64,
                        class: m.class,
                        offset_s: m.offset_at(tend),
                        rate_ppm: Self::rate_of(&m),
                    });
                }
                backends.sort_by(|a, b| b.share.total_cmp(&a.share));
                let mut c = Classification::bare(Class::LoadBalanced, n, failed);
                c.offset_s = backends.first().map(|b| b.offset_s);
                c.rate_ppm = backends.first().map(|b| b.rate_ppm);
                c.backends = backends;
                c.confidence = assigned as f64 / n as f64 * size;
                return Some(c);
            }
        }
        // 2. Time-contiguous pieces.
        let max_pieces = p.max_segments.max(64);
        let pieces = segment::segment(&mut self.f, pts, &p, max_pieces)?;
        let valid: Vec<segment::Piece> = pieces.into_iter().filter(|q| q.len() >= p.min_segment_points).collect();
        let inl: usize = valid.iter().map(|q| pts[q.start..q.end].iter().filter(|x| q.line.stabs(x)).count()).sum();
        if valid.len() < 2 || inl < need {
            return None;
        }
        let models: Vec<LineModel> = valid
            .iter()
            .map(|q| {
                // The piece's own line already is a robust fit: re-anchor it on the piece.
                let piece = &pts[q.start..q.end];
                let l = self.f.stab(piece, q.line.b);
                self.model_of(piece, l)
            })
            .collect();
        if let Some((resets, period, rate)) = self.sawtooth(pts, &valid, &models) {
            let mut c = Classification::bare(Class::Resetting, n, failed);
            c.resets = Some(resets);
            c.reset_period_s = Some(period);
            c.rate_ppm = Some(rate);
            c.offset_s = valid.last().map(|q| q.line.at(tend));
            c.confidence = inl as f64 / n as f64 * size;
            return Some(c);
        }
        if valid.len() > p.max_segments {
            return None;
        }
        let models: Vec<LineModel> =
            valid.iter().zip(models).map(|(q, m)| self.finish(&pts[q.start..q.end], m)).collect();
        let segments: Vec<Segment> = valid
            .iter()
            .zip(&models)
            .map(|(q, m)| Segment {
                start: t0 + pts[q.start].t,
                end: t0 + pts[q.end - 1].t,
                class: m.class,
                offset_s: m.offset_at(pts[q.end - 1].t),
                rate_ppm: Self::rate_of(m),
                n: q.len(),
            })
            .collect();
        let mut c = Classification::bare(Class::Changed, n, failed);
        c.offset_s = segments.last().map(|s| s.offset_s);
        c.rate_ppm = segments.last().map(|s| s.rate_ppm);
        c.segments = segments;
        c.confidence = inl as f64 / n as f64 * size;
        Some(c)
    }

    /// Sawtooth test on time-contiguous pieces: one common drift rate explains every tooth,
    /// and each jump between teeth goes back against the drift. Pieces the common rate does not
    /// explain count as outliers (their total must stay within `min_inlier_frac`); neighbours
    /// without a jump between them are one tooth. Returns (resets, mean period, rate ppm).
    fn sawtooth(&mut self, pts: &[Pt], pieces: &[segment::Piece], models: &[LineModel]) -> Option<(usize, f64, f64)> {
        let p = self.params.clone();
        let n = pts.len();
        // Candidate common slopes: those of the drifting pieces; the best explains the most.
        let mut best: Option<(usize, f64)> = None;
        for m in models.iter().filter(|m| m.class == Class::Drifting) {
            let b = m.line.b;
            let total: usize = pieces.iter().map(|q| self.f.stab(&pts[q.start..q.end], b).count).sum();
            if best.is_none_or(|(t, _)| total > t) {
                best = Some((total, b));
            }
        }
        let (_, b) = best?;
        if b.abs() * 1e6 < p.drift_min_ppm || (1.0 + b).abs() <= p.stuck_max_rate {
            return None;
        }
        let sign = b.signum();
        // Teeth: consistent pieces, with their intercepts at the common slope.
        let mut teeth: Vec<(usize, Line)> = Vec::new();
        let mut explained = 0usize;
        for q in pieces {
            let l = self.f.stab(&pts[q.start..q.end], b);
            if l.count + segment::allowed_outliers(&p, q.len()).max(1) >= q.len() {
                explained += l.count;
                teeth.push((q.start, l));
            }
        }
        if explained < self.need(n) || teeth.len() < 2 {
            return None;
        }
        let mut widths: Vec<f64> = pts.iter().map(Pt::width).collect();
        let w = median(&mut widths);
        let mut resets: Vec<f64> = Vec::new();
        let mut first_level: Option<f64> = None;
        let mut jumps = Vec::new();
        let mut prev = teeth[0].1;
        for &(start, l) in &teeth[1..] {
            let tb = pts[start].t;
            let d = l.at(tb) - prev.at(tb);
            if d.abs() < w {
                // Same tooth, split by a bad stretch.
                continue;
            }
            if d * sign > 0.0 {
                return None;
            }
            if first_level.is_none() {
                first_level = Some(l.at(tb));
            }
            resets.push(tb);
            jumps.push(d);
            prev = l;
        }
        if resets.is_empty() {
            return None;
        }
        if resets.len() == 1 {
            let start_level = teeth[0].1.at(pts[pieces[0].start].t);
            let post = first_level.unwrap_or(0.0);
            let tol = p.reset_level_tol_s.max(0.25 * jumps[0].abs());
            if (post - start_level).abs() > tol && post.abs() > tol {
                return None;
            }
        }
        let period = if resets.len() >= 2 {
            (resets[resets.len() - 1] - resets[0]) / (resets.len() - 1) as f64
        } else {
            resets[0] - pts[pieces[0].start].t
        };
        Some((resets.len(), period, b * 1e6))
    }
}

/// Wald–Wolfowitz runs test for k categories: z-score of the observed number of runs against
/// random ordering (negative: fewer runs, i.e. blocks in time).
pub fn runs_z(runs: usize, counts: &[usize]) -> f64 {
    let nn: f64 = counts.iter().sum::<usize>() as f64;
    if nn < 2.0 {
        return 0.0;
    }
    let s2: f64 = counts.iter().map(|&c| (c * c) as f64).sum();
    let s3: f64 = counts.iter().map(|&c| (c as f64).powi(3)).sum();
    let mean = 1.0 + (nn * nn - s2) / nn;
    let var = (s2 * (s2 + nn * (nn + 1.0)) - 2.0 * nn * s3 - nn.powi(3)) / (nn * nn * (nn - 1.0));
    if var <= 0.0 {
        return 0.0;
    }
    (runs as f64 - mean) / var.sqrt()
}

/// Classifies one series with the given parameters (allocates a fresh [`Classifier`]).
pub fn classify(samples: &[Sample], failed: usize, params: &ClassifierParams) -> Classification {
    Classifier::new(params.clone()).classify(samples, failed)
}

#[cfg(test)]
mod tests;
