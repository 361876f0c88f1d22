//! The GW stage (FIG. 16–29, steps S31–S117, S61–S67, S70–S80): IPv4
//! subscribers, and IPv6 subscribers by NAT64 (below).
//!
//! Per packet, on the worker that received it, with no lock, allocation,
//! log or clock read:
//!
//! * **Up** (arrives on `access_port`, destination MAC ours): find the flow
//!   by its original 5-tuple in the worker's up table. A TCP SYN (no ACK), a
//!   first UDP datagram or a first ICMP echo request with no flow starts a
//!   connection: session check (S62–S63), representative address → group →
//!   service (S41, FIG. 27), authorization (S65–S66; refused TCP is answered
//!   with a RST built in place, UDP/ICMP dropped), server choice by the
//!   group's policy (S43), NAT key allocation (S33), entry insert. Then every
//!   up packet of the flow is rewritten: source = pool address : key port
//!   (ICMP: the identifier = the key port), destination = the server (or the
//!   unchanged destination when it is not a representative address),
//!   Ethernet toward the server's neighbour MAC, TTL − 1, IPv4 and L4
//!   checksums updated incrementally (RFC 1624), and sent on `server_port`.
//! * **Down** (arrives on `server_port`, destination a pool address): the key
//!   (pool address, destination port / ICMP identifier) gives the owner
//!   worker by arithmetic; another worker's key → `Handoff` (frame
//!   untouched); else the key table is indexed directly. Source = the
//!   original destination (the VIP), destination = the subscriber, Ethernet
//!   toward the LB MAC learned from the latest up packet, sent on
//!   `access_port` (S101–S117).
//! * TCP state is tracked per flow ([`tcp_state`]); a closed connection's
//!   record goes to the [`AcctSink`] once, its key rests on hold
//!   (`close_hold_ms`) and is then reused last ([`keys`]).
//!
//! Not this stage's job: ARP (the engine runs `arp::ArpResponder` first),
//! IPv6 other than NAT64 and NAT66 (`unsupported_ethertype`), IP fragments
//! (`fragment`), ICMP errors of IPv4 connections and other protocols
//! (`unsupported_proto`).
//! Checksums are not verified: an incremental update keeps a bad checksum
//! bad, so the end host still discards a corrupted packet. VLAN tags pass
//! through unchanged. Authorization is checked when a connection starts
//! only; a flow keeps its server for its life even if the server is later
//! marked down.

//!
//! ## NAT64 (`GwConfig::nat64`, off by default)
//! RFC 6146-style stateful NAT64 on the same keys as IPv4 NAT, with the
//! header translation of [`crate::xlat`] (RFC 7915) and the address
//! mapping of RFC 6052.
//! * **Up**: an IPv6 frame on `access_port` whose destination is under the
//!   prefix; the IPv4 destination is `prefix.extract(dst)` and everything
//!   else is as for IPv4: a VIP is balanced to its group, the session and
//!   authorization are those of the subscriber's IPv6 prefix
//!   ([`Sessions::get6`], /64 by default; `require_session` applies; a
//!   refused TCP SYN is answered with a RST over IPv6,
//!   [`rst::syn_to_rst_v6`]), the key comes from the same FIFO (same pool
//!   addresses and ports). The up table hashes (IPv6 source, embedded IPv4
//!   destination, ports, protocol) and its match compares the subscriber's
//!   16 bytes kept in a side table indexed by key (the flow entry keeps its
//!   160 bytes: a `v6` flag sits in former padding). Per packet:
//!   [`xlat::v6_to_v4`] (source = pool address, destination = server,
//!   Identification from a per-worker counter; it decrements the hop
//!   limit), then the ports (key port, server port; echo identifier = key
//!   port) with incremental checksums, then the MACs. The IPv6 destination
//!   is identified by its embedded IPv4 address: RFC 6052 ignores the u
//!   octet and suffix on receipt, and replies come from the canonical
//!   embedding ([`Prefix::embed`](crate::xlat::Prefix::embed)).
//! * **Down**: the same direct key index and handoff; then
//!   [`xlat::v4_to_v6`] with source = `prefix.embed(original IPv4
//!   destination)` and destination = the subscriber, then the ports back.
//!   A packet whose IPv6 form would exceed `mtu6` is answered with an ICMPv4
//!   Fragmentation Needed (MTU `mtu6 - 20`, [`rst::frag_needed_v4`]) when
//!   it has DF, else dropped (`too_big`: no IPv6 fragmentation).
//! * **ICMP errors** about NAT64 connections are translated both ways,
//!   the connection found from the quoted packet: an ICMPv4 error to a pool
//!   address whose quote is an up packet of ours (the key is its source;
//!   another worker's key is handed off) goes to the subscriber as ICMPv6
//!   from `prefix.embed(error source)`, quoting the subscriber's packet;
//!   an ICMPv6 error to a NAT64 address whose quote is a down packet of
//!   ours (found in the up table) goes to the server as ICMPv4 from the
//!   pool address, quoting the server's packet. Errors not matching a live
//!   connection are `no_key` (down) / `no_flow` (up), malformed quotes
//!   `xlat_icmp_inner`; errors about IPv4 connections stay
//!   `unsupported_proto`. Errors are not accounted to the connection.
//! * MSS clamping applies to NAT64 SYNs (up, IPv4 by then) and SYN-ACKs
//!   (down, IPv6 by then) alike; since IPv6 headers are 20 bytes longer,
//!   set `mss_clamp_down` to the IPv6 link MTU − 60.
//! * Accounting: the record carries `subscriber_ip6`; byte counts are IPv6
//!   lengths (see [`acct`]).
//! * Not done: IPv6 fragments, IPv4 fragmentation
//!   of up packets (only when `mtu4 < mtu6 - 20`: dropped as `too_big`),
//!   neighbour discovery (the engine's job, as ARP).
//!
//! ## NAT66 (`GwConfig::pool6`, off while empty)
//! IPv6 subscribers to IPv6 VIPs ([`Services::with_v6`]: [`Vip6`], and the
//! members' IPv6 addresses as [`Member6`]; a member keeps its IPv4 `ip` as
//! its health and least-connections identity), on the same keys as IPv4:
//! `pool6[i]` is paired with `pool[i]` (validated: as many), so key
//! (`pool[i]`, port) of a NAT66 connection leaves from (`pool6[i]`, port)
//! and the owner arithmetic and the key FIFO are shared with IPv4 and NAT64.
//! * **Up**: an IPv6 TCP/UDP frame on `access_port`, destination not under
//!   the NAT64 prefix and an IPv6 VIP (exact port, else any-port): session
//!   by IPv6 prefix ([`Sessions::get6`], `require_session` applies),
//!   authorization (TCP SYN → RST over IPv6, UDP → `unauthorized`), a member
//!   of the group with an IPv6 address (none → `no_server`), its IPv6
//!   neighbour ([`Neighbours::with_v6`], else `server_next_hop_mac`, else
//!   `no_neighbor`), a key (not RSS-steered: the steering tables hash
//!   IPv4). Per packet: source = (`pool6[i]`, key port), destination =
//!   (member, member port or the VIP's), hop limit − 1, the TCP/UDP
//!   checksum updated incrementally for both addresses (RFC 1624,
//!   [`update_addr16`](crate::wire::checksum::update_addr16)) and the ports,
//!   the MACs. The up table hashes (IPv6 source, VIP's last 4 bytes,
//!   ports, protocol); the match compares the 16-byte subscriber and VIP in
//!   side tables indexed by key (`nat66` flag in the flow entry, still 160
//!   bytes).
//! * **Down**: an IPv6 frame on `server_port` to a `pool6` address: key
//!   (`pool[i]`, port) by direct index, another worker's key handed off
//!   untouched, the server's 16 bytes and port checked, then source = VIP,
//!   destination = subscriber, ports back, toward the learned LB MAC.
//! * MSS clamping and the window cap apply as for IPv4 (IPv6 headers are
//!   20 bytes longer: clamp to the link MTU − 60).
//! * Accounting: `subscriber_ip6`; `nat_ip` is the paired IPv4 pool
//!   address (the record has no IPv6 VIP/server fields: `rep_ip` is
//!   0.0.0.0, `server_ip` the member's IPv4 identity); byte counts are IPv6
//!   lengths. Counted in `nat66_flows`.
//! * Not done for NAT66: ICMPv6 echo (`unsupported_proto`) and ICMPv6
//!   errors about NAT66 connections, RSS steering of their keys.
//!
//! ## RSS-steered keys (`GwConfig::rss`, off by default)
//! See [`rss`]: at connection start the worker takes, among the next
//! `probe` keys of its FIFO, the first whose down packets (server →
//! pool address : key port) the NIC's Toeplitz hash and RETA put on its own
//! RX queue (= its worker id), so down packets need no handoff; skipped
//! keys move to the tail (the hold is unaffected: [`keys`]). Counted as
//! `rss_steered` / `rss_miss`. Cost: a 12-KiB table per worker, and per
//! probed key 3 table loads and XORs.
//!
//! ## TCP MSS clamping and window cap (wireless ↔ wired transport)
//! All off by default; each a [`GwConfig`] field.
//! * `mss_clamp_up`: a SYN going up (no ACK) whose MSS option is larger is
//!   lowered to the clamp; `mss_clamp_down`: the same for a SYN-ACK going
//!   down to the subscriber. Only the 2 value bytes of the option and the
//!   TCP checksum change (RFC 1624 update, so a corrupted segment stays
//!   detectable); no option is added, removed or moved, and the segment
//!   keeps its length. Safe because the MSS is only a hint of the largest
//!   segment the announcing side accepts: lowering it makes the other side
//!   send smaller segments, never larger ones. A SYN without an MSS option,
//!   or with one already at or below the clamp, leaves untouched
//!   (`mss_clamped_up` / `mss_clamped_down` count the rewrites).
//! * `window_cap_down`: in every TCP segment going down, the 16-bit window
//!   field is lowered to the cap (checksum updated the same way), which
//!   bounds how much the subscriber's device may send before it hears from
//!   the server. Only for connections that did **not** negotiate window
//!   scaling: the SYN's and the SYN-ACK's Window Scale options are noted in
//!   the flow entry (`Flow::tcp_opts`, RFC 7323 §2.2: scaling is on only
//!   when both carried one), and until the SYN-ACK was seen nothing is
//!   capped (`window_capped` counts the rewrites). Rewriting a scaled
//!   window is unsafe: the field then means `window >> shift`, with the
//!   shift the server announced in its SYN-ACK; a cap written as a plain
//!   number would be multiplied by up to 2^14 at the receiver, a cap
//!   converted with the shift is only right if the gateway saw and trusted
//!   that exact handshake (a flow picked up mid-stream, a middlebox that
//!   edited the options, a retransmitted SYN-ACK with other options all
//!   break it), and a cap below 2^shift bytes rounds to a zero window that
//!   stalls the sender in persist mode. Rounding to the scale's granularity
//!   can also move the right edge of the window left between segments,
//!   which TCP says a receiver should not do (RFC 9293 §3.8.6). The Window
//!   Scale option itself is never touched: removing it from one SYN would
//!   make the two ends disagree on whether scaling is on, and the gateway
//!   would have to rescale every segment both ways for the connection's
//!   life. Cost: both checks run on SYN / SYN-ACK only (an options walk)
//!   plus, with the cap on, one byte of the flow entry per down segment
//!   (in the cache line the down counters already touch).
//!
//! ## Memory
//! Per worker, all allocated in [`GwWorker::new`]: a [`Flow`] of
//! [`FLOW_BYTES`] = 160 bytes for every key the worker owns (pool addresses
//! x its port slice), 8 bytes x `next_pow2(2 x min(keys, max_flows))` of up
//! table, 20 bytes per key of allocator rings, 8 bytes x
//! `next_pow2(2 x max_servers)` of balancer counts. Example: one pool
//! address, ports 1024–65535, 2 workers → 32 256 keys per worker → 5.2 MB
//! of entries + 0.5 MB up table + 0.65 MB rings ≈ 200 bytes per connection.
//! NAT64 adds the IPv6 subscriber side table: 16 bytes per key (0.5 MB in
//! the example, ≈ 216 bytes per connection); NAT66 (`pool6`) the same 16
//! bytes plus 32 bytes per key for the VIP and server side tables (≈ 248
//! bytes per connection); RSS steering 12 KiB per worker.
//!
//! ## Cost
//! Measured by the criterion benches of `perf/benches/stages.rs` (`gw data`
//! up and down at 1 k and 1 M flows, `gw new connection`, `xlat`) and by
//! the engine's runtime counters under `scripts/bench.sh`; the figures are
//! in `perf/RESULTS.md` and `perf/RESULTS.json`.

