//! The GW role's whole chain as a worker runs it: `Pipeline::Gw` (ARP
//! responder, then the GW stage: parse, sessions, authorization, NAT,
//! balancing, accounting, expiry) over a *sequence* of frames, so that
//! connections are created, answered, closed and expired across inputs.
//!
//! Input: a sequence of records `[len: u8][ctl: u8][frame: len bytes]`;
//! `ctl` bit 0 picks the arrival port (access / servers), bits 1-3 advance
//! the fake clock (0..=7 × 700 ms, so idle timeouts and the close hold
//! fire), bit 4 stamps our MAC as the Ethernet destination, bit 5 turns the
//! frame into an IPv4/TCP frame toward the VIP or the pool (so the NAT paths
//! are reached, not only the parser), bit 7 makes it the answer to the last
//! SYN-bearing IPv4/TCP segment the chain sent out of that port: its tuple
//! swapped, its acknowledgment that segment's sequence number + 1 (so a
//! cookie SYN-ACK gets a valid cookie ACK and a proxied SYN the server's
//! SYN-ACK: the SYN proxy's paths are reached). After each frame the expiry
//! sweep runs.
//! Invariants checked: no panic; a Tx verdict's frame length stays within
//! the buffer; every drop is counted exactly once; every connection ends.
use crate::arp::ArpResponder;
use crate::gw::acct::AcctRecord;
use crate::gw::config::{GwConfig, GwTimeouts};
use crate::gw::tables::{
    Group, GwTables, Member, Neighbours, Policy, ServiceId, Services, Sessions, SubscriberAuth, Vip,
};
use crate::gw::GwWorker;
use crate::hw::NoPrefetch;
use crate::pipeline::{Pipeline, Tables};
use crate::runtime::{Meter, NoClock};
use crate::{Pkt, Verdict, WorkerCounters};

const ACCESS_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa1];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb1];
const POOL: [u8; 4] = [10, 80, 0, 100];
const VIP: [u8; 4] = [10, 33, 0, 1];
const ROOM: usize = 2048;

fn setup() -> (Pipeline, Tables) {
    let cfg = GwConfig {
        access_port: 0,
        server_port: 1,
        access_mac: ACCESS_MAC,
        server_mac: SERVER_MAC,
        pool: vec![POOL],
        key_port_first: 40000,
        key_port_last: 40063,
        reserved_ports: Some((40060, 40063)),
        workers: 2,
        timeouts: GwTimeouts {
            syn_ms: 1000,
            established_ms: 3000,
            closing_ms: 1000,
            udp_ms: 1000,
            icmp_ms: 1000,
            close_hold_ms: 1500,
            short_hold_ms: 500,
        },
        max_flows_per_worker: 64,
        require_session: true,
        mss_clamp_up: Some(1360),
        mss_clamp_down: Some(1300),
        window_cap_down: Some(8192),
        // the subscriber limits' open and close paths under any input
        max_conns_per_subscriber: 16,
        new_conns_per_subscriber_per_s: 1000,
        // SYNs opened up to 8 half-open connections, answered with cookies
        // beyond
        syn_proxy: crate::gw::SynProxy::Auto { half_open: 8 },
        // small fragment tables: their limits reached, and a cheap set-up
        frag_contexts: 8,
        frag_hold_slots: 8,
        ..GwConfig::default()
    };
    let gw = GwWorker::new(&cfg, 0).expect("fixture config");
    let member = |name: &str, ip: [u8; 4], up: bool| Member {
        name: name.into(),
        ip,
        port: Some(8080),
        weight: 2,
        priority: 0,
        up,
    };
    let services = Services::new(
        vec![
            Group {
                name: "wap".into(),
                service: ServiceId(1),
                policy: Policy::WeightedRoundRobin,
                members: vec![
                    member("a", [10, 80, 0, 11], true),
                    member("b", [10, 80, 0, 12], true),
                ],
            },
            Group {
                name: "chat".into(),
                service: ServiceId(3),
                policy: Policy::LeastConnections,
                members: vec![member("c", [10, 80, 0, 31], false)],
            },
        ],
        vec![
            Vip {
                ip: VIP,
                port: None,
                group: "wap".into(),
            },
            Vip {
                ip: [10, 33, 0, 3],
                port: Some(80),
                group: "chat".into(),
            },
        ],
        None,
    )
    .expect("fixture services");
    let sessions = Sessions::new([(
        [10, 50, 0, 2],
        SubscriberAuth {
            device_id: 1,
            active: true,
            allowed: ServiceId(1).bit(),
        },
    )]);
    let neigh = Neighbours::new([
        ([10, 80, 0, 11], [2, 0, 0, 0, 0, 0x11]),
        ([10, 80, 0, 12], [2, 0, 0, 0, 0, 0x12]),
    ]);
    let arp = ArpResponder::new([(0, VIP, ACCESS_MAC), (1, POOL, SERVER_MAC)]);
    (
        Pipeline::Gw {
            arp,
            ndp: crate::ndp::NdpResponder::default(),
            gw: Box::new(gw),
        },
        Tables {
            // (a small mobility table: a cheap set-up per input)
            gw: Some(GwTables::with_move_slots(services, sessions, neigh, 64)),
            lb: None,
        },
    )
}

