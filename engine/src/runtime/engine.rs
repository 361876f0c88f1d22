//! Engine set-up and tear-down: EAL, mempool, ports, rings and workers,
//! from a validated [`Profile`].
//!
//! Order: `Engine::init` (EAL up, ports configured and started, rings made,
//! nothing running) → the caller starts the management thread on
//! `Engine::mgmt_link` → `Engine::run` (one worker per lcore, until the quit
//! flag) → the caller stops the management thread → drop (rings freed, then
//! [`dpdk::shutdown`]: ports stopped and closed, EAL cleaned up with the
//! never-freed pool's memory: no hugepage files are left behind).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam::queue::ArrayQueue;
use pgw_pipelines::arp::ArpResponder;
use pgw_pipelines::fwd::WireFwd;
use pgw_pipelines::gw::acct::AcctRecord;
use pgw_pipelines::gw::tables::GwTables;
use pgw_pipelines::gw::GwConfig;
use pgw_pipelines::lb::{LbCounters, LbStage};
use pgw_pipelines::ndp::{NdpEntry, NdpResponder};
use pgw_pipelines::pipeline::{Pipeline, Tables};
use pgw_pipelines::PortIdx;

use crate::config::gw::{self, GwBuild, LbBuild};
use crate::config::{free_hugepage_mb, parse_mac, HugepageMode, Profile, Role};
use crate::runtime::dpdk::{self, Consumer, Mempool, MpProducer, Port, PortId, Ring, SpProducer};
use crate::runtime::info::{Info, PortRt, Timebase};
use crate::runtime::link::MgmtLink;
use crate::runtime::netlink;
use crate::runtime::stats::{Report, WorkerShared, MAX_PORTS};
use crate::runtime::worker::{Seed, Worker};

/// The running engine. It owns the configured ports and, until it hands
/// them out, every queue handle and ring half: each worker's (RX and TX
/// queue `w` of every port, the consumer of its handoff ring) once, to
/// [`Engine::run`]; the management thread's (the control ring's consumer,
/// the producer of worker 0's `mgmt_tx` ring) once, to
/// [`Engine::mgmt_link`].
pub struct Engine {
    pub profile: Profile,
    pub info: Option<Arc<Info>>,
    /// The configured ports, in profile order (stopped and closed on drop).
    ports: Vec<Port>,
    /// Every worker's handoff ring: the producers (any worker), and each
    /// worker's consumer until it is handed out.
    handoff: Vec<MpProducer>,
    handoff_rx: Vec<Option<Consumer>>,
    /// Frames for the management thread: the workers' producer, and the
    /// management thread's consumer until `mgmt_link`.
    control: Option<MpProducer>,
    control_rx: Option<Consumer>,
    /// Frames the management thread sends (its producer until `mgmt_link`);
    /// worker 0 transmits them (its consumer until `run`).
    mgmt_tx: Option<SpProducer>,
    mgmt_rx: Option<Consumer>,
    pub quit: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
    /// The published snapshot workers read (RCU style).
    pub tables: Arc<ArcSwap<Tables>>,
    /// One accounting queue per worker (single producer: that worker).
    pub acct: Vec<Arc<ArrayQueue<AcctRecord>>>,
    /// The GW role's configuration, with the started ports' MACs.
    pub gw: Option<GwBuild>,
    /// The LB role's configuration, with the started ports' MACs.
    pub lb: Option<LbBuild>,
    /// `eal.capture` with hugepages: pdump is served, and the hugepage
    /// files of the instance's prefix are removed at the end.
    capture: bool,
}

/// Slots of each worker's accounting queue.
pub const ACCT_QUEUE: usize = 65536;

#[derive(Debug)]
pub struct EngineError(pub String);
impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for EngineError {}
impl From<dpdk::DpdkError> for EngineError {
    fn from(e: dpdk::DpdkError) -> Self {
        EngineError(e.to_string())
    }
}

