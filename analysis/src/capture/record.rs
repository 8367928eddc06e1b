//! The normalised record of one captured NTP packet ([`NtpFrame`]), the compact owned summary the
//! aggregation keeps ([`PacketSummary`]), and the per-frame classification that produces them.

use super::frame::{Dissection, UdpDatagram, dissect};
use crate::ntp::packet::{HEADER_LEN, kiss_code_of, split_trailer};
use crate::ntp::{ControlHeader, DecodeError, KissCode, Mode, NtpMessage, PrivateHeader, RefId};
use std::net::IpAddr;

/// The well-known NTP port; a datagram is NTP when either port is this one.
pub const NTP_PORT: u16 = 123;

/// One NTP packet read from a capture, with its decoded message borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NtpFrame<'a> {
    /// Capture timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Length of the frame on the wire (the capture's original length, link header included).
    pub wire_len: u32,
    /// UDP payload length according to the UDP header.
    pub udp_len: u32,
    /// The captured UDP payload (shorter than `udp_len` when cut by the snap length or
    /// fragmentation).
    pub payload: &'a [u8],
    /// The decoded message, or why it is malformed.
    pub message: Result<NtpMessage<'a>, DecodeError>,
}

impl<'a> NtpFrame<'a> {
    /// The NTP frame carried by `udp`, if either port is 123.
    pub fn from_udp(ts_ns: i64, wire_len: u32, udp: &UdpDatagram<'a>) -> Option<Self> {
        if udp.sport != NTP_PORT && udp.dport != NTP_PORT {
            return None;
        }
        Some(Self {
            ts_ns,
            src: udp.src,
            dst: udp.dst,
            sport: udp.sport,
            dport: udp.dport,
            wire_len,
            udp_len: udp.payload_len,
            payload: udp.payload,
            message: NtpMessage::decode(udp.payload),
        })
    }

    /// Whether the captured payload is shorter than the datagram.
    pub fn is_truncated(&self) -> bool {
        (self.payload.len() as u64) < u64::from(self.udp_len)
    }

    /// The kiss code if this is a Kiss-o'-Death (stratum 0 in a server-side mode).
    pub fn kiss(&self) -> Option<KissCode> {
        match &self.message {
            Ok(NtpMessage::Time(p)) => p.header.kiss_code(),
            _ => None,
        }
    }

    /// The compact summary used for aggregation.
    pub fn summary(&self) -> PacketSummary {
        PacketSummary {
            ts_ns: self.ts_ns,
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            wire_len: self.wire_len,
            udp_len: self.udp_len,
            kind: NtpKind::of_payload(self.payload, self.is_truncated()),
        }
    }
}

/// What an NTP packet is, as far as load analysis cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NtpKind {
    /// Modes 0–5.
    Time {
        /// Version.
        version: u8,
        /// Mode.
        mode: u8,
        /// Stratum.
        stratum: u8,
        /// Kiss code of a KoD reply.
        kiss: Option<KissCode>,
        /// Number of extension fields.
        extensions: u16,
        /// Trailing MAC.
        mac: MacKind,
    },
    /// Mode 6.
    Control {
        /// Version.
        version: u8,
        /// Response bit.
        response: bool,
    },
    /// Mode 7.
    Private {
        /// Version.
        version: u8,
        /// Response bit.
        response: bool,
        /// MON_GETLIST or MON_GETLIST_1.
        monlist: bool,
    },
    /// Not decodable; the reason (see [`DecodeError::reason`], plus `truncated`).
    Malformed(&'static str),
}