pub mod acct;
pub mod balance;
pub mod config;
pub mod flow;
pub mod hash;
pub mod keys;
pub mod rss;
pub mod rst;
pub mod tables;
pub mod tcp_state;

#[cfg(test)]
mod tests;

pub use acct::{AcctRecord, AcctSink, Attr, AttrKind, CloseReason, ATTR_MAX};
pub use config::{key_owner, GwConfig, GwTimeouts, KeyLoc, KeySpace, Nat64Cfg, RssSteer};
pub use flow::{Flow, FLOW_BYTES};
pub use rss::{toeplitz, ToeplitzTable};
pub use tables::{
    Group, GroupIdx, GwTables, Member, Member6, Neighbours, Policy, ServiceId, Services, Session,
    Sessions, Vip, Vip6, SESSION6_PREFIX_LEN,
};
pub use tcp_state::{Dir, FlowState};

use crate::verdict::{DropReason, Pkt, Verdict, WorkerCounters};
use crate::wire::ether::EthernetFrame;
use crate::wire::icmp::{self, IcmpPacket};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::Ipv6Packet;
use crate::wire::tcp::TcpPacket;
use crate::wire::udp::UdpPacket;
use crate::wire::{self, ip_proto, Parsed};
use crate::xlat::{self, To4, To6};
use balance::{Balancer, NO_SLOT};
use core::ops::Range;
use flow::{tcp_opts, UpTable, NO_GROUP, NO_SERVICE, UNLINKED};
use keys::KeyAlloc;
use rss::Steer;
use tcp_state::{flags, idle_timeout_ms, tcp_next, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// Held keys recycled at most per connection start (the rest by `expire`),
/// so a burst of due keys never delays one packet much.
const RECYCLE_PER_START: usize = 8;

/// Plain per-worker counters of the GW stage (drops are in
/// `WorkerCounters`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GwCounters {
    /// Up packets forwarded (`Tx` on `server_port`), late ones included.
    pub up_pkts: u64,
    /// Down packets forwarded (`Tx` on `access_port`), late ones included.
    pub down_pkts: u64,
    /// Connections created (TCP, UDP, ICMP).
    pub new_flows: u64,
    /// Connections closed by FIN both ways.
    pub closed_fin: u64,
    /// Connections closed by RST.
    pub closed_rst: u64,
    /// Connections ended by idle timeout (lazily or by `expire`).
    pub expired: u64,
    /// SYNs refused by authorization and answered with a RST.
    pub rst_unauthorized: u64,
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
    /// Closed connections whose 5-tuple was reused by a new SYN.
    pub replaced: u64,
    /// Keys back in the free FIFO after their hold.
    pub keys_recycled: u64,
    /// Up packets that came from a different LB MAC than the previous one.
    pub lb_moves: u64,
    /// Balanced connections whose server count could not be tracked
    /// (balancer count table full).
    pub load_untracked: u64,
    /// SYNs going up whose MSS option was lowered to `mss_clamp_up`.
    pub mss_clamped_up: u64,
    /// SYN-ACKs going down whose MSS option was lowered to `mss_clamp_down`.
    pub mss_clamped_down: u64,
    /// Segments going down whose window field was lowered to
    /// `window_cap_down`.
    pub window_capped: u64,
    /// Connections (RSS steering on) whose key's down packets land on this
    /// worker's RX queue.
    pub rss_steered: u64,
    /// Connections (RSS steering on) for which none of the probed keys
    /// did (the head of the FIFO was taken: its down packets are handed
    /// off unless the NIC happens to agree).
    pub rss_miss: u64,
    /// NAT64 connections created (also in `new_flows`).
    pub nat64_flows: u64,
    /// NAT66 connections created (also in `new_flows`).
    pub nat66_flows: u64,
    /// ICMPv4 errors about a NAT64 connection translated to ICMPv6 and
    /// sent to the subscriber.
    pub icmp_err_down: u64,
    /// ICMPv6 errors about a NAT64 connection translated to ICMPv4 and
    /// sent to the server.
    pub icmp_err_up: u64,
    /// NAT64 down packets with DF too big for the IPv6 MTU, answered with
    /// an ICMPv4 Fragmentation Needed to the server (instead of a drop).
    pub frag_needed: u64,
}

/// A connection's subscriber.
#[derive(Clone, Copy)]
enum Sub {
    V4([u8; 4]),
    /// NAT64.
    V6([u8; 16]),
}

/// The GW stage of one worker. Owned and mutated only by that worker.
pub struct GwWorker {
    id: u16,
    cfg: GwConfig,
    ks: KeySpace,
    /// Key table: flow entry per key index.
    flows: Vec<Flow>,
    up: UpTable,
    keys: KeyAlloc,
    bal: Balancer,
    /// Keys not in the free FIFO (open connections + keys on hold).
    in_use: u32,
    max_in_use: u32,
    /// Next key index `expire` looks at.
    sweep: u32,
    /// RSS steering (`cfg.rss`).
    rss: Option<Steer>,
    /// NAT64: the IPv6 subscriber of each key's flow (valid while the
    /// flow's `v6` is set); empty unless `cfg.nat64` is set.
    sub6: Vec<[u8; 16]>,
    /// NAT66: the IPv6 VIP and the IPv6 server of each key's flow (valid
    /// while the flow's `nat66` is set); empty unless `cfg.pool6` is set.
    vip6: Vec<[u8; 16]>,
    srv6: Vec<[u8; 16]>,
    /// IPv4 Identification of the next packet translated to IPv4 (a
    /// per-worker counter, RFC 6864: unique enough per address pair while a
    /// datagram may live; workers start 0x9e37 apart).
    xlat_ident: u16,
    pub counters: GwCounters,
}

