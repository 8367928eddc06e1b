//! Everything in timeaudit that touches sockets, files and the clock: the system clock, the
//! resolver, the NTP client and the per-address probe entry point.

pub mod capture;
pub mod clock;
pub mod ntp_client;
pub mod probe;
pub mod resolve;
