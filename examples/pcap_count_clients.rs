//! The per-client floor for `scripts/bench-pcap`: what the seed pipeline computes (packets per
//! destination address), as a tight loop over an uncompressed little-endian pcap of Ethernet/IPv4
//! frames: walks the record headers as `pcap_header_walk` does, reads each frame's IPv4
//! destination at its fixed offset and counts it in a hash map. No analysis that keeps anything
//! per client can be much faster than this on the same file; it checks nothing and keeps only a
//! count.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).expect("usage: pcap_count_clients FILE.pcap");
    let mut f = File::open(&path)?;
    let mut header = [0u8; 24];
    f.read_exact(&mut header)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut start, mut end) = (0usize, 0usize);
    let mut counts: HashMap<u32, u32> = HashMap::new();
    let mut records = 0u64;
    loop {
        while end >= start + 16 {
            let h = &buf[start..start + 16];
            let caplen = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
            if end < start + 16 + caplen {
                break;
            }
            let frame = &buf[start + 16..start + 16 + caplen];
            if let Some(d) = frame.get(30..34) {
                *counts.entry(u32::from_be_bytes([d[0], d[1], d[2], d[3]])).or_insert(0) += 1;
            }
            records += 1;
            start += 16 + caplen;
        }
        buf.copy_within(start..end, 0);
        end -= start;
        start = 0;
        let got = f.read(&mut buf[end..])?;
        if got == 0 {
            break;
        }
        end += got;
    }
    println!("records {records} destinations {}", counts.len());
    Ok(())
}
