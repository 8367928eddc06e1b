//! Harness for NTPsec's ntpd (mode 6 tests). Debian's ntpsec package conflicts with chrony, so
//! scripts/fetch-ntpsec unpacks it into target/ntpsec without installing it. ntpd has no port
//! option and only listens on interface addresses, so each instance runs in a private network
//! namespace (`unshare -n`, loopback only) on 127.0.0.1:123, and the client under test joins that
//! namespace with `nsenter`: no port 123 is taken on the machine and nothing leaves loopback.

use super::{TestDir, require_program};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Path of ntpd: $TIMEAUDIT_NTPD, target/ntpsec/usr/sbin/ntpd, or an installed one.
pub fn ntpd_path() -> PathBuf {
    if let Ok(p) = std::env::var("TIMEAUDIT_NTPD") {
        return PathBuf::from(p);
    }
    let unpacked = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ntpsec/usr/sbin/ntpd");
    if unpacked.exists() {
        return unpacked;
    }
    if std::path::Path::new("/usr/sbin/ntpd").exists() {
        return PathBuf::from("/usr/sbin/ntpd");
    }
    panic!(
        "NTPsec's ntpd is missing: run `scripts/fetch-ntpsec` (apt-get download ntpsec + dpkg -x into target/ntpsec)"
    );
}

/// One ntpd in its own network namespace.
#[derive(Debug)]
pub struct Ntpd {
    child: Child,
    /// Its directory (config, log, pid, drift).
    pub dir: TestDir,
}

impl Ntpd {
    /// Starts ntpd with `conf` (`$DIR` is replaced by its directory).
    pub fn start(name: &str, conf: &str) -> Ntpd {
        let ntpd = ntpd_path();
        let unshare = require_program("unshare");
        require_program("ip");
        let dir = TestDir::new(name);
        let d = dir.path().display().to_string();
        let conf_path = dir.path().join("ntp.conf");
        std::fs::write(&conf_path, conf.replace("$DIR", &d)).unwrap();
        let script = format!(
            "ip link set lo up && exec {} -n -c {} -l {d}/ntpd.log -p {d}/ntpd.pid",
            ntpd.display(),
            conf_path.display()
        );
        let child = Command::new(unshare)
            .args(["-n", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start ntpd under unshare -n (needs root or CAP_SYS_ADMIN)");
        Ntpd { child, dir }
    }

    /// Waits until ntpd listens (its log says so), at most `limit`.
    pub fn wait_ready(&self, limit: std::time::Duration) {
        let start = std::time::Instant::now();
        while !self.log().contains("Listen normally on") {
            if start.elapsed() > limit {
                panic!("ntpd did not start listening within {limit:?}:\n{}", self.log());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Path of its configuration file.
    pub fn conf_path(&self) -> PathBuf {
        self.dir.path().join("ntp.conf")
    }

    /// A command running `program` inside ntpd's network namespace.
    pub fn command_in_netns(&self, program: &str) -> Command {
        let nsenter = require_program("nsenter");
        let mut c = Command::new(nsenter);
        c.arg(format!("--net=/proc/{}/ns/net", self.child.id())).arg(program);
        c
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ntpd.log")).unwrap_or_default()
    }
}

impl Drop for Ntpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
