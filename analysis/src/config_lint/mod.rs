//! Lint of chrony.conf and ntp.conf: parses configuration text (already read by the caller,
//! includes included) and reports weaknesses of the time hierarchy it describes — too few
//! sources, one upstream, an undisciplined local clock, no step or drift file, open access
//! without rate limits or with mode 6 queries — each with file:line, a severity and a fix.

mod parse;

pub use parse::{Directive, Include, IncludeKind, includes, parse};

use crate::severity::Severity;
use serde::Serialize;
use std::fmt;

/// Which daemon's syntax a file is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// chronyd's chrony.conf.
    Chrony,
    /// ntpd's (NTPsec or the reference implementation) ntp.conf.
    Ntpd,
}

impl Dialect {
    /// Guesses the dialect from the file name (`chrony` or `ntp` in it) and else from which
    /// dialect's own directives the text uses more; chrony when undecided.
    pub fn detect(file_name: &str, text: &str) -> Dialect {
        let base = file_name.rsplit('/').next().unwrap_or(file_name).to_ascii_lowercase();
        if base.contains("chrony") || base.ends_with(".sources") {
            return Dialect::Chrony;
        }
        if base.contains("ntp") {
            return Dialect::Ntpd;
        }
        let (mut chrony, mut ntpd) = (0, 0);
        for d in parse(Dialect::Ntpd, file_name, text) {
            let k = d.keyword.as_str();
            if CHRONY_ONLY.contains(&k) {
                chrony += 1;
            }
            if NTPD_ONLY.contains(&k) {
                ntpd += 1;
            }
        }
        if ntpd > chrony { Dialect::Ntpd } else { Dialect::Chrony }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Chrony => "chrony",
            Dialect::Ntpd => "ntpd",
        }
    }
}

const CHRONY_ONLY: &[&str] =
    &["makestep", "local", "allow", "deny", "rtcsync", "confdir", "sourcedir", "maxupdateskew"];
const NTPD_ONLY: &[&str] = &["restrict", "fudge", "tos", "tinker", "statsdir", "filegen", "includefile", "leapfile"];

/// Directives chronyd 4.x accepts (chrony.conf(5)).
const CHRONY_DIRECTIVES: &[&str] = &[
    "acquisitionport",
    "allow",
    "authselectmode",
    "bindacqaddress",
    "bindacqdevice",
    "bindaddress",
    "bindcmdaddress",
    "bindcmddevice",
    "binddevice",
    "broadcast",
    "clientloglimit",
    "clockprecision",
    "cmdallow",
    "cmddeny",
    "cmdport",
    "cmdratelimit",
    "combinelimit",
    "confdir",
    "corrtimeratio",
    "deny",
    "dscp",
    "dumpdir",
    "driftfile",
    "fallbackdrift",
    "hwclockfile",
    "hwtimestamp",
    "include",
    "initstepslew",
    "keyfile",
    "leapsecmode",
    "leapsectz",
    "local",
    "lock_all",
    "log",
    "logbanner",
    "logchange",
    "logdir",
    "mailonchange",
    "makestep",
    "manual",
    "maxchange",
    "maxclockerror",
    "maxdistance",
    "maxdrift",
    "maxjitter",
    "maxntsconnections",
    "maxsamples",
    "maxslewrate",
    "maxupdateskew",
    "minsamples",
    "minsources",
    "noclientlog",
    "nocerttimecheck",
    "nosystemcert",
    "ntpsigndsocket",
    "ntsaeads",
    "ntsdumpdir",
    "ntsntpserver",
    "ntsport",
    "ntsprocesses",
    "ntsratelimit",
    "ntsrefresh",
    "ntsrotate",
    "ntsservercert",
    "ntsserverkey",
    "ntstrustedcerts",
    "peer",
    "pidfile",
    "pool",
    "port",
    "ptpport",
    "ratelimit",
    "refclock",
    "reselectdist",
    "rtcautotrim",
    "rtcdevice",
    "rtcfile",
    "rtconutc",
    "rtcsync",
    "sched_priority",
    "server",
    "smoothtime",
    "sourcedir",
    "stratumweight",
    "tempcomp",
    "user",
    "opencommands",
    "commandkey",
    "generatecommandkey",
    "linux_freq_scale",
    "linux_hz",
];

