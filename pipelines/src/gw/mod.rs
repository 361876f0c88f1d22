//! The GW stage (FIG. 16–29, steps S31–S117, S61–S67, S70–S80): port-keyed
//! full NAT of IPv4 subscribers, NAT64 and NAT66, over whole bursts.
//!
//! ## A burst's path (one lap of the runtime accounting each)
//! 1. **parse** ([`meta`]): each frame becomes a [`meta::Meta`]; the
//!    direction is its port and destination; malformed and foreign frames
//!    get their verdict here. ICMP errors about connections (NAT44, NAT64)
//!    are translated here too, and echo requests to a VIP answered
//!    ([`icmp`], rare: off the TCP/UDP fast path).
//! 2. **gw_lookup** ([`up`], [`down`]): hash every up tuple and prefetch its
//!    bucket of the up table ([`table`]); find every down key's owner
//!    (another worker's: `Handoff`, frame untouched) and prefetch its chain
//!    head; then prefetch the entries the tags point at; then compare.
//! 3. **gw_open** ([`open`]): misses that start a connection: session
//!    (S62–S63), representative address → group → service (S41, FIG. 27),
//!    authorization (S65–S66: a refused TCP SYN becomes a RST built in
//!    place, other protocols are dropped), the subscriber's connection
//!    limits ([`limit`]: `subscriber_conn_limit`, `subscriber_rate_limit`,
//!    with the exhaustion reply), server by the group's policy
//!    (S43, [`balance`]), key ([`keys`]: the subscriber's own port when
//!    free, else a rotation; unique per destination), entry and timer.
//!    A SYN on the tuple of a connection on hold revives it (same key,
//!    same server: RFC 7857 §2). With the SYN proxy ([`synproxy`]) a SYN
//!    to a VIP gets a cookie SYN-ACK instead, and the ACK carrying a
//!    valid cookie starts the connection.
//! 4. **rewrite** ([`rewrite`]): addresses, ports, TTL, MACs and checksums
//!    by one incremental delta per header; NAT64 through [`crate::xlat`];
//!    MSS clamp, window cap; TCP state ([`tcp_state`]), counters, last-seen.
//! 5. **accounting** ([`acct`]): connections closed by this burst (FIN both
//!    ways, RST) push their record to the [`AcctSink`] and go on hold.
//!
//! Idle expiry and the end of holds run from [`GwWorker::expire`] off a
//! timer wheel ([`wheel`]), O(due), budgeted by the caller.
//!
//! ## Entries, keys, holds
//! A connection is one 64-byte hot line and a 32-byte cold record
//! ([`entry`]), preallocated for `max_flows_per_worker` connections (open
//! or on hold) in memory from a [`TableAlloc`] (hugepages on the worker's
//! NUMA node in the engine). The up table maps the subscriber-side tuple to
//! the entry; the down path finds it from the key: (pool address, key
//! port) → a chain of entries sharing the key, told apart by the server
//! (a key is unique per destination). Ownership of keys between workers
//! is arithmetic ([`keys`]).
//!
//! A closed connection keeps its entry, key and server on **hold**: late
//! packets are still translated, and its (key, server) tuple is given to no
//! other connection. The hold is `close_hold_ms` (≥ the servers' TIME_WAIT,
//! 60 s by default) after a connection that reached Established and closed
//! by FIN or went idle, and `short_hold_ms` (2 s) after a RST, a connection
//! never established, UDP and ICMP — nothing on the server remembers
//! those. During the hold a new SYN from the *same subscriber 4-tuple*
//! revives the binding (`revived`), the server's TIME_WAIT accepts it
//! because the subscriber's own ISN and timestamps keep increasing.
//!
//! Fragments of NAT44, NAT66 and NAT64 connections are translated by
//! shallow virtual reassembly ([`frag`]: the first fragment's translation
//! kept for the rest of its datagram; fragments before it held, bounded,
//! timed out). Not this stage's job: ARP and NDP (the pipeline answers
//! them first). Checksums are not verified: an incremental
//! update keeps a bad checksum bad. VLAN tags pass through unchanged.
//! Authorization is checked when a connection starts; a connection keeps
//! its server for its life even if the server is later marked down.
//!
//! ## NAT64 (`GwConfig::nat64`, off by default)
//! RFC 6146-style stateful NAT64 on the same keys as IPv4 NAT, with the
//! header translation of [`crate::xlat`] (RFC 7915) and the address mapping
//! of RFC 6052. Up: an IPv6 frame on `access_port` to the prefix; the IPv4
//! destination is the embedded address, and everything else is as for
//! IPv4 (VIP balancing, session by the subscriber's IPv6 prefix, RST over
//! IPv6, keys). The entry keeps the IPv6 subscriber in a side table.
//! Down: the same keys; [`crate::xlat::v4_to_v6`] grows the header into
//! the buffer's headroom. A down packet too big for `mtu6` gets an ICMPv4
//! Fragmentation Needed when it has DF, else is dropped (`too_big`; a
//! fragment, 28 bytes longer once translated: `xlat_frag_too_big`). ICMP
//! errors about NAT64 connections are translated both ways ([`icmp`]).
//!
//! ## NAT66 (`GwConfig::pool6`, off while empty)
//! IPv6 subscribers to IPv6 VIPs: `pool6[i]` is paired with `pool[i]`, so
//! NAT66 connections share the keys, owners and handoffs of IPv4. The
//! entry keeps the IPv6 subscriber, VIP and server in side tables; a
//! member's IPv4 address stays its load identity. NAT66 balances over the
//! members that are up, have an IPv6 address and whose IPv6 side is up
//! (`Services::group6`: the health check of the IPv6 address), so a
//! member whose IPv6 address stops answering keeps its IPv4 connections.
//!
//! ## RSS-steered keys (`GwConfig::rss`, off by default)
//! See [`rss`]: among the candidate keys of a new connection the first
//! whose down packets the NIC's Toeplitz hash and RETA put on this
//! worker's RX queue is taken (`rss_steered` / `rss_miss`).
//!
//! ## TCP MSS clamping and window cap
//! `mss_clamp_up` lowers the MSS option of SYNs going up, `mss_clamp_down`
//! of SYN-ACKs going down (2 bytes and the checksum; never an option added,
//! removed or moved). `window_cap_down` lowers the window field of every
//! segment going down, only on connections that did not negotiate window
//! scaling (both SYN and SYN-ACK carried the option, RFC 7323 §2.2): a
//! scaled window means `window << shift`, and rewriting it safely needs a
//! trusted view of the handshake the gateway may not have. The Window Scale
//! option itself is never touched.
//!
//! ## Room for a standby
//! A hot-standby GW needs each binding (subscriber tuple, key, server) when
//! it opens and when it ends. Both happen in one place off the per-packet
//! fast path — `gw_open` ([`open`]: `start`, `revive`) and the accounting
//! lap / timer ([`open`]: `close_flow`, `free_entry`) — and the hot line
//! holds the whole binding, so an export is a bounded per-worker ring those
//! points append to and the management thread drains in batches, as it
//! drains the accounting queues today.
//!
//! ## Memory (per worker, all from [`GwWorker::with_alloc`])
//! Per connection of capacity: 64 (hot) + 32 (cold) + about 18 (up table)
//! bytes, plus 16 bytes of IPv6 side table with NAT64 and 48 with NAT66;
//! per key 4 bytes (chain heads: pool addresses × the worker's ports);
//! Host/SNI attributes 51 bytes per slot (`attr_slots`, an eighth of the
//! capacity by default); with a subscriber limit, 32 bytes per slot of
//! [`limit`] (`next_pow2(max_flows_per_worker)` slots); per instance, 512
//! KiB of subscriber entry points ([`moves`]); with the SYN proxy,
//! 16 bytes per entry ([`synproxy::Px`]) and 1.5 MiB of early-segment
//! pool; for fragments ([`frag`]) 76 bytes per context (140 with NAT64
//! or NAT66) and 1556 per hold slot (about 470 KiB by default); the
//! next-hop cache and LB table are small.
//!
//! ## Cost
//! Measured by the engine's runtime accounting per stage (`pgw stats
//! --runtime`) under `scripts/bench.sh` and by the criterion benches of
//! `perf/benches/stages.rs`; figures in `perf/RESULTS.md` and
//! `perf/RESULTS.json`.

