//! NAT64 header translation (RFC 7915, "SIIT"), in place in a [`Pkt`], with
//! the addresses chosen by the caller, and the RFC 6052 address mapping
//! ([`rfc6052`]).
//!
//! The stateful part of NAT64 (RFC 6146: which IPv4 pool address and port
//! stands for which IPv6 subscriber) is not here: [`v6_to_v4`] and
//! [`v4_to_v6`] write the addresses they are given, like the GW's NAT
//! rewrite does, and leave ports and ICMP identifiers alone (the NAT
//! rewrites them afterwards with the usual incremental helpers).
//!
//! ## What changes
//! * **Ethernet**: the ethertype (0x0800 ↔ 0x86dd). MACs and an 802.1Q tag
//!   are untouched (the caller sets the next hop). The frame grows by 20
//!   bytes (IPv4 → IPv6, IPv4 options dropped: 40 − IHL×4) or shrinks by 20
//!   plus the skipped extension headers; the L4 part is moved inside
//!   `Pkt::data` (the frame always starts at byte 0); Ethernet padding is
//!   dropped. A frame that would not fit in `Pkt::data` is `too_big`.
//! * **IP header**, written whole (RFC 7915 §4.1, §5.1): traffic class ↔
//!   TOS (all 8 bits), flow label 0, payload length ↔ total length, next
//!   header ↔ protocol (ICMP 1 ↔ ICMPv6 58), hop limit ↔ TTL **minus one**
//!   (the translator is a router; TTL/hop limit ≤ 1 → `ttl_exceeded`).
//!   IPv6 → IPv4: Identification = [`To4::ident`] (the caller's per-worker
//!   counter; RFC 6864 asks only for uniqueness per address pair and
//!   protocol while a datagram may live), MF 0, offset 0, **DF 0 when the
//!   IPv4 packet is at most 1260 bytes, else 1** (RFC 7915 §5.1: small
//!   packets may then be fragmented by IPv4 routers whose MTU is below
//!   1280, which IPv6 hosts never expect), header checksum computed.
//!   IPv4 options are ignored, but an unexpired source route is not
//!   translated (`xlat_untranslatable`). IPv6 Hop-by-Hop, Destination
//!   Options and Routing headers with Segments Left 0 are skipped; a
//!   Routing header with segments left is `xlat_untranslatable`.
//! * **TCP, UDP**: only the checksum, updated incrementally (RFC 1624) for
//!   the pseudo-header change (same protocol and length, other addresses).
//!   An IPv4 UDP checksum of 0 ("none") is computed over the whole datagram
//!   for IPv6, where 0 is not allowed; an IPv6 UDP checksum of 0 stays 0.
//! * **ICMP echo** (8/0 ↔ 128/129): the type, and the checksum updated
//!   incrementally for the type and the ICMPv6 pseudo-header (added going
//!   to IPv6, removed going to IPv4). Identifier, sequence, data unchanged.
//! * **ICMP errors** (RFC 7915 §4.2, §5.2; maps in [`icmp`]): destination
//!   unreachable, time exceeded, parameter problem (pointer translated),
//!   Fragmentation Needed ↔ Packet Too Big (MTU adjusted by 20 and bounded
//!   by [`XlatConfig`]'s link MTUs). The quoted packet's IP header is
//!   translated with [`To4::inner_src`]/`inner_dst` ([`To6`] likewise;
//!   Identification 0, DF by the 1260 rule, TTL/hop limit copied), its
//!   TCP/UDP checksum updated incrementally when it is inside the quote, a
//!   quoted echo's type and checksum translated; the error's own checksum
//!   is verified first (`bad_l4`) and then computed in full. IPv6 errors
//!   are cut to 1280 bytes. Bytes 4..8 of the header are rewritten, so an
//!   RFC 4884 length attribute is not kept. A quoted packet that is too
//!   short for its IP header, a fragment, has IPv6 extension headers, or is
//!   itself an ICMP error is dropped (`xlat_icmp_inner`, `xlat_fragment`).
//! * **Fragments** of TCP and UDP, each translated alone (nothing is
//!   reassembled; the caller keeps the state that gives later fragments
//!   their addresses, see [`crate::gw::frag`]). IPv6 → IPv4 (RFC 7915
//!   §5.1.1): a Fragment header (wherever the skipped extension headers
//!   leave it) is removed; Identification = its low 16 bits (not
//!   [`To4::ident`]), offset and MF copied, DF 0; 28 bytes shorter (more
//!   with skipped extension headers). IPv4 →
//!   IPv6 (§4.1): an IPv4 fragment (MF or an offset) gets a Fragment header
//!   after the IPv6 header (Identification zero-extended, offset, M = MF);
//!   28 bytes longer (the caller checks its link MTU). Only the first
//!   fragment (offset 0) has an L4 header: it must be whole there (`bad_l4`)
//!   and its checksum is updated as for a whole packet (the pseudo-header
//!   change is the whole datagram's); later ones are not looked at past
//!   the IP header. A first IPv4 fragment of UDP with checksum 0 is
//!   `xlat_untranslatable` (IPv6 needs a checksum over the whole
//!   datagram, RFC 7915 §4.5). Atomic fragments are not made.
//! * **Not translated**: fragments of ICMP and other protocols, and a
//!   fragment quoted in an ICMP error (`xlat_fragment`); ICMP types RFC
//!   7915 drops (`xlat_untranslatable`); protocols other than TCP, UDP,
//!   ICMP (`unsupported_proto`).
//!
//! On `Err` the frame (bytes and `Pkt::len`) is unchanged: everything is
//! validated before the first write.
//!
//! ## Why this is safe for TCP
//! Sequence and acknowledgement numbers, flags, window, options and payload
//! are not touched, and the segment keeps its length, so both ends see the
//! byte stream the other sent; only the checksum changes, by exactly the
//! pseudo-header difference, so a segment corrupted before the translator
//! still fails its checksum at the receiver. MSS needs care at the caller:
//! an IPv6 header is 20 bytes longer, so a server's IPv4 MSS of 1460 is 20
//! too big for a 1500-byte IPv6 link — clamp SYN-ACKs toward IPv6 (the GW's
//! `mss_clamp_down`) to link MTU − 60.
//!
//! ## Cost
//! Measured by the criterion benches of `perf/benches/stages.rs` (`xlat`
//! group: 64-byte and 1500-byte TCP, both directions), reported in
//! `perf/RESULTS.md`; ICMP errors cost more (checksum over the whole
//! message) and are rare.
//!
//! ## Use in the GW stage
//! `GwWorker` (see the NAT64 section of [`crate::gw`]) keeps the stateful
//! part: pool-port keys, the IPv6 subscriber per key, sessions by IPv6
//! prefix. It calls [`v6_to_v4`] / [`v4_to_v6`] and rewrites ports after
//! them, and for ICMP errors rewrites the quoted ports first with
//! [`rewrite_quoted_ports`] (which keeps the error's checksum valid for the
//! translator's check).

