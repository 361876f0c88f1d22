//! Frame builders for tests (this crate's and other crates'), and for tools.
//!
//! Off the hot path: these allocate. Every byte of a built frame is
//! meaningful (checksums correct); [`with_room`] appends a non-zero fill so a
//! stage that reads or forgets bytes past the frame shows up in fixtures.

use super::arp::ArpPacket;
use super::checksum;
use super::ether::{ethertype, EthernetFrame, HEADER_LEN as ETH_LEN, VLAN_TAG_LEN};
use super::icmp::IcmpPacket;
use super::ipv4::{Ipv4Packet, HEADER_LEN as IPV4_LEN};
use super::ipv6::{Ipv6Packet, HEADER_LEN as IPV6_LEN};
use super::tcp::TcpPacket;
use super::udp::UdpPacket;
use super::{ip_proto, MacAddr};

/// Fill byte for unused room.
pub const FILL: u8 = 0xa5;
/// Default source MAC of [`FrameSpec`].
pub const MAC_A: MacAddr = [0x02, 0, 0, 0, 0, 0x0a];
/// Default destination MAC of [`FrameSpec`].
pub const MAC_B: MacAddr = [0x02, 0, 0, 0, 0, 0x0b];

/// The L4 part of a [`FrameSpec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum L4 {
    /// `options` raw, padded with zeros (end of list) to a multiple of 4.
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        options: Vec<u8>,
    },
    /// `checksum: false` leaves 0 ("none"; IPv4 only).
    Udp {
        src_port: u16,
        dst_port: u16,
        checksum: bool,
    },
    /// ICMP over IPv4, ICMPv6 over IPv6; `ident`/`seq` fill bytes 4..8.
    Icmp {
        ty: u8,
        code: u8,
        ident: u16,
        seq: u16,
    },
    /// No L4 header: the payload follows the IP header under `proto`.
    Raw { proto: u8 },
}

/// IPv6 instead of IPv4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ip6Spec {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// Insert a Fragment header (offset 0, M = 1) before L4.
    pub fragment: bool,
}

impl Default for Ip6Spec {
    fn default() -> Self {
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        let mut dst = src;
        src[15] = 1;
        dst[15] = 2;
        Ip6Spec {
            src,
            dst,
            fragment: false,
        }
    }
}

/// A complete Ethernet + IPv4/IPv6 + L4 frame, described simply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    /// 802.1Q TCI; `Some` adds a tag.
    pub vlan: Option<u16>,
    pub src_ip: [u8; 4],
    pub dst_ip: [u8; 4],
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// In bytes (multiple of 8).
    pub frag_offset: u16,
    /// Raw IPv4 options, padded with zeros to a multiple of 4.
    pub ip_options: Vec<u8>,
    /// When set, build IPv6 (the IPv4 fields above are ignored).
    pub ip6: Option<Ip6Spec>,
    pub l4: L4,
    pub payload: Vec<u8>,
}

impl Default for FrameSpec {
    /// 02::0a → 02::0b, 10.0.0.1 → 10.0.0.2, TTL 64, DF, UDP 1000 → 2000,
    /// payload `b"pgw-test"`.
    fn default() -> Self {
        FrameSpec {
            src_mac: MAC_A,
            dst_mac: MAC_B,
            vlan: None,
            src_ip: [10, 0, 0, 1],
            dst_ip: [10, 0, 0, 2],
            ttl: 64,
            ident: 0x1234,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            ip_options: Vec::new(),
            ip6: None,
            l4: L4::Udp {
                src_port: 1000,
                dst_port: 2000,
                checksum: true,
            },
            payload: b"pgw-test".to_vec(),
        }
    }
}

fn pad4(mut v: Vec<u8>) -> Vec<u8> {
    while v.len() & 3 != 0 {
        v.push(0);
    }
    v
}

impl FrameSpec {
    /// A TCP frame 10.0.0.1:`src_port` → 10.0.0.2:`dst_port` with `flags`.
    pub fn tcp(src_port: u16, dst_port: u16, flags: u8) -> Self {
        FrameSpec {
            l4: L4::Tcp {
                src_port,
                dst_port,
                seq: 1000,
                ack: if flags & super::tcp::flags::ACK != 0 {
                    2000
                } else {
                    0
                },
                flags,
                window: 8192,
                options: Vec::new(),
            },
            ..FrameSpec::default()
        }
    }

