//! The capture file reader: format detection, record framing with bounds checks, and the
//! conversion of every timestamp flavour to nanoseconds since the Unix epoch. Record and block
//! bodies are decoded with pcap-parser.

use flate2::read::MultiGzDecoder;
use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le, parse_sectionheaderblock};
use pcap_parser::{parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, parse_pcap_header};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A pcap record claiming more captured bytes than this (and than the file's snap length) is
/// corrupt: 256 KiB is the largest snap length tcpdump and dumpcap use.
pub const MAX_CAPLEN: u32 = 262_144;
/// A pcapng block longer than this is corrupt (16 MiB, as Wireshark's limit).
pub const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;
/// Initial read buffer size.
const BUFFER_LEN: usize = 1 << 20;

const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;

/// Why a capture file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: io::Error,
    },
    /// Zero-length file.
    #[error("{path}: empty file (0 bytes), not a capture")]
    Empty {
        /// File.
        path: String,
    },
    /// Neither pcap nor pcapng magic.
    #[error("{path}: not a pcap or pcapng file (starts with {magic}){hint}")]
    NotACapture {
        /// File.
        path: String,
        /// First bytes, hex.
        magic: String,
        /// Extra hint.
        hint: &'static str,
    },
    /// The file header is cut short or invalid.
    #[error("{path}: bad file header: {reason}")]
    BadHeader {
        /// File.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Where and why reading of a file stopped early.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stopped at byte {offset}{}: {reason}", if *.decompressed { " of the decompressed data" } else { "" })]
pub struct Damage {
    /// Offset of the damaged record (in the decompressed stream for gzip files).
    pub offset: u64,
    /// Whether `offset` counts decompressed bytes.
    pub decompressed: bool,
    /// What is wrong.
    pub reason: String,
}

/// One frame, borrowed from the reader's buffer until the next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Link type (pcap LINKTYPE_ number).
    pub linktype: u32,
    /// Length of the frame on the wire.
    pub orig_len: u32,
    /// Captured bytes.
    pub data: &'a [u8],
}

/// The detected format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Legacy pcap.
    Pcap {
        /// Big-endian file.
        big_endian: bool,
        /// Nanosecond timestamps.
        nanoseconds: bool,
        /// The "modified" (Kuznetzov) record format with 24-byte record headers.
        modified: bool,
        /// Link type.
        linktype: u32,
        /// Snap length.
        snaplen: u32,
    },
    /// pcapng.
    PcapNg,
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    tsresol: u8,
    tsoffset: i64,
    snaplen: u32,
}

struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

enum Source {
    Plain(Counting<File>),
    Gzip(Box<MultiGzDecoder<BufReader<Counting<File>>>>),
}

impl Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(r) => r.read(buf),
            Self::Gzip(r) => r.read(buf),
        }
    }
    fn raw_position(&self) -> u64 {
        match self {
            Self::Plain(r) => r.count,
            Self::Gzip(r) => r.get_ref().get_ref().count,
        }
    }
}

/// A capture file being read.
pub struct CaptureFile {
    path: PathBuf,
    src: Source,
    file_len: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    consumed: u64,
    format: CaptureFormat,
    ng_big_endian: bool,
    interfaces: Vec<Interface>,
    last_ts: i64,
    frames: u64,
    damaged: bool,
}

impl std::fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureFile").field("path", &self.path).field("format", &self.format).finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

