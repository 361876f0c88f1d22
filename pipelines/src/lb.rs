//! The LB stage: the first distribution stage of the spec (FIG. 12–14,
//! steps S21–S29).
//!
//! Every LB holds the same table (FIG. 14): subscriber source-address range →
//! primary gateway MAC and state, substitute gateway MACs and states. Because
//! the choice depends on the source address and the table only, every packet
//! of a subscriber reaches the same GW whichever LB it enters through.
//!
//! # Contract
//! Per frame, on the worker, with the snapshot the management side published
//! last ([`LbSnapshot`], replaced as a whole, RCU style; never mutated in
//! place):
//!
//! * Port filter: a frame on a port other than `access_port`/`lan_port` →
//!   `Drop(UnexpectedPort)`. Destination MAC must be the MAC of the arrival port
//!   (broadcast is accepted for ARP only) → else `Drop(NotForUs)`.
//! * ARP → [`ArpResponder::process`] (reply in place, `Control`, or
//!   `Drop(ArpIgnored)`).
//! * Neither IPv4 nor IPv6 (after at most one 802.1Q tag) →
//!   `Drop(UnsupportedEthertype)`; a bad IPv4 header → `Drop(BadIpv4)`, a bad
//!   IPv6 fixed header → `Drop(BadIpv6)`. ICMPv6 neighbour discovery (types
//!   133–137 right after the fixed header) is answered by the engine before
//!   the stage; one that reaches the stage → `Drop(ArpIgnored)`. Fragments and
//!   every IP protocol pass: the LB routes on the source address only.
//! * IPv6 follows the same rules as IPv4 with the IPv6 ranges of the table
//!   ([`LbTable::with_v6`]) and the IPv6 neighbours ([`AccessNeighbours::with_v6`]).
//! * Up path (arrival on `access_port`, S21–S29): source address → range
//!   (S22–S23); the primary if up (S24–S25), else the first substitute that is
//!   up (S27–S28), else `Drop(LbAllDown)` (S29); no range → `Drop(LbNoRange)`.
//!   If the chosen gateway's MAC is our own LAN MAC (LB and GW on one box):
//!   [`LbVerdict::Local`], the frame untouched, for the GW stage. Otherwise
//!   Ethernet dst = gateway MAC, src = our LAN MAC, `Tx { lan_port }`.
//! * Down path (arrival on `lan_port`, from a GW): Ethernet dst = the
//!   neighbour entry of the IPv4 destination on the access side, else
//!   `access_next_hop_mac`, else `Drop(NoNeighbor)`; src = our access MAC;
//!   `Tx { access_port }`.
//!
//! Only the 12 MAC bytes are written: the LB is an L2 rewrite (TTL and
//! checksums untouched), an 802.1Q tag and padding are carried through.
//! Drops are counted in [`WorkerCounters`]; the choices in [`LbCounters`].
//!
//! # Cost
//! Up path: one binary search over the range starts (`log2(ranges)` compares
//! in a contiguous `u32` array; `u128` for IPv6), one entry read, a scan of
//! the substitutes only when the primary is down. Down path: one binary search over the
//! neighbour table. Memory: 8 bytes per range in the search arrays + an
//! [`LbEntry`] (40 bytes) + 10 bytes per substitute; 12 bytes per neighbour
//! (IPv6: 32 bytes per range in the search arrays, 24 bytes per neighbour).

use crate::arp::ArpResponder;
use crate::verdict::{DropReason, Pkt, PortIdx, Verdict, WorkerCounters};
use crate::wire::ether::{ethertype, is_broadcast, is_multicast, EthernetFrame};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::Ipv6Packet;
use crate::wire::{self, ip_proto, ipv4_to_u32, MacAddr};
use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A packet gateway as the LB sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Gw {
    /// Management-side identifier (names live on the management side).
    pub id: u16,
    pub mac: MacAddr,
    /// Health as last reported by the server monitor.
    pub up: bool,
}

/// One row of the balancing policy table (FIG. 14) of addresses `A`:
/// [`LbRange`] as given to [`LbTable::new`], [`LbRange6`] to
/// [`LbTable::with_v6`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbRangeOf<A> {
    /// First subscriber address of the range (inclusive).
    pub first: A,
    /// Last subscriber address of the range (inclusive).
    pub last: A,
    pub primary: Gw,
    /// Tried in order when the primary is down.
    pub substitutes: Vec<Gw>,
}

/// An IPv4 row of the balancing policy table.
pub type LbRange = LbRangeOf<[u8; 4]>;
/// An IPv6 row of the balancing policy table; same rules as [`LbRange`].
pub type LbRange6 = LbRangeOf<[u8; 16]>;

/// What a range maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbEntry {
    pub primary: Gw,
    pub substitutes: Vec<Gw>,
}

impl LbEntry {
    /// The first gateway that is up: the primary, else the substitutes in
    /// order. The flag says whether a substitute was chosen.
    #[inline]
    pub fn choose(&self) -> Option<(Gw, bool)> {
        if self.primary.up {
            return Some((self.primary, false));
        }
        self.substitutes.iter().find(|g| g.up).map(|&g| (g, true))
    }
}

/// Why a table or stage configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LbError {
    /// A range whose first address is above its last.
    EmptyRange { first: [u8; 4], last: [u8; 4] },
    /// Two ranges share addresses.
    Overlap {
        a: ([u8; 4], [u8; 4]),
        b: ([u8; 4], [u8; 4]),
    },
    /// A gateway MAC that is zero or multicast.
    BadGwMac { id: u16, mac: MacAddr },
    /// `access_port == lan_port`.
    SamePort(PortIdx),
    /// An IPv6 range whose first address is above its last.
    EmptyRange6 { first: [u8; 16], last: [u8; 16] },
    /// Two IPv6 ranges share addresses.
    Overlap6 {
        a: ([u8; 16], [u8; 16]),
        b: ([u8; 16], [u8; 16]),
    },
}

fn fmt_mac(m: &MacAddr) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// "LB range a-b: first address is above the last" for either family.
fn fmt_empty(
    f: &mut fmt::Formatter<'_>,
    family: &str,
    first: impl fmt::Display,
    last: impl fmt::Display,
) -> fmt::Result {
    write!(
        f,
        "LB {family}range {first}-{last}: first address is above the last; swap them"
    )
}

/// "LB ranges a-b and c-d overlap" for either family.
fn fmt_overlap<A: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    family: &str,
    a: (A, A),
    b: (A, A),
) -> fmt::Result {
    write!(
        f,
        "LB {family}ranges {}-{} and {}-{} overlap; every subscriber address must \
         belong to one range only",
        a.0, a.1, b.0, b.1
    )
}

impl fmt::Display for LbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = |a: &[u8; 4]| Ipv4Addr::from(*a);
        let ip6 = |a: &[u8; 16]| Ipv6Addr::from(*a);
        match self {
            LbError::EmptyRange { first, last } => fmt_empty(f, "", ip(first), ip(last)),
            LbError::Overlap { a, b } => {
                fmt_overlap(f, "", (ip(&a.0), ip(&a.1)), (ip(&b.0), ip(&b.1)))
            }
            LbError::BadGwMac { id, mac } => write!(
                f,
                "gateway {id}: MAC {} is zero or multicast; give the gateway's unicast LAN MAC",
                fmt_mac(mac)
            ),
            LbError::SamePort(p) => write!(
                f,
                "LB access_port and lan_port are both port {p}; they must differ"
            ),
            LbError::EmptyRange6 { first, last } => fmt_empty(f, "IPv6 ", ip6(first), ip6(last)),
            LbError::Overlap6 { a, b } => {
                fmt_overlap(f, "IPv6 ", (ip6(&a.0), ip6(&a.1)), (ip6(&b.0), ip6(&b.1)))
            }
        }
    }
}

impl std::error::Error for LbError {}

/// The balancing policy table: disjoint subscriber ranges, sorted.
/// Immutable once built; the management side builds a new one (for instance
/// `clone()` + [`LbTable::set_gw_up`]) and publishes it as a whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LbTable {
    v4: Ranges<u32>,
    v6: Ranges<u128>,
}

/// The ranges of one address family, disjoint and sorted; an address is its
/// big-endian integer (`u32`, `u128`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Ranges<K> {
    /// Range starts, ascending (searched).
    firsts: Vec<K>,
    /// Range ends, parallel to `firsts`.
    lasts: Vec<K>,
    entries: Vec<LbEntry>,
}

