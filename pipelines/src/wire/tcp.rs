//! TCP segments (RFC 9293), with an options iterator and MSS rewriting.
//!
//! The buffer must be exactly the segment (the IP payload, Ethernet padding
//! excluded): the checksum and [`TcpPacket::payload`] cover all of it.
//! `new_checked` guarantees: buffer >= 20 bytes, data offset >= 5, header
//! length <= buffer length.

use super::checksum;
use super::{ip_proto, length_in, need_len, wr16, WireError};

/// Minimum (option-less) header length.
pub const HEADER_LEN: usize = 20;

/// Flag bits of byte 13.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// Option kinds.
pub mod option_kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

mod field {
    pub const DATA_OFF: usize = 12;
}

/// One TCP option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpOption<'a> {
    EndOfList,
    NoOperation,
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    /// SACK blocks, raw (pairs of 32-bit edges).
    Sack(&'a [u8]),
    Timestamps {
        tsval: u32,
        tsecr: u32,
    },
    /// Any other kind, or a known kind with an unexpected length.
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

/// Iterator over the options area. Stops after `EndOfList`, at the end of the
/// area, or at the first malformed option (length < 2 or past the end);
/// [`TcpOptions::malformed`] tells which.
#[derive(Clone, Debug)]
pub struct TcpOptions<'a> {
    data: &'a [u8],
    pos: usize,
    malformed: bool,
}

impl<'a> TcpOptions<'a> {
    /// Iterate over raw option bytes.
    pub fn new(data: &'a [u8]) -> Self {
        TcpOptions {
            data,
            pos: 0,
            malformed: false,
        }
    }
    /// Whether iteration stopped on a malformed option.
    pub fn malformed(&self) -> bool {
        self.malformed
    }
    /// Offset (within the options area) of the option the next call to
    /// `next` returns.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = TcpOption<'a>;

    fn next(&mut self) -> Option<TcpOption<'a>> {
        let d = self.data;
        let kind = *d.get(self.pos)?;
        match kind {
            option_kind::END => {
                self.pos = d.len();
                return Some(TcpOption::EndOfList);
            }
            option_kind::NOP => {
                self.pos += 1;
                return Some(TcpOption::NoOperation);
            }
            _ => {}
        }
        let len = match d.get(self.pos + 1) {
            Some(&l) if l >= 2 && self.pos + l as usize <= d.len() => l as usize,
            _ => {
                self.malformed = true;
                self.pos = d.len();
                return None;
            }
        };
        let body = &d[self.pos + 2..self.pos + len];
        self.pos += len;
        Some(match (kind, body.len()) {
            (option_kind::MSS, 2) => TcpOption::Mss(u16::from_be_bytes([body[0], body[1]])),
            (option_kind::WINDOW_SCALE, 1) => TcpOption::WindowScale(body[0]),
            (option_kind::SACK_PERMITTED, 0) => TcpOption::SackPermitted,
            (option_kind::SACK, _) => TcpOption::Sack(body),
            (option_kind::TIMESTAMPS, 8) => TcpOption::Timestamps {
                tsval: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                tsecr: u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
            },
            _ => TcpOption::Unknown { kind, data: body },
        })
    }
}

/// One getter a flag, `$get(&self) -> bool`: whether [`flags`]`::$bit` is
/// set in the flag byte.
macro_rules! flag_getters {
    ($($get:ident $bit:ident),*) => {$(
        #[doc = concat!("Whether the ", stringify!($bit), " flag is set.")]
        #[inline]
        pub fn $get(&self) -> bool {
            self.flags() & flags::$bit != 0
        }
    )*};
}

