//! The normalised record of one active measurement of one address (NTP or HTTP(S)): what
//! `timeaudit probe --format json` prints, what the survey stores and exports, and what the
//! classifier reads. Field names are the column names of every output.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How a clock was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// SNTPv4 client query (mode 3).
    Ntp,
    /// `Date` header over plain HTTP.
    Http,
    /// `Date` header over HTTPS.
    Https,
}

impl Method {
    /// Every method, in the order bare names are probed by default.
    pub const ALL: [Method; 3] = [Method::Https, Method::Http, Method::Ntp];

    /// The lowercase name used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Ntp => "ntp",
            Method::Http => "http",
            Method::Https => "https",
        }
    }

    /// The default port of this method.
    pub fn default_port(self) -> u16 {
        match self {
            Method::Ntp => 123,
            Method::Http => 80,
            Method::Https => 443,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ntp" => Ok(Method::Ntp),
            "http" => Ok(Method::Http),
            "https" => Ok(Method::Https),
            other => Err(format!("unknown method {other:?} (expected ntp, http or https)")),
        }
    }
}

/// One measurement of one address. Times are Unix seconds (floats), offsets and delays seconds.
/// Offset sign: remote clock minus local clock; positive means the remote clock is ahead.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The target as the user wrote it (URL or name).
    pub target: String,
    /// The IP address probed (no port).
    pub address: String,
    /// How the clock was read.
    pub method: Option<Method>,
    /// Port probed.
    #[serde(default)]
    pub port: Option<u16>,
    /// Local time the (kept) request was sent.
    pub t_send: f64,
    /// Local time its reply arrived.
    pub t_recv: f64,
    /// Point estimate of the offset (midpoint of the interval).
    pub offset: Option<f64>,
    /// Lower bound of the interval that contains the true offset.
    pub offset_lo: Option<f64>,
    /// Upper bound of that interval.
    pub offset_hi: Option<f64>,
    /// Round-trip delay of the kept exchange.
    pub delay: Option<f64>,
    /// NTP stratum.
    #[serde(default)]
    pub stratum: Option<u8>,
    /// NTP reference id: dotted IPv4, or ASCII for stratum 1 and kiss codes.
    #[serde(default)]
    pub refid: Option<String>,
    /// NTP leap indicator (3 = unsynchronised).
    #[serde(default)]
    pub leap: Option<u8>,
    /// NTP version of the reply.
    #[serde(default)]
    pub version: Option<u8>,
    /// NTP poll exponent of the reply.
    #[serde(default)]
    pub poll: Option<i8>,
    /// NTP precision exponent of the reply.
    #[serde(default)]
    pub precision: Option<i8>,
    /// NTP root delay, seconds.
    #[serde(default)]
    pub root_delay: Option<f64>,
    /// NTP root dispersion, seconds.
    #[serde(default)]
    pub root_dispersion: Option<f64>,
    /// NTP reference time (when the server's clock was last set), Unix seconds.
    #[serde(default)]
    pub reference_time: Option<f64>,
    /// Number of exchanges made in this probe (the minimum-delay one is kept).
    #[serde(default)]
    pub samples: Option<u32>,
    /// HTTP status code.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// The raw `Date` header.
    #[serde(default)]
    pub date: Option<String>,
    /// `Server` header.
    #[serde(default)]
    pub server: Option<String>,
    /// `Age` header when the reply came from a cache (its `Date` may be stale).
    #[serde(default)]
    pub age: Option<u64>,
    /// `Location` of a redirect (recorded, not followed).
    #[serde(default)]
    pub redirect: Option<String>,
    /// TLS certificate problem (e.g. `expired`, `not_yet_valid`, `self_signed`, `name_mismatch`).
    #[serde(default)]
    pub cert_problem: Option<String>,
    /// Null on success, else a short kind: `timeout`, `dns`, `refused`, `bad_reply`, `kod:RATE`,
    /// `kod:DENY`, `unsynchronized`, `tls`, `no_date`, `bad_date`, `http_status`, ...
    pub error: Option<String>,
}

impl Observation {
    /// Whether the probe produced an offset (it may still carry a warning-like `error` such as
    /// `unsynchronized`).
    pub fn answered(&self) -> bool {
        self.offset.is_some()
    }
}

