//! The bad-input corpus (`tests/fixtures/bad/`, listed with the expected errors in its README)
//! run through the real executable: broken captures, CSV, configuration and targets files, and
//! replies that are garbage or oversized, names that do not resolve, IPv6 literals, IDN names.
//! Every case checks the exit status, that the message names the file or host and the problem,
//! and that nothing panicked.

use crate::support::dns::Dns;
use crate::support::{TestDir, json_lines, net, timeaudit};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// Size of the oversized UDP reply: more than any NTP packet with extension fields and a MAC.
const OVERSIZED_REPLY: usize = 60_000;
/// Bytes of header lines the oversized HTTP reply sends before giving up (never a blank line).
const OVERSIZED_HTTP_HEADERS: usize = 4 << 20;

fn bad(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad").join(name)
}

/// Runs timeaudit; returns exit status, stdout, stderr. Fails on a panic or a signal.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = timeaudit(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!stderr.contains("panicked"), "timeaudit {args:?} panicked:\n{stderr}");
    let code = out.status.code().unwrap_or_else(|| panic!("timeaudit {args:?} killed by a signal:\n{stderr}"));
    (code, stdout, stderr)
}

fn check(args: &[&str], code: i32, needles: &[&str], stream: &str, text: &str, got: i32) {
    assert_eq!(got, code, "timeaudit {args:?}: exit status\n{text}");
    for n in needles {
        assert!(text.contains(n), "timeaudit {args:?}: {stream} lacks {n:?}:\n{text}");
    }
}

/// `timeaudit pcap FILE`: (file, exit status, what stderr must say besides the file name).
const CAPTURES: &[(&str, i32, &[&str])] = &[
    ("empty.pcap", 2, &["empty file (0 bytes)", "nothing could be read from 1 file(s)"]),
    ("not-a-capture.pcap", 2, &["not a pcap or pcapng file (starts with 44 61 74 65)"]),
    ("truncated-header.pcap", 2, &["bad file header", "10 of 24 bytes"]),
    ("truncated-record.pcap", 0, &["stopped at byte 394", "cut short inside record 4", "3 frames read before it"]),
    ("huge-caplen.pcap", 2, &["record 1 claims 2147483647 captured bytes", "corrupt"]),
    ("bad-block-length.pcapng", 2, &["claims a length of 5 bytes", "corrupt"]),
    ("cut.pcap.gz", 0, &["of the decompressed data", "incomplete deflate stream", "3 frames read before it"]),
];

#[test]
fn broken_captures_name_the_file_and_the_damage() {
    for (file, code, needles) in CAPTURES {
        let path = bad(file);
        let p = path.to_str().unwrap();
        let (got, _, stderr) = run(&["pcap", p]);
        check(&["pcap", p], *code, &[&[*file][..], needles].concat(), "stderr", &stderr, got);
    }
}

/// `timeaudit classify --input FILE`: (file, what stderr must say besides the file name).
const CSVS: &[(&str, &[&str])] = &[
    ("missing-columns.csv", &["line 1", "missing column(s) t_recv, offset_lo, offset_hi"]),
    ("not-a-number.csv", &["line 3", "column t_recv", "\"two\" is not a finite number"]),
    ("ragged-row.csv", &["line 3", "found record with 4 fields, but the previous record has 7 fields"]),
    ("unknown-method.csv", &["line 2", "unknown method \"gopher\""]),
    ("infinite-time.csv", &["line 2", "column t_send", "\"inf\" is not a finite number"]),
    ("binary.csv", &["header line", "invalid UTF-8"]),
];

#[test]
fn malformed_classifier_csv_exits_2_naming_file_line_and_column() {
    for (file, needles) in CSVS {
        let path = bad(file);
        let p = path.to_str().unwrap();
        let args = ["classify", "--input", p];
        let (got, stdout, stderr) = run(&args);
        check(&args, 2, &[&[*file][..], needles].concat(), "stderr", &stderr, got);
        assert_eq!(stdout, "", "nothing is classified from a broken file");
    }
}

