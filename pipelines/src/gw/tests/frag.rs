//! Fragments of NAT44 and NAT66 connections ([`super::frag`]): every
//! output fragment byte for byte equal to the fragment a router (IPv4) or
//! the source (IPv6) would cut from the whole datagram translated at once
//! (so the first fragment's L4 checksum is the whole datagram's), in order
//! and out of order, both ways; the limits and the timeout counted under
//! their reasons.

use super::*;
use crate::wire::build::fragment_v4;

/// A UDP datagram of `n` bytes of payload (a pattern, no two neighbours
/// equal), `src` → `dst`, MACs `macs`, IPv4 Identification `id`.
fn dgram(
    macs: ([u8; 6], [u8; 6]),
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    n: usize,
    id: u16,
) -> FrameSpec {
    let payload: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
    FrameSpec {
        ident: id,
        dont_frag: false,
        ..udp(macs, src, dst, &payload)
    }
}

/// SUB1:4000 → VIP_WAP:53, 3000 bytes: three fragments at MTU 1500.
fn up_dgram(id: u16) -> FrameSpec {
    dgram((LB1, ACC_MAC), (SUB1, 4000), (VIP_WAP, 53), 3000, id)
}

/// Its translation: POOL0:20000 → WAP1:53, to the server's MAC.
fn up_sent(d: &FrameSpec) -> Vec<Vec<u8>> {
    fragment_v4(
        &natted(d, (SRV_MAC, mac_of(WAP1)), (POOL0, 20_000), (WAP1, 53)),
        1480,
    )
}

/// The answer WAP1:53 → POOL0:20000, and as the subscriber must get it.
fn down_dgram(id: u16) -> FrameSpec {
    dgram(
        (mac_of(WAP1), SRV_MAC),
        (WAP1, 53),
        (POOL0, 20_000),
        4000,
        id,
    )
}
fn down_sent(d: &FrameSpec) -> Vec<Vec<u8>> {
    fragment_v4(
        &natted(d, (ACC_MAC, LB1), (VIP_WAP, 53), (SUB1, 4000)),
        1480,
    )
}

fn frags(d: &FrameSpec) -> Vec<Vec<u8>> {
    fragment_v4(&d.build(), 1480)
}

/// Released frames of worker 0 (bytes, port).
fn released(h: &mut H) -> Vec<(Vec<u8>, u16)> {
    let mut v = Vec::new();
    h.w[0].drain_released(|b, p| v.push((b.to_vec(), p)));
    v
}

/// Fragments `fin` in order through `port` at `now`: each one sent out
/// translated, byte for byte `want[k]`.
fn in_order(h: &mut H, fin: &[Vec<u8>], want: &[Vec<u8>], port: u16, now: u64) {
    assert_eq!(fin.len(), want.len());
    let tx = if port == UP { TX_UP } else { TX_DOWN };
    for (k, f) in fin.iter().enumerate() {
        assert_eq!(h.run(f, port, now), (tx, want[k].clone()), "fragment {k}");
    }
}

/// Three fragments `fin` through `port` at `now`, the first one after
/// fragment `early` was held: the first goes out as `want[0]` and releases
/// `early` (`want[early]`, to the other port), the third one follows.
fn first_releases(h: &mut H, fin: &[Vec<u8>], want: &[Vec<u8>], early: usize, port: u16, now: u64) {
    let (tx, out) = if port == UP {
        (TX_UP, DOWN)
    } else {
        (TX_DOWN, UP)
    };
    assert_eq!(h.run(&fin[0], port, now), (tx, want[0].clone()));
    assert_eq!(released(h), vec![(want[early].clone(), out)]);
    let last = 3 - early;
    assert_eq!(h.run(&fin[last], port, now), (tx, want[last].clone()));
}

