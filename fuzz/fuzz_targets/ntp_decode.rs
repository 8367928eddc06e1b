//! Fuzz target: NTP decode -> encode -> decode. Any datagram that decodes must re-encode to
//! exactly the same bytes and decode to the same message; nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timeaudit_analysis::ntp::NtpMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = NtpMessage::decode(data) {
        let bytes = msg.encode();
        assert_eq!(bytes, data, "re-encoding differs");
        let again = NtpMessage::decode(&bytes).expect("re-encoded message decodes");
        assert_eq!(again, msg);
        if let NtpMessage::Time(p) = msg {
            assert_eq!(p.wire_len(), data.len());
            assert_eq!(p.extension_fields().count(), usize::from(p.extension_count));
            let _ = p.header.kiss_code();
            let _ = p.header.refid_text();
        }
    }
});
