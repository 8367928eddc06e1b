//! The integration tests: one binary, one module per area, real servers on loopback.

mod audit;
mod support;
