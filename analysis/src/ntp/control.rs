//! NTP mode 6 (control, RFC 9327 / ntpq) requests and replies beyond the header: building
//! READSTAT/READVAR requests, reassembling fragmented replies, parsing the `name=value` variable
//! list and the association list; and the mode 7 (ntpdc) request used to test for monlist
//! exposure. Pure: bytes in, values out.

use super::packet::{ControlHeader, NtpMessage, PrivateHeader};
use std::collections::BTreeMap;

/// NTP version put in the control requests (ntpq sends 2 for compatibility with old servers).
pub const CONTROL_VERSION: u8 = 2;
/// Largest reassembled reply accepted (bytes); more is treated as malformed.
pub const MAX_CONTROL_DATA: usize = 64 * 1024;

/// A mode 6 request: `opcode` for association `association_id` with optional data (e.g. a
/// comma-separated list of variable names for READVAR).
pub fn control_request(opcode: u8, sequence: u16, association_id: u16, data: &[u8]) -> Vec<u8> {
    let header = ControlHeader {
        version: CONTROL_VERSION,
        opcode,
        sequence,
        association_id,
        count: data.len().min(usize::from(u16::MAX)) as u16,
        ..ControlHeader::default()
    };
    let mut payload = data.to_vec();
    while !payload.len().is_multiple_of(4) {
        payload.push(0);
    }
    NtpMessage::Control { header, payload: &payload }.encode()
}

/// READSTAT (opcode 1) for the system (association 0): the reply lists the associations.
pub fn readstat_request(sequence: u16) -> Vec<u8> {
    control_request(ControlHeader::OP_READSTAT, sequence, 0, &[])
}

/// READVAR (opcode 2) of one association (0 = the system variables), all variables.
pub fn readvar_request(sequence: u16, association_id: u16) -> Vec<u8> {
    control_request(ControlHeader::OP_READVAR, sequence, association_id, &[])
}

/// Why a control reply could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Not an NTP datagram, or not mode 6.
    #[error("not a mode 6 reply: {0}")]
    NotControl(String),
    /// A fragment whose offset/count run past the datagram or the size limit.
    #[error("fragment at offset {offset} with count {count} does not fit ({available} bytes present)")]
    BadFragment {
        /// Offset claimed.
        offset: u16,
        /// Count claimed.
        count: u16,
        /// Data bytes in the datagram.
        available: usize,
    },
    /// The server set the error bit; the status word carries its code.
    #[error("server answered with error code {0}")]
    ServerError(u16),
}

/// Where a reassembly stands after a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// More fragments are needed.
    Incomplete,
    /// The reply is complete: call [`Reassembly::data`].
    Complete,
    /// The datagram belongs to another request (sequence or opcode differ) and was ignored.
    Ignored,
}

/// Collects the fragments of one mode 6 reply (any order, duplicates tolerated).
#[derive(Clone, Debug, Default)]
pub struct Reassembly {
    sequence: u16,
    opcode: u8,
    fragments: BTreeMap<u16, Vec<u8>>,
    end: Option<usize>,
    /// Status word of the last fragment accepted.
    pub status: u16,
    /// Association id of the reply.
    pub association_id: u16,
    /// Datagrams accepted.
    pub datagrams: usize,
    /// Bytes of all accepted datagrams (UDP payload).
    pub bytes: usize,
}

impl Reassembly {
    /// Starts collecting the reply to the request with `sequence` and `opcode`.
    pub fn new(sequence: u16, opcode: u8) -> Self {
        Self { sequence, opcode, ..Self::default() }
    }

