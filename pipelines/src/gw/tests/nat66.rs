//! NAT66 in the GW stage: IPv6 subscriber → IPv6 VIP → IPv6 server. Literal
//! fixtures (up and down, checksums recomputed independently), the round
//! trip property, handoff, sessions and authorization, accounting, MSS
//! clamping, and the drops of the path.

use super::fixtures::*;
use super::*;

// Subscribers: the IPv6 sessions of the fixture (`nat64::sessions6`):
// 2001:db8:0:1::/64 wap + mail, 2001:db8:0:2::/64 wap only, none for :9::.
addresses6! {
    sub_a = "2001:db8:0:1::1",
    sub_wap_only = "2001:db8:0:2::2",
    sub_none = "2001:db8:0:9::9",
    p6_0 = "2001:db8:ff::10",
    p6_1 = "2001:db8:ff::11",
    vip6_wap = "2001:db8:33::1",
    vip6_mail = "2001:db8:33::2",
    wap1_6 = "2001:db8:33:1::10",
    wap2_6 = "2001:db8:33:1::11",
    mail1_6 = "2001:db8:33:1::20",
}
pub(super) fn mac6(a: [u8; 16]) -> [u8; 6] {
    [0x02, 0x66, 0, 0, a[14], a[15]]
}

/// A subscriber's bare SYN from `src` to `dst`, arriving from LB1.
fn syn_up(src: ([u8; 16], u16), dst: ([u8; 16], u16)) -> FrameSpec {
    tcp6((LB1, ACC_MAC), src, dst, SYN, b"")
}

pub(super) fn cfg66() -> GwConfig {
    GwConfig {
        pool6: vec![p6_0(), p6_1()],
        ..cfg()
    }
}

/// The fixture's tables plus IPv6 VIPs (wap: any port; mail: port 25),
/// member IPv6 addresses (mail2 has none) and IPv6 neighbours.
pub(super) fn tables66() -> GwTables {
    let t = tables();
    let m6 = |g: &str, m: &str, ip6| Member6 {
        group: g.into(),
        member: m.into(),
        ip6,
    };
    let svc = services(groups())
        .with_v6(
            vec![
                Vip6 {
                    ip: vip6_wap(),
                    port: None,
                    group: "wap".into(),
                },
                Vip6 {
                    ip: vip6_mail(),
                    port: Some(25),
                    group: "mail".into(),
                },
            ],
            vec![
                m6("wap", "wap1", wap1_6()),
                m6("wap", "wap2", wap2_6()),
                m6("mail", "mail1", mail1_6()),
            ],
        )
        .unwrap();
    let n = Neighbours::new([WAP1, WAP2, MAIL1, MAIL2].map(|ip| (ip, mac_of(ip))))
        .with_v6([wap1_6(), wap2_6(), mail1_6()].map(|a| (a, mac6(a))));
    t.with_services(svc).with_neighbours(n)
}

pub(super) fn h66() -> H {
    let mut h = H::new(cfg66());
    h.t = tables66();
    h
}

/// [`super::tcp6`] with seq 7, ack 9.
fn tcp6(
    macs: ([u8; 6], [u8; 6]),
    src: ([u8; 16], u16),
    dst: ([u8; 16], u16),
    flags: u8,
    payload: &[u8],
) -> FrameSpec {
    super::tcp6(macs, src, dst, flags, 7, 9, payload)
}

/// A segment from wap1:80 (its IPv6 side) to `to`, as the servers' side
/// sends it: [`tcp6`] from wap1's MAC to the GW's.
fn from_wap1(to: Ep6, flags: u8, payload: &[u8]) -> FrameSpec {
    tcp6(
        (mac6(wap1_6()), SRV_MAC),
        (wap1_6(), 80),
        to,
        flags,
        payload,
    )
}

/// `spec` (IPv6) as the GW must send it: MACs (src, dst), addresses, ports,
/// hop limit − 1.
pub(super) fn natted6(spec: &FrameSpec, macs: Macs, src: Ep6, dst: Ep6) -> Vec<u8> {
    sent6(spec, macs, src, dst, |_, _| unreachable!()).build()
}

