//! Fuzz target: target strings. Parsing never panics, and a parsed target parses again to the
//! same value from its own text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timeaudit_analysis::observation::Method;
use timeaudit_analysis::target::Target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(t) = Target::parse(text, &Method::ALL) {
        let again = Target::parse(&t.raw, &Method::ALL).expect("a parsed target's text parses");
        assert_eq!(again, t);
        let _ = t.authority();
    }
});
