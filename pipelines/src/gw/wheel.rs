//! The connections' timer wheel: idle expiry and the end of the close hold,
//! at O(1) per connection event and O(due) per call, whatever the number
//! of connections (the sweep it replaces walked every key, 64 per loop
//! turn, at any load).
//!
//! Two levels, as in hierarchical timing wheels (Varghese and Lauck): level
//! 1 has 1024 slots of 1 ms (1.02 s), level 2 has 256 slots of 1.02 s
//! (262 s). An entry sits in the slot of its deadline; a deadline beyond
//! level 2 parks in its last slot and is looked at again then (a
//! connection idle for hours: once every 4 minutes). When the clock enters
//! a new level-2 period, that period's level-2 slot is handed out first, as
//! due, and the caller puts each entry back where its real deadline now
//! falls (level 1 for most): deadlines are kept to the millisecond.
//!
//! The wheel never reads a deadline: entries are refreshed by packets
//! without touching it (last-seen in the hot line), so a due entry may not
//! be due any more; the caller looks at it and either ends it or inserts it
//! again at its real deadline. A connection active for hours costs a
//! re-insert every level-2 slot and one per level-1 span, nothing per
//! packet. A change that *shortens* a deadline (a FIN, a close) removes
//! and inserts the entry at once (O(1): doubly linked lists through the
//! entries' cold records).
//!
//! Resolution: an entry is handed out in the millisecond after its
//! deadline once the caller keeps up (`pop_due` is budgeted by the caller).

use super::entry::{Cold, NONE, NO_SLOT};

const L1_BITS: u32 = 10;
const L1: usize = 1 << L1_BITS;
/// Level-1 tick: 1 ms.
const TICK_SHIFT: u32 = 0;
const L2_BITS: u32 = 8;
const L2: usize = 1 << L2_BITS;

/// The wheel (its lists run through [`Cold`]'s `prev`, `next`, `slot`).
pub struct Wheel {
    heads: Box<[u32; L1 + L2]>,
    /// Next level-1 tick to hand out (ms >> TICK_SHIFT).
    cur: u64,
    /// The level-2 period whose slot was handed out last.
    cascaded: u64,
    len: usize,
}

impl Wheel {
    /// A wheel whose clock starts at `now_ms`.
    pub fn new(now_ms: u64) -> Wheel {
        let cur = now_ms >> TICK_SHIFT;
        Wheel {
            heads: Box::new([NONE; L1 + L2]),
            cur,
            cascaded: cur >> L1_BITS,
            len: 0,
        }
    }

    /// Entries in the wheel.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Put entry `i` (in no slot) in the slot of `due_ms`, the first time
    /// it is due (`pop_due` hands it out once `now >= due_ms`). A time
    /// already passed goes to the next tick handed out. Callers put back
    /// only entries not yet due, so none is handed out twice in a call.
    #[inline]
    pub fn insert(&mut self, cold: &mut [Cold], i: u32, due_ms: u64) {
        debug_assert_eq!(
            cold[i as usize].slot, NO_SLOT,
            "entry {i} already in the wheel"
        );
        let t = (due_ms >> TICK_SHIFT).max(self.cur);
        let slot = if t - self.cur < L1 as u64 {
            (t as usize) & (L1 - 1)
        } else {
            let period = (t >> L1_BITS).min((self.cur >> L1_BITS) + L2 as u64 - 1);
            L1 + ((period as usize) & (L2 - 1))
        };
        let head = self.heads[slot];
        let c = &mut cold[i as usize];
        c.prev = NONE;
        c.next = head;
        c.slot = slot as u16;
        if head != NONE {
            cold[head as usize].prev = i;
        }
        self.heads[slot] = i;
        self.len += 1;
    }

    /// Take entry `i` out of its slot (no-op if it is in none).
    #[inline]
    pub fn remove(&mut self, cold: &mut [Cold], i: u32) {
        let c = cold[i as usize];
        if c.slot == NO_SLOT {
            return;
        }
        if c.prev != NONE {
            cold[c.prev as usize].next = c.next;
        } else {
            self.heads[c.slot as usize] = c.next;
        }
        if c.next != NONE {
            cold[c.next as usize].prev = c.prev;
        }
        let c = &mut cold[i as usize];
        (c.prev, c.next, c.slot) = (NONE, NONE, NO_SLOT);
        self.len -= 1;
    }

