//! Clock models of the lab: each maps the true time (Unix seconds) to what a misbehaving clock
//! reads. Rates are chosen so that a minute of probing shows them (DESIGN.md §5 classes).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Default drift of `drift` when no rate is given: +2000 ppm (0.12 s per minute).
pub const DEFAULT_DRIFT_PPM: f64 = 2000.0;
/// Default offset of `offset`: +90 s.
pub const DEFAULT_OFFSET_S: f64 = 90.0;
/// Default rate of the sawtooth of `resetting`: +20000 ppm (0.3 s gained per 15 s period).
pub const DEFAULT_RESET_RATE_PPM: f64 = 20_000.0;
/// Default period of `resetting`: 15 s.
pub const DEFAULT_RESET_PERIOD_S: f64 = 15.0;
/// Default half-width of `random`: offsets uniform in ±30 s.
pub const DEFAULT_RANDOM_SPAN_S: f64 = 30.0;
/// Default offsets of the two machines behind one address (`balanced`).
pub const DEFAULT_BALANCED_OFFSETS_S: [f64; 2] = [0.0, 30.0];

/// One behaviour of a lab clock, as given on the command line (`offset=+90`, `drift=2000ppm`,
/// `stuck`, `resetting=20000ppm/15s`, `random=30`, `balanced=0/+30`, `ok`, `silent`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Behaviour {
    /// A correct clock.
    Ok,
    /// A constant error of `seconds`.
    Offset {
        /// Offset, seconds (positive: ahead).
        seconds: f64,
    },
    /// A clock running at the wrong rate, correct at the lab's start.
    Drifting {
        /// Rate error, parts per million (positive: gains time).
        ppm: f64,
    },
    /// A clock that does not advance: it reads the lab's start time (plus `seconds`) forever.
    Stuck {
        /// Offset at the lab's start.
        seconds: f64,
    },
    /// A sawtooth: drifts at `ppm`, is set right every `period` seconds.
    Resetting {
        /// Rate error between resets, ppm.
        ppm: f64,
        /// Seconds between resets.
        period: f64,
    },
    /// An offset drawn anew for every reading, uniform in ±`span` seconds.
    Random {
        /// Half-width, seconds.
        span: f64,
    },
    /// Several machines behind one address, a different one answering each request.
    Balanced {
        /// Each machine's constant offset, seconds.
        offsets: Vec<f64>,
    },
    /// An address that never answers.
    Silent,
}

/// Why a behaviour string was not understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad lab behaviour {input:?}: {reason}")]
pub struct ParseBehaviourError {
    /// The text given.
    pub input: String,
    /// What was wrong with it.
    pub reason: String,
}

fn number(input: &str, text: &str, suffix: &str) -> Result<f64, ParseBehaviourError> {
    let t = text.trim();
    let t = t.strip_suffix(suffix).unwrap_or(t);
    let t = t.strip_prefix('+').unwrap_or(t);
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(ParseBehaviourError { input: input.to_string(), reason: format!("{text:?} is not a number") }),
    }
}

impl FromStr for Behaviour {
    type Err = ParseBehaviourError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, arg) = match s.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (s.trim(), None),
        };
        let bad = |reason: &str| ParseBehaviourError { input: s.to_string(), reason: reason.to_string() };
        let b = match name {
            "ok" => Behaviour::Ok,
            "silent" => Behaviour::Silent,
            "offset" => Behaviour::Offset { seconds: arg.map_or(Ok(DEFAULT_OFFSET_S), |a| number(s, a, "s"))? },
            "drift" | "drifting" => {
                Behaviour::Drifting { ppm: arg.map_or(Ok(DEFAULT_DRIFT_PPM), |a| number(s, a, "ppm"))? }
            }
            "stuck" => Behaviour::Stuck { seconds: arg.map_or(Ok(0.0), |a| number(s, a, "s"))? },
            "reset" | "resetting" => {
                let (ppm, period) = match arg {
                    None => (DEFAULT_RESET_RATE_PPM, DEFAULT_RESET_PERIOD_S),
                    Some(a) => match a.split_once('/') {
                        Some((r, p)) => (number(s, r, "ppm")?, number(s, p, "s")?),
                        None => (number(s, a, "ppm")?, DEFAULT_RESET_PERIOD_S),
                    },
                };
                if period <= 0.0 {
                    return Err(bad("the reset period must be positive"));
                }
                Behaviour::Resetting { ppm, period }
            }
            "random" => Behaviour::Random { span: arg.map_or(Ok(DEFAULT_RANDOM_SPAN_S), |a| number(s, a, "s"))?.abs() },
            "balanced" | "load_balanced" => {
                let offsets = match arg {
                    None => DEFAULT_BALANCED_OFFSETS_S.to_vec(),
                    Some(a) => a.split('/').map(|x| number(s, x, "s")).collect::<Result<Vec<_>, _>>()?,
                };
                if offsets.len() < 2 {
                    return Err(bad("balanced needs at least two offsets, e.g. balanced=0/+30"));
                }
                Behaviour::Balanced { offsets }
            }
            _ => {
                return Err(bad(
                    "expected ok, offset[=S], drift[=PPMppm], stuck[=S], resetting[=PPMppm/Ss], random[=S], \
                     balanced[=S/S...] or silent",
                ));
            }
        };
        Ok(b)
    }
}

