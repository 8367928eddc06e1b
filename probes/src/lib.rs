//! probes
pub mod politeness;
