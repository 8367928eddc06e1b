//! Per-client load of an NTP server from captured packets: server detection, direction, totals,
//! per-client counters (requests, responses, bytes, polling intervals, versions, modes, KoD),
//! the per-minute request rate, and simulations of chrony's `ratelimit` and ntpd's
//! `discard`/`limited`. Memory grows with distinct clients (and capture minutes), never with
//! packets; the per-packet path does not allocate once a client is known.

use super::record::{FrameClass, MacKind, NtpKind, PacketSummary, classify_frame};
use super::stats::{AddrHashBuilder, HIST_BINS, Log2Histogram, P2Median};
use crate::ntp::KissCode;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};

/// NTP packets buffered (as fixed-size summaries) to detect the server before aggregating, when
/// no server was given.
pub const DEFAULT_DETECT_WINDOW: usize = 100_000;
/// The per-minute series covers at most this many minutes after the first packet (two years);
/// packets dated outside are counted but not placed in the series.
pub const MAX_SERIES_MINUTES: i64 = 2 * 366 * 24 * 60;
const NS_PER_S: i64 = 1_000_000_000;
const NS_PER_MIN: i64 = 60 * NS_PER_S;

/// chrony's `ratelimit interval I burst B leak L` (defaults 3, 8, 2).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ChronyRateLimit {
    /// log2 of the minimum average interval between requests, seconds.
    pub interval: i8,
    /// Requests allowed in a burst (token bucket size).
    pub burst: u32,
    /// log2 of the leak: one in 2^leak limited requests is still answered.
    pub leak: u8,
}

impl Default for ChronyRateLimit {
    fn default() -> Self {
        Self { interval: 3, burst: 8, leak: 2 }
    }
}

/// ntpd's `discard average A minimum M` with `restrict ... limited` (defaults 3 and 2).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct NtpdDiscard {
    /// log2 of the minimum average headway, seconds (`average`).
    pub average: u8,
    /// Minimum seconds between two packets (`minimum`).
    pub minimum: u32,
}

impl Default for NtpdDiscard {
    fn default() -> Self {
        Self { average: 3, minimum: 2 }
    }
}

/// Thresholds of the client-type classification by polling profile.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ClientTypeParams {
    /// A median polling interval below this is abusive (seconds).
    pub abusive_max_median_s: f64,
    /// Intervals shorter than 2^this seconds count as burst intervals.
    pub burst_log2: i32,
    /// At least this many burst intervals, with a median at or above 2^burst_log2 s, make a
    /// bursty client.
    pub burst_min_intervals: u32,
    /// Median interval range of minpoll-stuck clients (seconds), around 64 s.
    pub minpoll_median_s: (f64, f64),
    /// A minpoll-stuck client never waits 2^this seconds or more.
    pub minpoll_max_log2: i32,
    /// A client with a median at or above this (seconds), or any interval of 2^backoff_log2 s
    /// or more, is backing off as it should.
    pub backoff_min_median_s: f64,
    /// See `backoff_min_median_s`.
    pub backoff_log2: i32,
}

impl Default for ClientTypeParams {
    fn default() -> Self {
        Self {
            abusive_max_median_s: 1.0,
            burst_log2: 2,
            burst_min_intervals: 3,
            minpoll_median_s: (48.0, 96.0),
            minpoll_max_log2: 7,
            backoff_min_median_s: 96.0,
            backoff_log2: 9,
        }
    }
}

/// Configuration of the aggregation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadConfig {
    /// The server's address; detected from the traffic when `None`.
    pub server: Option<IpAddr>,
    /// NTP packets buffered for server detection.
    pub detect_window: usize,
    /// chrony rate-limit simulation.
    pub chrony: ChronyRateLimit,
    /// ntpd discard simulation.
    pub ntpd: NtpdDiscard,
    /// Client types.
    pub types: ClientTypeParams,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            server: None,
            detect_window: DEFAULT_DETECT_WINDOW,
            chrony: ChronyRateLimit::default(),
            ntpd: NtpdDiscard::default(),
            types: ClientTypeParams::default(),
        }
    }
}

