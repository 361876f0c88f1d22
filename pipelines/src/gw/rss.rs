//! The Toeplitz hash NICs use for RSS, for the engine (to predict which
//! queue a down packet of a key lands on, or to pick RSS-aligned key ports —
//! future work; today the owner of a key is fixed by [`key_owner`]).
//!
//! [`key_owner`]: super::config::key_owner

/// Toeplitz hash of `input` under `key` (Microsoft RSS definition): for each
/// input bit set, most significant first, XOR in the 32-bit window of the key
/// starting at that bit. Key bits beyond `key` are zero. For IPv4/TCP the
/// input is src address, dst address, src port, dst port (big-endian).
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let kbit = |i: usize| -> u32 {
        key.get(i / 8)
            .map_or(0, |b| ((b >> (7 - i % 8)) & 1) as u32)
    };
    // window = key bits [0, 32)
    let mut window: u32 = (0..32).fold(0, |w, i| (w << 1) | kbit(i));
    let mut h = 0u32;
    for (n, byte) in input.iter().enumerate() {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                h ^= window;
            }
            window = (window << 1) | kbit(n * 8 + bit + 32);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 40-byte key of the Microsoft RSS verification suite.
    const MS_KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    /// "Verifying the RSS Hash Calculation", IPv4 table: (source, dest,
    /// source port, dest port, IPv4 hash, IPv4 with TCP hash).
    type Vector = ([u8; 4], [u8; 4], u16, u16, u32, u32);
    const V4: [Vector; 5] = [
        (
            [66, 9, 149, 187],
            [161, 142, 100, 80],
            2794,
            1766,
            0x323e8fc2,
            0x51ccc178,
        ),
        (
            [199, 92, 111, 2],
            [65, 69, 140, 83],
            14230,
            4739,
            0xd718262a,
            0xc626b0ea,
        ),
        (
            [24, 19, 198, 95],
            [12, 22, 207, 184],
            12898,
            38024,
            0xd2d0a5de,
            0x5c2b394a,
        ),
        (
            [38, 27, 205, 30],
            [209, 142, 163, 6],
            48228,
            2217,
            0x82989176,
            0xafc7327f,
        ),
        (
            [153, 39, 163, 191],
            [202, 188, 127, 2],
            44251,
            1303,
            0x5d1809c5,
            0x10e828a2,
        ),
    ];

    #[test]
    fn microsoft_rss_verification_suite_ipv4() {
        for (src, dst, sp, dp, h_ip, h_tcp) in V4 {
            let mut input = [0u8; 12];
            input[..4].copy_from_slice(&src);
            input[4..8].copy_from_slice(&dst);
            input[8..10].copy_from_slice(&sp.to_be_bytes());
            input[10..].copy_from_slice(&dp.to_be_bytes());
            assert_eq!(toeplitz(&MS_KEY, &input[..8]), h_ip, "{src:?} -> {dst:?}");
            assert_eq!(
                toeplitz(&MS_KEY, &input),
                h_tcp,
                "{src:?}:{sp} -> {dst:?}:{dp}"
            );
        }
    }

    #[test]
    fn microsoft_rss_verification_suite_ipv6_first_vector() {
        // 3ffe:2501:200:1fff::7 :2794 -> 3ffe:2501:200:3::1 :1766
        let src = [
            0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0, 7,
        ];
        let dst = [
            0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 1,
        ];
        let mut input = Vec::new();
        input.extend_from_slice(&src);
        input.extend_from_slice(&dst);
        assert_eq!(toeplitz(&MS_KEY, &input), 0x2cc18cd5);
        input.extend_from_slice(&2794u16.to_be_bytes());
        input.extend_from_slice(&1766u16.to_be_bytes());
        assert_eq!(toeplitz(&MS_KEY, &input), 0x40207d3d);
    }
}
