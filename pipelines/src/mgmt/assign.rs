//! Address assignment of the user authentication device (FIG. 5 S10–S16,
//! the address information table of FIG. 7).
//!
//! Each GW owns one or more IPv4 ranges. A device that already holds an
//! address keeps it (S7); a new one gets a free address of the operating GW
//! with the fewest assigned addresses, ties to the lowest GW id (S10–S12); a
//! GW marked down (server monitor) gets no new addresses until it is up
//! again. An address returns to its GW's pool on release (session Close →
//! None). Cost: O(number of GWs) per assignment; the address inside a GW
//! comes from a FIFO of released addresses or a cursor over never-used ones,
//! O(1) amortized. Memory: about 80 bytes + the device id per assigned
//! address.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;

/// A packet gateway device's id (profile order or the operator's number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GwId(pub u16);

impl fmt::Display for GwId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gw{}", self.0)
    }
}

/// An inclusive IPv4 range (FIG. 7 "IP address assignment range").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Range {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl Ipv4Range {
    pub fn new(first: Ipv4Addr, last: Ipv4Addr) -> Self {
        Ipv4Range { first, last }
    }

    /// Number of addresses (0 if `first > last`).
    pub fn size(&self) -> u64 {
        let (f, l) = (u32::from(self.first), u32::from(self.last));
        if f > l {
            0
        } else {
            u64::from(l - f) + 1
        }
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&a)
    }
}

/// One GW row of the address information table, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GwAddrRow {
    pub id: GwId,
    pub name: String,
    pub ranges: Vec<Ipv4Range>,
    /// Operating state at start.
    pub up: bool,
}

/// Where a device's address comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub gw: GwId,
    pub addr: Ipv4Addr,
}

/// A GW row as reported (FIG. 7 columns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GwStatus {
    pub id: GwId,
    pub name: String,
    pub up: bool,
    pub assigned: u64,
    pub capacity: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssignError {
    /// Every GW is down (or none is configured).
    NoGatewayUp,
    /// Every operating GW's ranges are fully assigned.
    Exhausted,
    UnknownGw(GwId),
    /// `claim` of an address outside every GW's ranges.
    AddressNotInRange(Ipv4Addr),
    /// `claim` of an address another device holds.
    AddressInUse {
        addr: Ipv4Addr,
        device: String,
    },
}

impl fmt::Display for AssignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AssignError::NoGatewayUp => write!(f, "no packet gateway is operating"),
            AssignError::Exhausted => {
                write!(f, "every operating gateway's address ranges are exhausted")
            }
            AssignError::UnknownGw(id) => write!(f, "unknown gateway {id}"),
            AssignError::AddressNotInRange(a) => write!(f, "{a} is in no gateway's range"),
            AssignError::AddressInUse { addr, device } => {
                write!(f, "{addr} is assigned to device {device}")
            }
        }
    }
}

impl std::error::Error for AssignError {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssignConfigError {
    DuplicateGw(GwId),
    /// A range whose first address is above its last.
    EmptyRange {
        gw: GwId,
        range: Ipv4Range,
    },
    /// Two ranges share addresses.
    Overlap {
        a: (GwId, Ipv4Range),
        b: (GwId, Ipv4Range),
    },
}

impl fmt::Display for AssignConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AssignConfigError::DuplicateGw(id) => {
                write!(f, "gateway {id} is listed twice in the address table; give each gateway its own id")
            }
            AssignConfigError::EmptyRange { gw, range } => write!(
                f,
                "gateway {gw}: range {}-{} has its first address above its last; swap them",
                range.first, range.last
            ),
            AssignConfigError::Overlap { a, b } => write!(
                f,
                "address ranges {}-{} ({}) and {}-{} ({}) overlap; every address must belong to one gateway",
                a.1.first, a.1.last, a.0, b.1.first, b.1.last, b.0
            ),
        }
    }
}

impl std::error::Error for AssignConfigError {}