/// Fragments and what must go out for them.
type Cut = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// A datagram of three fragments up (`up`), then one down (`down`), each
/// in order: every fragment out translated byte for byte; the up one
/// counted whole on its connection (POOL0:20000); two first fragments,
/// four translated, none held, no context left, nothing dropped.
fn both_ways_in_order(h: &mut H, up: Cut, down: Cut) {
    let (fin, want) = up;
    assert_eq!(fin.len(), 3);
    in_order(h, &fin, &want, UP, 0);
    // The whole datagram seen: its context ended.
    assert_eq!(h.w[0].frag_state(), (0, 0));
    let flow = h.w[0].flow_by_key(POOL0, 20_000).unwrap();
    let ip_bytes: usize = fin.iter().map(|f| f.len() - 14).sum();
    assert_eq!((flow.up_pkts, flow.up_bytes), (3, ip_bytes as u64));
    let (fin, want) = down;
    assert_eq!(fin.len(), 3);
    in_order(h, &fin, &want, DOWN, 1);
    let c = &h.w[0].counters;
    assert_eq!((c.frag_first, c.frag_translated, c.frag_held), (2, 4, 0));
    assert_eq!((c.up_pkts, c.down_pkts), (3, 3));
    assert_eq!(h.w[0].frag_state(), (0, 0));
    h.assert_drops(&[], 0);
}

#[test]
fn in_order_both_ways_byte_for_byte() {
    let (d, a) = (up_dgram(0x4242), down_dgram(0x0777));
    // The answer, 4000 bytes: three fragments down too.
    both_ways_in_order(
        &mut H::std(),
        (frags(&d), up_sent(&d)),
        (frags(&a), down_sent(&a)),
    );
}

#[test]
fn out_of_order_fragments_wait_for_the_first_then_go_out_translated() {
    let mut h = H::std();
    let d = up_dgram(0x1111);
    let (fin, want) = (frags(&d), up_sent(&d));
    // The last one, then the middle one: kept.
    for k in [2, 1] {
        assert_eq!(h.run(&fin[k], UP, 0).0, Verdict::Consumed, "fragment {k}");
    }
    assert_eq!(h.w[0].frag_state(), (1, 2));
    assert!(released(&mut h).is_empty());
    // The first: translated, and the held ones released after it.
    let (v, out) = h.run(&fin[0], UP, 5);
    assert_eq!((v, &out), (TX_UP, &want[0]));
    let mut r = released(&mut h);
    r.sort();
    let mut w: Vec<(Vec<u8>, u16)> = want[1..].iter().map(|f| (f.clone(), 1)).collect();
    w.sort();
    assert_eq!(r, w);
    assert_eq!(h.w[0].frag_state(), (0, 0), "all seen, slots free");
    let c = &h.w[0].counters;
    assert_eq!((c.frag_first, c.frag_translated, c.frag_held), (1, 2, 2));

    // Down, the middle one early, the last one after the first.
    let a = down_dgram(0x2222);
    let (fin, want) = (frags(&a), down_sent(&a));
    assert_eq!(h.run(&fin[1], DOWN, 6).0, Verdict::Consumed);
    first_releases(&mut h, &fin, &want, 1, DOWN, 6);
    assert_eq!(h.w[0].frag_state(), (0, 0));
    h.assert_drops(&[], 0);
}

#[test]
fn limits_and_timeout_are_counted() {
    let cfg = GwConfig {
        frag_contexts: 2,
        frag_hold_slots: 4,
        frag_max_held: 2,
        frag_timeout_ms: 100,
        ..cfg()
    };
    let mut h = H::new(cfg);
    // A 6000-byte datagram: 5 fragments; 2 held at most.
    let big = dgram((LB1, ACC_MAC), (SUB1, 4000), (VIP_WAP, 53), 6000, 1);
    let fb = frags(&big);
    assert_eq!(fb.len(), 5);
    assert_eq!(h.run(&fb[1], UP, 0).0, Verdict::Consumed);
    assert_eq!(h.run(&fb[2], UP, 0).0, Verdict::Consumed);
    assert_eq!(
        h.run(&fb[3], UP, 0).0,
        Verdict::Drop(DropReason::FragTooMany)
    );
    // A second datagram takes the second context; a third finds none.
    let d2 = frags(&up_dgram(2));
    assert_eq!(h.run(&d2[1], UP, 0).0, Verdict::Consumed);
    assert_eq!(h.run(&d2[2], UP, 0).0, Verdict::Consumed);
    let d3 = frags(&up_dgram(3));
    assert_eq!(
        h.run(&d3[1], UP, 0).0,
        Verdict::Drop(DropReason::FragTableFull)
    );
    assert_eq!(h.w[0].frag_state(), (2, 4));
    // Its first fragment cannot keep a context either: dropped, so that
    // no half of the datagram goes out.
    assert_eq!(
        h.run(&d3[0], UP, 1).0,
        Verdict::Drop(DropReason::FragTableFull)
    );
    // Not yet: 99 ms.
    h.expire(0, 99);
    assert_eq!(h.w[0].frag_state(), (2, 4));
    // 100 ms after the first arrival: both contexts end, 4 held dropped.
    h.expire(0, 100);
    assert_eq!(h.w[0].frag_state(), (0, 0));
    h.assert_drops(
        &[
            (DropReason::FragTooMany, 1),
            (DropReason::FragTableFull, 2),
            (DropReason::FragTimeout, 4),
        ],
        7,
    );
    // A late fragment of the first datagram opens a new context, waits.
    assert_eq!(h.run(&fb[4], UP, 200).0, Verdict::Consumed);
    assert_eq!(h.w[0].frag_state(), (1, 1));
}

