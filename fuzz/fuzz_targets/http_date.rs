//! Fuzz target: HTTP `Date` values. Parsing never panics; a value that parses to a time in
//! years 1970..=9999 formats (IMF-fixdate) to text that parses back to the same second.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timeaudit_analysis::httpdate::{format_imf_fixdate, parse_http_date};

/// 10000-01-01T00:00:00Z: IMF-fixdate has four year digits.
const END_OF_YEAR_9999: i64 = 253_402_300_800;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(t) = parse_http_date(text) {
        if (0..END_OF_YEAR_9999).contains(&t) {
            let s = format_imf_fixdate(t);
            assert_eq!(parse_http_date(&s).ok(), Some(t), "{text:?} -> {t} -> {s:?}");
        }
    }
});
