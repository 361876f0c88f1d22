//! Criterion micro-benchmarks of the pipeline stages, in ns per packet, on
//! frames built with `pgw_pipelines::wire::build` (through
//! `pgw_perf::frame::Template`, which uses it).
//!
//! `CARGO_TARGET_DIR=/tmp/target-perf cargo bench -p pgw-perf --bench stages`
//!
//! Every stage rewrites frames in place, so each iteration first copies the
//! next 60-byte frame (a 64-byte wire frame) into the buffer: that copy
//! (a few ns) is part of every figure. Frames rotate over many flows so the
//! tables are exercised, not one cached entry.
#![forbid(unsafe_code)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pgw_engine::runtime::dpdk::CpuPrefetch;
use pgw_perf::frame::{flags, Template, PROTO_TCP};
use pgw_pipelines::arp::ArpResponder;
use pgw_pipelines::gw::acct::{AcctRecord, AcctSink};
use pgw_pipelines::gw::tables::{
    Group, GwTables, Member, Neighbours, Policy, ServiceId, Services, Sessions, SubscriberAuth, Vip,
};
use pgw_pipelines::gw::{GwConfig, GwTimeouts, GwWorker};
use pgw_pipelines::lb::{
    AccessNeighbours, Gw, LbConfig, LbCounters, LbRange, LbSnapshot, LbStage, LbTable,
};
use pgw_pipelines::runtime::{Meter, NoClock};
use pgw_pipelines::{wire, Pkt, Verdict, WorkerCounters};

const ACC_MAC: [u8; 6] = [0x02, 0x50, 0x47, 0x57, 0, 1];
const SRV_MAC: [u8; 6] = [0x02, 0x50, 0x47, 0x57, 0, 2];
const LB_MAC: [u8; 6] = [0x02, 0x50, 0x47, 0x47, 0, 1];
const SERVER_MAC: [u8; 6] = [0x02, 0x50, 0x47, 0x47, 0, 2];
const VIP: [u8; 4] = [10, 33, 0, 1];
const FRAME: usize = 60;
const UP: u16 = 0;
const DOWN: u16 = 1;

/// An accounting sink that counts and forgets.
struct Discard(u64);
impl AcctSink for Discard {
    fn push(&mut self, _r: &AcctRecord) -> bool {
        self.0 += 1;
        true
    }
}

fn sub_ip(i: u32) -> [u8; 4] {
    (u32::from_be_bytes([10, 1, 0, 0]) + i / 1000).to_be_bytes()
}
fn sub_port(i: u32) -> u16 {
    1024 + (i % 1000) as u16
}

/// A GW worker with `pool` pool addresses (64 512 keys each) and tables as
/// in configs/bench-gw-memif*.toml (4 servers round robin behind one VIP).
fn gw(pool: u32, flows: u32) -> (GwWorker, GwTables) {
    let cfg = GwConfig {
        access_port: UP,
        server_port: DOWN,
        access_mac: ACC_MAC,
        server_mac: SRV_MAC,
        pool: (0..pool).map(|i| [10, 80, 1, i as u8]).collect(),
        key_port_first: 1024,
        key_port_last: 65535,
        reserved_ports: None,
        workers: 1,
        timeouts: GwTimeouts {
            close_hold_ms: 1,
            short_hold_ms: 1,
            ..GwTimeouts::default()
        },
        max_flows_per_worker: flows,
        require_session: true,
        ..GwConfig::default()
    };
    let members: Vec<Member> = (0..4)
        .map(|i| Member {
            name: format!("web{i}"),
            ip: [10, 80, 0, 11 + i],
            port: Some(8080),
            weight: 1,
            priority: 0,
            up: true,
        })
        .collect();
    let ips: Vec<[u8; 4]> = members.iter().map(|m| m.ip).collect();
    let services = Services::new(
        vec![Group {
            name: "web".into(),
            service: ServiceId(1),
            policy: Policy::RoundRobin,
            members,
        }],
        vec![Vip {
            ip: VIP,
            port: Some(80),
            group: "web".into(),
        }],
        None,
    )
    .unwrap();
    // One active session per subscriber address, allowed the service.
    let nsubs = flows.div_ceil(1000);
    let sessions = Sessions::new((0..nsubs).map(|s| {
        (
            sub_ip(s * 1000),
            SubscriberAuth {
                device_id: s as u64,
                active: true,
                allowed: ServiceId(1).bit(),
            },
        )
    }));
    let neigh = Neighbours::new(ips.into_iter().map(|ip| (ip, SERVER_MAC)));
    (
        GwWorker::new(&cfg, 0).unwrap(),
        GwTables::new(services, sessions, neigh),
    )
}

