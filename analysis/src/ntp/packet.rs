//! NTP wire codec: the 48-byte header of modes 0–5 with extension fields and MACs (RFC 5905,
//! RFC 7822, RFC 8915), and the headers of mode 6 (control, RFC 9327) and mode 7 (ntpd's private
//! requests, including MON_GETLIST). Decoding never allocates and keeps unknown values.

use super::timestamp::{NtpShort, NtpTimestamp};
use std::fmt;

/// Length of the fixed NTP header of modes 0–5.
pub const HEADER_LEN: usize = 48;
/// Length of the mode 6 control header.
pub const CONTROL_HEADER_LEN: usize = 12;
/// Length of the mode 7 private header.
pub const PRIVATE_HEADER_LEN: usize = 8;

/// Leap indicator (2 bits). Open newtype: every value read off the wire survives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeapIndicator(pub u8);

impl LeapIndicator {
    /// No leap second pending.
    pub const NO_WARNING: Self = Self(0);
    /// The last minute of the day has 61 seconds.
    pub const INSERT_SECOND: Self = Self(1);
    /// The last minute of the day has 59 seconds.
    pub const DELETE_SECOND: Self = Self(2);
    /// The clock is not synchronised ("alarm").
    pub const UNSYNCHRONIZED: Self = Self(3);
}

/// Association mode (3 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mode(pub u8);

impl Mode {
    /// Reserved.
    pub const RESERVED: Self = Self(0);
    /// Symmetric active (peer).
    pub const SYMMETRIC_ACTIVE: Self = Self(1);
    /// Symmetric passive (peer).
    pub const SYMMETRIC_PASSIVE: Self = Self(2);
    /// Client request.
    pub const CLIENT: Self = Self(3);
    /// Server reply.
    pub const SERVER: Self = Self(4);
    /// Broadcast.
    pub const BROADCAST: Self = Self(5);
    /// NTP control message (ntpq, mrulist).
    pub const CONTROL: Self = Self(6);
    /// ntpd private message (ntpdc, monlist).
    pub const PRIVATE: Self = Self(7);

    /// Whether a packet of this mode travels from a server to whoever asked (replies).
    pub fn is_server_side(self) -> bool {
        matches!(self.0, 2 | 4 | 5)
    }
}

/// The 4-byte reference identifier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RefId(pub [u8; 4]);

impl RefId {
    /// The refid as a kiss code or stratum-1 source name: ASCII, trailing NULs dropped, any
    /// other non-printable byte escaped as `\xNN`.
    pub fn to_ascii(self) -> String {
        let end = self.0.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let mut out = String::with_capacity(end);
        for &b in &self.0[..end] {
            if b.is_ascii_graphic() || b == b' ' {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
        out
    }

    /// The refid as a dotted IPv4 address (the upstream's address for IPv4 upstreams, or the
    /// first four bytes of the MD5 of an IPv6 upstream's address).
    pub fn to_dotted(self) -> String {
        let [a, b, c, d] = self.0;
        format!("{a}.{b}.{c}.{d}")
    }

    /// The customary rendering for a packet of `stratum`: ASCII for stratum 0 (kiss codes) and 1
    /// (reference clock names), dotted quad otherwise.
    pub fn display(self, stratum: u8) -> String {
        if stratum <= 1 { self.to_ascii() } else { self.to_dotted() }
    }
}

/// A kiss code carried by a Kiss-o'-Death packet (stratum 0 in a server reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KissCode(pub [u8; 4]);

impl KissCode {
    /// Access denied: stop sending to this server.
    pub const DENY: Self = Self(*b"DENY");
    /// Access restricted: stop sending to this server.
    pub const RSTR: Self = Self(*b"RSTR");
    /// Rate exceeded: reduce the polling rate.
    pub const RATE: Self = Self(*b"RATE");

    /// The code as text (e.g. `RATE`).
    pub fn as_text(self) -> String {
        RefId(self.0).to_ascii()
    }

    /// Whether the client must stop querying this server (DENY, RSTR).
    pub fn demands_stop(self) -> bool {
        self == Self::DENY || self == Self::RSTR
    }
}

impl fmt::Display for KissCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_text())
    }
}

