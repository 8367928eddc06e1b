//! One module per subcommand; each exposes its clap `Args` struct and `run`.

pub mod audit;
pub mod classify;
pub mod probe;
pub mod simulate;
