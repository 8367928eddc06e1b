//! Small streaming statistics for per-client state: the P² median estimator (constant memory,
//! exact up to five observations), the log2 polling-interval histogram as chrony's `clients`
//! shows it, and a fast hasher for address keys.

use std::hash::{BuildHasher, Hasher};

/// Streaming median (Jain & Chlamtac's P² algorithm): exact (to f32 precision) for up to 5
/// observations, an estimate within the observed range afterwards; 36 bytes whatever the number
/// of values (the outer markers sit at positions 1 and n, so only the middle three are stored).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct P2Median {
    n: u32,
    q: [f32; 5],
    mid: [u32; 3],
}

impl P2Median {
    const QUANTILES: [f64; 3] = [0.25, 0.5, 0.75];

    /// Number of observations.
    pub fn count(&self) -> u32 {
        self.n
    }

    /// Adds one observation.
    pub fn add(&mut self, x: f64) {
        if self.n < 5 {
            self.q[self.n as usize] = x as f32;
            self.n += 1;
            if self.n == 5 {
                self.q.sort_by(f32::total_cmp);
                self.mid = [2, 3, 4];
            }
            return;
        }
        // Heights are stored as f32 (memory per client) and computed in f64.
        let mut heights = self.q.map(f64::from);
        self.step(&mut heights, x);
        self.q = heights.map(|h| h as f32);
    }

    fn step(&mut self, q: &mut [f64; 5], x: f64) {
        let k = if x < q[0] {
            q[0] = x;
            0
        } else if x < q[1] {
            0
        } else if x < q[2] {
            1
        } else if x < q[3] {
            2
        } else if x <= q[4] {
            3
        } else {
            q[4] = x;
            3
        };
        // Markers above the cell of x move up by one; marker 4 (at n) always does.
        for p in &mut self.mid[k.min(3)..] {
            *p += 1;
        }
        self.n += 1;
        let n = f64::from(self.n);
        let mut pos = [1.0, f64::from(self.mid[0]), f64::from(self.mid[1]), f64::from(self.mid[2]), n];
        for i in 1..4 {
            let desired = 1.0 + (n - 1.0) * Self::QUANTILES[i - 1];
            let d = desired - pos[i];
            if (d >= 1.0 && pos[i + 1] - pos[i] > 1.0) || (d <= -1.0 && pos[i - 1] - pos[i] < -1.0) {
                let sf: f64 = if d > 0.0 { 1.0 } else { -1.0 };
                let (qm, qi, qp) = (q[i - 1], q[i], q[i + 1]);
                let (nm, ni, np) = (pos[i - 1], pos[i], pos[i + 1]);
                let parabolic = qi
                    + sf / (np - nm)
                        * ((ni - nm + sf) * (qp - qi) / (np - ni) + (np - ni - sf) * (qi - qm) / (ni - nm));
                q[i] = if qm < parabolic && parabolic < qp {
                    parabolic
                } else {
                    let j = if sf > 0.0 { i + 1 } else { i - 1 };
                    qi + sf * (q[j] - qi) / (pos[j] - ni)
                };
                pos[i] += sf;
                self.mid[i - 1] = pos[i] as u32;
            }
        }
    }

    /// The median (mean of the two middle values for an even count up to 4), or `None` when
    /// empty.
    pub fn median(&self) -> Option<f64> {
        match self.n {
            0 => None,
            n @ 1..=4 => {
                let mut v = [0.0f64; 4];
                for (d, s) in v.iter_mut().zip(&self.q[..n as usize]) {
                    *d = f64::from(*s);
                }
                let v = &mut v[..n as usize];
                v.sort_by(f64::total_cmp);
                let m = v.len() / 2;
                Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
            }
            _ => Some(f64::from(self.q[2])),
        }
    }
}

/// Smallest log2 bin of the polling-interval histogram (everything shorter falls in it).
pub const HIST_MIN_LOG2: i32 = -6;
/// Largest log2 bin (everything longer falls in it).
pub const HIST_MAX_LOG2: i32 = 17;
/// Number of histogram bins.
pub const HIST_BINS: usize = (HIST_MAX_LOG2 - HIST_MIN_LOG2 + 1) as usize;