    /// Adds one received datagram.
    pub fn push(&mut self, datagram: &[u8]) -> Result<Progress, ControlError> {
        let (header, payload) = match NtpMessage::decode(datagram) {
            Ok(NtpMessage::Control { header, payload }) => (header, payload),
            Ok(other) => return Err(ControlError::NotControl(format!("mode {}", other.mode().0))),
            Err(e) => return Err(ControlError::NotControl(e.to_string())),
        };
        if !header.response || header.sequence != self.sequence || header.opcode != self.opcode {
            return Ok(Progress::Ignored);
        }
        if header.error {
            return Err(ControlError::ServerError(header.status >> 8));
        }
        let (offset, count) = (usize::from(header.offset), usize::from(header.count));
        if count > payload.len() || offset + count > MAX_CONTROL_DATA {
            return Err(ControlError::BadFragment {
                offset: header.offset,
                count: header.count,
                available: payload.len(),
            });
        }
        self.datagrams += 1;
        self.bytes += datagram.len();
        self.status = header.status;
        self.association_id = header.association_id;
        self.fragments.insert(header.offset, payload[..count].to_vec());
        if !header.more {
            self.end = Some(offset + count);
        }
        Ok(if self.is_complete() { Progress::Complete } else { Progress::Incomplete })
    }

    fn is_complete(&self) -> bool {
        let Some(end) = self.end else { return false };
        let mut covered = 0usize;
        for (&off, data) in &self.fragments {
            if usize::from(off) > covered {
                return false;
            }
            covered = covered.max(usize::from(off) + data.len());
        }
        covered >= end
    }

    /// The reassembled data (meaningful once complete).
    pub fn data(&self) -> Vec<u8> {
        let end = self.end.unwrap_or(0);
        let mut out = vec![0u8; end];
        for (&off, data) in &self.fragments {
            let off = usize::from(off);
            let stop = (off + data.len()).min(end);
            if off < stop {
                out[off..stop].copy_from_slice(&data[..stop - off]);
            }
        }
        out
    }
}

/// Parses a READVAR reply body: `name=value` pairs separated by commas (and line breaks);
/// values may be double-quoted and contain commas. Names without `=` get an empty value.
/// Non-UTF-8 bytes are replaced; never fails.
pub fn parse_variables(data: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    let mut item = String::new();
    let mut quoted = false;
    let mut flush = |item: &mut String| {
        let t = item.trim().trim_end_matches('\0').trim();
        if !t.is_empty() {
            let (name, value) = match t.split_once('=') {
                Some((n, v)) => (n.trim(), v.trim()),
                None => (t, ""),
            };
            let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
            out.push((name.to_string(), value.to_string()));
        }
        item.clear();
    };
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                item.push(c);
            }
            ',' if !quoted => flush(&mut item),
            _ => item.push(c),
        }
    }
    flush(&mut item);
    out
}

/// Parses a READSTAT reply body: (association id, status word) pairs.
pub fn parse_associations(data: &[u8]) -> Vec<(u16, u16)> {
    data.chunks_exact(4).map(|c| (u16::from_be_bytes([c[0], c[1]]), u16::from_be_bytes([c[2], c[3]]))).collect()
}

/// Implementation number of ntpd ("XNTPD") in mode 7 requests.
pub const IMPL_XNTPD: u8 = 3;
/// Length of a mode 7 request without MAC (8-byte header + 40 data bytes), as ntpdc sends.
pub const PRIVATE_REQUEST_LEN: usize = 48;

/// A mode 7 request with `request_code` (e.g. [`PrivateHeader::MON_GETLIST_1`]), no items.
pub fn private_request(sequence: u8, request_code: u8) -> Vec<u8> {
    let header = PrivateHeader {
        version: CONTROL_VERSION,
        sequence,
        implementation: IMPL_XNTPD,
        request_code,
        ..PrivateHeader::default()
    };
    let data = [0u8; PRIVATE_REQUEST_LEN - super::packet::PRIVATE_HEADER_LEN];
    NtpMessage::Private { header, payload: &data }.encode()
}

