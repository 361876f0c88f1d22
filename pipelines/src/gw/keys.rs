//! The per-worker NAT key allocator: a FIFO of free keys and a FIFO of keys
//! on hold.
//!
//! A key is allocated from the head of the free FIFO. A released key first
//! waits in the hold FIFO for `close_hold_ms`, then rejoins the *tail* of the
//! free FIFO, so a (pool address, port) is reused as late as possible: after
//! every other free key was used once. Since the hold time is constant and
//! the clock monotonic, the hold FIFO is ordered by due time and only its
//! head is ever checked.
//!
//! ## RSS steering ([`KeyAlloc::alloc_pref`])
//! With RSS steering on, a connection start looks at the first `probe` keys
//! of the free FIFO and takes the first one the caller prefers (its down
//! packets land on this worker's RX queue); the keys it skipped move, in
//! order, to the tail. If none is preferred, the head is taken and nothing
//! moves. Effect on the order: a skipped key is reused later than strict
//! FIFO order would reuse it (behind every key freed after it), and the
//! chosen key at most `probe - 1` places earlier; keys not looked at keep
//! their order. The hold is unaffected: only keys in the free FIFO are
//! looked at, and a key enters it only after its full `close_hold_ms` in
//! the hold FIFO, so no key is ever handed out before its hold is over.
//!
//! Both FIFOs are rings preallocated for every key of the worker (a key is in
//! at most one of: free, hold, in use), so nothing allocates after `new`.
//! Memory: 4 bytes (free ring) + 16 bytes (hold ring) per key.

/// A fixed-capacity ring.
#[derive(Clone, Debug)]
pub struct Fifo<T: Copy> {
    buf: Vec<T>,
    head: usize,
    len: usize,
}

impl<T: Copy + Default> Fifo<T> {
    pub fn with_capacity(cap: usize) -> Self {
        Fifo {
            buf: vec![T::default(); cap.max(1)],
            head: 0,
            len: 0,
        }
    }
}

impl<T: Copy> Fifo<T> {
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Push at the tail; false (and nothing stored) if full.
    #[inline]
    pub fn push(&mut self, v: T) -> bool {
        if self.len == self.buf.len() {
            return false;
        }
        let i = (self.head + self.len) % self.buf.len();
        self.buf[i] = v;
        self.len += 1;
        true
    }
    #[inline]
    pub fn front(&self) -> Option<T> {
        (self.len > 0).then(|| self.buf[self.head])
    }
    /// The `i`-th element from the head.
    #[inline]
    pub fn peek(&self, i: usize) -> Option<T> {
        (i < self.len).then(|| self.buf[(self.head + i) % self.buf.len()])
    }
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        let v = self.front()?;
        self.head = (self.head + 1) % self.buf.len();
        self.len -= 1;
        Some(v)
    }
}

/// Free and held keys of one worker (keys are indices `0..n`).
#[derive(Clone, Debug)]
pub struct KeyAlloc {
    free: Fifo<u32>,
    /// (key, due_ms)
    hold: Fifo<(u32, u64)>,
    hold_ms: u64,
}

impl KeyAlloc {
    /// All `n` keys free, in the order `order` yields them (each once).
    pub fn new(n: u32, hold_ms: u64, order: impl IntoIterator<Item = u32>) -> KeyAlloc {
        let mut free = Fifo::with_capacity(n as usize);
        for k in order {
            debug_assert!(k < n);
            free.push(k);
        }
        KeyAlloc {
            free,
            hold: Fifo::with_capacity(n as usize),
            hold_ms,
        }
    }

    /// Take the oldest free key.
    #[inline]
    pub fn alloc(&mut self) -> Option<u32> {
        self.free.pop()
    }