#[test]
fn unknown_config_directive_and_missing_include_are_findings_not_failures() {
    for (file, needles) in [
        (
            "unknown-directive.chrony.conf",
            &["unknown-directive.chrony.conf:2", "unknown_directive", "`frobnicate` is not a chrony directive"][..],
        ),
        (
            "missing-include.chrony.conf",
            &["missing-include.chrony.conf:2", "include_unreadable", "/nonexistent/timeaudit-bad/missing.conf"][..],
        ),
    ] {
        let path = bad(file);
        let p = path.to_str().unwrap();
        let args = ["audit", "--config", p];
        let (got, stdout, _) = run(&args);
        // Exit 1: warnings were found (few_sources), the lint itself worked.
        check(&args, 1, needles, "stdout", &stdout, got);
    }
}

/// Broken targets files: (file, what the message says). `survey` names file and line.
const TARGETS: &[(&str, &str)] = &[
    ("unclosed-bracket.targets", ":1: target \"ntp://[::1\": malformed bracketed IPv6 address"),
    ("bad-port.targets", ":1: target \"ntp://a.test:99999\": bad port \"99999\""),
    ("bad-scheme.targets", ":1: target \"gopher://a.test/\": unknown scheme \"gopher\""),
];

#[test]
fn broken_targets_files_are_refused_before_anything_is_sent() {
    let dir = TestDir::new("bad-targets");
    for (file, needle) in TARGETS {
        let path = bad(file);
        let p = path.to_str().unwrap();
        let db = dir.path().join(format!("{file}.db"));
        let args = ["survey", "--targets", p, "--db", db.to_str().unwrap()];
        let (got, _, stderr) = run(&args);
        check(&args, 2, &[&format!("{file}{needle}")], "stderr", &stderr, got);
        let args = ["audit", "--targets", p];
        let (got, _, stderr) = run(&args);
        let target = needle.split('"').nth(1).unwrap();
        check(&args, 2, &[target], "stderr", &stderr, got);
    }
}

#[test]
fn audit_bad_targets_file_names_file_and_line() {
    // Regression: `audit --targets` used to say only `bad server "..."`, without file or line.
    for (file, needle) in TARGETS {
        let path = bad(file);
        let p = path.to_str().unwrap();
        let args = ["audit", "--targets", p];
        let (got, _, stderr) = run(&args);
        check(&args, 2, &[&format!("{file}:1: bad server")], "stderr", &stderr, got);
        let target = needle.split('"').nth(1).unwrap();
        assert!(stderr.contains(target), "{stderr}");
    }
}

/// A UDP server answering every datagram with `replies` (each sent in turn), counting queries.
struct UdpJunk {
    addr: SocketAddr,
    queries: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

impl UdpJunk {
    fn start(replies: Vec<Vec<u8>>) -> Self {
        let addr = net::endpoint();
        let sock = UdpSocket::bind(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let (queries, stop) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicBool::new(false)));
        let (q, s) = (queries.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::SeqCst) {
                let Ok((_, peer)) = sock.recv_from(&mut buf) else { continue };
                q.fetch_add(1, Ordering::SeqCst);
                for r in &replies {
                    let _ = sock.send_to(r, peer);
                }
            }
        });
        Self { addr, queries, stop }
    }
}

