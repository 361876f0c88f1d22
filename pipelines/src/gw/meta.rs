//! The parse stage of the GW: what each packet of a burst is, as a compact
//! record the later stages read instead of the frame.
//!
//! IPv4 addresses stay 4 bytes. The common frame — untagged IPv4 without
//! options, TCP, UDP or ICMP echo — is read by [`fast_v4`] in a few loads;
//! anything else (802.1Q, IP options, IPv6, malformed, ICMP errors) takes
//! the general [`wire::parse`] and [`Meta::from_parsed`], which agree with
//! the fast path on every frame it accepts (a property test).

use crate::wire::{self, ip_proto, Parsed};

/// What a packet is to the GW.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Not for the GW stages (a verdict is already set).
    #[default]
    None,
    /// IPv4 subscriber → anything (NAT44).
    Up4,
    /// IPv6 subscriber → the NAT64 prefix (`dst` = the embedded address).
    Up64,
    /// IPv6 subscriber → an IPv6 VIP (`aux` = its group).
    Up66,
    /// Server → pool address (NAT44 and NAT64 connections).
    Down4,
    /// IPv6 server → pool6 address (`aux` = the pool index).
    Down66,
}

impl Kind {
    #[inline(always)]
    pub fn is_up(self) -> bool {
        matches!(self, Kind::Up4 | Kind::Up64 | Kind::Up66)
    }
    #[inline(always)]
    pub fn is_down(self) -> bool {
        matches!(self, Kind::Down4 | Kind::Down66)
    }
}

/// One packet of a burst, as the GW stages see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    /// Protocol on the wire (IPv4 protocol / IPv6 next header).
    pub proto: u8,
    pub tcp_flags: u8,
    pub ttl: u8,
    /// ICMP / ICMPv6 type (echo only on this path).
    pub icmp_type: u8,
    /// Offsets: L3 header, L4 header, L4 payload.
    pub l3: u8,
    pub l4: u8,
    pub payload: u8,
    /// A first fragment (offset 0; IPv4 with MF, or IPv6 with a Fragment
    /// header, `l4` past it): its translation is kept for the rest of the
    /// datagram ([`super::frag`]).
    pub frag: bool,
    /// End of the IP packet (padding excluded); of a chained frame, the
    /// end of its first buffer (what the stages read and rewrite).
    pub end: u16,
    /// Bytes of the IP packet in the later buffers of a chained frame (0
    /// for a frame in one buffer): counted, never read.
    pub tail: u16,
    /// IPv4 source and destination; IPv6: the last 4 bytes of the source,
    /// and the embedded IPv4 destination (NAT64) or the last 4 bytes (NAT66).
    pub src: [u8; 4],
    pub dst: [u8; 4],
    /// Ports; ICMP echo: the identifier in both.
    pub sport: u16,
    pub dport: u16,
    /// Up66: the VIP's group; Down66: the pool index; down: the key index.
    pub aux: u32,
    /// Up: the tuple hash.
    pub h: u64,
    /// The connection's entry, once found ([`super::entry::NONE`] if not).
    pub e: u32,
}

impl Meta {
    /// The fields [`wire::parse`] found (kind and the rest are the
    /// caller's).
    pub fn from_parsed(p: &Parsed) -> Meta {
        Meta {
            kind: Kind::None,
            proto: p.proto,
            tcp_flags: p.tcp_flags,
            ttl: p.ttl,
            icmp_type: p.icmp_type,
            l3: p.l3_off as u8,
            l4: p.l4_off as u8,
            payload: p.payload_off as u8,
            frag: false,
            end: p.ip_end() as u16,
            tail: 0,
            src: p.src_v4(),
            dst: p.dst_v4(),
            sport: p.src_port,
            dport: p.dst_port,
            aux: 0,
            h: 0,
            e: super::entry::NONE,
        }
    }

    /// Length of the L4 payload up to `end` (TCP: the segment's data; of a
    /// chained frame, what its first buffer holds).
    #[inline(always)]
    pub fn payload_len(&self) -> usize {
        self.end as usize - self.payload as usize
    }
    /// IP length (header + payload), of a chained frame too.
    #[inline(always)]
    pub fn ip_len(&self) -> usize {
        self.end as usize - self.l3 as usize + self.tail as usize
    }
}