#[test]
fn hold_slots_and_their_size_are_bounded() {
    let cfg = GwConfig {
        frag_hold_slots: 1,
        ..cfg()
    };
    let mut h = H::new(cfg);
    let d1 = frags(&up_dgram(1));
    let d2 = frags(&up_dgram(2));
    assert_eq!(h.run(&d1[1], UP, 0).0, Verdict::Consumed);
    assert_eq!(
        h.run(&d2[1], UP, 0).0,
        Verdict::Drop(DropReason::FragHoldFull)
    );
    // A jumbo fragment (2000 bytes of payload) is not held.
    let j = dgram((LB1, ACC_MAC), (SUB1, 4000), (VIP_WAP, 53), 5000, 9);
    let fj = fragment_v4(&j.build(), 2000);
    assert_eq!(
        h.run(&fj[1], UP, 0).0,
        Verdict::Drop(DropReason::FragHoldTooBig)
    );
    h.assert_drops(
        &[
            (DropReason::FragHoldFull, 1),
            (DropReason::FragHoldTooBig, 1),
        ],
        2,
    );
}

#[test]
fn fragments_of_no_connection_or_not_translated_are_not_sent() {
    let mut h = H::std();
    // No session: the first fragment is refused, no context is kept; the
    // rest waits and times out.
    let d = frags(&dgram(
        (LB1, ACC_MAC),
        (SUB_NONE, 4000),
        (VIP_WAP, 53),
        3000,
        5,
    ));
    assert_eq!(h.run(&d[0], UP, 0).0, Verdict::Drop(DropReason::NoSession));
    assert_eq!(h.run(&d[1], UP, 0).0, Verdict::Consumed);
    assert!(released(&mut h).is_empty());
    h.expire(0, 100);
    // GRE fragments, and a first fragment too short for the UDP header.
    let mut p = ping((LB1, ACC_MAC), SUB1, VIP_WAP, ECHO_REQUEST, 7, 1);
    p.l4 = L4::Raw { proto: 47 };
    p.more_frags = true;
    p.dont_frag = false;
    assert_eq!(h.up(&p, 200).0, Verdict::Drop(DropReason::Fragment));
    let mut short = frags(&up_dgram(6))[0].clone();
    short.truncate(14 + 24);
    short[16..18].copy_from_slice(&24u16.to_be_bytes());
    let c = crate::wire::build::ipv4_header_checksum(&short[14..34]);
    short[24..26].copy_from_slice(&c.to_be_bytes());
    assert_eq!(
        h.run(&short, UP, 200).0,
        Verdict::Drop(DropReason::Fragment)
    );
    // Off: every fragment is a `fragment` drop.
    let mut off = H::new(GwConfig {
        frag_contexts: 0,
        ..cfg()
    });
    let d = frags(&up_dgram(7));
    assert_eq!(off.run(&d[0], UP, 0).0, Verdict::Drop(DropReason::Fragment));
    assert_eq!(off.run(&d[1], UP, 0).0, Verdict::Drop(DropReason::Fragment));
    h.assert_drops(
        &[
            (DropReason::NoSession, 1),
            (DropReason::FragTimeout, 1),
            (DropReason::Fragment, 2),
        ],
        4,
    );
}

