//! Reads chrony.conf / ntp.conf files from disk for the configuration lint, following their
//! include directives (chrony `include` globs, `confdir`, `sourcedir`; ntpd `includefile`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use timeaudit_analysis::config_lint::{ConfigFinding, Dialect, Directive, IncludeKind, includes, parse};
use timeaudit_analysis::severity::Severity;

/// How deep includes may nest before the loader stops (guards against include cycles too).
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// A configuration read with everything it includes.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    /// The main file as named by the user.
    pub main: String,
    /// Its dialect.
    pub dialect: Dialect,
    /// Directives of the main file and its includes, in reading order.
    pub directives: Vec<Directive>,
    /// Every file read.
    pub files: Vec<String>,
    /// Include targets that could not be read (reported as findings, not errors).
    pub notes: Vec<ConfigFinding>,
}

/// Why a configuration file could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read configuration {path}: {source}")]
pub struct ConfigLoadError {
    /// The file.
    pub path: String,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// Reads `path` and its includes. The dialect is detected from the name and text unless given.
pub fn load(path: &Path, dialect: Option<Dialect>) -> Result<LoadedConfig, ConfigLoadError> {
    let main = path.display().to_string();
    let text = read_text(path).map_err(|source| ConfigLoadError { path: main.clone(), source })?;
    let dialect = dialect.unwrap_or_else(|| Dialect::detect(&main, &text));
    let mut cfg =
        LoadedConfig { main: main.clone(), dialect, directives: Vec::new(), files: Vec::new(), notes: Vec::new() };
    let mut seen = HashSet::new();
    add_file(&mut cfg, path, text, 0, &mut seen);
    Ok(cfg)
}

fn read_text(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn add_file(cfg: &mut LoadedConfig, path: &Path, text: String, depth: usize, seen: &mut HashSet<PathBuf>) {
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if !seen.insert(key) {
        return;
    }
    let name = path.display().to_string();
    cfg.files.push(name.clone());
    let directives = parse(cfg.dialect, &name, &text);
    let incs = includes(cfg.dialect, &directives);
    cfg.directives.extend(directives);
    let base = path.parent().unwrap_or(Path::new("."));
    let mut confdir_names: HashSet<String> = HashSet::new();
    for inc in incs {
        let target =
            if Path::new(&inc.target).is_absolute() { PathBuf::from(&inc.target) } else { base.join(&inc.target) };
        let files = match inc.kind {
            IncludeKind::File => glob(&target),
            IncludeKind::ConfDir => dir_files(&target, ".conf").map(|v| {
                // With several confdirs, the first file of each name wins.
                v.into_iter().filter(|p| confdir_names.insert(file_name(p))).collect()
            }),
            IncludeKind::SourceDir => dir_files(&target, ".sources"),
        };
        match files {
            Ok(list) if depth < MAX_INCLUDE_DEPTH => {
                for f in list {
                    match read_text(&f) {
                        Ok(t) => add_file(cfg, &f, t, depth + 1, seen),
                        Err(e) => {
                            cfg.notes.push(note(&inc.file, inc.line, format!("cannot read {}: {e}", f.display())))
                        }
                    }
                }
            }
            Ok(_) => cfg.notes.push(note(
                &inc.file,
                inc.line,
                format!("includes nested deeper than {MAX_INCLUDE_DEPTH}; stopped"),
            )),
            Err(e) => cfg.notes.push(note(&inc.file, inc.line, format!("cannot read {}: {e}", target.display()))),
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn note(file: &str, line: usize, message: String) -> ConfigFinding {
    ConfigFinding {
        severity: Severity::Info,
        code: "include_unreadable",
        file: file.to_string(),
        line: Some(line),
        message,
        fix: "check the path (a missing optional directory such as /run/chrony-dhcp is harmless)".into(),
    }
}

fn dir_files(dir: &Path, suffix: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && file_name(p).ends_with(suffix))
        .collect();
    out.sort();
    Ok(out)
}

/// Expands `*` and `?` in the last component of `pattern` (what chrony's `include` accepts in
/// practice); a plain path is returned as is.
fn glob(pattern: &Path) -> std::io::Result<Vec<PathBuf>> {
    let name = file_name(pattern);
    if !name.contains(['*', '?']) {
        return if pattern.exists() {
            Ok(vec![pattern.to_path_buf()])
        } else {
            Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
        };
    }
    let dir = pattern.parent().unwrap_or(Path::new("."));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && wildcard(name.as_bytes(), file_name(p).as_bytes()))
        .collect();
    out.sort();
    Ok(out)
}

fn wildcard(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&pat[1..], s) || (!s.is_empty() && wildcard(pat, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&pat[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&pat[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_confdir_sourcedir_and_globs() {
        let dir = std::env::temp_dir().join(format!("timeaudit-cfg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        std::fs::create_dir_all(dir.join("sources.d")).unwrap();
        std::fs::create_dir_all(dir.join("inc")).unwrap();
        std::fs::write(
            dir.join("chrony.conf"),
            "confdir conf.d\nsourcedir sources.d\nsourcedir /nonexistent-timeaudit\ninclude inc/*.conf\ndriftfile /d\n",
        )
        .unwrap();
        std::fs::write(dir.join("conf.d/a.conf"), "makestep 1 3\n").unwrap();
        std::fs::write(dir.join("conf.d/ignored.txt"), "server bogus\n").unwrap();
        std::fs::write(dir.join("sources.d/x.sources"), "server a.example\nserver b.example\n").unwrap();
        std::fs::write(dir.join("inc/b.conf"), "include ../chrony.conf\nserver c.example\n").unwrap();
        let cfg = load(&dir.join("chrony.conf"), None).unwrap();
        assert_eq!(cfg.dialect, Dialect::Chrony);
        let kw: Vec<(String, usize, &str)> =
            cfg.directives.iter().map(|d| (file_name(Path::new(&d.file)), d.line, d.keyword.as_str())).collect();
        assert_eq!(
            kw,
            vec![
                ("chrony.conf".into(), 1, "confdir"),
                ("chrony.conf".into(), 2, "sourcedir"),
                ("chrony.conf".into(), 3, "sourcedir"),
                ("chrony.conf".into(), 4, "include"),
                ("chrony.conf".into(), 5, "driftfile"),
                ("a.conf".into(), 1, "makestep"),
                ("x.sources".into(), 1, "server"),
                ("x.sources".into(), 2, "server"),
                ("b.conf".into(), 1, "include"),
                ("b.conf".into(), 2, "server"),
            ]
        );
        assert_eq!(cfg.notes.len(), 1);
        assert_eq!(cfg.notes[0].line, Some(3));
        assert!(load(&dir.join("missing.conf"), None).unwrap_err().to_string().contains("missing.conf"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wildcards() {
        assert!(wildcard(b"*.conf", b"a.conf"));
        assert!(wildcard(b"a?c", b"abc"));
        assert!(!wildcard(b"*.conf", b"a.sources"));
    }
}