pub mod acct;
pub mod balance;
pub mod config;
mod down;
pub mod entry;
pub mod frag;
pub mod free_stack;
pub mod hash;
mod icmp;
pub mod keys;
pub mod limit;
pub mod meta;
pub mod moves;
pub mod nh;
mod open;
pub mod rewrite;
pub mod rss;
pub mod rst;
pub mod synproxy;
pub mod table;
pub mod tables;
pub mod tcp_state;
mod up;
pub mod wheel;

#[cfg(test)]
mod tests;

pub use acct::{AcctRecord, AcctSink, Attr, AttrKind, CloseReason, ATTR_MAX};
pub use config::{ExhaustionReply, GwConfig, GwTimeouts, Nat64Cfg, RssSteer, SynProxy};
pub use keys::{key_owner, KeyLoc, KeySpace};
pub use rss::{toeplitz, ToeplitzTable};
pub use tables::{
    Group, GroupIdx, GwTables, Member, Member6, Neighbours, Policy, ServiceId, Services, Sessions,
    SubscriberAuth, Vip, Vip6, SESSION6_PREFIX_LEN,
};
pub use tcp_state::{Dir, FlowState};

use crate::hw::{HeapAlloc, NoPrefetch, Prefetch, TableAlloc};
use crate::runtime::{Clock, Meter, NoClock, Stage};
use crate::verdict::{DropReason, Pkt, Verdict, WorkerCounters, MAX_BURST};
use crate::wire::{self, ip_proto};
use balance::Balancer;
use entry::{flag, Cold, Hot, NONE};
use free_stack::FreeStack;
use keys::Rotation;
use limit::SubLimits;
use meta::{Kind, Meta};
use nh::{LbMacs, NextHops};
use rss::Steer;
use table::FlowTable;
use tcp_state::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use wheel::Wheel;

