//! Async SNTP client (tokio UDP): mode-3 v4 queries with a random transmit timestamp, strict
//! checks of each reply, several spaced samples per probe with the minimum-delay one kept, and
//! Kiss-o'-Death handling (RATE: back off, DENY/RSTR: stop).
//!
//! Written on the project's own codec rather than rsntp, which does not expose T1–T4, root
//! delay and dispersion, reference time, poll, precision or version, and drops the offset of an
//! unsynchronised server.

use crate::clock::Clock;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use timeaudit_analysis::ntp::{Header, KissCode, LeapIndicator, Mode, NtpSample, NtpTimestamp, TimePacket};
use timeaudit_analysis::observation::ErrorKind;
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// NTP version of the queries.
pub const QUERY_VERSION: u8 = 4;
/// Largest datagram read (NTS replies carry ~1 kB of extension fields).
pub const MAX_DATAGRAM: usize = 2048;
/// Stratum of an unsynchronised server.
pub const STRATUM_UNSYNCHRONIZED: u8 = 16;

/// How one NTP probe is made.
#[derive(Clone, Debug)]
pub struct NtpOptions {
    /// Exchanges per probe; the minimum-delay valid one is kept.
    pub samples: u32,
    /// Wait for each reply.
    pub timeout: Duration,
    /// Pause between the start of successive exchanges (2 s matches ntpd's default `discard
    /// minimum`, so servers with `limited` do not answer RATE).
    pub interval: Duration,
}

impl Default for NtpOptions {
    fn default() -> Self {
        Self { samples: 4, timeout: Duration::from_secs(2), interval: Duration::from_secs(2) }
    }
}

/// One valid exchange.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exchange {
    /// T1 (local send), T2, T3 (server), T4 (local receive).
    pub sample: NtpSample,
    /// T1 as Unix seconds, read from the local clock.
    pub t1_unix: f64,
    /// T4 as Unix seconds, read from the local clock.
    pub t4_unix: f64,
    /// The reply's header.
    pub header: Header,
}

impl Exchange {
    /// Whether the server says it is unsynchronised.
    pub fn unsynchronized(&self) -> bool {
        self.header.leap == LeapIndicator::UNSYNCHRONIZED
            || self.header.stratum == 0
            || self.header.stratum >= STRATUM_UNSYNCHRONIZED
    }
}

/// The result of one probe of one address.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NtpProbe {
    /// The minimum-delay valid exchange, if any.
    pub best: Option<Exchange>,
    /// Number of queries sent.
    pub sent: u32,
    /// Number of valid replies received.
    pub valid: u32,
    /// What went wrong: the most telling problem seen (KoD over bad replies over timeouts), or
    /// `unsynchronized` for a measured but unsynchronised server.
    pub error: Option<ErrorKind>,
}

/// The outcome of one exchange.
#[derive(Debug)]
enum Outcome {
    Valid(Exchange),
    Kod(KissCode),
    Failed(ErrorKind),
}

/// Probes `addr` with `opts.samples` exchanges.
pub async fn probe(addr: SocketAddr, opts: &NtpOptions, clock: &dyn Clock) -> NtpProbe {
    let mut result = NtpProbe::default();
    let socket = match bind_connected(addr).await {
        Ok(s) => s,
        Err(e) => {
            result.error = Some(io_kind(&e));
            return result;
        }
    };
    let mut problems: Vec<ErrorKind> = Vec::new();
    let samples = opts.samples.max(1);
    let mut next_start = Instant::now();
    for i in 0..samples {
        if i > 0 {
            next_start += opts.interval;
            tokio::time::sleep_until(next_start).await;
        }
        result.sent += 1;
        match exchange(&socket, opts.timeout, clock).await {
            Outcome::Valid(ex) => {
                result.valid += 1;
                if result.best.is_none_or(|b| ex.sample.delay() < b.sample.delay()) {
                    result.best = Some(ex);
                }
            }
            Outcome::Kod(code) => {
                problems.push(ErrorKind::Kod(code));
                if code.demands_stop() || code == KissCode::RATE {
                    // DENY/RSTR: stop. RATE: the only way a one-shot probe can reduce its rate
                    // is to send nothing more; the caller sees `kod:RATE` and backs off.
                    break;
                }
            }
            Outcome::Failed(kind) => {
                let stop = kind == ErrorKind::Refused || kind == ErrorKind::Io;
                problems.push(kind);
                if stop {
                    break;
                }
            }
        }
    }
    result.error = worst(&problems);
    if let Some(best) = result.best {
        // A measurement was made: transient losses are not errors, but a KoD still is, and an
        // unsynchronised server is always flagged.
        result.error = match result.error {
            Some(k @ ErrorKind::Kod(_)) => Some(k),
            _ if best.unsynchronized() => Some(ErrorKind::Unsynchronized),
            _ => None,
        };
    }
    result
}