    /// A UDP frame 10.0.0.1:`src_port` → 10.0.0.2:`dst_port`.
    pub fn udp(src_port: u16, dst_port: u16) -> Self {
        FrameSpec {
            l4: L4::Udp {
                src_port,
                dst_port,
                checksum: true,
            },
            ..FrameSpec::default()
        }
    }

    /// An ICMP echo request 10.0.0.1 → 10.0.0.2.
    pub fn ping(ident: u16, seq: u16) -> Self {
        FrameSpec {
            l4: L4::Icmp {
                ty: super::icmp::v4::ECHO_REQUEST,
                code: 0,
                ident,
                seq,
            },
            ..FrameSpec::default()
        }
    }

    /// Build the frame bytes (no Ethernet padding, no FCS).
    pub fn build(&self) -> Vec<u8> {
        let l4 = self.build_l4();
        let l2_len = ETH_LEN + if self.vlan.is_some() { VLAN_TAG_LEN } else { 0 };
        let (et, l3) = match &self.ip6 {
            None => (ethertype::IPV4, self.build_ipv4(&l4)),
            Some(s) => (ethertype::IPV6, self.build_ipv6(s, &l4)),
        };
        let mut f = vec![FILL; l2_len];
        let mut e = EthernetFrame::new_unchecked(&mut f[..]);
        e.set_dst_addr(self.dst_mac);
        e.set_src_addr(self.src_mac);
        if let Some(tci) = self.vlan {
            f[12..14].copy_from_slice(&ethertype::VLAN.to_be_bytes());
            f[14..16].copy_from_slice(&tci.to_be_bytes());
        }
        EthernetFrame::new_unchecked(&mut f[..]).set_ethertype(et);
        f.extend_from_slice(&l3);
        f
    }

    fn proto(&self) -> u8 {
        match &self.l4 {
            L4::Tcp { .. } => ip_proto::TCP,
            L4::Udp { .. } => ip_proto::UDP,
            L4::Icmp { .. } if self.ip6.is_some() => ip_proto::ICMPV6,
            L4::Icmp { .. } => ip_proto::ICMP,
            L4::Raw { proto } => *proto,
        }
    }

    /// L4 header + payload with the checksum field still 0.
    fn build_l4(&self) -> Vec<u8> {
        let mut v;
        match &self.l4 {
            L4::Tcp {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                window,
                options,
            } => {
                let opts = pad4(options.clone());
                v = vec![FILL; 20 + opts.len()];
                let mut t = TcpPacket::new_unchecked(&mut v[..]);
                t.set_src_port(*src_port);
                t.set_dst_port(*dst_port);
                t.set_seq_number(*seq);
                t.set_ack_number(*ack);
                t.set_header_len(20 + opts.len());
                t.set_flags(*flags);
                t.set_window_len(*window);
                t.set_checksum(0);
                t.set_urgent_at(0);
                t.options_mut().copy_from_slice(&opts);
            }
            L4::Udp {
                src_port, dst_port, ..
            } => {
                v = vec![FILL; 8];
                let mut u = UdpPacket::new_unchecked(&mut v[..]);
                u.set_src_port(*src_port);
                u.set_dst_port(*dst_port);
                u.set_len((8 + self.payload.len()) as u16);
                u.set_checksum(0);
            }
            L4::Icmp {
                ty,
                code,
                ident,
                seq,
            } => {
                v = vec![FILL; 8];
                let mut i = IcmpPacket::new_unchecked(&mut v[..]);
                i.set_msg_type(*ty);
                i.set_msg_code(*code);
                i.set_checksum(0);
                i.set_echo_ident(*ident);
                i.set_echo_seq_no(*seq);
            }
            L4::Raw { .. } => v = Vec::new(),
        }
        v.extend_from_slice(&self.payload);
        v
    }

