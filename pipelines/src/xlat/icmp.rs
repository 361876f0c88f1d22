//! ICMPv4 ↔ ICMPv6 type and code maps (RFC 7915 §4.2 and §5.2), pointer
//! maps of Parameter Problem (Figures 3 and 6) and the MTU adjustment of
//! Fragmentation Needed ↔ Packet Too Big. Anything without a row here is
//! dropped silently by the RFC (`xlat_untranslatable`).

use crate::wire::icmp::{v4, v6};

/// ICMPv4 Parameter Problem.
pub const V4_PARAM_PROBLEM: u8 = 12;
/// ICMPv6 Parameter Problem.
pub const V6_PARAM_PROBLEM: u8 = 4;

/// What bytes 4..8 of the translated ICMP header hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rest {
    /// Zero ("unused").
    Zero,
    /// The MTU, adjusted (Fragmentation Needed ↔ Packet Too Big).
    Mtu,
    /// A Parameter Problem pointer (already translated).
    Pointer(u8),
}

/// The translated type and code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Map {
    /// Echo request or reply: the new type; identifier, sequence and data
    /// stay.
    Echo(u8),
    /// An error: new type and code, what bytes 4..8 become; the quoted packet
    /// is translated too.
    Error { ty: u8, code: u8, rest: Rest },
}

const fn err(ty: u8, code: u8, rest: Rest) -> Option<Map> {
    Some(Map::Error { ty, code, rest })
}

/// ICMPv4 → ICMPv6 (RFC 7915 §4.2). `pointer` is byte 4 of the message
/// (used by Parameter Problem only).
pub fn map_4to6(ty: u8, code: u8, pointer: u8) -> Option<Map> {
    const UNREACH: u8 = v6::DEST_UNREACHABLE;
    match ty {
        v4::ECHO_REQUEST => Some(Map::Echo(v6::ECHO_REQUEST)),
        v4::ECHO_REPLY => Some(Map::Echo(v6::ECHO_REPLY)),
        v4::DEST_UNREACHABLE => match code {
            // net/host unreachable, source route failed, unknown net/host,
            // source host isolated, net/host unreachable for TOS
            0 | 1 | 5 | 6 | 7 | 8 | 11 | 12 => err(UNREACH, 0, Rest::Zero),
            // protocol unreachable → parameter problem, unrecognised next
            // header, pointing at the Next Header field
            2 => err(V6_PARAM_PROBLEM, 1, Rest::Pointer(6)),
            3 => err(UNREACH, 4, Rest::Zero),
            4 => err(v6::PACKET_TOO_BIG, 0, Rest::Mtu),
            // administratively prohibited (net, host, communication,
            // precedence cut-off)
            9 | 10 | 13 | 15 => err(UNREACH, 1, Rest::Zero),
            _ => None, // 14 (host precedence violation) and unknown codes
        },
        v4::TIME_EXCEEDED => err(v6::TIME_EXCEEDED, code, Rest::Zero),
        V4_PARAM_PROBLEM => match code {
            0 | 2 => {
                let p = match pointer {
                    0 => 0,
                    1 => 1,
                    2 | 3 => 4,
                    8 => 7,
                    9 => 6,
                    12..=15 => 8,
                    16..=19 => 24,
                    _ => return None, // identification, flags, checksum: n/a
                };
                err(V6_PARAM_PROBLEM, 0, Rest::Pointer(p))
            }
            _ => None,
        },
        // source quench, redirect, router advertisement/solicitation,
        // timestamp, information, address mask, unknown
        _ => None,
    }
}

