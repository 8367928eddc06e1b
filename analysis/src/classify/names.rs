//! Per name, across its addresses: do the addresses of one name show one clock, or several
//! clocks behind round-robin DNS (seed 001's question)? Compares each address's offset at the end
//! of its history; a load-balanced address contributes each of its backends.

use super::{Class, Classification};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The verdict for one name and method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NameAgreement {
    /// The target as written.
    pub target: String,
    /// Method (ntp, http, https).
    pub method: String,
    /// Addresses seen for the name.
    pub addresses: usize,
    /// Addresses with an offset to compare (not unreachable, insufficient or random).
    pub compared: usize,
    /// Distinct clocks: offsets grouped so that neighbours within the tolerance are one clock.
    pub clocks: usize,
    /// Largest minus smallest offset, seconds (`None` with nothing to compare).
    pub spread_s: Option<f64>,
    /// One clock across all compared addresses.
    pub agree: bool,
}

/// One series' verdict with its key.
#[derive(Clone, Copy, Debug)]
pub struct Verdict<'a> {
    /// Target.
    pub target: &'a str,
    /// Address.
    pub address: &'a str,
    /// Method.
    pub method: &'a str,
    /// The classification of that series.
    pub classification: &'a Classification,
}

/// Groups verdicts by (target, method) and compares the offsets of their addresses.
/// `tol` is the largest difference between offsets of one clock (`name_agree_tol_s`).
pub fn agreement(verdicts: &[Verdict<'_>], tol: f64) -> Vec<NameAgreement> {
    /// Addresses, offsets, addresses with an offset.
    type Acc<'a> = (Vec<&'a str>, Vec<f64>, usize);
    let mut by: BTreeMap<(&str, &str), Acc<'_>> = BTreeMap::new();
    for v in verdicts {
        let e = by.entry((v.target, v.method)).or_default();
        e.0.push(v.address);
        let c = v.classification;
        let offsets: Vec<f64> = match c.class {
            Class::Unreachable | Class::Insufficient | Class::Random => Vec::new(),
            Class::LoadBalanced => c.backends.iter().map(|b| b.offset_s).collect(),
            _ => c.offset_s.into_iter().collect(),
        };
        if !offsets.is_empty() {
            e.2 += 1;
        }
        e.1.extend(offsets);
    }
    by.into_iter()
        .map(|((target, method), (mut addrs, mut offs, compared))| {
            addrs.sort_unstable();
            addrs.dedup();
            offs.sort_by(f64::total_cmp);
            let clocks = if offs.is_empty() { 0 } else { 1 + offs.windows(2).filter(|w| w[1] - w[0] > tol).count() };
            let spread_s = offs.first().zip(offs.last()).map(|(a, b)| b - a);
            NameAgreement {
                target: target.to_string(),
                method: method.to_string(),
                addresses: addrs.len(),
                compared,
                clocks,
                spread_s,
                agree: clocks == 1,
            }
        })
        .collect()
}