    fn fill_l4_checksum_v4(&self, seg: &mut [u8]) {
        let (s, d) = (self.src_ip, self.dst_ip);
        match &self.l4 {
            L4::Tcp { .. } => TcpPacket::new_unchecked(seg).fill_checksum_v4(s, d),
            L4::Udp { checksum: true, .. } => UdpPacket::new_unchecked(seg).fill_checksum_v4(s, d),
            L4::Udp { .. } | L4::Raw { .. } => {}
            L4::Icmp { .. } => IcmpPacket::new_unchecked(seg).fill_checksum_v4(),
        }
    }

    fn build_ipv4(&self, l4: &[u8]) -> Vec<u8> {
        let opts = pad4(self.ip_options.clone());
        let hl = IPV4_LEN + opts.len();
        let mut v = vec![FILL; hl];
        v.extend_from_slice(l4);
        let total = v.len() as u16;
        let mut ip = Ipv4Packet::new_unchecked(&mut v[..]);
        ip.set_version_and_header_len(hl);
        ip.set_dscp_ecn(0, 0);
        ip.set_total_len(total);
        ip.set_ident(self.ident);
        ip.set_flags_and_frag_offset(self.dont_frag, self.more_frags, self.frag_offset);
        ip.set_ttl(self.ttl);
        ip.set_protocol(self.proto());
        ip.set_src_addr(self.src_ip);
        ip.set_dst_addr(self.dst_ip);
        ip.options_mut().copy_from_slice(&opts);
        ip.fill_checksum();
        self.fill_l4_checksum_v4(&mut v[hl..]);
        v
    }

    fn build_ipv6(&self, s: &Ip6Spec, l4: &[u8]) -> Vec<u8> {
        let frag_len = if s.fragment { 8 } else { 0 };
        let mut v = vec![FILL; IPV6_LEN + frag_len];
        v.extend_from_slice(l4);
        let plen = (v.len() - IPV6_LEN) as u16;
        let proto = self.proto();
        let mut ip = Ipv6Packet::new_unchecked(&mut v[..]);
        ip.set_version_tc_flow(0, 0x12345);
        ip.set_payload_len(plen);
        ip.set_next_header(if s.fragment {
            ip_proto::IPV6_FRAGMENT
        } else {
            proto
        });
        ip.set_hop_limit(self.ttl);
        ip.set_src_addr(s.src);
        ip.set_dst_addr(s.dst);
        if s.fragment {
            // next header, reserved, offset 0 | M, identification
            let fh = [proto, 0, 0, 1, 0, 0, 0x12, 0x34];
            v[IPV6_LEN..IPV6_LEN + 8].copy_from_slice(&fh);
        }
        let seg = &mut v[IPV6_LEN + frag_len..];
        match &self.l4 {
            L4::Tcp { .. } => TcpPacket::new_unchecked(seg).fill_checksum_v6(&s.src, &s.dst),
            L4::Udp { .. } => UdpPacket::new_unchecked(seg).fill_checksum_v6(&s.src, &s.dst),
            L4::Icmp { .. } => IcmpPacket::new_unchecked(seg).fill_checksum_v6(&s.src, &s.dst),
            L4::Raw { .. } => {}
        }
        v
    }
}

/// An Ethernet/IPv4 ARP frame (42 bytes, no padding).
pub fn arp(
    eth_src: MacAddr,
    eth_dst: MacAddr,
    op: u16,
    sha: MacAddr,
    spa: [u8; 4],
    tha: MacAddr,
    tpa: [u8; 4],
) -> Vec<u8> {
    let mut f = vec![FILL; ETH_LEN + super::arp::PACKET_LEN];
    let mut e = EthernetFrame::new_unchecked(&mut f[..]);
    e.set_dst_addr(eth_dst);
    e.set_src_addr(eth_src);
    e.set_ethertype(ethertype::ARP);
    let mut a = ArpPacket::new_unchecked(&mut f[ETH_LEN..]);
    a.set_ethernet_ipv4();
    a.set_operation(op);
    a.set_sender_hardware_addr(sha);
    a.set_sender_protocol_addr(spa);
    a.set_target_hardware_addr(tha);
    a.set_target_protocol_addr(tpa);
    f
}