pub mod icmp;
pub mod rfc6052;
#[cfg(test)]
pub(crate) mod tests;

pub use rfc6052::Prefix;

use crate::verdict::{DropReason, Pkt};
use crate::wire::checksum::{self, data_sum, pseudo_header_v6, update16};
use crate::wire::ether::{ethertype, EthernetFrame};
use crate::wire::icmp::IcmpPacket;
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, walk_extension_headers, ExtWalk, Ipv6Packet};
use crate::wire::tcp::TcpPacket;
use crate::wire::udp::UdpPacket;
use crate::wire::{ip_proto, parse_l3, rd16, rd32, wr16};
use icmp::{Map, Rest};

/// No IPv6 link is smaller; translated ICMPv6 errors are cut to it.
pub const IPV6_MIN_MTU: usize = 1280;
/// IPv4 packets made from IPv6 ones get DF only above this size.
pub const DF_ABOVE: usize = 1260;
/// ICMP header length (type, code, checksum, 4 bytes of rest).
const ICMP_HDR: usize = 8;
const V4: usize = ipv4::HEADER_LEN;
const V6: usize = ipv6::HEADER_LEN;
/// IPv6 Fragment header length.
const FRAG_HDR: usize = 8;

/// Settings of the translator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XlatConfig {
    /// MTU of the IPv4-side link (bounds the MTU of translated Packet Too
    /// Big / Fragmentation Needed errors).
    pub mtu4: u16,
    /// MTU of the IPv6-side link.
    pub mtu6: u16,
}

impl Default for XlatConfig {
    fn default() -> Self {
        XlatConfig {
            mtu4: 1500,
            mtu6: 1500,
        }
    }
}

/// What [`v6_to_v4`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct To4 {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    /// IPv4 Identification of the translated packet.
    pub ident: u16,
    /// Source and destination of the packet an ICMPv6 error quotes (unused
    /// for other packets).
    pub inner_src: [u8; 4],
    pub inner_dst: [u8; 4],
}

impl To4 {
    /// Outer addresses; the quoted packet of an error is taken to be one
    /// that went the other way (`inner = (dst, src)`), as when an end host
    /// answers; identification 0.
    pub const fn new(src: [u8; 4], dst: [u8; 4]) -> To4 {
        To4 {
            src,
            dst,
            ident: 0,
            inner_src: dst,
            inner_dst: src,
        }
    }
    /// With this IPv4 Identification.
    pub const fn ident(mut self, ident: u16) -> To4 {
        self.ident = ident;
        self
    }
    /// With these addresses for an error's quoted packet.
    pub const fn inner(mut self, src: [u8; 4], dst: [u8; 4]) -> To4 {
        self.inner_src = src;
        self.inner_dst = dst;
        self
    }
}

/// What [`v4_to_v6`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct To6 {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// Source and destination of the packet an ICMPv4 error quotes.
    pub inner_src: [u8; 16],
    pub inner_dst: [u8; 16],
}