fn check_gw_macs<'a>(gws: impl Iterator<Item = &'a Gw>) -> Result<(), LbError> {
    for g in gws {
        if g.mac == [0; 6] || is_multicast(&g.mac) {
            return Err(LbError::BadGwMac {
                id: g.id,
                mac: g.mac,
            });
        }
    }
    Ok(())
}

impl<K: Ord + Copy> Ranges<K> {
    /// Validate and sort `rows`: each range non-empty (else `empty`), no two
    /// ranges overlapping (else `overlap`), gateway MACs unicast and non-zero.
    fn build<A: Copy>(
        mut rows: Vec<LbRangeOf<A>>,
        key: impl Fn(A) -> K,
        empty: impl Fn(A, A) -> LbError,
        overlap: impl Fn((A, A), (A, A)) -> LbError,
    ) -> Result<Self, LbError> {
        for r in &rows {
            if key(r.first) > key(r.last) {
                return Err(empty(r.first, r.last));
            }
            check_gw_macs(core::iter::once(&r.primary).chain(r.substitutes.iter()))?;
        }
        rows.sort_by_key(|r| key(r.first));
        for w in rows.windows(2) {
            if key(w[0].last) >= key(w[1].first) {
                return Err(overlap((w[0].first, w[0].last), (w[1].first, w[1].last)));
            }
        }
        let mut r = Ranges {
            firsts: Vec::with_capacity(rows.len()),
            lasts: Vec::with_capacity(rows.len()),
            entries: Vec::with_capacity(rows.len()),
        };
        for row in rows {
            r.firsts.push(key(row.first));
            r.lasts.push(key(row.last));
            r.entries.push(LbEntry {
                primary: row.primary,
                substitutes: row.substitutes,
            });
        }
        Ok(r)
    }

    /// The entry of the range holding `a`.
    #[inline]
    fn find(&self, a: K) -> Option<&LbEntry> {
        // Index of the first range starting above `a`; the candidate is the one before.
        let i = self.firsts.partition_point(|&f| f <= a);
        if i == 0 || self.lasts[i - 1] < a {
            return None;
        }
        Some(&self.entries[i - 1])
    }

    /// The gateway for `a`: `Err(LbNoRange)` or `Err(LbAllDown)`; the flag
    /// says whether a substitute was chosen.
    #[inline]
    fn select(&self, a: K) -> Result<(Gw, bool), DropReason> {
        self.find(a)
            .ok_or(DropReason::LbNoRange)?
            .choose()
            .ok_or(DropReason::LbAllDown)
    }

    /// `(first, last, entry)` in ascending order, the addresses as `addr` gives them.
    fn iter<'a, A: 'a>(
        &'a self,
        addr: fn(K) -> A,
    ) -> impl Iterator<Item = (A, A, &'a LbEntry)> + 'a {
        self.firsts
            .iter()
            .zip(&self.lasts)
            .zip(&self.entries)
            .map(move |((&f, &l), e)| (addr(f), addr(l), e))
    }
}

impl LbTable {
    /// Validate and sort the ranges: each range non-empty, no two ranges
    /// overlapping, gateway MACs unicast and non-zero.
    pub fn new(ranges: Vec<LbRange>) -> Result<Self, LbError> {
        Ok(LbTable {
            v4: Ranges::build(
                ranges,
                ipv4_to_u32,
                |first, last| LbError::EmptyRange { first, last },
                |a, b| LbError::Overlap { a, b },
            )?,
            v6: Ranges::default(),
        })
    }

    /// Replace the IPv6 ranges with `ranges`, validated like [`LbTable::new`]:
    /// each range non-empty, no two IPv6 ranges overlapping, gateway MACs
    /// unicast and non-zero.
    pub fn with_v6(mut self, ranges: Vec<LbRange6>) -> Result<Self, LbError> {
        self.v6 = Ranges::build(
            ranges,
            u128::from_be_bytes,
            |first, last| LbError::EmptyRange6 { first, last },
            |a, b| LbError::Overlap6 { a, b },
        )?;
        Ok(self)
    }

    /// Number of ranges (IPv4 and IPv6).
    pub fn len(&self) -> usize {
        self.v4.entries.len() + self.v6.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of IPv6 ranges.
    pub fn len6(&self) -> usize {
        self.v6.entries.len()
    }

    /// The ranges in ascending order, as `(first, last, entry)`.
    pub fn ranges(&self) -> impl Iterator<Item = ([u8; 4], [u8; 4], &LbEntry)> + '_ {
        self.v4.iter(u32::to_be_bytes)
    }

    /// The IPv6 ranges in ascending order, as `(first, last, entry)`.
    pub fn ranges6(&self) -> impl Iterator<Item = ([u8; 16], [u8; 16], &LbEntry)> + '_ {
        self.v6.iter(u128::to_be_bytes)
    }

    /// Every gateway occurrence (primary or substitute) in the IPv4 and the
    /// IPv6 ranges, for reports (a gateway may appear in IPv6 ranges only).
    pub fn gateways(&self) -> impl Iterator<Item = Gw> + '_ {
        self.v4
            .entries
            .iter()
            .chain(&self.v6.entries)
            .flat_map(|e| core::iter::once(e.primary).chain(e.substitutes.iter().copied()))
    }

    /// The entry of the range holding `src` (S22–S23).
    #[inline]
    pub fn find(&self, src: [u8; 4]) -> Option<&LbEntry> {
        self.v4.find(ipv4_to_u32(src))
    }

    /// The entry of the IPv6 range holding `src`.
    #[inline]
    pub fn find6(&self, src: [u8; 16]) -> Option<&LbEntry> {
        self.v6.find(u128::from_be_bytes(src))
    }

    /// The gateway for `src` (S22–S29): `Err(LbNoRange)` or `Err(LbAllDown)`;
    /// the flag says whether a substitute was chosen.
    #[inline]
    pub fn select(&self, src: [u8; 4]) -> Result<(Gw, bool), DropReason> {
        self.v4.select(ipv4_to_u32(src))
    }

    /// The gateway for the IPv6 subscriber `src`, as [`LbTable::select`].
    #[inline]
    pub fn select6(&self, src: [u8; 16]) -> Result<(Gw, bool), DropReason> {
        self.v6.select(u128::from_be_bytes(src))
    }

    /// Set the state of gateway `id` everywhere it appears (primary or
    /// substitute); returns how many places changed. For building the next
    /// snapshot, never on a published one.
    pub fn set_gw_up(&mut self, id: u16, up: bool) -> usize {
        let mut n = 0;
        for e in self.v4.entries.iter_mut().chain(self.v6.entries.iter_mut()) {
            for g in core::iter::once(&mut e.primary).chain(e.substitutes.iter_mut()) {
                if g.id == id && g.up != up {
                    g.up = up;
                    n += 1;
                }
            }
        }
        n
    }
}

/// Access-side neighbours (IPv4 → MAC), learned by the management thread
/// from ARP and published with the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessNeighbours {
    /// Sorted by address, one entry per address (the last given wins).
    entries: Vec<(u32, MacAddr)>,
    /// IPv6 neighbours (from NDP), same rules.
    entries6: Vec<(u128, MacAddr)>,
}

/// Sort by key, the last given entry of a key wins.
fn sorted_last_wins<K: Ord + Copy>(mut v: Vec<(K, MacAddr)>) -> Vec<(K, MacAddr)> {
    // Stable sort keeps the given order among equal keys.
    v.sort_by_key(|e| e.0);
    let mut out: Vec<(K, MacAddr)> = Vec::with_capacity(v.len());
    for e in v {
        match out.last_mut() {
            Some(l) if l.0 == e.0 => *l = e,
            _ => out.push(e),
        }
    }
    out
}

/// The MAC of key `k` in a table sorted by [`sorted_last_wins`].
#[inline]
fn lookup_sorted<K: Ord + Copy>(v: &[(K, MacAddr)], k: K) -> Option<MacAddr> {
    v.binary_search_by_key(&k, |e| e.0).ok().map(|i| v[i].1)
}

impl AccessNeighbours {
    pub fn new<I: IntoIterator<Item = ([u8; 4], MacAddr)>>(it: I) -> Self {
        let v: Vec<(u32, MacAddr)> = it.into_iter().map(|(a, m)| (ipv4_to_u32(a), m)).collect();
        AccessNeighbours {
            entries: sorted_last_wins(v),
            entries6: Vec::new(),
        }
    }

