//! Offline change detection: splits a history into time-contiguous pieces, each explained by
//! one line through (nearly) all of its intervals.
//!
//! Method: greedy growth with exponential then binary search (each piece is the longest run
//! from its start that one robust line fits with at most `segment_outlier_frac` outliers),
//! followed by a boundary refinement that moves each split to the point minimising the misfits
//! of the two neighbouring lines. Unlike PELT with a squared-error cost this needs no noise
//! scale: the cost is "intervals the line misses", which is the same for 1 s HTTP intervals and
//! 1 ms NTP ones. It costs O(pieces · log n) robust fits. Points that start no piece of at least
//! `min_segment_points` are left out as outliers.

use super::line::{Fitter, Line, Pt};
use super::params::ClassifierParams;

/// One piece of a segmented history: points `start..end` (indices into the sorted series) and
/// the line fitted to them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Piece {
    /// First index.
    pub start: usize,
    /// One past the last index.
    pub end: usize,
    /// The line through the piece.
    pub line: Line,
}

impl Piece {
    /// Number of points in the piece.
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    /// Whether the piece holds no point.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Outliers a piece of `len` points may hold.
pub fn allowed_outliers(p: &ClassifierParams, len: usize) -> usize {
    (p.segment_outlier_frac * len as f64).floor() as usize
}

/// Fast line fit used while growing pieces (no slope centring, fewer RANSAC pairs).
fn quick_fit(f: &mut Fitter, pts: &[Pt], p: &ClassifierParams, seed: u64) -> Line {
    let pairs = (p.ransac_pairs / 2).max(4);
    let n = pts.len();
    // Stop at the first line good enough to call the stretch one piece.
    let enough = n - allowed_outliers(p, n);
    f.best_line_until(pts, pairs, p.ransac_min_span_frac, seed, enough)
}

/// Whether `line` explains `pts` as one piece: few misses, and the piece does not end in a run
/// of `min_segment_points` consecutive misses (that is the next behaviour starting, not outliers;
/// runs inside the piece, which the line explains again afterwards, are outliers).
fn fits(line: &Line, pts: &[Pt], p: &ClassifierParams) -> bool {
    let miss = pts.iter().filter(|q| !line.stabs(q)).count();
    let trailing = pts.iter().rev().take_while(|q| !line.stabs(q)).count();
    miss <= allowed_outliers(p, pts.len()) && trailing < p.min_segment_points.max(2)
}

/// A cheap necessary condition for one line through every interval of `w`: the ranges of
/// slopes allowed by each pair of neighbours (and by the two ends) must overlap.
fn slopes_compatible(w: &[Pt]) -> bool {
    let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
    let mut pair = |a: &Pt, b: &Pt| {
        let dt = b.t - a.t;
        if dt > 0.0 {
            lo = lo.max((b.lo - a.hi) / dt);
            hi = hi.min((b.hi - a.lo) / dt);
        }
    };
    for k in 1..w.len() {
        pair(&w[k - 1], &w[k]);
    }
    if let (Some(a), Some(b)) = (w.first(), w.last()) {
        pair(a, b);
    }
    lo <= hi
}

/// How far from `start` the line `line` explains the points, scanning on from `from`: the
/// index of the first of `m` consecutive misses, or where the misses would exceed the allowance.
fn scan(line: &Line, pts: &[Pt], start: usize, from: usize, p: &ClassifierParams) -> usize {
    let m = p.min_segment_points.max(2);
    let mut miss = pts[start..from].iter().filter(|q| !line.stabs(q)).count();
    let mut run = 0usize;
    let mut end = from;
    for (j, q) in pts.iter().enumerate().skip(from) {
        if line.stabs(q) {
            run = 0;
            end = j + 1;
        } else {
            miss += 1;
            run += 1;
            if run >= m || miss > allowed_outliers(p, j + 1 - start) + 1 {
                break;
            }
        }
    }
    end
}

/// Segments `pts` (sorted by time). Stops early and returns `None` when more than `max_pieces`
/// pieces would be needed (the history is then not a few behaviours one after the other).
pub fn segment(f: &mut Fitter, pts: &[Pt], p: &ClassifierParams, max_pieces: usize) -> Option<Vec<Piece>> {
    let n = pts.len();
    let m = p.min_segment_points.max(2);
    let mut pieces: Vec<Piece> = Vec::new();
    let mut junk = 0usize;
    let max_junk = ((1.0 - p.min_inlier_frac) * n as f64).ceil() as usize + 1;
    let mut i = 0;
    while i < n {
        if n - i < m {
            break;
        }
        let window = &pts[i..i + m];
        let first = if slopes_compatible(window) { Some(quick_fit(f, window, p, i as u64)) } else { None };
        let Some(first) = first.filter(|l| fits(l, window, p)) else {
            i += 1;
            junk += 1;
            if junk > max_junk {
                return None;
            }
            continue;
        };
        // Grow: extend along the current line up to the first run of `m` misses (or until the
        // misses exceed the allowance), refit on what was gained, repeat until no progress.
        let (mut good, mut line) = (i + m, first);
        // Every round makes progress; the bound is a guard (doubling reaches any n in 64).
        for _ in 0..128 {
            let mut reach = scan(&line, pts, i, good, p);
            if reach <= good {
                if good - i >= 8 * m {
                    // A long piece has a well-determined line: it really ends here.
                    break;
                }
                // The line from a short stretch may be wrong (a flat step of a staircase of
                // one-second readings): try a fresh fit over twice the stretch before stopping.
                reach = (good + (good - i).max(m)).min(n);
                if reach <= good {
                    break;
                }
                let l = quick_fit(f, &pts[i..reach], p, (i * 37 + reach) as u64);
                if !fits(&l, &pts[i..reach], p) {
                    break;
                }
                line = l;
                good = reach;
                continue;
            }
            let l = quick_fit(f, &pts[i..reach], p, (i * 31 + reach) as u64);
            if fits(&l, &pts[i..reach], p) {
                line = l;
                good = reach;
            } else if fits(&line, &pts[i..reach], p) {
                good = reach;
            } else {
                break;
            }
            if good >= n {
                break;
            }
        }
        pieces.push(Piece { start: i, end: good, line });
        if pieces.len() > max_pieces {
            return None;
        }
        i = good;
    }
    merge_neighbours(f, pts, p, &mut pieces);
    refine_boundaries(f, pts, &mut pieces);
    Some(pieces)
}

/// Greedy growth can split one behaviour where a search step was unlucky: joins neighbouring
/// pieces that one line fits together.
fn merge_neighbours(f: &mut Fitter, pts: &[Pt], p: &ClassifierParams, pieces: &mut Vec<Piece>) {
    let mut k = 0;
    while k + 1 < pieces.len() {
        let (a, b) = (pieces[k], pieces[k + 1]);
        let range = &pts[a.start..b.end];
        // Only short pieces are worth a refit (a long piece stopped growing for a reason),
        // and neighbours whose lines meet at the boundary (one behaviour split by junk).
        let tb = pts[b.start].t;
        let w = pts[b.start].width().max(pts[a.end - 1].width());
        let short =
            a.len().min(b.len()) < 4 * p.min_segment_points.max(2) || (a.line.at(tb) - b.line.at(tb)).abs() <= 3.0 * w;
        let joined = [a.line, b.line].into_iter().find(|l| fits(l, range, p)).or_else(|| {
            if !short {
                return None;
            }
            let l = quick_fit(f, range, p, (a.start * 17 + b.end) as u64);
            fits(&l, range, p).then_some(l)
        });
        match joined {
            Some(line) => {
                pieces[k] = Piece { start: a.start, end: b.end, line };
                pieces.remove(k + 1);
            }
            None => k += 1,
        }
    }
}

/// Moves each boundary between neighbouring pieces to where the two lines together miss the
/// fewest intervals, then refits both lines.
fn refine_boundaries(f: &mut Fitter, pts: &[Pt], pieces: &mut [Piece]) {
    for k in 0..pieces.len().saturating_sub(1) {
        let (a, b) = (pieces[k], pieces[k + 1]);
        let lo = a.start + 1;
        let hi = b.end - 1;
        if lo > hi {
            continue;
        }
        // misses(s) = misses of a.line on [a.start, s) + misses of b.line on [s, b.end).
        let mut cost: usize =
            pts[lo..b.end].iter().filter(|q| !b.line.stabs(q)).count() + usize::from(!a.line.stabs(&pts[a.start]));
        let (mut best_s, mut best_cost) = (lo, cost);
        for (s, q) in pts.iter().enumerate().take(hi).skip(lo) {
            // Move point s from b to a.
            cost = cost + usize::from(!a.line.stabs(q)) - usize::from(!b.line.stabs(q));
            // Prefer the split closest to the original when tied.
            let s1 = s + 1;
            if cost < best_cost || (cost == best_cost && s1.abs_diff(b.start) < best_s.abs_diff(b.start)) {
                best_cost = cost;
                best_s = s1;
            }
        }
        if best_s != b.start && best_s - a.start >= 2 && b.end - best_s >= 2 {
            pieces[k].end = best_s;
            pieces[k + 1].start = best_s;
            // A shift of a few points leaves the slopes: re-anchor the intercepts only.
            pieces[k].line = f.stab(&pts[a.start..best_s], a.line.b);
            pieces[k + 1].line = f.stab(&pts[best_s..b.end], b.line.b);
        }
    }
}
