//! Ground-truth generator for the classifier: synthetic probe histories of every behaviour
//! class, measured the way the probers measure (NTP four timestamps, HTTP whole-second `Date`),
//! with log-normal round trips and path asymmetry, uneven and gapped sampling, stale cached
//! `Date`s, outliers and failed probes. Pure: all randomness comes from the caller's seeded RNG.
//!
//! Truth is what the clock did, chosen so that it is observable in principle: a drift is drawn
//! large enough to move the offset by `min_visible_s` of the method over the span (a drift that
//! the readings cannot show is not a drift, DESIGN.md §5), load-balanced backends differ by more
//! than the method's resolution, a sawtooth has 2–6 teeth.

use crate::classify::Class;
use crate::observation::{Method, Observation};
use rand::Rng;
use rand::rngs::StdRng;

/// Generation parameters (defaults in [`SimConfig::default`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Unix time of the first probe. Default 1.7e9.
    pub start: f64,
    /// Mean time between probes, seconds. Default 600 (a survey every 10 minutes).
    pub mean_interval_s: f64,
    /// Unevenness of sampling, 0 (regular) to 1 (exponential gaps). Default 0.5.
    pub interval_jitter: f64,
    /// Probability that a gap is an outage `gap_factor` times longer. Default 0.03.
    pub gap_prob: f64,
    /// Length of an outage in mean intervals. Default 30.
    pub gap_factor: f64,
    /// Median round-trip time, seconds. Default 0.06.
    pub rtt_median_s: f64,
    /// Log-normal sigma of the round-trip time. Default 0.6.
    pub rtt_sigma: f64,
    /// Path asymmetry: the outbound share of the round trip is uniform in 0.5 ± asymmetry/2.
    /// Default 0.6.
    pub asymmetry: f64,
    /// Server processing time, seconds. Default 0.002.
    pub server_time_s: f64,
    /// Gaussian jitter of the remote clock's readings (σ, seconds). Default 0.001.
    pub clock_jitter_s: f64,
    /// Probability of an outlier (a reply whose clock reading is off by 1 s to 1 h). Default 0.01.
    pub outlier_prob: f64,
    /// HTTP: probability that the `Date` comes from a cache and is stale. Default 0.03.
    pub stale_prob: f64,
    /// HTTP: largest staleness, seconds. Default 300.
    pub stale_max_s: f64,
    /// HTTP: probability that a stale reply carries its `Age` header. Default 0.5.
    pub stale_age_header_prob: f64,
    /// Probability that a probe fails (timeout). Default 0.02.
    pub fail_prob: f64,
    /// Smallest offset change a drift must cause over the span: HTTP. Default 4 s.
    pub min_visible_http_s: f64,
    /// ... NTP. Default 0.1 s.
    pub min_visible_ntp_s: f64,
    /// Largest drift rate drawn, ppm. Default 2000.
    pub max_rate_ppm: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            start: 1.7e9,
            mean_interval_s: 600.0,
            interval_jitter: 0.5,
            gap_prob: 0.03,
            gap_factor: 30.0,
            rtt_median_s: 0.06,
            rtt_sigma: 0.6,
            asymmetry: 0.6,
            server_time_s: 0.002,
            clock_jitter_s: 0.001,
            outlier_prob: 0.01,
            stale_prob: 0.03,
            stale_max_s: 300.0,
            stale_age_header_prob: 0.5,
            fail_prob: 0.02,
            min_visible_http_s: 4.0,
            min_visible_ntp_s: 0.1,
            max_rate_ppm: 2000.0,
        }
    }
}

/// A clock: remote time as a function of true time.
#[derive(Clone, Debug, PartialEq)]
pub enum ClockModel {
    /// remote = t + offset + rate·(t − t_ref).
    Linear {
        /// Offset at `t_ref`, seconds.
        offset: f64,
        /// Rate error (0.0001 = 100 ppm).
        rate: f64,
        /// Reference time.
        t_ref: f64,
    },
    /// A frozen (or nearly) clock: remote = value + speed·(t − t_ref).
    Stuck {
        /// Reading at `t_ref`.
        value: f64,
        /// Speed of the remote clock (0 frozen, 0.001 nearly stopped).
        speed: f64,
        /// Reference time.
        t_ref: f64,
    },
    /// Sawtooth: offset = level + rate·(t − last reset); resets every `period` from `phase`.
    Sawtooth {
        /// Offset right after a reset.
        level: f64,
        /// Rate error.
        rate: f64,
        /// Time between resets.
        period: f64,
        /// Time of one reset.
        phase: f64,
    },
    /// Each reply is a random time within ± `range` of the truth.
    Random {
        /// Half-width of the range, seconds.
        range: f64,
    },
    /// Several clocks behind one address, each reply from one picked by weight.
    Balanced {
        /// The backends' clocks.
        backends: Vec<ClockModel>,
        /// Their weights (sum 1).
        weights: Vec<f64>,
    },
    /// One clock until `at`, another after.
    Switch {
        /// Before.
        before: Box<ClockModel>,
        /// After.
        after: Box<ClockModel>,
        /// When.
        at: f64,
    },
}