impl GwWorker {
    /// Worker `id` of `cfg.workers`; allocates everything it will ever use.
    pub fn new(cfg: &GwConfig, id: u16) -> Result<GwWorker, String> {
        cfg.validate()?;
        if id >= cfg.workers {
            return Err(format!(
                "gw worker {id}: only {} workers configured",
                cfg.workers
            ));
        }
        let ks = KeySpace::new(cfg);
        let nkeys = ks.keys_per_worker();
        let npool = cfg.pool.len() as u32;
        let ppw = ks.per_worker;
        // Free order: rotate through pool addresses (key = pool * ppw + off),
        // ports in order; with RSS steering, a stride permutation of all
        // the worker's keys (see `rss::key_stride`).
        let stride = cfg.rss.as_ref().map(|_| rss::key_stride(nkeys));
        let order = (0..nkeys).map(move |i| match stride {
            Some(s) => ((i as u64 * s as u64) % nkeys as u64) as u32,
            None => (i % npool) * ppw + i / npool,
        });
        let max_in_use = nkeys.min(cfg.max_flows_per_worker);
        Ok(GwWorker {
            id,
            ks,
            flows: vec![Flow::empty(); nkeys as usize],
            up: UpTable::new(2 * max_in_use as usize),
            keys: KeyAlloc::new(nkeys, cfg.timeouts.close_hold_ms, order),
            bal: Balancer::new(cfg.max_servers),
            in_use: 0,
            max_in_use,
            sweep: 0,
            rss: cfg.rss.as_ref().map(|r| Steer::new(r, &cfg.pool, id)),
            sub6: if cfg.nat64.is_some() || !cfg.pool6.is_empty() {
                vec![[0; 16]; nkeys as usize]
            } else {
                Vec::new()
            },
            vip6: vec![
                [0; 16];
                if cfg.pool6.is_empty() {
                    0
                } else {
                    nkeys as usize
                }
            ],
            srv6: vec![
                [0; 16];
                if cfg.pool6.is_empty() {
                    0
                } else {
                    nkeys as usize
                }
            ],
            xlat_ident: id.wrapping_mul(0x9e37),
            counters: GwCounters::default(),
            cfg: cfg.clone(),
        })
    }

    pub fn id(&self) -> u16 {
        self.id
    }
    pub fn config(&self) -> &GwConfig {
        &self.cfg
    }
    /// Open connections (a scan of the key table: for tests and stats, not
    /// for the packet path).
    ///
    /// O(1): every connection is created once and closed once (FIN, RST or
    /// idle expiry), each counted; the stats read this on every drain tick,
    /// so it must not scan the key table. Tests check it against the scan.
    pub fn open_flows(&self) -> usize {
        let c = &self.counters;
        let n = (c.new_flows - c.closed_fin - c.closed_rst - c.expired) as usize;
        #[cfg(test)]
        assert_eq!(
            n,
            self.flows.iter().filter(|f| f.state.is_open()).count(),
            "open-flow count drifted from the table"
        );
        n
    }
    /// Keys in use (open connections and keys on hold).
    pub fn keys_in_use(&self) -> u32 {
        self.in_use
    }
    /// Keys this worker owns.
    pub fn keys_total(&self) -> u32 {
        self.flows.len() as u32
    }
    /// The flow entry of the key (pool address, port), if this worker owns it.
    pub fn flow_by_key(&self, addr: [u8; 4], port: u16) -> Option<&Flow> {
        match self.ks.locate(addr, port) {
            KeyLoc::Key {
                owner,
                pool_idx,
                off,
            } if owner == self.id => self.flows.get(self.ks.key_index(pool_idx, off) as usize),
            _ => None,
        }
    }

    /// The IPv6 subscriber of the NAT64 flow of key (pool address, port), if
    /// this worker owns the key and its flow is a NAT64 one.
    pub fn subscriber6(&self, addr: [u8; 4], port: u16) -> Option<[u8; 16]> {
        match self.ks.locate(addr, port) {
            KeyLoc::Key {
                owner,
                pool_idx,
                off,
            } if owner == self.id => {
                let k = self.ks.key_index(pool_idx, off) as usize;
                self.flows[k].v6.then(|| self.sub6[k])
            }
            _ => None,
        }
    }

    /// Process one frame. Drops are counted in `c` under their reason.
    pub fn process(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        now_ms: u64,
        acct: &mut impl AcctSink,
        c: &mut WorkerCounters,
    ) -> Verdict {
        let v = self.classify(t, pkt, now_ms, acct);
        match v {
            Verdict::Drop(r) => c.drop(r),
            Verdict::Handoff { .. } => self.counters.handoffs += 1,
            Verdict::Control => self.counters.control += 1,
            Verdict::Tx { .. } => {}
        }
        v
    }

    fn classify(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        now: u64,
        acct: &mut impl AcctSink,
    ) -> Verdict {
        let p = match wire::parse(pkt.frame()) {
            Ok(p) => p,
            // (ICMP errors, among others: NAT64 translates those of its flows)
            Err(DropReason::UnsupportedProto) if self.cfg.nat64.is_some() => {
                return self.icmp_error(t, pkt, now)
            }
            Err(r) => return Verdict::Drop(r),
        };
        let dst_mac = EthernetFrame::new_unchecked(pkt.frame()).dst_addr();
        if p.is_ipv6() {
            // NAT66 down: a server's reply to a pool6 address.
            if pkt.port == self.cfg.server_port {
                if let Some(i) = self.cfg.pool6.iter().position(|a| *a == p.dst) {
                    if dst_mac != self.cfg.server_mac {
                        return Verdict::Drop(DropReason::NotForUs);
                    }
                    return self.down66(pkt, &p, i, now, acct);
                }
            }
            // NAT64: IPv6 subscribers on the access port, destination under
            // the prefix; NAT66: destination an IPv6 VIP; any other IPv6 is
            // not ours.
            if pkt.port != self.cfg.access_port {
                return Verdict::Drop(DropReason::UnsupportedEthertype);
            }
            if let Some(dst4) = self
                .cfg
                .nat64
                .as_ref()
                .and_then(|n| n.prefix.extract(&p.dst))
            {
                if dst_mac != self.cfg.access_mac {
                    return Verdict::Drop(DropReason::NotForUs);
                }
                return self.up6(t, pkt, &p, dst4, now, acct);
            }
            if !self.cfg.pool6.is_empty() && t.services.has_vips6() {
                if let Some(g) = t.services.vip6(&p.dst, p.dst_port) {
                    if dst_mac != self.cfg.access_mac {
                        return Verdict::Drop(DropReason::NotForUs);
                    }
                    return self.up66(t, pkt, &p, g, now, acct);
                }
            }
            return Verdict::Drop(DropReason::UnsupportedEthertype);
        }
        if !p.is_ipv4() {
            // ARP belongs to the responder before this stage.
            return Verdict::Drop(DropReason::UnsupportedEthertype);
        }
        let down = pkt.port == self.cfg.server_port
            && (pkt.port != self.cfg.access_port || self.ks.pool_index(p.dst_v4()).is_some());
        if down {
            if dst_mac != self.cfg.server_mac {
                return Verdict::Drop(DropReason::NotForUs);
            }
            self.down(pkt, &p, now, acct)
        } else if pkt.port == self.cfg.access_port {
            if dst_mac != self.cfg.access_mac {
                return Verdict::Drop(DropReason::NotForUs);
            }
            self.up(t, pkt, &p, now, acct)
        } else {
            Verdict::Drop(DropReason::NoRoute)
        }
    }

    /// Whether entry `k` is the flow of this up tuple.
    #[inline]
    fn tuple_is(f: &Flow, proto: u8, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> bool {
        f.sub_ip == src
            && f.dst_ip == dst
            && f.sub_port == sport
            && f.dst_port == dport
            && f.proto == proto
            && !f.v6
    }

    /// Whether entry `f` (IPv6 subscriber `s6`) is the flow of this NAT64
    /// up tuple (`dst`: the embedded IPv4 destination).
    #[inline]
    fn tuple6_is(
        f: &Flow,
        s6: &[u8; 16],
        proto: u8,
        src: &[u8; 16],
        sport: u16,
        dst: [u8; 4],
        dport: u16,
    ) -> bool {
        f.sub_ip == [src[12], src[13], src[14], src[15]]
            && f.dst_ip == dst
            && f.sub_port == sport
            && f.dst_port == dport
            && f.proto == proto
            && f.v6
            && !f.nat66
            && s6 == src
    }

    /// Whether entry `f` (IPv6 subscriber `s6`, IPv6 VIP `v6`) is the flow
    /// of this NAT66 up tuple.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn tuple66_is(
        f: &Flow,
        s6: &[u8; 16],
        v6: &[u8; 16],
        proto: u8,
        src: &[u8; 16],
        sport: u16,
        dst: &[u8; 16],
        dport: u16,
    ) -> bool {
        f.sub_ip == [src[12], src[13], src[14], src[15]]
            && f.sub_port == sport
            && f.dst_port == dport
            && f.proto == proto
            && f.nat66
            && s6 == src
            && v6 == dst
    }

    /// What an up-table hit means: `Some(k)` to forward on flow `k`, `None`
    /// to start a new connection (after a lazy expiry, or a new SYN on the
    /// tuple of a closed one).
    fn on_hit(
        &mut self,
        found: Option<(u32, u32)>,
        proto: u8,
        syn: bool,
        now: u64,
        acct: &mut impl AcctSink,
    ) -> Option<u32> {
        let (_, k) = found?;
        let f = &self.flows[k as usize];
        if f.state.is_open() {
            if self.idle_expired(f, now) {
                self.expire_flow(k, acct);
                None
            } else {
                Some(k)
            }
        } else if proto == PROTO_TCP && syn {
            // A new connection on the 5-tuple of a closed one: the closed
            // entry stays on hold but no longer matches.
            self.unlink(k);
            self.counters.replaced += 1;
            None
        } else {
            Some(k) // a late packet of the closed connection
        }
    }

