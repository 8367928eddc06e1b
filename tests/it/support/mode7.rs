//! A responder of our own for mode 7 (no current daemon answers ntpdc requests): answers mode 3
//! as a stratum-1 server and MON_GETLIST_1 with a fixed number of monlist datagrams, the way
//! ntpd 4.2.6 and older did before the 2014 amplification attacks.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use timeaudit_analysis::ntp::{Header, LeapIndicator, Mode, NtpMessage, NtpShort, NtpTimestamp, PrivateHeader, RefId};

/// Monlist datagrams sent per request.
pub const MONLIST_DATAGRAMS: usize = 3;
/// Entries per datagram.
pub const MONLIST_ITEMS: u16 = 6;
/// Size of one entry (ntpd's `struct info_monitor_1`).
pub const MONLIST_ITEM_SIZE: u16 = 72;

/// The responder thread.
#[derive(Debug)]
pub struct Mode7Responder {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

impl Mode7Responder {
    /// Binds `addr` and serves until dropped.
    pub fn start(addr: SocketAddr) -> Mode7Responder {
        let sock = UdpSocket::bind(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else { continue };
                let t2 = now();
                match NtpMessage::decode(&buf[..n]) {
                    Ok(NtpMessage::Time(p)) if p.header.mode == Mode::CLIENT => {
                        let reply = Header {
                            leap: LeapIndicator::NO_WARNING,
                            version: p.header.version,
                            mode: Mode::SERVER,
                            stratum: 1,
                            poll: 4,
                            precision: -20,
                            root_delay: NtpShort(0),
                            root_dispersion: NtpShort(0x0000_0100),
                            reference_id: RefId(*b"GPS\0"),
                            reference_ts: NtpTimestamp::from_unix(t2 - 1.0),
                            origin_ts: p.header.transmit_ts,
                            receive_ts: NtpTimestamp::from_unix(t2),
                            transmit_ts: NtpTimestamp::from_unix(now()),
                        };
                        let _ = sock.send_to(&reply.encode(), peer);
                    }
                    Ok(NtpMessage::Private { header, .. })
                        if !header.response && header.request_code == PrivateHeader::MON_GETLIST_1 =>
                    {
                        let items = vec![0u8; usize::from(MONLIST_ITEMS * MONLIST_ITEM_SIZE)];
                        for i in 0..MONLIST_DATAGRAMS {
                            let h = PrivateHeader {
                                response: true,
                                more: i + 1 < MONLIST_DATAGRAMS,
                                version: header.version,
                                sequence: i as u8,
                                implementation: header.implementation,
                                request_code: header.request_code,
                                item_count: MONLIST_ITEMS,
                                item_size: MONLIST_ITEM_SIZE,
                                ..PrivateHeader::default()
                            };
                            let _ = sock.send_to(&NtpMessage::Private { header: h, payload: &items }.encode(), peer);
                        }
                    }
                    _ => {} // mode 6 and anything else: silence, like a modern daemon
                }
            }
        });
        Mode7Responder { stop, handle: Some(handle) }
    }
}

impl Drop for Mode7Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
