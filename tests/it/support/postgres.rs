//! A throw-away PostgreSQL server on 127.0.0.1 for store tests: `initdb` into a private
//! directory (trust authentication, user `postgres`), `postgres` on a free port with its socket
//! in that directory and fsync off. PostgreSQL refuses to run as root, so as root both run as the
//! `postgres` system user (Debian's package creates it). Stopped (SIGINT, fast shutdown) and
//! removed when dropped.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server gets to accept connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server.
#[derive(Debug)]
pub struct Postgres {
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
    dir: PathBuf,
    child: Child,
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).filter(|p| p.join("postgres").exists()).collect())
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("PostgreSQL is missing: install it with `apt-get install -y postgresql` (or run scripts/install-deps)")
    })
}

/// uid and gid of `user` from /etc/passwd.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

fn as_server_user(cmd: &mut Command, ids: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = ids {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Postgres {
    /// Creates and starts a server.
    pub fn start(tag: &str) -> Postgres {
        let bin = bin_dir();
        let ids = if is_root() {
            Some(user_ids("postgres").unwrap_or_else(|| {
                panic!("running as root needs the `postgres` user: `apt-get install -y postgresql` creates it")
            }))
        } else {
            None
        };
        let dir = std::env::temp_dir().join(format!("timeaudit-it-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let data = dir.join("data");
        let out = as_server_user(&mut Command::new(bin.join("initdb")), ids)
            .args(["-D", &data.to_string_lossy(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .env("LC_ALL", "C")
            .current_dir(&dir)
            .output()
            .expect("running initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(dir.join("server.log"), Some(uid), Some(gid)).unwrap();
        }
        let child = as_server_user(&mut Command::new(bin.join("postgres")), ids)
            .args(["-D", &data.to_string_lossy(), "-p", &port.to_string(), "-k", &dir.to_string_lossy()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=50"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting postgres");
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let mut pg = Postgres { url, dir, child };
        pg.wait_ready(&bin, port);
        pg
    }

    fn wait_ready(&mut self, bin: &Path, port: u16) {
        let start = Instant::now();
        loop {
            let ok = Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                panic!("postgres exited ({status}) before accepting connections:\n{log}");
            }
            assert!(start.elapsed() < START_TIMEOUT, "postgres did not accept connections within {START_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `sql` with psql and returns its unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(bin_dir().join("psql"))
            .args([&self.url, "-X", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("running psql");
        assert!(out.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
