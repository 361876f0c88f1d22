//! UDP datagrams (RFC 768).
//!
//! The buffer should be the IP payload; `new_checked` guarantees: buffer >= 8
//! bytes, 8 <= length field <= buffer length. [`UdpPacket::payload`] stops at
//! the length field. Over IPv4 a checksum of 0 means "none": verification
//! accepts it and every rewrite keeps it 0; a computed 0 is stored as 0xffff.

use super::checksum;
use super::{ip_proto, length_in, need_len, WireError};

/// Header length.
pub const HEADER_LEN: usize = 8;

view! {
    /// Zero-copy view of a UDP datagram.
    UdpPacket {
        /// Source port (0: none).
        src_port / set_src_port: u16 = 0;
        /// Destination port.
        dst_port / set_dst_port: u16 = 2;
        /// Length field (header + payload).
        #[allow(clippy::len_without_is_empty)]
        len / set_len: u16 = 4;
        /// Checksum over the pseudo-header and the datagram (0: none, IPv4 only).
        checksum / set_checksum: u16 = 6;
    }
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// `Truncated` when shorter than 8 bytes or the length field;
    /// `Malformed` for a length field < 8.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        need_len(len, HEADER_LEN)?;
        length_in(self.len() as usize, HEADER_LEN, len)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.len() as usize]
    }
    /// Checksum correct over IPv4 (0 = none is accepted).
    #[inline]
    pub fn verify_checksum_v4(&self, src: [u8; 4], dst: [u8; 4]) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let d = &self.buffer.as_ref()[..self.len() as usize];
        checksum::l4_checksum_v4(src, dst, ip_proto::UDP, d) == 0
    }
    /// Checksum correct over IPv6 (0 is invalid there, RFC 8200 §8.1).
    #[inline]
    pub fn verify_checksum_v6(&self, src: &[u8; 16], dst: &[u8; 16]) -> bool {
        if self.checksum() == 0 {
            return false;
        }
        let d = &self.buffer.as_ref()[..self.len() as usize];
        checksum::l4_checksum_v6(src, dst, ip_proto::UDP, d) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = self.len() as usize;
        &mut self.buffer.as_mut()[HEADER_LEN..l]
    }
    /// Compute and store the checksum over IPv4 (a computed 0 becomes 0xffff).
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: [u8; 4], dst: [u8; 4]) {
        self.set_checksum(0);
        let l = self.len() as usize;
        let c = checksum::l4_checksum_v4(src, dst, ip_proto::UDP, &self.buffer.as_ref()[..l]);
        self.set_checksum(checksum::udp_final(c));
    }
    /// Compute and store the checksum over IPv6 (a computed 0 becomes 0xffff).
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &[u8; 16], dst: &[u8; 16]) {
        self.set_checksum(0);
        let l = self.len() as usize;
        let c = checksum::l4_checksum_v6(src, dst, ip_proto::UDP, &self.buffer.as_ref()[..l]);
        self.set_checksum(checksum::udp_final(c));
    }
    port_rewrites!(
        udp_update16,
        udp_update_addr4,
        udp_update_addr16,
        " (a zero checksum, none, stays 0)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: [u8; 4] = [10, 0, 0, 1];
    const DST: [u8; 4] = [10, 0, 0, 2];

    fn dgram() -> Vec<u8> {
        // 8 + 4 payload + 2 bytes beyond the length field.
        let mut b = vec![0xa5u8; 14];
        let mut p = UdpPacket::new_unchecked(&mut b[..]);
        p.set_src_port(5353);
        p.set_dst_port(53);
        p.set_len(12);
        p.payload_mut().copy_from_slice(b"pgw!");
        p.fill_checksum_v4(SRC, DST);
        b
    }

    #[test]
    fn getters_setters() {
        let b = dgram();
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (5353, 53, 12));
        assert_eq!(p.payload(), b"pgw!");
        assert!(p.verify_checksum_v4(SRC, DST));
        assert!(!p.verify_checksum_v4(SRC, [1, 1, 1, 1]));
    }

    #[test]
    fn zero_checksum_means_none_and_stays_none() {
        let mut b = dgram();
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        p.set_checksum(0);
        assert!(p.verify_checksum_v4(SRC, DST));
        assert!(!p.verify_checksum_v6(&[0; 16], &[0; 16]));
        p.rewrite_src_port(1);
        p.rewrite_dst_port(2);
        p.adjust_checksum_addr_v4(SRC, [9, 9, 9, 9]);
        p.adjust_checksum_addr_v6(&[0; 16], &[1; 16]);
        assert_eq!(p.checksum(), 0);
    }

    #[test]
    fn computed_zero_is_stored_as_ffff() {
        // Find a payload word making the checksum compute to 0.
        let mut b = [0u8; 10];
        let mut p = UdpPacket::new_unchecked(&mut b[..]);
        p.set_len(10);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.fill_checksum_v4(SRC, DST);
        // Setting the payload word to the stored checksum makes the sum 0xffff.
        let c = p.checksum();
        p.payload_mut().copy_from_slice(&c.to_be_bytes());
        p.fill_checksum_v4(SRC, DST);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum_v4(SRC, DST));
        p.fill_checksum_v6(&[0; 16], &[0; 16]);
        assert_ne!(p.checksum(), 0);
        assert!(p.verify_checksum_v6(&[0; 16], &[0; 16]));
    }

    #[test]
    fn malformed_rejected() {
        let b = dgram();
        let e = |b: &[u8]| UdpPacket::new_checked(b).unwrap_err();
        assert_eq!(e(&b[..7]), WireError::Truncated);
        assert_eq!(e(&b[..11]), WireError::Truncated);
        let mut short = b.clone();
        short[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(e(&short), WireError::Malformed);
    }

    proptest! {
        #[test]
        fn rewrites_match_full_checksum(sp in any::<u16>(), dp in any::<u16>(), a in any::<[u8; 4]>(),
                                        payload in proptest::collection::vec(any::<u8>(), 0..30)) {
            let mut b = vec![0u8; 8 + payload.len()];
            let mut p = UdpPacket::new_unchecked(&mut b[..]);
            p.set_len((8 + payload.len()) as u16);
            p.set_src_port(1000);
            p.set_dst_port(2000);
            p.payload_mut().copy_from_slice(&payload);
            p.fill_checksum_v4(SRC, DST);
            p.rewrite_src_port(sp);
            p.rewrite_dst_port(dp);
            p.adjust_checksum_addr_v4(SRC, a);
            prop_assert!(p.checksum() != 0);
            prop_assert!(p.verify_checksum_v4(a, DST));
            let inc = p.checksum();
            p.fill_checksum_v4(a, DST);
            prop_assert_eq!(inc, p.checksum());
        }
    }
}
