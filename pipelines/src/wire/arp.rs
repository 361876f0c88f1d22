//! ARP over Ethernet for IPv4 (RFC 826): the 28-byte packet after the
//! Ethernet header.
//!
//! `new_checked` only checks the length (28 bytes); the fixed field positions
//! assume `hlen = 6, plen = 4`, so check [`ArpPacket::is_ethernet_ipv4`]
//! before trusting the addresses.

use super::{need_len, rd16, wr16, MacAddr, WireError};

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// `htype` of Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

/// ARP operations.
pub mod operation {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
}

view! {
    /// Zero-copy view of an ARP packet.
    ArpPacket {
        /// [`operation::REQUEST`] or [`operation::REPLY`] (others exist: RARP...).
        operation / set_operation: u16 = 6;
        /// Sender MAC.
        sender_hardware_addr / set_sender_hardware_addr: MacAddr = 8;
        /// Sender IPv4 address.
        sender_protocol_addr / set_sender_protocol_addr: [u8; 4] = 14;
        /// Target MAC (zero in a request).
        target_hardware_addr / set_target_hardware_addr: MacAddr = 18;
        /// Target IPv4 address.
        target_protocol_addr / set_target_protocol_addr: [u8; 4] = 24;
    }
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        need_len(self.buffer.as_ref().len(), PACKET_LEN)
    }

    #[inline]
    pub fn hardware_type(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::HTYPE)
    }
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::PTYPE)
    }
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// `htype = 1, ptype = 0x0800, hlen = 6, plen = 4`.
    #[inline]
    pub fn is_ethernet_ipv4(&self) -> bool {
        self.hardware_type() == HTYPE_ETHERNET
            && self.protocol_type() == super::ether::ethertype::IPV4
            && self.hardware_len() == 6
            && self.protocol_len() == 4
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Write `htype = 1, ptype = 0x0800, hlen = 6, plen = 4`.
    #[inline]
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        wr16(b, field::HTYPE, HTYPE_ETHERNET);
        wr16(b, field::PTYPE, super::ether::ethertype::IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype ptype hlen plen oper
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, // sha spa
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 2, // tha tpa
    ];

    #[test]
    fn getters() {
        let p = ArpPacket::new_checked(&REQ[..]).unwrap();
        assert!(p.is_ethernet_ipv4());
        assert_eq!(p.operation(), operation::REQUEST);
        assert_eq!(p.sender_hardware_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(p.sender_protocol_addr(), [10, 0, 0, 1]);
        assert_eq!(p.target_hardware_addr(), [0; 6]);
        assert_eq!(p.target_protocol_addr(), [10, 0, 0, 2]);
    }

    #[test]
    fn setters_round_trip() {
        let mut b = [0xa5u8; 28];
        let mut p = ArpPacket::new_checked(&mut b[..]).unwrap();
        assert!(!p.is_ethernet_ipv4());
        p.set_ethernet_ipv4();
        p.set_operation(operation::REQUEST);
        p.set_sender_hardware_addr([2, 0, 0, 0, 0, 1]);
        p.set_sender_protocol_addr([10, 0, 0, 1]);
        p.set_target_hardware_addr([0; 6]);
        p.set_target_protocol_addr([10, 0, 0, 2]);
        assert_eq!(b, REQ);
    }

    #[test]
    fn short_rejected() {
        assert_eq!(
            ArpPacket::new_checked(&REQ[..27]).unwrap_err(),
            WireError::Truncated
        );
        let mut bad = REQ;
        bad[4] = 8; // hlen 8
        assert!(!ArpPacket::new_checked(&bad[..]).unwrap().is_ethernet_ipv4());
    }
}