/// Decide hugepages vs `--no-huge` for this profile, and say why.
pub fn choose_hugepages(p: &Profile) -> Result<(bool, Option<String>), EngineError> {
    choose_hugepages_with(p, free_hugepage_mb())
}

/// [`choose_hugepages`] given `free` MiB of free hugepages.
pub fn choose_hugepages_with(
    p: &Profile,
    free: u64,
) -> Result<(bool, Option<String>), EngineError> {
    let need = p.eal.memory_mb as u64;
    match p.eal.hugepages {
        HugepageMode::Off => Ok((false, None)),
        HugepageMode::Required if free < need => Err(EngineError(format!(
            "{}: eal.hugepages = \"required\" but only {free} MiB of hugepages are free ({need} MiB needed).\n\
             Fix: run scripts/setup.sh, or as root: sysctl -w vm.nr_hugepages={} \
             (or set eal.hugepages = \"auto\" to fall back to --no-huge)",
            p.source,
            need.div_ceil(2) + 64
        ))),
        HugepageMode::Required => Ok((true, None)),
        HugepageMode::Auto if free >= need => Ok((true, None)),
        HugepageMode::Auto => Ok((
            false,
            Some(format!(
                "pgw: only {free} MiB of hugepages free ({need} MiB wanted): running with --no-huge \
                 (about 30 % slower). To use hugepages run scripts/setup.sh or: sysctl -w vm.nr_hugepages={}",
                need.div_ceil(2) + 64
            )),
        )),
    }
}

