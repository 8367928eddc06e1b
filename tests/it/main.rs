//! The one integration-test binary: drives the real `timeaudit` executable against real servers
//! on loopback. One module per area; shared harness code in `support/`.

mod support;

mod survey;
