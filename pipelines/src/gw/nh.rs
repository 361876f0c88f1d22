//! Worker-local MAC tables the hot line points into with a small index
//! instead of holding MACs itself (12 bytes saved per connection):
//!
//! * [`NextHops`]: the servers' next hops. One slot per server address (or
//!   the default router), resolved from the published neighbour table and
//!   resolved again — once per server, not per connection — when a new
//!   table is published (its epoch changes).
//! * [`LbMacs`]: the MACs of the LBs up packets came from (the entry points
//!   down packets must go back through); a connection keeps the index of
//!   its latest.
//!
//! Both are filled on connection starts and moves (rare) and read per packet
//! (a load from a table of at most a few hundred entries, in L1/L2).

use super::hash::fmix64;
use super::tables::Neighbours;

/// Next-hop slot of the default router (`server_next_hop_mac`), used by
/// destinations without a neighbour entry of their own.
pub const DEFAULT_NH: u16 = 0;

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// IPv4-mapped or IPv6 address ([0; 16] = the default router slot).
    ip: [u8; 16],
    mac: [u8; 6],
    valid: bool,
    epoch: u64,
}

/// Next hops toward the servers.
#[derive(Clone, Debug)]
pub struct NextHops {
    slots: Vec<Slot>,
    /// Open addressing: address → slot index + 1 (0 empty).
    map: Vec<u16>,
    mask: usize,
    default: Option<[u8; 6]>,
}

fn home(ip: &[u8; 16]) -> u64 {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&ip[..8]);
    b.copy_from_slice(&ip[8..]);
    fmix64(u64::from_ne_bytes(a) ^ fmix64(u64::from_ne_bytes(b)))
}

/// The IPv4-mapped form of an IPv4 address.
#[inline]
pub fn mapped(ip: [u8; 4]) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[10] = 0xff;
    m[11] = 0xff;
    m[12..].copy_from_slice(&ip);
    m
}

impl NextHops {
    /// Room for `max` server addresses besides the default router.
    pub fn new(max: u32, default: Option<[u8; 6]>) -> NextHops {
        let cap = (max as usize + 1).min(u16::MAX as usize - 1);
        let size = (cap * 2).next_power_of_two();
        let mut n = NextHops {
            slots: Vec::with_capacity(cap),
            map: vec![0; size],
            mask: size - 1,
            default,
        };
        n.slots.push(Slot {
            ip: [0; 16],
            mac: default.unwrap_or([0; 6]),
            valid: default.is_some(),
            epoch: u64::MAX,
        });
        n
    }

    /// The slot for next hop `ip` (IPv4-mapped or IPv6), resolved in `nb`
    /// (its own neighbour entry, else the default router). A server of a
    /// group (`member`) always gets a slot of its own, so that its
    /// connections follow its MAC once it is resolved; any other
    /// destination without a neighbour entry shares the default router's.
    /// `None` if the MAC is not known (no entry, no default router) or the
    /// table is full: the connection is refused as `no_neighbor`.
    pub fn slot_for(&mut self, nb: &Neighbours, ip: &[u8; 16], member: bool) -> Option<u16> {
        let mut s = home(ip) as usize & self.mask;
        loop {
            match self.map[s] {
                0 => break,
                i if self.slots[i as usize - 1].ip == *ip => {
                    let i = i - 1;
                    return self.mac(nb, i).map(|_| i);
                }
                _ => s = (s + 1) & self.mask,
            }
        }
        if !member && lookup(nb, ip).is_none() {
            return self.default.map(|_| DEFAULT_NH);
        }
        if self.slots.len() == self.slots.capacity() {
            return None;
        }
        let i = self.slots.len() as u16;
        self.slots.push(Slot {
            ip: *ip,
            mac: [0; 6],
            valid: false,
            epoch: u64::MAX,
        });
        self.map[s] = i + 1;
        self.mac(nb, i).map(|_| i)
    }

