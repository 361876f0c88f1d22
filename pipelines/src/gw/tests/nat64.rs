//! NAT64 in the GW stage: literal fixtures, the round-trip property, IPv6
//! sessions and authorization (RST over IPv6), accounting, handoff, ICMP
//! errors both ways, MSS clamping, and the drops of the IPv6 path.

use super::fixtures::*;
use super::*;
use crate::wire::icmp::v6 as icmp6;
use crate::xlat::Prefix;

/// `64:ff9b::a.b.c.d`.
pub(super) fn wkp(a: [u8; 4]) -> [u8; 16] {
    Prefix::WELL_KNOWN.embed(a)
}

// 2001:db8:0:1::/64 may use wap + mail, 2001:db8:0:2::/64 wap only,
// 2001:db8:0:3::/64 is dormant; nothing else has a session.
addresses6! {
    sub6_1 = "2001:db8:0:1::1",
    sub6_1b = "2001:db8:0:1:8a2e:370:7334:9", // same /64, another address
    sub6_2 = "2001:db8:0:2::2",
    sub6_dormant = "2001:db8:0:3::3",
    sub6_none = "2001:db8:0:9::9",
}

/// The IPv6 sessions of the fixture's tables.
pub(super) fn sessions6() -> Vec<([u8; 16], u8, SubscriberAuth)> {
    let s = |device_id, active, allowed| SubscriberAuth {
        device_id,
        active,
        allowed,
    };
    vec![
        (
            sub6_1(),
            SESSION6_PREFIX_LEN,
            s(2001, true, SVC_WAP.bit() | SVC_MAIL.bit()),
        ),
        (sub6_2(), SESSION6_PREFIX_LEN, s(2002, true, SVC_WAP.bit())),
        (
            sub6_dormant(),
            SESSION6_PREFIX_LEN,
            s(2003, false, u64::MAX),
        ),
    ]
}

pub(super) fn cfg64() -> GwConfig {
    GwConfig {
        nat64: Some(Nat64Cfg::default()),
        ..cfg()
    }
}

pub(super) fn h64() -> H {
    H::new(cfg64())
}

fn ping6(
    macs: ([u8; 6], [u8; 6]),
    src: [u8; 16],
    dst: [u8; 16],
    ty: u8,
    ident: u16,
    seq: u16,
) -> FrameSpec {
    as6(ping(macs, [0; 4], [0; 4], ty, ident, seq), src, dst)
}

/// Build `spec` (IPv6) with the flow label 0, as the translator writes it.
pub(super) fn build6(spec: &FrameSpec) -> Vec<u8> {
    let mut f = spec.build();
    let l3 = if spec.vlan.is_some() { 18 } else { 14 };
    f[l3 + 1] &= 0xf0;
    f[l3 + 2] = 0;
    f[l3 + 3] = 0;
    f
}

/// `spec6` (an IPv6 up packet) as the GW must send it: IPv4 from `src` to
/// `dst`, TTL = hop limit − 1, Identification `ident`, DF only above 1260
/// bytes (RFC 7915), TOS = traffic class (0), ports / echo identifier.
fn up4(
    spec6: &FrameSpec,
    macs: ([u8; 6], [u8; 6]),
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    ident: u16,
) -> Vec<u8> {
    let mut s = spec6.clone();
    s.ip6 = None;
    (s.src_mac, s.dst_mac) = macs;
    (s.src_ip, s.dst_ip) = (src.0, dst.0);
    s.ttl -= 1;
    s.ident = ident;
    set_ports(&mut s.l4, src.1, dst.1, |ty, ident| {
        *ty = ECHO_REQUEST;
        *ident = src.1;
    });
    s.dont_frag = false;
    let f = s.build();
    assert!(f.len() - 14 <= 1260, "fixture with DF rule");
    f
}

/// `spec4` (an IPv4 down packet) as the GW must send it: IPv6 from `src`
/// to `dst`, hop limit = TTL − 1, flow label 0, ports / echo identifier.
fn down6(spec4: &FrameSpec, macs: Macs, src: Ep6, dst: Ep6) -> Vec<u8> {
    build6(&sent6(spec4, macs, src, dst, |ty, ident| {
        *ty = icmp6::ECHO_REPLY;
        *ident = dst.1;
    }))
}

const UP_MACS: ([u8; 6], [u8; 6]) = (LB1, ACC_MAC);
const DOWN_MACS: ([u8; 6], [u8; 6]) = (ACC_MAC, LB1);

/// An IPv6 SYN (`seq`, `payload`) from the access side.
fn syn6(src: Ep6, dst: Ep6, seq: u32, payload: &[u8]) -> FrameSpec {
    tcp6(UP_MACS, src, dst, SYN, seq, 0, payload)
}

/// A bare IPv6 SYN (seq 1, no payload) from the access side.
fn bare_syn6(src: Ep6, dst: Ep6) -> FrameSpec {
    syn6(src, dst, 1, b"")
}

