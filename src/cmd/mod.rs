//! One module per subcommand; each exposes its clap `Args` struct and `run`.

pub mod pcap;
pub mod pcap_synth;
pub mod probe;
