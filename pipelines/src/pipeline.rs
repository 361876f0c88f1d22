//! The chain a worker runs over every burst, chosen by the profile's role.
//!
//! `process_burst` takes a burst of frames and writes one verdict per frame;
//! the engine then moves each mbuf where its verdict says. Stages see the
//! whole burst, so a stage may look ahead (prefetch, batched lookups).
//! The tables the management side publishes arrive as `&Tables`, loaded by
//! the engine once per burst.

use crate::arp::ArpResponder;
use crate::fwd::WireFwd;
use crate::gw::acct::AcctSink;
use crate::gw::tables::GwTables;
use crate::gw::GwWorker;
use crate::hw::{HeapAlloc, Prefetch, TableAlloc};
use crate::lb::{LbCounters, LbSnapshot, LbStage, LbVerdict};
use crate::ndp::{is_nd, NdpResponder};
use crate::runtime::{Clock, Meter, Stage};
use crate::verdict::{Pkt, Verdict, WorkerCounters, MAX_BURST};

/// Ethertype of ARP.
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];

/// What the management side publishes for the workers (one immutable
/// snapshot; a change is a new snapshot).
#[derive(Clone, Default)]
pub struct Tables {
    pub gw: Option<GwTables>,
    pub lb: Option<LbSnapshot>,
}

/// What a worker runs (`A`: where the GW's tables live).
pub enum Pipeline<A: TableAlloc = HeapAlloc> {
    /// Plain forwarding between port pairs.
    Wire(WireFwd),
    /// The packet gateway: ARP for its own addresses, then the GW stage.
    Gw {
        arp: ArpResponder,
        ndp: NdpResponder,
        gw: Box<GwWorker<A>>,
    },
    /// The first distribution stage alone (ARP is the LB stage's own).
    Lb {
        lb: LbStage,
        ndp: NdpResponder,
        lc: LbCounters,
    },
    /// LB and GW chained in one box: subscribers' frames go through the LB;
    /// those whose gateway is this box continue to the GW stage; frames from
    /// the servers go to the GW stage; frames from other gateways on the LAN
    /// (destination not one of our pool addresses) take the LB's down path.
    LbGw {
        lb: LbStage,
        lc: LbCounters,
        arp: ArpResponder,
        ndp: NdpResponder,
        gw: Box<GwWorker<A>>,
        server_port: crate::PortIdx,
    },
}

/// Slots for named event counters per worker.
pub const MAX_EVENTS: usize = 64;
/// Named events of the LB stage and of the GW stage ([`Pipeline::events`]):
/// each list is typed with its length, so a name added without changing
/// these does not compile, and an `lb+gw` worker's both lists must fit.
const LB_EVENTS: usize = 4;
const GW_EVENTS: usize = 45;
const _: () = assert!(LB_EVENTS + GW_EVENTS <= MAX_EVENTS);

/// Due connections the GW's timer looks at per [`Pipeline::poll`] call.
pub const EXPIRE_BUDGET: usize = 64;

