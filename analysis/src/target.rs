//! Parsing of the targets users write on the command line and in survey lists
//! (`ntp://HOST[:PORT]`, `http(s)://HOST[:PORT][/path]`, bare names, IPv4 and IPv6 literals) into
//! one [`Target`] that every prober and the survey use.

use crate::observation::Method;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// Longest host name accepted (RFC 1035: 253 characters in text form, plus a trailing dot).
pub const MAX_HOST_LEN: usize = 254;

/// The host part of a target: a name to resolve, or an address literal that bypasses DNS.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, as written (IDN names are kept in the form given).
    Name(String),
    /// An IPv4 or IPv6 address literal.
    Ip(IpAddr),
}

impl Host {
    /// The IP address when the host is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ip(ip) => Some(*ip),
            Host::Name(_) => None,
        }
    }
}

impl fmt::Display for Host {
    /// Names as written, IPv4 dotted, IPv6 in brackets (the form used in URLs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(v4)) => write!(f, "{v4}"),
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
        }
    }
}

/// One parsed target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The target exactly as written (trimmed); reported as `target` in every observation.
    pub raw: String,
    /// Host name or address literal.
    pub host: Host,
    /// Port given in the target; `None` means each method's default port.
    pub port: Option<u16>,
    /// How to probe it: the scheme's method, or for a bare host the caller's list.
    pub methods: Vec<Method>,
    /// HTTP(S) path (with query), starting with `/`; `/` when none was given. `None` for NTP and
    /// bare hosts.
    pub path: Option<String>,
}

/// Why a target string could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Nothing but whitespace.
    #[error("empty target")]
    Empty,
    /// A `scheme://` other than ntp, http or https.
    #[error("target {target:?}: unknown scheme {scheme:?} (expected ntp://, http:// or https://)")]
    UnknownScheme {
        /// The target.
        target: String,
        /// The scheme found.
        scheme: String,
    },
    /// No host between the scheme and the port or path.
    #[error("target {target:?}: no host")]
    EmptyHost {
        /// The target.
        target: String,
    },
    /// The port is not a number in 1–65535.
    #[error("target {target:?}: bad port {port:?} (expected a number from 1 to 65535)")]
    BadPort {
        /// The target.
        target: String,
        /// The port text.
        port: String,
    },
    /// `[` without a matching `]`, or something other than `:PORT` after `]`.
    #[error("target {target:?}: malformed bracketed IPv6 address")]
    BadBracket {
        /// The target.
        target: String,
    },
    /// Text in brackets that is not an IPv6 address.
    #[error("target {target:?}: {text:?} is not an IPv6 address")]
    BadIpv6 {
        /// The target.
        target: String,
        /// The text in brackets.
        text: String,
    },
    /// A host name containing characters that cannot appear in a DNS name.
    #[error("target {target:?}: invalid host name {host:?} ({reason})")]
    BadHostName {
        /// The target.
        target: String,
        /// The host part.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `user@host` forms are not supported.
    #[error("target {target:?}: user names in targets are not supported")]
    Userinfo {
        /// The target.
        target: String,
    },
    /// An `ntp://` target with a path.
    #[error("target {target:?}: ntp:// targets take no path")]
    NtpPath {
        /// The target.
        target: String,
    },
    /// A bare host while the caller passed no methods.
    #[error("target {target:?}: no methods to probe a bare host with")]
    NoMethods {
        /// The target.
        target: String,
    },
}

impl Target {
    /// Parses `input`. Bare hosts (no `scheme://`) get `bare_methods` (the caller's `--methods`,
    /// by default [`Method::ALL`]); a port on a bare host applies to every method.
    pub fn parse(input: &str, bare_methods: &[Method]) -> Result<Self, TargetError> {
        let raw = input.trim();
        if raw.is_empty() {
            return Err(TargetError::Empty);
        }
        let err_target = || raw.to_string();
        let (scheme, rest) = match raw.find("://") {
            Some(i) => {
                let scheme = &raw[..i];
                let method: Method = scheme
                    .parse()
                    .map_err(|_| TargetError::UnknownScheme { target: err_target(), scheme: scheme.to_string() })?;
                (Some(method), &raw[i + 3..])
            }
            None => (None, raw),
        };
        // Split the authority from the path (and drop any fragment).
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        if authority.contains('@') {
            return Err(TargetError::Userinfo { target: err_target() });
        }
        let (host, port) = split_host_port(raw, authority)?;
        let path = match (scheme, path) {
            (Some(Method::Http | Method::Https), p) => Some(normalise_path(p.unwrap_or("/"))),
            (Some(Method::Ntp), None) => None,
            (Some(Method::Ntp), Some("/")) => None,
            (Some(Method::Ntp), Some(_)) => return Err(TargetError::NtpPath { target: err_target() }),
            // A bare "host/" is tolerated; a bare host with a real path is most likely a URL
            // without its scheme, which is ambiguous.
            (None, None | Some("/")) => None,
            (None, Some(_)) => {
                return Err(TargetError::UnknownScheme { target: err_target(), scheme: String::new() });
            }
        };
        let methods = match scheme {
            Some(m) => vec![m],
            None if bare_methods.is_empty() => return Err(TargetError::NoMethods { target: err_target() }),
            None => dedup(bare_methods),
        };
        Ok(Self { raw: raw.to_string(), host, port, methods, path })
    }

