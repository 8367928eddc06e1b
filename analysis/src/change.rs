//! Change detection on the offset history of one series (DESIGN.md §5).
//!
//! - **Offline**: [`offline_changes`] segments the whole history into behaviours (the robust
//!   interval segmentation of [`crate::classify::segment`]) and reports when each change happened
//!   and from what to what.
//! - **Online**: [`OnlineCheck`] is the check the survey runs after each probe, Brutlag-style on
//!   top of [`crate::forecast::HoltWinters`]: predict the offset from level + trend, a violation
//!   is an interval entirely outside the band, an alarm is 7 violations within the last 9 probes.
//!   The check holds no I/O; a survey run from cron rebuilds it by replaying the stored history
//!   of the series ([`OnlineCheck::replay`], linear time) and then feeds the new probe.

use crate::classify::{Class, Classifier, ClassifierParams, Pt, Sample, segment};
use crate::forecast::{ForecastStep, HoltWinters, HoltWintersParams};
use serde::Serialize;

/// Parameters of the online check: Brutlag's defaults (band of 3 smoothed deviations, 7
/// violations in a window of 9) with a floor on the band suited to clock offsets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OnlineParams {
    /// The forecaster's parameters (level/trend smoothing, band scale, window, threshold).
    pub forecast: HoltWintersParams,
}

impl Default for OnlineParams {
    fn default() -> Self {
        Self {
            forecast: HoltWintersParams {
                alpha: 0.5,
                beta: 0.1,
                gamma: 0.1,
                band_scale: 3.0,
                // A band narrower than 50 ms would alarm on the jitter of an NTP-disciplined
                // clock seen through a congested path; offsets of interest are larger.
                min_band: 0.05,
                season_length: 0,
                warmup: 4,
                window: 9,
                threshold: 7,
            },
        }
    }
}

/// The online check's verdict on one probe.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OnlineVerdict {
    /// Local time of the probe.
    pub t: f64,
    /// Offset predicted before the probe.
    pub predicted: f64,
    /// Band edges.
    pub lower: f64,
    /// Upper band edge.
    pub upper: f64,
    /// The probe's interval lay entirely outside the band.
    pub violation: bool,
    /// Enough recent violations: the behaviour has changed.
    pub alarm: bool,
    /// This probe raised the alarm (the previous one had none).
    pub new_alarm: bool,
}

/// Online change check for one series. Outliers move the model only to the band's edge
/// ([`HoltWinters::observe_interval_robust`]); when an alarm is raised the model is rebuilt from
/// the probes that violated, so that it follows the new behaviour from then on.
#[derive(Clone, Debug)]
pub struct OnlineCheck {
    params: OnlineParams,
    hw: HoltWinters,
    alarmed: bool,
    /// The last `window` probes with whether each violated.
    recent: std::collections::VecDeque<(Sample, bool)>,
}

impl OnlineCheck {
    /// A fresh check.
    pub fn new(params: OnlineParams) -> Self {
        Self {
            params,
            hw: HoltWinters::new(params.forecast),
            alarmed: false,
            recent: std::collections::VecDeque::new(),
        }
    }

    /// Feeds the next probe (in time order).
    pub fn observe(&mut self, s: &Sample) -> OnlineVerdict {
        let ForecastStep { t, predicted, lower, upper, violation, aberrant } =
            self.hw.observe_interval_robust(s.t, s.lo, s.hi);
        let new_alarm = aberrant && !self.alarmed;
        self.alarmed = aberrant;
        self.recent.push_back((*s, violation));
        while self.recent.len() > self.params.forecast.window.max(1) {
            self.recent.pop_front();
        }
        if new_alarm {
            // Re-baseline on the new behaviour: the probes that violated.
            let mut hw = HoltWinters::new(self.params.forecast);
            for (x, _) in self.recent.iter().filter(|(_, v)| *v) {
                hw.observe_interval_robust(x.t, x.lo, x.hi);
            }
            self.hw = hw;
        }
        OnlineVerdict { t, predicted, lower, upper, violation, alarm: aberrant, new_alarm }
    }

    /// Rebuilds the check from a stored history (sorted by time) and returns it with the
    /// verdict on the last probe.
    pub fn replay(params: OnlineParams, history: &[Sample]) -> (Self, Option<OnlineVerdict>) {
        let mut c = Self::new(params);
        let mut last = None;
        for s in history {
            last = Some(c.observe(s));
        }
        (c, last)
    }
}

/// Times at which the online check raised an alarm over a whole history (sorted by time).
pub fn online_alarms(params: OnlineParams, history: &[Sample]) -> Vec<f64> {
    let mut c = OnlineCheck::new(params);
    history.iter().map(|s| c.observe(s)).filter(|v| v.new_alarm).map(|v| v.t).collect()
}