impl CaptureFile {
    /// Opens a capture (gzip-compressed or not) and reads its file header.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let name = path.display().to_string();
        let io_err = |source| CaptureError::Io { path: name.clone(), source };
        let mut file = File::open(path).map_err(io_err)?;
        let file_len = file.metadata().map_err(io_err)?.len();
        if file_len == 0 {
            return Err(CaptureError::Empty { path: name });
        }
        let mut magic = [0u8; 2];
        let got = file.read(&mut magic).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let counting = Counting { inner: file, count: 0 };
        let gz = got == 2 && magic == [0x1f, 0x8b];
        let src = if gz {
            Source::Gzip(Box::new(MultiGzDecoder::new(BufReader::with_capacity(1 << 16, counting))))
        } else {
            Source::Plain(counting)
        };
        let mut cf = Self {
            path: path.to_path_buf(),
            src,
            file_len,
            buf: vec![0; BUFFER_LEN],
            start: 0,
            end: 0,
            eof: false,
            consumed: 0,
            format: CaptureFormat::PcapNg,
            ng_big_endian: false,
            interfaces: Vec::new(),
            last_ts: 0,
            frames: 0,
            damaged: false,
        };
        let bad_header = |reason: String| CaptureError::BadHeader { path: name.clone(), reason };
        if !cf.fill(4).map_err(|e| bad_header(format!("read error: {e}")))? {
            let have = &cf.buf[..cf.end];
            if have.is_empty() {
                return Err(bad_header("the gzip stream decompresses to nothing".into()));
            }
            return Err(CaptureError::NotACapture {
                path: name.clone(),
                magic: hex(have),
                hint: " — too short to be a capture",
            });
        }
        let m = [cf.buf[0], cf.buf[1], cf.buf[2], cf.buf[3]];
        let le = u32::from_le_bytes(m);
        let be = u32::from_be_bytes(m);
        if le == PCAPNG_SHB {
            cf.format = CaptureFormat::PcapNg;
            return Ok(cf);
        }
        let legacy = [0xa1b2_c3d4u32, 0xa1b2_3c4d, 0xa1b2_cd34];
        if !legacy.contains(&le) && !legacy.contains(&be) {
            return Err(CaptureError::NotACapture {
                path: name.clone(),
                magic: hex(&m),
                hint: if gz { " after gzip decompression" } else { "" },
            });
        }
        if !cf.fill(24).map_err(|e| bad_header(format!("read error: {e}")))? {
            return Err(bad_header(format!("pcap file header cut short: {} of 24 bytes", cf.end - cf.start)));
        }
        let header = match parse_pcap_header(&cf.buf[..24]) {
            Ok((_, h)) => h,
            Err(e) => return Err(bad_header(format!("invalid pcap file header: {e}"))),
        };
        cf.format = CaptureFormat::Pcap {
            big_endian: header.is_bigendian(),
            nanoseconds: header.is_nanosecond_precision(),
            modified: header.is_modified_format(),
            linktype: header.network.0 as u32,
            snaplen: header.snaplen,
        };
        cf.advance(24);
        Ok(cf)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The detected format.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Whether the file is gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        matches!(self.src, Source::Gzip(_))
    }

    /// Size of the file on disk.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Bytes read from the disk so far (compressed bytes for gzip files).
    pub fn raw_position(&self) -> u64 {
        self.src.raw_position()
    }

    /// Frames returned so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    fn advance(&mut self, n: usize) {
        self.start += n;
        self.consumed += n as u64;
    }

    /// Makes at least `need` bytes available from `start`; false at end of input.
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        if self.end - self.start >= need {
            return Ok(true);
        }
        if self.buf.len() - self.start < need {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < need {
                self.buf.resize(need.next_power_of_two(), 0);
            }
        }
        while self.end - self.start < need && !self.eof {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start >= need)
    }

    fn damage(&mut self, reason: String) -> Damage {
        self.damaged = true;
        Damage { offset: self.consumed, decompressed: self.is_gzip(), reason }
    }

    /// Like [`Self::fill`]; `Ok(false)` at a clean end of file, a [`Damage`] when the file ends
    /// inside `what()` (only formatted then: this runs for every record).
    fn fill_or_damage(&mut self, need: usize, what: impl FnOnce() -> String) -> Result<bool, Damage> {
        match self.fill(need) {
            Ok(true) => Ok(true),
            Ok(false) if self.end == self.start => Ok(false),
            Ok(false) => {
                let have = self.end - self.start;
                let what = what();
                Err(self.damage(format!("file cut short inside {what}: {need} bytes needed, {have} left")))
            }
            Err(e) => Err(self.damage(format!("read error: {e}"))),
        }
    }

    /// The next frame, `Ok(None)` at the end, or where and why the file is damaged (after which
    /// it yields `Ok(None)`).
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, Damage> {
        if self.damaged {
            return Ok(None);
        }
        let found = match self.format {
            CaptureFormat::Pcap { big_endian, nanoseconds, modified, linktype, snaplen } => {
                self.next_legacy(big_endian, nanoseconds, modified, linktype, snaplen)?
            }
            CaptureFormat::PcapNg => self.next_ng()?,
        };
        Ok(found.map(|(ts_ns, linktype, orig_len, from, len)| {
            self.frames += 1;
            Frame { ts_ns, linktype, orig_len, data: &self.buf[from..from + len] }
        }))
    }

    #[allow(clippy::type_complexity)]
    fn next_legacy(
        &mut self,
        big_endian: bool,
        nanoseconds: bool,
        modified: bool,
        linktype: u32,
        snaplen: u32,
    ) -> Result<Option<(i64, u32, u32, usize, usize)>, Damage> {
        let hdr = if modified { 24 } else { 16 };
        if !self.fill_or_damage(hdr, || "a record header".into())? {
            return Ok(None);
        }
        let h = &self.buf[self.start..self.start + hdr];
        let cl = [h[8], h[9], h[10], h[11]];
        let caplen = if big_endian { u32::from_be_bytes(cl) } else { u32::from_le_bytes(cl) };
        let limit = MAX_CAPLEN.max(snaplen.min(MAX_BLOCK_LEN));
        if caplen > limit {
            return Err(self.damage(format!(
                "record {} claims {caplen} captured bytes, more than the {limit}-byte maximum: the file is corrupt",
                self.frames + 1
            )));
        }
        let total = hdr + caplen as usize;
        let n = self.frames + 1;
        if !self.fill_or_damage(total, || format!("record {n} ({total} bytes)"))? {
            return Ok(None);
        }
        let rec = &self.buf[self.start..self.start + total];
        let parsed = if modified {
            parse_pcap_frame_modified(rec)
        } else if big_endian {
            parse_pcap_frame_be(rec)
        } else {
            parse_pcap_frame(rec)
        };
        let (ts_sec, ts_frac, origlen) = match parsed {
            Ok((_, b)) => (b.ts_sec, b.ts_usec, b.origlen),
            Err(e) => return Err(self.damage(format!("record {} does not parse: {e}", self.frames + 1))),
        };
        let ts_ns = i64::from(ts_sec) * 1_000_000_000 + i64::from(ts_frac) * if nanoseconds { 1 } else { 1000 };
        let from = self.start + hdr;
        self.advance(total);
        Ok(Some((ts_ns, linktype, origlen, from, caplen as usize)))
    }

    #[allow(clippy::type_complexity)]
    fn next_ng(&mut self) -> Result<Option<(i64, u32, u32, usize, usize)>, Damage> {
        loop {
            if !self.fill_or_damage(12, || "a block header".into())? {
                return Ok(None);
            }
            let b = &self.buf[self.start..self.start + 12];
            let btype = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if btype == PCAPNG_SHB {
                let bom = [b[8], b[9], b[10], b[11]];
                self.ng_big_endian = if u32::from_le_bytes(bom) == PCAPNG_BOM {
                    false
                } else if u32::from_be_bytes(bom) == PCAPNG_BOM {
                    true
                } else {
                    return Err(self.damage(format!("section header with invalid byte-order magic {}", hex(&bom))));
                };
            }
            let lb = [b[4], b[5], b[6], b[7]];
            let len = if self.ng_big_endian { u32::from_be_bytes(lb) } else { u32::from_le_bytes(lb) };
            if len < 12 || len % 4 != 0 || len > MAX_BLOCK_LEN {
                return Err(self.damage(format!(
                    "block of type {btype:#010x} claims a length of {len} bytes (must be 12 to {MAX_BLOCK_LEN} and a multiple of 4): the file is corrupt"
                )));
            }
            let len = len as usize;
            if !self.fill_or_damage(len, || format!("a block of {len} bytes"))? {
                return Ok(None);
            }
            let start = self.start;
            let bytes = &self.buf[start..start + len];
            let parsed = if btype == PCAPNG_SHB {
                parse_sectionheaderblock(bytes).map(|(r, b)| (r, Block::SectionHeader(b)))
            } else if self.ng_big_endian {
                parse_block_be(bytes)
            } else {
                parse_block_le(bytes)
            };
            let block = match parsed {
                Ok((_, block)) => block,
                Err(e) => {
                    let msg = format!("block of type {btype:#010x} ({len} bytes) does not parse: {e}");
                    return Err(self.damage(msg));
                }
            };
            let base = self.buf.as_ptr() as usize;
            let mut out = None;
            match block {
                Block::SectionHeader(_) => self.interfaces.clear(),
                Block::InterfaceDescription(idb) => self.interfaces.push(Interface {
                    linktype: idb.linktype.0 as u32,
                    tsresol: idb.if_tsresol,
                    tsoffset: idb.if_tsoffset,
                    snaplen: idb.snaplen,
                }),
                Block::EnhancedPacket(epb) => {
                    let Some(iface) = self.interfaces.get(epb.if_id as usize).copied() else {
                        let msg = format!("packet for interface {} which the section does not describe", epb.if_id);
                        return Err(self.damage(msg));
                    };
                    let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                    let ts_ns = ng_timestamp(units, iface.tsresol, iface.tsoffset);
                    let data = &epb.data[..(epb.caplen as usize).min(epb.data.len())];
                    self.last_ts = ts_ns;
                    out = Some((ts_ns, iface.linktype, epb.origlen, data.as_ptr() as usize - base, data.len()));
                }
                Block::SimplePacket(spb) => {
                    let Some(iface) = self.interfaces.first().copied() else {
                        return Err(self.damage("simple packet block before any interface description".into()));
                    };
                    let mut n = (spb.origlen as usize).min(spb.data.len());
                    if iface.snaplen > 0 {
                        n = n.min(iface.snaplen as usize);
                    }
                    let data = &spb.data[..n];
                    out = Some((self.last_ts, iface.linktype, spb.origlen, data.as_ptr() as usize - base, n));
                }
                _ => {}
            }
            self.advance(len);
            if out.is_some() {
                return Ok(out);
            }
        }
    }
}

