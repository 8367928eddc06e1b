//! HTTP `Date` header maths: parsing the three date formats RFC 9110 §5.6.7 makes recipients
//! accept, the offset interval one reply proves, and the bisection plan that narrows it below a
//! second by timing successive requests around the server's second rollover (as htpdate does).
//!
//! Sign convention (DESIGN.md §4): offset = remote clock − local clock. A reply stamped `D`
//! (whole seconds, truncated) to a request sent at local `t_send` whose headers arrived at local
//! `t_recv` proves `offset ∈ [D − t_recv, D + 1 − t_send]`.

use std::fmt;

/// Why a `Date` header value could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpDateError {
    /// Empty or whitespace only.
    #[error("empty Date header")]
    Empty,
    /// The text matches none of IMF-fixdate, RFC 850 and asctime.
    #[error(
        "Date header {0:?} is in none of the RFC 9110 formats (IMF-fixdate \"Sun, 06 Nov 1994 08:49:37 GMT\", RFC 850, asctime)"
    )]
    Format(String),
    /// The shape is right but a field is out of range (month name, day 32, hour 25, ...).
    #[error("Date header {value:?}: {what}")]
    Field {
        /// The header value.
        value: String,
        /// Which field is wrong and how.
        what: String,
    },
}

/// Two-digit years of the RFC 850 form at or above this pivot are 19xx, below it 20xx. RFC 9110
/// asks for "the most recent year with those digits that is not more than 50 years ahead"; with
/// no clock in this crate a fixed pivot gives the same answer until 2020+50.
pub const RFC850_CENTURY_PIVOT: u32 = 70;

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS_SHORT: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const DAYS_LONG: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// Days since 1970-01-01 of the proleptic Gregorian date `y-m-d` (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Unix seconds of a UTC calendar time after range checks (`second` may be 60, a leap second,
/// which reads as the first second of the next minute). `what` errors describe the bad field.
pub fn unix_from_civil(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Result<i64, String> {
    if !(1..=12).contains(&month) {
        return Err(format!("month {month} out of range"));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(format!("day {day} does not exist in {year}-{month:02}"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!("time {hour:02}:{minute:02}:{second:02} out of range"));
    }
    Ok(days_from_civil(year, month, day) * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second))
}

/// Parses an HTTP `Date` value into Unix seconds. Accepts IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`)
/// and asctime (`Sun Nov  6 08:49:37 1994`). The weekday name must be a weekday name but is not
/// checked against the date (a wrong weekday does not make the clock reading less useful).
pub fn parse_http_date(value: &str) -> Result<i64, HttpDateError> {
    let s = value.trim();
    if s.is_empty() {
        return Err(HttpDateError::Empty);
    }
    let format_err = || HttpDateError::Format(s.to_string());
    let field_err = |what: String| HttpDateError::Field { value: s.to_string(), what };
    let month_of = |name: &str| -> Result<u32, HttpDateError> {
        MONTHS
            .iter()
            .position(|m| *m == name)
            .map(|i| i as u32 + 1)
            .ok_or_else(|| field_err(format!("unknown month {name:?}")))
    };
    let num = |t: &str, digits: std::ops::RangeInclusive<usize>| -> Option<u32> {
        if digits.contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()) { t.parse().ok() } else { None }
    };
    let clock = |t: &str| -> Option<(u32, u32, u32)> {
        let mut it = t.split(':');
        let h = num(it.next()?, 2..=2)?;
        let m = num(it.next()?, 2..=2)?;
        let sec = num(it.next()?, 2..=2)?;
        it.next().is_none().then_some((h, m, sec))
    };

    if let Some((day_name, rest)) = s.split_once(", ") {
        let parts: Vec<&str> = rest.split(' ').collect();
        if DAYS_SHORT.contains(&day_name) {
            // IMF-fixdate: 06 Nov 1994 08:49:37 GMT
            let [d, mon, y, t, "GMT"] = parts[..] else {
                return Err(format_err());
            };
            let (Some(d), Some(y), Some((h, mi, se))) = (num(d, 2..=2), num(y, 4..=4), clock(t)) else {
                return Err(format_err());
            };
            return unix_from_civil(i64::from(y), month_of(mon)?, d, h, mi, se).map_err(field_err);
        }
        if DAYS_LONG.contains(&day_name) {
            // RFC 850: 06-Nov-94 08:49:37 GMT
            let [dmy, t, "GMT"] = parts[..] else {
                return Err(format_err());
            };
            let dmy: Vec<&str> = dmy.split('-').collect();
            let [d, mon, yy] = dmy[..] else {
                return Err(format_err());
            };
            let (Some(d), Some(yy), Some((h, mi, se))) = (num(d, 2..=2), num(yy, 2..=2), clock(t)) else {
                return Err(format_err());
            };
            let y = if yy >= RFC850_CENTURY_PIVOT { 1900 + yy } else { 2000 + yy };
            return unix_from_civil(i64::from(y), month_of(mon)?, d, h, mi, se).map_err(field_err);
        }
        return Err(format_err());
    }
    // asctime: Sun Nov  6 08:49:37 1994 (day padded with a space to two characters)
    let day_name = s.get(..3).ok_or_else(format_err)?;
    if !DAYS_SHORT.contains(&day_name) || s.as_bytes().get(3) != Some(&b' ') {
        return Err(format_err());
    }
    let rest = &s[4..];
    let (mon, rest) = rest.split_once(' ').ok_or_else(format_err)?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let parts: Vec<&str> = rest.split(' ').collect();
    let [d, t, y] = parts[..] else {
        return Err(format_err());
    };
    let (Some(d), Some(y), Some((h, mi, se))) = (num(d, 1..=2), num(y, 4..=4), clock(t)) else {
        return Err(format_err());
    };
    unix_from_civil(i64::from(y), month_of(mon)?, d, h, mi, se).map_err(field_err)
}

