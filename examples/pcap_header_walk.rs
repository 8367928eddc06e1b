//! The floor for `scripts/bench-pcap`: walks the record headers of an uncompressed
//! little-endian pcap file and nothing else (reads the file in 1 MiB blocks, hops from record
//! header to record header, sums captured and original lengths). No capture reader can be faster
//! than this loop on the same file.

use std::fs::File;
use std::io::Read;

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).expect("usage: pcap_header_walk FILE.pcap");
    let mut f = File::open(&path)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut start, mut end) = (0usize, 0usize);
    let mut skip = 24usize; // file header
    let (mut records, mut caplen_sum, mut origlen_sum) = (0u64, 0u64, 0u64);
    loop {
        // Skip bytes (file header, record bodies) that are already in the buffer.
        let n = skip.min(end - start);
        start += n;
        skip -= n;
        if skip == 0 && end - start >= 16 {
            let h = &buf[start..start + 16];
            let caplen = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
            let origlen = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
            records += 1;
            caplen_sum += u64::from(caplen);
            origlen_sum += u64::from(origlen);
            start += 16;
            skip = caplen as usize;
            continue;
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
    println!("records {records} captured_bytes {caplen_sum} wire_bytes {origlen_sum}");
    Ok(())
}