/// No request seen yet (sentinel of [`ClientState::last_request_ns`]).
const NONE_NS: i64 = i64::MIN;

/// Counters of one client (one IP address), kept while streaming (about 250 bytes).
#[derive(Clone, Debug)]
pub struct ClientState {
    /// Address.
    pub addr: IpAddr,
    /// Requests sent to the server (modes 1, 3, and 6/7 without the response bit).
    pub requests: u32,
    /// Responses the server sent to it.
    pub responses: u32,
    /// Wire bytes it sent to the server (any NTP packet, malformed included).
    pub bytes_in: u64,
    /// Wire bytes the server sent to it.
    pub bytes_out: u64,
    /// First packet to or from it.
    pub first_ns: i64,
    /// Last packet to or from it.
    pub last_ns: i64,
    last_request_ns: i64,
    min_interval: i64,
    /// Median interval between requests, seconds.
    pub median: P2Median,
    /// log2 histogram of intervals between requests.
    pub histogram: Log2Histogram,
    /// Bit v set when it sent version v.
    pub versions: u8,
    /// Bit m set when it sent mode m.
    pub modes: u8,
    /// KoD replies it received.
    pub kod_received: u32,
    /// Mode 6/7 requests it sent.
    pub control_requests: u32,
    /// Monlist requests it sent.
    pub monlist_requests: u32,
    chrony_tokens: f32,
    chrony_limited: u32,
    /// Requests chrony's ratelimit would have dropped.
    pub chrony_dropped: u32,
    ntpd_leak: i32,
    /// Requests ntpd's discard/limited would have dropped.
    pub ntpd_dropped: u32,
}

impl ClientState {
    fn new(addr: IpAddr, ts: i64, chrony: &ChronyRateLimit) -> Self {
        Self {
            addr,
            requests: 0,
            responses: 0,
            bytes_in: 0,
            bytes_out: 0,
            first_ns: ts,
            last_ns: ts,
            last_request_ns: NONE_NS,
            min_interval: i64::MAX,
            median: P2Median::default(),
            histogram: Log2Histogram::default(),
            versions: 0,
            modes: 0,
            kod_received: 0,
            control_requests: 0,
            monlist_requests: 0,
            chrony_tokens: chrony.burst as f32,
            chrony_limited: 0,
            chrony_dropped: 0,
            ntpd_leak: 0,
            ntpd_dropped: 0,
        }
    }

    /// Shortest interval between two requests, nanoseconds.
    pub fn min_interval_ns(&self) -> Option<i64> {
        (self.min_interval != i64::MAX).then_some(self.min_interval)
    }

    fn touch(&mut self, ts: i64) {
        self.first_ns = self.first_ns.min(ts);
        self.last_ns = self.last_ns.max(ts);
    }

    fn request(&mut self, ts: i64, kind: &NtpKind, cfg: &LoadConfig) {
        self.requests += 1;
        if let Some(v) = kind.version() {
            self.versions |= 1 << (v & 7);
        }
        if let Some(m) = kind.mode() {
            self.modes |= 1 << (m & 7);
        }
        match kind {
            NtpKind::Control { .. } => self.control_requests += 1,
            NtpKind::Private { monlist, .. } => {
                self.control_requests += 1;
                self.monlist_requests += u32::from(*monlist);
            }
            _ => {}
        }
        let prev = self.last_request_ns;
        if prev != NONE_NS {
            // Packets slightly out of order (several interfaces) give no interval.
            let iv = ts - prev;
            if iv >= 0 {
                self.min_interval = self.min_interval.min(iv);
                self.median.add(iv as f64 * 1e-9);
                self.histogram.add(iv);
            }
        }
        self.last_request_ns = prev.max(ts);
        self.simulate_chrony(ts, prev, &cfg.chrony);
        self.simulate_ntpd(ts, prev, &cfg.ntpd);
    }

