//! Lint tests on real-world configurations (Debian's defaults, the seeds' configurations; see
//! tests/fixtures/config/README.md) and on literals exercising each rule.

use super::*;

/// (location, severity, code) of each finding, in order.
fn summary(findings: &[ConfigFinding]) -> Vec<(String, Severity, &'static str)> {
    findings.iter().map(|f| (f.location(), f.severity, f.code)).collect()
}

fn lint_fixture(name: &str, text: &str) -> Vec<(String, Severity, &'static str)> {
    let dialect = Dialect::detect(name, text);
    summary(&lint_text(dialect, name, text, &LintParams::default()))
}

fn s(loc: &str, sev: Severity, code: &'static str) -> (String, Severity, &'static str) {
    (loc.to_string(), sev, code)
}

#[test]
fn debian_chrony_default_is_clean() {
    let text = include_str!("../../../tests/fixtures/config/debian-chrony.conf");
    assert_eq!(Dialect::detect("debian-chrony.conf", text), Dialect::Chrony);
    assert_eq!(lint_fixture("debian-chrony.conf", text), vec![]);
    let d = parse(Dialect::Chrony, "debian-chrony.conf", text);
    let inc: Vec<_> = includes(Dialect::Chrony, &d).into_iter().map(|i| (i.line, i.kind, i.target)).collect();
    assert_eq!(
        inc,
        vec![
            (5, IncludeKind::ConfDir, "/etc/chrony/conf.d".to_string()),
            (11, IncludeKind::SourceDir, "/run/chrony-dhcp".to_string()),
            (14, IncludeKind::SourceDir, "/etc/chrony/sources.d".to_string()),
        ]
    );
}

#[test]
fn debian_ntpsec_default_is_clean() {
    let text = include_str!("../../../tests/fixtures/config/debian-ntpsec-ntp.conf");
    assert_eq!(Dialect::detect("debian-ntpsec-ntp.conf", text), Dialect::Ntpd);
    assert_eq!(lint_fixture("debian-ntpsec-ntp.conf", text), vec![]);
}

#[test]
fn seed000_master_config() {
    let text = include_str!("../../../tests/fixtures/config/seed000-master.chrony.conf");
    let f = "seed000-master.chrony.conf";
    assert_eq!(
        lint_fixture(f, text),
        vec![
            s(&format!("{f}:5"), Severity::Warning, "ntpd_refclock_address"),
            s(&format!("{f}:4"), Severity::Warning, "few_sources"),
            s(f, Severity::Warning, "no_makestep"),
            s(f, Severity::Warning, "no_driftfile"),
        ]
    );
    let all = lint_text(Dialect::Chrony, f, text, &LintParams::default());
    assert_eq!(
        all[1].message,
        "only 1 usable source (ntp-server): a single failure or false ticker cannot be outvoted"
    );
}

#[test]
fn seed000_host_config() {
    let text = include_str!("../../../tests/fixtures/config/seed000-host.chrony.conf");
    let f = "seed000-host.chrony.conf";
    assert_eq!(
        lint_fixture(f, text),
        vec![
            s(&format!("{f}:2"), Severity::Warning, "few_sources"),
            s(f, Severity::Warning, "no_makestep"),
            s(f, Severity::Warning, "no_driftfile"),
        ]
    );
}

#[test]
fn seed002_stratum2_plan_is_clean() {
    let text = include_str!("../../../tests/fixtures/config/seed002-stratum2.ntp.conf");
    assert_eq!(lint_fixture("seed002-stratum2.ntp.conf", text), vec![]);
}

#[test]
fn seed002_stratum1_plan_leaves_queries_and_rate_open() {
    let text = include_str!("../../../tests/fixtures/config/seed002-stratum1.ntp.conf");
    let f = "seed002-stratum1.ntp.conf";
    assert_eq!(
        lint_fixture(f, text),
        vec![
            s(&format!("{f}:12"), Severity::Warning, "restrict_default_query"),
            s(&format!("{f}:12"), Severity::Warning, "restrict_default_no_limit"),
        ]
    );
    let all = lint_text(Dialect::Ntpd, f, text, &LintParams::default());
    assert_eq!(
        all[1].message,
        "`restrict default` without `limited`, `kod`: clients polling too fast are neither limited nor told to back off"
    );
}

