//! Probes: everything in timeaudit that touches sockets, files and the clock.

pub mod http;
