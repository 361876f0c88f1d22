//! Static GW configuration (from the profile) and the NAT key space.
//!
//! `GwConfig` is built once at start, validated, and shared read-only by
//! every worker (each `GwWorker` keeps its own copy). Nothing in it changes
//! while the engine runs; what changes (groups, sessions, neighbours) lives in
//! [`GwTables`](super::tables::GwTables).
//!
//! ## Key space
//! A NAT key is a (pool address, port) pair. The usable ports are the key
//! port range minus the reserved health-probe range; they are numbered by a
//! *virtual index* `v` in `0..usable`. Worker `w` of `n` owns the virtual
//! indices `w * ppw .. (w + 1) * ppw` (`ppw = usable / n`, the remainder
//! `usable % n` ports are unused) on **every** pool address. So the owner of
//! a key is pure arithmetic: [`key_owner`]. Inside a worker, key `(pool_idx,
//! v)` has the index `pool_idx * ppw + (v - w * ppw)` in its key table.

use crate::verdict::PortIdx;
use crate::xlat::{Prefix, XlatConfig};

/// Per-state idle timeouts, in milliseconds of the caller's monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GwTimeouts {
    /// TCP: SYN sent up, no answer from the server yet.
    pub syn_ms: u64,
    /// TCP: established (handshake seen).
    pub established_ms: u64,
    /// TCP: one FIN seen (half closed).
    pub closing_ms: u64,
    /// UDP flows.
    pub udp_ms: u64,
    /// ICMP echo flows.
    pub icmp_ms: u64,
    /// After a connection closes (or expires) its key rests this long before
    /// it can be handed out again, so that a server still in TIME_WAIT for
    /// (pool address, key port) never sees the same 4-tuple reused early.
    /// Late packets of a connection closed by FIN/RST are still translated
    /// during the hold.
    pub close_hold_ms: u64,
}

impl Default for GwTimeouts {
    fn default() -> Self {
        GwTimeouts {
            syn_ms: 20_000,
            established_ms: 7_200_000,
            closing_ms: 60_000,
            udp_ms: 60_000,
            icmp_ms: 30_000,
            close_hold_ms: 60_000,
        }
    }
}

/// Static configuration of the GW stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GwConfig {
    /// Port facing the LBs / subscribers (up packets arrive here).
    pub access_port: PortIdx,
    /// Port facing the servers (down packets arrive here). May equal
    /// `access_port` (one-arm): then a packet whose destination is a pool
    /// address is a down packet, anything else an up packet.
    pub server_port: PortIdx,
    /// Our MAC on `access_port`.
    pub access_mac: [u8; 6],
    /// Our MAC on `server_port`.
    pub server_mac: [u8; 6],
    /// SNAT pool: the GW addresses used as source toward the servers.
    /// At most [`GwConfig::MAX_POOL`] addresses, no duplicates.
    pub pool: Vec<[u8; 4]>,
    /// First port of the key range (inclusive).
    pub key_port_first: u16,
    /// Last port of the key range (inclusive).
    pub key_port_last: u16,
    /// Ports reserved for the management thread's health probes (inclusive
    /// range, clipped to the key range); down packets to them are `Control`.
    pub reserved_ports: Option<(u16, u16)>,
    /// Number of workers (each owns a slice of the key space).
    pub workers: u16,
    pub timeouts: GwTimeouts,
    /// Maximum concurrent flows per worker (also bounded by the worker's
    /// number of keys). The up table has `next_pow2(2 * limit)` slots.
    pub max_flows_per_worker: u32,
    /// Distinct server addresses a worker tracks connection counts for
    /// (least connections), `1..=16384`; the table has `next_pow2(2 x)`
    /// slots of 8 bytes.
    pub max_servers: u32,
    /// A new connection needs an active session for its source address
    /// (IPv4), or for a prefix holding it (IPv6 subscribers, NAT64: see
    /// [`Sessions::get6`](super::tables::Sessions::get6)).
    pub require_session: bool,
    /// Router toward the servers, used when a server (or a plain, non-VIP
    /// destination) has no neighbour entry.
    pub server_next_hop_mac: Option<[u8; 6]>,
    /// Seed of the flow hash (pick it at random at start).
    pub hash_seed: u64,
    /// TCP MSS clamp on SYNs going up (to the servers): an MSS option larger
    /// than this is lowered to it. `None`: off.
    pub mss_clamp_up: Option<u16>,
    /// TCP MSS clamp on SYN-ACKs going down (to the subscribers, the
    /// wireless side). `None`: off.
    pub mss_clamp_down: Option<u16>,
    /// Cap of the TCP window field in segments going down, applied only to
    /// connections that did not negotiate window scaling (see the GW module
    /// docs). `None`: off.
    pub window_cap_down: Option<u16>,
    /// RSS-steered key choice (see [`RssSteer`]). `None`: off, keys are
    /// taken strictly in FIFO order.
    pub rss: Option<RssSteer>,
    /// NAT64 of IPv6 subscribers (see the GW module docs). `None`: off,
    /// IPv6 frames are dropped as `unsupported_ethertype`.
    pub nat64: Option<Nat64Cfg>,
    /// NAT66 source addresses, paired one to one with `pool`: a NAT66
    /// connection on key (`pool[i]`, port) leaves from (`pool6[i]`, port),
    /// so NAT66 and IPv4 connections share the keys. Empty: no NAT66.
    pub pool6: Vec<[u8; 16]>,
}

