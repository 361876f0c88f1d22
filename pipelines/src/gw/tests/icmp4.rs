//! ICMP about NAT44 connections: errors translated both ways with the
//! connection's binding (every rewritten field, and the outer IPv4, ICMP,
//! quoted IPv4 and quoted TCP/UDP checksums verified on their own), errors
//! of no connection counted, echo requests to a VIP answered by the GW.

use super::*;
use crate::wire::icmp::v4::{DEST_UNREACHABLE, TIME_EXCEEDED};
use crate::wire::{IcmpPacket, Ipv4Packet, TcpPacket, UdpPacket};

/// A router on the server side, and one on the subscriber side.
const ROUTER_SRV: [u8; 4] = [203, 0, 113, 1];
const ROUTER_SUB: [u8; 4] = [10, 0, 0, 254];
const FRAG_NEEDED: u8 = 4;
const UP_MACS: ([u8; 6], [u8; 6]) = (LB1, ACC_MAC);

/// What an ICMPv4 error says: type, code, and the 4 bytes after the
/// checksum (the next-hop MTU of Fragmentation Needed in the low 16 bits).
type Kind = (u8, u8, u32);
/// Fragmentation Needed, next-hop MTU 1280.
const FRAG_1280: Kind = (DEST_UNREACHABLE, FRAG_NEEDED, 1280);
const TTL_EXCEEDED: Kind = (TIME_EXCEEDED, 0, 0);
const PORT_UNREACHABLE: Kind = (DEST_UNREACHABLE, 3, 0);
/// Parameter Problem (type 12, code 0), the pointer (first byte of the
/// rest) at the quoted IPv4 header's byte 1 (DSCP/ECN).
const PARAM_PROBLEM_AT_1: Kind = (crate::xlat::icmp::V4_PARAM_PROBLEM, 0, 1 << 24);

/// An ICMPv4 error `kind` from `src` to `dst` (MACs `macs`), quoting
/// `quoted` (IP bytes).
fn err(
    macs: ([u8; 6], [u8; 6]),
    (src, dst): ([u8; 4], [u8; 4]),
    kind: Kind,
    quoted: &[u8],
) -> FrameSpec {
    let (ty, code, rest) = kind;
    FrameSpec {
        src_mac: macs.0,
        dst_mac: macs.1,
        ..crate::xlat::tests::err4(src, dst, ty, code, rest, quoted)
    }
}

/// An error `kind` quoting `quoted` from the router on the server side to
/// the pool address.
fn from_router_srv(kind: Kind, quoted: &[u8]) -> FrameSpec {
    err((ROUTER, SRV_MAC), (ROUTER_SRV, POOL0), kind, quoted)
}

/// The error `kind` of the router on the server side as the GW relays it
/// to SUB1 (through its LB), quoting `quoted`.
fn router_srv_to_sub1(kind: Kind, quoted: &[u8]) -> FrameSpec {
    err((ACC_MAC, LB1), (ROUTER_SRV, SUB1), kind, quoted)
}

/// An error `kind` quoting `quoted` from the router on the subscriber side
/// to the VIP.
fn from_router_sub(kind: Kind, quoted: &[u8]) -> FrameSpec {
    err((LB1, ACC_MAC), (ROUTER_SUB, VIP_WAP), kind, quoted)
}

/// `spec` as the GW forwarded it, before its NAT: one hop older (what an
/// error about the forwarded packet must quote once translated back).
fn hop_older(spec: &FrameSpec) -> Vec<u8> {
    FrameSpec {
        ttl: spec.ttl - 1,
        ..spec.clone()
    }
    .build()
}

