//! Offset and delay from the four timestamps of one client/server exchange (RFC 5905 §8), and
//! the offset interval θ ± δ/2 that is certain to contain the true offset.

use super::timestamp::{NtpDuration, NtpTimestamp};

/// The four timestamps of one exchange: T1 client send, T2 server receive, T3 server send,
/// T4 client receive. T1 and T4 are on the local clock, T2 and T3 on the remote one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NtpSample {
    /// Client transmit time (local clock).
    pub t1: NtpTimestamp,
    /// Server receive time (remote clock).
    pub t2: NtpTimestamp,
    /// Server transmit time (remote clock).
    pub t3: NtpTimestamp,
    /// Client receive time (local clock).
    pub t4: NtpTimestamp,
}

impl NtpSample {
    /// θ = ((T2 − T1) + (T3 − T4)) / 2: remote clock minus local clock, positive when the remote
    /// clock is ahead.
    pub fn offset(&self) -> NtpDuration {
        NtpDuration::midpoint(self.t2.since(self.t1), self.t3.since(self.t4))
    }

    /// δ = (T4 − T1) − (T3 − T2): the round trip minus the server's processing time. Clamped at
    /// zero (a negative delay means the server's clock stepped or lied during the exchange).
    pub fn delay(&self) -> NtpDuration {
        let d = self.t4.since(self.t1) - self.t3.since(self.t2);
        if d.0 < 0 { NtpDuration::ZERO } else { d }
    }

    /// The interval that contains the true offset whatever the path asymmetry: θ ± δ/2.
    pub fn interval(&self) -> OffsetInterval {
        let theta = self.offset().to_seconds();
        let half = self.delay().to_seconds() / 2.0;
        OffsetInterval { lo: theta - half, hi: theta + half }
    }
}

/// An interval of seconds known to contain the true offset of a remote clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OffsetInterval {
    /// Lower bound, seconds.
    pub lo: f64,
    /// Upper bound, seconds.
    pub hi: f64,
}

impl OffsetInterval {
    /// The point estimate: the middle of the interval.
    pub fn midpoint(&self) -> f64 {
        (self.lo + self.hi) / 2.0
    }

    /// Width of the interval in seconds.
    pub fn width(&self) -> f64 {
        self.hi - self.lo
    }

    /// Whether `offset` lies inside the interval (bounds included).
    pub fn contains(&self, offset: f64) -> bool {
        self.lo <= offset && offset <= self.hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(unix: f64) -> NtpTimestamp {
        NtpTimestamp::from_unix(unix)
    }

    #[test]
    fn offset_and_delay_of_symmetric_exchange() {
        // Remote clock 10 s ahead, 20 ms each way, 1 ms in the server.
        let s = NtpSample { t1: ts(1000.0), t2: ts(1010.020), t3: ts(1010.021), t4: ts(1000.041) };
        assert!((s.offset().to_seconds() - 10.0).abs() < 1e-6);
        assert!((s.delay().to_seconds() - 0.040).abs() < 1e-6);
        let iv = s.interval();
        assert!((iv.lo - 9.98).abs() < 1e-6 && (iv.hi - 10.02).abs() < 1e-6);
        assert!(iv.contains(10.0));
    }

    #[test]
    fn asymmetric_path_stays_inside_interval() {
        // True offset −3 s; 30 ms out, 2 ms back.
        let s = NtpSample { t1: ts(5000.0), t2: ts(4997.030), t3: ts(4997.030), t4: ts(5000.032) };
        assert!(s.interval().contains(-3.0));
        assert!((s.offset().to_seconds() + 2.986).abs() < 1e-6);
    }
}