    /// Replace the IPv6 neighbours (one entry per address, the last given
    /// wins).
    pub fn with_v6<I: IntoIterator<Item = ([u8; 16], MacAddr)>>(mut self, it: I) -> Self {
        let v: Vec<(u128, MacAddr)> = it
            .into_iter()
            .map(|(a, m)| (u128::from_be_bytes(a), m))
            .collect();
        self.entries6 = sorted_last_wins(v);
        self
    }

    #[inline]
    pub fn lookup(&self, ip: [u8; 4]) -> Option<MacAddr> {
        lookup_sorted(&self.entries, ipv4_to_u32(ip))
    }

    /// The MAC of the IPv6 neighbour `ip`.
    #[inline]
    pub fn lookup6(&self, ip: [u8; 16]) -> Option<MacAddr> {
        lookup_sorted(&self.entries6, u128::from_be_bytes(ip))
    }

    /// Number of IPv4 neighbours.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Number of IPv6 neighbours.
    pub fn len6(&self) -> usize {
        self.entries6.len()
    }

    /// No neighbour of either family.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.entries6.is_empty()
    }
}

/// Everything the management side publishes for the LB, as one unit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LbSnapshot {
    /// IPv4 and IPv6 ranges ([`LbTable::with_v6`]).
    pub table: LbTable,
    /// IPv4 (ARP) and IPv6 (NDP, [`AccessNeighbours::with_v6`]) neighbours on the
    /// access side.
    pub access_neighbours: AccessNeighbours,
}

/// Static configuration of the LB stage (from the profile).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbConfig {
    /// Port toward the access network (subscribers).
    pub access_port: PortIdx,
    /// Port toward the LAN (gateways).
    pub lan_port: PortIdx,
    /// Our MAC on the access port.
    pub access_mac: MacAddr,
    /// Our MAC on the LAN port.
    pub lan_mac: MacAddr,
    /// Default next hop on the access side, for down packets whose
    /// destination has no neighbour entry.
    pub access_next_hop_mac: Option<MacAddr>,
}

/// Per-worker LB counters (plain, owned by the worker; drops are in
/// [`WorkerCounters`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LbCounters {
    /// Up packets sent to the range's primary gateway.
    pub to_primary: u64,
    /// Up packets sent to a substitute because the primary was down.
    pub to_substitute: u64,
    /// Up packets whose gateway is this box (subset of the two above).
    pub local: u64,
    /// Down packets sent to the access side.
    pub down_path: u64,
    /// ARP frames handed to the responder.
    pub arp: u64,
}

/// What the LB says about a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbVerdict {
    /// Final verdict of the LB.
    Done(Verdict),
    /// The chosen gateway is this box: pass the frame, unchanged, to the GW
    /// stage.
    Local,
}

/// The LB stage. Shared read-only by the workers.
#[derive(Clone, Debug)]
pub struct LbStage {
    cfg: LbConfig,
    arp: ArpResponder,
}

/// Count the drop reason `$r` in `$c` and return the LB's drop verdict.
macro_rules! bail {
    ($c:expr, $r:expr) => {{
        let r = $r;
        $c.drop(r);
        return LbVerdict::Done(Verdict::Drop(r));
    }};
}

impl LbStage {
    /// `arp` lists the addresses the LB answers ARP for, per port.
    pub fn new(cfg: LbConfig, arp: ArpResponder) -> Result<Self, LbError> {
        if cfg.access_port == cfg.lan_port {
            return Err(LbError::SamePort(cfg.access_port));
        }
        Ok(LbStage { cfg, arp })
    }

    pub fn config(&self) -> &LbConfig {
        &self.cfg
    }

    pub fn arp(&self) -> &ArpResponder {
        &self.arp
    }

    /// Process one frame (see the module doc for the contract).
    #[inline]
    pub fn process(
        &self,
        snap: &LbSnapshot,
        pkt: &mut Pkt<'_>,
        c: &mut WorkerCounters,
        lc: &mut LbCounters,
    ) -> LbVerdict {
        let cfg = &self.cfg;
        let port = pkt.port;
        let tail = pkt.tail();
        let (our_mac, up) = if port == cfg.access_port {
            (cfg.access_mac, true)
        } else if port == cfg.lan_port {
            (cfg.lan_mac, false)
        } else {
            bail!(c, DropReason::UnexpectedPort)
        };
        let frame = pkt.frame_mut();
        let Ok(eth) = EthernetFrame::new_checked(&*frame) else {
            bail!(c, DropReason::BadEther)
        };
        let dst_mac = eth.dst_addr();
        let et = eth.ethertype();
        let l3 = eth.header_len();
        if dst_mac != our_mac {
            if et == ethertype::ARP && is_broadcast(&dst_mac) {
                lc.arp += 1;
                return LbVerdict::Done(self.arp.process(pkt, c));
            }
            bail!(c, DropReason::NotForUs)
        }
        match et {
            ethertype::IPV4 => {}
            ethertype::IPV6 => return self.process6(snap, pkt, l3, up, c, lc),
            ethertype::ARP => {
                lc.arp += 1;
                return LbVerdict::Done(self.arp.process(pkt, c));
            }
            _ => bail!(c, DropReason::UnsupportedEthertype),
        }
        let Ok(ip) = Ipv4Packet::new_checked(&frame[l3..]) else {
            if tail > 0 {
                return self.process_chained(snap, pkt, up, c, lc);
            }
            bail!(c, DropReason::BadIpv4)
        };
        self.route_v4(snap, frame, up, ip.src_addr(), ip.dst_addr(), c, lc)
    }

    /// [`LbStage::process`] of a chained frame (its IP packet does not end
    /// in the first buffer): routed on the addresses of its headers, which
    /// are in the first buffer, like any other.
    #[cold]
    fn process_chained(
        &self,
        snap: &LbSnapshot,
        pkt: &mut Pkt<'_>,
        up: bool,
        c: &mut WorkerCounters,
        lc: &mut LbCounters,
    ) -> LbVerdict {
        let p = match wire::parse_l3_chained(pkt.frame(), pkt.tail()) {
            Ok((p, _)) => p,
            Err(r) => bail!(c, r),
        };
        let frame = pkt.frame_mut();
        if p.proto == ip_proto::ICMPV6
            && p.is_ipv6()
            && matches!(frame.get(p.l4_off as usize), Some(133..=137))
        {
            bail!(c, DropReason::ArpIgnored)
        }
        if p.is_ipv4() {
            self.route_v4(snap, frame, up, p.src_v4(), p.dst_v4(), c, lc)
        } else {
            self.route_v6(snap, frame, up, p.src, p.dst, c, lc)
        }
    }

    /// The IPv6 half of [`LbStage::process`]: the Ethernet header (and
    /// destination MAC) is already checked, the IPv6 header starts at `l3`.
    #[inline]
    fn process6(
        &self,
        snap: &LbSnapshot,
        pkt: &mut Pkt<'_>,
        l3: usize,
        up: bool,
        c: &mut WorkerCounters,
        lc: &mut LbCounters,
    ) -> LbVerdict {
        let tail = pkt.tail();
        let frame = pkt.frame_mut();
        let Ok(ip) = Ipv6Packet::new_checked(&frame[l3..]) else {
            if tail > 0 {
                return self.process_chained(snap, pkt, up, c, lc);
            }
            bail!(c, DropReason::BadIpv6)
        };
        // Neighbour discovery is answered by the engine before the stage;
        // one that gets here is not ours to route.
        if ip.next_header() == ip_proto::ICMPV6 && matches!(ip.payload().first(), Some(133..=137)) {
            bail!(c, DropReason::ArpIgnored)
        }
        self.route_v6(snap, frame, up, ip.src_addr(), ip.dst_addr(), c, lc)
    }

