//! Per-client load of an NTP server from captured packets: server detection, direction, totals,
//! per-client counters (requests, responses, bytes, polling intervals, versions, modes, KoD),
//! the per-minute request rate, and simulations of chrony's `ratelimit` and ntpd's
//! `discard`/`limited`. Memory grows with distinct clients (and capture minutes), never with
//! packets; the per-packet path does not allocate once a client is known (except once for a
//! client whose histogram bin passes 255).

use super::clients::{AddrIndex, ChunkedVec, Rules};
pub use super::clients::{ChronyRateLimit, ClientState, ClientTable, NtpdDiscard};
use super::frame::{Dissection, dissect};
use super::record::{MacKind, NTP_PORT, NtpKind, PacketSummary};
pub use super::servers::{
    MAX_SERVER_ADDRS, MIN_CLIENTS_OF_SECOND_FAMILY, Servers, client_of, detect_server, detect_servers, shard_of,
};
use crate::ntp::KissCode;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

/// NTP packets buffered (as fixed-size summaries) to detect the server before aggregating, when
/// no server was given.
pub const DEFAULT_DETECT_WINDOW: usize = 100_000;
/// The per-minute series covers at most this many minutes after the first packet (two years);
/// packets dated outside are counted but not placed in the series.
pub const MAX_SERIES_MINUTES: i64 = 2 * 366 * 24 * 60;
const NS_PER_S: i64 = 1_000_000_000;
const NS_PER_MIN: i64 = 60 * NS_PER_S;

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
    /// The server's addresses (one per family for a dual-stack server); detected from the
    /// traffic when empty.
    pub servers: Servers,
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
            servers: Servers::NONE,
            detect_window: DEFAULT_DETECT_WINDOW,
            chrony: ChronyRateLimit::default(),
            ntpd: NtpdDiscard::default(),
            types: ClientTypeParams::default(),
        }
    }
}

/// NTP packets queued for aggregation (see [`LoadAnalyzer::drain_queue`]).
const QUEUE_LEN: usize = 64;
/// No client number (not looked up, or a new client).
const NOT_FOUND: u32 = u32::MAX;
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

impl Totals {
    /// Sets the figures derived from the counters and the capture's first and last frame (ns):
    /// first/last timestamps, duration, out/in ratio.
    fn derive(&mut self, span_ns: Option<(i64, i64)>) {
        self.first_ts = span_ns.map(|(f, _)| ns_to_s(f));
        self.last_ts = span_ns.map(|(_, l)| ns_to_s(l));
        self.duration_s = span_ns.map_or(0.0, |(f, l)| (l - f) as f64 * 1e-9);
        self.out_in_ratio = (self.bytes_in > 0).then(|| self.bytes_out as f64 / self.bytes_in as f64);
    }

    /// Adds the plain counters of `other` (those the streaming path counts; the maps, ratios
    /// and time span are derived in [`LoadAnalyzer::finish`]).
    fn add_counters(&mut self, o: &Totals) {
        let Totals {
            packets,
            bytes,
            ntp_packets,
            ntp_bytes,
            ntp_payload_bytes,
            duration_s: _,
            first_ts: _,
            last_ts: _,
            requests,
            responses,
            unique_clients: _,
            modes: _,
            versions: _,
            kod: _,
            malformed,
            malformed_by_reason: _,
            bytes_in,
            bytes_out,
            out_in_ratio: _,
            server_egress_bytes,
            extension_fields,
            packets_with_extensions,
            packets_with_mac,
            crypto_naks,
            mode6_packets,
            mode7_packets,
            monlist_responses,
            server_upstream_packets,
            other_ntp_packets,
            ip_fragments,
            truncated_frames: _,
            unsupported_link_frames,
            non_ntp_frames,
        } = o;
        self.packets += packets;
        self.bytes += bytes;
        self.ntp_packets += ntp_packets;
        self.ntp_bytes += ntp_bytes;
        self.ntp_payload_bytes += ntp_payload_bytes;
        self.requests += requests;
        self.responses += responses;
        self.malformed += malformed;
        self.bytes_in += bytes_in;
        self.bytes_out += bytes_out;
        self.server_egress_bytes += server_egress_bytes;
        self.extension_fields += extension_fields;
        self.packets_with_extensions += packets_with_extensions;
        self.packets_with_mac += packets_with_mac;
        self.crypto_naks += crypto_naks;
        self.mode6_packets += mode6_packets;
        self.mode7_packets += mode7_packets;
        self.monlist_responses += monlist_responses;
        self.server_upstream_packets += server_upstream_packets;
        self.other_ntp_packets += other_ntp_packets;
        self.ip_fragments += ip_fragments;
        self.unsupported_link_frames += unsupported_link_frames;
        self.non_ntp_frames += non_ntp_frames;
    }
}

