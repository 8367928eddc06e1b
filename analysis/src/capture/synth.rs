//! Synthetic NTP server captures with known totals: a deterministic generator of Ethernet/IPv4/UDP
//! and Ethernet/IPv6/UDP frames for one (dual-stack) server and many clients — Zipf-like query counts, 64 s pollers stuck at
//! minpoll, clients backing off to 1024 s, abusive sub-second clients answered partly with KoD
//! RATE, a few mode 6 and mode 7 (monlist) exchanges, and some malformed requests. Every emitted
//! frame is tallied in [`SynthTruth`], which tests compare with what the analyzer reads back.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const NS: i64 = 1_000_000_000;
/// Seconds from 1900 to 1970.
const NTP_UNIX: u64 = 2_208_988_800;

/// Parameters of a synthetic capture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SynthParams {
    /// Number of clients.
    pub clients: u32,
    /// Stop after this many frames.
    pub max_packets: u64,
    /// Stop when the capture spans this many seconds.
    pub duration_s: f64,
    /// Unix time of the start.
    pub start_unix: i64,
    /// PRNG seed.
    pub seed: u64,
    /// Server address (IPv4 clients).
    pub server: Ipv4Addr,
    /// Server address (IPv6 clients).
    pub server_v6: Ipv6Addr,
    /// Share of clients on IPv6, percent (client `i` is when `i % 100 < ipv6_pct`).
    pub ipv6_pct: u32,
    /// IPv4 clients spread over the unicast space (as a public server's are) instead of
    /// numbered from 10.0.0.1.
    pub spread_v4: bool,
    /// Share of abusive clients (sub-second polling), per million.
    pub abusive_ppm: u32,
    /// Share of clients stuck at minpoll (64 s), percent.
    pub minpoll_pct: u32,
    /// Share of clients backing off from 64 s to 1024 s, percent.
    pub backoff_pct: u32,
    /// One client in this many sends mode 6 or mode 7 queries (0: none).
    pub control_every: u32,
    /// One client in this many sends malformed packets (0: none).
    pub malformed_every: u32,
}

impl Default for SynthParams {
    fn default() -> Self {
        Self {
            clients: 1000,
            max_packets: 100_000,
            duration_s: 2700.0,
            start_unix: 1_700_000_000,
            seed: 1,
            server: Ipv4Addr::new(192, 0, 2, 123),
            server_v6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x123),
            ipv6_pct: 0,
            spread_v4: false,
            abusive_ppm: 2000,
            minpoll_pct: 20,
            backoff_pct: 30,
            control_every: 5000,
            malformed_every: 2000,
        }
    }
}

/// What a synthetic client does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynthKind {
    /// Polls every 0.1–0.9 s; every 4th request is answered, every 4th + 1 gets a KoD RATE.
    Abusive,
    /// Polls every 64 s ± 1 s.
    Minpoll,
    /// Polls at 64, 128, 256, 512, then 1024 s.
    Backoff,
    /// Polls at a fixed interval chosen so that its query count is Zipf-like.
    Zipf,
    /// Alternates mode 6 READVAR and mode 7 MON_GETLIST_1 requests every 30 s.
    Control,
    /// Sends 20-byte version-0 garbage every 64 s (never answered).
    Malformed,
}

#[derive(Clone, Copy, Debug)]
struct ClientGen {
    kind: SynthKind,
    interval_ns: i64,
    sent: u32,
}

/// Totals of what the generator emitted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SynthTruth {
    /// Frames.
    pub packets: u64,
    /// Wire bytes of all frames.
    pub bytes: u64,
    /// Requests (modes 3, 6 and 7 from clients).
    pub requests: u64,
    /// Responses (modes 4, 6 and 7 from the server; KoD included).
    pub responses: u64,
    /// KoD RATE replies.
    pub kod_rate: u64,
    /// Mode 6 packets.
    pub mode6: u64,
    /// Mode 7 packets.
    pub mode7: u64,
    /// Monlist responses.
    pub monlist_responses: u64,
    /// Malformed packets.
    pub malformed: u64,
    /// Wire bytes from clients.
    pub bytes_in: u64,
    /// Wire bytes from the server.
    pub bytes_out: u64,
    /// First frame, ns.
    pub first_ns: i64,
    /// Last frame, ns.
    pub last_ns: i64,
    /// Requests per client (index = client number).
    pub requests_per_client: Vec<u32>,
    /// Packets per client in either direction (0: the client never appeared).
    pub packets_per_client: Vec<u32>,
    /// Kind of each client.
    pub kinds: Vec<SynthKind>,
}