impl Engine {
    /// Bring up EAL and the ports. Nothing polls yet.
    pub fn init(profile: Profile) -> Result<Engine, EngineError> {
        let (hugepages, note) = choose_hugepages(&profile)?;
        if let Some(n) = note {
            tracing::warn!("{n}");
        }
        // A CPU this process may not run on would fail inside EAL's start-up
        // without naming the profile; say which key is at fault first.
        if let Some(ids) = core_affinity::get_core_ids() {
            let have: Vec<usize> = ids.iter().map(|c| c.id).collect();
            for (i, &c) in profile.cores.workers.iter().enumerate() {
                if !have.contains(&(c as usize)) {
                    return Err(EngineError(format!(
                        "{}: cores.workers[{i}]: CPU {c} is not one this machine lets pgw run on (CPUs {have:?}); list those CPUs",
                        profile.source
                    )));
                }
            }
        }
        let capture = profile.eal.capture && hugepages;
        if profile.eal.capture && !hugepages {
            eprintln!("pgw: eal.capture is off: dpdk-dumpcap cannot attach to --no-huge memory");
        }
        let args = profile.eal_args(hugepages);
        dpdk::eal_init(&args)
            .map_err(|e| EngineError(format!("{e}\n  EAL arguments: {}", args.join(" "))))?;
        if capture {
            dpdk::pdump_init()?;
            eprintln!(
                "pgw: live capture: dpdk-dumpcap --file-prefix=pgw-{} -i PORT",
                profile.instance.name
            );
        }
        let lcores = dpdk::lcores();
        let nworkers = profile.cores.workers.len();
        if lcores.len() != nworkers {
            return Err(EngineError(format!(
                "EAL gave {} lcores for {} workers",
                lcores.len(),
                nworkers
            )));
        }
        if profile.ports.len() > MAX_PORTS {
            return Err(EngineError(format!(
                "{} ports: at most {MAX_PORTS}",
                profile.ports.len()
            )));
        }
        let e = &profile.engine;
        let pool = Mempool::new(
            &format!("pgw_{}", profile.instance.name),
            e.mbufs,
            e.mbuf_cache,
            e.mbuf_data_room(),
            -1,
        )
        .map_err(|err| {
            EngineError(format!(
                "{err} ({} bytes each for engine.mtu = {})\n  hint: lower engine.mbufs or raise eal.memory_mb",
                e.mbuf_data_room(),
                e.mtu
            ))
        })?;
        let mut ports = Vec::new();
        let mut owned = Vec::new();
        // Every worker gets RX and TX queue `w` (some PMDs, net_tap among
        // them, need as many RX as TX queues). The management thread owns no
        // queue: what it sends goes through a worker's TX path.
        let nrxq = nworkers as u16;
        let ntxq = nworkers as u16;
        for (i, pc) in profile.ports.iter().enumerate() {
            let name = profile.dpdk_name(i);
            let id = PortId::by_name(&name).map_err(|err| {
                EngineError(format!(
                    "{}: port[{i}] ({}): {err}",
                    profile.source, pc.name
                ))
            })?;
            let info = id.info()?;
            if info.max_rx_queues < nrxq || info.max_tx_queues < ntxq {
                return Err(EngineError(format!(
                    "{}: port[{i}] ({}, driver {}): {} workers need {nrxq} RX and {ntxq} TX queues, the device allows {} / {}{}",
                    profile.source,
                    pc.name,
                    info.driver,
                    nworkers,
                    info.max_rx_queues,
                    info.max_tx_queues,
                    if info.driver.contains("af_packet") { " (add qpairs=N to the device string)" } else { "" }
                )));
            }
            let (rxd, txd) = profile.descriptors(i);
            let mut port = id
                .configure_chains(nrxq, ntxq, rxd, txd, pool, e.chains())
                .map_err(|err| {
                    if err.code == -libc::ENOTSUP && e.chains() {
                        EngineError(format!(
                            "{}: engine.mbuf_size: port[{i}] ({}): {err}: a {}-byte mbuf needs chains for frames of engine.mtu = {} (up to {} bytes); leave engine.mbuf_size unset (one mbuf per frame) or use a device that chains",
                            profile.source,
                            pc.name,
                            e.mbuf_size.unwrap_or(0),
                            e.mtu,
                            e.max_frame()
                        ))
                    } else {
                        EngineError(format!("port {}: {err}", pc.name))
                    }
                })?;
            if e.chains() && info.rx_offloads & dpdk::RX_OFFLOAD_SCATTER == 0 {
                tracing::info!(
                    "port {} ({}) does not offer RX scatter: a frame longer than engine.mbuf_size = {} arrives chained only if the driver chains it unasked (net_pcap does); otherwise the device drops it",
                    pc.name,
                    info.driver,
                    e.mbuf_size.unwrap_or(0)
                );
            }
            // The kernel interface behind a virtual port takes the MTU too.
            // A device that cannot set one is fine at the default 1500, and
            // at any MTU when it has no MTU of its own (-ENOTSUP: net_pcap
            // on an interface) and says it takes frames that long.
            if let Err(err) = port.set_mtu(e.mtu) {
                let frame = e.max_frame() as u32;
                let takes_it = err.code == -libc::ENOTSUP
                    && info.max_mtu >= e.mtu
                    && info.max_rx_pktlen >= frame;
                if takes_it && e.mtu != 1500 {
                    tracing::info!(
                        "port {} ({}) has no MTU setting of its own; it takes frames up to {} bytes: MTU {} is the kernel interface's to match",
                        pc.name,
                        info.driver,
                        info.max_rx_pktlen,
                        e.mtu
                    );
                } else if e.mtu != 1500 {
                    return Err(EngineError(format!(
                        "{}: engine.mtu: port[{i}] ({}, driver {}) refused MTU {}: {err} (the device allows {}..={}, frames up to {} bytes)",
                        profile.source,
                        pc.name,
                        info.driver,
                        e.mtu,
                        info.min_mtu,
                        info.max_mtu,
                        info.max_rx_pktlen
                    )));
                }
            }
            if let Some(m) = &pc.mac {
                port.set_mac(parse_mac(m).expect("validated"))?;
            }
            port.set_promiscuous(true)?;
            port.start()
                .map_err(|err| EngineError(format!("port {}: {err}", pc.name)))?;
            let rss = port.rss();
            owned.push(port);
            let mac = id.mac()?;
            ports.push(PortRt {
                name: pc.name.clone(),
                device: pc.device.clone(),
                id,
                driver: info.driver,
                mac,
                rx_queues: nrxq,
                tx_queues: ntxq,
                rss,
                iface: pc.kernel_iface().map(str::to_string),
                iface_index: pc.kernel_iface().and_then(netlink::index_of),
            });
        }
        let inst = &profile.instance.name;
        // Handoff: any worker produces, the owner consumes. Control: the
        // workers produce, the management thread consumes. mgmt_tx: the
        // management thread produces, worker 0 consumes.
        let mut handoff = Vec::new();
        let mut handoff_rx = Vec::new();
        for w in 0..nworkers {
            let (tx, rx) = Ring::mpsc(&format!("pgw_{inst}_h{w}"), e.handoff_ring, -1)?;
            handoff.push(tx);
            handoff_rx.push(Some(rx));
        }
        let (control, control_rx) = Ring::mpsc(&format!("pgw_{inst}_ctl"), 1024, -1)?;
        let (mgmt_tx, mgmt_rx) = Ring::spsc(&format!("pgw_{inst}_mtx"), 1024, -1)?;
        let mut gw = match profile.instance.role {
            Role::Gw | Role::LbGw => {
                Some(gw::build(&profile).map_err(|e| EngineError(e.to_string()))?)
            }
            _ => None,
        };
        let lb = match profile.instance.role {
            Role::Lb | Role::LbGw => {
                let l = profile.lb.as_ref().expect("validated");
                let lan = profile.port_index(&l.lan_port).expect("validated");
                let access = profile.port_index(&l.access_port).expect("validated");
                let mut b = gw::build_lb(&profile, ports[lan].mac)
                    .map_err(|e| EngineError(e.to_string()))?;
                b.cfg.access_mac = ports[access].mac;
                b.cfg.lan_mac = ports[lan].mac;
                Some(b)
            }
            _ => None,
        };
        let mut tables = Tables::default();
        if let Some(g) = gw.as_mut() {
            g.cfg.access_mac = ports[g.cfg.access_port as usize].mac;
            g.cfg.server_mac = ports[g.cfg.server_port as usize].mac;
            // Where the server port hashes (RSS), choose keys whose down
            // packets land on the owner's queue; elsewhere handoff rings do it.
            let sp = &ports[g.cfg.server_port as usize];
            if sp.rss {
                match (sp.id.rss_key(), sp.id.reta(), sp.id.info()) {
                    (Ok(key), Ok(reta), Ok(info)) if reta.len().is_power_of_two() => {
                        let mut steer = pgw_pipelines::gw::RssSteer::new(key, reta);
                        let hf = crate::runtime::dpdk::RSS_HF & info.rss_offloads;
                        steer.ports_tcp = hf & (1 << 4) != 0;
                        steer.ports_udp = hf & (1 << 5) != 0;
                        g.cfg.rss = Some(steer);
                    }
                    _ => {
                        tracing::info!(port = %sp.name, "RSS key/RETA not readable: down packets use the handoff rings")
                    }
                }
            }
            tables.gw = Some(GwTables::new(
                g.services.clone(),
                g.sessions.clone(),
                gw::neighbours(g),
            ));
        }
        tables.lb = lb.as_ref().map(|b| b.snapshot.clone());
        let acct = (0..nworkers)
            .map(|_| Arc::new(ArrayQueue::new(ACCT_QUEUE)))
            .collect();
        let shared = (0..nworkers)
            .map(|_| Arc::new(WorkerShared::default()))
            .collect();
        let info = Info {
            instance: profile.instance.name.clone(),
            role: profile.instance.role,
            hugepages,
            started: Instant::now(),
            timebase: Timebase::start(),
            lcores,
            ports,
            shared,
            pool,
            control_rx: Default::default(),
        };
        Ok(Engine {
            profile,
            info: Some(Arc::new(info)),
            ports: owned,
            handoff,
            handoff_rx,
            control: Some(control),
            control_rx: Some(control_rx),
            mgmt_tx: Some(mgmt_tx),
            mgmt_rx: Some(mgmt_rx),
            quit: Arc::new(AtomicBool::new(false)),
            draining: Arc::new(AtomicBool::new(false)),
            tables: Arc::new(ArcSwap::from_pointee(tables)),
            acct,
            gw,
            lb,
            capture,
        })
    }

