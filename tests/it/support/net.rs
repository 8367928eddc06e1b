//! Allocation of loopback addresses and ports unique to one test, so tests (and other test
//! processes on the same machine) can run in parallel: a random address in 127.0.0.0/8 and a
//! random high port, checked free by binding before use.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Mutex;

/// Lowest port handed out.
pub const PORT_MIN: u16 = 20_000;
/// Highest port handed out: below Linux's ephemeral range (32768–60999), where the client
/// sockets of the programs under test bind 0.0.0.0:port and would take a test server's port
/// between the check that it is free and the server's bind (seen once: a test's mode 7 responder
/// failed to bind with EADDRINUSE while other tests ran).
pub const PORT_MAX: u16 = 32_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

static RNG: Mutex<Option<Rng>> = Mutex::new(None);
static HANDED_OUT: Mutex<Vec<(Ipv4Addr, u16)>> = Mutex::new(Vec::new());

fn random() -> u64 {
    let mut guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let rng = guard.get_or_insert_with(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng(nanos ^ (u64::from(std::process::id()) << 32) | 1)
    });
    rng.next()
}

fn random_loopback() -> Ipv4Addr {
    let r = random();
    // 127.1.0.1 – 127.254.255.254: avoids 127.0.0.x, which system services and manual runs use,
    // and 127.127.x.x, which NTP reserves for reference-clock pseudo-addresses.
    let second = 1 + (r % 253) as u8;
    let second = if second >= 127 { second + 1 } else { second };
    Ipv4Addr::new(127, second, (r >> 8) as u8, 1 + ((r >> 16) % 254) as u8)
}

fn free(addr: Ipv4Addr, port: u16, tcp_too: bool) -> bool {
    let sa = SocketAddr::from((addr, port));
    UdpSocket::bind(sa).is_ok() && (!tcp_too || TcpListener::bind(sa).is_ok())
}

/// `count` distinct loopback addresses sharing one port, all free for UDP (and TCP when
/// `tcp_too`).
pub fn endpoints(count: usize, tcp_too: bool) -> (Vec<Ipv4Addr>, u16) {
    for _ in 0..1000 {
        let port = PORT_MIN + (random() % u64::from(PORT_MAX - PORT_MIN)) as u16;
        let addrs: Vec<Ipv4Addr> = (0..count).map(|_| random_loopback()).collect();
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        let distinct = addrs.iter().enumerate().all(|(i, a)| !addrs[..i].contains(a));
        if distinct && addrs.iter().all(|&a| !handed.contains(&(a, port)) && free(a, port, tcp_too)) {
            handed.extend(addrs.iter().map(|&a| (a, port)));
            return (addrs, port);
        }
    }
    panic!("no free loopback address/port found after 1000 tries");
}

/// One free loopback UDP endpoint.
pub fn endpoint() -> SocketAddr {
    let (addrs, port) = endpoints(1, false);
    SocketAddr::from((addrs[0], port))
}
