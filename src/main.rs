//! `timeaudit` command line: parses arguments, dispatches to one module per subcommand, maps
//! errors to exit codes (0 ok, 1 some targets/inputs failed, 2 usage or fatal error).

mod cmd;
mod hierarchy_svg;
mod report;
mod store;
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
    /// Run loopback NTP/HTTP/DNS servers whose clocks misbehave, for testing monitoring.
    Lab(cmd::lab::LabArgs),
    /// Write the HTML, Markdown and JSON report of a survey and of NTP captures.
    Report(cmd::report::ReportArgs),
    /// Probe the due targets of a targets file into the survey store (run it from cron).
    Survey(cmd::survey::SurveyArgs),
    /// Write the observations of a survey store as CSV, JSON Lines or Parquet.
    Export(cmd::export::ExportArgs),
    /// See everything work offline: a lab of bent clocks, surveyed for a minute, classified, reported.
    Demo(cmd::demo::DemoArgs),
    /// Classify clock behaviour per (target, address, method) from probe histories.
    Classify(cmd::classify::ClassifyArgs),
    /// Write synthetic probe histories with known behaviour (ground truth) as CSV.
    Simulate(cmd::simulate::SimulateArgs),
    /// Audit a fleet of NTP servers (hierarchy, health, exposure) and lint chrony.conf / ntp.conf.
    Audit(cmd::audit::AuditArgs),
    /// Analyse NTP server captures: per-client load, cost, what-if, rate limits, client types.
    Pcap(cmd::pcap::PcapArgs),
    /// Write a synthetic NTP server capture with known totals (printed as JSON).
    PcapSynth(cmd::pcap_synth::PcapSynthArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe(args) => cmd::probe::run(args),
        Command::Lab(args) => cmd::lab::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Survey(args) => cmd::survey::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Classify(args) => cmd::classify::run(args),
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Pcap(args) => cmd::pcap::run(args),
        Command::PcapSynth(args) => cmd::pcap_synth::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("timeaudit: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