impl Drop for UdpJunk {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn probe_one(extra: &[&str], target: &str) -> (i32, serde_json::Value, String) {
    let args = [&["probe", "--format", "json", "--samples", "1", "--timeout", "0.5"][..], extra, &[target]].concat();
    let (code, stdout, stderr) = run(&args);
    let rows = json_lines(stdout.as_bytes());
    assert_eq!(rows.len(), 1, "{target}: {stdout}");
    (code, rows[0].clone(), stderr)
}

#[test]
fn garbage_and_oversized_ntp_replies_are_errors_of_that_server() {
    // 48 zero bytes (version 0, mode 0), 60 000 bytes of a would-be mode 4 header, 7 bytes of text.
    let cases: [(&str, Vec<Vec<u8>>, &str); 3] = [
        ("garbage", vec![vec![0u8; 48]], "bad_reply"),
        ("oversized", vec![vec![0x24; OVERSIZED_REPLY]], "bad_reply"),
        ("short", vec![b"not ntp".to_vec()], "bad_reply"),
    ];
    for (what, replies, error) in cases {
        let server = UdpJunk::start(replies);
        let target = format!("ntp://{}", server.addr);
        let (code, row, _) = probe_one(&[], &target);
        assert_eq!(code, 1, "{what}: {row}");
        assert_eq!(row["address"], server.addr.ip().to_string(), "{what}: {row}");
        assert_eq!(row["error"], error, "{what}: {row}");
        assert_eq!(row["offset"], serde_json::Value::Null, "{what}: no offset from junk");
        assert_eq!(server.queries.load(Ordering::SeqCst), 1, "{what}: one query, no retry storm");
    }
}

#[test]
fn garbage_and_endless_http_headers_are_errors_of_that_server() {
    for (what, endless) in [("garbage", false), ("endless headers", true)] {
        let listener = TcpListener::bind(net::endpoint()).unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in listener.incoming().take(4) {
                let Ok(mut s) = s else { continue };
                let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                if endless {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
                    let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
                    for _ in 0..OVERSIZED_HTTP_HEADERS / line.len() {
                        if s.write_all(line.as_bytes()).is_err() {
                            break;
                        }
                    }
                } else {
                    let _ = s.write_all(b"\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n");
                }
            }
        });
        let target = format!("http://{addr}/");
        let (code, row, _) = probe_one(&[], &target);
        assert_eq!(code, 1, "{what}: {row}");
        assert_eq!(row["address"], addr.ip().to_string(), "{what}: {row}");
        assert!(row["error"].is_string(), "{what}: an error kind: {row}");
        assert_eq!(row["offset"], serde_json::Value::Null, "{what}: {row}");
    }
}

#[test]
fn unresolvable_idn_and_ipv6_targets() {
    let (ips, port) = net::endpoints(1, false);
    let dns = Dns::start(&[("xn--bcher-kva.bad.test", IpAddr::V4(ips[0]))]);
    let resolver = dns.addr.to_string();
    let r = ["--resolver", resolver.as_str()];

    // A name nobody serves: exit 1, stderr names the host, the row says dns.
    let (code, row, stderr) = probe_one(&r, "ntp://nowhere.bad.test");
    assert_eq!(code, 1);
    assert!(stderr.contains("nowhere.bad.test: DNS lookup failed"), "{stderr}");
    assert_eq!(row["error"], "dns");
    assert_eq!(row["address"], "");

    // An IDN name is looked up as its punycode form (the only name the DNS above serves); nothing listens
    // there, so the probe is refused, on the right address.
    let silent = UdpSocket::bind(SocketAddr::from((ips[0], port))).unwrap();
    drop(silent);
    let (code, row, _) = probe_one(&r, &format!("ntp://bücher.bad.test:{port}"));
    assert_eq!(code, 1, "{row}");
    assert_eq!(row["target"], format!("ntp://bücher.bad.test:{port}"));
    assert_eq!(row["address"], ips[0].to_string(), "{row}");
    assert_eq!(row["error"], "refused", "{row}");

    // IPv6 literals, bracketed and bare, with nothing listening on ::1 at that port.
    for target in [format!("ntp://[::1]:{port}"), format!("[::1]:{port}")] {
        let (code, row, _) = probe_one(&["--methods", "ntp"], &target);
        assert_eq!(code, 1, "{row}");
        assert_eq!(row["address"], "::1", "{row}");
        assert_eq!(row["error"], "refused", "{row}");
    }
}