    /// Token bucket: one token per 2^interval s, at most `burst`; a request without a token is
    /// dropped, except every 2^leak-th limited one (chrony leaks at random with that rate).
    fn simulate_chrony(&mut self, ts: i64, prev: i64, rl: &ChronyRateLimit) {
        if prev != NONE_NS {
            let elapsed = (ts - prev).max(0) as f64 * 1e-9;
            let per_token = 2f64.powi(i32::from(rl.interval));
            self.chrony_tokens = (f64::from(self.chrony_tokens) + elapsed / per_token).min(f64::from(rl.burst)) as f32;
        }
        if self.chrony_tokens >= 1.0 {
            self.chrony_tokens -= 1.0;
        } else {
            self.chrony_limited += 1;
            if !self.chrony_limited.is_multiple_of(1u32 << rl.leak.min(31)) {
                self.chrony_dropped += 1;
            }
        }
    }

    /// ntpd's `ntp_monitor()` headway counter (ntp_monitor.c): the counter drops by the
    /// interval since the last packet, rises by 2^average per packet; a packet is limited when the
    /// interval is below `minimum` (1 s grace) or the counter would pass 8 · 2^average.
    fn simulate_ntpd(&mut self, ts: i64, prev: i64, d: &NtpdDiscard) {
        if prev == NONE_NS {
            return;
        }
        // Whole seconds, rounded half up as ntpd does.
        let interval = (ts - prev + NS_PER_S / 2).div_euclid(NS_PER_S).clamp(0, i64::from(i32::MAX));
        let head = 1i64 << d.average.min(24);
        let counter = (i64::from(self.ntpd_leak) - interval).max(0);
        let leak = counter + head;
        let limit = 8 * head;
        let next = if interval + 1 >= i64::from(d.minimum) && leak < limit {
            leak - 2
        } else {
            self.ntpd_dropped += 1;
            if counter < limit { limit + head } else { counter }
        };
        self.ntpd_leak = next as i32;
    }
}

/// Client records in fixed-size chunks: growing never copies (or doubles) the whole table.
#[derive(Debug, Default)]
pub struct ClientTable {
    chunks: Vec<Vec<ClientState>>,
    len: usize,
}

const CHUNK: usize = 1 << 14;

impl ClientTable {
    fn push(&mut self, c: ClientState) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(last) = self.chunks.last_mut() {
            last.push(c);
        }
        self.len += 1;
    }

    fn get_mut(&mut self, i: usize) -> &mut ClientState {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }

    /// Number of clients.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The clients in order of first appearance.
    pub fn iter(&self) -> impl Iterator<Item = &ClientState> + '_ {
        self.chunks.iter().flatten()
    }
}

