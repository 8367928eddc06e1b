//! NTP time quantities (RFC 5905 §6): the 64-bit timestamp, the signed 64-bit duration and the
//! 32-bit short format, with era handling and conversion to and from Unix seconds.

use std::ops::{Add, Neg, Sub};

/// Seconds from the NTP prime epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const NTP_TO_UNIX_SECONDS: i64 = 2_208_988_800;
/// Length of one NTP era in seconds (2^32).
const ERA_SECONDS: i64 = 1 << 32;
const FRACTION_SCALE: f64 = 4_294_967_296.0; // 2^32

/// A 64-bit NTP timestamp on the wire: 32 bits of seconds and 32 bits of fraction since the start
/// of an era. The era itself is not carried; it is chosen when converting (see [`Self::to_unix`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// The all-zero timestamp, which NTP uses for "unknown / not set".
    pub const ZERO: Self = Self(0);

    /// Reads a timestamp from its 8 big-endian bytes.
    pub fn from_be_bytes(bytes: [u8; 8]) -> Self {
        Self(u64::from_be_bytes(bytes))
    }

    /// The 8 big-endian bytes of this timestamp.
    pub fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// Whole seconds within the era.
    pub fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Fraction of a second in units of 2^-32 s.
    pub fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// Whether this is the "unset" timestamp 0.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Builds a timestamp from Unix seconds (any era; the era is dropped).
    pub fn from_unix(unix_seconds: f64) -> Self {
        let secs = unix_seconds.floor();
        let frac = ((unix_seconds - secs) * FRACTION_SCALE).floor() as u64;
        let ntp_secs = (secs as i64 + NTP_TO_UNIX_SECONDS).rem_euclid(ERA_SECONDS) as u64;
        Self((ntp_secs << 32) | frac.min(u32::MAX as u64))
    }

    /// Builds a timestamp from Unix whole seconds and nanoseconds (exact up to 2^-32 s).
    pub fn from_unix_parts(unix_seconds: i64, nanos: u32) -> Self {
        let ntp_secs = (unix_seconds + NTP_TO_UNIX_SECONDS).rem_euclid(ERA_SECONDS) as u64;
        let frac = ((u64::from(nanos) << 32) / 1_000_000_000).min(u32::MAX as u64);
        Self((ntp_secs << 32) | frac)
    }

    /// Unix seconds of this timestamp in the era that puts it closest to `pivot_unix`
    /// (RFC 5905 §6: the era is resolved against a nearby known time, e.g. the local clock).
    pub fn to_unix_near(self, pivot_unix: f64) -> f64 {
        let in_era =
            f64::from(self.seconds()) + f64::from(self.fraction()) / FRACTION_SCALE - NTP_TO_UNIX_SECONDS as f64;
        let eras = ((pivot_unix - in_era) / ERA_SECONDS as f64).round();
        in_era + eras * ERA_SECONDS as f64
    }

    /// Unix seconds of this timestamp, with the era chosen as ntpd does without context:
    /// seconds with the top bit set fall in era 0 (1968–2036), the others in era 1 (2036–2104).
    pub fn to_unix(self) -> f64 {
        let era: i64 = if self.seconds() & 0x8000_0000 != 0 { 0 } else { 1 };
        f64::from(self.seconds()) + (era * ERA_SECONDS) as f64 - NTP_TO_UNIX_SECONDS as f64
            + f64::from(self.fraction()) / FRACTION_SCALE
    }

    /// Signed difference `self − earlier`, exact to 2^-32 s, assuming the two lie within 68 years
    /// of each other (two's-complement arithmetic across an era boundary, RFC 5905 §6).
    pub fn since(self, earlier: Self) -> NtpDuration {
        NtpDuration(self.0.wrapping_sub(earlier.0) as i64)
    }
}

/// A signed time difference in units of 2^-32 s (range ±68 years).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NtpDuration(pub i64);

impl NtpDuration {
    /// No time at all.
    pub const ZERO: Self = Self(0);

    /// The duration in seconds.
    pub fn to_seconds(self) -> f64 {
        self.0 as f64 / FRACTION_SCALE
    }

    /// A duration of `seconds` (saturating at ±68 years).
    pub fn from_seconds(seconds: f64) -> Self {
        Self((seconds * FRACTION_SCALE) as i64)
    }

    /// Half of the sum of two durations, without overflow (the RFC 5905 offset formula).
    pub fn midpoint(a: Self, b: Self) -> Self {
        Self(((i128::from(a.0) + i128::from(b.0)) / 2) as i64)
    }

    /// The absolute value.
    pub fn abs(self) -> Self {
        Self(self.0.saturating_abs())
    }
}

impl Add for NtpDuration {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }
}

impl Sub for NtpDuration {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self(self.0.saturating_sub(rhs.0))
    }
}

impl Neg for NtpDuration {
    type Output = Self;
    fn neg(self) -> Self {
        Self(self.0.saturating_neg())
    }
}

/// The 32-bit NTP short format (16 bits of seconds, 16 of fraction) of root delay and root
/// dispersion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NtpShort(pub u32);

impl NtpShort {
    /// The value in seconds.
    pub fn to_seconds(self) -> f64 {
        f64::from(self.0) / 65_536.0
    }

    /// The short-format value nearest to `seconds` (clamped to its range).
    pub fn from_seconds(seconds: f64) -> Self {
        Self((seconds * 65_536.0).round().clamp(0.0, f64::from(u32::MAX)) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_round_trip_and_known_value() {
        // 2024-01-01T00:00:00Z = 1704067200 Unix = 3913056000 NTP seconds.
        let ts = NtpTimestamp::from_unix(1_704_067_200.5);
        assert_eq!(ts.seconds(), 3_913_056_000);
        assert_eq!(ts.fraction(), 1 << 31);
        assert_eq!(ts.to_unix(), 1_704_067_200.5);
        assert_eq!(NtpTimestamp::from_unix_parts(1_704_067_200, 500_000_000), ts);
    }

    #[test]
    fn era_one_after_2036() {
        // 2040-01-01T00:00:00Z = 2208988800 Unix, which is past the 2036-02-07 era rollover.
        let ts = NtpTimestamp::from_unix(2_208_988_800.0);
        assert_eq!(u64::from(ts.seconds()), (2_208_988_800u64 + 2_208_988_800) - (1 << 32));
        assert_eq!(ts.to_unix(), 2_208_988_800.0);
        assert_eq!(ts.to_unix_near(2_200_000_000.0), 2_208_988_800.0);
    }

    #[test]
    fn difference_across_era_boundary() {
        let before = NtpTimestamp::from_unix(2_085_978_495.75); // 0.25 s before the rollover
        let after = NtpTimestamp::from_unix(2_085_978_496.25);
        assert_eq!(after.seconds(), 0);
        assert_eq!(after.since(before).to_seconds(), 0.5);
        assert_eq!(before.since(after).to_seconds(), -0.5);
    }

    #[test]
    fn short_format() {
        assert_eq!(NtpShort(0x0001_8000).to_seconds(), 1.5);
        assert_eq!(NtpShort::from_seconds(1.5), NtpShort(0x0001_8000));
    }
}
