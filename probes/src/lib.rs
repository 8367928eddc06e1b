//! probes
pub mod config_files;
pub mod control;