/// `sent` down at `now` must reach the subscriber as `want`; the frame.
fn down_as(h: &mut H, sent: &FrameSpec, now: u64, want: Vec<u8>) -> Vec<u8> {
    let (v, out) = h.down(sent, now);
    assert_eq!(v, TX_DOWN);
    assert_eq!(out, want);
    out
}

/// WAP1's SYN-ACK (`seq`, `ack`, `payload`) to the NAT key
/// `POOL0:key_port`, as the server sends it.
fn wap1_syn_ack(key_port: u16, seq: u32, ack: u32, payload: &[u8]) -> FrameSpec {
    tcp(
        (mac_of(WAP1), SRV_MAC),
        (WAP1, 80),
        (POOL0, key_port),
        SYN | ACK,
        seq,
        ack,
        payload,
    )
}

// --------------------------------------------------------------- fixtures --

/// IPv6 SYN to `64:ff9b::10.33.0.1` → IPv4 SYN from the pool to the
/// chosen server; its SYN-ACK → IPv6 SYN-ACK from `64:ff9b::10.33.0.1`
/// to the subscriber. Expected bytes written out, checksums computed in
/// full by an independent RFC 1071 sum.
#[test]
fn nat64_syn_and_syn_ack_literal_bytes() {
    let mut h = h64();
    let mut syn = syn6((sub6_1(), 40_000), (wkp(VIP_WAP), 80), 0x1122_3344, b"");
    if let L4::Tcp { options, .. } = &mut syn.l4 {
        *options = MSS_1460.to_vec();
    }
    let (v, out) = h.up(&syn, 100);
    assert_eq!(v, TX_UP);
    // TOS 0 (traffic class), id 0 (worker 0's first), no DF (<= 1260),
    // TTL 63 (hop limit 64 - 1)
    assert_eq!(out, want_syn_to_wap1([0; 4]));
    assert!(checksums_ok(&out));
    assert_eq!(
        (h.w[0].counters.new_flows, h.w[0].counters.nat64_flows),
        (1, 1)
    );
    assert_eq!(h.w[0].subscriber6(POOL0, 20_000), Some(sub6_1()));

    // The SYN-ACK: 10.33.1.10:80 -> 192.0.2.10:20000, TTL 64.
    let mut sa = wap1_syn_ack(20_000, 0x5566_7788, 0x1122_3345, b"");
    if let L4::Tcp { options, .. } = &mut sa.l4 {
        *options = vec![2, 4, 0x05, 0xb4];
    }
    let (v, out) = h.down(&sa, 101);
    assert_eq!(v, TX_DOWN);
    let (src6, dst6) = (wkp(VIP_WAP), sub6_1());
    #[rustfmt::skip]
    let mut want: Vec<u8> = [
        // Ethernet: the LB <- our access-side MAC, IPv6
        &[0x02, 0x1b, 0, 0, 0, 0x01,   0x02, 0xac, 0, 0, 0, 0x01,   0x86, 0xdd][..],
        // IPv6: TC 0, flow 0, payload 24, TCP, hop limit 63
        &[0x60, 0, 0, 0,   0, 24,   6,   63],
        &src6,
        &dst6,
        // TCP: 80 -> 40000, seq, ack, doff 6, SYN|ACK, window, csum, urg
        &[0x00, 80, 0x9c, 0x40,   0x55, 0x66, 0x77, 0x88,   0x11, 0x22, 0x33, 0x45],
        &[0x60, SYN | ACK, 0x72, 0x10,   0, 0,   0, 0],
        &[2, 4, 0x05, 0xb4],
    ]
    .concat();
    assert_eq!(
        &src6[..],
        &[0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 10, 33, 0, 1]
    );
    let c = rfc1071(&[&src6, &dst6, &[0, 0, 0, 24], &[0, 0, 0, 6], &want[54..78]]);
    want[70..72].copy_from_slice(&c.to_be_bytes());
    assert_eq!(out, want);
    assert!(checksums_ok(&out));
    assert_eq!(h.c.total_drops(), 0);
}

