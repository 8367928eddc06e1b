//! Integration tests: one binary driving the real `timeaudit` executable, one module per area.

mod pcap;
mod support;
