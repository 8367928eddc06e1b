//! The one integration-test binary: drives the real `timeaudit` executable against real servers
//! on loopback (see `support/`). One module per area.

mod support;

mod pcap;
mod probe_ntp;
