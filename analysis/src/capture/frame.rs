//! Link-layer, IP and UDP dissection of captured frames, without allocation: Ethernet (with
//! 802.1Q/802.1ad VLAN tags), Linux cooked captures (SLL, SLL2), raw IP, BSD loopback (NULL and
//! LOOP), IPv4 and IPv6 (extension headers skipped, fragments recognised).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Link types (the pcap `LINKTYPE_*` numbers) understood by [`dissect`].
pub mod linktype {
    /// BSD loopback: 4-byte address family in the capturing host's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II / 802.3.
    pub const ETHERNET: u32 = 1;
    /// Raw IP (OpenBSD's old number).
    pub const RAW_OPENBSD: u32 = 12;
    /// Raw IP (BSD/OS's old number).
    pub const RAW_BSDOS: u32 = 14;
    /// Raw IPv4 or IPv6, version taken from the first nibble.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1 (16-byte header).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2 (20-byte header).
    pub const LINUX_SLL2: u32 = 276;
}

/// IANA protocol number of UDP.
const IPPROTO_UDP: u8 = 17;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// VLAN tag protocol identifiers: 802.1Q, 802.1ad (QinQ outer tag) and the old 0x9100.
const ETHERTYPES_VLAN: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// At most this many stacked VLAN tags are skipped (deeper stacks are not IP traffic we know).
pub const MAX_VLAN_TAGS: usize = 8;
/// At most this many IPv6 extension headers are skipped before giving up.
pub const MAX_IPV6_EXTENSION_HEADERS: usize = 16;

/// A UDP datagram found in a frame; the payload is borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Payload length according to the UDP header (length field − 8).
    pub payload_len: u32,
    /// The captured payload: at most `payload_len` bytes, fewer if the capture was cut short
    /// (snap length) or the datagram is the first fragment of a fragmented one.
    pub payload: &'a [u8],
    /// Whether the IP datagram was the first fragment of several (payload incomplete).
    pub first_fragment: bool,
}

/// What a frame turned out to carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dissection<'a> {
    /// A UDP datagram (or the first fragment of one).
    Udp(UdpDatagram<'a>),
    /// A non-first IP fragment of a UDP (or unknown) datagram: no UDP header, cannot be decoded.
    Fragment {
        /// Source address.
        src: IpAddr,
        /// Destination address.
        dst: IpAddr,
    },
    /// IP, but not UDP (TCP, ICMP, ESP, ...).
    OtherIp,
    /// Not IP at all (ARP, LLC, ...).
    NotIp,
    /// The frame ends inside a header that is needed.
    Truncated(&'static str),
    /// A link type this dissector does not know.
    UnsupportedLink(u32),
}

fn be16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Dissects one captured frame of the given link type down to UDP.
pub fn dissect(link: u32, frame: &[u8]) -> Dissection<'_> {
    match link {
        linktype::ETHERNET => dissect_ethernet(frame),
        linktype::RAW | linktype::RAW_OPENBSD | linktype::RAW_BSDOS => dissect_ip(frame),
        linktype::IPV4 => dissect_ipv4(frame),
        linktype::IPV6 => dissect_ipv6(frame),
        linktype::LINUX_SLL => match be16(frame, 14) {
            Some(proto) => dissect_ethertype(proto, &frame[16..]),
            None => Dissection::Truncated("Linux SLL header"),
        },
        linktype::LINUX_SLL2 => match (be16(frame, 0), frame.get(20..)) {
            (Some(proto), Some(rest)) => dissect_ethertype(proto, rest),
            _ => Dissection::Truncated("Linux SLL2 header"),
        },
        linktype::NULL | linktype::LOOP => {
            let Some(head) = frame.get(..4) else { return Dissection::Truncated("loopback header") };
            let head = [head[0], head[1], head[2], head[3]];
            // NULL stores the family in the capturing host's byte order, LOOP in network order;
            // families are small numbers, so whichever reading is small is the right one.
            let family = if link == linktype::LOOP || u32::from_le_bytes(head) > 0xffff {
                u32::from_be_bytes(head)
            } else {
                u32::from_le_bytes(head)
            };
            match family {
                // AF_INET everywhere.
                2 => dissect_ipv4(&frame[4..]),
                // AF_INET6: Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30.
                10 | 24 | 28 | 30 => dissect_ipv6(&frame[4..]),
                _ => Dissection::NotIp,
            }
        }
        other => Dissection::UnsupportedLink(other),
    }
}

