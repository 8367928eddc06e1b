//! Sans-IO core of timeaudit: the NTP wire codec and offset maths, the observation record, and
//! (as the project grows) the classifier, capture aggregation, cost model and fleet checks.
//! Nothing here performs I/O or reads the clock: time and bytes are passed in.

pub mod capture;
pub mod capture_report;
pub mod certinfo;
pub mod change;
pub mod classify;
pub mod config_lint;
pub mod fleet;
pub mod forecast;
pub mod httpdate;
pub mod lab;
pub mod ntp;
pub mod observation;
pub mod report;
pub mod schedule;
pub mod severity;
pub mod simulate;
pub mod target;
pub mod targets_file;