    pub fn info(&self) -> &Arc<Info> {
        self.info
            .as_ref()
            .expect("info lives as long as the engine")
    }

    /// The mbuf pool (never freed; its memory goes with the engine's
    /// `eal_cleanup`, so take no mbuf from it that outlives the engine).
    pub fn pool(&self) -> &Mempool {
        self.info().pool()
    }

    /// The flag that stops every loop (set by SIGINT/SIGTERM or by a test).
    pub fn quit_flag(&self) -> Arc<AtomicBool> {
        self.quit.clone()
    }

    /// The flag that makes every worker refuse new connections (the drain
    /// before a graceful stop); established ones are still served.
    pub fn drain_flag(&self) -> Arc<AtomicBool> {
        self.draining.clone()
    }

    /// What worker `w`'s pipeline is made of (its GW tables are allocated
    /// by the worker itself, see [`Worker::build`]).
    fn seed(&self, w: usize) -> Result<Seed, EngineError> {
        let p = &self.profile;
        match p.instance.role {
            Role::Wire => {
                let pairs: Vec<(PortIdx, PortIdx)> = p
                    .wire
                    .as_ref()
                    .expect("validated")
                    .pairs
                    .iter()
                    .map(|[a, b]| {
                        (
                            p.port_index(a).unwrap() as PortIdx,
                            p.port_index(b).unwrap() as PortIdx,
                        )
                    })
                    .collect();
                Ok(Seed::Ready(Pipeline::Wire(WireFwd::new(
                    p.ports.len(),
                    &pairs,
                ))))
            }
            Role::Gw => {
                let (arp, ndp, cfg) = self.gw_parts(w)?;
                Ok(Seed::Gw {
                    arp,
                    ndp,
                    cfg,
                    worker: w as u16,
                })
            }
            Role::Lb => {
                let b = self.lb.as_ref().expect("lb built at init");
                let ports = &self.info().ports;
                let arp = ArpResponder::new(
                    b.arp_ips
                        .iter()
                        .map(|&(port, ip)| (port, ip, ports[port as usize].mac)),
                );
                let lb = LbStage::new(b.cfg.clone(), arp)
                    .map_err(|e| EngineError(format!("{}: lb: {e}", p.source)))?;
                let ndp = NdpResponder::new(b.ndp_ips.iter().map(|&(port, ip)| NdpEntry {
                    port,
                    ip,
                    mac: ports[port as usize].mac,
                    router: true,
                }));
                Ok(Seed::Ready(Pipeline::Lb {
                    lb,
                    ndp,
                    lc: LbCounters::default(),
                }))
            }
            Role::LbGw => {
                let b = self.lb.as_ref().expect("lb built at init");
                let (arp, ndp, cfg) = self.gw_parts(w)?;
                let lb = LbStage::new(b.cfg.clone(), arp.clone())
                    .map_err(|e| EngineError(format!("{}: lb: {e}", p.source)))?;
                let server_port = cfg.server_port;
                Ok(Seed::LbGw {
                    lb,
                    arp,
                    ndp,
                    cfg,
                    worker: w as u16,
                    server_port,
                })
            }
        }
    }