    fn up(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        p: &Parsed,
        now: u64,
        acct: &mut impl AcctSink,
    ) -> Verdict {
        let proto = p.proto;
        let (src, dst) = (p.src_v4(), p.dst_v4());
        let (sport, dport) = match proto {
            PROTO_ICMP => {
                if p.icmp_type != icmp::v4::ECHO_REQUEST {
                    return Verdict::Drop(DropReason::UnsupportedProto);
                }
                (p.src_port, 0)
            }
            _ => (p.src_port, p.dst_port),
        };
        if p.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        let h = hash::flow_hash(
            self.cfg.hash_seed,
            u32::from_be_bytes(src),
            u32::from_be_bytes(dst),
            sport,
            dport,
            proto,
        );
        let flows = &self.flows;
        let found = self.up.lookup(h, |k| {
            Self::tuple_is(&flows[k as usize], proto, src, sport, dst, dport)
        });
        let syn = p.tcp_flags & (flags::SYN | flags::ACK | flags::RST | flags::FIN) == flags::SYN;
        let k = match self.on_hit(found, proto, syn, now, acct) {
            Some(k) => k,
            None => {
                if proto == PROTO_TCP && !syn {
                    return Verdict::Drop(DropReason::NoFlow);
                }
                match self.start(t, pkt, p, h, Sub::V4(src), proto, (sport, dst, dport), now) {
                    Ok(k) => k,
                    Err(v) => return v,
                }
            }
        };
        self.forward_up(t, pkt, p, k, now, acct)
    }

    /// An IPv6 up packet to `dst4` embedded under the NAT64 prefix.
    fn up6(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        p: &Parsed,
        dst4: [u8; 4],
        now: u64,
        acct: &mut impl AcctSink,
    ) -> Verdict {
        // The flow keeps the IPv4 protocol number (its down packets' one).
        let proto = if p.proto == ip_proto::ICMPV6 {
            PROTO_ICMP
        } else {
            p.proto
        };
        let (sport, dport) = match proto {
            PROTO_ICMP => {
                if p.icmp_type != icmp::v6::ECHO_REQUEST {
                    return Verdict::Drop(DropReason::UnsupportedProto);
                }
                (p.src_port, 0)
            }
            _ => (p.src_port, p.dst_port),
        };
        if p.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        let src6 = p.src;
        let h = hash::flow_hash6(
            self.cfg.hash_seed,
            &src6,
            u32::from_be_bytes(dst4),
            sport,
            dport,
            proto,
        );
        let (flows, sub6) = (&self.flows, &self.sub6);
        let found = self.up.lookup(h, |k| {
            let k = k as usize;
            Self::tuple6_is(&flows[k], &sub6[k], proto, &src6, sport, dst4, dport)
        });
        let syn = p.tcp_flags & (flags::SYN | flags::ACK | flags::RST | flags::FIN) == flags::SYN;
        let k = match self.on_hit(found, proto, syn, now, acct) {
            Some(k) => k,
            None => {
                if proto == PROTO_TCP && !syn {
                    return Verdict::Drop(DropReason::NoFlow);
                }
                match self.start(
                    t,
                    pkt,
                    p,
                    h,
                    Sub::V6(src6),
                    proto,
                    (sport, dst4, dport),
                    now,
                ) {
                    Ok(k) => k,
                    Err(v) => return v,
                }
            }
        };
        self.forward_up(t, pkt, p, k, now, acct)
    }

    /// An IPv6 up packet to IPv6 VIP `dst` of group `g` (NAT66). TCP and
    /// UDP only.
    fn up66(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        p: &Parsed,
        g: GroupIdx,
        now: u64,
        acct: &mut impl AcctSink,
    ) -> Verdict {
        let proto = p.proto;
        if proto != PROTO_TCP && proto != PROTO_UDP {
            return Verdict::Drop(DropReason::UnsupportedProto);
        }
        if p.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        let (src6, dst6) = (p.src, p.dst);
        let (sport, dport) = (p.src_port, p.dst_port);
        let h = hash::flow_hash6(
            self.cfg.hash_seed,
            &src6,
            u32::from_be_bytes([dst6[12], dst6[13], dst6[14], dst6[15]]) ^ 0x6666_6666,
            sport,
            dport,
            proto,
        );
        let (flows, sub6, vip6) = (&self.flows, &self.sub6, &self.vip6);
        let found = self.up.lookup(h, |k| {
            let k = k as usize;
            Self::tuple66_is(
                &flows[k], &sub6[k], &vip6[k], proto, &src6, sport, &dst6, dport,
            )
        });
        let syn = p.tcp_flags & (flags::SYN | flags::ACK | flags::RST | flags::FIN) == flags::SYN;
        let k = match self.on_hit(found, proto, syn, now, acct) {
            Some(k) => k,
            None => {
                if proto == PROTO_TCP && !syn {
                    return Verdict::Drop(DropReason::NoFlow);
                }
                match self.start66(t, pkt, p, h, g, now) {
                    Ok(k) => k,
                    Err(v) => return v,
                }
            }
        };
        self.forward_up(t, pkt, p, k, now, acct)
    }

    /// Start a NAT66 connection to group `gi`: as [`Self::start`] with IPv6
    /// addresses (session by prefix, RST over IPv6, member's IPv6 address,
    /// IPv6 neighbour). No RSS steering (the steering tables hash IPv4).
    fn start66(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        p: &Parsed,
        h: u64,
        gi: GroupIdx,
        now: u64,
    ) -> Result<u32, Verdict> {
        let (src6, dst6, proto, sport, dport) = (p.src, p.dst, p.proto, p.src_port, p.dst_port);
        let session = t.sessions.get6(&src6).filter(|s| s.active);
        if session.is_none() && self.cfg.require_session {
            return Err(Verdict::Drop(DropReason::NoSession));
        }
        let svc = &t.services;
        let Some(g) = svc.group(gi) else {
            return Err(Verdict::Drop(DropReason::NoServer));
        };
        let service = g.group.service;
        if let Some(sess) = session {
            if !sess.allows(service) {
                if proto == PROTO_TCP {
                    rst::syn_to_rst_v6(pkt, p, self.cfg.access_mac);
                    self.counters.rst_unauthorized += 1;
                    return Err(Verdict::Tx { port: pkt.port });
                }
                return Err(Verdict::Drop(DropReason::Unauthorized));
            }
        }
        let Some(mi) = self.bal.choose(gi, g) else {
            return Err(Verdict::Drop(DropReason::NoServer));
        };
        let Some(srv6) = svc.member_ip6(gi, mi) else {
            return Err(Verdict::Drop(DropReason::NoServer));
        };
        let m = &g.group.members[mi as usize];
        let (srv_ip, srv_port) = (m.ip, m.port.unwrap_or(dport));
        let Some(srv_mac) = t.neighbours.get6(&srv6).or(self.cfg.server_next_hop_mac) else {
            return Err(Verdict::Drop(DropReason::NoNeighbor));
        };
        self.recycle(now, RECYCLE_PER_START);
        if self.keys.free_len() == 0 {
            return Err(Verdict::Drop(DropReason::NatPoolExhausted));
        }
        if self.in_use >= self.max_in_use {
            return Err(Verdict::Drop(DropReason::FlowTableFull));
        }
        let k = self.keys.alloc();
        let Some(k) = k else {
            return Err(Verdict::Drop(DropReason::NatPoolExhausted));
        };
        let Some(slot) = self.up.insert(h, k) else {
            self.keys.free(k); // never used: straight back
            return Err(Verdict::Drop(DropReason::FlowTableFull));
        };
        self.in_use += 1;
        let load_slot = self.bal.open(srv_ip);
        if load_slot == NO_SLOT {
            self.counters.load_untracked += 1;
        }
        let ku = k as usize;
        self.sub6[ku] = src6;
        self.vip6[ku] = dst6;
        self.srv6[ku] = srv6;
        self.flows[ku] = Flow {
            sub_ip: [src6[12], src6[13], src6[14], src6[15]],
            dst_ip: [dst6[12], dst6[13], dst6[14], dst6[15]],
            srv_ip,
            sub_port: sport,
            dst_port: dport,
            srv_port,
            proto,
            v6: true,
            nat66: true,
            state: if proto == PROTO_TCP {
                FlowState::SynSent
            } else {
                FlowState::Dgram
            },
            lb_mac: EthernetFrame::new_unchecked(pkt.frame()).src_addr(),
            srv_mac,
            nh_epoch: t.neighbours.epoch() as u32,
            up_slot: slot,
            last_ms: now,
            start_ms: now,
            device_id: session.map_or(0, |s| s.device_id),
            group: gi,
            load_slot,
            service: service.0,
            attr_done: proto != PROTO_TCP,
            ..Flow::empty()
        };
        self.counters.new_flows += 1;
        self.counters.nat66_flows += 1;
        Ok(k)
    }

