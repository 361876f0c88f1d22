//! IPv6 fixed headers (RFC 8200).
//!
//! Only the 40-byte fixed header is modelled. A next header of 44 (Fragment)
//! is detected by [`Ipv6Packet::is_fragment`]; other extension headers are not
//! walked (callers treat them as unsupported, see [`is_extension_header`]).
//! `new_checked` guarantees: buffer >= 40 bytes, version 6,
//! 40 + payload length <= buffer length. Jumbograms are not supported.

use super::{ip_proto, need_len, rd32, wr32, WireError};

/// Fixed header length.
pub const HEADER_LEN: usize = 40;

mod field {
    pub const VER_TC_FLOW: usize = 0;
}

/// Whether `nh` names an extension header (hop-by-hop, routing, fragment,
/// ESP, AH, destination options, mobility, HIP, shim6) rather than an upper
/// layer protocol.
#[inline]
pub fn is_extension_header(nh: u8) -> bool {
    matches!(
        nh,
        ip_proto::HOP_BY_HOP
            | ip_proto::IPV6_ROUTING
            | ip_proto::IPV6_FRAGMENT
            | ip_proto::ESP
            | ip_proto::AH
            | ip_proto::IPV6_DEST_OPTS
            | 135
            | 139
            | 140
    )
}

/// Most extension headers [`walk_extension_headers`] looks at.
pub const MAX_EXT_HEADERS: usize = 8;

/// Where [`walk_extension_headers`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtWalk {
    /// The upper-layer header (or an extension header not skipped: ESP, AH,
    /// mobility, ...) `nh` starts `off` bytes into the payload.
    Upper { nh: u8, off: usize },
    /// A Fragment header starts `off` bytes into the payload.
    Fragment { off: usize },
    /// A Routing header with Segments Left != 0 starts `off` bytes into the
    /// payload (the packet is not for the next hop to rewrite).
    ActiveRouting { off: usize },
    /// A header runs past the payload, or more than [`MAX_EXT_HEADERS`].
    Malformed,
}

/// Skip the extension headers a translator ignores (RFC 7915 §5.1):
/// Hop-by-Hop Options, Destination Options, and Routing headers whose
/// Segments Left is 0. `payload` is the IPv6 payload, `nh` the fixed
/// header's Next Header. Never panics.
pub fn walk_extension_headers(payload: &[u8], mut nh: u8) -> ExtWalk {
    let mut off = 0usize;
    for _ in 0..=MAX_EXT_HEADERS {
        match nh {
            ip_proto::HOP_BY_HOP | ip_proto::IPV6_DEST_OPTS | ip_proto::IPV6_ROUTING => {
                let Some(h) = payload.get(off..off + 8) else {
                    return ExtWalk::Malformed;
                };
                if nh == ip_proto::IPV6_ROUTING && h[3] != 0 {
                    return ExtWalk::ActiveRouting { off };
                }
                let len = (h[1] as usize + 1) * 8;
                if off + len > payload.len() {
                    return ExtWalk::Malformed;
                }
                nh = h[0];
                off += len;
            }
            ip_proto::IPV6_FRAGMENT => return ExtWalk::Fragment { off },
            _ => return ExtWalk::Upper { nh, off },
        }
    }
    ExtWalk::Malformed
}