/// Whether `datagram` is a mode 7 response to a request with `request_code`, and whether more
/// datagrams follow.
pub fn private_response(datagram: &[u8], request_code: u8) -> Option<PrivateHeader> {
    match NtpMessage::decode(datagram) {
        Ok(NtpMessage::Private { header, .. }) if header.response && header.request_code == request_code => {
            Some(header)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(seq: u16, more: bool, offset: u16, data: &[u8]) -> Vec<u8> {
        let header = ControlHeader {
            version: 2,
            response: true,
            more,
            opcode: ControlHeader::OP_READVAR,
            sequence: seq,
            status: 0x0615,
            offset,
            count: data.len() as u16,
            ..ControlHeader::default()
        };
        let mut payload = data.to_vec();
        while !payload.len().is_multiple_of(4) {
            payload.push(0);
        }
        NtpMessage::Control { header, payload: &payload }.encode()
    }

    #[test]
    fn request_bytes() {
        // What `ntpq -c rv` sends: version 2, mode 6, opcode 2, sequence 1, association 0.
        assert_eq!(readvar_request(1, 0), vec![0x16, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(readstat_request(7), vec![0x16, 0x01, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]);
        let m7 = private_request(0, PrivateHeader::MON_GETLIST_1);
        assert_eq!(m7.len(), 48);
        assert_eq!(&m7[..8], &[0x17, 0x00, 0x03, 0x2a, 0, 0, 0, 0]);
    }

    #[test]
    fn fragments_out_of_order_reassemble() {
        let text = b"version=\"ntpd 1.2.2, x\", stratum=2,\r\nrefid=127.0.8.1";
        let mut r = Reassembly::new(5, ControlHeader::OP_READVAR);
        assert_eq!(r.push(&reply(5, false, 20, &text[20..])), Ok(Progress::Incomplete));
        assert_eq!(r.push(&reply(4, true, 0, &text[..20])), Ok(Progress::Ignored));
        assert_eq!(r.push(&reply(5, true, 0, &text[..20])), Ok(Progress::Complete));
        assert_eq!(r.data(), text.to_vec());
        assert_eq!(r.datagrams, 2);
        assert_eq!(
            parse_variables(&r.data()),
            vec![
                ("version".into(), "ntpd 1.2.2, x".into()),
                ("stratum".into(), "2".into()),
                ("refid".into(), "127.0.8.1".into())
            ]
        );
    }

    #[test]
    fn bad_fragments_are_errors_not_panics() {
        let mut bytes = reply(1, false, 0, b"abcd");
        bytes[11] = 200; // count past the datagram
        let mut r = Reassembly::new(1, ControlHeader::OP_READVAR);
        assert!(matches!(r.push(&bytes), Err(ControlError::BadFragment { count: 200, .. })));
        assert!(matches!(r.push(&[0x16]), Err(ControlError::NotControl(_))));
        let mut err = reply(1, false, 0, b"");
        err[1] |= 0x40;
        err[4] = 4;
        assert_eq!(r.push(&err), Err(ControlError::ServerError(4)));
        assert_eq!(parse_associations(&[0, 1, 0x96, 0x1a, 0, 2]), vec![(1, 0x961a)]);
        assert_eq!(
            parse_variables(b"a, =, b=\"unterminated"),
            vec![("a".into(), "".into()), ("".into(), "".into()), ("b".into(), "\"unterminated".into())]
        );
    }
}

#[cfg(test)]
mod robustness {
    use super::*;

    #[test]
    fn random_datagrams_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for round in 0..5000 {
            let len = round % 600;
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(x as u8);
            }
            if !bytes.is_empty() {
                bytes[0] = (bytes[0] & 0xc0) | 0x16; // version 2, mode 6
            }
            let mut r = Reassembly::new(u16::from_be_bytes([x as u8, (x >> 8) as u8]), (x >> 16) as u8 & 0x1f);
            let _ = r.push(&bytes);
            let _ = r.data();
            let _ = parse_variables(&bytes);
            let _ = parse_associations(&bytes);
            let _ = private_response(&bytes, PrivateHeader::MON_GETLIST_1);
        }
    }
}