/// Rank of a problem: the most informative one is reported.
fn rank(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Kod(c) if c.demands_stop() => 6,
        ErrorKind::Kod(_) => 5,
        ErrorKind::Refused => 4,
        ErrorKind::BadOrigin => 3,
        ErrorKind::BadReply => 2,
        ErrorKind::Io => 1,
        _ => 0,
    }
}

fn worst(problems: &[ErrorKind]) -> Option<ErrorKind> {
    problems.iter().copied().max_by_key(|&k| rank(k))
}

fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
        _ => ErrorKind::Io,
    }
}

async fn bind_connected(addr: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = match addr.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    // Connected: the kernel drops datagrams from any other source and reports ICMP port
    // unreachable as ECONNREFUSED.
    socket.connect(addr).await?;
    Ok(socket)
}

/// Builds a client request whose transmit timestamp is the given (random) nonce.
pub fn client_request(nonce: NtpTimestamp) -> [u8; 48] {
    Header {
        leap: LeapIndicator::NO_WARNING,
        version: QUERY_VERSION,
        mode: Mode::CLIENT,
        transmit_ts: nonce,
        ..Header::default()
    }
    .encode()
}

/// Why a reply was rejected, before KoD handling.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplyCheck {
    /// A usable server reply.
    Ok(Header),
    /// A Kiss-o'-Death answering our request.
    Kod(KissCode),
    /// A reply to someone else's request (or a replay): keep waiting.
    WrongOrigin,
    /// Not a sane server reply.
    Bad,
}

/// Checks one received datagram against the nonce sent (RFC 5905 §8 checks, plus sanity of
/// the timestamps). Pure: usable on captured bytes.
pub fn check_reply(bytes: &[u8], nonce: NtpTimestamp) -> ReplyCheck {
    let Ok(packet) = TimePacket::decode(bytes) else { return ReplyCheck::Bad };
    let h = packet.header;
    if h.mode != Mode::SERVER || !(1..=4).contains(&h.version) {
        return ReplyCheck::Bad;
    }
    if h.origin_ts != nonce {
        return ReplyCheck::WrongOrigin;
    }
    if let Some(code) = h.kiss_code() {
        return ReplyCheck::Kod(code);
    }
    if h.stratum > STRATUM_UNSYNCHRONIZED || h.transmit_ts.is_zero() || h.receive_ts.is_zero() {
        return ReplyCheck::Bad;
    }
    // The server cannot send before it received.
    if h.transmit_ts.since(h.receive_ts).0 < 0 {
        return ReplyCheck::Bad;
    }
    ReplyCheck::Ok(h)
}