/// Plain per-worker counters of the GW stage (drops are in
/// `WorkerCounters`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GwCounters {
    /// Up packets forwarded (`Tx` on `server_port`), late ones included.
    pub up_pkts: u64,
    /// Down packets forwarded (`Tx` on `access_port`), late ones included.
    pub down_pkts: u64,
    /// Connections created (TCP, UDP, ICMP), revived ones included.
    pub new_flows: u64,
    /// Connections closed by FIN both ways.
    pub closed_fin: u64,
    /// Connections closed by RST.
    pub closed_rst: u64,
    /// Connections ended by idle timeout.
    pub expired: u64,
    /// Connections still open when the instance stopped.
    pub closed_shutdown: u64,
    /// SYNs refused by authorization and answered with a RST.
    pub rst_unauthorized: u64,
    /// SYNs refused for exhaustion (no key, no table entry) and answered
    /// with a RST (`exhaustion_reply = Rst`): the sum of the next two.
    pub rst_exhausted: u64,
    /// Of those, refused for lack of a key (the pool's ports to that
    /// destination all taken; a drop would be `nat_pool_exhausted`).
    pub rst_pool_exhausted: u64,
    /// Of those, refused for a full flow table (`flow_table_full`).
    pub rst_table_full: u64,
    /// Accounting records accepted by the sink.
    pub acct_records: u64,
    /// Accounting records lost because the sink was full.
    pub acct_queue_full: u64,
    /// Down packets handed to the key's owner worker.
    pub handoffs: u64,
    /// Packets for the management thread (health-probe answers).
    pub control: u64,
    /// Packets of a closed connection translated during its hold.
    pub late_pkts: u64,
    /// Connections on hold whose up tuple a new SYN took with a new
    /// binding (their server could not be kept).
    pub replaced: u64,
    /// Bindings on hold revived by a SYN of the same subscriber 4-tuple
    /// (same key, same server).
    pub revived: u64,
    /// Entries freed at the end of their hold.
    pub keys_recycled: u64,
    /// Up packets that came from a different LB MAC than the previous one.
    pub lb_moves: u64,
    /// Connections re-pointed at their subscriber's new entry point by a
    /// packet of another of its connections ([`moves`]).
    pub lb_repointed: u64,
    /// Balanced connections whose server count could not be tracked
    /// (balancer count table full).
    pub load_untracked: u64,
    /// First payloads whose Host/SNI found the attribute pool full.
    pub attr_full: u64,
    /// SYNs going up whose MSS option was lowered to `mss_clamp_up`.
    pub mss_clamped_up: u64,
    /// SYN-ACKs going down whose MSS option was lowered to `mss_clamp_down`.
    pub mss_clamped_down: u64,
    /// Segments going down whose window field was lowered.
    pub window_capped: u64,
    /// Connections (RSS steering on) whose key's down packets land on this
    /// worker's RX queue.
    pub rss_steered: u64,
    /// Connections (RSS steering on) for which no candidate key did.
    pub rss_miss: u64,
    /// NAT64 connections created (also in `new_flows`).
    pub nat64_flows: u64,
    /// NAT66 connections created (also in `new_flows`).
    pub nat66_flows: u64,
    /// ICMP errors about a connection (NAT44 or NAT64) sent to the
    /// subscriber.
    pub icmp_err_down: u64,
    /// ICMP errors about a connection (NAT44 or NAT64) sent to the server.
    pub icmp_err_up: u64,
    /// Echo requests to a VIP answered by the gateway (`answer_ping`).
    pub vip_echo_replies: u64,
    /// NAT64 down packets with DF too big for the IPv6 MTU, answered with
    /// an ICMPv4 Fragmentation Needed.
    pub frag_needed: u64,
    /// Connections let through untracked by the subscriber limits (both
    /// buckets of the subscriber table full; see [`limit`]).
    pub sub_untracked: u64,
    /// SYNs answered by the SYN proxy with a cookie ([`synproxy`]).
    pub syncookies_sent: u64,
    /// ACKs with a valid cookie: connections the SYN proxy opened toward a
    /// server (the invalid ones are the `syncookie_invalid` drops).
    pub syncookies_valid: u64,
    /// Early segments of proxied connections kept and sent to the server
    /// with its handshake.
    pub synproxy_stashed: u64,
    /// SYNs sent to a silent server again (from the subscriber's
    /// retransmission carrying the cookie).
    pub synproxy_resyn: u64,
    /// Proxied connections whose server stayed silent for the SYN timeout:
    /// the subscriber got a RST.
    pub synproxy_server_silent: u64,
    /// Data of a subscriber's cookie ACK that could not be kept (the pool
    /// full, a frame over 1536 bytes, an 802.1Q-tagged or IP-options frame
    /// the fast parse does not take) or given back; the subscriber
    /// retransmits it.
    pub synproxy_stash_miss: u64,
    /// First fragments whose translation was kept for their datagram
    /// ([`frag`]).
    pub frag_first: u64,
    /// Later fragments translated by their datagram's context (held ones
    /// released included; also in `up_pkts` / `down_pkts`).
    pub frag_translated: u64,
    /// Fragments held because they came before their datagram's first one.
    pub frag_held: u64,
}

/// A view of one connection (tests, `pgw` diagnostics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowView {
    pub state: FlowState,
    pub proto: u8,
    pub sub_ip: [u8; 4],
    pub sub_port: u16,
    pub dst_ip: [u8; 4],
    pub dst_port: u16,
    pub srv_ip: [u8; 4],
    pub srv_port: u16,
    pub lb_mac: [u8; 6],
    pub device_id: u64,
    pub group: GroupIdx,
    pub service: u8,
    pub up_pkts: u64,
    pub up_bytes: u64,
    pub down_pkts: u64,
    pub down_bytes: u64,
    pub flags: u8,
}

