//! RSS-steered key choice: the down hash of the chosen key lands on the
//! worker's own queue (checked with the bit-by-bit Toeplitz, not the
//! worker's tables), and the close hold still holds.

use super::*;
use crate::gw::rss::toeplitz;

/// The Microsoft RSS verification key (also a common default key).
const MS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];
const RETA: usize = 128;

/// DPDK's default RETA over 2 queues: entry i → queue i % 2.
fn steer() -> RssSteer {
    RssSteer::new(MS_KEY.to_vec(), (0..RETA as u16).map(|i| i % 2).collect())
}

fn rss_cfg(rss: Option<RssSteer>) -> GwConfig {
    GwConfig {
        pool: vec![POOL0, POOL1],
        key_port_first: 1024,
        key_port_last: 65535,
        reserved_ports: None,
        workers: 2,
        max_flows_per_worker: 1 << 16,
        rss,
        ..cfg()
    }
}

/// The queue the NIC puts a down packet server → key on (TCP/UDP 4-tuple).
fn queue_of(srv: ([u8; 4], u16), key: ([u8; 4], u16)) -> u16 {
    let mut input = [0u8; 12];
    input[..4].copy_from_slice(&srv.0);
    input[4..8].copy_from_slice(&key.0);
    input[8..10].copy_from_slice(&srv.1.to_be_bytes());
    input[10..].copy_from_slice(&key.1.to_be_bytes());
    (toeplitz(&MS_KEY, &input) as usize % RETA % 2) as u16
}

/// Open `n` connections on each worker (TCP, or UDP when `udp`); per
/// worker, how many got a key whose down packets land on it.
fn landed(h: &mut H, n: u16, udp: bool) -> [u32; 2] {
    let mut hits = [0u32; 2];
    for (w, hit) in hits.iter_mut().enumerate() {
        for i in 0..n {
            let sp = 1000 + w as u16 * n + i;
            let f = if udp {
                super::udp((LB1, ACC_MAC), (SUB1, sp), (VIP_WAP, 53), b"q")
            } else {
                bare_syn((SUB1, sp), (VIP_WAP, 80))
            };
            let (v, out) = h.run_on(w, &f.build(), UP, 0);
            assert_eq!(v, TX_UP);
            let o = crate::wire::parse(&out).unwrap();
            let key = (o.src_v4(), o.src_port);
            assert_eq!(key_owner(&h.w[w].cfg, key.0, key.1), Some(w as u16));
            if queue_of((o.dst_v4(), o.dst_port), key) == w as u16 {
                *hit += 1;
            }
        }
    }
    hits
}

#[test]
fn steered_keys_land_on_the_own_queue() {
    const N: u16 = 1000;
    let mut h = H::new(rss_cfg(Some(steer())));
    let hits = landed(&mut h, N, false);
    println!("steered TCP: {hits:?} of {N} per worker");
    for (w, &hit) in hits.iter().enumerate() {
        let c = &h.w[w].counters;
        assert!(hit >= N as u32 * 9 / 10, "worker {w}: {hit} of {N}; {c:?}");
        // the worker's tables agree with the bit-by-bit hash exactly
        assert_eq!(c.rss_steered, hit as u64, "worker {w}");
        assert_eq!(c.rss_steered + c.rss_miss, c.new_flows);
    }
    // UDP too (hashed on the 4-tuple by default)
    let hits = landed(&mut h, N, true);
    println!("steered UDP: {hits:?} of {N} per worker");
    assert!(hits.iter().all(|&x| x >= N as u32 * 9 / 10), "{hits:?}");
    // without steering, about half land on the right queue
    let mut h = H::new(rss_cfg(None));
    let hits = landed(&mut h, N, false);
    println!("not steered TCP: {hits:?} of {N} per worker");
    for (w, &x) in hits.iter().enumerate() {
        assert!((300..=700).contains(&x), "worker {w}: {x} of {N}");
        assert_eq!(h.w[w].counters.rss_steered + h.w[w].counters.rss_miss, 0);
    }
}

#[test]
fn a_queue_missing_from_the_reta_takes_the_first_free_key() {
    // every RETA entry names queue 0: worker 1 can never be steered
    let mut h = H::new(rss_cfg(Some(RssSteer::new(MS_KEY.to_vec(), vec![0; 8]))));
    // probe 1: the first free key of the rotation whether it lands or not
    let mut h_plain = H::new(rss_cfg(Some(RssSteer {
        probe: 1,
        ..steer()
    })));
    for sp in 0..20 {
        let f = bare_syn((SUB1, sp), (VIP_WAP, 80)).build();
        assert_eq!(h.run_on(1, &f, UP, 0).1, h_plain.run_on(1, &f, UP, 0).1);
    }
    let c = &h.w[1].counters;
    assert_eq!((c.rss_steered, c.rss_miss), (0, 20));
}

#[test]
fn steering_never_hands_out_a_key_before_its_hold_is_over() {
    // 1 pool address, 16 ports, 2 workers: 8 keys on worker 0; hold 5000
    let cfg = GwConfig {
        pool: vec![POOL0],
        key_port_first: 30_000,
        key_port_last: 30_015,
        rss: Some(steer()),
        timeouts: GwTimeouts {
            syn_ms: 1 << 30,
            ..TIMEOUTS
        },
        ..rss_cfg(None)
    };
    // (RST-closed connections never established: the short hold)
    let hold = cfg.timeouts.short_hold_ms;
    let mut h = H::new(cfg);
    // a key is unique per server: (key port, server) → when released
    let mut released: std::collections::HashMap<(u16, [u8; 4]), u64> = Default::default();
    let mut open: Vec<(u16, u16, [u8; 4])> = Vec::new(); // (subscriber port, key port, server)
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut now, mut sp, mut opened, mut exhausted) = (0u64, 1u16, 0, 0);
    for _ in 0..3000 {
        now += next() % 400;
        // (the worker's timer runs every loop turn)
        h.expire(0, now);
        if open.is_empty() || next() % 2 == 0 {
            sp += 1;
            let syn = bare_syn((SUB1, sp), (VIP_WAP, 80));
            match h.up(&syn, now) {
                (TX_UP, out) => {
                    let kp = u16::from_be_bytes([out[34], out[35]]);
                    let srv = [out[30], out[31], out[32], out[33]];
                    if let Some(&t) = released.get(&(kp, srv)) {
                        assert!(
                            now >= t + hold,
                            "key {kp} reused for {srv:?} at {now}, released at {t}"
                        );
                    }
                    open.push((sp, kp, srv));
                    opened += 1;
                }
                (Verdict::Drop(DropReason::NatPoolExhausted), _) => exhausted += 1,
                (v, _) => panic!("{v:?}"),
            }
        } else {
            let (p, kp, srv) = open.swap_remove((next() % open.len() as u64) as usize);
            let rst = tcp((LB1, ACC_MAC), (SUB1, p), (VIP_WAP, 80), RST, 2, 0, b"");
            assert_eq!(h.up(&rst, now).0, TX_UP);
            released.insert((kp, srv), now);
        }
    }
    let c = &h.w[0].counters;
    assert!(opened > 500 && exhausted > 0, "{opened} {exhausted}");
    assert!(c.rss_steered > 0 && c.rss_miss > 0, "{c:?}");
    assert_eq!(c.rss_steered + c.rss_miss, c.new_flows);
}
