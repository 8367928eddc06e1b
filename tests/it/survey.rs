//! `timeaudit survey` and `timeaudit export` against a fleet of NTP responders on 127.0.4.x
//! (good, far off, slow, Kiss-o'-Death, nothing listening): rows and due times after back-to-back
//! runs, the run lock, SIGTERM mid-run, the deadline, rate and per-address gap measured at the
//! server, shards, export round trips, and the PostgreSQL store with two probers at once.

use crate::support::chrony::Chrony;
use crate::support::counting_ntp::{Behaviour, NtpResponder};
use crate::support::dns::Dns;
use crate::support::net;
use crate::support::nginx::Nginx;
use crate::support::postgres::Postgres;
use rusqlite::Connection;
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use timeaudit_analysis::observation::{Method, Observation};

const BIN: &str = env!("CARGO_BIN_EXE_timeaudit");

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("timeaudit-it-survey-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A UDP port on `ip` where nothing listens.
fn dead_port(ip: &str) -> u16 {
    UdpSocket::bind(format!("{ip}:0")).unwrap().local_addr().unwrap().port()
}

fn survey_cmd(dir: &Path, targets: &str, extra: &[&str]) -> Command {
    let file = dir.join("targets.txt");
    std::fs::write(&file, targets).unwrap();
    let mut c = Command::new(BIN);
    c.arg("survey").arg("--targets").arg(&file);
    let db = dir.join("survey.sqlite").to_string_lossy().into_owned();
    let defaults = [
        ("--db", db.as_str()),
        ("--prober", "it"),
        ("--samples", "1"),
        ("--gap", "0"),
        ("--rate", "200"),
        ("--timeout", "1"),
    ];
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            c.args([flag, value]);
        }
    }
    c.args(extra);
    c.stdin(Stdio::null());
    c
}