    /// Move entry `i` to the slot of `due_ms`.
    #[inline]
    pub fn reschedule(&mut self, cold: &mut [Cold], i: u32, due_ms: u64) {
        self.remove(cold, i);
        self.insert(cold, i, due_ms);
    }

    /// Take up to `out.len()` entries whose slot is due at `now_ms` out of
    /// the wheel into `out`; how many. Each is out of every slot: the
    /// caller ends it or inserts it again. 0 when nothing is due.
    pub fn pop_due(&mut self, cold: &mut [Cold], now_ms: u64, out: &mut [u32]) -> usize {
        let now = now_ms >> TICK_SHIFT;
        let mut n = 0;
        while n < out.len() && self.cur <= now {
            let period = self.cur >> L1_BITS;
            let slot = if self.cascaded < period {
                L1 + ((period as usize) & (L2 - 1))
            } else {
                (self.cur as usize) & (L1 - 1)
            };
            let head = self.heads[slot];
            if head == NONE {
                if slot >= L1 {
                    self.cascaded = period;
                } else {
                    self.cur += 1;
                }
                continue;
            }
            self.remove(cold, head);
            out[n] = head;
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn cold(n: usize) -> Vec<Cold> {
        vec![Cold::EMPTY; n]
    }

    /// Drive the wheel like the GW does: entries come back until their
    /// real deadline has passed; each ends in the step after it.
    fn run(deadlines: &[u64], step_ms: u64, until: u64) -> BTreeMap<u32, u64> {
        let mut c = cold(deadlines.len());
        let mut w = Wheel::new(0);
        for (i, &d) in deadlines.iter().enumerate() {
            w.insert(&mut c, i as u32, d + 1);
        }
        let mut ended = BTreeMap::new();
        let mut buf = [0u32; 8];
        let mut now = 0;
        while now <= until {
            loop {
                let k = w.pop_due(&mut c, now, &mut buf);
                if k == 0 {
                    break;
                }
                for &i in &buf[..k] {
                    let d = deadlines[i as usize];
                    if now > d {
                        ended.insert(i, now);
                    } else {
                        w.insert(&mut c, i, d + 1);
                    }
                }
            }
            now += step_ms;
        }
        assert_eq!(w.len() + ended.len(), deadlines.len());
        ended
    }

    #[test]
    fn entries_end_after_their_deadline_and_not_much_later() {
        // Level 1, level 2, and beyond level 2 (parked and looked at again).
        let deadlines = [
            0, 1, 63, 64, 65, 1000, 65_535, 65_536, 70_000, 200_000, 4_000_000, 20_000_000,
        ];
        let ended = run(&deadlines, 7, 21_000_000);
        for (i, &d) in deadlines.iter().enumerate() {
            let at = ended[&(i as u32)];
            assert!(
                at > d,
                "entry {i} ended at {at}, not after its deadline {d}"
            );
            assert!(at <= d + 8, "entry {i} ended at {at}, deadline {d}");
        }
    }

    #[test]
    fn remove_and_reschedule_are_exact() {
        let mut c = cold(4);
        let mut w = Wheel::new(1_000);
        for i in 0..4 {
            w.insert(&mut c, i, 5_000);
        }
        w.remove(&mut c, 1);
        w.remove(&mut c, 1); // twice: no-op
        w.reschedule(&mut c, 2, 100_000);
        assert_eq!(w.len(), 3);
        let mut out = [0u32; 8];
        let k = w.pop_due(&mut c, 5_100, &mut out);
        let mut got = out[..k].to_vec();
        got.sort();
        assert_eq!(got, vec![0, 3]);
        assert_eq!(w.pop_due(&mut c, 60_000, &mut out), 0);
        assert_eq!(w.pop_due(&mut c, 100_100, &mut out), 1);
        assert_eq!(out[0], 2);
        assert!(w.is_empty());
        assert!(c.iter().all(|x| x.slot == NO_SLOT));
    }

    #[test]
    fn a_small_budget_hands_everything_out_in_turns() {
        let n = 1000;
        let mut c = cold(n);
        let mut w = Wheel::new(0);
        for i in 0..n as u32 {
            w.insert(&mut c, i, 100 + (i as u64 % 7));
        }
        let mut out = [0u32; 16];
        let mut seen = vec![false; n];
        loop {
            let k = w.pop_due(&mut c, 500, &mut out);
            if k == 0 {
                break;
            }
            for &i in &out[..k] {
                assert!(!seen[i as usize], "{i} twice");
                seen[i as usize] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }
}