fn dissect_ethernet(frame: &[u8]) -> Dissection<'_> {
    let Some(mut ethertype) = be16(frame, 12) else { return Dissection::Truncated("Ethernet header") };
    let mut pos = 14;
    let mut tags = 0;
    while ETHERTYPES_VLAN.contains(&ethertype) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return Dissection::NotIp;
        }
        let Some(inner) = be16(frame, pos + 2) else { return Dissection::Truncated("VLAN tag") };
        ethertype = inner;
        pos += 4;
    }
    dissect_ethertype(ethertype, &frame[pos..])
}

fn dissect_ethertype(ethertype: u16, rest: &[u8]) -> Dissection<'_> {
    match ethertype {
        ETHERTYPE_IPV4 => dissect_ipv4(rest),
        ETHERTYPE_IPV6 => dissect_ipv6(rest),
        _ => Dissection::NotIp,
    }
}

fn dissect_ip(packet: &[u8]) -> Dissection<'_> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => dissect_ipv4(packet),
        Some(6) => dissect_ipv6(packet),
        Some(_) => Dissection::NotIp,
        None => Dissection::Truncated("IP header"),
    }
}

fn dissect_ipv4(p: &[u8]) -> Dissection<'_> {
    if p.len() < 20 {
        return Dissection::Truncated("IPv4 header");
    }
    if p[0] >> 4 != 4 {
        return Dissection::NotIp;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    if ihl < 20 || p.len() < ihl {
        return Dissection::Truncated("IPv4 header");
    }
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    let flags_frag = u16::from_be_bytes([p[6], p[7]]);
    let more_fragments = flags_frag & 0x2000 != 0;
    let frag_offset = flags_frag & 0x1fff;
    let src = IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19]));
    if frag_offset != 0 {
        return Dissection::Fragment { src, dst };
    }
    if p[9] != IPPROTO_UDP {
        return Dissection::OtherIp;
    }
    // The IP total length bounds the datagram (Ethernet pads short frames to 60 bytes);
    // a total length of 0 (TSO captures) means "as captured".
    let end = if total >= ihl { total.min(p.len()) } else { p.len() };
    dissect_udp(src, dst, &p[ihl..end], more_fragments)
}

fn dissect_ipv6(p: &[u8]) -> Dissection<'_> {
    if p.len() < 40 {
        return Dissection::Truncated("IPv6 header");
    }
    if p[0] >> 4 != 6 {
        return Dissection::NotIp;
    }
    let payload_len = usize::from(u16::from_be_bytes([p[4], p[5]]));
    let mut next = p[6];
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&p[8..24]);
    let src = IpAddr::V6(Ipv6Addr::from(octets));
    octets.copy_from_slice(&p[24..40]);
    let dst = IpAddr::V6(Ipv6Addr::from(octets));
    // A payload length of 0 is a jumbogram or a TSO capture: take what was captured.
    let end = if payload_len == 0 { p.len() } else { (40 + payload_len).min(p.len()) };
    let body = &p[40..end];
    let mut pos = 0usize;
    let mut first_fragment = false;
    for _ in 0..MAX_IPV6_EXTENSION_HEADERS {
        match next {
            IPPROTO_UDP => return dissect_udp(src, dst, &body[pos..], first_fragment),
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6: (len + 1) * 8.
            0 | 43 | 60 | 135 | 139 | 140 => {
                let (Some(&nh), Some(&len)) = (body.get(pos), body.get(pos + 1)) else {
                    return Dissection::Truncated("IPv6 extension header");
                };
                next = nh;
                pos += (usize::from(len) + 1) * 8;
            }
            // Fragment header: 8 bytes; only the first fragment carries the UDP header.
            44 => {
                let (Some(&nh), Some(off)) = (body.get(pos), be16(body, pos + 2)) else {
                    return Dissection::Truncated("IPv6 fragment header");
                };
                if off >> 3 != 0 {
                    return Dissection::Fragment { src, dst };
                }
                first_fragment = off & 1 != 0;
                next = nh;
                pos += 8;
            }
            // Authentication header: (len + 2) * 4.
            51 => {
                let (Some(&nh), Some(&len)) = (body.get(pos), body.get(pos + 1)) else {
                    return Dissection::Truncated("IPv6 authentication header");
                };
                next = nh;
                pos += (usize::from(len) + 2) * 4;
            }
            _ => return Dissection::OtherIp,
        }
        if pos > body.len() {
            return Dissection::Truncated("IPv6 extension header");
        }
    }
    Dissection::OtherIp
}

