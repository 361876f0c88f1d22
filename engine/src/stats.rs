//! Counters: each worker writes plain `u64`s in its own [`WorkerLocal`] and
//! copies them to its own cache-aligned [`WorkerShared`] (relaxed atomic
//! stores, single writer) on the TX drain timer; the management thread and
//! `pgw stats` read the shared copies. No counter is written by two cores.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use pgw_pipelines::{DropReason, WorkerCounters};
use serde::{Deserialize, Serialize};

/// Most ports one instance drives.
pub const MAX_PORTS: usize = 16;

/// A worker's own counters (written only by that worker).
#[derive(Clone)]
pub struct WorkerLocal {
    pub rx: u64,
    pub tx: u64,
    pub polls: u64,
    pub empty_polls: u64,
    pub idle_sleeps: u64,
    pub handoff_in: u64,
    pub handoff_out: u64,
    pub control_out: u64,
    pub port_rx: [u64; MAX_PORTS],
    pub port_tx: [u64; MAX_PORTS],
    pub pipe: WorkerCounters,
    /// Named event counters of the pipeline's stages.
    pub events: [(&'static str, u64); pgw_pipelines::pipeline::MAX_EVENTS],
    pub nevents: usize,
}

impl Default for WorkerLocal {
    fn default() -> Self {
        WorkerLocal {
            rx: 0,
            tx: 0,
            polls: 0,
            empty_polls: 0,
            idle_sleeps: 0,
            handoff_in: 0,
            handoff_out: 0,
            control_out: 0,
            port_rx: [0; MAX_PORTS],
            port_tx: [0; MAX_PORTS],
            pipe: WorkerCounters::default(),
            events: [("", 0); pgw_pipelines::pipeline::MAX_EVENTS],
            nevents: 0,
        }
    }
}

/// The published copy of a worker's counters.
#[repr(align(64))]
#[derive(Default)]
pub struct WorkerShared {
    rx: AtomicU64,
    tx: AtomicU64,
    polls: AtomicU64,
    empty_polls: AtomicU64,
    idle_sleeps: AtomicU64,
    handoff_in: AtomicU64,
    handoff_out: AtomicU64,
    control_out: AtomicU64,
    port_rx: [AtomicU64; MAX_PORTS],
    port_tx: [AtomicU64; MAX_PORTS],
    drops: [AtomicU64; DropReason::COUNT],
    events: [AtomicU64; pgw_pipelines::pipeline::MAX_EVENTS],
    event_names: std::sync::OnceLock<Vec<&'static str>>,
}

impl WorkerShared {
    /// Publish `l` (called by the owning worker only).
    pub fn publish(&self, l: &WorkerLocal) {
        self.rx.store(l.rx, Relaxed);
        self.tx.store(l.tx, Relaxed);
        self.polls.store(l.polls, Relaxed);
        self.empty_polls.store(l.empty_polls, Relaxed);
        self.idle_sleeps.store(l.idle_sleeps, Relaxed);
        self.handoff_in.store(l.handoff_in, Relaxed);
        self.handoff_out.store(l.handoff_out, Relaxed);
        self.control_out.store(l.control_out, Relaxed);
        for i in 0..MAX_PORTS {
            self.port_rx[i].store(l.port_rx[i], Relaxed);
            self.port_tx[i].store(l.port_tx[i], Relaxed);
        }
        for (d, v) in self.drops.iter().zip(l.pipe.drops.iter()) {
            d.store(*v, Relaxed);
        }
        if l.nevents > 0 {
            // Names are fixed for a worker's life: set once.
            self.event_names
                .get_or_init(|| l.events[..l.nevents].iter().map(|(n, _)| *n).collect());
            for (a, (_, v)) in self.events.iter().zip(l.events[..l.nevents].iter()) {
                a.store(*v, Relaxed);
            }
        }
    }

    /// Read a report of this worker.
    pub fn report(&self, worker: usize, lcore: u32, nports: usize) -> WorkerReport {
        let drops = DropReason::ALL
            .iter()
            .zip(self.drops.iter())
            .map(|(r, v)| (r.name().to_string(), v.load(Relaxed)))
            .collect();
        WorkerReport {
            worker,
            lcore,
            rx: self.rx.load(Relaxed),
            tx: self.tx.load(Relaxed),
            polls: self.polls.load(Relaxed),
            empty_polls: self.empty_polls.load(Relaxed),
            idle_sleeps: self.idle_sleeps.load(Relaxed),
            handoff_in: self.handoff_in.load(Relaxed),
            handoff_out: self.handoff_out.load(Relaxed),
            control_out: self.control_out.load(Relaxed),
            port_rx: self.port_rx[..nports]
                .iter()
                .map(|v| v.load(Relaxed))
                .collect(),
            port_tx: self.port_tx[..nports]
                .iter()
                .map(|v| v.load(Relaxed))
                .collect(),
            drops,
            events: self
                .event_names
                .get()
                .map(|names| {
                    names
                        .iter()
                        .zip(self.events.iter())
                        .map(|(n, v)| (n.to_string(), v.load(Relaxed)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct WorkerReport {
    pub worker: usize,
    pub lcore: u32,
    pub rx: u64,
    pub tx: u64,
    pub polls: u64,
    pub empty_polls: u64,
    pub idle_sleeps: u64,
    pub handoff_in: u64,
    pub handoff_out: u64,
    pub control_out: u64,
    pub port_rx: Vec<u64>,
    pub port_tx: Vec<u64>,
    /// (reason, count) for every drop reason, zeros included.
    pub drops: Vec<(String, u64)>,
    /// (event, count) of the pipeline's stages (GW connections, ...).
    #[serde(default)]
    pub events: Vec<(String, u64)>,
}

impl WorkerReport {
    pub fn event(&self, name: &str) -> u64 {
        self.events
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }
}

impl WorkerReport {
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(|(_, v)| v).sum()
    }
    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops
            .iter()
            .find(|(n, _)| n == reason.name())
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct PortReport {
    pub name: String,
    pub device: String,
    pub driver: String,
    pub dpdk_port: u16,
    pub mac: String,
    pub link_up: bool,
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rss: bool,
    /// PMD counters (`rte_eth_stats_get`).
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Report {
    pub instance: String,
    pub role: String,
    pub dpdk: String,
    pub hugepages: bool,
    pub uptime_ms: u64,
    pub mbufs_in_use: u32,
    pub mbufs_available: u32,
    pub control_rx: u64,
    pub ports: Vec<PortReport>,
    pub workers: Vec<WorkerReport>,
}

impl Report {
    pub fn rx(&self) -> u64 {
        self.workers.iter().map(|w| w.rx).sum()
    }
    pub fn tx(&self) -> u64 {
        self.workers.iter().map(|w| w.tx).sum()
    }
    pub fn drops(&self) -> u64 {
        self.workers.iter().map(|w| w.total_drops()).sum()
    }
    pub fn drop_count(&self, r: DropReason) -> u64 {
        self.workers.iter().map(|w| w.drop_count(r)).sum()
    }
    /// An event counter summed over workers.
    pub fn event(&self, name: &str) -> u64 {
        self.workers.iter().map(|w| w.event(name)).sum()
    }

    /// The table a person reads (`pgw stats`).
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "instance {}  role {}  {}  {}  up {:.1}s  mbufs in use {} / free {}",
            self.instance,
            self.role,
            self.dpdk,
            if self.hugepages {
                "hugepages"
            } else {
                "no-huge"
            },
            self.uptime_ms as f64 / 1000.0,
            self.mbufs_in_use,
            self.mbufs_available
        );
        let _ = writeln!(s, "\nports");
        let _ = writeln!(
            s,
            "  {:<10} {:<12} {:>4} {:<17} {:>5} {:>12} {:>12} {:>10} {:>8} {:>8}",
            "name", "driver", "id", "mac", "link", "rx pkts", "tx pkts", "missed", "ierr", "oerr"
        );
        for p in &self.ports {
            let _ = writeln!(
                s,
                "  {:<10} {:<12} {:>4} {:<17} {:>5} {:>12} {:>12} {:>10} {:>8} {:>8}",
                p.name,
                p.driver,
                p.dpdk_port,
                p.mac,
                if p.link_up { "up" } else { "down" },
                p.ipackets,
                p.opackets,
                p.imissed,
                p.ierrors,
                p.oerrors
            );
        }
        let _ = writeln!(s, "\nworkers");
        let _ = writeln!(
            s,
            "  {:>3} {:>5} {:>12} {:>12} {:>10} {:>10} {:>10} {:>12} {:>12}",
            "#", "lcore", "rx", "tx", "drops", "handoff>", ">handoff", "polls", "empty"
        );
        for w in &self.workers {
            let _ = writeln!(
                s,
                "  {:>3} {:>5} {:>12} {:>12} {:>10} {:>10} {:>10} {:>12} {:>12}",
                w.worker,
                w.lcore,
                w.rx,
                w.tx,
                w.total_drops(),
                w.handoff_out,
                w.handoff_in,
                w.polls,
                w.empty_polls
            );
        }
        if let Some(w0) = self.workers.first() {
            if !w0.events.is_empty() {
                let _ = writeln!(s, "\nevents (summed over workers)");
                for (n, _) in &w0.events {
                    let _ = writeln!(s, "  {:<24} {:>12}", n, self.event(n));
                }
            }
        }
        let mut any = false;
        for r in DropReason::ALL {
            let v = self.drop_count(*r);
            if v > 0 {
                if !any {
                    let _ = writeln!(s, "\ndrops by reason");
                    any = true;
                }
                let _ = writeln!(s, "  {:<24} {:>12}", r.name(), v);
            }
        }
        if !any {
            let _ = writeln!(s, "\ndrops by reason: none");
        }
        s
    }
}

pub fn mac_string(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}
