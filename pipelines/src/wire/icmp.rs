//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) messages, echo fields included.
//!
//! Both share the 8-byte layout `type(1) code(1) checksum(2) rest(4)`; for
//! echo request/reply `rest` is `identifier(2) sequence(2)`. The buffer must be
//! exactly the ICMP message (the IP payload): the checksum covers all of it.
//! ICMPv4's checksum has no pseudo-header, ICMPv6's has one.
//! `new_checked` guarantees a buffer of at least 8 bytes.

use super::checksum;
use super::{ip_proto, need_len, WireError};

/// Header length (echo identifier and sequence included).
pub const HEADER_LEN: usize = 8;

/// ICMPv4 message types.
pub mod v4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
}

/// ICMPv6 message types.
pub mod v6 {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

view! {
    /// Zero-copy view of an ICMPv4 or ICMPv6 message.
    IcmpPacket {
        /// Message type (see [`v4`], [`v6`]).
        msg_type / set_msg_type: u8 = 0;
        /// Code, by type.
        msg_code / set_msg_code: u8 = 1;
        /// Checksum (over a pseudo-header too for ICMPv6).
        checksum / set_checksum: u16 = 2;
        /// Echo identifier (meaningful for echo request/reply only).
        echo_ident / set_echo_ident: u16 = 4;
        /// Echo sequence number (meaningful for echo request/reply only).
        echo_seq_no / set_echo_seq_no: u16 = 6;
    }
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        need_len(self.buffer.as_ref().len(), HEADER_LEN)
    }

    /// ICMPv4 echo request or reply.
    #[inline]
    pub fn is_echo_v4(&self) -> bool {
        matches!(self.msg_type(), v4::ECHO_REQUEST | v4::ECHO_REPLY)
    }
    /// ICMPv6 echo request or reply.
    #[inline]
    pub fn is_echo_v6(&self) -> bool {
        matches!(self.msg_type(), v6::ECHO_REQUEST | v6::ECHO_REPLY)
    }
    /// Bytes after the 8-byte header (echo data; the quoted packet of errors).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    /// ICMPv4 checksum correct.
    #[inline]
    pub fn verify_checksum_v4(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
    /// ICMPv6 checksum correct.
    #[inline]
    pub fn verify_checksum_v6(&self, src: &[u8; 16], dst: &[u8; 16]) -> bool {
        checksum::l4_checksum_v6(src, dst, ip_proto::ICMPV6, self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
    /// Compute and store the ICMPv4 checksum.
    #[inline]
    pub fn fill_checksum_v4(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
    /// Compute and store the ICMPv6 checksum.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &[u8; 16], dst: &[u8; 16]) {
        self.set_checksum(0);
        let c = checksum::l4_checksum_v6(src, dst, ip_proto::ICMPV6, self.buffer.as_ref());
        self.set_checksum(c);
    }
    /// Replace the echo identifier, updating the checksum incrementally.
    #[inline]
    pub fn rewrite_echo_ident(&mut self, new: u16) {
        let c = checksum::update16(self.checksum(), self.echo_ident(), new);
        self.set_echo_ident(new);
        self.set_checksum(c);
    }
    /// Turn an echo request into the matching reply in place (type and
    /// checksum; identifier, sequence and data stay). `v6` selects ICMPv6
    /// types; ICMPv6's pseudo-header is unchanged when the caller swaps the
    /// IP addresses, so the incremental update is exact in both cases.
    #[inline]
    pub fn echo_request_to_reply(&mut self, v6: bool) {
        let (req, rep) = if v6 {
            (v6::ECHO_REQUEST, v6::ECHO_REPLY)
        } else {
            (v4::ECHO_REQUEST, v4::ECHO_REPLY)
        };
        let code = self.msg_code() as u16;
        let c = checksum::update16(
            self.checksum(),
            ((req as u16) << 8) | code,
            ((rep as u16) << 8) | code,
        );
        self.set_msg_type(rep);
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ping` echo request, id 0x1234 seq 1, 4 bytes of data.
    fn echo() -> Vec<u8> {
        let mut b = vec![0xa5u8; 12];
        let mut p = IcmpPacket::new_unchecked(&mut b[..]);
        p.set_msg_type(v4::ECHO_REQUEST);
        p.set_msg_code(0);
        p.set_echo_ident(0x1234);
        p.set_echo_seq_no(1);
        p.payload_mut().copy_from_slice(b"ping");
        p.fill_checksum_v4();
        b
    }

    #[test]
    fn getters_setters() {
        let b = echo();
        let p = IcmpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), v4::ECHO_REQUEST);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(p.echo_seq_no(), 1);
        assert!(p.is_echo_v4() && !p.is_echo_v6());
        assert_eq!(p.payload(), b"ping");
        assert!(p.verify_checksum_v4());
    }

    #[test]
    fn known_vector() {
        // Echo request type 8 code 0 id 1 seq 1, no data: sum 0x0802 -> 0xf7fd.
        let mut b = [8u8, 0, 0, 0, 0, 1, 0, 1];
        IcmpPacket::new_checked(&mut b[..])
            .unwrap()
            .fill_checksum_v4();
        assert_eq!(&b[2..4], &[0xf7, 0xfd]);
    }

    #[test]
    fn incremental_rewrites() {
        let mut b = echo();
        let mut p = IcmpPacket::new_checked(&mut b[..]).unwrap();
        p.rewrite_echo_ident(0xbeef);
        assert_eq!(p.echo_ident(), 0xbeef);
        assert!(p.verify_checksum_v4());
        p.echo_request_to_reply(false);
        assert_eq!(p.msg_type(), v4::ECHO_REPLY);
        assert!(p.verify_checksum_v4());

        let (s, d) = ([0x20u8; 16], [0x30u8; 16]);
        p.set_msg_type(v6::ECHO_REQUEST);
        p.fill_checksum_v6(&s, &d);
        assert!(p.is_echo_v6());
        assert!(p.verify_checksum_v6(&s, &d));
        p.echo_request_to_reply(true);
        assert_eq!(p.msg_type(), v6::ECHO_REPLY);
        assert!(p.verify_checksum_v6(&d, &s));
    }

    #[test]
    fn short_rejected() {
        assert_eq!(
            IcmpPacket::new_checked(&[8u8, 0, 0, 0, 0, 0, 0][..]).unwrap_err(),
            WireError::Truncated
        );
    }
}
