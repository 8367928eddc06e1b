//! `timeaudit` command line: parses arguments, dispatches to one module per subcommand, maps
//! errors to exit codes (0 ok, 1 some targets/inputs failed, 2 usage or fatal error).

mod cmd;
#[allow(dead_code)] // its callers (export, pcap --out-dir, report) arrive with their subcommands
mod tables;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Audit time synchronisation across fleets of machines.
#[derive(Debug, Parser)]
#[command(name = "timeaudit", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure the clock of each address of each target once (NTP, HTTP(S) Date).
    Probe(cmd::probe::ProbeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe(args) => cmd::probe::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("timeaudit: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