    /// The port to use for `method`: the explicit one, else the method's default.
    pub fn port_for(&self, method: Method) -> u16 {
        self.port.unwrap_or(method.default_port())
    }

    /// `HOST[:PORT]` in URL form (IPv6 in brackets), for `Host` headers and messages.
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn dedup(methods: &[Method]) -> Vec<Method> {
    let mut out = Vec::with_capacity(methods.len());
    for &m in methods {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

fn normalise_path(p: &str) -> String {
    if p.starts_with('/') { p.to_string() } else { format!("/{p}") }
}

fn parse_port(target: &str, text: &str) -> Result<u16, TargetError> {
    match text.parse::<u16>() {
        Ok(p) if p > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(TargetError::BadPort { target: target.to_string(), port: text.to_string() }),
    }
}

/// Splits `HOST[:PORT]`, `[V6][:PORT]` or a bare IPv6 literal.
fn split_host_port(target: &str, authority: &str) -> Result<(Host, Option<u16>), TargetError> {
    if authority.is_empty() {
        return Err(TargetError::EmptyHost { target: target.to_string() });
    }
    if let Some(inner) = authority.strip_prefix('[') {
        let close = inner.find(']').ok_or_else(|| TargetError::BadBracket { target: target.to_string() })?;
        let text = &inner[..close];
        let ip: Ipv6Addr =
            text.parse().map_err(|_| TargetError::BadIpv6 { target: target.to_string(), text: text.to_string() })?;
        let after = &inner[close + 1..];
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(parse_port(target, p)?),
                None => return Err(TargetError::BadBracket { target: target.to_string() }),
            },
        };
        return Ok((Host::Ip(IpAddr::V6(ip)), port));
    }
    // Two or more colons without brackets: a bare IPv6 literal (no port possible).
    if authority.matches(':').count() >= 2 {
        let ip: Ipv6Addr = authority
            .parse()
            .map_err(|_| TargetError::BadIpv6 { target: target.to_string(), text: authority.to_string() })?;
        return Ok((Host::Ip(IpAddr::V6(ip)), None));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(parse_port(target, p)?)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(TargetError::EmptyHost { target: target.to_string() });
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((Host::Ip(ip), port));
    }
    check_host_name(target, host)?;
    Ok((Host::Name(host.to_string()), port))
}

/// Accepts letters (any script, for IDN names given in Unicode), digits, `-`, `_` and dots;
/// labels of 1–63 bytes.
fn check_host_name(target: &str, host: &str) -> Result<(), TargetError> {
    let bad = |reason| Err(TargetError::BadHostName { target: target.to_string(), host: host.to_string(), reason });
    if host.len() > MAX_HOST_LEN {
        return bad("longer than 253 characters");
    }
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    if trimmed.is_empty() {
        return bad("empty");
    }
    for label in trimmed.split('.') {
        if label.is_empty() {
            return bad("empty label");
        }
        if label.len() > 63 {
            return bad("label longer than 63 bytes");
        }
        if !label.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_') {
            return bad("only letters, digits, '-', '_' and '.' are allowed");
        }
    }
    // All-numeric dotted names that failed to parse as IPv4 (e.g. 300.1.2.3) are mistakes.
    if trimmed.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return bad("looks like an IPv4 address but is not one");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const ALL: &[Method] = &Method::ALL;

    fn p(s: &str) -> Target {
        Target::parse(s, ALL).unwrap()
    }

