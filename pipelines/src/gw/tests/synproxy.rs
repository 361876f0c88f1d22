//! The SYN proxy (`GwConfig::syn_proxy`): the cookie SYN-ACK byte by byte,
//! the cookie ACK becoming the server's SYN, the server's SYN-ACK becoming
//! the handshake's ACK or the kept early segment, the sequence, SACK and
//! window translation both ways, invalid and old cookies, `auto`'s
//! threshold, refusals after the cookie, and what a SYN flood leaves
//! behind (nothing).

use super::*;
use crate::gw::synproxy::{self, CookieKey, SynOpts, Tuple, NO_WS};
use crate::gw::{ExhaustionReply, SynProxy};
use crate::wire::tcp::TcpPacket;

fn on_cfg() -> GwConfig {
    GwConfig {
        workers: 1,
        syn_proxy: SynProxy::On,
        syn_proxy_mss: 1400,
        syn_proxy_wscale: 7,
        ..cfg()
    }
}

/// MSS 1460, SACK-permitted, Timestamps, NOP, WS 9 (Linux's order).
const SYN_OPTS: [u8; 20] = [
    2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 9,
];

const ISN: u32 = 0x1122_3344;

fn up_seg(sp: u16, fl: u8, seq: u32, ack: u32, data: &[u8]) -> FrameSpec {
    tcp(
        (LB1, ACC_MAC),
        (SUB1, sp),
        (VIP_WAP, 80),
        fl,
        seq,
        ack,
        data,
    )
}

/// A segment from the server `srv` to the key `key`, acknowledging the
/// subscriber's SYN.
fn from_server(srv: Ep4, key: Ep4, fl: u8, seq: u32) -> FrameSpec {
    tcp((ROUTER, SRV_MAC), srv, key, fl, seq, ISN + 1, b"")
}

/// Run `spec` in from the server side: its verdict must be `want` and its
/// checksums right; the output frame.
fn down_as(h: &mut H, spec: &FrameSpec, now: u64, want: Verdict) -> Vec<u8> {
    let (v, out) = h.down(spec, now);
    assert_eq!(v, want);
    assert!(checksums_ok(&out));
    out
}

/// One worker with `syn_proxy = "auto"` from `half_open` connections.
fn auto(half_open: u32) -> H {
    H::new(GwConfig {
        syn_proxy: SynProxy::Auto { half_open },
        ..on_cfg()
    })
}

fn syn_with_opts(sp: u16) -> FrameSpec {
    with_tcp(up_seg(sp, SYN, ISN, 0, b""), &SYN_OPTS, 64_240)
}

fn tcp_of(f: &[u8]) -> (crate::wire::Parsed, TcpPacket<&[u8]>) {
    let p = crate::wire::parse(f).unwrap();
    let t = TcpPacket::new_unchecked(&f[p.l4_off as usize..p.ip_end()]);
    (p, t)
}

/// SYN → the cookie SYN-ACK; the cookie.
fn cookie_of(h: &mut H, sp: u16, now: u64) -> u32 {
    let (v, out) = h.up(&syn_with_opts(sp), now);
    assert_eq!(v, TX_DOWN, "the SYN is answered toward the subscriber");
    assert!(checksums_ok(&out));
    tcp_of(&out).1.seq_number()
}

/// SYN, cookie, ACK: the SYN the server gets (its key and server).
fn proxied(h: &mut H, sp: u16, now: u64) -> (u32, Vec<u8>, Ep4, Ep4) {
    let c = cookie_of(h, sp, now);
    let ack = with_tcp(up_seg(sp, ACK, ISN + 1, c.wrapping_add(1), b""), &[], 502);
    let (v, out) = h.up(&ack, now);
    assert_eq!(v, TX_UP);
    let (p, _) = tcp_of(&out);
    (
        c,
        out.clone(),
        (p.src_v4(), p.src_port),
        (p.dst_v4(), p.dst_port),
    )
}