/// A whole NAT64 TCP connection, every frame compared; then its record:
/// the IPv6 subscriber, exact packet and byte counts (IPv6 lengths).
#[test]
fn nat64_connection_and_its_accounting_record() {
    let mut h = h64();
    let sub = (sub6_1b(), 40_000);
    let vip6 = (wkp(VIP_WAP), 80);
    let key = (POOL0, 20_000);
    let srv = (WAP1, 80);
    let up_macs = (SRV_MAC, mac_of(WAP1));
    let get = b"GET / HTTP/1.1\r\nHost: v6.wap.example\r\n\r\n";
    let body = [0x5au8; 300];
    let up = |f, seq, ack, p: &[u8]| tcp6(UP_MACS, sub, vip6, f, seq, ack, p);
    let down = |f, seq, ack, p: &[u8]| tcp((mac_of(WAP1), SRV_MAC), srv, key, f, seq, ack, p);
    let n = get.len() as u32;
    // (frame in, port, verdict, frame out); up packets get ids 0, 1, 2, ...
    let rows: Vec<(Vec<u8>, u16, Verdict, Vec<u8>)> = vec![
        {
            let f = up(SYN, 1000, 0, b"");
            (f.build(), UP, TX_UP, up4(&f, up_macs, key, srv, 0))
        },
        {
            let f = down(SYN | ACK, 5000, 1001, b"");
            (f.build(), DOWN, TX_DOWN, down6(&f, DOWN_MACS, vip6, sub))
        },
        {
            let f = up(ACK, 1001, 5001, b"");
            (f.build(), UP, TX_UP, up4(&f, up_macs, key, srv, 1))
        },
        {
            let f = up(ACK | PSH, 1001, 5001, get);
            (f.build(), UP, TX_UP, up4(&f, up_macs, key, srv, 2))
        },
        {
            let f = down(ACK | PSH, 5001, 1001 + n, &body);
            (f.build(), DOWN, TX_DOWN, down6(&f, DOWN_MACS, vip6, sub))
        },
        {
            let f = up(FIN | ACK, 1001 + n, 5301, b"");
            (f.build(), UP, TX_UP, up4(&f, up_macs, key, srv, 3))
        },
        {
            let f = down(FIN | ACK, 5301, 1002 + n, b"");
            (f.build(), DOWN, TX_DOWN, down6(&f, DOWN_MACS, vip6, sub))
        },
        {
            // after the close: still translated during the hold
            let f = up(ACK, 1002 + n, 5302, b"");
            (f.build(), UP, TX_UP, up4(&f, up_macs, key, srv, 4))
        },
    ];
    for (i, (inp, port, verdict, want)) in rows.iter().enumerate() {
        let (v, out) = h.run(inp, *port, 10 + i as u64);
        assert_eq!(v, *verdict, "row {i}");
        assert_eq!(out, *want, "row {i}");
        assert!(checksums_ok(&out), "row {i}");
    }
    assert_eq!(h.acct.len(), 1);
    let r = h.acct[0];
    // IPv6 lengths: 40 + 20 + payload, both directions
    let (l_get, l_body) = (60 + get.len() as u64, 60 + body.len() as u64);
    assert_eq!((r.up_pkts, r.up_bytes), (4, 60 + 60 + l_get + 60));
    assert_eq!((r.down_pkts, r.down_bytes), (3, 60 + l_body + 60));
    assert_eq!(r.subscriber_ip6, Some(sub6_1b()));
    assert_eq!((r.subscriber_ip, r.subscriber_port), ([0; 4], 40_000));
    assert_eq!((r.rep_ip, r.rep_port), (VIP_WAP, 80));
    assert_eq!((r.nat_ip, r.nat_port), key);
    assert_eq!((r.server_ip, r.server_port), srv);
    assert_eq!(
        (r.device_id, r.service, r.group, r.proto),
        (2001, Some(SVC_WAP), Some(0), 6),
        "the /64's session"
    );
    assert_eq!((r.start_ms, r.end_ms, r.close), (10, 16, CloseReason::Fin));
    assert_eq!(
        (r.attr.kind, r.attr.as_str()),
        (AttrKind::HttpHost, "v6.wap.example")
    );
    // a NAT64 UDP flow ends by idle expiry with its record too
    let q = udp6(UP_MACS, (sub6_2(), 5353), (wkp(EXTERNAL), 53), b"q?");
    let (v, _) = h.up(&q, 100);
    assert_eq!(v, TX_UP);
    h.expire(0, 100 + TIMEOUTS.udp_ms + 1);
    let r = h.acct[1];
    assert_eq!(
        (
            r.subscriber_ip6,
            r.device_id,
            r.proto,
            r.up_pkts,
            r.up_bytes
        ),
        (Some(sub6_2()), 2002, 17, 1, 40 + 8 + 2)
    );
    assert_eq!(
        (r.rep_ip, r.server_ip, r.close),
        (EXTERNAL, EXTERNAL, CloseReason::IdleTimeout)
    );
    assert_eq!(h.c.total_drops(), 0);
}