/// A GW row inside the assigner: its ranges and how much of them is handed out.
#[derive(Debug)]
struct GwAddrState {
    id: GwId,
    name: String,
    up: bool,
    ranges: Vec<Ipv4Range>,
    capacity: u64,
    assigned: u64,
    /// Index into `ranges` and next never-handed-out address there.
    cursor_range: usize,
    cursor: u64,
    /// Released addresses, reused oldest first.
    free: VecDeque<Ipv4Addr>,
}

impl GwAddrState {
    fn owns(&self, a: Ipv4Addr) -> bool {
        self.ranges.iter().any(|r| r.contains(a))
    }

    /// A free address, skipping those taken by `claim` ahead of the cursor.
    fn take(&mut self, by_addr: &HashMap<Ipv4Addr, String>) -> Option<Ipv4Addr> {
        while let Some(a) = self.free.pop_front() {
            if !by_addr.contains_key(&a) {
                return Some(a);
            }
        }
        while let Some(r) = self.ranges.get(self.cursor_range) {
            if self.cursor <= u64::from(u32::from(r.last)) {
                let a = Ipv4Addr::from(self.cursor as u32);
                self.cursor += 1;
                if !by_addr.contains_key(&a) {
                    return Some(a);
                }
            } else {
                self.cursor_range += 1;
                if let Some(next) = self.ranges.get(self.cursor_range) {
                    self.cursor = u64::from(u32::from(next.first));
                }
            }
        }
        None
    }
}

/// The address information table (FIG. 7) plus the device → address map.
#[derive(Debug)]
pub struct Assigner {
    /// Sorted by id.
    gws: Vec<GwAddrState>,
    by_device: HashMap<String, Assignment>,
    by_addr: HashMap<Ipv4Addr, String>,
}

impl Assigner {
    pub fn new(gws: Vec<GwAddrRow>) -> Result<Self, AssignConfigError> {
        let mut all: Vec<(GwId, Ipv4Range)> = Vec::new();
        let mut out: Vec<GwAddrState> = Vec::with_capacity(gws.len());
        for g in gws {
            if out.iter().any(|o| o.id == g.id) {
                return Err(AssignConfigError::DuplicateGw(g.id));
            }
            for r in &g.ranges {
                if r.size() == 0 {
                    return Err(AssignConfigError::EmptyRange {
                        gw: g.id,
                        range: *r,
                    });
                }
                all.push((g.id, *r));
            }
            let cursor = g
                .ranges
                .first()
                .map_or(0, |r| u64::from(u32::from(r.first)));
            out.push(GwAddrState {
                id: g.id,
                name: g.name,
                up: g.up,
                capacity: g.ranges.iter().map(Ipv4Range::size).sum(),
                ranges: g.ranges,
                assigned: 0,
                cursor_range: 0,
                cursor,
                free: VecDeque::new(),
            });
        }
        all.sort_by_key(|(_, r)| r.first);
        for w in all.windows(2) {
            if w[1].1.first <= w[0].1.last {
                return Err(AssignConfigError::Overlap { a: w[0], b: w[1] });
            }
        }
        out.sort_by_key(|g| g.id);
        Ok(Assigner {
            gws: out,
            by_device: HashMap::new(),
            by_addr: HashMap::new(),
        })
    }

    /// S4–S7, S10–S16: the device's address, an existing one kept, a new
    /// one from the least-loaded operating GW.
    pub fn assign(&mut self, device_id: &str) -> Result<Assignment, AssignError> {
        if let Some(a) = self.by_device.get(device_id) {
            return Ok(*a);
        }
        let mut any_up = false;
        let mut best: Option<usize> = None;
        for (i, g) in self.gws.iter().enumerate() {
            if !g.up {
                continue;
            }
            any_up = true;
            if g.assigned >= g.capacity {
                continue;
            }
            // Strictly fewer wins, so ties keep the lower id (gws sorted by id).
            if best
                .map(|b| g.assigned < self.gws[b].assigned)
                .unwrap_or(true)
            {
                best = Some(i);
            }
        }
        let Some(i) = best else {
            return Err(if any_up {
                AssignError::Exhausted
            } else {
                AssignError::NoGatewayUp
            });
        };
        let g = &mut self.gws[i];
        let Some(addr) = g.take(&self.by_addr) else {
            // Counts and pools disagree: cannot happen while `assigned`
            // tracks `by_addr`; report exhaustion rather than panic.
            return Err(AssignError::Exhausted);
        };
        g.assigned += 1;
        let a = Assignment { gw: g.id, addr };
        self.by_device.insert(device_id.to_owned(), a);
        self.by_addr.insert(addr, device_id.to_owned());
        Ok(a)
    }