#[test]
fn the_cookie_syn_ack_literal() {
    let mut h = H::new(on_cfg());
    let (v, out) = h.up(&syn_with_opts(40_000), 100);
    assert_eq!(v, TX_DOWN);
    let c = tcp_of(&out).1.seq_number();
    let key = CookieKey::new(on_cfg().cookie_secret);
    let tuple = Tuple {
        src: SUB1,
        dst: VIP_WAP,
        sport: 40_000,
        dport: 80,
    };
    let o = key.check(&tuple, ISN, c, 0).expect("a valid cookie");
    assert_eq!(
        o,
        SynOpts {
            mss_idx: 7,
            wscale: 9,
            sack: true
        }
    );
    let mut want = Vec::new();
    want.extend_from_slice(&LB1); // back to the LB
    want.extend_from_slice(&ACC_MAC);
    want.extend_from_slice(&[0x08, 0x00]);
    let ip = [
        0x45, 0, 0, 52, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 33, 0, 1, 10, 0, 0, 1,
    ];
    let ipc = rfc1071(&[&ip]).to_be_bytes();
    want.extend_from_slice(&ip[..10]);
    want.extend_from_slice(&ipc);
    want.extend_from_slice(&ip[12..]);
    let mut t = vec![0, 80, 0x9c, 0x40];
    t.extend_from_slice(&c.to_be_bytes());
    t.extend_from_slice(&(ISN + 1).to_be_bytes());
    t.extend_from_slice(&[0x80, SYN | ACK, 0xff, 0xff, 0, 0, 0, 0]);
    // MSS 1400 (the proxy's), NOP NOP SACK-permitted, NOP WS 7 (the proxy's)
    t.extend_from_slice(&[2, 4, 0x05, 0x78, 1, 1, 4, 2, 1, 3, 3, 7]);
    let pseudo = [10, 33, 0, 1, 10, 0, 0, 1, 0, 6, 0, 32];
    let tc = rfc1071(&[&pseudo, &t]).to_be_bytes();
    t[16..18].copy_from_slice(&tc);
    want.extend_from_slice(&t);
    assert_eq!(out, want);
    assert_eq!(h.w[0].keys_in_use(), 0, "a SYN takes no entry");
    assert_eq!(h.w[0].counters.syncookies_sent, 1);
    assert_eq!(h.w[0].counters.new_flows, 0);
}

#[test]
fn the_cookie_ack_becomes_the_servers_syn() {
    let mut h = H::new(on_cfg());
    let (_, syn, key, srv) = proxied(&mut h, 40_000, 100);
    assert!(checksums_ok(&syn));
    let (p, t) = tcp_of(&syn);
    assert_eq!(p.tcp_flags, SYN);
    assert_eq!(t.seq_number(), ISN, "the subscriber's own ISN");
    assert_eq!(t.ack_number(), 0);
    // the subscriber's MSS (by the table), SACK-permitted, its WS 9; no
    // timestamps
    assert_eq!(t.options(), &[2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 9]);
    // the window: the ACK's 502 << 9, unscaled in a SYN, at most 65535
    assert_eq!(t.window_len(), 0xffff);
    assert_eq!(p.payload_len, 0);
    assert_eq!(key.0, POOL0);
    assert!(srv.0 == WAP1 || srv.0 == WAP2);
    assert_eq!(&syn[0..6], &mac_of(srv.0));
    assert_eq!(h.w[0].keys_in_use(), 1);
    assert_eq!(h.w[0].counters.syncookies_valid, 1);
    assert_eq!(h.w[0].counters.new_flows, 1);
    assert_eq!(h.w[0].half_open(), 0, "its subscriber has ACKed");
}

