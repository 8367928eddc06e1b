//! Shared harness code of the integration tests, one file per server kind.

pub mod chrony_fleet;
pub mod mode7;
pub mod ntpsec;
