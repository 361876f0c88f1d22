//! Where each subscriber last entered: the MAC of the LB its latest packet
//! came through, shared by every worker of the GW.
//!
//! A connection remembers the LB its own up packets came through
//! ([`super::entry::Hot::lb`]); alone, that leaves a connection that only
//! carries server → subscriber traffic after the subscriber moved (a UDP
//! stream, a push on an idle TCP connection) going to the entry point the
//! subscriber left. So any packet of the subscriber through a new entry
//! point — an up packet of one of its connections, or a new connection —
//! is written here, and every connection of that subscriber, on any worker,
//! takes the new entry point with its next down packet.
//!
//! The table is direct-mapped, one for IPv4 subscribers and one for IPv6
//! /64s: a subscriber's 32-bit key picks a slot by its low 16 bits, and
//! the slot holds the key's high 16 bits (the tag) and the 48-bit MAC in
//! one atomic word (a collision overwrites; a connection whose subscriber's
//! tag is not there keeps its own LB). An IPv4 key is a bijection of the
//! address, so with [`SLOTS`] = 2^16 slot and tag name one address: no two
//! IPv4 subscribers are ever taken for each other. An IPv6 /64's key is a
//! 32-bit hash: among a million /64s about a hundred pairs share one
//! (N^2 / 2^33), and a move of one re-points the other's downstream-only
//! connections until their next up packet. An
//! epoch counts the moves; a connection keeps the epoch it last looked at
//! (16 bits in its hot line), so a down packet costs one load of the epoch
//! (a line every worker reads, written only on a move) unless some
//! subscriber moved since. Memory: 8 bytes per slot, 2 × [`SLOTS`] slots
//! per GW instance.

use core::sync::atomic::{
    AtomicU32, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

use super::hash::fmix64;

/// Slots of each table: 2^16, so that an IPv4 key's 16 low bits (the
/// slot) and 16 high bits (the tag) are the whole key.
pub const SLOTS: usize = 1 << 16;

/// The shared tables (one pair per GW instance, in every
/// [`super::GwTables`] snapshot).
#[derive(Debug)]
pub struct Moves {
    epoch: AtomicU32,
    v4: Box<[AtomicU64]>,
    v6: Box<[AtomicU64]>,
}

/// A subscriber's key: 32 bits and the family's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriberKey {
    k: u32,
    v6: bool,
}

impl Default for Moves {
    fn default() -> Self {
        Moves::new(SLOTS)
    }
}

/// MurmurHash3's 32-bit finalizer: a bijection of `u32` (xor-shifts and
/// multiplications by odd constants), so distinct addresses keep distinct
/// keys.
#[inline]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The key of an IPv4 subscriber (exact: a bijection of the address).
#[inline]
pub fn key_v4(ip: [u8; 4]) -> SubscriberKey {
    SubscriberKey {
        k: fmix32(u32::from_be_bytes(ip)),
        v6: false,
    }
}

/// The key of an IPv6 subscriber: its /64, hashed to 32 bits.
#[inline]
pub fn key_v6(ip: &[u8; 16]) -> SubscriberKey {
    let h = fmix64(u64::from_be_bytes(ip[..8].try_into().unwrap_or([0; 8])));
    SubscriberKey {
        k: (h ^ h >> 32) as u32,
        v6: true,
    }
}

#[inline]
fn tag(k: SubscriberKey) -> u64 {
    u64::from(k.k >> 16)
}

/// The slot's word: the tag and the MAC (0: an empty slot).
#[inline]
fn pack(k: SubscriberKey, mac: [u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&mac);
    tag(k) << 48 | u64::from_be_bytes(b)
}

/// Whether slot word `v` holds subscriber `k`.
#[inline]
fn holds(v: u64, k: SubscriberKey) -> bool {
    v != 0 && v >> 48 == tag(k)
}