/// The fixed 48-byte header of an NTP time packet (modes 0–5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Header {
    /// Leap indicator.
    pub leap: LeapIndicator,
    /// Version number (1–7 on the wire; 3 and 4 in practice).
    pub version: u8,
    /// Association mode.
    pub mode: Mode,
    /// Stratum (0 = unspecified or KoD, 1 = primary, 2–15 secondary, 16 = unsynchronised).
    pub stratum: u8,
    /// Poll exponent, log2 seconds.
    pub poll: i8,
    /// Precision exponent, log2 seconds.
    pub precision: i8,
    /// Total round-trip delay to the reference clock.
    pub root_delay: NtpShort,
    /// Total dispersion to the reference clock.
    pub root_dispersion: NtpShort,
    /// Reference identifier.
    pub reference_id: RefId,
    /// Time the system clock was last set or corrected.
    pub reference_ts: NtpTimestamp,
    /// Origin timestamp (T1 echoed back by a server).
    pub origin_ts: NtpTimestamp,
    /// Receive timestamp (T2 for a server reply).
    pub receive_ts: NtpTimestamp,
    /// Transmit timestamp (T3 for a server reply, T1 for a client request).
    pub transmit_ts: NtpTimestamp,
}

impl Header {
    /// Decodes the first 48 bytes of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let b: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::TooShort { needed: HEADER_LEN, got: bytes.len() })?;
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let ts_at = |i: usize| {
            NtpTimestamp::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6], b[i + 7]])
        };
        Ok(Self {
            leap: LeapIndicator(b[0] >> 6),
            version: (b[0] >> 3) & 7,
            mode: Mode(b[0] & 7),
            stratum: b[1],
            poll: b[2] as i8,
            precision: b[3] as i8,
            root_delay: NtpShort(u32_at(4)),
            root_dispersion: NtpShort(u32_at(8)),
            reference_id: RefId([b[12], b[13], b[14], b[15]]),
            reference_ts: ts_at(16),
            origin_ts: ts_at(24),
            receive_ts: ts_at(32),
            transmit_ts: ts_at(40),
        })
    }

    /// Encodes the header into its 48 wire bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = (self.leap.0 & 3) << 6 | (self.version & 7) << 3 | (self.mode.0 & 7);
        b[1] = self.stratum;
        b[2] = self.poll as u8;
        b[3] = self.precision as u8;
        b[4..8].copy_from_slice(&self.root_delay.0.to_be_bytes());
        b[8..12].copy_from_slice(&self.root_dispersion.0.to_be_bytes());
        b[12..16].copy_from_slice(&self.reference_id.0);
        b[16..24].copy_from_slice(&self.reference_ts.to_be_bytes());
        b[24..32].copy_from_slice(&self.origin_ts.to_be_bytes());
        b[32..40].copy_from_slice(&self.receive_ts.to_be_bytes());
        b[40..48].copy_from_slice(&self.transmit_ts.to_be_bytes());
        b
    }

    /// The kiss code if this header is a Kiss-o'-Death: stratum 0 in a server-side mode with a
    /// refid of 1–4 upper-case ASCII letters or digits (NUL- or space-padded), as RFC 5905 §7.4
    /// defines them. Stratum 0 with `INIT` in a client request is a client that has not
    /// synchronised yet, and stratum 0 with a binary refid is an unsynchronised server that kept
    /// its old upstream's address (chronyd does this): neither is a KoD.
    pub fn kiss_code(&self) -> Option<KissCode> {
        kiss_code_of(self.mode, self.stratum, self.reference_id)
    }

    /// The refid rendered for this header's stratum (see [`RefId::display`]).
    pub fn refid_text(&self) -> String {
        self.reference_id.display(self.stratum)
    }
}

/// The message authentication code that may follow the header and extension fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mac<'a> {
    /// Key identifier.
    pub key_id: u32,
    /// Digest bytes: empty for a crypto-NAK, 16 (MD5) or 20 (SHA-1) otherwise.
    pub digest: &'a [u8],
}

impl Mac<'_> {
    /// Whether this is a crypto-NAK (key id only, no digest).
    pub fn is_crypto_nak(&self) -> bool {
        self.digest.is_empty()
    }
}

/// One extension field (RFC 7822): type, and the body after the 4-byte field header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtensionField<'a> {
    /// Field type (e.g. 0x0104 NTS Unique Identifier, 0x0404 NTS Authenticator).
    pub field_type: u16,
    /// Body, padding included.
    pub body: &'a [u8],
}

