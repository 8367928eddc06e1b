//! Running tshark (and its editcap) as the independent reference decoder of captures.

use std::path::Path;
use std::process::Command;

/// How to install the programs these helpers need.
pub const INSTALL_HINT: &str = "install it with `sudo apt-get install tshark` (or run scripts/install-deps)";

fn require(program: &str) {
    let found = Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "{program} is missing: {INSTALL_HINT}");
}

/// `tshark -r FILE -T fields -e F1 -e F2 ...` split into rows of fields (`|`-separated, several
/// occurrences of one field `,`-separated).
pub fn fields(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    fields_with(file, fields, "occurrence=f")
}

/// Like [`fields`], with every occurrence of a field, `;`-separated.
pub fn fields_all(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    fields_with(file, fields, "aggregator=;")
}

fn fields_with(file: &Path, fields: &[&str], occurrence: &str) -> Vec<Vec<String>> {
    require("tshark");
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(file).args(["-T", "fields", "-E", "separator=|", "-E", occurrence]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("running tshark");
    assert!(out.status.success(), "tshark failed on {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("tshark output is UTF-8")
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

/// Runs editcap with `args` (then input, output).
pub fn editcap(args: &[&str], input: &Path, output: &Path) {
    require("editcap");
    let out = Command::new("editcap").args(args).arg(input).arg(output).output().expect("running editcap");
    assert!(out.status.success(), "editcap {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Parses tshark's absolute time rendering (`Jun 19, 2017 14:12:09.516015118 UTC`) into Unix
/// seconds; `NULL` (the zero NTP timestamp) into `None`.
pub fn parse_time(s: &str) -> Option<f64> {
    if s == "NULL" || s.is_empty() {
        return None;
    }
    let s = s.strip_suffix(" UTC").unwrap_or_else(|| panic!("unexpected time {s:?}"));
    let (mon, rest) = s.split_once(' ').unwrap();
    let (day, rest) = rest.trim_start().split_once(", ").unwrap();
    let (year, clock) = rest.split_once(' ').unwrap();
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let m = months.iter().position(|x| *x == mon).unwrap_or_else(|| panic!("month {mon:?}")) as i64 + 1;
    let (d, y): (i64, i64) = (day.parse().unwrap(), year.parse().unwrap());
    let mut parts = clock.split(':');
    let h: i64 = parts.next().unwrap().parse().unwrap();
    let mi: i64 = parts.next().unwrap().parse().unwrap();
    let sec: f64 = parts.next().unwrap().parse().unwrap();
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60) as f64 + sec)
}
