//! `pgw-gen`: DPDK traffic generator emulating subscribers toward a `pgw`
//! GW instance, and the servers behind it (a reflector), over two ports.
//!
//! ```text
//!   pgw-gen access  ──memif──► pgw access   (up: SYN, data, FIN, UDP)
//!   pgw-gen servers ◄─memif─── pgw servers  (NAT'd up traffic, answered here)
//! ```
//!
//! One lcore (`--cpu`) does everything; see `pgw_perf::gen` for the loop and
//! `scripts/bench.sh` for the suite. Prints a JSON report on stdout (or to
//! `--json FILE`) and a one-line summary on stderr.
#![forbid(unsafe_code)]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use pgw_engine::config::parse_mac;
use pgw_engine::runtime::dpdk::{self, Mempool, Port, PortId, RxQueue, TxQueue};
use pgw_perf::frame::SizeMix;
use pgw_perf::gen::{self, Close, GenCfg, Mode, Ports};
use pgw_perf::plan::{parse_endpoints, Plan};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    /// Open every connection, then pump data over them.
    Established,
    /// Connection churn: open, `--data` echoes, close; the rate is new connections/s.
    Cps,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CloseArg {
    Rst,
    Fin,
}

#[derive(Parser, Debug)]
#[command(
    name = "pgw-gen",
    about = "DPDK subscriber traffic generator and server reflector for pgw benchmarks (net_memif, net_ring, net_null or NIC ports)",
    long_about = "DPDK subscriber traffic generator and server reflector for pgw benchmarks.\n\n\
        Port 'access' sends the subscribers' traffic (N subscribers x M connections toward VIPs: TCP SYN, \
        data, FIN and UDP, 64..1518-byte frames or IMIX, at a fixed rate or as fast as possible); port \
        'servers' answers every frame that arrives there (addresses and ports swapped, SYN -> SYN-ACK, \
        FIN -> FIN-ACK, data and UDP echoed), so down traffic flows back. Latency comes from a TSC stamp \
        in the payload (HdrHistogram), loss is counted per direction. EAL runs with --no-pci --in-memory.\n\n\
        Example (pgw on the other end of two memif sockets):\n  \
        pgw-gen --access net_memif0,role=server,socket=/tmp/pgw-bench-acc.sock,socket-abstract=no \\\n    \
        --servers net_memif1,role=server,socket=/tmp/pgw-bench-srv.sock,socket-abstract=no \\\n    \
        --subs 1000 --conns 1 --size 64 --duration 5"
)]
struct Args {
    /// DPDK virtual device of the access-side port (faces the gateway's access port).
    #[arg(long, required_unless_present = "loopback")]
    access: Option<String>,
    /// DPDK virtual device of the servers-side port (faces the gateway's server port).
    #[arg(long, required_unless_present = "loopback")]
    servers: Option<String>,
    /// Connect the two ports to each other inside this process (a memif pair):
    /// the generator's own ceiling, no gateway.
    #[arg(long)]
    loopback: bool,
    /// CPU of the generator's single lcore.
    #[arg(long, default_value_t = 0)]
    cpu: u32,
    #[arg(long, default_value_t = 65535)]
    mbufs: u32,
    /// Queues per port (connection c uses queue c mod Q).
    #[arg(long, default_value_t = 1)]
    queues: u16,
    #[arg(long, default_value_t = 32)]
    burst: usize,
    /// Destination MAC of up frames: the gateway's access port.
    #[arg(long, default_value = "02:50:47:57:00:01")]
    gw_mac: String,
    /// Subscribers (addresses from --sub-base on).
    #[arg(long, default_value_t = 1000)]
    subs: u32,
    /// Connections per subscriber (source ports from --sport-base on).
    #[arg(long, default_value_t = 1)]
    conns: u32,
    #[arg(long, default_value = "10.1.0.0")]
    sub_base: Ipv4Addr,
    #[arg(long, default_value_t = 1024)]
    sport_base: u16,
    /// TCP representative addresses, address:port, comma-separated.
    #[arg(long, default_value = "10.33.0.1:80,10.33.0.2:443")]
    tcp_vips: String,
    /// UDP representative addresses.
    #[arg(long, default_value = "10.33.0.3:53")]
    udp_vips: String,
    /// Percentage of connections that are UDP.
    #[arg(long, default_value_t = 0)]
    udp_pct: u32,
    #[arg(long, value_enum, default_value = "established")]
    mode: ModeArg,
    /// cps: data packets echoed per connection before it closes.
    #[arg(long, default_value_t = 0)]
    data: u16,
    /// cps: how connections close.
    #[arg(long, value_enum, default_value = "rst")]
    close: CloseArg,
    /// Frame size on the wire (FCS included): 64..1518, "imix" (7:4:1 of 64/576/1518) or a list.
    #[arg(long, default_value = "64")]
    size: String,
    /// Mpps of up data (established) or million new connections/s (cps); 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// established: million SYNs/s while opening; 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    open_rate: f64,
    /// established: most unanswered SYNs.
    #[arg(long, default_value_t = 65536)]
    window: u32,
    #[arg(long, default_value_t = 60.0)]
    open_timeout: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds to keep receiving after the window (in-flight answers; then loss is counted).
    #[arg(long, default_value_t = 0.3)]
    drain: f64,
    #[arg(long, default_value_t = 30.0)]
    link_timeout: f64,
    /// Seconds to wait after both links are up before sending (the other end
    /// may still be starting its ports).
    #[arg(long, default_value_t = 0.5)]
    settle: f64,
    /// Verify the checksums of every answer.
    #[arg(long)]
    verify: bool,
    /// Run EAL without hugepages (--no-huge --no-shconf -m 1024; slower).
    #[arg(long)]
    no_huge: bool,
    /// Write the JSON report here instead of stdout.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let a = Args::parse();
    match run(a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgw-gen: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn dev_name(devargs: &str) -> String {
    devargs.split(',').next().unwrap_or(devargs).to_string()
}

fn run(a: Args) -> Result<(), String> {
    let plan = Plan {
        subs: a.subs,
        conns_per_sub: a.conns,
        sub_base: u32::from(a.sub_base),
        sport_base: a.sport_base,
        tcp_vips: parse_endpoints(&a.tcp_vips)?,
        udp_vips: parse_endpoints(&a.udp_vips)?,
        udp_pct: a.udp_pct,
    };
    plan.validate()?;
    let sizes = SizeMix::parse(&a.size)?;
    let gw_mac = parse_mac(&a.gw_mac).map_err(|e| format!("--gw-mac: {e}"))?;
    if a.queues == 0 || a.queues > 16 {
        return Err("--queues: 1..=16".into());
    }
    let pid = std::process::id();
    let lo_sock = format!("/tmp/pgw-gen-lo-{pid}.sock");
    let (acc, srv) = if a.loopback {
        (
            format!("net_memif0,role=server,socket={lo_sock},socket-abstract=no"),
            format!("net_memif1,role=client,socket={lo_sock},socket-abstract=no"),
        )
    } else {
        (a.access.clone().unwrap(), a.servers.clone().unwrap())
    };
    let mut eal = vec![
        "pgw-gen".to_string(),
        "-l".into(),
        a.cpu.to_string(),
        format!("--file-prefix=pgwgen{pid}"),
        "--no-pci".into(),
        format!("--vdev={acc}"),
        format!("--vdev={srv}"),
        "--log-level=pmd.net.memif:error".into(),
    ];
    if a.no_huge {
        eal.extend(["--no-huge", "--no-shconf", "-m", "1024"].map(String::from));
    } else {
        eal.push("--in-memory".into());
    }
    dpdk::eal_init(&eal).map_err(|e| format!("{e}\n  EAL arguments: {}", eal.join(" ")))?;
    let quit = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, quit.clone()).map_err(|e| e.to_string())?;
    }
    let mut started = Vec::new();
    let result = Mempool::new("pgwgen", a.mbufs, 256, 2048 + 128, -1)
        .map_err(|e| format!("{e} (lower --mbufs)"))
        .and_then(|pool| {
            with_ports(
                &a,
                &acc,
                &srv,
                pool,
                &quit,
                plan,
                sizes,
                gw_mac,
                &mut started,
            )
        });
    // Ports stopped and closed, EAL cleaned up (every queue handle went
    // with `with_ports`).
    if let Err(e) = dpdk::shutdown(started, false) {
        eprintln!("pgw-gen: {e}");
    }
    if a.loopback {
        let _ = std::fs::remove_file(&lo_sock);
    }
    let report = result?;
    let text = serde_json::to_string_pretty(&report).unwrap();
    match &a.json {
        Some(p) => std::fs::write(p, text + "\n").map_err(|e| format!("{}: {e}", p.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn with_ports(
    a: &Args,
    acc: &str,
    srv: &str,
    pool: &'static Mempool,
    quit: &AtomicBool,
    plan: Plan,
    sizes: SizeMix,
    gw_mac: [u8; 6],
    started: &mut Vec<Port>,
) -> Result<serde_json::Value, String> {
    {
        let mut ids = Vec::new();
        let mut queues = Vec::new();
        for d in [acc, srv] {
            let id = PortId::by_name(&dev_name(d)).map_err(|e| e.to_string())?;
            let mut port = id
                .configure(a.queues, a.queues, 1024, 1024, pool)
                .map_err(|e| e.to_string())?;
            let rx: Vec<RxQueue> = (0..a.queues).filter_map(|q| port.take_rx(q)).collect();
            let tx: Vec<TxQueue> = (0..a.queues).filter_map(|q| port.take_tx(q)).collect();
            queues.push((rx, tx));
            started.push(port);
            let port = started.last_mut().expect("just pushed");
            port.set_promiscuous(true).map_err(|e| e.to_string())?;
            port.start().map_err(|e| e.to_string())?;
            ids.push(id);
        }
        let (servers_rx, servers_tx) = queues.pop().expect("two ports");
        let (access_rx, access_tx) = queues.pop().expect("two ports");
        let ports = Ports {
            access: ids[0],
            servers: ids[1],
            access_rx,
            access_tx,
            servers_rx,
            servers_tx,
            access_mac: ids[0].mac().map_err(|e| e.to_string())?,
            servers_mac: ids[1].mac().map_err(|e| e.to_string())?,
        };
        // (the harness starts the other end on this line: a memif client
        // that connects before the server's port is started is refused
        // and does not try again)
        eprintln!("pgw-gen: ports started; waiting for the links");
        let t = Instant::now();
        while !(ports.access.link().up && ports.servers.link().up) {
            if t.elapsed().as_secs_f64() > a.link_timeout
                || quit.load(std::sync::atomic::Ordering::Relaxed)
            {
                return Err(format!(
                    "links not up after {:.0} s (access {}, servers {}): is the other end running?",
                    a.link_timeout,
                    ports.access.link().up,
                    ports.servers.link().up
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_secs_f64(a.settle.max(0.0)));
        eprintln!(
            "pgw-gen: links up after {:.2} s; {} connections ({} x {}), mode {:?}, size {}, rate {}",
            t.elapsed().as_secs_f64(),
            plan.total(),
            plan.subs,
            plan.conns_per_sub,
            a.mode,
            sizes.name,
            if a.rate > 0.0 {
                format!("{} M/s", a.rate)
            } else {
                "max".into()
            }
        );
        let cfg = GenCfg {
            plan,
            mode: match a.mode {
                ModeArg::Established => Mode::Established,
                ModeArg::Cps => Mode::Cps {
                    data: a.data,
                    close: match a.close {
                        CloseArg::Rst => Close::Rst,
                        CloseArg::Fin => Close::Fin,
                    },
                },
            },
            sizes,
            rate: a.rate * 1e6,
            open_rate: a.open_rate * 1e6,
            window: a.window.max(1),
            open_timeout_s: a.open_timeout,
            warmup_s: a.warmup,
            duration_s: a.duration,
            drain_s: a.drain,
            gw_mac,
            queues: a.queues,
            burst: a.burst,
            verify: a.verify,
        };
        let mut rep = gen::run(&cfg, &ports, pool, quit);
        let w = &rep["window"];
        eprintln!(
            "pgw-gen: window {:.2} s: up tx {:.3} Mpps, up rx {:.3} Mpps, down rx {:.3} Mpps, through the DUT {:.3} Mpps; handshakes {:.3} M/s; rtt p50 {:.1} us p99 {:.1} us; loss up {} down {}",
            w["seconds"].as_f64().unwrap_or(0.0),
            w["up_tx_pps"].as_f64().unwrap_or(0.0) / 1e6,
            w["up_rx_pps"].as_f64().unwrap_or(0.0) / 1e6,
            w["down_rx_pps"].as_f64().unwrap_or(0.0) / 1e6,
            w["dut_pps"].as_f64().unwrap_or(0.0) / 1e6,
            w["handshakes_per_s"].as_f64().unwrap_or(0.0) / 1e6,
            rep["latency_rtt"]["p50_us"].as_f64().unwrap_or(0.0),
            rep["latency_rtt"]["p99_us"].as_f64().unwrap_or(0.0),
            rep["loss"]["up"],
            rep["loss"]["down"],
        );
        rep["ports"] = serde_json::json!({
            "access": format!("{:?}", ports.access.stats()),
            "servers": format!("{:?}", ports.servers.stats()),
            "access_device": acc, "servers_device": srv,
        });
        rep["dpdk"] = serde_json::json!(dpdk::version());
        Ok(rep)
    }
}
