//! The few X.509 certificate fields a clock audit needs — validity period, and whether issuer and
//! subject are the same name (self-issued) — read from DER with a minimal, panic-free TLV walker.
//! "Not yet valid" and "expired" are clock findings of their own: a server whose certificate
//! looks expired to us may be the one whose clock is right.

use crate::httpdate::unix_from_civil;

/// Why a certificate could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertInfoError {
    /// The DER structure ended early or has a wrong tag.
    #[error("certificate DER is malformed at byte {0}")]
    Malformed(usize),
    /// A validity time is not a valid UTCTime/GeneralizedTime.
    #[error("certificate validity time {0:?} is malformed")]
    Time(String),
}

/// What [`parse`] extracts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// `notBefore`, Unix seconds.
    pub not_before: i64,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
    /// Issuer and subject names are byte-identical (self-issued, typically self-signed).
    pub self_issued: bool,
}

/// How a certificate's validity period relates to a local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// `now < notBefore`.
    NotYetValid,
    /// Within the period.
    Valid,
    /// `now > notAfter`.
    Expired,
}

impl CertInfo {
    /// Where `now` (Unix seconds) falls relative to the validity period.
    pub fn validity_at(&self, now: i64) -> Validity {
        if now < self.not_before {
            Validity::NotYetValid
        } else if now > self.not_after {
            Validity::Expired
        } else {
            Validity::Valid
        }
    }
}

struct Tlv<'a> {
    tag: u8,
    body: &'a [u8],
    /// Offset of the body in the whole input.
    at: usize,
}

/// Reads one TLV at `pos` of `buf` (whose first byte is at `base` in the whole input).
fn tlv(buf: &[u8], pos: usize, base: usize) -> Result<(Tlv<'_>, usize), CertInfoError> {
    let err = || CertInfoError::Malformed(base + pos);
    let tag = *buf.get(pos).ok_or_else(err)?;
    let first = *buf.get(pos + 1).ok_or_else(err)?;
    let (len, hdr) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(err());
        }
        let bytes = buf.get(pos + 2..pos + 2 + n).ok_or_else(err)?;
        (bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b)), 2 + n)
    };
    let start = pos + hdr;
    let body = buf.get(start..start.checked_add(len).ok_or_else(err)?).ok_or_else(err)?;
    Ok((Tlv { tag, body, at: base + start }, start + len))
}

fn expect(t: &Tlv<'_>, tag: u8) -> Result<(), CertInfoError> {
    if t.tag == tag { Ok(()) } else { Err(CertInfoError::Malformed(t.at)) }
}

fn time(t: &Tlv<'_>) -> Result<i64, CertInfoError> {
    let s = std::str::from_utf8(t.body).map_err(|_| CertInfoError::Malformed(t.at))?;
    let bad = || CertInfoError::Time(s.to_string());
    let digits = s.strip_suffix('Z').ok_or_else(bad)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (year, rest) = match (t.tag, digits.len()) {
        (0x17, 12) => {
            // UTCTime YYMMDDHHMMSSZ: RFC 5280 §4.1.2.5.1, YY ≥ 50 is 19YY.
            let yy: i64 = digits[..2].parse().map_err(|_| bad())?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (0x18, 14) => (digits[..4].parse().map_err(|_| bad())?, &digits[4..]),
        _ => return Err(bad()),
    };
    let f = |i: usize| rest[i..i + 2].parse::<u32>().map_err(|_| bad());
    unix_from_civil(year, f(0)?, f(2)?, f(4)?, f(6)?, f(8)?).map_err(|_| bad())
}

/// Reads validity and issuer/subject equality from a DER certificate.
pub fn parse(der: &[u8]) -> Result<CertInfo, CertInfoError> {
    let (cert, _) = tlv(der, 0, 0)?;
    expect(&cert, 0x30)?;
    let (tbs, _) = tlv(cert.body, 0, cert.at)?;
    expect(&tbs, 0x30)?;
    let body = tbs.body;
    let mut pos = 0;
    let next = |pos: &mut usize| -> Result<Tlv<'_>, CertInfoError> {
        let (t, p) = tlv(body, *pos, tbs.at)?;
        *pos = p;
        Ok(t)
    };
    let mut t = next(&mut pos)?;
    if t.tag == 0xa0 {
        t = next(&mut pos)?; // explicit version
    }
    expect(&t, 0x02)?; // serial
    expect(&next(&mut pos)?, 0x30)?; // signature algorithm
    let issuer = next(&mut pos)?;
    expect(&issuer, 0x30)?;
    let validity = next(&mut pos)?;
    expect(&validity, 0x30)?;
    let subject = next(&mut pos)?;
    expect(&subject, 0x30)?;
    let (nb, p) = tlv(validity.body, 0, validity.at)?;
    let (na, _) = tlv(validity.body, p, validity.at)?;
    Ok(CertInfo { not_before: time(&nb)?, not_after: time(&na)?, self_issued: issuer.body == subject.body })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed EC certificate made with
    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=expired.test
    /// -days 1` under `faketime '2020-01-01 00:00:00'`: valid 2020-01-01T00:00:00 to 2020-01-02.
    const EXPIRED_SELF_SIGNED: &str = include_str!("../tests/data/expired-self-signed.pem");

    fn pem_to_der(pem: &str) -> Vec<u8> {
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64_decode(&b64)
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        let val = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(val).collect();
        let mut out = Vec::new();
        for chunk in bytes.chunks(4) {
            let n = chunk.iter().enumerate().fold(0u32, |a, (i, &v)| a | (u32::from(v) << (18 - 6 * i)));
            out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
        }
        out
    }

    #[test]
    fn reads_validity_and_self_issued() {
        let info = parse(&pem_to_der(EXPIRED_SELF_SIGNED)).unwrap();
        assert_eq!(info.not_before, 1_577_836_800);
        assert_eq!(info.not_after, 1_577_923_200);
        assert!(info.self_issued);
        assert_eq!(info.validity_at(1_577_836_799), Validity::NotYetValid);
        assert_eq!(info.validity_at(1_577_900_000), Validity::Valid);
        assert_eq!(info.validity_at(1_577_923_201), Validity::Expired);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let der = pem_to_der(EXPIRED_SELF_SIGNED);
        for n in 0..der.len() {
            assert!(parse(&der[..n]).is_err(), "prefix {n}");
        }
        assert_eq!(parse(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), Err(CertInfoError::Malformed(0)));
        assert_eq!(parse(&[]), Err(CertInfoError::Malformed(0)));
    }
}
