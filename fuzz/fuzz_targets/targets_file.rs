//! Fuzz target: targets files. Parsing never panics; every target it returns parses again from
//! its own text, and line numbers stay within the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timeaudit_analysis::observation::Method;
use timeaudit_analysis::target::Target;
use timeaudit_analysis::targets_file::parse_targets_file;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_targets_file("fuzz.targets", text) {
        Ok(lines) => {
            let total = text.lines().count().max(1);
            for l in lines {
                assert!(l.line >= 1 && l.line <= total, "line {} of {total}", l.line);
                assert!(Target::parse(&l.target.raw, &Method::ALL).is_ok(), "{:?} does not parse again", l.target.raw);
            }
        }
        Err(e) => {
            assert!(e.to_string().contains("fuzz.targets"), "error does not name the file: {e}");
        }
    }
});
