//! Reading capture files: pcap (microsecond and nanosecond, either byte order, and the
//! "modified" variant), pcapng (interface table kept per section), gzip-compressed files, several
//! files as one timeline. Streaming through one buffer that only grows to the largest record:
//! memory does not grow with the file. A damaged file yields every frame before the damage and a
//! [`Damage`] saying where and why reading stopped.

mod analyse;
mod reader;
mod writer;

pub use analyse::{CaptureAnalysis, FileRead, OrderedFiles, analyse_files, detect_servers_in, read_frames};
pub use reader::{CaptureError, CaptureFile, CaptureFormat, Damage, Frame, MAX_BLOCK_LEN, MAX_CAPLEN, order_files};
pub use writer::{PcapWriter, WriterOptions};
