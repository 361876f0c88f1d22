//! The Toeplitz hash NICs use for RSS, and RSS-steered key choice.
//!
//! A down packet (source = server ip:port, destination = pool address : key
//! port) lands on RX queue `reta[toeplitz(key, src | dst | sport | dport) &
//! (reta.len() - 1)]`, and worker `w` polls queue `w`. The owner of a key is
//! fixed by arithmetic ([`key_owner`]), so a key whose down hash lands on
//! another queue costs a handoff for every down packet of its connection.
//! With [`GwConfig::rss`](super::GwConfig::rss) set, a worker starting a
//! connection prefers a key of its own whose down hash lands on its own
//! queue (see [`KeyAlloc::alloc_pref`](super::keys::KeyAlloc::alloc_pref)).
//!
//! Toeplitz is linear over GF(2): the hash of an input is the XOR of the
//! hashes of its bytes at their positions. [`ToeplitzTable`] precomputes,
//! per byte position, the hash of each of the 256 byte values (12 positions
//! x 256 x 4 bytes = 12 KiB for an IPv4 4-tuple), so a hash is one table
//! load and XOR per byte instead of 8 conditional XORs and shifts per byte.
//!
//! [`key_owner`]: super::config::key_owner

/// Per-byte-position tables of the Toeplitz hash under one key:
/// `hash(input) = XOR_i t[i][input[i]]`, equal to [`toeplitz`] (checked by a
/// property test). Built once (allocates), then read only.
#[derive(Clone, Debug)]
pub struct ToeplitzTable {
    t: Vec<[u32; 256]>,
}

impl ToeplitzTable {
    /// Tables for inputs of up to `positions` bytes under `key` (key bits
    /// beyond `key` are zero, as in [`toeplitz`]).
    pub fn new(key: &[u8], positions: usize) -> ToeplitzTable {
        let kbit = |i: usize| -> u32 {
            key.get(i / 8)
                .map_or(0, |b| ((b >> (7 - i % 8)) & 1) as u32)
        };
        // The 32-bit key window starting at bit n.
        let window = |n: usize| (0..32).fold(0u32, |w, i| (w << 1) | kbit(n + i));
        let t = (0..positions)
            .map(|pos| {
                // w[j]: the window XORed in when bit j (MSB first) is set.
                let w: [u32; 8] = core::array::from_fn(|j| window(pos * 8 + j));
                let mut row = [0u32; 256];
                for (b, h) in row.iter_mut().enumerate().skip(1) {
                    *h = (0..8)
                        .filter(|j| b & (0x80 >> j) != 0)
                        .fold(0, |h, j| h ^ w[j]);
                }
                row
            })
            .collect();
        ToeplitzTable { t }
    }

    /// Input bytes the tables cover.
    pub fn positions(&self) -> usize {
        self.t.len()
    }

    /// The hash contribution of byte `b` at position `pos` (< `positions`).
    #[inline]
    pub fn byte(&self, pos: usize, b: u8) -> u32 {
        self.t[pos][b as usize]
    }

    /// The contribution of `bytes` placed at `pos..pos + bytes.len()`.
    #[inline]
    pub fn at(&self, pos: usize, bytes: &[u8]) -> u32 {
        bytes
            .iter()
            .enumerate()
            .fold(0, |h, (i, &b)| h ^ self.t[pos + i][b as usize])
    }

    /// The Toeplitz hash of `input` (at most `positions` bytes).
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        self.at(0, input)
    }

    /// The hash of an IPv4 4-tuple as NICs lay it out: source address,
    /// destination address, source port, destination port.
    #[inline]
    pub fn hash_v4(&self, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> u32 {
        self.at(0, &src)
            ^ self.at(4, &dst)
            ^ self.at(8, &sport.to_be_bytes())
            ^ self.at(10, &dport.to_be_bytes())
    }
}

/// A worker's RSS steering state, built from [`RssSteer`] at start
/// (allocates the 12 KiB table), read only after.
///
/// [`RssSteer`]: super::config::RssSteer
#[derive(Clone, Debug)]
pub(crate) struct Steer {
    tab: ToeplitzTable,
    reta: Vec<u16>,
    mask: u32,
    pub(crate) probe: usize,
    ports_tcp: bool,
    ports_udp: bool,
    /// Hash contribution of each pool address as the destination.
    pool_h: Vec<u32>,
    /// This worker's RX queue.
    queue: u16,
}

impl Steer {
    pub(crate) fn new(cfg: &super::config::RssSteer, pool: &[[u8; 4]], queue: u16) -> Steer {
        let tab = ToeplitzTable::new(&cfg.key, 12);
        let pool_h = pool.iter().map(|a| tab.at(4, a)).collect();
        Steer {
            reta: cfg.reta.clone(),
            mask: (cfg.reta.len() - 1) as u32,
            probe: cfg.probe as usize,
            ports_tcp: cfg.ports_tcp,
            ports_udp: cfg.ports_udp,
            pool_h,
            queue,
            tab,
        }
    }

