//! Counters: each worker writes plain `u64`s in its own [`WorkerLocal`] and
//! copies them to its own cache-aligned [`WorkerShared`] (relaxed atomic
//! stores, single writer) on the TX drain timer; the management thread and
//! `pgw stats` read the shared copies. No counter is written by two cores.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use pgw_pipelines::runtime::{Runtime, Stage, StageCounters};
use pgw_pipelines::{DropReason, WorkerCounters};
use serde::{Deserialize, Serialize};

use super::dpdk::PortStats;

/// Most ports one instance drives.
pub const MAX_PORTS: usize = 16;

/// [`LoopCounters`] and its conversions to and from an array (the
/// published copy is one), from one list of its fields.
macro_rules! loop_counters {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {
        /// A worker's poll-loop counters: packets in and out, how it polled.
        /// (A report without a counter, from an older instance, reads it 0.)
        #[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[serde(default)]
        pub struct LoopCounters {
            $($(#[$doc])* pub $field: u64,)*
        }

        impl LoopCounters {
            const N: usize = [$(stringify!($field)),*].len();

            fn to_array(self) -> [u64; Self::N] {
                [$(self.$field),*]
            }

            fn from_array(a: [u64; Self::N]) -> LoopCounters {
                let [$($field),*] = a;
                LoopCounters { $($field),* }
            }
        }
    };
}

loop_counters! {
    /// Packets taken in (ports and handoff ring).
    rx,
    /// Packets sent on ports.
    tx,
    /// Poll-loop turns.
    polls,
    /// Turns that received nothing.
    empty_polls,
    /// Idle back-off sleeps.
    idle_sleeps,
    /// Packets taken from the handoff ring.
    handoff_in,
    /// Packets handed to the worker owning their key.
    handoff_out,
    /// Packets handed to the management thread.
    control_out,
    /// Frames received over several mbufs (chains: `engine.mbuf_size`
    /// below the frame's length), taken in whole.
    rx_chained,
}

/// A worker's own counters (written only by that worker).
#[derive(Clone)]
pub struct WorkerLocal {
    pub loops: LoopCounters,
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
            loops: LoopCounters::default(),
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
pub struct WorkerShared {
    /// [`LoopCounters`], in its array order.
    loops: [AtomicU64; LoopCounters::N],
    port_rx: [AtomicU64; MAX_PORTS],
    port_tx: [AtomicU64; MAX_PORTS],
    drops: [AtomicU64; DropReason::COUNT],
    events: [AtomicU64; pgw_pipelines::pipeline::MAX_EVENTS],
    event_names: std::sync::OnceLock<Vec<&'static str>>,
    /// Runtime accounting: per stage (calls, packets, cycles).
    rt_stages: [[AtomicU64; 3]; Stage::COUNT],
    /// turns, busy_turns, busy_cycles, idle_cycles, packets.
    rt_loop: [AtomicU64; 5],
}

impl Default for WorkerShared {
    fn default() -> Self {
        fn zeros<const N: usize>() -> [AtomicU64; N] {
            std::array::from_fn(|_| AtomicU64::new(0))
        }
        WorkerShared {
            loops: zeros(),
            port_rx: zeros(),
            port_tx: zeros(),
            drops: zeros(),
            events: zeros(),
            event_names: std::sync::OnceLock::new(),
            rt_stages: std::array::from_fn(|_| zeros()),
            rt_loop: zeros(),
        }
    }
}

impl WorkerShared {
    /// Publish the runtime counters (called by the owning worker only).
    pub fn publish_runtime(&self, rt: &Runtime) {
        for (a, s) in self.rt_stages.iter().zip(rt.stages.iter()) {
            a[0].store(s.calls, Relaxed);
            a[1].store(s.packets, Relaxed);
            a[2].store(s.cycles, Relaxed);
        }
        let l = [
            rt.turns,
            rt.busy_turns,
            rt.busy_cycles,
            rt.idle_cycles,
            rt.packets,
        ];
        for (a, v) in self.rt_loop.iter().zip(l) {
            a.store(v, Relaxed);
        }
    }

    /// The runtime counters as last published.
    pub fn runtime(&self) -> Runtime {
        let mut rt = Runtime::default();
        for (s, a) in rt.stages.iter_mut().zip(self.rt_stages.iter()) {
            *s = StageCounters {
                calls: a[0].load(Relaxed),
                packets: a[1].load(Relaxed),
                cycles: a[2].load(Relaxed),
            };
        }
        let l: Vec<u64> = self.rt_loop.iter().map(|a| a.load(Relaxed)).collect();
        rt.turns = l[0];
        rt.busy_turns = l[1];
        rt.busy_cycles = l[2];
        rt.idle_cycles = l[3];
        rt.packets = l[4];
        rt
    }

    /// Publish `l` (called by the owning worker only).
    pub fn publish(&self, l: &WorkerLocal) {
        for (a, v) in self.loops.iter().zip(l.loops.to_array()) {
            a.store(v, Relaxed);
        }
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
            loops: LoopCounters::from_array(std::array::from_fn(|k| self.loops[k].load(Relaxed))),
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
    /// Its fields are the report's own in JSON.
    #[serde(flatten)]
    pub loops: LoopCounters,
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
    /// PMD counters (`rte_eth_stats_get`), as fields of the port's own
    /// object in JSON.
    #[serde(flatten)]
    pub pmd: PortStats,
    /// The kernel interface behind the device and its own drop counters
    /// (drops before the PMD sees a frame); `None` when there is none or it
    /// is not in pgw's network namespace.
    #[serde(default)]
    pub kernel_iface: Option<String>,
    #[serde(default)]
    pub kernel_rx_dropped: Option<u64>,
    #[serde(default)]
    pub kernel_tx_dropped: Option<u64>,
    #[serde(default)]
    pub kernel_rx_missed: Option<u64>,
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
        self.workers.iter().map(|w| w.loops.rx).sum()
    }
    pub fn tx(&self) -> u64 {
        self.workers.iter().map(|w| w.loops.tx).sum()
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
            "  {:<10} {:<12} {:>4} {:<17} {:>5} {:>12} {:>12} {:>10} {:>8} {:>8} {:>10}",
            "name",
            "driver",
            "id",
            "mac",
            "link",
            "rx pkts",
            "tx pkts",
            "missed",
            "ierr",
            "oerr",
            "kern drop"
        );
        for p in &self.ports {
            let kern = match (p.kernel_rx_dropped, p.kernel_rx_missed) {
                (Some(d), Some(m)) => (d + m).to_string(),
                _ => "-".into(),
            };
            let _ = writeln!(
                s,
                "  {:<10} {:<12} {:>4} {:<17} {:>5} {:>12} {:>12} {:>10} {:>8} {:>8} {:>10}",
                p.name,
                p.driver,
                p.dpdk_port,
                p.mac,
                if p.link_up { "up" } else { "down" },
                p.pmd.ipackets,
                p.pmd.opackets,
                p.pmd.imissed,
                p.pmd.ierrors,
                p.pmd.oerrors,
                kern
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
                w.loops.rx,
                w.loops.tx,
                w.total_drops(),
                w.loops.handoff_out,
                w.loops.handoff_in,
                w.loops.polls,
                w.loops.empty_polls
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

/// One stage of a worker in `pgw stats --runtime` (VPP's `show runtime`).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct StageReport {
    pub name: String,
    pub calls: u64,
    pub packets: u64,
    pub cycles: u64,
    pub cycles_per_pkt: f64,
    pub pkts_per_call: f64,
}

/// A worker's runtime accounting over a window.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct WorkerRuntime {
    pub worker: usize,
    pub lcore: u32,
    pub turns: u64,
    pub busy_turns: u64,
    /// Every cycle of the window the loop ran (busy + idle).
    pub cycles: u64,
    pub busy_cycles: u64,
    pub idle_cycles: u64,
    pub busy_pct: f64,
    /// Packets taken in (ports and handoff ring).
    pub packets: u64,
    pub busy_cycles_per_pkt: f64,
    /// TSC Hz / busy cycles per packet: what this worker would carry busy
    /// all the time, at this window's cost per packet (Mpps).
    pub capacity_mpps: f64,
    pub stages: Vec<StageReport>,
}

/// The instance's runtime accounting summed over workers.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct RuntimeTotal {
    pub packets: u64,
    pub busy_cycles: u64,
    pub busy_cycles_per_pkt: f64,
    /// Workers x TSC Hz / busy cycles per packet (Mpps).
    pub capacity_mpps: f64,
}

/// `pgw stats --runtime`: per worker and stage, since start or the last
/// `pgw ctl runtime-clear`.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct RuntimeReport {
    pub tsc_hz: u64,
    /// Seconds since the counters started (start or the last clear).
    pub window_s: f64,
    /// Stage cycles measured (`engine.runtime_stages`).
    pub timed: bool,
    pub workers: Vec<WorkerRuntime>,
    pub total: RuntimeTotal,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn capacity_mpps(tsc_hz: u64, cycles_per_pkt: f64) -> f64 {
    if cycles_per_pkt > 0.0 {
        tsc_hz as f64 / cycles_per_pkt / 1e6
    } else {
        0.0
    }
}

impl RuntimeReport {
    /// The report of `now` minus `base` per worker (`(worker lcore, raw)`).
    pub fn new(
        tsc_hz: u64,
        window_s: f64,
        timed: bool,
        now: &[(u32, Runtime)],
        base: &[Runtime],
    ) -> RuntimeReport {
        let zero = Runtime::default();
        let workers: Vec<WorkerRuntime> = now
            .iter()
            .enumerate()
            .map(|(w, (lcore, n))| {
                let b = base.get(w).unwrap_or(&zero);
                let d = |x: u64, y: u64| x.saturating_sub(y);
                let busy = d(n.busy_cycles, b.busy_cycles);
                let idle = d(n.idle_cycles, b.idle_cycles);
                let pkts = d(n.packets, b.packets);
                let cpp = ratio(busy, pkts);
                let stages = Stage::ALL
                    .iter()
                    .map(|&s| {
                        let (x, y) = (n.stage(s), b.stage(s));
                        let (calls, packets, cycles) = (
                            d(x.calls, y.calls),
                            d(x.packets, y.packets),
                            d(x.cycles, y.cycles),
                        );
                        StageReport {
                            name: s.name().to_string(),
                            calls,
                            packets,
                            cycles,
                            cycles_per_pkt: ratio(cycles, packets),
                            pkts_per_call: ratio(packets, calls),
                        }
                    })
                    .filter(|s| s.calls > 0)
                    .collect();
                WorkerRuntime {
                    worker: w,
                    lcore: *lcore,
                    turns: d(n.turns, b.turns),
                    busy_turns: d(n.busy_turns, b.busy_turns),
                    cycles: busy + idle,
                    busy_cycles: busy,
                    idle_cycles: idle,
                    busy_pct: 100.0 * ratio(busy, busy + idle),
                    packets: pkts,
                    busy_cycles_per_pkt: cpp,
                    capacity_mpps: capacity_mpps(tsc_hz, cpp),
                    stages,
                }
            })
            .collect();
        let packets = workers.iter().map(|w| w.packets).sum();
        let busy_cycles = workers.iter().map(|w| w.busy_cycles).sum();
        let cpp = ratio(busy_cycles, packets);
        let total = RuntimeTotal {
            packets,
            busy_cycles,
            busy_cycles_per_pkt: cpp,
            capacity_mpps: workers.len() as f64 * capacity_mpps(tsc_hz, cpp),
        };
        RuntimeReport {
            tsc_hz,
            window_s,
            timed,
            workers,
            total,
        }
    }

    /// The table a person reads (`pgw stats --runtime`), in the manner of
    /// VPP's `show runtime`.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "runtime over {:.1} s, TSC {:.3} GHz{}",
            self.window_s,
            self.tsc_hz as f64 / 1e9,
            if self.timed {
                ""
            } else {
                " (engine.runtime_stages = false: stage cycles not measured)"
            }
        );
        for w in &self.workers {
            let _ = writeln!(
                s,
                "
worker {} (lcore {}): busy {:.1} % of {} turns ({} busy), {} packets, {:.1} cycles/packet busy, capacity {:.2} Mpps",
                w.worker,
                w.lcore,
                w.busy_pct,
                w.turns,
                w.busy_turns,
                w.packets,
                w.busy_cycles_per_pkt,
                w.capacity_mpps
            );
            let _ = writeln!(
                s,
                "  {:<12} {:>12} {:>14} {:>16} {:>12} {:>12}",
                "stage", "calls", "vectors", "cycles", "cycles/pkt", "vectors/call"
            );
            for st in &w.stages {
                let _ = writeln!(
                    s,
                    "  {:<12} {:>12} {:>14} {:>16} {:>12.1} {:>12.1}",
                    st.name, st.calls, st.packets, st.cycles, st.cycles_per_pkt, st.pkts_per_call
                );
            }
        }
        let _ = writeln!(
            s,
            "
total: {} packets, {:.1} busy cycles/packet, capacity {:.2} Mpps ({} workers)",
            self.total.packets,
            self.total.busy_cycles_per_pkt,
            self.total.capacity_mpps,
            self.workers.len()
        );
        s
    }
}

pub fn mac_string(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}
