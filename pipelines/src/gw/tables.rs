//! The GW's published tables: an immutable snapshot the management thread
//! builds and publishes as a whole (RCU style); the engine hands `&GwTables`
//! to the workers per burst and they never write to it.
//!
//! Three independently built parts, each behind an `Arc`, so a publish that
//! changes one part (a server marked down, a session started, an ARP answer)
//! shares the other two with the previous snapshot:
//!
//! * [`Services`]: representative addresses (VIP, or VIP:port) → server group
//!   (FIG. 23, FIG. 27): name, service type, balancing policy, members.
//! * [`Sessions`]: subscriber address → device id, state, allowed services
//!   (FIG. 10 / FIG. 26 folded into one bitmap per device); IPv4 by exact
//!   address, IPv6 (NAT64 subscribers) by prefix, /64 by default.
//! * [`Neighbours`]: IPv4 → MAC of servers and routers on the server side
//!   (resolved by ARP by the management thread, or static).
//!
//! Workers consult these maps only when a connection starts (and the
//! neighbour map again only after a new `Neighbours` was published); data
//! packets use what the flow entry cached.
//!
//! Cost of a publish: building a part is O(its entries); the management
//! thread should batch session changes (e.g. republish `Sessions` at most
//! every few milliseconds) rather than rebuild per RADIUS message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::hash::{FastBuild, FastMap};

/// Unique, increasing ids for published parts (so a worker can tell a new
/// `Neighbours` from the one it cached from).
static NEXT_EPOCH: AtomicU64 = AtomicU64::new(1);

fn next_epoch() -> u64 {
    NEXT_EPOCH.fetch_add(1, Ordering::Relaxed)
}

/// A service type (mail, chat, wap, ...). `0..=63`: a bit of
/// [`SubscriberAuth::allowed`] and of the management side's
/// [`crate::mgmt::users::ServiceSet`]; its index in the service list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u8);

impl ServiceId {
    pub const MAX: u8 = 63;
    #[inline]
    pub fn bit(self) -> u64 {
        1u64 << (self.0 & 63)
    }
}

/// Balancing policy of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Each up member in turn.
    RoundRobin,
    /// Up members in proportion to `weight` (weight 0: never chosen).
    WeightedRoundRobin,
    /// The up member with the fewest open connections *opened by this worker*:
    /// counts are per core, as in VPP and DPVS (each worker balances its own
    /// connections; with RSS spreading connections evenly this approximates
    /// a global least-connections). Counts are kept per server *address*, so
    /// they survive table publishes; members sharing an address share a
    /// count.
    LeastConnections,
    /// The up member(s) with the lowest `priority` value; ties in turn.
    Priority,
}

/// A real server of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub ip: [u8; 4],
    /// Server port; `None` keeps the port the subscriber asked for.
    pub port: Option<u16>,
    pub weight: u32,
    /// Lower value = preferred (like DNS SRV).
    pub priority: u32,
    /// Marked by the server monitor; a member that is down is never chosen
    /// for a new connection (existing connections keep their server).
    pub up: bool,
}

/// A server group (FIG. 23).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub service: ServiceId,
    pub policy: Policy,
    pub members: Vec<Member>,
}

/// A representative address of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    pub ip: [u8; 4],
    /// `Some(p)`: only connections to `ip:p`; `None`: any port. An exact
    /// `ip:port` entry wins over an `ip` entry.
    pub port: Option<u16>,
    /// Name of the group.
    pub group: String,
}

/// An IPv6 representative address (NAT66, [`Services::with_v6`]): like
/// [`Vip`], its group's members are reached at their IPv6 addresses
/// ([`Member6`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip6 {
    pub ip: [u8; 16],
    /// `None`: every port.
    pub port: Option<u16>,
    /// Name of the group.
    pub group: String,
}

/// The side of a member a health verdict is about
/// ([`Services::with_member_state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberSide {
    /// The member itself (its IPv4 address): every connection.
    V4,
    /// Its IPv6 address: NAT66 connections only.
    V6,
}

/// The IPv6 address of member `member` of group `group` (NAT66). A member
/// keeps its IPv4 `ip` (least-connections count); members without an IPv6
/// address are not chosen for NAT66 connections. Its IPv6 side has its own
/// health ([`Services::with_member_state`], [`MemberSide::V6`]): NAT66 balancing takes the
/// members that are up, have an IPv6 address and whose IPv6 side is up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member6 {
    pub group: String,
    pub member: String,
    pub ip6: [u8; 16],
}