/// An NTP time packet (modes 0–5) with its trailing extension fields and MAC, borrowed from
/// the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimePacket<'a> {
    /// The fixed header.
    pub header: Header,
    /// Raw bytes of all extension fields (a whole number of well-formed fields).
    pub extensions: &'a [u8],
    /// Number of extension fields in `extensions`.
    pub extension_count: u16,
    /// MAC or crypto-NAK, if present.
    pub mac: Option<Mac<'a>>,
}

impl<'a> TimePacket<'a> {
    /// Decodes a whole datagram of mode 0–5.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let header = Header::decode(bytes)?;
        let (extensions, extension_count, mac) = split_trailer(&bytes[HEADER_LEN..])?;
        Ok(Self { header, extensions, extension_count, mac })
    }

    /// Iterates over the extension fields.
    pub fn extension_fields(&self) -> impl Iterator<Item = ExtensionField<'a>> + 'a {
        let mut rest = self.extensions;
        std::iter::from_fn(move || {
            if rest.len() < 4 {
                return None;
            }
            let field_type = u16::from_be_bytes([rest[0], rest[1]]);
            let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            let field = ExtensionField { field_type, body: &rest[4..len] };
            rest = &rest[len..];
            Some(field)
        })
    }

    /// Encodes the packet back into wire bytes (identical to the decoded datagram).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.wire_len());
        out.extend_from_slice(&self.header.encode());
        out.extend_from_slice(self.extensions);
        if let Some(mac) = self.mac {
            out.extend_from_slice(&mac.key_id.to_be_bytes());
            out.extend_from_slice(mac.digest);
        }
        out
    }

    /// Length of the datagram on the wire (UDP payload).
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.extensions.len() + self.mac.map_or(0, |m| 4 + m.digest.len())
    }
}

/// The kiss code of a header with this mode, stratum and refid (see [`Header::kiss_code`]).
pub(crate) fn kiss_code_of(mode: Mode, stratum: u8, refid: RefId) -> Option<KissCode> {
    if stratum != 0 || !mode.is_server_side() {
        return None;
    }
    let code = refid.0;
    let len = code.iter().position(|&b| b == 0 || b == b' ').unwrap_or(4);
    let plausible = len > 0
        && code[..len].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && code[len..].iter().all(|&b| b == 0 || b == b' ');
    plausible.then_some(KissCode(code))
}

/// Splits what follows the 48-byte header into extension fields and a MAC (RFC 7822 §7.5):
/// 4 remaining bytes are a crypto-NAK, 20 or 24 a MAC, anything else starts an extension field.
pub(crate) fn split_trailer(rest: &[u8]) -> Result<(&[u8], u16, Option<Mac<'_>>), DecodeError> {
    let mut pos = 0usize;
    let mut count = 0u16;
    loop {
        let remaining = rest.len() - pos;
        match remaining {
            0 => return Ok((&rest[..pos], count, None)),
            4 | 20 | 24 => {
                let key_id = u32::from_be_bytes([rest[pos], rest[pos + 1], rest[pos + 2], rest[pos + 3]]);
                let mac = Mac { key_id, digest: &rest[pos + 4..] };
                return Ok((&rest[..pos], count, Some(mac)));
            }
            r if r < 16 => return Err(DecodeError::BadTrailer { offset: HEADER_LEN + pos, remaining: r }),
            _ => {
                let len = usize::from(u16::from_be_bytes([rest[pos + 2], rest[pos + 3]]));
                if len < 16 || len % 4 != 0 || len > remaining {
                    return Err(DecodeError::BadExtensionLength { offset: HEADER_LEN + pos, length: len });
                }
                pos += len;
                count = count.saturating_add(1);
            }
        }
    }
}

/// The 12-byte header of a mode 6 control message (ntpq).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ControlHeader {
    /// Leap indicator bits (zero in practice).
    pub leap: LeapIndicator,
    /// Version number.
    pub version: u8,
    /// Response bit: set in messages from the server.
    pub response: bool,
    /// Error bit.
    pub error: bool,
    /// More bit: further fragments follow.
    pub more: bool,
    /// Opcode (1 READSTAT, 2 READVAR, 10 READ_MRU, …).
    pub opcode: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Status word.
    pub status: u16,
    /// Association identifier.
    pub association_id: u16,
    /// Offset of this fragment's data.
    pub offset: u16,
    /// Count of data bytes in this fragment.
    pub count: u16,
}

impl ControlHeader {
    /// Mode 6 READSTAT.
    pub const OP_READSTAT: u8 = 1;
    /// Mode 6 READVAR.
    pub const OP_READVAR: u8 = 2;
    /// Mode 6 READ_MRU (mrulist).
    pub const OP_READ_MRU: u8 = 10;

