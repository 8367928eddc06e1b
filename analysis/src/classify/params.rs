//! The thresholds of the clock-behaviour classifier, each a named field with a documented
//! default. Overridable field by field from JSON (`serde(default)` fills what is left out).

use serde::{Deserialize, Serialize};

/// Every threshold the classifier uses. Times are seconds, rates ppm (parts per million).
///
/// The defaults are chosen from what real clocks do, not from the project's own generator:
/// `ok_max_offset_s` is NTP's step threshold (RFC 5905 STEPT, 128 ms: a clock within it is one
/// NTP would slew, not step); `slack_s` is above the jitter of a disciplined server's clock and
/// far below any offset worth reporting; `drift_min_ppm` is below the frequency error of any
/// free-running crystal (typically 5–100 ppm) and above the residual frequency error of a
/// disciplined clock (< 0.1 ppm).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierParams {
    /// Fewer answered probes than this: `insufficient`. Default 4.
    pub min_points: usize,
    /// Each interval is widened by this much on both sides before lines are fitted through it,
    /// to absorb clock jitter and timestamping noise. Default 0.005 s.
    pub slack_s: f64,
    /// ... plus this fraction of the interval's own width (HTTP intervals are ~1 s wide).
    /// Default 0.02.
    pub slack_frac: f64,
    /// When nothing fits, readings scattered about a line by up to this much more than their
    /// intervals admit (jittery clocks, late timestamps) are given that much extra slack and
    /// classified again. 0 turns this off. Default 0.1 s.
    pub max_noise_s: f64,
    /// A model "fits" when it passes through at least this fraction of the intervals (the rest
    /// are outliers: stale cached `Date`s, bad replies). Default 0.8.
    pub min_inlier_frac: f64,
    /// Offsets within this of zero are `ok` (the interval of offsets consistent with the data
    /// only has to reach this band). Default 0.128 s (NTP's step threshold).
    pub ok_max_offset_s: f64,
    /// For a constant offset, the range of offsets reported and tested against `ok_max_offset_s`
    /// is where all but this fraction of the explained readings agree. Default 0.02.
    pub offset_range_frac: f64,
    /// A rate smaller than this is never called drifting, whatever the data. Default 1 ppm.
    pub drift_min_ppm: f64,
    /// A sloped line must explain at least this many more intervals than the best constant to
    /// be preferred (else the drift is too small to detect in the span). Default 2.
    pub drift_gain_min: usize,
    /// ... and at least this fraction of the series more. Default 0.03.
    pub drift_gain_frac: f64,
    /// A clock whose rate (remote seconds per true second) is below this is `stuck`
    /// (a frozen clock has rate 0, a nearly stopped one 0.001). Default 0.05.
    pub stuck_max_rate: f64,
    /// Number of point pairs tried as candidate lines (RANSAC) per fit. Default 24.
    pub ransac_pairs: usize,
    /// Candidate pairs must be at least this fraction of the span apart in time. Default 0.2.
    pub ransac_min_span_frac: f64,
    /// A segment, backend or second structure needs at least this many points. Default 3.
    pub min_segment_points: usize,
    /// Outliers of a good single line that themselves form a line holding at least this fraction
    /// of the series are a second structure (a change or a second backend). Default 0.05.
    pub structure_min_frac: f64,
    /// A load-balancer backend needs at least this share of the points. Default 0.05.
    pub min_backend_share: f64,
    /// At most this many backends are searched for. Default 3.
    pub max_backends: usize,
    /// Two lines closer than this over the whole span are one clock. Default 0.05 s.
    pub backend_min_separation_s: f64,
    /// Runs test: the backends alternate (load balancer) unless the number of runs is more than
    /// this many standard deviations below what random alternation gives. Default 3.0.
    pub lb_runs_z: f64,
    /// At most this many segments make a `changed` history (more is `random`). Default 5.
    pub max_segments: usize,
    /// Fraction of a segment's points that may be outliers (as for a single line:
    /// 1 − `min_inlier_frac`). Default 0.2.
    pub segment_outlier_frac: f64,
    /// A single reset counts as `resetting` only if the clock comes back to within this (or a
    /// quarter of the jump) of where the previous tooth started, or of zero. Default 0.5 s.
    pub reset_level_tol_s: f64,
    /// Offsets within this of a non-zero whole number of hours are flagged `timezone_suspect`.
    /// Default 60 s.
    pub timezone_tol_s: f64,
    /// Confidence grows as `1 - exp(-n / confidence_n_scale)` with the number of points.
    /// Default 10.
    pub confidence_n_scale: f64,
    /// Addresses of one name agree when their offsets now differ by at most this. Default 0.5 s.
    pub name_agree_tol_s: f64,
}

