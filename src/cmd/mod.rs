//! One module per subcommand; each exposes its clap `Args` struct and `run`.

pub mod audit;
pub mod classify;
pub mod demo;
pub mod export;
pub mod lab;
pub mod pcap;
pub mod pcap_synth;
pub mod probe;
pub mod report;
pub mod simulate;
pub mod survey;
