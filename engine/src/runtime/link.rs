//! The management plane's handle on a running engine, and all it may touch:
//! frames the workers hand over (`Verdict::Control`), frames to send through
//! worker 0's TX path, the published table snapshot, the workers'
//! accounting queues, and the counters. The management thread never sees
//! the [`Engine`](super::engine::Engine) itself, nor an mbuf, port id or
//! ring: it speaks in byte slices and the profile's port indexes.
//!
//! Who frees what: frames taken by [`MgmtLink::recv`] are freed (in bulk)
//! after the callback; frames queued by [`MgmtLink::send`] are copied into
//! fresh mbufs that worker 0 transmits and the PMD frees; a full ring or an
//! empty pool drops the rest of that call, counted in the return value.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use arc_swap::ArcSwap;
use crossbeam::queue::ArrayQueue;
use pgw_pipelines::gw::acct::AcctRecord;
use pgw_pipelines::pipeline::Tables;
use pgw_pipelines::runtime::Runtime;
use pgw_pipelines::wire::MacAddr;
use pgw_pipelines::{PortIdx, MAX_BURST};

use super::dpdk::{self, Burst, Consumer, SpProducer};
use super::info::Info;
use super::stats::Report;

pub struct MgmtLink {
    pub(super) info: Arc<Info>,
    /// Frames the workers hand to the management thread (its one consumer).
    pub(super) control: Consumer,
    /// Frames the management thread sends (its one producer); worker 0
    /// transmits them.
    pub(super) mgmt_tx: SpProducer,
    /// The published snapshot the workers read (RCU style): the management
    /// thread builds a new one and stores it; workers load it per burst.
    pub tables: Arc<ArcSwap<Tables>>,
    /// One accounting queue per worker (single producer: that worker;
    /// single consumer: the management thread).
    pub acct: Vec<Arc<ArrayQueue<AcctRecord>>>,
}

impl MgmtLink {
    /// Take up to one burst of the frames the workers handed over and give
    /// each to `f` with the port (profile index) it arrived on; how many
    /// there were.
    pub fn recv(&self, mut f: impl FnMut(Option<PortIdx>, &[u8])) -> usize {
        let mut b = Burst::new();
        let n = b.dequeue(&self.control, MAX_BURST);
        if n == 0 {
            return 0;
        }
        self.info.control_rx.fetch_add(n as u64, Relaxed);
        for mut m in b.drain() {
            let id = m.port();
            let port = self.info.ports.iter().position(|p| p.id.raw() == id);
            f(port.map(|p| p as PortIdx), m.frame());
        }
        n
    }

    /// Queue frames for worker 0 to transmit, each on the port (profile
    /// index) it names; how many were queued.
    pub fn send<'a>(&self, frames: impl IntoIterator<Item = (PortIdx, &'a [u8])>) -> usize {
        let mut queued = 0;
        let mut b = Burst::new();
        for (port, f) in frames {
            let Some(p) = self.info.ports.get(port as usize) else {
                continue;
            };
            let Some(mut m) = self.info.pool.alloc() else {
                break;
            };
            if !m.write(f) {
                continue;
            }
            m.set_port(p.id);
            if let Err(m) = b.push(m) {
                queued += b.enqueue(&self.mgmt_tx).0;
                let _ = b.push(m);
            }
        }
        queued + b.enqueue(&self.mgmt_tx).0
    }

    /// The MAC address of a port (profile index).
    pub fn port_mac(&self, port: PortIdx) -> MacAddr {
        self.info.ports[port as usize].mac
    }

    /// Every counter now.
    pub fn report(&self) -> Report {
        self.info.report()
    }

    /// Each worker's (lcore, runtime counters) now.
    pub fn runtime(&self) -> Vec<(u32, Runtime)> {
        self.info
            .shared
            .iter()
            .zip(self.info.lcores.iter())
            .map(|(s, l)| (l.id(), s.runtime()))
            .collect()
    }

    /// TSC ticks per second (the unit of the runtime counters' cycles).
    /// The engine's clock base: the management thread's `now_ms` is on
    /// the workers' scale.
    pub fn timebase(&self) -> super::info::Timebase {
        self.info.timebase
    }

    pub fn tsc_hz(&self) -> u64 {
        dpdk::tsc_hz()
    }
}