/// The error `e`, sent in on `port` (UP or DOWN) of worker 0 at `now`, goes
/// out the other side as `want` one hop older (TTL 63), every checksum
/// verifying; the frame that went out.
#[track_caller]
fn assert_relayed(
    h: &mut H,
    port: u16,
    e: &FrameSpec,
    now: u64,
    want: FrameSpec,
    what: &str,
) -> Vec<u8> {
    let (v, got) = h.run(&e.build(), port, now);
    assert_eq!(v, if port == UP { TX_UP } else { TX_DOWN }, "{what}");
    assert_eq!(got, FrameSpec { ttl: 63, ..want }.build(), "{what}");
    assert_error_checksums(&got);
    got
}

/// Every checksum of an ICMPv4 error frame (no options, untagged) verifies:
/// the outer IPv4 header's, the ICMP message's, the quoted IPv4 header's,
/// and the quoted TCP/UDP segment's when it is quoted whole.
#[track_caller]
fn assert_error_checksums(f: &[u8]) {
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert!(ip.verify_checksum(), "outer IPv4 checksum");
    let end = 14 + ip.total_len() as usize;
    let msg = &f[34..end];
    assert!(
        IcmpPacket::new_unchecked(msg).verify_checksum_v4(),
        "ICMP checksum"
    );
    // (a quote is often truncated: its total length says more)
    let q = Ipv4Packet::new_unchecked(&msg[8..]);
    assert!(q.verify_checksum(), "quoted IPv4 checksum");
    let seg = &msg[8 + q.header_len()..];
    if seg.len() == q.total_len() as usize - q.header_len() {
        let (s, d) = (q.src_addr(), q.dst_addr());
        let ok = match q.protocol() {
            ip_proto::TCP => TcpPacket::new_unchecked(seg).verify_checksum_v4(s, d),
            ip_proto::UDP => UdpPacket::new_unchecked(seg).verify_checksum_v4(s, d),
            _ => IcmpPacket::new_unchecked(seg).verify_checksum_v4(),
        };
        assert!(ok, "quoted L4 checksum");
    }
}

/// A standard fixture with SUB1:40000 → VIP_WAP:80 established on worker 0
/// (key POOL0:20000, server WAP1:80); the data segment it then sent up, as
/// the subscriber sent it and as the GW sent it.
fn established() -> (H, FrameSpec, Vec<u8>) {
    let mut h = H::std();
    let sub = (SUB1, 40_000);
    let key = (POOL0, 20_000);
    let srv = (WAP1, 80);
    assert_eq!(h.up(&bare_syn(sub, (VIP_WAP, 80)), 0).0, TX_UP);
    let sa = bare_syn_ack(mac_of(WAP1), srv, key);
    assert_eq!(h.down(&sa, 1).0, TX_DOWN);
    let data = tcp(UP_MACS, sub, (VIP_WAP, 80), ACK | PSH, 2, 2, &[0x5a; 1400]);
    let (v, out) = h.up(&data, 2);
    assert_eq!(v, TX_UP);
    assert_eq!(
        out,
        natted(&data, (SRV_MAC, mac_of(WAP1)), key, srv),
        "the data segment's NAT"
    );
    (h, data, out)
}

/// SUB1's echo request to EXTERNAL (identifier 0x4242) sent up at `now`:
/// the request, the frame the GW sent, and the identifier it sent (the key
/// port).
fn echo_up(h: &mut H, now: u64) -> (FrameSpec, Vec<u8>, u16) {
    let req = ping(UP_MACS, SUB1, EXTERNAL, ECHO_REQUEST, 0x4242, 9);
    let (v, out) = h.up(&req, now);
    assert_eq!(v, TX_UP);
    let key_port = u16::from_be_bytes([out[38], out[39]]);
    (req, out, key_port)
}