impl std::ops::Index<usize> for ClientTable {
    type Output = ClientState;
    fn index(&self, i: usize) -> &ClientState {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl<'a> IntoIterator for &'a ClientTable {
    type Item = &'a ClientState;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<ClientState>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.chunks.iter().flatten()
    }
}

/// Totals over the whole capture.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Totals {
    /// Frames read.
    pub packets: u64,
    /// Wire bytes of all frames read (the capture's original frame lengths).
    pub bytes: u64,
    /// NTP packets (UDP with port 123 on either side).
    pub ntp_packets: u64,
    /// Wire bytes of the NTP packets.
    pub ntp_bytes: u64,
    /// UDP payload bytes of the NTP packets.
    pub ntp_payload_bytes: u64,
    /// Seconds from the first to the last frame.
    pub duration_s: f64,
    /// First frame, Unix seconds.
    pub first_ts: Option<f64>,
    /// Last frame, Unix seconds.
    pub last_ts: Option<f64>,
    /// Requests clients sent to the server.
    pub requests: u64,
    /// Responses the server sent to clients.
    pub responses: u64,
    /// Distinct client addresses.
    pub unique_clients: u64,
    /// NTP packets by mode (decoded ones).
    pub modes: BTreeMap<u8, u64>,
    /// NTP packets by version (decoded ones).
    pub versions: BTreeMap<u8, u64>,
    /// KoD replies by kiss code.
    pub kod: BTreeMap<String, u64>,
    /// Malformed NTP packets.
    pub malformed: u64,
    /// Malformed NTP packets by reason.
    pub malformed_by_reason: BTreeMap<String, u64>,
    /// Wire bytes clients sent to the server.
    pub bytes_in: u64,
    /// Wire bytes the server sent to clients.
    pub bytes_out: u64,
    /// bytes_out / bytes_in (amplification shows as ≫ 1).
    pub out_in_ratio: Option<f64>,
    /// Wire bytes of everything the server sent (replies, and its own queries upstream).
    pub server_egress_bytes: u64,
    /// Extension fields in time packets (NTS fields included).
    pub extension_fields: u64,
    /// Time packets carrying extension fields.
    pub packets_with_extensions: u64,
    /// Time packets carrying a MAC (key id and digest).
    pub packets_with_mac: u64,
    /// Time packets carrying a crypto-NAK (key id only).
    pub crypto_naks: u64,
    /// Mode 6 packets.
    pub mode6_packets: u64,
    /// Mode 7 packets.
    pub mode7_packets: u64,
    /// Mode 7 monlist (MON_GETLIST/MON_GETLIST_1) responses: the amplification signature.
    pub monlist_responses: u64,
    /// Packets where the server acts as a client of another server (its own upstreams).
    pub server_upstream_packets: u64,
    /// NTP packets not involving the server.
    pub other_ntp_packets: u64,
    /// Non-first IP fragments (cannot be decoded).
    pub ip_fragments: u64,
    /// Frames cut inside a header, by header.
    pub truncated_frames: BTreeMap<String, u64>,
    /// Frames of an unknown link type.
    pub unsupported_link_frames: u64,
    /// UDP frames on other ports, and other IP, and non-IP frames.
    pub non_ntp_frames: u64,
}

/// A frame reduced to what the aggregation needs: fixed size, owned, cheap to send between
/// threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameDigest {
    /// An NTP packet.
    Ntp(PacketSummary),
    /// Anything else.
    Other {
        /// Capture timestamp, ns.
        ts_ns: i64,
        /// Frame length on the wire.
        wire_len: u32,
        /// What it is.
        kind: OtherFrame,
    },
}

/// A frame that is not an NTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtherFrame {
    /// A non-first IP fragment.
    Fragment,
    /// Other UDP, other IP, not IP.
    NotNtp,
    /// Cut inside the named header.
    Truncated(&'static str),
    /// Unknown link type.
    UnsupportedLink,
}

/// Dissects and decodes one frame into a [`FrameDigest`].
pub fn digest_frame(link: u32, ts_ns: i64, wire_len: u32, data: &[u8]) -> FrameDigest {
    let kind = match classify_frame(link, ts_ns, wire_len, data) {
        FrameClass::Ntp(f) => return FrameDigest::Ntp(f.summary()),
        FrameClass::Fragment => OtherFrame::Fragment,
        FrameClass::OtherUdp | FrameClass::OtherIp | FrameClass::NotIp => OtherFrame::NotNtp,
        FrameClass::Truncated(what) => OtherFrame::Truncated(what),
        FrameClass::UnsupportedLink(_) => OtherFrame::UnsupportedLink,
    };
    FrameDigest::Other { ts_ns, wire_len, kind }
}