impl<A: TableAlloc> Pipeline<A> {
    /// Process a burst: `out[i]` is the verdict on `pkts[i]`. Drops are
    /// counted in `c` by the stage that decides them; each stage laps `m`
    /// once it has handled the burst; `pf` prefetches the GW's lookups.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub fn process_burst<C: Clock, P: Prefetch>(
        &mut self,
        t: &Tables,
        pkts: &mut [Pkt<'_>],
        out: &mut [Verdict],
        now_ms: u64,
        acct: &mut impl AcctSink,
        c: &mut WorkerCounters,
        m: &mut Meter<C>,
        pf: &P,
    ) {
        let n = pkts.len().min(MAX_BURST);
        match self {
            Pipeline::Wire(f) => {
                for (p, v) in pkts.iter().zip(out.iter_mut()) {
                    *v = f.process(p, c);
                }
                m.lap(Stage::Wire, n);
            }
            Pipeline::Gw { arp, ndp, gw } => {
                let Some(tables) = t.gw.as_ref() else {
                    return drop_all(out, c);
                };
                // ARP and NDP for our addresses first; the rest is the GW's.
                let mut sel = 0u64;
                let mut own = 0;
                for (i, (p, v)) in pkts.iter_mut().zip(out.iter_mut()).take(n).enumerate() {
                    if is_arp(p) {
                        *v = arp.process(p, c);
                        own += 1;
                    } else if is_nd(p.frame()) {
                        *v = ndp.process(p, c);
                        own += 1;
                    } else {
                        sel |= 1 << i;
                    }
                }
                if own > 0 {
                    m.lap(Stage::Arp, own);
                }
                gw.process_burst(tables, pkts, sel, out, now_ms, acct, c, m, pf);
            }
            Pipeline::Lb { lb, ndp, lc } => {
                let Some(snap) = t.lb.as_ref() else {
                    return drop_all(out, c);
                };
                for (p, v) in pkts.iter_mut().zip(out.iter_mut()) {
                    if is_nd(p.frame()) {
                        *v = ndp.process(p, c);
                        continue;
                    }
                    *v = match lb.process(snap, p, c, lc) {
                        LbVerdict::Done(v) => v,
                        // No GW stage here: a range pointing at our own MAC is a
                        // configuration error, counted rather than looped.
                        LbVerdict::Local => {
                            c.drop(crate::DropReason::LbLocalNoGw);
                            Verdict::Drop(crate::DropReason::LbLocalNoGw)
                        }
                    };
                }
                m.lap(Stage::Lb, n);
            }
            Pipeline::LbGw {
                lb,
                lc,
                arp,
                ndp,
                gw,
                server_port,
            } => {
                let (Some(snap), Some(tables)) = (t.lb.as_ref(), t.gw.as_ref()) else {
                    return drop_all(out, c);
                };
                let lan = lb.config().lan_port;
                let mut sel = 0u64;
                for (i, (p, v)) in pkts.iter_mut().zip(out.iter_mut()).take(n).enumerate() {
                    if is_arp(p) {
                        *v = arp.process(p, c);
                    } else if is_nd(p.frame()) {
                        *v = ndp.process(p, c);
                    } else if p.port == *server_port
                        && (p.port != lan
                            || to_pool(
                                p,
                                gw.config().pool.as_slice(),
                                gw.config().pool6.as_slice(),
                            ))
                    {
                        sel |= 1 << i;
                    } else {
                        match lb.process(snap, p, c, lc) {
                            LbVerdict::Done(x) => *v = x,
                            LbVerdict::Local => sel |= 1 << i,
                        }
                    }
                }
                m.lap(Stage::Lb, n);
                gw.process_burst(tables, pkts, sel, out, now_ms, acct, c, m, pf);
            }
        }
    }

    /// Timer work outside the packet path (idle expiry, the end of holds):
    /// up to `budget` due connections looked at. `(looked at, ended)`: the
    /// engine calls again while a call used its whole budget and its time
    /// budget lasts.
    #[inline]
    pub fn poll(
        &mut self,
        now_ms: u64,
        budget: usize,
        acct: &mut impl AcctSink,
        c: &mut WorkerCounters,
    ) -> (usize, usize) {
        match self {
            Pipeline::Gw { gw, .. } | Pipeline::LbGw { gw, .. } => {
                gw.expire_due(now_ms, budget, acct, c)
            }
            _ => (0, 0),
        }
    }

    /// Drain: the GW stage refuses new connections (see
    /// [`GwWorker::set_draining`]); other roles have none to refuse.
    pub fn set_draining(&mut self, on: bool) {
        if let Pipeline::Gw { gw, .. } | Pipeline::LbGw { gw, .. } = self {
            gw.set_draining(on);
        }
    }

    /// Hand every frame the stages released since the last call (held
    /// fragments whose datagram's first fragment came) to `send` (bytes,
    /// port): the engine copies each into an mbuf and transmits it. How
    /// many.
    #[inline]
    pub fn drain_released(&mut self, send: impl FnMut(&[u8], crate::PortIdx)) -> usize {
        match self {
            Pipeline::Gw { gw, .. } | Pipeline::LbGw { gw, .. } => gw.drain_released(send),
            _ => 0,
        }
    }

    /// The worker stops: every open connection's record (see
    /// [`GwWorker::close_all`]); how many.
    pub fn close_all(&mut self, now_ms: u64, acct: &mut impl AcctSink) -> usize {
        match self {
            Pipeline::Gw { gw, .. } | Pipeline::LbGw { gw, .. } => gw.close_all(now_ms, acct),
            _ => 0,
        }
    }

