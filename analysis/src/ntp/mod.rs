//! NTP protocol core without I/O: timestamps, the wire codec for every mode, and the on-wire
//! offset and delay calculation of RFC 5905.

pub mod control;
pub mod measure;
pub mod packet;
pub mod timestamp;

pub use measure::{NtpSample, OffsetInterval};
pub use packet::{
    ControlHeader, DecodeError, ExtensionField, Header, KissCode, LeapIndicator, Mac, Mode, NtpMessage, PrivateHeader,
    RefId, TimePacket,
};
pub use timestamp::{NtpDuration, NtpShort, NtpTimestamp};

#[cfg(test)]
mod captured_tests;
