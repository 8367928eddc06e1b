//! Fault injection against `timeaudit survey`: servers that accept and never answer, answer after
//! the timeout, reset the connection, send 1 MB of headers; Kiss-o'-Death storms (RATE and DENY);
//! a DNS server that answers slowly or with SERVFAIL; the store's disk filling up; SIGKILL
//! mid-run. After each: the process ends on time, the store passes `PRAGMA integrity_check`, and
//! every measurement the servers completed is a row.

use crate::support::badhttp::{BadServer, Misbehaviour};
use crate::support::counting_ntp::{Behaviour, NtpResponder};
use crate::support::{TestDir, net};
use rusqlite::Connection;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timeaudit_analysis::observation::Observation;

const BIN: &str = env!("CARGO_BIN_EXE_timeaudit");
/// The survey's per-reply timeout in these tests (seconds).
const TIMEOUT: f64 = 0.5;
/// The late server answers this long after a query: well after `TIMEOUT`.
const LATE: Duration = Duration::from_millis(1500);
/// The slow DNS server answers this long after a query: longer than the resolver's per-query
/// timeout (2 s) times its attempts (2).
const DNS_SLOW: Duration = Duration::from_millis(5000);
/// Size of the tmpfs the full-disk test puts the store on.
const TMPFS_BYTES: usize = 512 * 1024;
/// Free bytes left on it after filling, before the run that overflows it.
const FREE_AFTER_FILL: u64 = 128 * 1024;
/// Targets (distinct paths on one HTTP server) of the run that overflows it, probed at
/// `FULL_DISK_RATE` per second: their list fits, the write-ahead log of the many small commits of
/// their rows does not.
const FULL_DISK_TARGETS: usize = 300;
/// Queries per second of that run.
const FULL_DISK_RATE: &str = "50";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn survey(dir: &Path, targets: &str, db: &Path, extra: &[&str]) -> Command {
    let file = dir.join("targets.txt");
    std::fs::write(&file, targets).unwrap();
    let mut c = Command::new(BIN);
    c.arg("survey").arg("--targets").arg(&file).arg("--db").arg(db);
    let timeout = TIMEOUT.to_string();
    for (flag, value) in [("--prober", "faults"), ("--gap", "0"), ("--rate", "200"), ("--timeout", timeout.as_str())] {
        if !extra.contains(&flag) {
            c.args([flag, value]);
        }
    }
    c.args(extra);
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Runs to the end; fails the test on a panic.
fn finish(mut c: Command) -> (Output, Duration) {
    let t0 = Instant::now();
    let out = c.output().unwrap();
    let took = t0.elapsed();
    assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
    (out, took)
}

fn integrity(db: &Path) {
    let c = Connection::open(db).unwrap();
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok", "{}", db.display());
}

fn rows(db: &Path) -> Vec<Observation> {
    let out = Command::new(BIN).args(["export", "--format", "jsonl", "--out", "-", "--db"]).arg(db).output().unwrap();
    assert!(out.status.success(), "export: {}", text(&out.stderr));
    text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn row<'a>(rows: &'a [Observation], target: &str) -> &'a Observation {
    let hits: Vec<&Observation> = rows.iter().filter(|o| o.target == target).collect();
    assert_eq!(hits.len(), 1, "one row for {target}: {rows:?}");
    hits[0]
}

/// How a test HTTP server treats each connection.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Http {
    /// Accepts and never answers (holds the connection open).
    Hang,
    /// Reads nothing, closes with the request unread: the kernel sends a reset.
    Reset,
    /// A valid `200` with the current `Date`.
    Good,
}

