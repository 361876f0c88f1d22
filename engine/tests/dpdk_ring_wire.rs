//! DPDK test on net_ring with 2 worker lcores: a known number of packets is
//! pushed through the real engine (real mbufs, real PMD, the `pgw` poll
//! loop), and every one is accounted for: forwarded, or dropped under its
//! reason. EAL runs once per process, so this file holds one test.
//!
//! net_ring loops what a port transmits on queue q back to its RX queue q,
//! so the valid frames circulate a <-> b on the worker that owns queue q
//! until the engine stops. At the end:
//! - per worker, rx == tx + drops (nothing vanished inside the loop);
//! - the runts injected are exactly the `bad_ether` drops, and the frames
//!   one byte over the MTU (1519 bytes at `mtu = 1500`) exactly the
//!   `oversize` ones, freed before the pipeline (`Burst::free_oversize`,
//!   checked on its own first: the others keep their bytes and order);
//! - every injected mbuf is either back in a ring or was freed as a drop,
//!   and the mempool's in-use count equals what the rings hold (no leak);
//! - the runtime accounting (`pgw stats --runtime`) agrees with the
//!   counters: its rx, wire and tx stages saw exactly the packets received
//!   and sent, and its stages' cycles add up to the busy cycles.
//! - the engine hands the management link out once, and its drop releases
//!   DPDK (no queue handle or ring half left anywhere: ports closed, EAL
//!   cleaned up).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use pgw_engine::config::Profile;
use pgw_engine::runtime::dpdk::{Burst, Ring};
use pgw_engine::runtime::engine::Engine;
use pgw_engine::runtime::stats::RuntimeReport;
use pgw_pipelines::DropReason;

const VALID_PER_QUEUE: usize = 300;
const RUNTS_PER_QUEUE: usize = 7;
const OVERSIZE_PER_QUEUE: usize = 5;

/// `frame(i)` padded to `len` bytes.
fn long_frame(i: usize, len: usize) -> Vec<u8> {
    let mut f = frame(i);
    f.resize(len, 0xab);
    f
}

fn frame(i: usize) -> Vec<u8> {
    // Ethernet + IPv4 + UDP, 64 bytes; the content does not matter to the
    // wire role, but make it a real frame anyway.
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0xb]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0xa]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 1, 1]);
    f[34..36].copy_from_slice(&(1024 + i as u16).to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&26u16.to_be_bytes());
    f
}

