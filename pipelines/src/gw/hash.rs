//! Small non-cryptographic hashes: the flow hash of the up table and a fast
//! `BuildHasher` for the connection-start `HashMap`s of [`GwTables`].
//!
//! Both are seeded multiply-xorshift mixes (the 64-bit finalizer of
//! MurmurHash3). They are not DoS-resistant against an attacker who knows the
//! seed; the up table's seed comes from the config (pick it at random at
//! start) and a full probe window is counted (`flow_table_full`), never
//! waited on.
//!
//! [`GwTables`]: super::tables::GwTables

use std::hash::{BuildHasher, Hasher};

/// MurmurHash3's 64-bit finalizer: a bijection with full avalanche.
#[inline]
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Hash of an up 5-tuple (addresses as big-endian `u32`).
#[inline]
pub fn flow_hash(seed: u64, src: u32, dst: u32, sport: u16, dport: u16, proto: u8) -> u64 {
    let a = ((src as u64) << 32) | dst as u64;
    let b = ((sport as u64) << 24) | ((dport as u64) << 8) | proto as u64;
    fmix64(a ^ fmix64(b ^ seed))
}

/// Hash of a NAT64 up tuple: the IPv6 source, the IPv4 destination embedded
/// in the IPv6 destination (what identifies it: RFC 6052 ignores the
/// suffix), ports, protocol.
#[inline]
pub fn flow_hash6(seed: u64, src: &[u8; 16], dst: u32, sport: u16, dport: u16, proto: u8) -> u64 {
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&src[..8]);
    lo.copy_from_slice(&src[8..]);
    let b = ((dst as u64) << 32) | ((sport as u64) << 16) | dport as u64;
    let h = fmix64(b ^ fmix64(seed ^ proto as u64 ^ 0x6464_0000_0000));
    fmix64(u64::from_be_bytes(hi) ^ fmix64(u64::from_be_bytes(lo) ^ h))
}

/// Hasher for the tables' maps (keys are a few integers).
#[derive(Clone, Copy, Debug, Default)]
pub struct FastHasher {
    h: u64,
}

/// `Hasher` methods that hash a narrower integer as its `u64` value.
macro_rules! widened_to_u64 {
    ($($f:ident: $t:ty,)*) => {$(
        #[inline]
        fn $f(&mut self, v: $t) {
            self.write_u64(v as u64)
        }
    )*};
}

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        fmix64(self.h)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.h = (self.h.rotate_left(23) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    widened_to_u64! {
        write_u32: u32,
        write_u16: u16,
        write_u8: u8,
        write_usize: usize,
    }
}

/// `BuildHasher` for [`FastHasher`] with a fixed seed.
#[derive(Clone, Copy, Debug)]
pub struct FastBuild {
    pub seed: u64,
}

impl Default for FastBuild {
    fn default() -> Self {
        FastBuild {
            seed: 0x243f_6a88_85a3_08d3,
        }
    }
}

impl BuildHasher for FastBuild {
    type Hasher = FastHasher;
    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher { h: self.seed }
    }
}

/// A `HashMap` with the fast hasher.
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastBuild>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_hash_spreads_neighbouring_tuples() {
        // 4096 consecutive source ports into 1024 buckets: no bucket should
        // get more than a handful (a bad mix would put them in a few).
        let mut counts = vec![0u32; 1024];
        for p in 0..4096u16 {
            let h = flow_hash(1, 0x0a00_0001, 0x0a21_0001, 10_000 + p, 80, 6);
            counts[(h & 1023) as usize] += 1;
        }
        assert!(
            *counts.iter().max().unwrap() <= 16,
            "{:?}",
            counts.iter().max()
        );
        assert_ne!(flow_hash(1, 1, 2, 3, 4, 6), flow_hash(2, 1, 2, 3, 4, 6));
        assert_ne!(flow_hash(1, 1, 2, 3, 4, 6), flow_hash(1, 2, 1, 3, 4, 6));
    }

    #[test]
    fn flow_hash6_spreads_and_differs() {
        let mut src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut counts = vec![0u32; 1024];
        for p in 0..4096u16 {
            let h = flow_hash6(1, &src, 0x0a21_0001, 10_000 + p, 80, 6);
            counts[(h & 1023) as usize] += 1;
        }
        assert!(*counts.iter().max().unwrap() <= 16);
        let h = flow_hash6(1, &src, 1, 2, 3, 6);
        assert_ne!(h, flow_hash6(2, &src, 1, 2, 3, 6));
        assert_ne!(h, flow_hash6(1, &src, 1, 3, 2, 6));
        src[3] ^= 1;
        assert_ne!(h, flow_hash6(1, &src, 1, 2, 3, 6));
    }

    /// Hash flooding: tuples an attacker crafted to share a bucket under
    /// one seed (found here by search, as an attacker who knew the seed
    /// would) are spread again under the next seed — the engine draws a
    /// new one from the OS at every start.
    #[test]
    fn colliding_tuples_do_not_collide_under_another_seed() {
        let bucket =
            |seed: u64, p: u16| flow_hash(seed, 0x0a00_0001, 0x0a21_0001, p, 80, 6) & 0xfff;
        let (a, b) = (0x1111_2222_3333_4444u64, 0x5555_6666_7777_8888u64);
        let target = bucket(a, 1);
        let crafted: Vec<u16> = (1..u16::MAX).filter(|&p| bucket(a, p) == target).collect();
        assert!(crafted.len() >= 8, "enough collisions to attack with");
        let mut under_b: Vec<u64> = crafted.iter().map(|&p| bucket(b, p)).collect();
        under_b.sort_unstable();
        under_b.dedup();
        assert!(
            under_b.len() * 10 >= crafted.len() * 9,
            "{} crafted tuples fall in only {} buckets under another seed",
            crafted.len(),
            under_b.len()
        );
    }

    #[test]
    fn fast_map_works() {
        let mut m: FastMap<u64, u32> = FastMap::default();
        for i in 0..1000u64 {
            m.insert(i << 16, i as u32);
        }
        for i in 0..1000u64 {
            assert_eq!(m.get(&(i << 16)), Some(&(i as u32)));
        }
    }
}