impl SynthTruth {
    /// Clients that appeared.
    pub fn unique_clients(&self) -> u64 {
        self.packets_per_client.iter().filter(|&&p| p > 0).count() as u64
    }
}

/// SplitMix64: small, fast, and reproducible across platforms and crate versions.
#[derive(Clone, Copy, Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Request,
    Reply,
    Kod,
}

/// The generator: call [`Self::next_frame`] until it returns `None`.
#[derive(Debug)]
pub struct SynthCapture {
    p: SynthParams,
    rng: SplitMix,
    clients: Vec<ClientGen>,
    heap: BinaryHeap<Reverse<(i64, u32, Event)>>,
    start_ns: i64,
    truth: SynthTruth,
}

/// Odd multiplier scrambling client numbers into 24 bits, and its inverse modulo 2^24.
const SPREAD_MUL: u32 = 0x0025_f491;
const SPREAD_MUL_INV: u32 = inverse_mod_2_24(SPREAD_MUL);

const fn inverse_mod_2_24(a: u32) -> u32 {
    // Newton's iteration doubles the correct low bits each step (odd a).
    let mut x = a;
    let mut k = 0;
    while k < 5 {
        x = x.wrapping_mul(2u32.wrapping_sub(a.wrapping_mul(x)));
        k += 1;
    }
    x & 0x00ff_ffff
}

/// First octet of a spread address with low 24 bits `y`: 11 to 210, never 127.
fn spread_first_octet(y: u32) -> u32 {
    match 11 + y % 200 {
        127 => 211,
        o => o,
    }
}

impl SynthParams {
    /// Address of client `i`: IPv4 ones in 10.0.0.0/8 from 10.0.0.1 on (or, with `spread_v4`,
    /// a scramble of `i` in the low 24 bits under a first octet of 11 to 211); IPv6 ones
    /// `2001:db8:N::i` with 64 clients per /48 (N = i / 64).
    pub fn client_addr(&self, i: u32) -> IpAddr {
        if i % 100 < self.ipv6_pct {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, (i / 64) as u16, 0, 0, 0, (i >> 16) as u16, i as u16))
        } else if self.spread_v4 {
            let y = i.wrapping_mul(SPREAD_MUL) & 0x00ff_ffff;
            IpAddr::V4(Ipv4Addr::from((spread_first_octet(y) << 24) | y))
        } else {
            IpAddr::V4(Ipv4Addr::from(0x0a00_0001u32.wrapping_add(i)))
        }
    }

    /// The client number of an address made by [`Self::client_addr`].
    pub fn client_number(&self, addr: IpAddr) -> Option<u32> {
        let i = match addr {
            IpAddr::V4(a) if self.spread_v4 => (u32::from(a) & 0x00ff_ffff).wrapping_mul(SPREAD_MUL_INV) & 0x00ff_ffff,
            IpAddr::V4(a) => u32::from(a).checked_sub(0x0a00_0001)?,
            IpAddr::V6(a) => {
                let s = a.segments();
                (u32::from(s[6]) << 16) | u32::from(s[7])
            }
        };
        (i < self.clients && self.client_addr(i) == addr).then_some(i)
    }

    /// The server's addresses: IPv4, and IPv6 when some clients are.
    pub fn servers(&self) -> Vec<IpAddr> {
        let mut out = vec![IpAddr::V4(self.server)];
        if self.ipv6_pct > 0 {
            out.push(IpAddr::V6(self.server_v6));
        }
        out
    }
}