async fn exchange(socket: &UdpSocket, timeout: Duration, clock: &dyn Clock) -> Outcome {
    let nonce = NtpTimestamp(rand::random::<u64>());
    let request = client_request(nonce);
    let deadline = Instant::now() + timeout;
    let t1 = clock.now_ntp();
    let t1_unix = t1.to_unix_near(clock.now_unix());
    if let Err(e) = socket.send(&request).await {
        return Outcome::Failed(io_kind(&e));
    }
    let mut buf = [0u8; MAX_DATAGRAM];
    // A reply that fails the checks is ignored (it may be forged or late) and the wait goes on;
    // if nothing valid arrives, the reason it failed is reported instead of `timeout`.
    let mut rejected: Option<ErrorKind> = None;
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await;
        let t4 = clock.now_ntp();
        let len = match received {
            Err(_elapsed) => return Outcome::Failed(rejected.unwrap_or(ErrorKind::Timeout)),
            Ok(Err(e)) => return Outcome::Failed(io_kind(&e)),
            Ok(Ok(len)) => len,
        };
        match check_reply(&buf[..len], nonce) {
            ReplyCheck::Ok(header) => {
                let sample = NtpSample { t1, t2: header.receive_ts, t3: header.transmit_ts, t4 };
                let t4_unix = t1_unix + t4.since(t1).to_seconds();
                return Outcome::Valid(Exchange { sample, t1_unix, t4_unix, header });
            }
            ReplyCheck::Kod(code) => return Outcome::Kod(code),
            ReplyCheck::WrongOrigin => rejected = rejected.max_by_rank(ErrorKind::BadOrigin),
            ReplyCheck::Bad => rejected = rejected.max_by_rank(ErrorKind::BadReply),
        }
    }
}

trait MaxByRank {
    fn max_by_rank(self, other: ErrorKind) -> Self;
}

impl MaxByRank for Option<ErrorKind> {
    fn max_by_rank(self, other: ErrorKind) -> Self {
        match self {
            Some(k) if rank(k) >= rank(other) => Some(k),
            _ => Some(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(nonce: NtpTimestamp) -> Header {
        Header {
            version: 4,
            mode: Mode::SERVER,
            stratum: 2,
            origin_ts: nonce,
            receive_ts: NtpTimestamp(0xE000_0000_0000_0000),
            transmit_ts: NtpTimestamp(0xE000_0000_0000_1000),
            ..Header::default()
        }
    }

    #[test]
    fn request_is_mode3_v4_with_the_nonce() {
        let b = client_request(NtpTimestamp(0x0102_0304_0506_0708));
        assert_eq!(b[0], 0x23);
        assert_eq!(&b[40..48], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(b[1..40].iter().all(|&x| x == 0));
    }

    #[test]
    fn reply_checks() {
        let n = NtpTimestamp(42);
        let good = reply(n);
        assert_eq!(check_reply(&good.encode(), n), ReplyCheck::Ok(good));
        assert_eq!(check_reply(&good.encode(), NtpTimestamp(43)), ReplyCheck::WrongOrigin);
        assert_eq!(check_reply(&good.encode()[..40], n), ReplyCheck::Bad);
        assert_eq!(check_reply(&Header { mode: Mode::CLIENT, ..good }.encode(), n), ReplyCheck::Bad);
        assert_eq!(check_reply(&Header { stratum: 17, ..good }.encode(), n), ReplyCheck::Bad);
        assert_eq!(check_reply(&Header { transmit_ts: NtpTimestamp::ZERO, ..good }.encode(), n), ReplyCheck::Bad);
        let backwards = Header { transmit_ts: NtpTimestamp(0xD000_0000_0000_0000), ..good };
        assert_eq!(check_reply(&backwards.encode(), n), ReplyCheck::Bad);
        let kod = Header { stratum: 0, reference_id: timeaudit_analysis::ntp::RefId(*b"RATE"), ..good };
        assert_eq!(check_reply(&kod.encode(), n), ReplyCheck::Kod(KissCode::RATE));
        // A KoD with a wrong origin is not honoured (it could be forged).
        assert_eq!(check_reply(&kod.encode(), NtpTimestamp(7)), ReplyCheck::WrongOrigin);
    }

    #[test]
    fn worst_problem_wins() {
        assert_eq!(worst(&[ErrorKind::Timeout, ErrorKind::BadReply]), Some(ErrorKind::BadReply));
        assert_eq!(
            worst(&[ErrorKind::Kod(KissCode::RATE), ErrorKind::Kod(KissCode::DENY)]),
            Some(ErrorKind::Kod(KissCode::DENY))
        );
        assert_eq!(worst(&[]), None);
    }
}
