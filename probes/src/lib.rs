//! probes

pub mod capture;