impl Behaviour {
    /// The class (DESIGN.md §5) a classifier should give a series read from this clock.
    pub fn expected_class(&self) -> &'static str {
        match self {
            Behaviour::Ok => "ok",
            Behaviour::Offset { .. } => "offset",
            Behaviour::Drifting { .. } => "drifting",
            Behaviour::Stuck { .. } => "stuck",
            Behaviour::Resetting { .. } => "resetting",
            Behaviour::Random { .. } => "random",
            Behaviour::Balanced { .. } => "load_balanced",
            Behaviour::Silent => "unreachable",
        }
    }

    /// A short name for host names and listings (`offset`, `drift`, ...).
    pub fn short_name(&self) -> &'static str {
        match self {
            Behaviour::Ok => "ok",
            Behaviour::Offset { .. } => "offset",
            Behaviour::Drifting { .. } => "drift",
            Behaviour::Stuck { .. } => "stuck",
            Behaviour::Resetting { .. } => "resetting",
            Behaviour::Random { .. } => "random",
            Behaviour::Balanced { .. } => "balanced",
            Behaviour::Silent => "silent",
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Behaviour::Ok => write!(f, "ok"),
            Behaviour::Offset { seconds } => write!(f, "offset={seconds:+}s"),
            Behaviour::Drifting { ppm } => write!(f, "drift={ppm:+}ppm"),
            Behaviour::Stuck { seconds } => write!(f, "stuck={seconds:+}s"),
            Behaviour::Resetting { ppm, period } => write!(f, "resetting={ppm:+}ppm/{period}s"),
            Behaviour::Random { span } => write!(f, "random={span}s"),
            Behaviour::Balanced { offsets } => {
                let parts: Vec<String> = offsets.iter().map(|o| format!("{o:+}")).collect();
                write!(f, "balanced={}", parts.join("/"))
            }
            Behaviour::Silent => write!(f, "silent"),
        }
    }
}

/// A lab clock: a behaviour anchored at the lab's start time. `read` is pure: the same true time
/// and request number always give the same reading.
#[derive(Clone, Debug, PartialEq)]
pub struct LabClock {
    /// The behaviour.
    pub behaviour: Behaviour,
    /// True Unix time at which the lab started (drift and resets count from here).
    pub start: f64,
    /// Seed of `random` and of the choice of machine of `balanced`.
    pub seed: u64,
}

