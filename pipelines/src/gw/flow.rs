//! Per-worker flow storage: the flow entries (the key table) and the up
//! table that finds an entry from an up packet's 5-tuple.
//!
//! * **Key table** — `Vec<Flow>` indexed by key index (see
//!   [`KeySpace`](super::config::KeySpace)); the down path indexes it
//!   directly by (pool address, port): no hashing.
//! * **Up table** — open addressing over a power-of-two `Vec` of 8-byte slots
//!   `{tag: u32, key: u32}`, grouped in buckets of 8 slots (64 bytes). A
//!   lookup scans a fixed window of two buckets (16 slots) from the home
//!   bucket and compares the 32-bit tag before checking the 5-tuple stored in
//!   the flow entry. An insert takes the first empty slot of the window; a
//!   full window fails (the stage counts `flow_table_full`), it never probes
//!   further and never resizes. Deletion just empties the slot: lookups do
//!   not stop at empty slots, so no tombstones are needed.
//!
//! ## Memory per connection
//! `size_of::<Flow>()` = [`FLOW_BYTES`] (checked by a test) for every key of
//! the worker, plus 8 bytes × `next_pow2(2 × max_flows_per_worker)` up-table
//! slots (16–32 bytes per flow of capacity), plus 20 bytes per key in the key
//! allocator's rings: about 200 bytes per possible connection, all allocated
//! in [`GwWorker::new`](super::GwWorker::new). With NAT64 configured, 16
//! more bytes per key (the IPv6 subscriber side table): about 216 bytes.
//! With NAT66 (`pool6`), 48 bytes per key (subscriber, VIP and server side
//! tables): about 248 bytes. (The `v6` and `nat66` flags sit in what was
//! padding: `Flow` stays 160 bytes.)

use super::acct::Attr;
use super::balance::{LoadSlot, NO_SLOT};
use super::tables::GroupIdx;
use super::tcp_state::FlowState;

/// `size_of::<Flow>()`.
pub const FLOW_BYTES: usize = 160;
const _: () = assert!(
    FLOW_BYTES <= 192,
    "a flow entry should stay within 3 cache lines"
);

/// "No group" (not balanced: destination not a representative address).
pub const NO_GROUP: GroupIdx = u16::MAX;
/// "No service".
pub const NO_SERVICE: u8 = u8::MAX;
/// "Not in the up table".
pub const UNLINKED: u32 = u32::MAX;

/// One connection (FIG. 22 address information + FIG. 23 distribution
/// information + FIG. 29 accounting), indexed by its key.
///
/// `repr(C)` and ordered so that what every data packet touches (tuple,
/// state, MACs, last-seen, counters) is in the first 80 bytes; the rest
/// (start, device, group, service, attribute) is touched at start and close.
///
/// A NAT64 flow (`v6`) keeps its IPv4 side here as any flow (`dst_ip` is
/// the IPv4 address embedded in the subscriber's IPv6 destination) and its
/// subscriber's 16-byte address in the worker's side table indexed by key
/// (16 bytes per key, only when NAT64 is configured); `sub_ip` holds the
/// last 4 bytes of that address (a cheap first compare on lookups).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Flow {
    /// Subscriber address (original source).
    pub sub_ip: [u8; 4],
    /// Original destination (the VIP, or the plain destination).
    pub dst_ip: [u8; 4],
    /// Chosen server (= `dst_ip` without balancing).
    pub srv_ip: [u8; 4],
    /// Subscriber port (ICMP: echo identifier).
    pub sub_port: u16,
    /// Original destination port (ICMP: 0).
    pub dst_port: u16,
    /// Server port (ICMP: 0).
    pub srv_port: u16,
    pub proto: u8,
    pub state: FlowState,
    /// Source MAC of the latest up packet: the LB to send down packets to
    /// (updated on every up packet: a subscriber may move between LBs).
    pub lb_mac: [u8; 6],
    /// Next hop toward the server, valid while `nh_epoch` equals the
    /// published `Neighbours::epoch()` (low 32 bits).
    pub srv_mac: [u8; 6],
    pub nh_epoch: u32,
    /// Slot in the up table, or `UNLINKED`.
    pub up_slot: u32,
    /// Last packet (ms).
    pub last_ms: u64,
    pub up_pkts: u64,
    pub up_bytes: u64,
    pub down_pkts: u64,
    pub down_bytes: u64,
    // --- cold: connection start and close only ---
    pub start_ms: u64,
    pub device_id: u64,
    pub group: GroupIdx,
    /// Slot of the server in the balancer's count table.
    pub load_slot: LoadSlot,
    pub service: u8,
    /// The first up payload was inspected for an attribute.
    pub attr_done: bool,
    /// TCP options seen in the handshake ([`tcp_opts`] bits); kept only
    /// when `window_cap_down` is configured.
    pub tcp_opts: u8,
    pub attr: Attr,
    /// A NAT64 flow: the subscriber is IPv6 (in the side table).
    pub v6: bool,
    /// A NAT66 flow (also `v6`): the VIP and the server are IPv6 too (in
    /// the worker's side tables); `dst_ip` holds the last 4 bytes of the
    /// VIP, `srv_ip` the chosen member's IPv4 address (its load and health
    /// identity).
    pub nat66: bool,
}