/// Streaming aggregator: feed frames (or NTP summaries) in capture order, then [`Self::finish`].
#[derive(Debug)]
pub struct LoadAnalyzer {
    cfg: LoadConfig,
    server: Option<IpAddr>,
    detecting: bool,
    pending: Vec<PacketSummary>,
    totals: Totals,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
    index: AddrIndex,
    clients: ClientTable,
    series_base: Option<i64>,
    series: Vec<u32>,
    series_dropped: u64,
    cur_minute: i64,
    cur_count: u32,
    modes: [u64; 8],
    versions: [u64; 8],
    // Counted by key without allocating; turned into the string-keyed maps at the end.
    truncated: Vec<(&'static str, u64)>,
    malformed: Vec<(&'static str, u64)>,
    kod: Vec<([u8; 4], u64)>,
}

/// Counts `key` in a short list (few distinct keys: reasons, kiss codes).
fn bump<K: PartialEq>(counts: &mut Vec<(K, u64)>, key: K) {
    match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += 1,
        None => counts.push((key, 1)),
    }
}

/// Client address → client number. IPv4 keys are 4 bytes (8-byte buckets): the index of
/// 300,000 IPv4 clients stays around 4 MB and in cache, where 128-bit keys would take 16 MB.
#[derive(Debug, Default)]
struct AddrIndex {
    v4: HashMap<u32, u32, AddrHashBuilder>,
    v6: HashMap<u128, u32, AddrHashBuilder>,
}

impl AddrIndex {
    fn get(&self, addr: IpAddr) -> Option<u32> {
        match addr {
            IpAddr::V4(a) => self.v4.get(&u32::from(a)).copied(),
            IpAddr::V6(a) => self.v6.get(&u128::from(a)).copied(),
        }
    }

    fn get_or_insert(&mut self, addr: IpAddr, next: u32) -> u32 {
        match addr {
            IpAddr::V4(a) => *self.v4.entry(u32::from(a)).or_insert(next),
            IpAddr::V6(a) => *self.v6.entry(u128::from(a)).or_insert(next),
        }
    }
}

impl LoadAnalyzer {
    /// A new aggregator.
    pub fn new(cfg: LoadConfig) -> Self {
        Self {
            server: cfg.server,
            detecting: cfg.server.is_none(),
            cfg,
            pending: Vec::new(),
            totals: Totals::default(),
            first_ns: None,
            last_ns: None,
            index: AddrIndex::default(),
            clients: ClientTable::default(),
            series_base: None,
            series: Vec::new(),
            series_dropped: 0,
            cur_minute: i64::MIN,
            cur_count: 0,
            modes: [0; 8],
            versions: [0; 8],
            truncated: Vec::new(),
            malformed: Vec::new(),
            kod: Vec::new(),
        }
    }

    /// The server, once known.
    pub fn server(&self) -> Option<IpAddr> {
        self.server
    }

    /// Dissects one frame and accounts for it.
    pub fn add_frame(&mut self, link: u32, ts_ns: i64, wire_len: u32, data: &[u8]) {
        self.add_digest(digest_frame(link, ts_ns, wire_len, data));
    }

    /// Accounts for a batch of digests in order. Works in groups: first looks up the clients of
    /// the whole group and reads a few fields of each (independent loads the CPU overlaps, so the
    /// cache misses of 300,000-client tables are paid once per group rather than once per
    /// packet), then aggregates each packet.
    pub fn add_batch(&mut self, batch: &[FrameDigest]) {
        const GROUP: usize = 16;
        for group in batch.chunks(GROUP) {
            if let (false, Some(server)) = (self.detecting, self.server) {
                let mut found = [u32::MAX; GROUP];
                for (slot, d) in found.iter_mut().zip(group) {
                    if let FrameDigest::Ntp(s) = d {
                        let client = if s.dst == server { s.src } else { s.dst };
                        if let Some(i) = self.index.get(client) {
                            *slot = i;
                        }
                    }
                }
                let mut touched = 0u64;
                for &i in &found[..group.len()] {
                    if i != u32::MAX {
                        let c = &self.clients[i as usize];
                        touched = touched
                            .wrapping_add(u64::from(c.requests))
                            .wrapping_add(c.last_request_ns as u64)
                            .wrapping_add(u64::from(c.median.count()))
                            .wrapping_add(u64::from(c.histogram.0[HIST_BINS / 2]))
                            .wrapping_add(u64::from(c.ntpd_dropped));
                    }
                }
                std::hint::black_box(touched);
            }
            for d in group {
                self.add_digest(*d);
            }
        }
    }