impl SynthCapture {
    /// A new generator.
    pub fn new(p: SynthParams) -> Self {
        let mut rng = SplitMix(p.seed);
        let start_ns = p.start_unix * NS;
        let mut clients = Vec::with_capacity(p.clients as usize);
        let mut heap = BinaryHeap::with_capacity(p.clients as usize * 2);
        for i in 0..p.clients {
            let u = rng.unit();
            let kind = if p.control_every > 0 && i % p.control_every == 7 {
                SynthKind::Control
            } else if p.malformed_every > 0 && i % p.malformed_every == 11 {
                SynthKind::Malformed
            } else if u < f64::from(p.abusive_ppm) / 1e6 {
                SynthKind::Abusive
            } else if u < f64::from(p.abusive_ppm) / 1e6 + f64::from(p.minpoll_pct) / 100.0 {
                SynthKind::Minpoll
            } else if u < f64::from(p.abusive_ppm) / 1e6 + f64::from(p.minpoll_pct + p.backoff_pct) / 100.0 {
                SynthKind::Backoff
            } else {
                SynthKind::Zipf
            };
            let interval_ns = match kind {
                SynthKind::Abusive => (0.1 + 0.8 * rng.unit()) * NS as f64,
                SynthKind::Minpoll | SynthKind::Backoff | SynthKind::Malformed => 64.0 * NS as f64,
                SynthKind::Control => 30.0 * NS as f64,
                SynthKind::Zipf => {
                    // Pareto(α = 1) query counts: P(count ≥ k) = 1/k, capped at one per 2 s.
                    let count = (1.0 / (1.0 - rng.unit()).max(1e-9)).floor().clamp(1.0, p.duration_s / 2.0);
                    p.duration_s / count * NS as f64
                }
            } as i64;
            let phase = (rng.unit() * (interval_ns.min(64 * NS)) as f64) as i64;
            heap.push(Reverse((start_ns + phase, i, Event::Request)));
            clients.push(ClientGen { kind, interval_ns: interval_ns.max(1), sent: 0 });
        }
        let truth = SynthTruth {
            requests_per_client: vec![0; p.clients as usize],
            packets_per_client: vec![0; p.clients as usize],
            kinds: clients.iter().map(|c| c.kind).collect(),
            first_ns: i64::MAX,
            last_ns: i64::MIN,
            ..Default::default()
        };
        Self { p, rng, clients, heap, start_ns, truth }
    }

    /// What has been emitted so far.
    pub fn truth(&self) -> &SynthTruth {
        &self.truth
    }