/// Open `n` connections (SYN up, SYN-ACK down) and return the frames of an
/// up data packet and a down data packet of a strided sample of at most
/// `sample` of them, back to back, and how many opened (a SYN refused as
/// `flow_table_full` is skipped).
fn established(w: &mut GwWorker, t: &GwTables, n: u32, sample: u32) -> (Vec<u8>, Vec<u8>, u32) {
    let tcp = Template::new(PROTO_TCP, 64, LB_MAC, ACC_MAC);
    let srv = Template::new(PROTO_TCP, 64, SERVER_MAC, SRV_MAC);
    let mut c = WorkerCounters::default();
    let mut sink = Discard(0);
    let every = n.div_ceil(sample).max(1);
    let mut up = Vec::with_capacity(FRAME * sample as usize);
    let mut down = Vec::with_capacity(FRAME * sample as usize);
    let mut buf = vec![0u8; 2048];
    let mut f = [0u8; FRAME];
    let mut ok = 0u32;
    for i in 0..n {
        let (s, p) = (sub_ip(i), sub_port(i));
        tcp.write(&mut buf, (s, p), (VIP, 80), flags::SYN, 0);
        let v = w.process(t, &mut Pkt::new(&mut buf, FRAME, UP), 0, &mut sink, &mut c);
        if v == Verdict::Drop(pgw_pipelines::DropReason::FlowTableFull) {
            continue;
        }
        assert!(matches!(v, Verdict::Tx { port: DOWN }), "SYN {i}: {v:?}");
        let o = wire::parse(&buf[..FRAME]).unwrap();
        let (nat, key, server, sport) = (o.src_v4(), o.src_port, o.dst_v4(), o.dst_port);
        srv.write(
            &mut buf,
            (server, sport),
            (nat, key),
            flags::SYN | flags::ACK,
            0,
        );
        let v = w.process(
            t,
            &mut Pkt::new(&mut buf, FRAME, DOWN),
            0,
            &mut sink,
            &mut c,
        );
        assert!(matches!(v, Verdict::Tx { port: UP }), "SYN-ACK {i}: {v:?}");
        if i % every == 0 {
            tcp.write(&mut f, (s, p), (VIP, 80), flags::PSH | flags::ACK, 1);
            up.extend_from_slice(&f);
            srv.write(
                &mut f,
                (server, sport),
                (nat, key),
                flags::PSH | flags::ACK,
                1,
            );
            down.extend_from_slice(&f);
        }
        ok += 1;
    }
    if ok < n {
        eprintln!(
            "stages: {} of {n} connections refused as flow_table_full",
            n - ok
        );
    }
    // Visit the sample in a scattered order (as many subscribers would).
    let m = up.len() / FRAME;
    let stride = ((m * 618 / 1000) | 1).max(1);
    let (mut su, mut sd) = (Vec::with_capacity(up.len()), Vec::with_capacity(down.len()));
    let mut j = 0;
    for _ in 0..m {
        su.extend_from_slice(&up[j * FRAME..(j + 1) * FRAME]);
        sd.extend_from_slice(&down[j * FRAME..(j + 1) * FRAME]);
        j = (j + stride) % m;
    }
    (su, sd, ok)
}

fn bench_parse(cr: &mut Criterion) {
    let tcp = Template::new(PROTO_TCP, 64, LB_MAC, ACC_MAC);
    let mut f = vec![0u8; FRAME];
    tcp.write(
        &mut f,
        ([10, 1, 0, 1], 1024),
        (VIP, 80),
        flags::PSH | flags::ACK,
        1,
    );
    let mut g = cr.benchmark_group("wire");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse 64B TCP", |b| {
        b.iter(|| wire::parse(black_box(&f[..])).unwrap())
    });
    g.finish();
}