#[test]
fn a_first_fragment_in_a_burst_with_its_followers() {
    // The whole datagram in one burst, the first fragment last: the
    // earlier ones are held during the parse stage and released at the
    // rewrite of the first.
    let mut h = H::std();
    let d = up_dgram(0x3333);
    let (fin, want) = (frags(&d), up_sent(&d));
    let res = h.burst(&[fin[1].clone(), fin[2].clone(), fin[0].clone()], UP, 0);
    assert_eq!(res[0].0, Verdict::Consumed);
    assert_eq!(res[1].0, Verdict::Consumed);
    assert_eq!(res[2], (TX_UP, want[0].clone()));
    let mut r: Vec<Vec<u8>> = released(&mut h).into_iter().map(|x| x.0).collect();
    r.sort();
    let mut w = want[1..].to_vec();
    w.sort();
    assert_eq!(r, w);
}

#[test]
fn memory_per_context_and_slot() {
    use crate::gw::frag::{Addrs6, Ctx, Slot, HOLD_BYTES};
    assert_eq!(core::mem::size_of::<Ctx>(), 76);
    assert_eq!(core::mem::size_of::<Addrs6>(), 64);
    assert_eq!(core::mem::size_of::<Slot>(), HOLD_BYTES + 8);
}

// ------------------------------------------------------------- NAT66 --

mod nat66 {
    //! IPv6 fragments (a Fragment header first) of NAT66 connections:
    //! every output fragment byte for byte the one the source would cut
    //! from the whole datagram translated at once.

    use super::super::fixtures::*;
    use super::super::nat66::{h66, mac6, natted6};
    use super::super::*;
    use super::{both_ways_in_order, first_releases};
    use crate::wire::build::fragment_v6;

    addresses6! {
        sub_a = "2001:db8:0:1::1",
        p6_0 = "2001:db8:ff::10",
        vip6_wap = "2001:db8:33::1",
        wap1_6 = "2001:db8:33:1::10",
    }

    /// The payload of an IPv6 fragment at a 1500-byte MTU.
    const STEP: usize = 1448;

    fn dgram6(macs: Macs, src: Ep6, dst: Ep6, n: usize) -> FrameSpec {
        let payload: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
        udp6(macs, src, dst, &payload)
    }
    /// sub_a:4000 → vip6_wap:53, 3000 bytes: three fragments.
    fn up6() -> FrameSpec {
        dgram6((LB1, ACC_MAC), (sub_a(), 4000), (vip6_wap(), 53), 3000)
    }
    /// Its translation: p6_0:20000 → wap1_6:53, fragmented alike.
    fn up6_sent(d: &FrameSpec, id: u32) -> Vec<Vec<u8>> {
        let whole = natted6(
            d,
            (SRV_MAC, mac6(wap1_6())),
            (p6_0(), 20_000),
            (wap1_6(), 53),
        );
        fragment_v6(&whole, STEP, id)
    }
    /// The answer wap1_6:53 → p6_0:20000, 4000 bytes.
    fn down6() -> FrameSpec {
        dgram6(
            (mac6(wap1_6()), SRV_MAC),
            (wap1_6(), 53),
            (p6_0(), 20_000),
            4000,
        )
    }
    fn down6_sent(d: &FrameSpec, id: u32) -> Vec<Vec<u8>> {
        let whole = natted6(d, (ACC_MAC, LB1), (vip6_wap(), 53), (sub_a(), 4000));
        fragment_v6(&whole, STEP, id)
    }
    fn frags6(d: &FrameSpec, id: u32) -> Vec<Vec<u8>> {
        fragment_v6(&d.build(), STEP, id)
    }

    #[test]
    fn in_order_both_ways_byte_for_byte() {
        let (d, a) = (up6(), down6());
        both_ways_in_order(
            &mut h66(),
            (frags6(&d, 0xdead_beef), up6_sent(&d, 0xdead_beef)),
            (frags6(&a, 7), down6_sent(&a, 7)),
        );
    }

    #[test]
    fn out_of_order_and_the_high_bits_of_the_identification() {
        let mut h = h66();
        let d = up6();
        // Two datagrams whose IDs differ only in the high 16 bits.
        let (f1, w1) = (frags6(&d, 0x0001_0042), up6_sent(&d, 0x0001_0042));
        let (f2, w2) = (frags6(&d, 0x0002_0042), up6_sent(&d, 0x0002_0042));
        assert_eq!(h.run(&f1[2], UP, 0).0, Verdict::Consumed);
        assert_eq!(h.run(&f2[1], UP, 0).0, Verdict::Consumed);
        assert_eq!(h.w[0].frag_state(), (2, 2));
        first_releases(&mut h, &f1, &w1, 2, UP, 1);
        assert_eq!(h.w[0].frag_state(), (1, 1), "the second still waits");
        first_releases(&mut h, &f2, &w2, 1, UP, 2);
        assert_eq!(h.w[0].frag_state(), (0, 0));
        h.assert_drops(&[], 0);
    }