/// Bits of [`Flow::tcp_opts`].
pub mod tcp_opts {
    /// The subscriber's SYN carried a Window Scale option.
    pub const WS_UP: u8 = 1;
    /// The server's SYN-ACK carried a Window Scale option.
    pub const WS_DOWN: u8 = 2;
    /// The SYN-ACK was seen: whether scaling is on is known.
    pub const SYNACK_SEEN: u8 = 4;
    /// Window scaling is in effect (RFC 7323 §2.2: both sides sent it).
    #[inline]
    pub const fn scaled(bits: u8) -> bool {
        bits & (WS_UP | WS_DOWN) == WS_UP | WS_DOWN
    }
}

impl Flow {
    pub(crate) fn empty() -> Flow {
        Flow {
            group: NO_GROUP,
            load_slot: NO_SLOT,
            service: NO_SERVICE,
            up_slot: UNLINKED,
            ..Flow::default()
        }
    }
}

/// Slots per bucket (8 × 8 bytes = one cache line).
const BUCKET: usize = 8;
/// Slots a lookup / insert looks at.
pub const WINDOW: usize = 2 * BUCKET;
const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Slot {
    tag: u32,
    key: u32,
}

/// 5-tuple → key index, fixed size, bounded probe.
#[derive(Clone, Debug)]
pub struct UpTable {
    slots: Vec<Slot>,
    mask: usize,
    used: usize,
}

