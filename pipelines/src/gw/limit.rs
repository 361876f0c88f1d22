//! Per-subscriber connection limits (`max_conns_per_subscriber`,
//! `new_conns_per_subscriber_per_s`), per worker.
//!
//! A subscriber is its IPv4 address, or the /64 of its IPv6 address (NAT64,
//! NAT66: a device's addresses in its prefix are one subscriber). Each
//! worker keeps its own table and enforces its **share** of the limits: a
//! subscriber's connections are spread over the workers by RSS, and a shared
//! count would need atomics every worker fights over. With `W` workers a
//! worker allows `ceil(max / W)` open connections per subscriber and a
//! token bucket of `rate / W` per second (burst: the same, at least one
//! connection), so the instance allows at least `max` and fewer than
//! `max + W` at once; with one worker the limit is exact.
//!
//! The table is touched only when a connection opens or closes, never by
//! an established packet. Open addressing over buckets of [`BUCKET`] slots
//! of 32 bytes, two choices (the less loaded bucket takes a new
//! subscriber), `next_pow2(max_flows_per_worker)` slots (at least two
//! buckets), preallocated by the worker, none when no limit is set. A slot
//! lives while its subscriber has open connections or its bucket is still
//! refilling; after that any insert may take it (one still refilling is
//! taken only when nothing else is left: its subscriber comes back with a
//! full bucket). A subscriber that finds both buckets full of subscribers
//! with open connections is let through untracked
//! (`sub_untracked`, as the balancer's count table does): at most
//! `max_flows_per_worker` subscribers have open connections, so that is
//! rare by construction.
//!
//! Arithmetic: tokens are micro-connections (`COST` = 10^6 per
//! connection), refilled by `now - last` ms × a per-ms rate computed at
//! start: no division or clock read on the open path; time is the stage's
//! `now`.

use super::hash::fmix64;
use crate::hw::TableAlloc;
use crate::verdict::DropReason;

/// Slots per bucket (four 32-byte slots: two cache lines).
pub const BUCKET: usize = 4;
/// Tokens one new connection costs.
const COST: u64 = 1_000_000;

/// Which subscriber: an IPv4 address or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubKey {
    V4([u8; 4]),
    V6([u8; 8]),
}

impl SubKey {
    /// The subscriber of IPv6 address `a`: its /64.
    pub fn v6(a: &[u8; 16]) -> SubKey {
        let mut p = [0u8; 8];
        p.copy_from_slice(&a[..8]);
        SubKey::V6(p)
    }
    #[inline]
    fn parts(self) -> (u64, u8) {
        match self {
            SubKey::V4(a) => (u32::from_be_bytes(a) as u64, KIND_V4),
            SubKey::V6(p) => (u64::from_be_bytes(p), KIND_V6),
        }
    }
}

const KIND_FREE: u8 = 0;
const KIND_V4: u8 = 1;
const KIND_V6: u8 = 2;

/// One subscriber's state.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(32))]
pub struct SubSlot {
    key: u64,
    /// Micro-connections in the bucket at `last_ms`.
    tokens: u64,
    last_ms: u64,
    /// Open connections on this worker.
    conns: u32,
    kind: u8,
}

const _: () = assert!(core::mem::size_of::<SubSlot>() == 32);

impl SubSlot {
    const EMPTY: SubSlot = SubSlot {
        key: 0,
        tokens: 0,
        last_ms: 0,
        conns: 0,
        kind: KIND_FREE,
    };
}

/// A slot the caller commits a connection to (see [`SubLimits::admit`]).
pub type SubTicket = u32;

/// "Let through, not tracked" (no limit set, or no slot left: the caller
/// counts `sub_untracked` when [`SubLimits::on`]).
pub const UNTRACKED: SubTicket = u32::MAX;

/// The per-worker subscriber table and this worker's share of the limits.
pub struct SubLimits<A: TableAlloc> {
    slots: A::Mem<SubSlot>,
    /// Buckets - 1 (a power of two minus one).
    bmask: u64,
    /// Open connections per subscriber on this worker (0: no limit).
    max_conns: u32,
    /// Micro-connections added per ms (0: no rate limit).
    per_ms: u64,
    /// Bucket size in micro-connections.
    burst: u64,
    seed: u64,
}