/// ICMPv6 → ICMPv4 (RFC 7915 §5.2). `pointer` is the 32-bit field at
/// bytes 4..8 (used by Parameter Problem only).
pub fn map_6to4(ty: u8, code: u8, pointer: u32) -> Option<Map> {
    const UNREACH: u8 = v4::DEST_UNREACHABLE;
    match ty {
        v6::ECHO_REQUEST => Some(Map::Echo(v4::ECHO_REQUEST)),
        v6::ECHO_REPLY => Some(Map::Echo(v4::ECHO_REPLY)),
        v6::DEST_UNREACHABLE => match code {
            0 | 2 | 3 => err(UNREACH, 1, Rest::Zero),
            1 => err(UNREACH, 10, Rest::Zero),
            4 => err(UNREACH, 3, Rest::Zero),
            _ => None,
        },
        v6::PACKET_TOO_BIG => err(UNREACH, 4, Rest::Mtu),
        v6::TIME_EXCEEDED => err(v4::TIME_EXCEEDED, code, Rest::Zero),
        V6_PARAM_PROBLEM => match code {
            0 => {
                let p = match pointer {
                    0 => 0,
                    1 => 1,
                    4 | 5 => 2,
                    6 => 9,
                    7 => 8,
                    8..=23 => 12,
                    24..=39 => 16,
                    _ => return None, // flow label, past the header: n/a
                };
                err(V4_PARAM_PROBLEM, 0, Rest::Pointer(p))
            }
            1 => err(UNREACH, 2, Rest::Zero),
            _ => None, // unrecognised option and unknown codes
        },
        // MLD, neighbour discovery, unknown informational and error types
        _ => None,
    }
}

/// RFC 1191 plateaus of at least 1280, largest first.
const PLATEAUS: [u16; 7] = [65535, 32000, 17914, 8166, 4352, 2002, 1492];

/// Packet Too Big MTU for an ICMPv4 Fragmentation Needed that reported
/// `mtu4` (0 from a pre-RFC 1191 router: the largest plateau below the
/// quoted packet's total length `quoted_len`): `min(mtu4 + 20, link_mtu6,
/// link_mtu4 + 20)`, at least 1280 (no IPv6 path is smaller; packets of at
/// most 1260 bytes leave this translator without DF, so an IPv4 router
/// can still fragment them).
pub fn mtu_4to6(mtu4: u16, quoted_len: u16, link_mtu4: u16, link_mtu6: u16) -> u32 {
    let reported = if mtu4 == 0 {
        PLATEAUS
            .into_iter()
            .find(|&p| p < quoted_len)
            .unwrap_or(1280)
    } else {
        mtu4
    };
    (reported as u32 + 20)
        .min(link_mtu6 as u32)
        .min(link_mtu4 as u32 + 20)
        .max(1280)
}

