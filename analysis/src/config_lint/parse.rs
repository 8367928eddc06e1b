//! Line parser shared by the chrony.conf and ntp.conf dialects: comments, keywords, arguments,
//! and the include-like directives that a loader must follow. Never fails: every non-comment
//! line becomes a [`Directive`], known or not.

use super::Dialect;
use serde::Serialize;

/// One configuration line: keyword (lowercased) and its whitespace-separated arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Directive {
    /// The file it came from, as the caller named it.
    pub file: String,
    /// 1-based line number in that file.
    pub line: usize,
    /// The directive keyword, lowercased.
    pub keyword: String,
    /// Its arguments as written.
    pub args: Vec<String>,
}

impl Directive {
    /// Whether an argument equals `word` (case-insensitive), e.g. an option like `prefer`.
    pub fn has_arg(&self, word: &str) -> bool {
        self.args.iter().any(|a| a.eq_ignore_ascii_case(word))
    }

    /// The argument following `word`, e.g. `stratum` in `local stratum 10`.
    pub fn arg_after(&self, word: &str) -> Option<&str> {
        let i = self.args.iter().position(|a| a.eq_ignore_ascii_case(word))?;
        self.args.get(i + 1).map(String::as_str)
    }

    /// `file:line` for messages.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// Parses the text of one configuration file. `file` names it in every directive.
pub fn parse(dialect: Dialect, file: &str, text: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        // chrony: a line starting with !, ;, # or % is a comment; ntpd: # starts a comment anywhere.
        if dialect == Dialect::Chrony && trimmed.starts_with(['!', ';', '#', '%']) {
            continue;
        }
        let body = match trimmed.find('#') {
            Some(pos) => &trimmed[..pos],
            None => trimmed,
        };
        let mut words = body.split_whitespace();
        let Some(keyword) = words.next() else { continue };
        out.push(Directive {
            file: file.to_string(),
            line: i + 1,
            keyword: keyword.to_ascii_lowercase(),
            args: words.map(str::to_string).collect(),
        });
    }
    out
}

/// What an include-like directive asks the loader to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncludeKind {
    /// A file, or (chrony `include`) a glob pattern of files.
    File,
    /// A directory whose `*.conf` files are read in name order (chrony `confdir`; several
    /// directories: the first file of each name wins).
    ConfDir,
    /// A directory whose `*.sources` files hold only source directives (chrony `sourcedir`).
    SourceDir,
}

/// One include-like directive to follow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Include {
    /// Where it was written.
    pub file: String,
    /// Line number.
    pub line: usize,
    /// What to read.
    pub kind: IncludeKind,
    /// Path, pattern or directory as written.
    pub target: String,
}

/// The include-like directives of `directives`: chrony `include`, `confdir`, `sourcedir`;
/// ntpd `includefile`.
pub fn includes(dialect: Dialect, directives: &[Directive]) -> Vec<Include> {
    let mut out = Vec::new();
    for d in directives {
        let kind = match (dialect, d.keyword.as_str()) {
            (Dialect::Chrony, "include") => IncludeKind::File,
            (Dialect::Chrony, "confdir") => IncludeKind::ConfDir,
            (Dialect::Chrony, "sourcedir") => IncludeKind::SourceDir,
            (Dialect::Ntpd, "includefile") => IncludeKind::File,
            _ => continue,
        };
        for target in &d.args {
            out.push(Include { file: d.file.clone(), line: d.line, kind, target: target.clone() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_arguments() {
        let text = "! old style\n; also\n% too\n# hash\n  server a.example iburst # trailing\n\nLOCAL stratum 10\n";
        let d = parse(Dialect::Chrony, "c.conf", text);
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].line, d[0].keyword.as_str(), d[0].args.clone()),
            (5, "server", vec!["a.example".into(), "iburst".into()])
        );
        assert_eq!((d[1].line, d[1].keyword.as_str()), (7, "local"));
        assert_eq!(d[1].arg_after("stratum"), Some("10"));
        // ntp.conf does not treat ';' as a comment.
        let n = parse(Dialect::Ntpd, "n.conf", "; odd\nserver x # c\n");
        assert_eq!(n[0].keyword, ";");
        assert_eq!(n[1].args, vec!["x".to_string()]);
    }

    #[test]
    fn include_directives() {
        let d = parse(Dialect::Chrony, "c", "confdir /a /b\nsourcedir /s\ninclude /x/*.conf\n");
        let inc = includes(Dialect::Chrony, &d);
        let kinds: Vec<_> = inc.iter().map(|i| (i.kind, i.target.as_str(), i.line)).collect();
        assert_eq!(
            kinds,
            vec![
                (IncludeKind::ConfDir, "/a", 1),
                (IncludeKind::ConfDir, "/b", 1),
                (IncludeKind::SourceDir, "/s", 2),
                (IncludeKind::File, "/x/*.conf", 3)
            ]
        );
        let n = parse(Dialect::Ntpd, "n", "includefile /etc/ntp.d/local.conf\n");
        assert_eq!(includes(Dialect::Ntpd, &n)[0].kind, IncludeKind::File);
    }
}