    /// Named event counters of the stages (published with the worker's).
    pub fn events(&self, out: &mut [(&'static str, u64); MAX_EVENTS]) -> usize {
        let mut n = 0;
        if let Pipeline::Lb { lc, .. } | Pipeline::LbGw { lc, .. } = self {
            let ev: [(&'static str, u64); LB_EVENTS] = [
                ("lb_to_primary", lc.to_primary),
                ("lb_to_substitute", lc.to_substitute),
                ("lb_local", lc.local),
                ("lb_down_path", lc.down_path),
            ];
            out[..ev.len()].copy_from_slice(&ev);
            n = ev.len();
        }
        let out = &mut out[n..];
        n + match self {
            Pipeline::Wire(_) | Pipeline::Lb { .. } => 0,
            Pipeline::Gw { gw, .. } | Pipeline::LbGw { gw, .. } => {
                let g = &gw.counters;
                let ev: [(&'static str, u64); GW_EVENTS] = [
                    ("gw_up_pkts", g.up_pkts),
                    ("gw_down_pkts", g.down_pkts),
                    ("gw_new_flows", g.new_flows),
                    ("gw_closed_fin", g.closed_fin),
                    ("gw_closed_rst", g.closed_rst),
                    ("gw_expired", g.expired),
                    ("gw_closed_shutdown", g.closed_shutdown),
                    ("gw_rst_unauthorized", g.rst_unauthorized),
                    ("gw_rst_exhausted", g.rst_exhausted),
                    ("gw_rst_nat_pool_exhausted", g.rst_pool_exhausted),
                    ("gw_rst_flow_table_full", g.rst_table_full),
                    ("gw_acct_records", g.acct_records),
                    ("gw_acct_queue_full", g.acct_queue_full),
                    ("gw_handoffs", g.handoffs),
                    ("gw_lb_moves", g.lb_moves),
                    ("gw_lb_repointed", g.lb_repointed),
                    ("gw_open_flows", gw.open_flows() as u64),
                    ("gw_nat66_flows", g.nat66_flows),
                    ("gw_mss_clamped_up", g.mss_clamped_up),
                    ("gw_mss_clamped_down", g.mss_clamped_down),
                    ("gw_window_capped", g.window_capped),
                    ("gw_rss_steered", g.rss_steered),
                    ("gw_rss_miss", g.rss_miss),
                    ("gw_nat64_flows", g.nat64_flows),
                    // ICMP errors translated both ways (NAT44, NAT64) + NAT64's
                    // Fragmentation Needed sent
                    (
                        "gw_icmp_errors",
                        g.icmp_err_up + g.icmp_err_down + g.frag_needed,
                    ),
                    ("gw_vip_echo_replies", g.vip_echo_replies),
                    ("gw_held", gw.held() as u64),
                    ("gw_entries_in_use", gw.keys_in_use() as u64),
                    ("gw_revived", g.revived),
                    ("gw_replaced", g.replaced),
                    ("gw_keys_recycled", g.keys_recycled),
                    ("gw_late_pkts", g.late_pkts),
                    ("gw_attr_full", g.attr_full),
                    ("gw_sub_untracked", g.sub_untracked),
                    ("gw_syncookies_sent", g.syncookies_sent),
                    ("gw_syncookies_valid", g.syncookies_valid),
                    ("gw_synproxy_stashed", g.synproxy_stashed),
                    ("gw_synproxy_resyn", g.synproxy_resyn),
                    ("gw_synproxy_server_silent", g.synproxy_server_silent),
                    ("gw_synproxy_stash_miss", g.synproxy_stash_miss),
                    ("gw_half_open", gw.half_open() as u64),
                    ("gw_frag_first", g.frag_first),
                    ("gw_frag_translated", g.frag_translated),
                    ("gw_frag_held", g.frag_held),
                    ("gw_frag_contexts", gw.frag_state().0 as u64),
                ];
                out[..ev.len()].copy_from_slice(&ev);
                ev.len()
            }
        }
    }
}

#[inline]
fn is_arp(p: &Pkt<'_>) -> bool {
    p.len() >= 14 && p.frame()[12..14] == ETHERTYPE_ARP
}

/// Is the frame an (untagged) IPv4 packet to one of `pool`?
#[inline]
fn to_pool(p: &Pkt<'_>, pool: &[[u8; 4]], pool6: &[[u8; 16]]) -> bool {
    (p.len() >= 34
        && p.frame()[12..14] == [0x08, 0x00]
        && pool.iter().any(|a| p.frame()[30..34] == *a))
        || (p.len() >= 54
            && p.frame()[12..14] == [0x86, 0xdd]
            && pool6.iter().any(|a| p.frame()[38..54] == *a))
}

fn drop_all(out: &mut [Verdict], c: &mut WorkerCounters) {
    // No snapshot published yet (the engine publishes one before starting
    // the workers, so this does not happen in practice).
    for v in out.iter_mut() {
        *v = Verdict::Drop(crate::DropReason::NoTables);
        c.drop(crate::DropReason::NoTables);
    }
}
