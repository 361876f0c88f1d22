//! A pre-sized stack of the free slots of a pool (VPP's pool free vector,
//! without growth): [`FreeStack::take`] the most recently given back,
//! [`FreeStack::give`] one back; nothing allocated after
//! [`FreeStack::new`]. The Host/SNI attribute pool, the SYN proxy's
//! early-segment stash and the fragment hold slots keep theirs in one.

use crate::hw::TableAlloc;

/// The free slots of a pool of `n` (indices `0..n`).
pub struct FreeStack<A: TableAlloc> {
    free: A::Mem<u32>,
    top: u32,
}

impl<A: TableAlloc> FreeStack<A> {
    /// Every slot of `0..n` free, taken lowest first; `what` names the
    /// memory to `alloc`.
    pub fn new(alloc: &A, what: &str, n: usize) -> Result<Self, String> {
        let mut free = alloc.alloc(what, n, 0u32)?;
        for (i, f) in free.iter_mut().enumerate() {
            *f = (n - 1 - i) as u32;
        }
        Ok(FreeStack {
            free,
            top: n as u32,
        })
    }

    /// A free slot, if any.
    #[inline]
    pub fn take(&mut self) -> Option<u32> {
        self.top = self.top.checked_sub(1)?;
        Some(self.free[self.top as usize])
    }

    /// Give back slot `s` (taken before, not given back since).
    #[inline]
    pub fn give(&mut self, s: u32) {
        self.free[self.top as usize] = s;
        self.top += 1;
    }

    /// Free slots.
    #[inline]
    pub fn available(&self) -> u32 {
        self.top
    }

    /// Bytes it holds.
    pub fn bytes(&self) -> usize {
        self.free.len() * core::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::HeapAlloc;

    #[test]
    fn takes_lowest_first_then_last_given_back() {
        let mut f = FreeStack::new(&HeapAlloc, "test", 3).unwrap();
        assert_eq!((f.take(), f.take(), f.available()), (Some(0), Some(1), 1));
        f.give(0);
        assert_eq!((f.take(), f.take(), f.take()), (Some(0), Some(2), None));
        assert_eq!(f.available(), 0);
        let mut empty = FreeStack::new(&HeapAlloc, "test", 0).unwrap();
        assert_eq!(empty.take(), None);
    }
}
