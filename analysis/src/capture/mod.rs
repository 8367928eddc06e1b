//! Capture analysis without I/O: frames → NTP packets ([`record::NtpFrame`]) → per-client load
//! ([`load::LoadAnalyzer`]) → report tables ([`report::build_report`]), plus a synthetic
//! server-capture generator with known totals ([`synth`]).

pub mod clients;
pub mod frame;
pub mod load;
pub mod record;
pub mod report;
pub mod servers;
pub mod stats;
pub mod synth;
