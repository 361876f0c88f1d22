//! The chain a worker runs over every burst, chosen by the profile's role.
//!
//! `process_burst` takes a burst of frames and writes one verdict per frame;
//! the engine then moves each mbuf where its verdict says. Stages see the
//! whole burst, so a stage may look ahead (prefetch, batched lookups).

use crate::fwd::WireFwd;
use crate::verdict::{Pkt, Verdict, WorkerCounters};

/// What a worker runs.
pub enum Pipeline {
    /// Plain forwarding between port pairs.
    Wire(WireFwd),
}

impl Pipeline {
    /// Process a burst: `out[i]` is the verdict on `pkts[i]`. Drops are
    /// counted in `c` by the stage that decides them.
    #[inline]
    pub fn process_burst(
        &mut self,
        pkts: &mut [Pkt<'_>],
        out: &mut [Verdict],
        _now_ms: u64,
        c: &mut WorkerCounters,
    ) {
        match self {
            Pipeline::Wire(f) => {
                for (p, v) in pkts.iter().zip(out.iter_mut()) {
                    *v = f.process(p, c);
                }
            }
        }
    }

    /// Periodic work outside the packet path (timer sweeps); called once per
    /// poll-loop turn with a small budget.
    #[inline]
    pub fn poll(&mut self, _now_ms: u64, _c: &mut WorkerCounters) {}
}
