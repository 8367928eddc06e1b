//! Adaptive survey scheduling: after each probe of a (target, address, method), decide when it is
//! due again. Far-off, drifting and erratic clocks are probed more often, steady good ones less
//! and less, unreachable ones back off exponentially, a KoD RATE lengthens the interval and a KoD
//! DENY/RSTR parks the key. Pure: the probe time is passed in; every threshold is a named field.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a key got its interval. Stored next to the due time so users can see the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DueReason {
    /// Offset within `good_offset`, consistent with the previous probe.
    Steady,
    /// Offset beyond `far_off`.
    FarOff,
    /// The offset moves at more than `drift_rate` between probes, predictably.
    Drifting,
    /// The offset departed from the prediction by more than `erratic_residual`.
    Erratic,
    /// No offset (timeout, refused, bad reply, ...).
    Unreachable,
    /// The server sent KoD RATE.
    KodRate,
    /// The server sent KoD DENY or RSTR: stop asking for a long time.
    KodStop,
}

impl DueReason {
    /// The snake_case name used in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            DueReason::Steady => "steady",
            DueReason::FarOff => "far_off",
            DueReason::Drifting => "drifting",
            DueReason::Erratic => "erratic",
            DueReason::Unreachable => "unreachable",
            DueReason::KodRate => "kod_rate",
            DueReason::KodStop => "kod_stop",
        }
    }
}

impl fmt::Display for DueReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DueReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "steady" => DueReason::Steady,
            "far_off" => DueReason::FarOff,
            "drifting" => DueReason::Drifting,
            "erratic" => DueReason::Erratic,
            "unreachable" => DueReason::Unreachable,
            "kod_rate" => DueReason::KodRate,
            "kod_stop" => DueReason::KodStop,
            other => return Err(format!("unknown due reason {other:?}")),
        })
    }
}

/// Parameters of the policy. Intervals in seconds, offsets in seconds, rates in s/s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulePolicy {
    /// Interval after an erratic probe (the shortest).
    pub erratic_interval: f64,
    /// Interval while the offset drifts.
    pub drifting_interval: f64,
    /// Interval while the clock is far off but steady.
    pub far_off_interval: f64,
    /// First interval of a steady good clock; it grows by `steady_growth` per steady probe.
    pub steady_interval: f64,
    /// Growth factor of a steady good clock's interval.
    pub steady_growth: f64,
    /// Longest interval of a clock that answers.
    pub max_interval: f64,
    /// |offset| (less the measurement's half-width) beyond this is far off.
    pub far_off: f64,
    /// |offset change rate| beyond this (when the change exceeds the measurement widths) is drift.
    pub drift_rate: f64,
    /// |offset − predicted| beyond this (plus the measurement widths) is erratic.
    pub erratic_residual: f64,
    /// First interval after a failure; doubles (×`backoff_factor`) with each further failure.
    pub unreachable_interval: f64,
    /// Back-off factor of consecutive failures.
    pub backoff_factor: f64,
    /// Longest back-off interval.
    pub max_backoff: f64,
    /// A KoD RATE multiplies the current interval by this ...
    pub kod_rate_factor: f64,
    /// ... and makes it at least this long.
    pub kod_rate_min: f64,
    /// Interval after KoD DENY or RSTR.
    pub kod_stop_interval: f64,
}

impl Default for SchedulePolicy {
    fn default() -> Self {
        SchedulePolicy {
            erratic_interval: 60.0,
            drifting_interval: 300.0,
            far_off_interval: 600.0,
            steady_interval: 1800.0,
            steady_growth: 2.0,
            max_interval: 86_400.0,
            far_off: 10.0,
            drift_rate: 100e-6,
            erratic_residual: 2.0,
            unreachable_interval: 1800.0,
            backoff_factor: 2.0,
            max_backoff: 86_400.0,
            kod_rate_factor: 4.0,
            kod_rate_min: 3600.0,
            kod_stop_interval: 7.0 * 86_400.0,
        }
    }
}

/// What the policy needs to know about one probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeOutcome<'a> {
    /// When the probe was sent (Unix seconds).
    pub t: f64,
    /// Point estimate of the offset, when the probe answered.
    pub offset: Option<f64>,
    /// Interval bounds, when known.
    pub offset_lo: Option<f64>,
    /// Upper bound.
    pub offset_hi: Option<f64>,
    /// The observation's `error` field.
    pub error: Option<&'a str>,
}

