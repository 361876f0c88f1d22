//! NAT keys: where a (pool address, port) belongs, and which one a new
//! connection gets.
//!
//! ## Ownership (which worker)
//! The usable ports are the key port range minus the reserved health-probe
//! range, numbered by a *virtual index* `v` in `0..usable`. Worker `w` of
//! `n` owns the virtual indices `w * ppw .. (w + 1) * ppw` (`ppw = usable /
//! n`, the remainder unused) on **every** pool address, so the owner of a
//! down packet's key is arithmetic, with no shared state: `owner = v / ppw`
//! computed as a multiply-shift by a precomputed inverse (exact for 16-bit
//! operands, checked for every port by a test), no division per packet. A
//! pool address is found in an open-addressing table (O(1)).
//!
//! ## Uniqueness per destination (RFC 4787/7857, as nf_nat and VPP
//! nat44-ed do)
//! A key's server-side tuple is (pool address, key port, server address,
//! server port, protocol). The key port is unique per *destination*, not
//! globally: several connections to different servers may share a key, and
//! the down path tells them apart by the server (a short chain of entries
//! per key: [`Hot::key_next`](super::entry::Hot::key_next)). A connection
//! starting to destination D takes:
//! 1. the **subscriber's own source port** if this worker owns it and no
//!    entry for D holds it (port preservation, as nf_nat: the server then
//!    sees a reused tuple only from the same subscriber 4-tuple, whose ISN
//!    and timestamps keep increasing, and its TIME_WAIT accepts it);
//! 2. else the next key in a rotation over the worker's ports of the
//!    subscriber's pool address (paired pooling, RFC 4787 REQ-2: one
//!    subscriber, one pool address, chosen by a hash of its address) that
//!    no entry for D holds, trying at most [`TRIES`] keys there and as many
//!    on the next pool addresses; the rotation reuses a key as late as
//!    possible;
//! 3. with RSS steering, among those candidates the first whose down
//!    packets land on this worker's RX queue ([`super::rss`]) for the first
//!    `probe` tries.
//!
//! Closed connections keep their entry (and so their key for D) on hold —
//! see the module docs of [`super`] for the holds — which is what keeps a
//! (key, D) tuple out of use while the server may still hold it in
//! TIME_WAIT.

use super::config::GwConfig;

/// Keys looked at per pool address before trying the next one.
pub const TRIES: u32 = 16;

/// The NAT key space derived from a config (see the module docs).
#[derive(Clone, Debug)]
pub struct KeySpace {
    pool: Vec<[u8; 4]>,
    first: u16,
    last: u16,
    /// Reserved range clipped to `first..=last`, if not empty.
    rsv: Option<(u16, u16)>,
    /// The probe range as configured (answers to it go to the management
    /// thread even when it lies outside the key range).
    probe: Option<(u16, u16)>,
    /// Open addressing: (address, index + 1), 0 = empty.
    pool_map: Vec<(u32, u32)>,
    pool_mask: usize,
    /// Usable ports (range minus reserved).
    pub usable: u32,
    /// Ports (virtual indices) per worker.
    pub per_worker: u32,
    /// ceil(2^32 / per_worker): `v * inv >> 32 == v / per_worker`.
    inv: u64,
    workers: u16,
}

/// Where a (pool address, port) falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyLoc {
    /// Not one of our pool addresses.
    NotPool,
    /// A pool address, port in the reserved health-probe range.
    Reserved,
    /// A pool address, port outside the key range or in the unused remainder.
    Unowned,
    /// A key of worker `owner`: `pool_idx`, and `off` = its offset inside
    /// the owner's port slice.
    Key { owner: u16, pool_idx: u32, off: u32 },
}

