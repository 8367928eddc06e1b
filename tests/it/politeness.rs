//! Politeness guarantees verified from a packet capture on `lo` (tcpdump writes it, tshark
//! decodes it): `survey` never exceeds the configured rate nor sends two queries to one address
//! closer than the configured gap, a Kiss-o'-Death DENY ends every query to that server, and no
//! mode 6/7 packet leaves unless `audit --control` asked for it (`audit`, `probe`, `survey`).

use crate::support::counting_ntp::{Behaviour, NtpResponder};
use crate::support::{TestDir, net, require_program, stop_child, tshark};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_timeaudit");
/// Capture timestamps are taken by the kernel when the packet is sent on `lo`; allow this much
/// for the kernel's own scheduling between the survey's pacing and the send.
const JITTER: f64 = 0.005;
/// Length of a pcap file header: a longer file holds a packet.
const PCAP_HEADER_LEN: u64 = 24;
/// Where the capture's readiness markers go (no test server listens there).
const DISCARD_PORT: u16 = 9;

/// tcpdump writing every UDP packet to or from `hosts` on `lo` into a file.
struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    fn start(dir: &Path, hosts: &[Ipv4Addr]) -> Capture {
        let tcpdump = require_program("tcpdump");
        let file = dir.join("lo.pcap");
        let filter =
            format!("udp and ({})", hosts.iter().map(|h| format!("host {h}")).collect::<Vec<_>>().join(" or "));
        let mut child = Command::new(tcpdump)
            .args(["-i", "lo", "-n", "-U", "--immediate-mode", "-s", "256", "-w"])
            .arg(&file)
            .arg(&filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tcpdump: {e}"));
        // tcpdump says "listening on lo" once the capture is armed.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while err.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("listening on") {
            line.clear();
        }
        assert!(line.contains("listening on"), "tcpdump did not start capturing on lo (needs root): {line}");
        // "listening" can come before packets reach the file: send markers (to the discard port,
        // which no test counts) until one is written.
        let marker = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let t0 = std::time::Instant::now();
        while std::fs::metadata(&file).map_or(0, |m| m.len()) <= PCAP_HEADER_LEN {
            assert!(t0.elapsed() < Duration::from_secs(10), "tcpdump wrote nothing to {}", file.display());
            let _ = marker.send_to(b"marker", (hosts[0], DISCARD_PORT));
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            while err.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        Capture { child, file }
    }

    /// Stops tcpdump; every packet as (time, source, destination, destination port, NTP mode;
    /// 255 when not NTP). tshark decodes the packets to or from `ntp_ports` as NTP (the test
    /// servers do not use port 123, and some of their random ports belong to other dissectors).
    fn packets(mut self, ntp_ports: &[u16]) -> Vec<(f64, String, String, u16, u8)> {
        // Let the last packets reach the file.
        std::thread::sleep(Duration::from_millis(200));
        stop_child(&mut self.child, Duration::from_secs(5));
        let mut cmd = Command::new("tshark");
        cmd.arg("-n").arg("-r").arg(&self.file);
        for p in ntp_ports {
            cmd.args(["-d", &format!("udp.port=={p},ntp")]);
        }
        cmd.args(["-T", "fields", "-E", "separator=|", "-E", "occurrence=f"]);
        for f in ["frame.time_epoch", "ip.src", "ip.dst", "udp.dstport", "ntp.flags.mode"] {
            cmd.args(["-e", f]);
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("running tshark: {e}: {}", tshark::INSTALL_HINT));
        assert!(out.status.success(), "tshark: {}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('|').collect();
                let mode = f[4].trim();
                let mode = if mode.is_empty() { 255 } else { mode.parse().unwrap() };
                (f[0].parse().unwrap(), f[1].to_string(), f[2].to_string(), f[3].parse().unwrap(), mode)
            })
            .collect()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn modes(packets: &[(f64, String, String, u16, u8)]) -> [usize; 8] {
    let mut m = [0usize; 8];
    for p in packets {
        if p.4 < 8 {
            m[usize::from(p.4)] += 1;
        }
    }
    m
}

#[test]
fn survey_rate_gap_and_kod_deny_measured_on_the_wire() {
    const RATE: f64 = 25.0;
    const GAP: f64 = 0.25;
    const SAMPLES: usize = 3;
    let dir = TestDir::new("politeness-survey");
    let (ips, _) = net::endpoints(4, false);
    let three = |ip: Ipv4Addr| -> Vec<SocketAddr> { (0..3).map(|_| SocketAddr::from((ip, 0))).collect() };
    let good: Vec<NtpResponder> = ips[..3]
        .iter()
        .map(|&ip| NtpResponder::start(&three(ip), Behaviour::Clock { offset: 0.0, delay: Duration::ZERO }))
        .collect();
    let deny = NtpResponder::start(&three(ips[3]), Behaviour::Kod("DENY"));
    let targets: String =
        good.iter().chain([&deny]).flat_map(|r| r.addrs.iter()).map(|a| format!("ntp://{a}\n")).collect();
    std::fs::write(dir.path().join("targets.txt"), &targets).unwrap();
    let cap = Capture::start(dir.path(), &ips);
    let out = Command::new(BIN)
        .arg("survey")
        .arg("--targets")
        .arg(dir.path().join("targets.txt"))
        .arg("--db")
        .arg(dir.path().join("s.sqlite"))
        .args(["--prober", "pol", "--timeout", "1", "--concurrency", "8"])
        .args(["--rate", &RATE.to_string(), "--gap", &GAP.to_string(), "--samples", &SAMPLES.to_string()])
        .output()
        .unwrap();
    let ports: Vec<u16> = good.iter().chain([&deny]).flat_map(|r| r.addrs.iter().map(|a| a.port())).collect();
    let packets = cap.packets(&ports);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let packets: Vec<(f64, String, String, u16, u8)> = packets.into_iter().filter(|p| p.3 != DISCARD_PORT).collect();
    let queries: Vec<&(f64, String, String, u16, u8)> =
        packets.iter().filter(|p| p.4 == 3 && ports.contains(&p.3)).collect();
    let m = modes(&packets);
    assert_eq!(m[6] + m[7], 0, "no mode 6/7 from a survey: {m:?}");
    // 3 good servers x 3 ports x 3 samples, and what went to the DENY server.
    let to_deny: Vec<f64> = queries.iter().filter(|p| p.2 == ips[3].to_string()).map(|p| p.0).collect();
    let per_dst = |ip: &Ipv4Addr| queries.iter().filter(|p| p.2 == ip.to_string()).count();
    let counts: Vec<usize> = ips.iter().map(per_dst).collect();
    let stdout = text(&out.stdout);
    let seen: Vec<usize> = good.iter().map(|r| r.arrivals().len()).collect();
    assert_eq!(queries.len() - to_deny.len(), 3 * 3 * SAMPLES, "{m:?} {counts:?} server-side {seen:?} {stdout}");
    assert_eq!(to_deny.len(), 1, "a DENY ends every query to that server (all its ports): {to_deny:?}");
    // Rate: any k+1 consecutive queries span at least k / RATE seconds.
    let mut times: Vec<f64> = queries.iter().map(|p| p.0).collect();
    times.sort_by(f64::total_cmp);
    let mut tightest = f64::INFINITY;
    for w in times.windows(2) {
        tightest = tightest.min(w[1] - w[0]);
    }
    for i in 0..times.len() {
        for k in 1..times.len() - i {
            let span = times[i + k] - times[i];
            assert!(span >= k as f64 / RATE - JITTER, "{} queries in {span:.4} s at rate {RATE}", k + 1);
        }
    }
    // Gap: per destination address.
    let mut min_gap = f64::INFINITY;
    for ip in &ips[..3] {
        let mut t: Vec<f64> = queries.iter().filter(|p| p.2 == ip.to_string()).map(|p| p.0).collect();
        t.sort_by(f64::total_cmp);
        assert_eq!(t.len(), 3 * SAMPLES);
        for w in t.windows(2) {
            min_gap = min_gap.min(w[1] - w[0]);
            assert!(w[1] - w[0] >= GAP - JITTER, "two queries to {ip} {:.4} s apart (gap {GAP})", w[1] - w[0]);
        }
    }
    eprintln!(
        "politeness on the wire: {} queries, closest two {:.4} s (rate {RATE}/s => {:.4}), closest to one address {:.4} s (gap {GAP})",
        times.len(),
        tightest,
        1.0 / RATE,
        min_gap
    );
}

#[test]
fn no_mode_6_or_7_unless_audit_control_asks() {
    let dir = TestDir::new("politeness-modes");
    let (ips, _) = net::endpoints(1, false);
    let server =
        NtpResponder::start(&[SocketAddr::from((ips[0], 0))], Behaviour::Clock { offset: 0.0, delay: Duration::ZERO });
    let addr = server.addr().to_string();
    let url = format!("ntp://{addr}");
    let cap = Capture::start(dir.path(), &ips);
    let runs: [&[&str]; 3] = [
        &["audit", "--hops", "0", "--samples", "2", "--timeout", "0.5", &addr],
        &["probe", "--samples", "2", "--interval", "0.1", "--timeout", "0.5", "--format", "json", &url],
        &["audit", "--hops", "0", "--samples", "2", "--timeout", "0.5", "--control", &addr],
    ];
    let mut counts = Vec::new();
    let mut seen = 0;
    let mut control_started = 0.0;
    for (i, args) in runs.iter().enumerate() {
        if i == 2 {
            control_started = crate::support::now_unix();
        }
        let out = Command::new(BIN).args(*args).output().unwrap();
        assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
        std::thread::sleep(Duration::from_millis(300));
        let arrived = server.arrivals().len();
        counts.push(arrived - seen);
        seen = arrived;
    }
    let packets = cap.packets(&[server.addr().port()]);
    let to_server: Vec<(f64, String, String, u16, u8)> =
        packets.into_iter().filter(|p| p.2 == ips[0].to_string() && p.3 == server.addr().port()).collect();
    let (unasked, asked): (Vec<_>, Vec<_>) = to_server.into_iter().partition(|p| p.0 < control_started);
    let (m_unasked, m_asked) = (modes(&unasked), modes(&asked));
    assert_eq!(counts[..2], [2, 2], "2 samples each from audit and probe (the responder counts mode 3)");
    assert_eq!(m_unasked, [0, 0, 0, 4, 0, 0, 0, 0], "audit and probe without --control: only mode 3 on the wire");
    assert_eq!(unasked.len(), 4, "{unasked:?}");
    // With --control the audit sends mode 6 (READSTAT/READVAR) and mode 7 (monlist): the capture
    // does see them, so their absence above is measured, not assumed.
    assert!(m_asked[6] >= 1 && m_asked[7] >= 1, "audit --control: {m_asked:?}");
    eprintln!("modes on the wire: without --control {m_unasked:?}, with --control {m_asked:?}");
}
