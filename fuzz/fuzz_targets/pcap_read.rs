//! Fuzz target: capture files. The bytes are written to a temporary file (the reader opens
//! paths; gzip input is detected from the bytes too), every frame is read and dissected and
//! accounted for by the load analyzer. Reading never panics, never loops, and counts each frame
//! it hands out exactly once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use timeaudit_analysis::capture::frame::dissect;
use timeaudit_analysis::capture::load::{LoadAnalyzer, LoadConfig};
use timeaudit_probes::capture::CaptureFile;

/// Frames handed out per input at most: an input of n bytes cannot hold more than n/16 records.
const MAX_FRAMES_PER_BYTE: usize = 16;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir =
            if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        dir.join(format!("timeaudit-fuzz-pcap-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    let mut f = std::fs::File::create(path).expect("scratch file");
    f.write_all(data).expect("write scratch file");
    drop(f);
    let Ok(mut cf) = CaptureFile::open(path) else { return };
    let _ = cf.format();
    let mut load = LoadAnalyzer::new(LoadConfig::default());
    let gzip = cf.is_gzip();
    let mut n = 0usize;
    loop {
        match cf.next_frame() {
            Ok(Some(fr)) => {
                n += 1;
                assert!(n <= data.len() / MAX_FRAMES_PER_BYTE + 1 || gzip, "more frames than bytes allow");
                assert!(fr.data.len() <= timeaudit_probes::capture::MAX_BLOCK_LEN as usize);
                let _ = dissect(fr.linktype, fr.data);
                load.add_frame(fr.linktype, fr.ts_ns, fr.orig_len, fr.data);
            }
            Ok(None) | Err(_) => break,
        }
    }
    assert_eq!(cf.frames(), n as u64, "frame counter disagrees with frames handed out");
    let _ = load.finish();
});
