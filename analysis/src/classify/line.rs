//! Robust straight lines through offset intervals. A line `offset(t) = a + b·t` "stabs" an
//! interval when it passes through it; the best line stabs the most intervals. For a fixed
//! slope the best intercept is an interval-stabbing problem solved exactly by a sweep
//! (Marzullo's algorithm, as NTP's clock selection uses); slopes come from RANSAC over pairs of
//! points far apart in time, refined by a Theil–Sen median over the inliers and a local search,
//! and the reported slope is the middle of the range of slopes that stab as many intervals.
//! This treats one-second HTTP intervals and millisecond NTP intervals the same way.

/// One observation as the fitter sees it: time relative to the series start and the interval
/// of offsets (already widened by the slack) that contains the true offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pt {
    /// Seconds since the first observation of the series.
    pub t: f64,
    /// Lower bound of the offset, seconds.
    pub lo: f64,
    /// Upper bound of the offset, seconds.
    pub hi: f64,
}

impl Pt {
    /// Midpoint of the interval.
    pub fn mid(&self) -> f64 {
        0.5 * (self.lo + self.hi)
    }
    /// Width of the interval.
    pub fn width(&self) -> f64 {
        self.hi - self.lo
    }
}

/// A fitted line: `offset(t) = a + b·t` (t relative to the series start), with the number of
/// intervals it stabs and the range of intercepts that stab as many at this slope.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line {
    /// Intercept at t = 0, seconds.
    pub a: f64,
    /// Slope (seconds of offset per second; ×1e6 = ppm).
    pub b: f64,
    /// Lowest intercept stabbing `count` intervals at this slope.
    pub a_lo: f64,
    /// Highest such intercept.
    pub a_hi: f64,
    /// Number of intervals stabbed.
    pub count: usize,
}

impl Line {
    /// Offset predicted at relative time `t`.
    pub fn at(&self, t: f64) -> f64 {
        self.a + self.b * t
    }
    /// Whether the line passes through the (widened) interval of `p`.
    pub fn stabs(&self, p: &Pt) -> bool {
        let v = self.at(p.t);
        // Tolerate rounding in the sweep.
        let eps = 1e-9 * (1.0 + v.abs());
        v >= p.lo - eps && v <= p.hi + eps
    }
}

/// Up to this many points, [`Fitter::best_line`] tries every slope through two end points.
const EXACT_MAX: usize = 4;

/// Reusable scratch space (the fitter allocates nothing per call once warm).
#[derive(Debug, Default)]
pub struct Fitter {
    starts: Vec<u64>,
    ends: Vec<u64>,
    slopes: Vec<f64>,
    sub: Vec<Pt>,
    /// Number of stabbing sweeps run (a cost measure for benchmarks).
    pub sweeps: u64,
    /// Total points swept.
    pub swept: u64,
}

/// Deterministic pseudo-random sequence (SplitMix64) for RANSAC: analysis never uses OS
/// randomness, and the same series always gets the same answer.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform index below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n.max(1)
    }
}

/// Order-preserving map of a float to an integer (IEEE 754 total order).
fn key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