/// The scheduling state of one (target, address, method), kept in the store between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DueState {
    /// When it is next due (Unix seconds).
    pub next_due: f64,
    /// The interval that produced `next_due`.
    pub interval: f64,
    /// Why.
    pub reason: DueReason,
    /// Consecutive probes without an offset.
    pub failures: u32,
    /// Last answered probe: time, offset and half-width of its interval.
    pub last_t: Option<f64>,
    /// Offset of the last answered probe.
    pub last_offset: Option<f64>,
    /// Half-width of the last answered probe's interval.
    pub last_half_width: Option<f64>,
    /// Offset change rate between the last two answered probes (s/s).
    pub last_rate: Option<f64>,
}

/// Whether a key is due at `now`: never probed, `--all`, or its due time has come.
pub fn is_due(state: Option<&DueState>, now: f64, all: bool) -> bool {
    all || state.is_none_or(|s| s.next_due <= now)
}

impl SchedulePolicy {
    /// The state after `outcome`, given the previous state (None for a key never probed).
    pub fn next(&self, prev: Option<&DueState>, outcome: &ProbeOutcome<'_>) -> DueState {
        let prev_interval = prev.map(|p| p.interval);
        let mut st = match prev {
            Some(p) => p.clone(),
            None => DueState {
                next_due: outcome.t,
                interval: 0.0,
                reason: DueReason::Steady,
                failures: 0,
                last_t: None,
                last_offset: None,
                last_half_width: None,
                last_rate: None,
            },
        };
        let kod = outcome.error.and_then(|e| e.strip_prefix("kod:"));
        let (interval, reason) = match (kod, outcome.offset) {
            (Some("RATE"), _) => {
                let base = prev_interval.unwrap_or(self.steady_interval).max(1.0);
                ((base * self.kod_rate_factor).max(self.kod_rate_min), DueReason::KodRate)
            }
            (Some("DENY" | "RSTR"), _) => (self.kod_stop_interval, DueReason::KodStop),
            (_, None) => {
                st.failures = st.failures.saturating_add(1);
                let exp = i32::try_from(st.failures - 1).unwrap_or(i32::MAX).min(64);
                let iv = (self.unreachable_interval * self.backoff_factor.powi(exp)).min(self.max_backoff);
                (iv, DueReason::Unreachable)
            }
            (_, Some(offset)) => {
                st.failures = 0;
                let half = match (outcome.offset_lo, outcome.offset_hi) {
                    (Some(lo), Some(hi)) if hi >= lo => (hi - lo) / 2.0,
                    _ => 0.0,
                };
                let verdict = self.judge(&st, outcome.t, offset, half);
                if let (Some(lt), Some(lo)) = (st.last_t, st.last_offset) {
                    let dt = outcome.t - lt;
                    if dt > 0.0 {
                        st.last_rate = Some((offset - lo) / dt);
                    }
                }
                st.last_t = Some(outcome.t);
                st.last_offset = Some(offset);
                st.last_half_width = Some(half);
                match verdict {
                    DueReason::Steady => {
                        let iv = match (prev.map(|p| p.reason), prev_interval) {
                            (Some(DueReason::Steady), Some(iv)) => iv * self.steady_growth,
                            _ => self.steady_interval,
                        };
                        (iv.clamp(self.steady_interval.min(self.max_interval), self.max_interval), verdict)
                    }
                    DueReason::FarOff => (self.far_off_interval, verdict),
                    DueReason::Drifting => (self.drifting_interval, verdict),
                    _ => (self.erratic_interval, DueReason::Erratic),
                }
            }
        };
        st.interval = interval;
        st.reason = reason;
        st.next_due = outcome.t + interval;
        st
    }

