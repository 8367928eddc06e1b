//! A small NTP server of the tests' own on a loopback address: answers mode-3 queries with a
//! configurable clock offset, reply delay or Kiss-o'-Death, and timestamps every arrival (the
//! counting server that checks a survey's rate and per-address gap). Runs on a thread; stops
//! when dropped.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds from 1900 (NTP era 0) to 1970.
const NTP_UNIX_DELTA: f64 = 2_208_988_800.0;

/// How the responder answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// A server whose clock is `offset` seconds ahead (negative: behind), stratum 2.
    Clock {
        /// Seconds added to the real time.
        offset: f64,
        /// Wait this long before answering.
        delay: Duration,
    },
    /// A Kiss-o'-Death with this code (`RATE`, `DENY`, ...).
    Kod(&'static str),
}

/// One arrival.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// Monotonic arrival time.
    pub at: Instant,
}

/// A running responder (one or several sockets sharing one arrival log).
#[derive(Debug)]
pub struct NtpResponder {
    /// The bound addresses.
    pub addrs: Vec<SocketAddr>,
    log: Arc<Mutex<Vec<Arrival>>>,
    replies: Arc<Mutex<u64>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn ntp_ts(unix: f64) -> [u8; 8] {
    let t = unix + NTP_UNIX_DELTA;
    let secs = t.floor();
    let frac = ((t - secs) * 4_294_967_296.0) as u64;
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&(secs as u64 as u32).to_be_bytes());
    out[4..].copy_from_slice(&(frac.min(u64::from(u32::MAX)) as u32).to_be_bytes());
    out
}

fn now_unix() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// The reply to `query` (None when the query is not a client packet).
fn reply(query: &[u8], behaviour: &Behaviour, received: f64) -> Option<Vec<u8>> {
    if query.len() < 48 || query[0] & 0x07 != 3 {
        return None;
    }
    let mut p = vec![0u8; 48];
    let version = (query[0] >> 3) & 0x07;
    p[0] = (version << 3) | 4;
    p[2] = query[2];
    p[24..32].copy_from_slice(&query[40..48]); // origin = client's transmit
    match behaviour {
        Behaviour::Kod(code) => {
            p[0] |= 3 << 6;
            p[1] = 0;
            p[12..16].copy_from_slice(&code.as_bytes()[..4]);
            let now = now_unix();
            p[32..40].copy_from_slice(&ntp_ts(now));
            p[40..48].copy_from_slice(&ntp_ts(now));
        }
        Behaviour::Clock { offset, .. } => {
            p[1] = 2;
            p[3] = (-20i8) as u8;
            p[4..8].copy_from_slice(&0x0000_0100u32.to_be_bytes()); // root delay 1/256 s
            p[8..12].copy_from_slice(&0x0000_0200u32.to_be_bytes()); // root dispersion 2/256 s
            p[12..16].copy_from_slice(&[127, 0, 0, 1]);
            p[16..24].copy_from_slice(&ntp_ts(received + offset - 16.0));
            p[32..40].copy_from_slice(&ntp_ts(received + offset));
            // Transmit stamped at arrival too: a slow answer looks like a slow path (delay).
            p[40..48].copy_from_slice(&ntp_ts(received + offset));
        }
    }
    Some(p)
}

impl NtpResponder {
    /// Starts one socket per address in `addrs` (port 0 picks a free port), all behaving alike.
    pub fn start(addrs: &[SocketAddr], behaviour: Behaviour) -> NtpResponder {
        let log = Arc::new(Mutex::new(Vec::new()));
        let replies = Arc::new(Mutex::new(0u64));
        let stop = Arc::new(AtomicBool::new(false));
        let mut bound = Vec::new();
        let mut threads = Vec::new();
        for addr in addrs {
            let sock =
                UdpSocket::bind(addr).unwrap_or_else(|e| panic!("binding the test NTP responder to {addr}: {e}"));
            sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let local = sock.local_addr().unwrap();
            bound.push(local);
            let (log, replies, stop, behaviour) = (log.clone(), replies.clone(), stop.clone(), behaviour.clone());
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while !stop.load(Ordering::SeqCst) {
                    let Ok((n, peer)) = sock.recv_from(&mut buf) else { continue };
                    let at = Instant::now();
                    let received = now_unix();
                    log.lock().unwrap().push(Arrival { at });
                    if let Behaviour::Clock { delay, .. } = &behaviour
                        && !delay.is_zero()
                    {
                        std::thread::sleep(*delay);
                    }
                    if let Some(out) = reply(&buf[..n], &behaviour, received) {
                        let _ = sock.send_to(&out, peer);
                        *replies.lock().unwrap() += 1;
                    }
                }
            }));
        }
        NtpResponder { addrs: bound, log, replies, stop, threads }
    }

    /// The first bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Every arrival so far, in order.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.log.lock().unwrap().clone()
    }

    /// Replies sent so far.
    pub fn replies(&self) -> u64 {
        *self.replies.lock().unwrap()
    }
}

impl Drop for NtpResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