#[test]
fn frag_needed_from_the_server_side_reaches_the_subscriber() {
    let (mut h, data, out) = established();
    // The data segment as the subscriber sent it, TTL as the GW sent it:
    // what the subscriber must find quoted.
    let sent = hop_older(&data);
    // A router between the GW and the server: Fragmentation Needed,
    // next-hop MTU 1280, quoting our segment whole (as Linux does up to
    // 576 bytes: here the whole, to check the quoted TCP checksum) or its
    // first 28 bytes (RFC 792).
    for quote_len in [out.len() - 14, 548, 28] {
        let quote = &out[14..14 + quote_len];
        let e = from_router_srv(FRAG_1280, quote);
        // To the subscriber through its LB, from the router (its address
        // kept), TTL − 1, the MTU kept, the quote translated back.
        let quote = &sent[14..14 + quote_len];
        let want = router_srv_to_sub1(FRAG_1280, quote);
        let got = assert_relayed(&mut h, DOWN, &e, 3, want, &format!("quote {quote_len}"));
        assert_eq!(&got[34 + 6..34 + 8], &1280u16.to_be_bytes(), "next-hop MTU");
    }
    assert_eq!(h.w[0].counters.icmp_err_down, 3);
    // Errors are not the connection's traffic.
    let f = h.w[0].flow_by_key(POOL0, 20_000).unwrap();
    assert_eq!((f.down_pkts, f.state), (1, FlowState::Established));
    // Another worker's key: handed to its owner untouched.
    let e = from_router_srv(FRAG_1280, &out[14..]).build();
    assert_eq!(
        h.run_on(1, &e, DOWN, 3),
        (Verdict::Handoff { worker: 0 }, e)
    );
    assert_eq!(h.c.total_drops(), 0);
}

#[test]
fn time_exceeded_and_port_unreachable_of_udp_and_echo_reach_the_subscriber() {
    let mut h = H::std();
    let q = udp(UP_MACS, (SUB1, 5353), (VIP_WAP, 53), b"query");
    let (v, out) = h.up(&q, 0);
    assert_eq!(v, TX_UP);
    let key = (POOL0, 20_000);
    assert_eq!(out, natted(&q, (SRV_MAC, mac_of(WAP1)), key, (WAP1, 53)));
    let sent = hop_older(&q);
    // Time exceeded from a router: its address kept.
    let e = from_router_srv(TTL_EXCEEDED, &out[14..]);
    let want = router_srv_to_sub1(TTL_EXCEEDED, &sent[14..]);
    assert_relayed(&mut h, DOWN, &e, 1, want, "");
    // Port unreachable from the server itself: it comes from the VIP the
    // subscriber talks to.
    let e = err(
        (mac_of(WAP1), SRV_MAC),
        (WAP1, POOL0),
        PORT_UNREACHABLE,
        &out[14..],
    );
    let want = err(
        (ACC_MAC, LB1),
        (VIP_WAP, SUB1),
        PORT_UNREACHABLE,
        &sent[14..],
    );
    assert_relayed(&mut h, DOWN, &e, 1, want, "");
    // An echo connection: time exceeded quoting the request (identifier =
    // key port) quotes the subscriber's own request (its identifier).
    let (req, out, key_port) = echo_up(&mut h, 2);
    assert_ne!(
        key_port, 0x4242,
        "the identifier is the key (20000 is taken)"
    );
    let e = from_router_srv(TTL_EXCEEDED, &out[14..]);
    let quote = &hop_older(&req)[14..];
    let want = router_srv_to_sub1(TTL_EXCEEDED, quote);
    assert_relayed(&mut h, DOWN, &e, 3, want, "");
    assert_eq!(h.w[0].counters.icmp_err_down, 3);
    assert_eq!(h.c.total_drops(), 0);
}