    /// Take the first of the next `probe` free keys for which `prefer`
    /// holds, moving the keys skipped before it to the tail; if none does,
    /// the head (nothing moves). `(key, preferred)`, or `None` if no key is
    /// free. See the module docs for the effect on the order.
    #[inline]
    pub fn alloc_pref(
        &mut self,
        probe: usize,
        mut prefer: impl FnMut(u32) -> bool,
    ) -> Option<(u32, bool)> {
        let n = probe.min(self.free.len());
        for i in 0..n {
            let k = self.free.peek(i)?;
            if prefer(k) {
                for _ in 0..i {
                    let s = self.free.pop()?;
                    self.free.push(s);
                }
                return self.free.pop().map(|k| (k, true));
            }
        }
        self.free.pop().map(|k| (k, false))
    }

    /// Put a key on hold until `now_ms + hold_ms`.
    #[inline]
    pub fn release(&mut self, key: u32, now_ms: u64) {
        let ok = self.hold.push((key, now_ms.saturating_add(self.hold_ms)));
        debug_assert!(ok, "hold ring overflow: key released twice");
    }

    /// The head of the hold FIFO if its hold is over; the caller cleans the
    /// key's flow entry and then calls [`KeyAlloc::free`].
    #[inline]
    pub fn pop_due(&mut self, now_ms: u64) -> Option<u32> {
        match self.hold.front() {
            Some((k, due)) if due <= now_ms => {
                self.hold.pop();
                Some(k)
            }
            _ => None,
        }
    }

    /// Return a key to the tail of the free FIFO.
    #[inline]
    pub fn free(&mut self, key: u32) {
        let ok = self.free.push(key);
        debug_assert!(ok, "free ring overflow: key freed twice");
    }

    pub fn free_len(&self) -> usize {
        self.free.len()
    }
    pub fn held_len(&self) -> usize {
        self.hold.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_wraps() {
        let mut f = Fifo::<u32>::with_capacity(3);
        assert!(f.push(1) && f.push(2) && f.push(3));
        assert!(!f.push(4));
        assert_eq!(f.pop(), Some(1));
        assert!(f.push(4));
        assert_eq!(
            (f.pop(), f.pop(), f.pop(), f.pop()),
            (Some(2), Some(3), Some(4), None)
        );
    }

    #[test]
    fn alloc_pref_moves_skipped_keys_to_the_tail() {
        let mut a = KeyAlloc::new(6, 100, 0..6);
        // prefer odd keys: 0 is skipped, 1 taken
        assert_eq!(a.alloc_pref(8, |k| k % 2 == 1), Some((1, true)));
        // free: 2 3 4 5 0
        assert_eq!(
            a.alloc_pref(1, |k| k == 3),
            Some((2, false)),
            "probe 1: only the head"
        );
        // free: 3 4 5 0 ; none preferred within 4: head, nothing moves
        assert_eq!(a.alloc_pref(4, |k| k == 9), Some((3, false)));
        // free: 4 5 0 ; prefer 0: 4 and 5 go to the tail in order
        assert_eq!(a.alloc_pref(8, |k| k == 0), Some((0, true)));
        let rest: Vec<_> = std::iter::from_fn(|| a.alloc()).collect();
        assert_eq!(rest, vec![4, 5]);
        assert_eq!(a.alloc_pref(8, |_| true), None);
    }

    #[test]
    fn released_keys_rejoin_the_tail_after_the_hold_in_fifo_order() {
        let mut a = KeyAlloc::new(4, 100, 0..4);
        assert_eq!(a.alloc(), Some(0));
        assert_eq!(a.alloc(), Some(1));
        a.release(1, 1000);
        a.release(0, 1010);
        assert_eq!(a.pop_due(1099), None);
        assert_eq!(a.pop_due(1100), Some(1));
        a.free(1);
        assert_eq!(a.pop_due(1109), None);
        assert_eq!(a.pop_due(1110), Some(0));
        a.free(0);
        // free order: 2, 3 (never used), then 1, 0 in release order
        let order: Vec<_> = std::iter::from_fn(|| a.alloc()).collect();
        assert_eq!(order, vec![2, 3, 1, 0]);
        assert_eq!(a.free_len(), 0);
        assert_eq!(a.held_len(), 0);
    }
}