    /// [`LbStage::route`] of an IPv4 packet from `src` to `dst`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn route_v4(
        &self,
        snap: &LbSnapshot,
        frame: &mut [u8],
        up: bool,
        src: [u8; 4],
        dst: [u8; 4],
        c: &mut WorkerCounters,
        lc: &mut LbCounters,
    ) -> LbVerdict {
        let (t, n) = (&snap.table, &snap.access_neighbours);
        self.route(frame, up, || t.select(src), || n.lookup(dst), c, lc)
    }

    /// [`LbStage::route`] of an IPv6 packet from `src` to `dst`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn route_v6(
        &self,
        snap: &LbSnapshot,
        frame: &mut [u8],
        up: bool,
        src: [u8; 16],
        dst: [u8; 16],
        c: &mut WorkerCounters,
        lc: &mut LbCounters,
    ) -> LbVerdict {
        let (t, n) = (&snap.table, &snap.access_neighbours);
        self.route(frame, up, || t.select6(src), || n.lookup6(dst), c, lc)
    }

    /// The end of [`LbStage::process`] for either family, the IP header
    /// read: up, to the gateway `select` chooses (or [`LbVerdict::Local`]);
    /// down, to the access neighbour `neighbour` finds, else the default
    /// next hop. Only the frame's two MAC addresses are written.
    #[inline(always)]
    fn route(
        &self,
        frame: &mut [u8],
        up: bool,
        select: impl FnOnce() -> Result<(Gw, bool), DropReason>,
        neighbour: impl FnOnce() -> Option<MacAddr>,
        c: &mut WorkerCounters,
        lc: &mut LbCounters,
    ) -> LbVerdict {
        let cfg = &self.cfg;
        let mut eth = EthernetFrame::new_unchecked(frame);
        if up {
            let (gw, substitute) = match select() {
                Ok(x) => x,
                Err(r) => bail!(c, r),
            };
            if substitute {
                lc.to_substitute += 1;
            } else {
                lc.to_primary += 1;
            }
            if gw.mac == cfg.lan_mac {
                lc.local += 1;
                return LbVerdict::Local;
            }
            eth.set_dst_addr(gw.mac);
            eth.set_src_addr(cfg.lan_mac);
            LbVerdict::Done(Verdict::Tx { port: cfg.lan_port })
        } else {
            let Some(mac) = neighbour().or(cfg.access_next_hop_mac) else {
                bail!(c, DropReason::NoNeighbor)
            };
            lc.down_path += 1;
            eth.set_dst_addr(mac);
            eth.set_src_addr(cfg.access_mac);
            LbVerdict::Done(Verdict::Tx {
                port: cfg.access_port,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::arp::{operation, ArpPacket};
    use crate::wire::build::{self, FrameSpec, Ip6Spec, FILL, L4};
    use crate::wire::ether::BROADCAST;
    use crate::wire::tcp::flags;
    use proptest::prelude::*;

    const ACCESS: PortIdx = 0;
    const LAN: PortIdx = 1;
    const ACCESS_MAC: MacAddr = [0x02, 0x1b, 0, 0, 0, 0xa0];
    const LAN_MAC: MacAddr = [0x02, 0x1b, 0, 0, 0, 0x1a];
    const LB_ACCESS_IP: [u8; 4] = [192, 0, 2, 1];
    const SUB_MAC: MacAddr = [0x02, 0x5b, 0, 0, 0, 0x01];
    const NEXT_HOP: MacAddr = [0x02, 0x4e, 0, 0, 0, 0x01];
    const NEIGH: MacAddr = [0x02, 0x4e, 0, 0, 0, 0x77];
    const GW1: Gw = Gw {
        id: 1,
        mac: [0x02, 0x67, 0, 0, 0, 0x01],
        up: true,
    };
    const GW2: Gw = Gw {
        id: 2,
        mac: [0x02, 0x67, 0, 0, 0, 0x02],
        up: true,
    };
    const GW3: Gw = Gw {
        id: 3,
        mac: [0x02, 0x67, 0, 0, 0, 0x03],
        up: true,
    };
    /// This box's own GW (single-box LB+GW).
    const GW_SELF: Gw = Gw {
        id: 9,
        mac: LAN_MAC,
        up: true,
    };

    fn stage(next_hop: Option<MacAddr>) -> LbStage {
        LbStage::new(
            LbConfig {
                access_port: ACCESS,
                lan_port: LAN,
                access_mac: ACCESS_MAC,
                lan_mac: LAN_MAC,
                access_next_hop_mac: next_hop,
            },
            ArpResponder::new([(ACCESS, LB_ACCESS_IP, ACCESS_MAC)]),
        )
        .unwrap()
    }

    /// FIG. 14 in miniature: 100.64.0.0/24 → GW1 (subs GW2, GW3),
    /// 100.64.1.0/24 → GW2 (sub GW1), 100.64.2.0-100.64.2.9 → this box.
    fn table(down: &[u16]) -> LbTable {
        let mut t = LbTable::new(vec![
            LbRange {
                first: [100, 64, 1, 0],
                last: [100, 64, 1, 255],
                primary: GW2,
                substitutes: vec![GW1],
            },
            LbRange {
                first: [100, 64, 0, 0],
                last: [100, 64, 0, 255],
                primary: GW1,
                substitutes: vec![GW2, GW3],
            },
            LbRange {
                first: [100, 64, 2, 0],
                last: [100, 64, 2, 9],
                primary: GW_SELF,
                substitutes: vec![],
            },
        ])
        .unwrap();
        for &id in down {
            t.set_gw_up(id, false);
        }
        t
    }

    fn snap(down: &[u16]) -> LbSnapshot {
        LbSnapshot {
            table: table6(down),
            access_neighbours: AccessNeighbours::new([([100, 64, 0, 77], NEIGH)])
                .with_v6([(a6(1, 0x77), NEIGH)]),
        }
    }

    /// `2001:db8:<net>::<host>`.
    fn a6(net: u16, host: u16) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a[4..6].copy_from_slice(&net.to_be_bytes());
        a[14..16].copy_from_slice(&host.to_be_bytes());
        a
    }

    /// The IPv6 half of FIG. 14 in miniature: 2001:db8:1::/48 → GW1 (subs
    /// GW2, GW3), 2001:db8:2::/48 → GW2 (sub GW1),
    /// 2001:db8:3::-2001:db8:3::9 → this box.
    fn table6(down: &[u16]) -> LbTable {
        let end = |net: u16| {
            let mut a = a6(net, 0);
            a[6..].fill(0xff);
            a
        };
        let mut t = table(&[])
            .with_v6(vec![
                LbRange6 {
                    first: a6(2, 0),
                    last: end(2),
                    primary: GW2,
                    substitutes: vec![GW1],
                },
                LbRange6 {
                    first: a6(1, 0),
                    last: end(1),
                    primary: GW1,
                    substitutes: vec![GW2, GW3],
                },
                LbRange6 {
                    first: a6(3, 0),
                    last: a6(3, 9),
                    primary: GW_SELF,
                    substitutes: vec![],
                },
            ])
            .unwrap();
        for &id in down {
            t.set_gw_up(id, false);
        }
        t
    }

    fn up6_frame(src: [u8; 16], vlan: Option<u16>) -> Vec<u8> {
        FrameSpec {
            src_mac: SUB_MAC,
            dst_mac: ACCESS_MAC,
            vlan,
            ip6: Some(Ip6Spec {
                src,
                dst: a6(0x33, 1),
                fragment: false,
            }),
            ..FrameSpec::tcp(40000, 80, flags::SYN)
        }
        .build()
    }

    fn down6_frame(dst: [u8; 16]) -> Vec<u8> {
        FrameSpec {
            src_mac: GW1.mac,
            dst_mac: LAN_MAC,
            ip6: Some(Ip6Spec {
                src: a6(0x33, 1),
                dst,
                fragment: false,
            }),
            ..FrameSpec::tcp(80, 40000, flags::SYN | flags::ACK)
        }
        .build()
    }

    fn up_frame(src: [u8; 4]) -> Vec<u8> {
        FrameSpec {
            src_mac: SUB_MAC,
            dst_mac: ACCESS_MAC,
            src_ip: src,
            dst_ip: [10, 33, 0, 1],
            ..FrameSpec::tcp(40000, 80, flags::SYN)
        }
        .build()
    }

    fn down_frame(dst: [u8; 4]) -> Vec<u8> {
        FrameSpec {
            src_mac: GW1.mac,
            dst_mac: LAN_MAC,
            src_ip: [10, 33, 0, 1],
            dst_ip: dst,
            ..FrameSpec::tcp(80, 40000, flags::SYN | flags::ACK)
        }
        .build()
    }

    /// `frame` with Ethernet dst/src replaced.
    fn with_macs(frame: &[u8], dst: MacAddr, src: MacAddr) -> Vec<u8> {
        let mut v = frame.to_vec();
        v[..6].copy_from_slice(&dst);
        v[6..12].copy_from_slice(&src);
        v
    }

    struct Case {
        name: &'static str,
        port: PortIdx,
        down: &'static [u16],
        next_hop: Option<MacAddr>,
        input: Vec<u8>,
        verdict: LbVerdict,
        /// `None`: the frame must come out unchanged.
        output: Option<Vec<u8>>,
    }

    /// One frame `f` through `st` on `port`: the verdict, the frame as it
    /// leaves (the whole buffer) and the LB's counters.
    fn run(
        st: &LbStage,
        sn: &LbSnapshot,
        f: &[u8],
        port: PortIdx,
    ) -> (LbVerdict, Vec<u8>, LbCounters) {
        let mut b = f.to_vec();
        let mut c = WorkerCounters::default();
        let mut lc = LbCounters::default();
        let v = st.process(sn, &mut Pkt::new(&mut b, f.len(), port), &mut c, &mut lc);
        (v, b, lc)
    }

    fn tx(port: PortIdx) -> LbVerdict {
        LbVerdict::Done(Verdict::Tx { port })
    }
    fn dropped(r: DropReason) -> LbVerdict {
        LbVerdict::Done(Verdict::Drop(r))
    }

    fn cases() -> Vec<Case> {
        let sub = [100, 64, 0, 5];
        let arp_req = build::arp(
            SUB_MAC,
            BROADCAST,
            operation::REQUEST,
            SUB_MAC,
            sub,
            [0; 6],
            LB_ACCESS_IP,
        );
        let arp_reply = build::arp(
            ACCESS_MAC,
            SUB_MAC,
            operation::REPLY,
            ACCESS_MAC,
            LB_ACCESS_IP,
            SUB_MAC,
            sub,
        );
        let tagged = FrameSpec {
            src_mac: SUB_MAC,
            dst_mac: ACCESS_MAC,
            src_ip: sub,
            vlan: Some(0x0064),
            ..FrameSpec::udp(5000, 53)
        }
        .build();
        let mut bad_ip = up_frame(sub);
        bad_ip[14] = 0x46; // IHL 6: a 24-byte header...
        bad_ip[16..18].copy_from_slice(&20u16.to_be_bytes()); // ...in a total length of 20
        let v6 = FrameSpec {
            src_mac: SUB_MAC,
            dst_mac: ACCESS_MAC,
            ip6: Some(Ip6Spec::default()),
            ..FrameSpec::default()
        }
        .build();
        let sub6 = a6(1, 5);
        let mut lldp = up_frame(sub);
        lldp[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
        let icmp6 = |ty: u8, port_mac: MacAddr| {
            FrameSpec {
                src_mac: SUB_MAC,
                dst_mac: port_mac,
                ttl: 255,
                ip6: Some(Ip6Spec {
                    src: sub6,
                    dst: a6(0x33, 1),
                    fragment: false,
                }),
                l4: L4::Icmp {
                    ty,
                    code: 0,
                    ident: 0,
                    seq: 0,
                },
                ..FrameSpec::default()
            }
            .build()
        };
        let ns = icmp6(135, ACCESS_MAC);
        let na = icmp6(136, LAN_MAC);
        let ping6 = icmp6(128, ACCESS_MAC);
        let mut bad_ip6 = up6_frame(sub6, None);
        bad_ip6[18..20].copy_from_slice(&2000u16.to_be_bytes()); // payload length past the frame
        let frag = FrameSpec {
            src_mac: SUB_MAC,
            dst_mac: ACCESS_MAC,
            src_ip: sub,
            more_frags: true,
            ..FrameSpec::udp(1, 2)
        }
        .build();
        vec![
            Case {
                name: "primary up",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: up_frame(sub),
                verdict: tx(LAN),
                output: Some(with_macs(&up_frame(sub), GW1.mac, LAN_MAC)),
            },
            Case {
                name: "primary down -> first substitute",
                port: ACCESS,
                down: &[1],
                next_hop: None,
                input: up_frame(sub),
                verdict: tx(LAN),
                output: Some(with_macs(&up_frame(sub), GW2.mac, LAN_MAC)),
            },
            Case {
                name: "primary and first substitute down -> second substitute",
                port: ACCESS,
                down: &[1, 2],
                next_hop: None,
                input: up_frame(sub),
                verdict: tx(LAN),
                output: Some(with_macs(&up_frame(sub), GW3.mac, LAN_MAC)),
            },
            Case {
                name: "all down",
                port: ACCESS,
                down: &[1, 2, 3],
                next_hop: None,
                input: up_frame(sub),
                verdict: dropped(DropReason::LbAllDown),
                output: None,
            },
            Case {
                name: "other range, its own primary",
                port: ACCESS,
                down: &[1],
                next_hop: None,
                input: up_frame([100, 64, 1, 255]),
                verdict: tx(LAN),
                output: Some(with_macs(&up_frame([100, 64, 1, 255]), GW2.mac, LAN_MAC)),
            },
            Case {
                name: "no range (just past a range end)",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: up_frame([100, 64, 2, 10]),
                verdict: dropped(DropReason::LbNoRange),
                output: None,
            },
            Case {
                name: "no range (below every range)",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: up_frame([1, 2, 3, 4]),
                verdict: dropped(DropReason::LbNoRange),
                output: None,
            },
            Case {
                name: "gateway is this box -> Local, unchanged",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: up_frame([100, 64, 2, 3]),
                verdict: LbVerdict::Local,
                output: None,
            },
            Case {
                name: "VLAN tag carried through",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: tagged.clone(),
                verdict: tx(LAN),
                output: Some(with_macs(&tagged, GW1.mac, LAN_MAC)),
            },
            Case {
                name: "fragment routed on source address",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: frag.clone(),
                verdict: tx(LAN),
                output: Some(with_macs(&frag, GW1.mac, LAN_MAC)),
            },
            Case {
                name: "down path via next hop",
                port: LAN,
                down: &[],
                next_hop: Some(NEXT_HOP),
                input: down_frame(sub),
                verdict: tx(ACCESS),
                output: Some(with_macs(&down_frame(sub), NEXT_HOP, ACCESS_MAC)),
            },
            Case {
                name: "down path via neighbour entry",
                port: LAN,
                down: &[],
                next_hop: Some(NEXT_HOP),
                input: down_frame([100, 64, 0, 77]),
                verdict: tx(ACCESS),
                output: Some(with_macs(&down_frame([100, 64, 0, 77]), NEIGH, ACCESS_MAC)),
            },
            Case {
                name: "down path, no neighbour, no next hop",
                port: LAN,
                down: &[],
                next_hop: None,
                input: down_frame(sub),
                verdict: dropped(DropReason::NoNeighbor),
                output: None,
            },
            Case {
                name: "down path ignores gateway state",
                port: LAN,
                down: &[1, 2, 3],
                next_hop: Some(NEXT_HOP),
                input: down_frame(sub),
                verdict: tx(ACCESS),
                output: Some(with_macs(&down_frame(sub), NEXT_HOP, ACCESS_MAC)),
            },
            Case {
                name: "ARP request for our access address answered",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: arp_req.clone(),
                verdict: tx(ACCESS),
                output: Some(arp_reply),
            },
            Case {
                name: "ARP request on the other port ignored",
                port: LAN,
                down: &[],
                next_hop: None,
                input: arp_req,
                verdict: dropped(DropReason::ArpIgnored),
                output: None,
            },
            Case {
                name: "ARP reply to us goes to control",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: build::arp(
                    SUB_MAC,
                    ACCESS_MAC,
                    operation::REPLY,
                    SUB_MAC,
                    sub,
                    ACCESS_MAC,
                    LB_ACCESS_IP,
                ),
                verdict: LbVerdict::Done(Verdict::Control),
                output: None,
            },
            Case {
                name: "not for us (other unicast MAC)",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: with_macs(&up_frame(sub), GW1.mac, SUB_MAC),
                verdict: dropped(DropReason::NotForUs),
                output: None,
            },
            Case {
                name: "not for us (LAN MAC on the access port)",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: with_macs(&up_frame(sub), LAN_MAC, SUB_MAC),
                verdict: dropped(DropReason::NotForUs),
                output: None,
            },
            Case {
                name: "IPv4 to broadcast is not for us",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: with_macs(&up_frame(sub), BROADCAST, SUB_MAC),
                verdict: dropped(DropReason::NotForUs),
                output: None,
            },
            Case {
                name: "IPv6 outside every IPv6 range",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: v6,
                verdict: dropped(DropReason::LbNoRange),
                output: None,
            },
            Case {
                name: "other ethertype (LLDP) unsupported",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: lldp,
                verdict: dropped(DropReason::UnsupportedEthertype),
                output: None,
            },
            Case {
                name: "IPv6 primary up",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: up6_frame(sub6, None),
                verdict: tx(LAN),
                output: Some(with_macs(&up6_frame(sub6, None), GW1.mac, LAN_MAC)),
            },
            Case {
                name: "IPv6 primary down -> first substitute",
                port: ACCESS,
                down: &[1],
                next_hop: None,
                input: up6_frame(sub6, None),
                verdict: tx(LAN),
                output: Some(with_macs(&up6_frame(sub6, None), GW2.mac, LAN_MAC)),
            },
            Case {
                name: "IPv6 primary and first substitute down -> second substitute",
                port: ACCESS,
                down: &[1, 2],
                next_hop: None,
                input: up6_frame(sub6, None),
                verdict: tx(LAN),
                output: Some(with_macs(&up6_frame(sub6, None), GW3.mac, LAN_MAC)),
            },
            Case {
                name: "IPv6 all down",
                port: ACCESS,
                down: &[1, 2, 3],
                next_hop: None,
                input: up6_frame(sub6, None),
                verdict: dropped(DropReason::LbAllDown),
                output: None,
            },
            Case {
                name: "IPv6 other range, its own primary",
                port: ACCESS,
                down: &[1],
                next_hop: None,
                input: up6_frame(a6(2, 0xffff), None),
                verdict: tx(LAN),
                output: Some(with_macs(&up6_frame(a6(2, 0xffff), None), GW2.mac, LAN_MAC)),
            },
            Case {
                name: "IPv6 no range (just past a range end)",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: up6_frame(a6(3, 10), None),
                verdict: dropped(DropReason::LbNoRange),
                output: None,
            },
            Case {
                name: "IPv6 gateway is this box -> Local, unchanged",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: up6_frame(a6(3, 9), None),
                verdict: LbVerdict::Local,
                output: None,
            },
            Case {
                name: "IPv6 VLAN tag carried through",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: up6_frame(sub6, Some(0x0064)),
                verdict: tx(LAN),
                output: Some(with_macs(&up6_frame(sub6, Some(0x0064)), GW1.mac, LAN_MAC)),
            },
            Case {
                name: "IPv6 down path via neighbour entry",
                port: LAN,
                down: &[],
                next_hop: Some(NEXT_HOP),
                input: down6_frame(a6(1, 0x77)),
                verdict: tx(ACCESS),
                output: Some(with_macs(&down6_frame(a6(1, 0x77)), NEIGH, ACCESS_MAC)),
            },
            Case {
                name: "IPv6 down path via next hop",
                port: LAN,
                down: &[1, 2, 3],
                next_hop: Some(NEXT_HOP),
                input: down6_frame(sub6),
                verdict: tx(ACCESS),
                output: Some(with_macs(&down6_frame(sub6), NEXT_HOP, ACCESS_MAC)),
            },
            Case {
                name: "IPv6 down path, no neighbour, no next hop",
                port: LAN,
                down: &[],
                next_hop: None,
                input: down6_frame(sub6),
                verdict: dropped(DropReason::NoNeighbor),
                output: None,
            },
            Case {
                name: "IPv6 IPv4 neighbour of the same low bytes is not used",
                port: LAN,
                down: &[],
                next_hop: None,
                input: down6_frame(a6(0, 0x77)),
                verdict: dropped(DropReason::NoNeighbor),
                output: None,
            },
            Case {
                name: "ICMPv6 neighbour solicitation reaching the stage",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: ns.clone(),
                verdict: dropped(DropReason::ArpIgnored),
                output: None,
            },
            Case {
                name: "ICMPv6 neighbour advertisement on the LAN port",
                port: LAN,
                down: &[],
                next_hop: Some(NEXT_HOP),
                input: na,
                verdict: dropped(DropReason::ArpIgnored),
                output: None,
            },
            Case {
                name: "ICMPv6 echo is routed",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: ping6.clone(),
                verdict: tx(LAN),
                output: Some(with_macs(&ping6, GW1.mac, LAN_MAC)),
            },
            Case {
                name: "bad IPv6 header",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: bad_ip6,
                verdict: dropped(DropReason::BadIpv6),
                output: None,
            },
            Case {
                name: "bad IPv4 header",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: bad_ip,
                verdict: dropped(DropReason::BadIpv4),
                output: None,
            },
            Case {
                name: "runt frame",
                port: ACCESS,
                down: &[],
                next_hop: None,
                input: ACCESS_MAC.to_vec(),
                verdict: dropped(DropReason::BadEther),
                output: None,
            },
            Case {
                name: "unknown port",
                port: 7,
                down: &[],
                next_hop: None,
                input: up_frame(sub),
                verdict: dropped(DropReason::UnexpectedPort),
                output: None,
            },
        ]
    }

    #[test]
    fn fixture_table() {
        for case in cases() {
            let st = stage(case.next_hop);
            let sn = snap(case.down);
            let mut buf = build::with_room(&case.input, case.input.len() + 64);
            let mut c = WorkerCounters::default();
            let mut lc = LbCounters::default();
            let mut pkt = Pkt::new(&mut buf, case.input.len(), case.port);
            let v = st.process(&sn, &mut pkt, &mut c, &mut lc);
            assert_eq!(v, case.verdict, "{}", case.name);
            assert_eq!(pkt.len(), case.input.len(), "{}: length", case.name);
            let want = case.output.as_ref().unwrap_or(&case.input);
            assert_eq!(pkt.frame(), &want[..], "{}: output bytes", case.name);
            assert!(
                buf[case.input.len()..].iter().all(|&b| b == FILL),
                "{}: wrote past the frame",
                case.name
            );
            // Every drop counted once, under its reason.
            match v {
                LbVerdict::Done(Verdict::Drop(r)) => {
                    assert_eq!(c.total_drops(), 1, "{}", case.name);
                    assert_eq!(c.drops[r as usize], 1, "{}", case.name);
                }
                _ => assert_eq!(c.total_drops(), 0, "{}", case.name),
            }
        }
    }

    #[test]
    fn primary_up_byte_by_byte() {
        let input = up_frame([100, 64, 0, 5]);
        let (v, out, _) = run(&stage(None), &snap(&[]), &input, ACCESS);
        assert_eq!(v, tx(LAN));
        #[rustfmt::skip]
        let head: [u8; 14] = [
            0x02, 0x67, 0, 0, 0, 0x01, // GW1
            0x02, 0x1b, 0, 0, 0, 0x1a, // our LAN MAC
            0x08, 0x00,
        ];
        assert_eq!(&out[..14], &head);
        assert_eq!(&out[14..], &input[14..]);
        assert!(build::checksums_ok(&out));
    }

    #[test]
    fn counters_count_choices() {
        let st = stage(Some(NEXT_HOP));
        let mut c = WorkerCounters::default();
        let mut lc = LbCounters::default();
        let mut run = |sn: &LbSnapshot, f: Vec<u8>, port| {
            let mut b = f;
            let len = b.len();
            st.process(sn, &mut Pkt::new(&mut b, len, port), &mut c, &mut lc)
        };
        let all_up = snap(&[]);
        let gw1_down = snap(&[1]);
        run(&all_up, up_frame([100, 64, 0, 1]), ACCESS);
        run(&all_up, up_frame([100, 64, 1, 1]), ACCESS);
        run(&gw1_down, up_frame([100, 64, 0, 1]), ACCESS);
        run(&all_up, up_frame([100, 64, 2, 1]), ACCESS);
        run(&all_up, down_frame([100, 64, 0, 1]), LAN);
        run(&all_up, up_frame([9, 9, 9, 9]), ACCESS);
        let arp = build::arp(
            SUB_MAC,
            BROADCAST,
            operation::REQUEST,
            SUB_MAC,
            [100, 64, 0, 1],
            [0; 6],
            LB_ACCESS_IP,
        );
        run(&all_up, arp, ACCESS);
        assert_eq!(
            lc,
            LbCounters {
                to_primary: 3,
                to_substitute: 1,
                local: 1,
                down_path: 1,
                arp: 1,
            }
        );
        assert_eq!(c.drops[DropReason::LbNoRange as usize], 1);
        assert_eq!(c.total_drops(), 1);
    }

    #[test]
    fn arp_reply_fields() {
        let f = build::arp(
            SUB_MAC,
            BROADCAST,
            operation::REQUEST,
            SUB_MAC,
            [100, 64, 0, 5],
            [0; 6],
            LB_ACCESS_IP,
        );
        let mut b = f.clone();
        let mut c = WorkerCounters::default();
        let mut lc = LbCounters::default();
        let mut pkt = Pkt::new(&mut b, f.len(), ACCESS);
        stage(None).process(&snap(&[]), &mut pkt, &mut c, &mut lc);
        let a = ArpPacket::new_checked(&pkt.frame()[14..]).unwrap();
        assert_eq!(a.operation(), operation::REPLY);
        assert_eq!(a.sender_hardware_addr(), ACCESS_MAC);
        assert_eq!(a.sender_protocol_addr(), LB_ACCESS_IP);
    }

    #[test]
    fn table_validation_names_the_ranges() {
        let r = |f: [u8; 4], l: [u8; 4]| LbRange {
            first: f,
            last: l,
            primary: GW1,
            substitutes: vec![],
        };
        let e = LbTable::new(vec![
            r([10, 0, 0, 0], [10, 0, 0, 255]),
            r([10, 0, 1, 0], [10, 0, 1, 255]),
            r([10, 0, 0, 128], [10, 0, 0, 200]),
        ])
        .unwrap_err();
        assert_eq!(
            e,
            LbError::Overlap {
                a: ([10, 0, 0, 0], [10, 0, 0, 255]),
                b: ([10, 0, 0, 128], [10, 0, 0, 200]),
            }
        );
        let msg = e.to_string();
        assert!(msg.contains("10.0.0.0-10.0.0.255"), "{msg}");
        assert!(msg.contains("10.0.0.128-10.0.0.200"), "{msg}");
        // Touching at one address is an overlap too.
        assert!(LbTable::new(vec![
            r([10, 0, 0, 0], [10, 0, 0, 10]),
            r([10, 0, 0, 10], [10, 0, 0, 20]),
        ])
        .is_err());
        // Adjacent is fine.
        assert!(LbTable::new(vec![
            r([10, 0, 0, 0], [10, 0, 0, 10]),
            r([10, 0, 0, 11], [10, 0, 0, 20]),
        ])
        .is_ok());
        let e = LbTable::new(vec![r([10, 0, 0, 9], [10, 0, 0, 1])]).unwrap_err();
        assert!(e.to_string().contains("10.0.0.9-10.0.0.1"));
        let mut bad = r([1, 0, 0, 0], [1, 0, 0, 1]);
        bad.substitutes.push(Gw {
            id: 4,
            mac: [0x01, 0, 0x5e, 0, 0, 1],
            up: true,
        });
        let e = LbTable::new(vec![bad]).unwrap_err();
        assert!(e.to_string().contains("01:00:5e:00:00:01"), "{e}");
        let mut cfg = stage(None).config().clone();
        cfg.lan_port = cfg.access_port;
        assert_eq!(
            LbStage::new(cfg, ArpResponder::default()).unwrap_err(),
            LbError::SamePort(ACCESS)
        );
    }

    #[test]
    fn table_edges_and_state_changes() {
        let mut t = table(&[]);
        assert_eq!(t.len(), 3);
        let firsts: Vec<_> = t.ranges().map(|(f, _, _)| f).collect();
        assert_eq!(
            firsts,
            vec![[100, 64, 0, 0], [100, 64, 1, 0], [100, 64, 2, 0]]
        );
        assert_eq!(t.select([100, 64, 0, 0]), Ok((GW1, false)));
        assert_eq!(t.select([100, 64, 0, 255]), Ok((GW1, false)));
        assert_eq!(t.select([100, 63, 255, 255]), Err(DropReason::LbNoRange));
        assert_eq!(t.select([255, 255, 255, 255]), Err(DropReason::LbNoRange));
        assert_eq!(t.set_gw_up(1, false), 2); // primary of one range, substitute of another
        assert_eq!(t.set_gw_up(1, false), 0);
        let g2 = t.select([100, 64, 0, 1]).unwrap();
        assert_eq!((g2.0.id, g2.1), (2, true));
        t.set_gw_up(1, true); // recovered: used again at once
        assert_eq!(t.select([100, 64, 0, 1]), Ok((GW1, false)));
        assert_eq!(
            LbTable::default().select([1, 2, 3, 4]),
            Err(DropReason::LbNoRange)
        );
        let n = AccessNeighbours::new([([1, 1, 1, 1], [1; 6]), ([1, 1, 1, 1], [2; 6])]);
        assert_eq!(n.len(), 1);
        assert_eq!(n.lookup([1, 1, 1, 1]), Some([2; 6]));
        assert_eq!(n.lookup([1, 1, 1, 2]), None);
    }

    /// A frame chained over two buffers (the first 300 bytes, then 3 000
    /// more): routed on its headers as the whole frame is, only its MACs
    /// written, its tail kept. IPv4 and IPv6, up and down.
    #[test]
    fn chained_frames_are_routed_as_whole_ones() {
        let st = stage(Some(NEXT_HOP));
        let sn = snap(&[]);
        let big = |s: FrameSpec| {
            FrameSpec {
                payload: vec![9; 3000],
                ..s
            }
            .build()
        };
        let v4 = FrameSpec {
            src_mac: SUB_MAC,
            dst_mac: ACCESS_MAC,
            src_ip: [100, 64, 0, 5],
            dst_ip: [10, 33, 0, 1],
            ..FrameSpec::tcp(40000, 80, flags::ACK)
        };
        let v6 = FrameSpec {
            src_mac: GW1.mac,
            dst_mac: LAN_MAC,
            ip6: Some(Ip6Spec {
                src: a6(0x33, 1),
                dst: a6(1, 5),
                fragment: false,
            }),
            ..FrameSpec::tcp(80, 40000, flags::ACK)
        };
        let mut seen = 0;
        for (f, port) in [(big(v4.clone()), ACCESS), (big(v6), LAN)] {
            let (want_v, want, want_lc) = run(&st, &sn, &f, port);
            let mut b = f[..300].to_vec();
            let (mut c, mut lc) = (WorkerCounters::default(), LbCounters::default());
            let mut pkt = Pkt::chained(&mut b, 0, 300, f.len() - 300, port);
            let v = st.process(&sn, &mut pkt, &mut c, &mut lc);
            assert_eq!((pkt.len(), pkt.tail()), (300, f.len() - 300));
            assert_eq!(v, want_v);
            assert!(matches!(v, LbVerdict::Done(Verdict::Tx { .. })), "{v:?}");
            assert_eq!(b[..], want[..300]);
            assert_eq!(lc, want_lc);
            seen += 1;
        }
        assert_eq!(seen, 2);
        // A chain whose IP length reaches past its tail is malformed.
        let f = big(v4);
        let mut b = f[..300].to_vec();
        let mut c = WorkerCounters::default();
        let mut pkt = Pkt::chained(&mut b, 0, 300, f.len() - 301, ACCESS);
        let v = st.process(&sn, &mut pkt, &mut c, &mut LbCounters::default());
        assert_eq!(v, dropped(DropReason::BadIpv4));
    }

    #[test]
    fn ipv6_primary_up_byte_by_byte() {
        let input = up6_frame(a6(1, 5), None);
        let (v, out, lc) = run(&stage(None), &snap(&[]), &input, ACCESS);
        assert_eq!(v, tx(LAN));
        #[rustfmt::skip]
        let head: [u8; 54] = [
            0x02, 0x67, 0, 0, 0, 0x01, // GW1
            0x02, 0x1b, 0, 0, 0, 0x1a, // our LAN MAC
            0x86, 0xdd,
            0x60, 0x01, 0x23, 0x45, // version 6, TC 0, flow label 0x12345 (builder's)
            0, 28, 6, 64, // payload 28 (TCP 20 + 8), next header TCP, hop limit 64
            0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, // 2001:db8:1::5
            0x20, 0x01, 0x0d, 0xb8, 0, 0x33, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // 2001:db8:33::1
        ];
        assert_eq!(out[..54], head[..]);
        assert_eq!(&out[54..], &input[54..]);
        assert!(build::checksums_ok(&out));
        assert_eq!(lc.to_primary, 1);
    }

    #[test]
    fn ipv6_substitute_and_down_byte_by_byte() {
        let st = stage(Some(NEXT_HOP));
        let run = |sn: &LbSnapshot, f: &[u8], port| run(&st, sn, f, port);
        // Primary (GW1) down: GW2, counted as a substitute.
        let up = up6_frame(a6(1, 5), None);
        let (v, out, lc) = run(&snap(&[1]), &up, ACCESS);
        assert_eq!(v, tx(LAN));
        assert_eq!(
            out[..12],
            [0x02, 0x67, 0, 0, 0, 0x02, 0x02, 0x1b, 0, 0, 0, 0x1a]
        );
        assert_eq!(out[12..], up[12..]);
        assert_eq!(lc.to_substitute, 1);
        // Down: neighbour entry of the destination, from our access MAC.
        let down = down6_frame(a6(1, 0x77));
        let (v, out, lc) = run(&snap(&[1, 2, 3]), &down, LAN);
        assert_eq!(v, tx(ACCESS));
        assert_eq!(
            out[..12],
            [0x02, 0x4e, 0, 0, 0, 0x77, 0x02, 0x1b, 0, 0, 0, 0xa0]
        );
        assert_eq!(out[12..], down[12..]);
        assert!(build::checksums_ok(&out));
        assert_eq!(lc.down_path, 1);
    }

    #[test]
    fn ipv6_table_validation_and_state_changes() {
        let r = |f: [u8; 16], l: [u8; 16]| LbRange6 {
            first: f,
            last: l,
            primary: GW1,
            substitutes: vec![],
        };
        let e = LbTable::default()
            .with_v6(vec![r(a6(1, 0), a6(1, 10)), r(a6(1, 10), a6(1, 20))])
            .unwrap_err();
        assert_eq!(
            e,
            LbError::Overlap6 {
                a: (a6(1, 0), a6(1, 10)),
                b: (a6(1, 10), a6(1, 20)),
            }
        );
        assert!(e.to_string().contains("2001:db8:1::-2001:db8:1::a"), "{e}");
        assert!(LbTable::default()
            .with_v6(vec![r(a6(1, 11), a6(1, 20)), r(a6(1, 0), a6(1, 10))])
            .is_ok());
        let e = LbTable::default()
            .with_v6(vec![r(a6(1, 9), a6(1, 1))])
            .unwrap_err();
        assert!(matches!(e, LbError::EmptyRange6 { .. }));
        assert!(e.to_string().contains("2001:db8:1::9-2001:db8:1::1"), "{e}");
        let mut bad = r(a6(1, 0), a6(1, 1));
        bad.primary.mac = [0; 6];
        assert_eq!(
            LbTable::default().with_v6(vec![bad]).unwrap_err(),
            LbError::BadGwMac { id: 1, mac: [0; 6] }
        );
        // IPv4 and IPv6 ranges are separate address spaces: no overlap.
        let mut t = table6(&[]);
        assert_eq!((t.len(), t.len6()), (6, 3));
        let firsts: Vec<_> = t.ranges6().map(|(f, _, _)| f).collect();
        assert_eq!(firsts, vec![a6(1, 0), a6(2, 0), a6(3, 0)]);
        assert_eq!(t.select6(a6(1, 0)), Ok((GW1, false)));
        assert_eq!(t.select6(a6(0, 0xffff)), Err(DropReason::LbNoRange));
        assert_eq!(t.select6([0xff; 16]), Err(DropReason::LbNoRange));
        // GW1 is primary of one range and substitute of another, in each family.
        assert_eq!(t.set_gw_up(1, false), 4);
        assert_eq!(t.select6(a6(1, 1)).map(|(g, s)| (g.id, s)), Ok((2, true)));
        assert_eq!(
            t.select([100, 64, 0, 1]).map(|(g, s)| (g.id, s)),
            Ok((2, true))
        );
        t.set_gw_up(1, true);
        assert_eq!(t.select6(a6(1, 1)), Ok((GW1, false)));
        let ids = |t: &LbTable| t.gateways().map(|g| g.id).collect::<Vec<_>>();
        assert_eq!(ids(&t), vec![1, 2, 3, 2, 1, 9, 1, 2, 3, 2, 1, 9]);
        // `new` keeps no IPv6 ranges; `with_v6` replaces them.
        assert_eq!(table(&[]).len6(), 0);
        assert_eq!(t.with_v6(vec![]).unwrap().len6(), 0);
        let n = AccessNeighbours::default().with_v6([(a6(1, 1), [1; 6]), (a6(1, 1), [2; 6])]);
        assert_eq!((n.len(), n.len6()), (0, 1));
        assert!(!n.is_empty());
        assert_eq!(n.lookup6(a6(1, 1)), Some([2; 6]));
        assert_eq!(n.lookup6(a6(1, 2)), None);
    }

    /// A probe value and the index of the range holding it, if any.
    type Probe<T> = (T, Option<usize>);

    /// Linear-scan oracle of the lookup properties: the sorted `bounds`
    /// paired into disjoint ranges, and the probes (`probes`, each range's
    /// ends and the values just outside them: `prev` / `next`, wrapping),
    /// each with the index of the range holding it by a linear scan.
    fn scan_oracle<T: Copy + Ord>(
        bounds: std::collections::BTreeSet<T>,
        mut probes: Vec<T>,
        prev: fn(T) -> T,
        next: fn(T) -> T,
    ) -> (Vec<(T, T)>, Vec<Probe<T>>) {
        let b: Vec<T> = bounds.into_iter().collect();
        let ranges: Vec<(T, T)> = b.chunks_exact(2).map(|c| (c[0], c[1])).collect();
        for &(f, l) in &ranges {
            probes.extend([f, l, prev(f), next(l)]);
        }
        let probes = probes
            .into_iter()
            .map(|a| (a, ranges.iter().position(|&(f, l)| f <= a && a <= l)))
            .collect();
        (ranges, probes)
    }

    /// The scan properties' primary gateway of range `i`: id `i`.
    fn scan_gw(i: usize) -> Gw {
        Gw {
            id: i as u16,
            mac: [2, 0, 0, 0, 0, i as u8],
            up: true,
        }
    }

    proptest! {
        #[test]
        fn lookup6_matches_linear_scan(
            bounds in proptest::collection::btree_set(any::<u128>(), 0..40),
            probes in proptest::collection::vec(any::<u128>(), 1..50)) {
            let (ranges, probes) = scan_oracle(bounds, probes, |a| a.wrapping_sub(1), |a| a.wrapping_add(1));
            let t = LbTable::default().with_v6(ranges.iter().enumerate().map(|(i, &(f, l))| LbRange6 {
                first: f.to_be_bytes(),
                last: l.to_be_bytes(),
                primary: scan_gw(i),
                substitutes: vec![],
            }).collect()).unwrap();
            for (a, want) in probes {
                let got = t.find6(a.to_be_bytes()).map(|e| e.primary.id as usize);
                prop_assert_eq!(got, want);
                // The IPv4 table is not consulted for IPv6.
                prop_assert!(t.find(((a >> 96) as u32).to_be_bytes()).is_none());
            }
        }

        #[test]
        fn lookup_matches_linear_scan(
            bounds in proptest::collection::btree_set(any::<u32>(), 0..40),
            probes in proptest::collection::vec(any::<u32>(), 1..50)) {
            // Pair consecutive distinct values into disjoint ranges.
            let (ranges, probes) = scan_oracle(bounds, probes, |a| a.wrapping_sub(1), |a| a.wrapping_add(1));
            let t = LbTable::new(ranges.iter().enumerate().map(|(i, &(f, l))| LbRange {
                first: f.to_be_bytes(),
                last: l.to_be_bytes(),
                primary: scan_gw(i),
                substitutes: vec![],
            }).collect()).unwrap();
            for (a, want) in probes {
                let got = t.find(a.to_be_bytes()).map(|e| e.primary.id as usize);
                prop_assert_eq!(got, want);
            }
        }

        #[test]
        fn never_panics_on_random_frames(port in 0u16..3, down in proptest::collection::vec(1u16..4, 0..3),
                                         mut frame in proptest::collection::vec(any::<u8>(), 0..120),
                                         ours in any::<bool>(), et in prop::sample::select(vec![0x0800u16, 0x0806, 0x8100, 0x86dd])) {
            if ours && frame.len() >= 14 {
                frame[..6].copy_from_slice(if port == LAN { &LAN_MAC } else { &ACCESS_MAC });
                frame[12..14].copy_from_slice(&et.to_be_bytes());
            }
            let sn = snap(&down);
            let st = stage(Some(NEXT_HOP));
            let len = frame.len();
            let mut buf = build::with_room(&frame, len + 16);
            let mut c = WorkerCounters::default();
            let mut lc = LbCounters::default();
            let mut pkt = Pkt::new(&mut buf, len, port);
            let v = st.process(&sn, &mut pkt, &mut c, &mut lc);
            prop_assert_eq!(pkt.len(), len);
            if let LbVerdict::Done(Verdict::Drop(_)) = v {
                prop_assert_eq!(c.total_drops(), 1);
            }
            prop_assert!(buf[len..].iter().all(|&b| b == FILL));
        }
    }
}