/// `frame` followed by [`FILL`] up to `room` bytes (at least the frame): a
/// buffer for `Pkt::new(&mut buf, frame.len(), port)`.
pub fn with_room(frame: &[u8], room: usize) -> Vec<u8> {
    let mut v = frame.to_vec();
    v.resize(room.max(frame.len()), FILL);
    v
}

/// Whether the IPv4 header checksum and the TCP/UDP/ICMP checksum of an IP
/// frame are correct (for test assertions). `false` for frames [`parse`]
/// rejects; ARP frames are `true`.
///
/// [`parse`]: super::parse
pub fn checksums_ok(frame: &[u8]) -> bool {
    let Ok(p) = super::parse(frame) else {
        return false;
    };
    let seg = &frame[p.l4_range()];
    match p.ip_version {
        4 => {
            let Ok(ip) = Ipv4Packet::new_checked(&frame[p.l3_off as usize..]) else {
                return false;
            };
            let (s, d) = (ip.src_addr(), ip.dst_addr());
            ip.verify_checksum()
                && match p.proto {
                    ip_proto::TCP => TcpPacket::new_unchecked(seg).verify_checksum_v4(s, d),
                    ip_proto::UDP => UdpPacket::new_unchecked(seg).verify_checksum_v4(s, d),
                    ip_proto::ICMP => IcmpPacket::new_unchecked(seg).verify_checksum_v4(),
                    _ => false,
                }
        }
        6 => {
            let (s, d) = (&p.src, &p.dst);
            match p.proto {
                ip_proto::TCP => TcpPacket::new_unchecked(seg).verify_checksum_v6(s, d),
                ip_proto::UDP => UdpPacket::new_unchecked(seg).verify_checksum_v6(s, d),
                ip_proto::ICMPV6 => IcmpPacket::new_unchecked(seg).verify_checksum_v6(s, d),
                _ => false,
            }
        }
        _ => true,
    }
}

/// `frame` (Ethernet, optionally tagged, + an unfragmented IPv4 packet)
/// split as an IPv4 router would: fragments carrying at most `max_payload`
/// bytes of the IP payload each (rounded down to a multiple of 8), the
/// header (options included) copied into each, DF cleared, MF and offset
/// set, total length and header checksum rewritten. Panics on frames that
/// are not IPv4.
pub fn fragment_v4(frame: &[u8], max_payload: usize) -> Vec<Vec<u8>> {
    let p = super::parse_l3(frame).expect("an IPv4 frame");
    assert!(p.is_ipv4(), "an IPv4 frame");
    let l3 = p.l3_off as usize;
    cut(
        frame,
        &p,
        max_payload,
        |_, _| Vec::new(),
        |f, off, n, more| {
            let mut ip = Ipv4Packet::new_unchecked(&mut f[l3..]);
            ip.set_total_len((p.l4_off as usize - l3 + n) as u16);
            ip.set_flags_and_frag_offset(false, more, off as u16);
            ip.fill_checksum();
        },
    )
}

/// `frame`'s IP payload cut as [`pieces`] says, each piece a frame: the
/// headers up to the payload, `insert(offset, more)` (a header to add),
/// the piece, then `fix(frame, offset, length, more)`.
fn cut(
    frame: &[u8],
    p: &super::Parsed,
    max_payload: usize,
    insert: impl Fn(usize, bool) -> Vec<u8>,
    fix: impl Fn(&mut [u8], usize, usize, bool),
) -> Vec<Vec<u8>> {
    let (l4, end) = (p.l4_off as usize, p.ip_end());
    pieces(end - l4, max_payload)
        .map(|(off, n, more)| {
            let mut f = frame[..l4].to_vec();
            f.extend_from_slice(&insert(off, more));
            f.extend_from_slice(&frame[l4 + off..l4 + off + n]);
            fix(&mut f, off, n, more);
            f
        })
        .collect()
}