#[test]
fn syn_to_ipv6_vip_literal_bytes_and_reply() {
    let mut h = h66();
    let mut spec = syn_up((sub_a(), 40_000), (vip6_wap(), 80));
    if let L4::Tcp { options, seq, .. } = &mut spec.l4 {
        *options = vec![2, 4, 0x05, 0xa0];
        *seq = 0x1122_3344;
    }
    let input = spec.build();
    let (v, out) = h.run(&input, UP, 100);
    assert_eq!(v, TX_UP);
    #[rustfmt::skip]
    let mut want: Vec<u8> = vec![
        // Ethernet: wap1's IPv6 neighbour MAC <- our server-side MAC, IPv6
        0x02, 0x66, 0, 0, 0, 0x10,   0x02, 0x5e, 0, 0, 0, 0x02,   0x86, 0xdd,
        // IPv6: flow label as built, payload 24, TCP, hop limit 63
        input[14], input[15], input[16], input[17], 0, 24, 6, 63,
        // 2001:db8:ff::10 (pool6[0], paired with 192.0.2.10)
        0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        // 2001:db8:33:1::10 (wap1)
        0x20, 0x01, 0x0d, 0xb8, 0, 0x33, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x10,
        // TCP: 20000 -> 80, seq, ack 9, doff 6, SYN, window 29200, csum, urg 0
        0x4e, 0x20, 0x00, 80,   0x11, 0x22, 0x33, 0x44,   0, 0, 0, 9,
        0x60, SYN, 0x72, 0x10,   0, 0,   0, 0,
        2, 4, 0x05, 0xa0,
    ];
    let c = rfc1071(&[
        &p6_0(),
        &wap1_6(),
        &[0, 0, 0, 24, 0, 0, 0, 6],
        &want[54..78],
    ]);
    want[70..72].copy_from_slice(&c.to_be_bytes());
    assert_eq!(out, want);
    assert!(checksums_ok(&out));
    assert_eq!(h.w[0].counters.nat66_flows, 1);
    assert_eq!(h.w[0].counters.new_flows, 1);

    // The reply: VIP and subscriber restored, toward the LB it came from.
    let reply = from_wap1((p6_0(), 20_000), SYN | ACK, b"");
    let (v, out) = h.down(&reply, 101);
    assert_eq!(v, TX_DOWN);
    #[rustfmt::skip]
    let head: [u8; 54] = [
        0x02, 0x1b, 0, 0, 0, 0x01,   0x02, 0xac, 0, 0, 0, 0x01,   0x86, 0xdd,
        0x60, 0x01, 0x23, 0x45, 0, 20, 6, 63,
        0x20, 0x01, 0x0d, 0xb8, 0, 0x33, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x01,
    ];
    assert_eq!(out[..54], head[..]);
    assert_eq!(out[54..58], [0, 80, 0x9c, 0x40]);
    let c = rfc1071(&[
        &vip6_wap(),
        &sub_a(),
        &[0, 0, 0, 20, 0, 0, 0, 6],
        &out[54..74],
    ]);
    assert_eq!(c, 0, "TCP checksum over the restored pseudo-header");
    assert_eq!(
        out,
        natted6(&reply, (ACC_MAC, LB1), (vip6_wap(), 80), (sub_a(), 40_000))
    );
    assert_eq!(h.c.total_drops(), 0);
}

#[test]
fn round_robin_port_vip_and_members_without_ipv6() {
    let mut h = h66();
    // wap: round robin over wap1, wap2.
    for (i, srv) in [wap1_6(), wap2_6()].into_iter().enumerate() {
        let syn = syn_up((sub_a(), 40_000 + i as u16), (vip6_wap(), 443));
        let (v, out) = h.up(&syn, 0);
        assert_eq!(v, TX_UP);
        assert_eq!(out[38..54], srv);
        assert_eq!(out[..6], mac6(srv));
    }
    // mail: port 25 only; member port 2525; mail2 has no IPv6 address.
    let syn = syn_up((sub_a(), 41_000), (vip6_mail(), 25));
    let (v, out) = h.up(&syn, 0);
    assert_eq!(v, TX_UP);
    assert_eq!(out[38..54], mail1_6());
    assert_eq!(out[56..58], 2525u16.to_be_bytes());
    let syn = syn_up((sub_a(), 41_001), (vip6_mail(), 25));
    // mail2 (no IPv6 address) is never chosen: mail1 again.
    let (v, out) = h.up(&syn, 0);
    assert_eq!(v, TX_UP);
    assert_eq!(out[38..54], mail1_6());
    // mail on another port is not a VIP: not ours.
    let syn = syn_up((sub_a(), 41_002), (vip6_mail(), 80));
    let (v, _) = h.up(&syn, 0);
    assert_eq!(v, Verdict::Drop(DropReason::UnsupportedEthertype));
}