impl NtpKind {
    /// What [`NtpMessage::decode`] makes of `payload`, reduced to this summary, reading only the
    /// bytes it needs (the per-packet path of the load analysis). `truncated`: the capture cut
    /// the datagram short, which is the reason given when it does not decode.
    pub fn of_payload(payload: &[u8], truncated: bool) -> Self {
        let malformed = |e: DecodeError| Self::Malformed(if truncated { "truncated" } else { e.reason() });
        let Some(&first) = payload.first() else {
            return malformed(DecodeError::TooShort { needed: 1, got: 0 });
        };
        let version = (first >> 3) & 7;
        if !(1..=4).contains(&version) {
            return malformed(DecodeError::BadVersion(version));
        }
        match Mode(first & 7) {
            Mode::CONTROL => match ControlHeader::decode(payload) {
                Ok(h) => Self::Control { version: h.version, response: h.response },
                Err(e) => malformed(e),
            },
            Mode::PRIVATE => match PrivateHeader::decode(payload) {
                Ok(h) => Self::Private { version: h.version, response: h.response, monlist: h.is_monlist() },
                Err(e) => malformed(e),
            },
            mode => {
                let Some(header) = payload.get(..HEADER_LEN) else {
                    return malformed(DecodeError::TooShort { needed: HEADER_LEN, got: payload.len() });
                };
                match split_trailer(&payload[HEADER_LEN..]) {
                    Ok((_, extensions, mac)) => Self::Time {
                        version,
                        mode: mode.0,
                        stratum: header[1],
                        kiss: kiss_code_of(mode, header[1], RefId([header[12], header[13], header[14], header[15]])),
                        extensions,
                        mac: match mac {
                            None => MacKind::None,
                            Some(m) if m.is_crypto_nak() => MacKind::CryptoNak,
                            Some(_) => MacKind::Digest,
                        },
                    },
                    Err(e) => malformed(e),
                }
            }
        }
    }

    /// The mode, when decoded.
    pub fn mode(&self) -> Option<u8> {
        match self {
            Self::Time { mode, .. } => Some(*mode),
            Self::Control { .. } => Some(6),
            Self::Private { .. } => Some(7),
            Self::Malformed(_) => None,
        }
    }

    /// The version, when decoded.
    pub fn version(&self) -> Option<u8> {
        match self {
            Self::Time { version, .. } | Self::Control { version, .. } | Self::Private { version, .. } => {
                Some(*version)
            }
            Self::Malformed(_) => None,
        }
    }

    /// Whether this packet asks a server something: modes 1 and 3, and 6/7 without the
    /// response bit.
    pub fn is_request(&self) -> bool {
        match self {
            Self::Time { mode, .. } => matches!(mode, 1 | 3),
            Self::Control { response, .. } | Self::Private { response, .. } => !response,
            Self::Malformed(_) => false,
        }
    }

    /// Whether this packet answers: modes 2 and 4, and 6/7 with the response bit.
    pub fn is_response(&self) -> bool {
        match self {
            Self::Time { mode, .. } => matches!(mode, 2 | 4),
            Self::Control { response, .. } | Self::Private { response, .. } => *response,
            Self::Malformed(_) => false,
        }
    }
}

/// What follows the header and extension fields of a time packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacKind {
    /// Nothing.
    None,
    /// Key identifier and digest.
    Digest,
    /// Key identifier only (crypto-NAK).
    CryptoNak,
}

/// The owned, fixed-size summary of one NTP packet kept by the aggregation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketSummary {
    /// Capture timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Frame length on the wire.
    pub wire_len: u32,
    /// UDP payload length.
    pub udp_len: u32,
    /// What the packet is.
    pub kind: NtpKind,
}

impl PacketSummary {
    /// The summary of the NTP datagram `udp` (either port 123), without decoding it whole.
    pub fn from_udp(ts_ns: i64, wire_len: u32, udp: &UdpDatagram<'_>) -> Self {
        Self {
            ts_ns,
            src: udp.src,
            dst: udp.dst,
            sport: udp.sport,
            dport: udp.dport,
            wire_len,
            udp_len: udp.payload_len,
            kind: NtpKind::of_payload(udp.payload, (udp.payload.len() as u64) < u64::from(udp.payload_len)),
        }
    }
}