#[test]
fn chrony_rules_on_literals() {
    let text = "\
server a.example prefer iburst
server a.example prefer
server a.example prefer
local stratum 3
allow
allow 10.0.0.0/8
makestep 1 3
driftfile /d
frobnicate yes
";
    assert_eq!(
        summary(&lint_text(Dialect::Chrony, "c.conf", text, &LintParams::default())),
        vec![
            s("c.conf:9", Severity::Info, "unknown_directive"),
            s("c.conf:1", Severity::Warning, "single_upstream"),
            s("c.conf:1", Severity::Warning, "prefer_everywhere"),
            s("c.conf:4", Severity::Warning, "local_clock"),
            s("c.conf:5", Severity::Warning, "open_allow_no_ratelimit"),
        ]
    );
    // With orphan, a high stratum and a rate limit, those go away; three sources is an info.
    let text = "\
server a.example
server b.example
server c.example
local stratum 10 orphan
allow 0/0
ratelimit interval 3 burst 8
makestep 1 3
driftfile /d
";
    assert_eq!(
        summary(&lint_text(Dialect::Chrony, "c.conf", text, &LintParams::default())),
        vec![s("c.conf:1", Severity::Info, "few_sources")]
    );
}

#[test]
fn ntpd_rules_on_literals() {
    let text = "\
server 127.127.1.0
fudge 127.127.1.0 stratum 10
server x.example noselect
driftfile /d
restrict -4 default kod nomodify noquery limited
";
    let f = lint_text(Dialect::Ntpd, "n.conf", text, &LintParams::default());
    assert_eq!(
        summary(&f),
        vec![s("n.conf:1", Severity::Critical, "few_sources"), s("n.conf:1", Severity::Warning, "local_clock")]
    );
    assert_eq!(f[0].message, "no usable time source: the clock runs free");
    // `tos orphan` with a stratum ≥ 10 is the safeguard; no restrict default at all is flagged.
    let text = "server 127.127.1.0\nfudge 127.127.1.0 stratum 10\ntos orphan 10\npool p.example\ndriftfile /d\n";
    assert_eq!(
        summary(&lint_text(Dialect::Ntpd, "n.conf", text, &LintParams::default())),
        vec![s("n.conf", Severity::Warning, "no_restrict_default")]
    );
}

#[test]
fn garbage_never_panics_and_is_reported() {
    let text = "\u{0}\u{1}\nlocal stratum banana\nserver\npool\n\t\t\nallow all\n=== ===\n";
    let f = lint_text(Dialect::Chrony, "g.conf", text, &LintParams::default());
    assert_eq!(
        summary(&f),
        vec![
            s("g.conf:1", Severity::Info, "unknown_directive"),
            s("g.conf:7", Severity::Info, "unknown_directive"),
            s("g.conf", Severity::Critical, "few_sources"),
            s("g.conf:2", Severity::Warning, "bad_argument"),
            s("g.conf", Severity::Warning, "no_makestep"),
            s("g.conf", Severity::Warning, "no_driftfile"),
            s("g.conf:6", Severity::Warning, "open_allow_no_ratelimit"),
        ]
    );
}

#[test]
fn random_bytes_never_panic() {
    // Deterministic xorshift over bytes biased towards configuration syntax.
    let alphabet = b"server pool peer local stratum orphan allow restrict default noquery limited kod \
                     127.127.1.0 0/0 ::/0 prefer makestep driftfile include confdir # ! ; \" = \n\n\t\x00\xff";
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..2000 {
        let len = (round % 300) + 1;
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push(alphabet[(x % alphabet.len() as u64) as usize]);
        }
        let text = String::from_utf8_lossy(&bytes);
        for dialect in [Dialect::Chrony, Dialect::Ntpd] {
            let d = parse(dialect, "r.conf", &text);
            let _ = includes(dialect, &d);
            let _ = lint(dialect, "r.conf", &d, &LintParams::default());
        }
        let _ = Dialect::detect("r.conf", &text);
    }
}

#[test]
fn seed000_masters_share_one_upstream() {
    let master = include_str!("../../../tests/fixtures/config/seed000-master.chrony.conf");
    let host = include_str!("../../../tests/fixtures/config/seed000-host.chrony.conf");
    let m1 = parse(Dialect::Chrony, "master-1.conf", master);
    let m2 = parse(Dialect::Chrony, "master-2.conf", master);
    let h = parse(Dialect::Chrony, "host.conf", host);
    let p = LintParams::default();
    let f = lint_fleet(&[("master-1.conf", Dialect::Chrony, &m1), ("master-2.conf", Dialect::Chrony, &m2)], &p);
    assert_eq!(summary(&f), vec![s("master-1.conf, master-2.conf", Severity::Warning, "fleet_single_upstream")]);
    assert_eq!(f[0].message, "all 2 configurations take their time from the one upstream ntp-server");
    // With the hosts' configuration (two masters) there is no common single upstream.
    let all = [
        ("master-1.conf", Dialect::Chrony, &m1[..]),
        ("master-2.conf", Dialect::Chrony, &m2[..]),
        ("host.conf", Dialect::Chrony, &h[..]),
    ];
    assert_eq!(lint_fleet(&all, &p), vec![]);
    assert_eq!(lint_fleet(&all[..1], &p), vec![]);
}