    /// Accounts for a frame already dissected by [`digest_frame`] (which may run elsewhere,
    /// e.g. on another thread).
    pub fn add_digest(&mut self, d: FrameDigest) {
        match d {
            FrameDigest::Ntp(s) => {
                self.count_frame(s.ts_ns, s.wire_len);
                self.add_ntp(s);
            }
            FrameDigest::Other { ts_ns, wire_len, kind } => {
                self.count_frame(ts_ns, wire_len);
                match kind {
                    OtherFrame::Fragment => self.totals.ip_fragments += 1,
                    OtherFrame::NotNtp => self.totals.non_ntp_frames += 1,
                    OtherFrame::Truncated(what) => bump(&mut self.truncated, what),
                    OtherFrame::UnsupportedLink => self.totals.unsupported_link_frames += 1,
                }
            }
        }
    }

    /// Accounts for a frame's existence (time span, packets, bytes) without looking inside.
    pub fn count_frame(&mut self, ts_ns: i64, wire_len: u32) {
        self.totals.packets += 1;
        self.totals.bytes += u64::from(wire_len);
        self.first_ns = Some(self.first_ns.map_or(ts_ns, |f| f.min(ts_ns)));
        self.last_ns = Some(self.last_ns.map_or(ts_ns, |l| l.max(ts_ns)));
    }

    /// Accounts for one NTP packet (the frame itself must have gone through
    /// [`Self::count_frame`]).
    pub fn add_ntp(&mut self, s: PacketSummary) {
        if self.detecting {
            self.pending.push(s);
            if self.pending.len() >= self.cfg.detect_window.max(1) {
                self.resolve_server();
            }
        } else {
            self.aggregate(s);
        }
    }

    fn resolve_server(&mut self) {
        self.detecting = false;
        self.server = detect_server(&self.pending);
        let pending = std::mem::take(&mut self.pending);
        for s in pending {
            self.aggregate(s);
        }
    }

    fn client(&mut self, addr: IpAddr, ts: i64) -> &mut ClientState {
        let next = self.clients.len as u32;
        let idx = self.index.get_or_insert(addr, next);
        if idx == next {
            self.clients.push(ClientState::new(addr, ts, &self.cfg.chrony));
        }
        self.clients.get_mut(idx as usize)
    }

