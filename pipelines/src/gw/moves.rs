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
//! The table is direct-mapped: a slot per subscriber hash holds a 16-bit
//! tag and the 48-bit MAC in one atomic word (a collision overwrites; a
//! connection whose subscriber's tag is not there keeps its own LB). An
//! epoch counts the moves; a connection keeps the epoch it last looked at
//! (16 bits in its hot line), so a down packet costs one load of the epoch
//! (a line every worker reads, written only on a move) unless some
//! subscriber moved since. Memory: 8 bytes per slot, [`SLOTS`] slots per
//! GW instance.

use core::sync::atomic::{
    AtomicU32, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

use super::hash::fmix64;

/// Slots of the table (a power of two).
pub const SLOTS: usize = 1 << 16;

/// The shared table (one per GW instance, in every [`super::GwTables`]
/// snapshot).
#[derive(Debug)]
pub struct Moves {
    epoch: AtomicU32,
    slots: Box<[AtomicU64]>,
}

impl Default for Moves {
    fn default() -> Self {
        Moves::new(SLOTS)
    }
}

/// The key of an IPv4 subscriber.
#[inline]
pub fn key_v4(ip: [u8; 4]) -> u64 {
    fmix64(u32::from_be_bytes(ip) as u64 | 4 << 32)
}

/// The key of an IPv6 subscriber: its /64.
#[inline]
pub fn key_v6(ip: &[u8; 16]) -> u64 {
    fmix64(u64::from_be_bytes(ip[..8].try_into().unwrap_or([0; 8])) ^ 6)
}

#[inline]
fn tag(k: u64) -> u64 {
    (k >> 48) | 1
}

#[inline]
fn pack(k: u64, mac: [u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&mac);
    tag(k) << 48 | u64::from_be_bytes(b)
}

impl Moves {
    /// A table of `slots` slots (rounded up to a power of two).
    pub fn new(slots: usize) -> Moves {
        Moves {
            epoch: AtomicU32::new(0),
            slots: (0..slots.next_power_of_two())
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// The number of moves recorded (wrapping).
    #[inline(always)]
    pub fn epoch(&self) -> u32 {
        self.epoch.load(Acquire)
    }

    #[inline]
    fn slot(&self, k: u64) -> &AtomicU64 {
        &self.slots[k as usize & (self.slots.len() - 1)]
    }

    /// Subscriber `k` came through the LB `mac`: recorded if that is new,
    /// and the epoch moved only if the slot held this subscriber at another
    /// LB (a move). A first sighting, or a slot taken from another
    /// subscriber (whose connections then keep their own LB: `get` no
    /// longer finds it), moves nothing, so new connections of many
    /// subscribers do not send every connection to look. Whether it was a
    /// move.
    #[inline]
    pub fn record(&self, k: u64, mac: [u8; 6]) -> bool {
        let v = pack(k, mac);
        let s = self.slot(k);
        let old = s.load(Relaxed);
        if old == v {
            return false;
        }
        s.store(v, Relaxed);
        if old >> 48 != tag(k) {
            return false;
        }
        self.epoch.fetch_add(1, Release);
        true
    }

    /// The LB subscriber `k` last came through, if its slot still holds it.
    #[inline]
    pub fn get(&self, k: u64) -> Option<[u8; 6]> {
        let v = self.slot(k).load(Relaxed);
        if v >> 48 != tag(k) {
            return None;
        }
        let b = v.to_be_bytes();
        Some([b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// Bytes of the table.
    pub fn bytes(&self) -> usize {
        self.slots.len() * 8
    }
}

use super::entry::flag;
use super::{GwTables, GwWorker};
use crate::hw::TableAlloc;

impl<A: TableAlloc> GwWorker<A> {
    /// The key of connection `e`'s subscriber.
    #[inline]
    fn sub_key(&self, e: u32) -> u64 {
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
            .find(|&k| k & 7 == a & 7 && tag(k) != tag(a))
            .unwrap();
        assert!(!m.record(c, [2, 0, 0, 0, 0, 3]));
        assert_eq!((m.get(a), m.epoch()), (None, 1));
        // another subscriber: its own tag (or its own slot)
        if a as usize & 7 == b as usize & 7 {
            assert_eq!(m.get(b), None);
        }
        let v6 = key_v6(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9]);
        let v6b = key_v6(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0xff, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(v6, v6b, "a /64 is one subscriber");
    }
}