/// Index of a group in [`Services`].
pub type GroupIdx = u16;

/// A group with what the balancer needs precomputed.
#[derive(Clone, Debug)]
pub struct GroupRt {
    pub group: Group,
    /// Indices of the members that are up.
    pub(crate) up: Vec<u16>,
    /// Up members with weight > 0, and their cumulative weights.
    pub(crate) wrr_idx: Vec<u16>,
    pub(crate) wrr_cum: Vec<u64>,
    pub(crate) wrr_total: u64,
    /// Multiplier coprime to `wrr_total` that interleaves the WRR sequence.
    pub(crate) wrr_stride: u64,
    /// Up members with the lowest priority value.
    pub(crate) best: Vec<u16>,
}

impl GroupRt {
    fn new(group: Group) -> GroupRt {
        let up: Vec<u16> = (0..group.members.len())
            .filter(|&i| group.members[i].up)
            .map(|i| i as u16)
            .collect();
        let mut wrr_idx = Vec::new();
        let mut wrr_cum = Vec::new();
        let mut total = 0u64;
        for &i in &up {
            let w = group.members[i as usize].weight as u64;
            if w > 0 {
                total += w;
                wrr_idx.push(i);
                wrr_cum.push(total);
            }
        }
        let mut stride = (total * 618 / 1000).max(1);
        while total > 0 && gcd(stride, total) != 1 {
            stride += 1;
        }
        let best_prio = up.iter().map(|&i| group.members[i as usize].priority).min();
        let best = up
            .iter()
            .copied()
            .filter(|&i| Some(group.members[i as usize].priority) == best_prio)
            .collect();
        GroupRt {
            group,
            up,
            wrr_idx,
            wrr_cum,
            wrr_total: total,
            wrr_stride: stride,
            best,
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[inline]
fn vip_key(ip: [u8; 4], port: Option<u16>) -> u64 {
    ((u32::from_be_bytes(ip) as u64) << 32)
        | match port {
            Some(p) => ((p as u64) << 8) | 1,
            None => 0,
        }
}

/// Groups and representative addresses.
#[derive(Clone, Debug)]
pub struct Services {
    groups: Vec<GroupRt>,
    vips: FastMap<u64, GroupIdx>,
    any_port_vips: bool,
    /// The distinct IPv4 / IPv6 VIP addresses, sorted (echo answers).
    vip_addrs: Vec<[u8; 4]>,
    vip6_addrs: Vec<[u8; 16]>,
    /// IPv6 VIPs: (address, port or `u32::MAX` for any) → group.
    vips6: FastMap<(u128, u32), GroupIdx>,
    /// Per group, per member: the IPv6 address (NAT66), if any.
    ip6: Vec<Vec<Option<[u8; 16]>>>,
    /// Per group, per member: whether its IPv6 side is up (health checks of
    /// the IPv6 address; true until one says otherwise).
    up6: Vec<Vec<bool>>,
    /// The groups as NAT66 balances them (see [`Services::group6`]).
    groups6: Vec<GroupRt>,
    /// Service of connections to non-VIP destinations ("external"): `Some`
    /// makes them subject to authorization too; `None` lets any session use
    /// them.
    pub external_service: Option<ServiceId>,
    epoch: u64,
}

impl Services {
    /// Build; the error names the group, member or VIP at fault.
    pub fn new(
        groups: Vec<Group>,
        vips: Vec<Vip>,
        external_service: Option<ServiceId>,
    ) -> Result<Services, String> {
        if groups.len() >= u16::MAX as usize {
            return Err(format!("gw.groups: {} groups, at most 65534", groups.len()));
        }
        for (i, g) in groups.iter().enumerate() {
            if groups[..i].iter().any(|o| o.name == g.name) {
                return Err(format!("gw.groups: group {:?} defined twice", g.name));
            }
            if g.service.0 > ServiceId::MAX {
                return Err(format!(
                    "gw.groups.{}.service: {} > {}",
                    g.name,
                    g.service.0,
                    ServiceId::MAX
                ));
            }
            if g.members.len() >= u16::MAX as usize {
                return Err(format!("gw.groups.{}: too many members", g.name));
            }
            for m in &g.members {
                if m.ip == [0; 4] {
                    return Err(format!("gw.groups.{}.{}: address 0.0.0.0", g.name, m.name));
                }
                if m.port == Some(0) {
                    return Err(format!("gw.groups.{}.{}: port 0", g.name, m.name));
                }
            }
        }
        if let Some(s) = external_service {
            if s.0 > ServiceId::MAX {
                return Err(format!("gw.external_service: {} > {}", s.0, ServiceId::MAX));
            }
        }
        let mut map = FastMap::with_capacity_and_hasher(vips.len(), FastBuild::default());
        let mut any_port = false;
        for v in &vips {
            let Some(g) = groups.iter().position(|g| g.name == v.group) else {
                return Err(format!(
                    "gw.vips: {:?} names unknown group {:?}",
                    v.ip, v.group
                ));
            };
            if map.insert(vip_key(v.ip, v.port), g as GroupIdx).is_some() {
                return Err(format!(
                    "gw.vips: {:?} port {:?} listed twice",
                    v.ip, v.port
                ));
            }
            any_port |= v.port.is_none();
        }
        let ip6 = groups.iter().map(|g| vec![None; g.members.len()]).collect();
        let up6 = groups.iter().map(|g| vec![true; g.members.len()]).collect();
        let mut vip_addrs: Vec<[u8; 4]> = vips.iter().map(|v| v.ip).collect();
        vip_addrs.sort_unstable();
        vip_addrs.dedup();
        Ok(Services {
            groups: groups.into_iter().map(GroupRt::new).collect(),
            vips: map,
            any_port_vips: any_port,
            vip_addrs,
            vip6_addrs: Vec::new(),
            vips6: FastMap::default(),
            ip6,
            up6,
            groups6: Vec::new(),
            external_service,
            epoch: next_epoch(),
        }
        .rebuild6())
    }

    /// `groups6` from `groups`, `ip6` and `up6`: a member is up for NAT66
    /// if it is up, has an IPv6 address and its IPv6 side is up.
    fn rebuild6(mut self) -> Services {
        self.groups6 = self
            .groups
            .iter()
            .enumerate()
            .map(|(g, rt)| {
                let mut grp = rt.group.clone();
                for (i, m) in grp.members.iter_mut().enumerate() {
                    m.up &= self.ip6[g][i].is_some() && self.up6[g][i];
                }
                GroupRt::new(grp)
            })
            .collect();
        self
    }

    /// (group index, member index) of `group`/`member`; Err names what was
    /// not found.
    fn find_member(&self, group: &str, member: &str) -> Result<(usize, usize), String> {
        let g = self
            .groups
            .iter()
            .position(|g| g.group.name == group)
            .ok_or_else(|| format!("no group {group:?}"))?;
        let m = self.groups[g]
            .group
            .members
            .iter()
            .position(|m| m.name == member)
            .ok_or_else(|| format!("no member {member:?} in group {group:?}"))?;
        Ok((g, m))
    }

    /// Whether the IPv6 side of member `m` of group `g` is up.
    pub fn member_up6(&self, g: GroupIdx, m: u16) -> bool {
        self.up6
            .get(g as usize)
            .and_then(|v| v.get(m as usize))
            .copied()
            .unwrap_or(false)
    }

    /// A copy with `side` of member `member` of group `group` marked up or
    /// down (what a health check publishes). Connections already open keep
    /// their server; new ones see the new state. [`MemberSide::V6`] (the
    /// health check of its IPv6 address): only NAT66 connections stop
    /// choosing it; IPv4 and NAT64 ones keep it. Err names what was not
    /// found, or a member without an IPv6 address.
    pub fn with_member_state(
        &self,
        group: &str,
        member: &str,
        side: MemberSide,
        up: bool,
    ) -> Result<Services, String> {
        let (g, m) = self.find_member(group, member)?;
        let mut next = self.clone();
        match side {
            MemberSide::V4 => {
                let mut grp = next.groups[g].group.clone();
                grp.members[m].up = up;
                next.groups[g] = GroupRt::new(grp);
            }
            MemberSide::V6 if self.ip6[g][m].is_none() => {
                return Err(format!(
                    "member {member:?} of group {group:?} has no IPv6 address"
                ));
            }
            MemberSide::V6 => next.up6[g][m] = up,
        }
        next.epoch = next_epoch();
        Ok(next.rebuild6())
    }

    /// Replace the IPv6 VIPs and member IPv6 addresses (NAT66). The error
    /// names the VIP or member at fault.
    pub fn with_v6(mut self, vips6: Vec<Vip6>, members6: Vec<Member6>) -> Result<Services, String> {
        let mut map = FastMap::with_capacity_and_hasher(vips6.len(), FastBuild::default());
        for v in &vips6 {
            let ip = std::net::Ipv6Addr::from(v.ip);
            let Some(g) = self.groups.iter().position(|g| g.group.name == v.group) else {
                return Err(format!("gw.vips6: {ip} names unknown group {:?}", v.group));
            };
            if v.port == Some(0) {
                return Err(format!("gw.vips6: {ip} port 0"));
            }
            let key = (
                u128::from_be_bytes(v.ip),
                v.port.map_or(u32::MAX, u32::from),
            );
            if map.insert(key, g as GroupIdx).is_some() {
                return Err(format!("gw.vips6: {ip} port {:?} listed twice", v.port));
            }
        }
        let mut ip6: Vec<Vec<Option<[u8; 16]>>> = self
            .groups
            .iter()
            .map(|g| vec![None; g.group.members.len()])
            .collect();
        for m in &members6 {
            let Some(g) = self.groups.iter().position(|g| g.group.name == m.group) else {
                return Err(format!("gw.groups.{}.{}: no such group", m.group, m.member));
            };
            let Some(i) = self.groups[g]
                .group
                .members
                .iter()
                .position(|x| x.name == m.member)
            else {
                return Err(format!(
                    "gw.groups.{}.{}: no such member",
                    m.group, m.member
                ));
            };
            if m.ip6 == [0; 16] {
                return Err(format!(
                    "gw.groups.{}.{}: IPv6 address ::",
                    m.group, m.member
                ));
            }
            ip6[g][i] = Some(m.ip6);
        }
        self.vips6 = map;
        self.ip6 = ip6;
        self.vip6_addrs = vips6.iter().map(|v| v.ip).collect();
        self.vip6_addrs.sort_unstable();
        self.vip6_addrs.dedup();
        self.epoch = next_epoch();
        Ok(self.rebuild6())
    }

    /// Group of IPv6 representative address `ip:port`, if it is one.
    #[inline]
    pub fn vip6(&self, ip: &[u8; 16], port: u16) -> Option<GroupIdx> {
        if self.vips6.is_empty() {
            return None;
        }
        let a = u128::from_be_bytes(*ip);
        self.vips6
            .get(&(a, port as u32))
            .or_else(|| self.vips6.get(&(a, u32::MAX)))
            .copied()
    }

    /// Whether `ip` is a representative address (on any of its ports).
    #[inline]
    pub fn is_vip(&self, ip: [u8; 4]) -> bool {
        self.vip_addrs.binary_search(&ip).is_ok()
    }

    /// Whether `ip` is an IPv6 representative address (on any port).
    #[inline]
    pub fn is_vip6(&self, ip: &[u8; 16]) -> bool {
        self.vip6_addrs.binary_search(ip).is_ok()
    }

    /// Whether any IPv6 VIP is configured.
    #[inline]
    pub fn has_vips6(&self) -> bool {
        !self.vips6.is_empty()
    }

    /// The IPv6 address of member `m` of group `g` (NAT66), if it has one.
    #[inline]
    pub fn member_ip6(&self, g: GroupIdx, m: u16) -> Option<[u8; 16]> {
        *self.ip6.get(g as usize)?.get(m as usize)?
    }

    /// Group of representative address `ip:port`, if it is one.
    #[inline]
    pub fn vip(&self, ip: [u8; 4], port: u16) -> Option<GroupIdx> {
        if self.vips.is_empty() {
            return None;
        }
        if let Some(&g) = self.vips.get(&vip_key(ip, Some(port))) {
            return Some(g);
        }
        if self.any_port_vips {
            return self.vips.get(&vip_key(ip, None)).copied();
        }
        None
    }

    #[inline]
    pub fn group(&self, g: GroupIdx) -> Option<&GroupRt> {
        self.groups.get(g as usize)
    }

    /// Group `g` as NAT66 balances it: the same members (same indexes),
    /// up only if up, with an IPv6 address and its IPv6 side up.
    #[inline]
    pub fn group6(&self, g: GroupIdx) -> Option<&GroupRt> {
        self.groups6.get(g as usize)
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.iter().map(|g| &g.group)
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// A subscriber session as the GW sees it: whose it is, whether it is
/// active and the services it may use (the management side keeps the full
/// session row, [`crate::mgmt::session::Session`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriberAuth {
    /// Mobile device identification.
    pub device_id: u64,
    /// `Act` (true) or `Dormant`/`Close` (false).
    pub active: bool,
    /// Bit `s` set: service `ServiceId(s)` is OK for this device.
    pub allowed: u64,
}

impl SubscriberAuth {
    #[inline]
    pub fn allows(&self, s: ServiceId) -> bool {
        self.allowed & s.bit() != 0
    }
}

/// Prefix length of an IPv6 subscriber session unless told otherwise: a
/// RADIUS Framed-IPv6-Prefix (RFC 3162) / Delegated-IPv6-Prefix (RFC 4818)
/// is typically a /64, and a device picks any address (SLAAC, privacy
/// addresses) in it, so the session must match the whole /64.
pub const SESSION6_PREFIX_LEN: u8 = 64;

/// Subscriber address → session.
///
/// IPv4 sessions are keyed by the exact address. IPv6 sessions are keyed by
/// a prefix (any length 0..=128; /64 is the norm, /128 an exact address
/// such as RFC 6911's Framed-IPv6-Address, /56 a delegated prefix); a
/// lookup tries each prefix length present in the table, longest first,
/// so it costs one hash probe per distinct length (one with only /64s).
#[derive(Clone, Debug)]
pub struct Sessions {
    map: FastMap<u32, SubscriberAuth>,
    map6: FastMap<(u128, u8), SubscriberAuth>,
    /// Distinct prefix lengths of `map6`, longest first.
    lens6: Vec<u8>,
    epoch: u64,
}

#[inline]
fn mask6(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - len as u32))
    }
}

/// `entries` keyed by their IPv4 address as a number; for the same address
/// the last entry wins.
fn by_ip4<V>(entries: impl IntoIterator<Item = ([u8; 4], V)>) -> FastMap<u32, V> {
    entries
        .into_iter()
        .map(|(ip, v)| (u32::from_be_bytes(ip), v))
        .collect()
}

impl Sessions {
    /// IPv4 sessions only.
    pub fn new(entries: impl IntoIterator<Item = ([u8; 4], SubscriberAuth)>) -> Sessions {
        Sessions {
            map: by_ip4(entries),
            map6: FastMap::default(),
            lens6: Vec::new(),
            epoch: next_epoch(),
        }
    }
    /// This table with its IPv6 sessions replaced by `entries`: (an address
    /// in the prefix, prefix length, session). Bits past the length are
    /// ignored; a length above 128 is taken as 128; for the same prefix the
    /// last entry wins. A new epoch.
    pub fn with_v6(
        mut self,
        entries: impl IntoIterator<Item = ([u8; 16], u8, SubscriberAuth)>,
    ) -> Sessions {
        self.map6.clear();
        self.lens6.clear();
        for (a, len, s) in entries {
            let len = len.min(128);
            self.map6
                .insert((mask6(u128::from_be_bytes(a), len), len), s);
            if !self.lens6.contains(&len) {
                self.lens6.push(len);
            }
        }
        self.lens6.sort_unstable_by(|a, b| b.cmp(a));
        self.epoch = next_epoch();
        self
    }
    #[inline]
    pub fn get(&self, ip: [u8; 4]) -> Option<&SubscriberAuth> {
        self.map.get(&u32::from_be_bytes(ip))
    }
    /// The session of the longest prefix holding `ip`.
    #[inline]
    pub fn get6(&self, ip: &[u8; 16]) -> Option<&SubscriberAuth> {
        let a = u128::from_be_bytes(*ip);
        self.lens6
            .iter()
            .find_map(|&len| self.map6.get(&(mask6(a, len), len)))
    }
    /// IPv4 sessions.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// IPv6 sessions (prefixes).
    pub fn len6(&self) -> usize {
        self.map6.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty() && self.map6.is_empty()
    }
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// IPv4 (and IPv6, [`Neighbours::with_v6`]) → MAC on the server side.
#[derive(Clone, Debug)]
pub struct Neighbours {
    map: FastMap<u32, [u8; 6]>,
    map6: FastMap<u128, [u8; 6]>,
    epoch: u64,
}

impl Neighbours {
    pub fn new(entries: impl IntoIterator<Item = ([u8; 4], [u8; 6])>) -> Neighbours {
        Neighbours {
            map: by_ip4(entries),
            map6: FastMap::default(),
            epoch: next_epoch(),
        }
    }
    /// A copy with the IPv6 neighbours `entries` (the servers of NAT66
    /// connections); a new epoch.
    pub fn with_v6(mut self, entries: impl IntoIterator<Item = ([u8; 16], [u8; 6])>) -> Neighbours {
        self.map6 = entries
            .into_iter()
            .map(|(ip, mac)| (u128::from_be_bytes(ip), mac))
            .collect();
        self.epoch = next_epoch();
        self
    }
    #[inline]
    pub fn get6(&self, ip: &[u8; 16]) -> Option<[u8; 6]> {
        self.map6.get(&u128::from_be_bytes(*ip)).copied()
    }
    #[inline]
    pub fn get(&self, ip: [u8; 4]) -> Option<[u8; 6]> {
        self.map.get(&u32::from_be_bytes(ip)).copied()
    }
    /// Unique id of this build; flows cache a MAC together with it.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// The snapshot a worker reads.
#[derive(Clone, Debug)]
pub struct GwTables {
    pub services: Arc<Services>,
    pub sessions: Arc<Sessions>,
    pub neighbours: Arc<Neighbours>,
    /// Where each subscriber last entered, written by the workers (the
    /// same table in every snapshot of an instance).
    pub moves: Arc<super::moves::Moves>,
}

impl GwTables {
    pub fn new(services: Services, sessions: Sessions, neighbours: Neighbours) -> GwTables {
        GwTables::with_move_slots(services, sessions, neighbours, super::moves::SLOTS)
    }
    /// [`GwTables::new`] with a mobility table of `slots` slots per family
    /// (fuzzing: a cheap set-up per input; IPv4 subscribers are told apart
    /// exactly only with [`super::moves::SLOTS`]).
    pub fn with_move_slots(
        services: Services,
        sessions: Sessions,
        neighbours: Neighbours,
        slots: usize,
    ) -> GwTables {
        GwTables {
            services: Arc::new(services),
            sessions: Arc::new(sessions),
            neighbours: Arc::new(neighbours),
            moves: Arc::new(super::moves::Moves::new(slots)),
        }
    }
    /// A copy with new sessions (services and neighbours shared).
    pub fn with_sessions(&self, sessions: Sessions) -> GwTables {
        GwTables {
            sessions: Arc::new(sessions),
            ..self.clone()
        }
    }
    /// A copy with new services (sessions and neighbours shared).
    pub fn with_services(&self, services: Services) -> GwTables {
        GwTables {
            services: Arc::new(services),
            ..self.clone()
        }
    }
    /// A copy with new neighbours (services and sessions shared).
    pub fn with_neighbours(&self, neighbours: Neighbours) -> GwTables {
        GwTables {
            neighbours: Arc::new(neighbours),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn member(name: &str, ip: [u8; 4], weight: u32, priority: u32, up: bool) -> Member {
        Member {
            name: name.into(),
            ip,
            port: None,
            weight,
            priority,
            up,
        }
    }

    /// Group `name` (service 1) of `members`, balanced by `policy`.
    fn group(name: &str, policy: Policy, members: Vec<Member>) -> Group {
        Group {
            name: name.into(),
            service: ServiceId(1),
            policy,
            members,
        }
    }

    #[test]
    fn member_state_change_rebuilds_the_group() {
        let g = group(
            "wap",
            Policy::RoundRobin,
            vec![
                member("a", [10, 0, 0, 1], 1, 0, true),
                member("b", [10, 0, 0, 2], 1, 0, true),
            ],
        );
        let s = Services::new(vec![g], vec![], None).unwrap();
        let d = s
            .with_member_state("wap", "b", MemberSide::V4, false)
            .unwrap();
        assert_eq!(d.group(0).unwrap().up, vec![0]);
        assert_eq!(
            s.group(0).unwrap().up,
            vec![0, 1],
            "the old snapshot is untouched"
        );
        assert_ne!(d.epoch(), s.epoch());
        assert!(d
            .with_member_state("wap", "zz", MemberSide::V4, true)
            .is_err());
        assert!(d
            .with_member_state("mail", "a", MemberSide::V4, true)
            .is_err());
        assert_eq!(
            d.with_member_state("wap", "b", MemberSide::V4, true)
                .unwrap()
                .group(0)
                .unwrap()
                .up,
            vec![0, 1]
        );
    }

    #[test]
    fn vip_exact_port_wins_over_any_port() {
        let g = |n: &str| {
            group(
                n,
                Policy::RoundRobin,
                vec![member("a", [10, 1, 1, 1], 1, 0, true)],
            )
        };
        let s = Services::new(
            vec![g("web"), g("mail")],
            vec![
                Vip {
                    ip: [10, 33, 0, 1],
                    port: None,
                    group: "mail".into(),
                },
                Vip {
                    ip: [10, 33, 0, 1],
                    port: Some(80),
                    group: "web".into(),
                },
            ],
            None,
        )
        .unwrap();
        assert_eq!(s.vip([10, 33, 0, 1], 80), Some(0));
        assert_eq!(s.vip([10, 33, 0, 1], 25), Some(1));
        assert_eq!(s.vip([10, 33, 0, 2], 80), None);
    }

    #[test]
    fn build_errors_name_the_culprit() {
        let e = Services::new(
            vec![],
            vec![Vip {
                ip: [1, 2, 3, 4],
                port: None,
                group: "x".into(),
            }],
            None,
        )
        .unwrap_err();
        assert!(e.contains("unknown group \"x\""), "{e}");
    }

    #[test]
    fn derived_lists() {
        let g = GroupRt::new(group(
            "g",
            Policy::Priority,
            vec![
                member("a", [10, 0, 0, 1], 3, 2, true),
                member("b", [10, 0, 0, 2], 0, 1, true),
                member("c", [10, 0, 0, 3], 5, 1, false),
                member("d", [10, 0, 0, 4], 2, 1, true),
            ],
        ));
        assert_eq!(g.up, vec![0, 1, 3]);
        assert_eq!(g.wrr_idx, vec![0, 3]);
        assert_eq!(g.wrr_cum, vec![3, 5]);
        assert_eq!(g.wrr_total, 5);
        assert_eq!(gcd(g.wrr_stride, 5), 1);
        assert_eq!(g.best, vec![1, 3]);
    }

    #[test]
    fn ipv6_sessions_match_by_prefix_longest_first() {
        let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        let sess = |d| SubscriberAuth {
            device_id: d,
            active: true,
            allowed: 1,
        };
        let base = Sessions::new([([10, 0, 0, 1], sess(4))]);
        let e0 = base.epoch();
        let s = base.with_v6([
            (v6("2001:db8:0:1::"), SESSION6_PREFIX_LEN, sess(64)),
            (v6("2001:db8:0:100::"), 56, sess(56)),
            (v6("2001:db8:0:1::99"), 128, sess(128)),
            (v6("2001:db8:0:200:ffff::"), 200, sess(129)), // taken as /128
        ]);
        assert_ne!(s.epoch(), e0);
        assert_eq!((s.len(), s.len6()), (1, 4));
        let dev = |a: &str| s.get6(&v6(a)).map(|x| x.device_id);
        // any address of the /64, bits past the length ignored
        assert_eq!(dev("2001:db8:0:1::1"), Some(64));
        assert_eq!(dev("2001:db8:0:1:abcd:ef01:2345:6789"), Some(64));
        // the exact /128 wins over its /64
        assert_eq!(dev("2001:db8:0:1::99"), Some(128));
        // a /56 holds 256 /64s
        assert_eq!(dev("2001:db8:0:1ff::7"), Some(56));
        assert_eq!(dev("2001:db8:0:200::1"), None);
        assert_eq!(dev("2001:db8:0:200:ffff::"), Some(129));
        assert_eq!(dev("2001:db8:1:1::1"), None);
        assert_eq!(s.get([10, 0, 0, 1]).map(|x| x.device_id), Some(4));
        // replacing the IPv6 part keeps the IPv4 part
        let s2 = s.with_v6([]);
        assert_eq!((s2.len(), s2.len6()), (1, 0));
        assert_eq!(s2.get6(&v6("2001:db8:0:1::1")), None);
        let z = Sessions::new([]).with_v6([(v6("::"), 0, sess(0))]);
        assert_eq!(z.get6(&v6("2001:db8::1")).map(|x| x.device_id), Some(0));
    }

    #[test]
    fn epochs_are_unique() {
        let a = Neighbours::new([]);
        let b = Neighbours::new([]);
        assert_ne!(a.epoch(), b.epoch());
    }
}