    fn gw_parts(
        &self,
        w: usize,
    ) -> Result<(ArpResponder, NdpResponder, Box<GwConfig>), EngineError> {
        let g = self.gw.as_ref().expect("gw built at init");
        let ports = &self.info().ports;
        let mut ips = g.arp_ips.clone();
        if let Some(b) = &self.lb {
            ips.extend(b.arp_ips.iter().copied());
        }
        let arp = ArpResponder::new(
            ips.iter()
                .map(|&(port, ip)| (port, ip, ports[port as usize].mac)),
        );
        let mut ndp_ips = g.ndp_ips.clone();
        if let Some(b) = &self.lb {
            ndp_ips.extend(b.ndp_ips.iter().copied());
        }
        let ndp = NdpResponder::new(ndp_ips.iter().map(|&(port, ip)| NdpEntry {
            port,
            ip,
            mac: ports[port as usize].mac,
            router: true,
        }));
        if w as u16 >= g.cfg.workers {
            return Err(EngineError(format!(
                "{}: gw: worker {w} of {}",
                self.profile.source, g.cfg.workers
            )));
        }
        Ok((arp, ndp, Box::new(g.cfg.clone())))
    }

    /// Worker `w`, with its queues and its handoff ring's consumer (handed
    /// out once: a second call for `w` is an error).
    fn make_worker(&mut self, w: usize) -> Result<Worker, EngineError> {
        let hz = dpdk::tsc_hz();
        let mut port_of = vec![PortIdx::MAX; 64];
        for (i, p) in self.info().ports.iter().enumerate() {
            if (p.id.raw() as usize) < port_of.len() {
                port_of[p.id.raw() as usize] = i as PortIdx;
            }
        }
        let seed = self.seed(w)?;
        let taken = || EngineError(format!("worker {w}'s queues were already handed out"));
        let mut rxq = Vec::new();
        let mut txq = Vec::new();
        for p in &mut self.ports {
            rxq.push(p.take_rx(w as u16).ok_or_else(taken)?);
            txq.push(p.take_tx(w as u16).ok_or_else(taken)?);
        }
        let handoff_in = self.handoff_rx[w].take().ok_or_else(taken)?;
        let mgmt_tx = if w == 0 {
            Some(self.mgmt_rx.take().ok_or_else(taken)?)
        } else {
            None
        };
        let e = &self.profile.engine;
        Ok(Worker {
            index: w,
            ports: self.info().ports.iter().map(|p| p.id).collect(),
            port_of,
            rxq,
            txq,
            seed: Some(seed),
            pipeline: None,
            handoff_in,
            handoff_out: self.handoff.clone(),
            control: self.control.clone().ok_or_else(taken)?,
            shared: self.info().shared[w].clone(),
            quit: self.quit.clone(),
            draining: self.draining.clone(),
            burst: e.burst as usize,
            drain_tsc: (hz / 1_000_000).max(1) * e.tx_drain_us.max(1) as u64,
            timebase: self.info().timebase,
            idle_sleep: Duration::from_micros(e.idle_sleep_us as u64),
            idle_polls: e.idle_polls,
            tables: self.tables.clone(),
            acct: self.acct[w].clone(),
            mgmt_tx,
            runtime_stages: e.runtime_stages,
            pool: self.info().pool,
            max_frame: e.max_frame(),
            chains: e.chains(),
        })
    }