#[test]
fn nat64_udp_and_echo_round_trips() {
    let mut h = h64();
    let q = udp6(UP_MACS, (sub6_1(), 5353), (wkp(VIP_WAP), 53), b"\x12\x34q");
    let (v, out) = h.up(&q, 0);
    assert_eq!(v, TX_UP);
    let up_macs = (SRV_MAC, mac_of(WAP1));
    assert_eq!(out, up4(&q, up_macs, (POOL0, 20_000), (WAP1, 53), 0));
    let a = udp(
        (mac_of(WAP1), SRV_MAC),
        (WAP1, 53),
        (POOL0, 20_000),
        b"\x12\x34ans",
    );
    down_as(
        &mut h,
        &a,
        1,
        down6(&a, DOWN_MACS, (wkp(VIP_WAP), 53), (sub6_1(), 5353)),
    );
    // an IPv4 UDP reply without checksum gets one over IPv6
    let mut nock = a.clone();
    nock.l4 = L4::Udp {
        src_port: 53,
        dst_port: 20_000,
        checksum: false,
    };
    let out = down_as(
        &mut h,
        &nock,
        2,
        down6(&a, DOWN_MACS, (wkp(VIP_WAP), 53), (sub6_1(), 5353)),
    );
    assert!(checksums_ok(&out));
    // echo: the identifier is the key going up, restored going down
    let req = ping6(
        UP_MACS,
        sub6_1(),
        wkp(VIP_WAP),
        icmp6::ECHO_REQUEST,
        0x4242,
        7,
    );
    let (v, out) = h.up(&req, 3);
    assert_eq!(v, TX_UP);
    // (round robin: the second connection goes to wap2; the same
    // subscriber keeps its pool address, the rotation gives the next port)
    let key = (POOL0, 20_001);
    assert_eq!(out, up4(&req, (SRV_MAC, mac_of(WAP2)), key, (WAP2, 0), 1));
    assert!(checksums_ok(&out));
    let rep = ping((mac_of(WAP2), SRV_MAC), WAP2, POOL0, ECHO_REPLY, 20_001, 7);
    let out = down_as(
        &mut h,
        &rep,
        4,
        down6(&rep, DOWN_MACS, (wkp(VIP_WAP), 0), (sub6_1(), 0x4242)),
    );
    assert!(checksums_ok(&out));
    assert_eq!(h.w[0].counters.nat64_flows, 2);
}

// ------------------------------------------- sessions and authorization --

#[test]
fn nat64_without_a_session_is_dropped_unless_not_required() {
    let mut h = h64();
    for sub in [sub6_none(), sub6_dormant()] {
        let (v, _) = h.up(&bare_syn6((sub, 1), (wkp(VIP_WAP), 80)), 0);
        assert_eq!(v, Verdict::Drop(DropReason::NoSession));
        let (v, _) = h.up(&udp6(UP_MACS, (sub, 1), (wkp(VIP_WAP), 53), b"x"), 0);
        assert_eq!(v, Verdict::Drop(DropReason::NoSession));
    }
    // an IPv4 session of the same low 32 bits is no IPv6 session
    let v4_twin = [0, 0, 0, 9];
    h.t = h.t.with_sessions(
        Sessions::new([(
            v4_twin,
            SubscriberAuth {
                device_id: 9,
                active: true,
                allowed: u64::MAX,
            },
        )])
        .with_v6(sessions6()),
    );
    let (v, _) = h.up(&bare_syn6((sub6_none(), 2), (wkp(VIP_WAP), 80)), 0);
    assert_eq!(v, Verdict::Drop(DropReason::NoSession));
    assert_eq!(h.drops(DropReason::NoSession), 5);
    assert_eq!(h.w[0].keys_in_use(), 0);
    let mut h = H::new(GwConfig {
        require_session: false,
        ..cfg64()
    });
    let (v, _) = h.up(&bare_syn6((sub6_none(), 1), (wkp(VIP_MAIL), 25)), 0);
    assert_eq!(v, TX_UP);
    assert_eq!(h.w[0].flow_by_key(POOL0, 20_000).unwrap().device_id, 0);
}

#[test]
fn unauthorized_nat64_syn_is_answered_with_an_ipv6_rst() {
    let mut h = h64();
    // sub6_2's /64 may not use mail. Tagged, TCP options, 5 bytes of data.
    let mut syn = syn6(
        (sub6_2(), 40_000),
        (wkp(VIP_MAIL), 25),
        0xffff_fffe,
        b"early",
    );
    syn.vlan = Some(0x0064);
    if let L4::Tcp { options, .. } = &mut syn.l4 {
        *options = vec![2, 4, 0x05, 0xb4, 1, 3, 3, 7];
    }
    let (v, out) = h.up(&syn, 0);
    assert_eq!(v, Verdict::Tx { port: UP });
    let want = FrameSpec {
        src_mac: ACC_MAC,
        dst_mac: LB1,
        vlan: Some(0x0064),
        ttl: 64,
        l4: L4::Tcp {
            src_port: 25,
            dst_port: 40_000,
            seq: 0,
            ack: 0xffff_fffe_u32.wrapping_add(1 + 5),
            flags: RST | ACK,
            window: 0,
            options: vec![],
        },
        payload: vec![],
        ..as6(FrameSpec::default(), wkp(VIP_MAIL), sub6_2())
    };
    assert_eq!(out, build6(&want));
    assert_eq!(out.len(), 18 + 40 + 20);
    assert!(checksums_ok(&out));
    let c = &h.w[0].counters;
    assert_eq!((c.rst_unauthorized, c.new_flows, c.nat64_flows), (1, 0, 0));
    assert_eq!(h.w[0].keys_in_use(), 0);
    assert_eq!(h.c.total_drops(), 0);
    // UDP and echo to a refused service are dropped
    let (v, _) = h.up(&udp6(UP_MACS, (sub6_2(), 9), (wkp(VIP_MAIL), 25), b"x"), 0);
    assert_eq!(v, Verdict::Drop(DropReason::Unauthorized));
    let (v, _) = h.up(
        &ping6(UP_MACS, sub6_2(), wkp(VIP_MAIL), icmp6::ECHO_REQUEST, 1, 1),
        0,
    );
    assert_eq!(v, Verdict::Drop(DropReason::Unauthorized));
    // the allowed service passes
    let (v, _) = h.up(&bare_syn6((sub6_2(), 40_001), (wkp(VIP_WAP), 80)), 0);
    assert_eq!(v, TX_UP);
}