    /// Writes the next frame (Ethernet) into `buf` and returns its timestamp in ns, or `None`
    /// when the capture is complete.
    pub fn next_frame(&mut self, buf: &mut Vec<u8>) -> Option<i64> {
        if self.truth.packets >= self.p.max_packets {
            return None;
        }
        let Reverse((ts, i, event)) = self.heap.pop()?;
        if (ts - self.start_ns) as f64 > self.p.duration_s * NS as f64 {
            self.heap.clear();
            return None;
        }
        let c = self.clients[i as usize];
        let client = self.p.client_addr(i);
        let client_port = 32768 + (i % 28000) as u16;
        buf.clear();
        let from_client = event == Event::Request;
        let mut payload = [0u8; 512];
        let plen = match event {
            Event::Request => {
                let n = self.clients[i as usize].sent;
                self.clients[i as usize].sent += 1;
                let next = ts + self.next_interval(i as usize, n);
                self.heap.push(Reverse((next, i, Event::Request)));
                let len = match c.kind {
                    SynthKind::Malformed => {
                        payload[0] = 0x03; // version 0, mode 3
                        self.truth.malformed += 1;
                        20
                    }
                    SynthKind::Control if n.is_multiple_of(2) => {
                        // Mode 6 READVAR request, version 2, sequence n.
                        payload[0] = 0x16;
                        payload[1] = 0x02;
                        payload[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                        self.truth.mode6 += 1;
                        12
                    }
                    SynthKind::Control => {
                        // Mode 7 MON_GETLIST_1 request as ntpdc sends it (192 bytes padded).
                        payload[0] = 0x17;
                        payload[2] = 3;
                        payload[3] = 42;
                        self.truth.mode7 += 1;
                        192
                    }
                    _ => {
                        payload[0] = 0x23; // v4 client
                        payload[2] = 6;
                        payload[3] = 0xe9;
                        payload[40..48].copy_from_slice(&ntp_ts(ts));
                        48
                    }
                };
                if c.kind != SynthKind::Malformed {
                    self.truth.requests += 1;
                    self.truth.requests_per_client[i as usize] += 1;
                    let delay = 150_000 + (self.rng.next() % 100_000) as i64;
                    let reply = match c.kind {
                        SynthKind::Abusive => match n % 4 {
                            0 => Some(Event::Reply),
                            1 => Some(Event::Kod),
                            _ => None,
                        },
                        _ => Some(Event::Reply),
                    };
                    if let Some(r) = reply {
                        self.heap.push(Reverse((ts + delay, i, r)));
                    }
                }
                len
            }
            Event::Reply | Event::Kod => {
                self.truth.responses += 1;
                let n = self.clients[i as usize].sent.saturating_sub(1);
                match c.kind {
                    SynthKind::Control if n.is_multiple_of(2) => {
                        payload[0] = 0x16;
                        payload[1] = 0x82;
                        payload[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                        payload[10..12].copy_from_slice(&200u16.to_be_bytes());
                        self.truth.mode6 += 1;
                        212
                    }
                    SynthKind::Control => {
                        // MON_GETLIST_1 response: 6 items of 72 bytes.
                        payload[0] = 0x97;
                        payload[2] = 3;
                        payload[3] = 42;
                        payload[4..6].copy_from_slice(&6u16.to_be_bytes());
                        payload[6..8].copy_from_slice(&72u16.to_be_bytes());
                        self.truth.mode7 += 1;
                        self.truth.monlist_responses += 1;
                        8 + 6 * 72
                    }
                    _ if event == Event::Kod => {
                        self.truth.kod_rate += 1;
                        payload[0] = 0xe4; // LI 3, v4, server
                        payload[1] = 0;
                        payload[12..16].copy_from_slice(b"RATE");
                        payload[40..48].copy_from_slice(&ntp_ts(ts));
                        48
                    }
                    _ => {
                        payload[0] = 0x24;
                        payload[1] = 2;
                        payload[2] = 6;
                        payload[3] = 0xe9;
                        payload[12..16].copy_from_slice(&[192, 0, 2, 1]);
                        payload[16..24].copy_from_slice(&ntp_ts(ts - 30 * NS));
                        payload[32..40].copy_from_slice(&ntp_ts(ts - 100_000));
                        payload[40..48].copy_from_slice(&ntp_ts(ts));
                        48
                    }
                }
            }
        };
        let ports = if from_client { (client_port, 123) } else { (123, client_port) };
        match client {
            IpAddr::V4(c) => {
                let (src, dst) = if from_client { (c, self.p.server) } else { (self.p.server, c) };
                write_ethernet_ipv4_udp(buf, src, dst, ports.0, ports.1, &payload[..plen]);
            }
            IpAddr::V6(c) => {
                let (src, dst) = if from_client { (c, self.p.server_v6) } else { (self.p.server_v6, c) };
                write_ethernet_ipv6_udp(buf, src, dst, ports.0, ports.1, &payload[..plen]);
            }
        }
        let t = &mut self.truth;
        t.packets += 1;
        t.bytes += buf.len() as u64;
        if from_client {
            t.bytes_in += buf.len() as u64;
        } else {
            t.bytes_out += buf.len() as u64;
        }
        t.packets_per_client[i as usize] += 1;
        t.first_ns = t.first_ns.min(ts);
        t.last_ns = t.last_ns.max(ts);
        Some(ts)
    }

    fn next_interval(&mut self, i: usize, n: u32) -> i64 {
        let c = self.clients[i];
        match c.kind {
            SynthKind::Minpoll => 63 * NS + (self.rng.next() % (2 * NS as u64)) as i64,
            SynthKind::Backoff => (64 * NS) << n.min(4),
            SynthKind::Abusive => c.interval_ns + (self.rng.next() % 20_000_000) as i64,
            _ => c.interval_ns,
        }
    }
}

fn ntp_ts(ns: i64) -> [u8; 8] {
    let secs = (ns.div_euclid(NS) as u64).wrapping_add(NTP_UNIX) as u32;
    let frac = ((ns.rem_euclid(NS) as u64) << 32) / NS as u64;
    ((u64::from(secs) << 32) | frac).to_be_bytes()
}

/// Appends an Ethernet II / IPv4 / UDP frame carrying `payload` to `buf` (checksums zero:
/// "not computed", which every reader accepts for UDP over IPv4; the IPv4 header checksum is set).
pub fn write_ethernet_ipv4_udp(
    buf: &mut Vec<u8>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) {
    buf.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let mut sum: u32 = ip.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    buf.extend_from_slice(&ip);
    buf.extend_from_slice(&sport.to_be_bytes());
    buf.extend_from_slice(&dport.to_be_bytes());
    buf.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(payload);
}

/// Appends an Ethernet II / IPv6 / UDP frame carrying `payload` to `buf`, with the UDP
/// checksum IPv6 requires.
pub fn write_ethernet_ipv6_udp(
    buf: &mut Vec<u8>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) {
    buf.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd]);
    let udp_len = (8 + payload.len()) as u16;
    buf.extend_from_slice(&[0x60, 0, 0, 0]);
    buf.extend_from_slice(&udp_len.to_be_bytes());
    buf.extend_from_slice(&[17, 64]);
    buf.extend_from_slice(&src.octets());
    buf.extend_from_slice(&dst.octets());
    // Pseudo-header (addresses, length, next header) plus the UDP header and payload.
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for w in bytes.chunks(2) {
            sum += u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&u32::from(udp_len).to_be_bytes());
    add(&[0, 0, 0, 17]);
    add(&sport.to_be_bytes());
    add(&dport.to_be_bytes());
    add(&udp_len.to_be_bytes());
    add(payload);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let checksum = match !(sum as u16) {
        0 => 0xffff,
        c => c,
    };
    buf.extend_from_slice(&sport.to_be_bytes());
    buf.extend_from_slice(&dport.to_be_bytes());
    buf.extend_from_slice(&udp_len.to_be_bytes());
    buf.extend_from_slice(&checksum.to_be_bytes());
    buf.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::frame::linktype;
    use crate::capture::load::{LoadAnalyzer, LoadConfig};

