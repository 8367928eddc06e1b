//! Everything in timeaudit that touches sockets, files and the clock: the system clock, the
//! resolver, the NTP client, the HTTP(S) Date prober and the per-address probe entry point, and
//! the lab's loopback servers with misbehaving clocks.

pub mod capture;
pub mod clock;
pub mod config_files;
pub mod control;
pub mod http;
pub mod lab;
pub mod ntp_client;
pub mod politeness;
pub mod probe;
pub mod resolve;
