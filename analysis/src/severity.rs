//! How serious a finding is (shared by the fleet audit and the configuration lint).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Severity of a finding, ordered from least to most serious.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is wrong yet.
    Info,
    /// A weakness that will bite when something else fails.
    Warning,
    /// Time is wrong now, or a single failure away from wrong, or the server is exposed.
    Critical,
}

impl Severity {
    /// The lowercase name used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