impl Moves {
    /// A table of `slots` slots (rounded up to a power of two).
    pub fn new(slots: usize) -> Moves {
        let table = || {
            (0..slots.next_power_of_two())
                .map(|_| AtomicU64::new(0))
                .collect()
        };
        Moves {
            epoch: AtomicU32::new(0),
            v4: table(),
            v6: table(),
        }
    }

    /// The number of moves recorded (wrapping).
    #[inline(always)]
    pub fn epoch(&self) -> u32 {
        self.epoch.load(Acquire)
    }

    #[inline]
    fn slot(&self, k: SubscriberKey) -> &AtomicU64 {
        let t = if k.v6 { &self.v6 } else { &self.v4 };
        &t[k.k as usize & (t.len() - 1)]
    }

    /// Subscriber `k` came through the LB `mac`: recorded if that is new,
    /// and the epoch moved only if the slot held this subscriber at another
    /// LB (a move). A first sighting, or a slot taken from another
    /// subscriber (whose connections then keep their own LB: `get` no
    /// longer finds it), moves nothing, so new connections of many
    /// subscribers do not send every connection to look. Whether it was a
    /// move.
    #[inline]
    pub fn record(&self, k: SubscriberKey, mac: [u8; 6]) -> bool {
        let v = pack(k, mac);
        let s = self.slot(k);
        let old = s.load(Relaxed);
        if old == v {
            return false;
        }
        s.store(v, Relaxed);
        if !holds(old, k) {
            return false;
        }
        self.epoch.fetch_add(1, Release);
        true
    }

    /// The management side learnt that subscriber `k` is now behind the LB
    /// `mac` (RADIUS reported it at another NAS): recorded, and the epoch
    /// moved even if the slot held nobody or another subscriber, so every
    /// connection of `k` looks at its next down packet. Whether the slot
    /// changed.
    pub fn repoint(&self, k: SubscriberKey, mac: [u8; 6]) -> bool {
        let v = pack(k, mac);
        if self.slot(k).swap(v, Relaxed) == v {
            return false;
        }
        self.epoch.fetch_add(1, Release);
        true
    }