impl To6 {
    /// Outer addresses; an error's quoted packet gets `(dst, src)`.
    pub const fn new(src: [u8; 16], dst: [u8; 16]) -> To6 {
        To6 {
            src,
            dst,
            inner_src: dst,
            inner_dst: src,
        }
    }
    /// With these addresses for an error's quoted packet.
    pub const fn inner(mut self, src: [u8; 16], dst: [u8; 16]) -> To6 {
        self.inner_src = src;
        self.inner_dst = dst;
        self
    }
}

/// What to do to the L4 part of a TCP/UDP/echo packet.
#[derive(Clone, Copy)]
enum L4Plan {
    Tcp,
    Udp,
    Echo(u8),
}

/// What to do with an L4 segment: rewrite it in place, or translate an ICMP
/// error (new type, code and rest of header).
enum Plan {
    Rewrite(L4Plan),
    IcmpError(u8, u8, Rest),
}

/// The plan for the segment `seg` of protocol `proto`, checked: TCP, UDP, or
/// `icmp_proto` (the family's ICMP) whose type `map` translates.
#[inline]
fn plan_l4(
    proto: u8,
    seg: &[u8],
    icmp_proto: u8,
    map: impl FnOnce(&IcmpPacket<&[u8]>) -> Option<Map>,
) -> Result<Plan, DropReason> {
    match proto {
        ip_proto::TCP => {
            TcpPacket::new_checked(seg).map_err(|_| DropReason::BadL4)?;
            Ok(Plan::Rewrite(L4Plan::Tcp))
        }
        ip_proto::UDP => {
            UdpPacket::new_checked(seg).map_err(|_| DropReason::BadL4)?;
            Ok(Plan::Rewrite(L4Plan::Udp))
        }
        p if p == icmp_proto => {
            let i = IcmpPacket::new_checked(seg).map_err(|_| DropReason::BadL4)?;
            match map(&i) {
                Some(Map::Echo(t)) => Ok(Plan::Rewrite(L4Plan::Echo(t))),
                Some(Map::Error { ty, code, rest }) => Ok(Plan::IcmpError(ty, code, rest)),
                None => Err(DropReason::XlatUntranslatable),
            }
        }
        _ => Err(DropReason::UnsupportedProto),
    }
}

/// A fragment's place in its datagram (RFC 7915 §4.1, §5.1.1): offset in
/// bytes, more to come, Identification (IPv4's 16 bits zero-extended).
#[derive(Clone, Copy)]
struct FragInfo {
    off: u16,
    more: bool,
    id: u32,
}

/// The plan for a fragment's segment `seg` (TCP or UDP only): the first
/// one (offset 0) must hold the whole L4 header, whose checksum is then
/// updated (the whole datagram's pseudo-header change); a later one has
/// no L4 header, nothing to do (`None`).
#[inline]
fn plan_fragment(proto: u8, seg: &[u8], fr: &FragInfo) -> Result<Option<L4Plan>, DropReason> {
    match proto {
        ip_proto::TCP | ip_proto::UDP if fr.off != 0 => Ok(None),
        ip_proto::TCP => {
            TcpPacket::new_checked(seg).map_err(|_| DropReason::BadL4)?;
            Ok(Some(L4Plan::Tcp))
        }
        // (its length field is the whole datagram's)
        ip_proto::UDP if seg.len() >= 8 => Ok(Some(L4Plan::Udp)),
        ip_proto::UDP => Err(DropReason::BadL4),
        _ => Err(DropReason::XlatFragment),
    }
}

/// The new type of the echo an ICMP error quotes (`l4`: the quoted ICMP
/// header, `map` the type map); any other quoted ICMP message is refused.
#[inline]
fn quoted_echo(l4: &[u8], map: impl FnOnce(u8) -> Option<Map>) -> Result<u8, DropReason> {
    match l4.first().and_then(|&t| map(t)) {
        Some(Map::Echo(t)) if l4.len() >= 4 => Ok(t),
        _ => Err(DropReason::XlatIcmpInner),
    }
}

/// Write the first 8 bytes of a translated ICMP error (the checksum is
/// filled afterwards).
#[inline]
fn set_icmp_head(m: &mut [u8], ty: u8, code: u8, rest: [u8; 4]) {
    m[0] = ty;
    m[1] = code;
    m[4..8].copy_from_slice(&rest);
}

#[inline]
fn addr_sum4(a: [u8; 4], b: [u8; 4]) -> u16 {
    checksum::combine(&[data_sum(&a), data_sum(&b)])
}

#[inline]
fn addr_sum6(a: &[u8; 16], b: &[u8; 16]) -> u16 {
    checksum::combine(&[data_sum(a), data_sum(b)])
}

/// The checksum after the pseudo-header's sum changed from `old` to `new`
/// (RFC 1624 eq. 3 applied to sums; an absent pseudo-header sums to 0).
#[inline]
fn reseed(csum: u16, old: u16, new: u16) -> u16 {
    update16(csum, old, new)
}