    /// Whether the queue appears in the RETA at all (if not, no key can
    /// be steered to it).
    pub(crate) fn reachable(&self) -> bool {
        self.reta.contains(&self.queue)
    }

    /// The part of a down packet's hash fixed by the server `srv:sport`,
    /// and whether the NIC hashes the ports of protocol `proto`.
    #[inline]
    pub(crate) fn base(&self, srv: [u8; 4], sport: u16, proto: u8) -> (u32, bool) {
        let ports = match proto {
            super::tcp_state::PROTO_TCP => self.ports_tcp,
            super::tcp_state::PROTO_UDP => self.ports_udp,
            _ => false,
        };
        let mut h = self.tab.at(0, &srv);
        if ports {
            h ^= self.tab.at(8, &sport.to_be_bytes());
        }
        (h, ports)
    }

    /// Whether a down packet to pool address `pool_idx`, key port `port`
    /// lands on this worker's queue.
    #[inline]
    pub(crate) fn lands_here(&self, (base, ports): (u32, bool), pool_idx: u32, port: u16) -> bool {
        let mut h = base ^ self.pool_h[pool_idx as usize];
        if ports {
            h ^= self.tab.byte(10, (port >> 8) as u8) ^ self.tab.byte(11, port as u8);
        }
        self.reta[(h & self.mask) as usize] == self.queue
    }
}

/// The stride of the initial free order of a worker's `n` keys when
/// steering is on: key `i * stride mod n` comes `i`-th, a permutation (the
/// stride is coprime to `n`) of about `0.618 n`, so that neighbouring keys
/// in the FIFO have unrelated ports (and still alternate between pool
/// addresses about evenly). Why: with keys in common use (the
/// Microsoft/Intel default key of DPDK's drivers) the low bits of the hash
/// do not depend on the low bits of the destination port, and pool
/// addresses that differ in one bit may not change them either, so keys on
/// neighbouring ports land on the same queue. Measured with 2 queues, 2
/// pool addresses, probe 8 (`gw::tests::steer`): ports in order 52 %
/// steered, ports scattered but pool-interleaved 92 %, all keys scattered
/// 98.5 % (99.6 % = 1 - 2^-8 if the candidates were independent).
pub(crate) fn key_stride(n: u32) -> u32 {
    if n <= 2 {
        return 1;
    }
    let gcd = |mut a: u32, mut b: u32| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let mut s = ((n as u64 * 618 / 1000) as u32).max(1);
    while gcd(s, n) != 1 {
        s += 1;
    }
    s
}

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
    #[rustfmt::skip]
    const V4: [Vector; 5] = [
        ([66, 9, 149, 187], [161, 142, 100, 80], 2794, 1766, 0x323e8fc2, 0x51ccc178),
        ([199, 92, 111, 2], [65, 69, 140, 83], 14230, 4739, 0xd718262a, 0xc626b0ea),
        ([24, 19, 198, 95], [12, 22, 207, 184], 12898, 38024, 0xd2d0a5de, 0x5c2b394a),
        ([38, 27, 205, 30], [209, 142, 163, 6], 48228, 2217, 0x82989176, 0xafc7327f),
        ([153, 39, 163, 191], [202, 188, 127, 2], 44251, 1303, 0x5d1809c5, 0x10e828a2),
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
    fn key_stride_is_a_permutation() {
        for n in [1u32, 2, 3, 4, 10, 45, 1000, 32256, 64512] {
            let s = key_stride(n);
            let mut seen = vec![false; n as usize];
            for i in 0..n as u64 {
                seen[(i * s as u64 % n as u64) as usize] = true;
            }
            assert!(seen.iter().all(|&x| x), "n {n} stride {s}");
        }
    }

    #[test]
    fn table_form_passes_the_microsoft_suite() {
        let t = ToeplitzTable::new(&MS_KEY, 12);
        for (src, dst, sp, dp, h_ip, h_tcp) in V4 {
            assert_eq!(t.hash_v4(src, dst, sp, dp), h_tcp);
            assert_eq!(t.at(0, &src) ^ t.at(4, &dst), h_ip);
        }
    }

    proptest::proptest! {
        /// The precomputed form equals the bit-by-bit form for any key
        /// (short keys included: missing bits are zero) and input.
        #[test]
        fn table_equals_bit_by_bit(
            key in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..52),
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=36),
        ) {
            let t = ToeplitzTable::new(&key, 36);
            proptest::prop_assert_eq!(t.hash(&input), toeplitz(&key, &input));
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