/// A one-thread HTTP server on a fresh loopback port; counts connections and answers.
struct HttpServer {
    url: String,
    connections: Arc<AtomicU32>,
    answered: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

impl HttpServer {
    fn start(kind: Http) -> Self {
        let listener = TcpListener::bind(net::endpoint()).unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (connections, answered, stop) =
            (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)), Arc::new(AtomicBool::new(false)));
        let (c, a, s) = (connections.clone(), answered.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !s.load(Ordering::SeqCst) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                match kind {
                    Http::Hang => held.push(conn),
                    Http::Reset => {
                        let mut b = [0u8; 1];
                        let _ = conn.peek(&mut b);
                        drop(conn);
                    }
                    Http::Good => {
                        let mut buf = [0u8; 4096];
                        let _ = conn.read(&mut buf);
                        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
                        let date = timeaudit_analysis::httpdate::format_imf_fixdate(now.as_secs() as i64);
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                        if conn.write_all(reply.as_bytes()).is_ok() {
                            a.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }
        });
        HttpServer { url: format!("http://{addr}/"), connections, answered, stop }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn hanging_late_resetting_and_huge_header_servers_end_on_time_and_every_answer_is_stored() {
    let dir = TestDir::new("faults-servers");
    let db = dir.path().join("survey.sqlite");
    let (ips, _) = net::endpoints(3, false);
    let good = NtpResponder::start(
        &[SocketAddr::from((ips[0], 0)), SocketAddr::from((ips[0], 0))],
        Behaviour::Clock { offset: 0.25, delay: Duration::ZERO },
    );
    let late = NtpResponder::start(&[SocketAddr::from((ips[1], 0))], Behaviour::Clock { offset: 0.0, delay: LATE });
    let silent = UdpSocket::bind(SocketAddr::from((ips[2], 0))).unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let hang = HttpServer::start(Http::Hang);
    let reset = HttpServer::start(Http::Reset);
    let http_good = HttpServer::start(Http::Good);
    let huge = BadServer::start(&ips[2].to_string(), Misbehaviour::HugeHeaders);
    let t = |s: String| s;
    let targets = [
        t(format!("ntp://{}", good.addrs[0])),
        t(format!("ntp://{}", good.addrs[1])),
        t(format!("ntp://{}", late.addr())),
        t(format!("ntp://{silent_addr}")),
        hang.url.clone(),
        reset.url.clone(),
        huge.url(),
        http_good.url.clone(),
    ];
    let (out, took) = finish(survey(dir.path(), &(targets.join("\n") + "\n"), &db, &["--samples", "2"]));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "unanswered hosts are data: {stdout}\n{}", text(&out.stderr));
    // Every probe is bounded by its own budget (2 exchanges of TIMEOUT plus slack); 8 probes run
    // in parallel, so the whole run takes a few seconds, never the late server's or a hung
    // connection's time.
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(stdout.starts_with("survey: probed 8, answered 3, failed 5, "), "{stdout}");
    integrity(&db);
    let rows = rows(&db);
    assert_eq!(rows.len(), 8, "{rows:?}");
    for t in &targets[..2] {
        let r = row(&rows, t);
        assert_eq!(r.error, None, "{r:?}");
        assert!((r.offset.unwrap() - 0.25).abs() < 0.01, "{r:?}");
        assert_eq!(r.samples, Some(2));
    }
    assert_eq!(good.replies(), 4, "2 targets x 2 samples answered, all stored");
    assert_eq!(row(&rows, &targets[7]).error, None);
    assert_eq!(http_good.answered.load(Ordering::SeqCst), http_good.connections.load(Ordering::SeqCst));
    for (t, kind) in [(2, "timeout"), (3, "timeout"), (4, "timeout")] {
        assert_eq!(row(&rows, &targets[t]).error.as_deref(), Some(kind), "{}", targets[t]);
    }
    for t in [5, 6] {
        let e = row(&rows, &targets[t]).error.clone();
        assert!(e.is_some() && e.as_deref() != Some("timeout"), "{}: {e:?}", targets[t]);
    }
    assert_eq!(hang.connections.load(Ordering::SeqCst), 1);
    assert!(reset.connections.load(Ordering::SeqCst) >= 1);
    drop(silent);
}

#[test]
fn kod_storms_rate_and_deny_stop_the_queries_to_that_server() {
    let dir = TestDir::new("faults-kod");
    let db = dir.path().join("survey.sqlite");
    let (ips, _) = net::endpoints(2, false);
    let ports = |ip: Ipv4Addr| -> Vec<SocketAddr> { (0..3).map(|_| SocketAddr::from((ip, 0))).collect() };
    let rate = NtpResponder::start(&ports(ips[0]), Behaviour::Kod("RATE"));
    let deny = NtpResponder::start(&ports(ips[1]), Behaviour::Kod("DENY"));
    let targets: String = rate.addrs.iter().chain(&deny.addrs).map(|a| format!("ntp://{a}\n")).collect();
    let (out, took) = finish(survey(dir.path(), &targets, &db, &["--samples", "4", "--concurrency", "1"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(10), "{took:?}");
    integrity(&db);
    let rows = rows(&db);
    assert_eq!(rows.len(), 6);
    let mut deny_samples = Vec::new();
    for r in &rows {
        if r.address == ips[0].to_string() {
            assert_eq!(r.error.as_deref(), Some("kod:RATE"), "{r:?}");
            assert_eq!(r.samples, Some(1), "a KoD ends the probe at once: {r:?}");
        } else {
            assert_eq!(r.error.as_deref(), Some("kod:DENY"), "{r:?}");
            deny_samples.push(r.samples.unwrap());
        }
    }
    deny_samples.sort_unstable();
    assert_eq!(deny_samples, [0, 0, 1], "one target asked and was denied, the other two not asked at all");
    assert_eq!(rate.arrivals().len(), 3, "one query per RATE target, none after the kiss");
    assert_eq!(deny.arrivals().len(), 1, "DENY ends every query to that server, all its ports");
}

/// A DNS server of the test's own: answers `slow.*` names with an A record after `DNS_SLOW`,
/// everything else with SERVFAIL at once. Counts queries.
struct FaultyDns {
    addr: SocketAddr,
    queries: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

fn qname(q: &[u8]) -> Option<(String, usize)> {
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*q.get(i)?);
        if len == 0 {
            return Some((labels.join("."), i + 1 + 4));
        }
        labels.push(String::from_utf8_lossy(q.get(i + 1..i + 1 + len)?).into_owned());
        i += 1 + len;
    }
}

impl FaultyDns {
    fn start(answer: Ipv4Addr) -> Self {
        let addr = net::endpoint();
        let sock = Arc::new(UdpSocket::bind(addr).unwrap());
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let (queries, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let (qs, s) = (queries.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !s.load(Ordering::SeqCst) {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else { continue };
                let q = buf[..n].to_vec();
                let Some((name, end)) = qname(&q) else { continue };
                qs.lock().unwrap().push(name.clone());
                let qtype = u16::from_be_bytes([q[end - 4], q[end - 3]]);
                let mut r = q[..end].to_vec();
                r[2] = 0x80 | (q[2] & 0x01); // response, recursion desired copied
                if name.starts_with("slow.") {
                    r[3] = 0x80; // recursion available, NOERROR
                    if qtype == 1 {
                        r[6..8].copy_from_slice(&1u16.to_be_bytes());
                        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                        r.extend_from_slice(&answer.octets());
                    }
                    let sock = sock.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(DNS_SLOW);
                        let _ = sock.send_to(&r, peer);
                    });
                } else {
                    r[3] = 0x82; // SERVFAIL
                    let _ = sock.send_to(&r, peer);
                }
            }
        });
        FaultyDns { addr, queries, stop }
    }
}