    fn aggregate(&mut self, s: PacketSummary) {
        let t = &mut self.totals;
        t.ntp_packets += 1;
        t.ntp_bytes += u64::from(s.wire_len);
        t.ntp_payload_bytes += u64::from(s.udp_len);
        match s.kind {
            NtpKind::Malformed(reason) => {
                t.malformed += 1;
                bump(&mut self.malformed, reason);
            }
            kind => {
                if let Some(m) = kind.mode() {
                    self.modes[usize::from(m & 7)] += 1;
                }
                if let Some(v) = kind.version() {
                    self.versions[usize::from(v & 7)] += 1;
                }
                match kind {
                    NtpKind::Time { extensions, mac, .. } => {
                        t.extension_fields += u64::from(extensions);
                        t.packets_with_extensions += u64::from(extensions > 0);
                        t.packets_with_mac += u64::from(mac == MacKind::Digest);
                        t.crypto_naks += u64::from(mac == MacKind::CryptoNak);
                    }
                    NtpKind::Control { .. } => t.mode6_packets += 1,
                    NtpKind::Private { response, monlist, .. } => {
                        t.mode7_packets += 1;
                        t.monlist_responses += u64::from(response && monlist);
                    }
                    _ => {}
                }
            }
        }
        let Some(server) = self.server else {
            t.other_ntp_packets += 1;
            return;
        };
        let cfg = self.cfg;
        // Direction by the server's address; on a host talking to itself (loopback captures)
        // by the port: the side on port 123 is the server.
        let (to_server, from_server) = if s.src == server && s.dst == server {
            (s.dport == 123 && s.sport != 123, s.sport == 123 && s.dport != 123)
        } else {
            (s.dst == server, s.src == server)
        };
        if to_server {
            if matches!(s.kind, NtpKind::Time { mode: 2 | 4, .. }) {
                // An upstream answering the server's own query.
                self.totals.server_upstream_packets += 1;
                return;
            }
            let is_request = s.kind.is_request();
            if is_request {
                self.totals.requests += 1;
                self.minute_tick(s.ts_ns);
            }
            self.totals.bytes_in += u64::from(s.wire_len);
            let c = self.client(s.src, s.ts_ns);
            c.touch(s.ts_ns);
            c.bytes_in += u64::from(s.wire_len);
            if is_request {
                c.request(s.ts_ns, &s.kind, &cfg);
            }
        } else if from_server {
            self.totals.server_egress_bytes += u64::from(s.wire_len);
            if matches!(s.kind, NtpKind::Time { mode: 1 | 3, .. }) {
                // The server querying its own upstream.
                self.totals.server_upstream_packets += 1;
                return;
            }
            let is_response = s.kind.is_response();
            let kiss = match s.kind {
                NtpKind::Time { kiss, .. } => kiss,
                _ => None,
            };
            if is_response {
                self.totals.responses += 1;
            }
            if let Some(k) = kiss {
                bump(&mut self.kod, k.0);
            }
            self.totals.bytes_out += u64::from(s.wire_len);
            let c = self.client(s.dst, s.ts_ns);
            c.touch(s.ts_ns);
            c.bytes_out += u64::from(s.wire_len);
            c.responses += u32::from(is_response);
            c.kod_received += u32::from(kiss.is_some());
        } else {
            self.totals.other_ntp_packets += 1;
        }
    }

    fn minute_tick(&mut self, ts_ns: i64) {
        let minute = ts_ns.div_euclid(NS_PER_MIN);
        if minute == self.cur_minute {
            self.cur_count += 1;
            return;
        }
        self.flush_minute();
        self.cur_minute = minute;
        self.cur_count = 1;
    }

    fn flush_minute(&mut self) {
        if self.cur_count == 0 {
            return;
        }
        let (minute, count) = (self.cur_minute, self.cur_count);
        self.cur_count = 0;
        let base = *self.series_base.get_or_insert(minute);
        let mut idx = minute - base;
        if idx < 0 {
            if -idx > MAX_SERIES_MINUTES - self.series.len() as i64 {
                self.series_dropped += u64::from(count);
                return;
            }
            let shift = (-idx) as usize;
            self.series.splice(0..0, std::iter::repeat_n(0, shift));
            self.series_base = Some(minute);
            idx = 0;
        }
        if idx >= MAX_SERIES_MINUTES {
            self.series_dropped += u64::from(count);
            return;
        }
        let idx = idx as usize;
        if idx >= self.series.len() {
            self.series.resize(idx + 1, 0);
        }
        self.series[idx] = self.series[idx].saturating_add(count);
    }