    #[test]
    fn timeout_and_what_stays_dropped() {
        let mut h = h66();
        let d = up6();
        let f = frags6(&d, 9);
        assert_eq!(h.run(&f[1], UP, 0).0, Verdict::Consumed);
        h.expire(0, 100);
        assert_eq!(h.w[0].frag_state(), (0, 0));
        // A later fragment to no VIP, or from the wrong side: not held.
        let other = dgram6((LB1, ACC_MAC), (sub_a(), 4000), (wap1_6(), 53), 3000);
        let fo = frags6(&other, 3);
        assert_eq!(h.run(&fo[1], UP, 0).0, Verdict::Drop(DropReason::Fragment));
        // Another extension header before the Fragment header: dropped as
        // before (not a fragment to the parse).
        let mut hbh = f[1].clone();
        hbh.splice(54..54, [44u8, 0, 1, 4, 0, 0, 0, 0]);
        hbh[20] = 0; // hop-by-hop first
        let pl = u16::from_be_bytes([hbh[18], hbh[19]]) + 8;
        hbh[18..20].copy_from_slice(&pl.to_be_bytes());
        assert_eq!(
            h.run(&hbh, UP, 0).0,
            Verdict::Drop(DropReason::UnsupportedProto)
        );
        // A first fragment too short for the UDP header.
        let mut short = f[0][..14 + 40 + 8 + 4].to_vec();
        short[18..20].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(h.run(&short, UP, 0).0, Verdict::Drop(DropReason::Fragment));
        // Hop limit 1 on a later fragment.
        let mut hop1 = f[2].clone();
        hop1[21] = 1;
        assert_eq!(
            h.run(&hop1, UP, 0).0,
            Verdict::Drop(DropReason::TtlExceeded)
        );
        // Without NAT64 or NAT66, IPv6 fragments are `fragment` drops.
        let mut h4 = H::std();
        assert_eq!(h4.run(&f[0], UP, 0).0, Verdict::Drop(DropReason::Fragment));
        h.assert_drops(
            &[
                (DropReason::FragTimeout, 1),
                (DropReason::Fragment, 2),
                (DropReason::UnsupportedProto, 1),
                (DropReason::TtlExceeded, 1),
            ],
            5,
        );
    }
}

// ------------------------------------------------------------- NAT64 --

mod nat64 {
    //! Fragments across NAT64 (RFC 7915 §5.1.1, §4.1): every output
    //! fragment byte for byte the fragment of the whole datagram
    //! translated at once, cut at the same places; an IPv4 fragment grows
    //! by 28 bytes and is dropped when that exceeds `mtu6`.

    use super::super::fixtures::*;
    use super::super::nat64::{build6, h64, wkp};
    use super::super::*;
    use super::{first_releases, in_order, released};
    use crate::wire::build::{fragment_v4, fragment_v6};
    use crate::wire::ipv4::Ipv4Packet;

    addresses6! {
        sub6_1 = "2001:db8:0:1::1",
    }

