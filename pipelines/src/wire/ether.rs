//! Ethernet II frames, with at most one 802.1Q tag.
//!
//! ```text
//! untagged:  dst(6) src(6) ethertype(2) payload
//! tagged:    dst(6) src(6) 0x8100(2) TCI(2) ethertype(2) payload
//! ```
//! [`EthernetFrame::ethertype`] is the payload's ethertype (after the tag, if
//! any); [`EthernetFrame::header_len`] is 14 or 18. A second tag (QinQ) is
//! not unwrapped: `ethertype()` then returns `0x8100`/`0x88a8`, which callers
//! treat as unsupported.

use super::{need_len, rd16, wr16, MacAddr, WireError};

/// Ethertypes.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86dd;
    pub const QINQ: u16 = 0x88a8;
}

/// Untagged header length.
pub const HEADER_LEN: usize = 14;
/// Length of one 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;
/// `ff:ff:ff:ff:ff:ff`.
pub const BROADCAST: MacAddr = [0xff; 6];

mod field {
    pub const ETHERTYPE: usize = 12;
    pub const TCI: usize = 14;
    pub const INNER_ETHERTYPE: usize = 16;
}

/// Broadcast address.
#[inline]
pub fn is_broadcast(mac: &MacAddr) -> bool {
    *mac == BROADCAST
}

/// Group bit set (multicast or broadcast).
#[inline]
pub fn is_multicast(mac: &MacAddr) -> bool {
    mac[0] & 1 != 0
}

view! {
    /// Zero-copy view of an Ethernet frame.
    EthernetFrame {
        /// Destination MAC.
        dst_addr / set_dst_addr: MacAddr = 0;
        /// Source MAC.
        src_addr / set_src_addr: MacAddr = 6;
    }
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// `Truncated` if the buffer cannot hold the header, tag included.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        need_len(b.len(), HEADER_LEN)?;
        if rd16(b, field::ETHERTYPE) == ethertype::VLAN {
            need_len(b.len(), HEADER_LEN + VLAN_TAG_LEN)?;
        }
        Ok(())
    }

    /// The ethertype field right after the addresses (`0x8100` when tagged).
    #[inline]
    pub fn outer_ethertype(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Whether the frame carries an 802.1Q tag.
    #[inline]
    pub fn is_tagged(&self) -> bool {
        self.outer_ethertype() == ethertype::VLAN
    }

    /// The 802.1Q tag control information (PCP, DEI, VLAN id), if tagged.
    #[inline]
    pub fn vlan_tci(&self) -> Option<u16> {
        if self.is_tagged() {
            Some(rd16(self.buffer.as_ref(), field::TCI))
        } else {
            None
        }
    }

    /// The 12-bit VLAN id, if tagged.
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan_tci().map(|t| t & 0x0fff)
    }

    /// The payload's ethertype (the inner one when tagged).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        if self.is_tagged() {
            rd16(self.buffer.as_ref(), field::INNER_ETHERTYPE)
        } else {
            self.outer_ethertype()
        }
    }

    /// 14, or 18 when tagged: the offset of the payload.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Everything after the header (Ethernet padding included).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Set the payload's ethertype (the inner one when tagged).
    #[inline]
    pub fn set_ethertype(&mut self, t: u16) {
        let at = if self.is_tagged() {
            field::INNER_ETHERTYPE
        } else {
            field::ETHERTYPE
        };
        wr16(self.buffer.as_mut(), at, t);
    }

    /// Set the TCI of a tagged frame; does nothing on an untagged one (adding
    /// a tag changes the frame length: that is the builder's job).
    #[inline]
    pub fn set_vlan_tci(&mut self, tci: u16) {
        if self.is_tagged() {
            wr16(self.buffer.as_mut(), field::TCI, tci);
        }
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: [u8; 16] = [
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, 0xaa, 0xbb,
    ];
    const TAGGED: [u8; 20] = [
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x81, 0x00, 0x20, 0x0a, 0x86, 0xdd, 0xaa,
        0xbb,
    ];

    #[test]
    fn getters() {
        let f = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(f.src_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.vlan_tci(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0xaa, 0xbb]);

        let f = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        assert!(f.is_tagged());
        assert_eq!(f.vlan_tci(), Some(0x200a));
        assert_eq!(f.vlan_id(), Some(10));
        assert_eq!(f.ethertype(), ethertype::IPV6);
        assert_eq!(f.outer_ethertype(), ethertype::VLAN);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn setters_round_trip() {
        for orig in [&UNTAGGED[..], &TAGGED[..]] {
            let mut b = orig.to_vec();
            let mut f = EthernetFrame::new_checked(&mut b[..]).unwrap();
            f.set_dst_addr([1, 2, 3, 4, 5, 6]);
            f.set_src_addr([7, 8, 9, 10, 11, 12]);
            f.set_ethertype(ethertype::ARP);
            f.set_vlan_tci(0x0123);
            f.payload_mut()[0] = 0x11;
            assert_eq!(f.dst_addr(), [1, 2, 3, 4, 5, 6]);
            assert_eq!(f.src_addr(), [7, 8, 9, 10, 11, 12]);
            assert_eq!(f.ethertype(), ethertype::ARP);
            assert_eq!(f.payload(), &[0x11, 0xbb]);
            if orig.len() == TAGGED.len() {
                assert_eq!(f.vlan_tci(), Some(0x0123));
                assert_eq!(f.outer_ethertype(), ethertype::VLAN);
            } else {
                assert_eq!(f.vlan_tci(), None);
            }
        }
    }

    #[test]
    fn short_frames_rejected() {
        assert_eq!(
            EthernetFrame::new_checked(&UNTAGGED[..13]).unwrap_err(),
            WireError::Truncated
        );
        assert!(EthernetFrame::new_checked(&UNTAGGED[..14]).is_ok());
        assert_eq!(
            EthernetFrame::new_checked(&TAGGED[..17]).unwrap_err(),
            WireError::Truncated
        );
        assert!(EthernetFrame::new_checked(&TAGGED[..18]).is_ok());
    }

    #[test]
    fn mac_classes() {
        assert!(is_broadcast(&BROADCAST));
        assert!(is_multicast(&BROADCAST));
        assert!(is_multicast(&[0x33, 0x33, 0, 0, 0, 1]));
        assert!(!is_multicast(&[0x02, 0, 0, 0, 0, 1]));
    }
}
