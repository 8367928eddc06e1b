//! Which addresses are the server's in a capture: the set given or detected (one per family for
//! a dual-stack server), detection from the first packets, a packet's client, and the split of
//! clients over aggregating threads.

use super::record::{NTP_PORT, NtpKind, PacketSummary};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

/// At most this many addresses make up one server ([`Servers`]).
pub const MAX_SERVER_ADDRS: usize = 8;

/// The addresses of the server a capture is analysed for: one for most servers, one per address
/// family for a dual-stack one, more for a multi-homed one (at most [`MAX_SERVER_ADDRS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Servers {
    addrs: [IpAddr; MAX_SERVER_ADDRS],
    len: u8,
}

impl Default for Servers {
    fn default() -> Self {
        Self::NONE
    }
}

impl Servers {
    /// No address.
    pub const NONE: Self = Self { addrs: [IpAddr::V4(Ipv4Addr::UNSPECIFIED); MAX_SERVER_ADDRS], len: 0 };

    /// The distinct addresses of `addrs`, in order; `None` when there are more than
    /// [`MAX_SERVER_ADDRS`].
    pub fn new(addrs: &[IpAddr]) -> Option<Self> {
        let mut set = Self::NONE;
        for &a in addrs {
            if set.contains(a) {
                continue;
            }
            *set.addrs.get_mut(usize::from(set.len))? = a;
            set.len += 1;
        }
        Some(set)
    }

    /// One address.
    pub fn one(addr: IpAddr) -> Self {
        let mut set = Self::NONE;
        set.addrs[0] = addr;
        set.len = 1;
        set
    }

    /// Whether `addr` is one of the server's.
    #[inline]
    pub fn contains(&self, addr: IpAddr) -> bool {
        // Most servers have one address: that comparison first.
        (self.len > 0 && self.addrs[0] == addr) || (self.len > 1 && self.as_slice()[1..].contains(&addr))
    }

    /// The addresses, the primary (detected first, or given first) first.
    #[inline]
    pub fn as_slice(&self) -> &[IpAddr] {
        &self.addrs[..usize::from(self.len)]
    }

    /// The primary address.
    pub fn primary(&self) -> Option<IpAddr> {
        self.as_slice().first().copied()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The client of an NTP packet between `src` and `dst`: the side that is not the server (the
/// server itself on a host talking to itself); `None` when the server is on neither side.
#[inline]
pub fn client_of(servers: &Servers, src: IpAddr, dst: IpAddr) -> Option<IpAddr> {
    if servers.contains(dst) {
        Some(src)
    } else if servers.contains(src) {
        Some(dst)
    } else {
        None
    }
}

/// Splits clients over `count` aggregators (threads): the one a client belongs to, `0..count`.
#[inline]
pub fn shard_of(client: IpAddr, count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let h = match client {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v as u64) ^ ((v >> 64) as u64).rotate_left(17)
        }
    };
    let h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    // The top 32 bits scaled to 0..count (no division on the per-packet path).
    (((h >> 32) * count as u64) >> 32) as usize
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

/// A second address of the server in the other family answers mode 3 from port 123 to at least
/// this many distinct addresses (an upstream answering the server's own queries answers one).
pub const MIN_CLIENTS_OF_SECOND_FAMILY: usize = 2;

/// The server's addresses as seen in the packets: the primary by [`detect_server`]; a dual-stack
/// server's address in the other family is, of that family's addresses sending mode 4 replies
/// from port 123, the one answering the most distinct addresses, when that is at least
/// [`MIN_CLIENTS_OF_SECOND_FAMILY`].
pub fn detect_servers(packets: &[PacketSummary]) -> Servers {
    let Some(primary) = detect_server(packets) else { return Servers::NONE };
    let mut answered: HashMap<IpAddr, HashSet<IpAddr>> = HashMap::new();
    for s in packets {
        if matches!(s.kind, NtpKind::Time { mode: 4, .. })
            && s.sport == NTP_PORT
            && s.src.is_ipv4() != primary.is_ipv4()
        {
            answered.entry(s.src).or_default().insert(s.dst);
        }
    }
    let second = answered
        .iter()
        .filter(|(_, to)| to.len() >= MIN_CLIENTS_OF_SECOND_FAMILY)
        .max_by(|(a, ta), (b, tb)| ta.len().cmp(&tb.len()).then(b.cmp(a)))
        .map(|(a, _)| *a);
    match second {
        Some(other) => Servers::new(&[primary, other]).unwrap_or(Servers::one(primary)),
        None => Servers::one(primary),
    }
}