#[test]
fn frag_needed_from_the_subscriber_side_reaches_the_server() {
    let (mut h, ..) = established();
    // A big segment down, as the server sent it and as delivered.
    let key = (POOL0, 20_000);
    let srv = (mac_of(WAP1), SRV_MAC);
    let big = tcp(srv, (WAP1, 80), key, ACK | PSH, 2, 1402, &[0xa5; 1400]);
    let (v, delivered) = h.down(&big, 4);
    assert_eq!(v, TX_DOWN);
    assert_eq!(
        delivered,
        natted(&big, (ACC_MAC, LB1), (VIP_WAP, 80), (SUB1, 40_000))
    );
    // The server's segment with the TTL it was delivered with.
    let sent = hop_older(&big);
    // A router between the GW and the subscriber: Fragmentation Needed,
    // MTU 1280, to the segment's source (the VIP), quoting it whole or 28
    // bytes of it.
    for quote_len in [delivered.len() - 14, 28] {
        let quote = &delivered[14..14 + quote_len];
        let e = from_router_sub(FRAG_1280, quote);
        // To the server through its next hop, from the pool address (the
        // router's address is the subscriber side's), the quote as the
        // server sent it.
        let quote = &sent[14..14 + quote_len];
        let want = err((SRV_MAC, mac_of(WAP1)), (POOL0, WAP1), FRAG_1280, quote);
        assert_relayed(&mut h, UP, &e, 5, want, &format!("quote {quote_len}"));
    }
    // Time exceeded from the subscriber side, quoting an echo reply: the
    // identifier becomes the key port again.
    let (_, _, key_port) = echo_up(&mut h, 6);
    let rep = ping((ROUTER, SRV_MAC), EXTERNAL, POOL0, ECHO_REPLY, key_port, 9);
    let (v, delivered) = h.down(&rep, 7);
    assert_eq!(v, TX_DOWN);
    let e = err(
        (LB1, ACC_MAC),
        (SUB1, EXTERNAL),
        TTL_EXCEEDED,
        &delivered[14..],
    );
    let quote = &hop_older(&rep)[14..];
    let want = err((SRV_MAC, ROUTER), (POOL0, EXTERNAL), TTL_EXCEEDED, quote);
    assert_relayed(&mut h, UP, &e, 8, want, "");
    assert_eq!(h.w[0].counters.icmp_err_up, 3);
    assert_eq!(h.c.total_drops(), 0);
}

/// Parameter Problem (RFC 792) both ways: from the server side it reaches
/// the subscriber with the quote translated back, from the subscriber side
/// the server; the pointer is kept (it points into the quoted IPv4 header,
/// whose layout the translation does not change).
#[test]
fn parameter_problem_is_translated_both_ways_with_its_pointer() {
    let (mut h, data, out) = established();
    let sent = hop_older(&data);
    let e = from_router_srv(PARAM_PROBLEM_AT_1, &out[14..]);
    let want = router_srv_to_sub1(PARAM_PROBLEM_AT_1, &sent[14..]);
    let got = assert_relayed(&mut h, DOWN, &e, 3, want, "down");
    assert_eq!(got[34 + 4], 1, "the pointer");
    assert_eq!(h.w[0].counters.icmp_err_down, 1);
    // A server segment, and a Parameter Problem about it from a router on
    // the subscriber side.
    let (key, srv) = ((POOL0, 20_000), (mac_of(WAP1), SRV_MAC));
    let seg = tcp(srv, (WAP1, 80), key, ACK | PSH, 2, 1402, &[0xa5; 100]);
    let (v, delivered) = h.down(&seg, 4);
    assert_eq!(v, TX_DOWN);
    let e = from_router_sub(PARAM_PROBLEM_AT_1, &delivered[14..]);
    let want = err(
        (SRV_MAC, mac_of(WAP1)),
        (POOL0, WAP1),
        PARAM_PROBLEM_AT_1,
        &hop_older(&seg)[14..],
    );
    let got = assert_relayed(&mut h, UP, &e, 5, want, "up");
    assert_eq!(got[34 + 4], 1, "the pointer");
    assert_eq!(h.w[0].counters.icmp_err_up, 1);
    assert_eq!(h.c.total_drops(), 0);
}

