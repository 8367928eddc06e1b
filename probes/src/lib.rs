//! Everything in timeaudit that touches sockets, files and the clock: the system clock, the
//! resolver, the NTP client, the HTTP(S) Date prober and the per-address probe entry point.

pub mod clock;
pub mod http;
pub mod ntp_client;
pub mod probe;
pub mod resolve;