    /// Start a connection (S32–S44, S61–S67): the new key, or the verdict.
    /// `proto` is the IPv4 protocol (ICMP for an ICMPv6 echo), `dst` the
    /// IPv4 destination (embedded one for NAT64).
    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        p: &Parsed,
        h: u64,
        sub: Sub,
        proto: u8,
        (sport, dst, dport): (u16, [u8; 4], u16),
        now: u64,
    ) -> Result<u32, Verdict> {
        let session = match &sub {
            Sub::V4(a) => t.sessions.get(*a),
            Sub::V6(a) => t.sessions.get6(a),
        }
        .filter(|s| s.active);
        if session.is_none() && self.cfg.require_session {
            return Err(Verdict::Drop(DropReason::NoSession));
        }
        let svc = &t.services;
        let group = svc.vip(dst, dport);
        let grt = group.and_then(|g| svc.group(g));
        let service = match grt {
            Some(g) => Some(g.group.service),
            None => svc.external_service,
        };
        if let (Some(s), Some(sess)) = (service, session) {
            if !sess.allows(s) {
                if proto == PROTO_TCP {
                    match sub {
                        Sub::V4(_) => rst::syn_to_rst(pkt, p, self.cfg.access_mac),
                        Sub::V6(_) => rst::syn_to_rst_v6(pkt, p, self.cfg.access_mac),
                    }
                    self.counters.rst_unauthorized += 1;
                    return Err(Verdict::Tx { port: pkt.port });
                }
                return Err(Verdict::Drop(DropReason::Unauthorized));
            }
        }
        let (srv_ip, srv_port) = match (group, grt) {
            (Some(gi), Some(g)) => {
                let Some(m) = self.bal.choose(gi, g) else {
                    return Err(Verdict::Drop(DropReason::NoServer));
                };
                let m = &g.group.members[m as usize];
                (
                    m.ip,
                    if proto == PROTO_ICMP {
                        0
                    } else {
                        m.port.unwrap_or(dport)
                    },
                )
            }
            _ => (dst, dport),
        };
        let Some(srv_mac) = t.neighbours.get(srv_ip).or(self.cfg.server_next_hop_mac) else {
            return Err(Verdict::Drop(DropReason::NoNeighbor));
        };
        self.recycle(now, RECYCLE_PER_START);
        if self.keys.free_len() == 0 {
            return Err(Verdict::Drop(DropReason::NatPoolExhausted));
        }
        if self.in_use >= self.max_in_use {
            return Err(Verdict::Drop(DropReason::FlowTableFull));
        }
        let (k, steered) = match &self.rss {
            None => (self.keys.alloc(), None),
            Some(s) => {
                // Prefer a key whose down packets (server -> key) land on
                // our own RX queue.
                let base = s.base(srv_ip, srv_port, proto);
                let (ks, id) = (&self.ks, self.id);
                let probe = if s.reachable() { s.probe } else { 0 };
                match self.keys.alloc_pref(probe, |k| {
                    s.lands_here(base, k / ks.per_worker, ks.key_addr(id, k).1)
                }) {
                    Some((k, pref)) => (Some(k), Some(pref)),
                    None => (None, None),
                }
            }
        };
        let Some(k) = k else {
            return Err(Verdict::Drop(DropReason::NatPoolExhausted));
        };
        let Some(slot) = self.up.insert(h, k) else {
            self.keys.free(k); // never used: straight back
            return Err(Verdict::Drop(DropReason::FlowTableFull));
        };
        match steered {
            Some(true) => self.counters.rss_steered += 1,
            Some(false) => self.counters.rss_miss += 1,
            None => {}
        }
        self.in_use += 1;
        let load_slot = if group.is_some() {
            let s = self.bal.open(srv_ip);
            if s == NO_SLOT {
                self.counters.load_untracked += 1;
            }
            s
        } else {
            NO_SLOT
        };
        let sub_ip = match sub {
            Sub::V4(a) => a,
            Sub::V6(a) => {
                self.sub6[k as usize] = a;
                self.counters.nat64_flows += 1;
                [a[12], a[13], a[14], a[15]]
            }
        };
        self.flows[k as usize] = Flow {
            sub_ip,
            dst_ip: dst,
            srv_ip,
            sub_port: sport,
            dst_port: dport,
            srv_port,
            proto,
            v6: matches!(sub, Sub::V6(_)),
            state: if proto == PROTO_TCP {
                FlowState::SynSent
            } else {
                FlowState::Dgram
            },
            lb_mac: EthernetFrame::new_unchecked(pkt.frame()).src_addr(),
            srv_mac,
            nh_epoch: t.neighbours.epoch() as u32,
            up_slot: slot,
            last_ms: now,
            start_ms: now,
            device_id: session.map_or(0, |s| s.device_id),
            group: group.unwrap_or(NO_GROUP),
            load_slot,
            service: service.map_or(NO_SERVICE, |s| s.0),
            attr_done: proto != PROTO_TCP,
            ..Flow::empty()
        };
        self.counters.new_flows += 1;
        Ok(k)
    }

    /// Rewrite and account an up packet of flow `k` (S34–S46, S70–S77).
    fn forward_up(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        p: &Parsed,
        k: u32,
        now: u64,
        acct: &mut impl AcctSink,
    ) -> Verdict {
        if self.next_hop(t, k).is_none() {
            return Verdict::Drop(DropReason::NoNeighbor);
        }
        let (nat_ip, nat_port) = self.ks.key_addr(self.id, k);
        let f = &mut self.flows[k as usize];
        let src_mac = EthernetFrame::new_unchecked(pkt.frame()).src_addr();
        if src_mac != f.lb_mac {
            f.lb_mac = src_mac;
            self.counters.lb_moves += 1;
        }
        if !f.attr_done && p.payload_len > 0 {
            f.attr_done = true;
            if let Some(a) = acct::find_attr(&pkt.frame()[p.payload_range()]) {
                f.attr = a;
            }
        }
        let syn = p.proto == PROTO_TCP && p.tcp_flags & (flags::SYN | flags::ACK) == flags::SYN;
        let l4 = if f.nat66 {
            // NAT66: source = the pool6 address paired with the key's pool
            // address, destination = the server; incremental checksums.
            let pool_idx = self.ks.pool_index(nat_ip).unwrap_or(0) as usize;
            let Some(&src6) = self.cfg.pool6.get(pool_idx) else {
                return Verdict::Drop(DropReason::UnsupportedEthertype);
            };
            let (srv_mac, srv_port) = (f.srv_mac, f.srv_port);
            rewrite6(
                pkt,
                p,
                (srv_mac, self.cfg.server_mac),
                (&src6, nat_port),
                (&self.srv6[k as usize], srv_port),
            );
            p.l4_range()
        } else if f.v6 {
            // NAT64: the IP header first (it cannot fail for a frame
            // `parse` accepted: no extension headers, L4 checked, hop
            // limit > 1; a failure is still dropped under its reason,
            // before any counter of the flow moved), then the ports.
            let (srv_mac, srv_ip, srv_port) = (f.srv_mac, f.srv_ip, f.srv_port);
            let to = To4::new(nat_ip, srv_ip).ident(self.xlat_ident);
            let Some(n64) = &self.cfg.nat64 else {
                return Verdict::Drop(DropReason::UnsupportedEthertype);
            };
            // (IPv4 fragmentation and Packet Too Big toward the
            // subscriber are not done: only a config with mtu4 < mtu6 - 20
            // can get here)
            if wire::ipv4::HEADER_LEN + p.l4_len as usize > n64.xlat.mtu4 as usize {
                return Verdict::Drop(DropReason::TooBig);
            }
            if let Err(r) = xlat::v6_to_v4(pkt, &n64.xlat, &to) {
                return Verdict::Drop(r);
            }
            self.xlat_ident = self.xlat_ident.wrapping_add(1);
            let l4 = p.l3_off as usize + wire::ipv4::HEADER_LEN;
            let l4 = l4..l4 + p.l4_len as usize;
            rewrite_ports(
                &mut pkt.data[l4.clone()],
                p.proto,
                (nat_port, srv_port),
                nat_port,
            );
            set_macs(pkt, srv_mac, self.cfg.server_mac);
            l4
        } else {
            rewrite(
                pkt,
                p,
                (f.srv_mac, self.cfg.server_mac),
                (nat_ip, nat_port),
                (f.srv_ip, f.srv_port),
            );
            p.l4_range()
        };
        if syn {
            self.syn_up(pkt, l4, k);
        }
        self.counters.up_pkts += 1;
        let f = &mut self.flows[k as usize];
        if f.state == FlowState::Closed {
            self.counters.late_pkts += 1;
            return Verdict::Tx {
                port: self.cfg.server_port,
            };
        }
        f.up_pkts += 1;
        f.up_bytes += (p.ip_end() - p.l3_off as usize) as u64;
        f.last_ms = now;
        if f.proto == PROTO_TCP {
            let (s, closed) = tcp_next(f.state, Dir::Up, p.tcp_flags);
            f.state = s;
            if let Some(r) = closed {
                self.close_flow(k, r, acct);
            }
        }
        Verdict::Tx {
            port: self.cfg.server_port,
        }
    }

    fn down(
        &mut self,
        pkt: &mut Pkt<'_>,
        p: &Parsed,
        now: u64,
        acct: &mut impl AcctSink,
    ) -> Verdict {
        let proto = p.proto;
        if proto == PROTO_ICMP && p.icmp_type != icmp::v4::ECHO_REPLY {
            // An echo request to a pool address: the gateway itself is asked.
            return Verdict::Control;
        }
        let (src, dst) = (p.src_v4(), p.dst_v4());
        let k = match self.ks.locate(dst, p.dst_port) {
            KeyLoc::NotPool => return Verdict::Drop(DropReason::NotForUs),
            KeyLoc::Reserved => return Verdict::Control,
            KeyLoc::Unowned => return Verdict::Drop(DropReason::NoKey),
            KeyLoc::Key { owner, .. } if owner != self.id => {
                return Verdict::Handoff { worker: owner }
            }
            KeyLoc::Key { pool_idx, off, .. } => self.ks.key_index(pool_idx, off),
        };
        let f = &self.flows[k as usize];
        let live = f.state.is_open() || (f.state == FlowState::Closed && f.up_slot != UNLINKED);
        if !live
            || f.proto != proto
            || f.srv_ip != src
            || (proto != PROTO_ICMP && f.srv_port != p.src_port)
        {
            return Verdict::Drop(DropReason::NoKey);
        }
        if f.state.is_open() && self.idle_expired(f, now) {
            self.expire_flow(k, acct);
            return Verdict::Drop(DropReason::NoKey);
        }
        if p.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        let f = &self.flows[k as usize];
        let (l4, ip_len) = if f.v6 {
            // NAT64: IPv4 -> IPv6 toward the subscriber, then the ports.
            let Some(n64) = &self.cfg.nat64 else {
                return Verdict::Drop(DropReason::UnsupportedEthertype);
            };
            let ip_len = wire::ipv6::HEADER_LEN + p.l4_len as usize;
            if ip_len > n64.xlat.mtu6 as usize {
                // No IPv6 fragmentation here (RFC 7915 §4 would fragment a
                // DF = 0 packet): with DF, tell the server the MTU.
                let df = pkt.frame()[p.l3_off as usize + 6] & 0x40 != 0;
                if !df {
                    return Verdict::Drop(DropReason::TooBig);
                }
                let mtu =
                    n64.xlat.mtu6 - wire::ipv6::HEADER_LEN as u16 + wire::ipv4::HEADER_LEN as u16;
                rst::frag_needed_v4(pkt, p, mtu, self.cfg.server_mac);
                self.counters.frag_needed += 1;
                return Verdict::Tx { port: pkt.port };
            }
            let to = To6::new(n64.prefix.embed(f.dst_ip), self.sub6[k as usize]);
            let (lb_mac, dst_port, sub_port) = (f.lb_mac, f.dst_port, f.sub_port);
            if let Err(r) = xlat::v4_to_v6(pkt, &n64.xlat, &to) {
                return Verdict::Drop(r);
            }
            let l4 = p.l3_off as usize + wire::ipv6::HEADER_LEN;
            let l4 = l4..l4 + p.l4_len as usize;
            rewrite_ports(
                &mut pkt.data[l4.clone()],
                proto,
                (dst_port, sub_port),
                sub_port,
            );
            set_macs(pkt, lb_mac, self.cfg.access_mac);
            (l4, ip_len)
        } else {
            rewrite(
                pkt,
                p,
                (f.lb_mac, self.cfg.access_mac),
                (f.dst_ip, f.dst_port),
                (f.sub_ip, f.sub_port),
            );
            (p.l4_range(), p.ip_end() - p.l3_off as usize)
        };
        if proto == PROTO_TCP {
            self.tcp_down(pkt, l4, p.tcp_flags, k);
        }
        self.counters.down_pkts += 1;
        let f = &mut self.flows[k as usize];
        if f.state == FlowState::Closed {
            self.counters.late_pkts += 1;
            return Verdict::Tx {
                port: self.cfg.access_port,
            };
        }
        f.down_pkts += 1;
        f.down_bytes += ip_len as u64;
        f.last_ms = now;
        if f.proto == PROTO_TCP {
            let (s, closed) = tcp_next(f.state, Dir::Down, p.tcp_flags);
            f.state = s;
            if let Some(r) = closed {
                self.close_flow(k, r, acct);
            }
        }
        Verdict::Tx {
            port: self.cfg.access_port,
        }
    }

    /// A NAT66 down packet: an IPv6 server's reply to (`pool6[pool6_idx]`,
    /// port). The key is (`pool[pool6_idx]`, port): handed off to its
    /// owner like IPv4; restored to VIP → subscriber.
    fn down66(
        &mut self,
        pkt: &mut Pkt<'_>,
        p: &Parsed,
        pool6_idx: usize,
        now: u64,
        acct: &mut impl AcctSink,
    ) -> Verdict {
        let proto = p.proto;
        if proto != PROTO_TCP && proto != PROTO_UDP {
            // (ICMPv6 to a pool6 address: the gateway itself is asked.)
            return Verdict::Control;
        }
        let Some(&pool4) = self.cfg.pool.get(pool6_idx) else {
            return Verdict::Drop(DropReason::NotForUs);
        };
        let k = match self.ks.locate(pool4, p.dst_port) {
            KeyLoc::NotPool => return Verdict::Drop(DropReason::NotForUs),
            KeyLoc::Reserved => return Verdict::Control,
            KeyLoc::Unowned => return Verdict::Drop(DropReason::NoKey),
            KeyLoc::Key { owner, .. } if owner != self.id => {
                return Verdict::Handoff { worker: owner }
            }
            KeyLoc::Key { pool_idx, off, .. } => self.ks.key_index(pool_idx, off),
        };
        let ku = k as usize;
        let f = &self.flows[ku];
        let live = f.state.is_open() || (f.state == FlowState::Closed && f.up_slot != UNLINKED);
        if !live
            || !f.nat66
            || f.proto != proto
            || self.srv6[ku] != p.src
            || f.srv_port != p.src_port
        {
            return Verdict::Drop(DropReason::NoKey);
        }
        if f.state.is_open() && self.idle_expired(f, now) {
            self.expire_flow(k, acct);
            return Verdict::Drop(DropReason::NoKey);
        }
        if p.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        let (lb_mac, dst_port, sub_port) = (f.lb_mac, f.dst_port, f.sub_port);
        rewrite6(
            pkt,
            p,
            (lb_mac, self.cfg.access_mac),
            (&self.vip6[ku], dst_port),
            (&self.sub6[ku], sub_port),
        );
        let l4 = p.l4_range();
        if proto == PROTO_TCP {
            self.tcp_down(pkt, l4, p.tcp_flags, k);
        }
        self.counters.down_pkts += 1;
        let f = &mut self.flows[ku];
        if f.state == FlowState::Closed {
            self.counters.late_pkts += 1;
            return Verdict::Tx {
                port: self.cfg.access_port,
            };
        }
        f.down_pkts += 1;
        f.down_bytes += (p.ip_end() - p.l3_off as usize) as u64;
        f.last_ms = now;
        if f.proto == PROTO_TCP {
            let (s, closed) = tcp_next(f.state, Dir::Down, p.tcp_flags);
            f.state = s;
            if let Some(r) = closed {
                self.close_flow(k, r, acct);
            }
        }
        Verdict::Tx {
            port: self.cfg.access_port,
        }
    }

    /// A frame `parse` refused as an unsupported protocol, with NAT64 on:
    /// an ICMPv4 error to a pool address (down) or an ICMPv6 error to a
    /// NAT64 address (up) may be about a NAT64 flow; anything else stays
    /// `unsupported_proto`.
    fn icmp_error(&mut self, t: &GwTables, pkt: &mut Pkt<'_>, now: u64) -> Verdict {
        const UNSUPPORTED: Verdict = Verdict::Drop(DropReason::UnsupportedProto);
        let Ok(p) = wire::parse_l3(pkt.frame()) else {
            return UNSUPPORTED;
        };
        let Some(n64) = &self.cfg.nat64 else {
            return UNSUPPORTED;
        };
        let (l4, end) = (p.l4_off as usize, p.ip_end());
        if p.fragment || end < l4 + 8 {
            return UNSUPPORTED;
        }
        let ty = pkt.frame()[l4];
        let dst_mac = EthernetFrame::new_unchecked(pkt.frame()).dst_addr();
        if p.ip_version == 4
            && p.proto == PROTO_ICMP
            && matches!(
                ty,
                icmp::v4::DEST_UNREACHABLE | icmp::v4::TIME_EXCEEDED | xlat::icmp::V4_PARAM_PROBLEM
            )
            && pkt.port == self.cfg.server_port
            && self.ks.pool_index(p.dst_v4()).is_some()
        {
            if dst_mac != self.cfg.server_mac {
                return Verdict::Drop(DropReason::NotForUs);
            }
            return self.down_icmp_error(pkt, &p, now);
        }
        if p.ip_version == 6
            && p.proto == ip_proto::ICMPV6
            && (1..=4).contains(&ty)
            && pkt.port == self.cfg.access_port
            && n64.prefix.contains(&p.dst)
        {
            if dst_mac != self.cfg.access_mac {
                return Verdict::Drop(DropReason::NotForUs);
            }
            return self.up_icmp_error(t, pkt, &p);
        }
        UNSUPPORTED
    }

    /// An ICMPv4 error (destination unreachable, time exceeded, parameter
    /// problem) from the server side to a pool address, quoting an up
    /// packet of ours (pool address : key port → server). The key is the
    /// quoted source: another worker's key → `Handoff`; a NAT64 flow's →
    /// the quoted ports become the subscriber's view, then RFC 7915
    /// translation with the outer source embedded under the prefix, the
    /// quoted packet subscriber → prefix-embedded original destination;
    /// sent to the subscriber. Errors about IPv4 flows are not translated
    /// (`unsupported_proto`, as without NAT64); a quote matching no live
    /// flow is `no_key`, a malformed quote `xlat_icmp_inner`. Not counted
    /// in the flow's accounting, and does not refresh its idle timer.
    fn down_icmp_error(&mut self, pkt: &mut Pkt<'_>, p: &Parsed, now: u64) -> Verdict {
        const INNER: Verdict = Verdict::Drop(DropReason::XlatIcmpInner);
        let (l4, end) = (p.l4_off as usize, p.ip_end());
        let f = pkt.frame();
        let q = l4 + 8;
        if end < q + wire::ipv4::HEADER_LEN + 8 || f[q] >> 4 != 4 {
            return INNER;
        }
        let ihl = (f[q] & 0x0f) as usize * 4;
        let ql4 = q + ihl;
        if ihl < wire::ipv4::HEADER_LEN || end < ql4 + 8 {
            return INNER;
        }
        let qproto = f[q + 9];
        let qsrc = [f[q + 12], f[q + 13], f[q + 14], f[q + 15]];
        let qdst = [f[q + 16], f[q + 17], f[q + 18], f[q + 19]];
        let rd = |at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
        let (qsport, qdport) = match qproto {
            PROTO_TCP | PROTO_UDP => (rd(ql4), rd(ql4 + 2)),
            PROTO_ICMP if f[ql4] == icmp::v4::ECHO_REQUEST => (rd(ql4 + 4), 0),
            PROTO_ICMP => return INNER,
            _ => return Verdict::Drop(DropReason::UnsupportedProto),
        };
        let k = match self.ks.locate(qsrc, qsport) {
            KeyLoc::Reserved => return Verdict::Control, // about a health probe
            KeyLoc::NotPool | KeyLoc::Unowned => return Verdict::Drop(DropReason::NoKey),
            KeyLoc::Key { owner, .. } if owner != self.id => {
                return Verdict::Handoff { worker: owner }
            }
            KeyLoc::Key { pool_idx, off, .. } => self.ks.key_index(pool_idx, off),
        };
        let fl = &self.flows[k as usize];
        let live = fl.state.is_open() || (fl.state == FlowState::Closed && fl.up_slot != UNLINKED);
        if !live
            || fl.proto != qproto
            || fl.srv_ip != qdst
            || (qproto != PROTO_ICMP && fl.srv_port != qdport)
            || (fl.state.is_open() && self.idle_expired(fl, now))
        {
            return Verdict::Drop(DropReason::NoKey);
        }
        if !fl.v6 || fl.nat66 {
            return Verdict::Drop(DropReason::UnsupportedProto);
        }
        if p.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        let Some(n64) = &self.cfg.nat64 else {
            return Verdict::Drop(DropReason::UnsupportedProto);
        };
        let sub6 = self.sub6[k as usize];
        let to =
            To6::new(n64.prefix.embed(p.src_v4()), sub6).inner(sub6, n64.prefix.embed(fl.dst_ip));
        let (lb_mac, sub_port, dst_port) = (fl.lb_mac, fl.sub_port, fl.dst_port);
        // The quoted packet as the subscriber sent it: its ports, then its
        // addresses (the translator).
        xlat::rewrite_quoted_ports(&mut pkt.data[l4..end], ql4 - l4, qproto, sub_port, dst_port);
        if let Err(r) = xlat::v4_to_v6(pkt, &n64.xlat, &to) {
            return Verdict::Drop(r);
        }
        set_macs(pkt, lb_mac, self.cfg.access_mac);
        self.counters.icmp_err_down += 1;
        Verdict::Tx {
            port: self.cfg.access_port,
        }
    }

    /// An ICMPv6 error (destination unreachable, packet too big, time
    /// exceeded, parameter problem) from the subscriber side to a NAT64
    /// address, quoting a down packet of ours (prefix-embedded VIP →
    /// subscriber). The flow is found in the up table by the reversed
    /// quoted tuple; the quoted ports become the server's view (VIP port →
    /// server port, subscriber port → key port; an echo reply's identifier
    /// → the key port), then RFC 7915 translation: pool address → server,
    /// quoting server → pool address; sent on `server_port`. No flow:
    /// `no_flow`; a malformed quote: `xlat_icmp_inner`.
    fn up_icmp_error(&mut self, t: &GwTables, pkt: &mut Pkt<'_>, p: &Parsed) -> Verdict {
        const INNER: Verdict = Verdict::Drop(DropReason::XlatIcmpInner);
        const V6H: usize = wire::ipv6::HEADER_LEN;
        let (l4, end) = (p.l4_off as usize, p.ip_end());
        let f = pkt.frame();
        let q = l4 + 8;
        if end < q + V6H + 8 || f[q] >> 4 != 6 {
            return INNER;
        }
        let ql4 = q + V6H;
        let qnh = f[q + 6];
        let mut qsrc = [0u8; 16];
        let mut qdst = [0u8; 16];
        qsrc.copy_from_slice(&f[q + 8..q + 24]);
        qdst.copy_from_slice(&f[q + 24..q + 40]);
        let rd = |at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
        // The up tuple of the flow: (subscriber = quoted destination, its
        // port = quoted destination port / identifier, VIP, VIP port).
        let (proto, sport, dport) = match qnh {
            PROTO_TCP | PROTO_UDP => (qnh, rd(ql4 + 2), rd(ql4)),
            ip_proto::ICMPV6 if f[ql4] == icmp::v6::ECHO_REPLY => (PROTO_ICMP, rd(ql4 + 4), 0),
            _ => return INNER,
        };
        let Some(n64) = self.cfg.nat64 else {
            return Verdict::Drop(DropReason::UnsupportedProto);
        };
        let Some(dst4) = n64.prefix.extract(&qsrc) else {
            return Verdict::Drop(DropReason::NoFlow);
        };
        let h = hash::flow_hash6(
            self.cfg.hash_seed,
            &qdst,
            u32::from_be_bytes(dst4),
            sport,
            dport,
            proto,
        );
        let (flows, sub6) = (&self.flows, &self.sub6);
        let Some((_, k)) = self.up.lookup(h, |k| {
            let k = k as usize;
            Self::tuple6_is(&flows[k], &sub6[k], proto, &qdst, sport, dst4, dport)
        }) else {
            return Verdict::Drop(DropReason::NoFlow);
        };
        if p.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        let Some(srv_mac) = self.next_hop(t, k) else {
            return Verdict::Drop(DropReason::NoNeighbor);
        };
        let (nat_ip, nat_port) = self.ks.key_addr(self.id, k);
        let fl = &self.flows[k as usize];
        let (srv_ip, srv_port) = (fl.srv_ip, fl.srv_port);
        let to = To4::new(nat_ip, srv_ip)
            .inner(srv_ip, nat_ip)
            .ident(self.xlat_ident);
        let (qs, qd) = if proto == PROTO_ICMP {
            (nat_port, 0)
        } else {
            (srv_port, nat_port)
        };
        xlat::rewrite_quoted_ports(&mut pkt.data[l4..end], ql4 - l4, qnh, qs, qd);
        if let Err(r) = xlat::v6_to_v4(pkt, &n64.xlat, &to) {
            return Verdict::Drop(r);
        }
        self.xlat_ident = self.xlat_ident.wrapping_add(1);
        set_macs(pkt, srv_mac, self.cfg.server_mac);
        self.counters.icmp_err_up += 1;
        Verdict::Tx {
            port: self.cfg.server_port,
        }
    }

    /// The MAC toward flow `k`'s server, resolved again (once) after a new
    /// neighbour table was published.
    #[inline]
    fn next_hop(&mut self, t: &GwTables, k: u32) -> Option<[u8; 6]> {
        let nh_epoch = t.neighbours.epoch() as u32;
        let f = &mut self.flows[k as usize];
        if f.nh_epoch != nh_epoch {
            let mac = if f.nat66 {
                t.neighbours.get6(&self.srv6[k as usize])
            } else {
                t.neighbours.get(f.srv_ip)
            };
            f.srv_mac = mac.or(self.cfg.server_next_hop_mac)?;
            f.nh_epoch = nh_epoch;
        }
        Some(f.srv_mac)
    }

    /// A SYN going up (already NAT'd): MSS clamp, and the Window Scale
    /// option noted when the window cap is on.
    #[inline]
    fn syn_up(&mut self, pkt: &mut Pkt<'_>, l4: Range<usize>, k: u32) {
        let mut t = TcpPacket::new_unchecked(&mut pkt.data[l4]);
        if let Some(m) = self.cfg.mss_clamp_up {
            if t.clamp_mss(m).is_some() {
                self.counters.mss_clamped_up += 1;
            }
        }
        if self.cfg.window_cap_down.is_some() {
            // (a retransmitted SYN updates its own bit only)
            let ws = if t.has_window_scale() {
                tcp_opts::WS_UP
            } else {
                0
            };
            let f = &mut self.flows[k as usize];
            f.tcp_opts = (f.tcp_opts & !tcp_opts::WS_UP) | ws;
        }
    }

    /// A TCP segment going down (already NAT'd): MSS clamp of a SYN-ACK,
    /// window scaling learned from it, and the window cap.
    #[inline]
    fn tcp_down(&mut self, pkt: &mut Pkt<'_>, l4: Range<usize>, tcp_flags: u8, k: u32) {
        let cap = self.cfg.window_cap_down;
        let syn_ack = tcp_flags & (flags::SYN | flags::ACK) == flags::SYN | flags::ACK;
        if !syn_ack && cap.is_none() {
            return;
        }
        let mut t = TcpPacket::new_unchecked(&mut pkt.data[l4]);
        let f = &mut self.flows[k as usize];
        if syn_ack {
            if let Some(m) = self.cfg.mss_clamp_down {
                if t.clamp_mss(m).is_some() {
                    self.counters.mss_clamped_down += 1;
                }
            }
            if cap.is_some() {
                let ws = if t.has_window_scale() {
                    tcp_opts::WS_DOWN
                } else {
                    0
                };
                f.tcp_opts = (f.tcp_opts & tcp_opts::WS_UP) | ws | tcp_opts::SYNACK_SEEN;
            }
        }
        if let Some(cap) = cap {
            let known = f.tcp_opts & tcp_opts::SYNACK_SEEN != 0;
            if known && !tcp_opts::scaled(f.tcp_opts) && t.cap_window(cap).is_some() {
                self.counters.window_capped += 1;
            }
        }
    }

    #[inline]
    fn idle_expired(&self, f: &Flow, now: u64) -> bool {
        now.saturating_sub(f.last_ms) > idle_timeout_ms(f.state, f.proto, &self.cfg.timeouts)
    }

    /// End connection `k`: record, counters, key on hold. The entry stays
    /// (and stays linked) for late packets until the hold is over.
    fn close_flow(&mut self, k: u32, reason: CloseReason, acct: &mut impl AcctSink) {
        let (nat_ip, nat_port) = self.ks.key_addr(self.id, k);
        let f = &mut self.flows[k as usize];
        let r = AcctRecord {
            device_id: f.device_id,
            subscriber_ip: if f.v6 { [0; 4] } else { f.sub_ip },
            subscriber_ip6: f.v6.then(|| self.sub6[k as usize]),
            subscriber_port: f.sub_port,
            rep_ip: if f.nat66 { [0; 4] } else { f.dst_ip },
            rep_port: f.dst_port,
            nat_ip,
            nat_port,
            server_ip: f.srv_ip,
            server_port: f.srv_port,
            proto: f.proto,
            service: (f.service != NO_SERVICE).then_some(ServiceId(f.service)),
            group: (f.group != NO_GROUP).then_some(f.group),
            start_ms: f.start_ms,
            end_ms: f.last_ms,
            up_pkts: f.up_pkts,
            up_bytes: f.up_bytes,
            down_pkts: f.down_pkts,
            down_bytes: f.down_bytes,
            attr: f.attr,
            close: reason,
        };
        f.state = FlowState::Closed;
        let load_slot = std::mem::replace(&mut f.load_slot, NO_SLOT);
        self.bal.close(load_slot);
        self.keys.release(k, f.last_ms);
        match reason {
            CloseReason::Fin => self.counters.closed_fin += 1,
            CloseReason::Rst => self.counters.closed_rst += 1,
            CloseReason::IdleTimeout => self.counters.expired += 1,
        }
        if acct.push(&r) {
            self.counters.acct_records += 1;
        } else {
            self.counters.acct_queue_full += 1;
        }
    }

    /// Idle expiry: close and unlink at once (no late packets).
    fn expire_flow(&mut self, k: u32, acct: &mut impl AcctSink) {
        self.close_flow(k, CloseReason::IdleTimeout, acct);
        self.unlink(k);
    }

    fn unlink(&mut self, k: u32) {
        let f = &mut self.flows[k as usize];
        if f.up_slot != UNLINKED {
            self.up.remove(f.up_slot, k);
            f.up_slot = UNLINKED;
        }
    }

    /// Return up to `budget` keys whose hold is over to the free FIFO.
    fn recycle(&mut self, now: u64, budget: usize) -> usize {
        let mut n = 0;
        while n < budget {
            let Some(k) = self.keys.pop_due(now) else {
                break;
            };
            self.unlink(k);
            self.flows[k as usize] = Flow::empty();
            self.keys.free(k);
            self.in_use -= 1;
            self.counters.keys_recycled += 1;
            n += 1;
        }
        n
    }

    /// Timer work, once per poll-loop turn: recycle up to `budget` keys whose
    /// hold is over, then look at up to `budget` entries of the key table
    /// (round robin) and end the idle ones. A full sweep of the table takes
    /// `keys_total() / budget` calls. Returns the entries expired.
    pub fn expire(
        &mut self,
        now_ms: u64,
        budget: usize,
        acct: &mut impl AcctSink,
        _c: &mut WorkerCounters,
    ) -> usize {
        self.recycle(now_ms, budget);
        let n = self.flows.len() as u32;
        let mut expired = 0;
        for _ in 0..budget.min(n as usize) {
            let k = self.sweep;
            self.sweep = if k + 1 >= n { 0 } else { k + 1 };
            let f = &self.flows[k as usize];
            if f.state.is_open() && self.idle_expired(f, now_ms) {
                self.expire_flow(k, acct);
                expired += 1;
            }
        }
        expired
    }
}