/// The pieces a payload of `len` bytes is cut into, at most `max_payload`
/// bytes each (rounded down to a multiple of 8): (offset, length, more
/// pieces after it).
fn pieces(len: usize, max_payload: usize) -> impl Iterator<Item = (usize, usize, bool)> {
    let step = max_payload / 8 * 8;
    assert!(step > 0);
    (0..len)
        .step_by(step)
        .map(move |off| (off, step.min(len - off), off + step < len))
}

/// `frame` (Ethernet, optionally tagged, + an IPv6 packet without
/// extension headers) split as an IPv6 source would: a Fragment header
/// (Identification `id`) inserted after the fixed header of each fragment,
/// each carrying at most `max_payload` bytes of the packet's payload
/// (rounded down to a multiple of 8), offset and M set, payload length
/// rewritten. Panics on frames that are not IPv6.
pub fn fragment_v6(frame: &[u8], max_payload: usize, id: u32) -> Vec<Vec<u8>> {
    let p = super::parse_l3(frame).expect("an IPv6 frame");
    assert!(p.is_ipv6(), "an IPv6 frame");
    let l3 = p.l3_off as usize;
    let header = |off: usize, more: bool| {
        let fo = off as u16 | more as u16;
        let [a, b] = fo.to_be_bytes();
        let [c, d, e, g] = id.to_be_bytes();
        vec![p.proto, 0, a, b, c, d, e, g]
    };
    cut(frame, &p, max_payload, header, |f, _, n, _| {
        let mut ip = Ipv6Packet::new_unchecked(&mut f[l3..]);
        ip.set_payload_len((8 + n) as u16);
        ip.set_next_header(ip_proto::IPV6_FRAGMENT);
    })
}

/// Full recomputation of an IPv4 header checksum, for tests comparing
/// incremental updates.
pub fn ipv4_header_checksum(header: &[u8]) -> u16 {
    let mut h = header.to_vec();
    if h.len() >= 12 {
        h[10] = 0;
        h[11] = 0;
    }
    checksum::checksum(&h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_udp_frame_bytes() {
        let f = FrameSpec::default().build();
        #[rustfmt::skip]
        let expect: Vec<u8> = [
            &[0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a, 0x08, 0x00][..],
            // IPv4: len 36, id 0x1234, DF, TTL 64, UDP, csum, 10.0.0.1 -> 10.0.0.2
            &[0x45, 0x00, 0x00, 0x24, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11],
            &ipv4_header_checksum(&f[14..34]).to_be_bytes(),
            &[10, 0, 0, 1, 10, 0, 0, 2],
            // UDP 1000 -> 2000, len 16
            &[0x03, 0xe8, 0x07, 0xd0, 0x00, 0x10],
            &f[40..42],
            b"pgw-test",
        ]
        .concat();
        assert_eq!(f, expect);
        assert!(checksums_ok(&f));
        assert_ne!(&f[40..42], &[0, 0]);
    }

    #[test]
    fn all_kinds_have_valid_checksums() {
        let mut specs = vec![
            FrameSpec::tcp(1, 2, super::super::tcp::flags::SYN),
            FrameSpec::udp(3, 4),
            FrameSpec::ping(5, 6),
        ];
        for s in specs.clone() {
            specs.push(FrameSpec {
                ip6: Some(Ip6Spec::default()),
                l4: match s.l4 {
                    L4::Icmp { ident, seq, .. } => L4::Icmp {
                        ty: super::super::icmp::v6::ECHO_REQUEST,
                        code: 0,
                        ident,
                        seq,
                    },
                    l4 => l4,
                },
                ..s
            });
        }
        for s in &specs {
            assert!(checksums_ok(&s.build()), "{s:?}");
        }
        let no_csum = FrameSpec {
            l4: L4::Udp {
                src_port: 1,
                dst_port: 2,
                checksum: false,
            },
            ..FrameSpec::default()
        };
        let f = no_csum.build();
        assert_eq!(&f[40..42], &[0, 0]);
        assert!(checksums_ok(&f));
    }

    #[test]
    fn room_is_filled() {
        let v = with_room(&[1, 2, 3], 6);
        assert_eq!(v, [1, 2, 3, FILL, FILL, FILL]);
    }
}