/// The GW stage of one worker. Owned and mutated only by that worker.
/// Generic over where its tables live (`A`: the heap by default, hugepages
/// in the engine), so that table accesses compile to slice accesses.
pub struct GwWorker<A: TableAlloc = HeapAlloc> {
    id: u16,
    cfg: GwConfig,
    ks: KeySpace,
    hot: A::Mem<Hot>,
    cold: A::Mem<Cold>,
    /// IPv6 subscribers (NAT64, NAT66), VIPs and servers (NAT66), by entry;
    /// empty when the profile has no NAT64 / NAT66.
    sub6: A::Mem<[u8; 16]>,
    vip6: A::Mem<[u8; 16]>,
    srv6: A::Mem<[u8; 16]>,
    up: FlowTable<A>,
    /// First entry of each key's chain (key index → entry).
    key_head: A::Mem<u32>,
    /// Per pool address: the rotation over this worker's ports.
    rot: Vec<Rotation>,
    /// Free entries, threaded through `Cold::next`.
    free: u32,
    in_use: u32,
    held: u32,
    wheel: Wheel,
    bal: Balancer,
    nh: NextHops,
    lbs: LbMacs,
    /// The Host/SNI attribute pool and its free slots.
    attrs: A::Mem<Attr>,
    attr_free: FreeStack<A>,
    rss: Option<Steer>,
    /// Per-subscriber connection limits (this worker's share).
    limits: SubLimits<A>,
    /// SYN proxy: per-entry state (empty with the proxy off), the early
    /// segments kept and their free stack, the cookie key.
    px: A::Mem<synproxy::Px>,
    stash: A::Mem<[u8; synproxy::STASH_BYTES]>,
    stash_free: FreeStack<A>,
    cookie_key: synproxy::CookieKey,
    /// Half-open TCP connections (no ACK from the subscriber yet), those
    /// to each VIP address, and the worker's share of `SynProxy::Auto`'s
    /// threshold (per VIP address).
    half_open: u32,
    vip_half_open: synproxy::half_open::VipHalfOpen<A>,
    half_open_share: u32,
    /// Fragments: reassembly contexts, held fragments, the outbox.
    frags: frag::Frags<A>,
    /// IPv4 Identification of the next packet translated to IPv4 (a
    /// per-worker counter, RFC 6864; workers start 0x9e37 apart).
    xlat_ident: u16,
    /// The burst in progress.
    meta: [Meta; MAX_BURST],
    /// Connections this burst closed, for the accounting lap.
    closing: [(u32, CloseReason); MAX_BURST],
    nclosing: usize,
    /// Connections the burst in progress opened (or tried to).
    opened: usize,
    /// New connections refused: the instance drains.
    draining: bool,
    pub counters: GwCounters,
}

/// `now` (ms, u64) at a time `t` kept mod 2^32 that is at most 2^32 ms old.
#[inline(always)]
fn t64(now: u64, t: u32) -> u64 {
    now.saturating_sub((now as u32).wrapping_sub(t) as u64)
}

/// The last 4 bytes of an IPv6 address.
#[inline(always)]
fn last4(a: &[u8; 16]) -> [u8; 4] {
    [a[12], a[13], a[14], a[15]]
}

#[inline(always)]
fn addr16(f: &[u8], at: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&f[at..at + 16]);
    a
}

impl GwWorker<HeapAlloc> {
    /// Worker `id` of `cfg.workers`, its tables on the heap.
    pub fn new(cfg: &GwConfig, id: u16) -> Result<GwWorker, String> {
        Self::with_alloc(cfg, id, &HeapAlloc)
    }
}

impl<A: TableAlloc> GwWorker<A> {
    /// Worker `id` of `cfg.workers`; allocates everything it will ever use
    /// from `alloc` (the engine calls this on the worker's own lcore, so
    /// the memory is first touched there).
    pub fn with_alloc(cfg: &GwConfig, id: u16, alloc: &A) -> Result<GwWorker<A>, String> {
        cfg.validate()?;
        if id >= cfg.workers {
            return Err(format!(
                "gw worker {id}: only {} workers configured",
                cfg.workers
            ));
        }
        let ks = KeySpace::new(cfg);
        let cap = cfg.max_flows_per_worker as usize;
        let v6 = cfg.nat64.is_some() || !cfg.pool6.is_empty();
        let n66 = !cfg.pool6.is_empty();
        let mut cold = alloc.alloc("gw entries (cold)", cap, Cold::EMPTY)?;
        // The free list: every entry, in order.
        for (i, c) in cold.iter_mut().enumerate() {
            c.next = if i + 1 < cap { i as u32 + 1 } else { NONE };
        }
        let attr_slots = if cfg.attr_slots == 0 {
            (cap / 8).max(64)
        } else {
            cfg.attr_slots as usize
        };
        let attr_free = FreeStack::new(alloc, "gw attribute free list", attr_slots)?;
        let (px_n, stash_n) = match cfg.syn_proxy {
            SynProxy::Off => (0, 0),
            _ => (cap, synproxy::STASH_SLOTS.min(cap)),
        };
        let stash_free = FreeStack::new(alloc, "gw SYN proxy early-segment free list", stash_n)?;
        let stride = if cfg.rss.is_some() {
            rss::key_stride(ks.per_worker)
        } else {
            1
        };
        Ok(GwWorker {
            id,
            hot: alloc.alloc("gw entries (hot)", cap, Hot::EMPTY)?,
            cold,
            sub6: alloc.alloc("gw IPv6 subscribers", if v6 { cap } else { 0 }, [0u8; 16])?,
            vip6: alloc.alloc("gw IPv6 VIPs", if n66 { cap } else { 0 }, [0u8; 16])?,
            srv6: alloc.alloc("gw IPv6 servers", if n66 { cap } else { 0 }, [0u8; 16])?,
            up: FlowTable::new(alloc, cap)?,
            key_head: alloc.alloc("gw key chains", ks.keys_per_worker() as usize, NONE)?,
            rot: vec![Rotation::new(ks.per_worker, stride); cfg.pool.len()],
            free: if cap > 0 { 0 } else { NONE },
            in_use: 0,
            held: 0,
            wheel: Wheel::new(0),
            bal: Balancer::new(cfg.max_servers),
            nh: NextHops::new(cfg.max_servers, cfg.server_next_hop_mac),
            lbs: LbMacs::default(),
            attrs: alloc.alloc("gw attributes (Host/SNI)", attr_slots, Attr::default())?,
            attr_free,
            rss: cfg.rss.as_ref().map(|r| Steer::new(r, &cfg.pool, id)),
            limits: SubLimits::new(
                alloc,
                cfg.max_flows_per_worker,
                cfg.max_conns_per_subscriber,
                cfg.new_conns_per_subscriber_per_s,
                cfg.workers,
                cfg.hash_seed,
            )?,
            px: alloc.alloc("gw SYN proxy state", px_n, synproxy::Px::EMPTY)?,
            stash: alloc.alloc(
                "gw SYN proxy early segments",
                stash_n,
                [0u8; synproxy::STASH_BYTES],
            )?,
            stash_free,
            cookie_key: synproxy::CookieKey::new(cfg.cookie_secret),
            half_open: 0,
            vip_half_open: synproxy::half_open::VipHalfOpen::new(alloc)?,
            half_open_share: match cfg.syn_proxy {
                SynProxy::Auto { half_open } => half_open.div_ceil(cfg.workers as u32),
                _ => 0,
            },
            frags: frag::Frags::new(alloc, cfg)?,
            xlat_ident: id.wrapping_mul(0x9e37),
            meta: [Meta::default(); MAX_BURST],
            closing: [(NONE, CloseReason::Fin); MAX_BURST],
            nclosing: 0,
            opened: 0,
            draining: false,
            counters: GwCounters::default(),
            ks,
            cfg: cfg.clone(),
        })
    }

