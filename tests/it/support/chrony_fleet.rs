//! Harness for fleet tests: several chronyd instances on loopback addresses sharing one port,
//! each in its own 0700 directory, optionally under libfaketime, and a reference clock fed
//! through chrony's SOCK driver so that the top of a test hierarchy is a real stratum 1 (refid
//! GPS) rather than an undisciplined local clock.

use super::chrony::libfaketime_mt;
use super::{TestDir, require_program, stop_child};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn chronyd_path() -> PathBuf {
    require_program("chronyd")
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
        let d = dir.path().display();
        let mut conf = format!(
            "port {port}\nbindaddress {addr}\nbindacqaddress {addr}\nallow 127.0.0.0/8\ncmdport 0\n\
             pidfile {d}/chronyd.pid\ndriftfile {d}/drift\n"
        );
        for l in extra {
            conf.push_str(&l.replace("$DIR", &d.to_string()));
            conf.push('\n');
        }
        let conf_path = dir.path().join("chrony.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = std::fs::File::create(dir.path().join("chronyd.log")).unwrap();
        let mut cmd = Command::new(chronyd_path());
        cmd.args(["-d", "-x", "-u", "root", "-f"]).arg(&conf_path);
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        if let Some(ft) = faketime {
            cmd.env("LD_PRELOAD", libfaketime_mt()).env("FAKETIME", ft).env("FAKETIME_DONT_RESET", "1");
        }
        let child = cmd.spawn().expect("cannot start chronyd");
        Chronyd { child, addr, dir }
    }

    /// The path for a SOCK reference clock in this server's directory.
    pub fn refclock_socket(&self) -> PathBuf {
        self.dir.path().join("ref.sock")
    }

    /// This server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chronyd.log")).unwrap_or_default()
    }
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(1));
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
