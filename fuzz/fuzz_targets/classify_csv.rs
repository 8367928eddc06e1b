//! Fuzz target: the classifier's CSV input. The text is read as `timeaudit classify --input`
//! reads it (same columns and rules; that reader lives in the binary crate, so the column
//! handling is repeated here), the observations become samples, each series is sorted and
//! classified and run through the online change check. Nothing panics and every verdict's
//! counts add up to the series.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use timeaudit_analysis::change::{OnlineCheck, OnlineParams};
use timeaudit_analysis::classify::{Classifier, ClassifierParams, samples_from_observations};
use timeaudit_analysis::observation::{Method, Observation};

/// Rows per input at most (keeps one execution short).
const MAX_ROWS: usize = 2_000;

fn read(text: &[u8]) -> Option<BTreeMap<(String, String, String), Vec<Observation>>> {
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(text);
    let headers = rdr.headers().ok()?.clone();
    let col = |n: &str| headers.iter().position(|h| h.trim() == n);
    let (it, ia, im, is, ir) = (col("target")?, col("address")?, col("method")?, col("t_send")?, col("t_recv")?);
    let (ilo, ihi) = (col("offset_lo")?, col("offset_hi")?);
    let (ioff, idel) = (col("offset"), col("delay"));
    let mut out: BTreeMap<_, Vec<Observation>> = BTreeMap::new();
    for rec in rdr.records().take(MAX_ROWS) {
        let rec = rec.ok()?;
        let get = |i: usize| rec.get(i).map(str::trim).filter(|s| !s.is_empty());
        let num = |i: Option<usize>| -> Result<Option<f64>, ()> {
            match i.and_then(get) {
                None => Ok(None),
                Some(s) => s.parse::<f64>().ok().filter(|v| v.is_finite()).map(Some).ok_or(()),
            }
        };
        let target = get(it)?;
        let method: Method = get(im)?.parse().ok()?;
        let t_send = num(Some(is)).ok()??;
        let o = Observation {
            target: target.into(),
            address: get(ia).unwrap_or("").into(),
            method: Some(method),
            t_send,
            t_recv: num(Some(ir)).ok()?.unwrap_or(t_send),
            offset: num(ioff).ok()?,
            offset_lo: num(Some(ilo)).ok()?,
            offset_hi: num(Some(ihi)).ok()?,
            delay: num(idel).ok()?,
            ..Default::default()
        };
        out.entry((o.target.clone(), o.address.clone(), method.as_str().to_string())).or_default().push(o);
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Some(series) = read(data) else { return };
    let mut cl = Classifier::new(ClassifierParams::default());
    for obs in series.values() {
        let (mut samples, failed) = samples_from_observations(obs);
        assert_eq!(samples.len() + failed, obs.len(), "samples + failed != rows");
        samples.sort_by(|a, b| a.t.total_cmp(&b.t));
        let _ = cl.classify(&samples, failed);
        let mut oc = OnlineCheck::new(OnlineParams::default());
        for s in &samples {
            let _ = oc.observe(s);
        }
    }
});
