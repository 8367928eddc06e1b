//! One client's record in a capture's load (counters, polling intervals, the rate-limit
//! simulations of chrony and ntpd), the rules those simulations follow, and the tables the
//! records are kept in while streaming (an address index over fixed-size chunks).

use super::record::NtpKind;
use super::stats::{AddrHashBuilder, Log2Histogram, P2Median};
use std::collections::HashMap;
use std::net::IpAddr;

const NS_PER_S: i64 = 1_000_000_000;

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

/// No request seen yet (sentinel of [`ClientState::last_request_ns`]).
const NONE_NS: i64 = i64::MIN;

/// One client (one IP address): its counters, and the state the per-packet path keeps for its
/// intervals and the rate-limit simulations. 176 bytes: for a 300,000-client capture the
/// per-packet cost is the memory traffic of these records, and the report reads them as they are.
/// The layout is fixed (`repr(C)`) so that [`Self::touch_lines`] reads every cache line.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct ClientState {
    /// First packet to or from it.
    pub first_ns: i64,
    /// Last packet to or from it.
    pub last_ns: i64,
    last_request_ns: i64,
    min_interval: i64,
    /// Wire bytes it sent to the server (any NTP packet, malformed included).
    pub bytes_in: u64,
    /// Wire bytes the server sent to it.
    pub bytes_out: u64,
    /// Requests sent to the server (modes 1, 3, and 6/7 without the response bit).
    pub requests: u32,
    /// Responses the server sent to it.
    pub responses: u32,
    /// KoD replies it received.
    pub kod_received: u32,
    /// Mode 6/7 requests it sent.
    pub control_requests: u32,
    /// Monlist requests it sent.
    pub monlist_requests: u32,
    chrony_limited: u32,
    /// Requests chrony's ratelimit would have dropped.
    pub chrony_dropped: u32,
    /// Requests ntpd's discard/limited would have dropped.
    pub ntpd_dropped: u32,
    chrony_tokens: f32,
    ntpd_leak: i32,
    /// Median interval between requests, seconds.
    pub median: P2Median,
    /// Address.
    pub addr: IpAddr,
    /// Bit v set when it sent version v.
    pub versions: u8,
    /// Bit m set when it sent mode m.
    pub modes: u8,
    /// log2 histogram of intervals between requests.
    pub histogram: Log2Histogram,
}

