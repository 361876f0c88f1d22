//! One pass over a frame: the offsets and facts the stages need.

use super::arp::ArpPacket;
use super::ether::{ethertype, EthernetFrame};
use super::icmp::{self, IcmpPacket};
use super::ipv4::Ipv4Packet;
use super::ipv6::Ipv6Packet;
use super::tcp::TcpPacket;
use super::udp::UdpPacket;
use super::{ip_proto, ipv4_mapped};
use crate::verdict::DropReason;
use core::ops::Range;

/// What [`parse`] / [`parse_l3`] learned about a frame, as plain numbers.
///
/// Invariants (for any `Ok` result, checked by property tests):
/// `l3_off` is 14 or 18; `l3_off <= l4_off`;
/// `l4_off + l4_len <= frame.len()` (the IP packet's end, padding excluded);
/// `l4_off <= payload_off` and `payload_off + payload_len <= l4_off + l4_len`.
///
/// Addresses are 16 bytes: IPv6 as is, IPv4 (and ARP's protocol addresses)
/// IPv4-mapped (`::ffff:a.b.c.d`); use [`Parsed::src_v4`] and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Offset of the L3 header = length of the L2 header (14, or 18 with an
    /// 802.1Q tag).
    pub l3_off: u16,
    /// 802.1Q TCI, if the frame is tagged.
    pub vlan_tci: Option<u16>,
    /// Ethertype of the L3 payload (after the tag).
    pub ethertype: u16,
    /// 4 or 6; 0 for ARP.
    pub ip_version: u8,
    /// IPv4 protocol / IPv6 next header (0 for ARP).
    pub proto: u8,
    /// IPv4 TTL / IPv6 hop limit (0 for ARP).
    pub ttl: u8,
    /// IPv4 MF flag or offset != 0; IPv6 next header = Fragment.
    pub fragment: bool,
    /// Offset of the L4 header (the end of the IP header; for ARP, the end of
    /// the ARP packet).
    pub l4_off: u16,
    /// Length of the IP payload (from the IP length fields; 0 for ARP).
    pub l4_len: u16,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// TCP/UDP source port; ICMP echo identifier. 0 when L4 is not parsed.
    pub src_port: u16,
    /// TCP/UDP destination port; ICMP echo identifier. 0 when L4 is not parsed.
    pub dst_port: u16,
    /// TCP flag byte (0 otherwise).
    pub tcp_flags: u8,
    /// ICMP / ICMPv6 type (0 otherwise).
    pub icmp_type: u8,
    /// Offset of the L4 payload (after TCP/UDP/ICMP header); `l4_off` when L4
    /// is not parsed.
    pub payload_off: u16,
    /// Length of the L4 payload (UDP: from its length field).
    pub payload_len: u16,
}

impl Parsed {
    /// Panics unless this parse of `frame` keeps the invariants every
    /// successful parse keeps: offsets in order and within the frame, the
    /// ranges indexing it (fuzzing and the property tests check them).
    pub fn assert_invariants(&self, frame: &[u8]) {
        assert!(self.l3_off == 14 || self.l3_off == 18);
        assert!(self.l3_off <= self.l4_off);
        assert!(self.ip_end() <= frame.len());
        assert!(self.l4_off <= self.payload_off);
        assert!(self.payload_range().end <= self.ip_end());
        let _ = &frame[self.l3_range()];
        let _ = &frame[self.l4_range()];
        let _ = &frame[self.payload_range()];
    }

