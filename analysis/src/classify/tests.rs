//! Hand-made series whose answer is obvious, one or more per class, and the edge cases.

use super::*;

const T0: f64 = 1.7e9;

/// NTP-like readings: interval truth ± 5 ms every `step` seconds.
fn ntp(n: usize, step: f64, f: impl Fn(f64) -> f64) -> Vec<Sample> {
    (0..n)
        .map(|i| {
            let t = T0 + i as f64 * step;
            let x = f(t - T0);
            Sample { t, lo: x - 0.005, hi: x + 0.005 }
        })
        .collect()
}

/// HTTP-like readings: `Date` whole seconds of the remote clock, 100 ms round trip.
fn http(n: usize, step: f64, f: impl Fn(f64) -> f64) -> Vec<Sample> {
    (0..n)
        .map(|i| {
            // Spread the sub-second phase of the probes.
            let t0 = T0 + i as f64 * step + (i as f64 * 0.618_034).fract();
            let t1 = t0 + 0.1;
            let remote = (t0 + 0.05) + f(t0 + 0.05 - T0);
            let d = remote.floor();
            Sample { t: 0.5 * (t0 + t1), lo: d - t1, hi: d + 1.0 - t0 }
        })
        .collect()
}

fn run(s: &[Sample]) -> Classification {
    classify(s, 0, &ClassifierParams::default())
}

#[test]
fn ok_ntp() {
    let c = run(&ntp(20, 600.0, |_| 0.002));
    assert_eq!(c.class, Class::Ok, "{c:?}");
    assert!(c.offset_s.unwrap().abs() < 0.01);
}

#[test]
fn ok_http() {
    let c = run(&http(20, 600.0, |_| 0.0));
    assert_eq!(c.class, Class::Ok, "{c:?}");
}

#[test]
fn offset_http_and_ntp() {
    let c = run(&http(20, 600.0, |_| -90.0));
    assert_eq!(c.class, Class::Offset, "{c:?}");
    assert!((c.offset_s.unwrap() + 90.0).abs() < 0.2, "{c:?}");
    assert!(!c.timezone_suspect);
    let c = run(&ntp(10, 600.0, |_| 2.5));
    assert_eq!(c.class, Class::Offset, "{c:?}");
    assert!((c.offset_s.unwrap() - 2.5).abs() < 0.006);
}

#[test]
fn offset_of_exactly_one_hour_is_timezone_suspect() {
    let c = run(&http(12, 600.0, |_| 3600.0));
    assert_eq!(c.class, Class::Offset, "{c:?}");
    assert!(c.timezone_suspect, "{c:?}");
    let c = run(&ntp(12, 600.0, |_| -7200.0 + 30.0));
    assert!(c.timezone_suspect, "{c:?}");
    let c = run(&ntp(12, 600.0, |_| 3600.0 + 90.0));
    assert!(!c.timezone_suspect, "{c:?}");
}

#[test]
fn drifting_ntp_and_http() {
    // 100 ppm over 20 000 s: 2 s.
    let c = run(&ntp(40, 500.0, |t| 1.0 + 100e-6 * t));
    assert_eq!(c.class, Class::Drifting, "{c:?}");
    assert!((c.rate_ppm.unwrap() - 100.0).abs() < 1.0, "{c:?}");
    // 500 ppm over 10 hours: 18 s, through one-second intervals.
    let c = run(&http(60, 600.0, |t| -500e-6 * t));
    assert_eq!(c.class, Class::Drifting, "{c:?}");
    assert!((c.rate_ppm.unwrap() + 500.0).abs() < 10.0, "{c:?}");
}

#[test]
fn drift_too_small_to_see_is_not_drifting() {
    // 20 ppm over one hour = 72 ms, inside one-second HTTP intervals: not detectable.
    let c = run(&http(12, 300.0, |t| 20e-6 * t));
    assert_eq!(c.class, Class::Ok, "{c:?}");
    // 0.5 ppm over a day on NTP is visible (43 ms) but below drift_min_ppm.
    let c = run(&ntp(48, 1800.0, |t| 5.0 + 0.5e-6 * t));
    assert_eq!(c.class, Class::Offset, "{c:?}");
}

#[test]
fn stuck_and_nearly_stopped() {
    let c = run(&http(10, 600.0, |t| -t - 1000.0));
    assert_eq!(c.class, Class::Stuck, "{c:?}");
    let c = run(&ntp(10, 600.0, |t| -0.999 * t - 5e6));
    assert_eq!(c.class, Class::Stuck, "{c:?}");
}

#[test]
fn resetting_sawtooth() {
    // +200 ppm, reset to 0 every 4 hours, probes every 10 minutes for a day.
    let c = run(&ntp(144, 600.0, |t| 200e-6 * (t % 14_400.0)));
    assert_eq!(c.class, Class::Resetting, "{c:?}");
    assert_eq!(c.resets, Some(5));
    assert!((c.reset_period_s.unwrap() - 14_400.0).abs() < 700.0, "{c:?}");
    assert!((c.rate_ppm.unwrap() - 200.0).abs() < 5.0, "{c:?}");
}