/// Why a probe did not produce a trustworthy measurement: the `error` column of an
/// [`Observation`], as a typed value with a stable short string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No reply within the timeout.
    Timeout,
    /// The name did not resolve (no such name, no address, or the DNS server failed).
    Dns,
    /// The address refused the connection or answered with ICMP port unreachable.
    Refused,
    /// A local socket error (bind, send, unreachable network).
    Io,
    /// A reply that is not a well-formed, sane answer (garbage, wrong mode, bad timestamps).
    BadReply,
    /// An NTP reply whose origin timestamp is not the transmit timestamp sent (spoofed or
    /// stale).
    BadOrigin,
    /// An NTP Kiss-o'-Death with its code (`kod:RATE`, `kod:DENY`, `kod:RSTR`, ...).
    Kod(crate::ntp::KissCode),
    /// The server says its clock is not synchronised (leap 3 or stratum 16); measured values are
    /// kept.
    Unsynchronized,
    /// The method is not supported for this target (yet).
    Unsupported,
    /// TLS handshake failed.
    Tls,
    /// HTTP reply without a `Date` header.
    NoDate,
    /// HTTP `Date` header that does not parse.
    BadDate,
    /// HTTP status that does not carry a usable `Date`.
    HttpStatus,
}

impl ErrorKind {
    /// The stable short name written in outputs.
    pub fn as_string(self) -> String {
        match self {
            Self::Kod(code) => format!("kod:{}", code.as_text()),
            other => other.simple_name().unwrap_or_default().to_string(),
        }
    }

    fn simple_name(self) -> Option<&'static str> {
        Some(match self {
            Self::Timeout => "timeout",
            Self::Dns => "dns",
            Self::Refused => "refused",
            Self::Io => "io",
            Self::BadReply => "bad_reply",
            Self::BadOrigin => "bad_origin",
            Self::Kod(_) => return None,
            Self::Unsynchronized => "unsynchronized",
            Self::Unsupported => "unsupported",
            Self::Tls => "tls",
            Self::NoDate => "no_date",
            Self::BadDate => "bad_date",
            Self::HttpStatus => "http_status",
        })
    }

    /// Whether a probe with this kind may still carry a usable offset (a warning, not a
    /// failure).
    pub fn keeps_measurement(self) -> bool {
        matches!(self, Self::Unsynchronized)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

impl FromStr for ErrorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(code) = s.strip_prefix("kod:") {
            let bytes = code.as_bytes();
            if bytes.is_empty() || bytes.len() > 4 {
                return Err(format!("bad kiss code {code:?}"));
            }
            let mut c = [0u8; 4];
            c[..bytes.len()].copy_from_slice(bytes);
            return Ok(Self::Kod(crate::ntp::KissCode(c)));
        }
        const SIMPLE: [ErrorKind; 12] = [
            ErrorKind::Timeout,
            ErrorKind::Dns,
            ErrorKind::Refused,
            ErrorKind::Io,
            ErrorKind::BadReply,
            ErrorKind::BadOrigin,
            ErrorKind::Unsynchronized,
            ErrorKind::Unsupported,
            ErrorKind::Tls,
            ErrorKind::NoDate,
            ErrorKind::BadDate,
            ErrorKind::HttpStatus,
        ];
        SIMPLE.into_iter().find(|k| k.simple_name() == Some(s)).ok_or_else(|| format!("unknown error kind {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_round_trip_their_strings() {
        let kinds = ["timeout", "dns", "refused", "bad_reply", "bad_origin", "unsynchronized", "kod:RATE", "kod:DENY"];
        for s in kinds {
            let k: ErrorKind = s.parse().unwrap();
            assert_eq!(k.to_string(), s);
        }
        assert_eq!(ErrorKind::Kod(crate::ntp::KissCode::RSTR).to_string(), "kod:RSTR");
        assert!("nope".parse::<ErrorKind>().is_err());
    }

    #[test]
    fn observation_json_uses_the_documented_column_names() {
        let o = Observation { target: "ntp://h".into(), method: Some(Method::Ntp), ..Default::default() };
        let v = serde_json::to_value(&o).unwrap();
        for key in ["target", "address", "method", "t_send", "t_recv", "offset", "offset_lo", "offset_hi", "delay"] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["method"], "ntp");
    }
}