#[test]
fn ipv6_side_down_leaves_nat66_only_and_probe_answers_go_to_management() {
    let mut h = h66();
    h.t = h.t.with_services(
        h.t.services
            .with_member_state("wap", "wap1", MemberSide::V6, false)
            .unwrap(),
    );
    // NAT66: wap2 only, whatever the cursor.
    for i in 0..4u16 {
        let syn = syn_up((sub_a(), 42_000 + i), (vip6_wap(), 80));
        let (v, out) = h.up(&syn, 0);
        assert_eq!(v, TX_UP);
        assert_eq!(out[38..54], wap2_6(), "SYN {i}");
    }
    // IPv4 keeps both members (round robin).
    let mut seen = Vec::new();
    for i in 0..2u16 {
        let (v, out) = h.up(&bare_syn((SUB1, 43_000 + i), (VIP_WAP, 80)), 0);
        assert_eq!(v, TX_UP);
        seen.push(<[u8; 4]>::try_from(&out[30..34]).unwrap());
    }
    seen.sort();
    assert_eq!(seen, vec![WAP1, WAP2]);
    // Back up: wap1 is chosen again for NAT66.
    h.t = h.t.with_services(
        h.t.services
            .with_member_state("wap", "wap1", MemberSide::V6, true)
            .unwrap(),
    );
    let mut seen6 = Vec::new();
    for i in 0..2u16 {
        let syn = syn_up((sub_a(), 44_000 + i), (vip6_wap(), 80));
        seen6.push(<[u8; 16]>::try_from(&h.up(&syn, 0).1[38..54]).unwrap());
    }
    seen6.sort();
    assert_eq!(seen6, vec![wap1_6(), wap2_6()]);
    // A member without an IPv6 address has no IPv6 side.
    assert!(h
        .t
        .services
        .with_member_state("mail", "mail2", MemberSide::V6, false)
        .is_err());
    // A server's answer over IPv6 to a pool6 address and a probe port
    // (20090..=20099) is for the management thread, untouched.
    // A server's answer from port 80 to `to`.
    let answer = |server: [u8; 16], to: ([u8; 16], u16), fl: u8| {
        tcp6((mac6(server), SRV_MAC), (server, 80), to, fl, b"").build()
    };
    let ans = answer(wap1_6(), (p6_0(), 20_093), SYN | ACK);
    let (v, out) = h.run(&ans, DOWN, 0);
    assert_eq!(v, Verdict::Control);
    assert_eq!(out, ans);
    let rst = answer(wap2_6(), (p6_1(), 20_099), RST | ACK);
    assert_eq!(h.run(&rst, DOWN, 0).0, Verdict::Control);
    // Just outside the range: an ordinary key (worker 1's), not a probe's.
    let other = answer(wap1_6(), (p6_0(), 20_089), SYN | ACK);
    assert_ne!(h.run(&other, DOWN, 0).0, Verdict::Control);
}

#[test]
fn no_session_unauthorized_and_drops() {
    let mut h = h66();
    let syn = |sub, dst, port| syn_up((sub, 40_000), (dst, port)).build();
    let (v, _) = h.run(&syn(sub_none(), vip6_wap(), 80), UP, 0);
    assert_eq!(v, Verdict::Drop(DropReason::NoSession));
    // wap only: a SYN to mail is answered with a RST over IPv6.
    let (v, out) = h.run(&syn(sub_wap_only(), vip6_mail(), 25), UP, 0);
    assert_eq!(v, Verdict::Tx { port: UP });
    let o = crate::wire::parse(&out).unwrap();
    assert!(o.is_ipv6());
    assert_eq!((o.src, o.dst), (vip6_mail(), sub_wap_only()));
    assert_eq!(o.tcp_flags & RST, RST);
    assert!(checksums_ok(&out));
    assert_eq!(h.w[0].counters.rst_unauthorized, 1);
    // UDP: dropped as unauthorized.
    let u = udp6(
        (LB1, ACC_MAC),
        (sub_wap_only(), 5000),
        (vip6_mail(), 25),
        b"x",
    );
    let (v, _) = h.up(&u, 0);
    assert_eq!(v, Verdict::Drop(DropReason::Unauthorized));
    // A data segment with no flow.
    let d = tcp6(
        (LB1, ACC_MAC),
        (sub_a(), 40_000),
        (vip6_wap(), 80),
        ACK,
        b"x",
    );
    let (v, _) = h.up(&d, 0);
    assert_eq!(v, Verdict::Drop(DropReason::NoFlow));
    // No IPv6 neighbour and no next hop.
    let mut h2 = H::new(GwConfig {
        server_next_hop_mac: None,
        ..cfg66()
    });
    h2.t = tables66().with_neighbours(Neighbours::new([]));
    let (v, _) = h2.run(&syn(sub_a(), vip6_wap(), 80), UP, 0);
    assert_eq!(v, Verdict::Drop(DropReason::NoNeighbor));
    // A reply to a pool6 key with no flow; from the wrong server.
    let r = from_wap1((p6_1(), 20_001), ACK, b"");
    let (v, _) = h.down(&r, 0);
    assert_eq!(v, Verdict::Drop(DropReason::NoKey));
    // Without pool6, IPv6 VIPs are not served.
    let mut h3 = H::std();
    h3.t = tables66();
    let (v, _) = h3.run(&syn(sub_a(), vip6_wap(), 80), UP, 0);
    assert_eq!(v, Verdict::Drop(DropReason::UnsupportedEthertype));
    // Every drop counted once.
    assert_eq!(h.c.total_drops(), 4);
    assert_eq!((h2.c.total_drops(), h3.c.total_drops()), (1, 1));
}