    /// Length of the L2 header.
    #[inline]
    pub fn l2_len(&self) -> usize {
        self.l3_off as usize
    }
    #[inline]
    pub fn is_arp(&self) -> bool {
        self.ethertype == ethertype::ARP
    }
    #[inline]
    pub fn is_ipv4(&self) -> bool {
        self.ip_version == 4
    }
    #[inline]
    pub fn is_ipv6(&self) -> bool {
        self.ip_version == 6
    }
    /// Source address for IPv4 and ARP (the last 4 bytes of `src`).
    #[inline]
    pub fn src_v4(&self) -> [u8; 4] {
        [self.src[12], self.src[13], self.src[14], self.src[15]]
    }
    #[inline]
    pub fn dst_v4(&self) -> [u8; 4] {
        [self.dst[12], self.dst[13], self.dst[14], self.dst[15]]
    }
    /// The IP header (or ARP packet): `l3_off .. l4_off + l4_len`.
    #[inline]
    pub fn l3_range(&self) -> Range<usize> {
        self.l3_off as usize..self.ip_end()
    }
    /// The L4 segment (IP payload, padding excluded).
    #[inline]
    pub fn l4_range(&self) -> Range<usize> {
        self.l4_off as usize..self.ip_end()
    }
    #[inline]
    pub fn payload_range(&self) -> Range<usize> {
        self.payload_off as usize..self.payload_off as usize + self.payload_len as usize
    }
    /// End of the IP packet in the frame (anything after is padding).
    #[inline]
    pub fn ip_end(&self) -> usize {
        self.l4_off as usize + self.l4_len as usize
    }
    /// Whether any bit of `mask` (see `tcp::flags`) is set.
    #[inline]
    pub fn tcp_flag(&self, mask: u8) -> bool {
        self.tcp_flags & mask != 0
    }
}

/// Parse Ethernet (+ one 802.1Q tag) and the L3 header: ARP (Ethernet/IPv4
/// only), IPv4 or IPv6. L4 is not looked at: fragments and any protocol are
/// accepted, `src_port`/`dst_port`/`tcp_flags`/`icmp_type` are 0 and the
/// payload fields span the whole IP payload. For stages that route on L3 only
/// (the LB).
///
/// Errors: `BadEther` (short frame or tag), `UnsupportedEthertype` (anything
/// but ARP/IPv4/IPv6, a second tag included), `ArpIgnored` (ARP that is short
/// or not Ethernet/IPv4), `BadIpv4`, `BadIpv6`.
pub fn parse_l3(frame: &[u8]) -> Result<Parsed, DropReason> {
    parse_l3_in(frame, 0)
}

/// [`parse_l3`] of a frame whose last `tail` bytes are in later buffers
/// (a chained mbuf): the IP length may reach that far, the header must be
/// in `frame`; `l4_len` is what of the IP payload `frame` holds.
fn parse_l3_in(frame: &[u8], tail: usize) -> Result<Parsed, DropReason> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::BadEther)?;
    let et = eth.ethertype();
    let l3 = eth.header_len();
    let mut p = Parsed {
        l3_off: l3 as u16,
        vlan_tci: eth.vlan_tci(),
        ethertype: et,
        ip_version: 0,
        proto: 0,
        ttl: 0,
        fragment: false,
        l4_off: 0,
        l4_len: 0,
        src: [0; 16],
        dst: [0; 16],
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        icmp_type: 0,
        payload_off: 0,
        payload_len: 0,
    };
    let rest = &frame[l3..];
    match et {
        ethertype::IPV4 => {
            let ip = if tail == 0 {
                Ipv4Packet::new_checked(rest).map_err(|_| DropReason::BadIpv4)?
            } else {
                chained_v4(rest, tail).ok_or(DropReason::BadIpv4)?
            };
            p.ip_version = 4;
            p.proto = ip.protocol();
            p.ttl = ip.ttl();
            p.fragment = ip.is_fragment();
            p.l4_off = (l3 + ip.header_len()) as u16;
            p.l4_len = ip.total_len() - ip.header_len() as u16;
            p.src = ipv4_mapped(ip.src_addr());
            p.dst = ipv4_mapped(ip.dst_addr());
        }
        ethertype::IPV6 => {
            let ip = if tail == 0 {
                Ipv6Packet::new_checked(rest).map_err(|_| DropReason::BadIpv6)?
            } else {
                chained_v6(rest, tail).ok_or(DropReason::BadIpv6)?
            };
            p.ip_version = 6;
            p.proto = ip.next_header();
            p.ttl = ip.hop_limit();
            p.fragment = ip.is_fragment();
            p.l4_off = (l3 + super::ipv6::HEADER_LEN) as u16;
            p.l4_len = ip.payload_len();
            p.src = ip.src_addr();
            p.dst = ip.dst_addr();
        }
        ethertype::ARP => {
            let arp = ArpPacket::new_checked(rest).map_err(|_| DropReason::ArpIgnored)?;
            if !arp.is_ethernet_ipv4() {
                return Err(DropReason::ArpIgnored);
            }
            p.l4_off = (l3 + super::arp::PACKET_LEN) as u16;
            p.src = ipv4_mapped(arp.sender_protocol_addr());
            p.dst = ipv4_mapped(arp.target_protocol_addr());
        }
        _ => return Err(DropReason::UnsupportedEthertype),
    }
    p.payload_off = p.l4_off;
    p.payload_len = p.l4_len;
    Ok(p)
}

