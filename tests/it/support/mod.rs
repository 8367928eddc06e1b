//! Harness code shared by the integration tests: one file per server kind.

pub mod counting_ntp;
pub mod postgres;