/// One change found by offline segmentation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// Local time of the last probe of the old behaviour.
    pub last_before: f64,
    /// Local time of the first probe of the new behaviour.
    pub first_after: f64,
    /// Behaviour before.
    pub before: Class,
    /// Behaviour after.
    pub after: Class,
    /// Offset jump at the change (new line minus old line at `first_after`), seconds.
    pub jump_s: f64,
}

/// Segments a history into behaviours and reports the changes between them. Uses the
/// classifier's slack, outlier and segment parameters. Empty when the history is one behaviour
/// (or too chaotic to segment into at most `max_segments` pieces).
pub fn offline_changes(samples: &[Sample], params: &ClassifierParams) -> Vec<Change> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(|a, b| a.t.total_cmp(&b.t));
    let Some(first) = sorted.first() else { return Vec::new() };
    let t0 = first.t;
    let pts: Vec<Pt> = sorted
        .iter()
        .map(|s| {
            let w = params.slack_s + params.slack_frac * (s.hi - s.lo);
            Pt { t: s.t - t0, lo: s.lo - w, hi: s.hi + w }
        })
        .collect();
    let mut f = crate::classify::Fitter::default();
    let Some(pieces) = segment::segment(&mut f, &pts, params, params.max_segments) else { return Vec::new() };
    let pieces: Vec<segment::Piece> = pieces.into_iter().filter(|q| q.len() >= params.min_segment_points).collect();
    let mut cl = Classifier::new(params.clone());
    let classes: Vec<Class> = pieces
        .iter()
        .map(|q| {
            let c = cl.classify(&sorted[q.start..q.end], 0);
            match c.class {
                // A piece is one line: anything else means it was too short to say more.
                Class::Ok | Class::Offset | Class::Drifting | Class::Stuck => c.class,
                _ => Class::Insufficient,
            }
        })
        .collect();
    pieces
        .windows(2)
        .zip(classes.windows(2))
        .map(|(w, c)| {
            let tb = pts[w[1].start].t;
            Change {
                last_before: t0 + pts[w[0].end - 1].t,
                first_after: t0 + tb,
                before: c[0],
                after: c[1],
                jump_s: w[1].line.at(tb) - w[0].line.at(tb),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ntp(n: usize, f: impl Fn(usize) -> f64) -> Vec<Sample> {
        (0..n)
            .map(|i| {
                let x = f(i);
                Sample { t: 1.7e9 + i as f64 * 600.0, lo: x - 0.01, hi: x + 0.01 }
            })
            .collect()
    }

    #[test]
    fn online_alarm_seven_probes_after_a_jump() {
        let s = ntp(60, |i| if i < 40 { 0.0 } else { 30.0 });
        let alarms = online_alarms(OnlineParams::default(), &s);
        // Probes 40..46 are the seven violations; the alarm is raised at probe 46.
        assert_eq!(alarms, vec![s[46].t]);
    }

    #[test]
    fn online_no_alarm_on_steady_drift_with_outliers() {
        let mut s = ntp(200, |i| 0.0002 * 600.0 * i as f64);
        for k in [30, 31, 90, 150] {
            s[k].lo -= 100.0;
            s[k].hi -= 100.0;
        }
        assert!(online_alarms(OnlineParams::default(), &s).is_empty());
    }

    #[test]
    fn replay_matches_streaming() {
        let s = ntp(50, |i| if i < 30 { 1.0 } else { -5.0 });
        let (_, last) = OnlineCheck::replay(OnlineParams::default(), &s);
        let mut c = OnlineCheck::new(OnlineParams::default());
        let v: Vec<OnlineVerdict> = s.iter().map(|x| c.observe(x)).collect();
        assert_eq!(last, v.last().copied());
        // Raised once, at the seventh violating probe, then the model follows the new offset.
        let raised: Vec<usize> = (0..50).filter(|&i| v[i].new_alarm).collect();
        assert_eq!(raised, vec![36]);
        assert!(v[45..].iter().all(|x| !x.violation), "{:?}", &v[45..]);
    }

    #[test]
    fn offline_change_time_and_classes() {
        let s = ntp(60, |i| if i < 25 { 0.0 } else { 45.0 });
        let ch = offline_changes(&s, &ClassifierParams::default());
        assert_eq!(ch.len(), 1, "{ch:?}");
        assert_eq!(ch[0].first_after, s[25].t);
        assert_eq!(ch[0].last_before, s[24].t);
        assert_eq!((ch[0].before, ch[0].after), (Class::Ok, Class::Offset));
        assert!((ch[0].jump_s - 45.0).abs() < 0.05);
        assert!(offline_changes(&ntp(60, |_| 3.0), &ClassifierParams::default()).is_empty());
    }
}