/// SplitMix64: a tiny, well-mixed hash used for the deterministic random readings.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A number in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl LabClock {
    /// A clock with this behaviour started at `start`.
    pub fn new(behaviour: Behaviour, start: f64, seed: u64) -> Self {
        Self { behaviour, start, seed }
    }

    /// The offset (reading minus true time) of this clock at true time `now` for the
    /// `request`-th request it answers (`random` and `balanced` vary per request).
    pub fn offset_at(&self, now: f64, request: u64) -> f64 {
        let elapsed = now - self.start;
        match &self.behaviour {
            Behaviour::Ok | Behaviour::Silent => 0.0,
            Behaviour::Offset { seconds } => *seconds,
            Behaviour::Drifting { ppm } => elapsed * ppm * 1e-6,
            Behaviour::Stuck { seconds } => seconds - elapsed,
            Behaviour::Resetting { ppm, period } => elapsed.rem_euclid(*period) * ppm * 1e-6,
            Behaviour::Random { span } => (unit(splitmix64(self.seed ^ splitmix64(request))) * 2.0 - 1.0) * span,
            Behaviour::Balanced { offsets } => {
                let i = splitmix64(self.seed ^ splitmix64(request)) % offsets.len() as u64;
                offsets[i as usize]
            }
        }
    }

    /// What the clock reads at true time `now` for the `request`-th request.
    pub fn read(&self, now: f64, request: u64) -> f64 {
        now + self.offset_at(now, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_behaviour() {
        assert_eq!("ok".parse::<Behaviour>().unwrap(), Behaviour::Ok);
        assert_eq!("offset=+90".parse::<Behaviour>().unwrap(), Behaviour::Offset { seconds: 90.0 });
        assert_eq!("offset=-1.5s".parse::<Behaviour>().unwrap(), Behaviour::Offset { seconds: -1.5 });
        assert_eq!("drift=2000ppm".parse::<Behaviour>().unwrap(), Behaviour::Drifting { ppm: 2000.0 });
        assert_eq!("stuck".parse::<Behaviour>().unwrap(), Behaviour::Stuck { seconds: 0.0 });
        assert_eq!(
            "resetting=10000ppm/20s".parse::<Behaviour>().unwrap(),
            Behaviour::Resetting { ppm: 10000.0, period: 20.0 }
        );
        assert_eq!("random=5".parse::<Behaviour>().unwrap(), Behaviour::Random { span: 5.0 });
        assert_eq!(
            "balanced=0/+30/-10".parse::<Behaviour>().unwrap(),
            Behaviour::Balanced { offsets: vec![0.0, 30.0, -10.0] }
        );
        assert_eq!("silent".parse::<Behaviour>().unwrap(), Behaviour::Silent);
    }

    #[test]
    fn rejects_bad_input_with_reason() {
        let e = "drift=fast".parse::<Behaviour>().unwrap_err();
        assert!(e.to_string().contains("\"fast\" is not a number"), "{e}");
        assert!("wobbly".parse::<Behaviour>().is_err());
        assert!("resetting=100ppm/0s".parse::<Behaviour>().is_err());
        assert!("balanced=5".parse::<Behaviour>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for text in ["ok", "offset=+90s", "drift=+2000ppm", "resetting=+20000ppm/15s", "balanced=+0/+30", "silent"] {
            let b: Behaviour = text.parse().unwrap();
            assert_eq!(b.to_string().parse::<Behaviour>().unwrap(), b);
        }
    }

    #[test]
    fn models_read_as_specified() {
        let start = 1_000_000.0;
        let c = |b: &str| LabClock::new(b.parse().unwrap(), start, 7);
        assert_eq!(c("ok").read(start + 10.0, 0), start + 10.0);
        assert_eq!(c("offset=-90").read(start + 10.0, 0), start - 80.0);
        assert!((c("drift=2000ppm").offset_at(start + 60.0, 0) - 0.12).abs() < 1e-9);
        assert_eq!(c("stuck=+5").read(start + 60.0, 0), start + 5.0);
        let saw = c("resetting=20000ppm/15s");
        assert!((saw.offset_at(start + 14.0, 0) - 0.28).abs() < 1e-9);
        assert!((saw.offset_at(start + 16.0, 0) - 0.02).abs() < 1e-9);
        let r = c("random=30");
        let offs: Vec<f64> = (0..200).map(|i| r.offset_at(start, i)).collect();
        assert!(offs.iter().all(|o| o.abs() <= 30.0));
        assert!(offs.iter().any(|o| *o > 15.0) && offs.iter().any(|o| *o < -15.0));
        assert_eq!(r.offset_at(start, 3), r.offset_at(start + 50.0, 3), "pure in the request number");
        let b = c("balanced=0/30");
        let n30 = (0..200).filter(|i| b.offset_at(start, *i) == 30.0).count();
        assert!((60..140).contains(&n30), "both machines answer: {n30}");
    }
}