/// What one captured frame turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameClass<'a> {
    /// An NTP packet.
    Ntp(NtpFrame<'a>),
    /// UDP on other ports.
    OtherUdp,
    /// A non-first IP fragment (no UDP header: cannot be decoded).
    Fragment,
    /// IP but not UDP.
    OtherIp,
    /// Not IP.
    NotIp,
    /// The frame ends inside a needed header.
    Truncated(&'static str),
    /// Unknown link type.
    UnsupportedLink(u32),
}

/// Dissects and, for NTP, decodes one frame.
pub fn classify_frame(link: u32, ts_ns: i64, wire_len: u32, data: &[u8]) -> FrameClass<'_> {
    match dissect(link, data) {
        Dissection::Udp(udp) => match NtpFrame::from_udp(ts_ns, wire_len, &udp) {
            Some(f) => FrameClass::Ntp(f),
            None => FrameClass::OtherUdp,
        },
        Dissection::Fragment { .. } => FrameClass::Fragment,
        Dissection::OtherIp => FrameClass::OtherIp,
        Dissection::NotIp => FrameClass::NotIp,
        Dissection::Truncated(what) => FrameClass::Truncated(what),
        Dissection::UnsupportedLink(l) => FrameClass::UnsupportedLink(l),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary as the full decoder sees it (what [`NtpKind::of_payload`] must reproduce).
    fn kind_by_full_decode(payload: &[u8], truncated: bool) -> NtpKind {
        match NtpMessage::decode(payload) {
            Ok(NtpMessage::Time(p)) => NtpKind::Time {
                version: p.header.version,
                mode: p.header.mode.0,
                stratum: p.header.stratum,
                kiss: p.header.kiss_code(),
                extensions: p.extension_count,
                mac: match p.mac {
                    None => MacKind::None,
                    Some(m) if m.is_crypto_nak() => MacKind::CryptoNak,
                    Some(_) => MacKind::Digest,
                },
            },
            Ok(NtpMessage::Control { header, .. }) => {
                NtpKind::Control { version: header.version, response: header.response }
            }
            Ok(NtpMessage::Private { header, .. }) => {
                NtpKind::Private { version: header.version, response: header.response, monlist: header.is_monlist() }
            }
            Err(_) if truncated => NtpKind::Malformed("truncated"),
            Err(e) => NtpKind::Malformed(e.reason()),
        }
    }

    #[test]
    fn fast_summary_agrees_with_the_full_decoder() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // Lengths around every boundary the decoder has (header, MAC sizes, extension fields,
        // mode 6/7 headers), first bytes over every version and mode, refids near kiss codes.
        let lengths = [0usize, 1, 7, 8, 11, 12, 47, 48, 52, 60, 64, 68, 72, 76, 80, 96, 120, 200, 468];
        let mut kinds = std::collections::HashSet::new();
        for round in 0..200_000u32 {
            let len = lengths[round as usize % lengths.len()];
            let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len > 1 {
                p[0] = (round % 64) as u8 | if round % 3 == 0 { 0xc0 } else { 0 };
                if round % 5 == 0 {
                    p[1] = 0;
                }
            }
            if len >= 16 && round % 7 == 0 {
                p[12..16].copy_from_slice([b"RATE", b"DENY", b"A\0\0\0", b"INIT", b"ab\0 "][round as usize % 5]);
            }
            if len > 52 && round % 4 == 0 {
                // A plausible extension field length at offset 48.
                let ext = (16 + 4 * (next() % 8)) as u16;
                p[50..52].copy_from_slice(&ext.to_be_bytes());
            }
            let truncated = round % 11 == 0;
            let fast = NtpKind::of_payload(&p, truncated);
            assert_eq!(fast, kind_by_full_decode(&p, truncated), "payload {p:02x?}");
            kinds.insert(std::mem::discriminant(&fast));
        }
        assert_eq!(kinds.len(), 4, "every kind was exercised");
    }
}
