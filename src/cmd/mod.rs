//! One module per subcommand; each exposes its clap `Args` struct and `run`.

pub mod classify;
pub mod probe;
pub mod simulate;