    /// A report of every counter now.
    pub fn report(&self) -> Report {
        self.info().report()
    }

    /// The management plane's handle: what it may read and send while the
    /// engine runs (see [`MgmtLink`]). It holds the control ring's one
    /// consumer and the `mgmt_tx` ring's one producer, so there is one:
    /// a second call is an error.
    pub fn mgmt_link(&mut self) -> Result<MgmtLink, EngineError> {
        let taken = || EngineError("the management link was already handed out".into());
        Ok(MgmtLink {
            info: self.info().clone(),
            control: self.control_rx.take().ok_or_else(taken)?,
            mgmt_tx: self.mgmt_tx.take().ok_or_else(taken)?,
            tables: self.tables.clone(),
            acct: self.acct.clone(),
        })
    }

    /// Run the workers until the quit flag is set. Worker 0 runs on the
    /// calling thread (EAL's main lcore), as in l3fwd. The management
    /// thread, if any, is the caller's: started on [`Engine::mgmt_link`]
    /// before and stopped after.
    pub fn run(&mut self) -> Result<Report, EngineError> {
        let lcores = self.info().lcores.clone();
        // Each worker builds its own tables on its lcore and says how it
        // went; none polls before every one has.
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let go = Arc::new(AtomicBool::new(false));
        for (w, &l) in lcores.iter().enumerate().skip(1) {
            let mut worker = self.make_worker(w)?;
            let (tx, go, quit) = (tx.clone(), go.clone(), self.quit.clone());
            dpdk::launch(l, move || {
                let built = worker.build();
                let ok = built.is_ok();
                let _ = tx.send(built.map_err(|e| format!("worker {w}: {e}")));
                if !ok {
                    return 1;
                }
                while !go.load(Relaxed) && !quit.load(Relaxed) {
                    std::hint::spin_loop();
                }
                worker.run()
            })?;
        }
        let mut w0 = self.make_worker(0)?;
        let mut err = w0.build().err().map(|e| format!("worker 0: {e}"));
        for _ in 1..lcores.len() {
            if let Ok(Err(e)) = rx.recv() {
                err.get_or_insert(e);
            }
        }
        if let Some(e) = err {
            self.quit.store(true, Relaxed);
            for &l in lcores.iter().skip(1) {
                dpdk::wait_lcore(l);
            }
            return Err(EngineError(format!("{}: {e}", self.profile.source)));
        }
        go.store(true, Relaxed);
        w0.run();
        for &l in lcores.iter().skip(1) {
            dpdk::wait_lcore(l);
        }
        Ok(self.report())
    }
}

