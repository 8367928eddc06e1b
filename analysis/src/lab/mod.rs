//! The lab: pure models of misbehaving clocks and the wire answers of the loopback servers that
//! serve them (`timeaudit lab`, `timeaudit demo`). The sockets live in `timeaudit-probes`; here
//! every function takes the true time and request bytes as arguments.

pub mod clock;
pub mod dns;
pub mod reply;

pub use clock::{Behaviour, LabClock, ParseBehaviourError};
