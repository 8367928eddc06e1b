//! A real DNS server (dnsmasq) on a loopback address and port of the test's own, serving fixed
//! A/AAAA records and nothing else (no upstream, no hosts file).

use super::{TestDir, require_program, stop_child};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long dnsmasq may take to answer its first query.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running dnsmasq.
#[derive(Debug)]
pub struct Dns {
    child: Child,
    dir: TestDir,
    /// Where it serves (UDP and TCP).
    pub addr: SocketAddr,
}

impl Dns {
    /// Serves `records` (name, address; a name may repeat) on a fresh loopback endpoint.
    pub fn start(records: &[(&str, IpAddr)]) -> Self {
        let dnsmasq = require_program("dnsmasq");
        let (addrs, port) = super::net::endpoints(1, true);
        let addr = SocketAddr::from((addrs[0], port));
        let dir = TestDir::new("dns");
        let mut cmd = Command::new(dnsmasq);
        cmd.args(["-k", "-C", "/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces", "--user=root"])
            .arg(format!("--listen-address={}", addrs[0]))
            .arg(format!("--port={port}"))
            .arg(format!("--pid-file={}", dir.path().join("dnsmasq.pid").display()));
        for (name, ip) in records {
            cmd.arg(format!("--host-record={name},{ip}"));
        }
        let log = std::fs::File::create(dir.path().join("dnsmasq.log")).expect("dnsmasq log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dnsmasq: {e}"));
        let mut server = Self { child, dir, addr };
        server.wait_ready(records.first().map_or("probe.test", |r| r.0));
        server
    }

    /// dnsmasq's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dnsmasq.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self, name: &str) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind readiness socket");
        socket.set_read_timeout(Some(Duration::from_millis(100))).expect("set timeout");
        // A query for NAME/A: id 0x4242, recursion desired, one question.
        let mut query = vec![0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.trim_end_matches('.').split('.') {
            query.push(label.len() as u8);
            query.extend_from_slice(label.as_bytes());
        }
        query.extend_from_slice(&[0, 0, 1, 0, 1]);
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("dnsmasq on {} exited ({status}):\n{}", self.addr, self.log());
            }
            let _ = socket.send_to(&query, self.addr);
            if let Ok((n, _)) = socket.recv_from(&mut buf)
                && n >= 12
                && buf[..2] == [0x42, 0x42]
            {
                return;
            }
        }
        panic!("dnsmasq on {} did not answer within {READY_TIMEOUT:?}:\n{}", self.addr, self.log());
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(2));
    }
}