    /// The LB subscriber `k` last came through, if its slot still holds it.
    #[inline]
    pub fn get(&self, k: SubscriberKey) -> Option<[u8; 6]> {
        let v = self.slot(k).load(Relaxed);
        if !holds(v, k) {
            return None;
        }
        let b = v.to_be_bytes();
        Some([b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// Bytes of the table.
    pub fn bytes(&self) -> usize {
        (self.v4.len() + self.v6.len()) * 8
    }
}

use super::entry::flag;
use super::{GwTables, GwWorker};
use crate::hw::TableAlloc;

impl<A: TableAlloc> GwWorker<A> {
    /// The key of connection `e`'s subscriber.
    #[inline]
    fn sub_key(&self, e: u32) -> SubscriberKey {
        let h = &self.hot[e as usize];
        if h.has(flag::V6) {
            key_v6(&self.sub6[e as usize])
        } else {
            key_v4(h.sub_ip)
        }
    }

    /// A packet of connection `e`'s subscriber came through the LB `mac`
    /// (a new connection, or one whose LB changed): recorded for all of its
    /// connections.
    #[inline]
    pub(super) fn note_entry_point(&mut self, t: &GwTables, e: u32, mac: [u8; 6]) {
        t.moves.record(self.sub_key(e), mac);
        self.hot[e as usize].move_epoch = t.moves.epoch() as u16;
    }

    /// Before a down packet of connection `e`: if some subscriber moved
    /// since it last looked, and its own did, it takes the new entry point.
    #[inline(always)]
    pub(super) fn follow_moves(&mut self, t: &GwTables, e: u32) {
        let epoch = t.moves.epoch() as u16;
        if self.hot[e as usize].move_epoch != epoch {
            self.repoint(t, e, epoch);
        }
    }

    #[cold]
    fn repoint(&mut self, t: &GwTables, e: u32, epoch: u16) {
        self.hot[e as usize].move_epoch = epoch;
        let Some(mac) = t.moves.get(self.sub_key(e)) else {
            return;
        };
        if self.lbs.get(self.hot[e as usize].lb) != mac {
            if let Some(lb) = self.lbs.index(mac) {
                self.hot[e as usize].lb = lb;
                self.counters.lb_repointed += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_get_and_the_epoch() {
        let m = Moves::new(8);
        let (a, b) = (key_v4([10, 0, 0, 1]), key_v4([10, 0, 0, 2]));
        assert_eq!(m.get(a), None);
        assert!(
            !m.record(a, [2, 0, 0, 0, 0, 1]),
            "a first sighting is no move"
        );
        assert_eq!(m.epoch(), 0);
        assert_eq!(m.get(a), Some([2, 0, 0, 0, 0, 1]));
        assert!(
            !m.record(a, [2, 0, 0, 0, 0, 1]),
            "the same entry point is no move"
        );
        assert!(m.record(a, [2, 0, 0, 0, 0, 2]));
        assert_eq!(m.get(a), Some([2, 0, 0, 0, 0, 2]));
        assert_eq!(m.epoch(), 1);
        // a subscriber taking the slot of another: no move either
        let c = (0u32..)
            .map(|i| key_v4(i.to_be_bytes()))
            .find(|&k| k.k & 7 == a.k & 7 && tag(k) != tag(a))
            .unwrap();
        assert!(!m.record(c, [2, 0, 0, 0, 0, 3]));
        assert_eq!((m.get(a), m.epoch()), (None, 1));
        // another subscriber: its own tag (or its own slot)
        if a.k & 7 == b.k & 7 {
            assert_eq!(m.get(b), None);
        }
        let v6 = key_v6(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9]);
        let v6b = key_v6(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0xff, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(v6, v6b, "a /64 is one subscriber");
    }

    #[test]
    fn a_repoint_moves_the_epoch_even_from_an_empty_slot() {
        let m = Moves::new(8);
        let a = key_v4([10, 0, 0, 1]);
        assert!(m.repoint(a, [2, 0, 0, 0, 0, 1]));
        assert_eq!((m.get(a), m.epoch()), (Some([2, 0, 0, 0, 0, 1]), 1));
        assert!(!m.repoint(a, [2, 0, 0, 0, 0, 1]), "already there");
        assert_eq!(m.epoch(), 1);
        assert!(m.repoint(a, [2, 0, 0, 0, 0, 2]));
        assert_eq!((m.get(a), m.epoch()), (Some([2, 0, 0, 0, 0, 2]), 2));
    }

    /// With 2^16 slots, slot and tag are an IPv4 key's 32 bits, and the key
    /// a bijection of the address: addresses that share a slot (2^16 apart
    /// in key space) never share the tag.
    #[test]
    fn ipv4_subscribers_are_told_apart_exactly() {
        let m = Moves::default();
        let a = key_v4([10, 0, 0, 1]);
        let same_slot: Vec<[u8; 4]> = (0u32..1 << 22)
            .map(u32::to_be_bytes)
            .filter(|&ip| key_v4(ip).k & 0xffff == a.k & 0xffff)
            .take(40)
            .collect();
        assert!(same_slot.len() >= 40);
        m.record(a, [2, 0, 0, 0, 0, 1]);
        for ip in same_slot.into_iter().filter(|&ip| ip != [10, 0, 0, 1]) {
            assert_ne!(tag(key_v4(ip)), tag(a), "{ip:?}");
            assert_eq!(m.get(key_v4(ip)), None, "{ip:?}");
        }
        // a bijection: 2^20 addresses, 2^20 keys
        let mut keys: Vec<u32> = (0u32..1 << 20).map(|i| key_v4(i.to_be_bytes()).k).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 1 << 20);
        // the families do not meet
        let v6 = key_v6(&[0; 16]);
        m.record(v6, [2, 0, 0, 0, 0, 9]);
        assert_eq!(m.get(a), Some([2, 0, 0, 0, 0, 1]));
    }
}
