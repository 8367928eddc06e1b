//! Fuzz target: link-layer/IP/UDP dissection. The first byte picks a link type (every one the
//! dissector knows and one it does not), the rest is the frame. A UDP result's payload must lie
//! inside the frame; the load analyzer must accept whatever comes out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timeaudit_analysis::capture::frame::{Dissection, dissect, linktype};
use timeaudit_analysis::capture::load::{LoadAnalyzer, LoadConfig};

const LINKS: [u32; 11] = [
    linktype::NULL,
    linktype::ETHERNET,
    linktype::RAW_OPENBSD,
    linktype::RAW_BSDOS,
    linktype::RAW,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
    147, // a user link type nobody dissects
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else { return };
    let link = LINKS[usize::from(sel) % LINKS.len()];
    if let Dissection::Udp(u) = dissect(link, frame) {
        let start = u.payload.as_ptr() as usize;
        let base = frame.as_ptr() as usize;
        assert!(start >= base && start + u.payload.len() <= base + frame.len(), "payload outside the frame");
    }
    let mut load = LoadAnalyzer::new(LoadConfig::default());
    load.add_frame(link, 1_700_000_000_000_000_000, frame.len() as u32, frame);
    let _ = load.finish();
});