/// How the NIC on `server_port` spreads down packets over RX queues, so a
/// worker can pick keys whose down packets land on its own queue (worker
/// `w` polls queue `w`).
///
/// The engine fills it from the port after configuring RSS: `key` from
/// `rte_eth_dev_rss_hash_conf_get` (or the key it set itself), `reta` from
/// `rte_eth_dev_rss_reta_query` over `dev_info.reta_size` entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RssSteer {
    /// The Toeplitz key, as the NIC holds it (40 bytes on most NICs, 52 on
    /// i40e/ice). Only the first 16 bytes matter for an IPv4 4-tuple.
    pub key: Vec<u8>,
    /// The redirection table: the RX queue of each entry. The NIC takes
    /// entry `hash & (reta.len() - 1)`: the length is a power of two.
    pub reta: Vec<u16>,
    /// Free keys looked at per connection start (`1..=256`).
    pub probe: u16,
    /// The NIC hashes TCP on the 4-tuple (ports included); `false`: on the
    /// addresses only (RSS type IPv4 without NONFRAG_IPV4_TCP).
    pub ports_tcp: bool,
    /// The same for UDP.
    pub ports_udp: bool,
}

impl RssSteer {
    /// Default probe depth: with 2 queues a key is steered with
    /// probability 1 - 2^-8; with 4, 1 - 0.75^8 = 0.90.
    pub const PROBE: u16 = 8;

    /// `key` and `reta` with the defaults: probe [`Self::PROBE`] keys, TCP
    /// and UDP hashed on the 4-tuple (ICMP always on the addresses).
    pub fn new(key: Vec<u8>, reta: Vec<u16>) -> RssSteer {
        RssSteer {
            key,
            reta,
            probe: Self::PROBE,
            ports_tcp: true,
            ports_udp: true,
        }
    }
}

/// NAT64 settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nat64Cfg {
    /// IPv6 destinations under this prefix are NAT64'd to the embedded IPv4
    /// address (RFC 6052); the reply's IPv6 source is the embedding of the
    /// original IPv4 destination (the VIP).
    pub prefix: Prefix,
    /// Link MTUs for the translator; `mtu6` also bounds the IPv6 packets
    /// sent to subscribers (larger ones are dropped as `too_big`).
    pub xlat: XlatConfig,
}

impl Default for Nat64Cfg {
    fn default() -> Self {
        Nat64Cfg {
            prefix: Prefix::WELL_KNOWN,
            xlat: XlatConfig::default(),
        }
    }
}

impl Default for GwConfig {
    fn default() -> Self {
        GwConfig {
            access_port: 0,
            server_port: 1,
            access_mac: [0x02, 0, 0, 0, 0, 0x01],
            server_mac: [0x02, 0, 0, 0, 0, 0x02],
            pool: Vec::new(),
            key_port_first: 1024,
            key_port_last: 65535,
            reserved_ports: None,
            workers: 1,
            timeouts: GwTimeouts::default(),
            max_flows_per_worker: 65_536,
            max_servers: 1024,
            require_session: true,
            server_next_hop_mac: None,
            hash_seed: 0x9e37_79b9_7f4a_7c15,
            mss_clamp_up: None,
            mss_clamp_down: None,
            window_cap_down: None,
            rss: None,
            nat64: None,
            pool6: Vec::new(),
        }
    }
}

impl GwConfig {
    /// Most pool addresses a config may have (the down path scans the pool).
    pub const MAX_POOL: usize = 256;
    /// Smallest MSS clamp accepted (the IPv4 minimum MTU, 68, minus 40
    /// bytes of headers is 28; anything this small is a typo).
    pub const MIN_MSS_CLAMP: u16 = 88;

