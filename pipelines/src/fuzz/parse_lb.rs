//! `wire::parse`/`parse_l3`, the ARP responder and the LB stage over
//! arbitrary frames.
//!
//! Input layout: byte 0 selects the arrival port (bits 0-1: 0 = access,
//! 1 = LAN, 2-3 = unknown ports), whether to stamp our MAC as the Ethernet
//! destination (bit 2, so frames get past the `NotForUs` filter), and which
//! gateways are down (bits 3-5); the rest is the frame.
use crate::arp::ArpResponder;
use crate::lb::{
    AccessNeighbours, Gw, LbConfig, LbCounters, LbRange, LbSnapshot, LbStage, LbTable, LbVerdict,
};
use crate::wire;
use crate::{Pkt, Verdict, WorkerCounters};
use std::sync::OnceLock;

const ACCESS_MAC: [u8; 6] = [0x02, 0x1b, 0, 0, 0, 0xa0];
const LAN_MAC: [u8; 6] = [0x02, 0x1b, 0, 0, 0, 0x1a];
const FILL: u8 = 0xa5;
const ROOM: usize = 64;

struct Fixture {
    arp: ArpResponder,
    stage: LbStage,
    /// Indexed by the 3 "down" bits: bit i set = gateway i+1 down.
    snaps: Vec<LbSnapshot>,
}

fn fixture() -> &'static Fixture {
    static FX: OnceLock<Fixture> = OnceLock::new();
    FX.get_or_init(|| {
        let arp = ArpResponder::new([
            (0, [192, 0, 2, 1], ACCESS_MAC),
            (1, [198, 51, 100, 1], LAN_MAC),
        ]);
        let gw = |id: u16| Gw {
            id,
            mac: [0x02, 0x67, 0, 0, 0, id as u8],
            up: true,
        };
        let base = LbTable::new(vec![
            LbRange {
                first: [0, 0, 0, 0],
                last: [99, 255, 255, 255],
                primary: gw(1),
                substitutes: vec![gw(2), gw(3)],
            },
            LbRange {
                first: [100, 64, 0, 0],
                last: [100, 127, 255, 255],
                primary: gw(2),
                substitutes: vec![gw(1)],
            },
            LbRange {
                first: [192, 0, 0, 0],
                last: [192, 0, 0, 255],
                primary: Gw {
                    id: 9,
                    mac: LAN_MAC,
                    up: true,
                },
                substitutes: vec![],
            },
        ])
        .expect("fixture table");
        let snaps = (0u8..8)
            .map(|down| {
                let mut t = base.clone();
                for i in 0..3 {
                    if down & (1 << i) != 0 {
                        t.set_gw_up(i as u16 + 1, false);
                    }
                }
                LbSnapshot {
                    table: t,
                    access_neighbours: AccessNeighbours::new([(
                        [100, 64, 0, 7],
                        [0x02, 0x4e, 0, 0, 0, 7],
                    )]),
                }
            })
            .collect();
        let stage = LbStage::new(
            LbConfig {
                access_port: 0,
                lan_port: 1,
                access_mac: ACCESS_MAC,
                lan_mac: LAN_MAC,
                access_next_hop_mac: Some([0x02, 0x4e, 0, 0, 0, 1]),
            },
            arp.clone(),
        )
        .expect("fixture stage");
        Fixture { arp, stage, snaps }
    })
}