view! {
    /// Zero-copy view of an IPv6 packet.
    Ipv6Packet {
        /// Payload length field (extension headers included).
        payload_len / set_payload_len: u16 = 4;
        /// Protocol or extension header after the fixed header.
        next_header / set_next_header: u8 = 6;
        /// Hop limit (IPv4's TTL).
        hop_limit / set_hop_limit: u8 = 7;
        /// Source address.
        src_addr / set_src_addr: [u8; 16] = 8;
        /// Destination address.
        dst_addr / set_dst_addr: [u8; 16] = 24;
    }
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// `Truncated` when shorter than the header or the payload length says;
    /// `Malformed` for a version other than 6.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        need_len(len, HEADER_LEN)?;
        if self.version() != 6 {
            return Err(WireError::Malformed);
        }
        need_len(len, self.total_len())
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (rd32(self.buffer.as_ref(), field::VER_TC_FLOW) >> 20) as u8
    }
    #[inline]
    pub fn flow_label(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }
    /// 40 + payload length.
    #[inline]
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len() as usize
    }
    /// Next header is a Fragment header (44).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.next_header() == ip_proto::IPV6_FRAGMENT
    }
    /// The payload up to the payload length (padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Set version 6, traffic class and flow label.
    #[inline]
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let v = (6u32 << 28) | ((traffic_class as u32) << 20) | (flow_label & 0x000f_ffff);
        wr32(self.buffer.as_mut(), field::VER_TC_FLOW, v);
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
    /// Decrement the hop limit (no header checksum in IPv6). Returns `false`
    /// and changes nothing when it would reach zero.
    #[inline]
    pub fn decrement_hop_limit(&mut self) -> bool {
        let h = self.hop_limit();
        if h <= 1 {
            return false;
        }
        self.set_hop_limit(h - 1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt() -> Vec<u8> {
        let mut b = vec![0xa5u8; 40 + 8 + 3];
        let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
        p.set_version_tc_flow(0xb8, 0x12345);
        p.set_payload_len(8);
        p.set_next_header(ip_proto::UDP);
        p.set_hop_limit(64);
        p.set_src_addr([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.set_dst_addr([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        b
    }

    #[test]
    fn getters_and_setters() {
        let mut b = pkt();
        let mut p = Ipv6Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.total_len(), 48);
        assert_eq!(p.next_header(), 17);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr()[15], 1);
        assert_eq!(p.dst_addr()[15], 2);
        assert_eq!(p.payload().len(), 8);
        assert!(!p.is_fragment());
        assert!(p.decrement_hop_limit());
        assert_eq!(p.hop_limit(), 63);
        p.set_hop_limit(1);
        assert!(!p.decrement_hop_limit());
        p.set_next_header(ip_proto::IPV6_FRAGMENT);
        assert!(p.is_fragment());
        assert!(is_extension_header(p.next_header()));
        assert!(!is_extension_header(ip_proto::TCP));
        p.payload_mut()[0] = 0x77;
        assert_eq!(b[40], 0x77);
    }

    #[test]
    fn extension_headers_are_walked() {
        use ip_proto::*;
        // Hop-by-hop (8 bytes) -> destination options (16) -> TCP.
        let mut p = vec![0u8; 8 + 16 + 20];
        p[0] = IPV6_DEST_OPTS;
        p[8] = TCP;
        p[9] = 1;
        assert_eq!(
            walk_extension_headers(&p, HOP_BY_HOP),
            ExtWalk::Upper { nh: TCP, off: 24 }
        );
        assert_eq!(
            walk_extension_headers(&p, UDP),
            ExtWalk::Upper { nh: UDP, off: 0 }
        );
        // Routing header, segments left 0 then 1.
        let mut r = vec![0u8; 8 + 8];
        r[0] = IPV6_FRAGMENT;
        assert_eq!(
            walk_extension_headers(&r, IPV6_ROUTING),
            ExtWalk::Fragment { off: 8 }
        );
        r[3] = 1;
        assert_eq!(
            walk_extension_headers(&r, IPV6_ROUTING),
            ExtWalk::ActiveRouting { off: 0 }
        );
        // Length past the payload; truncated header; a chain too long.
        let mut t = vec![0u8; 8];
        t[1] = 1;
        assert_eq!(walk_extension_headers(&t, HOP_BY_HOP), ExtWalk::Malformed);
        assert_eq!(
            walk_extension_headers(&t[..7], HOP_BY_HOP),
            ExtWalk::Malformed
        );
        let long = vec![0u8; 8 * (MAX_EXT_HEADERS + 2)];
        assert_eq!(
            walk_extension_headers(&long, HOP_BY_HOP),
            ExtWalk::Malformed
        );
        assert_eq!(
            walk_extension_headers(&[], ESP),
            ExtWalk::Upper { nh: ESP, off: 0 }
        );
    }

    #[test]
    fn malformed_rejected() {
        let b = pkt();
        let e = |b: &[u8]| Ipv6Packet::new_checked(b).unwrap_err();
        assert_eq!(e(&b[..39]), WireError::Truncated);
        assert_eq!(e(&b[..47]), WireError::Truncated);
        assert!(Ipv6Packet::new_checked(&b[..48]).is_ok());
        let mut v4 = b.clone();
        v4[0] = 0x45;
        assert_eq!(e(&v4), WireError::Malformed);
    }
}