// ---------------------------------------------------------------- handoff --

#[test]
fn nat64_down_packet_is_handed_to_the_owner() {
    let mut h = h64();
    let syn = bare_syn6((sub6_1(), 40_000), (wkp(VIP_WAP), 80));
    let reply = wap1_syn_ack(20_045, 1, 2, b"hi");
    let (out, down) = handed_off(&mut h, &syn, &reply);
    // worker 1's first key; worker 1's identification counter
    assert_eq!(&out[34..36], &20_045u16.to_be_bytes());
    assert_eq!(&out[18..20], &0x9e37u16.to_be_bytes());
    assert_eq!(
        down,
        down6(&reply, DOWN_MACS, (wkp(VIP_WAP), 80), (sub6_1(), 40_000))
    );
}

// ------------------------------------------------------------ ICMP errors --

const ROUTER4: [u8; 4] = [203, 0, 113, 1];

/// An ICMPv4 error frame from the server side quoting `quoted` (IP bytes).
fn err4(src: [u8; 4], dst: [u8; 4], ty: u8, code: u8, rest: u32, quoted: &[u8]) -> FrameSpec {
    FrameSpec {
        src_mac: ROUTER,
        dst_mac: SRV_MAC,
        ..crate::xlat::tests::err4(src, dst, ty, code, rest, quoted)
    }
}

#[test]
fn icmpv4_errors_for_nat64_flows_reach_the_subscriber_as_icmpv6() {
    let mut h = h64();
    let syn = syn6((sub6_1(), 40_000), (wkp(VIP_WAP), 80), 7, b"");
    let (_, out4) = h.up(&syn, 0);
    // A router on the server side: Fragmentation Needed, next-hop MTU
    // 1400, quoting our IPv4 SYN whole (a modern router) or its first 28
    // bytes (RFC 792).
    for quote_len in [out4.len() - 14, 28] {
        let quoted = &out4[14..14 + quote_len];
        let e = err4(ROUTER4, POOL0, 3, 4, 1400, quoted);
        let (v, out) = h.down(&e, 1);
        assert_eq!(v, TX_DOWN, "quote {quote_len}");
        // Packet Too Big, MTU 1400 + 20, from the router's address under
        // the prefix, quoting the SYN as the subscriber sent it (hop limit
        // as quoted: 63; flow label 0).
        let mut q6 = syn.clone();
        q6.ttl = 63;
        let q6 = build6(&q6)[14..14 + 40 + quote_len - 20].to_vec();
        let want = FrameSpec {
            src_mac: ACC_MAC,
            dst_mac: LB1,
            ttl: 63,
            l4: L4::Icmp {
                ty: icmp6::PACKET_TOO_BIG,
                code: 0,
                ident: 0,
                seq: 1420,
            },
            payload: q6,
            ..as6(FrameSpec::default(), wkp(ROUTER4), sub6_1())
        };
        assert_eq!(out, build6(&want), "quote {quote_len}");
    }
    assert_eq!(h.w[0].counters.icmp_err_down, 2);
    // the flow's accounting is not touched by errors
    assert_eq!(h.w[0].flow_by_key(POOL0, 20_000).unwrap().down_pkts, 0);
    // delivered to the other worker: handed off untouched
    let e = err4(ROUTER4, POOL0, 3, 4, 1400, &out4[14..]).build();
    let (v, out) = h.run_on(1, &e, DOWN, 1);
    assert_eq!((v, out), (Verdict::Handoff { worker: 0 }, e));
    // an echo flow: Time Exceeded quoting the echo request (identifier =
    // key port) comes back quoting the subscriber's echo request
    let req = ping6(
        UP_MACS,
        sub6_1(),
        wkp(EXTERNAL),
        icmp6::ECHO_REQUEST,
        0x77,
        1,
    );
    let (_, o) = h.up(&req, 2);
    let key = (POOL0, 20_001);
    assert_eq!(&o[26..30], &key.0);
    let e = err4(ROUTER4, key.0, 11, 0, 0, &o[14..]);
    let (v, out) = h.down(&e, 3);
    assert_eq!(v, TX_DOWN);
    let mut q6 = req.clone();
    q6.ttl = 63;
    let want = FrameSpec {
        src_mac: ACC_MAC,
        dst_mac: LB1,
        ttl: 63,
        l4: L4::Icmp {
            ty: icmp6::TIME_EXCEEDED,
            code: 0,
            ident: 0,
            seq: 0,
        },
        payload: build6(&q6)[14..].to_vec(),
        ..as6(FrameSpec::default(), wkp(ROUTER4), sub6_1())
    };
    assert_eq!(out, build6(&want));
    // errors quoting no live flow are dropped; an IPv4 flow's stay IPv4
    // (tests/icmp4.rs)
    let (_, o4) = h.up(
        &tcp(UP_MACS, (SUB1, 1234), (VIP_WAP, 80), SYN, 1, 0, b""),
        4,
    );
    let e = err4(ROUTER4, POOL0, 3, 4, 1400, &o4[14..]);
    let (v, out) = h.down(&e, 5);
    assert_eq!(v, TX_DOWN);
    assert_eq!(
        &out[12..14],
        &[0x08, 0x00],
        "an IPv4 flow's error stays IPv4"
    );
    let mut stale = out4[14..].to_vec();
    stale[20..22].copy_from_slice(&20_001u16.to_be_bytes()); // a free key
    let e = err4(ROUTER4, POOL0, 3, 4, 1400, &stale);
    assert_eq!(h.down(&e, 5).0, Verdict::Drop(DropReason::NoKey));
    let e = err4(ROUTER4, POOL0, 3, 4, 1400, &out4[14..30]); // short quote
    assert_eq!(h.down(&e, 5).0, Verdict::Drop(DropReason::XlatIcmpInner));
    assert_eq!(h.w[0].counters.icmp_err_down, 4);
}