impl Drop for FaultyDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn slow_and_servfail_dns_are_dns_errors_and_the_rest_is_measured() {
    let dir = TestDir::new("faults-dns");
    let db = dir.path().join("survey.sqlite");
    let (ips, _) = net::endpoints(1, false);
    let good =
        NtpResponder::start(&[SocketAddr::from((ips[0], 0))], Behaviour::Clock { offset: 0.0, delay: Duration::ZERO });
    let port = good.addr().port();
    let dns = FaultyDns::start(ips[0]);
    let targets = format!("ntp://slow.faults.test:{port}\nntp://broken.faults.test:{port}\nntp://{}\n", good.addr());
    let resolver = dns.addr.to_string();
    let (out, took) =
        finish(survey(dir.path(), &targets, &db, &["--samples", "1", "--resolver", &resolver, "--deadline", "30"]));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    // The resolver gives up after its attempts (2 x 2 s); the run must not wait for DNS_SLOW per
    // name serially or hang.
    assert!(took < Duration::from_secs(12), "{took:?}");
    integrity(&db);
    let rows = rows(&db);
    assert_eq!(row(&rows, &format!("ntp://{}", good.addr())).error, None);
    assert_eq!(good.replies(), 1, "only the literal address was queried");
    for name in ["slow", "broken"] {
        let r = row(&rows, &format!("ntp://{name}.faults.test:{port}"));
        assert_eq!(r.error.as_deref(), Some("dns"), "{r:?}");
    }
    let asked = dns.queries.lock().unwrap().clone();
    assert!(
        asked.iter().any(|q| q == "slow.faults.test") && asked.iter().any(|q| q == "broken.faults.test"),
        "{asked:?}"
    );
    assert!(stdout.starts_with("survey: probed 3, answered 1, failed 2, "), "{stdout}");
}