/// Parse the whole frame: [`parse_l3`], then the L4 header.
///
/// ARP frames are returned as by `parse_l3`. For IP, in addition:
/// `Fragment` for any fragment (not reassembled here); `UnsupportedProto`
/// for protocols other than TCP, UDP, ICMP echo request/reply (IPv4) and
/// ICMPv6 echo request/reply (IPv6), IPv6 extension headers included;
/// `BadL4` for a truncated L4 header, a TCP data offset < 5 or past the
/// segment, a UDP length < 8 or past the IP payload.
///
/// Checksums are not verified. Never panics, whatever the input.
pub fn parse(frame: &[u8]) -> Result<Parsed, DropReason> {
    parse_in(frame, 0).map(|(p, _)| p)
}

/// [`parse`] of a chained frame: `frame` is its first buffer, `tail` the
/// bytes in the others. The headers up to the L4 one must be in `frame`;
/// the IP and UDP lengths may reach into the tail. The result describes
/// `frame` (its invariants hold for it: `l4_len`, `payload_len` count what
/// `frame` holds), with the IP packet's bytes past `frame`: its length is
/// `ip_end() - l3_off` plus those.
pub fn parse_chained(frame: &[u8], tail: usize) -> Result<(Parsed, usize), DropReason> {
    parse_in(frame, tail)
}

/// [`parse_l3`] of a chained frame (see [`parse_chained`]): the L3
/// header from `frame`, the first buffer, the IP length reaching into the
/// `tail` bytes after it; the bytes of the IP packet past `frame`.
pub fn parse_l3_chained(frame: &[u8], tail: usize) -> Result<(Parsed, usize), DropReason> {
    let mut p = parse_l3_in(frame, tail)?;
    let beyond = p.ip_end().saturating_sub(frame.len());
    p.l4_len -= beyond as u16;
    p.payload_len = p.l4_len;
    Ok((p, beyond))
}

/// The IPv4 header at the start of `rest`, a chained frame's first
/// buffer with `tail` bytes after it: IHL and total length sane, the
/// header in `rest`. Only its header fields may be read (its payload is
/// not all in `rest`).
fn chained_v4(rest: &[u8], tail: usize) -> Option<Ipv4Packet<&[u8]>> {
    let ip = Ipv4Packet::new_unchecked(rest);
    (rest.len() >= super::ipv4::HEADER_LEN && ip.version() == 4).then_some(())?;
    let hl = ip.header_len();
    let total = ip.total_len() as usize;
    (hl >= super::ipv4::HEADER_LEN && hl <= rest.len() && total >= hl && total <= rest.len() + tail)
        .then_some(ip)
}

/// [`chained_v4`] for IPv6.
fn chained_v6(rest: &[u8], tail: usize) -> Option<Ipv6Packet<&[u8]>> {
    let ip = Ipv6Packet::new_unchecked(rest);
    (rest.len() >= super::ipv6::HEADER_LEN
        && ip.version() == 6
        && super::ipv6::HEADER_LEN + ip.payload_len() as usize <= rest.len() + tail)
        .then_some(ip)
}

