//! Half-open connections counted per VIP address: what `syn_proxy =
//! "auto"` compares with its threshold, so that a SYN flood to one VIP
//! turns the cookies on for that VIP alone.
//!
//! A table of [`SLOTS`] (address, count) pairs, open addressing with
//! linear probing, allocated once per worker. An address keeps its slot
//! once it has one (no deletion: the VIP addresses a worker ever sees are
//! its profile's, a few), so a count always finds the slot it was added
//! to. When every slot is taken, a new address counts in the shared
//! `overflow` count instead, there for the worker's lifetime: consistent
//! too, as the table never frees a slot.

use crate::hw::TableAlloc;

/// Slots of the table (a power of two).
pub const SLOTS: usize = 1024;

/// Empty slot (0.0.0.0 is never a VIP: such an address counts in
/// `overflow`).
const EMPTY: u32 = 0;

pub struct VipHalfOpen<A: TableAlloc> {
    slots: A::Mem<(u32, u32)>,
    overflow: u32,
}

/// Where an address counts.
enum At {
    Slot(usize),
    Overflow,
}

impl<A: TableAlloc> VipHalfOpen<A> {
    pub fn new(alloc: &A) -> Result<Self, String> {
        Ok(VipHalfOpen {
            slots: alloc.alloc("gw half-open per VIP", SLOTS, (EMPTY, 0))?,
            overflow: 0,
        })
    }

    /// The address's slot, or the empty slot where it would go (`None`:
    /// not there, and the table is full).
    #[inline]
    fn find(&self, addr: u32) -> Option<usize> {
        let mut i = (addr.wrapping_mul(0x9e37_79b1) >> (32 - SLOTS.trailing_zeros())) as usize;
        for _ in 0..SLOTS {
            let k = self.slots[i].0;
            if k == addr || k == EMPTY {
                return Some(i);
            }
            i = (i + 1) & (SLOTS - 1);
        }
        None
    }

    #[inline]
    fn at(&self, addr: u32) -> At {
        match self.find(addr) {
            Some(i) if addr != EMPTY && self.slots[i].0 == addr => At::Slot(i),
            _ => At::Overflow,
        }
    }

    /// Half-open connections to `addr`.
    #[inline]
    pub fn count(&self, addr: [u8; 4]) -> u32 {
        match self.at(u32::from_be_bytes(addr)) {
            At::Slot(i) => self.slots[i].1,
            At::Overflow => self.overflow,
        }
    }

    /// One more half-open connection to `addr`.
    pub fn add(&mut self, addr: [u8; 4]) {
        let a = u32::from_be_bytes(addr);
        match self.find(a) {
            Some(i) if a != EMPTY => {
                self.slots[i].0 = a;
                self.slots[i].1 += 1;
            }
            _ => self.overflow += 1,
        }
    }

    /// One half-open connection to `addr` fewer (one [`Self::add`]ed).
    pub fn sub(&mut self, addr: [u8; 4]) {
        let c = match self.at(u32::from_be_bytes(addr)) {
            At::Slot(i) => &mut self.slots[i].1,
            At::Overflow => &mut self.overflow,
        };
        debug_assert!(*c > 0, "half-open count underflow");
        *c = c.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::HeapAlloc;

    #[test]
    fn each_address_counts_apart() {
        let mut t = VipHalfOpen::new(&HeapAlloc).unwrap();
        t.add([198, 18, 0, 1]);
        t.add([198, 18, 0, 1]);
        t.add([198, 18, 0, 2]);
        assert_eq!(t.count([198, 18, 0, 1]), 2);
        assert_eq!(t.count([198, 18, 0, 2]), 1);
        assert_eq!(t.count([198, 18, 0, 3]), 0);
        t.sub([198, 18, 0, 1]);
        assert_eq!(t.count([198, 18, 0, 1]), 1);
        assert_eq!(t.count([198, 18, 0, 2]), 1);
    }

    #[test]
    fn a_full_table_counts_new_addresses_in_the_overflow() {
        let mut t = VipHalfOpen::new(&HeapAlloc).unwrap();
        for i in 1..=SLOTS as u32 {
            t.add((0x0a00_0000 + i).to_be_bytes());
        }
        // every slot taken: each keeps its own count
        assert_eq!(t.count(0x0a00_0001u32.to_be_bytes()), 1);
        let late = [203, 0, 113, 9];
        t.add(late);
        t.add(late);
        assert_eq!(t.count(late), 2);
        assert_eq!(t.count([203, 0, 113, 10]), 2, "shares the overflow");
        t.sub(late);
        assert_eq!(t.count(late), 1);
        assert_eq!(t.count(0x0a00_0400u32.to_be_bytes()), 1);
    }
}