impl<A: TableAlloc> SubLimits<A> {
    /// Worker share of `max_conns` (0: none) and `rate` new connections
    /// per second (0: none) over `workers` workers; slots for `cap`
    /// connections.
    pub fn new(
        alloc: &A,
        cap: u32,
        max_conns: u32,
        rate: u32,
        workers: u16,
        seed: u64,
    ) -> Result<SubLimits<A>, String> {
        let w = workers.max(1) as u64;
        let on = max_conns > 0 || rate > 0;
        let n = if on {
            (cap as usize).next_power_of_two().max(2 * BUCKET)
        } else {
            0
        };
        let rate_us = rate as u64 * COST; // micro-connections per second
        Ok(SubLimits {
            slots: alloc.alloc("gw subscriber limits", n, SubSlot::EMPTY)?,
            bmask: (n / BUCKET).saturating_sub(1) as u64,
            max_conns: if max_conns == 0 {
                0
            } else {
                (max_conns as u64).div_ceil(w) as u32
            },
            per_ms: if rate == 0 {
                0
            } else {
                (rate_us / 1000 / w).max(1)
            },
            burst: (rate_us / w).max(COST),
            seed,
        })
    }

    /// Whether any limit is set.
    #[inline]
    pub fn on(&self) -> bool {
        !self.slots.is_empty()
    }

    /// This worker's share of the open-connection limit (0: none).
    pub fn max_conns(&self) -> u32 {
        self.max_conns
    }

    /// Bytes of the table.
    pub fn bytes(&self) -> usize {
        self.slots.len() * core::mem::size_of::<SubSlot>()
    }

    /// The two buckets' first slots of subscriber `(key, kind)`.
    #[inline]
    fn buckets(&self, key: u64, kind: u8) -> (usize, usize) {
        let h = fmix64(key ^ self.seed ^ ((kind as u64) << 62));
        let b1 = (h & self.bmask) as usize;
        let b2 = ((h >> 32) & self.bmask) as usize;
        (b1 * BUCKET, b2 * BUCKET)
    }

    /// The slot of `(key, kind)`, if tracked.
    #[inline]
    fn find(&self, key: u64, kind: u8) -> Option<usize> {
        let (a, b) = self.buckets(key, kind);
        (a..a + BUCKET)
            .chain(b..b + BUCKET)
            .find(|&i| self.slots[i].kind == kind && self.slots[i].key == key)
    }

    /// Tokens of slot `s` at `now`.
    #[inline]
    fn tokens_at(&self, s: &SubSlot, now: u64) -> u64 {
        let dt = now.saturating_sub(s.last_ms);
        s.tokens
            .saturating_add(dt.saturating_mul(self.per_ms))
            .min(self.burst)
    }

    /// Whether slot `s` may be given to another subscriber at `now`: free,
    /// or no open connection and a full bucket (its state is the default).
    #[inline]
    fn reusable(&self, s: &SubSlot, now: u64) -> bool {
        s.kind == KIND_FREE
            || (s.conns == 0 && (self.per_ms == 0 || self.tokens_at(s, now) >= self.burst))
    }

    /// May subscriber `sub` open a connection at `now`? `Ok(ticket)`: yes,
    /// [`SubLimits::commit`] the ticket once the connection exists (or
    /// drop it: nothing was taken); `Err(reason)`: refused.
    pub fn admit(&mut self, sub: SubKey, now: u64) -> Result<SubTicket, DropReason> {
        if !self.on() {
            return Ok(UNTRACKED);
        }
        let (key, kind) = sub.parts();
        let i = match self.find(key, kind) {
            Some(i) => i,
            None => {
                let (a, b) = self.buckets(key, kind);
                let free = |from: usize| {
                    (from..from + BUCKET)
                        .filter(|&i| self.reusable(&self.slots[i], now))
                        .count()
                };
                let (fa, fb) = (free(a), free(b));
                let from = if fb > fa { b } else { a };
                // else a subscriber with no open connection whose bucket
                // still refills (it comes back with a full one), else none
                let Some(i) = (from..from + BUCKET)
                    .find(|&i| self.reusable(&self.slots[i], now))
                    .or_else(|| {
                        (a..a + BUCKET)
                            .chain(b..b + BUCKET)
                            .find(|&i| self.slots[i].conns == 0)
                    })
                else {
                    return Ok(UNTRACKED);
                };
                self.slots[i] = SubSlot {
                    key,
                    kind,
                    tokens: self.burst,
                    last_ms: now,
                    conns: 0,
                };
                i
            }
        };
        if self.max_conns != 0 && self.slots[i].conns >= self.max_conns {
            return Err(DropReason::SubscriberConnLimit);
        }
        if self.per_ms != 0 {
            let t = self.tokens_at(&self.slots[i], now);
            let s = &mut self.slots[i];
            s.tokens = t;
            s.last_ms = s.last_ms.max(now);
            if t < COST {
                return Err(DropReason::SubscriberRateLimit);
            }
        }
        Ok(i as SubTicket)
    }