    /// Drain (SIGTERM): refuse new connections (`draining` drops), keep
    /// serving the established ones.
    pub fn set_draining(&mut self, on: bool) {
        self.draining = on;
    }

    pub fn id(&self) -> u16 {
        self.id
    }
    pub fn config(&self) -> &GwConfig {
        &self.cfg
    }
    /// Open connections: O(1) (every connection is created once and closed
    /// once, each counted); tests check it against the entries.
    pub fn open_flows(&self) -> usize {
        let c = &self.counters;
        let n =
            (c.new_flows - c.closed_fin - c.closed_rst - c.expired - c.closed_shutdown) as usize;
        #[cfg(test)]
        assert_eq!(
            n,
            self.hot.iter().filter(|h| h.state.is_open()).count(),
            "open-flow count drifted from the entries"
        );
        n
    }
    /// Entries in use: open connections and connections on hold.
    pub fn keys_in_use(&self) -> u32 {
        self.in_use
    }
    /// Connections on hold.
    pub fn held(&self) -> u32 {
        self.held
    }
    /// Entries (connections, open or on hold) this worker can hold.
    pub fn capacity(&self) -> u32 {
        self.hot.len() as u32
    }
    /// Keys this worker owns.
    pub fn keys_total(&self) -> u32 {
        self.key_head.len() as u32
    }
    /// Bytes of the worker's tables.
    pub fn table_bytes(&self) -> usize {
        use core::mem::size_of;
        self.hot.len() * size_of::<Hot>()
            + self.cold.len() * size_of::<Cold>()
            + (self.sub6.len() + self.vip6.len() + self.srv6.len()) * 16
            + self.up.bytes()
            + self.key_head.len() * 4
            + self.attrs.len() * size_of::<Attr>()
            + self.attr_free.bytes()
            + self.limits.bytes()
            + self.px.len() * size_of::<synproxy::Px>()
            + self.stash.len() * synproxy::STASH_BYTES
            + self.stash_free.bytes()
            + self.frags.bytes()
    }

    /// Open connections of subscriber `sub` this worker counts against
    /// its limits (0 with no limit set).
    pub fn subscriber_conns(&self, sub: limit::SubKey) -> u32 {
        self.limits.conns(sub)
    }

    fn view(&self, e: u32) -> FlowView {
        let (h, c) = (&self.hot[e as usize], &self.cold[e as usize]);
        FlowView {
            state: h.state,
            proto: h.proto,
            sub_ip: h.sub_ip,
            sub_port: h.sub_port,
            dst_ip: h.dst_ip,
            dst_port: h.dst_port,
            srv_ip: h.srv_ip,
            srv_port: h.srv_port,
            lb_mac: self.lbs.get(h.lb),
            device_id: c.device_id,
            group: c.group,
            service: c.service,
            up_pkts: h.up_packets(),
            up_bytes: h.up_bytes,
            down_pkts: h.down_packets(),
            down_bytes: h.down_bytes,
            flags: h.flags,
        }
    }

    /// The connections on key (pool address, port), newest first, if this
    /// worker owns the key.
    pub fn flows_by_key(&self, addr: [u8; 4], port: u16) -> Vec<FlowView> {
        let mut v = Vec::new();
        if let KeyLoc::Key {
            owner,
            pool_idx,
            off,
        } = self.ks.locate(addr, port)
        {
            if owner == self.id {
                let mut e = self.key_head[self.ks.key_index(pool_idx, off) as usize];
                while e != NONE {
                    v.push(self.view(e));
                    e = self.hot[e as usize].key_next;
                }
            }
        }
        v
    }