#[inline]
fn type_word(ty: u8, code: u8) -> u16 {
    u16::from_be_bytes([ty, code])
}

/// An unexpired Loose/Strict Source Route option (pointer <= length).
fn has_source_route(opts: &[u8]) -> bool {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return false,
            1 => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let len = match opts.get(i + 1) {
            Some(&l) if l >= 2 => l as usize,
            _ => return false, // malformed: options are ignored anyway
        };
        if matches!(opts[i], 0x83 | 0x89) {
            if let Some(&ptr) = opts.get(i + 2) {
                if ptr as usize <= len {
                    return true;
                }
            }
        }
        i += len;
    }
    false
}

/// Write a 40-byte IPv6 header at the start of `b` (flow label 0).
fn write_v6(
    b: &mut [u8],
    tc: u8,
    payload_len: u16,
    nh: u8,
    hop: u8,
    src: &[u8; 16],
    dst: &[u8; 16],
) {
    let mut ip = Ipv6Packet::new_unchecked(&mut b[..V6]);
    ip.set_version_tc_flow(tc, 0);
    ip.set_payload_len(payload_len);
    ip.set_next_header(nh);
    ip.set_hop_limit(hop);
    ip.set_src_addr(*src);
    ip.set_dst_addr(*dst);
}

/// Write a 20-byte IPv4 header at the start of `b`, checksum included;
/// DF when `total` > [`DF_ABOVE`].
#[allow(clippy::too_many_arguments)]
fn write_v4(
    b: &mut [u8],
    tos: u8,
    total: u16,
    ident: u16,
    ttl: u8,
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
) {
    let mut ip = Ipv4Packet::new_unchecked(&mut b[..V4]);
    ip.set_version_and_header_len(V4);
    ip.set_dscp_ecn(tos >> 2, tos & 3);
    ip.set_total_len(total);
    ip.set_ident(ident);
    ip.set_flags_and_frag_offset(total as usize > DF_ABOVE, false, 0);
    ip.set_ttl(ttl);
    ip.set_protocol(proto);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    ip.fill_checksum();
}

#[inline]
fn set_ethertype(data: &mut [u8], et: u16) {
    EthernetFrame::new_unchecked(data).set_ethertype(et);
}

/// Where the outer headers are.
#[derive(Clone, Copy)]
struct Outer {
    l3: usize,
    l4: usize,
    end: usize,
    tc: u8,
    hop: u8,
}

/// Rewrite the ports of the packet an ICMP error quotes (a stateful NAT's
/// job before or after translating the error), keeping every checksum
/// right: `msg` is the ICMP/ICMPv6 message (header + quote), `ql4` the
/// offset in `msg` of the quoted L4 header (even: 8 + quoted IPv4 header
/// length, or 8 + 40). TCP/UDP (`proto`): source port → `sport`,
/// destination port → `dport`, the quoted checksum updated incrementally
/// when the quote holds it (a UDP 0 stays 0); an echo (`proto` ICMP or
/// ICMPv6): the identifier → `sport` (`dport` unused). The message
/// checksum (bytes 2..4 of `msg`) is updated for every word changed, so it
/// verifies as before (no pseudo-header field changes). Needs
/// `msg.len() >= ql4 + 8`; other protocols are left alone.
pub fn rewrite_quoted_ports(msg: &mut [u8], ql4: usize, proto: u8, sport: u16, dport: u16) {
    debug_assert!(ql4 & 1 == 0 && msg.len() >= ql4 + 8);
    let mut oc = rd16(msg, 2);
    let mut put = |msg: &mut [u8], at: usize, v: u16| {
        oc = update16(oc, rd16(msg, at), v);
        wr16(msg, at, v);
    };
    match proto {
        ip_proto::TCP | ip_proto::UDP => {
            let (os, od) = (rd16(msg, ql4), rd16(msg, ql4 + 2));
            let at = ql4 + if proto == ip_proto::TCP { 16 } else { 6 };
            if msg.len() >= at + 2 {
                let c = rd16(msg, at);
                let c = if proto == ip_proto::TCP {
                    update16(update16(c, os, sport), od, dport)
                } else {
                    checksum::udp_update16(checksum::udp_update16(c, os, sport), od, dport)
                };
                put(msg, at, c);
            }
            put(msg, ql4, sport);
            put(msg, ql4 + 2, dport);
        }
        ip_proto::ICMP | ip_proto::ICMPV6 => {
            let c = update16(rd16(msg, ql4 + 2), rd16(msg, ql4 + 4), sport);
            put(msg, ql4 + 2, c);
            put(msg, ql4 + 4, sport);
        }
        _ => return,
    }
    wr16(msg, 2, oc);
}

// ------------------------------------------------------------ v4 -> v6 --