    const UP_MACS: Macs = (LB1, ACC_MAC);
    const DOWN_MACS: Macs = (ACC_MAC, LB1);

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }
    /// sub6_1:5353 → 64:ff9b::VIP_WAP:53, 3000 bytes.
    fn up6() -> FrameSpec {
        udp6(
            UP_MACS,
            (sub6_1(), 5353),
            (wkp(VIP_WAP), 53),
            &pattern(3000),
        )
    }
    /// Its translation, whole: POOL0:20000 → WAP1:53, TTL 63,
    /// Identification `id`, cut at 1448 bytes as the IPv6 source cut it.
    fn up4_sent(d: &FrameSpec, id: u16) -> Vec<Vec<u8>> {
        let mut s = d.clone();
        s.ip6 = None;
        (s.src_mac, s.dst_mac) = (SRV_MAC, mac_of(WAP1));
        (s.src_ip, s.dst_ip) = (POOL0, WAP1);
        s.ttl -= 1;
        s.ident = id;
        s.dont_frag = false;
        set_ports(&mut s.l4, 20_000, 53, |_, _| unreachable!());
        fragment_v4(&s.build(), 1448)
    }
    /// WAP1:53 → POOL0:20000, 4000 bytes, Identification 0x0777.
    fn down4() -> FrameSpec {
        FrameSpec {
            ident: 0x0777,
            dont_frag: false,
            ..udp(
                (mac_of(WAP1), SRV_MAC),
                (WAP1, 53),
                (POOL0, 20_000),
                &pattern(4000),
            )
        }
    }
    /// Its translation, whole, cut at `step` bytes with the ID 0x0777.
    fn down6_sent(d: &FrameSpec, step: usize) -> Vec<Vec<u8>> {
        let s = sent6(
            d,
            DOWN_MACS,
            (wkp(VIP_WAP), 53),
            (sub6_1(), 5353),
            |_, _| unreachable!(),
        );
        fragment_v6(&build6(&s), step, 0x0777)
    }
    /// The IPv4 fragment of `whole` carrying its payload `off..off + n`.
    fn piece(whole: &[u8], off: usize, n: usize) -> Vec<u8> {
        let end = 14 + u16::from_be_bytes([whole[16], whole[17]]) as usize;
        let mut f = whole[..34].to_vec();
        f.extend_from_slice(&whole[34 + off..34 + off + n]);
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.set_total_len((20 + n) as u16);
        ip.set_flags_and_frag_offset(false, 34 + off + n < end, off as u16);
        ip.fill_checksum();
        f
    }

    #[test]
    fn six_to_four_in_order_and_out_of_order() {
        let mut h = h64();
        let d = up6();
        // In order: ID 0xabcd_0042 → IPv4 Identification 0x0042.
        let (fin, want) = (
            fragment_v6(&d.build(), 1448, 0xabcd_0042),
            up4_sent(&d, 0x42),
        );
        assert_eq!(fin.len(), 3);
        in_order(&mut h, &fin, &want, UP, 0);
        for (f, w) in fin.iter().zip(&want) {
            assert_eq!(w.len() + 28, f.len());
        }
        assert_eq!(h.w[0].frag_state(), (0, 0));
        // Out of order: the last one held, released translated (shrunk in
        // its slot) after the first.
        let (fin, want) = (
            fragment_v6(&d.build(), 1448, 0x0001_0043),
            up4_sent(&d, 0x43),
        );
        assert_eq!(h.run(&fin[2], UP, 1).0, Verdict::Consumed);
        first_releases(&mut h, &fin, &want, 2, UP, 1);
        assert_eq!(h.w[0].frag_state(), (0, 0));
        let c = &h.w[0].counters;
        assert_eq!((c.frag_first, c.frag_translated, c.frag_held), (2, 4, 1));
        assert_eq!((c.up_pkts, c.nat64_flows), (6, 1));
        h.assert_drops(&[], 0);
    }

    #[test]
    fn four_to_six_in_order_and_out_of_order() {
        let mut h = h64();
        let d = up6();
        let fin = fragment_v6(&d.build(), 1448, 5);
        assert_eq!(h.run(&fin[0], UP, 0).0, TX_UP);
        let a = down4();
        // 1400-byte pieces: 1448 + 40 bytes of IPv6, under the 1500 MTU.
        let (fin, want) = (fragment_v4(&a.build(), 1400), down6_sent(&a, 1400));
        assert_eq!(fin.len(), 3);
        in_order(&mut h, &fin, &want, DOWN, 1);
        for (f, w) in fin.iter().zip(&want) {
            assert_eq!(w.len(), f.len() + 28);
        }
        // Out of order: the middle one held, released (grown in its slot).
        assert_eq!(h.run(&fin[1], DOWN, 2).0, Verdict::Consumed);
        first_releases(&mut h, &fin, &want, 1, DOWN, 2);
        assert_eq!(h.w[0].frag_state(), (1, 0), "the up datagram's context");
        let flow = h.w[0].flow_by_key(POOL0, 20_000).unwrap();
        let sent: usize = want.iter().map(|f| f.len() - 14).sum();
        assert_eq!((flow.down_pkts, flow.down_bytes), (6, 2 * sent as u64));
        h.assert_drops(&[], 0);
    }

    #[test]
    fn four_to_six_over_the_ipv6_mtu_is_dropped() {
        let mut h = h64();
        let fin = fragment_v6(&up6().build(), 1448, 5);
        assert_eq!(h.run(&fin[0], UP, 0).0, TX_UP);
        let whole = down4().build();
        // A first fragment of 1456 bytes: 1504 bytes of IPv6.
        let big = |i: u16| {
            let mut f = piece(&whole, 0, 1456);
            f[18..20].copy_from_slice(&i.to_be_bytes());
            Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
            f
        };
        assert_eq!(
            h.run(&big(1), DOWN, 1).0,
            Verdict::Drop(DropReason::XlatFragTooBig)
        );
        // A later one, held then released: dropped at its release; and
        // one that comes after the first.
        let (a, b, c) = (
            piece(&whole, 0, 1400),
            piece(&whole, 1400, 1456),
            piece(&whole, 2856, 1152),
        );
        assert_eq!(h.run(&b, DOWN, 1).0, Verdict::Consumed);
        assert_eq!(h.run(&a, DOWN, 1).0, TX_DOWN);
        assert!(released(&mut h).is_empty());
        assert_eq!(
            h.run(&b, DOWN, 1).0,
            Verdict::Drop(DropReason::XlatFragTooBig)
        );
        assert_eq!(h.run(&c, DOWN, 1).0, TX_DOWN);
        h.assert_drops(&[(DropReason::XlatFragTooBig, 3)], 3);
    }
}