    /// The newest connection on key (pool address, port).
    pub fn flow_by_key(&self, addr: [u8; 4], port: u16) -> Option<FlowView> {
        self.flows_by_key(addr, port).into_iter().next()
    }

    /// The IPv6 subscriber of the newest NAT64 connection on key (pool
    /// address, port).
    pub fn subscriber6(&self, addr: [u8; 4], port: u16) -> Option<[u8; 16]> {
        let KeyLoc::Key {
            owner,
            pool_idx,
            off,
        } = self.ks.locate(addr, port)
        else {
            return None;
        };
        if owner != self.id {
            return None;
        }
        let e = self.key_head[self.ks.key_index(pool_idx, off) as usize];
        (e != NONE && self.hot[e as usize].has(flag::V6)).then(|| self.sub6[e as usize])
    }

    /// Process one frame (a burst of one). Drops are counted in `c`.
    pub fn process(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        now_ms: u64,
        acct: &mut impl AcctSink,
        c: &mut WorkerCounters,
    ) -> Verdict {
        let mut out = [Verdict::Drop(DropReason::NoRoute)];
        let mut m = Meter::new(NoClock);
        self.process_burst(
            t,
            core::slice::from_mut(pkt),
            1,
            &mut out,
            now_ms,
            acct,
            c,
            &mut m,
            &NoPrefetch,
        );
        out[0]
    }