    /// Records that `device_id` holds `addr` (a NAS reporting an address the
    /// manager no longer knows, e.g. after a restart). Allowed on a down GW.
    pub fn claim(&mut self, device_id: &str, addr: Ipv4Addr) -> Result<Assignment, AssignError> {
        if let Some(a) = self.by_device.get(device_id) {
            if a.addr == addr {
                return Ok(*a);
            }
        }
        if let Some(d) = self.by_addr.get(&addr) {
            return Err(AssignError::AddressInUse {
                addr,
                device: d.clone(),
            });
        }
        let Some(i) = self.gws.iter().position(|g| g.owns(addr)) else {
            return Err(AssignError::AddressNotInRange(addr));
        };
        self.release(device_id);
        let g = &mut self.gws[i];
        g.free.retain(|f| *f != addr);
        g.assigned += 1;
        let a = Assignment { gw: g.id, addr };
        self.by_device.insert(device_id.to_owned(), a);
        self.by_addr.insert(addr, device_id.to_owned());
        Ok(a)
    }

    /// Returns the device's address to its GW's pool.
    pub fn release(&mut self, device_id: &str) -> Option<Assignment> {
        let a = self.by_device.remove(device_id)?;
        self.by_addr.remove(&a.addr);
        if let Some(g) = self.gws.iter_mut().find(|g| g.id == a.gw) {
            g.assigned = g.assigned.saturating_sub(1);
            g.free.push_back(a.addr);
        }
        Some(a)
    }

    /// Server monitor result. Returns whether the state changed.
    pub fn set_gw_up(&mut self, gw: GwId, up: bool) -> Result<bool, AssignError> {
        let g = self
            .gws
            .iter_mut()
            .find(|g| g.id == gw)
            .ok_or(AssignError::UnknownGw(gw))?;
        let changed = g.up != up;
        g.up = up;
        Ok(changed)
    }

    pub fn lookup(&self, device_id: &str) -> Option<Assignment> {
        self.by_device.get(device_id).copied()
    }

    pub fn device_of(&self, addr: Ipv4Addr) -> Option<&str> {
        self.by_addr.get(&addr).map(String::as_str)
    }

    /// The GW whose ranges hold `addr`.
    /// The position of `addr` among its gateway's addresses (ranges in
    /// order): what maps an IPv4 session to its IPv6 prefix.
    pub fn index_of(&self, addr: Ipv4Addr) -> Option<u64> {
        let g = self.gws.iter().find(|g| g.owns(addr))?;
        let mut base = 0u64;
        for r in &g.ranges {
            if r.contains(addr) {
                return Some(base + (u32::from(addr) - u32::from(r.first)) as u64);
            }
            base += (u32::from(r.last) - u32::from(r.first)) as u64 + 1;
        }
        None
    }

    pub fn gw_of(&self, addr: Ipv4Addr) -> Option<GwId> {
        self.gws.iter().find(|g| g.owns(addr)).map(|g| g.id)
    }

    pub fn gw_status(&self) -> Vec<GwStatus> {
        self.gws
            .iter()
            .map(|g| GwStatus {
                id: g.id,
                name: g.name.clone(),
                up: g.up,
                assigned: g.assigned,
                capacity: g.capacity,
            })
            .collect()
    }