// -------------------------------------------------------- robustness --

mod robust {
    //! Fragments of every kind (NAT44, NAT64 both ways, NAT66 both ways),
    //! their headers mutated, cut short, in any order, through one worker
    //! with small tables: no panic, nothing written outside a frame (the
    //! harness checks), released frames whole, every context gone after
    //! the timeout.

    use super::super::nat64::wkp;
    use super::super::nat66::{mac6, tables66};
    use super::super::*;
    use crate::gw::frag::HOLD_BYTES;
    use crate::wire::build::{fragment_v4, fragment_v6};

    addresses6! {
        sub_a = "2001:db8:0:1::1",
        p6_0 = "2001:db8:ff::10",
        vip6_wap = "2001:db8:33::1",
        wap1_6 = "2001:db8:33:1::10",
    }

    /// Fragments (frame, arrival port) of datagrams of every kind.
    fn seeds() -> Vec<(Vec<u8>, u16)> {
        let pl: Vec<u8> = (0..2000).map(|i| (i * 7 + 3) as u8).collect();
        let v4 = |f: FrameSpec| FrameSpec {
            dont_frag: false,
            ..f
        };
        let mut s = Vec::new();
        let mut add =
            |frags: Vec<Vec<u8>>, port: u16| s.extend(frags.into_iter().map(|f| (f, port)));
        // NAT44 up and its answer down.
        let up44 = v4(udp((LB1, ACC_MAC), (SUB1, 4000), (VIP_WAP, 53), &pl));
        add(fragment_v4(&up44.build(), 800), UP);
        // (an answer from WAP1:53 to key `port`)
        let down4 = |port| v4(udp((mac_of(WAP1), SRV_MAC), (WAP1, 53), (POOL0, port), &pl));
        add(fragment_v4(&down4(20_000).build(), 800), DOWN);
        // NAT64 up (a TCP one too) and an answer down.
        let up64 = udp6((LB1, ACC_MAC), (sub_a(), 5353), (wkp(VIP_WAP), 53), &pl);
        add(fragment_v6(&up64.build(), 800, 0x1_0001), UP);
        let syn = tcp6(
            (LB1, ACC_MAC),
            (sub_a(), 5354),
            (wkp(VIP_WAP), 80),
            SYN,
            1,
            0,
            &pl,
        );
        add(fragment_v6(&syn.build(), 800, 0x1_0002), UP);
        add(fragment_v4(&down4(20_001).build(), 800), DOWN);
        // NAT66 up and down.
        let up66 = udp6((LB1, ACC_MAC), (sub_a(), 4001), (vip6_wap(), 53), &pl);
        add(fragment_v6(&up66.build(), 800, 0x2_0001), UP);
        let dn66 = udp6(
            (mac6(wap1_6()), SRV_MAC),
            (wap1_6(), 53),
            (p6_0(), 20_002),
            &pl,
        );
        add(fragment_v6(&dn66.build(), 800, 0x2_0002), DOWN);
        s
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn mutated_fragments_in_any_order_never_panic(
            ops in proptest::collection::vec(
                (
                    0usize..64,
                    proptest::collection::vec((0usize..90, any::<u8>()), 0..3),
                    proptest::option::of(0usize..900),
                ),
                1..40,
            ),
        ) {
            let mut h = H::new(GwConfig {
                nat64: Some(Nat64Cfg::default()),
                frag_contexts: 4,
                frag_hold_slots: 4,
                ..super::super::nat66::cfg66()
            });
            h.t = tables66();
            let seeds = seeds();
            for (t, (i, flips, cut)) in ops.into_iter().enumerate() {
                let (mut f, port) = seeds[i % seeds.len()].clone();
                for (at, b) in flips {
                    if at < f.len() {
                        f[at] = b;
                    }
                }
                if let Some(n) = cut {
                    f.truncate(n);
                }
                let _ = h.run(&f, port, t as u64);
                h.w[0].drain_released(|b, p| assert!(b.len() <= HOLD_BYTES && p <= 1));
            }
            h.expire(0, 1_000);
            prop_assert_eq!(h.w[0].frag_state(), (0, 0));
        }
    }
}

