//! A legacy pcap writer (microsecond or nanosecond, either byte order, any link type, optionally
//! gzip-compressed): for the synthetic capture generator and for test fixtures.

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::{self, BufWriter, Write};

/// Format options of [`PcapWriter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// Link type of every frame.
    pub linktype: u32,
    /// Nanosecond timestamps (magic a1b23c4d) instead of microseconds.
    pub nanoseconds: bool,
    /// Big-endian headers.
    pub big_endian: bool,
    /// gzip-compress the output.
    pub gzip: bool,
    /// Snap length written in the header.
    pub snaplen: u32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self { linktype: 1, nanoseconds: false, big_endian: false, gzip: false, snaplen: 262_144 }
    }
}

enum Sink<W: Write> {
    Plain(BufWriter<W>),
    Gzip(Box<GzEncoder<BufWriter<W>>>),
}

/// Writes frames to a pcap stream.
pub struct PcapWriter<W: Write> {
    sink: Sink<W>,
    opts: WriterOptions,
}

impl<W: Write> std::fmt::Debug for PcapWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapWriter").field("opts", &self.opts).finish_non_exhaustive()
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(out: W, opts: WriterOptions) -> io::Result<Self> {
        let buffered = BufWriter::with_capacity(1 << 20, out);
        let sink = if opts.gzip {
            Sink::Gzip(Box::new(GzEncoder::new(buffered, Compression::fast())))
        } else {
            Sink::Plain(buffered)
        };
        let mut w = Self { sink, opts };
        let magic: u32 = if opts.nanoseconds { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut h = Vec::with_capacity(24);
        w.put32(&mut h, magic);
        w.put16(&mut h, 2);
        w.put16(&mut h, 4);
        w.put32(&mut h, 0);
        w.put32(&mut h, 0);
        w.put32(&mut h, opts.snaplen);
        w.put32(&mut h, opts.linktype);
        w.write_all(&h)?;
        Ok(w)
    }

    fn put32(&self, v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&if self.opts.big_endian { x.to_be_bytes() } else { x.to_le_bytes() });
    }

    fn put16(&self, v: &mut Vec<u8>, x: u16) {
        v.extend_from_slice(&if self.opts.big_endian { x.to_be_bytes() } else { x.to_le_bytes() });
    }

    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match &mut self.sink {
            Sink::Plain(w) => w.write_all(b),
            Sink::Gzip(w) => w.write_all(b),
        }
    }

    /// Writes one frame captured whole at `ts_ns`.
    pub fn write_frame(&mut self, ts_ns: i64, data: &[u8]) -> io::Result<()> {
        self.write_frame_with_len(ts_ns, data, data.len() as u32)
    }

    /// Writes one frame whose wire length was `orig_len`.
    pub fn write_frame_with_len(&mut self, ts_ns: i64, data: &[u8], orig_len: u32) -> io::Result<()> {
        let secs = ts_ns.div_euclid(1_000_000_000) as u32;
        let sub = ts_ns.rem_euclid(1_000_000_000) as u32;
        let frac = if self.opts.nanoseconds { sub } else { sub / 1000 };
        let mut h = [0u8; 16];
        for (i, x) in [secs, frac, data.len() as u32, orig_len].into_iter().enumerate() {
            let b = if self.opts.big_endian { x.to_be_bytes() } else { x.to_le_bytes() };
            h[i * 4..i * 4 + 4].copy_from_slice(&b);
        }
        self.write_all(&h)?;
        self.write_all(data)
    }

    /// Flushes and finishes the stream.
    pub fn finish(self) -> io::Result<W> {
        match self.sink {
            Sink::Plain(w) => w.into_inner().map_err(|e| e.into_error()),
            Sink::Gzip(g) => g.finish()?.into_inner().map_err(|e| e.into_error()),
        }
    }
}