#[test]
fn down_packet_of_another_workers_key_is_handed_off_untouched() {
    let mut h = h66();
    let syn = syn_up((sub_a(), 40_000), (vip6_wap(), 80));
    let reply = from_wap1((p6_0(), 20_045), SYN | ACK, b"hi");
    let (out_up, out) = handed_off(&mut h, &syn, &reply);
    assert_eq!(out_up[22..38], p6_0());
    assert_eq!(out_up[54..56], 20_045u16.to_be_bytes());
    assert_eq!(out[22..38], vip6_wap());
    assert_eq!(out[38..54], sub_a());
    assert!(checksums_ok(&out));
}

#[test]
fn accounting_record_of_a_nat66_connection() {
    let mut h = h66();
    let up = |f, p: &[u8]| tcp6((LB1, ACC_MAC), (sub_a(), 40_000), (vip6_wap(), 80), f, p).build();
    let down = |f, p: &[u8]| from_wap1((p6_0(), 20_000), f, p).build();
    assert_eq!(h.run(&up(SYN, b""), UP, 10).0, TX_UP);
    assert_eq!(h.run(&down(SYN | ACK, b""), DOWN, 11).0, TX_DOWN);
    assert_eq!(
        h.run(
            &up(ACK, b"GET / HTTP/1.1\r\nHost: x.example\r\n\r\n"),
            UP,
            12
        )
        .0,
        TX_UP
    );
    assert_eq!(h.run(&down(RST, b""), DOWN, 13).0, TX_DOWN);
    assert_eq!(h.acct.len(), 1);
    let r = h.acct[0];
    assert_eq!(r.subscriber_ip6, Some(sub_a()));
    assert_eq!(r.subscriber_ip, [0; 4]);
    assert_eq!(r.device_id, 2001);
    assert_eq!((r.subscriber_port, r.rep_port), (40_000, 80));
    assert_eq!((r.nat_ip, r.nat_port), (POOL0, 20_000));
    assert_eq!(r.rep_ip, [0; 4]);
    assert_eq!((r.server_ip, r.server_port), (WAP1, 80));
    // the IPv6 VIP, key and member, beside the IPv4 twins
    assert_eq!(
        r.nat66,
        Some(crate::gw::acct::Nat66Addrs {
            vip: vip6_wap(),
            key: p6_0(),
            server: wap1_6(),
        })
    );
    assert_eq!(r.service, Some(SVC_WAP));
    assert_eq!(r.close, CloseReason::Rst);
    assert_eq!((r.up_pkts, r.down_pkts), (2, 2));
    assert_eq!(r.up_bytes, 2 * 60 + 35);
    assert_eq!(r.down_bytes, 2 * 60);
}

#[test]
fn mss_is_clamped_both_ways() {
    let mut h = H::new(GwConfig {
        mss_clamp_up: Some(1200),
        mss_clamp_down: Some(1100),
        ..cfg66()
    });
    h.t = tables66();
    let syn = with_tcp(syn_up((sub_a(), 40_000), (vip6_wap(), 80)), &MSS_1460, 100);
    let (v, out) = h.up(&syn, 0);
    assert_eq!(v, TX_UP);
    assert_eq!(out[74..78], [2, 4, 0x04, 0xb0]);
    assert!(checksums_ok(&out));
    let sa = with_tcp(from_wap1((p6_0(), 20_000), SYN | ACK, b""), &MSS_1460, 100);
    let (v, out) = h.down(&sa, 1);
    assert_eq!(v, TX_DOWN);
    assert_eq!(out[74..78], [2, 4, 0x04, 0x4c]);
    assert!(checksums_ok(&out));
}

