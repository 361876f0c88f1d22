//! The per-core run-to-completion loop, in the manner of DPDK's l3fwd.
//!
//! One worker owns RX queue `w` and TX queue `w` of every port, its own
//! handoff ring (other workers enqueue packets whose flow it owns), its TX
//! buffers and its counters. Per turn: read the TSC once; on the drain timer
//! flush partial TX buffers and publish counters; for every port: rx burst →
//! pipeline over the burst → move each mbuf where its verdict says; then the
//! same for the handoff ring. What TX or a ring refuses is freed and counted.
//! The only shared state it reads is the quit flag (and, for gateway roles,
//! the published table snapshot, once per burst).
//!
//! Partial TX bursts go out at the end of a turn that brought less than a
//! burst (light load: low latency), else when they fill, and at the latest
//! on the drain timer.
//!
//! Idle back-off: after `idle_polls` empty turns in a row the worker flushes
//! and sleeps `idle_sleep_us` between turns, so several instances can share
//! two cores in tests. 0 disables it (benchmarks).
//!
//! Runtime accounting ([`Meter`], `pgw stats --runtime`): the TSC read at the
//! top of each turn splits busy from idle turns; with
//! `engine.runtime_stages` every stage of a burst (rx, the pipeline's own
//! stages, dispatch, tx, handoff, expiry) takes one more TSC read when it
//! ends — per burst, never per packet.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Cache};
use crossbeam::queue::ArrayQueue;
use pgw_pipelines::arp::ArpResponder;
use pgw_pipelines::gw::acct::{AcctRecord, AcctSink};
use pgw_pipelines::gw::{GwConfig, GwWorker};
use pgw_pipelines::lb::{LbCounters, LbStage};
use pgw_pipelines::ndp::NdpResponder;
use pgw_pipelines::pipeline::{Pipeline, Tables, EXPIRE_BUDGET};
use pgw_pipelines::runtime::{Clock, Meter, NoClock, Stage};
use pgw_pipelines::{DropReason, PortIdx, Verdict};

use crate::runtime::dpdk::{
    tsc, Burst, Consumer, CpuPrefetch, HugeAlloc, Mbuf, Mempool, MpProducer, PortId, RxQueue,
    TxQueue, MAX_BURST,
};
use crate::runtime::info::Timebase;
use crate::runtime::stats::{WorkerLocal, WorkerShared};

/// Everything one worker owns. Built by the engine, moved to its lcore.
pub struct Worker {
    pub index: usize,
    /// DPDK port ids, in profile order (index = `PortIdx`).
    pub ports: Vec<PortId>,
    /// DPDK port id → `PortIdx` (`PortIdx::MAX` for ports not ours).
    pub port_of: Vec<PortIdx>,
    /// RX and TX queue `index` of every port, in profile order: this
    /// worker's alone (the handles are neither `Sync` nor `Clone`).
    pub rxq: Vec<RxQueue>,
    pub txq: Vec<TxQueue>,
    /// What the pipeline is made of; the GW's tables are allocated by the
    /// worker itself ([`Worker::build`]) so their pages are first touched on
    /// its lcore, in its NUMA node's hugepages.
    pub seed: Option<Seed>,
    pub pipeline: Option<Pipeline<HugeAlloc>>,
    /// This worker's handoff ring (many producers, this single consumer).
    pub handoff_in: Consumer,
    /// Every worker's handoff ring, by worker index.
    pub handoff_out: Vec<MpProducer>,
    /// Frames for the management thread.
    pub control: MpProducer,
    pub shared: Arc<WorkerShared>,
    pub quit: Arc<AtomicBool>,
    /// Set while the instance drains: the pipeline refuses new connections.
    pub draining: Arc<AtomicBool>,
    pub burst: usize,
    pub drain_tsc: u64,
    /// The engine's clock base (shared with the management thread).
    pub timebase: Timebase,
    pub idle_sleep: Duration,
    pub idle_polls: u32,
    /// The management side's published tables (loaded once per burst).
    pub tables: Arc<ArcSwap<Tables>>,
    /// Accounting records to the management thread (this worker produces).
    pub acct: Arc<ArrayQueue<AcctRecord>>,
    /// Frames the management thread wants sent (worker 0 is its consumer).
    pub mgmt_tx: Option<Consumer>,
    /// Time each stage (`engine.runtime_stages`).
    pub runtime_stages: bool,
    /// The mbuf pool, for the frames a stage releases after a burst.
    pub pool: &'static Mempool,
    /// Longest frame taken from RX (`engine.mtu`); longer ones are freed,
    /// counted `oversize`.
    pub max_frame: usize,
    /// Whether frames chained over several mbufs are taken (the ports
    /// receive and send chains: `engine.mbuf_size` below the longest
    /// frame); if not, a chain is freed, counted `oversize`.
    pub chains: bool,
}