impl ClockModel {
    /// Remote clock reading at true time `t` (random models draw from `rng`).
    pub fn read(&self, t: f64, rng: &mut StdRng) -> f64 {
        match self {
            ClockModel::Linear { offset, rate, t_ref } => t + offset + rate * (t - t_ref),
            ClockModel::Stuck { value, speed, t_ref } => value + speed * (t - t_ref),
            ClockModel::Sawtooth { level, rate, period, phase } => {
                let since = (t - phase).rem_euclid(*period);
                t + level + rate * since
            }
            ClockModel::Random { range } => t + rng.random_range(-*range..*range),
            ClockModel::Balanced { backends, weights } => {
                let mut u: f64 = rng.random();
                for (b, w) in backends.iter().zip(weights) {
                    if u < *w {
                        return b.read(t, rng);
                    }
                    u -= w;
                }
                backends.last().map_or(t, |b| b.read(t, rng))
            }
            ClockModel::Switch { before, after, at } => {
                if t < *at {
                    before.read(t, rng)
                } else {
                    after.read(t, rng)
                }
            }
        }
    }
}

/// One generated series.
#[derive(Clone, Debug, PartialEq)]
pub struct SimSeries {
    /// The class the series was generated as.
    pub truth: Class,
    /// The clock behind it.
    pub clock: ClockModel,
    /// The probes, in time order.
    pub observations: Vec<Observation>,
}

fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn log_uniform(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    if hi <= lo {
        return lo;
    }
    (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
}

fn sign(rng: &mut StdRng) -> f64 {
    if rng.random_bool(0.5) { 1.0 } else { -1.0 }
}

/// Probe times: uneven gaps with occasional outages.
pub fn sample_times(n: usize, cfg: &SimConfig, rng: &mut StdRng) -> Vec<f64> {
    let mut t = cfg.start;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(t);
        let e: f64 = -rng.random::<f64>().max(1e-12).ln();
        let mut gap = cfg.mean_interval_s * (1.0 - cfg.interval_jitter + cfg.interval_jitter * e);
        if rng.random_bool(cfg.gap_prob.clamp(0.0, 1.0)) {
            gap *= cfg.gap_factor;
        }
        t += gap.max(1.0);
    }
    out
}

/// The smallest offset change a method can show.
fn visible(method: Method, cfg: &SimConfig) -> f64 {
    match method {
        Method::Ntp => cfg.min_visible_ntp_s,
        Method::Http | Method::Https => cfg.min_visible_http_s,
    }
}

/// A clock of class `class` (ok, offset, drifting, stuck) over `[t0, t1]`.
fn simple_clock(class: Class, method: Method, t0: f64, t1: f64, cfg: &SimConfig, rng: &mut StdRng) -> ClockModel {
    let span = (t1 - t0).max(1.0);
    let vis = visible(method, cfg);
    match class {
        Class::Ok => ClockModel::Linear { offset: normal(rng) * 0.01, rate: 0.0, t_ref: t0 },
        Class::Offset => {
            let offset = if rng.random_bool(0.2) {
                // A time-zone error: whole hours, plus a little.
                rng.random_range(1..=12) as f64 * 3600.0 * sign(rng) + normal(rng) * 5.0
            } else {
                sign(rng) * log_uniform(rng, vis.max(1.0), 1e6)
            };
            ClockModel::Linear { offset, rate: 0.0, t_ref: t0 }
        }
        Class::Drifting => {
            let lo = (vis * 2.0 / span).max(5e-6);
            let hi = (cfg.max_rate_ppm * 1e-6).max(lo * 1.5);
            let rate = sign(rng) * log_uniform(rng, lo, hi);
            let offset = if rng.random_bool(0.5) { 0.0 } else { sign(rng) * log_uniform(rng, 1.0, 1e4) };
            ClockModel::Linear { offset, rate, t_ref: t0 }
        }
        Class::Stuck => {
            let speed = if rng.random_bool(0.5) { 0.0 } else { rng.random_range(0.0..0.01) };
            ClockModel::Stuck { value: t0 - log_uniform(rng, 10.0, 1e8), speed, t_ref: t0 }
        }
        _ => ClockModel::Linear { offset: 0.0, rate: 0.0, t_ref: t0 },
    }
}

