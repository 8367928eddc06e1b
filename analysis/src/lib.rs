//! Sans-IO core of timeaudit: the NTP wire codec and offset maths, the observation record, and
//! (as the project grows) the classifier, capture aggregation, cost model and fleet checks.
//! Nothing here performs I/O or reads the clock: time and bytes are passed in.

pub mod capture;
pub mod forecast;
pub mod ntp;
pub mod observation;
pub mod target;