/// A pipeline before the worker builds it.
pub enum Seed {
    Ready(Pipeline<HugeAlloc>),
    Gw {
        arp: ArpResponder,
        ndp: NdpResponder,
        cfg: Box<GwConfig>,
        worker: u16,
    },
    LbGw {
        lb: LbStage,
        arp: ArpResponder,
        ndp: NdpResponder,
        cfg: Box<GwConfig>,
        worker: u16,
        server_port: PortIdx,
    },
}

impl Seed {
    /// The pipeline, its GW tables from `alloc`.
    pub fn build(self, alloc: &HugeAlloc) -> Result<Pipeline<HugeAlloc>, String> {
        Ok(match self {
            Seed::Ready(p) => p,
            Seed::Gw {
                arp,
                ndp,
                cfg,
                worker,
            } => Pipeline::Gw {
                arp,
                ndp,
                gw: Box::new(GwWorker::with_alloc(&cfg, worker, alloc)?),
            },
            Seed::LbGw {
                lb,
                arp,
                ndp,
                cfg,
                worker,
                server_port,
            } => Pipeline::LbGw {
                lb,
                lc: LbCounters::default(),
                arp,
                ndp,
                gw: Box::new(GwWorker::with_alloc(&cfg, worker, alloc)?),
                server_port,
            },
        })
    }
}

/// The worker's stage clock: the TSC.
#[derive(Clone, Copy)]
struct Tsc;

impl Clock for Tsc {
    #[inline(always)]
    fn now(&self) -> u64 {
        tsc()
    }
}

/// The worker's end of its accounting queue: never blocks; a full queue is
/// reported to the stage, which counts it.
/// How long a stopping worker waits for room in its accounting queue.
const CLOSE_ALL_WAIT: Duration = Duration::from_secs(5);

struct QueueSink<'a>(&'a ArrayQueue<AcctRecord>);

impl AcctSink for QueueSink<'_> {
    #[inline]
    fn push(&mut self, r: &AcctRecord) -> bool {
        self.0.push(*r).is_ok()
    }
}

/// At the end: wait for room in the queue (the management thread still
/// drains it) rather than lose a record, up to a deadline.
struct PatientSink<'a> {
    q: &'a ArrayQueue<AcctRecord>,
    deadline: std::time::Instant,
}