/// The clock of a series of class `class` probed at `times`.
pub fn clock_for(class: Class, method: Method, times: &[f64], cfg: &SimConfig, rng: &mut StdRng) -> ClockModel {
    let t0 = times.first().copied().unwrap_or(cfg.start);
    let t1 = times.last().copied().unwrap_or(t0);
    let span = (t1 - t0).max(1.0);
    let vis = visible(method, cfg);
    match class {
        Class::Resetting => {
            let teeth = rng.random_range(2.2..6.0);
            let period = span / teeth;
            let lo = (vis * 3.0 / period).max(5e-6);
            let hi = (cfg.max_rate_ppm * 1e-6 * 5.0).max(lo * 1.5);
            let rate = sign(rng) * log_uniform(rng, lo, hi);
            let level =
                if rng.random_bool(0.7) { normal(rng) * 0.01 } else { sign(rng) * log_uniform(rng, 1.0, 100.0) };
            ClockModel::Sawtooth { level, rate, period, phase: t0 + rng.random_range(0.1..0.9) * period }
        }
        Class::LoadBalanced => {
            let k = if rng.random_bool(0.7) { 2 } else { 3 };
            let mut backends: Vec<ClockModel> = Vec::new();
            while backends.len() < k {
                let c =
                    [Class::Ok, Class::Offset, Class::Offset, Class::Drifting, Class::Stuck][rng.random_range(0..5)];
                let b = simple_clock(c, method, t0, t1, cfg, rng);
                // Distinct from the others over the whole span by more than the resolution.
                let distinct = backends.iter().all(|o| {
                    [t0, 0.5 * (t0 + t1), t1].iter().all(|&t| {
                        let mut r = StdRng::clone(rng);
                        (b.read(t, &mut r) - o.read(t, &mut r)).abs() > 2.0 * vis.max(1.0)
                    })
                });
                if distinct {
                    backends.push(b);
                }
            }
            let mut weights: Vec<f64> = (0..k).map(|_| rng.random_range(0.3..1.0)).collect();
            let s: f64 = weights.iter().sum();
            weights.iter_mut().for_each(|w| *w /= s);
            ClockModel::Balanced { backends, weights }
        }
        Class::Random => ClockModel::Random { range: log_uniform(rng, 100.0, 1e8) },
        Class::Changed => {
            let at = t0 + rng.random_range(0.3..0.7) * span;
            let a = [Class::Ok, Class::Offset, Class::Drifting][rng.random_range(0..3)];
            loop {
                let b = [Class::Ok, Class::Offset, Class::Drifting, Class::Stuck][rng.random_range(0..4)];
                let before = simple_clock(a, method, t0, at, cfg, rng);
                let after = simple_clock(b, method, at, t1, cfg, rng);
                let mut r = StdRng::clone(rng);
                let jump = (after.read(at, &mut r) - before.read(at, &mut r)).abs();
                let differ = a != b || jump > 2.0 * vis.max(1.0);
                if differ && jump > 2.0 * vis.max(1.0) {
                    return ClockModel::Switch { before: Box::new(before), after: Box::new(after), at };
                }
            }
        }
        other => simple_clock(other, method, t0, t1, cfg, rng),
    }
}