    pub(crate) fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() < CONTROL_HEADER_LEN {
            return Err(DecodeError::TooShort { needed: CONTROL_HEADER_LEN, got: b.len() });
        }
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        Ok(Self {
            leap: LeapIndicator(b[0] >> 6),
            version: (b[0] >> 3) & 7,
            response: b[1] & 0x80 != 0,
            error: b[1] & 0x40 != 0,
            more: b[1] & 0x20 != 0,
            opcode: b[1] & 0x1f,
            sequence: u16_at(2),
            status: u16_at(4),
            association_id: u16_at(6),
            offset: u16_at(8),
            count: u16_at(10),
        })
    }

    fn encode(&self) -> [u8; CONTROL_HEADER_LEN] {
        let mut b = [0u8; CONTROL_HEADER_LEN];
        b[0] = (self.leap.0 & 3) << 6 | (self.version & 7) << 3 | Mode::CONTROL.0;
        b[1] =
            u8::from(self.response) << 7 | u8::from(self.error) << 6 | u8::from(self.more) << 5 | (self.opcode & 0x1f);
        b[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        b[4..6].copy_from_slice(&self.status.to_be_bytes());
        b[6..8].copy_from_slice(&self.association_id.to_be_bytes());
        b[8..10].copy_from_slice(&self.offset.to_be_bytes());
        b[10..12].copy_from_slice(&self.count.to_be_bytes());
        b
    }
}

/// The 8-byte header of a mode 7 private message (ntpdc; monlist is request code 42).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PrivateHeader {
    /// Response bit.
    pub response: bool,
    /// More bit.
    pub more: bool,
    /// Version number.
    pub version: u8,
    /// Authenticated bit.
    pub authenticated: bool,
    /// Sequence number (7 bits).
    pub sequence: u8,
    /// Implementation number (0 universal, 2 XNTPD_OLD, 3 XNTPD).
    pub implementation: u8,
    /// Request code (1 PEER_LIST, 20 MON_GETLIST, 42 MON_GETLIST_1, …).
    pub request_code: u8,
    /// Error code (4 bits).
    pub error: u8,
    /// Number of data items (12 bits).
    pub item_count: u16,
    /// Must-be-zero bits (4 bits).
    pub mbz: u8,
    /// Size of each data item (12 bits).
    pub item_size: u16,
}

impl PrivateHeader {
    /// REQ_MON_GETLIST.
    pub const MON_GETLIST: u8 = 20;
    /// REQ_MON_GETLIST_1, the monlist of the 2014 amplification attacks.
    pub const MON_GETLIST_1: u8 = 42;

    /// Whether this is a monlist request or response.
    pub fn is_monlist(&self) -> bool {
        matches!(self.request_code, Self::MON_GETLIST | Self::MON_GETLIST_1)
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() < PRIVATE_HEADER_LEN {
            return Err(DecodeError::TooShort { needed: PRIVATE_HEADER_LEN, got: b.len() });
        }
        Ok(Self {
            response: b[0] & 0x80 != 0,
            more: b[0] & 0x40 != 0,
            version: (b[0] >> 3) & 7,
            authenticated: b[1] & 0x80 != 0,
            sequence: b[1] & 0x7f,
            implementation: b[2],
            request_code: b[3],
            error: b[4] >> 4,
            item_count: u16::from_be_bytes([b[4] & 0x0f, b[5]]),
            mbz: b[6] >> 4,
            item_size: u16::from_be_bytes([b[6] & 0x0f, b[7]]),
        })
    }

    fn encode(&self) -> [u8; PRIVATE_HEADER_LEN] {
        let count = self.item_count.min(0x0fff).to_be_bytes();
        let size = self.item_size.min(0x0fff).to_be_bytes();
        [
            u8::from(self.response) << 7 | u8::from(self.more) << 6 | (self.version & 7) << 3 | Mode::PRIVATE.0,
            u8::from(self.authenticated) << 7 | (self.sequence & 0x7f),
            self.implementation,
            self.request_code,
            (self.error & 0x0f) << 4 | count[0],
            count[1],
            (self.mbz & 0x0f) << 4 | size[0],
            size[1],
        ]
    }
}

