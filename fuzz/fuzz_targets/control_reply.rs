//! Fuzz target: mode 6 (control) replies and mode 7 (private) headers. The input is split into
//! datagrams at 0xff bytes and fed to a reassembly; a complete reply's data goes through the
//! variable and association parsers. Nothing panics; complete data never exceeds what was fed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timeaudit_analysis::ntp::control::{Progress, Reassembly, parse_associations, parse_variables, private_response};

fuzz_target!(|data: &[u8]| {
    let Some((&op, rest)) = data.split_first() else { return };
    let mut r = Reassembly::new(1, op & 0x1f);
    let mut fed = 0usize;
    let mut complete = false;
    for dgram in rest.split(|&b| b == 0xff).filter(|d| !d.is_empty()) {
        fed += dgram.len();
        let _ = private_response(dgram, op);
        match r.push(dgram) {
            Ok(Progress::Complete) => {
                complete = true;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    // `data` is only meaningful (and only used) once complete: then fragments cover it all.
    if complete {
        let assembled = r.data();
        assert!(assembled.len() <= fed, "assembled {} bytes from {fed}", assembled.len());
        let _ = parse_variables(&assembled);
        let _ = parse_associations(&assembled);
    }
    let _ = parse_variables(rest);
    let _ = parse_associations(rest);
});