/// Rewrite a parsed IPv4 TCP/UDP/ICMP-echo frame in place: Ethernet
/// `(dst, src)`, TTL − 1, IP source → `new_src.0`, destination → `new_dst.0`,
/// L4 source port → `new_src.1`, destination port → `new_dst.1` (ICMP echo:
/// the identifier → `new_src.1` going up, `new_dst.1` going down, i.e.
/// whichever side is not 0 when ports are 0), with incremental checksums.
/// The caller checked `ttl > 1`.
fn rewrite(
    pkt: &mut Pkt<'_>,
    p: &Parsed,
    macs: ([u8; 6], [u8; 6]),
    new_src: ([u8; 4], u16),
    new_dst: ([u8; 4], u16),
) {
    let l3 = p.l3_off as usize;
    let (l4, end) = (p.l4_off as usize, p.ip_end());
    let data = &mut pkt.data[..pkt.len];
    let mut eth = EthernetFrame::new_unchecked(&mut data[..l3]);
    eth.set_dst_addr(macs.0);
    eth.set_src_addr(macs.1);
    let mut ip = Ipv4Packet::new_unchecked(&mut data[l3..end]);
    let (old_src, old_dst) = (ip.src_addr(), ip.dst_addr());
    ip.decrement_ttl();
    ip.rewrite_src_addr(new_src.0);
    ip.rewrite_dst_addr(new_dst.0);
    let seg = &mut data[l4..end];
    match p.proto {
        PROTO_TCP => {
            let mut t = TcpPacket::new_unchecked(seg);
            t.adjust_checksum_addr_v4(old_src, new_src.0);
            t.adjust_checksum_addr_v4(old_dst, new_dst.0);
            t.rewrite_src_port(new_src.1);
            t.rewrite_dst_port(new_dst.1);
        }
        PROTO_UDP => {
            let mut u = UdpPacket::new_unchecked(seg);
            u.adjust_checksum_addr_v4(old_src, new_src.0);
            u.adjust_checksum_addr_v4(old_dst, new_dst.0);
            u.rewrite_src_port(new_src.1);
            u.rewrite_dst_port(new_dst.1);
        }
        _ => {
            // ICMP echo: no pseudo-header; the identifier is the only field.
            // Up: (key port, 0); down: (0, subscriber's identifier).
            let ident = if p.icmp_type == icmp::v4::ECHO_REQUEST {
                new_src.1
            } else {
                new_dst.1
            };
            IcmpPacket::new_unchecked(seg).rewrite_echo_ident(ident);
        }
    }
}