fn unkey(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

impl Fitter {
    /// Best intercept for slope `b`: the line stabbing the most intervals.
    pub fn stab(&mut self, pts: &[Pt], b: f64) -> Line {
        if pts.is_empty() {
            return Line { a: 0.0, b, a_lo: 0.0, a_hi: 0.0, count: 0 };
        }
        self.sweeps += 1;
        self.swept += pts.len() as u64;
        self.starts.clear();
        self.ends.clear();
        for p in pts {
            self.starts.push(key(p.lo - b * p.t));
            self.ends.push(key(p.hi - b * p.t));
        }
        // Integer keys sort several times faster than floats with a comparator.
        self.starts.sort_unstable();
        self.ends.sort_unstable();
        let n = self.starts.len();
        let (mut best, mut best_lo, mut best_hi) = (0usize, self.starts[0], self.ends[0]);
        let mut e = 0usize;
        for k in 0..n {
            let s = self.starts[k];
            if k + 1 < n && self.starts[k + 1] == s {
                continue;
            }
            while e < n && self.ends[e] < s {
                e += 1;
            }
            let depth = (k + 1).saturating_sub(e);
            if depth > best {
                best = depth;
                best_lo = s;
                best_hi = if e < n { self.ends[e] } else { s };
            }
        }
        let (best_lo, best_hi) = (unkey(best_lo), unkey(best_hi));
        Line { a: 0.5 * (best_lo + best_hi), b, a_lo: best_lo, a_hi: best_hi, count: best }
    }

    /// The lowest and highest intercept at slope `b` where at least `min_count` intervals
    /// overlap (the offsets "nearly as consistent" as the best one). `None` if none.
    pub fn depth_range(&mut self, pts: &[Pt], b: f64, min_count: usize) -> Option<(f64, f64)> {
        let min_count = min_count.max(1);
        self.stab(pts, b); // fills and sorts starts and ends
        let n = self.starts.len();
        let (mut i, mut j, mut depth) = (0usize, 0usize, 0usize);
        let (mut lo, mut hi) = (None, None);
        while j < n {
            if i < n && self.starts[i] <= self.ends[j] {
                depth += 1;
                if depth >= min_count && lo.is_none() {
                    lo = Some(self.starts[i]);
                }
                i += 1;
            } else {
                if depth >= min_count {
                    hi = Some(self.ends[j]);
                }
                depth = depth.saturating_sub(1);
                j += 1;
            }
        }
        Some((unkey(lo?), unkey(hi?)))
    }

    /// Median of pairwise slopes between midpoints at least `min_dt` apart (Theil–Sen). For long
    /// series only pairs half a series apart are used (linear time). `None` if no such pair.
    pub fn theil_sen(&mut self, pts: &[Pt], min_dt: f64) -> Option<f64> {
        self.slopes.clear();
        let n = pts.len();
        if n <= 40 {
            for i in 0..n {
                for j in i + 1..n {
                    let dt = pts[j].t - pts[i].t;
                    if dt.abs() >= min_dt && dt != 0.0 {
                        self.slopes.push((pts[j].mid() - pts[i].mid()) / dt);
                    }
                }
            }
        } else {
            let h = n / 2;
            for i in 0..n - h {
                let dt = pts[i + h].t - pts[i].t;
                if dt != 0.0 {
                    self.slopes.push((pts[i + h].mid() - pts[i].mid()) / dt);
                }
            }
        }
        if self.slopes.is_empty() {
            return None;
        }
        let m = self.slopes.len() / 2;
        let (_, v, _) = self.slopes.select_nth_unstable_by(m, f64::total_cmp);
        Some(*v)
    }

    /// The line stabbing the most intervals, over all slopes. Candidates: slope 0 (constant
    /// offset), slope −1 (stopped clock), Theil–Sen over all midpoints, RANSAC pairs; the best
    /// is refined by Theil–Sen over its inliers and a local search, then centred in its range of
    /// equally good slopes. Ties go to the earlier candidate (0, then −1): simpler models win.
    pub fn best_line(&mut self, pts: &[Pt], pairs: usize, min_span_frac: f64, seed: u64) -> Line {
        self.best_line_until(pts, pairs, min_span_frac, seed, pts.len())
    }

    /// [`Fitter::best_line`] that stops searching as soon as a line stabs `enough` intervals
    /// (for yes/no questions such as "does one line explain this stretch").
    pub fn best_line_until(&mut self, pts: &[Pt], pairs: usize, min_span_frac: f64, seed: u64, enough: usize) -> Line {
        let n = pts.len();
        let enough = enough.clamp(1, n.max(1));
        if n == 0 {
            return self.stab(pts, 0.0);
        }
        let span = pts[n - 1].t - pts[0].t;
        let mut best = self.stab(pts, 0.0);
        if best.count >= enough || span <= 0.0 {
            return best;
        }
        let consider = |f: &mut Fitter, b: f64, best: &mut Line| {
            if b.is_finite() {
                let l = f.stab(pts, b);
                if l.count > best.count {
                    *best = l;
                }
            }
        };
        consider(self, -1.0, &mut best);
        if n <= EXACT_MAX {
            // Exact for small sets: an optimal line can be moved until it passes through two
            // interval end points, so the slopes through pairs of end points are enough.
            for i in 0..n {
                for j in i + 1..n {
                    let dt = pts[j].t - pts[i].t;
                    if dt == 0.0 {
                        continue;
                    }
                    for (y0, y1) in
                        [(pts[i].lo, pts[j].lo), (pts[i].hi, pts[j].hi), (pts[i].lo, pts[j].hi), (pts[i].hi, pts[j].lo)]
                    {
                        consider(self, (y1 - y0) / dt, &mut best);
                    }
                }
            }
            return best;
        }
        if let Some(b) = self.theil_sen(pts, span * min_span_frac) {
            consider(self, b, &mut best);
        }
        let mut rng = SplitMix::new(seed ^ (n as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let min_dt = span * min_span_frac;
        let mut tried = 0;
        let mut draws = 0;
        // Adaptive RANSAC stop: enough pairs to have drawn two inliers of the best line so far
        // with probability 0.999 (a clean series stops after a few pairs, a mix uses them all).
        let trials_needed = |count: usize| -> usize {
            let w = count as f64 / n as f64;
            let p_pair = (w * w).clamp(1e-9, 1.0 - 1e-12);
            ((0.001f64).ln() / (1.0 - p_pair).ln()).ceil().max(3.0) as usize
        };
        while tried < pairs.min(trials_needed(best.count)) && draws < pairs * 4 {
            draws += 1;
            let i = rng.below(n);
            let j = rng.below(n);
            let dt = pts[j].t - pts[i].t;
            if dt.abs() < min_dt || dt == 0.0 {
                continue;
            }
            tried += 1;
            consider(self, (pts[j].mid() - pts[i].mid()) / dt, &mut best);
            if best.count >= enough {
                return best;
            }
        }
        self.refine(pts, best, span, enough)
    }

    /// Improves a line: Theil–Sen over its inliers, then a local slope search.
    pub fn refine(&mut self, pts: &[Pt], mut best: Line, span: f64, enough: usize) -> Line {
        if span <= 0.0 || best.count < 2 {
            return best;
        }
        let mut sub = std::mem::take(&mut self.sub);
        sub.clear();
        sub.extend(pts.iter().filter(|p| best.stabs(p)).copied());
        let sub_span = sub.last().map_or(0.0, |l| l.t) - sub.first().map_or(0.0, |f| f.t);
        if let Some(b) = self.theil_sen(&sub, sub_span * 0.2) {
            let l = self.stab(pts, b);
            if l.count >= best.count {
                best = l;
            }
        }
        self.sub = sub;
        if best.count >= enough {
            return best;
        }
        // Local search on the slope, steps from "one typical interval width over the span".
        let w = self.median_width(pts);
        let mut step = (w / span).max(1e-12);
        for _ in 0..6 {
            let up = self.stab(pts, best.b + step);
            let down = self.stab(pts, best.b - step);
            if up.count > best.count && up.count >= down.count {
                best = up;
            } else if down.count > best.count {
                best = down;
            } else {
                step *= 0.5;
            }
            if best.count >= enough {
                break;
            }
        }
        best
    }

    fn median_width(&mut self, pts: &[Pt]) -> f64 {
        self.slopes.clear();
        self.slopes.extend(pts.iter().map(Pt::width));
        let m = self.slopes.len() / 2;
        *self.slopes.select_nth_unstable_by(m, f64::total_cmp).1
    }

    /// Moves the slope of `best` to the middle of the range of slopes that stab as many
    /// intervals of `pts` (the best estimate of a rate seen through wide intervals).
    pub fn centre(&mut self, pts: &[Pt], best: Line) -> Line {
        let n = pts.len();
        if n < 2 || best.count < 2 {
            return best;
        }
        let span = pts[n - 1].t - pts[0].t;
        if span <= 0.0 {
            return best;
        }
        let w = self.median_width(pts);
        let c = best.count;
        let w0 = (w / span).max(1e-12);
        let edge = |f: &mut Fitter, dir: f64| -> f64 {
            // Expand until the count drops, then bisect.
            let mut good = 0.0;
            let mut bad = w0;
            let mut grew = 0;
            while f.stab(pts, best.b + dir * bad).count >= c && grew < 40 {
                good = bad;
                bad *= 2.0;
                grew += 1;
            }
            for _ in 0..12 {
                let mid = 0.5 * (good + bad);
                if f.stab(pts, best.b + dir * mid).count >= c {
                    good = mid;
                } else {
                    bad = mid;
                }
            }
            best.b + dir * good
        };
        let hi = edge(self, 1.0);
        let lo = edge(self, -1.0);
        let centred = self.stab(pts, 0.5 * (lo + hi));
        if centred.count >= c { centred } else { best }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(f64, f64, f64)]) -> Vec<Pt> {
        v.iter().map(|&(t, lo, hi)| Pt { t, lo, hi }).collect()
    }

    #[test]
    fn stab_finds_common_point() {
        let p = pts(&[(0.0, 0.0, 2.0), (1.0, 1.0, 3.0), (2.0, 1.5, 1.8), (3.0, 10.0, 11.0)]);
        let l = Fitter::default().stab(&p, 0.0);
        assert_eq!(l.count, 3);
        assert_eq!((l.a_lo, l.a_hi), (1.5, 1.8));
    }

    #[test]
    fn touching_intervals_count_as_overlapping() {
        let p = pts(&[(0.0, 0.0, 1.0), (1.0, 1.0, 2.0)]);
        assert_eq!(Fitter::default().stab(&p, 0.0).count, 2);
    }

    #[test]
    fn best_line_recovers_slope_through_one_second_intervals() {
        // offset = 5 + 100e-6 t, HTTP-like intervals [floor-ish, +1].
        let p: Vec<Pt> = (0..50)
            .map(|i| {
                let t = i as f64 * 3600.0;
                let truth = 5.0 + 100e-6 * t;
                let phase = (i as f64 * 0.37).fract();
                Pt { t, lo: truth - phase, hi: truth - phase + 1.0 }
            })
            .collect();
        let mut f = Fitter::default();
        let l = f.best_line(&p, 24, 0.2, 1);
        let l = f.centre(&p, l);
        assert_eq!(l.count, 50);
        assert!((l.b - 100e-6).abs() < 2e-6, "slope {}", l.b);
    }
}