    /// Check the config; the error names the key and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.pool.is_empty() {
            return Err("gw.pool: empty; list at least one SNAT address".into());
        }
        if self.pool.len() > Self::MAX_POOL {
            return Err(format!(
                "gw.pool: {} addresses, at most {} are supported; use fewer",
                self.pool.len(),
                Self::MAX_POOL
            ));
        }
        for (i, a) in self.pool.iter().enumerate() {
            if self.pool[..i].contains(a) {
                return Err(format!(
                    "gw.pool: address {a:?} listed twice; remove the duplicate"
                ));
            }
        }
        if self.key_port_first == 0 || self.key_port_first > self.key_port_last {
            return Err(format!(
                "gw.key_ports: {}..={} is empty or starts at 0; use e.g. 1024..=65535",
                self.key_port_first, self.key_port_last
            ));
        }
        if let Some((lo, hi)) = self.reserved_ports {
            if lo > hi {
                return Err(format!(
                    "gw.reserved_ports: {lo}..={hi} is reversed; write low..=high"
                ));
            }
        }
        if self.workers == 0 {
            return Err("gw.workers: 0; need at least one worker".into());
        }
        let ks = KeySpace::new(self);
        if ks.per_worker == 0 {
            return Err(format!(
                "gw.key_ports: {} usable ports for {} workers, less than one each; widen the range or shrink gw.reserved_ports",
                ks.usable, self.workers
            ));
        }
        if (ks.per_worker as u64) * (self.pool.len() as u64) >= u32::MAX as u64 / 2 {
            return Err("gw.pool: too many keys per worker".into());
        }
        if self.max_flows_per_worker == 0 || self.max_flows_per_worker > (1 << 30) {
            return Err("gw.max_flows_per_worker: must be in 1..=2^30".into());
        }
        if self.max_servers == 0 || self.max_servers > 1 << 14 {
            return Err("gw.max_servers: must be in 1..=16384".into());
        }
        for (key, v) in [
            ("gw.mss_clamp_up", self.mss_clamp_up),
            ("gw.mss_clamp_down", self.mss_clamp_down),
        ] {
            if matches!(v, Some(m) if m < Self::MIN_MSS_CLAMP) {
                return Err(format!(
                    "{key}: {} is below {}; use the link MTU minus 40 (IPv4) or 60 (IPv6), e.g. 1360, or leave it out",
                    v.unwrap_or(0),
                    Self::MIN_MSS_CLAMP
                ));
            }
        }
        if self.window_cap_down == Some(0) {
            return Err(
                "gw.window_cap_down: 0 would stall every connection; use e.g. 65535 or leave it out"
                    .into(),
            );
        }
        if let Some(r) = &self.rss {
            if r.key.len() < 16 {
                return Err(format!(
                    "gw.rss.key: {} bytes; the Toeplitz hash of an IPv4 4-tuple needs at least 16 (pass the NIC's whole key)",
                    r.key.len()
                ));
            }
            if r.reta.is_empty() || !r.reta.len().is_power_of_two() || r.reta.len() > 1 << 16 {
                return Err(format!(
                    "gw.rss.reta: {} entries; the NIC's redirection table has a power of two (e.g. 128 or 512)",
                    r.reta.len()
                ));
            }
            if let Some((i, q)) = r.reta.iter().enumerate().find(|(_, &q)| q >= self.workers) {
                return Err(format!(
                    "gw.rss.reta[{i}]: queue {q}, but only {} workers poll queues 0..{}; configure the RETA over the workers' queues",
                    self.workers, self.workers
                ));
            }
            if r.probe == 0 || r.probe > 256 {
                return Err(format!("gw.rss.probe: {}; use 1..=256, e.g. 8", r.probe));
            }
        }
        if let Some(n) = &self.nat64 {
            if n.xlat.mtu6 < 1280 {
                return Err(format!(
                    "gw.nat64.mtu6: {} is below the IPv6 minimum 1280; use the access link's MTU",
                    n.xlat.mtu6
                ));
            }
            if n.xlat.mtu4 < 68 {
                return Err(format!(
                    "gw.nat64.mtu4: {} is below the IPv4 minimum 68; use the server link's MTU",
                    n.xlat.mtu4
                ));
            }
        }
        if !self.pool6.is_empty() && self.pool6.len() != self.pool.len() {
            return Err(format!(
                "gw.pool6: {} addresses for {} in gw.pool; NAT66 pairs them one to one, list as many",
                self.pool6.len(),
                self.pool.len()
            ));
        }
        for (i, a) in self.pool6.iter().enumerate() {
            if self.pool6[..i].contains(a) || *a == [0; 16] {
                return Err(format!(
                    "gw.pool6: address {} is :: or listed twice; fix or remove it",
                    std::net::Ipv6Addr::from(*a)
                ));
            }
        }
        if self.timeouts.close_hold_ms == 0 {
            return Err(
                "gw.timeouts.close_hold_ms: 0 would reuse a key at once; use e.g. 60000".into(),
            );
        }
        Ok(())
    }
}

