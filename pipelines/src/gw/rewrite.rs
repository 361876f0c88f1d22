//! Header rewrites of the NAT: in place, with one incremental checksum
//! delta per header (RFC 1624 summed over every changed word:
//! [`Delta`]), on frames the parse stage checked (offsets in bounds).

use super::meta::Meta;
use super::tcp_state::{PROTO_ICMP, PROTO_TCP};
use crate::wire::checksum::Delta;
use crate::wire::icmp::IcmpPacket;
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

/// The IPv4 header at `l3` forwarded with new addresses: TTL − 1, source
/// and destination `addrs`, the header checksum by `ip` (the addresses'
/// delta, from the old ones to `addrs`) and the TTL's.
#[inline(always)]
pub(super) fn forward4(f: &mut [u8], l3: usize, mut ip: Delta, addrs: ([u8; 4], [u8; 4])) {
    let ttl_word = rd16(f, l3 + 8);
    let new_ttl_word = ttl_word.wrapping_sub(0x100);
    ip.word(ttl_word, new_ttl_word);
    wr16(f, l3 + 8, new_ttl_word);
    f[l3 + 12..l3 + 16].copy_from_slice(&addrs.0);
    f[l3 + 16..l3 + 20].copy_from_slice(&addrs.1);
    let c = rd16(f, l3 + 10);
    wr16(f, l3 + 10, ip.apply(c));
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
    forward4(f, l3, addrs, (src.0, dst.0));
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

/// Rewrite an ICMPv4 error about a NAT44 connection in place (RFC 5508
/// §4.2): `f` is the IP packet's frame up to its end, the outer header at
/// `l3`, the ICMP header at `l4`, the quoted packet's L4 header at `ql4`
/// (its protocol `qproto`; the caller checked `f.len() >= ql4 + 8`).
/// Outer addresses → `outer` (source, destination) and TTL − 1, the outer
/// checksum by one delta; the quoted addresses → `qsrc.0` / `qdst.0` with
/// the quoted IPv4 checksum, the quoted TCP/UDP checksum when the quote
/// holds it (pseudo-header and ports; a UDP 0 stays 0), the quoted ports →
/// `qsrc.1` / `qdst.1` (an echo: the identifier → `qsrc.1`), and the ICMP
/// checksum for every quoted word changed, so every checksum that verified
/// still does. The caller checked `ttl > 1`.
#[allow(clippy::too_many_arguments)]
pub fn icmp_error4(
    f: &mut [u8],
    l3: usize,
    l4: usize,
    ql4: usize,
    qproto: u8,
    outer: ([u8; 4], [u8; 4]),
    qsrc: ([u8; 4], u16),
    qdst: ([u8; 4], u16),
) {
    let q = l4 + 8;
    let end = f.len();
    let addr = |f: &[u8], at: usize| [f[at], f[at + 1], f[at + 2], f[at + 3]];
    // The quoted IPv4 header: its addresses and checksum.
    let mut qa = Delta::default();
    qa.addr4(addr(f, q + 12), qsrc.0);
    qa.addr4(addr(f, q + 16), qdst.0);
    let mut icmp = qa; // the ICMP checksum covers the quote
    let oc = rd16(f, q + 10);
    let nc = qa.apply(oc);
    icmp.word(oc, nc);
    wr16(f, q + 10, nc);
    f[q + 12..q + 16].copy_from_slice(&qsrc.0);
    f[q + 16..q + 20].copy_from_slice(&qdst.0);
    // The quoted TCP/UDP checksum, if quoted: the pseudo-header's addresses.
    let at = match qproto {
        PROTO_TCP => ql4 + 16,
        ip_proto::UDP => ql4 + 6,
        _ => usize::MAX,
    };
    if at < end && end - at >= 2 {
        let c = rd16(f, at);
        let n = if qproto == PROTO_TCP {
            qa.apply(c)
        } else {
            qa.apply_udp(c)
        };
        icmp.word(c, n);
        wr16(f, at, n);
    }
    let c = rd16(f, l4 + 2);
    wr16(f, l4 + 2, icmp.apply(c));
    // The quoted ports (their checksum and the ICMP checksum follow).
    crate::xlat::rewrite_quoted_ports(&mut f[l4..], ql4 - l4, qproto, qsrc.1, qdst.1);
    // The outer header: addresses and TTL (ICMPv4 has no pseudo-header).
    let mut ip = Delta::default();
    ip.addr4(addr(f, l3 + 12), outer.0);
    ip.addr4(addr(f, l3 + 16), outer.1);
    forward4(f, l3, ip, outer);
}

/// TTL / hop limit of the echo replies the gateway sends itself.
pub const ECHO_TTL: u8 = 64;

/// Turn the ICMP echo request (IPv4 header at `l3`, ICMP at `l4`) into the
/// gateway's reply in place: back to the sender's MAC from `our_mac`,
/// addresses swapped (the header checksum does not change), TTL
/// [`ECHO_TTL`], type 0; identifier, sequence and data kept.
#[inline]
pub fn echo_reply4(f: &mut [u8], l3: usize, l4: usize, our_mac: [u8; 6]) {
    turn_around::<4>(f, l3 + 12, our_mac);
    let old = rd16(f, l3 + 8);
    let new = ((ECHO_TTL as u16) << 8) | (old & 0xff);
    let mut d = Delta::default();
    d.word(old, new);
    wr16(f, l3 + 8, new);
    let c = rd16(f, l3 + 10);
    wr16(f, l3 + 10, d.apply(c));
    IcmpPacket::new_unchecked(&mut f[l4..]).echo_request_to_reply(false);
}

/// [`echo_reply4`] for ICMPv6 (IPv6 header at `l3`): addresses swapped
/// (the pseudo-header's sum does not change), hop limit [`ECHO_TTL`], type
/// 129.
#[inline]
pub fn echo_reply6(f: &mut [u8], l3: usize, l4: usize, our_mac: [u8; 6]) {
    turn_around::<16>(f, l3 + 8, our_mac);
    f[l3 + 7] = ECHO_TTL;
    IcmpPacket::new_unchecked(&mut f[l4..]).echo_request_to_reply(true);
}

/// Send the frame `f` back where it came from: to the sender's MAC from
/// `our_mac`, the IP source and destination address (`N` bytes each, the
/// source at `at`, the destination right after it) swapped.
#[inline(always)]
fn turn_around<const N: usize>(f: &mut [u8], at: usize, our_mac: [u8; 6]) {
    let mut peer = [0u8; 6];
    peer.copy_from_slice(&f[6..12]);
    set_macs(f, peer, our_mac);
    let (src, dst) = f[at..at + 2 * N].split_at_mut(N);
    src.swap_with_slice(dst);
}