/// NAT66 rewrite of a TCP/UDP packet: MACs, hop limit − 1, addresses and
/// ports, the L4 checksum updated incrementally (RFC 1624; IPv6 has no
/// header checksum).
fn rewrite6(
    pkt: &mut Pkt<'_>,
    p: &Parsed,
    macs: ([u8; 6], [u8; 6]),
    new_src: (&[u8; 16], u16),
    new_dst: (&[u8; 16], u16),
) {
    let l3 = p.l3_off as usize;
    let (l4, end) = (p.l4_off as usize, p.ip_end());
    let data = &mut pkt.data[..pkt.len];
    let mut eth = EthernetFrame::new_unchecked(&mut data[..l3]);
    eth.set_dst_addr(macs.0);
    eth.set_src_addr(macs.1);
    let mut ip = Ipv6Packet::new_unchecked(&mut data[l3..end]);
    let (old_src, old_dst) = (ip.src_addr(), ip.dst_addr());
    ip.decrement_hop_limit();
    ip.set_src_addr(*new_src.0);
    ip.set_dst_addr(*new_dst.0);
    let seg = &mut data[l4..end];
    if p.proto == PROTO_TCP {
        let mut t = TcpPacket::new_unchecked(seg);
        t.adjust_checksum_addr_v6(&old_src, new_src.0);
        t.adjust_checksum_addr_v6(&old_dst, new_dst.0);
        t.rewrite_src_port(new_src.1);
        t.rewrite_dst_port(new_dst.1);
    } else {
        let mut u = UdpPacket::new_unchecked(seg);
        u.adjust_checksum_addr_v6(&old_src, new_src.0);
        u.adjust_checksum_addr_v6(&old_dst, new_dst.0);
        u.rewrite_src_port(new_src.1);
        u.rewrite_dst_port(new_dst.1);
    }
}

/// Set the Ethernet destination and source.
#[inline]
fn set_macs(pkt: &mut Pkt<'_>, dst: [u8; 6], src: [u8; 6]) {
    let mut eth = EthernetFrame::new_unchecked(&mut pkt.data[..14]);
    eth.set_dst_addr(dst);
    eth.set_src_addr(src);
}

/// Rewrite the ports of a TCP/UDP segment (`(source, destination)`) or the
/// identifier of an ICMP/ICMPv6 echo (`ident`), with incremental checksum
/// updates (the pseudo-header is not touched: the caller's translation
/// already accounted for the new addresses).
#[inline]
fn rewrite_ports(seg: &mut [u8], proto: u8, (sport, dport): (u16, u16), ident: u16) {
    match proto {
        PROTO_TCP => {
            let mut t = TcpPacket::new_unchecked(seg);
            t.rewrite_src_port(sport);
            t.rewrite_dst_port(dport);
        }
        PROTO_UDP => {
            let mut u = UdpPacket::new_unchecked(seg);
            u.rewrite_src_port(sport);
            u.rewrite_dst_port(dport);
        }
        _ => IcmpPacket::new_unchecked(seg).rewrite_echo_ident(ident),
    }
}