/// Run one input (layout in this module's doc).
pub fn gw_chain(data: &[u8]) {
    chain(data);
}

/// [`gw_chain`]: the pipeline and the worker's counters after the input.
fn chain(data: &[u8]) -> (Pipeline, WorkerCounters) {
    let (mut pipe, tables) = setup();
    let mut acct: Vec<AcctRecord> = Vec::new();
    let mut c = WorkerCounters::default();
    let mut meter = Meter::new(NoClock);
    let mut now = 0u64;
    let mut rest = data;
    // The last SYN-bearing segment sent out of each port (its first 54
    // bytes: Ethernet, option-less IPv4, TCP header).
    let mut last_syn: [Option<[u8; 54]>; 2] = [None, None];
    while rest.len() >= 2 {
        let (len, ctl) = (rest[0] as usize, rest[1]);
        let take = len.min(rest.len() - 2);
        let frame = &rest[2..2 + take];
        rest = &rest[2 + take..];
        now += ((ctl >> 1) & 7) as u64 * 700;
        let port = (ctl & 1) as u16;
        let mut buf = vec![0xa5u8; ROOM];
        let n = frame.len().min(ROOM);
        buf[..n].copy_from_slice(&frame[..n]);
        if ctl & 0x10 != 0 && n >= 6 {
            buf[..6].copy_from_slice(if port == 0 { &ACCESS_MAC } else { &SERVER_MAC });
        }
        if ctl & 0x20 != 0 && n >= 40 {
            // IPv4 + TCP skeleton toward the VIP (up) or the pool (down);
            // the fuzzer keeps control of everything else.
            buf[12] = 0x08;
            buf[13] = 0x00;
            buf[14] = 0x45;
            buf[23] = 6;
            if port == 0 {
                buf[26..30].copy_from_slice(&[10, 50, 0, 2]);
                buf[30..34].copy_from_slice(&VIP);
            } else {
                buf[26..30].copy_from_slice(&[10, 80, 0, 11]);
                buf[30..34].copy_from_slice(&POOL);
            }
        }
        if ctl & 0x80 != 0 && n >= 54 {
            if let Some(h) = last_syn[port as usize] {
                buf[12..14].copy_from_slice(&[0x08, 0x00]);
                buf[14] = 0x45;
                buf[23] = 6;
                buf[26..30].copy_from_slice(&h[30..34]);
                buf[30..34].copy_from_slice(&h[26..30]);
                buf[34..36].copy_from_slice(&h[36..38]);
                buf[36..38].copy_from_slice(&h[34..36]);
                let seq = u32::from_be_bytes([h[38], h[39], h[40], h[41]]);
                let ack = u32::from_be_bytes([h[42], h[43], h[44], h[45]]);
                if ack != 0 {
                    buf[38..42].copy_from_slice(&ack.to_be_bytes());
                }
                buf[42..46].copy_from_slice(&seq.wrapping_add(1).to_be_bytes());
            }
        }
        let before = c.total_drops();
        // (with 0x40 the frame comes twice in one burst: a connection the
        // first copy opens is the second's)
        let twice = ctl & 0x40 != 0;
        let mut copy = buf.clone();
        let mut v = [Verdict::Drop(crate::DropReason::NoRoute); 2];
        {
            let mut pkts = [Pkt::new(&mut buf, n, port), Pkt::new(&mut copy, n, port)];
            let k = if twice { 2 } else { 1 };
            pipe.process_burst(
                &tables,
                &mut pkts[..k],
                &mut v[..k],
                now,
                &mut acct,
                &mut c,
                &mut meter,
                &NoPrefetch,
            );
            assert!(pkts.iter().all(|p| p.len() <= ROOM));
        }
        for (f, v) in [&buf, &copy]
            .into_iter()
            .zip(&v[..if twice { 2 } else { 1 }])
        {
            if let Verdict::Tx { port: out } = v {
                let syn = f[12..14] == [0x08, 0x00] && f[14] == 0x45 && f[23] == 6;
                if syn && f[47] & 0x02 != 0 && (*out as usize) < 2 {
                    last_syn[*out as usize] = f[..54].try_into().ok();
                }
            }
        }
        let k = if twice { 2 } else { 1 };
        let dropped = v[..k]
            .iter()
            .filter(|v| matches!(v, Verdict::Drop(_)))
            .count() as u64;
        assert_eq!(
            c.total_drops(),
            before + dropped,
            "{dropped} drop verdicts counted {} times",
            c.total_drops() - before
        );
        // Released frames (held fragments) are whole frames for a port.
        pipe.drain_released(|b, p| assert!(b.len() <= ROOM && p <= 1));
        pipe.poll(now, 1 << 20, &mut acct, &mut c);
    }
    // Let everything expire (16 s: past the longest timeout plus the
    // close hold; the wheel walks every millisecond, so not more): every
    // connection ends.
    for _ in 0..16 {
        now += 1_000;
        pipe.poll(now, 1 << 20, &mut acct, &mut c);
    }
    if let Pipeline::Gw { gw, .. } = &pipe {
        assert_eq!(
            gw.open_flows(),
            0,
            "connections left open after every timeout"
        );
        assert_eq!(gw.keys_in_use(), 0, "entries left after every hold");
        assert_eq!(gw.frag_state(), (0, 0), "fragment contexts or slots left");
    }
    (pipe, c)
}