#[test]
fn sigkill_mid_run_leaves_a_consistent_store_with_every_committed_probe() {
    const DELAY: Duration = Duration::from_millis(250);
    let dir = TestDir::new("faults-sigkill");
    let db = dir.path().join("survey.sqlite");
    let (ips, _) = net::endpoints(1, false);
    let addrs: Vec<SocketAddr> = (0..12).map(|_| SocketAddr::from((ips[0], 0))).collect();
    let slow = NtpResponder::start(&addrs, Behaviour::Clock { offset: 0.0, delay: DELAY });
    let targets: String = slow.addrs.iter().map(|a| format!("ntp://{a}\n")).collect();
    let mut child = survey(dir.path(), &targets, &db, &["--samples", "1", "--concurrency", "1"]).spawn().unwrap();
    let t0 = Instant::now();
    while slow.arrivals().len() < 6 {
        assert!(t0.elapsed() < Duration::from_secs(15), "the run never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    let killed_at = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    integrity(&db);
    let stored = rows(&db);
    // Replies to queries that arrived this long before the kill were sent and received more
    // than a batch interval before it: they must be committed.
    let committed_by = killed_at - DELAY - Duration::from_millis(400);
    let surely_done = slow.arrivals().iter().filter(|a| a.at < committed_by).count();
    let replies = slow.replies() as usize;
    assert!(stored.len() >= surely_done, "stored {} < {surely_done} answered well before SIGKILL", stored.len());
    assert!(stored.len() <= replies, "stored {} > {replies} replies", stored.len());
    assert!(stored.iter().all(|o| o.error.is_none()), "only completed probes are rows");
    eprintln!(
        "SIGKILL: {} rows stored, {replies} replies sent, {surely_done} answered > 650 ms before the kill",
        stored.len()
    );
    // A new run completes the rest: each target exactly once over both runs.
    let (out, _) = finish(survey(dir.path(), &targets, &db, &["--samples", "1", "--concurrency", "4"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    integrity(&db);
    let all = rows(&db);
    let mut t: Vec<&str> = all.iter().map(|o| o.target.as_str()).collect();
    t.sort_unstable();
    t.dedup();
    assert_eq!((all.len(), t.len()), (12, 12), "{all:?}");
}

/// Mounts a `TMPFS_BYTES` tmpfs at `dir`; None (with the reason printed) when not allowed.
fn mount_tmpfs(dir: &Path) -> Option<()> {
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_BYTES}"), "tmpfs"])
        .arg(dir)
        .output()
        .ok()?;
    if out.status.success() {
        Some(())
    } else {
        eprintln!(
            "SKIPPED full-disk fault: `mount -t tmpfs` refused ({}); run the tests as root to include it",
            text(&out.stderr).trim()
        );
        None
    }
}

#[test]
fn a_full_disk_exits_5_and_keeps_every_committed_batch() {
    let dir = TestDir::new("faults-disk");
    let mnt = dir.path().join("small");
    if mount_tmpfs(&mnt).is_none() {
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mnt);
    let db = mnt.join("survey.sqlite");
    let server = HttpServer::start(Http::Good);
    // First run: the store is created while there is room.
    let (out, _) = finish(survey(dir.path(), &format!("{}\n", server.url), &db, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Fill the disk, then give back a little: the next run's rows outgrow it.
    let filler = mnt.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        while f.write_all(&[0u8; 4096]).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(FREE_AFTER_FILL)).unwrap();
    }
    let targets: String = (0..FULL_DISK_TARGETS).map(|i| format!("{}{i}\n", server.url)).collect();
    let (out, took) = finish(survey(dir.path(), &targets, &db, &["--concurrency", "8", "--rate", FULL_DISK_RATE]));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert_eq!(out.status.code(), Some(5), "{stdout}\n{stderr}");
    assert!(stderr.contains("survey.sqlite") && stderr.contains("measurements committed before are kept"), "{stderr}");
    std::fs::remove_file(&filler).unwrap();
    integrity(&db);
    let stored = rows(&db);
    let probed: usize = stdout.split("probed ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    assert!(stored.len() <= probed + 1, "stored {} > probed {probed} + the first run's 1", stored.len());
    assert!(stored.len() > 1, "batches committed before the disk filled are kept: {}", stored.len());
    // Only the batch being written when the disk filled (at most 64 rows) can be missing.
    assert!(probed + 1 - stored.len() <= 64, "stored {} of {probed} + 1", stored.len());
    eprintln!("full disk: {} rows kept of {probed} probed in the second run", stored.len() - 1);
}