/// The NAT key space derived from a config (see the module docs).
#[derive(Clone, Debug)]
pub struct KeySpace {
    pool: Vec<[u8; 4]>,
    first: u16,
    last: u16,
    /// Reserved range clipped to `first..=last`, if not empty.
    rsv: Option<(u16, u16)>,
    /// (address, index) sorted by address, for `pool_index` on large pools.
    pool_sorted: Vec<(u32, u32)>,
    /// The probe range as configured (answers to it go to the management
    /// thread even when it lies outside the key range).
    probe: Option<(u16, u16)>,
    /// Usable ports (range minus reserved).
    pub usable: u32,
    /// Ports (virtual indices) per worker.
    pub per_worker: u32,
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
        KeySpace {
            pool: cfg.pool.clone(),
            first,
            last,
            rsv,
            pool_sorted: {
                let mut v: Vec<(u32, u32)> = cfg
                    .pool
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (u32::from_be_bytes(*a), i as u32))
                    .collect();
                v.sort_unstable();
                v
            },
            probe: cfg.reserved_ports,
            usable,
            per_worker,
            workers: cfg.workers.max(1),
        }
    }

    pub fn pool(&self) -> &[[u8; 4]] {
        &self.pool
    }

    /// Index of `addr` in the pool: a scan of small pools, a binary search
    /// over the sorted addresses of large ones (at most 8 compares for
    /// `MAX_POOL`); this is on every down packet.
    #[inline]
    pub fn pool_index(&self, addr: [u8; 4]) -> Option<u32> {
        if self.pool.len() <= 8 {
            return self.pool.iter().position(|a| *a == addr).map(|i| i as u32);
        }
        let a = u32::from_be_bytes(addr);
        self.pool_sorted
            .binary_search_by_key(&a, |&(x, _)| x)
            .ok()
            .map(|i| self.pool_sorted[i].1)
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
    fn is_reserved(&self, port: u16) -> bool {
        matches!(self.probe, Some((lo, hi)) if (lo..=hi).contains(&port))
    }

    /// Locate a key. O(pool) for the address, O(1) for the port.
    #[inline]
    pub fn locate(&self, addr: [u8; 4], port: u16) -> KeyLoc {
        let Some(pool_idx) = self.pool_index(addr) else {
            return KeyLoc::NotPool;
        };
        if self.is_reserved(port) {
            return KeyLoc::Reserved;
        }
        let Some(v) = self.vindex(port) else {
            return KeyLoc::Unowned;
        };
        let owner = v / self.per_worker;
        if owner >= self.workers as u32 {
            return KeyLoc::Unowned;
        }
        KeyLoc::Key {
            owner: owner as u16,
            pool_idx,
            off: v % self.per_worker,
        }
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

    /// (pool address, port) of key `idx` of worker `worker`.
    #[inline]
    pub fn key_addr(&self, worker: u16, idx: u32) -> ([u8; 4], u16) {
        let pool_idx = idx / self.per_worker;
        let off = idx % self.per_worker;
        let v = worker as u32 * self.per_worker + off;
        (self.pool[pool_idx as usize], self.port_of(v))
    }
}

/// Which worker owns key (`pool_addr`, `port`); `None` if it is no key
/// (not a pool address, reserved, out of range or in the unused remainder).
pub fn key_owner(cfg: &GwConfig, pool_addr: [u8; 4], port: u16) -> Option<u16> {
    // Same arithmetic as `KeySpace::locate`, without building a KeySpace.
    cfg.pool.iter().position(|a| *a == pool_addr)?;
    let (first, last) = (cfg.key_port_first, cfg.key_port_last);
    if port < first || port > last {
        return None;
    }
    let mut v = (port - first) as u32;
    let mut usable = (last - first) as u32 + 1;
    if let Some((lo, hi)) = cfg.reserved_ports {
        let (lo, hi) = (lo.max(first), hi.min(last));
        if lo <= hi {
            if (lo..=hi).contains(&port) {
                return None;
            }
            let n = (hi - lo) as u32 + 1;
            usable -= n;
            if port > hi {
                v -= n;
            }
        }
    }
    let ppw = usable / cfg.workers.max(1) as u32;
    if ppw == 0 {
        return None;
    }
    let owner = v / ppw;
    (owner < cfg.workers as u32).then_some(owner as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_pools_are_indexed_by_binary_search() {
        let pool: Vec<[u8; 4]> = (0..256u32)
            .rev()
            .map(|i| [10, 81, (i >> 8) as u8 + 1, i as u8])
            .collect();
        let cfg = GwConfig {
            pool: pool.clone(),
            ..GwConfig::default()
        };
        cfg.validate().unwrap();
        let ks = KeySpace::new(&cfg);
        for (i, a) in pool.iter().enumerate() {
            assert_eq!(ks.pool_index(*a), Some(i as u32));
        }
        assert_eq!(ks.pool_index([10, 81, 9, 9]), None);
        assert!(GwConfig {
            pool: (0..257u32)
                .map(|i| [10, 82, (i >> 8) as u8, i as u8])
                .collect(),
            ..GwConfig::default()
        }
        .validate()
        .is_err());
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

    fn cfg(workers: u16, rsv: Option<(u16, u16)>) -> GwConfig {
        GwConfig {
            pool: vec![[192, 0, 2, 1], [192, 0, 2, 2]],
            key_port_first: 1000,
            key_port_last: 1099,
            reserved_ports: rsv,
            workers,
            ..GwConfig::default()
        }
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
                let loc = ks.locate(a, p);
                let pool_idx = ks.pool_index(a).unwrap();
                let off = idx % ks.per_worker;
                assert_eq!(
                    loc,
                    KeyLoc::Key {
                        owner: w,
                        pool_idx,
                        off
                    }
                );
                assert_eq!(ks.key_index(pool_idx, off), idx);
                assert_eq!(key_owner(&c, a, p), Some(w));
            }
        }
        assert_eq!(seen.len(), 180);
        assert_eq!(ks.locate([192, 0, 2, 1], 1015), KeyLoc::Reserved);
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
    fn validate_names_the_key() {
        let mut c = cfg(1, None);
        c.pool.clear();
        assert!(c.validate().unwrap_err().contains("gw.pool"));
        let mut c = cfg(200, None);
        c.key_port_last = 1050;
        assert!(c.validate().unwrap_err().contains("gw.key_ports"));
        let mut c = cfg(1, None);
        c.pool.push([192, 0, 2, 1]);
        assert!(c.validate().unwrap_err().contains("twice"));
        let mut c = cfg(1, None);
        c.mss_clamp_down = Some(40);
        assert!(c.validate().unwrap_err().contains("gw.mss_clamp_down"));
        c.mss_clamp_down = Some(1360);
        c.mss_clamp_up = Some(1360);
        c.window_cap_down = Some(0);
        assert!(c.validate().unwrap_err().contains("gw.window_cap_down"));
        c.window_cap_down = Some(16384);
        c.validate().unwrap();
    }

    #[test]
    fn validate_rss_and_nat64() {
        let ok = RssSteer::new(vec![0x6d; 40], vec![0, 1, 0, 1]);
        let with = |r: RssSteer| GwConfig {
            rss: Some(r),
            ..cfg(2, None)
        };
        with(ok.clone()).validate().unwrap();
        let e = with(RssSteer::new(vec![1; 12], vec![0, 1]))
            .validate()
            .unwrap_err();
        assert!(e.contains("gw.rss.key"), "{e}");
        let e = with(RssSteer::new(vec![1; 40], vec![0, 1, 0]))
            .validate()
            .unwrap_err();
        assert!(e.contains("gw.rss.reta:"), "{e}");
        let e = with(RssSteer::new(vec![1; 40], vec![0, 2]))
            .validate()
            .unwrap_err();
        assert!(e.contains("gw.rss.reta[1]"), "{e}");
        let e = with(RssSteer { probe: 0, ..ok }).validate().unwrap_err();
        assert!(e.contains("gw.rss.probe"), "{e}");
        let mut n = Nat64Cfg::default();
        let c = GwConfig {
            nat64: Some(n),
            ..cfg(1, None)
        };
        c.validate().unwrap();
        n.xlat.mtu6 = 1200;
        let e = GwConfig {
            nat64: Some(n),
            ..cfg(1, None)
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("gw.nat64.mtu6"), "{e}");
        // new fields default to off
        assert_eq!(
            (GwConfig::default().rss, GwConfig::default().nat64),
            (None, None)
        );
    }
}