#[test]
fn icmpv6_errors_for_nat64_flows_reach_the_server_as_icmpv4() {
    let mut h = h64();
    let syn = syn6((sub6_1(), 40_000), (wkp(VIP_WAP), 80), 7, b"");
    assert_eq!(h.up(&syn, 0).0, TX_UP); // id 0
    let sa = wap1_syn_ack(20_000, 9, 8, b"");
    let (_, sa6) = h.down(&sa, 1);
    // A router on the subscriber side: port unreachable (ICMPv6 1/4) to
    // the NAT64 address, quoting the SYN-ACK as delivered.
    let router6 = v6("2001:db8:ffff::1");
    let e = FrameSpec {
        src_mac: LB1,
        dst_mac: ACC_MAC,
        l4: L4::Icmp {
            ty: icmp6::DEST_UNREACHABLE,
            code: 4,
            ident: 0,
            seq: 0,
        },
        payload: sa6[14..].to_vec(),
        ..as6(FrameSpec::default(), router6, wkp(VIP_WAP))
    };
    let (v, out) = h.up(&e, 2);
    assert_eq!(v, TX_UP);
    // ICMPv4 port unreachable, pool address -> server, quoting the SYN-ACK
    // as the server sent it (TTL as quoted: 63; id 0, no DF: RFC 7915).
    let mut q4 = sa.clone();
    (q4.ttl, q4.ident, q4.dont_frag) = (63, 0, false);
    let want = FrameSpec {
        src_mac: SRV_MAC,
        dst_mac: mac_of(WAP1),
        src_ip: POOL0,
        dst_ip: WAP1,
        ttl: 63,
        ident: 1, // worker 0's second translated packet
        dont_frag: false,
        l4: L4::Icmp {
            ty: 3,
            code: 3,
            ident: 0,
            seq: 0,
        },
        payload: q4.build()[14..].to_vec(),
        ..FrameSpec::default()
    };
    assert_eq!(out, want.build());
    assert_eq!(h.w[0].counters.icmp_err_up, 1);
    // quoting a tuple with no flow: dropped
    let mut other = sa6[14..].to_vec();
    other[40 + 2..40 + 4].copy_from_slice(&40_001u16.to_be_bytes());
    let e = FrameSpec {
        payload: other,
        ..e
    };
    assert_eq!(h.up(&e, 3).0, Verdict::Drop(DropReason::NoFlow));
}

// ------------------------------------------------------------ MSS clamp --

#[test]
fn mss_is_clamped_on_nat64_syn_and_syn_ack() {
    let mut h = H::new(GwConfig {
        nat64: Some(Nat64Cfg::default()),
        ..clamp_cfg(Some(1360), Some(1380), None)
    });
    let (sub, vip6, key, srv) = (
        (sub6_1(), 40_000),
        (wkp(VIP_WAP), 80),
        (POOL0, 20_000),
        (WAP1, 80),
    );
    let syn = with_tcp(tcp6(UP_MACS, sub, vip6, SYN, 1, 0, b""), &MSS_1460, 29_200);
    let (v, out) = h.up(&syn, 0);
    assert_eq!(v, TX_UP);
    let want = with_tcp(syn.clone(), &[2, 4, 0x05, 0x50], 29_200);
    assert_eq!(out, up4(&want, (SRV_MAC, mac_of(WAP1)), key, srv, 0));
    assert!(checksums_ok(&out));
    let sa = with_tcp(
        tcp((mac_of(WAP1), SRV_MAC), srv, key, SYN | ACK, 9, 2, b""),
        &MSS_1460,
        29_200,
    );
    let want = with_tcp(sa.clone(), &[2, 4, 0x05, 0x64], 29_200); // 1380
    let out = down_as(&mut h, &sa, 1, down6(&want, DOWN_MACS, vip6, sub));
    assert!(checksums_ok(&out));
    let c = &h.w[0].counters;
    assert_eq!((c.mss_clamped_up, c.mss_clamped_down), (1, 1));
}

