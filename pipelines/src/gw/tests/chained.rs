//! Chained frames (a PMD's multi-segment mbufs): the GW reads and rewrites
//! the headers in the first buffer and counts the whole IP length; the
//! frame it sends, first buffer and untouched tail together, is byte for
//! byte the one it sends for the same frame in one buffer. Paths that read
//! or move the payload refuse chains as `oversize`; a reply built in the
//! buffer (a RST) ends the frame there.

use super::nat64::{h64, wkp};
use super::nat66::{h66, mac6};
use super::*;

/// Where the tests cut a frame: the first buffer's length.
const CUT: usize = 600;

/// Run `frame` through worker 0 of `h` as a chain: its first `cut` bytes in
/// the buffer (headroom before, room after, as in an mbuf), the rest in a
/// tail. The verdict, the frame as the engine would send it (the buffer's
/// frame, then what is left of the tail), and the tail's length after.
fn run_chained(
    h: &mut H,
    frame: &[u8],
    cut: usize,
    port: u16,
    now: u64,
) -> (Verdict, Vec<u8>, usize) {
    const HEAD: usize = 64;
    let mut buf = vec![FILL; HEAD];
    buf.extend(with_room(&frame[..cut], cut + 64));
    let mut pkt = Pkt::chained(&mut buf, HEAD, cut, frame.len() - cut, port);
    let v = h.w[0].process(&h.t, &mut pkt, now, &mut h.acct, &mut h.c);
    let (off, len, tail) = (pkt.headroom(), pkt.len(), pkt.tail());
    let mut out = buf[off..off + len].to_vec();
    out.extend_from_slice(&frame[frame.len() - tail..]);
    (v, out, tail)
}

/// `frame` through a GW as a chain and through its twin whole: the same
/// verdict and the same bytes out (checksums right), the tail kept.
#[track_caller]
fn same_as_whole(chained: &mut H, whole: &mut H, frame: &[u8], port: u16, now: u64) -> Vec<u8> {
    let (v, out, tail) = run_chained(chained, frame, CUT, port, now);
    let (w, want) = whole.run(frame, port, now);
    assert_eq!(v, w);
    assert!(matches!(v, Verdict::Tx { .. }), "{v:?}");
    assert_eq!(tail, frame.len() - CUT);
    assert!(
        out == want,
        "the chained frame was sent otherwise than whole"
    );
    assert!(checksums_ok(&out));
    out
}

/// The NAT key (address, port) and server (address, port) of an up frame
/// the GW sent.
fn key_and_server(out: &[u8]) -> (([u8; 4], u16), ([u8; 4], u16)) {
    let p = wire::parse(out).unwrap();
    ((p.src_v4(), p.src_port), (p.dst_v4(), p.dst_port))
}

#[test]
fn chained_udp_and_tcp_of_nat44_are_sent_as_whole_frames_are() {
    let (mut a, mut b) = (H::std(), H::std());
    // UDP: 3 000 bytes up, 5 000 down.
    let up = udp((LB1, ACC_MAC), (SUB1, 40_000), (VIP_WAP, 53), &[0x5a; 3000]).build();
    let out = same_as_whole(&mut a, &mut b, &up, UP, 10);
    let (key, srv) = key_and_server(&out);
    let down = udp((mac_of(srv.0), SRV_MAC), srv, key, &[0xa5; 5000]).build();
    same_as_whole(&mut a, &mut b, &down, DOWN, 11);
    // TCP: the handshake whole, then 4 000 bytes of data each way chained.
    let (_, out) = a.up(&bare_syn((SUB1, 40_001), (VIP_WAP, 80)), 20);
    b.up(&bare_syn((SUB1, 40_001), (VIP_WAP, 80)), 20);
    let (key, srv) = key_and_server(&out);
    a.down(&bare_syn_ack(mac_of(srv.0), srv, key), 21);
    b.down(&bare_syn_ack(mac_of(srv.0), srv, key), 21);
    let data = tcp(
        (LB1, ACC_MAC),
        (SUB1, 40_001),
        (VIP_WAP, 80),
        ACK | PSH,
        2,
        2,
        &[1; 4000],
    );
    same_as_whole(&mut a, &mut b, &data.build(), UP, 22);
    let data = tcp(
        (mac_of(srv.0), SRV_MAC),
        srv,
        key,
        ACK | PSH,
        2,
        4002,
        &[2; 4000],
    );
    same_as_whole(&mut a, &mut b, &data.build(), DOWN, 23);
    // Counted by their whole IP length, as the twin counted them.
    for (k, port) in [(0usize, 20_000u16), (1, 20_001)] {
        let (x, y) = (
            a.w[0].flow_by_key(POOL0, port).unwrap(),
            b.w[0].flow_by_key(POOL0, port).unwrap(),
        );
        assert_eq!(
            (x.up_bytes, x.down_bytes),
            (y.up_bytes, y.down_bytes),
            "flow {k}"
        );
    }
    let udp_flow = a.w[0].flow_by_key(POOL0, 20_000).unwrap();
    assert_eq!(
        (udp_flow.up_bytes, udp_flow.down_bytes),
        (20 + 8 + 3000, 20 + 8 + 5000)
    );
    a.assert_drops(&[], 0);
}