    #[test]
    fn ntp_url_with_and_without_port() {
        let t = p("ntp://pool.ntp.org");
        assert_eq!(t.host, Host::Name("pool.ntp.org".into()));
        assert_eq!(t.port, None);
        assert_eq!(t.methods, vec![Method::Ntp]);
        assert_eq!(t.path, None);
        assert_eq!(t.port_for(Method::Ntp), 123);
        let t = p("ntp://127.0.0.2:11123");
        assert_eq!(t.host, Host::Ip(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))));
        assert_eq!(t.port, Some(11123));
        assert_eq!(t.authority(), "127.0.0.2:11123");
        assert_eq!(p("NTP://time.example/").path, None);
    }

    #[test]
    fn http_urls_keep_path_and_query() {
        let t = p("https://example.com:8443/a/b?x=1#frag");
        assert_eq!(t.host, Host::Name("example.com".into()));
        assert_eq!(t.port, Some(8443));
        assert_eq!(t.methods, vec![Method::Https]);
        assert_eq!(t.path.as_deref(), Some("/a/b?x=1"));
        assert_eq!(p("http://example.com").path.as_deref(), Some("/"));
        assert_eq!(p("http://example.com?q").path.as_deref(), Some("/?q"));
        assert_eq!(p("http://example.com").port_for(Method::Http), 80);
    }

    #[test]
    fn ipv6_literals() {
        let v6: IpAddr = "::1".parse().unwrap();
        let t = p("[::1]:123");
        assert_eq!((t.host.clone(), t.port), (Host::Ip(v6), Some(123)));
        assert_eq!(t.methods, ALL.to_vec());
        assert_eq!(t.authority(), "[::1]:123");
        let t = p("::1");
        assert_eq!((t.host, t.port), (Host::Ip(v6), None));
        let t = p("ntp://[2001:db8::5]");
        assert_eq!(t.host, Host::Ip("2001:db8::5".parse().unwrap()));
        let t = p("http://[::1]:8080/x");
        assert_eq!((t.port, t.path.as_deref()), (Some(8080), Some("/x")));
        assert_eq!(p("[fe80::1]").host.ip(), Some("fe80::1".parse().unwrap()));
    }

    #[test]
    fn bare_names_take_the_callers_methods() {
        let t = Target::parse("  time.example  ", &[Method::Ntp, Method::Http, Method::Ntp]).unwrap();
        assert_eq!(t.raw, "time.example");
        assert_eq!(t.methods, vec![Method::Ntp, Method::Http]);
        assert_eq!(t.path, None);
        let t = p("192.0.2.1");
        assert_eq!(t.host, Host::Ip("192.0.2.1".parse().unwrap()));
        assert_eq!(t.methods, vec![Method::Https, Method::Http, Method::Ntp]);
        let t = p("time.example:8123");
        assert_eq!(t.port, Some(8123));
        assert_eq!(p("time.example.").host, Host::Name("time.example.".into()));
    }

    #[test]
    fn idn_names_are_left_as_given() {
        assert_eq!(p("ntp://bücher.example").host, Host::Name("bücher.example".into()));
        assert_eq!(p("xn--bcher-kva.example").host, Host::Name("xn--bcher-kva.example".into()));
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(Target::parse("  ", ALL), Err(TargetError::Empty));
        assert!(
            matches!(Target::parse("ftp://x", ALL), Err(TargetError::UnknownScheme { scheme, .. }) if scheme == "ftp")
        );
        assert!(matches!(Target::parse("ntp://", ALL), Err(TargetError::EmptyHost { .. })));
        assert!(matches!(Target::parse("ntp://:123", ALL), Err(TargetError::EmptyHost { .. })));
        for bad_port in ["ntp://h:0", "ntp://h:65536", "ntp://h:x", "ntp://h:", "ntp://h:+1"] {
            assert!(matches!(Target::parse(bad_port, ALL), Err(TargetError::BadPort { .. })), "{bad_port}");
        }
        assert!(matches!(Target::parse("[::1", ALL), Err(TargetError::BadBracket { .. })));
        assert!(matches!(Target::parse("[::1]x", ALL), Err(TargetError::BadBracket { .. })));
        assert!(matches!(Target::parse("[nope]:1", ALL), Err(TargetError::BadIpv6 { .. })));
        assert!(matches!(Target::parse("1::2::3", ALL), Err(TargetError::BadIpv6 { .. })));
        assert!(matches!(Target::parse("ntp://a b", ALL), Err(TargetError::BadHostName { .. })));
        assert!(matches!(Target::parse("ntp://a..b", ALL), Err(TargetError::BadHostName { .. })));
        assert!(matches!(Target::parse("300.1.2.3", ALL), Err(TargetError::BadHostName { .. })));
        assert!(matches!(Target::parse("http://u@h", ALL), Err(TargetError::Userinfo { .. })));
        assert!(matches!(Target::parse("ntp://h/x", ALL), Err(TargetError::NtpPath { .. })));
        assert!(matches!(Target::parse("h", &[]), Err(TargetError::NoMethods { .. })));
        let long = format!("ntp://{}.example", "a".repeat(64));
        assert!(matches!(Target::parse(&long, ALL), Err(TargetError::BadHostName { .. })));
    }

    #[test]
    fn error_messages_name_the_target() {
        let e = Target::parse("ntp://h:99999", ALL).unwrap_err().to_string();
        assert_eq!(e, "target \"ntp://h:99999\": bad port \"99999\" (expected a number from 1 to 65535)");
    }
}