/// Translate an IPv4 frame (TCP, UDP, ICMP echo or error) to IPv6 in place,
/// with the addresses in `to`. See the module docs for what changes; on
/// `Err` nothing did.
pub fn v4_to_v6(pkt: &mut Pkt<'_>, cfg: &XlatConfig, to: &To6) -> Result<(), DropReason> {
    let f = pkt.frame();
    let p = parse_l3(f)?;
    if p.ip_version != 4 {
        return Err(DropReason::UnsupportedEthertype);
    }
    if p.ttl <= 1 {
        return Err(DropReason::TtlExceeded);
    }
    let (l3, l4, end) = (p.l3_off as usize, p.l4_off as usize, p.ip_end());
    if has_source_route(&f[l3 + V4..l4]) {
        return Err(DropReason::XlatUntranslatable);
    }
    let ip = Ipv4Packet::new_unchecked(&f[l3..end]);
    let (src4, dst4) = (ip.src_addr(), ip.dst_addr());
    let o = Outer {
        l3,
        l4,
        end,
        tc: f[l3 + 1],
        hop: p.ttl - 1,
    };
    let seg = &f[l4..end];
    let frag = p.fragment.then(|| FragInfo {
        off: ip.frag_offset(),
        more: ip.more_frags(),
        id: ip.ident() as u32,
    });
    let plan = match frag {
        Some(fr) => plan_fragment(p.proto, seg, &fr)?,
        None => match plan_l4(p.proto, seg, ip_proto::ICMP, |i| {
            icmp::map_4to6(i.msg_type(), i.msg_code(), seg[4])
        })? {
            Plan::Rewrite(plan) => Some(plan),
            Plan::IcmpError(ty, code, rest) => {
                return v4_error_to_v6(pkt, cfg, to, o, (ty, code, rest))
            }
        },
    };
    if frag.is_some() && matches!(plan, Some(L4Plan::Udp)) && rd16(seg, 6) == 0 {
        // A first fragment without a UDP checksum: IPv6 needs one, over a
        // datagram this fragment is only the start of (RFC 7915 §4.5).
        return Err(DropReason::XlatUntranslatable);
    }
    let seg_len = end - l4;
    // (a fragment: a Fragment header after the fixed one)
    let fh = if frag.is_some() { FRAG_HDR } else { 0 };
    let new_l4 = l3 + V6 + fh;
    let new_len = new_l4 + seg_len;
    // The header grows by `grow` bytes: into the headroom when there is
    // room (the Ethernet header moves, the payload stays), else by moving
    // the L4 segment back in the buffer.
    let grow = new_l4.saturating_sub(l4);
    let front = grow > 0 && pkt.headroom() >= grow;
    if !front && new_len > pkt.data().len() {
        return Err(DropReason::TooBig);
    }
    // ---- no failure past this point ----
    let data = pkt.data_mut();
    let (old_ph, new_ph) = (addr_sum4(src4, dst4), addr_sum6(&to.src, &to.dst));
    let mut udp_zero = false;
    let nh = match plan {
        None => p.proto,
        Some(L4Plan::Tcp) => {
            let mut t = TcpPacket::new_unchecked(&mut data[l4..end]);
            t.set_checksum(reseed(t.checksum(), old_ph, new_ph));
            ip_proto::TCP
        }
        Some(L4Plan::Udp) => {
            let mut u = UdpPacket::new_unchecked(&mut data[l4..end]);
            if u.checksum() == 0 {
                udp_zero = true;
            } else {
                u.set_checksum(checksum::udp_final(reseed(u.checksum(), old_ph, new_ph)));
            }
            ip_proto::UDP
        }
        Some(L4Plan::Echo(ty)) => {
            let mut i = IcmpPacket::new_unchecked(&mut data[l4..end]);
            let code = i.msg_code();
            let c = update16(
                i.checksum(),
                type_word(i.msg_type(), code),
                type_word(ty, code),
            );
            let ph = pseudo_header_v6(&to.src, &to.dst, ip_proto::ICMPV6, seg_len as u32);
            i.set_msg_type(ty);
            i.set_checksum(reseed(c, 0, ph));
            ip_proto::ICMPV6
        }
    };
    let data = if front {
        pkt.prepend(grow);
        let data = pkt.data_mut();
        data.copy_within(grow..grow + l3, 0);
        data
    } else {
        data.copy_within(l4..end, new_l4);
        pkt.data_mut()
    };
    write_v6(
        &mut data[l3..],
        o.tc,
        (fh + seg_len) as u16,
        if frag.is_some() {
            ip_proto::IPV6_FRAGMENT
        } else {
            nh
        },
        o.hop,
        &to.src,
        &to.dst,
    );
    if let Some(fr) = frag {
        // Next header, reserved, offset | M, Identification (RFC 7915 §4.1)
        let h = &mut data[l3 + V6..l3 + V6 + FRAG_HDR];
        h[0] = nh;
        h[1] = 0;
        wr16(h, 2, fr.off | fr.more as u16);
        h[4..8].copy_from_slice(&fr.id.to_be_bytes());
    }
    set_ethertype(data, ethertype::IPV6);
    if udp_zero {
        UdpPacket::new_unchecked(&mut data[new_l4..new_len]).fill_checksum_v6(&to.src, &to.dst);
    }
    pkt.set_len(new_len);
    Ok(())
}

