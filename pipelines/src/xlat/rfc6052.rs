//! IPv4-embedded IPv6 addresses (RFC 6052 §2.2).
//!
//! ```text
//!  len | bits 0..len | then                                   | u (bits 64..71)
//!  /32 | prefix      | v4[0..4] at bytes 4..8                 | byte 8, then suffix 9..16
//!  /40 | prefix      | v4[0..3] at 5..8, v4[3] at 9           | byte 8, suffix 10..16
//!  /48 | prefix      | v4[0..2] at 6..8, v4[2..4] at 9..11    | byte 8, suffix 11..16
//!  /56 | prefix      | v4[0] at 7, v4[1..4] at 9..12          | byte 8, suffix 12..16
//!  /64 | prefix      | v4 at 9..13                            | byte 8, suffix 13..16
//!  /96 | prefix      | v4 at 12..16                           | (byte 8 is in the prefix)
//! ```
//!
//! Bits 64..71 (the "u" octet) and the suffix are zero in every address
//! [`embed`] makes; [`extract`] checks the prefix only (RFC 6052 §2.2 says
//! to ignore the u octet and suffix on receipt).
//!
//! Policy the caller owns: RFC 6052 §3.1 forbids using the Well-Known
//! Prefix `64:ff9b::/96` for non-global IPv4 addresses (RFC 1918 ranges,
//! ...). [`Prefix::embed`] does not check it: the NAT decides what it maps.

use core::fmt;

/// A NAT64 prefix: the first `len` bits of `bytes` (the rest zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    bytes: [u8; 16],
    len: u8,
}

/// Where the 4 IPv4 bytes go for each prefix length.
#[inline]
const fn layout(len: u8) -> [usize; 4] {
    match len {
        32 => [4, 5, 6, 7],
        40 => [5, 6, 7, 9],
        48 => [6, 7, 9, 10],
        56 => [7, 9, 10, 11],
        64 => [9, 10, 11, 12],
        _ => [12, 13, 14, 15],
    }
}

