//! A minimal authoritative DNS answerer for the lab's names: A records from a fixed table, an
//! empty NOERROR answer for other types of known names, NXDOMAIN otherwise (RFC 1035 wire format).

use std::net::Ipv4Addr;

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Class IN.
pub const CLASS_IN: u16 = 1;
/// TTL of the lab's answers: 0, so that resolvers ask again and see every address each time.
pub const ANSWER_TTL: u32 = 0;
const RCODE_NXDOMAIN: u16 = 3;
const RCODE_FORMERR: u16 = 1;

/// One name of the lab and its IPv4 addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsName {
    /// Fully qualified name without the trailing dot, lowercase.
    pub name: String,
    /// Its A records.
    pub addresses: Vec<Ipv4Addr>,
}

/// A parsed question: name (lowercase, no trailing dot), type, class, and where it ends.
fn parse_question(q: &[u8]) -> Option<(String, u16, u16, usize)> {
    let mut pos = 12usize;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = usize::from(*q.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // compression pointers are not used in questions
        }
        let label = q.get(pos..pos + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*q.get(pos)?, *q.get(pos + 1)?]);
    let qclass = u16::from_be_bytes([*q.get(pos + 2)?, *q.get(pos + 3)?]);
    Some((labels.join("."), qtype, qclass, pos + 4))
}

/// The answer to one query datagram, or `None` when it is not a query worth answering (too
/// short, a response, or not a standard query).
pub fn answer(query: &[u8], names: &[DnsName]) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([query[2], query[3]]);
    let is_response = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    if is_response || opcode != 0 {
        return None;
    }
    let rd = flags & 0x0100;
    let qdcount = u16::from_be_bytes([query[4], query[5]]);
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&query[..2]);
    let header = |out: &mut Vec<u8>, rcode: u16, qd: u16, an: u16| {
        out.extend_from_slice(&(0x8400 | rd | rcode).to_be_bytes());
        out.extend_from_slice(&qd.to_be_bytes());
        out.extend_from_slice(&an.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
    };
    let parsed = if qdcount == 1 { parse_question(query) } else { None };
    let Some((name, qtype, qclass, qend)) = parsed else {
        header(&mut out, RCODE_FORMERR, 0, 0);
        return Some(out);
    };
    let entry = names.iter().find(|n| n.name == name.trim_end_matches('.'));
    let addrs: &[Ipv4Addr] = match entry {
        Some(e) if qtype == TYPE_A && qclass == CLASS_IN => &e.addresses,
        Some(_) => &[],
        None => {
            header(&mut out, RCODE_NXDOMAIN, 1, 0);
            out.extend_from_slice(&query[12..qend]);
            return Some(out);
        }
    };
    let an = u16::try_from(addrs.len()).unwrap_or(u16::MAX);
    header(&mut out, 0, 1, an);
    out.extend_from_slice(&query[12..qend]);
    for a in addrs.iter().take(usize::from(an)) {
        out.extend_from_slice(&[0xc0, 0x0c]); // pointer to the question's name
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ANSWER_TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&a.octets());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    fn table() -> Vec<DnsName> {
        vec![DnsName {
            name: "pool.lab.test".into(),
            addresses: vec![Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)],
        }]
    }

    #[test]
    fn answers_every_a_record() {
        let q = query("Pool.Lab.Test", TYPE_A);
        let a = answer(&q, &table()).unwrap();
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(u16::from_be_bytes([a[2], a[3]]), 0x8500, "QR, AA, RD echoed, NOERROR");
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 2);
        let answers = &a[q.len()..];
        assert_eq!(answers.len(), 2 * 16);
        assert_eq!(&answers[12..16], &[127, 0, 0, 2]);
        assert_eq!(&answers[28..32], &[127, 0, 0, 3]);
    }

    #[test]
    fn empty_for_aaaa_nxdomain_for_unknown_none_for_junk() {
        let a = answer(&query("pool.lab.test", 28), &table()).unwrap();
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 0);
        assert_eq!(a[3] & 0x0f, 0);
        let n = answer(&query("nope.lab.test", TYPE_A), &table()).unwrap();
        assert_eq!(n[3] & 0x0f, 3);
        assert!(answer(&[1, 2, 3], &table()).is_none());
        let mut truncated = query("pool.lab.test", TYPE_A);
        truncated.truncate(20);
        assert_eq!(answer(&truncated, &table()).unwrap()[3] & 0x0f, 1, "FORMERR");
    }
}