impl AcctSink for PatientSink<'_> {
    fn push(&mut self, r: &AcctRecord) -> bool {
        loop {
            if self.q.push(*r).is_ok() {
                return true;
            }
            if std::time::Instant::now() >= self.deadline {
                return false;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

struct Out {
    tx: Vec<Burst>,
    handoff: Vec<Burst>,
    control: Burst,
    /// Dropped mbufs, freed together at the end of the burst.
    drops: Burst,
}

impl Worker {
    /// Build the pipeline on this thread (the GW's tables in hugepages of
    /// this lcore's socket, first touched here). Says where they went.
    pub fn build(&mut self) -> Result<(), String> {
        let Some(seed) = self.seed.take() else {
            return Ok(());
        };
        let alloc = HugeAlloc::new(crate::runtime::dpdk::current_socket());
        self.pipeline = Some(seed.build(&alloc)?);
        if let Some(Pipeline::Gw { gw, .. } | Pipeline::LbGw { gw, .. }) = &self.pipeline {
            tracing::info!(
                worker = self.index,
                "{} connections, {} keys: {:.1} MiB of tables, {:.1} MiB in hugepages on socket {}{}",
                gw.capacity(),
                gw.keys_total(),
                gw.table_bytes() as f64 / (1 << 20) as f64,
                alloc.bytes.get() as f64 / (1 << 20) as f64,
                alloc.socket,
                if alloc.fallbacks.get() > 0 {
                    format!(
                        " ({} table(s) on the heap: EAL had no hugepage memory left; raise eal.memory_mb or vm.nr_hugepages)",
                        alloc.fallbacks.get()
                    )
                } else {
                    String::new()
                }
            );
        }
        Ok(())
    }

    /// Run until the quit flag is set; flushes and publishes before returning.
    pub fn run(self) -> i32 {
        if self.runtime_stages {
            self.run_with(Meter::new(Tsc))
        } else {
            self.run_with(Meter::new(NoClock))
        }
    }

    fn run_with<C: Clock>(mut self, mut m: Meter<C>) -> i32 {
        let mut local = WorkerLocal::default();
        // Per-destination buffers, allocated once before the loop.
        let mut out = Out {
            tx: (0..self.ports.len()).map(|_| Burst::new()).collect(),
            handoff: (0..self.handoff_out.len()).map(|_| Burst::new()).collect(),
            control: Burst::new(),
            drops: Burst::new(),
        };
        let mut verdicts = [Verdict::Drop(DropReason::NoRoute); MAX_BURST];
        let mut rx = Burst::new();
        let mut last_drain = tsc();
        let mut empty_run: u32 = 0;
        let tables_src = self.tables.clone();
        let mut tables = Cache::new(tables_src);
        let acct_q = self.acct.clone();
        let mut got = 0;
        let Some(mut pipeline) = self.pipeline.take() else {
            return 1;
        };
        let expire_tsc = self.timebase.tsc_per_ms / 100; // 10 us of timer work per turn at most
        m.turn_start(tsc());

        let mut draining = false;
        while !self.quit.load(Relaxed) {
            if self.draining.load(Relaxed) != draining {
                draining = !draining;
                pipeline.set_draining(draining);
            }
            let now = tsc();
            m.turn_end(now, got);
            m.turn_start(now);
            let now_ms = (now - self.timebase.tsc_start) / self.timebase.tsc_per_ms;
            if now - last_drain >= self.drain_tsc {
                self.flush(&mut out, &mut local, &mut m);
                local.nevents = pipeline.events(&mut local.events);
                self.shared.publish(&local);
                self.shared.publish_runtime(&m.rt);
                last_drain = now;
            }
            let t: &Tables = tables.load();
            let mut sink = QueueSink(&acct_q);
            local.loops.polls += 1;
            got = 0;
            for pi in 0..self.ports.len() {
                let n = rx.rx(&self.rxq[pi], self.burst);
                m.lap(Stage::Rx, n);
                if n == 0 {
                    continue;
                }
                got += n;
                local.loops.rx += n as u64;
                local.port_rx[pi] += n as u64;
                let (oversize, chained) = rx.free_oversize(self.max_frame, self.chains);
                local.pipe.drops[DropReason::Oversize as usize] += oversize as u64;
                local.loops.rx_chained += chained as u64;
                self.handle(
                    &mut pipeline,
                    t,
                    &mut sink,
                    &mut rx,
                    Some(pi as PortIdx),
                    &mut verdicts,
                    now_ms,
                    &mut out,
                    &mut local,
                    &mut m,
                );
            }
            let n = rx.dequeue(&self.handoff_in, self.burst);
            if n > 0 {
                m.lap(Stage::HandoffIn, n);
                got += n;
                local.loops.handoff_in += n as u64;
                self.handle(
                    &mut pipeline,
                    t,
                    &mut sink,
                    &mut rx,
                    None,
                    &mut verdicts,
                    now_ms,
                    &mut out,
                    &mut local,
                    &mut m,
                );
            }
            if let Some(ring) = &self.mgmt_tx {
                let n = self.send_mgmt(ring, &mut rx, &mut out, &mut local, &mut m);
                if n > 0 {
                    m.lap(Stage::MgmtTx, n);
                }
                got += n;
            }
            // Timer work, budgeted by time: more calls while each used its
            // whole budget and 10 us have not passed.
            let mut ended = 0;
            loop {
                let (looked, n) = pipeline.poll(now_ms, EXPIRE_BUDGET, &mut sink, &mut local.pipe);
                ended += n;
                if looked < EXPIRE_BUDGET || tsc() - now > expire_tsc {
                    break;
                }
            }
            m.lap(Stage::Expiry, ended);
            if got == 0 {
                local.loops.empty_polls += 1;
                empty_run = empty_run.saturating_add(1);
                if !self.idle_sleep.is_zero() && empty_run >= self.idle_polls {
                    self.flush(&mut out, &mut local, &mut m);
                    local.loops.idle_sleeps += 1;
                    std::thread::sleep(self.idle_sleep);
                }
            } else {
                empty_run = 0;
                // Not saturated (the turn brought less than a burst): send
                // what is buffered now rather than on the drain timer, so
                // latency at partial load is one loop turn, not tx_drain_us.
                // Saturated, bursts fill and go out as they fill.
                if got < self.burst {
                    self.flush(&mut out, &mut local, &mut m);
                }
            }
        }
        self.flush(&mut out, &mut local, &mut m);
        m.turn_end(tsc(), got);
        // Every connection still open ends with its record.
        let mut sink = PatientSink {
            q: &acct_q,
            deadline: std::time::Instant::now() + CLOSE_ALL_WAIT,
        };
        pipeline.close_all(self.timebase.now_ms(), &mut sink);
        local.nevents = pipeline.events(&mut local.events);
        self.shared.publish(&local);
        self.shared.publish_runtime(&m.rt);
        0
    }

    /// Transmit what the management thread queued (ARP requests, probes):
    /// each mbuf's `port` field names its DPDK port.
    fn send_mgmt<C: Clock>(
        &self,
        ring: &Consumer,
        b: &mut Burst,
        out: &mut Out,
        local: &mut WorkerLocal,
        m: &mut Meter<C>,
    ) -> usize {
        let n = b.dequeue(ring, self.burst);
        for mb in b.drain() {
            let p = self
                .port_of
                .get(mb.port() as usize)
                .copied()
                .unwrap_or(PortIdx::MAX) as usize;
            self.queue_tx(p, mb, out, local, m, Stage::MgmtTx);
        }
        n
    }

    /// Queue `mb` on port `p`'s TX buffer, sending the buffer first when it
    /// is full (the time before that charged to `before`); false, counted,
    /// when `p` is no port of this worker.
    #[inline(always)]
    fn queue_tx<C: Clock>(
        &self,
        p: usize,
        mb: Mbuf,
        out: &mut Out,
        local: &mut WorkerLocal,
        m: &mut Meter<C>,
        before: Stage,
    ) -> bool {
        if p >= out.tx.len() {
            local.pipe.drop(DropReason::BadDestination);
            return false;
        }
        local.port_tx[p] += 1;
        if let Err(mb) = out.tx[p].push(mb) {
            self.flush_port(p, out, local, m, before);
            let _ = out.tx[p].push(mb);
        }
        true
    }

    /// `mb` with its port field set to the DPDK port it arrived on, for a
    /// reader on another core (not every PMD records it).
    #[inline(always)]
    fn stamp_arrival(&self, mut mb: Mbuf, arrival: Option<PortIdx>) -> Mbuf {
        if let Some(p) = arrival {
            mb.set_port(self.ports[p as usize]);
        }
        mb
    }

    /// Pipeline over one burst, then move every mbuf where its verdict says.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn handle<C: Clock>(
        &mut self,
        pipeline: &mut Pipeline<HugeAlloc>,
        t: &Tables,
        sink: &mut QueueSink<'_>,
        rx: &mut Burst,
        arrival: Option<PortIdx>,
        verdicts: &mut [Verdict; MAX_BURST],
        now_ms: u64,
        out: &mut Out,
        local: &mut WorkerLocal,
        m: &mut Meter<C>,
    ) {
        let n = rx.len();
        let pipe_counters = &mut local.pipe;
        rx.with_pkts(&self.port_of, arrival, |pkts| {
            pipeline.process_burst(
                t,
                pkts,
                &mut verdicts[..n],
                now_ms,
                sink,
                pipe_counters,
                m,
                &CpuPrefetch,
            )
        });
        for (mb, v) in rx.drain().zip(verdicts[..n].iter()) {
            match *v {
                Verdict::Tx { port } => {
                    let p = port as usize;
                    if self.queue_tx(p, mb, out, local, m, Stage::Dispatch)
                        && out.tx[p].len() >= self.burst
                    {
                        self.flush_port(p, out, local, m, Stage::Dispatch);
                    }
                }
                Verdict::Handoff { worker } => {
                    let w = worker as usize;
                    if w >= out.handoff.len() || w == self.index {
                        // A stage asking to hand off to itself or to no worker: a bug
                        // upstream, counted rather than looped.
                        local.pipe.drop(DropReason::BadDestination);
                        continue;
                    }
                    // The owner needs the arrival port.
                    if let Err(mb) = out.handoff[w].push(self.stamp_arrival(mb, arrival)) {
                        m.charge(Stage::Dispatch);
                        let sent = Self::flush_ring(
                            &mut out.handoff[w],
                            &self.handoff_out[w],
                            &mut local.loops.handoff_out,
                            DropReason::HandoffFull,
                            &mut local.pipe.drops,
                        );
                        m.lap(Stage::HandoffOut, sent);
                        let _ = out.handoff[w].push(mb);
                    }
                }
                Verdict::Control => {
                    // (the management thread reads frames of one mbuf)
                    if mb.nb_segs() > 1 {
                        local.pipe.drop(DropReason::Oversize);
                        continue;
                    }
                    // The management side judges a frame by its port.
                    if let Err(mb) = out.control.push(self.stamp_arrival(mb, arrival)) {
                        self.flush_control(out, local);
                        let _ = out.control.push(mb);
                    }
                }
                // Counted by the stage that decided it (a consumed frame's
                // bytes were kept by the stage); freed in bulk below.
                Verdict::Drop(_) | Verdict::Consumed => {
                    if let Err(mb) = out.drops.push(mb) {
                        drop(mb);
                    }
                }
            }
        }
        out.drops.free();
        // Frames the stage released (held fragments whose first fragment
        // this burst brought): copied into fresh mbufs, behind the burst.
        let pool = self.pool;
        pipeline.drain_released(|bytes, port| {
            let Some(mut mb) = pool.alloc() else {
                return local.pipe.drop(DropReason::ReleasedNoMbuf);
            };
            if mb.write(bytes) {
                self.queue_tx(port as usize, mb, out, local, m, Stage::Dispatch);
            } else {
                local.pipe.drop(DropReason::ReleasedNoMbuf);
            }
        });
        m.lap(Stage::Dispatch, n);
    }

    /// Send port `p`'s TX buffer; the time before it is charged to `before`,
    /// the send itself to `tx`.
    fn flush_port<C: Clock>(
        &self,
        p: usize,
        out: &mut Out,
        local: &mut WorkerLocal,
        m: &mut Meter<C>,
        before: Stage,
    ) {
        if out.tx[p].is_empty() {
            return;
        }
        m.charge(before);
        let (sent, freed) = out.tx[p].tx(&self.txq[p]);
        m.lap(Stage::Tx, sent);
        local.loops.tx += sent as u64;
        if freed > 0 {
            local.port_tx[p] -= freed as u64;
            local.pipe.drops[DropReason::TxFull as usize] += freed as u64;
        }
    }

    fn flush_ring(
        b: &mut Burst,
        ring: &MpProducer,
        ok: &mut u64,
        reason: DropReason,
        drops: &mut [u64],
    ) -> usize {
        let (sent, freed) = b.enqueue(ring);
        *ok += sent as u64;
        drops[reason as usize] += freed as u64;
        sent
    }

    fn flush<C: Clock>(&self, out: &mut Out, local: &mut WorkerLocal, m: &mut Meter<C>) {
        m.charge(Stage::Other);
        for p in 0..out.tx.len() {
            self.flush_port(p, out, local, m, Stage::Other);
        }
        for w in 0..out.handoff.len() {
            if out.handoff[w].is_empty() {
                continue;
            }
            m.charge(Stage::Other);
            let (ok, drops) = (&mut local.loops.handoff_out, &mut local.pipe.drops);
            let sent = Self::flush_ring(
                &mut out.handoff[w],
                &self.handoff_out[w],
                ok,
                DropReason::HandoffFull,
                drops,
            );
            m.lap(Stage::HandoffOut, sent);
        }
        self.flush_control(out, local);
    }

    /// Hand the frames queued for the management thread to its ring.
    fn flush_control(&self, out: &mut Out, local: &mut WorkerLocal) {
        Self::flush_ring(
            &mut out.control,
            &self.control,
            &mut local.loops.control_out,
            DropReason::ControlFull,
            &mut local.pipe.drops,
        );
    }
}