#[test]
fn load_balanced_two_backends() {
    // Backend A ok, backend B 30 s behind, alternating irregularly.
    let pick = |i: usize| (i * 7 + i / 3).is_multiple_of(3);
    let s: Vec<Sample> = ntp(60, 600.0, |_| 0.0)
        .into_iter()
        .enumerate()
        .map(|(i, s)| if pick(i) { Sample { lo: s.lo - 30.0, hi: s.hi - 30.0, ..s } } else { s })
        .collect();
    let c = run(&s);
    assert_eq!(c.class, Class::LoadBalanced, "{c:?}");
    assert_eq!(c.backends.len(), 2);
    let b_off: Vec<f64> = c.backends.iter().map(|b| b.offset_s.round()).collect();
    assert!(b_off.contains(&0.0) && b_off.contains(&-30.0), "{c:?}");
    let share_b = (0..60).filter(|&i| pick(i)).count() as f64 / 60.0;
    let b = c.backends.iter().find(|b| b.offset_s.round() == -30.0).unwrap();
    assert!((b.share - share_b).abs() < 1e-9);
    assert_eq!(b.class, Class::Offset);
}

#[test]
fn two_backends_with_the_same_offset_are_one_machine() {
    // Two machines both 12 s ahead (within 2 ms of each other): one clock, not load-balanced.
    let s: Vec<Sample> = ntp(40, 600.0, |_| 12.0)
        .into_iter()
        .enumerate()
        .map(|(i, s)| if i.is_multiple_of(2) { Sample { lo: s.lo + 0.002, hi: s.hi + 0.002, ..s } } else { s })
        .collect();
    let c = run(&s);
    assert_eq!(c.class, Class::Offset, "{c:?}");
    assert!(c.backends.is_empty());
}

#[test]
fn ok_then_jump_is_changed_with_change_time() {
    // ok for 30 probes, then 45 s ahead for 30 probes.
    let s = ntp(60, 600.0, |t| if t < 30.0 * 600.0 { 0.0 } else { 45.0 });
    let c = run(&s);
    assert_eq!(c.class, Class::Changed, "{c:?}");
    assert_eq!(c.segments.len(), 2, "{c:?}");
    assert_eq!(c.segments[0].class, Class::Ok);
    assert_eq!(c.segments[1].class, Class::Offset);
    let change = c.segments[1].start;
    assert!((change - (T0 + 30.0 * 600.0)).abs() <= 3.0 * 600.0, "{c:?}");
    assert!((c.offset_s.unwrap() - 45.0).abs() < 0.01);
}

#[test]
fn late_change_in_the_last_tenth_is_still_seen() {
    let s = http(50, 600.0, |t| if t < 45.0 * 600.0 { 0.0 } else { -20.0 });
    let c = run(&s);
    assert_eq!(c.class, Class::Changed, "{c:?}");
    assert!((c.segments[1].start - s[45].t).abs() <= 2.0 * 600.0, "{c:?}");
}

#[test]
fn random_replies() {
    // A deterministic scramble of times within ± a day.
    let s = ntp(50, 600.0, |_| 0.0);
    let mut y: u64 = 99;
    let s: Vec<Sample> = s
        .into_iter()
        .map(|s| {
            y = y.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let off = ((y >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 172_800.0;
            Sample { lo: s.lo + off, hi: s.hi + off, ..s }
        })
        .collect();
    let c = run(&s);
    assert_eq!(c.class, Class::Random, "{c:?}");
}

#[test]
fn outliers_do_not_change_the_class() {
    let mut s = http(30, 600.0, |_| 7.0);
    s[4].lo -= 200.0;
    s[4].hi -= 200.0;
    s[17].lo += 3.0;
    s[17].hi += 3.0;
    let c = run(&s);
    assert_eq!(c.class, Class::Offset, "{c:?}");
    assert!((c.offset_s.unwrap() - 7.0).abs() < 0.2);
}

#[test]
fn insufficient_and_unreachable() {
    assert_eq!(run(&ntp(3, 600.0, |_| 0.0)).class, Class::Insufficient);
    assert_eq!(classify(&[], 5, &ClassifierParams::default()).class, Class::Unreachable);
    assert_eq!(classify(&[], 0, &ClassifierParams::default()).class, Class::Insufficient);
}

#[test]
fn runs_test_separates_alternation_from_one_change() {
    // 10 A then 10 B: 2 runs, far fewer than random.
    assert!(runs_z(2, &[10, 10]) < -3.0);
    // Perfect alternation: 20 runs, more than random.
    assert!(runs_z(20, &[10, 10]) > 3.0);
}

#[test]
fn params_round_trip_and_validate() {
    let p: ClassifierParams = serde_json::from_str(r#"{"ok_max_offset_s": 0.5}"#).unwrap();
    assert_eq!(p.ok_max_offset_s, 0.5);
    assert_eq!(p.min_points, ClassifierParams::default().min_points);
    assert!(serde_json::from_str::<ClassifierParams>(r#"{"no_such": 1}"#).is_err());
    let bad = ClassifierParams { min_inlier_frac: 1.5, ..ClassifierParams::default() };
    assert!(bad.validate().is_err());
    assert!(ClassifierParams::default().validate().is_ok());
}

#[test]
fn odd_inputs_do_not_panic() {
    // Duplicate times, zero-width and inverted intervals, huge and tiny values, every length
    // from 0 to 40: the classifier must answer, never panic.
    let mut x: u64 = 7;
    let mut next = || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut c = Classifier::new(ClassifierParams::default());
    for n in 0..40 {
        for kind in 0..4 {
            let s: Vec<Sample> = (0..n)
                .map(|i| {
                    let t = match kind {
                        0 => T0,
                        1 => T0 + (i / 3) as f64,
                        _ => T0 + next() * 1e5,
                    };
                    let v = match kind {
                        3 => (next() - 0.5) * 1e12,
                        _ => (next() - 0.5) * 10.0,
                    };
                    let w = if kind == 2 { -next() } else { next() * 0.001 * (i % 2) as f64 };
                    Sample { t, lo: v, hi: v + w }
                })
                .collect();
            let r = c.classify(&s, 0);
            assert_eq!(r.n, n);
        }
    }
}