/// Directives ntpd (NTPsec and ntp 4.2.8) accepts (ntp.conf(5) and its companion pages).
const NTPD_DIRECTIVES: &[&str] = &[
    "server",
    "pool",
    "peer",
    "refclock",
    "broadcast",
    "manycastclient",
    "manycastserver",
    "multicastclient",
    "broadcastclient",
    "broadcastdelay",
    "fudge",
    "restrict",
    "unrestrict",
    "discard",
    "driftfile",
    "leapfile",
    "leapsmearinterval",
    "logfile",
    "logconfig",
    "statsdir",
    "statistics",
    "filegen",
    "includefile",
    "interface",
    "nic",
    "tos",
    "tinker",
    "enable",
    "disable",
    "keys",
    "trustedkey",
    "requestkey",
    "controlkey",
    "crypto",
    "nts",
    "mru",
    "rlimit",
    "setvar",
    "trap",
    "ttl",
    "phone",
    "saveconfigdir",
    "automax",
    "revoke",
    "calldelay",
    "pidfile",
    "mdnstries",
    "device",
    "dscp",
    "reset",
    "keysdir",
    "ident",
    "minsane",
];

/// Thresholds of the lint, as named parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LintParams {
    /// Fewer usable sources than this is a warning: with two, a false ticker cannot be outvoted.
    pub min_sources: usize,
    /// Fewer than this (but at least `min_sources`) is worth an info: one failure leaves too few.
    pub recommended_sources: usize,
    /// How many servers a `pool` line counts for when it has no `maxsources` (chrony's default).
    pub pool_sources: usize,
    /// A local clock below this stratum competes with real sources downstream.
    pub min_local_stratum: u32,
}

impl Default for LintParams {
    fn default() -> Self {
        Self { min_sources: 3, recommended_sources: 4, pool_sources: 4, min_local_stratum: 10 }
    }
}

/// One problem found in a configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigFinding {
    /// How serious.
    pub severity: Severity,
    /// Stable short name of the rule (e.g. `few_sources`).
    pub code: &'static str,
    /// File the evidence is in.
    pub file: String,
    /// Line of the evidence, when one line is to blame (none for "directive missing").
    pub line: Option<usize>,
    /// What is wrong, with the evidence.
    pub message: String,
    /// What to change.
    pub fix: String,
}

impl ConfigFinding {
    /// `file:line` (or `file` when no line is to blame).
    pub fn location(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.file),
            None => self.file.clone(),
        }
    }
}

impl fmt::Display for ConfigFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}: {} (fix: {})", self.location(), self.severity, self.code, self.message, self.fix)
    }
}

/// What kind of time source a directive declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SourceKind {
    Server,
    Pool,
    Peer,
    Refclock,
    /// ntpd's undisciplined local clock driver (127.127.1.u).
    LocalClock,
    /// An ntpd reference-clock address written in chrony.conf, where it means nothing.
    Bogus,
}

#[derive(Clone, Debug)]
struct Source<'a> {
    directive: &'a Directive,
    kind: SourceKind,
    host: String,
    /// How many servers it stands for when usable.
    weight: usize,
    usable: bool,
}

impl Source<'_> {
    fn is_network(&self) -> bool {
        matches!(self.kind, SourceKind::Server | SourceKind::Pool | SourceKind::Peer)
    }
}

/// Lints one configuration: `directives` from the main file and everything it includes, in
/// reading order (see [`parse`] and [`includes`]). `main_file` names the file for findings
/// about something missing.
pub fn lint(dialect: Dialect, main_file: &str, directives: &[Directive], params: &LintParams) -> Vec<ConfigFinding> {
    let mut out = Vec::new();
    let known = match dialect {
        Dialect::Chrony => CHRONY_DIRECTIVES,
        Dialect::Ntpd => NTPD_DIRECTIVES,
    };
    for d in directives {
        if !known.contains(&d.keyword.as_str()) {
            out.push(finding(
                Severity::Info,
                "unknown_directive",
                d,
                format!("`{}` is not a {} directive; kept and ignored by this lint", d.keyword, dialect.as_str()),
                "check the spelling against the daemon's manual page".into(),
            ));
        }
    }
    let sources = sources(dialect, directives, params);
    for s in sources.iter().filter(|s| s.kind == SourceKind::Bogus) {
        out.push(finding(
            Severity::Warning,
            "ntpd_refclock_address",
            s.directive,
            format!(
                "{} is an ntpd reference-clock address; chronyd polls it as an ordinary server that does not exist",
                s.host
            ),
            "remove it; for a last-resort local clock use `local stratum 10 orphan`".into(),
        ));
    }
    // One upstream named several times is reported as such rather than as too few sources.
    if !check_single_upstream(&sources, &mut out) {
        check_source_count(main_file, &sources, params, &mut out);
    }
    check_prefer(&sources, &mut out);
    check_local_clock(dialect, directives, &sources, params, &mut out);
    check_required(dialect, main_file, directives, &mut out);
    match dialect {
        Dialect::Chrony => check_chrony_allow(directives, &mut out),
        Dialect::Ntpd => check_ntpd_restrict(main_file, directives, &mut out),
    }
    out
}

