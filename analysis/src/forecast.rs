//! Holt–Winters forecasting with Brutlag's confidence bands and failure counting (seed `004_*`,
//! LISA 2000; RRDtool's HWPREDICT/DEVPREDICT/FAILURES): predict each new value from level, trend
//! and an optional seasonal term, flag a *violation* when an observation falls outside the band,
//! and an *aberration* when `threshold` violations occur within the last `window` observations.
//!
//! Observations may be intervals (an offset known to lie in `[lo, hi]`): an interval violates the
//! band only when it does not overlap it. Samples may be irregular in time: the trend is a slope
//! per unit of `t`, and the prediction extrapolates it over the actual gap.

/// Parameters of the forecaster. The defaults follow Brutlag's paper: a band of 2 (up to 3)
/// smoothed deviations, 7 violations in a window of 9.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HoltWintersParams {
    /// Level smoothing (0–1): weight of the newest observation in the baseline.
    pub alpha: f64,
    /// Trend smoothing (0–1).
    pub beta: f64,
    /// Seasonal and deviation smoothing (0–1).
    pub gamma: f64,
    /// Band half-width in smoothed absolute deviations (Brutlag's δ, 2 to 3).
    pub band_scale: f64,
    /// Minimum band half-width, in the unit of the values (keeps noise-free series from
    /// alarming on the first tiny wobble).
    pub min_band: f64,
    /// Season length in observations; 0 for no seasonal term (irregular series must use 0).
    pub season_length: usize,
    /// Observations used to settle the model before violations count.
    pub warmup: usize,
    /// Failure window length (at most 64).
    pub window: usize,
    /// Violations within the window that make an aberration.
    pub threshold: usize,
}

impl Default for HoltWintersParams {
    fn default() -> Self {
        Self {
            alpha: 0.5,
            beta: 0.1,
            gamma: 0.1,
            band_scale: 3.0,
            min_band: 0.0,
            season_length: 0,
            warmup: 4,
            window: 9,
            threshold: 7,
        }
    }
}

/// What the forecaster said about one observation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ForecastStep {
    /// Time of the observation.
    pub t: f64,
    /// Value predicted for `t` before seeing the observation.
    pub predicted: f64,
    /// Lower edge of the confidence band at `t`.
    pub lower: f64,
    /// Upper edge of the confidence band at `t`.
    pub upper: f64,
    /// The observation lay outside the band (and the model was past its warm-up).
    pub violation: bool,
    /// At least `threshold` violations within the last `window` observations.
    pub aberrant: bool,
}

/// Online Holt–Winters forecaster with Brutlag failure counting.
#[derive(Clone, Debug)]
pub struct HoltWinters {
    params: HoltWintersParams,
    level: f64,
    trend: f64,
    seasonal: Vec<f64>,
    deviation: Vec<f64>,
    last_t: f64,
    seen: usize,
    violations: u64,
}

impl HoltWinters {
    /// A forecaster with the given parameters (window clamped to 1–64, threshold to the window).
    pub fn new(mut params: HoltWintersParams) -> Self {
        params.window = params.window.clamp(1, 64);
        params.threshold = params.threshold.clamp(1, params.window);
        let slots = params.season_length.max(1);
        Self {
            params,
            level: 0.0,
            trend: 0.0,
            seasonal: vec![0.0; slots],
            deviation: vec![0.0; slots],
            last_t: 0.0,
            seen: 0,
            violations: 0,
        }
    }

    /// The parameters in use.
    pub fn params(&self) -> &HoltWintersParams {
        &self.params
    }

    /// Number of observations seen.
    pub fn len(&self) -> usize {
        self.seen
    }

    /// Whether no observation was seen yet.
    pub fn is_empty(&self) -> bool {
        self.seen == 0
    }

    /// Feeds one point observation.
    pub fn observe(&mut self, t: f64, value: f64) -> ForecastStep {
        self.observe_interval(t, value, value)
    }

    /// Feeds one interval observation `[lo, hi]` (its midpoint drives the model).
    pub fn observe_interval(&mut self, t: f64, lo: f64, hi: f64) -> ForecastStep {
        self.step(t, lo, hi, false)
    }

    /// Like [`HoltWinters::observe_interval`], but after the warm-up an observation outside the
    /// band updates the level and trend only as far as the band's edge (the robust Holt–Winters
    /// filter of Gelper, Fried and Croux, 2010): a lone outlier — a stale cached `Date`, a bogus
    /// reply — cannot drag the prediction off and cause a run of false violations, while a real
    /// change keeps violating until the failure count alarms.
    pub fn observe_interval_robust(&mut self, t: f64, lo: f64, hi: f64) -> ForecastStep {
        self.step(t, lo, hi, true)
    }