fn dissect_udp(src: IpAddr, dst: IpAddr, seg: &[u8], first_fragment: bool) -> Dissection<'_> {
    if seg.len() < 8 {
        return Dissection::Truncated("UDP header");
    }
    let sport = u16::from_be_bytes([seg[0], seg[1]]);
    let dport = u16::from_be_bytes([seg[2], seg[3]]);
    let udp_len = usize::from(u16::from_be_bytes([seg[4], seg[5]]));
    // A UDP length below 8 is invalid (or 0 for IPv6 jumbograms): fall back to what we have.
    let payload_len = if udp_len >= 8 { udp_len - 8 } else { seg.len() - 8 };
    let payload = &seg[8..(8 + payload_len).min(seg.len())];
    Dissection::Udp(UdpDatagram { src, dst, sport, dport, payload_len: payload_len as u32, payload, first_fragment })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv4/UDP 10.0.0.1:40000 → 10.0.0.2:123 with `payload`.
    fn ipv4_udp(payload: &[u8]) -> Vec<u8> {
        let total = (20 + 8 + payload.len()) as u16;
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&40000u16.to_be_bytes());
        p.extend_from_slice(&123u16.to_be_bytes());
        p.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    fn expect_udp(d: Dissection<'_>) -> UdpDatagram<'_> {
        match d {
            Dissection::Udp(u) => u,
            other => panic!("expected UDP, got {other:?}"),
        }
    }

    #[test]
    fn ethernet_with_qinq_and_padding() {
        let ip = ipv4_udp(&[1, 2, 3]);
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20, 0x08, 0x00]);
        f.extend_from_slice(&ip);
        f.resize(f.len() + 20, 0xee); // Ethernet padding must not leak into the payload
        let u = expect_udp(dissect(linktype::ETHERNET, &f));
        assert_eq!(u.payload, &[1, 2, 3]);
        assert_eq!((u.sport, u.dport, u.payload_len), (40000, 123, 3));
        assert_eq!(u.src, "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn cooked_raw_and_loopback() {
        let ip = ipv4_udp(&[9; 48]);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        assert_eq!(expect_udp(dissect(linktype::LINUX_SLL, &sll)).payload.len(), 48);
        let mut sll2 = vec![0x08, 0x00];
        sll2.resize(20, 0);
        sll2.extend_from_slice(&ip);
        assert_eq!(expect_udp(dissect(linktype::LINUX_SLL2, &sll2)).payload.len(), 48);
        assert_eq!(expect_udp(dissect(linktype::RAW, &ip)).payload.len(), 48);
        let mut null_le = vec![2, 0, 0, 0];
        null_le.extend_from_slice(&ip);
        assert_eq!(expect_udp(dissect(linktype::NULL, &null_le)).payload.len(), 48);
        let mut null_be = vec![0, 0, 0, 2];
        null_be.extend_from_slice(&ip);
        assert_eq!(expect_udp(dissect(linktype::NULL, &null_be)).payload.len(), 48);
        assert_eq!(expect_udp(dissect(linktype::LOOP, &null_be)).payload.len(), 48);
    }

    #[test]
    fn ipv4_fragments() {
        let mut ip = ipv4_udp(&[0; 48]);
        ip[6] = 0x20; // MF, offset 0: first fragment
        assert!(expect_udp(dissect(linktype::RAW, &ip)).first_fragment);
        ip[7] = 0x10; // offset ≠ 0
        assert!(matches!(dissect(linktype::RAW, &ip), Dissection::Fragment { .. }));
    }

    #[test]
    fn ipv6_with_extension_headers() {
        let mut p = vec![0x60, 0, 0, 0, 0, 0, 0, 64];
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        // hop-by-hop (8 bytes) → fragment (offset 0, M=0: atomic) → UDP
        p.extend_from_slice(&[44, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x00, 0x7b, 0x00, 0x7b, 0, 12, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd]);
        let len = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&len.to_be_bytes());
        let u = expect_udp(dissect(linktype::RAW, &p));
        assert_eq!(u.payload, &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(u.dst, "2001:db8::2".parse::<IpAddr>().unwrap());
        // non-first fragment
        p[40 + 8 + 2..40 + 8 + 4].copy_from_slice(&(8u16 << 3).to_be_bytes());
        assert!(matches!(dissect(linktype::RAW, &p), Dissection::Fragment { .. }));
    }

    #[test]
    fn short_and_odd_frames_do_not_panic() {
        for len in 0..80 {
            let f = vec![0x45u8; len];
            for link in [0, 1, 101, 108, 113, 228, 229, 276, 999] {
                let _ = dissect(link, &f);
            }
        }
        assert_eq!(dissect(999, &[]), Dissection::UnsupportedLink(999));
    }
}