/// The quoted IPv4 packet of an ICMPv4 error.
struct Inner4 {
    ihl: usize,
    total: u16,
    proto: u8,
    tos: u8,
    ttl: u8,
    src: [u8; 4],
    dst: [u8; 4],
    /// New ICMP type of a quoted echo.
    echo_ty: Option<u8>,
}

fn inner_v4(q: &[u8]) -> Result<Inner4, DropReason> {
    const BAD: DropReason = DropReason::XlatIcmpInner;
    if q.len() < V4 || q[0] >> 4 != 4 {
        return Err(BAD);
    }
    let ip = Ipv4Packet::new_unchecked(q);
    let ihl = ip.header_len();
    if ihl < V4 || ihl > q.len() || (ip.total_len() as usize) < ihl {
        return Err(BAD);
    }
    if ip.is_fragment() {
        return Err(DropReason::XlatFragment);
    }
    let echo_ty = if ip.protocol() == ip_proto::ICMP {
        Some(quoted_echo(&q[ihl..], |t| icmp::map_4to6(t, 0, 0))?)
    } else {
        None
    };
    Ok(Inner4 {
        ihl,
        total: ip.total_len(),
        proto: ip.protocol(),
        tos: q[1],
        ttl: ip.ttl(),
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        echo_ty,
    })
}

fn v4_error_to_v6(
    pkt: &mut Pkt<'_>,
    cfg: &XlatConfig,
    to: &To6,
    o: Outer,
    (ty, code, rest): (u8, u8, Rest),
) -> Result<(), DropReason> {
    let f = pkt.frame();
    let msg = &f[o.l4..o.end];
    if !IcmpPacket::new_unchecked(msg).verify_checksum_v4() {
        return Err(DropReason::BadL4);
    }
    let q = o.l4 + ICMP_HDR;
    let inner = inner_v4(&f[q..o.end])?;
    let rest4 = match rest {
        Rest::Zero => 0,
        Rest::Mtu => icmp::mtu_4to6(rd16(msg, 6), inner.total, cfg.mtu4, cfg.mtu6),
        Rest::Pointer(p) => p as u32,
    };
    let quoted_l4 = (o.end - q - inner.ihl).min(IPV6_MIN_MTU - V6 - ICMP_HDR - V6);
    let (msg6, inner6, l4_6) = (o.l3 + V6, o.l3 + V6 + ICMP_HDR, o.l3 + V6 + ICMP_HDR + V6);
    let new_len = l4_6 + quoted_l4;
    if new_len > pkt.data().len() {
        return Err(DropReason::TooBig);
    }
    // ---- no failure past this point ----
    let data = pkt.data_mut();
    let from = q + inner.ihl;
    data.copy_within(from..from + quoted_l4, l4_6);
    let inner_len = inner.total - inner.ihl as u16;
    let inner_nh = if inner.proto == ip_proto::ICMP {
        ip_proto::ICMPV6
    } else {
        inner.proto
    };
    write_v6(
        &mut data[inner6..],
        inner.tos,
        inner_len,
        inner_nh,
        inner.ttl,
        &to.inner_src,
        &to.inner_dst,
    );
    fix_quoted_l4(
        &mut data[l4_6..new_len],
        inner.proto,
        addr_sum4(inner.src, inner.dst),
        addr_sum6(&to.inner_src, &to.inner_dst),
        inner.echo_ty.map(|t| {
            (
                t,
                0,
                pseudo_header_v6(
                    &to.inner_src,
                    &to.inner_dst,
                    ip_proto::ICMPV6,
                    inner_len as u32,
                ),
            )
        }),
    );
    set_icmp_head(&mut data[msg6..], ty, code, rest4.to_be_bytes());
    IcmpPacket::new_unchecked(&mut data[msg6..new_len]).fill_checksum_v6(&to.src, &to.dst);
    let payload = (new_len - msg6) as u16;
    write_v6(
        &mut data[o.l3..],
        o.tc,
        payload,
        ip_proto::ICMPV6,
        o.hop,
        &to.src,
        &to.dst,
    );
    set_ethertype(data, ethertype::IPV6);
    pkt.set_len(new_len);
    Ok(())
}