impl Default for ClassifierParams {
    fn default() -> Self {
        Self {
            min_points: 4,
            slack_s: 0.005,
            slack_frac: 0.02,
            max_noise_s: 0.1,
            min_inlier_frac: 0.8,
            ok_max_offset_s: 0.128,
            offset_range_frac: 0.02,
            drift_min_ppm: 1.0,
            drift_gain_min: 2,
            drift_gain_frac: 0.03,
            stuck_max_rate: 0.05,
            ransac_pairs: 24,
            ransac_min_span_frac: 0.2,
            min_segment_points: 3,
            structure_min_frac: 0.05,
            min_backend_share: 0.05,
            max_backends: 3,
            backend_min_separation_s: 0.05,
            lb_runs_z: 3.0,
            max_segments: 5,
            segment_outlier_frac: 0.2,
            reset_level_tol_s: 0.5,
            timezone_tol_s: 60.0,
            confidence_n_scale: 10.0,
            name_agree_tol_s: 0.5,
        }
    }
}

/// A parameter value out of its valid range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("classifier parameter {name} = {value} is invalid: {why}")]
pub struct ParamError {
    /// Field name.
    pub name: &'static str,
    /// The value given.
    pub value: f64,
    /// What the valid range is.
    pub why: &'static str,
}

impl ClassifierParams {
    /// Checks every field is in its valid range.
    pub fn validate(&self) -> Result<(), ParamError> {
        let frac = |name, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(ParamError { name, value: v, why: "must be between 0 and 1" })
            }
        };
        let nonneg = |name, v: f64| {
            if v >= 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(ParamError { name, value: v, why: "must be a finite number >= 0" })
            }
        };
        let pos = |name, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(ParamError { name, value: v, why: "must be a finite number > 0" })
            }
        };
        frac("slack_frac", self.slack_frac)?;
        frac("min_inlier_frac", self.min_inlier_frac)?;
        frac("drift_gain_frac", self.drift_gain_frac)?;
        frac("offset_range_frac", self.offset_range_frac)?;
        frac("stuck_max_rate", self.stuck_max_rate)?;
        frac("ransac_min_span_frac", self.ransac_min_span_frac)?;
        frac("structure_min_frac", self.structure_min_frac)?;
        frac("min_backend_share", self.min_backend_share)?;
        frac("segment_outlier_frac", self.segment_outlier_frac)?;
        nonneg("slack_s", self.slack_s)?;
        nonneg("ok_max_offset_s", self.ok_max_offset_s)?;
        nonneg("max_noise_s", self.max_noise_s)?;
        nonneg("drift_min_ppm", self.drift_min_ppm)?;
        nonneg("backend_min_separation_s", self.backend_min_separation_s)?;
        nonneg("lb_runs_z", self.lb_runs_z)?;
        nonneg("reset_level_tol_s", self.reset_level_tol_s)?;
        nonneg("timezone_tol_s", self.timezone_tol_s)?;
        nonneg("name_agree_tol_s", self.name_agree_tol_s)?;
        pos("confidence_n_scale", self.confidence_n_scale)?;
        let at_least = |name, v: usize, min: usize| {
            if v >= min {
                Ok(())
            } else {
                Err(ParamError {
                    name,
                    value: v as f64,
                    why: "is below its minimum (min_points 2, min_segment_points 2, ransac_pairs 1, max_backends 2, max_segments 2)",
                })
            }
        };
        at_least("min_points", self.min_points, 2)?;
        at_least("min_segment_points", self.min_segment_points, 2)?;
        at_least("ransac_pairs", self.ransac_pairs, 1)?;
        at_least("max_backends", self.max_backends, 2)?;
        at_least("max_segments", self.max_segments, 2)?;
        Ok(())
    }
}