/// Streaming aggregator: feed frames (or NTP summaries) in capture order, then [`Self::finish`].
#[derive(Debug)]
pub struct LoadAnalyzer {
    cfg: LoadConfig,
    rules: Rules,
    servers: Servers,
    detecting: bool,
    pending: Vec<PacketSummary>,
    totals: Totals,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
    index: AddrIndex,
    clients: ChunkedVec<ClientState>,
    /// NTP packets waiting to be aggregated, so that their clients can be looked up together.
    queue: Vec<PacketSummary>,
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

/// Counts `n` under `key` in a short list (few distinct keys: reasons, kiss codes).
fn bump_by<K: PartialEq>(counts: &mut Vec<(K, u64)>, key: K, n: u64) {
    match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, c)) => *c += n,
        None => counts.push((key, n)),
    }
}

fn bump<K: PartialEq>(counts: &mut Vec<(K, u64)>, key: K) {
    bump_by(counts, key, 1);
}

impl LoadAnalyzer {
    /// A new aggregator; detects the server from the first packets unless `cfg.servers` names it.
    pub fn new(cfg: LoadConfig) -> Self {
        Self::with_servers(cfg, cfg.servers, cfg.servers.is_empty())
    }

    /// A new aggregator for a server already known (none: the capture has no server), e.g.
    /// found beforehand with [`detect_servers`] by whoever splits a capture over several
    /// aggregators.
    pub fn with_known_servers(cfg: LoadConfig, servers: Servers) -> Self {
        Self::with_servers(cfg, servers, false)
    }

