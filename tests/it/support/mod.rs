//! Shared harness code for the integration tests, one file per external program or server kind.

pub mod tshark;
