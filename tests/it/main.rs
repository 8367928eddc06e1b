//! The one integration-test binary: drives the real `timeaudit` executable against real servers
//! on loopback (see `support/`). One module per area.

mod support;

mod audit;
mod bad_input;
mod classify;
mod demo;
mod faults;
mod lab;
mod notebooks;
mod pcap;
mod politeness;
mod probe_http;
mod probe_ntp;
mod report;
mod survey;