fn bench_lb(cr: &mut Criterion) {
    // 1024 subscriber ranges over 4 gateways, all up.
    let gws: Vec<Gw> = (0..4)
        .map(|i| Gw {
            id: i,
            mac: [0x02, 0x6e, 0, 0, 0, i as u8 + 1],
            up: true,
        })
        .collect();
    let ranges: Vec<LbRange> = (0..1024u32)
        .map(|r| {
            let first = u32::from_be_bytes([10, 0, 0, 0]) + r * 1024;
            LbRange {
                first: first.to_be_bytes(),
                last: (first + 1023).to_be_bytes(),
                primary: gws[r as usize % 4],
                substitutes: vec![gws[(r as usize + 1) % 4]],
            }
        })
        .collect();
    let snap = LbSnapshot {
        table: LbTable::new(ranges).unwrap(),
        access_neighbours: AccessNeighbours::new((0..4096u32).map(|i| {
            (
                (u32::from_be_bytes([10, 0, 0, 0]) + i * 251).to_be_bytes(),
                LB_MAC,
            )
        })),
    };
    let lb = LbStage::new(
        LbConfig {
            access_port: UP,
            lan_port: DOWN,
            access_mac: ACC_MAC,
            lan_mac: SRV_MAC,
            access_next_hop_mac: Some(LB_MAC),
        },
        ArpResponder::new(Vec::new()),
    )
    .unwrap();
    let n = 4096u32;
    let up_t = Template::new(PROTO_TCP, 64, LB_MAC, ACC_MAC);
    let down_t = Template::new(PROTO_TCP, 64, SERVER_MAC, SRV_MAC);
    let mut up = vec![0u8; FRAME * n as usize];
    let mut down = vec![0u8; FRAME * n as usize];
    for i in 0..n {
        let sub = (u32::from_be_bytes([10, 0, 0, 0]) + i * 251).to_be_bytes();
        let k = i as usize * FRAME;
        up_t.write(&mut up[k..], (sub, 1024), (VIP, 80), flags::ACK, 1);
        down_t.write(&mut down[k..], (VIP, 80), (sub, 1024), flags::ACK, 1);
    }
    let mut g = cr.benchmark_group("lb");
    g.throughput(Throughput::Elements(1));
    for (name, frames, port) in [
        ("up (range lookup)", &up, UP),
        ("down (neighbour lookup)", &down, DOWN),
    ] {
        g.bench_function(name, |b| {
            let mut buf = vec![0u8; 2048];
            let mut c = WorkerCounters::default();
            let mut lc = LbCounters::default();
            let mut i = 0usize;
            b.iter(|| {
                buf[..FRAME].copy_from_slice(&frames[i * FRAME..(i + 1) * FRAME]);
                i = (i + 1) % n as usize;
                black_box(lb.process(&snap, &mut Pkt::new(&mut buf, FRAME, port), &mut c, &mut lc))
            })
        });
    }
    g.finish();
}

/// Flows whose frames a data bench cycles through: a strided sample of the
/// open connections (the table holds them all, so lookups still miss the
/// caches at scale; only the frame store is bounded).
const SAMPLE: u32 = 1 << 16;
/// Packets per burst, as the engine's default profile.
const BURST: usize = 32;

/// Table sizes of the data benches: 1 k and 1 M, and 16 M when
/// `PGW_BENCH_16M=1` (opening 16 M connections takes a minute and ~2 GB).
fn data_sizes() -> Vec<(u32, u32)> {
    let mut v = vec![(1_000u32, 1u32), (1_000_000, 16)];
    if std::env::var("PGW_BENCH_16M").as_deref() == Ok("1") {
        v.push((16_000_000, 256));
    }
    v
}

/// The GW stage over bursts of 32 established-connection packets (the
/// engine's path: parse, lookups with prefetch, rewrite), per packet.
fn bench_gw_data(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("gw data");
    g.throughput(Throughput::Elements(BURST as u64));
    g.sample_size(30);
    for (flows, pool) in data_sizes() {
        let (mut w, t) = gw(pool, flows + flows / 16);
        let (up, down, opened) = established(&mut w, &t, flows, SAMPLE);
        let n = (up.len() / FRAME) as u32;
        for (name, frames, port) in [("up", &up, UP), ("down", &down, DOWN)] {
            g.bench_with_input(
                BenchmarkId::new(name, format!("{opened} flows")),
                &opened,
                |b, _| {
                    let mut bufs = vec![[0u8; 128]; BURST];
                    let mut out = [Verdict::Drop(pgw_pipelines::DropReason::NoRoute); BURST];
                    let mut c = WorkerCounters::default();
                    let mut sink = Discard(0);
                    let mut m = Meter::new(NoClock);
                    let mut i = 0usize;
                    b.iter(|| {
                        for buf in bufs.iter_mut() {
                            buf[..FRAME].copy_from_slice(&frames[i * FRAME..(i + 1) * FRAME]);
                            i += 1;
                            if i == n as usize {
                                i = 0;
                            }
                        }
                        let mut it = bufs.iter_mut();
                        let mut pkts: [Pkt<'_>; BURST] = std::array::from_fn(|_| {
                            Pkt::new(&mut it.next().expect("BURST buffers")[..], FRAME, port)
                        });
                        w.process_burst(
                            &t,
                            &mut pkts,
                            u64::MAX >> (64 - BURST),
                            &mut out,
                            2,
                            &mut sink,
                            &mut c,
                            &mut m,
                            &CpuPrefetch,
                        );
                        debug_assert!(out.iter().all(|v| matches!(v, Verdict::Tx { .. })));
                        black_box(&out);
                    })
                },
            );
        }
    }
    g.finish();
}