/// Formats Unix seconds as IMF-fixdate (the form servers must send).
pub fn format_imf_fixdate(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // civil_from_days (Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS_SHORT[weekday],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// One HTTP exchange: local send time, local time the headers arrived, and the `Date` it carried
/// (Unix seconds, truncated by the server).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DateReading {
    /// Local time (Unix seconds) just before the request was written.
    pub t_send: f64,
    /// Local time the response headers had arrived.
    pub t_recv: f64,
    /// The server's `Date`, Unix seconds.
    pub date: i64,
}

impl DateReading {
    /// The round trip of this exchange.
    pub fn delay(&self) -> f64 {
        self.t_recv - self.t_send
    }

    /// `[D − t_recv, D + 1 − t_send]`: certain to contain the offset the server's clock had
    /// while it handled the request, whatever the path asymmetry.
    pub fn interval(&self) -> Interval {
        let d = self.date as f64;
        Interval { lo: d - self.t_recv, hi: d + 1.0 - self.t_send }
    }
}

/// A closed interval of offsets, seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
}

impl Interval {
    /// The point estimate: the midpoint.
    pub fn mid(&self) -> f64 {
        (self.lo + self.hi) / 2.0
    }

    /// `hi − lo`.
    pub fn width(&self) -> f64 {
        self.hi - self.lo
    }

    /// The common part of two intervals, if any.
    pub fn intersect(&self, other: &Interval) -> Option<Interval> {
        let lo = self.lo.max(other.lo);
        let hi = self.hi.min(other.hi);
        (lo <= hi).then_some(Interval { lo, hi })
    }

    /// Whether `x` lies in the interval (bounds included).
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:.6}, {:.6}]", self.lo, self.hi)
    }
}

