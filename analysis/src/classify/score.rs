//! Scoring a classifier against ground truth: confusion matrix, per-class precision, recall, F1
//! and macro-F1 (the mean F1 over the classes that occur in the truth).

use super::Class;

/// Counts of (truth, predicted) pairs over [`Class::ALL`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Confusion {
    /// `m[truth][predicted]`, indexed by position in [`Class::ALL`].
    pub m: [[u64; 10]; 10],
}

fn idx(c: Class) -> usize {
    Class::ALL.iter().position(|&x| x == c).unwrap_or(0)
}

impl Confusion {
    /// Records one verdict.
    pub fn add(&mut self, truth: Class, predicted: Class) {
        self.m[idx(truth)][idx(predicted)] += 1;
    }
    /// Adds another matrix.
    pub fn merge(&mut self, o: &Confusion) {
        for i in 0..10 {
            for j in 0..10 {
                self.m[i][j] += o.m[i][j];
            }
        }
    }
    /// Series whose truth is `c`.
    pub fn support(&self, c: Class) -> u64 {
        self.m[idx(c)].iter().sum()
    }
    /// Total series.
    pub fn total(&self) -> u64 {
        self.m.iter().flatten().sum()
    }
    /// F1 of class `c` (0 when it was never true nor predicted).
    pub fn f1(&self, c: Class) -> f64 {
        let i = idx(c);
        let tp = self.m[i][i] as f64;
        let fn_ = self.support(c) as f64 - tp;
        let fp = (0..10).map(|r| self.m[r][i]).sum::<u64>() as f64 - tp;
        if tp == 0.0 { 0.0 } else { 2.0 * tp / (2.0 * tp + fp + fn_) }
    }
    /// Mean F1 over the classes present in the truth.
    pub fn macro_f1(&self) -> f64 {
        let present: Vec<Class> = Class::ALL.into_iter().filter(|&c| self.support(c) > 0).collect();
        if present.is_empty() {
            return 0.0;
        }
        present.iter().map(|&c| self.f1(c)).sum::<f64>() / present.len() as f64
    }
    /// Share of verdicts equal to the truth.
    pub fn accuracy(&self) -> f64 {
        let t = self.total();
        if t == 0 { 0.0 } else { (0..10).map(|i| self.m[i][i]).sum::<u64>() as f64 / t as f64 }
    }
    /// Text table: one row per true class present, one column per class predicted anywhere.
    pub fn table(&self) -> String {
        let rows: Vec<Class> = Class::ALL.into_iter().filter(|&c| self.support(c) > 0).collect();
        let cols: Vec<Class> = Class::ALL.into_iter().filter(|&c| (0..10).any(|r| self.m[r][idx(c)] > 0)).collect();
        let mut s = format!("{:>14}", "truth\\pred");
        for c in &cols {
            s += &format!(" {:>8}", &c.as_str()[..c.as_str().len().min(8)]);
        }
        s += "       F1\n";
        for r in rows {
            s += &format!("{:>14}", r.as_str());
            for c in &cols {
                s += &format!(" {:>8}", self.m[idx(r)][idx(*c)]);
            }
            s += &format!(" {:>8.3}\n", self.f1(r));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_by_hand() {
        let mut c = Confusion::default();
        // ok: 3 right, 1 called offset; offset: 2 right.
        for _ in 0..3 {
            c.add(Class::Ok, Class::Ok);
        }
        c.add(Class::Ok, Class::Offset);
        c.add(Class::Offset, Class::Offset);
        c.add(Class::Offset, Class::Offset);
        // ok: tp 3, fn 1, fp 0 -> 6/7; offset: tp 2, fp 1, fn 0 -> 4/5.
        assert!((c.f1(Class::Ok) - 6.0 / 7.0).abs() < 1e-12);
        assert!((c.f1(Class::Offset) - 0.8).abs() < 1e-12);
        assert!((c.macro_f1() - (6.0 / 7.0 + 0.8) / 2.0).abs() < 1e-12);
    }
}