impl UpTable {
    /// At least `min_slots` slots (power of two, at least one window).
    pub fn new(min_slots: usize) -> UpTable {
        let n = min_slots.max(WINDOW).next_power_of_two();
        UpTable {
            slots: vec![Slot { tag: 0, key: EMPTY }; n],
            mask: n - 1,
            used: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
    pub fn len(&self) -> usize {
        self.used
    }
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// The two candidate buckets of `h` (two-choice hashing: an insert goes
    /// to the emptier one, a lookup reads both — two cache lines). With one
    /// window of consecutive buckets the table refused inserts at a load of
    /// about 0.34 (`load_tests`); with two independent choices it takes its
    /// rated load (0.5) and more.
    #[inline]
    fn buckets(&self, h: u64) -> [usize; 2] {
        let a = (h as usize & self.mask) & !(BUCKET - 1);
        let mut b = (((h >> 17) ^ (h >> 43)) as usize & self.mask) & !(BUCKET - 1);
        if b == a {
            b = (a + BUCKET) & self.mask;
        }
        [a, b]
    }

    /// The (slot, key) whose tag matches `h` and for which `is_it(key)`.
    #[inline]
    pub fn lookup(&self, h: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<(u32, u32)> {
        let tag = (h >> 32) as u32;
        for b in self.buckets(h) {
            for s in b..b + BUCKET {
                let e = self.slots[s];
                if e.key != EMPTY && e.tag == tag && is_it(e.key) {
                    return Some((s as u32, e.key));
                }
            }
        }
        None
    }

    /// Insert `key` under hash `h` into the emptier of its two buckets; the
    /// slot, or `None` if both are full.
    #[inline]
    pub fn insert(&mut self, h: u64, key: u32) -> Option<u32> {
        let [a, b] = self.buckets(h);
        let free = |t: &Self, x: usize| {
            t.slots[x..x + BUCKET]
                .iter()
                .filter(|e| e.key == EMPTY)
                .count()
        };
        let first = if free(self, b) > free(self, a) { b } else { a };
        for bucket in [first, if first == a { b } else { a }] {
            for s in bucket..bucket + BUCKET {
                if self.slots[s].key == EMPTY {
                    self.slots[s] = Slot {
                        tag: (h >> 32) as u32,
                        key,
                    };
                    self.used += 1;
                    return Some(s as u32);
                }
            }
        }
        None
    }

    /// Empty slot `slot` (which must hold `key`).
    #[inline]
    pub fn remove(&mut self, slot: u32, key: u32) {
        if let Some(e) = self.slots.get_mut(slot as usize) {
            if e.key == key {
                e.key = EMPTY;
                self.used -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_entry_size_is_documented() {
        assert_eq!(std::mem::size_of::<Flow>(), FLOW_BYTES);
    }

    #[test]
    fn insert_lookup_remove() {
        let mut t = UpTable::new(64);
        assert_eq!(t.capacity(), 64);
        let s1 = t.insert(0xdead_beef_0000_0003, 7).unwrap();
        let s2 = t.insert(0xdead_beef_0000_0003, 8).unwrap(); // same hash, other key
        assert_ne!(s1, s2);
        assert_eq!(t.lookup(0xdead_beef_0000_0003, |k| k == 8), Some((s2, 8)));
        assert_eq!(t.lookup(0xdead_beef_0000_0003, |k| k == 7), Some((s1, 7)));
        assert_eq!(
            t.lookup(0x1111_1111_0000_0003, |_| true),
            None,
            "tag differs"
        );
        t.remove(s1, 7);
        assert_eq!(t.lookup(0xdead_beef_0000_0003, |k| k == 7), None);
        // lookups do not stop at the hole
        assert_eq!(t.lookup(0xdead_beef_0000_0003, |k| k == 8), Some((s2, 8)));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn full_window_fails_and_never_spills() {
        let mut t = UpTable::new(64);
        let h = 0xabcd_0000_0000_0005u64;
        for k in 0..WINDOW as u32 {
            assert!(t.insert(h, k).is_some());
        }
        assert_eq!(t.insert(h, 99), None);
        // other buckets are untouched
        let [a, b] = t.buckets(h);
        let other = (0..8u64)
            .map(|i| i * 8)
            .find(|&x| x as usize != a && x as usize != b)
            .unwrap();
        let h2 = (0..u64::MAX)
            .map(|i| (i << 17) | other)
            .find(|&g| !t.buckets(g).contains(&a) && !t.buckets(g).contains(&b))
            .unwrap();
        assert!(t.insert(h2, 100).is_some());
        for k in 0..WINDOW as u32 {
            assert!(t.lookup(h, |x| x == k).is_some());
        }
    }
}

#[cfg(test)]
mod load_tests {
    use super::*;
    use crate::gw::hash::flow_hash;

    /// The up table holds its rated load: sized at twice the connections
    /// (as `GwWorker` sizes it), every insert of a full complement succeeds,
    /// for 64 k and 1 M connections.
    #[test]
    fn up_table_takes_its_rated_load() {
        for n in [1 << 16, 1 << 20] {
            fill(n);
        }
    }

    fn fill(n: usize) {
        let mut t = UpTable::new(2 * n);
        for i in 0..n as u32 {
            // Subscribers and ports the way a traffic generator walks them.
            let h = flow_hash(
                0x9e37_79b9_7f4a_7c15,
                0x0a32_0000 + (i >> 6),
                0x0a21_0001,
                1024 + (i & 63) as u16,
                80,
                6,
            );
            assert!(
                t.insert(h, i).is_some(),
                "window full at {i} of {n} (load {:.2})",
                i as f64 / (2 * n) as f64
            );
        }
        assert_eq!(t.len(), n);
    }
}