/// What a series of readings of one clock proves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Narrowed {
    /// The intersection of the per-reading intervals of the readings used.
    pub interval: Interval,
    /// How many readings (the most recent ones) the intersection used.
    pub used: usize,
    /// False when an older reading contradicts the newer ones: the remote clock does not run at
    /// the local rate (stuck, stepped, or far off rate), and only the most recent consistent
    /// readings were intersected.
    pub consistent: bool,
}

/// Intersects the intervals of `readings` (in the order they were taken), newest first, as long as
/// the intersection stays non-empty. Assumes the remote clock runs at the local rate for the few
/// seconds the readings span (true to 1 ms for a clock 1000 ppm off over 1 s). `None` when empty.
pub fn narrow(readings: &[DateReading]) -> Option<Narrowed> {
    let (last, older) = readings.split_last()?;
    let mut interval = last.interval();
    let mut used = 1;
    for r in older.iter().rev() {
        match interval.intersect(&r.interval()) {
            Some(i) => {
                interval = i;
                used += 1;
            }
            None => return Some(Narrowed { interval, used, consistent: false }),
        }
    }
    Some(Narrowed { interval, used, consistent: true })
}

/// When to send the next request of a bisection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NextRequest {
    /// Local time the request should reach the server: the moment the server's clock turns a
    /// whole second if the offset were the midpoint of the current interval.
    pub arrive_at: f64,
    /// Local time to send it: `arrive_at` minus half the smallest round trip seen.
    pub send_at: f64,
    /// The interval the plan bisects.
    pub interval: Interval,
}

/// Plans the next request of the sub-second refinement. Given the readings so far and the local
/// time `now`, pick the earliest local time `a ≥ now + lead + min_delay/2` at which, if the
/// offset were the midpoint `m` of the current interval, the server's clock `a + m` is a whole
/// second `N`. The reply's `Date` then says on which side of `m` the offset lies: `Date ≥ N` gives
/// `offset ≥ N − t_recv ≈ m − delay/2`, `Date < N` gives `offset ≤ N − t_send ≈ m + delay/2`.
/// Each request halves the interval (plus one round trip): resolution 2^-k s after k requests.
/// `lead` is the scheduling margin the caller needs to be on time. `None` without readings.
pub fn plan_next(readings: &[DateReading], now: f64, lead: f64) -> Option<NextRequest> {
    let narrowed = narrow(readings)?;
    let min_delay = readings.iter().map(DateReading::delay).fold(f64::INFINITY, f64::min).max(0.0);
    let m = narrowed.interval.mid();
    let earliest = now + lead + min_delay / 2.0;
    let n = (earliest + m).ceil();
    let arrive_at = n - m;
    Some(NextRequest { arrive_at, send_at: arrive_at - min_delay / 2.0, interval: narrowed.interval })
}