    fn with_servers(cfg: LoadConfig, servers: Servers, detecting: bool) -> Self {
        Self {
            rules: Rules::new(&cfg.chrony, &cfg.ntpd),
            servers,
            detecting,
            cfg,
            pending: Vec::new(),
            totals: Totals::default(),
            first_ns: None,
            last_ns: None,
            index: AddrIndex::default(),
            clients: ChunkedVec::default(),
            queue: Vec::with_capacity(QUEUE_LEN),
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

    /// The server's addresses, once known.
    pub fn servers(&self) -> Servers {
        self.servers
    }

    /// Dissects one frame and accounts for it.
    pub fn add_frame(&mut self, link: u32, ts_ns: i64, wire_len: u32, data: &[u8]) {
        if let Some(s) = self.split_frame(link, ts_ns, wire_len, data) {
            self.add_summary(s);
        }
    }

    /// Dissects one frame: accounts for it here unless it is an NTP packet, whose summary it
    /// returns instead, to be given to [`Self::add_summary`] of this or another aggregator.
    #[inline]
    pub fn split_frame(&mut self, link: u32, ts_ns: i64, wire_len: u32, data: &[u8]) -> Option<PacketSummary> {
        let dissection = dissect(link, data);
        if let Dissection::Udp(udp) = &dissection
            && (udp.sport == NTP_PORT || udp.dport == NTP_PORT)
        {
            return Some(PacketSummary::from_udp(ts_ns, wire_len, udp));
        }
        self.count_frame(ts_ns, wire_len);
        match dissection {
            Dissection::Udp(_) | Dissection::OtherIp | Dissection::NotIp => self.totals.non_ntp_frames += 1,
            Dissection::Fragment { .. } => self.totals.ip_fragments += 1,
            Dissection::Truncated(what) => bump(&mut self.truncated, what),
            Dissection::UnsupportedLink(_) => self.totals.unsupported_link_frames += 1,
        }
        None
    }

    /// Accounts for the frame of an NTP packet and the packet (from [`Self::split_frame`]).
    #[inline]
    pub fn add_summary(&mut self, s: PacketSummary) {
        self.count_frame(s.ts_ns, s.wire_len);
        self.queue.push(s);
        if self.queue.len() == QUEUE_LEN {
            self.drain_queue();
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
        if !self.queue.is_empty() {
            self.drain_queue();
        }
        self.add_ntp_now(s, NOT_FOUND);
    }

    /// Accounts for the frames of NTP packets and the packets (from [`Self::split_frame`]), in
    /// order: [`Self::add_summary`] for a whole batch.
    pub fn add_summaries(&mut self, batch: &[PacketSummary]) {
        if !self.queue.is_empty() {
            self.drain_queue();
        }
        for group in batch.chunks(QUEUE_LEN) {
            for s in group {
                self.count_frame(s.ts_ns, s.wire_len);
            }
            self.aggregate_group(group);
        }
    }

    fn drain_queue(&mut self) {
        let queue = std::mem::take(&mut self.queue);
        self.aggregate_group(&queue);
        self.queue = queue;
        self.queue.clear();
    }

    /// Aggregates up to [`QUEUE_LEN`] packets in order. The clients of the whole group are looked
    /// up first, then their records read in one tight loop: independent loads that the CPU
    /// overlaps, so a 300,000-client table costs about one memory round trip per group of
    /// packets rather than one per packet.
    fn aggregate_group(&mut self, group: &[PacketSummary]) {
        let mut found = [NOT_FOUND; QUEUE_LEN];
        if !self.detecting && !self.servers.is_empty() {
            for (slot, s) in found.iter_mut().zip(group) {
                if let Some(client) = client_of(&self.servers, s.src, s.dst) {
                    *slot = self.index.get(client).unwrap_or(NOT_FOUND);
                }
            }
            let mut touched = 0i64;
            for &i in &found[..group.len()] {
                if i != NOT_FOUND {
                    touched ^= self.clients[i as usize].touch_lines();
                }
            }
            std::hint::black_box(touched);
        }
        for (s, &i) in group.iter().zip(&found) {
            self.add_ntp_now(*s, i);
        }
    }

    /// `known`: the client's number when the caller has looked it up (or [`NOT_FOUND`]).
    fn add_ntp_now(&mut self, s: PacketSummary, known: u32) {
        if self.detecting {
            self.pending.push(s);
            if self.pending.len() >= self.cfg.detect_window.max(1) {
                self.resolve_server();
            }
        } else {
            self.aggregate(s, known);
        }
    }

    fn resolve_server(&mut self) {
        self.detecting = false;
        self.servers = detect_servers(&self.pending);
        let pending = std::mem::take(&mut self.pending);
        for s in pending {
            self.aggregate(s, NOT_FOUND);
        }
    }

    fn client(&mut self, addr: IpAddr, ts: i64, known: u32) -> &mut ClientState {
        if known != NOT_FOUND {
            return &mut self.clients[known as usize];
        }
        let next = self.clients.len() as u32;
        let i = self.index.get_or_insert(addr, next);
        if i == next {
            self.clients.push(ClientState::new(addr, ts, &self.cfg.chrony));
        }
        &mut self.clients[i as usize]
    }

    fn aggregate(&mut self, s: PacketSummary, known: u32) {
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
        // Direction by the server's addresses; on a host talking to itself (loopback captures)
        // by the port: the side on port 123 is the server.
        let (to_server, from_server) = match (self.servers.contains(s.dst), self.servers.contains(s.src)) {
            (true, true) => (s.dport == NTP_PORT && s.sport != NTP_PORT, s.sport == NTP_PORT && s.dport != NTP_PORT),
            direction => direction,
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
            let rules = self.rules;
            let c = self.client(s.src, s.ts_ns, known);
            c.touch(s.ts_ns);
            c.bytes_in += u64::from(s.wire_len);
            if is_request {
                c.request(s.ts_ns, &s.kind, &rules);
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
            let c = self.client(s.dst, s.ts_ns, known);
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
        self.add_to_series(minute, count);
    }

    fn add_to_series(&mut self, minute: i64, count: u32) {
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
        self.drain_queue();
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
        drop(self.index);
        let clients = ClientTable::from(self.clients);
        totals.unique_clients = clients.len() as u64;
        let span_ns = self.first_ns.zip(self.last_ns);
        totals.derive(span_ns);
        Load {
            config: self.cfg,
            servers: self.servers,
            totals,
            clients,
            span_ns,
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

/// The aggregated load of a capture, before reporting.
#[derive(Debug)]
pub struct Load {
    /// The configuration used.
    pub config: LoadConfig,
    /// The server's addresses (given or detected).
    pub servers: Servers,
    /// Totals.
    pub totals: Totals,
    /// Every client (each aggregator's in order of first appearance).
    pub clients: ClientTable,
    /// Capture timestamps (ns) of the first and last frame.
    pub span_ns: Option<(i64, i64)>,
    /// Unix seconds of the first minute of `requests_per_minute`.
    pub minute_base: Option<i64>,
    /// Requests per minute from `minute_base`.
    pub requests_per_minute: Vec<u32>,
    /// Requests dated too far from the rest to be placed in the series.
    pub requests_outside_series: u64,
}

impl Load {
    /// Folds in the load of the same capture's other frames and other clients, as another
    /// aggregator counted them (see [`shard_of`]): the result is what one aggregator of all the
    /// frames would have counted, except for the order of the clients.
    pub fn merge(&mut self, other: Load) {
        let t = &mut self.totals;
        let o = other.totals;
        t.add_counters(&o);
        Self::add_counts(&mut t.modes, o.modes);
        Self::add_counts(&mut t.versions, o.versions);
        Self::add_counts(&mut t.kod, o.kod);
        Self::add_counts(&mut t.malformed_by_reason, o.malformed_by_reason);
        Self::add_counts(&mut t.truncated_frames, o.truncated_frames);
        self.span_ns = match (self.span_ns, other.span_ns) {
            (Some((f1, l1)), Some((f2, l2))) => Some((f1.min(f2), l1.max(l2))),
            (a, b) => a.or(b),
        };
        t.derive(self.span_ns);
        t.unique_clients += o.unique_clients;
        self.clients.append(other.clients);
        self.requests_outside_series += other.requests_outside_series;
        self.merge_series(other.minute_base, &other.requests_per_minute);
    }

    fn add_counts<K: Ord>(into: &mut BTreeMap<K, u64>, from: BTreeMap<K, u64>) {
        for (k, n) in from {
            *into.entry(k).or_insert(0) += n;
        }
    }

    fn merge_series(&mut self, base: Option<i64>, counts: &[u32]) {
        let Some(other_base) = base.map(|b| b / 60) else { return };
        let Some(own_base) = self.minute_base.map(|b| b / 60) else {
            self.minute_base = base;
            self.requests_per_minute = counts.to_vec();
            return;
        };
        let first = own_base.min(other_base);
        let end = (own_base + self.requests_per_minute.len() as i64).max(other_base + counts.len() as i64);
        let last = end.min(first + MAX_SERIES_MINUTES);
        let mut merged = vec![0u32; (last - first) as usize];
        for (b, series) in [(own_base, self.requests_per_minute.as_slice()), (other_base, counts)] {
            for (i, &n) in series.iter().enumerate() {
                let at = b + i as i64 - first;
                match merged.get_mut(at as usize) {
                    Some(slot) => *slot = slot.saturating_add(n),
                    None => self.requests_outside_series += u64::from(n),
                }
            }
        }
        self.minute_base = Some(first * 60);
        self.requests_per_minute = merged;
    }
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
        // 300,000 clients must fit well under 200 MB: about 53 MB of records, 4 MB of index.
        assert_eq!(std::mem::size_of::<ClientState>(), 176);
        // What crosses between threads per NTP packet.
        let summary = std::mem::size_of::<PacketSummary>();
        assert!(summary <= 80, "PacketSummary is {summary} bytes");
    }

    #[test]
    fn histogram_bins_past_255_move_to_32_bit_counts() {
        let mut a =
            LoadAnalyzer::new(LoadConfig { servers: Servers::one(IpAddr::from([192, 0, 2, 1])), ..Default::default() });
        let request = |ts_ns: i64| PacketSummary {
            ts_ns,
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([192, 0, 2, 1]),
            sport: 40000,
            dport: 123,
            wire_len: 90,
            udp_len: 48,
            kind: NtpKind::Time { version: 4, mode: 3, stratum: 0, kiss: None, extensions: 0, mac: MacKind::None },
        };
        // 600 intervals of 2 s (bin 1), then 3 of 64 s (bin 6).
        let mut ts = 0;
        a.add_summary(request(ts));
        for _ in 0..600 {
            ts += 2 * NS_PER_S;
            a.add_summary(request(ts));
        }
        for _ in 0..3 {
            ts += 64 * NS_PER_S;
            a.add_summary(request(ts));
        }
        let load = a.finish();
        let c = load.clients.iter().next().unwrap();
        assert_eq!(c.histogram.to_compact_string(), "1:600 6:3");
        assert_eq!(c.requests, 604);
        assert_eq!(c.min_interval_ns(), Some(2 * NS_PER_S));
    }
}
