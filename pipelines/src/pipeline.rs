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
use crate::verdict::{Pkt, Verdict, WorkerCounters};

/// Ethertype of ARP.
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];

/// What the management side publishes for the workers (one immutable
/// snapshot; a change is a new snapshot).
#[derive(Clone, Default)]
pub struct Tables {
    pub gw: Option<GwTables>,
}

/// What a worker runs.
pub enum Pipeline {
    /// Plain forwarding between port pairs.
    Wire(WireFwd),
    /// The packet gateway: ARP for its own addresses, then the GW stage.
    Gw {
        arp: ArpResponder,
        gw: Box<GwWorker>,
    },
}

/// Sweep budget of the GW's idle-expiry timer per poll-loop turn.
pub const EXPIRE_BUDGET: usize = 64;

impl Pipeline {
    /// Process a burst: `out[i]` is the verdict on `pkts[i]`. Drops are
    /// counted in `c` by the stage that decides them.
    #[inline]
    pub fn process_burst(
        &mut self,
        t: &Tables,
        pkts: &mut [Pkt<'_>],
        out: &mut [Verdict],
        now_ms: u64,
        acct: &mut impl AcctSink,
        c: &mut WorkerCounters,
    ) {
        match self {
            Pipeline::Wire(f) => {
                for (p, v) in pkts.iter().zip(out.iter_mut()) {
                    *v = f.process(p, c);
                }
            }
            Pipeline::Gw { arp, gw } => {
                let Some(tables) = t.gw.as_ref() else {
                    for v in out.iter_mut() {
                        *v = Verdict::Drop(crate::DropReason::NoSession);
                        c.drop(crate::DropReason::NoSession);
                    }
                    return;
                };
                for (p, v) in pkts.iter_mut().zip(out.iter_mut()) {
                    *v = if p.len >= 14 && p.data[12..14] == ETHERTYPE_ARP {
                        arp.process(p, c)
                    } else {
                        gw.process(tables, p, now_ms, acct, c)
                    };
                }
            }
        }
    }

    /// Periodic work outside the packet path (the idle-expiry sweep);
    /// called once per poll-loop turn.
    #[inline]
    pub fn poll(&mut self, now_ms: u64, acct: &mut impl AcctSink, c: &mut WorkerCounters) {
        if let Pipeline::Gw { gw, .. } = self {
            gw.expire(now_ms, EXPIRE_BUDGET, acct, c);
        }
    }

    /// Named event counters of the stages (published with the worker's).
    pub fn events(&self, out: &mut [(&'static str, u64); 16]) -> usize {
        match self {
            Pipeline::Wire(_) => 0,
            Pipeline::Gw { gw, .. } => {
                let g = &gw.counters;
                let ev = [
                    ("gw_up_pkts", g.up_pkts),
                    ("gw_down_pkts", g.down_pkts),
                    ("gw_new_flows", g.new_flows),
                    ("gw_closed_fin", g.closed_fin),
                    ("gw_closed_rst", g.closed_rst),
                    ("gw_expired", g.expired),
                    ("gw_rst_unauthorized", g.rst_unauthorized),
                    ("gw_acct_records", g.acct_records),
                    ("gw_acct_queue_full", g.acct_queue_full),
                    ("gw_handoffs", g.handoffs),
                    ("gw_lb_moves", g.lb_moves),
                    ("gw_open_flows", gw.open_flows() as u64),
                    ("gw_keys_in_use", gw.keys_in_use() as u64),
                ];
                out[..ev.len()].copy_from_slice(&ev);
                ev.len()
            }
        }
    }
}