#[test]
fn chained_nat66_is_sent_as_a_whole_frame_is() {
    let (mut a, mut b) = (h66(), h66());
    let up = udp6(
        (LB1, ACC_MAC),
        (v6("2001:db8:0:1::1"), 40_000),
        (v6("2001:db8:33::1"), 53),
        &[0x5a; 3000],
    )
    .build();
    let out = same_as_whole(&mut a, &mut b, &up, UP, 10);
    let p = wire::parse(&out).unwrap();
    assert_eq!(p.dst, v6("2001:db8:33:1::10"));
    let down = udp6(
        (mac6(p.dst), SRV_MAC),
        (p.dst, p.dst_port),
        (p.src, p.src_port),
        &[0xa5; 5000],
    )
    .build();
    same_as_whole(&mut a, &mut b, &down, DOWN, 11);
    a.assert_drops(&[], 0);
}

/// Fragments, ICMP and NAT64 hold, quote or move the payload: a chain of
/// theirs is `oversize`, and nothing of the frame is changed.
#[test]
fn chains_on_paths_that_read_the_payload_are_oversize() {
    let mut h = H::std();
    let ping = ping((LB1, ACC_MAC), SUB1, VIP_WAP, ECHO_REQUEST, 7, 1);
    let mut big_ping = ping.clone();
    big_ping.payload = vec![3; 3000];
    let mut first_frag = udp((LB1, ACC_MAC), (SUB1, 40_000), (VIP_WAP, 53), &[4; 3000]);
    first_frag.more_frags = true;
    for f in [big_ping.build(), first_frag.build()] {
        let (v, out, tail) = run_chained(&mut h, &f, CUT, UP, 10);
        assert_eq!(v, Verdict::Drop(DropReason::Oversize));
        assert_eq!((out.as_slice(), tail), (&f[..], f.len() - CUT));
    }
    h.assert_drops(&[(DropReason::Oversize, 2)], 2);
    let mut h = h64();
    let up = as6(
        udp((LB1, ACC_MAC), (SUB1, 40_000), (VIP_WAP, 53), &[5; 3000]),
        v6("2001:db8:0:1::1"),
        wkp(VIP_WAP),
    )
    .build();
    let (v, _, _) = run_chained(&mut h, &up, CUT, UP, 10);
    assert_eq!(v, Verdict::Drop(DropReason::Oversize));
    h.assert_drops(&[(DropReason::Oversize, 1)], 1);
}

/// A chained SYN to a service the subscriber may not use: the RST is built
/// in the first buffer and the frame ends there (the engine frees the
/// rest of the chain).
#[test]
fn a_reply_built_in_a_chained_frame_drops_its_tail() {
    let mut h = H::std();
    let syn = tcp(
        (LB1, ACC_MAC),
        (SUB2, 40_000),
        (VIP_MAIL, 25),
        SYN,
        100,
        0,
        &[6; 3000],
    );
    let (v, out, tail) = run_chained(&mut h, &syn.build(), CUT, UP, 10);
    assert_eq!(v, TX_DOWN);
    assert_eq!((out.len(), tail), (60, 0));
    let p = wire::parse(&out).unwrap();
    assert!(p.tcp_flag(RST));
    assert!(checksums_ok(&out));
    // It acknowledges the whole SYN: seq 100 + SYN + 3 000 bytes.
    let ack = u32::from_be_bytes(out[p.l4_off as usize + 8..][..4].try_into().unwrap());
    assert_eq!(ack, 100 + 1 + 3000);
    assert_eq!(h.w[0].counters.rst_unauthorized, 1);
}
