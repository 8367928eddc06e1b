//! Everything in timeaudit that touches sockets, files and the clock: the probers, the resolver,
//! capture readers, and the lab's loopback servers with misbehaving clocks.

pub mod lab;
