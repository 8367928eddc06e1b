//! Harness code shared by the integration tests: one file per server kind.

pub mod ntp_responder;
pub mod postgres;