#[test]
fn echo_to_an_ipv6_vip_is_answered_by_the_gateway_when_asked() {
    use crate::wire::icmp::v6::{ECHO_REPLY as REPLY6, ECHO_REQUEST as REQUEST6};
    let mut h = H::new(GwConfig {
        answer_ping: true,
        ..cfg66()
    });
    h.t = tables66();
    let req = |vip| {
        as6(
            ping((LB1, ACC_MAC), [0; 4], [0; 4], REQUEST6, 0x77, 3),
            sub_a(),
            vip,
        )
    };
    // (mail's VIP is on port 25 only: still the gateway's address)
    for vip in [vip6_wap(), vip6_mail()] {
        let (v, got) = h.up(&req(vip), 0);
        assert_eq!(v, TX_DOWN);
        // Back where it came from: MACs and addresses swapped, hop limit
        // 64, type 129; identifier, sequence and data kept.
        let want = FrameSpec {
            ttl: 64,
            ..ping((ACC_MAC, LB1), [0; 4], [0; 4], REPLY6, 0x77, 3)
        };
        assert_eq!(got, as6(want, vip, sub_a()).build());
        assert!(checksums_ok(&got));
    }
    assert_eq!(h.w[0].counters.vip_echo_replies, 2);
    assert_eq!(h.w[0].open_flows(), 0);
    // Switched off: not answered (NAT66 carries TCP and UDP only).
    let mut h = h66();
    assert_eq!(
        h.up(&req(vip6_wap()), 0).0,
        Verdict::Drop(DropReason::UnsupportedProto)
    );
    assert_eq!(h.w[0].counters.vip_echo_replies, 0);
}

#[test]
fn config_and_table_errors() {
    let mut c = cfg66();
    c.pool6.pop();
    assert!(c.validate().unwrap_err().contains("gw.pool6"));
    c.pool6 = vec![p6_0(), p6_0()];
    assert!(c.validate().unwrap_err().contains("twice"));
    let bad = services(groups()).with_v6(
        vec![Vip6 {
            ip: vip6_wap(),
            port: None,
            group: "nope".into(),
        }],
        vec![],
    );
    assert!(bad.unwrap_err().contains("unknown group"));
    let bad = services(groups()).with_v6(
        vec![],
        vec![Member6 {
            group: "wap".into(),
            member: "wap9".into(),
            ip6: wap1_6(),
        }],
    );
    assert!(bad.unwrap_err().contains("no such member"));
}

proptest! {
    #[test]
    fn nat66_round_trip_restores_the_tuple(
        host in any::<u64>(),
        sport in 1024u16..,
        udp_p in any::<bool>(),
        wi in 0usize..2,
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut h = h66();
        let mut sub = sub_a();
        sub[8..].copy_from_slice(&host.to_be_bytes());
        let spec = if udp_p {
            udp6((LB2, ACC_MAC), (sub, sport), (vip6_wap(), 53), &payload)
        } else {
            tcp6((LB2, ACC_MAC), (sub, sport), (vip6_wap(), 53), SYN, &payload)
        };
        let (out, o) = sent_up(&mut h, wi, &spec)?;
        prop_assert_eq!(o.src, if out[22..38] == p6_0() { p6_0() } else { p6_1() });
        prop_assert_eq!(o.dst, wap1_6());
        // The server answers the way it was asked.
        let reply = if udp_p {
            udp6((mac6(wap1_6()), SRV_MAC), (o.dst, o.dst_port), (o.src, o.src_port), &payload)
        } else {
            tcp6((mac6(wap1_6()), SRV_MAC), (o.dst, o.dst_port), (o.src, o.src_port), SYN | ACK, &payload)
        };
        let (v, back) = h.run_on(wi, &reply.build(), DOWN, 1);
        prop_assert_eq!(v, TX_DOWN);
        prop_assert!(checksums_ok(&back));
        prop_assert_eq!(back, natted6(&reply, (ACC_MAC, LB2), (vip6_wap(), 53), (sub, sport)));
        prop_assert_eq!(h.c.total_drops(), 0);
    }
}