#[inline(always)]
fn mix32(a: u32) -> u32 {
    let x = (a ^ (a >> 16)).wrapping_mul(0x7feb_352d);
    let x = (x ^ (x >> 15)).wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

impl KeySpace {
    pub fn new(cfg: &GwConfig) -> KeySpace {
        let (first, last) = (cfg.key_port_first, cfg.key_port_last);
        let rsv = cfg.reserved_ports.and_then(|(lo, hi)| {
            let (lo, hi) = (lo.max(first), hi.min(last));
            (lo <= hi).then_some((lo, hi))
        });
        let total = if first <= last {
            (last - first) as u32 + 1
        } else {
            0
        };
        let usable = total - rsv.map_or(0, |(lo, hi)| (hi - lo) as u32 + 1);
        let per_worker = usable / (cfg.workers.max(1) as u32);
        let size = (cfg.pool.len() * 2).next_power_of_two().max(8);
        let mut pool_map = vec![(0u32, 0u32); size];
        for (i, a) in cfg.pool.iter().enumerate() {
            let a = u32::from_be_bytes(*a);
            let mut s = mix32(a) as usize & (size - 1);
            while pool_map[s].1 != 0 {
                s = (s + 1) & (size - 1);
            }
            pool_map[s] = (a, i as u32 + 1);
        }
        KeySpace {
            pool: cfg.pool.clone(),
            first,
            last,
            rsv,
            probe: cfg.reserved_ports,
            pool_map,
            pool_mask: size - 1,
            usable,
            per_worker,
            inv: if per_worker == 0 {
                0
            } else {
                (1u64 << 32).div_ceil(per_worker as u64)
            },
            workers: cfg.workers.max(1),
        }
    }

    pub fn pool(&self) -> &[[u8; 4]] {
        &self.pool
    }

    /// Index of `addr` in the pool (O(1): a probe or two of a small table).
    #[inline]
    pub fn pool_index(&self, addr: [u8; 4]) -> Option<u32> {
        let a = u32::from_be_bytes(addr);
        let mut s = mix32(a) as usize & self.pool_mask;
        loop {
            let (x, i) = self.pool_map[s];
            if i == 0 {
                return None;
            }
            if x == a {
                return Some(i - 1);
            }
            s = (s + 1) & self.pool_mask;
        }
    }

    /// The pool address a subscriber's connections use (paired pooling):
    /// `h` is a hash of the subscriber address.
    #[inline]
    pub fn paired_pool(&self, h: u32) -> u32 {
        ((h as u64 * self.pool.len() as u64) >> 32) as u32
    }

    /// Virtual index of a usable port.
    #[inline]
    fn vindex(&self, port: u16) -> Option<u32> {
        if port < self.first || port > self.last {
            return None;
        }
        let off = (port - self.first) as u32;
        match self.rsv {
            None => Some(off),
            Some((lo, _)) if port < lo => Some(off),
            Some((lo, hi)) if port > hi => Some(off - ((hi - lo) as u32 + 1)),
            Some(_) => None,
        }
    }

    /// Port of a virtual index (`v < usable`).
    #[inline]
    fn port_of(&self, v: u32) -> u16 {
        let p = self.first as u32 + v;
        match self.rsv {
            Some((lo, hi)) if p >= lo as u32 => (p + (hi - lo) as u32 + 1) as u16,
            _ => p as u16,
        }
    }

    /// In the configured probe range (which may lie outside the key range).
    #[inline]
    fn is_reserved(&self, port: u16) -> bool {
        matches!(self.probe, Some((lo, hi)) if (lo..=hi).contains(&port))
    }

    /// (owner, offset) of a virtual index, with no division.
    #[inline(always)]
    fn owner_off(&self, v: u32) -> (u32, u32) {
        let owner = ((v as u64 * self.inv) >> 32) as u32;
        (owner, v - owner * self.per_worker)
    }

    /// Where port `port` of pool address `pool_idx` falls.
    #[inline]
    pub fn locate_port(&self, pool_idx: u32, port: u16) -> KeyLoc {
        if self.is_reserved(port) {
            return KeyLoc::Reserved;
        }
        let Some(v) = self.vindex(port) else {
            return KeyLoc::Unowned;
        };
        let (owner, off) = self.owner_off(v);
        if owner >= self.workers as u32 {
            return KeyLoc::Unowned;
        }
        KeyLoc::Key {
            owner: owner as u16,
            pool_idx,
            off,
        }
    }

    /// Locate a key.
    #[inline]
    pub fn locate(&self, addr: [u8; 4], port: u16) -> KeyLoc {
        match self.pool_index(addr) {
            None => KeyLoc::NotPool,
            Some(p) => self.locate_port(p, port),
        }
    }

    /// The offset of `port` in worker `w`'s slice, if `w` owns it.
    #[inline]
    pub fn own_offset(&self, w: u16, port: u16) -> Option<u32> {
        if self.is_reserved(port) {
            return None;
        }
        let (owner, off) = self.owner_off(self.vindex(port)?);
        (owner == w as u32).then_some(off)
    }

    /// Keys one worker owns.
    pub fn keys_per_worker(&self) -> u32 {
        self.per_worker * self.pool.len() as u32
    }

    /// Index of a key in its owner's key table.
    #[inline]
    pub fn key_index(&self, pool_idx: u32, off: u32) -> u32 {
        pool_idx * self.per_worker + off
    }

    /// The port of offset `off` in worker `w`'s slice.
    #[inline]
    pub fn port_at(&self, w: u16, off: u32) -> u16 {
        self.port_of(w as u32 * self.per_worker + off)
    }

    /// (pool address, port) of key `idx` of worker `worker` (not on the
    /// packet path: a division).
    pub fn key_addr(&self, worker: u16, idx: u32) -> ([u8; 4], u16) {
        let pool_idx = idx / self.per_worker;
        let off = idx % self.per_worker;
        (self.pool[pool_idx as usize], self.port_at(worker, off))
    }
}

/// Which worker owns key (`pool_addr`, `port`); `None` if it is no key
/// (not a pool address, reserved, out of range or in the unused remainder).
pub fn key_owner(cfg: &GwConfig, pool_addr: [u8; 4], port: u16) -> Option<u16> {
    match KeySpace::new(cfg).locate(pool_addr, port) {
        KeyLoc::Key { owner, .. } => Some(owner),
        _ => None,
    }
}

/// A rotation over `n` offsets by a fixed stride coprime to `n` (a
/// permutation: every offset once per `n` steps), without division.
#[derive(Clone, Copy, Debug)]
pub struct Rotation {
    pub at: u32,
    stride: u32,
    n: u32,
}

impl Rotation {
    pub fn new(n: u32, stride: u32) -> Rotation {
        Rotation {
            at: 0,
            stride: if n == 0 { 0 } else { stride % n },
            n,
        }
    }
    /// The current offset, then step.
    #[inline]
    pub fn step(&mut self) -> u32 {
        let v = self.at;
        self.at += self.stride;
        if self.at >= self.n {
            self.at -= self.n;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gw::config::tests::cfg;

    #[test]
    fn owner_by_multiply_shift_is_exact_for_every_port() {
        for (workers, first, last) in [
            (1, 1, 65535),
            (2, 1024, 65535),
            (3, 1000, 1099),
            (7, 1024, 65535),
            (16, 1024, 65535),
            (5, 1, 13),
        ] {
            let cfg = GwConfig {
                pool: vec![[10, 0, 0, 1]],
                key_port_first: first,
                key_port_last: last,
                workers,
                ..GwConfig::default()
            };
            let ks = KeySpace::new(&cfg);
            for v in 0..ks.usable {
                let (o, off) = ks.owner_off(v);
                assert_eq!(
                    (o, off),
                    (v / ks.per_worker, v % ks.per_worker),
                    "v {v} workers {workers}"
                );
            }
        }
    }

    #[test]
    fn pool_index_is_exact() {
        let pool: Vec<[u8; 4]> = (0..256u32).map(|i| [10, 81, 0, i as u8]).collect();
        let cfg = GwConfig {
            pool: pool.clone(),
            ..GwConfig::default()
        };
        let ks = KeySpace::new(&cfg);
        for (i, a) in pool.iter().enumerate() {
            assert_eq!(ks.pool_index(*a), Some(i as u32));
        }
        assert_eq!(ks.pool_index([10, 81, 1, 0]), None);
        assert_eq!(ks.pool_index([0, 0, 0, 0]), None);
    }

    #[test]
    fn probe_range_outside_the_key_range_is_still_reserved() {
        let cfg = GwConfig {
            pool: vec![[10, 0, 0, 1]],
            key_port_first: 1024,
            key_port_last: 59999,
            reserved_ports: Some((60000, 60999)),
            ..GwConfig::default()
        };
        let ks = KeySpace::new(&cfg);
        assert!(matches!(ks.locate([10, 0, 0, 1], 60500), KeyLoc::Reserved));
        assert!(matches!(ks.locate([10, 0, 0, 1], 61000), KeyLoc::Unowned));
        assert_eq!(ks.usable, 59999 - 1024 + 1);
    }

    #[test]
    fn key_space_partitions_ports_and_skips_reserved() {
        let c = cfg(3, Some((1010, 1019)));
        c.validate().unwrap();
        let ks = KeySpace::new(&c);
        assert_eq!(ks.usable, 90);
        assert_eq!(ks.per_worker, 30);
        let mut seen = std::collections::HashSet::new();
        for w in 0..3u16 {
            for idx in 0..ks.keys_per_worker() {
                let (a, p) = ks.key_addr(w, idx);
                assert!(!(1010..=1019).contains(&p), "reserved port {p} handed out");
                assert!((1000..=1099).contains(&p));
                assert!(seen.insert((a, p)), "key {a:?}:{p} twice");
                let pool_idx = ks.pool_index(a).unwrap();
                let off = idx % ks.per_worker;
                assert_eq!(
                    ks.locate(a, p),
                    KeyLoc::Key {
                        owner: w,
                        pool_idx,
                        off
                    }
                );
                assert_eq!(ks.own_offset(w, p), Some(off));
                assert_eq!(ks.own_offset((w + 1) % 3, p), None);
                assert_eq!(ks.key_index(pool_idx, off), idx);
                assert_eq!(key_owner(&c, a, p), Some(w));
            }
        }
        assert_eq!(seen.len(), 180);
        assert_eq!(ks.locate([192, 0, 2, 1], 1015), KeyLoc::Reserved);
        assert_eq!(ks.own_offset(0, 1015), None);
        assert_eq!(key_owner(&c, [192, 0, 2, 1], 1015), None);
        assert_eq!(ks.locate([192, 0, 2, 1], 999), KeyLoc::Unowned);
        assert_eq!(ks.locate([192, 0, 2, 9], 1050), KeyLoc::NotPool);
        assert_eq!(key_owner(&c, [192, 0, 2, 9], 1050), None);
    }

    #[test]
    fn remainder_ports_are_unowned() {
        let c = cfg(3, None); // 100 ports, 33 each, 1 left over
        let ks = KeySpace::new(&c);
        assert_eq!(ks.per_worker, 33);
        assert_eq!(ks.locate([192, 0, 2, 1], 1099), KeyLoc::Unowned);
        assert_eq!(key_owner(&c, [192, 0, 2, 1], 1099), None);
        assert_eq!(key_owner(&c, [192, 0, 2, 1], 1098), Some(2));
    }

    #[test]
    fn rotation_visits_every_offset_once_per_turn() {
        for (n, stride) in [(1u32, 1u32), (10, 3), (64512, 39869), (7, 1)] {
            let mut r = Rotation::new(n, stride);
            let mut seen = vec![false; n as usize];
            for _ in 0..n {
                let v = r.step();
                assert!(!seen[v as usize]);
                seen[v as usize] = true;
            }
            assert_eq!(r.step(), 0, "back at the start after n steps");
        }
    }
}