/// Fragmentation Needed MTU for an ICMPv6 Packet Too Big that reported
/// `mtu6`: `min(mtu6 - 20, link_mtu4, link_mtu6 - 20)`, at least 68 (the
/// IPv4 minimum).
pub fn mtu_6to4(mtu6: u32, link_mtu4: u16, link_mtu6: u16) -> u16 {
    mtu6.saturating_sub(20)
        .min(link_mtu4 as u32)
        .min((link_mtu6 as u32).saturating_sub(20))
        .max(68) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_the_rfc_tables() {
        use Rest::*;
        let e = |ty, code, rest| Some(Map::Error { ty, code, rest });
        // §4.2
        assert_eq!(map_4to6(8, 0, 0), Some(Map::Echo(128)));
        assert_eq!(map_4to6(0, 0, 0), Some(Map::Echo(129)));
        for c in [0, 1, 5, 6, 7, 8, 11, 12] {
            assert_eq!(map_4to6(3, c, 0), e(1, 0, Zero), "code {c}");
        }
        assert_eq!(map_4to6(3, 2, 0), e(4, 1, Pointer(6)));
        assert_eq!(map_4to6(3, 3, 0), e(1, 4, Zero));
        assert_eq!(map_4to6(3, 4, 0), e(2, 0, Mtu));
        for c in [9, 10, 13, 15] {
            assert_eq!(map_4to6(3, c, 0), e(1, 1, Zero), "code {c}");
        }
        assert_eq!(map_4to6(3, 14, 0), None);
        assert_eq!(map_4to6(3, 16, 0), None);
        assert_eq!(map_4to6(11, 1, 0), e(3, 1, Zero));
        for (p4, p6) in [
            (0, 0),
            (1, 1),
            (2, 4),
            (3, 4),
            (8, 7),
            (9, 6),
            (12, 8),
            (15, 8),
            (16, 24),
            (19, 24),
        ] {
            assert_eq!(map_4to6(12, 0, p4), e(4, 0, Pointer(p6)), "pointer {p4}");
            assert_eq!(map_4to6(12, 2, p4), e(4, 0, Pointer(p6)), "pointer {p4}");
        }
        for p4 in [4, 5, 6, 7, 10, 11, 20] {
            assert_eq!(map_4to6(12, 0, p4), None, "pointer {p4}");
        }
        assert_eq!(map_4to6(12, 1, 0), None);
        for ty in [4, 5, 9, 10, 13, 14, 15, 16, 17, 18, 200] {
            assert_eq!(map_4to6(ty, 0, 0), None, "type {ty}");
        }
        // §5.2
        assert_eq!(map_6to4(128, 0, 0), Some(Map::Echo(8)));
        assert_eq!(map_6to4(129, 0, 0), Some(Map::Echo(0)));
        for c in [0, 2, 3] {
            assert_eq!(map_6to4(1, c, 0), e(3, 1, Zero));
        }
        assert_eq!(map_6to4(1, 1, 0), e(3, 10, Zero));
        assert_eq!(map_6to4(1, 4, 0), e(3, 3, Zero));
        assert_eq!(map_6to4(1, 5, 0), None);
        assert_eq!(map_6to4(2, 0, 1400), e(3, 4, Mtu));
        assert_eq!(map_6to4(3, 0, 0), e(11, 0, Zero));
        for (p6, p4) in [
            (0, 0),
            (1, 1),
            (4, 2),
            (5, 2),
            (6, 9),
            (7, 8),
            (8, 12),
            (23, 12),
            (24, 16),
            (39, 16),
        ] {
            assert_eq!(map_6to4(4, 0, p6), e(12, 0, Pointer(p4)), "pointer {p6}");
        }
        for p6 in [2, 3, 40, 1 << 20] {
            assert_eq!(map_6to4(4, 0, p6), None, "pointer {p6}");
        }
        assert_eq!(map_6to4(4, 1, 0), e(3, 2, Zero));
        assert_eq!(map_6to4(4, 2, 0), None);
        for ty in [130, 131, 132, 133, 134, 135, 136, 137, 100, 0] {
            assert_eq!(map_6to4(ty, 0, 0), None, "type {ty}");
        }
    }

    #[test]
    fn mtu_adjustment() {
        // min(advertised + 20, link6, link4 + 20), at least 1280
        assert_eq!(mtu_4to6(1400, 1500, 1500, 1500), 1420);
        assert_eq!(mtu_4to6(1480, 1500, 1500, 1500), 1500);
        assert_eq!(mtu_4to6(1480, 1500, 1400, 1500), 1420);
        assert_eq!(mtu_4to6(576, 1500, 1500, 1500), 1280);
        // RFC 1191 plateau when the router said 0
        assert_eq!(mtu_4to6(0, 1500, 9000, 9000), 1512);
        assert_eq!(mtu_4to6(0, 9000, 9000, 9000), 8186);
        assert_eq!(mtu_4to6(0, 1000, 9000, 9000), 1300);
        // min(advertised - 20, link4, link6 - 20), at least 68
        assert_eq!(mtu_6to4(1400, 1500, 1500), 1380);
        assert_eq!(mtu_6to4(9000, 1500, 1500), 1480);
        assert_eq!(mtu_6to4(9000, 1400, 9000), 1400);
        assert_eq!(mtu_6to4(10, 1500, 1500), 68);
        assert_eq!(mtu_6to4(u32::MAX, 9000, 9000), 8980);
    }
}