    #[test]
    fn analyzer_reproduces_the_generators_totals() {
        let p = SynthParams { clients: 3000, max_packets: 40_000, control_every: 500, ..Default::default() };
        let mut g = SynthCapture::new(p);
        let mut a = LoadAnalyzer::new(LoadConfig { detect_window: 1000, ..Default::default() });
        let mut buf = Vec::new();
        while let Some(ts) = g.next_frame(&mut buf) {
            a.add_frame(linktype::ETHERNET, ts, buf.len() as u32, &buf);
        }
        let t = g.truth().clone();
        let load = a.finish();
        assert_eq!(load.servers.as_slice(), &[IpAddr::V4(p.server)]);
        let got = &load.totals;
        assert_eq!(got.packets, t.packets);
        assert_eq!(got.bytes, t.bytes);
        assert_eq!(got.requests, t.requests);
        assert_eq!(got.responses, t.responses);
        assert_eq!(got.kod.get("RATE").copied().unwrap_or(0), t.kod_rate);
        assert_eq!(got.mode6_packets, t.mode6);
        assert_eq!(got.mode7_packets, t.mode7);
        assert_eq!(got.monlist_responses, t.monlist_responses);
        assert_eq!(got.malformed, t.malformed);
        assert_eq!(got.bytes_in, t.bytes_in);
        assert_eq!(got.bytes_out, t.bytes_out);
        assert_eq!(got.unique_clients, t.unique_clients());
        assert!(t.kod_rate > 0 && t.mode6 > 0 && t.mode7 > 0 && t.malformed > 0);
        for c in &load.clients {
            let i = p.client_number(c.addr).unwrap();
            assert_eq!(c.requests, t.requests_per_client[i as usize]);
        }
    }