#[test]
fn every_packet_is_accounted_for_with_two_workers() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/ring-wire.toml"
    ))
    .unwrap();
    let sock = std::env::temp_dir().join(format!("pgw-test-ring-{}.sock", std::process::id()));
    let text = text.replace(
        "name = \"ring-wire\"",
        &format!(
            "name = \"t-ring-{}\"\ncontrol_socket = {:?}",
            std::process::id() % 100000,
            sock
        ),
    );
    let profile = Profile::parse(&text, "ring-wire.toml (test)").expect("profile");
    assert_eq!(profile.cores.workers.len(), 2);
    let max_frame = profile.engine.max_frame();
    assert_eq!(max_frame, 1518);
    let mut engine = Engine::init(profile).expect("engine init");

    // Burst::free_oversize on its own: the 1519-byte frame goes back to
    // the pool, the others stay, in order, with their bytes.
    let lens = [60, 1519, max_frame, 1519, 100];
    let mut b = Burst::new();
    for (i, &len) in lens.iter().enumerate() {
        let mut m = engine.pool().alloc().expect("mbuf");
        assert!(m.write(&long_frame(i, len)));
        b.push(m).ok().unwrap();
    }
    assert_eq!(engine.pool().in_use(), 5);
    assert_eq!(b.free_oversize(max_frame, false), (2, 0));
    assert_eq!(engine.pool().in_use(), 3);
    let kept: Vec<Vec<u8>> = b.drain().map(|mut m| m.frame().to_vec()).collect();
    assert_eq!(
        kept,
        vec![
            long_frame(0, 60),
            long_frame(2, max_frame),
            long_frame(4, 100)
        ]
    );
    assert_eq!(engine.pool().in_use(), 0);

    // Chains (real multi-segment mbufs, made with rte_pktmbuf_chain): a
    // 100-byte first segment and a 900-byte second.
    let chained = |i: usize| {
        let mut head = engine.pool().alloc().expect("mbuf");
        let mut tail = engine.pool().alloc().expect("mbuf");
        assert!(head.write(&long_frame(i, 100)));
        assert!(tail.write(&[0xcd; 900]));
        head.chain(tail).ok().expect("chain");
        assert_eq!((head.nb_segs(), head.len(), head.pkt_len()), (2, 100, 1000));
        head
    };
    // Not taken where the ports cannot carry them: freed, every segment.
    let mut b = Burst::new();
    b.push(chained(0)).ok().unwrap();
    b.push(chained(1)).ok().unwrap();
    assert_eq!(engine.pool().in_use(), 4);
    assert_eq!(b.free_oversize(max_frame, false), (2, 0));
    assert_eq!(engine.pool().in_use(), 0);
    // Taken where they can (and counted): a stage sees the first segment
    // and the tail's length. A header rewrite keeps the chain; a stage
    // that sets a new length (a reply built in the buffer) ends the frame
    // in the first segment, and the second goes back to the pool.
    b.push(chained(0)).ok().unwrap();
    b.push(chained(1)).ok().unwrap();
    assert_eq!(b.free_oversize(max_frame, true), (0, 2));
    b.with_pkts(&[0], Some(0), |pkts| {
        assert_eq!(
            pkts.iter().map(|p| (p.len(), p.tail())).collect::<Vec<_>>(),
            vec![(100, 900), (100, 900)]
        );
        assert_eq!(pkts[0].frame(), &long_frame(0, 100)[..]);
        pkts[0].frame_mut()[0] = 0x0e;
        pkts[1].set_len(60);
    });
    assert_eq!(engine.pool().in_use(), 3);
    let mut kept: Vec<_> = b.drain().collect();
    assert_eq!(
        kept.iter()
            .map(|m| (m.nb_segs(), m.len(), m.pkt_len()))
            .collect::<Vec<_>>(),
        vec![(2, 100, 1000), (1, 60, 60)]
    );
    assert_eq!(kept[0].frame()[0], 0x0e);
    assert_eq!(kept[1].frame(), &long_frame(1, 60)[..]);
    // Too long for the MTU, chained or not: freed.
    let mut long = chained(2);
    long.chain(chained(3)).ok().expect("chain");
    long.chain(chained(4)).ok().expect("chain");
    assert_eq!(long.pkt_len(), 3000);
    b.push(long).ok().unwrap();
    assert_eq!(b.free_oversize(max_frame, true), (1, 0));
    drop(kept);
    assert_eq!(engine.pool().in_use(), 0);

    // Inject into RX queue 0 and 1 of port a (worker 0 and worker 1).
    let mut injected = 0;
    for q in 0..2 {
        // SAFETY: no worker runs yet, so net_ring's own producer (TX queue
        // q) and consumer (RX queue q) are idle while `ring` is used; the
        // halves are dropped before `run`, and the port is not closed.
        let (ring, _consumer) =
            unsafe { Ring::lookup(&format!("ETH_RXTX{q}_net_ring0")) }.expect("net_ring's ring");
        let mut frames: Vec<Vec<u8>> = (0..VALID_PER_QUEUE).map(frame).collect();
        frames.extend((0..RUNTS_PER_QUEUE).map(|i| vec![0xee; 1 + i]));
        frames.extend((0..OVERSIZE_PER_QUEUE).map(|i| long_frame(i, max_frame + 1)));
        for chunk in frames.chunks(32) {
            let mut b = Burst::new();
            for f in chunk {
                let mut m = engine.pool().alloc().expect("mbuf");
                assert!(m.write(f));
                b.push(m).ok().unwrap();
            }
            let (sent, freed) = b.enqueue(&ring);
            assert_eq!((sent, freed), (chunk.len(), 0));
            injected += sent;
        }
    }
    assert_eq!(
        injected,
        2 * (VALID_PER_QUEUE + RUNTS_PER_QUEUE + OVERSIZE_PER_QUEUE)
    );
    assert_eq!(engine.pool().in_use() as usize, injected);

    let quit = engine.quit_flag();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        quit.store(true, Relaxed);
    });
    let r = engine.run().expect("run");
    stopper.join().unwrap();

    // What is left in the rings of both ports, all queues the workers used.
    let mut in_rings = 0usize;
    for port in ["net_ring0", "net_ring1"] {
        for q in 0..3 {
            in_rings += Ring::count_of(&format!("ETH_RXTX{q}_{port}")).unwrap() as usize;
        }
    }
    let runts = 2 * RUNTS_PER_QUEUE as u64;
    eprintln!("{}", r.render());

    for w in &r.workers {
        assert!(w.loops.rx > 0, "worker {} received nothing", w.worker);
        assert_eq!(
            w.loops.rx + w.loops.handoff_in,
            w.loops.tx + w.total_drops() + w.loops.handoff_out + w.loops.control_out,
            "worker {} lost packets",
            w.worker
        );
        // Each worker's valid frames circulated more than once.
        assert!(
            w.loops.tx > VALID_PER_QUEUE as u64,
            "worker {} forwarded only {}",
            w.worker,
            w.loops.tx
        );
    }
    assert_eq!(
        r.drop_count(DropReason::BadEther),
        runts,
        "every runt counted as bad_ether"
    );
    assert_eq!(
        r.drop_count(DropReason::Oversize),
        2 * OVERSIZE_PER_QUEUE as u64,
        "every frame over the MTU counted as oversize"
    );
    assert_eq!(
        r.drops() as usize + in_rings,
        injected,
        "every injected packet is in a ring or was dropped"
    );
    assert_eq!(r.mbufs_in_use as usize, in_rings, "no mbuf leaked");
    // Per-port counters add up to the totals.
    let port_tx: u64 = r.workers.iter().flat_map(|w| w.port_tx.iter()).sum();
    assert_eq!(port_tx, r.tx());

    // Runtime accounting, as `pgw stats --runtime` reports it.
    let info = engine.info();
    let raw: Vec<(u32, _)> = info
        .shared
        .iter()
        .zip(info.lcores.iter())
        .map(|(s, l)| (l.id(), s.runtime()))
        .collect();
    let rt = RuntimeReport::new(pgw_engine::runtime::dpdk::tsc_hz(), 0.4, true, &raw, &[]);
    eprintln!("{}", rt.render());
    for (w, wr) in r.workers.iter().zip(rt.workers.iter()) {
        let stage = |n: &str| {
            wr.stages
                .iter()
                .find(|s| s.name == n)
                .unwrap_or_else(|| panic!("worker {}: no stage {n}: {wr:?}", w.worker))
        };
        assert_eq!(
            wr.packets,
            w.loops.rx + w.loops.handoff_in,
            "worker {}",
            w.worker
        );
        assert_eq!(stage("rx").packets, w.loops.rx, "worker {}", w.worker);
        // The pipeline never saw the oversize frames.
        assert_eq!(
            stage("wire").packets + w.drop_count(DropReason::Oversize),
            w.loops.rx,
            "worker {}",
            w.worker
        );
        assert_eq!(stage("tx").packets, w.loops.tx, "worker {}", w.worker);
        assert!(wr.busy_turns > 0 && wr.busy_cycles > 0 && wr.idle_cycles > 0);
        let staged: u64 = wr.stages.iter().map(|s| s.cycles).sum();
        assert_eq!(
            staged, wr.busy_cycles,
            "worker {}: stages vs busy",
            w.worker
        );
        assert!(stage("wire").cycles > 0 && wr.capacity_mpps > 0.0);
    }
    // The engine's handles were handed out once and all came back: the
    // second management link is refused, and the drop releases DPDK
    // (every queue handle and ring half gone, ports closed, EAL cleaned up).
    assert!(engine.mgmt_link().is_ok());
    assert!(engine.mgmt_link().is_err());
    assert!(pgw_engine::runtime::dpdk::is_up());
    drop(engine);
    assert!(
        !pgw_engine::runtime::dpdk::is_up(),
        "DPDK not released: a queue handle or ring half is still held"
    );
}