    /// Number of assigned addresses.
    pub fn assigned(&self) -> usize {
        self.by_device.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn range(a: &str, b: &str) -> Ipv4Range {
        Ipv4Range::new(ip(a), ip(b))
    }

    fn gw(id: u16, ranges: Vec<Ipv4Range>) -> GwAddrRow {
        GwAddrRow {
            id: GwId(id),
            name: format!("Pgw{id}"),
            ranges,
            up: true,
        }
    }

    /// Three GWs with 4 addresses each.
    fn three() -> Assigner {
        Assigner::new(vec![
            gw(3, vec![range("10.96.0.1", "10.96.0.4")]),
            gw(1, vec![range("10.0.0.1", "10.0.0.4")]),
            gw(2, vec![range("10.32.0.1", "10.32.0.4")]),
        ])
        .unwrap()
    }

    fn loads(a: &Assigner) -> Vec<u64> {
        a.gw_status().iter().map(|g| g.assigned).collect()
    }

    #[test]
    fn least_loaded_gw_chosen_ties_to_lowest_id() {
        let mut a = three();
        let got: Vec<GwId> = (0..6)
            .map(|i| a.assign(&format!("dev{i}")).unwrap().gw)
            .collect();
        assert_eq!(got, [GwId(1), GwId(2), GwId(3), GwId(1), GwId(2), GwId(3)]);
        assert_eq!(a.lookup("dev0").unwrap().addr, ip("10.0.0.1"));
        assert_eq!(a.lookup("dev3").unwrap().addr, ip("10.0.0.2"));
        // GW 2 loses two devices: it is now the least loaded.
        a.release("dev1");
        a.release("dev4");
        assert_eq!(loads(&a), [2, 0, 2]);
        assert_eq!(a.assign("dev6").unwrap().gw, GwId(2));
        assert_eq!(a.assign("dev7").unwrap().gw, GwId(2));
        assert_eq!(
            a.assign("dev8").unwrap().gw,
            GwId(1),
            "tie 2/2/2 goes to the lowest id"
        );
    }

    #[test]
    fn fig7_next_address_goes_to_pgw4() {
        // FIG. 7: Pgw1..3 hold 20 addresses, Pgw4 19.
        let mut a = Assigner::new(vec![
            gw(1, vec![range("10.0.0.1", "10.32.0.0")]),
            gw(2, vec![range("10.32.0.1", "10.64.0.0")]),
            gw(3, vec![range("10.64.0.1", "10.96.0.0")]),
            gw(4, vec![range("10.96.0.1", "10.128.0.0")]),
        ])
        .unwrap();
        for (g, base, n) in [
            (1u32, 0x0a00_0001u32, 20),
            (2, 0x0a20_0001, 20),
            (3, 0x0a40_0001, 20),
            (4, 0x0a60_0001, 19),
        ] {
            for k in 0..n {
                a.claim(&format!("g{g}d{k}"), Ipv4Addr::from(base + k))
                    .unwrap();
            }
        }
        assert_eq!(loads(&a), [20, 20, 20, 19]);
        let got = a.assign("F50200099").unwrap();
        assert_eq!(
            got,
            Assignment {
                gw: GwId(4),
                addr: ip("10.96.0.20")
            },
            "cursor skips claimed addresses"
        );
        assert_eq!(a.gw_status()[0].capacity, 0x0020_0000);
    }

    #[test]
    fn existing_device_keeps_its_address() {
        let mut a = three();
        let first = a.assign("F50200001").unwrap();
        a.assign("F50200002").unwrap();
        a.assign("F50200003").unwrap();
        assert_eq!(a.assign("F50200001").unwrap(), first);
        assert_eq!(loads(&a), [1, 1, 1], "no second address taken");
        // Even when its GW is down (the LBs send its traffic to the substitute).
        a.set_gw_up(first.gw, false).unwrap();
        assert_eq!(a.assign("F50200001").unwrap(), first);
    }

    #[test]
    fn down_gw_skipped_then_used_again_after_recovery() {
        let mut a = three();
        assert_eq!(a.set_gw_up(GwId(1), false), Ok(true));
        assert_eq!(a.set_gw_up(GwId(1), false), Ok(false));
        let got: Vec<GwId> = (0..4)
            .map(|i| a.assign(&format!("d{i}")).unwrap().gw)
            .collect();
        assert_eq!(got, [GwId(2), GwId(3), GwId(2), GwId(3)]);
        assert_eq!(a.set_gw_up(GwId(1), true), Ok(true));
        let got: Vec<GwId> = (4..7)
            .map(|i| a.assign(&format!("d{i}")).unwrap().gw)
            .collect();
        assert_eq!(
            got,
            [GwId(1), GwId(1), GwId(1)],
            "recovered GW is the least loaded"
        );
        assert_eq!(
            a.set_gw_up(GwId(9), true),
            Err(AssignError::UnknownGw(GwId(9)))
        );
    }

    #[test]
    fn exhaustion_and_no_gateway_up() {
        let mut a = Assigner::new(vec![
            gw(1, vec![range("10.0.0.1", "10.0.0.1")]),
            gw(2, vec![range("10.0.1.1", "10.0.1.2")]),
        ])
        .unwrap();
        assert_eq!(a.assign("a").unwrap().gw, GwId(1));
        assert_eq!(a.assign("b").unwrap().gw, GwId(2));
        assert_eq!(a.assign("c").unwrap().gw, GwId(2), "full GW 1 skipped");
        assert_eq!(a.assign("d"), Err(AssignError::Exhausted));
        assert_eq!(a.assigned(), 3);
        // Release gives the address back.
        assert_eq!(a.release("b").unwrap().addr, ip("10.0.1.1"));
        assert_eq!(a.release("b"), None);
        assert_eq!(a.assign("d").unwrap().addr, ip("10.0.1.1"));
        a.set_gw_up(GwId(1), false).unwrap();
        a.set_gw_up(GwId(2), false).unwrap();
        assert_eq!(a.assign("e"), Err(AssignError::NoGatewayUp));
        assert_eq!(
            Assigner::new(vec![]).unwrap().assign("x"),
            Err(AssignError::NoGatewayUp)
        );
    }

    #[test]
    fn several_ranges_per_gw_and_reuse_order() {
        let mut a = Assigner::new(vec![gw(
            1,
            vec![range("10.0.0.1", "10.0.0.2"), range("10.9.0.1", "10.9.0.1")],
        )])
        .unwrap();
        let addrs: Vec<Ipv4Addr> = (0..3)
            .map(|i| a.assign(&format!("d{i}")).unwrap().addr)
            .collect();
        assert_eq!(addrs, [ip("10.0.0.1"), ip("10.0.0.2"), ip("10.9.0.1")]);
        assert_eq!(a.assign("d3"), Err(AssignError::Exhausted));
        a.release("d1");
        a.release("d0");
        assert_eq!(
            a.assign("d4").unwrap().addr,
            ip("10.0.0.2"),
            "oldest released first"
        );
        assert_eq!(a.assign("d5").unwrap().addr, ip("10.0.0.1"));
        assert_eq!(a.device_of(ip("10.0.0.1")), Some("d5"));
        assert_eq!(a.gw_of(ip("10.9.0.1")), Some(GwId(1)));
        assert_eq!(a.gw_of(ip("10.9.0.2")), None);
    }

    #[test]
    fn claim_rules() {
        let mut a = three();
        assert_eq!(a.claim("x", ip("10.32.0.3")).unwrap().gw, GwId(2));
        assert_eq!(
            a.claim("y", ip("10.32.0.3")),
            Err(AssignError::AddressInUse {
                addr: ip("10.32.0.3"),
                device: "x".into()
            })
        );
        assert_eq!(
            a.claim("y", ip("192.0.2.1")),
            Err(AssignError::AddressNotInRange(ip("192.0.2.1")))
        );
        // Moving x to another address frees the old one.
        a.claim("x", ip("10.32.0.4")).unwrap();
        assert_eq!(a.device_of(ip("10.32.0.3")), None);
        assert_eq!(loads(&a), [0, 1, 0]);
    }

    #[test]
    fn config_errors() {
        assert_eq!(
            Assigner::new(vec![gw(1, vec![]), gw(1, vec![])]).unwrap_err(),
            AssignConfigError::DuplicateGw(GwId(1))
        );
        assert!(matches!(
            Assigner::new(vec![gw(1, vec![range("10.0.0.5", "10.0.0.1")])]).unwrap_err(),
            AssignConfigError::EmptyRange { .. }
        ));
        assert!(matches!(
            Assigner::new(vec![
                gw(1, vec![range("10.0.0.1", "10.0.0.9")]),
                gw(2, vec![range("10.0.0.9", "10.0.1.0")])
            ])
            .unwrap_err(),
            AssignConfigError::Overlap { .. }
        ));
    }

    #[test]
    fn range_at_top_of_address_space() {
        let mut a = Assigner::new(vec![gw(
            1,
            vec![range("255.255.255.254", "255.255.255.255")],
        )])
        .unwrap();
        assert_eq!(a.assign("a").unwrap().addr, ip("255.255.255.254"));
        assert_eq!(a.assign("b").unwrap().addr, ip("255.255.255.255"));
        assert_eq!(a.assign("c"), Err(AssignError::Exhausted));
    }
}

/// The /64 of session `index` inside a gateway's IPv6 block `base/len`
/// (len ≤ 64): the index fills bits len..64. `None` when the block has no
/// room for it.
pub fn ipv6_prefix_for(base: [u8; 16], len: u8, index: u64) -> Option<[u8; 16]> {
    if len > 64 {
        return None;
    }
    let bits = 64 - len as u32;
    if bits < 64 && index >= (1u64 << bits) {
        return None;
    }
    let hi = u64::from_be_bytes(base[..8].try_into().unwrap());
    let mask = if bits == 64 { 0 } else { !((1u64 << bits) - 1) };
    let v = (hi & mask) | index;
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&v.to_be_bytes());
    Some(out)
}