#[test]
fn the_servers_syn_ack_is_answered_and_then_everything_is_translated() {
    let mut h = H::new(on_cfg());
    let (c, _, key, srv) = proxied(&mut h, 40_000, 100);
    const S: u32 = 0xfedc_ba98;
    // the server's SYN-ACK (WS 9, as the subscriber's 7 is not) is consumed:
    // the ACK of the server's handshake goes back to it
    let synack = with_tcp(
        from_server(srv, key, SYN | ACK, S),
        &[2, 4, 5, 0xb4, 1, 3, 3, 9],
        65_000,
    );
    let (v, out) = h.down(&synack, 110);
    assert_eq!(v, TX_UP);
    assert!(checksums_ok(&out));
    let (p, t) = tcp_of(&out);
    assert_eq!((p.src_v4(), p.src_port), key);
    assert_eq!((p.dst_v4(), p.dst_port), srv);
    assert_eq!(&out[0..6], &ROUTER, "back to where the SYN-ACK came from");
    assert_eq!(&out[6..12], &SRV_MAC);
    assert_eq!(p.tcp_flags, ACK);
    assert_eq!((t.seq_number(), t.ack_number()), (ISN + 1, S + 1));
    assert_eq!(t.window_len(), 502, "the subscriber's window field");
    assert_eq!(h.w[0].half_open(), 0);
    assert_eq!(
        h.w[0].flow_by_key(key.0, key.1).unwrap().state,
        FlowState::Established
    );

    // down: seq into the cookie's space, the window from scale 9 to 7
    let data = tcp(
        (ROUTER, SRV_MAC),
        srv,
        key,
        ACK | PSH,
        S + 1,
        ISN + 1,
        b"hello",
    );
    let data = with_tcp(data, &[], 100);
    let (v, out) = h.down(&data, 120);
    assert_eq!(v, TX_DOWN);
    assert!(checksums_ok(&out));
    let (p, t) = tcp_of(&out);
    assert_eq!((p.src_v4(), p.src_port), (VIP_WAP, 80));
    assert_eq!((t.seq_number(), t.ack_number()), (c + 1, ISN + 1));
    assert_eq!(t.window_len(), 400, "100 << 9 >> 7");

    // up: ack and SACK edges into the server's space (the SACK option at an
    // odd offset: one NOP before it)
    let sack_opt = {
        let mut o = vec![1, 5, 10];
        o.extend_from_slice(&(c + 11).to_be_bytes());
        o.extend_from_slice(&(c + 21).to_be_bytes());
        o.push(0); // (end of options, padding to a word)
        o
    };
    let ack = with_tcp(up_seg(40_000, ACK, ISN + 1, c + 6, b""), &sack_opt, 300);
    let (v, out) = h.up(&ack, 130);
    assert_eq!(v, TX_UP);
    assert!(
        checksums_ok(&out),
        "incremental checksum over odd-offset SACK edges"
    );
    let (_, t) = tcp_of(&out);
    assert_eq!(t.ack_number(), S + 6);
    let o = t.options();
    assert_eq!(&o[3..7], &(S + 11).to_be_bytes());
    assert_eq!(&o[7..11], &(S + 21).to_be_bytes());
    assert_eq!(
        t.window_len(),
        300,
        "the server scales: the up window as is"
    );
}