/// Update the checksum of a quoted TCP/UDP header (if the quote holds it)
/// for a pseudo-header sum going from `old_ph` to `new_ph`; for a quoted
/// echo, `echo = (new type, old pseudo-header sum, new pseudo-header sum)`
/// with 0 for "none" (ICMPv4).
fn fix_quoted_l4(l4: &mut [u8], proto: u8, old_ph: u16, new_ph: u16, echo: Option<(u8, u16, u16)>) {
    match proto {
        ip_proto::TCP if l4.len() >= 18 => {
            let c = reseed(rd16(l4, 16), old_ph, new_ph);
            wr16(l4, 16, c);
        }
        ip_proto::UDP if l4.len() >= 8 => {
            let c = rd16(l4, 6);
            if c != 0 {
                wr16(l4, 6, checksum::udp_final(reseed(c, old_ph, new_ph)));
            }
        }
        ip_proto::ICMP | ip_proto::ICMPV6 => {
            if let Some((ty, old, new)) = echo {
                // inner_v4 / inner_v6 checked: at least 4 bytes, an echo.
                let c = update16(rd16(l4, 2), type_word(l4[0], l4[1]), type_word(ty, l4[1]));
                l4[0] = ty;
                wr16(l4, 2, reseed(c, old, new));
            }
        }
        _ => {}
    }
}

// ------------------------------------------------------------ v6 -> v4 --

/// Translate an IPv6 frame (TCP, UDP, ICMPv6 echo or error) to IPv4 in
/// place, with the addresses and Identification in `to`. See the module
/// docs for what changes; on `Err` nothing did.
pub fn v6_to_v4(pkt: &mut Pkt<'_>, cfg: &XlatConfig, to: &To4) -> Result<(), DropReason> {
    let f = pkt.frame();
    let p = parse_l3(f)?;
    if p.ip_version != 6 {
        return Err(DropReason::UnsupportedEthertype);
    }
    let (l3, end) = (p.l3_off as usize, p.ip_end());
    let (nh, off, frag) = match walk_extension_headers(&f[l3 + V6..end], p.proto) {
        ExtWalk::Upper { nh, off } => (nh, off, None),
        ExtWalk::Fragment { off } => {
            let at = l3 + V6 + off;
            let Some(h) = f.get(at..at + FRAG_HDR).filter(|_| at + FRAG_HDR <= end) else {
                return Err(DropReason::BadIpv6);
            };
            let fo = rd16(h, 2);
            let fr = FragInfo {
                off: fo & 0xfff8,
                more: fo & 1 != 0,
                id: rd32(h, 4),
            };
            (h[0], off + FRAG_HDR, Some(fr))
        }
        ExtWalk::ActiveRouting { .. } => return Err(DropReason::XlatUntranslatable),
        ExtWalk::Malformed => return Err(DropReason::BadIpv6),
    };
    if p.ttl <= 1 {
        return Err(DropReason::TtlExceeded);
    }
    let l4 = l3 + V6 + off;
    let ip = Ipv6Packet::new_unchecked(&f[l3..end]);
    let (src6, dst6) = (ip.src_addr(), ip.dst_addr());
    let o = Outer {
        l3,
        l4,
        end,
        tc: ip.traffic_class(),
        hop: p.ttl - 1,
    };
    let seg = &f[l4..end];
    let plan = match frag {
        Some(fr) => plan_fragment(nh, seg, &fr)?,
        None => match plan_l4(nh, seg, ip_proto::ICMPV6, |i| {
            icmp::map_6to4(i.msg_type(), i.msg_code(), rd32(seg, 4))
        })? {
            Plan::Rewrite(plan) => Some(plan),
            Plan::IcmpError(ty, code, rest) => {
                return v6_error_to_v4(pkt, cfg, to, o, (src6, dst6), (ty, code, rest))
            }
        },
    };
    let seg_len = end - l4;
    let total = V4 + seg_len;
    if total > u16::MAX as usize {
        return Err(DropReason::TooBig);
    }
    // ---- no failure past this point ----
    let data = pkt.data_mut();
    let (old_ph, new_ph) = (addr_sum6(&src6, &dst6), addr_sum4(to.src, to.dst));
    let proto = match plan {
        None => nh,
        Some(L4Plan::Tcp) => {
            let mut t = TcpPacket::new_unchecked(&mut data[l4..end]);
            t.set_checksum(reseed(t.checksum(), old_ph, new_ph));
            ip_proto::TCP
        }
        Some(L4Plan::Udp) => {
            let mut u = UdpPacket::new_unchecked(&mut data[l4..end]);
            u.set_checksum(checksum::udp_update16(u.checksum(), old_ph, new_ph));
            ip_proto::UDP
        }
        Some(L4Plan::Echo(ty)) => {
            let mut i = IcmpPacket::new_unchecked(&mut data[l4..end]);
            let code = i.msg_code();
            let ph = pseudo_header_v6(&src6, &dst6, ip_proto::ICMPV6, seg_len as u32);
            let c = reseed(i.checksum(), ph, 0);
            let c = update16(c, type_word(i.msg_type(), code), type_word(ty, code));
            i.set_msg_type(ty);
            i.set_checksum(c);
            ip_proto::ICMP
        }
    };
    // The header shrinks: move the Ethernet header forward (a few bytes),
    // not the payload back.
    let new_l4 = l3 + V4;
    let shrink = l4 - new_l4;
    data.copy_within(0..l3, shrink);
    pkt.adj(shrink);
    let data = pkt.data_mut();
    write_v4(
        &mut data[l3..],
        o.tc,
        total as u16,
        frag.map_or(to.ident, |fr| fr.id as u16),
        o.hop,
        proto,
        to.src,
        to.dst,
    );
    if let Some(fr) = frag {
        // RFC 7915 §5.1.1: the low 16 bits of the Identification, offset,
        // MF = M, DF = 0.
        let mut ip = Ipv4Packet::new_unchecked(&mut data[l3..l3 + V4]);
        ip.set_flags_and_frag_offset(false, fr.more, fr.off);
        ip.fill_checksum();
    }
    set_ethertype(data, ethertype::IPV4);
    pkt.set_len(new_l4 + seg_len);
    Ok(())
}

