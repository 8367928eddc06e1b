//! Fuzz target: chrony.conf / ntp.conf. Dialect detection, parsing, include discovery, single-file
//! and fleet linting never panic; every finding names the file it is about.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timeaudit_analysis::config_lint::{Dialect, LintParams, includes, lint, lint_fleet, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let detected = Dialect::detect("fuzz.conf", text);
    let params = LintParams::default();
    let mut parsed = Vec::new();
    for dialect in [Dialect::Chrony, Dialect::Ntpd] {
        let ds = parse(dialect, "fuzz.conf", text);
        for d in &ds {
            assert!(d.line >= 1, "line 0");
        }
        let _ = includes(dialect, &ds);
        for f in lint(dialect, "fuzz.conf", &ds, &params) {
            assert!(f.file.contains("fuzz.conf"), "finding without the file: {f:?}");
        }
        parsed.push((dialect, ds));
    }
    let fleet: Vec<(&str, Dialect, &[_])> =
        parsed.iter().map(|(d, ds)| (if *d == detected { "a.conf" } else { "b.conf" }, *d, ds.as_slice())).collect();
    let _ = lint_fleet(&fleet, &params);
});