/// floor(log2(seconds)) of a positive interval in nanoseconds, clamped to the histogram range.
pub fn log2_bin(interval_ns: i64) -> i32 {
    let s = interval_ns as f64 * 1e-9;
    if s <= 0.0 {
        return HIST_MIN_LOG2;
    }
    let exp = ((s.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    exp.clamp(HIST_MIN_LOG2, HIST_MAX_LOG2)
}

/// Histogram of polling intervals in log2-second bins (bin `k` holds intervals in [2^k, 2^(k+1)) s).
/// Counts are bytes until one would pass 255, then the whole histogram moves to 32-bit counts on
/// the heap: 32 bytes per client for the many that poll a few hundred times or less.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Log2Histogram {
    small: [u8; HIST_BINS],
    large: Option<Box<[u32; HIST_BINS]>>,
}

impl Log2Histogram {
    /// Counts one interval.
    #[inline]
    pub fn add(&mut self, interval_ns: i64) {
        let i = (log2_bin(interval_ns) - HIST_MIN_LOG2) as usize;
        match &mut self.large {
            Some(large) => large[i] = large[i].saturating_add(1),
            None if self.small[i] < u8::MAX => self.small[i] += 1,
            None => {
                let mut large = Box::new(self.small.map(u32::from));
                large[i] += 1;
                self.large = Some(large);
            }
        }
    }

    /// Whether the counts have moved to 32 bits.
    #[inline]
    pub fn is_large(&self) -> bool {
        self.large.is_some()
    }

    /// The count of every bin, from 2^HIST_MIN_LOG2 s up.
    pub fn counts(&self) -> [u32; HIST_BINS] {
        match &self.large {
            Some(large) => **large,
            None => self.small.map(u32::from),
        }
    }

    /// Non-empty bins as (log2 seconds, count), ascending.
    pub fn bins(&self) -> impl Iterator<Item = (i32, u32)> + use<> {
        self.counts().into_iter().enumerate().filter(|(_, c)| *c > 0).map(|(i, c)| (i as i32 + HIST_MIN_LOG2, c))
    }

    /// Number of intervals with log2 bin below `log2` (shorter than 2^log2 s).
    pub fn count_below(&self, log2: i32) -> u32 {
        let end = (log2 - HIST_MIN_LOG2).clamp(0, HIST_BINS as i32) as usize;
        self.counts()[..end].iter().sum()
    }

    /// Total number of intervals.
    pub fn total(&self) -> u32 {
        self.counts().iter().sum()
    }

    /// `6:40 7:3` rendering (log2 seconds: count), for tables.
    pub fn to_compact_string(&self) -> String {
        self.bins().map(|(k, c)| format!("{k}:{c}")).collect::<Vec<_>>().join(" ")
    }
}

/// Multiply-xorshift hasher for 128-bit address keys (not DoS-resistant; keys are captured
/// addresses and the table only grows with distinct clients).
#[derive(Clone, Copy, Debug, Default)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0 ^ u64::from(v)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u128(&mut self, v: u128) {
        let lo = v as u64;
        let hi = (v >> 64) as u64;
        self.0 = (self.0 ^ lo).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29) ^ hi;
        self.0 = self.0.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    }
}

/// Builds [`AddrHasher`]s.
#[derive(Clone, Copy, Debug, Default)]
pub struct AddrHashBuilder;

impl BuildHasher for AddrHashBuilder {
    type Hasher = AddrHasher;
    fn build_hasher(&self) -> AddrHasher {
        AddrHasher::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2_is_exact_for_small_counts_and_close_for_large() {
        let mut m = P2Median::default();
        assert_eq!(m.median(), None);
        for x in [5.0, 1.0, 3.0, 2.0] {
            m.add(x);
        }
        assert_eq!(m.median(), Some(2.5));
        m.add(4.0);
        assert_eq!(m.median(), Some(3.0));
        let mut m = P2Median::default();
        // 64 s poller with ±1 s jitter, plus a few outliers.
        for i in 0..1000 {
            m.add(64.0 + f64::from(i % 3) - 1.0 + if i % 100 == 0 { 900.0 } else { 0.0 });
        }
        let med = m.median().unwrap();
        assert!((63.0..=65.0).contains(&med), "{med}");
    }

    #[test]
    fn log2_bins() {
        assert_eq!(log2_bin(64_000_000_000), 6);
        assert_eq!(log2_bin(63_999_999_999), 5);
        assert_eq!(log2_bin(1_000_000_000), 0);
        assert_eq!(log2_bin(500_000_000), -1);
        assert_eq!(log2_bin(1), HIST_MIN_LOG2);
        assert_eq!(log2_bin(i64::MAX), HIST_MAX_LOG2);
        let mut h = Log2Histogram::default();
        h.add(64_000_000_000);
        h.add(1_500_000_000);
        assert_eq!(h.to_compact_string(), "0:1 6:1");
        assert_eq!(h.count_below(2), 1);
        // Past 255 in one bin: 32-bit counts, the others kept.
        for _ in 0..300 {
            h.add(64_000_000_000);
        }
        assert_eq!(h.to_compact_string(), "0:1 6:301");
        assert_eq!(h.total(), 302);
    }
}