    /// The MAC of slot `i` under the published table `nb` (resolved again
    /// when `nb` is newer than the slot; a server whose entry disappeared
    /// falls back to the default router).
    #[inline]
    pub fn mac(&mut self, nb: &Neighbours, i: u16) -> Option<[u8; 6]> {
        let s = &mut self.slots[i as usize];
        if s.epoch != nb.epoch() && i != DEFAULT_NH {
            let m = lookup(nb, &s.ip).or(self.default);
            s.valid = m.is_some();
            s.mac = m.unwrap_or([0; 6]);
            s.epoch = nb.epoch();
        }
        s.valid.then_some(s.mac)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

fn lookup(nb: &Neighbours, ip: &[u8; 16]) -> Option<[u8; 6]> {
    if ip[..12] == mapped([0; 4])[..12] {
        nb.get([ip[12], ip[13], ip[14], ip[15]])
    } else {
        nb.get6(ip)
    }
}

/// MACs of the LBs (entry points) up packets arrived from.
#[derive(Clone, Debug)]
pub struct LbMacs {
    macs: Vec<[u8; 6]>,
}

/// Most LB MACs a worker tells apart (an index is one byte).
pub const MAX_LBS: usize = 256;

impl Default for LbMacs {
    fn default() -> Self {
        LbMacs {
            macs: Vec::with_capacity(MAX_LBS),
        }
    }
}

impl LbMacs {
    #[inline(always)]
    pub fn get(&self, i: u8) -> [u8; 6] {
        self.macs.get(i as usize).copied().unwrap_or([0; 6])
    }
    /// The index of `mac`, added if new; `None` if the table is full.
    pub fn index(&mut self, mac: [u8; 6]) -> Option<u8> {
        if let Some(i) = self.macs.iter().position(|m| *m == mac) {
            return Some(i as u8);
        }
        if self.macs.len() == MAX_LBS {
            return None;
        }
        self.macs.push(mac);
        Some((self.macs.len() - 1) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_hops_follow_the_published_table() {
        let a = [10, 0, 0, 1];
        let nb1 = Neighbours::new([(a, [2, 0, 0, 0, 0, 1])]);
        let mut n = NextHops::new(4, Some([2, 0, 0, 0, 0, 0xee]));
        let s = n.slot_for(&nb1, &mapped(a), true).unwrap();
        assert_ne!(s, DEFAULT_NH);
        assert_eq!(
            n.slot_for(&nb1, &mapped(a), true),
            Some(s),
            "one slot per server"
        );
        assert_eq!(n.mac(&nb1, s), Some([2, 0, 0, 0, 0, 1]));
        // unknown destination: the default router
        assert_eq!(
            n.slot_for(&nb1, &mapped([8, 8, 8, 8]), false),
            Some(DEFAULT_NH)
        );
        assert_eq!(n.mac(&nb1, DEFAULT_NH), Some([2, 0, 0, 0, 0, 0xee]));
        // a new table: the server moved
        let nb2 = Neighbours::new([(a, [2, 0, 0, 0, 0, 2])]);
        assert_eq!(n.mac(&nb2, s), Some([2, 0, 0, 0, 0, 2]));
        // gone: the default router
        let nb3 = Neighbours::new([]);
        assert_eq!(n.mac(&nb3, s), Some([2, 0, 0, 0, 0, 0xee]));
        // no default router: unresolved
        let mut n = NextHops::new(4, None);
        assert_eq!(n.slot_for(&nb3, &mapped(a), true), None);
        assert_eq!(n.slot_for(&nb3, &mapped(a), false), None);
    }

    #[test]
    fn lb_macs_are_indexed_once() {
        let mut l = LbMacs::default();
        assert_eq!(l.index([1; 6]), Some(0));
        assert_eq!(l.index([2; 6]), Some(1));
        assert_eq!(l.index([1; 6]), Some(0));
        assert_eq!(l.get(1), [2; 6]);
        for i in 2..MAX_LBS {
            assert!(l.index([i as u8, 0, 0, 0, 0, 9]).is_some());
        }
        assert_eq!(l.index([7; 6]), None, "full");
    }
}
