//! The one place timeaudit reads the local clock: the system's real-time clock as an NTP
//! timestamp or as Unix seconds. Everything else receives times as values.

use std::time::{SystemTime, UNIX_EPOCH};
use timeaudit_analysis::ntp::NtpTimestamp;

/// A source of the current local time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, as an NTP timestamp (era-wrapped).
    fn now_ntp(&self) -> NtpTimestamp;
    /// Now, as Unix seconds.
    fn now_unix(&self) -> f64;
}

/// The system's real-time clock (`CLOCK_REALTIME`, via `SystemTime`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl SystemClock {
    fn since_epoch() -> (i64, u32) {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos()),
            // A clock set before 1970: represent it as negative seconds.
            Err(e) => {
                let d = e.duration();
                let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                match d.subsec_nanos() {
                    0 => (secs, 0),
                    n => (secs - 1, 1_000_000_000 - n),
                }
            }
        }
    }
}

impl Clock for SystemClock {
    fn now_ntp(&self) -> NtpTimestamp {
        let (secs, nanos) = Self::since_epoch();
        NtpTimestamp::from_unix_parts(secs, nanos)
    }

    fn now_unix(&self) -> f64 {
        let (secs, nanos) = Self::since_epoch();
        secs as f64 + f64::from(nanos) * 1e-9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_and_unix_readings_agree() {
        let c = SystemClock;
        let unix = c.now_unix();
        let ntp = c.now_ntp().to_unix_near(unix);
        assert!((ntp - unix).abs() < 0.5, "{ntp} vs {unix}");
        assert!(unix > 1_600_000_000.0);
    }
}
