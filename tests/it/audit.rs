//! `timeaudit audit` against real NTP servers on loopback: a chronyd hierarchy (a stratum 1 fed
//! by a reference clock, two masters, two clients) healthy and with one planted fault each (a
//! loop, a stale master, a single upstream, a master bent 60 s by libfaketime); NTPsec's ntpd for
//! mode 6; our own responder for mode 7; config lint of the committed fixtures. Each test has
//! its own loopback addresses and port (support::net).

use crate::support::TestDir;
use crate::support::chrony_fleet::{Chronyd, Refclock, refclock_line, server_line};
use crate::support::dns::Dns;
use crate::support::mode7::{MONLIST_DATAGRAMS, MONLIST_ITEM_SIZE, MONLIST_ITEMS, Mode7Responder};
use crate::support::net;
use crate::support::ntpsec::Ntpd;
use serde_json::Value;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_timeaudit");

/// Runs `timeaudit audit ARGS --format json`; returns (exit code, document).
fn audit_cmd(mut cmd: Command, args: &[String]) -> (i32, Value) {
    let out = cmd
        .arg("audit")
        .args(args)
        .args(["--format", "json", "--samples", "1", "--timeout", "0.5"])
        .output()
        .expect("cannot run timeaudit");
    let text = String::from_utf8_lossy(&out.stdout);
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("audit output is not JSON ({e}): {text}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
    });
    (out.status.code().unwrap_or(-1), doc)
}

fn audit(args: &[String]) -> (i32, Value) {
    audit_cmd(Command::new(BIN), args)
}

/// `count` loopback addresses sharing a port, none in 127.127.0.0/16: NTP reserves that range
/// for reference-clock pseudo-addresses (a refid 127.127.t.u names a driver, not a server).
fn endpoints(count: usize, tcp_too: bool) -> (Vec<Ipv4Addr>, u16) {
    loop {
        let (addrs, port) = net::endpoints(count, tcp_too);
        if addrs.iter().all(|a| a.octets()[1] != 127) {
            return (addrs, port);
        }
    }
}

fn endpoint() -> std::net::SocketAddr {
    let (addrs, port) = endpoints(1, false);
    std::net::SocketAddr::from((addrs[0], port))
}

fn targets(port: u16, addrs: &[Ipv4Addr]) -> Vec<String> {
    addrs.iter().map(|a| format!("{a}:{port}")).collect()
}

/// (server, code) of every finding.
fn findings(doc: &Value) -> Vec<(String, String)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["server"].as_str().unwrap().to_string(), f["code"].as_str().unwrap().to_string()))
        .collect()
}

/// (address, stratum) of every node, in address order.
fn strata(doc: &Value) -> Vec<(String, Option<u64>)> {
    doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["address"].as_str().unwrap().to_string(), n["stratum"].as_u64()))
        .collect()
}