/// Lints several configurations together (e.g. the masters of one fleet): when every one of them
/// takes its time from the same single upstream host, that host is a single point of failure for
/// all of them, which no file shows on its own. Each item: (main file, dialect, directives).
pub fn lint_fleet(configs: &[(&str, Dialect, &[Directive])], params: &LintParams) -> Vec<ConfigFinding> {
    if configs.len() < 2 {
        return Vec::new();
    }
    let mut common: Option<String> = None;
    for (_, dialect, directives) in configs {
        let hosts: std::collections::BTreeSet<String> = sources(*dialect, directives, params)
            .into_iter()
            .filter(|s| s.usable && s.is_network() && s.kind != SourceKind::Pool)
            .map(|s| s.host)
            .collect();
        if hosts.len() != 1 || sources(*dialect, directives, params).iter().any(|s| s.usable && !s.is_network()) {
            return Vec::new();
        }
        let host = hosts.into_iter().next().unwrap_or_default();
        match &common {
            None => common = Some(host),
            Some(c) if *c == host => {}
            Some(_) => return Vec::new(),
        }
    }
    let host = common.unwrap_or_default();
    let files: Vec<&str> = configs.iter().map(|(f, _, _)| *f).collect();
    vec![ConfigFinding {
        severity: Severity::Warning,
        code: "fleet_single_upstream",
        file: files.join(", "),
        line: None,
        message: format!("all {} configurations take their time from the one upstream {host}", configs.len()),
        fix: "give each server independent sources (several upstreams, or peers among the servers)".into(),
    }]
}

/// Parses `text` as one file and lints it (no includes followed).
pub fn lint_text(dialect: Dialect, file: &str, text: &str, params: &LintParams) -> Vec<ConfigFinding> {
    lint(dialect, file, &parse(dialect, file, text), params)
}

fn finding(severity: Severity, code: &'static str, d: &Directive, message: String, fix: String) -> ConfigFinding {
    ConfigFinding { severity, code, file: d.file.clone(), line: Some(d.line), message, fix }
}

fn file_finding(severity: Severity, code: &'static str, file: &str, message: String, fix: String) -> ConfigFinding {
    ConfigFinding { severity, code, file: file.to_string(), line: None, message, fix }
}

/// The host argument of a source directive (skipping ntpd's `-4`/`-6` flags).
fn host_arg(d: &Directive) -> Option<&str> {
    d.args.iter().map(String::as_str).find(|a| *a != "-4" && *a != "-6")
}

fn sources<'a>(dialect: Dialect, directives: &'a [Directive], params: &LintParams) -> Vec<Source<'a>> {
    let mut out = Vec::new();
    for d in directives {
        let kind = match d.keyword.as_str() {
            "server" => SourceKind::Server,
            "pool" => SourceKind::Pool,
            "peer" => SourceKind::Peer,
            "refclock" => SourceKind::Refclock,
            _ => continue,
        };
        let Some(host) = host_arg(d) else { continue };
        let host = host.to_ascii_lowercase();
        let kind = match (dialect, kind, host.strip_prefix("127.127.")) {
            (Dialect::Ntpd, SourceKind::Server | SourceKind::Peer, Some(rest)) => {
                if rest.starts_with("1.") {
                    SourceKind::LocalClock
                } else {
                    SourceKind::Refclock
                }
            }
            (Dialect::Chrony, _, Some(_)) => SourceKind::Bogus,
            (Dialect::Ntpd, SourceKind::Refclock, _) if host == "local" => SourceKind::LocalClock,
            (_, k, _) => k,
        };
        let weight = match kind {
            SourceKind::Pool => d.arg_after("maxsources").and_then(|v| v.parse().ok()).unwrap_or(params.pool_sources),
            _ => 1,
        };
        let usable = matches!(kind, SourceKind::Server | SourceKind::Pool | SourceKind::Peer | SourceKind::Refclock)
            && !d.has_arg("noselect");
        out.push(Source { directive: d, kind, host, weight, usable });
    }
    out
}