/// Nanoseconds since the Unix epoch of a pcapng timestamp in units of the interface's
/// `if_tsresol` (10^-n s, or 2^-n s with the top bit set), plus `if_tsoffset` seconds.
fn ng_timestamp(units: u64, tsresol: u8, tsoffset: i64) -> i64 {
    let n = u32::from(tsresol & 0x7f);
    let ns: u128 = if tsresol & 0x80 != 0 {
        if n >= 64 { 0 } else { (u128::from(units) * 1_000_000_000) >> n }
    } else if n <= 9 {
        u128::from(units) * 10u128.pow(9 - n)
    } else if n <= 38 {
        u128::from(units) / 10u128.pow(n - 9)
    } else {
        0
    };
    (ns.min(i64::MAX as u128) as i64).saturating_add(tsoffset.saturating_mul(1_000_000_000))
}

/// Orders capture files into one timeline by the timestamp of their first frame (files without
/// frames keep their place at the end); returns each path with its first timestamp, or the error
/// that prevents reading it.
pub fn order_files(paths: &[PathBuf]) -> Vec<(PathBuf, Result<Option<i64>, CaptureError>)> {
    let mut out: Vec<(PathBuf, Result<Option<i64>, CaptureError>)> = paths
        .iter()
        .map(|p| {
            let first = CaptureFile::open(p).map(|mut f| f.next_frame().ok().flatten().map(|fr| fr.ts_ns));
            (p.clone(), first)
        })
        .collect();
    out.sort_by_key(|(_, r)| match r {
        Ok(Some(ts)) => (0, *ts),
        _ => (1, 0),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_after_a_valid_header_never_panics() {
        let dir = std::env::temp_dir().join(format!("timeaudit-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.pcap");
        let mut seed = 0x1234_5678_9abc_def0u64;
        for round in 0..200 {
            let mut bytes =
                vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
            if round % 2 == 1 {
                bytes = vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0];
                bytes.extend_from_slice(&[0xff; 8]);
                bytes.extend_from_slice(&[28, 0, 0, 0]);
            }
            for _ in 0..(round * 7 % 300) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.push((seed >> 24) as u8);
            }
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(mut f) = CaptureFile::open(&path) {
                let mut n = 0;
                while let Ok(Some(_)) = f.next_frame() {
                    n += 1;
                    assert!(n < 1000);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ng_timestamps() {
        assert_eq!(ng_timestamp(1_500_000_000_123_456, 6, 0), 1_500_000_000_123_456_000);
        assert_eq!(ng_timestamp(1_500_000_000_123_456_789, 9, 0), 1_500_000_000_123_456_789);
        assert_eq!(ng_timestamp(3 << 30, 0x80 | 30, 10), 13_000_000_000);
        assert_eq!(ng_timestamp(1_234_567, 3, 0), 1_234_567_000_000);
    }
}
