//! Harness for fleet tests: several chronyd instances on loopback addresses sharing one port,
//! each in its own 0700 directory, optionally under libfaketime, and a reference clock fed
//! through chrony's SOCK driver so that the top of a test hierarchy is a real stratum 1 (refid
//! GPS) rather than an undisciplined local clock.

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where Debian puts the multi-threaded libfaketime.
const FAKETIME_LIBS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1",
];

/// The path of `program`, or a panic naming the command that installs it.
pub fn require(program: &str, candidates: &[&str], install: &str) -> PathBuf {
    for c in candidates {
        if Path::new(c).exists() {
            return PathBuf::from(c);
        }
    }
    panic!("{program} is missing: install it with `{install}` (or run scripts/install-deps)");
}

fn chronyd_path() -> PathBuf {
    require("chronyd", &["/usr/sbin/chronyd", "/usr/bin/chronyd"], "apt-get install chrony")
}

/// A private directory (mode 0700) removed on drop.
#[derive(Debug)]
pub struct TestDir(pub PathBuf);

impl TestDir {
    /// Creates `/tmp/timeaudit-it-<name>-<pid>`, empty.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("timeaudit-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        TestDir(dir)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One chronyd serving on `addr:port`.
#[derive(Debug)]
pub struct Chronyd {
    child: Child,
    /// Its address.
    pub addr: Ipv4Addr,
    /// Its directory (config, pid and drift files, log, refclock socket).
    pub dir: TestDir,
}

impl Chronyd {
    /// Starts chronyd (`-d -x`: foreground, never touches the system clock) with the common
    /// server lines plus `extra`; under libfaketime when `faketime` is given (e.g. `-60s`).
    pub fn start(name: &str, addr: Ipv4Addr, port: u16, extra: &[String], faketime: Option<&str>) -> Chronyd {
        let dir = TestDir::new(name);
        let d = dir.0.display();
        let mut conf = format!(
            "port {port}\nbindaddress {addr}\nbindacqaddress {addr}\nallow 127.0.0.0/8\ncmdport 0\n\
             pidfile {d}/chronyd.pid\ndriftfile {d}/drift\n"
        );
        for l in extra {
            conf.push_str(&l.replace("$DIR", &d.to_string()));
            conf.push('\n');
        }
        let conf_path = dir.0.join("chrony.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = std::fs::File::create(dir.0.join("chronyd.log")).unwrap();
        let mut cmd = Command::new(chronyd_path());
        cmd.args(["-d", "-x", "-u", "root", "-f"]).arg(&conf_path);
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        if let Some(ft) = faketime {
            let lib = require("libfaketime", FAKETIME_LIBS, "apt-get install libfaketime faketime");
            cmd.env("LD_PRELOAD", lib).env("FAKETIME", ft).env("FAKETIME_DONT_RESET", "1");
        }
        let child = cmd.spawn().expect("cannot start chronyd");
        Chronyd { child, addr, dir }
    }

    /// The path for a SOCK reference clock in this server's directory.
    pub fn refclock_socket(&self) -> PathBuf {
        self.dir.0.join("ref.sock")
    }

    /// This server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("chronyd.log")).unwrap_or_default()
    }
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `server` line making a chronyd poll `addr:port` four times a second.
pub fn server_line(addr: Ipv4Addr, port: u16) -> String {
    format!("server {addr} port {port} iburst minpoll -2 maxpoll -2")
}

/// The `refclock` line of a SOCK reference clock named GPS in the server's directory.
pub fn refclock_line() -> String {
    "refclock SOCK $DIR/ref.sock refid GPS poll 0".to_string()
}

/// Feeds a chrony SOCK reference clock with zero-offset samples every 250 ms until stopped
/// (`struct sock_sample` of chrony's refclock_sock.c: timeval, offset, pulse, leap, pad, magic).
#[derive(Debug)]
pub struct Refclock {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Refclock {
    /// Starts feeding the socket at `path` (chronyd creates it; sends are retried until it does).
    pub fn start(path: PathBuf) -> Refclock {
        Self::start_shifted(path, 0.0)
    }

    /// Like [`Refclock::start`] for a chronyd whose clock libfaketime shifted by `shift` seconds:
    /// the samples carry that server's (shifted) time, so it trusts its wrong clock, as with a
    /// faulty GPS receiver.
    pub fn start_shifted(path: PathBuf, shift: f64) -> Refclock {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let sock = UnixDatagram::unbound().unwrap();
            while !flag.load(Ordering::Relaxed) {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64() + shift;
                let now = Duration::from_secs_f64(now.max(0.0));
                let mut sample = Vec::with_capacity(40);
                sample.extend_from_slice(&(now.as_secs() as i64).to_ne_bytes());
                sample.extend_from_slice(&i64::from(now.subsec_micros()).to_ne_bytes());
                sample.extend_from_slice(&0f64.to_ne_bytes());
                sample.extend_from_slice(&0i32.to_ne_bytes()); // pulse
                sample.extend_from_slice(&0i32.to_ne_bytes()); // leap
                sample.extend_from_slice(&0i32.to_ne_bytes()); // padding
                sample.extend_from_slice(&0x534f_434bi32.to_ne_bytes()); // "SOCK"
                let _ = sock.send_to(&sample, &path);
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        Refclock { stop, handle: Some(handle) }
    }

    /// Stops feeding (the reference clock goes silent: its server's reference time goes stale).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Refclock {
    fn drop(&mut self) {
        self.stop();
    }
}