#[test]
fn errors_of_no_connection_are_dropped_and_counted() {
    let (mut h, _, out) = established();
    // Errors down from a router on the server side, up from one on the
    // subscriber side, each Fragmentation Needed quoting `q`.
    let down = |q: &[u8]| from_router_srv(FRAG_1280, q);
    let up = |q: &[u8]| from_router_sub(FRAG_1280, q);
    // Down: a quote whose key holds no connection, then one whose key holds
    // a connection to another server.
    let mut stale = out[14..].to_vec();
    stale[20..22].copy_from_slice(&20_001u16.to_be_bytes());
    assert_eq!(h.down(&down(&stale), 3).0, Verdict::Drop(DropReason::NoKey));
    let mut other = out[14..].to_vec();
    other[16..20].copy_from_slice(&WAP2);
    assert_eq!(h.down(&down(&other), 3).0, Verdict::Drop(DropReason::NoKey));
    // Up: a quote of a down packet to another subscriber port.
    let srv = (mac_of(WAP1), SRV_MAC);
    let big = tcp(srv, (WAP1, 80), (POOL0, 20_000), ACK, 2, 1402, &[1; 100]);
    let (_, delivered) = h.down(&big, 4);
    let mut q = delivered[14..].to_vec();
    q[22..24].copy_from_slice(&40_001u16.to_be_bytes());
    assert_eq!(h.up(&up(&q), 5).0, Verdict::Drop(DropReason::NoFlow));
    // A quote too short to hold the ports.
    let short = up(&delivered[14..14 + 24]);
    assert_eq!(h.up(&short, 5).0, Verdict::Drop(DropReason::XlatIcmpInner));
    // A quoted fragment (the GW sends none).
    let mut frag = out[14..].to_vec();
    frag[6] |= 0x20; // MF
    assert_eq!(
        h.down(&down(&frag), 5).0,
        Verdict::Drop(DropReason::XlatIcmpInner)
    );
    // After the connection's idle timeout, its errors are no connection's.
    assert_eq!(
        h.down(&down(&out[14..]), 4 + TIMEOUTS.established_ms + 1).0,
        Verdict::Drop(DropReason::NoKey)
    );
    h.assert_drops(
        &[
            (DropReason::NoKey, 3),
            (DropReason::NoFlow, 1),
            (DropReason::XlatIcmpInner, 2),
        ],
        6,
    );
    assert_eq!(
        h.w[0].counters.icmp_err_down + h.w[0].counters.icmp_err_up,
        0
    );
}

#[test]
fn echo_to_a_vip_is_answered_by_the_gateway_when_asked() {
    let mut h = H::new(GwConfig {
        answer_ping: true,
        ..cfg()
    });
    for vip in [VIP_WAP, VIP_MAIL] {
        let req = ping(UP_MACS, SUB2, vip, ECHO_REQUEST, 0x77, 3);
        let (v, got) = h.up(&req, 0);
        // Back where it came from: MACs and addresses swapped, TTL 64,
        // type 0; identifier, sequence and data kept.
        assert_eq!(v, TX_DOWN);
        let want = FrameSpec {
            ttl: 64,
            ..ping((ACC_MAC, LB1), vip, SUB2, ECHO_REPLY, 0x77, 3)
        };
        assert_eq!(got, want.build());
        assert!(checksums_ok(&got));
    }
    assert_eq!(h.w[0].counters.vip_echo_replies, 2);
    assert_eq!(h.w[0].open_flows(), 0, "no connection for the answers");
    // Not a VIP: a connection as before.
    let req = ping(UP_MACS, SUB1, EXTERNAL, ECHO_REQUEST, 0x77, 3);
    assert_eq!(h.up(&req, 0).0, TX_UP);
    assert_eq!(h.w[0].counters.vip_echo_replies, 2);
    // Switched off: the VIP's echo is balanced to a member.
    let mut h = H::std();
    let req = ping(UP_MACS, SUB1, VIP_WAP, ECHO_REQUEST, 0x77, 3);
    let (v, got) = h.up(&req, 0);
    assert_eq!(v, TX_UP);
    assert_eq!(&got[30..34], &WAP1);
    assert_eq!(h.w[0].counters.vip_echo_replies, 0);
}