// ------------------------------------------------------------------ drops --

#[test]
fn ipv6_drops_of_the_stage() {
    let mut h = h64();
    let syn = |dst: [u8; 16]| bare_syn6((sub6_1(), 1), (dst, 80));
    // not under the prefix
    let (v, _) = h.up(&syn(v6("2001:db8:aaaa::1")), 0);
    assert_eq!(v, Verdict::Drop(DropReason::UnsupportedEthertype));
    // on the server port
    let (v, _) = h.down(&syn(wkp(VIP_WAP)), 0);
    assert_eq!(v, Verdict::Drop(DropReason::UnsupportedEthertype));
    // not our MAC
    let mut f = syn(wkp(VIP_WAP));
    f.dst_mac = [2, 9, 9, 9, 9, 9];
    assert_eq!(h.up(&f, 0).0, Verdict::Drop(DropReason::NotForUs));
    // hop limit 1
    let mut f = syn(wkp(VIP_WAP));
    f.ttl = 1;
    assert_eq!(h.up(&f, 0).0, Verdict::Drop(DropReason::TtlExceeded));
    // a fragment of ICMPv6 (TCP and UDP ones: tests/frag.rs)
    let mut f = ping6(UP_MACS, sub6_1(), wkp(VIP_WAP), icmp6::ECHO_REQUEST, 1, 1);
    f.ip6.as_mut().unwrap().fragment = true;
    assert_eq!(h.up(&f, 0).0, Verdict::Drop(DropReason::Fragment));
    // an echo reply from the subscriber side; a non-SYN with no flow
    let f = ping6(UP_MACS, sub6_1(), wkp(VIP_WAP), icmp6::ECHO_REPLY, 1, 1);
    assert_eq!(h.up(&f, 0).0, Verdict::Drop(DropReason::UnsupportedProto));
    let f = tcp6(UP_MACS, (sub6_1(), 1), (wkp(VIP_WAP), 80), ACK, 1, 1, b"");
    assert_eq!(h.up(&f, 0).0, Verdict::Drop(DropReason::NoFlow));
    // A down packet that would exceed the IPv6 MTU (1500): a 1500-byte
    // IPv4 reply becomes 1520 bytes of IPv6. Without DF: dropped; with DF:
    // answered with Fragmentation Needed, MTU 1480. 1480 bytes pass.
    let q = udp6(UP_MACS, (sub6_1(), 7), (wkp(VIP_WAP), 53), b"q");
    assert_eq!(h.up(&q, 0).0, TX_UP);
    let big = |n, df| FrameSpec {
        dont_frag: df,
        ..udp(
            (mac_of(WAP1), SRV_MAC),
            (WAP1, 53),
            (POOL0, 20_000),
            &vec![7u8; n],
        )
    };
    assert_eq!(
        h.down(&big(1500 - 28, false), 1).0,
        Verdict::Drop(DropReason::TooBig)
    );
    let orig = big(1500 - 28, true).build();
    let (v, out) = h.run(&orig, DOWN, 1);
    assert_eq!(v, Verdict::Tx { port: DOWN });
    let want = FrameSpec {
        src_mac: SRV_MAC,
        dst_mac: mac_of(WAP1),
        src_ip: POOL0,
        dst_ip: WAP1,
        ttl: 64,
        ident: 0,
        dont_frag: false,
        l4: L4::Icmp {
            ty: 3,
            code: 4,
            ident: 0,
            seq: 1480,
        },
        payload: orig[14..14 + 548].to_vec(),
        ..FrameSpec::default()
    };
    assert_eq!(out, want.build());
    assert_eq!(out.len(), 14 + 576);
    assert_eq!(h.w[0].counters.frag_needed, 1);
    let (v, out) = h.down(&big(1480 - 28, true), 1);
    assert_eq!(v, TX_DOWN);
    assert_eq!(out.len(), 14 + 1500);
    // up: an IPv6 packet whose IPv4 form exceeds mtu4 (only when mtu4 <
    // mtu6 - 20) is dropped
    let mut h4 = H::new(GwConfig {
        nat64: Some(Nat64Cfg {
            xlat: crate::xlat::XlatConfig {
                mtu4: 1280,
                mtu6: 1500,
            },
            ..Nat64Cfg::default()
        }),
        ..cfg()
    });
    let q = |n| udp6(UP_MACS, (sub6_1(), 8), (wkp(VIP_WAP), 53), &vec![1u8; n]);
    assert_eq!(h4.up(&q(1280 - 28), 0).0, TX_UP);
    assert_eq!(h4.up(&q(1280 - 27), 0).0, Verdict::Drop(DropReason::TooBig));
    h.assert_drops(
        &[
            (DropReason::UnsupportedEthertype, 2),
            (DropReason::NotForUs, 1),
            (DropReason::TtlExceeded, 1),
            (DropReason::Fragment, 1),
            (DropReason::UnsupportedProto, 1),
            (DropReason::NoFlow, 1),
            (DropReason::TooBig, 1),
        ],
        8,
    );
}