fn run(mut c: Command) -> Output {
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn rows(db: &Path) -> Vec<Observation> {
    let out = run({
        let mut c = Command::new(BIN);
        c.args(["export", "--format", "jsonl", "--out", "-", "--db"]).arg(db);
        c
    });
    assert!(out.status.success(), "export: {}", text(&out.stderr));
    text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[derive(Debug, Clone, PartialEq)]
struct Sched {
    next_due: f64,
    interval: f64,
    reason: String,
    failures: i64,
}

fn schedule(db: &Path) -> BTreeMap<String, Sched> {
    let c = Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT target, address, next_due, interval_s, reason, failures FROM schedule WHERE prober = 'it'")
        .unwrap();
    st.query_map([], |r| {
        let (target, address): (String, String) = (r.get(0)?, r.get(1)?);
        // Names that resolve to several addresses are keyed "TARGET ADDRESS"; literals "TARGET ".
        let key = if target.contains("survey.test") { format!("{target} {address}") } else { format!("{target} ") };
        Ok((key, Sched { next_due: r.get(2)?, interval: r.get(3)?, reason: r.get(4)?, failures: r.get(5)? }))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn by_target(obs: &[Observation]) -> BTreeMap<String, Vec<Observation>> {
    let mut m: BTreeMap<String, Vec<Observation>> = BTreeMap::new();
    for o in obs {
        m.entry(o.target.clone()).or_default().push(o.clone());
    }
    m
}

struct Fleet {
    good: NtpResponder,
    far: NtpResponder,
    slow: NtpResponder,
    kod: NtpResponder,
    dead: SocketAddr,
}

impl Fleet {
    fn start(net: &str) -> Fleet {
        let zero = Duration::ZERO;
        Fleet {
            good: NtpResponder::start(&[sock(&format!("{net}.1:0"))], Behaviour::Clock { offset: 0.0, delay: zero }),
            far: NtpResponder::start(&[sock(&format!("{net}.2:0"))], Behaviour::Clock { offset: -90.0, delay: zero }),
            slow: NtpResponder::start(
                &[sock(&format!("{net}.3:0"))],
                Behaviour::Clock { offset: 3.0, delay: Duration::from_millis(400) },
            ),
            kod: NtpResponder::start(&[sock(&format!("{net}.4:0"))], Behaviour::Kod("RATE")),
            dead: sock(&format!("{net}.5:{}", dead_port(&format!("{net}.5")))),
        }
    }
    fn targets(&self) -> String {
        format!(
            "# loopback fleet\nntp://{} cohort=good\nntp://{} cohort=far\n\nntp://{} slow # 400 ms\nntp://{}\nntp://{}\n",
            self.good.addr(),
            self.far.addr(),
            self.slow.addr(),
            self.kod.addr(),
            self.dead
        )
    }
    fn names(&self) -> [String; 5] {
        [self.good.addr(), self.far.addr(), self.slow.addr(), self.kod.addr(), self.dead].map(|a| format!("ntp://{a}"))
    }
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-6, "{what}: got {got}, want {want}");
}

#[test]
fn two_runs_back_to_back_store_exact_rows_and_move_due_times() {
    let dir = temp_dir("fleet");
    let fleet = Fleet::start("127.0.4");
    // Two chronyd under libfaketime behind one DNS name: one an hour behind, one on time.
    let (caddrs, cport) = net::endpoints(2, false);
    let behind = Chrony::start(caddrs[0], cport, "-3600");
    let ontime = Chrony::start(caddrs[1], cport, "+0");
    let dns = Dns::start(&[("ntp.survey.test", IpAddr::V4(caddrs[0])), ("ntp.survey.test", IpAddr::V4(caddrs[1]))]);
    let pair = format!("ntp://ntp.survey.test:{cport}");
    // Two nginx under libfaketime: one 45 s behind, one on time (HTTP Date, whole seconds).
    let web_behind = Nginx::http("-45s");
    let web_ontime = Nginx::http("+0");
    let (wb, wo) = (web_behind.http_url(), web_ontime.http_url());
    let missing = format!("ntp://missing.survey.test:{cport}");
    let targets = format!("{}{pair} cohort=pair\n{wb} web\n{wo} web\n{missing}\n", fleet.targets());
    let [good, far, slow, kod, dead] = fleet.names();
    let db = dir.join("survey.sqlite");
    let resolver = dns.addr.to_string();
    let cmd = |extra: &[&str]| {
        let mut args = vec!["--resolver", resolver.as_str()];
        args.extend_from_slice(extra);
        survey_cmd(&dir, &targets, &args)
    };

    let out = run(cmd(&[]));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "silent under cron except the summary line");
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("survey: probed 10, answered 7, failed 3, "), "{stdout}");
    let worst: f64 = stdout.split("worst offset ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!((worst + 3600.0).abs() < 0.01, "{stdout}");
    assert!(stdout.contains(&format!("({pair} {})", caddrs[0])), "{stdout}");

    let obs = rows(&db);
    assert_eq!(obs.len(), 10);
    let m = by_target(&obs);
    let d = &m[&missing][0];
    assert_eq!((d.address.as_str(), d.error.as_deref(), d.offset), ("", Some("dns"), None), "{d:?}");
    for (url, offset) in [(&wb, -45.0), (&wo, 0.0)] {
        let h = &m[url][0];
        assert_eq!((h.method, h.http_status, h.error.as_deref()), (Some(Method::Http), Some(200), None), "{h:?}");
        assert!(h.server.as_deref().unwrap().starts_with("nginx"), "{h:?}");
        assert!(h.offset_lo.unwrap() - 0.01 <= offset && offset <= h.offset_hi.unwrap() + 0.01, "{h:?}");
        let width = h.offset_hi.unwrap() - h.offset_lo.unwrap();
        assert!((width - (1.0 + h.delay.unwrap())).abs() < 1e-6, "[D - t1, D + 1 - t0]: {h:?}");
    }
    let mut pair_rows = m[&pair].clone();
    pair_rows.sort_by(|a, b| a.address.cmp(&b.address));
    let by_addr: BTreeMap<String, Observation> = pair_rows.into_iter().map(|o| (o.address.clone(), o)).collect();
    let (b, o) = (&by_addr[&caddrs[0].to_string()], &by_addr[&caddrs[1].to_string()]);
    assert_eq!((b.stratum, b.error.as_deref(), b.port), (Some(3), None, Some(cport)));
    assert!((b.offset.unwrap() + 3600.0).abs() < 0.005, "{b:?}");
    assert!(o.offset.unwrap().abs() < 0.005, "{o:?}");
    let _ = (&behind, &ontime);
    let g = &m[&good][0];
    assert_eq!((g.address.as_str(), g.port, g.error.as_deref()), ("127.0.4.1", Some(fleet.good.addr().port()), None));
    assert_eq!(
        (g.stratum, g.refid.as_deref(), g.leap, g.version, g.samples),
        (Some(2), Some("127.0.0.1"), Some(0), Some(4), Some(1))
    );
    assert_eq!(
        (g.root_delay, g.root_dispersion, g.precision),
        (Some(256.0 / 65536.0), Some(512.0 / 65536.0), Some(-20))
    );
    assert!(g.offset_lo.unwrap() <= 0.0 && 0.0 <= g.offset_hi.unwrap(), "{g:?}");
    let f = &m[&far][0];
    assert!(f.offset_lo.unwrap() <= -90.0 && -90.0 <= f.offset_hi.unwrap(), "{f:?}");
    let s = &m[&slow][0];
    assert!(s.offset_lo.unwrap() <= 3.0 && 3.0 <= s.offset_hi.unwrap(), "{s:?}");
    assert!((0.4..0.6).contains(&s.delay.unwrap()), "{s:?}");
    assert_eq!((m[&kod][0].error.as_deref(), m[&kod][0].offset), (Some("kod:RATE"), None));
    assert_eq!((m[&dead][0].error.as_deref(), m[&dead][0].offset), (Some("refused"), None));
    assert_eq!(fleet.kod.arrivals().len(), 1, "no second query after a KoD");

    // Due times: t_send + the policy's interval for what was seen.
    let sched = schedule(&db);
    let want1 = [
        (&good, 1800.0, "steady"),
        (&far, 600.0, "far_off"),
        (&slow, 1800.0, "steady"),
        (&kod, 7200.0, "kod_rate"),
        (&dead, 1800.0, "unreachable"),
    ];
    for (t, iv, reason) in want1 {
        let s = &sched[&format!("{t} ")];
        assert_eq!((s.interval, s.reason.as_str()), (iv, reason), "{t}");
        assert_close(s.next_due, m[t][0].t_send + iv, t);
    }
    let (kb, ko) = (format!("{pair} {}", caddrs[0]), format!("{pair} {}", caddrs[1]));
    assert_eq!((sched[&kb].interval, sched[&kb].reason.as_str()), (600.0, "far_off"));
    assert_eq!((sched[&ko].interval, sched[&ko].reason.as_str()), (1800.0, "steady"));
    assert_close(sched[&kb].next_due, b.t_send + 600.0, &kb);
    assert_close(sched[&ko].next_due, o.t_send + 1800.0, &ko);
    assert_eq!((sched[&format!("{wb} ")].interval, sched[&format!("{wb} ")].reason.as_str()), (600.0, "far_off"));
    assert_eq!((sched[&format!("{wo} ")].interval, sched[&format!("{wo} ")].reason.as_str()), (1800.0, "steady"));
    assert_eq!(sched[&format!("{dead} ")].failures, 1);
    let ms = &sched[&format!("{missing} ")];
    assert_eq!((ms.interval, ms.reason.as_str(), ms.failures), (1800.0, "unreachable", 1));

    // Tags and addresses.
    let c = Connection::open(&db).unwrap();
    let tags: Vec<(String, String)> = c
        .prepare("SELECT target, tags FROM targets ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        tags,
        vec![
            (good.clone(), "cohort=good".to_string()),
            (far.clone(), "cohort=far".to_string()),
            (slow.clone(), "slow".to_string()),
            (kod.clone(), String::new()),
            (dead.clone(), String::new()),
            (pair.clone(), "cohort=pair".to_string()),
            (wb.clone(), "web".to_string()),
            (wo.clone(), "web".to_string()),
            (missing.clone(), String::new())
        ]
    );
    let n_addr: i64 = c.query_row("SELECT count(*) FROM addresses", [], |r| r.get(0)).unwrap();
    assert_eq!(n_addr, 9);

    // Second run right away: nothing is due, nothing is probed, nothing is added.
    let before: usize = [&fleet.good, &fleet.far, &fleet.slow, &fleet.kod].iter().map(|r| r.arrivals().len()).sum();
    // (nginx and chronyd are not counted here: the run must make no query at all, checked by
    // "probed 0" and by the unchanged rows.)
    let out = run(cmd(&[]));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("survey: probed 0, answered 0, failed 0, "), "{}", text(&out.stdout));
    let after: usize = [&fleet.good, &fleet.far, &fleet.slow, &fleet.kod].iter().map(|r| r.arrivals().len()).sum();
    assert_eq!(after, before);
    assert_eq!(rows(&db), obs);
    assert_eq!(schedule(&db), sched);

    // Third run with --all: every key again; intervals move as the policy says.
    let out = run(cmd(&["--all"]));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("survey: probed 10, answered 7, failed 3, "), "{}", text(&out.stdout));
    let obs2 = rows(&db);
    assert_eq!(obs2.len(), 20);
    assert_eq!(obs2[..10], obs[..], "append-only: the first rows are unchanged");
    let m2 = by_target(&obs2[10..]);
    let sched2 = schedule(&db);
    let want2 = [
        (&good, 3600.0, "steady"),
        (&far, 600.0, "far_off"),
        (&slow, 3600.0, "steady"),
        (&kod, 28800.0, "kod_rate"),
        (&dead, 3600.0, "unreachable"),
    ];
    for (t, iv, reason) in want2 {
        let s = &sched2[&format!("{t} ")];
        assert_eq!((s.interval, s.reason.as_str()), (iv, reason), "{t}");
        assert_close(s.next_due, m2[t][0].t_send + iv, t);
    }
    assert_eq!(sched2[&format!("{dead} ")].failures, 2);
    assert_eq!(sched2[&format!("{missing} ")].interval, 3600.0);
    assert_eq!((sched2[&kb].interval, sched2[&kb].reason.as_str()), (600.0, "far_off"));
    assert_eq!((sched2[&ko].interval, sched2[&ko].reason.as_str()), (3600.0, "steady"));
    assert_eq!(sched2[&format!("{wb} ")].interval, 600.0);
    assert_eq!(sched2[&format!("{wo} ")].interval, 3600.0);
    let runs: Vec<(String, i64)> = c
        .prepare("SELECT status, probed FROM runs ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(runs, vec![("completed".into(), 10), ("completed".into(), 0), ("completed".into(), 10)]);
}

#[test]
fn a_second_concurrent_run_is_refused_by_the_lock() {
    let dir = temp_dir("lock");
    let slow = NtpResponder::start(
        &[sock("127.0.4.11:0"), sock("127.0.4.11:0"), sock("127.0.4.11:0"), sock("127.0.4.11:0")],
        Behaviour::Clock { offset: 0.0, delay: Duration::from_millis(300) },
    );
    let targets: String = slow.addrs.iter().map(|a| format!("ntp://{a}\n")).collect();
    let first = survey_cmd(&dir, &targets, &["--concurrency", "1"]).stdout(Stdio::piped()).spawn().unwrap();
    // Wait until the first run has taken the lock and started probing.
    let start = Instant::now();
    while slow.arrivals().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "first run never probed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = run(survey_cmd(&dir, &targets, &["--concurrency", "1"]));
    assert_eq!(second.status.code(), Some(4), "stdout: {}", text(&second.stdout));
    let err = text(&second.stderr);
    assert!(err.contains("another survey is running") && err.contains("survey.sqlite.lock"), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    assert_eq!(text(&second.stdout), "");
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("survey: probed 4, answered 4, failed 0, "), "{}", text(&out.stdout));
    assert_eq!(slow.arrivals().len(), 4, "only the first run probed");
    let c = Connection::open(dir.join("survey.sqlite")).unwrap();
    let n: i64 = c.query_row("SELECT count(*) FROM runs", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn sigterm_mid_run_keeps_every_completed_probe_and_the_next_run_continues() {
    let dir = temp_dir("sigterm");
    let addrs: Vec<SocketAddr> = (0..10).map(|_| sock("127.0.4.21:0")).collect();
    let slow = NtpResponder::start(&addrs, Behaviour::Clock { offset: 0.0, delay: Duration::from_millis(250) });
    let targets: String = slow.addrs.iter().map(|a| format!("ntp://{a}\n")).collect();
    let child = survey_cmd(&dir, &targets, &["--concurrency", "1"]).stdout(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while slow.arrivals().len() < 4 {
        assert!(start.elapsed() < Duration::from_secs(10), "the run never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("stopped by signal 15"), "{stdout}");
    let probed: usize = stdout.split("probed ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    let replies = slow.replies() as usize;
    let db = dir.join("survey.sqlite");
    let c = Connection::open(&db).unwrap();
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    let stored = rows(&db);
    assert_eq!(stored.len(), probed, "every probe the run reported is stored");
    assert!(
        probed == replies || probed + 1 == replies,
        "stored {probed}, replies sent {replies}: at most the probe in flight at SIGTERM is lost"
    );
    assert!((3..10).contains(&probed), "{probed}");
    let status: String = c.query_row("SELECT status FROM runs", [], |r| r.get(0)).unwrap();
    assert_eq!(status, "interrupted");

    let out = run(survey_cmd(&dir, &targets, &["--concurrency", "4"]));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with(&format!("survey: probed {}, ", 10 - probed)), "{}", text(&out.stdout));
    let all = rows(&db);
    assert_eq!(all.len(), 10);
    let distinct: HashSet<&str> = all.iter().map(|o| o.target.as_str()).collect();
    assert_eq!(distinct.len(), 10, "each target exactly once over the two runs");
}

#[test]
fn the_deadline_stops_cleanly_and_counts_what_is_left() {
    let dir = temp_dir("deadline");
    let addrs: Vec<SocketAddr> = (0..8).map(|_| sock("127.0.4.41:0")).collect();
    let slow = NtpResponder::start(&addrs, Behaviour::Clock { offset: 0.0, delay: Duration::from_millis(300) });
    let targets: String = slow.addrs.iter().map(|a| format!("ntp://{a}\n")).collect();
    let t0 = Instant::now();
    let out = run(survey_cmd(&dir, &targets, &["--concurrency", "1", "--deadline", "1"]));
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let probed: usize = stdout.split("probed ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    assert!(
        stdout.contains(&format!(", {} targets left ({} probes), stopped at the deadline", 8 - probed, 8 - probed)),
        "{stdout}"
    );
    assert_eq!(rows(&dir.join("survey.sqlite")).len(), probed);
    assert!((2..=4).contains(&probed), "{stdout}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn rate_and_per_address_gap_are_never_exceeded_at_the_server() {
    const RATE: f64 = 20.0;
    const GAP: f64 = 0.3;
    // Arrival times are taken by a user-space thread at the receiver: allow for its scheduling
    // jitter and for the sender's between waking up and sending, on a loaded machine.
    const JITTER: f64 = 0.015;
    let dir = temp_dir("rate");
    let mut responders = Vec::new();
    let mut targets = String::new();
    for host in 31..=34 {
        let r = NtpResponder::start(
            &[
                sock(&format!("127.0.4.{host}:0")),
                sock(&format!("127.0.4.{host}:0")),
                sock(&format!("127.0.4.{host}:0")),
            ],
            Behaviour::Clock { offset: 0.0, delay: Duration::ZERO },
        );
        for a in &r.addrs {
            targets.push_str(&format!("ntp://{a}\n"));
        }
        responders.push(r);
    }
    let (rate, gap) = (RATE.to_string(), GAP.to_string());
    let out =
        run(survey_cmd(&dir, &targets, &["--concurrency", "8", "--samples", "2", "--rate", &rate, "--gap", &gap]));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("survey: probed 12, answered 12, failed 0, "), "{}", text(&out.stdout));
    let mut all: Vec<f64> = Vec::new();
    let origin = responders.iter().flat_map(|r| r.arrivals()).map(|a| a.at).min().unwrap();
    for r in &responders {
        let times: Vec<f64> = r.arrivals().iter().map(|a| (a.at - origin).as_secs_f64()).collect();
        assert_eq!(times.len(), 6, "3 targets x 2 samples on {}", r.addr().ip());
        for w in times.windows(2) {
            assert!(w[1] - w[0] >= GAP - JITTER, "gap to {} was {:.4} s", r.addr().ip(), w[1] - w[0]);
        }
        all.extend(times);
    }
    all.sort_by(f64::total_cmp);
    assert_eq!(all.len(), 24);
    for i in 0..all.len() {
        for k in 1..all.len() - i {
            let span = all[i + k] - all[i];
            assert!(span >= k as f64 / RATE - JITTER, "{} queries in {span:.4} s", k + 1);
        }
        let in_one_second = all[i..].iter().take_while(|t| **t < all[i] + 1.0).count();
        assert!(in_one_second as f64 <= RATE + 1.0, "{in_one_second} queries in one second");
    }
    let rows = rows(&dir.join("survey.sqlite"));
    assert!(rows.iter().all(|o| o.samples == Some(2)), "{rows:?}");
}

#[test]
fn shards_split_the_targets_deterministically() {
    let dir = temp_dir("shard");
    // Twelve targets on one address where nothing listens: they fail fast.
    let targets: String = (0..12).map(|i| format!("ntp://127.0.4.51:{}\n", 20000 + i)).collect();
    let mut seen: Vec<HashSet<String>> = Vec::new();
    for shard in ["0/3", "1/3", "2/3"] {
        let d = dir.join(shard.replace('/', "-"));
        std::fs::create_dir_all(&d).unwrap();
        let out = run(survey_cmd(&d, &targets, &["--shard", shard, "--timeout", "0.2"]));
        assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
        let got: HashSet<String> = rows(&d.join("survey.sqlite")).into_iter().map(|o| o.target).collect();
        // The same shard twice takes the same share.
        let again = run(survey_cmd(&d, &targets, &["--shard", shard, "--timeout", "0.2", "--all"]));
        assert_eq!(again.status.code(), Some(0));
        let got2: HashSet<String> = rows(&d.join("survey.sqlite")).into_iter().map(|o| o.target).collect();
        assert_eq!(got, got2);
        seen.push(got);
    }
    let total: usize = seen.iter().map(HashSet::len).sum();
    let union: HashSet<&String> = seen.iter().flatten().collect();
    assert_eq!((total, union.len()), (12, 12), "shares are disjoint and cover every target");
    assert!(seen.iter().all(|s| !s.is_empty()));
}

#[test]
fn bad_targets_file_names_file_and_line() {
    let dir = temp_dir("badfile");
    let out = run(survey_cmd(&dir, "ntp://127.0.0.1:123\n# ok\nftp://x.example\n", &[]));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let file = dir.join("targets.txt");
    assert!(
        err.contains(&format!("{}:3: target \"ftp://x.example\": unknown scheme \"ftp\"", file.display())),
        "{err}"
    );
    assert!(!dir.join("survey.sqlite").exists(), "nothing opened before the file was read");
}

#[test]
fn default_store_lives_under_xdg_data_home() {
    let dir = temp_dir("xdg");
    let file = dir.join("targets.txt");
    std::fs::write(&file, format!("ntp://127.0.4.61:{}\n", dead_port("127.0.4.61"))).unwrap();
    let out = Command::new(BIN)
        .args(["survey", "--samples", "1", "--timeout", "0.5", "--targets"])
        .arg(&file)
        .env("XDG_DATA_HOME", dir.join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let db = dir.join("data/timeaudit/survey.sqlite");
    assert_eq!(rows(&db).len(), 1);
    let c = Connection::open(&db).unwrap();
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!((mode.as_str(), version), ("wal", 1));
}

#[test]
fn export_round_trips_csv_jsonl_and_parquet() {
    let dir = temp_dir("export");
    let fleet = Fleet::start("127.0.5");
    let db = dir.join("survey.sqlite");
    let out = run(survey_cmd(&dir, &fleet.targets(), &[]));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let obs = rows(&db);
    assert_eq!(obs.len(), 5);
    let export = |format: &str, name: &str, extra: &[&str]| {
        let path = dir.join(name);
        let out = Command::new(BIN)
            .args(["export", "--format", format, "--out"])
            .arg(&path)
            .arg("--db")
            .arg(&db)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        path
    };
    let csv_path = export("csv", "o.csv", &[]);
    let csv_text = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(
        csv_text.lines().next().unwrap(),
        "target,address,method,port,t_send,t_recv,offset,offset_lo,offset_hi,delay,stratum,refid,leap,version,poll,\
         precision,root_delay,root_dispersion,reference_time,samples,http_status,date,server,age,redirect,cert_problem,error"
    );
    // Every CSV cell is the stored value, read straight from SQLite (floats compared exactly).
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), obs.len());
    let c = Connection::open(&db).unwrap();
    let cols = header.iter().map(|h| format!("\"{h}\"")).collect::<Vec<_>>().join(", ");
    let mut st = c.prepare(&format!("SELECT {cols} FROM observations ORDER BY id")).unwrap();
    let stored: Vec<Vec<rusqlite::types::Value>> =
        st.query_map([], |r| (0..header.len()).map(|i| r.get(i)).collect()).unwrap().map(Result::unwrap).collect();
    assert_eq!(stored.len(), records.len());
    for (rec, row) in records.iter().zip(&stored) {
        for ((name, cell), v) in header.iter().zip(rec.iter()).zip(row) {
            use rusqlite::types::Value as V;
            match v {
                V::Null => assert_eq!(cell, "", "{name}"),
                V::Integer(i) => assert_eq!(cell, i.to_string(), "{name}"),
                V::Real(f) => assert_eq!(cell.parse::<f64>().unwrap(), *f, "{name}"),
                V::Text(t) => assert_eq!(cell, t, "{name}"),
                V::Blob(_) => panic!("{name}: blob"),
            }
        }
    }
    let back: Vec<Observation> = csv::Reader::from_path(&csv_path).unwrap().deserialize().map(Result::unwrap).collect();
    assert_eq!(back.len(), obs.len(), "the CSV deserialises as observations");

    // --since/--until select on t_send. The bounds are the stored values themselves (read from
    // SQLite: serde_json's default float parsing may be one ulp off).
    let mut sends: Vec<f64> = c
        .prepare("SELECT t_send FROM observations")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    sends.sort_by(f64::total_cmp);
    let since = format!("{}", sends[1]);
    let until = format!("{}", sends[4]);
    let part = export("jsonl", "p.jsonl", &["--since", &since, "--until", &until]);
    let n = std::fs::read_to_string(part).unwrap().lines().count();
    assert_eq!(n, 3);

    let pq = export("parquet", "o.parquet", &[]);
    use polars::prelude::*;
    let df = ParquetReader::new(std::fs::File::open(pq).unwrap()).finish().unwrap();
    assert_eq!(df.height(), 5);
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    assert_eq!(names, csv_text.lines().next().unwrap().split(',').map(String::from).collect::<Vec<_>>());
    let targets: Vec<String> =
        df.column("target").unwrap().str().unwrap().iter().map(|s| s.unwrap().to_string()).collect();
    assert_eq!(targets, obs.iter().map(|o| o.target.clone()).collect::<Vec<_>>());
}

#[test]
fn postgres_store_takes_two_probers_at_once() {
    let pg = Postgres::start("survey");
    let dir = temp_dir("pg");
    let good = NtpResponder::start(
        &(0..6).map(|_| sock("127.0.4.81:0")).collect::<Vec<_>>(),
        Behaviour::Clock { offset: -90.0, delay: Duration::from_millis(100) },
    );
    let targets: String = good.addrs.iter().map(|a| format!("ntp://{a} pg\n")).collect();
    let spawn = |shard: &str| {
        let d = dir.join(shard.replace('/', "-"));
        std::fs::create_dir_all(&d).unwrap();
        let prober = format!("it-{}", shard.replace('/', "-"));
        let mut c =
            survey_cmd(&d, &targets, &["--shard", shard, "--concurrency", "1", "--db", &pg.url, "--prober", &prober]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    };
    let a = spawn("0/2");
    let b = spawn("1/2");
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(oa.status.code(), Some(0), "{}", text(&oa.stderr));
    assert_eq!(ob.status.code(), Some(0), "{}", text(&ob.stderr));
    let probed = |o: &Output| -> usize {
        text(&o.stdout).split("probed ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap()
    };
    assert_eq!(probed(&oa) + probed(&ob), 6);
    assert_eq!(
        pg.psql("SELECT count(*), count(DISTINCT target), min(\"offset\") < -89.9 FROM observations").trim(),
        "6|6|t"
    );
    assert_eq!(pg.psql("SELECT count(*) FROM runs WHERE status = 'completed'").trim(), "2");
    assert_eq!(pg.psql("SELECT max(version) FROM schema_version").trim(), "1");
    assert_eq!(pg.psql("SELECT count(*), min(tags) FROM targets").trim(), "6|pg");
    assert_eq!(pg.psql("SELECT count(*), min(reason), min(interval_s) FROM schedule").trim(), "6|far_off|600");
    let err = Command::new(BIN).args(["export", "--format", "csv", "--out", "-", "--db", &pg.url]).output().unwrap();
    assert!(err.status.success(), "{}", text(&err.stderr));
    let back: Vec<Observation> =
        csv::Reader::from_reader(err.stdout.as_slice()).deserialize().map(Result::unwrap).collect();
    assert_eq!(back.len(), 6);

    // The same columns as the SQLite store.
    let pg_cols = pg.psql(
        "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns \
         WHERE table_name = 'observations'",
    );
    let lite_dir = dir.join("lite");
    std::fs::create_dir_all(&lite_dir).unwrap();
    let out = run(survey_cmd(&lite_dir, "", &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lite = Connection::open(lite_dir.join("survey.sqlite")).unwrap();
    let lite_cols: Vec<String> = lite
        .prepare("SELECT name FROM pragma_table_info('observations') ORDER BY cid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(pg_cols.trim(), lite_cols.join(","));
    // Observations are append-only there too.
    let out = Command::new("psql").args([&pg.url, "-X", "-c", "DELETE FROM observations"]).output().unwrap();
    assert!(!out.status.success() && text(&out.stderr).contains("append-only"), "{}", text(&out.stderr));
}

#[test]
fn sigint_stops_with_status_130_and_the_run_marked_interrupted() {
    let dir = temp_dir("sigint");
    let addrs: Vec<SocketAddr> = (0..6).map(|_| sock("127.0.4.91:0")).collect();
    let slow = NtpResponder::start(&addrs, Behaviour::Clock { offset: 0.0, delay: Duration::from_millis(250) });
    let targets: String = slow.addrs.iter().map(|a| format!("ntp://{a}\n")).collect();
    let child = survey_cmd(&dir, &targets, &["--concurrency", "1"]).stdout(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while slow.arrivals().len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "the run never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(text(&out.stdout).contains("stopped by signal 2"), "{}", text(&out.stdout));
    let c = Connection::open(dir.join("survey.sqlite")).unwrap();
    let (status, probed): (String, i64) =
        c.query_row("SELECT status, probed FROM runs", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    let stored: i64 = c.query_row("SELECT count(*) FROM observations", [], |r| r.get(0)).unwrap();
    assert_eq!((status.as_str(), stored), ("interrupted", probed));
}
