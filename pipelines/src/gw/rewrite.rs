//! Header rewrites of the NAT: in place, with one incremental checksum
//! delta per header (RFC 1624 summed over every changed word:
//! [`Delta`]), on frames the parse stage checked (offsets in bounds).

use super::meta::Meta;
use super::tcp_state::{PROTO_ICMP, PROTO_TCP};
use crate::wire::checksum::Delta;
use crate::wire::ip_proto;

#[inline(always)]
fn rd16(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}
#[inline(always)]
fn wr16(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Set the Ethernet destination and source.
#[inline(always)]
pub fn set_macs(f: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
}

/// Rewrite an IPv4 TCP/UDP/ICMP-echo packet: MACs, TTL − 1, source and
/// destination address and port (ICMP echo: the identifier becomes
/// `ident`), IPv4 and L4 checksums by one delta each. The caller checked
/// `ttl > 1`.
#[inline]
pub fn nat4(
    f: &mut [u8],
    m: &Meta,
    macs: ([u8; 6], [u8; 6]),
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    ident: u16,
) {
    set_macs(f, macs.0, macs.1);
    let (l3, l4) = (m.l3 as usize, m.l4 as usize);
    // The addresses (in the IPv4 header and the L4 pseudo-header).
    let mut addrs = Delta::default();
    addrs.addr4(m.src, src.0);
    addrs.addr4(m.dst, dst.0);
    // IPv4: TTL (with the protocol in its word) and the addresses.
    let mut ip = addrs;
    let ttl_word = rd16(f, l3 + 8);
    let new_ttl_word = ttl_word.wrapping_sub(0x100);
    ip.word(ttl_word, new_ttl_word);
    wr16(f, l3 + 8, new_ttl_word);
    f[l3 + 12..l3 + 16].copy_from_slice(&src.0);
    f[l3 + 16..l3 + 20].copy_from_slice(&dst.0);
    let c = rd16(f, l3 + 10);
    wr16(f, l3 + 10, ip.apply(c));
    // L4: the pseudo-header's addresses and the ports (TCP, UDP), or the
    // echo identifier (ICMP: no pseudo-header).
    match m.proto {
        PROTO_ICMP => echo_ident(f, l4, m.sport, ident),
        proto => l4_ports(f, l4, proto, addrs, (m.sport, m.dport), (src.1, dst.1)),
    }
}

/// Write the ports of the TCP/UDP segment at `l4`, `old` → `new`
/// (`(source, destination)`), and update its checksum by `d` (the
/// pseudo-header's change, if any) and the ports' change.
#[inline(always)]
fn l4_ports(f: &mut [u8], l4: usize, proto: u8, mut d: Delta, old: (u16, u16), new: (u16, u16)) {
    d.word(old.0, new.0);
    d.word(old.1, new.1);
    wr16(f, l4, new.0);
    wr16(f, l4 + 2, new.1);
    let at = if proto == PROTO_TCP { l4 + 16 } else { l4 + 6 };
    let c = rd16(f, at);
    wr16(
        f,
        at,
        if proto == PROTO_TCP {
            d.apply(c)
        } else {
            d.apply_udp(c)
        },
    );
}

/// Write the identifier of the ICMP/ICMPv6 echo at `l4`, `old` → `new`, and
/// update its checksum (no pseudo-header change).
#[inline(always)]
fn echo_ident(f: &mut [u8], l4: usize, old: u16, new: u16) {
    let mut d = Delta::default();
    d.word(old, new);
    wr16(f, l4 + 4, new);
    let c = rd16(f, l4 + 2);
    wr16(f, l4 + 2, d.apply(c));
}

/// NAT66 rewrite of a TCP/UDP packet: MACs, hop limit − 1, addresses and
/// ports, the L4 checksum by one delta (IPv6 has no header checksum).
#[inline]
pub fn nat6(
    f: &mut [u8],
    m: &Meta,
    macs: ([u8; 6], [u8; 6]),
    src: (&[u8; 16], u16),
    dst: (&[u8; 16], u16),
) {
    set_macs(f, macs.0, macs.1);
    let (l3, l4) = (m.l3 as usize, m.l4 as usize);
    f[l3 + 7] -= 1;
    let mut d = Delta::default();
    let mut old = [0u8; 16];
    old.copy_from_slice(&f[l3 + 8..l3 + 24]);
    d.addr16(&old, src.0);
    old.copy_from_slice(&f[l3 + 24..l3 + 40]);
    d.addr16(&old, dst.0);
    f[l3 + 8..l3 + 24].copy_from_slice(src.0);
    f[l3 + 24..l3 + 40].copy_from_slice(dst.0);
    l4_ports(f, l4, m.proto, d, (m.sport, m.dport), (src.1, dst.1));
}

/// Rewrite the ports of a TCP/UDP segment at `l4` (`(source, destination)`)
/// or the identifier of an ICMP/ICMPv6 echo (`ident`), by one delta (the
/// pseudo-header is not touched: a translation before this accounted for
/// the new addresses).
#[inline]
pub fn ports(f: &mut [u8], l4: usize, proto: u8, (sport, dport): (u16, u16), ident: u16) {
    match proto {
        ip_proto::TCP | ip_proto::UDP => {
            let old = (rd16(f, l4), rd16(f, l4 + 2));
            l4_ports(f, l4, proto, Delta::default(), old, (sport, dport));
        }
        _ => echo_ident(f, l4, rd16(f, l4 + 4), ident),
    }
}
