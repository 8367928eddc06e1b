//! A real chronyd serving NTP on a loopback address and port of the test's own, its clock bent
//! by libfaketime (`FAKETIME` spec such as `+37.25`, `-10800`, `+5 x1.001`,
//! `@2020-01-01 00:00:00 x0.001`). Never touches the system clock (`-x`).

use super::{TestDir, now_unix, require_file, require_program, stop_child};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts the multi-threaded libfaketime (chronyd is multi-threaded).
pub const LIBFAKETIME_MT: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1",
];
/// How long chronyd may take to answer its first query.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Grace between SIGTERM and SIGKILL at the end of a test.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// The path of libfaketimeMT, or a failure naming the install command.
pub fn libfaketime_mt() -> std::path::PathBuf {
    require_file("libfaketimeMT.so.1 (package libfaketime)", LIBFAKETIME_MT)
}

/// A running chronyd.
#[derive(Debug)]
pub struct Chrony {
    child: Child,
    dir: TestDir,
    /// Where it serves.
    pub addr: SocketAddr,
    /// Its FAKETIME spec.
    pub faketime: String,
    /// Real time just before it was spawned.
    pub spawned_at: f64,
    /// Real time its first answer arrived (libfaketime's start lies between the two).
    pub ready_at: f64,
}

impl Chrony {
    /// Starts chronyd on `addr:port` at `local stratum 3` under `FAKETIME=faketime` and waits
    /// until it answers.
    pub fn start(addr: Ipv4Addr, port: u16, faketime: &str) -> Self {
        Self::start_with(addr, port, faketime, "local stratum 3\n")
    }

    /// Like [`Chrony::start`] with extra configuration lines instead of `local stratum 3`.
    pub fn start_with(addr: Ipv4Addr, port: u16, faketime: &str, extra_conf: &str) -> Self {
        let chronyd = require_program("chronyd");
        let preload = libfaketime_mt();
        let dir = TestDir::new("chrony");
        let d = dir.path().display().to_string();
        let conf = format!(
            "port {port}\nbindaddress {addr}\nallow 127.0.0.0/8\ncmdport 0\npidfile {d}/chronyd.pid\n\
             driftfile {d}/drift\n{extra_conf}"
        );
        let conf_path = dir.path().join("chrony.conf");
        std::fs::write(&conf_path, conf).unwrap_or_else(|e| panic!("cannot write {}: {e}", conf_path.display()));
        let log = std::fs::File::create(dir.path().join("chronyd.log")).expect("chronyd log file");
        let spawned_at = now_unix();
        let child = Command::new(chronyd)
            .args(["-d", "-x", "-u", "root", "-f"])
            .arg(&conf_path)
            .env("LD_PRELOAD", preload)
            .env("FAKETIME", faketime)
            .env("FAKETIME_DONT_RESET", "1")
            // Absolute FAKETIME dates are read in local time: make that UTC.
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chronyd: {e}"));
        let mut server = Self {
            child,
            dir,
            addr: SocketAddr::from((addr, port)),
            faketime: faketime.to_string(),
            spawned_at,
            ready_at: 0.0,
        };
        server.ready_at = server.wait_ready();
        server
    }

    /// `ntp://ADDR:PORT`.
    pub fn url(&self) -> String {
        format!("ntp://{}", self.addr)
    }

    /// chronyd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chronyd.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) -> f64 {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind readiness socket");
        socket.set_read_timeout(Some(Duration::from_millis(100))).expect("set timeout");
        let mut query = [0u8; 48];
        query[0] = 0x23; // v4, mode 3
        query[40..48].copy_from_slice(&0x1234_5678_9abc_def0u64.to_be_bytes());
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chronyd on {} exited ({status}) before answering:\n{}", self.addr, self.log());
            }
            let _ = socket.send_to(&query, self.addr);
            if let Ok((n, from)) = socket.recv_from(&mut buf)
                && from == self.addr
                && n >= 48
                && buf[0] & 7 == 4
            {
                return now_unix();
            }
        }
        panic!("chronyd on {} did not answer within {READY_TIMEOUT:?}:\n{}", self.addr, self.log());
    }
}

impl Drop for Chrony {
    fn drop(&mut self) {
        stop_child(&mut self.child, STOP_GRACE);
    }
}