fn parse_in(frame: &[u8], tail: usize) -> Result<(Parsed, usize), DropReason> {
    // (`beyond`: what of the IP packet is past `frame`, 0 unless chained)
    let (mut p, beyond) = parse_l3_chained(frame, tail)?;
    if p.ip_version == 0 {
        return Ok((p, beyond));
    }
    if p.fragment {
        return Err(DropReason::Fragment);
    }
    let l4_off = p.l4_off as usize;
    let seg = &frame[l4_off..p.ip_end()];
    match (p.ip_version, p.proto) {
        (_, ip_proto::TCP) => {
            let t = TcpPacket::new_checked(seg).map_err(|_| DropReason::BadL4)?;
            p.src_port = t.src_port();
            p.dst_port = t.dst_port();
            p.tcp_flags = t.flags();
            p.payload_off = (l4_off + t.header_len()) as u16;
            p.payload_len = (seg.len() - t.header_len()) as u16;
        }
        (_, ip_proto::UDP) => {
            let u = if beyond == 0 {
                UdpPacket::new_checked(seg).map_err(|_| DropReason::BadL4)?
            } else {
                // (its length may reach into the tail)
                let u = UdpPacket::new_unchecked(seg);
                let ulen = if seg.len() >= super::udp::HEADER_LEN {
                    u.len() as usize
                } else {
                    0
                };
                if ulen < super::udp::HEADER_LEN || ulen > seg.len() + beyond {
                    return Err(DropReason::BadL4);
                }
                u
            };
            p.src_port = u.src_port();
            p.dst_port = u.dst_port();
            p.payload_off = (l4_off + super::udp::HEADER_LEN) as u16;
            p.payload_len =
                (u.len() as usize).min(seg.len()) as u16 - super::udp::HEADER_LEN as u16;
        }
        (4, ip_proto::ICMP) | (6, ip_proto::ICMPV6) => {
            let i = IcmpPacket::new_checked(seg).map_err(|_| DropReason::BadL4)?;
            let echo = if p.ip_version == 4 {
                i.is_echo_v4()
            } else {
                i.is_echo_v6()
            };
            if !echo {
                return Err(DropReason::UnsupportedProto);
            }
            p.icmp_type = i.msg_type();
            p.src_port = i.echo_ident();
            p.dst_port = i.echo_ident();
            p.payload_off = (l4_off + icmp::HEADER_LEN) as u16;
            p.payload_len = (seg.len() - icmp::HEADER_LEN) as u16;
        }
        _ => return Err(DropReason::UnsupportedProto),
    }
    Ok((p, beyond))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::build::{self, FrameSpec, Ip6Spec, L4};
    use crate::wire::tcp::flags;
    use proptest::prelude::*;

    fn tcp_spec() -> FrameSpec {
        FrameSpec {
            l4: L4::Tcp {
                src_port: 40000,
                dst_port: 443,
                seq: 1,
                ack: 0,
                flags: flags::SYN,
                window: 64240,
                options: vec![2, 4, 5, 0xb4],
            },
            payload: b"hello".to_vec(),
            ..FrameSpec::default()
        }
    }

    #[test]
    fn tcp_v4() {
        let f = tcp_spec().build();
        let p = parse(&f).unwrap();
        assert_eq!(p.l3_off, 14);
        assert_eq!(p.vlan_tci, None);
        assert_eq!(p.ethertype, ethertype::IPV4);
        assert!(p.is_ipv4());
        assert_eq!(p.proto, ip_proto::TCP);
        assert_eq!(p.ttl, 64);
        assert!(!p.fragment);
        assert_eq!(p.l4_off, 34);
        assert_eq!(p.l4_len, 24 + 5);
        assert_eq!(p.src_v4(), [10, 0, 0, 1]);
        assert_eq!(p.dst_v4(), [10, 0, 0, 2]);
        assert_eq!(p.src, ipv4_mapped([10, 0, 0, 1]));
        assert_eq!((p.src_port, p.dst_port), (40000, 443));
        assert!(p.tcp_flag(flags::SYN) && !p.tcp_flag(flags::ACK));
        assert_eq!(p.payload_off, 34 + 24);
        assert_eq!(p.payload_len, 5);
        assert_eq!(&f[p.payload_range()], b"hello");
        assert_eq!(p.ip_end(), f.len());
    }

    #[test]
    fn vlan_udp_v4_with_padding() {
        let mut f = FrameSpec {
            vlan: Some(0x0064),
            l4: L4::Udp {
                src_port: 5000,
                dst_port: 53,
                checksum: true,
            },
            payload: vec![1, 2],
            ..FrameSpec::default()
        }
        .build();
        f.extend_from_slice(&[0xa5; 10]); // Ethernet padding
        let p = parse(&f).unwrap();
        assert_eq!(p.l3_off, 18);
        assert_eq!(p.vlan_tci, Some(100));
        assert_eq!(p.proto, ip_proto::UDP);
        assert_eq!((p.src_port, p.dst_port), (5000, 53));
        assert_eq!(p.payload_off, 18 + 20 + 8);
        assert_eq!(p.payload_len, 2);
        assert_eq!(p.ip_end(), f.len() - 10);
    }

    #[test]
    fn icmp_echo_v4() {
        let f = FrameSpec {
            l4: L4::Icmp {
                ty: icmp::v4::ECHO_REQUEST,
                code: 0,
                ident: 0x4242,
                seq: 7,
            },
            ..FrameSpec::default()
        }
        .build();
        let p = parse(&f).unwrap();
        assert_eq!(p.icmp_type, icmp::v4::ECHO_REQUEST);
        assert_eq!((p.src_port, p.dst_port), (0x4242, 0x4242));
        // Not echo: unsupported.
        let f = FrameSpec {
            l4: L4::Icmp {
                ty: icmp::v4::DEST_UNREACHABLE,
                code: 3,
                ident: 0,
                seq: 0,
            },
            ..FrameSpec::default()
        }
        .build();
        assert_eq!(parse(&f), Err(DropReason::UnsupportedProto));
        assert!(parse_l3(&f).is_ok());
    }

    #[test]
    fn ipv6_tcp_and_fragment() {
        let s6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let d6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let mut spec = tcp_spec();
        spec.ip6 = Some(Ip6Spec {
            src: s6,
            dst: d6,
            fragment: false,
        });
        let f = spec.build();
        let p = parse(&f).unwrap();
        assert!(p.is_ipv6());
        assert_eq!(p.ethertype, ethertype::IPV6);
        assert_eq!((p.src, p.dst), (s6, d6));
        assert_eq!(p.l4_off, 54);
        assert_eq!(p.payload_len, 5);
        assert_eq!((p.src_port, p.dst_port), (40000, 443));

        spec.ip6.as_mut().unwrap().fragment = true;
        let f = spec.build();
        assert_eq!(parse(&f), Err(DropReason::Fragment));
        let p = parse_l3(&f).unwrap();
        assert!(p.fragment);
        assert_eq!(p.proto, ip_proto::IPV6_FRAGMENT);

        // Hop-by-hop options header: unsupported (not walked).
        let mut f = spec.build();
        f[14 + 6] = ip_proto::HOP_BY_HOP;
        assert_eq!(parse(&f), Err(DropReason::UnsupportedProto));
    }

    #[test]
    fn arp() {
        let f = build::arp(
            build::MAC_A,
            crate::wire::ether::BROADCAST,
            crate::wire::arp::operation::REQUEST,
            build::MAC_A,
            [10, 0, 0, 1],
            [0; 6],
            [10, 0, 0, 2],
        );
        let p = parse(&f).unwrap();
        assert!(p.is_arp());
        assert_eq!(p.ip_version, 0);
        assert_eq!(p.src_v4(), [10, 0, 0, 1]);
        assert_eq!(p.dst_v4(), [10, 0, 0, 2]);
        assert_eq!(p.l3_range(), 14..42);
        let mut bad = f.clone();
        bad[14 + 5] = 16; // plen 16
        assert_eq!(parse(&bad), Err(DropReason::ArpIgnored));
        assert_eq!(parse(&f[..41]), Err(DropReason::ArpIgnored));
    }

    #[test]
    fn errors_have_the_right_reason() {
        let f = tcp_spec().build();
        assert_eq!(parse(&f[..13]), Err(DropReason::BadEther));
        assert_eq!(parse(&[]), Err(DropReason::BadEther));
        // IPv4 truncated / total length beyond frame.
        assert_eq!(parse(&f[..30]), Err(DropReason::BadIpv4));
        assert_eq!(parse(&f[..f.len() - 1]), Err(DropReason::BadIpv4));
        let mut v = f.clone();
        v[14] = 0x44; // IHL 4
        assert_eq!(parse(&v), Err(DropReason::BadIpv4));
        // Unknown ethertype; QinQ.
        let mut v = f.clone();
        v[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
        assert_eq!(parse(&v), Err(DropReason::UnsupportedEthertype));
        let mut q = FrameSpec {
            vlan: Some(5),
            ..tcp_spec()
        }
        .build();
        q[16..18].copy_from_slice(&ethertype::VLAN.to_be_bytes());
        assert_eq!(parse(&q), Err(DropReason::UnsupportedEthertype));
        // Tag cut short.
        assert_eq!(parse(&q[..17]), Err(DropReason::BadEther));
        // TCP data offset past the segment.
        let mut v = f.clone();
        v[34 + 12] = 0xf0;
        assert_eq!(parse(&v), Err(DropReason::BadL4));
        // TCP data offset < 5.
        v[34 + 12] = 0x40;
        assert_eq!(parse(&v), Err(DropReason::BadL4));
        // Unknown protocol (GRE); parse_l3 accepts it.
        let mut v = f.clone();
        v[14 + 9] = 47;
        assert_eq!(parse(&v), Err(DropReason::UnsupportedProto));
        assert_eq!(parse_l3(&v).unwrap().proto, 47);
        // IPv4 fragment (MF) and last fragment (offset only).
        let spec = FrameSpec {
            more_frags: true,
            ..tcp_spec()
        };
        assert_eq!(parse(&spec.build()), Err(DropReason::Fragment));
        let spec = FrameSpec {
            frag_offset: 1480,
            ..tcp_spec()
        };
        assert_eq!(parse(&spec.build()), Err(DropReason::Fragment));
        assert!(parse_l3(&spec.build()).unwrap().fragment);
        // UDP length beyond the IP payload.
        let mut u = FrameSpec::default().build();
        u[34 + 4..34 + 6].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(parse(&u), Err(DropReason::BadL4));
        // IPv6 truncated.
        let spec6 = FrameSpec {
            ip6: Some(Ip6Spec::default()),
            ..FrameSpec::default()
        };
        let f6 = spec6.build();
        assert_eq!(parse(&f6[..50]), Err(DropReason::BadIpv6));
        assert_eq!(parse(&f6[..f6.len() - 1]), Err(DropReason::BadIpv6));
    }

    fn valid_frames() -> Vec<Vec<u8>> {
        let mut v = vec![
            tcp_spec().build(),
            FrameSpec::default().build(),
            FrameSpec {
                vlan: Some(7),
                ..tcp_spec()
            }
            .build(),
            FrameSpec {
                l4: L4::Icmp {
                    ty: 8,
                    code: 0,
                    ident: 1,
                    seq: 1,
                },
                ..FrameSpec::default()
            }
            .build(),
            FrameSpec {
                ip6: Some(Ip6Spec::default()),
                ..tcp_spec()
            }
            .build(),
            FrameSpec {
                ip_options: vec![1, 1, 1, 0],
                ..tcp_spec()
            }
            .build(),
        ];
        v.push(build::arp(
            build::MAC_A,
            crate::wire::ether::BROADCAST,
            1,
            build::MAC_A,
            [10, 0, 0, 1],
            [0; 6],
            [10, 0, 0, 2],
        ));
        v
    }

    /// A 3000-byte UDP datagram (IPv4 and IPv6) and a TCP segment cut into
    /// a first buffer of 600 bytes and a tail: the headers are parsed from
    /// the first, the lengths reach into the tail, and the parse describes
    /// the first buffer (its invariants hold there).
    #[test]
    fn a_chained_frame_is_parsed_from_its_first_buffer() {
        for ip6 in [false, true] {
            for tcp in [false, true] {
                let l4 = if tcp {
                    tcp_spec().l4
                } else {
                    L4::Udp {
                        src_port: 5000,
                        dst_port: 53,
                        checksum: true,
                    }
                };
                let f = FrameSpec {
                    ip6: ip6.then(Ip6Spec::default),
                    l4,
                    payload: vec![7; 3000],
                    ..FrameSpec::default()
                }
                .build();
                let whole = parse(&f).unwrap();
                let (first, tail) = (&f[..600], f.len() - 600);
                let (p, beyond) = parse_chained(first, tail).unwrap();
                p.assert_invariants(first);
                assert_eq!(p.ip_end(), 600);
                assert_eq!(beyond, tail);
                assert_eq!((p.src, p.dst), (whole.src, whole.dst));
                assert_eq!((p.src_port, p.dst_port), (whole.src_port, whole.dst_port));
                assert_eq!(p.tcp_flags, whole.tcp_flags);
                assert_eq!(p.payload_off, whole.payload_off);
                assert_eq!(p.ip_end() + beyond, whole.ip_end());
                // Unchained, the first buffer alone is a truncated packet.
                assert!(parse(first).is_err());
                // Without the tail's length, or with the L4 header cut.
                assert!(parse_chained(first, tail - 1).is_err());
                let hdr_end = whole.payload_off as usize;
                assert!(parse_chained(&f[..hdr_end - 1], f.len() - hdr_end + 1).is_err());
                // Whole again: the same as `parse`.
                assert_eq!(parse_chained(&f, 0).unwrap(), (whole, 0));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any frame cut anywhere: what `parse_chained` accepts keeps the
        /// invariants on the first part, never counts more than the tail,
        /// and agrees with `parse` of the whole frame on every header field.
        #[test]
        fn chained_parses_agree_with_the_whole_frame(
            which in any::<prop::sample::Index>(),
            muts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            cut in any::<prop::sample::Index>()) {
            let frames = valid_frames();
            let mut f = frames[which.index(frames.len())].clone();
            for (i, b) in muts { let at = i.index(f.len()); f[at] = b; }
            let at = cut.index(f.len() + 1);
            if let Ok((p, beyond)) = parse_chained(&f[..at], f.len() - at) {
                p.assert_invariants(&f[..at]);
                prop_assert!(beyond <= f.len() - at);
                let whole = parse(&f);
                prop_assert!(whole.is_ok(), "chained accepts what parse refuses: {:?}", whole);
                let whole = whole.unwrap();
                prop_assert_eq!((p.src, p.dst, p.proto), (whole.src, whole.dst, whole.proto));
                prop_assert_eq!((p.src_port, p.dst_port, p.tcp_flags), (whole.src_port, whole.dst_port, whole.tcp_flags));
                prop_assert_eq!(p.ip_end() + beyond, whole.ip_end());
            }
        }

        #[test]
        fn random_bytes_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..200)) {
            for p in [parse(&frame), parse_l3(&frame)].into_iter().flatten() {
                p.assert_invariants(&frame);
            }
        }

        #[test]
        fn random_header_bytes_never_panic(
            et in prop::sample::select(vec![0x0800u16, 0x86dd, 0x0806, 0x8100]),
            inner in prop::sample::select(vec![0x0800u16, 0x86dd, 0x0806]),
            vhl in any::<u8>(),
            rest in proptest::collection::vec(any::<u8>(), 0..120)) {
            // Steer random bytes into the interesting branches.
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(&et.to_be_bytes());
            if et == 0x8100 { frame.extend_from_slice(&[0, 1]); frame.extend_from_slice(&inner.to_be_bytes()); }
            frame.push(vhl);
            frame.extend_from_slice(&rest);
            for p in [parse(&frame), parse_l3(&frame)].into_iter().flatten() {
                p.assert_invariants(&frame);
            }
        }

        #[test]
        fn mutated_valid_frames_never_panic(
            which in any::<prop::sample::Index>(),
            muts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>()) {
            let frames = valid_frames();
            let mut f = frames[which.index(frames.len())].clone();
            for (i, b) in muts { let at = i.index(f.len()); f[at] = b; }
            let len = cut.index(f.len() + 1);
            let f = &f[..len.max(f.len() * 3 / 4)];
            for p in [parse(f), parse_l3(f)].into_iter().flatten() {
                p.assert_invariants(f);
            }
        }

        #[test]
        fn built_frames_parse_back(sp in any::<u16>(), dp in any::<u16>(), src in any::<[u8; 4]>(),
                                   dst in any::<[u8; 4]>(), vlan in proptest::option::of(0u16..4096),
                                   payload in proptest::collection::vec(any::<u8>(), 0..64),
                                   tcp in any::<bool>()) {
            let l4 = if tcp {
                L4::Tcp { src_port: sp, dst_port: dp, seq: 0, ack: 0, flags: flags::ACK, window: 1, options: vec![] }
            } else {
                L4::Udp { src_port: sp, dst_port: dp, checksum: true }
            };
            let spec = FrameSpec { src_ip: src, dst_ip: dst, vlan, l4, payload: payload.clone(), ..FrameSpec::default() };
            let f = spec.build();
            let p = parse(&f).unwrap();
            p.assert_invariants(&f);
            prop_assert_eq!((p.src_v4(), p.dst_v4(), p.src_port, p.dst_port), (src, dst, sp, dp));
            prop_assert_eq!(&f[p.payload_range()], &payload[..]);
            prop_assert_eq!(p.vlan_tci, vlan);
            prop_assert!(build::checksums_ok(&f));
        }
    }
}