#[test]
fn the_first_early_segment_is_kept_and_sent_with_the_handshake() {
    let mut h = H::new(on_cfg());
    let (c, _, key, srv) = proxied(&mut h, 40_000, 100);
    let get = up_seg(
        40_000,
        ACK | PSH,
        ISN + 1,
        c + 1,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let (v, _) = h.up(&get, 101);
    assert_eq!(v, Verdict::Consumed);
    // a second early segment (or a bare ACK) cannot be kept
    let more = up_seg(40_000, ACK | PSH, ISN + 28, c + 1, b"more");
    assert_eq!(h.up(&more, 102).0, Verdict::Drop(DropReason::SynproxyEarly));
    h.assert_drops(&[(DropReason::SynproxyEarly, 1)], 1);
    const S: u32 = 77;
    // (the kept segment goes up in the SYN-ACK's place)
    let out = down_as(&mut h, &from_server(srv, key, SYN | ACK, S), 110, TX_UP);
    let (p, t) = tcp_of(&out);
    assert_eq!((p.src_v4(), p.src_port), key);
    assert_eq!((p.dst_v4(), p.dst_port), srv);
    assert_eq!(&out[0..6], &mac_of(srv.0));
    assert_eq!(p.tcp_flags, ACK | PSH);
    assert_eq!((t.seq_number(), t.ack_number()), (ISN + 1, S + 1));
    assert_eq!(t.payload(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.w[0].counters.synproxy_stashed, 1);
    assert_eq!(h.w[0].synproxy_stash_free(), synproxy::STASH_SLOTS as u32);
    let f = h.w[0].flow_by_key(key.0, key.1).unwrap();
    assert_eq!(f.state, FlowState::Established);
    assert_eq!(f.up_pkts, 2, "the SYN and the kept segment");
}

/// A server that does not scale gets the subscriber's window in bytes in
/// the handshake's ACK (the ACK's 502 << 9, at most 65535).
#[test]
fn the_handshake_ack_to_a_server_without_window_scale_is_unscaled() {
    let mut h = H::new(on_cfg());
    let (_, _, key, srv) = proxied(&mut h, 40_000, 100);
    let out = down_as(&mut h, &from_server(srv, key, SYN | ACK, 9), 110, TX_UP);
    assert_eq!(tcp_of(&out).1.window_len(), 0xffff);
    // and a small server window reaches the subscriber as 1 (scale 7), not 0
    let small = with_tcp(from_server(srv, key, ACK, 10), &[], 100);
    let out = down_as(&mut h, &small, 111, TX_DOWN);
    assert_eq!(tcp_of(&out).1.window_len(), 1);
}

/// The server never answered the SYN (lost): a retransmission of the
/// subscriber a second later carries the cookie again and goes to the
/// server as the SYN once more; earlier ones are dropped.
#[test]
fn a_silent_server_gets_the_syn_again() {
    // (a SYN timeout past the re-send: the fixture's 1 s would end it)
    let mut h = H::new(GwConfig {
        timeouts: GwTimeouts {
            syn_ms: 20_000,
            ..TIMEOUTS
        },
        ..on_cfg()
    });
    let (c, syn, key, srv) = proxied(&mut h, 40_000, 100);
    let get = up_seg(40_000, ACK | PSH, ISN + 1, c + 1, b"GET /");
    assert_eq!(h.up(&get, 101).0, Verdict::Consumed);
    assert_eq!(h.up(&get, 600).0, Verdict::Drop(DropReason::SynproxyEarly));
    let (v, again) = h.up(&get, 1_200);
    assert_eq!(v, TX_UP);
    assert!(checksums_ok(&again));
    assert_eq!(again, syn, "the same SYN as the first");
    assert_eq!(h.w[0].counters.synproxy_resyn, 1);
    // a forged retransmission (no valid cookie) does not
    let forged = up_seg(40_000, ACK, ISN + 1, c + 99, b"");
    assert_eq!(
        h.up(&forged, 2_400).0,
        Verdict::Drop(DropReason::SynproxyEarly)
    );
    // the server answers: the kept segment goes up
    let out = down_as(&mut h, &from_server(srv, key, SYN | ACK, 5), 2_500, TX_UP);
    assert_eq!(tcp_of(&out).1.payload(), b"GET /");
}

/// A server still silent at the SYN timeout: the subscriber's next
/// segment (it believes the connection established) is answered by a RST
/// in its own sequence space, and the connection ends as by a RST.
#[test]
fn a_server_silent_until_the_syn_timeout_gets_the_subscriber_a_rst() {
    let mut h = H::new(GwConfig {
        timeouts: GwTimeouts {
            syn_ms: 20_000,
            ..TIMEOUTS
        },
        ..on_cfg()
    });
    let (c, syn, ..) = proxied(&mut h, 40_000, 100);
    let get = up_seg(40_000, ACK | PSH, ISN + 1, c + 1, b"GET /");
    assert_eq!(h.up(&get, 101).0, Verdict::Consumed);
    // retransmissions within the SYN timeout are the SYN again
    for at in [1_200, 3_300, 7_400, 15_500] {
        let (v, again) = h.up(&get, at);
        assert_eq!((v, &again), (TX_UP, &syn), "at {at} ms");
    }
    assert_eq!(h.w[0].counters.synproxy_resyn, 4);
    // 20 s after the connection opened (not after the last re-SYN)
    let (v, out) = h.up(&get, 100 + 20_000);
    assert_eq!(v, TX_DOWN);
    assert!(checksums_ok(&out));
    let (p, t) = tcp_of(&out);
    assert_eq!((p.src_v4(), p.src_port), (VIP_WAP, 80));
    assert_eq!((p.dst_v4(), p.dst_port), (SUB1, 40_000));
    assert_eq!(t.flags(), RST | ACK);
    assert_eq!((t.seq_number(), t.ack_number()), (c + 1, ISN + 1 + 5));
    assert_eq!(&out[0..6], &LB1, "back to the LB it came through");
    assert_eq!(h.w[0].counters.synproxy_server_silent, 1);
    assert_eq!(h.w[0].counters.closed_rst, 1);
    assert_eq!(h.w[0].half_open(), 0);
    assert_eq!(h.w[0].open_flows(), 0);
    assert_eq!(
        h.w[0].synproxy_stash_free(),
        synproxy::STASH_SLOTS as u32,
        "the kept segment given back"
    );
}

/// A SYN-ACK that does not acknowledge the SYN the GW sent (stale, or
/// forged on the tuple) is dropped and counted; the right one still
/// completes the handshake.
#[test]
fn a_servers_syn_ack_to_another_syn_is_dropped() {
    let mut h = H::new(on_cfg());
    let (c, _, key, srv) = proxied(&mut h, 40_000, 100);
    let stale = tcp((ROUTER, SRV_MAC), srv, key, SYN | ACK, 5, ISN + 7, b"");
    assert_eq!(
        h.down(&stale, 101).0,
        Verdict::Drop(DropReason::SynproxyBadSynack)
    );
    assert_eq!(
        h.w[0].flow_by_key(key.0, key.1).map(|f| f.state),
        Some(FlowState::SynSent),
        "still waiting for the server"
    );
    let out = down_as(&mut h, &from_server(srv, key, SYN | ACK, 5), 102, TX_UP);
    let (_, t) = tcp_of(&out);
    assert_eq!(
        (t.flags(), t.seq_number(), t.ack_number()),
        (ACK, ISN + 1, 6)
    );
    // from then on down segments are in the cookie's space
    let data = tcp((ROUTER, SRV_MAC), srv, key, ACK, 6, ISN + 1, b"hi");
    let out = down_as(&mut h, &data, 103, TX_DOWN);
    assert_eq!(tcp_of(&out).1.seq_number(), c + 1);
}

/// Only the subscriber's own segments (ACK of the cookie, no SYN) are kept
/// early or end a silent server's connection; anything else on the tuple
/// is `synproxy_early`.
#[test]
fn only_segments_acknowledging_the_cookie_are_kept_or_answered() {
    let mut h = H::new(GwConfig {
        timeouts: GwTimeouts {
            syn_ms: 20_000,
            ..TIMEOUTS
        },
        ..on_cfg()
    });
    let (c, ..) = proxied(&mut h, 40_000, 100);
    let early = Verdict::Drop(DropReason::SynproxyEarly);
    let forged = up_seg(40_000, ACK | PSH, ISN + 1, c + 9, b"GET /");
    let syn_data = up_seg(40_000, SYN, ISN, 0, b"GET /");
    assert_eq!(h.up(&forged, 101).0, early);
    assert_eq!(h.up(&syn_data, 102).0, early);
    assert_eq!(h.w[0].synproxy_stash_free(), synproxy::STASH_SLOTS as u32);
    // the subscriber's retransmissions are the SYN again (and keep the
    // connection from its idle end)
    let get = up_seg(40_000, ACK | PSH, ISN + 1, c + 1, b"GET /");
    assert_eq!(h.up(&get, 1_200).0, TX_UP);
    assert_eq!(h.up(&get, 15_500).0, TX_UP);
    // past the SYN timeout: a forged one is still dropped, the
    // connection stays; the subscriber's own gets the RST
    assert_eq!(h.up(&forged, 20_150).0, early);
    assert_eq!(h.w[0].counters.synproxy_server_silent, 0);
    assert_eq!(h.up(&get, 20_200).0, TX_DOWN);
    assert_eq!(h.w[0].counters.synproxy_server_silent, 1);
}

/// Data on the cookie ACK that cannot be kept (a frame over the slot's
/// 1536 bytes) is counted; the connection opens all the same.
#[test]
fn cookie_ack_data_that_cannot_be_kept_is_counted() {
    let mut h = H::new(on_cfg());
    let c = cookie_of(&mut h, 40_000, 100);
    let big = up_seg(40_000, ACK | PSH, ISN + 1, c + 1, &[7u8; 1600]);
    assert_eq!(h.up(&big, 101).0, TX_UP);
    assert_eq!(h.w[0].counters.synproxy_stash_miss, 1);
    assert_eq!(h.w[0].counters.syncookies_valid, 1);
}

/// A blind flood's ACK before the server's SYN-ACK does not end a
/// connection's half-open state (`auto` would never turn on).
#[test]
fn an_ack_before_the_servers_answer_leaves_the_connection_half_open() {
    let mut h = auto(100);
    assert_eq!(h.up(&syn_with_opts(1), 100).0, TX_UP);
    assert_eq!(h.up(&up_seg(1, ACK, ISN + 1, 777, b""), 101).0, TX_UP);
    assert_eq!(h.up(&up_seg(1, ACK, ISN + 1, 777, b""), 102).0, TX_UP);
    assert_eq!(h.w[0].half_open(), 1);
}

#[test]
fn invalid_and_old_cookies_are_refused() {
    let mut h = H::new(on_cfg());
    let c = cookie_of(&mut h, 40_000, 100);
    let ack = |a: u32| up_seg(40_000, ACK, ISN + 1, a, b"");
    // forged: any other acknowledgment; another subscriber port
    assert_eq!(
        h.up(&ack(c.wrapping_add(2)), 100).0,
        Verdict::Drop(DropReason::SyncookieInvalid)
    );
    let other = up_seg(40_001, ACK, ISN + 1, c + 1, b"");
    assert_eq!(
        h.up(&other, 100).0,
        Verdict::Drop(DropReason::SyncookieInvalid)
    );
    // two slots later: too old
    let slot = 1u64 << synproxy::SLOT_SHIFT;
    assert_eq!(
        h.up(&ack(c + 1), 2 * slot + 100).0,
        Verdict::Drop(DropReason::SyncookieInvalid)
    );
    h.assert_drops(&[(DropReason::SyncookieInvalid, 3)], 3);
    assert_eq!(h.w[0].keys_in_use(), 0);
    // one slot later: still good
    assert_eq!(h.up(&ack(c + 1), slot + 100).0, TX_UP);
    assert_eq!(h.w[0].counters.syncookies_valid, 1);
}

#[test]
fn cookie_options_round_trip_and_a_flipped_bit_fails() {
    let key = CookieKey::new([7, 9]);
    let t = Tuple {
        src: SUB1,
        dst: VIP_WAP,
        sport: 1,
        dport: 443,
    };
    for mss_idx in 0..8 {
        for wscale in (0..=14).chain([NO_WS]) {
            for sack in [false, true] {
                let o = SynOpts {
                    mss_idx,
                    wscale,
                    sack,
                };
                let c = key.cookie(&t, 12_345, 40, o);
                assert_eq!(key.check(&t, 12_345, c, 40), Some(o));
                assert_eq!(key.check(&t, 12_345, c, 41), Some(o));
                assert_eq!(key.check(&t, 12_345, c, 42), None);
                assert_eq!(key.check(&t, 12_346, c, 40), None);
                for b in 0..32 {
                    assert_eq!(key.check(&t, 12_345, c ^ (1 << b), 40), None, "bit {b}");
                }
            }
        }
    }
    // another key: another cookie
    let o = SynOpts {
        mss_idx: 3,
        wscale: 7,
        sack: true,
    };
    assert_ne!(
        key.cookie(&t, 1, 40, o),
        CookieKey::new([8, 9]).cookie(&t, 1, 40, o)
    );
}

#[test]
fn auto_proxies_from_the_half_open_threshold_on() {
    let mut h = auto(2);
    assert_eq!(h.up(&syn_with_opts(1), 100).0, TX_UP);
    assert_eq!(h.up(&syn_with_opts(2), 100).0, TX_UP);
    assert_eq!(h.w[0].half_open(), 2);
    // at the threshold: cookies
    assert_eq!(h.up(&syn_with_opts(3), 100).0, TX_DOWN);
    assert_eq!(h.w[0].counters.syncookies_sent, 1);
    // the server's answer does not count: the subscriber's ACK does
    let key = nat_of(&h.up(&syn_with_opts(1), 101).1);
    let srv = h.w[0].flow_by_key(key.0, key.1).unwrap().srv_ip;
    let synack = bare_syn_ack(ROUTER, (srv, 80), key);
    assert_eq!(h.down(&synack, 102).0, TX_DOWN);
    assert_eq!(h.w[0].half_open(), 2);
    assert_eq!(h.up(&up_seg(1, ACK, ISN + 1, 2, b""), 102).0, TX_UP);
    assert_eq!(h.w[0].half_open(), 1);
    assert_eq!(h.up(&syn_with_opts(4), 103).0, TX_UP);
    // idle expiry of the half-open ones brings it to 0
    h.expire(0, 100 + TIMEOUTS.syn_ms + 10);
    assert_eq!(h.w[0].half_open(), 0);
}

#[test]
fn auto_counts_half_open_connections_per_vip() {
    // a flood of SYNs to the WAP VIP turns the cookies on for it alone
    let mut h = auto(2);
    assert_eq!(h.up(&syn_with_opts(1), 100).0, TX_UP);
    assert_eq!(h.up(&syn_with_opts(2), 100).0, TX_UP);
    assert_eq!(h.up(&syn_with_opts(3), 100).0, TX_DOWN, "WAP at 2: cookies");
    let mail = |sp: u16| {
        with_tcp(
            tcp((LB1, ACC_MAC), (SUB1, sp), (VIP_MAIL, 25), SYN, ISN, 0, b""),
            &SYN_OPTS,
            1000,
        )
    };
    assert_eq!(h.up(&mail(10), 100).0, TX_UP, "mail has none half-open");
    assert_eq!(h.w[0].half_open(), 3);
    assert_eq!(h.up(&mail(11), 100).0, TX_UP);
    assert_eq!(h.up(&mail(12), 100).0, TX_DOWN, "mail at 2: cookies");
    assert_eq!(h.w[0].counters.syncookies_sent, 2);
    // the subscriber's ACK of a WAP connection: WAP below its threshold
    // again, mail still at it
    let key = nat_of(&h.up(&syn_with_opts(1), 101).1);
    let srv = h.w[0].flow_by_key(key.0, key.1).unwrap().srv_ip;
    assert_eq!(
        h.down(&bare_syn_ack(ROUTER, (srv, 80), key), 102).0,
        TX_DOWN
    );
    assert_eq!(h.up(&up_seg(1, ACK, ISN + 1, 2, b""), 102).0, TX_UP);
    assert_eq!(h.up(&syn_with_opts(4), 103).0, TX_UP);
    assert_eq!(h.up(&mail(13), 103).0, TX_DOWN);
    assert_eq!(h.w[0].counters.syncookies_sent, 3);
    // expired, the half-open ones count no more, under either VIP
    h.expire(0, 100 + TIMEOUTS.syn_ms + 10);
    assert_eq!(h.w[0].half_open(), 0);
    assert_eq!(h.up(&syn_with_opts(5), 10_000).0, TX_UP);
    assert_eq!(h.up(&mail(14), 10_000).0, TX_UP);
}

#[test]
fn refusals_keep_their_answers_with_the_proxy() {
    // not allowed: the RST of authorization, no cookie
    let mut h = H::new(on_cfg());
    let mail = with_tcp(
        tcp((LB1, ACC_MAC), (SUB2, 5), (VIP_MAIL, 25), SYN, ISN, 0, b""),
        &SYN_OPTS,
        1000,
    );
    let (v, out) = h.up(&mail, 100);
    assert_eq!(v, TX_DOWN);
    assert_eq!(tcp_of(&out).0.tcp_flags, RST | ACK);
    assert_eq!(h.w[0].counters.rst_unauthorized, 1);
    assert_eq!(h.w[0].counters.syncookies_sent, 0);
    // no session: dropped as before
    let none = with_tcp(
        tcp(
            (LB1, ACC_MAC),
            (SUB_NONE, 5),
            (VIP_WAP, 80),
            SYN,
            ISN,
            0,
            b"",
        ),
        &SYN_OPTS,
        1000,
    );
    assert_eq!(h.up(&none, 100).0, Verdict::Drop(DropReason::NoSession));
    // a non-VIP destination is not proxied
    assert_eq!(h.up(&bare_syn((SUB1, 7), (EXTERNAL, 80)), 100).0, TX_UP);

    // refused after the cookie (the subscriber limit, RST): the RST carries
    // the sequence number the subscriber's established side expects
    let mut h = H::new(GwConfig {
        max_conns_per_subscriber: 1,
        exhaustion_reply: ExhaustionReply::Rst,
        ..on_cfg()
    });
    proxied(&mut h, 1, 100);
    let c = cookie_of(&mut h, 2, 100);
    let (v, out) = h.up(&up_seg(2, ACK, ISN + 1, c + 1, b""), 100);
    assert_eq!(v, TX_DOWN);
    assert!(checksums_ok(&out));
    let (p, t) = tcp_of(&out);
    assert_eq!(p.tcp_flags, RST | ACK);
    assert_eq!((t.seq_number(), t.ack_number()), (c + 1, ISN + 1));
    h.assert_drops(&[(DropReason::SubscriberConnLimit, 1)], 1);
}

#[test]
fn a_servers_rst_to_the_proxied_syn_reaches_the_subscriber_in_its_space() {
    let mut h = H::new(on_cfg());
    let (c, _, key, srv) = proxied(&mut h, 9, 100);
    let out = down_as(&mut h, &from_server(srv, key, RST | ACK, 0), 101, TX_DOWN);
    let (_, t) = tcp_of(&out);
    assert_eq!((t.seq_number(), t.ack_number()), (c + 1, ISN + 1));
    assert_eq!(h.w[0].counters.closed_rst, 1);
    assert_eq!(h.w[0].half_open(), 0);
}

#[test]
fn a_syn_flood_takes_no_entry_and_a_real_client_still_connects() {
    let mut h = H::new(GwConfig {
        max_flows_per_worker: 64,
        require_session: false,
        ..on_cfg()
    });
    // 10 000 SYNs from spoofed sources (sessions not required): each gets
    // its cookie, none an entry
    for i in 0..10_000u32 {
        let src = [10, 1, (i >> 8) as u8, i as u8];
        let syn = tcp(
            (LB1, ACC_MAC),
            (src, 1024 + (i % 50_000) as u16),
            (VIP_WAP, 80),
            SYN,
            i,
            0,
            b"",
        );
        assert_eq!(h.up(&syn, 100).0, TX_DOWN);
    }
    assert_eq!(h.w[0].counters.syncookies_sent, 10_000);
    assert_eq!(h.w[0].keys_in_use(), 0);
    let (_, _, key, _) = proxied(&mut h, 40_000, 200);
    assert_eq!(h.w[0].keys_in_use(), 1);
    assert!(h.w[0].flow_by_key(key.0, key.1).is_some());

    // without the proxy the same flood fills the table and the client is
    // refused
    let mut h = H::new(GwConfig {
        max_flows_per_worker: 64,
        require_session: false,
        syn_proxy: SynProxy::Off,
        ..on_cfg()
    });
    for i in 0..100u32 {
        let src = [10, 1, 0, i as u8];
        h.up(
            &tcp((LB1, ACC_MAC), (src, 1024), (VIP_WAP, 80), SYN, i, 0, b""),
            100,
        );
    }
    assert_eq!(
        h.up(&syn_with_opts(40_000), 200).0,
        Verdict::Drop(DropReason::FlowTableFull)
    );
}

#[test]
fn an_expired_half_open_proxied_connection_gives_its_kept_segment_back() {
    let mut h = H::new(on_cfg());
    let (c, ..) = proxied(&mut h, 40_000, 100);
    let get = up_seg(40_000, ACK | PSH, ISN + 1, c + 1, b"GET /");
    assert_eq!(h.up(&get, 101).0, Verdict::Consumed);
    assert_eq!(
        h.w[0].synproxy_stash_free(),
        synproxy::STASH_SLOTS as u32 - 1
    );
    assert_eq!(h.expire(0, 100 + TIMEOUTS.syn_ms + 10), 1);
    assert_eq!(h.w[0].synproxy_stash_free(), synproxy::STASH_SLOTS as u32);
    assert_eq!(h.w[0].half_open(), 0);
}

proptest! {
    /// Any delta, window and SACK layout: the translated segment's checksum
    /// is right, and down then back up is the identity on the numbers.
    #[test]
    fn translation_keeps_checksums(
        delta: u32, seq: u32, ack: u32, win: u16, nops in 0usize..3, edges in 1usize..4,
        data in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut o = vec![1u8; nops];
        o.extend_from_slice(&[5, 2 + 8 * edges as u8]);
        for k in 0..edges * 2 {
            o.extend_from_slice(&(ack.wrapping_add(k as u32 * 100)).to_be_bytes());
        }
        while o.len() % 4 != 0 {
            o.push(0);
        }
        let f = with_tcp(
            tcp((LB1, ACC_MAC), (SUB1, 1), (WAP1, 80), ACK, seq, ack, &data),
            &o,
            win,
        )
        .build();
        let p = crate::wire::parse(&f).unwrap();
        let mut g = f.clone();
        synproxy::translate_up(&mut g[p.l4_off as usize..p.ip_end()], delta, 0);
        prop_assert!(checksums_ok(&g));
        let t = TcpPacket::new_unchecked(&g[p.l4_off as usize..p.ip_end()]);
        prop_assert_eq!(t.ack_number(), ack.wrapping_sub(delta));
        // every SACK edge moved by the same delta
        let opts = t.options();
        for k in 0..edges * 2 {
            let at = nops + 2 + 4 * k;
            let e = u32::from_be_bytes([opts[at], opts[at + 1], opts[at + 2], opts[at + 3]]);
            prop_assert_eq!(e, ack.wrapping_add(k as u32 * 100).wrapping_sub(delta));
        }
        synproxy::translate_down(&mut g[p.l4_off as usize..p.ip_end()], delta, Some((9, 7)));
        prop_assert!(checksums_ok(&g));
        let t = TcpPacket::new_unchecked(&g[p.l4_off as usize..p.ip_end()]);
        prop_assert_eq!(t.seq_number(), seq.wrapping_add(delta));
        let want = ((win as u32) << 2).min(0xffff) as u16;
        prop_assert_eq!(t.window_len(), want);
    }
}
