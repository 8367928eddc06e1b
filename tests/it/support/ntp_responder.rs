//! A scripted NTP responder on a loopback endpoint, for behaviours a real server will not show
//! on demand: garbage, wrong origin timestamps, Kiss-o'-Death codes, silence, an unsynchronised
//! clock, or a precise sub-second offset (chronyd under libfaketime halves those).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use timeaudit_analysis::ntp::{Header, LeapIndicator, Mode, NtpTimestamp, RefId};

/// What the responder does with each query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Behaviour {
    /// A correct server reply from a clock `offset` seconds ahead of the real one.
    Offset(f64),
    /// 13 bytes that are not NTP.
    Garbage,
    /// A correct reply whose origin timestamp is not the client's transmit timestamp.
    WrongOrigin,
    /// A Kiss-o'-Death with this code.
    Kod([u8; 4]),
    /// No reply at all.
    Silence,
    /// A reply with leap 3 and stratum 16 and a clock `offset` seconds ahead.
    Unsynchronized(f64),
}

/// A running responder; stops on drop.
#[derive(Debug)]
pub struct Responder {
    /// Where it listens.
    pub addr: SocketAddr,
    queries: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn now_ntp(offset: f64) -> NtpTimestamp {
    NtpTimestamp::from_unix(super::now_unix() + offset)
}

fn reply(query: &Header, offset: f64, rx: NtpTimestamp) -> Header {
    Header {
        leap: LeapIndicator::NO_WARNING,
        version: query.version,
        mode: Mode::SERVER,
        stratum: 2,
        poll: query.poll,
        precision: -20,
        reference_id: RefId([192, 0, 2, 1]),
        reference_ts: now_ntp(offset - 10.0),
        origin_ts: query.transmit_ts,
        receive_ts: rx,
        transmit_ts: now_ntp(offset),
        ..Header::default()
    }
}

impl Responder {
    /// Starts a responder with `behaviour` on a fresh loopback endpoint.
    pub fn start(behaviour: Behaviour) -> Self {
        let addr = super::net::endpoint();
        let socket = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind responder {addr}: {e}"));
        Self::serve(socket, behaviour)
    }

    /// Starts a responder on `addr` (e.g. `[::1]:PORT`); `None` when it cannot be bound.
    pub fn start_at(addr: SocketAddr, behaviour: Behaviour) -> Option<Self> {
        UdpSocket::bind(addr).ok().map(|socket| Self::serve(socket, behaviour))
    }

    fn serve(socket: UdpSocket, behaviour: Behaviour) -> Self {
        let addr = socket.local_addr().expect("bound address");
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("read timeout");
        let queries = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s) = (queries.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                let rx_offset = match behaviour {
                    Behaviour::Offset(o) | Behaviour::Unsynchronized(o) => o,
                    _ => 0.0,
                };
                let rx = now_ntp(rx_offset);
                let Ok(query) = Header::decode(&buf[..n]) else { continue };
                q.fetch_add(1, Ordering::Relaxed);
                let out: Option<Vec<u8>> = match behaviour {
                    Behaviour::Offset(o) => Some(reply(&query, o, rx).encode().to_vec()),
                    Behaviour::Garbage => Some(b"not an answer".to_vec()),
                    Behaviour::WrongOrigin => {
                        let mut h = reply(&query, 0.0, rx);
                        h.origin_ts = NtpTimestamp(query.transmit_ts.0.wrapping_add(1));
                        Some(h.encode().to_vec())
                    }
                    Behaviour::Kod(code) => {
                        let mut h = reply(&query, 0.0, rx);
                        h.stratum = 0;
                        h.reference_id = RefId(code);
                        Some(h.encode().to_vec())
                    }
                    Behaviour::Silence => None,
                    Behaviour::Unsynchronized(o) => {
                        let mut h = reply(&query, o, rx);
                        h.leap = LeapIndicator::UNSYNCHRONIZED;
                        h.stratum = 16;
                        h.reference_ts = NtpTimestamp::ZERO;
                        Some(h.encode().to_vec())
                    }
                };
                if let Some(bytes) = out {
                    let _ = socket.send_to(&bytes, from);
                }
            }
        });
        Self { addr, queries, stop, thread: Some(thread) }
    }

    /// `ntp://ADDR:PORT`.
    pub fn url(&self) -> String {
        format!("ntp://{}", self.addr)
    }

    /// Queries received so far.
    pub fn queries(&self) -> u32 {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
