//! IPv4 headers (RFC 791), options included.
//!
//! `new_checked` guarantees: buffer >= 20 bytes, version 4, IHL >= 5,
//! header length <= total length <= buffer length. The buffer may be longer
//! than the total length (Ethernet padding); [`Ipv4Packet::payload`] stops at
//! the total length.

use super::checksum;
use super::{length_in, need_len, rd16, wr16, WireError};

/// Minimum (option-less) header length.
pub const HEADER_LEN: usize = 20;
/// Maximum header length (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const FLG_OFF: usize = 6;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

view! {
    /// Zero-copy view of an IPv4 packet.
    Ipv4Packet {
        /// Total length field (header + payload).
        total_len / set_total_len: u16 = 2;
        /// Identification (fragments of one datagram share it).
        ident / set_ident: u16 = 4;
        /// Time to live.
        ttl / set_ttl: u8 = 8;
        /// Payload protocol (see [`super::ip_proto`]).
        protocol / set_protocol: u8 = 9;
        /// Header checksum.
        checksum / set_checksum: u16 = 10;
        /// Source address.
        src_addr / set_src_addr: [u8; 4] = 12;
        /// Destination address.
        dst_addr / set_dst_addr: [u8; 4] = 16;
    }
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// `Truncated` when the buffer is shorter than the header or the total
    /// length; `Malformed` for a version other than 4, IHL < 5, or a total
    /// length smaller than the header.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        need_len(len, HEADER_LEN)?;
        if self.version() != 4 {
            return Err(WireError::Malformed);
        }
        let hl = self.header_len();
        length_in(hl, HEADER_LEN, len)?;
        length_in(self.total_len() as usize, hl, len)
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL x 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }
    #[inline]
    pub fn dont_frag(&self) -> bool {
        rd16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DF != 0
    }
    #[inline]
    pub fn more_frags(&self) -> bool {
        rd16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_MF != 0
    }
    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (rd16(self.buffer.as_ref(), field::FLG_OFF) & OFFSET_MASK) << 3
    }
    /// MF set or offset non-zero: this packet is (part of) a fragment.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        rd16(self.buffer.as_ref(), field::FLG_OFF) & (FLAG_MF | OFFSET_MASK) != 0
    }
    /// The option bytes (empty when IHL = 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// The payload up to the total length (padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len() as usize]
    }
    /// Whether the header checksum is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Set version 4 and the header length (a multiple of 4, 20..=60).
    #[inline]
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }
    #[inline]
    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = (dscp << 2) | (ecn & 3);
    }
    /// Flags and fragment offset (`offset` in bytes, a multiple of 8).
    #[inline]
    pub fn set_flags_and_frag_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        wr16(self.buffer.as_mut(), field::FLG_OFF, v);
    }
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..hl]
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), self.total_len() as usize);
        &mut self.buffer.as_mut()[hl..tl]
    }
    /// Compute and store the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(&self.buffer.as_ref()[..self.header_len()]);
        self.set_checksum(c);
    }

    /// Replace the source address and update the header checksum
    /// incrementally. (The L4 checksum covers the address too: update it with
    /// the L4 view's `adjust_checksum_addr_v4`.)
    #[inline]
    pub fn rewrite_src_addr(&mut self, new: [u8; 4]) {
        let c = checksum::update_addr4(self.checksum(), self.src_addr(), new);
        self.set_src_addr(new);
        self.set_checksum(c);
    }
    /// As [`rewrite_src_addr`](Self::rewrite_src_addr) for the destination.
    #[inline]
    pub fn rewrite_dst_addr(&mut self, new: [u8; 4]) {
        let c = checksum::update_addr4(self.checksum(), self.dst_addr(), new);
        self.set_dst_addr(new);
        self.set_checksum(c);
    }
    /// Decrement the TTL with an incremental checksum update. Returns `false`
    /// and changes nothing when the TTL would reach zero (TTL <= 1).
    #[inline]
    pub fn decrement_ttl(&mut self) -> bool {
        let ttl = self.ttl();
        if ttl <= 1 {
            return false;
        }
        let proto = self.protocol() as u16;
        let old = ((ttl as u16) << 8) | proto;
        let new = (((ttl - 1) as u16) << 8) | proto;
        let c = checksum::update16(self.checksum(), old, new);
        self.set_ttl(ttl - 1);
        self.set_checksum(c);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 20-byte header + 4 payload bytes + 2 bytes of Ethernet padding.
    const PKT: [u8; 26] = [
        0x45, 0x00, 0x00, 0x18, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 10, 0, 0, 1, 10, 0,
        0, 2, 0xde, 0xad, 0xbe, 0xef, 0xa5, 0xa5,
    ];

    fn pkt() -> Vec<u8> {
        let mut b = PKT.to_vec();
        Ipv4Packet::new_checked(&mut b[..]).unwrap().fill_checksum();
        b
    }

    #[test]
    fn getters() {
        let b = pkt();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 24);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.src_addr(), [10, 0, 0, 1]);
        assert_eq!(p.dst_addr(), [10, 0, 0, 2]);
        assert_eq!(p.options(), &[] as &[u8]);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn setters_round_trip() {
        let mut b = pkt();
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_dscp_ecn(46, 1);
        p.set_ident(7);
        p.set_flags_and_frag_offset(false, true, 1480);
        p.set_ttl(3);
        p.set_protocol(6);
        p.set_src_addr([192, 0, 2, 1]);
        p.set_dst_addr([198, 51, 100, 7]);
        p.fill_checksum();
        assert_eq!((p.dscp(), p.ecn()), (46, 1));
        assert_eq!(p.ident(), 7);
        assert!(!p.dont_frag() && p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment());
        assert_eq!((p.ttl(), p.protocol()), (3, 6));
        assert_eq!(p.src_addr(), [192, 0, 2, 1]);
        assert_eq!(p.dst_addr(), [198, 51, 100, 7]);
        assert!(p.verify_checksum());
        // Offset alone (last fragment) is a fragment too.
        p.set_flags_and_frag_offset(false, false, 8);
        assert!(p.is_fragment());
        p.set_flags_and_frag_offset(true, false, 0);
        assert!(!p.is_fragment());
    }

    #[test]
    fn incremental_rewrites_keep_checksum_valid() {
        let mut b = pkt();
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.rewrite_src_addr([100, 64, 1, 2]);
        p.rewrite_dst_addr([10, 33, 0, 1]);
        assert!(p.decrement_ttl());
        assert_eq!(p.ttl(), 63);
        assert!(p.verify_checksum());
        let inc = p.checksum();
        p.fill_checksum();
        assert_eq!(p.checksum(), inc);
        p.set_ttl(1);
        p.fill_checksum();
        assert!(!p.decrement_ttl());
        assert_eq!(p.ttl(), 1);
    }

    #[test]
    fn options_visible() {
        let mut b = [0xa5u8; 28];
        b[..20].copy_from_slice(&PKT[..20]);
        b[0] = 0x46; // IHL 6
        b[2..4].copy_from_slice(&28u16.to_be_bytes());
        b[20..24].copy_from_slice(&[0x01, 0x01, 0x01, 0x00]);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload().len(), 4);
    }

    #[test]
    fn malformed_rejected() {
        let b = pkt();
        let e = |b: &[u8]| Ipv4Packet::new_checked(b).unwrap_err();
        assert_eq!(e(&b[..19]), WireError::Truncated);
        // total length 24 > buffer 23
        assert_eq!(e(&b[..23]), WireError::Truncated);
        let mut v6 = b.clone();
        v6[0] = 0x65;
        assert_eq!(e(&v6), WireError::Malformed);
        let mut ihl4 = b.clone();
        ihl4[0] = 0x44;
        assert_eq!(e(&ihl4), WireError::Malformed);
        let mut ihl15 = b.clone();
        ihl15[0] = 0x4f; // 60-byte header in a 26-byte buffer
        assert_eq!(e(&ihl15), WireError::Truncated);
        let mut short_total = b.clone();
        short_total[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(e(&short_total), WireError::Malformed);
    }
}