/// Any NTP datagram, decoded by its mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NtpMessage<'a> {
    /// Modes 0–5: a time packet.
    Time(TimePacket<'a>),
    /// Mode 6: a control message and everything after its header (data, padding, MAC).
    Control {
        /// The header.
        header: ControlHeader,
        /// Bytes after the 12-byte header.
        payload: &'a [u8],
    },
    /// Mode 7: a private message and everything after its header.
    Private {
        /// The header.
        header: PrivateHeader,
        /// Bytes after the 8-byte header.
        payload: &'a [u8],
    },
}

impl<'a> NtpMessage<'a> {
    /// Decodes one UDP payload. The version must be 1–4 (what real peers send; 0 and 5–7 are
    /// rejected as not NTP).
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let first = *bytes.first().ok_or(DecodeError::TooShort { needed: 1, got: 0 })?;
        let version = (first >> 3) & 7;
        if !(1..=4).contains(&version) {
            return Err(DecodeError::BadVersion(version));
        }
        match Mode(first & 7) {
            Mode::CONTROL => {
                Ok(Self::Control { header: ControlHeader::decode(bytes)?, payload: &bytes[CONTROL_HEADER_LEN..] })
            }
            Mode::PRIVATE => {
                Ok(Self::Private { header: PrivateHeader::decode(bytes)?, payload: &bytes[PRIVATE_HEADER_LEN..] })
            }
            _ => TimePacket::decode(bytes).map(Self::Time),
        }
    }

    /// The mode of this message.
    pub fn mode(&self) -> Mode {
        match self {
            Self::Time(p) => p.header.mode,
            Self::Control { .. } => Mode::CONTROL,
            Self::Private { .. } => Mode::PRIVATE,
        }
    }

    /// The version of this message.
    pub fn version(&self) -> u8 {
        match self {
            Self::Time(p) => p.header.version,
            Self::Control { header, .. } => header.version,
            Self::Private { header, .. } => header.version,
        }
    }

    /// Encodes the message back into wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Time(p) => p.encode(),
            Self::Control { header, payload } => [&header.encode()[..], payload].concat(),
            Self::Private { header, payload } => [&header.encode()[..], payload].concat(),
        }
    }
}

/// Why a datagram is not a well-formed NTP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the header of its mode.
    #[error("too short: {got} bytes, need {needed}")]
    TooShort {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// Version number outside 1–4.
    #[error("version {0} is not an NTP version")]
    BadVersion(u8),
    /// An extension field whose length is below 16, not a multiple of 4, or past the end.
    #[error("extension field at byte {offset} has invalid length {length}")]
    BadExtensionLength {
        /// Byte offset of the field in the datagram.
        offset: usize,
        /// The length it claims.
        length: usize,
    },
    /// Bytes after the header that are neither extension fields nor a MAC.
    #[error("{remaining} trailing bytes at byte {offset} are neither a MAC nor an extension field")]
    BadTrailer {
        /// Byte offset of the trailer.
        offset: usize,
        /// Its length.
        remaining: usize,
    },
}

impl DecodeError {
    /// A short stable name of the reason, for counting malformed packets by kind.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "too_short",
            Self::BadVersion(_) => "bad_version",
            Self::BadExtensionLength { .. } => "bad_extension_length",
            Self::BadTrailer { .. } => "bad_trailer",
        }
    }
}

#[cfg(test)]
mod kiss_tests {
    use super::*;

    fn reply(stratum: u8, refid: [u8; 4]) -> Header {
        Header { version: 4, mode: Mode::SERVER, stratum, reference_id: RefId(refid), ..Header::default() }
    }

    #[test]
    fn kiss_codes_are_ascii_and_only_at_stratum_zero_from_servers() {
        assert_eq!(reply(0, *b"RATE").kiss_code(), Some(KissCode::RATE));
        assert_eq!(reply(0, *b"ACST").kiss_code().map(KissCode::as_text).as_deref(), Some("ACST"));
        assert_eq!(reply(0, [b'X', 0, 0, 0]).kiss_code().map(KissCode::as_text).as_deref(), Some("X"));
        // An unsynchronised chronyd: stratum 0 with its old upstream 127.0.8.11 as refid.
        assert_eq!(reply(0, [127, 0, 8, 11]).kiss_code(), None);
        assert_eq!(reply(0, [0, 0, 0, 0]).kiss_code(), None);
        assert_eq!(reply(2, *b"RATE").kiss_code(), None);
        let request = Header { mode: Mode::CLIENT, ..reply(0, *b"INIT") };
        assert_eq!(request.kiss_code(), None);
    }
}