fn bench_gw_new(cr: &mut Criterion) {
    // A connection = its SYN (session, VIP, authorization, balancing, key,
    // insert) and a RST that closes it (record, key on hold); the clock moves
    // 1 ms per 64 connections so held keys come back (close_hold = 1 ms).
    let mut g = cr.benchmark_group("gw new connection");
    g.throughput(Throughput::Elements(1));
    let (mut w, t) = gw(1, 65536);
    let tcp = Template::new(PROTO_TCP, 64, LB_MAC, ACC_MAC);
    let n = 50_000u32;
    let mut syn = vec![0u8; FRAME * n as usize];
    let mut rst = vec![0u8; FRAME * n as usize];
    for i in 0..n {
        let k = i as usize * FRAME;
        tcp.write(
            &mut syn[k..],
            (sub_ip(i), sub_port(i)),
            (VIP, 80),
            flags::SYN,
            0,
        );
        tcp.write(
            &mut rst[k..],
            (sub_ip(i), sub_port(i)),
            (VIP, 80),
            flags::RST | flags::ACK,
            0,
        );
    }
    g.bench_function("SYN + RST (per connection)", |b| {
        let mut buf = vec![0u8; 2048];
        let mut c = WorkerCounters::default();
        let mut sink = Discard(0);
        let mut i = 0usize;
        let mut now = 10u64;
        b.iter(|| {
            let k = i * FRAME;
            // Connection i's frame of `frames` through the GW.
            let mut step = |frames: &[u8]| {
                buf[..FRAME].copy_from_slice(&frames[k..k + FRAME]);
                w.process(
                    &t,
                    &mut Pkt::new(&mut buf, FRAME, UP),
                    now,
                    &mut sink,
                    &mut c,
                )
            };
            let v = step(&syn);
            debug_assert!(matches!(v, Verdict::Tx { .. }), "{v:?}");
            let v2 = step(&rst);
            i += 1;
            if i == n as usize {
                i = 0;
            }
            if i & 63 == 0 {
                now += 1;
                w.expire(now, 64, &mut sink, &mut c);
            }
            black_box((v, v2))
        })
    });
    g.finish();
}

/// RFC 7915 header translation alone (the NAT64 path's extra work), TCP,
/// both directions, a 64-byte and a 1500-byte IPv4 frame (and their IPv6
/// forms); the copy of the frame into the buffer is included.
fn bench_xlat(cr: &mut Criterion) {
    use pgw_pipelines::wire::build::FrameSpec;
    use pgw_pipelines::xlat::{v4_to_v6, v6_to_v4, Prefix, To4, To6, XlatConfig};
    const POOL: [u8; 4] = [192, 0, 2, 33];
    const SRV: [u8; 4] = [198, 51, 100, 7];
    let sub6 = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    ];
    let cfg = XlatConfig::default();
    let t6 = To6::new(Prefix::WELL_KNOWN.embed(SRV), sub6);
    let t4 = To4::new(POOL, SRV);
    let mut g = cr.benchmark_group("xlat");
    g.throughput(Throughput::Elements(1));
    for (name, payload) in [("64B", 6usize), ("1500B", 1446)] {
        let f4 = FrameSpec {
            src_ip: SRV,
            dst_ip: POOL,
            payload: vec![0x5a; payload],
            ..FrameSpec::tcp(80, 40_000, flags::ACK)
        }
        .build();
        let mut f6 = vec![0u8; 2048];
        f6[..f4.len()].copy_from_slice(&f4);
        let n6 = {
            let mut pkt = Pkt::new(&mut f6, f4.len(), 0);
            v4_to_v6(&mut pkt, &cfg, &t6).expect("v4 -> v6");
            pkt.len()
        };
        f6.truncate(n6);
        for (dir, frame) in [("v4->v6", &f4), ("v6->v4", &f6)] {
            g.bench_function(format!("{dir} TCP {name}"), |b| {
                let mut buf = vec![0u8; 2048];
                b.iter(|| {
                    buf[..frame.len()].copy_from_slice(frame);
                    let mut pkt = Pkt::new(&mut buf, frame.len(), 0);
                    let r = if dir == "v4->v6" {
                        v4_to_v6(&mut pkt, &cfg, &t6)
                    } else {
                        v6_to_v4(&mut pkt, &cfg, &t4)
                    };
                    debug_assert!(r.is_ok());
                    black_box(pkt.len())
                })
            });
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_parse,
    bench_lb,
    bench_gw_data,
    bench_gw_new,
    bench_xlat
);
criterion_main!(benches);