    fn report_json(load: crate::capture::load::Load) -> serde_json::Value {
        let r = crate::capture::report::build_report(load, &crate::capture::report::ReportOptions::default());
        serde_json::to_value(r).unwrap()
    }

    #[test]
    fn spread_addresses_are_distinct_and_invertible() {
        let p = SynthParams { clients: 1 << 20, spread_v4: true, ..Default::default() };
        let mut seen = std::collections::HashSet::new();
        let mut first_octets = std::collections::HashSet::new();
        for i in (0..p.clients).step_by(7) {
            let a = p.client_addr(i);
            assert_eq!(p.client_number(a), Some(i), "{a}");
            let IpAddr::V4(v4) = a else { panic!("{a}") };
            let o = v4.octets()[0];
            assert!((11..=211).contains(&o) && o != 127, "{a}");
            first_octets.insert(o);
            assert!(seen.insert(a));
        }
        assert_eq!(first_octets.len(), 200);
    }

    #[test]
    fn dual_stack_server_and_split_aggregation() {
        use crate::capture::load::{Servers, client_of, shard_of};
        let p =
            SynthParams { clients: 2000, max_packets: 30_000, ipv6_pct: 30, control_every: 400, ..Default::default() };
        let frames: Vec<(i64, Vec<u8>)> = {
            let mut g = SynthCapture::new(p);
            let mut buf = Vec::new();
            std::iter::from_fn(|| g.next_frame(&mut buf).map(|ts| (ts, buf.clone()))).collect()
        };
        let mut g = SynthCapture::new(p);
        let mut buf = Vec::new();
        while g.next_frame(&mut buf).is_some() {}
        let t = g.truth().clone();
        // One aggregator, the server detected: both of its addresses.
        let mut one = LoadAnalyzer::new(LoadConfig { detect_window: 5000, ..Default::default() });
        for (ts, f) in &frames {
            one.add_frame(linktype::ETHERNET, *ts, f.len() as u32, f);
        }
        let load = one.finish();
        assert_eq!(load.servers.as_slice(), p.servers().as_slice());
        assert_eq!(load.totals.requests, t.requests);
        assert_eq!(load.totals.responses, t.responses);
        assert_eq!(load.totals.bytes_in + load.totals.bytes_out, t.bytes);
        assert_eq!(load.totals.unique_clients, t.unique_clients());
        assert_eq!(load.totals.other_ntp_packets, 0);
        let v6 = load.clients.iter().filter(|c| c.addr.is_ipv6()).count();
        assert!(v6 > 400, "{v6} IPv6 clients");
        for c in &load.clients {
            assert_eq!(c.requests, t.requests_per_client[p.client_number(c.addr).unwrap() as usize]);
        }
        let want = report_json(load);
        // The same capture split over a front and three aggregators by client, then merged.
        let cfg = LoadConfig::default();
        let servers = Servers::new(&p.servers()).unwrap();
        let mut parts: Vec<LoadAnalyzer> = (0..4).map(|_| LoadAnalyzer::with_known_servers(cfg, servers)).collect();
        for (ts, f) in &frames {
            if let Some(s) = parts[0].split_frame(linktype::ETHERNET, *ts, f.len() as u32, f) {
                let part = client_of(&servers, s.src, s.dst).map_or(0, |c| shard_of(c, 4));
                parts[part].add_summary(s);
            }
        }
        let mut parts = parts.into_iter().map(LoadAnalyzer::finish);
        let mut merged = parts.next().unwrap();
        for part in parts {
            merged.merge(part);
        }
        assert_eq!(report_json(merged), want);
    }
}
