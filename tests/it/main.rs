//! The one integration-test binary: drives the real `timeaudit` executable against real servers
//! on loopback (see `support/`). One module per area.

mod support;

mod audit;
mod classify;
mod demo;
mod lab;
mod notebooks;
mod pcap;
mod probe_http;
mod probe_ntp;
mod report;
mod survey;