/// Fuzz `wire::parse`/`parse_l3`, the ARP responder and the LB stage (the
/// input layout is in this module's doc).
pub fn parse_lb(data: &[u8]) {
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    let fx = fixture();
    let port = (sel & 3) as u16;
    let mut frame = input.to_vec();
    if sel & 4 != 0 && frame.len() >= 6 {
        frame[..6].copy_from_slice(if port == 1 { &LAN_MAC } else { &ACCESS_MAC });
    }
    let len = frame.len();

    for p in [wire::parse(&frame), wire::parse_l3(&frame)]
        .into_iter()
        .flatten()
    {
        p.assert_invariants(&frame);
    }

    // ARP responder: never changes the length or writes past the frame.
    let mut buf = frame.clone();
    buf.resize(len + ROOM, FILL);
    let mut c = WorkerCounters::default();
    let mut pkt = Pkt::new(&mut buf, len, port);
    let v = fx.arp.process(&mut pkt, &mut c);
    assert_eq!(pkt.len(), len);
    if !matches!(v, Verdict::Tx { .. }) {
        assert_eq!(pkt.frame(), &frame[..]);
    }
    assert!(buf[len..].iter().all(|&b| b == FILL));

    // LB stage.
    let snap = &fx.snaps[((sel >> 3) & 7) as usize];
    let mut buf = frame.clone();
    buf.resize(len + ROOM, FILL);
    let mut c = WorkerCounters::default();
    let mut lc = LbCounters::default();
    let mut pkt = Pkt::new(&mut buf, len, port);
    let v = fx.stage.process(snap, &mut pkt, &mut c, &mut lc);
    assert_eq!(pkt.len(), len);
    assert!(buf[len..].iter().all(|&b| b == FILL));
    match v {
        LbVerdict::Done(Verdict::Drop(r)) => {
            assert_eq!(c.total_drops(), 1);
            assert_eq!(c.drops[r as usize], 1);
            assert_eq!(&buf[..len], &frame[..]);
        }
        LbVerdict::Local | LbVerdict::Done(Verdict::Control) => assert_eq!(&buf[..len], &frame[..]),
        LbVerdict::Done(Verdict::Tx { port: out }) => {
            assert!(out == 0 || out == 1);
            // IP forwarding rewrites the MACs only (ARP replies rewrite more).
            if out != port {
                assert_eq!(&buf[12..len], &frame[12..]);
            }
        }
        LbVerdict::Done(Verdict::Handoff { .. }) => panic!("the LB never hands off"),
        LbVerdict::Done(Verdict::Consumed) => panic!("the LB keeps no frame"),
    }
}

/// Frames each path handles: ARP for our addresses, IPv4 both ways, a VLAN
/// tag, IPv6, a fragment.
pub(super) fn seeds() -> Vec<Vec<u8>> {
    use crate::wire::build::{arp, FrameSpec, Ip6Spec};
    let with = |sel: u8, frame: Vec<u8>| {
        let mut v = vec![sel];
        v.extend(frame);
        v
    };
    let up = FrameSpec {
        dst_mac: ACCESS_MAC,
        src_ip: [100, 64, 0, 5],
        dst_ip: [10, 0, 0, 1],
        ..FrameSpec::tcp(40000, 80, 0x02)
    };
    let down = FrameSpec {
        dst_mac: LAN_MAC,
        src_ip: [10, 0, 0, 1],
        dst_ip: [100, 64, 0, 7],
        ..FrameSpec::udp(53, 40000)
    };
    // A broadcast ARP request in on `port` from host 02:00:00:00:00:<host> at `spa`
    // for `tpa`.
    let who_has = |port, host, spa, tpa| {
        let mac = [2, 0, 0, 0, 0, host];
        with(port, arp(mac, [0xff; 6], 1, mac, spa, [0; 6], tpa))
    };
    vec![
        who_has(0, 1, [192, 0, 2, 9], [192, 0, 2, 1]),
        who_has(1, 2, [198, 51, 100, 9], [198, 51, 100, 1]),
        with(4, up.build()),
        with(4 | 8, up.build()),
        with(
            0,
            FrameSpec {
                vlan: Some(7),
                ..up.clone()
            }
            .build(),
        ),
        with(5, down.build()),
        with(
            5 | 16,
            FrameSpec {
                more_frags: true,
                ..down.clone()
            }
            .build(),
        ),
        with(
            4,
            FrameSpec {
                ip6: Some(Ip6Spec::default()),
                ..up.clone()
            }
            .build(),
        ),
        with(
            4,
            FrameSpec {
                ip6: Some(Ip6Spec {
                    fragment: true,
                    ..Ip6Spec::default()
                }),
                ..FrameSpec::ping(1, 1)
            }
            .build(),
        ),
    ]
}
