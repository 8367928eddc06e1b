//! The replies of the lab's servers: an NTP mode 4 answer to a mode 3 request, and the HTTP
//! `Date` header (IMF-fixdate), both stamped from a [`LabClock`](super::LabClock) reading.

use crate::ntp::{Header, LeapIndicator, Mode, NtpShort, NtpTimestamp, RefId, TimePacket};

/// Stratum the lab's NTP servers claim.
pub const LAB_STRATUM: u8 = 2;
/// Precision exponent the lab's NTP servers claim (2^-20 s ≈ 1 µs).
pub const LAB_PRECISION: i8 = -20;
/// How long before the reply the lab's servers claim their clock was last set.
pub const LAB_REFERENCE_AGE_S: f64 = 16.0;

/// The mode 4 reply to `request` (a mode 3 datagram), stamped with the bent clock's readings at
/// reception (`t2`) and transmission (`t3`), Unix seconds. `None` if the request is not a well-
/// formed client request (the server then stays silent, as real servers do).
pub fn ntp_reply(request: &[u8], t2: f64, t3: f64) -> Option<Vec<u8>> {
    let req = TimePacket::decode(request).ok()?.header;
    if req.mode != Mode::CLIENT || !(1..=4).contains(&req.version) {
        return None;
    }
    let header = Header {
        leap: LeapIndicator::NO_WARNING,
        version: req.version,
        mode: Mode::SERVER,
        stratum: LAB_STRATUM,
        poll: req.poll,
        precision: LAB_PRECISION,
        root_delay: NtpShort::from_seconds(0.001),
        root_dispersion: NtpShort::from_seconds(0.001),
        reference_id: RefId([127, 127, 1, 0]),
        reference_ts: NtpTimestamp::from_unix(t3 - LAB_REFERENCE_AGE_S),
        origin_ts: req.transmit_ts,
        receive_ts: NtpTimestamp::from_unix(t2),
        transmit_ts: NtpTimestamp::from_unix(t3),
    };
    Some(header.encode().to_vec())
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Unix seconds (the fraction is dropped, as servers do) as an IMF-fixdate,
/// e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(unix: f64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = unix.floor() as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ntp::NtpSample;

    #[test]
    fn http_date_matches_rfc_example() {
        assert_eq!(http_date(784_111_777.9), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0.0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400.0), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn ntp_reply_gives_the_bent_offset() {
        let t1 = 1_700_000_000.0;
        let mut req = Header { version: 4, mode: Mode::CLIENT, ..Header::default() };
        req.transmit_ts = NtpTimestamp::from_unix(t1);
        let reply = ntp_reply(&req.encode(), t1 + 90.001, t1 + 90.0012).unwrap();
        let h = Header::decode(&reply).unwrap();
        assert_eq!((h.mode, h.version, h.stratum), (Mode::SERVER, 4, LAB_STRATUM));
        assert_eq!(h.origin_ts, req.transmit_ts);
        let s = NtpSample {
            t1: req.transmit_ts,
            t2: h.receive_ts,
            t3: h.transmit_ts,
            t4: NtpTimestamp::from_unix(t1 + 0.002),
        };
        assert!((s.offset().to_seconds() - 90.0001).abs() < 1e-5);
        let mut server = req;
        server.mode = Mode::SERVER;
        assert!(ntp_reply(&server.encode(), t1, t1).is_none(), "only client requests are answered");
        assert!(ntp_reply(&[0x23; 10], t1, t1).is_none());
    }
}