    /// Classifies an answered probe against the previous answered one.
    fn judge(&self, prev: &DueState, t: f64, offset: f64, half: f64) -> DueReason {
        if let (Some(lt), Some(lo), Some(lh)) = (prev.last_t, prev.last_offset, prev.last_half_width) {
            let dt = t - lt;
            let widths = half + lh;
            let predicted = lo + prev.last_rate.unwrap_or(0.0) * dt.max(0.0);
            if (offset - predicted).abs() > self.erratic_residual + widths {
                return DueReason::Erratic;
            }
            let change = offset - lo;
            if dt > 0.0 && change.abs() > widths && (change / dt).abs() > self.drift_rate {
                return DueReason::Drifting;
            }
        }
        if offset.abs() - half > self.far_off { DueReason::FarOff } else { DueReason::Steady }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(t: f64, offset: f64, half: f64) -> ProbeOutcome<'static> {
        ProbeOutcome {
            t,
            offset: Some(offset),
            offset_lo: Some(offset - half),
            offset_hi: Some(offset + half),
            error: None,
        }
    }
    fn fail(t: f64, error: &'static str) -> ProbeOutcome<'static> {
        ProbeOutcome { t, offset: None, offset_lo: None, offset_hi: None, error: Some(error) }
    }

    #[test]
    fn steady_good_clock_backs_off_to_the_maximum() {
        let p = SchedulePolicy::default();
        let mut s = p.next(None, &ok(1000.0, 0.01, 0.001));
        assert_eq!((s.reason, s.interval, s.next_due), (DueReason::Steady, 1800.0, 2800.0));
        let mut t = 1000.0;
        let mut seen = vec![];
        for _ in 0..8 {
            t = s.next_due;
            s = p.next(Some(&s), &ok(t, 0.01, 0.001));
            seen.push(s.interval);
        }
        assert_eq!(seen, vec![3600.0, 7200.0, 14400.0, 28800.0, 57600.0, 86400.0, 86400.0, 86400.0]);
        assert_eq!(s.next_due, t + 86400.0);
    }

    #[test]
    fn far_off_steady_clock_is_probed_more_often() {
        let p = SchedulePolicy::default();
        let s = p.next(None, &ok(0.0, -90.0, 0.5));
        assert_eq!((s.reason, s.interval), (DueReason::FarOff, 600.0));
        let s = p.next(Some(&s), &ok(600.0, -90.0, 0.5));
        assert_eq!((s.reason, s.interval, s.next_due), (DueReason::FarOff, 600.0, 1200.0));
        // Within the interval's half-width of the threshold: not far off.
        let s = p.next(None, &ok(0.0, 10.4, 0.5));
        assert_eq!(s.reason, DueReason::Steady);
    }

    #[test]
    fn drifting_then_erratic() {
        let p = SchedulePolicy::default();
        let s = p.next(None, &ok(0.0, 0.0, 0.001));
        // 1000 ppm over 1800 s = 1.8 s: drift, below the erratic residual of 2 s.
        let s = p.next(Some(&s), &ok(1800.0, 1.8, 0.001));
        assert_eq!((s.reason, s.interval), (DueReason::Drifting, 300.0));
        assert!((s.last_rate.unwrap() - 0.001).abs() < 1e-12);
        // Continuing on the predicted line: still drifting, not erratic.
        let s = p.next(Some(&s), &ok(2100.0, 2.1, 0.001));
        assert_eq!(s.reason, DueReason::Drifting);
        // A jump of 30 s away from the prediction: erratic.
        let s = p.next(Some(&s), &ok(2400.0, 32.4, 0.001));
        assert_eq!((s.reason, s.interval, s.next_due), (DueReason::Erratic, 60.0, 2460.0));
        // HTTP resolution (half-width 0.5 s) hides a 0.8 s change: steady.
        let s = p.next(None, &ok(0.0, 0.0, 0.5));
        let s = p.next(Some(&s), &ok(60.0, 0.8, 0.5));
        assert_eq!(s.reason, DueReason::Steady);
    }

    #[test]
    fn unreachable_backs_off_and_recovers() {
        let p = SchedulePolicy::default();
        let mut s = p.next(None, &fail(0.0, "timeout"));
        let mut ivs = vec![s.interval];
        for _ in 0..7 {
            s = p.next(Some(&s), &fail(s.next_due, "timeout"));
            ivs.push(s.interval);
        }
        assert_eq!(ivs, vec![1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 57600.0, 86400.0, 86400.0]);
        assert_eq!(s.failures, 8);
        let s = p.next(Some(&s), &ok(1e6, 0.0, 0.01));
        assert_eq!((s.failures, s.reason, s.interval), (0, DueReason::Steady, 1800.0));
    }

    #[test]
    fn kod_rate_lengthens_and_deny_parks() {
        let p = SchedulePolicy::default();
        let s = p.next(None, &ok(0.0, -90.0, 0.01));
        assert_eq!(s.interval, 600.0);
        let s = p.next(Some(&s), &fail(600.0, "kod:RATE"));
        assert_eq!((s.reason, s.interval, s.next_due), (DueReason::KodRate, 3600.0, 4200.0));
        let s = p.next(Some(&s), &fail(4200.0, "kod:RATE"));
        assert_eq!(s.interval, 14400.0);
        assert_eq!(s.failures, 0, "KoD is an answer, not a failure");
        let s = p.next(Some(&s), &fail(0.0, "kod:DENY"));
        assert_eq!((s.reason, s.interval), (DueReason::KodStop, 604800.0));
    }

    #[test]
    fn due_rules() {
        let p = SchedulePolicy::default();
        let s = p.next(None, &ok(100.0, 0.0, 0.0));
        assert!(is_due(None, 0.0, false));
        assert!(!is_due(Some(&s), 1899.0, false));
        assert!(is_due(Some(&s), 1900.0, false));
        assert!(is_due(Some(&s), 0.0, true));
        for r in ["steady", "far_off", "drifting", "erratic", "unreachable", "kod_rate", "kod_stop"] {
            assert_eq!(r.parse::<DueReason>().unwrap().as_str(), r);
        }
    }
}