    /// Process the packets of `pkts` selected by the bit mask `sel` (bit i:
    /// `pkts[i]`), writing their verdicts in `out`; stages lap `m` as they
    /// finish the burst. Drops are counted in `c` under their reason.
    #[allow(clippy::too_many_arguments)]
    pub fn process_burst<C: Clock, P: Prefetch>(
        &mut self,
        t: &GwTables,
        pkts: &mut [Pkt<'_>],
        sel: u64,
        out: &mut [Verdict],
        now: u64,
        acct: &mut impl AcctSink,
        c: &mut WorkerCounters,
        m: &mut Meter<C>,
        pf: &P,
    ) {
        let n = pkts.len().min(MAX_BURST);
        let sel = if n == 64 {
            sel
        } else {
            sel & ((1u64 << n) - 1)
        };
        // 1. parse
        let mut live = 0u64;
        let mut cnt = 0;
        for i in Bits(sel) {
            cnt += 1;
            // The headers of a packet a few ahead (as l3fwd does).
            if let Some(b) = pkts.get(i + 4).and_then(|p| p.frame().first()) {
                pf.read(b);
            }
            match self.classify(t, &mut pkts[i], i, now) {
                Ok(meta) => {
                    self.meta[i] = meta;
                    live |= 1 << i;
                }
                Err(v) => {
                    self.meta[i].kind = Kind::None;
                    out[i] = v;
                }
            }
        }
        m.lap(Stage::Parse, cnt);
        if live != 0 {
            // 2. lookups, 3. opens, 4. rewrites, 5. accounting
            let looked = live.count_ones() as usize;
            let live = self.lookup(pkts, live, out, pf);
            m.lap(Stage::GwLookup, looked);
            self.opened = 0;
            let live = self.resolve(t, pkts, live, out, now, acct, c);
            m.lap(Stage::GwOpen, self.opened);
            let rw = live.count_ones() as usize;
            self.rewrite(t, pkts, live, out, now, c);
            m.lap(Stage::Rewrite, rw);
            let closed = self.account(now, acct);
            m.lap(Stage::Accounting, closed);
        }
        for i in Bits(sel) {
            match out[i] {
                Verdict::Drop(r) => c.drop(r),
                Verdict::Handoff { .. } => self.counters.handoffs += 1,
                Verdict::Control => self.counters.control += 1,
                Verdict::Tx { .. } | Verdict::Consumed => {}
            }
        }
    }

    /// The lookup stage: hash and prefetch, prefetch the entries the tags
    /// or chain heads point at, then compare. Down packets of another
    /// worker's key, or to no key, get their verdict here. The packets
    /// still to handle.
    #[inline]
    fn lookup<P: Prefetch>(
        &mut self,
        pkts: &[Pkt<'_>],
        mut live: u64,
        out: &mut [Verdict],
        pf: &P,
    ) -> u64 {
        for i in Bits(live) {
            let k = self.meta[i].kind;
            if k.is_up() {
                self.up_hash(&pkts[i], i, pf);
            } else if let Err(v) = self.down_locate(i, pf) {
                out[i] = v;
                live &= !(1 << i);
            }
        }
        for i in Bits(live) {
            let mi = &mut self.meta[i];
            let e = if mi.kind.is_up() {
                self.up.candidate(mi.h).unwrap_or(NONE)
            } else {
                let e = self.key_head[mi.aux as usize];
                mi.e = e;
                e
            };
            if e != NONE {
                pf.read(&self.hot[e as usize]);
            }
        }
        for i in Bits(live) {
            let e = if self.meta[i].kind.is_up() {
                self.up_find(&pkts[i], &self.meta[i])
            } else {
                self.down_find(&pkts[i], &self.meta[i])
            };
            self.meta[i].e = e;
        }
        live
    }

    /// The open stage: misses that start a connection, lazy idle expiry,
    /// revivals; the packets left to rewrite (each with its entry). `c`
    /// counts the starts refused by the subscriber limits and answered by a
    /// RST (a `Tx` verdict, yet a refusal under its reason).
    #[allow(clippy::too_many_arguments)]
    fn resolve(
        &mut self,
        t: &GwTables,
        pkts: &mut [Pkt<'_>],
        mut live: u64,
        out: &mut [Verdict],
        now: u64,
        acct: &mut impl AcctSink,
        c: &mut WorkerCounters,
    ) -> u64 {
        for i in Bits(live) {
            let r = if self.meta[i].kind.is_up() {
                self.up_resolve(t, &mut pkts[i], i, now, acct, c)
            } else {
                self.down_resolve(&mut pkts[i], i, now, acct)
            };
            if let Err(v) = r {
                out[i] = v;
                live &= !(1 << i);
            }
        }
        live
    }

    /// The rewrite stage over the packets with an entry (`c`: drops of
    /// held fragments released by a first fragment).
    fn rewrite(
        &mut self,
        t: &GwTables,
        pkts: &mut [Pkt<'_>],
        live: u64,
        out: &mut [Verdict],
        now: u64,
        c: &mut WorkerCounters,
    ) {
        for i in Bits(live) {
            out[i] = if self.meta[i].kind.is_up() {
                self.forward_up(t, &mut pkts[i], i, now)
            } else {
                // (a move of its subscriber seen on another connection
                // re-points it first)
                self.follow_moves(t, self.meta[i].e);
                self.forward_down(&mut pkts[i], i, now)
            };
            if self.meta[i].frag {
                out[i] = self.first_fragment(&pkts[i], i, out[i], now, c);
            }
        }
    }

    /// The parse stage for frame `i` of the burst: its [`Meta`], or its
    /// verdict.
    fn classify(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        i: usize,
        now: u64,
    ) -> Result<Meta, Verdict> {
        const DROP: fn(DropReason) -> Verdict = Verdict::Drop;
        if let Some(mut m) = meta::fast_v4(pkt.frame()) {
            return self.direct_v4(t, pkt, &mut m).map(|_| m);
        }
        let p = match wire::parse(pkt.frame()) {
            Ok(p) => p,
            // (ICMP errors, among others: those about connections are translated)
            Err(DropReason::UnsupportedProto) => {
                return Err(self.icmp_error(t, pkt, now));
            }
            Err(DropReason::Fragment) => return self.fragment(t, pkt, i, now),
            // (a chained frame's IP packet does not end in its first buffer)
            Err(_) if pkt.tail() > 0 => return self.classify_chained(t, pkt),
            Err(r) => return Err(DROP(r)),
        };
        let mut m = Meta::from_parsed(&p);
        if p.is_ipv6() {
            self.direct_v6(t, pkt, &p, &mut m)?;
            return Ok(m);
        }
        if !p.is_ipv4() {
            // ARP belongs to the responder before this stage.
            return Err(DROP(DropReason::UnsupportedEthertype));
        }
        self.direct_v4(t, pkt, &mut m)?;
        Ok(m)
    }

    /// The parse stage for a chained frame (headers in its first buffer):
    /// TCP and UDP of NAT44 and NAT66, whose rewrites touch only headers.
    /// Fragments, ICMP and NAT64 (whose paths hold, quote or move the
    /// payload) are refused as `oversize`, as a frame too long would be.
    #[cold]
    #[inline(never)]
    fn classify_chained(&mut self, t: &GwTables, pkt: &mut Pkt<'_>) -> Result<Meta, Verdict> {
        const OVERSIZE: Verdict = Verdict::Drop(DropReason::Oversize);
        let (p, beyond) = match wire::parse_chained(pkt.frame(), pkt.tail()) {
            Ok(x) => x,
            Err(DropReason::Fragment | DropReason::UnsupportedProto) => return Err(OVERSIZE),
            Err(r) => return Err(Verdict::Drop(r)),
        };
        if p.proto != PROTO_TCP && p.proto != PROTO_UDP {
            return Err(OVERSIZE);
        }
        let mut m = Meta::from_parsed(&p);
        m.tail = beyond as u16;
        if p.is_ipv6() {
            self.direct_v6(t, pkt, &p, &mut m)?;
            if m.kind == Kind::Up64 {
                return Err(OVERSIZE);
            }
        } else if p.is_ipv4() {
            self.direct_v4(t, pkt, &mut m)?;
        } else {
            return Err(Verdict::Drop(DropReason::UnsupportedEthertype));
        }
        Ok(m)
    }

    /// Direction and checks of an IPv6 packet `p` (TCP, UDP or ICMPv6
    /// echo; its L4 header at `p.l4_off`): NAT66 down, NAT64 up, an echo
    /// request to an IPv6 VIP (answered here), NAT66 up.
    #[inline]
    fn direct_v6(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        p: &wire::Parsed,
        m: &mut Meta,
    ) -> Result<(), Verdict> {
        const DROP: fn(DropReason) -> Verdict = Verdict::Drop;
        let port = pkt.port;
        let dst_mac: [u8; 6] = pkt.frame()[0..6].try_into().unwrap_or([0; 6]);
        // NAT66 down: a server's reply to a pool6 address.
        if port == self.cfg.server_port {
            if let Some(i) = self.cfg.pool6.iter().position(|a| *a == p.dst) {
                if dst_mac != self.cfg.server_mac {
                    return Err(DROP(DropReason::NotForUs));
                }
                if p.proto != PROTO_TCP && p.proto != PROTO_UDP {
                    // (ICMPv6 to a pool6 address: the gateway itself is asked)
                    return Err(Verdict::Control);
                }
                m.kind = Kind::Down66;
                m.aux = i as u32;
                return Ok(());
            }
        }
        if port != self.cfg.access_port {
            return Err(DROP(DropReason::UnsupportedEthertype));
        }
        if let Some(dst4) = self
            .cfg
            .nat64
            .as_ref()
            .and_then(|n| n.prefix.extract(&p.dst))
        {
            if dst_mac != self.cfg.access_mac {
                return Err(DROP(DropReason::NotForUs));
            }
            // The flow keeps the IPv4 protocol number (its down packets' one).
            if p.proto == ip_proto::ICMPV6 {
                if p.icmp_type != wire::icmp::v6::ECHO_REQUEST {
                    return Err(DROP(DropReason::UnsupportedProto));
                }
                m.proto = PROTO_ICMP;
                m.dport = 0;
            }
            if p.ttl <= 1 {
                return Err(DROP(DropReason::TtlExceeded));
            }
            m.kind = Kind::Up64;
            m.dst = dst4;
            return Ok(());
        }
        if p.proto == ip_proto::ICMPV6
            && p.icmp_type == wire::icmp::v6::ECHO_REQUEST
            && self.cfg.answer_ping
            && t.services.is_vip6(&p.dst)
        {
            if dst_mac != self.cfg.access_mac {
                return Err(DROP(DropReason::NotForUs));
            }
            return Err(self.vip_echo6(pkt, m));
        }
        if !self.cfg.pool6.is_empty() && t.services.has_vips6() {
            if let Some(g) = t.services.vip6(&p.dst, p.dst_port) {
                if dst_mac != self.cfg.access_mac {
                    return Err(DROP(DropReason::NotForUs));
                }
                if p.proto != PROTO_TCP && p.proto != PROTO_UDP {
                    return Err(DROP(DropReason::UnsupportedProto));
                }
                if p.ttl <= 1 {
                    return Err(DROP(DropReason::TtlExceeded));
                }
                m.kind = Kind::Up66;
                m.aux = g as u32;
                return Ok(());
            }
        }
        Err(DROP(DropReason::UnsupportedEthertype))
    }

    /// Direction and checks of an IPv4 packet (up or down). An echo
    /// request to a VIP with `answer_ping` is answered here (not a
    /// fragment's: dropped as `fragment`).
    #[inline]
    fn direct_v4(&mut self, t: &GwTables, pkt: &mut Pkt<'_>, m: &mut Meta) -> Result<(), Verdict> {
        self.direct_v4_icmp(t, pkt, m, true)
    }

    /// [`GwWorker::direct_v4`]; `icmp`: whether an ICMP packet's type is
    /// looked at (not for a later fragment, which has no ICMP header).
    #[inline(always)]
    fn direct_v4_icmp(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        m: &mut Meta,
        icmp: bool,
    ) -> Result<(), Verdict> {
        let port = pkt.port;
        let f = pkt.frame();
        let down = port == self.cfg.server_port
            && (port != self.cfg.access_port || self.ks.pool_index(m.dst).is_some());
        if down {
            if f[0..6] != self.cfg.server_mac {
                return Err(Verdict::Drop(DropReason::NotForUs));
            }
            if icmp && m.proto == PROTO_ICMP && m.icmp_type != wire::icmp::v4::ECHO_REPLY {
                // An echo request to a pool address: the gateway itself is
                // asked (not in fragments).
                if m.frag {
                    return Err(Verdict::Drop(DropReason::Fragment));
                }
                return Err(Verdict::Control);
            }
            m.kind = Kind::Down4;
            Ok(())
        } else if port == self.cfg.access_port {
            if f[0..6] != self.cfg.access_mac {
                return Err(Verdict::Drop(DropReason::NotForUs));
            }
            if icmp && m.proto == PROTO_ICMP {
                if m.icmp_type != wire::icmp::v4::ECHO_REQUEST {
                    return Err(Verdict::Drop(DropReason::UnsupportedProto));
                }
                if self.cfg.answer_ping && t.services.is_vip(m.dst) {
                    if m.frag {
                        return Err(Verdict::Drop(DropReason::Fragment));
                    }
                    return Err(self.vip_echo(pkt, m));
                }
                m.dport = 0;
            }
            if m.ttl <= 1 {
                return Err(Verdict::Drop(DropReason::TtlExceeded));
            }
            m.kind = Kind::Up4;
            Ok(())
        } else {
            Err(Verdict::Drop(DropReason::UnexpectedPort))
        }
    }

    /// The next hop MAC of entry `e` (its slot resolved again after a new
    /// neighbour table).
    #[inline(always)]
    fn next_hop(&mut self, t: &GwTables, e: u32) -> Option<[u8; 6]> {
        let slot = self.hot[e as usize].nh;
        self.nh.mac(&t.neighbours, slot)
    }

    #[inline(always)]
    fn idle_expired(&self, h: &Hot, now: u64) -> bool {
        (now as u32).wrapping_sub(h.last_ms) as u64
            > tcp_state::idle_timeout_ms(h.state, h.proto, &self.cfg.timeouts)
    }
}

/// The set bits of a mask, lowest first.
#[derive(Clone, Copy)]
struct Bits(u64);

impl Iterator for Bits {
    type Item = usize;
    #[inline(always)]
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let i = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(i)
    }
}