    /// Ends the stream and returns the aggregated load.
    pub fn finish(mut self) -> Load {
        if self.detecting {
            self.resolve_server();
        }
        self.flush_minute();
        let mut totals = self.totals;
        for (i, (&m, &v)) in self.modes.iter().zip(&self.versions).enumerate() {
            if m > 0 {
                totals.modes.insert(i as u8, m);
            }
            if v > 0 {
                totals.versions.insert(i as u8, v);
            }
        }
        totals.truncated_frames = self.truncated.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        totals.malformed_by_reason = self.malformed.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        totals.kod = self.kod.iter().map(|(k, n)| (KissCode(*k).as_text(), *n)).collect();
        totals.unique_clients = self.clients.len as u64;
        totals.first_ts = self.first_ns.map(ns_to_s);
        totals.last_ts = self.last_ns.map(ns_to_s);
        totals.duration_s = match (self.first_ns, self.last_ns) {
            (Some(f), Some(l)) => (l - f) as f64 * 1e-9,
            _ => 0.0,
        };
        totals.out_in_ratio = (totals.bytes_in > 0).then(|| totals.bytes_out as f64 / totals.bytes_in as f64);
        Load {
            config: self.cfg,
            server: self.server,
            totals,
            clients: self.clients,
            minute_base: self.series_base.map(|m| m * 60),
            requests_per_minute: self.series,
            requests_outside_series: self.series_dropped,
        }
    }
}

/// Unix seconds of a nanosecond timestamp.
pub fn ns_to_s(ns: i64) -> f64 {
    ns.div_euclid(NS_PER_S) as f64 + ns.rem_euclid(NS_PER_S) as f64 * 1e-9
}

/// Picks the server among the packets: the address sending the most mode 4 replies from port
/// 123; failing that the address sending the most mode 6/7 responses from port 123; failing that
/// the address receiving the most requests (modes 1/3, 6/7 without response bit) on port 123.
pub fn detect_server(packets: &[PacketSummary]) -> Option<IpAddr> {
    let mut replies: HashMap<IpAddr, (u64, u64, u64)> = HashMap::new();
    for s in packets {
        match s.kind {
            NtpKind::Time { mode: 4, .. } if s.sport == 123 => replies.entry(s.src).or_default().0 += 1,
            k if k.is_request() && s.dport == 123 => replies.entry(s.dst).or_default().1 += 1,
            NtpKind::Control { response: true, .. } | NtpKind::Private { response: true, .. } if s.sport == 123 => {
                replies.entry(s.src).or_default().2 += 1
            }
            _ => {}
        }
    }
    // Ties go to the smaller address, so the choice does not depend on hash order.
    let best = |f: fn(&(u64, u64, u64)) -> u64| {
        replies
            .iter()
            .filter(|(_, c)| f(c) > 0)
            .max_by(|(a, ca), (b, cb)| f(ca).cmp(&f(cb)).then(b.cmp(a)))
            .map(|(a, _)| *a)
    };
    best(|c| c.0).or_else(|| best(|c| c.2)).or_else(|| best(|c| c.1))
}

/// The aggregated load of a capture, before reporting.
#[derive(Debug)]
pub struct Load {
    /// The configuration used.
    pub config: LoadConfig,
    /// The server (given or detected).
    pub server: Option<IpAddr>,
    /// Totals.
    pub totals: Totals,
    /// Every client, in order of first appearance.
    pub clients: ClientTable,
    /// Unix seconds of the first minute of `requests_per_minute`.
    pub minute_base: Option<i64>,
    /// Requests per minute from `minute_base`.
    pub requests_per_minute: Vec<u32>,
    /// Requests dated too far from the rest to be placed in the series.
    pub requests_outside_series: u64,
}

/// The network address of an address's /24 (IPv4) or /48 (IPv6).
pub fn prefix_addr(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let [x, y, z, _] = a.octets();
            IpAddr::from([x, y, z, 0])
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
    }
}

/// The network prefix of an address as text: `a.b.c.0/24` for IPv4, `x:y:z::/48` for IPv6.
pub fn prefix_of(addr: IpAddr) -> String {
    match prefix_addr(addr) {
        a @ IpAddr::V4(_) => format!("{a}/24"),
        a @ IpAddr::V6(_) => format!("{a}/48"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_client_state_stays_small() {
        // 300,000 clients must fit well under 200 MB with the index.
        let size = std::mem::size_of::<ClientState>();
        assert!(size <= 256, "ClientState is {size} bytes");
    }
}