/// The quoted IPv6 packet of an ICMPv6 error.
struct Inner6 {
    payload_len: u16,
    nh: u8,
    tc: u8,
    hop: u8,
    src: [u8; 16],
    dst: [u8; 16],
    echo_ty: Option<u8>,
}

fn inner_v6(q: &[u8]) -> Result<Inner6, DropReason> {
    const BAD: DropReason = DropReason::XlatIcmpInner;
    if q.len() < V6 || q[0] >> 4 != 6 {
        return Err(BAD);
    }
    let ip = Ipv6Packet::new_unchecked(q);
    let nh = ip.next_header();
    if nh == ip_proto::IPV6_FRAGMENT {
        return Err(DropReason::XlatFragment);
    }
    if ipv6::is_extension_header(nh) || V4 + ip.payload_len() as usize > u16::MAX as usize {
        return Err(BAD);
    }
    let echo_ty = if nh == ip_proto::ICMPV6 {
        Some(quoted_echo(&q[V6..], |t| icmp::map_6to4(t, 0, 0))?)
    } else {
        None
    };
    Ok(Inner6 {
        payload_len: ip.payload_len(),
        nh,
        tc: ip.traffic_class(),
        hop: ip.hop_limit(),
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        echo_ty,
    })
}

fn v6_error_to_v4(
    pkt: &mut Pkt<'_>,
    cfg: &XlatConfig,
    to: &To4,
    o: Outer,
    (src6, dst6): ([u8; 16], [u8; 16]),
    (ty, code, rest): (u8, u8, Rest),
) -> Result<(), DropReason> {
    let f = pkt.frame();
    let msg = &f[o.l4..o.end];
    if !IcmpPacket::new_unchecked(msg).verify_checksum_v6(&src6, &dst6) {
        return Err(DropReason::BadL4);
    }
    let q = o.l4 + ICMP_HDR;
    let inner = inner_v6(&f[q..o.end])?;
    let rest4: [u8; 4] = match rest {
        Rest::Zero => [0; 4],
        Rest::Mtu => {
            let m = icmp::mtu_6to4(rd32(msg, 4), cfg.mtu4, cfg.mtu6).to_be_bytes();
            [0, 0, m[0], m[1]]
        }
        Rest::Pointer(p) => [p, 0, 0, 0],
    };
    let quoted_l4 = o.end - q - V6;
    let (msg4, inner4, l4_4) = (o.l3 + V4, o.l3 + V4 + ICMP_HDR, o.l3 + V4 + ICMP_HDR + V4);
    let new_len = l4_4 + quoted_l4;
    // ---- no failure past this point (the frame only shrinks) ----
    let data = pkt.data_mut();
    let from = q + V6;
    data.copy_within(from..from + quoted_l4, l4_4);
    let inner_proto = if inner.nh == ip_proto::ICMPV6 {
        ip_proto::ICMP
    } else {
        inner.nh
    };
    write_v4(
        &mut data[inner4..],
        inner.tc,
        (V4 + inner.payload_len as usize) as u16,
        0,
        inner.hop,
        inner_proto,
        to.inner_src,
        to.inner_dst,
    );
    fix_quoted_l4(
        &mut data[l4_4..new_len],
        inner.nh,
        addr_sum6(&inner.src, &inner.dst),
        addr_sum4(to.inner_src, to.inner_dst),
        inner.echo_ty.map(|t| {
            let ph = pseudo_header_v6(
                &inner.src,
                &inner.dst,
                ip_proto::ICMPV6,
                inner.payload_len as u32,
            );
            (t, ph, 0)
        }),
    );
    set_icmp_head(&mut data[msg4..], ty, code, rest4);
    IcmpPacket::new_unchecked(&mut data[msg4..new_len]).fill_checksum_v4();
    let total = (new_len - o.l3) as u16;
    write_v4(
        &mut data[o.l3..],
        o.tc,
        total,
        to.ident,
        o.hop,
        ip_proto::ICMP,
        to.src,
        to.dst,
    );
    set_ethertype(data, ethertype::IPV4);
    pkt.set_len(new_len);
    Ok(())
}