impl Drop for Engine {
    /// Stops every worker, then the ports, then EAL ([`dpdk::shutdown`]).
    /// Drop the engine after the management thread stopped: while it still
    /// holds its [`MgmtLink`] (ring halves), the ports and EAL are left to
    /// the process's exit, said in the log.
    fn drop(&mut self) {
        self.quit.store(true, Relaxed);
        // The handles never handed out, and the engine's ring halves.
        self.handoff_rx.clear();
        self.control_rx.take();
        self.mgmt_tx.take();
        self.mgmt_rx.take();
        self.handoff.clear();
        self.control.take();
        // The engine's `Info` (the management thread's copy went with it).
        self.info.take();
        let ports = std::mem::take(&mut self.ports);
        if let Err(e) = dpdk::shutdown(ports, self.capture) {
            tracing::warn!("{e}");
        }
        if self.capture {
            remove_hugepage_files(&format!("pgw-{}", self.profile.instance.name));
        }
    }
}

/// Remove the hugepage files of file prefix `prefix` (`<prefix>map_N` in
/// every hugetlbfs mount) that a shared configuration leaves behind. Only
/// this instance uses its prefix; a secondary still attached keeps its
/// mappings until it exits.
fn remove_hugepage_files(prefix: &str) {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let want = format!("{prefix}map_");
    for dir in mounts.lines().filter_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 2 && f[2] == "hugetlbfs").then(|| f[1].to_string())
    }) {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name
                .strip_prefix(&want)
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(mode: &str) -> Profile {
        let t = format!(
            "[instance]\nname = \"h\"\nrole = \"wire\"\n[eal]\nhugepages = \"{mode}\"\nmemory_mb = 256\n[cores]\nworkers = [0]\n\
             [[port]]\nname = \"a\"\ndevice = \"net_null0\"\n[[port]]\nname = \"b\"\ndevice = \"net_null1\"\n[wire]\npairs = [[\"a\", \"b\"]]\n"
        );
        Profile::parse(&t, "h.toml").unwrap()
    }

    #[test]
    fn hugepage_fallback_is_said_or_refused_with_the_fix() {
        assert_eq!(
            choose_hugepages_with(&profile("auto"), 1024).unwrap(),
            (true, None)
        );
        let (huge, note) = choose_hugepages_with(&profile("auto"), 0).unwrap();
        assert!(!huge);
        assert!(note.unwrap().contains("--no-huge"));
        let e = choose_hugepages_with(&profile("required"), 100)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("h.toml") && e.contains("eal.hugepages") && e.contains("vm.nr_hugepages"),
            "{e}"
        );
        assert_eq!(
            choose_hugepages_with(&profile("off"), 4096).unwrap(),
            (false, None)
        );
    }
}