#[inline(always)]
fn be16(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

/// The common frame in a few loads: untagged IPv4 without options, not a
/// fragment, TCP (data offset sane), UDP (length sane) or ICMP echo; lengths
/// consistent with the frame. `None`: take [`wire::parse`] (which may accept
/// it, or name the drop).
#[inline]
pub fn fast_v4(f: &[u8]) -> Option<Meta> {
    if f.len() < 34 + 8 || f[12] != 0x08 || f[13] != 0x00 || f[14] != 0x45 {
        return None;
    }
    let ip: &[u8; 20] = f[14..34].try_into().ok()?;
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    // not a fragment (MF clear, offset 0; DF may be set)
    if ip[6] & 0x3f != 0 || ip[7] != 0 || total < 20 + 8 || 14 + total > f.len() {
        return None;
    }
    let end = 14 + total;
    let proto = ip[9];
    let mut m = Meta {
        kind: Kind::None,
        proto,
        tcp_flags: 0,
        ttl: ip[8],
        icmp_type: 0,
        l3: 14,
        l4: 34,
        payload: 0,
        frag: false,
        end: end as u16,
        tail: 0,
        src: [ip[12], ip[13], ip[14], ip[15]],
        dst: [ip[16], ip[17], ip[18], ip[19]],
        sport: be16(f, 34),
        dport: be16(f, 36),
        aux: 0,
        h: 0,
        e: super::entry::NONE,
    };
    match proto {
        ip_proto::TCP => {
            // The TCP header must be within the IP length before its data
            // offset is read (a frame may end right after 8 bytes of it).
            if total < 20 + 20 {
                return None;
            }
            let doff = (f[34 + 12] >> 4) as usize * 4;
            if doff < 20 || 34 + doff > end {
                return None;
            }
            m.tcp_flags = f[34 + 13];
            m.payload = (34 + doff) as u8;
        }
        ip_proto::UDP => {
            let ulen = be16(f, 38) as usize;
            if ulen < 8 || 34 + ulen > end {
                return None;
            }
            m.payload = 42;
        }
        ip_proto::ICMP => {
            let ty = f[34];
            if ty != wire::icmp::v4::ECHO_REQUEST && ty != wire::icmp::v4::ECHO_REPLY {
                return None;
            }
            m.icmp_type = ty;
            m.sport = be16(f, 38);
            m.dport = m.sport;
            m.payload = 42;
        }
        _ => return None,
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::build::{FrameSpec, L4};
    use proptest::prelude::*;

    fn agree(f: &[u8]) {
        if let Some(m) = fast_v4(f) {
            let p = wire::parse(f).expect("the fast path accepted what parse refuses");
            let mut want = Meta::from_parsed(&p);
            want.e = m.e;
            assert_eq!(m, want, "fast path and parse disagree on {f:02x?}");
        }
    }

    /// Found by the fuzz harness (gw_chain): an IPv4/TCP frame of 44 bytes
    /// whose IP total length (30) covers only 10 bytes of TCP header made
    /// the fast path read the data offset at byte 46, past the frame.
    #[test]
    fn a_frame_ending_inside_the_tcp_header_is_refused_not_read_past() {
        let full = FrameSpec::tcp(1000, 80, 0x02).build();
        for ip_total in 28u16..40 {
            for extra in 0..(40 - ip_total as usize) {
                let n = 14 + ip_total as usize + extra;
                let mut f = full[..n].to_vec();
                f[16..18].copy_from_slice(&ip_total.to_be_bytes());
                assert_eq!(fast_v4(&f), None, "{n} bytes, IP total {ip_total}");
                agree(&f);
            }
        }
    }

    #[test]
    fn the_common_frames_take_the_fast_path() {
        for l4 in [
            L4::Tcp {
                src_port: 1,
                dst_port: 2,
                seq: 3,
                ack: 4,
                flags: 0x12,
                window: 5,
                options: vec![2, 4, 5, 0xb4],
            },
            L4::Udp {
                src_port: 1,
                dst_port: 2,
                checksum: true,
            },
            L4::Icmp {
                ty: 8,
                code: 0,
                ident: 7,
                seq: 1,
            },
        ] {
            let f = FrameSpec {
                l4,
                ..FrameSpec::default()
            }
            .build();
            assert!(fast_v4(&f).is_some());
            agree(&f);
        }
        let tagged = FrameSpec {
            vlan: Some(3),
            ..FrameSpec::default()
        }
        .build();
        assert!(fast_v4(&tagged).is_none(), "802.1Q takes the general parse");
    }

    proptest! {
        /// Whatever the bytes (a real frame, mutated), the fast path either
        /// declines or says exactly what `wire::parse` says.
        #[test]
        fn fast_path_agrees_with_parse(
            proto in 0u8..3,
            payload in proptest::collection::vec(any::<u8>(), 0..40),
            flips in proptest::collection::vec((0usize..80, any::<u8>()), 0..4),
            pad in 0usize..8,
        ) {
            let l4 = match proto {
                0 => L4::Tcp { src_port: 40000, dst_port: 80, seq: 1, ack: 2, flags: 0x18, window: 9, options: vec![] },
                1 => L4::Udp { src_port: 5353, dst_port: 53, checksum: true },
                _ => L4::Icmp { ty: 0, code: 0, ident: 9, seq: 9 },
            };
            let mut f = FrameSpec { l4, payload, ..FrameSpec::default() }.build();
            f.extend(std::iter::repeat_n(0xa5, pad));
            for (at, b) in flips {
                if at < f.len() {
                    f[at] = b;
                }
            }
            agree(&f);
        }
    }
}