#[cfg(test)]
mod ipv6_tests {
    use super::*;

    #[test]
    fn session_prefixes_follow_the_ipv4_index() {
        let base = [
            0x20, 0x01, 0x0d, 0xb8, 0, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let p = ipv6_prefix_for(base, 48, 0x12).unwrap();
        assert_eq!(&p[..8], &[0x20, 0x01, 0x0d, 0xb8, 0, 0x50, 0, 0x12]);
        assert_eq!(&p[8..], &[0; 8]);
        assert_eq!(
            ipv6_prefix_for(base, 48, 0xffff).unwrap()[6..8],
            [0xff, 0xff]
        );
        assert_eq!(
            ipv6_prefix_for(base, 48, 0x10000),
            None,
            "a /48 has 65536 /64s"
        );
        assert_eq!(ipv6_prefix_for(base, 64, 0).unwrap()[..8], base[..8]);
        assert_eq!(ipv6_prefix_for(base, 64, 1), None);
        assert_eq!(ipv6_prefix_for(base, 65, 0), None);
        let a = Assigner::new(vec![GwAddrRow {
            id: GwId(0),
            name: "gw".into(),
            ranges: vec![
                Ipv4Range::new(Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 19)),
                Ipv4Range::new(Ipv4Addr::new(10, 0, 1, 0), Ipv4Addr::new(10, 0, 1, 9)),
            ],
            up: true,
        }])
        .unwrap();
        assert_eq!(a.index_of(Ipv4Addr::new(10, 0, 0, 10)), Some(0));
        assert_eq!(a.index_of(Ipv4Addr::new(10, 0, 1, 3)), Some(13));
        assert_eq!(a.index_of(Ipv4Addr::new(10, 0, 2, 3)), None);
    }
}