fn edges(doc: &Value) -> Vec<(String, String)> {
    doc["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["from"].as_str().unwrap().to_string(), e["to"].as_str().unwrap().to_string()))
        .collect()
}

/// Audits until `ready` accepts the document or `limit` passes (servers need a few seconds to
/// synchronise); returns the accepted document or panics with the last one and `logs`.
fn audit_until(
    args: &[String],
    limit: Duration,
    ready: impl Fn(&Value) -> bool,
    logs: &dyn Fn() -> String,
) -> (i32, Value) {
    let start = Instant::now();
    loop {
        let (code, doc) = audit(args);
        if ready(&doc) {
            return (code, doc);
        }
        if start.elapsed() > limit {
            panic!("fleet never reached the expected state; last audit: {doc:#}\n{}", logs());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A five-server hierarchy on five loopback addresses sharing a port: [0] stratum 1 on a
/// reference clock; [1] and [2] masters ([1] from [0], [2] from `master2_upstream`); [3] client
/// of [1]; [4] client of [2].
struct Hierarchy {
    servers: Vec<Chronyd>,
    refclock: Option<Refclock>,
    _bent_refclock: Option<Refclock>,
    port: u16,
    addrs: Vec<Ipv4Addr>,
}

impl Hierarchy {
    fn start(name: &str, master2_upstream: usize) -> Hierarchy {
        let (a, port) = endpoints(5, false);
        let root = Chronyd::start(&format!("{name}-root"), a[0], port, &[refclock_line()], None);
        let refclock = Refclock::start(root.refclock_socket());
        let m1 = Chronyd::start(&format!("{name}-m1"), a[1], port, &[server_line(a[0], port)], None);
        Self::finish(name, a, port, master2_upstream, root, Some(refclock), m1, None)
    }

    /// The top is chronyd's `local stratum 1`: an undisciplined clock posing as stratum 1.
    fn start_local(name: &str) -> Hierarchy {
        let (a, port) = endpoints(5, false);
        let root = Chronyd::start(&format!("{name}-root"), a[0], port, &["local stratum 1".into()], None);
        let m1 = Chronyd::start(&format!("{name}-m1"), a[1], port, &[server_line(a[0], port)], None);
        Self::finish(name, a, port, 0, root, None, m1, None)
    }

    /// Master 1 runs on its own reference clock under FAKETIME `bend` (`shift` seconds): a
    /// master whose clock is wrong and which trusts it.
    fn start_bent(name: &str, bend: &str, shift: f64) -> Hierarchy {
        let (a, port) = endpoints(5, false);
        let root = Chronyd::start(&format!("{name}-root"), a[0], port, &[refclock_line()], None);
        let refclock = Refclock::start(root.refclock_socket());
        let m1 = Chronyd::start(&format!("{name}-m1"), a[1], port, &[refclock_line()], Some(bend));
        let bent = Refclock::start_shifted(m1.refclock_socket(), shift);
        Self::finish(name, a, port, 0, root, Some(refclock), m1, Some(bent))
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        name: &str,
        a: Vec<Ipv4Addr>,
        port: u16,
        master2_upstream: usize,
        root: Chronyd,
        refclock: Option<Refclock>,
        m1: Chronyd,
        bent: Option<Refclock>,
    ) -> Hierarchy {
        let m2 = Chronyd::start(&format!("{name}-m2"), a[2], port, &[server_line(a[master2_upstream], port)], None);
        let c1 = Chronyd::start(&format!("{name}-c1"), a[3], port, &[server_line(a[1], port)], None);
        let c2 = Chronyd::start(&format!("{name}-c2"), a[4], port, &[server_line(a[2], port)], None);
        Hierarchy { servers: vec![root, m1, m2, c1, c2], refclock, _bent_refclock: bent, port, addrs: a }
    }

    fn all(&self) -> Vec<String> {
        targets(self.port, &self.addrs)
    }

    /// Address `i` as text.
    fn ip(&self, i: usize) -> String {
        self.addrs[i].to_string()
    }

    fn logs(&self) -> String {
        self.servers.iter().map(|c| format!("--- chronyd {}:\n{}", c.addr, c.log())).collect()
    }

    /// Whether every server reports the expected stratum and a root distance below 0.5 s (for a
    /// few seconds after its first synchronisation chronyd reports a root dispersion above 1 s,
    /// which the audit rightly flags).
    fn settled(&self, doc: &Value, expected: &[u64; 5]) -> bool {
        let got = strata(doc);
        let strata_ok = (0..5).all(|i| got.iter().any(|(a, st)| *a == self.ip(i) && *st == Some(expected[i])));
        let close =
            doc["nodes"].as_array().unwrap().iter().all(|n| n["root_distance"].as_f64().is_some_and(|d| d < 0.5));
        strata_ok && close
    }
}

/// `pairs` sorted (the audit orders edges and same-severity findings by address text).
fn sorted(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs.sort();
    pairs
}

#[test]
fn audit_healthy_hierarchy_walked_from_the_clients_has_no_findings() {
    let h = Hierarchy::start("audit-healthy", 0);
    let dir = TestDir::new("audit-healthy-out");
    let dot = dir.path().join("fleet.dot");
    let svg = dir.path().join("fleet.svg");
    // Only the two clients are listed: the masters and the stratum 1 are found by walking refids.
    let mut args = targets(h.port, &h.addrs[3..]);
    args.extend(["--hops".into(), "2".into(), "--dot".into(), dot.display().to_string(), "--svg".into()]);
    args.push(svg.display().to_string());
    let (code, doc) = audit_until(&args, Duration::from_secs(40), |d| h.settled(d, &[1, 2, 2, 3, 3]), &|| h.logs());
    assert_eq!(findings(&doc), vec![], "{doc:#}");
    assert_eq!(code, 0);
    let expected = [(1, 0), (2, 0), (3, 1), (4, 2)];
    assert_eq!(edges(&doc), sorted(expected.iter().map(|&(f, t)| (h.ip(f), h.ip(t))).collect()));
    let root = doc["nodes"].as_array().unwrap().iter().find(|n| n["address"] == h.ip(0)).unwrap();
    assert_eq!(root["upstream"]["reference"], "GPS");
    assert_eq!(doc["servers"].as_array().unwrap().len(), 5);
    let dot = std::fs::read_to_string(&dot).unwrap();
    for (from, to) in expected {
        assert_eq!(dot.matches(&format!("  \"{}\" -> \"{}\";\n", h.ip(from), h.ip(to))).count(), 1, "{dot}");
    }
    assert_eq!(dot.matches(" -> ").count(), 5, "four server edges and the reference clock: {dot}");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg"));
    assert_eq!(svg.matches("<rect").count(), 1 + 5 * 2, "background plus two rectangles per server");
    assert_eq!(svg.matches("<polygon").count(), 4, "one arrow head per edge");

    // chronyd answers neither mode 6 nor mode 7: --control adds no finding.
    let mut args = h.all();
    args.extend(["--control".into(), "--hops".into(), "0".into()]);
    let (code, doc) = audit(&args);
    assert_eq!(findings(&doc), vec![], "{doc:#}");
    assert_eq!(code, 0);
    let control = doc["control"].as_array().unwrap();
    assert_eq!(control.len(), 5);
    assert!(control.iter().all(|c| c["mode6_answered"] == false && c["mode7_answered"] == false), "{doc:#}");
}

#[test]
fn audit_local_stratum_1_at_the_top_is_a_local_clock_serving_the_fleet() {
    // The baseline shape: a `local stratum 1` chronyd with two masters and their clients.
    // Healthy in every other respect; the audit names the undisciplined top once.
    let h = Hierarchy::start_local("audit-local");
    let (code, doc) = audit_until(&h.all(), Duration::from_secs(40), |d| h.settled(d, &[1, 2, 2, 3, 3]), &|| h.logs());
    assert_eq!(findings(&doc), vec![(h.ip(0), "local_clock_source".to_string())], "{doc:#}");
    let f = &doc["findings"][0];
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["evidence"]["refid"], "\\x7f\\x7f\\x01\\x01", "chronyd's local reference id 127.127.1.1");
    let mut dependents = [h.ip(1), h.ip(2)];
    dependents.sort();
    assert_eq!(f["evidence"]["dependents"], dependents.join(","));
    assert_eq!(code, 1);
}

#[test]
fn audit_single_upstream_is_a_single_point_of_failure() {
    // Master 2 follows master 1 instead of the stratum 1 (seed 000's variant).
    let h = Hierarchy::start("audit-spof", 1);
    let (code, doc) = audit_until(&h.all(), Duration::from_secs(40), |d| h.settled(d, &[1, 2, 3, 3, 4]), &|| h.logs());
    assert_eq!(findings(&doc), vec![(h.ip(1), "single_point_of_failure".to_string())], "{doc:#}");
    let mut dependents = [h.ip(2), h.ip(3), h.ip(4)];
    dependents.sort();
    assert_eq!(doc["findings"][0]["evidence"]["dependents"], dependents.join(","));
    assert_eq!(code, 1);
}

#[test]
fn audit_master_bent_sixty_seconds_is_off_the_majority() {
    // chronyd -x serves time corrected by what it measured, so a master that synchronises from a
    // good server cannot stay bent: the bent master is a stratum 1 trusting its own wrong clock
    // (libfaketime -60 s, reference clock in that time), and its client follows it.
    let h = Hierarchy::start_bent("audit-bent", "-60s", -60.0);
    let (code, doc) = audit_until(&h.all(), Duration::from_secs(40), |d| h.settled(d, &[1, 1, 2, 2, 3]), &|| h.logs());
    assert_eq!(
        findings(&doc),
        sorted(vec![(h.ip(1), "offset".to_string()), (h.ip(3), "offset".to_string())]),
        "{doc:#}"
    );
    for f in 0..2 {
        let offset: f64 = doc["findings"][f]["evidence"]["offset"].as_str().unwrap().parse().unwrap();
        assert!((offset + 60.0).abs() < 0.01, "60 s behind, measured {offset}");
    }
    let majority = doc["majority_offset"].as_f64().unwrap();
    assert!(majority.abs() < 0.01, "the three good servers are the majority: {majority}");
    assert_eq!(code, 1);
}

#[test]
fn audit_stale_master_keeps_serving_an_old_reference() {
    let mut h = Hierarchy::start("audit-stale", 0);
    let mut args = h.all();
    args.extend(["--stale-after".into(), "8".into()]);
    let (_, doc) = audit_until(&args, Duration::from_secs(40), |d| h.settled(d, &[1, 2, 2, 3, 3]), &|| h.logs());
    assert_eq!(findings(&doc), vec![], "{doc:#}");
    // The reference clock of the stratum 1 goes silent; chronyd keeps serving as stratum 1 with
    // its last reference time, and its downstream keep synchronising from it.
    h.refclock.as_mut().unwrap().stop();
    let (code, doc) = audit_until(
        &args,
        Duration::from_secs(40),
        |d| !findings(d).is_empty() && h.settled(d, &[1, 2, 2, 3, 3]),
        &|| h.logs(),
    );
    assert_eq!(findings(&doc), vec![(h.ip(0), "stale_reference".to_string())], "{doc:#}");
    let age: f64 = doc["findings"][0]["evidence"]["reference_age"].as_str().unwrap().parse().unwrap();
    assert!((8.0..20.0).contains(&age), "age {age} (printed to 0.1 s)");
    assert_eq!(code, 1);
}

#[test]
fn audit_finds_a_synchronisation_loop() {
    // A falls back on its local clock at stratum 3 until C answers; B follows A, C follows B, A
    // then follows C: a loop whose strata count up to 16 and start again.
    let (addrs, port) = endpoints(3, false);
    let line = |i: usize| format!("server {} port {port} iburst minpoll 0 maxpoll 0", addrs[i]);
    let a = Chronyd::start("audit-loop-a", addrs[0], port, &["local stratum 3".into(), line(2)], None);
    let b = Chronyd::start("audit-loop-b", addrs[1], port, &[line(0)], None);
    let c = Chronyd::start("audit-loop-c", addrs[2], port, &[line(1)], None);
    let logs = || [&a, &b, &c].iter().map(|c| c.log()).collect::<String>();
    let (code, doc) = audit_until(
        &targets(port, &addrs),
        Duration::from_secs(40),
        |d| findings(d).iter().any(|(_, code)| code == "loop"),
        &logs,
    );
    // The report starts the ring at its lowest address and follows the refids: A -> C -> B -> A.
    let mut ring: Vec<String> = [0, 2, 1].iter().map(|&i| addrs[i].to_string()).collect();
    let lowest = (0..3).min_by(|&x, &y| ring[x].cmp(&ring[y])).unwrap();
    ring.rotate_left(lowest);
    assert_eq!(findings(&doc), vec![(ring[0].clone(), "loop".to_string())], "{doc:#}");
    ring.push(ring[0].clone());
    assert_eq!(doc["findings"][0]["message"], format!("synchronisation loop: {}", ring.join(" -> ")));
    assert_eq!(code, 1);
}

#[test]
fn audit_reads_targets_file_and_audits_every_address_of_a_name() {
    let (addrs, port) = endpoints(2, false);
    let a = Chronyd::start("audit-dns-a", addrs[0], port, &[refclock_line()], None);
    let b = Chronyd::start("audit-dns-b", addrs[1], port, &[refclock_line()], None);
    let _feeds = [Refclock::start(a.refclock_socket()), Refclock::start(b.refclock_socket())];
    let dns = Dns::start(&[("fleet.test", addrs[0].into()), ("fleet.test", addrs[1].into())]);
    let dir = TestDir::new("audit-dns");
    let list = dir.path().join("servers.txt");
    std::fs::write(&list, format!("# the fleet\nfleet.test:{port}   # two addresses\n\n")).unwrap();
    let args: Vec<String> =
        vec!["--targets".into(), list.display().to_string(), "--resolver".into(), dns.addr.to_string()];
    let (code, doc) =
        audit_until(&args, Duration::from_secs(40), |d| strata(d).iter().all(|(_, s)| *s == Some(1)), &|| {
            format!("{}{}{}", a.log(), b.log(), dns.log())
        });
    let mut expected: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    expected.sort();
    let servers = doc["servers"].as_array().unwrap();
    let mut got: Vec<String> = servers.iter().map(|s| s["address"].as_str().unwrap().to_string()).collect();
    got.sort();
    assert_eq!(got, expected, "{doc:#}");
    assert!(servers.iter().all(|s| s["target"] == format!("fleet.test:{port}")), "{doc:#}");
    assert_eq!(findings(&doc), vec![], "{doc:#}");
    assert_eq!(code, 0);
}

#[test]
fn audit_control_reads_ntpsec_mode6_and_lints_its_config() {
    // One source that never answers: ntpd refuses loopback sources, and its private namespace
    // has no route to the documentation address 192.0.2.1, so nothing is ever sent. `disable
    // ntp` keeps ntpd from ever touching the clock.
    let conf = "driftfile $DIR/ntp.drift\ndisable ntp\ndisable kernel\nserver 192.0.2.1 iburst\n\
                restrict default kod nomodify nopeer limited\nrestrict 127.0.0.1\n";
    let ntpd = Ntpd::start("audit-ntpsec", conf);
    ntpd.wait_ready(Duration::from_secs(10));
    let conf_path = ntpd.conf_path().display().to_string();
    let args: Vec<String> = vec!["127.0.0.1".into(), "--control".into(), "--config".into(), conf_path.clone()];
    let start = Instant::now();
    let (code, doc) = loop {
        let (code, doc) = audit_cmd(ntpd.command_in_netns(BIN), &args);
        if doc["control"][0]["mode6_answered"] == true || start.elapsed() > Duration::from_secs(20) {
            break (code, doc);
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    // ntpd without sources is unsynchronised; it answers mode 6 to the auditing host (NTPsec only
    // did so here with an explicit `restrict 127.0.0.1`; with `restrict default` alone it
    // stayed silent), and never mode 7 (NTPsec removed it).
    assert_eq!(
        findings(&doc),
        vec![
            ("127.0.0.1".into(), "unsynchronised".into()),
            ("127.0.0.1".into(), "mode6_exposed".into()),
            ("127.0.0.1".into(), "single_source".into()),
        ],
        "{doc:#}\n{}",
        ntpd.log()
    );
    let control = &doc["control"][0];
    assert!(control["system"]["version"].as_str().unwrap().starts_with("ntpd ntpsec-1.2.2"), "{control:#}");
    assert_eq!(control["mode7_answered"], false);
    assert_eq!(doc["findings"][1]["evidence"]["request"], "READVAR");
    assert_eq!(doc["findings"][2]["evidence"]["sources"], "192.0.2.1");
    assert_eq!(control["peers"][0]["srcadr"], "192.0.2.1", "{control:#}");
    let config: Vec<(String, String)> = doc["config_findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["code"].as_str().unwrap().into(), f["line"].to_string()))
        .collect();
    assert_eq!(
        config,
        vec![("few_sources".to_string(), "4".to_string()), ("restrict_default_query".to_string(), "5".to_string())]
    );
    assert_eq!(code, 1);

    // Without --control nothing but mode 3 is sent: no control section, no exposure finding.
    let (_, doc) = audit_cmd(ntpd.command_in_netns(BIN), &["127.0.0.1".to_string()]);
    assert_eq!(findings(&doc), vec![("127.0.0.1".into(), "unsynchronised".into())]);
    assert_eq!(doc["control"], serde_json::json!([]));
}

#[test]
fn audit_control_finds_a_monlist_responder() {
    let addr = endpoint();
    let _responder = Mode7Responder::start(addr);
    let (code, doc) = audit(&[addr.to_string(), "--control".into(), "--hops".into(), "0".into()]);
    assert_eq!(findings(&doc), vec![(addr.ip().to_string(), "mode7_exposed".to_string())], "{doc:#}");
    let ev = &doc["findings"][0]["evidence"];
    // Each datagram: 8-byte header + 6 entries of 72 bytes; the request is ntpdc's 48 bytes.
    let per_datagram = 8 + usize::from(MONLIST_ITEMS) * usize::from(MONLIST_ITEM_SIZE);
    assert_eq!(per_datagram, 440);
    assert_eq!(ev["response_bytes"], (MONLIST_DATAGRAMS * per_datagram).to_string());
    assert_eq!(ev["request_bytes"], "48");
    assert_eq!(ev["amplification"], "27.5");
    assert_eq!(ev["detail"], "3 datagrams, 18 monlist entries");
    assert_eq!(doc["control"][0]["mode6_answered"], false);
    assert_eq!(code, 1);
}

#[test]
fn audit_config_lint_of_the_fixtures() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");
    let out = Command::new(BIN)
        .args(["audit", "--config", &format!("{dir}/seed000-host.chrony.conf"), "--config"])
        .arg(format!("{dir}/debian-ntpsec-ntp.conf"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let f = format!("{dir}/seed000-host.chrony.conf");
    assert_eq!(
        text,
        format!(
            "Configuration findings:\n\
             {f}:2: warning few_sources: only 2 usable sources (master-1, master-2): a single failure or false ticker cannot be outvoted\n    \
             fix: configure at least 4 independent sources (servers on different upstreams, or a pool)\n\
             {f}: warning no_makestep: no `makestep`: a clock that starts far off is slewed for hours or days instead of stepped\n    \
             fix: add `makestep 1 3` (step at most in the first three updates when off by more than 1 s)\n\
             {f}: warning no_driftfile: no `driftfile`: the frequency error is relearned after every restart\n    \
             fix: add `driftfile /var/lib/chrony/chrony.drift`\n"
        )
    );
    assert_eq!(out.status.code(), Some(1));
    // A missing file is a clear error naming it.
    let out = Command::new(BIN).args(["audit", "--config", "/nonexistent/chrony.conf"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read configuration /nonexistent/chrony.conf"));
}