/// A connection's frames: SYN up to the VIP, SYN-ACK and data down to the
/// pool's first key ports, FIN and RST; UDP and ICMP up.
pub(super) fn seeds() -> Vec<Vec<u8>> {
    use crate::wire::build::FrameSpec;
    let rec = |ctl: u8, frame: Vec<u8>| {
        let mut v = vec![frame.len() as u8, ctl];
        v.extend(frame);
        v
    };
    let up = |f: FrameSpec| FrameSpec {
        dst_mac: ACCESS_MAC,
        src_ip: [10, 50, 0, 2],
        dst_ip: VIP,
        ..f
    };
    let down = |port: u16, flags: u8| FrameSpec {
        dst_mac: SERVER_MAC,
        src_ip: [10, 80, 0, 11],
        dst_ip: POOL,
        ..FrameSpec::tcp(8080, port, flags)
    };
    let (syn, synack, ack, fin, rst) = (0x02, 0x12, 0x10, 0x11, 0x04);
    let mut conn = Vec::new();
    conn.extend(rec(0x10, up(FrameSpec::tcp(33000, 80, syn)).build()));
    conn.extend(rec(0x11, down(40000, synack).build()));
    conn.extend(rec(0x11, down(40001, synack).build()));
    conn.extend(rec(0x10, up(FrameSpec::tcp(33000, 80, ack)).build()));
    conn.extend(rec(0x12, up(FrameSpec::tcp(33000, 80, fin)).build()));
    conn.extend(rec(0x13, down(40000, fin).build()));
    let mut misc = Vec::new();
    misc.extend(rec(0x10, up(FrameSpec::udp(33001, 53)).build()));
    misc.extend(rec(0x10, up(FrameSpec::ping(7, 1)).build()));
    misc.extend(rec(0x1e, up(FrameSpec::tcp(33002, 80, syn)).build()));
    misc.extend(rec(0x11, down(40002, rst).build()));
    // A UDP datagram up in 16-byte fragments, the last first, then its
    // answer down the same way.
    let mut frags = Vec::new();
    let dgram = |f: FrameSpec| FrameSpec {
        dont_frag: false,
        payload: (0u8..40).collect(),
        ..f
    };
    let fu = crate::wire::build::fragment_v4(&dgram(up(FrameSpec::udp(33003, 53))).build(), 16);
    for f in fu.iter().rev() {
        frags.extend(rec(0x10, f.clone()));
    }
    let answer = FrameSpec {
        dst_mac: SERVER_MAC,
        src_ip: [10, 80, 0, 11],
        dst_ip: POOL,
        ..FrameSpec::udp(53, 40003)
    };
    for f in crate::wire::build::fragment_v4(&dgram(answer).build(), 16) {
        frags.extend(rec(0x11, f));
    }
    // Inputs that once panicked (kept so every run replays them): a
    // 44-byte TCP frame ending inside its header (gw/meta.rs fast path).
    let found = super::from_hex(
        "32100200000000a102000000000a08004500002412344080401114400a3200020a21000180e9003500109aeb\
         7067772d7465737432100200000000a102000000000a02004500002412344000400114500a3200020a210001\
         08002889000700017067772d746573743e1e0200000000a102000000000a08004500001d123440004006143f\
         0a3200020a21000180ea0050000003e80000",
    )
    .expect("hex");
    // The SYN proxy: 8 connections stay half-open (the threshold), the 9th
    // SYN gets a cookie, the answer bit makes the valid cookie ACK, then
    // the server's SYN-ACK to the proxied SYN, data down, the subscriber's
    // ACK and FIN.
    let mut proxy = Vec::new();
    for sp in 0..9 {
        proxy.extend(rec(0x10, up(FrameSpec::tcp(34000 + sp, 80, syn)).build()));
    }
    proxy.extend(rec(0x90, up(FrameSpec::tcp(1, 1, ack)).build()));
    proxy.extend(rec(0x91, down(1, synack).build()));
    let data = FrameSpec {
        payload: b"hello".to_vec(),
        ..down(1, ack)
    };
    proxy.extend(rec(0x91, data.build()));
    proxy.extend(rec(0x90, up(FrameSpec::tcp(1, 1, ack)).build()));
    proxy.extend(rec(0x92, up(FrameSpec::tcp(1, 1, fin)).build()));
    vec![conn, misc, frags, rec(0x30, vec![0u8; 60]), found, proxy]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The proxy seed reaches the SYN proxy's paths: SYNs past the
    /// worker's share of the threshold (4 of 8, two workers) get cookies,
    /// the answer bit's ACK carries a valid one, the server's SYN-ACK is
    /// accepted and the data after it is translated down.
    #[test]
    fn the_proxy_seed_opens_a_proxied_connection() {
        let (pipe, c) = chain(seeds().last().expect("the proxy seed"));
        let Pipeline::Gw { gw, .. } = &pipe else {
            unreachable!()
        };
        assert_eq!(gw.counters.syncookies_sent, 5);
        assert_eq!(gw.counters.syncookies_valid, 1);
        assert_eq!(c.total_drops(), 0, "{:?}", c.drops);
        // the SYN-ACK (consumed into the handshake's ACK) and the data
        assert_eq!(gw.counters.down_pkts, 2);
    }
}
