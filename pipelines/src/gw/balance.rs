//! Server choice for a new connection (S43), per worker.
//!
//! State is per worker and never shared: round-robin cursors (one per group
//! index, [`RR_CURSORS`] of them, groups beyond share a cursor modulo) and the
//! open-connection count per server address for least connections. Hence
//! least connections and round robin are *per core*, as in VPP's lb plugin
//! and DPVS: each worker balances the connections it opens.
//!
//! Policies (over the members that are `up`; none → `None`, the caller drops
//! with `no_server`):
//! * round robin: the `k`-th up member, `k` = cursor mod up count;
//! * weighted round robin: position `p = (cursor mod W) * stride mod W` in the
//!   cumulative weights (`W` = sum of up weights, `stride` coprime to `W`), so
//!   every `W` consecutive choices give each member exactly its weight, and
//!   the sequence is interleaved rather than in runs;
//! * least connections: fewest open connections on this worker, ties broken
//!   by rotating the starting member;
//! * priority: the up members with the lowest priority value, in turn.
//!
//! Cost: O(1) for RR and priority, O(log members) for WRR, O(members) hash
//! probes for least connections; only on connection start.

use super::tables::{GroupIdx, GroupRt, Policy};

/// Number of round-robin cursors per worker.
pub const RR_CURSORS: usize = 1024;

/// Bounded probe of the per-server count table.
const LOAD_PROBE: usize = 32;

/// Per-worker balancing state.
#[derive(Clone, Debug)]
pub struct Balancer {
    cursors: Vec<u64>,
    /// Open addressing: server address (big-endian u32, 0 = empty) → count.
    load_ip: Vec<u32>,
    load_cnt: Vec<u32>,
    load_mask: usize,
}

/// Slot of a server in the worker's count table.
pub type LoadSlot = u16;
/// No slot (table full, or not a balanced connection).
pub const NO_SLOT: LoadSlot = u16::MAX;

impl Balancer {
    /// `max_servers`: distinct server addresses tracked (table = 2x, pow2).
    pub fn new(max_servers: u32) -> Balancer {
        // at most 2^15 slots, so no slot index is NO_SLOT
        let cap = ((max_servers.max(1) as usize) * 2)
            .next_power_of_two()
            .min(1 << 15);
        Balancer {
            cursors: vec![0; RR_CURSORS],
            load_ip: vec![0; cap],
            load_cnt: vec![0; cap],
            load_mask: cap - 1,
        }
    }

    fn home(&self, ip: u32) -> usize {
        (super::hash::fmix64(ip as u64) as usize) & self.load_mask
    }

    fn find(&self, ip: u32) -> Option<usize> {
        let h = self.home(ip);
        for i in 0..LOAD_PROBE.min(self.load_ip.len()) {
            let s = (h + i) & self.load_mask;
            if self.load_ip[s] == ip {
                return Some(s);
            }
            if self.load_ip[s] == 0 {
                return None;
            }
        }
        None
    }

    /// Open connections this worker has on server `ip`.
    pub fn load(&self, ip: [u8; 4]) -> u32 {
        self.find(u32::from_be_bytes(ip))
            .map_or(0, |s| self.load_cnt[s])
    }

    /// Count one more connection on `ip`; returns its slot for
    /// [`Balancer::close`], or `NO_SLOT` if the table is full (then the
    /// server's count is not tracked). Entries are never removed, so slots
    /// are stable.
    pub fn open(&mut self, ip: [u8; 4]) -> LoadSlot {
        let ip = u32::from_be_bytes(ip);
        if ip == 0 {
            return NO_SLOT;
        }
        let h = self.home(ip);
        for i in 0..LOAD_PROBE.min(self.load_ip.len()) {
            let s = (h + i) & self.load_mask;
            if self.load_ip[s] == 0 {
                self.load_ip[s] = ip;
            }
            if self.load_ip[s] == ip {
                self.load_cnt[s] += 1;
                return s as LoadSlot;
            }
        }
        NO_SLOT
    }

    /// A connection counted by [`Balancer::open`] ended.
    pub fn close(&mut self, slot: LoadSlot) {
        if slot == NO_SLOT {
            return;
        }
        if let Some(c) = self.load_cnt.get_mut(slot as usize) {
            *c = c.saturating_sub(1);
        }
    }