    fn step(&mut self, t: f64, lo: f64, hi: f64, clip: bool) -> ForecastStep {
        let p = self.params;
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        let y = (lo + hi) / 2.0;
        let slot = if p.season_length > 0 { self.seen % p.season_length } else { 0 };
        if self.seen == 0 {
            self.level = y;
            self.last_t = t;
            self.seen = 1;
            return ForecastStep { t, predicted: y, lower: lo, upper: hi, violation: false, aberrant: false };
        }
        let dt = if p.season_length > 0 { 1.0 } else { (t - self.last_t).max(0.0) };
        let predicted = self.level + self.trend * dt + self.seasonal[slot];
        let half_band = (p.band_scale * self.deviation[slot]).max(p.min_band);
        let (lower, upper) = (predicted - half_band, predicted + half_band);
        let outside = hi < lower || lo > upper;
        let violation = outside && self.seen >= p.warmup;

        // Update the model (Holt–Winters additive form, trend per unit of t).
        let y = if clip && outside && self.seen >= p.warmup { y.clamp(lower, upper) } else { y };
        let previous_level = self.level;
        self.level = p.alpha * (y - self.seasonal[slot]) + (1.0 - p.alpha) * (self.level + self.trend * dt);
        if self.seen == 1 {
            self.trend = if dt > 0.0 { (self.level - previous_level) / dt } else { 0.0 };
        } else if dt > 0.0 {
            self.trend = p.beta * (self.level - previous_level) / dt + (1.0 - p.beta) * self.trend;
        }
        if p.season_length > 0 {
            self.seasonal[slot] = p.gamma * (y - self.level) + (1.0 - p.gamma) * self.seasonal[slot];
        }
        // The deviation only measures the miss beyond what the interval's own width explains, and
        // a miss outside the band counts only up to the band's edge (robust Holt–Winters, Gelper et
        // al. 2010): one outlier, or the first probes after a real change, must not blow the band
        // open before the failure count has seen them.
        let miss = ((y - predicted).abs() - (hi - lo) / 2.0).min(if outside && self.seen >= p.warmup {
            half_band
        } else {
            f64::INFINITY
        });
        let deviation = &mut self.deviation[slot];
        *deviation =
            if self.seen == 1 { miss.max(0.0) } else { p.gamma * miss.max(0.0) + (1.0 - p.gamma) * *deviation };

        self.violations = (self.violations << 1 | u64::from(violation)) & window_mask(p.window);
        self.last_t = t;
        self.seen += 1;
        let aberrant = self.violations.count_ones() as usize >= p.threshold;
        ForecastStep { t, predicted, lower, upper, violation, aberrant }
    }
}

fn window_mask(window: usize) -> u64 {
    if window >= 64 { u64::MAX } else { (1u64 << window) - 1 }
}

/// Runs a forecaster over a whole series of points `(t, value)` and returns every step.
pub fn forecast_series(params: HoltWintersParams, points: &[(f64, f64)]) -> Vec<ForecastStep> {
    let mut hw = HoltWinters::new(params);
    points.iter().map(|&(t, v)| hw.observe(t, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_trend_raises_no_violation() {
        let params = HoltWintersParams { min_band: 0.01, ..Default::default() };
        let points: Vec<(f64, f64)> = (0..100).map(|i| (f64::from(i) * 60.0, 5.0 + 0.001 * f64::from(i))).collect();
        let steps = forecast_series(params, &points);
        assert!(steps.iter().all(|s| !s.violation));
        // The trend is learned: the last prediction is within 1e-6 of the truth.
        let last = steps.last().unwrap();
        assert!((last.predicted - (5.0 + 0.099)).abs() < 1e-6, "{last:?}");
    }

    #[test]
    fn step_change_alarms_after_threshold_violations() {
        let params = HoltWintersParams { min_band: 0.05, alpha: 0.1, ..Default::default() };
        let mut hw = HoltWinters::new(params);
        for i in 0..50 {
            let s = hw.observe(f64::from(i), 0.0);
            assert!(!s.violation);
        }
        // A jump to 10: the first seven observations after it are violations, the seventh alarms.
        let steps: Vec<ForecastStep> = (50..60).map(|i| hw.observe(f64::from(i), 10.0)).collect();
        let first_alarm = steps.iter().position(|s| s.aberrant).unwrap();
        assert_eq!(first_alarm, 6);
        assert!(steps[..7].iter().all(|s| s.violation));
    }

    #[test]
    fn overlapping_interval_is_not_a_violation() {
        let params = HoltWintersParams { min_band: 0.01, warmup: 2, ..Default::default() };
        let mut hw = HoltWinters::new(params);
        for i in 0..10 {
            hw.observe_interval(f64::from(i), -0.5, 0.5);
        }
        // Midpoint 0.4 is far outside a tight band around 0, but the interval still covers 0.
        assert!(!hw.observe_interval(10.0, -0.1, 0.9).violation);
        assert!(hw.observe_interval(11.0, 2.0, 3.0).violation);
    }

    #[test]
    fn seasonal_pattern_is_learned() {
        let params = HoltWintersParams { season_length: 4, gamma: 0.5, min_band: 0.5, ..Default::default() };
        let pattern = [10.0, 20.0, 10.0, 0.0];
        let points: Vec<(f64, f64)> = (0..80).map(|i| (f64::from(i), pattern[i as usize % 4])).collect();
        let steps = forecast_series(params, &points);
        assert!(steps[60..].iter().all(|s| !s.violation), "{:?}", &steps[60..64]);
    }
}
