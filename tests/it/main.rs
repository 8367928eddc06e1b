//! The one integration-test binary: drives the real `timeaudit` executable. One module per area.

mod demo;
mod lab;
mod report;