fn check_source_count(main_file: &str, sources: &[Source<'_>], params: &LintParams, out: &mut Vec<ConfigFinding>) {
    let mut usable: Vec<&Source<'_>> = sources.iter().filter(|s| s.usable).collect();
    // The same upstream written twice is one source.
    let mut seen = std::collections::HashSet::new();
    usable.retain(|s| seen.insert(s.host.clone()));
    let count: usize = usable.iter().map(|s| s.weight).sum();
    let names: Vec<&str> = usable.iter().map(|s| s.host.as_str()).collect();
    let (severity, message) = if count == 0 {
        (Severity::Critical, "no usable time source: the clock runs free".to_string())
    } else if count < params.min_sources {
        (
            Severity::Warning,
            format!(
                "only {count} usable source{} ({}): a single failure or false ticker cannot be outvoted",
                if count == 1 { "" } else { "s" },
                names.join(", ")
            ),
        )
    } else if count < params.recommended_sources {
        (
            Severity::Info,
            format!(
                "{count} usable sources ({}): after one failure too few remain to outvote a false ticker",
                names.join(", ")
            ),
        )
    } else {
        return;
    };
    let fix = format!(
        "configure at least {} independent sources (servers on different upstreams, or a pool)",
        params.recommended_sources
    );
    out.push(match usable.first().copied().or(sources.first()) {
        Some(s) => finding(severity, "few_sources", s.directive, message, fix),
        None => file_finding(severity, "few_sources", main_file, message, fix),
    });
}

/// Reports sources that all name one upstream; returns whether it did.
fn check_single_upstream(sources: &[Source<'_>], out: &mut Vec<ConfigFinding>) -> bool {
    let net: Vec<&Source<'_>> = sources.iter().filter(|s| s.usable && s.is_network()).collect();
    if net.len() < 2
        || net.len() != sources.iter().filter(|s| s.usable).count()
        || net.iter().any(|s| s.kind == SourceKind::Pool)
    {
        return false;
    }
    let first = &net[0].host;
    if net.iter().all(|s| &s.host == first) {
        out.push(finding(
            Severity::Warning,
            "single_upstream",
            net[0].directive,
            format!("all {} sources name the same upstream {first}", net.len()),
            "add sources on other upstreams so that one server's failure is survivable".into(),
        ));
        return true;
    }
    false
}

fn check_prefer(sources: &[Source<'_>], out: &mut Vec<ConfigFinding>) {
    let usable: Vec<&Source<'_>> = sources.iter().filter(|s| s.usable).collect();
    if usable.len() >= 2 && usable.iter().all(|s| s.directive.has_arg("prefer")) {
        out.push(finding(
            Severity::Warning,
            "prefer_everywhere",
            usable[0].directive,
            format!("all {} sources carry `prefer`, so none is preferred", usable.len()),
            "keep `prefer` on at most one source (or none)".into(),
        ));
    }
}

fn check_local_clock(
    dialect: Dialect,
    directives: &[Directive],
    sources: &[Source<'_>],
    params: &LintParams,
    out: &mut Vec<ConfigFinding>,
) {
    match dialect {
        Dialect::Chrony => {
            for d in directives.iter().filter(|d| d.keyword == "local") {
                let stratum_text = d.arg_after("stratum");
                let stratum = match stratum_text.map(str::parse::<u32>) {
                    None => 10,
                    Some(Ok(s)) => s,
                    Some(Err(_)) => {
                        out.push(finding(
                            Severity::Warning,
                            "bad_argument",
                            d,
                            format!("`local stratum {}` is not a number", stratum_text.unwrap_or("")),
                            "write `local stratum 10 orphan`".into(),
                        ));
                        continue;
                    }
                };
                if !d.has_arg("orphan") || stratum < params.min_local_stratum {
                    out.push(local_finding(d, stratum, !d.has_arg("orphan"), params));
                }
            }
        }
        Dialect::Ntpd => {
            let orphan = directives.iter().any(|d| d.keyword == "tos" && d.has_arg("orphan"));
            for s in sources.iter().filter(|s| s.kind == SourceKind::LocalClock) {
                let stratum = directives
                    .iter()
                    .filter(|d| d.keyword == "fudge" && d.args.first().is_some_and(|h| h.eq_ignore_ascii_case(&s.host)))
                    .find_map(|d| d.arg_after("stratum").and_then(|v| v.parse().ok()))
                    .unwrap_or(5); // ntpd's local clock driver defaults to stratum 5 (fudge stratum changes it)
                if !orphan || stratum < params.min_local_stratum {
                    out.push(local_finding(s.directive, stratum, !orphan, params));
                }
            }
        }
    }
}

fn local_finding(d: &Directive, stratum: u32, no_orphan: bool, params: &LintParams) -> ConfigFinding {
    let mut why = Vec::new();
    if no_orphan {
        why.push("without orphan-style safeguards".to_string());
    }
    if stratum < params.min_local_stratum {
        why.push(format!("at stratum {stratum} (below {})", params.min_local_stratum));
    }
    finding(
        Severity::Warning,
        "local_clock",
        d,
        format!(
            "undisciplined local clock as a source {}: when the upstreams fail this server keeps serving its free-running clock and clients cannot tell",
            why.join(" and ")
        ),
        "use orphan mode (chrony: `local stratum 10 orphan`; ntpd: `tos orphan 10` instead of 127.127.1.0) on several servers that peer with each other".into(),
    )
}

fn check_required(dialect: Dialect, main_file: &str, directives: &[Directive], out: &mut Vec<ConfigFinding>) {
    let has = |k: &str| directives.iter().any(|d| d.keyword == k);
    if dialect == Dialect::Chrony && !has("makestep") {
        out.push(file_finding(
            Severity::Warning,
            "no_makestep",
            main_file,
            "no `makestep`: a clock that starts far off is slewed for hours or days instead of stepped".into(),
            "add `makestep 1 3` (step at most in the first three updates when off by more than 1 s)".into(),
        ));
    }
    if !has("driftfile") {
        let fix = match dialect {
            Dialect::Chrony => "add `driftfile /var/lib/chrony/chrony.drift`",
            Dialect::Ntpd => "add `driftfile /var/lib/ntpsec/ntp.drift`",
        };
        out.push(file_finding(
            Severity::Warning,
            "no_driftfile",
            main_file,
            "no `driftfile`: the frequency error is relearned after every restart".into(),
            fix.into(),
        ));
    }
}

fn check_chrony_allow(directives: &[Directive], out: &mut Vec<ConfigFinding>) {
    let ratelimit = directives.iter().any(|d| d.keyword == "ratelimit");
    if ratelimit {
        return;
    }
    for d in directives.iter().filter(|d| d.keyword == "allow") {
        let subnets: Vec<&str> = d.args.iter().map(String::as_str).filter(|a| !a.eq_ignore_ascii_case("all")).collect();
        let world = subnets.is_empty() || subnets.iter().any(|s| matches!(*s, "0/0" | "0.0.0.0/0" | "::/0" | "0"));
        if world {
            out.push(finding(
                Severity::Warning,
                "open_allow_no_ratelimit",
                d,
                "NTP service open to every address with no `ratelimit`: the server can be used for traffic amplification and abuse".into(),
                "add `ratelimit interval 3 burst 8` (or restrict `allow` to your own networks)".into(),
            ));
        }
    }
}

/// Whether an ntpd `restrict` line applies to the default entry (every address).
fn is_restrict_default(d: &Directive) -> bool {
    let args: Vec<&str> = d.args.iter().map(String::as_str).filter(|a| *a != "-4" && *a != "-6").collect();
    match args.first() {
        Some(&"default") => true,
        Some(&"0.0.0.0") | Some(&"::") => {
            args.get(1) == Some(&"mask") && matches!(args.get(2), Some(&"0.0.0.0") | Some(&"::"))
        }
        _ => false,
    }
}

fn check_ntpd_restrict(main_file: &str, directives: &[Directive], out: &mut Vec<ConfigFinding>) {
    let defaults: Vec<&Directive> =
        directives.iter().filter(|d| d.keyword == "restrict" && is_restrict_default(d)).collect();
    if defaults.is_empty() {
        out.push(file_finding(
            Severity::Warning,
            "no_restrict_default",
            main_file,
            "no `restrict default`: every address may query mode 6 state and nothing is rate limited".into(),
            "add `restrict default kod nomodify nopeer noquery limited`".into(),
        ));
        return;
    }
    for d in defaults {
        if d.has_arg("ignore") {
            continue;
        }
        if !d.has_arg("noquery") {
            out.push(finding(
                Severity::Warning,
                "restrict_default_query",
                d,
                "`restrict default` without `noquery`: anyone can read this server's state with mode 6 (ntpq) queries"
                    .into(),
                "add `noquery` to the default restriction".into(),
            ));
        }
        if !(d.has_arg("limited") && d.has_arg("kod")) {
            let missing: Vec<&str> = ["limited", "kod"].into_iter().filter(|w| !d.has_arg(w)).collect();
            out.push(finding(
                Severity::Warning,
                "restrict_default_no_limit",
                d,
                format!("`restrict default` without `{}`: clients polling too fast are neither limited nor told to back off", missing.join("`, `")),
                "add `limited kod` to the default restriction".into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests;