impl ClientState {
    pub(super) fn new(addr: IpAddr, ts: i64, chrony: &ChronyRateLimit) -> Self {
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

    /// Reads a field in each 64-byte stretch of the record (offsets 0, 64, 88, 141 and 168: at
    /// most 64 bytes apart, so every cache line the record spans), for a caller that loads the
    /// records of many packets before updating them.
    #[inline]
    pub(super) fn touch_lines(&self) -> i64 {
        self.first_ns
            ^ i64::from(self.monlist_requests)
            ^ i64::from(self.median.count())
            ^ i64::from(self.versions)
            ^ i64::from(self.histogram.is_large())
    }

    /// Shortest interval between two requests, nanoseconds.
    pub fn min_interval_ns(&self) -> Option<i64> {
        (self.min_interval != i64::MAX).then_some(self.min_interval)
    }

    pub(super) fn touch(&mut self, ts: i64) {
        self.first_ns = self.first_ns.min(ts);
        self.last_ns = self.last_ns.max(ts);
    }

    pub(super) fn request(&mut self, ts: i64, kind: &NtpKind, rules: &Rules) {
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
        self.simulate_chrony(ts, prev, rules);
        self.simulate_ntpd(ts, prev, &rules.ntpd);
    }

    /// Token bucket: one token per 2^interval s, at most `burst`; a request without a token is
    /// dropped, except every 2^leak-th limited one (chrony leaks at random with that rate).
    fn simulate_chrony(&mut self, ts: i64, prev: i64, rules: &Rules) {
        if prev != NONE_NS {
            let elapsed = (ts - prev).max(0) as f64 * 1e-9;
            self.chrony_tokens =
                (f64::from(self.chrony_tokens) + elapsed * rules.chrony_tokens_per_s).min(rules.chrony_burst) as f32;
        }
        if self.chrony_tokens >= 1.0 {
            self.chrony_tokens -= 1.0;
        } else {
            self.chrony_limited += 1;
            if self.chrony_limited & rules.chrony_leak_mask != 0 {
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

/// The rate-limit rules with what the per-request path needs precomputed.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rules {
    chrony_tokens_per_s: f64,
    chrony_burst: f64,
    /// A limited request is answered when `limited & mask == 0` (one in 2^leak).
    chrony_leak_mask: u32,
    ntpd: NtpdDiscard,
}

impl Rules {
    pub(super) fn new(chrony: &ChronyRateLimit, ntpd: &NtpdDiscard) -> Self {
        let leak = chrony.leak.min(31);
        Self {
            chrony_tokens_per_s: 2f64.powi(-i32::from(chrony.interval)),
            chrony_burst: f64::from(chrony.burst),
            chrony_leak_mask: (1u32 << leak) - 1,
            ntpd: *ntpd,
        }
    }
}

/// Client address → client number. IPv4 keys are 4 bytes (8-byte buckets): the index of
/// 300,000 IPv4 clients stays around 4 MB and in cache, where 128-bit keys would take 16 MB.
#[derive(Debug, Default)]
pub(super) struct AddrIndex {
    v4: HashMap<u32, u32, AddrHashBuilder>,
    v6: HashMap<u128, u32, AddrHashBuilder>,
}

impl AddrIndex {
    pub(super) fn get(&self, addr: IpAddr) -> Option<u32> {
        match addr {
            IpAddr::V4(a) => self.v4.get(&u32::from(a)).copied(),
            IpAddr::V6(a) => self.v6.get(&u128::from(a)).copied(),
        }
    }

    pub(super) fn get_or_insert(&mut self, addr: IpAddr, next: u32) -> u32 {
        match addr {
            IpAddr::V4(a) => *self.v4.entry(u32::from(a)).or_insert(next),
            IpAddr::V6(a) => *self.v6.entry(u128::from(a)).or_insert(next),
        }
    }
}

/// A vector in fixed-size chunks: growing never copies (or doubles) what it holds, so a table of
/// 300,000 clients never exists twice during a resize.
#[derive(Debug)]
pub(super) struct ChunkedVec<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

const CHUNK: usize = 1 << 14;

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        Self { chunks: Vec::new(), len: 0 }
    }
}

impl<T> ChunkedVec<T> {
    pub(super) fn push(&mut self, item: T) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(last) = self.chunks.last_mut() {
            last.push(item);
        }
        self.len += 1;
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }
}

impl<T> std::ops::Index<usize> for ChunkedVec<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl<T> std::ops::IndexMut<usize> for ChunkedVec<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }
}

/// Every client, in chunks (as the analyzer kept them; merging tables moves chunks, never
/// clients).
#[derive(Debug, Default)]
pub struct ClientTable {
    chunks: Vec<Vec<ClientState>>,
    len: usize,
}

impl ClientTable {
    /// Number of clients.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The clients: each analyzer's in order of first appearance, one analyzer after another.
    pub fn iter(&self) -> impl Iterator<Item = &ClientState> + '_ {
        self.chunks.iter().flatten()
    }

    pub(super) fn append(&mut self, other: ClientTable) {
        self.chunks.extend(other.chunks);
        self.len += other.len;
    }
}

impl From<ChunkedVec<ClientState>> for ClientTable {
    fn from(v: ChunkedVec<ClientState>) -> Self {
        Self { len: v.len, chunks: v.chunks }
    }
}

impl<'a> IntoIterator for &'a ClientTable {
    type Item = &'a ClientState;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<ClientState>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.chunks.iter().flatten()
    }
}
