//! Shared harness of the integration tests: temporary directories, loopback address and port
//! allocation, required programs, the `timeaudit` executable, and one module per real server
//! kind run on loopback.

#![allow(dead_code)]

pub mod badhttp;
pub mod chrony;
pub mod chrony_fleet;
pub mod counting_ntp;
pub mod dns;
pub mod mode7;
pub mod net;
pub mod nginx;
pub mod ntp_responder;
pub mod ntpsec;
pub mod postgres;
pub mod tshark;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The command that installs every program the tests need.
pub const INSTALL_HINT: &str =
    "run `scripts/install-deps` (installs the Debian packages listed in scripts/packages.txt)";

/// Finds `program` on PATH or in the sbin directories; fails the test naming the install
/// command when it is missing.
pub fn require_program(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    for extra in ["/usr/sbin", "/sbin", "/usr/local/sbin"] {
        dirs.push(PathBuf::from(extra));
    }
    dirs.iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("the test needs `{program}`, which is not installed: {INSTALL_HINT}"))
}

/// Finds a file among candidate paths; fails the test naming the install command when none
/// exists.
pub fn require_file(what: &str, candidates: &[&str]) -> PathBuf {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("the test needs {what} (looked in {candidates:?}): {INSTALL_HINT}"))
}

/// A private (0700) temporary directory removed on drop.
#[derive(Debug)]
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    /// Creates `$TMPDIR/timeaudit-it-<label>-<pid>-<n>`.
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("timeaudit-it-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Now, as Unix seconds (the test's own reading of the real clock).
pub fn now_unix() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Runs the `timeaudit` executable with `args`.
pub fn timeaudit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_timeaudit"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run timeaudit: {e}"))
}

/// Parses JSON lines.
pub fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Stops a child: SIGTERM, then SIGKILL after `grace` (chronyd with a frozen clock ignores
/// SIGTERM).
pub fn stop_child(child: &mut std::process::Child, grace: std::time::Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