view! {
    /// Zero-copy view of a TCP segment.
    TcpPacket {
        /// Source port.
        src_port / set_src_port: u16 = 0;
        /// Destination port.
        dst_port / set_dst_port: u16 = 2;
        /// Sequence number of the first data byte (of the SYN when set).
        seq_number / set_seq_number: u32 = 4;
        /// Next sequence number the sender expects (with ACK).
        ack_number / set_ack_number: u32 = 8;
        /// The flag byte (see [`flags`]).
        flags / set_flags: u8 = 13;
        /// Window field, as carried (no window scale applied).
        window_len / set_window_len: u16 = 14;
        /// Checksum over the pseudo-header and the segment.
        checksum / set_checksum: u16 = 16;
        /// Urgent pointer (with URG).
        urgent_at / set_urgent_at: u16 = 18;
    }
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// `Truncated` when shorter than 20 bytes or the data offset;
    /// `Malformed` for a data offset < 5.
    #[inline]
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        need_len(len, HEADER_LEN)?;
        length_in(self.header_len(), HEADER_LEN, len)
    }

    /// Header length in bytes (data offset x 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::DATA_OFF] >> 4) as usize) * 4
    }
    flag_getters!(fin FIN, syn SYN, rst RST, psh PSH, ack ACK, urg URG, ece ECE, cwr CWR);
    /// The raw options area.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// Iterate over the options.
    #[inline]
    pub fn options_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
    /// The MSS option: its value and the offset of the value's first byte
    /// within the segment.
    #[inline]
    pub fn find_mss(&self) -> Option<(usize, u16)> {
        let mut it = self.options_iter();
        loop {
            let at = it.position();
            match it.next()? {
                TcpOption::Mss(v) => return Some((HEADER_LEN + at + 2, v)),
                TcpOption::EndOfList => return None,
                _ => {}
            }
        }
    }
    /// The MSS option's value.
    #[inline]
    pub fn mss(&self) -> Option<u16> {
        self.find_mss().map(|(_, v)| v)
    }
    /// Whether the options carry a Window Scale option.
    #[inline]
    pub fn has_window_scale(&self) -> bool {
        self.options_iter()
            .any(|o| matches!(o, TcpOption::WindowScale(_)))
    }
    /// Whether the checksum is correct for this segment over IPv4.
    #[inline]
    pub fn verify_checksum_v4(&self, src: [u8; 4], dst: [u8; 4]) -> bool {
        checksum::l4_checksum_v4(src, dst, ip_proto::TCP, self.buffer.as_ref()) == 0
    }
    /// Whether the checksum is correct for this segment over IPv6.
    #[inline]
    pub fn verify_checksum_v6(&self, src: &[u8; 16], dst: &[u8; 16]) -> bool {
        checksum::l4_checksum_v6(src, dst, ip_proto::TCP, self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Set the data offset from a header length in bytes (multiple of 4,
    /// 20..=60); the 4 reserved bits are cleared.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = (((len / 4) as u8) & 0x0f) << 4;
    }
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..hl]
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
    /// Compute and store the checksum over IPv4.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: [u8; 4], dst: [u8; 4]) {
        self.set_checksum(0);
        let c = checksum::l4_checksum_v4(src, dst, ip_proto::TCP, self.buffer.as_ref());
        self.set_checksum(c);
    }
    /// Compute and store the checksum over IPv6.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &[u8; 16], dst: &[u8; 16]) {
        self.set_checksum(0);
        let c = checksum::l4_checksum_v6(src, dst, ip_proto::TCP, self.buffer.as_ref());
        self.set_checksum(c);
    }
    port_rewrites!(update16, update_addr4, update_addr16, "");
    /// If the segment carries an MSS option larger than `max`, lower it to
    /// `max` with an incremental checksum update and return the old value.
    /// (Callers apply it to SYN segments only.)
    #[inline]
    pub fn clamp_mss(&mut self, max: u16) -> Option<u16> {
        let (at, old) = self.find_mss()?;
        if old <= max {
            return None;
        }
        // A word at an odd offset sums byte-swapped (RFC 1071 §2(B)).
        let c = if at & 1 == 0 {
            checksum::update16(self.checksum(), old, max)
        } else {
            checksum::update16(self.checksum(), old.swap_bytes(), max.swap_bytes())
        };
        wr16(self.buffer.as_mut(), at, max);
        self.set_checksum(c);
        Some(old)
    }
    /// If the 16-bit window field is larger than `max`, lower it to `max`
    /// with an incremental checksum update and return the old value. The
    /// field is taken as is: callers must know the window is not scaled.
    #[inline]
    pub fn cap_window(&mut self, max: u16) -> Option<u16> {
        let old = self.window_len();
        if old <= max {
            return None;
        }
        let c = checksum::update16(self.checksum(), old, max);
        self.set_window_len(max);
        self.set_checksum(c);
        Some(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: [u8; 4] = [10, 0, 0, 1];
    const DST: [u8; 4] = [10, 0, 0, 2];

    /// SYN with options MSS 1460, NOP, WS 7, SACK-permitted, TS, 3 bytes data.
    fn syn() -> Vec<u8> {
        let opts = [
            2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0,
        ];
        let mut b = vec![0xa5u8; 20 + opts.len() + 3];
        let mut p = TcpPacket::new_unchecked(&mut b[..]);
        p.set_src_port(40000);
        p.set_dst_port(80);
        p.set_seq_number(0x01020304);
        p.set_ack_number(0);
        p.set_header_len(20 + opts.len());
        p.set_flags(flags::SYN);
        p.set_window_len(65535);
        p.set_urgent_at(0);
        p.options_mut().copy_from_slice(&opts);
        p.fill_checksum_v4(SRC, DST);
        b
    }

    #[test]
    fn getters() {
        let b = syn();
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x01020304);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 44);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst());
        assert!(!p.psh() && !p.urg() && !p.ece() && !p.cwr());
        assert_eq!(p.window_len(), 65535);
        assert_eq!(p.payload(), &[0xa5; 3]);
        assert!(p.verify_checksum_v4(SRC, DST));
        assert!(!p.verify_checksum_v4(SRC, [10, 0, 0, 3]));
        let opts: Vec<_> = p.options_iter().collect();
        assert_eq!(
            opts,
            vec![
                TcpOption::Mss(1460),
                TcpOption::NoOperation,
                TcpOption::WindowScale(7),
                TcpOption::SackPermitted,
                TcpOption::Timestamps { tsval: 1, tsecr: 2 },
                TcpOption::EndOfList,
            ]
        );
        assert_eq!(p.find_mss(), Some((22, 1460)));
    }

    #[test]
    fn setters_round_trip() {
        let mut b = syn();
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        p.set_flags(flags::FIN | flags::ACK | flags::PSH | flags::URG | flags::ECE | flags::CWR);
        p.set_ack_number(99);
        p.set_seq_number(98);
        p.set_window_len(1000);
        p.set_urgent_at(5);
        assert!(p.fin() && p.ack() && p.psh() && p.urg() && p.ece() && p.cwr());
        assert!(!p.syn() && !p.rst());
        assert_eq!((p.seq_number(), p.ack_number()), (98, 99));
        assert_eq!((p.window_len(), p.urgent_at()), (1000, 5));
        p.payload_mut().copy_from_slice(b"abc");
        assert_eq!(p.payload(), b"abc");
    }

    #[test]
    fn port_and_address_rewrites_match_full_checksum() {
        let mut b = syn();
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        p.rewrite_src_port(1024);
        p.rewrite_dst_port(8080);
        let new_src = [203, 0, 113, 9];
        p.adjust_checksum_addr_v4(SRC, new_src);
        assert!(p.verify_checksum_v4(new_src, DST));
        let inc = p.checksum();
        p.fill_checksum_v4(new_src, DST);
        assert_eq!(inc, p.checksum());

        let (s6, d6, n6) = ([1u8; 16], [2u8; 16], [3u8; 16]);
        p.fill_checksum_v6(&s6, &d6);
        assert!(p.verify_checksum_v6(&s6, &d6));
        p.adjust_checksum_addr_v6(&d6, &n6);
        assert!(p.verify_checksum_v6(&s6, &n6));
    }

    #[test]
    fn clamp_mss_even_and_odd_offsets() {
        // Even offset (value at 22).
        let mut b = syn();
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.clamp_mss(1500), None);
        assert_eq!(p.clamp_mss(1400), Some(1460));
        assert_eq!(p.mss(), Some(1400));
        assert!(p.verify_checksum_v4(SRC, DST));

        // Odd offset: NOP then MSS then 3 padding bytes (value at 23).
        let mut b = syn();
        b[20..28].copy_from_slice(&[1, 2, 4, 0x05, 0xb4, 1, 1, 1]);
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        p.fill_checksum_v4(SRC, DST);
        assert_eq!(p.find_mss(), Some((23, 1460)));
        assert_eq!(p.clamp_mss(1360), Some(1460));
        assert_eq!(p.mss(), Some(1360));
        assert!(p.verify_checksum_v4(SRC, DST));
    }

    #[test]
    fn cap_window_and_window_scale() {
        let mut b = syn();
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        assert!(p.has_window_scale());
        assert_eq!(p.cap_window(65535), None);
        assert_eq!(p.cap_window(16384), Some(65535));
        assert_eq!(p.window_len(), 16384);
        assert!(p.verify_checksum_v4(SRC, DST));
        let inc = p.checksum();
        p.fill_checksum_v4(SRC, DST);
        assert_eq!(inc, p.checksum());
        // WS replaced by NOPs: not scaled any more.
        b[25..28].copy_from_slice(&[1, 1, 1]);
        assert!(!TcpPacket::new_checked(&b[..]).unwrap().has_window_scale());
    }

    #[test]
    fn options_iterator_stops_on_malformed() {
        let mut it = TcpOptions::new(&[1, 2, 1]); // MSS with length 1
        assert_eq!(it.next(), Some(TcpOption::NoOperation));
        assert_eq!(it.next(), None);
        assert!(it.malformed());
        let mut it = TcpOptions::new(&[2, 6, 0, 0]); // length past the end
        assert_eq!(it.next(), None);
        assert!(it.malformed());
        let mut it = TcpOptions::new(&[2]); // kind without length
        assert_eq!(it.next(), None);
        assert!(it.malformed());
        let v: Vec<_> = TcpOptions::new(&[2, 3, 9, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1]).collect();
        assert_eq!(
            v,
            vec![
                TcpOption::Unknown {
                    kind: 2,
                    data: &[9]
                },
                TcpOption::Sack(&[0, 0, 0, 1, 0, 0, 0, 2]),
                TcpOption::EndOfList,
            ]
        );
    }

    #[test]
    fn malformed_rejected() {
        let b = syn();
        assert_eq!(
            TcpPacket::new_checked(&b[..19]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            TcpPacket::new_checked(&b[..43]).unwrap_err(),
            WireError::Truncated
        );
        let mut small = b.clone();
        small[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&small[..]).unwrap_err(),
            WireError::Malformed
        );
    }

    proptest! {
        #[test]
        fn options_iterator_never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut it = TcpOptions::new(&data);
            let mut n = 0;
            while it.next().is_some() { n += 1; prop_assert!(n <= data.len()); }
        }

        #[test]
        fn clamp_mss_keeps_checksum_valid(pad in 0usize..4, mss in any::<u16>(), max in any::<u16>(),
                                          payload in proptest::collection::vec(any::<u8>(), 0..20)) {
            let mut opts = vec![1u8; pad];
            opts.extend_from_slice(&[2, 4]);
            opts.extend_from_slice(&mss.to_be_bytes());
            while opts.len() & 3 != 0 { opts.push(0); }
            let mut b = vec![0u8; 20 + opts.len()];
            b.extend_from_slice(&payload);
            let mut p = TcpPacket::new_unchecked(&mut b[..]);
            p.set_header_len(20 + opts.len());
            p.set_flags(flags::SYN);
            p.options_mut().copy_from_slice(&opts);
            p.fill_checksum_v4(SRC, DST);
            let r = p.clamp_mss(max);
            prop_assert_eq!(r, if mss > max { Some(mss) } else { None });
            prop_assert_eq!(p.mss(), Some(mss.min(max)));
            prop_assert!(p.verify_checksum_v4(SRC, DST));
            let inc = p.checksum();
            p.fill_checksum_v4(SRC, DST);
            prop_assert_eq!(inc, p.checksum());
        }
    }
}
