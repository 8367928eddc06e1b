//! Survey target lists: parses the text of a targets file (one target per line, `#` comments,
//! optional tags after the target) and splits a list deterministically into shards. Pure: the
//! caller reads the file and passes its name and text.

use crate::observation::Method;
use crate::target::Target;
use std::collections::HashMap;
use std::fmt;

/// A target file problem, naming the file and the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct TargetsFileError {
    /// The file name as given by the caller.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// One line of a targets file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetLine {
    /// 1-based line number in the file.
    pub line: usize,
    /// The parsed target (bare names and addresses get every method).
    pub target: Target,
    /// Tags written after the target (e.g. a cohort), in order.
    pub tags: Vec<String>,
}

/// Parses a whole targets file. `file` is only used in error messages.
pub fn parse_targets_file(file: &str, text: &str) -> Result<Vec<TargetLine>, TargetsFileError> {
    let mut out: Vec<TargetLine> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let err = |message: String| TargetsFileError { file: file.to_string(), line, message };
        let content = strip_comment(raw);
        let mut words = content.split_whitespace();
        let Some(first) = words.next() else { continue };
        let target = Target::parse(first, &Method::ALL).map_err(|e| err(e.to_string()))?;
        let mut tags = Vec::new();
        for tag in words {
            if let Some(bad) = tag.chars().find(|c| !is_tag_char(*c)) {
                return Err(err(format!("tag {tag:?} contains {bad:?} (tags use letters, digits and _ - . : = /)")));
            }
            tags.push(tag.to_string());
        }
        if let Some(first_line) = seen.insert(target.raw.clone(), line) {
            return Err(err(format!("duplicate target {:?} (first at line {first_line})", target.raw)));
        }
        out.push(TargetLine { line, target, tags });
    }
    Ok(out)
}

fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '=' | '/')
}

/// Removes a `#` comment: one at the start of the line or after whitespace.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

/// A share of a survey: shard `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which share, `0..count`.
    pub index: u32,
    /// How many shares.
    pub count: u32,
}

impl Shard {
    /// Parses `I/N` with `0 <= I < N`.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("bad shard {s:?} (expected I/N, e.g. 0/4)"))?;
        let index: u32 = i.trim().parse().map_err(|_| format!("bad shard index {i:?} in {s:?}"))?;
        let count: u32 = n.trim().parse().map_err(|_| format!("bad shard count {n:?} in {s:?}"))?;
        if count == 0 || index >= count {
            return Err(format!("bad shard {s:?}: need 0 <= I < N"));
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard owns `target` (FNV-1a 64 of the target text, modulo the count): the
    /// same on every machine and release, independent of the file's order.
    pub fn owns(&self, target: &str) -> bool {
        fnv1a64(target.as_bytes()) % u64::from(self.count) == u64::from(self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a, 64-bit: a stable hash (std's hashers are randomised or unspecified).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Host;

    #[test]
    fn parses_every_form_with_comments_and_tags() {
        let text = "# header\n\nntp://127.0.0.2:11123 cohort=a lab\nexample.org\n  https://www.example.org/x?y=1 # c\n\
                    http://[::1]:8080/\n192.0.2.7\n2001:db8::1 v6\n[2001:db8::2]\n";
        let got = parse_targets_file("t.txt", text).unwrap();
        assert_eq!(got.len(), 7);
        assert_eq!(got[0].line, 3);
        assert_eq!(got[0].target.host, Host::Ip("127.0.0.2".parse().unwrap()));
        assert_eq!(got[0].target.port, Some(11123));
        assert_eq!(got[0].target.methods, vec![Method::Ntp]);
        assert_eq!(got[0].tags, vec!["cohort=a", "lab"]);
        assert_eq!(got[1].target.methods, Method::ALL.to_vec());
        assert_eq!(got[1].target.host, Host::Name("example.org".into()));
        assert_eq!(got[2].target.path.as_deref(), Some("/x?y=1"));
        assert_eq!(got[2].line, 5);
        assert!(got[2].tags.is_empty());
        assert_eq!(got[3].target.host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(got[3].target.port, Some(8080));
        assert_eq!(got[4].target.host.ip(), Some("192.0.2.7".parse().unwrap()));
        assert_eq!(got[5].target.host, Host::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(got[5].tags, vec!["v6"]);
        assert_eq!(got[6].target.raw, "[2001:db8::2]");
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            ("ok.example\nftp://x.example\n", "list.txt:2: target \"ftp://x.example\": unknown scheme \"ftp\""),
            ("ntp://h.example:0\n", "list.txt:1: target \"ntp://h.example:0\": bad port \"0\""),
            ("a.example\n\na.example\n", "list.txt:3: duplicate target \"a.example\" (first at line 1)"),
            ("a.example tag,x\n", "list.txt:1: tag \"tag,x\" contains ','"),
            ("ntp://h.example/x\n", "list.txt:1: target \"ntp://h.example/x\": ntp:// targets take no path"),
        ];
        for (text, want) in cases {
            let got = parse_targets_file("list.txt", text).unwrap_err().to_string();
            assert!(got.starts_with(want), "{text:?}: got {got:?}, want prefix {want:?}");
        }
    }

    #[test]
    fn hash_inside_a_word_is_not_a_comment() {
        let got = parse_targets_file("t", "https://h.example/a#frag tag # comment\n").unwrap();
        assert_eq!(got[0].target.raw, "https://h.example/a#frag");
        assert_eq!(got[0].tags, vec!["tag"]);
    }

    #[test]
    fn shards_partition_the_targets() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let names: Vec<String> = (0..1000).map(|i| format!("host{i}.example")).collect();
        let shards: Vec<Shard> = (0..4).map(|i| Shard { index: i, count: 4 }).collect();
        let mut total = 0;
        for name in &names {
            let owners = shards.iter().filter(|s| s.owns(name)).count();
            assert_eq!(owners, 1);
            total += owners;
        }
        assert_eq!(total, 1000);
        let share0 = names.iter().filter(|n| shards[0].owns(n)).count();
        assert!((200..300).contains(&share0), "shard 0 got {share0}");
        assert_eq!(Shard::parse("1/4").unwrap(), Shard { index: 1, count: 4 });
        assert!(Shard::parse("4/4").is_err());
        assert!(Shard::parse("0/0").is_err());
        assert!(Shard::parse("x").is_err());
    }

    #[test]
    fn shipped_target_lists_parse() {
        let lists = [
            ("loopback.txt", include_str!("../../datasets/targets/loopback.txt"), 4),
            ("ntp-servers.txt", include_str!("../../datasets/targets/ntp-servers.txt"), 3),
            ("pool.txt", include_str!("../../datasets/targets/pool.txt"), 4),
            ("web-sites.txt", include_str!("../../datasets/targets/web-sites.txt"), 4),
        ];
        for (name, text, n) in lists {
            let got = parse_targets_file(name, text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got.len(), n, "{name}");
        }
        let lo = parse_targets_file("loopback.txt", lists[0].1).unwrap();
        assert!(lo.iter().all(|l| l.target.host.ip().is_some_and(|ip| ip.is_loopback())));
    }
}