/// An IPv4 subscriber whose address equals an IPv6 subscriber's last 32
/// bits, same ports and destination, never matches the NAT64 flow (and
/// the other way round).
#[test]
fn ipv4_and_ipv6_tuples_do_not_mix() {
    let mut h = H::new(GwConfig {
        require_session: false,
        ..cfg64()
    });
    let s6 = sub6_1(); // ends in 0.0.0.1
    let twin = [0, 0, 0, 1];
    let (v, _) = h.up(&udp6(UP_MACS, (s6, 5000), (wkp(VIP_WAP), 53), b"6"), 0);
    assert_eq!(v, TX_UP);
    let (v, _) = h.up(&udp(UP_MACS, (twin, 5000), (VIP_WAP, 53), b"4"), 1);
    assert_eq!(v, TX_UP);
    assert_eq!(h.w[0].counters.new_flows, 2, "a new flow, not the IPv6 one");
    let (_, out) = h.up(&udp6(UP_MACS, (s6, 5000), (wkp(VIP_WAP), 53), b"6"), 2);
    assert_eq!(&out[26..30], &POOL0, "the NAT64 flow again");
    assert_eq!(h.w[0].counters.new_flows, 2);
}

// ------------------------------------------------------------- property --

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any NAT64 flow translated up, then its reply translated down (on
    /// the owner, after a handoff from the other worker), gives back the
    /// original IPv6 tuple; every output's checksums verify in full.
    #[test]
    fn nat64_round_trip_restores_the_ipv6_tuple(
        sub in prop_oneof![Just(sub6_1()), Just(sub6_1b()), Just(sub6_2())],
        rt in arb_round_trip(),
    ) {
        let mut h = h64();
        let dst = wkp(rt.dst());
        let (sport, dport, payload) = (rt.sport, rt.dport, &rt.payload);
        let up = rt.dressed(match rt.proto {
            0 => tcp6(UP_MACS, (sub, sport), (dst, dport), SYN, 77, 0, payload),
            1 => udp6(UP_MACS, (sub, sport), (dst, dport), payload),
            _ => FrameSpec { payload: payload.clone(), ..ping6(UP_MACS, sub, dst, icmp6::ECHO_REQUEST, sport, 3) },
        });
        let (out, o) = sent_up(&mut h, rt.worker, &up)?;
        prop_assert!(o.is_ipv4());
        prop_assert_eq!(o.ttl, rt.ttl - 1);
        prop_assert_eq!(o.vlan_tci, rt.vlan);
        prop_assert_eq!(&out[o.payload_range()], &payload[..]);
        let (nat, back, b) = rt.reply_back(&mut h, &o)?;
        prop_assert!(b.is_ipv6());
        prop_assert_eq!((b.src, b.dst), (dst, sub));
        if rt.proto == 2 {
            prop_assert_eq!(b.icmp_type, icmp6::ECHO_REPLY);
        }
        rt.restored(&back, &b)?;
        prop_assert_eq!(b.ttl, 63);
        prop_assert_eq!(h.w[rt.worker].subscriber6(nat.0, nat.1), Some(sub));
    }
}

/// An echo reply in IPv4 fragments to a NAT64 connection: not translated
/// (the ICMPv6 checksum covers a pseudo-header with the whole datagram's
/// length, which a first fragment does not know), dropped as
/// `xlat_fragment`; the connection's whole echoes still pass.
#[test]
fn an_echo_reply_in_fragments_to_a_nat64_connection_is_an_xlat_fragment_drop() {
    let mut h = h64();
    let req = ping6(
        UP_MACS,
        sub6_1(),
        wkp(VIP_WAP),
        icmp6::ECHO_REQUEST,
        0x4242,
        7,
    );
    let (v, out) = h.up(&req, 0);
    assert_eq!(v, TX_UP);
    let key_port = u16::from_be_bytes([out[38], out[39]]);
    let rep = FrameSpec {
        ident: 5,
        dont_frag: false,
        payload: vec![0x33; 3000],
        ..ping(
            (mac_of(WAP1), SRV_MAC),
            WAP1,
            POOL0,
            ECHO_REPLY,
            key_port,
            7,
        )
    };
    let first = crate::wire::build::fragment_v4(&rep.build(), 1200)[0].clone();
    assert_eq!(
        h.run(&first, DOWN, 1).0,
        Verdict::Drop(DropReason::XlatFragment)
    );
    let whole = ping(
        (mac_of(WAP1), SRV_MAC),
        WAP1,
        POOL0,
        ECHO_REPLY,
        key_port,
        8,
    );
    assert_eq!(h.down(&whole, 2).0, TX_DOWN);
}