/// An ICMP echo of a NAT44 connection in fragments (`ping -s 3000`): the
/// request up and its reply down, each fragment byte for byte the
/// fragment of the whole echo translated at once (the identifier, in the
/// first fragment only, becomes the key port and the ICMP checksum, over
/// the whole datagram, follows by its delta). Computed by a second
/// gateway fed the whole datagrams in the same order.
#[test]
fn an_icmp_echo_in_fragments_both_ways_byte_for_byte() {
    let echo = |macs, src, dst, ty, id| FrameSpec {
        ident: id,
        dont_frag: false,
        payload: (0..3000).map(|i| (i * 5 + 1) as u8).collect(),
        ..ping(macs, src, dst, ty, 0x4242, 7)
    };
    let (mut h, mut whole) = (H::std(), H::std());
    let req = echo((LB1, ACC_MAC), SUB1, EXTERNAL, ECHO_REQUEST, 0x1111);
    let (v, sent) = whole.up(&req, 0);
    assert_eq!(v, TX_UP);
    let key_port = u16::from_be_bytes([sent[38], sent[39]]);
    let rep = FrameSpec {
        l4: L4::Icmp {
            ty: ECHO_REPLY,
            code: 0,
            ident: key_port,
            seq: 7,
        },
        ..echo((ROUTER, SRV_MAC), EXTERNAL, POOL0, ECHO_REPLY, 0x2222)
    };
    let (v, delivered) = whole.down(&rep, 1);
    assert_eq!(v, TX_DOWN);
    assert_eq!(u16::from_be_bytes([delivered[38], delivered[39]]), 0x4242);
    both_ways_in_order(
        &mut h,
        (frags(&req), fragment_v4(&sent, 1480)),
        (frags(&rep), fragment_v4(&delivered, 1480)),
    );
    // The whole reply's checksum verifies: the fragments' do together.
    assert!(crate::wire::IcmpPacket::new_unchecked(&delivered[34..]).verify_checksum_v4());
}

/// An echo request in fragments to a VIP the GW answers pings for, or to
/// the pool address: not answered from a first fragment (the reply would
/// lack the rest), dropped as `fragment`.
#[test]
fn a_fragmented_echo_to_the_gateway_itself_is_a_fragment_drop() {
    let mut h = H::new(GwConfig {
        answer_ping: true,
        ..cfg()
    });
    let big = |src, dst, macs| FrameSpec {
        ident: 9,
        dont_frag: false,
        payload: vec![0x5a; 2000],
        ..ping(macs, src, dst, ECHO_REQUEST, 1, 1)
    };
    let to_vip = frags(&big(SUB1, VIP_WAP, (LB1, ACC_MAC)));
    assert_eq!(
        h.run(&to_vip[0], UP, 0).0,
        Verdict::Drop(DropReason::Fragment)
    );
    let to_pool = frags(&big(EXTERNAL, POOL0, (ROUTER, SRV_MAC)));
    assert_eq!(
        h.run(&to_pool[0], DOWN, 0).0,
        Verdict::Drop(DropReason::Fragment)
    );
    h.assert_drops(&[(DropReason::Fragment, 2)], 2);
}