/// Measures `clock` once at true time `t` the way the probers do.
pub fn measure(clock: &ClockModel, method: Method, t: f64, cfg: &SimConfig, rng: &mut StdRng) -> Observation {
    let mut o =
        Observation { method: Some(method), port: Some(method.default_port()), t_send: t, ..Default::default() };
    if rng.random_bool(cfg.fail_prob.clamp(0.0, 1.0)) {
        o.t_recv = t + 2.0;
        o.error = Some("timeout".into());
        return o;
    }
    let rtt = cfg.rtt_median_s * (cfg.rtt_sigma * normal(rng)).exp();
    let out_share = 0.5 + cfg.asymmetry * (rng.random::<f64>() - 0.5);
    let there = rtt * out_share;
    let back = rtt - there;
    let proc_time = cfg.server_time_s * rng.random::<f64>();
    let arrive = t + there;
    let depart = arrive + proc_time;
    let t_recv = depart + back;
    o.t_recv = t_recv;
    let outlier =
        if rng.random_bool(cfg.outlier_prob.clamp(0.0, 1.0)) { sign(rng) * log_uniform(rng, 1.0, 3600.0) } else { 0.0 };
    match method {
        Method::Ntp => {
            let mut r2 = StdRng::clone(rng);
            let t2 = clock.read(arrive, rng) + outlier;
            // The same backend answers both timestamps of one exchange.
            let t3 = clock.read(depart, &mut r2) + outlier;
            let t3 = if matches!(clock, ClockModel::Random { .. }) { t2 } else { t3 };
            let offset = ((t2 - t) + (t3 - t_recv)) / 2.0;
            let delay = ((t_recv - t) - (t3 - t2)).max(0.0);
            o.offset = Some(offset);
            o.delay = Some(delay);
            o.offset_lo = Some(offset - delay / 2.0);
            o.offset_hi = Some(offset + delay / 2.0);
            o.stratum = Some(2);
        }
        Method::Http | Method::Https => {
            let mut when = arrive + 0.5 * proc_time;
            if rng.random_bool(cfg.stale_prob.clamp(0.0, 1.0)) {
                let age = rng.random_range(1.0..cfg.stale_max_s.max(1.5));
                when -= age;
                if rng.random_bool(cfg.stale_age_header_prob.clamp(0.0, 1.0)) {
                    o.age = Some(age.floor() as u64);
                }
            }
            let d = (clock.read(when, rng) + outlier).floor();
            let lo = d - t_recv;
            let hi = d + 1.0 - t;
            o.offset_lo = Some(lo);
            o.offset_hi = Some(hi);
            o.offset = Some(0.5 * (lo + hi));
            o.delay = Some(rtt + proc_time);
            o.http_status = Some(200);
        }
    }
    o
}

/// Generates one series of `n` probes of a clock of class `truth`. `Unreachable` gives only
/// failed probes; `Insufficient` gives at most 3 answered probes.
pub fn simulate(truth: Class, method: Method, n: usize, cfg: &SimConfig, rng: &mut StdRng) -> SimSeries {
    let n = if truth == Class::Insufficient { n.min(3) } else { n };
    let times = sample_times(n, cfg, rng);
    let clock = clock_for(truth, method, &times, cfg, rng);
    let observations = times
        .iter()
        .map(|&t| {
            let mut o = measure(&clock, method, t, cfg, rng);
            if truth == Class::Unreachable {
                o = Observation {
                    method: Some(method),
                    t_send: t,
                    t_recv: t + 2.0,
                    error: Some("timeout".into()),
                    ..Default::default()
                };
            }
            o
        })
        .collect();
    SimSeries { truth, clock, observations }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn intervals_contain_the_truth_without_outliers() {
        let cfg = SimConfig { outlier_prob: 0.0, stale_prob: 0.0, fail_prob: 0.0, ..SimConfig::default() };
        let mut rng = StdRng::seed_from_u64(7);
        for method in [Method::Ntp, Method::Http] {
            for class in [Class::Ok, Class::Offset, Class::Drifting, Class::Stuck, Class::Resetting] {
                let s = simulate(class, method, 50, &cfg, &mut rng);
                for o in &s.observations {
                    let mid = 0.5 * (o.t_send + o.t_recv);
                    let truth = s.clock.read(mid, &mut rng) - mid;
                    let (lo, hi) = (o.offset_lo.unwrap(), o.offset_hi.unwrap());
                    // Sawtooth resets inside the exchange aside, the interval holds the truth
                    // up to the clock's movement during the round trip.
                    let slack = 0.01 + (truth.abs() * 1e-9);
                    if !matches!(s.clock, ClockModel::Sawtooth { .. }) {
                        assert!(lo - slack <= truth && truth <= hi + slack, "{class} {method}: {lo} {truth} {hi}");
                    }
                }
            }
        }
    }

    #[test]
    fn same_seed_same_series() {
        let cfg = SimConfig::default();
        let a = simulate(Class::LoadBalanced, Method::Http, 30, &cfg, &mut StdRng::seed_from_u64(3));
        let b = simulate(Class::LoadBalanced, Method::Http, 30, &cfg, &mut StdRng::seed_from_u64(3));
        assert_eq!(a, b);
    }
}