    /// The connection `admit` let through exists: count it, take its token.
    #[inline]
    pub fn commit(&mut self, t: SubTicket) {
        if t == UNTRACKED {
            return;
        }
        let s = &mut self.slots[t as usize];
        s.conns += 1;
        if self.per_ms != 0 {
            s.tokens = s.tokens.saturating_sub(COST);
        }
    }

    /// A connection of `sub` committed earlier closed.
    pub fn release(&mut self, sub: SubKey) {
        let (key, kind) = sub.parts();
        if let Some(i) = self.find(key, kind) {
            let s = &mut self.slots[i];
            s.conns = s.conns.saturating_sub(1);
            if s.conns == 0 && self.per_ms == 0 {
                *s = SubSlot::EMPTY;
            }
        }
    }

    /// Open connections of `sub` this worker counts.
    pub fn conns(&self, sub: SubKey) -> u32 {
        let (key, kind) = sub.parts();
        self.find(key, kind).map_or(0, |i| self.slots[i].conns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::HeapAlloc;

    const A: SubKey = SubKey::V4([10, 0, 0, 1]);

    #[test]
    fn off_takes_no_memory_and_admits_everything() {
        let mut l = SubLimits::new(&HeapAlloc, 1 << 10, 0, 0, 1, 7).unwrap();
        assert_eq!(l.bytes(), 0);
        for _ in 0..100 {
            assert_eq!(l.admit(A, 0), Ok(UNTRACKED));
        }
    }

    #[test]
    fn worker_share_rounds_up() {
        let l = SubLimits::new(&HeapAlloc, 64, 3, 0, 2, 7).unwrap();
        assert_eq!(l.max_conns(), 2);
        let l = SubLimits::new(&HeapAlloc, 64, 3, 0, 1, 7).unwrap();
        assert_eq!(l.max_conns(), 3);
        // a rate below one per worker still lets one connection through
        let mut l = SubLimits::new(&HeapAlloc, 64, 0, 1, 4, 7).unwrap();
        let t = l.admit(A, 0).unwrap();
        l.commit(t);
        assert_eq!(l.admit(A, 0), Err(DropReason::SubscriberRateLimit));
        // 1/s over 4 workers: one per 4 s on this worker
        assert_eq!(l.admit(A, 3_999), Err(DropReason::SubscriberRateLimit));
        assert!(l.admit(A, 4_000).is_ok());
    }

    #[test]
    fn slots_are_reused_once_idle() {
        // 8 slots (2 buckets): 64 subscribers one after the other, each
        // closing before the next opens, never run out.
        let mut l = SubLimits::new(&HeapAlloc, 8, 1, 0, 1, 7).unwrap();
        for i in 0..64u8 {
            let s = SubKey::V4([10, 0, 1, i]);
            let t = l.admit(s, 0).unwrap();
            assert_ne!(t, UNTRACKED);
            l.commit(t);
            assert_eq!(l.admit(s, 0), Err(DropReason::SubscriberConnLimit));
            l.release(s);
        }
        // 9 subscribers at once on 8 slots: one at least is untracked
        let mut untracked = 0;
        for i in 0..9u8 {
            let s = SubKey::V4([10, 0, 2, i]);
            let t = l.admit(s, 0).unwrap();
            untracked += (t == UNTRACKED) as u32;
            l.commit(t);
        }
        assert!(untracked >= 1);
    }

    #[test]
    fn refilling_slots_give_way_before_anyone_goes_untracked() {
        // 8 slots, 1 connection/s: 64 subscribers each open and close one
        // connection at the same ms; their buckets are all refilling, yet
        // each newcomer takes the slot of one with no open connection.
        let mut l = SubLimits::new(&HeapAlloc, 8, 0, 1, 1, 7).unwrap();
        for i in 0..64u8 {
            let s = SubKey::V4([10, 0, 3, i]);
            let t = l.admit(s, 0).unwrap();
            assert_ne!(t, UNTRACKED, "subscriber {i}");
            l.commit(t);
            assert_eq!(l.admit(s, 0), Err(DropReason::SubscriberRateLimit));
            l.release(s);
        }
    }
}