    /// Choose a member of group `g`; `None` if no member is up.
    pub fn choose(&mut self, gi: GroupIdx, g: &GroupRt) -> Option<u16> {
        let cur = &mut self.cursors[gi as usize % RR_CURSORS];
        let c = *cur;
        *cur = c.wrapping_add(1);
        match g.group.policy {
            Policy::RoundRobin => pick(&g.up, c),
            Policy::Priority => pick(&g.best, c),
            Policy::WeightedRoundRobin => {
                if g.wrr_total == 0 {
                    return None;
                }
                let p =
                    ((c % g.wrr_total) as u128 * g.wrr_stride as u128 % g.wrr_total as u128) as u64;
                let i = g.wrr_cum.partition_point(|&cum| cum <= p);
                g.wrr_idx.get(i).copied()
            }
            Policy::LeastConnections => {
                let n = g.up.len();
                if n == 0 {
                    return None;
                }
                let start = (c % n as u64) as usize;
                let mut best = None;
                let mut best_load = u32::MAX;
                for k in 0..n {
                    let m = g.up[(start + k) % n];
                    let l = self.load(g.group.members[m as usize].ip);
                    if l < best_load {
                        best_load = l;
                        best = Some(m);
                    }
                }
                best
            }
        }
    }
}

#[inline]
fn pick(list: &[u16], c: u64) -> Option<u16> {
    if list.is_empty() {
        None
    } else {
        Some(list[(c % list.len() as u64) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::super::tables::{Group, Member, ServiceId, Services};
    use super::*;
    use proptest::prelude::*;

    fn services(policy: Policy, members: Vec<Member>) -> Services {
        Services::new(
            vec![Group {
                name: "g".into(),
                service: ServiceId(0),
                policy,
                members,
            }],
            vec![],
            None,
        )
        .unwrap()
    }

    fn m(i: u8, weight: u32, priority: u32, up: bool) -> Member {
        Member {
            name: format!("m{i}"),
            ip: [10, 0, 1, i + 1],
            port: None,
            weight,
            priority,
            up,
        }
    }

    #[test]
    fn round_robin_cycles_over_up_members() {
        let s = services(
            Policy::RoundRobin,
            vec![m(0, 1, 0, true), m(1, 1, 0, false), m(2, 1, 0, true)],
        );
        let mut b = Balancer::new(16);
        let picks: Vec<_> = (0..6)
            .map(|_| b.choose(0, s.group(0).unwrap()).unwrap())
            .collect();
        assert_eq!(picks, vec![0, 2, 0, 2, 0, 2]);
    }

    #[test]
    fn no_up_member_gives_none() {
        for p in [
            Policy::RoundRobin,
            Policy::WeightedRoundRobin,
            Policy::LeastConnections,
            Policy::Priority,
        ] {
            let s = services(p, vec![m(0, 1, 0, false), m(1, 1, 0, false)]);
            assert_eq!(
                Balancer::new(4).choose(0, s.group(0).unwrap()),
                None,
                "{p:?}"
            );
        }
        let s = services(Policy::WeightedRoundRobin, vec![m(0, 0, 0, true)]);
        assert_eq!(Balancer::new(4).choose(0, s.group(0).unwrap()), None);
    }

    #[test]
    fn least_connections_follows_open_and_close() {
        let s = services(
            Policy::LeastConnections,
            vec![m(0, 1, 0, true), m(1, 1, 0, true), m(2, 1, 0, true)],
        );
        let g = s.group(0).unwrap();
        let mut b = Balancer::new(16);
        let s0 = b.open([10, 0, 1, 1]);
        let _s0b = b.open([10, 0, 1, 1]);
        let _s2 = b.open([10, 0, 1, 3]);
        assert_eq!(b.choose(0, g), Some(1));
        let s1 = b.open([10, 0, 1, 2]);
        let s1b = b.open([10, 0, 1, 2]);
        // loads: 2, 2, 1
        assert_eq!(b.choose(0, g), Some(2));
        b.close(s1);
        b.close(s1b);
        b.close(s0);
        // loads: 1, 0, 1
        assert_eq!(b.choose(0, g), Some(1));
        assert_eq!(b.load([10, 0, 1, 1]), 1);
        assert_eq!(b.load([10, 0, 1, 9]), 0);
    }

    #[test]
    fn biggest_table_never_hands_out_no_slot() {
        let mut b = Balancer::new(16_384);
        assert_eq!(b.load_ip.len(), 1 << 15);
        for i in 1..=16_384u32 {
            assert_ne!(b.open((0x0a00_0000 + i).to_be_bytes()), NO_SLOT);
        }
    }

    #[test]
    fn load_table_full_is_not_tracked() {
        let mut b = Balancer::new(1); // 2 slots
        assert_ne!(b.open([10, 0, 0, 1]), NO_SLOT);
        assert_ne!(b.open([10, 0, 0, 2]), NO_SLOT);
        assert_eq!(b.open([10, 0, 0, 3]), NO_SLOT);
        b.close(NO_SLOT); // harmless
    }

    proptest! {
        /// Over `k * W` consecutive choices (from any start) every up member
        /// gets exactly `k * weight`; over any N consecutive choices each
        /// member is within its weight of the ideal share `N * w / W` (the
        /// stated tolerance).
        #[test]
        fn wrr_shares_match_weights(
            ws in proptest::collection::vec((0u32..20, any::<bool>()), 1..8),
            k in 1u64..4,
            extra in 0u64..50,
            skip in 0u64..1000,
        ) {
            let members: Vec<_> = ws.iter().enumerate().map(|(i, &(w, up))| m(i as u8, w, 0, up)).collect();
            let s = services(Policy::WeightedRoundRobin, members.clone());
            let g = s.group(0).unwrap();
            let total: u64 = members.iter().filter(|m| m.up).map(|m| m.weight as u64).sum();
            let mut b = Balancer::new(16);
            if total == 0 {
                prop_assert_eq!(b.choose(0, g), None);
                return Ok(());
            }
            // Any start: every W consecutive choices are one full cycle.
            for _ in 0..skip { b.choose(0, g); }
            let mut counts = vec![0u64; members.len()];
            for _ in 0..k * total { counts[b.choose(0, g).unwrap() as usize] += 1; }
            for (i, mm) in members.iter().enumerate() {
                let want = if mm.up { k * mm.weight as u64 } else { 0 };
                prop_assert_eq!(counts[i], want, "member {} of {:?}", i, ws);
            }
            // A tail of `extra` < 50 choices: within weight of the ideal.
            let mut tail = vec![0u64; members.len()];
            for _ in 0..extra { tail[b.choose(0, g).unwrap() as usize] += 1; }
            for (i, mm) in members.iter().enumerate() {
                let w = if mm.up { mm.weight as f64 } else { 0.0 };
                let ideal = extra as f64 * w / total as f64;
                prop_assert!((tail[i] as f64 - ideal).abs() <= w.max(1.0), "member {} tail {} ideal {}", i, tail[i], ideal);
            }
        }

        /// Members marked down are never chosen, under every policy.
        #[test]
        fn down_members_never_chosen(
            ms in proptest::collection::vec((1u32..10, 0u32..4, any::<bool>()), 1..10),
            policy in prop_oneof![Just(Policy::RoundRobin), Just(Policy::WeightedRoundRobin), Just(Policy::LeastConnections), Just(Policy::Priority)],
            n in 1usize..200,
        ) {
            let members: Vec<_> = ms.iter().enumerate().map(|(i, &(w, p, up))| m(i as u8, w, p, up)).collect();
            let s = services(policy, members.clone());
            let g = s.group(0).unwrap();
            let mut b = Balancer::new(64);
            let any_up = members.iter().any(|m| m.up);
            for _ in 0..n {
                match b.choose(0, g) {
                    Some(i) => {
                        prop_assert!(members[i as usize].up);
                        b.open(members[i as usize].ip);
                    }
                    None => prop_assert!(!any_up),
                }
            }
        }

        /// Priority picks only up members of the best (lowest) priority, and
        /// all of them in turn.
        #[test]
        fn priority_picks_best_up(ms in proptest::collection::vec((0u32..4, any::<bool>()), 1..10)) {
            let members: Vec<_> = ms.iter().enumerate().map(|(i, &(p, up))| m(i as u8, 1, p, up)).collect();
            let s = services(Policy::Priority, members.clone());
            let g = s.group(0).unwrap();
            let best = members.iter().filter(|m| m.up).map(|m| m.priority).min();
            let mut b = Balancer::new(64);
            let mut seen = std::collections::BTreeSet::new();
            let nbest = members.iter().filter(|m| m.up && Some(m.priority) == best).count();
            for _ in 0..nbest.max(1) * 2 {
                match b.choose(0, g) {
                    Some(i) => {
                        let mm = &members[i as usize];
                        prop_assert!(mm.up);
                        prop_assert_eq!(Some(mm.priority), best);
                        seen.insert(i);
                    }
                    None => prop_assert!(best.is_none()),
                }
            }
            prop_assert_eq!(seen.len(), nbest);
        }

        /// Least connections always picks a member with the minimum load.
        #[test]
        fn lc_picks_a_minimum(loads in proptest::collection::vec(0u32..5, 1..8)) {
            let members: Vec<_> = (0..loads.len()).map(|i| m(i as u8, 1, 0, true)).collect();
            let s = services(Policy::LeastConnections, members.clone());
            let g = s.group(0).unwrap();
            let mut b = Balancer::new(64);
            for (i, &l) in loads.iter().enumerate() {
                for _ in 0..l { b.open(members[i].ip); }
            }
            let i = b.choose(0, g).unwrap() as usize;
            prop_assert_eq!(loads[i], *loads.iter().min().unwrap());
        }
    }
}