impl Prefix {
    /// `64:ff9b::/96` (RFC 6052 §2.1).
    pub const WELL_KNOWN: Prefix = Prefix {
        bytes: [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        len: 96,
    };

    /// A prefix of `len` bits (32, 40, 48, 56, 64 or 96). The error says what
    /// is wrong: another length, bits set past the length, or (for /96) a
    /// non-zero u octet (bits 64..71).
    pub fn new(bytes: [u8; 16], len: u8) -> Result<Prefix, String> {
        if !matches!(len, 32 | 40 | 48 | 56 | 64 | 96) {
            return Err(format!(
                "NAT64 prefix length /{len}: RFC 6052 allows /32, /40, /48, /56, /64 or /96"
            ));
        }
        let n = len as usize / 8;
        if bytes[n..].iter().any(|&b| b != 0) {
            return Err(format!(
                "NAT64 prefix {}: bits set past /{len}; clear them",
                Prefix { bytes, len }
            ));
        }
        if bytes[8] != 0 {
            return Err(format!(
                "NAT64 prefix {}: bits 64..71 (the u octet) must be zero",
                Prefix { bytes, len }
            ));
        }
        Ok(Prefix { bytes, len })
    }

    /// The prefix bytes (zero past the length).
    pub const fn bytes(&self) -> [u8; 16] {
        self.bytes
    }

    /// The length in bits.
    pub const fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `a` starts with this prefix.
    #[inline]
    pub fn contains(&self, a: &[u8; 16]) -> bool {
        let n = self.len as usize / 8;
        a[..n] == self.bytes[..n]
    }

    /// The IPv6 address representing `v4` (u octet and suffix zero).
    #[inline]
    pub fn embed(&self, v4: [u8; 4]) -> [u8; 16] {
        let mut a = self.bytes;
        for (i, at) in layout(self.len).into_iter().enumerate() {
            a[at] = v4[i];
        }
        a
    }

    /// The IPv4 address embedded in `v6`, if `v6` is under this prefix.
    #[inline]
    pub fn extract(&self, v6: &[u8; 16]) -> Option<[u8; 4]> {
        if !self.contains(v6) {
            return None;
        }
        let l = layout(self.len);
        Some([v6[l[0]], v6[l[1]], v6[l[2]], v6[l[3]]])
    }
}

impl Default for Prefix {
    /// The Well-Known Prefix `64:ff9b::/96`.
    fn default() -> Self {
        Prefix::WELL_KNOWN
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", std::net::Ipv6Addr::from(self.bytes), self.len)
    }
}

/// [`Prefix::embed`].
#[inline]
pub fn embed(prefix: &Prefix, v4: [u8; 4]) -> [u8; 16] {
    prefix.embed(v4)
}

/// [`Prefix::extract`].
#[inline]
pub fn extract(prefix: &Prefix, v6: &[u8; 16]) -> Option<[u8; 4]> {
    prefix.extract(v6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    fn p(s: &str, len: u8) -> Prefix {
        Prefix::new(s.parse::<Ipv6Addr>().unwrap().octets(), len).unwrap()
    }

    /// RFC 6052 §2.4, the table of examples (192.0.2.33 under 2001:db8::).
    #[test]
    fn rfc6052_examples() {
        let v4 = [192, 0, 2, 33];
        for (prefix, len, want) in [
            ("2001:db8::", 32, "2001:db8:c000:221::"),
            ("2001:db8:100::", 40, "2001:db8:1c0:2:21::"),
            ("2001:db8:122::", 48, "2001:db8:122:c000:2:2100::"),
            ("2001:db8:122:300::", 56, "2001:db8:122:3c0:0:221::"),
            ("2001:db8:122:344::", 64, "2001:db8:122:344:c0:2:2100:0"),
            ("2001:db8:122:344::", 96, "2001:db8:122:344::192.0.2.33"),
            ("64:ff9b::", 96, "64:ff9b::192.0.2.33"),
        ] {
            let pf = p(prefix, len);
            let a = pf.embed(v4);
            assert_eq!(
                Ipv6Addr::from(a),
                want.parse::<Ipv6Addr>().unwrap(),
                "/{len}"
            );
            assert_eq!(pf.extract(&a), Some(v4), "/{len}");
            assert_eq!(embed(&pf, v4), a);
            assert_eq!(extract(&pf, &a), Some(v4));
        }
        assert_eq!(Prefix::default(), p("64:ff9b::", 96));
        assert_eq!(Prefix::default().to_string(), "64:ff9b::/96");
    }

    #[test]
    fn bad_prefixes_are_refused_with_the_reason() {
        let wkp = Prefix::WELL_KNOWN.bytes();
        assert!(Prefix::new(wkp, 80).unwrap_err().contains("/80"));
        let b = "2001:db8:1::".parse::<Ipv6Addr>().unwrap().octets();
        assert!(Prefix::new(b, 32).unwrap_err().contains("past /32"));
        assert!(Prefix::new(wkp, 16).unwrap_err().contains("/16"));
        let mut u = [0u8; 16];
        u[8] = 1;
        assert!(Prefix::new(u, 96).unwrap_err().contains("u octet"));
        assert!(Prefix::new(u, 64).unwrap_err().contains("past /64"));
    }

    #[test]
    fn extract_outside_the_prefix_is_none() {
        let a: [u8; 16] = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets();
        assert_eq!(Prefix::WELL_KNOWN.extract(&a), None);
        assert!(!Prefix::WELL_KNOWN.contains(&a));
    }

    proptest! {
        #[test]
        fn embed_extract_round_trip(raw in any::<[u8; 16]>(), li in 0usize..6, v4 in any::<[u8; 4]>()) {
            let len = [32u8, 40, 48, 56, 64, 96][li];
            let mut b = [0u8; 16];
            b[..len as usize / 8].copy_from_slice(&raw[..len as usize / 8]);
            b[8] = 0;
            let pf = Prefix::new(b, len).unwrap();
            let a = pf.embed(v4);
            prop_assert!(pf.contains(&a));
            prop_assert_eq!(a[8], 0, "u octet");
            prop_assert_eq!(pf.extract(&a), Some(v4));
        }
    }
}