/// Plans the closing check of a refinement: a request that reaches the server mid-second (when
/// its clock reads `k + 0.5` if the offset is the current midpoint) and more than a second after
/// the first reading was received. A clock running at our rate then stamps exactly the predicted
/// second and the reading is consistent with the others; a stuck, stepped or much slower/faster
/// clock stamps another second, the readings contradict each other and [`narrow`] reports it.
/// Without this check a stuck clock can look consistent: bisection readings span less than a
/// second. `None` without readings.
pub fn plan_check(readings: &[DateReading], now: f64, lead: f64) -> Option<NextRequest> {
    let narrowed = narrow(readings)?;
    let min_delay = readings.iter().map(DateReading::delay).fold(f64::INFINITY, f64::min).max(0.0);
    let m = narrowed.interval.mid();
    let first_recv = readings.iter().map(|r| r.t_recv).fold(f64::INFINITY, f64::min);
    // Send after first_recv + 1 s (so the check's interval and the first one's cannot both hold
    // a frozen clock), plus the round trip.
    let earliest = (now + lead + min_delay / 2.0).max(first_recv + 1.0 + lead + min_delay);
    let arrive_at = (earliest + m - 0.5).ceil() + 0.5 - m;
    Some(NextRequest { arrive_at, send_at: arrive_at - min_delay / 2.0, interval: narrowed.interval })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imf_fixdate() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Ok(784_111_777));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Ok(0));
        assert_eq!(parse_http_date("Sun, 22 Nov 2026 03:25:55 GMT"), Ok(1_795_317_955));
        assert_eq!(parse_http_date(" Tue, 29 Feb 2000 23:59:59 GMT "), Ok(951_868_799));
    }

    #[test]
    fn obsolete_forms() {
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Ok(784_111_777));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Ok(784_111_777));
        assert_eq!(parse_http_date("Sun Nov 16 08:49:37 1994"), Ok(784_111_777 + 10 * 86_400));
        // Two-digit years below the pivot are this century.
        assert_eq!(parse_http_date("Friday, 01-Jan-21 00:00:00 GMT"), Ok(1_609_459_200));
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(parse_http_date("  "), Err(HttpDateError::Empty));
        assert!(matches!(parse_http_date("yesterday"), Err(HttpDateError::Format(_))));
        assert!(matches!(parse_http_date("Sun, 06 Nov 1994 08:49:37 CET"), Err(HttpDateError::Format(_))));
        assert!(matches!(parse_http_date("Sun, 6 Nov 1994 08:49:37 GMT"), Err(HttpDateError::Format(_))));
        let e = parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT").unwrap_err();
        assert_eq!(e.to_string(), "Date header \"Sun, 06 Foo 1994 08:49:37 GMT\": unknown month \"Foo\"");
        let e = parse_http_date("Sun, 31 Nov 1994 08:49:37 GMT").unwrap_err();
        assert_eq!(e.to_string(), "Date header \"Sun, 31 Nov 1994 08:49:37 GMT\": day 31 does not exist in 1994-11");
        assert!(matches!(parse_http_date("Sun, 06 Nov 1994 24:00:00 GMT"), Err(HttpDateError::Field { .. })));
        assert!(matches!(parse_http_date("Sun, 06 Nov 1994 08:49 GMT"), Err(HttpDateError::Format(_))));
        assert!(matches!(parse_http_date("Sun Nov  6 08:49:37"), Err(HttpDateError::Format(_))));
        assert!(matches!(parse_http_date("Sunday"), Err(HttpDateError::Format(_))));
        assert!(matches!(parse_http_date("é"), Err(HttpDateError::Format(_))));
    }

    #[test]
    fn format_round_trips() {
        assert_eq!(format_imf_fixdate(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(format_imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        for t in [951_868_799, 1_795_317_955, 4_102_444_800, -86_400] {
            assert_eq!(parse_http_date(&format_imf_fixdate(t)), Ok(t));
        }
    }

    #[test]
    fn interval_of_one_reading() {
        // Remote clock 90 s behind; sent at 1000.25, reply at 1000.75, server saw 910.5 → D = 910.
        let r = DateReading { t_send: 1000.25, t_recv: 1000.75, date: 910 };
        let i = r.interval();
        assert_eq!(i, Interval { lo: -90.75, hi: -89.25 });
        assert_eq!(i.mid(), -90.0);
        assert_eq!(i.width(), 1.5);
        assert!(i.contains(-90.0));
    }

    /// A simulated server with offset `theta` and a symmetric path of one-way time `owd`.
    fn reply(theta: f64, t_send: f64, owd: f64) -> DateReading {
        let arrive = t_send + owd;
        DateReading { t_send, t_recv: arrive + owd, date: (arrive + theta).floor() as i64 }
    }

    #[test]
    fn bisection_halves_the_interval() {
        let theta = 0.4;
        let owd = 0.0005;
        let mut now = 100.1;
        let mut readings = vec![reply(theta, now, owd)];
        // First reading: [100 - 100.101, 101 - 100.1] = [-0.101, 0.9].
        let first = narrow(&readings).unwrap().interval;
        assert!((first.lo - -0.101).abs() < 1e-9 && (first.hi - 0.9).abs() < 1e-9);
        let plan = plan_next(&readings, now + 0.001, 0.0).unwrap();
        // midpoint 0.3995; earliest arrival 100.1015 → N = ceil(100.501) = 101, a = 100.6005.
        assert!((plan.arrive_at - 100.6005).abs() < 1e-9, "{plan:?}");
        assert!((plan.send_at - (100.6005 - 0.0005)).abs() < 1e-9);
        for k in 1..=10 {
            let plan = plan_next(&readings, now, 0.002).unwrap();
            assert!(plan.send_at >= now);
            now = plan.send_at;
            readings.push(reply(theta, now, owd));
            now += 2.0 * owd;
            let n = narrow(&readings).unwrap();
            assert!(n.consistent);
            assert!(n.interval.contains(theta), "step {k}: {}", n.interval);
            // width ≤ (1 + delay)·2^-k + delay
            assert!(n.interval.width() <= 1.001 / f64::powi(2.0, k) + 0.0011, "step {k}: {}", n.interval);
        }
        let n = narrow(&readings).unwrap();
        assert!((n.interval.mid() - theta).abs() < 0.002, "{}", n.interval);
        assert_eq!(n.used, 11);
    }

    #[test]
    fn closing_check_catches_a_stuck_clock_and_passes_a_running_one() {
        let owd = 0.0002;
        // Running clock, offset 0.4: bisect, then check.
        let mut readings = vec![reply(0.4, 100.1, owd)];
        for _ in 0..6 {
            let p = plan_next(&readings, readings.last().unwrap().t_recv, 0.002).unwrap();
            readings.push(reply(0.4, p.send_at, owd));
        }
        let now = readings.last().unwrap().t_recv;
        let c = plan_check(&readings, now, 0.002).unwrap();
        assert!(c.send_at > readings[0].t_recv + 1.0);
        let m = c.interval.mid();
        assert!(((c.arrive_at + m).rem_euclid(1.0) - 0.5).abs() < 1e-9, "{c:?}");
        readings.push(reply(0.4, c.send_at, owd));
        let n = narrow(&readings).unwrap();
        assert!(n.consistent && n.interval.contains(0.4));

        // A clock stuck at 5000: every reply says 5000; bisection alone stays consistent.
        let stuck = |t_send: f64| DateReading { t_send, t_recv: t_send + 2.0 * owd, date: 5000 };
        let mut readings = vec![stuck(100.1)];
        for _ in 0..6 {
            let p = plan_next(&readings, readings.last().unwrap().t_recv, 0.002).unwrap();
            readings.push(stuck(p.send_at));
        }
        assert!(narrow(&readings).unwrap().consistent);
        let c = plan_check(&readings, readings.last().unwrap().t_recv, 0.002).unwrap();
        readings.push(stuck(c.send_at));
        assert!(!narrow(&readings).unwrap().consistent);
    }

    #[test]
    fn stuck_clock_is_inconsistent() {
        // A stuck server always says 5000 while local time moves on.
        let readings = [
            DateReading { t_send: 10.0, t_recv: 10.01, date: 5000 },
            DateReading { t_send: 11.5, t_recv: 11.51, date: 5000 },
            DateReading { t_send: 12.2, t_recv: 12.21, date: 5000 },
        ];
        let n = narrow(&readings).unwrap();
        assert!(!n.consistent);
        assert_eq!(n.used, 2);
        // [5000 - 12.21, 5001 - 12.2] ∩ [5000 - 11.51, 5001 - 11.5] = [4988.49, 4988.8]
        assert!((n.interval.lo - 4988.49).abs() < 1e-9 && (n.interval.hi - 4988.8).abs() < 1e-9);
        assert_eq!(narrow(&[]), None);
        assert_eq!(plan_next(&[], 0.0, 0.0), None);
    }
}
