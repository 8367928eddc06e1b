//! `timeaudit probe`: one-shot measurement of every address of every target.

use std::process::ExitCode;

/// Arguments of `timeaudit probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Targets: `ntp://HOST[:PORT]`.
    #[arg(required = true)]
    pub targets: Vec<String>,
}

/// Runs the probe subcommand.
pub fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("probe is not implemented yet ({} targets)", args.targets.len())
}
