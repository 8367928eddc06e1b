//! Refid interpretation: what a server's reference id says about its upstream (an IPv4 address,
//! the MD5 hash of an IPv6 address, a reference clock, the local clock).

use super::unsynchronised_reason;
use crate::observation::Observation;
use md5::{Digest, Md5};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};

/// What a server synchronises from, according to its refid.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Upstream {
    /// Nothing (not synchronised, no answer, or not known).
    None,
    /// Another NTP server.
    Server(IpAddr),
    /// A reference clock (stratum 1: GPS, PPS, ...).
    Reference(String),
    /// The undisciplined local clock (`LOCL`, 127.127.1.x, chrony's `local`).
    LocalClock,
}

/// The 4 bytes of a refid as [`Observation::refid`] renders it: a dotted quad, or ASCII with
/// `\xNN` escapes (shorter ASCII is padded with NULs).
pub fn refid_bytes(text: &str) -> Option<[u8; 4]> {
    if let Ok(v4) = text.parse::<Ipv4Addr>() {
        return Some(v4.octets());
    }
    let mut out = Vec::with_capacity(4);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            let hex = std::str::from_utf8(bytes.get(i + 2..i + 4)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if out.len() > 4 {
        return None;
    }
    out.resize(4, 0);
    out.try_into().ok()
}

/// The refid an NTP server puts in its packets when it synchronises from `addr`: the IPv4
/// address itself, or the first four bytes of the MD5 digest of the IPv6 address.
pub fn refid_of(addr: IpAddr) -> [u8; 4] {
    match addr {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let digest = Md5::digest(v6.octets());
            [digest[0], digest[1], digest[2], digest[3]]
        }
    }
}

/// Interprets the refid of `o`. `known` holds the addresses to match IPv6 hashes against; an
/// IPv4 refid that matches neither a known IPv4 address nor a known IPv6 hash is taken as an
/// IPv4 address.
pub fn resolve_upstream(o: &Observation, known: &[IpAddr]) -> Upstream {
    if unsynchronised_reason(o).is_some() {
        return Upstream::None;
    }
    let Some(stratum) = o.stratum else { return Upstream::None };
    if stratum == 0 || stratum >= 16 {
        return Upstream::None;
    }
    let Some(text) = o.refid.as_deref() else { return Upstream::None };
    let Some(bytes) = refid_bytes(text) else { return Upstream::None };
    if &bytes == b"LOCL" || bytes[..3] == [127, 127, 1] {
        return Upstream::LocalClock;
    }
    if stratum == 1 || bytes[..2] == [127, 127] {
        return Upstream::Reference(crate::ntp::RefId(bytes).to_ascii());
    }
    let v4 = IpAddr::V4(Ipv4Addr::from(bytes));
    if known.contains(&v4) {
        return Upstream::Server(v4);
    }
    if let Some(v6) = known.iter().find(|a| a.is_ipv6() && refid_of(**a) == bytes) {
        return Upstream::Server(*v6);
    }
    Upstream::Server(v4)
}
