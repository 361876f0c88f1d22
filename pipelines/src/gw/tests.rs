//! GW stage tests: fixtures (input frame → verdict → output frame, byte by
//! byte, checksums recomputed in full), property tests, fake-clock timers,
//! handoff.

use super::tables::MemberSide;
use super::*;
use crate::wire::build::{checksums_ok, with_room, FrameSpec, FILL, L4};
use crate::wire::checksum::reference::rfc1071;
use crate::wire::icmp::v4::{ECHO_REPLY, ECHO_REQUEST};
use crate::wire::tcp::flags::{ACK, FIN, PSH, RST, SYN};
use proptest::prelude::*;

// ---------------------------------------------------------------- fixture --

const ACC_MAC: [u8; 6] = [0x02, 0xac, 0, 0, 0, 0x01];
const SRV_MAC: [u8; 6] = [0x02, 0x5e, 0, 0, 0, 0x02];
const LB1: [u8; 6] = [0x02, 0x1b, 0, 0, 0, 0x01];
const LB2: [u8; 6] = [0x02, 0x1b, 0, 0, 0, 0x02];
const ROUTER: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x01];

const POOL0: [u8; 4] = [192, 0, 2, 10];
const POOL1: [u8; 4] = [192, 0, 2, 11];
const VIP_WAP: [u8; 4] = [10, 33, 0, 1];
const VIP_MAIL: [u8; 4] = [10, 33, 0, 2];
const WAP1: [u8; 4] = [10, 33, 1, 10];
const WAP2: [u8; 4] = [10, 33, 1, 11];
const MAIL1: [u8; 4] = [10, 33, 1, 20];
const MAIL2: [u8; 4] = [10, 33, 1, 21];
const EXTERNAL: [u8; 4] = [198, 51, 100, 7];

const SUB1: [u8; 4] = [10, 0, 0, 1]; // wap + mail
const SUB2: [u8; 4] = [10, 0, 0, 2]; // wap only
const SUB_DORMANT: [u8; 4] = [10, 0, 0, 3];
const SUB_NONE: [u8; 4] = [10, 0, 0, 9];

const SVC_WAP: ServiceId = ServiceId(1);
const SVC_MAIL: ServiceId = ServiceId(2);

fn mac_of(ip: [u8; 4]) -> [u8; 6] {
    [0x02, 0x5e, ip[0], ip[1], ip[2], ip[3]]
}

const TIMEOUTS: GwTimeouts = GwTimeouts {
    syn_ms: 1_000,
    established_ms: 10_000,
    closing_ms: 2_000,
    udp_ms: 3_000,
    icmp_ms: 4_000,
    close_hold_ms: 5_000,
    short_hold_ms: 500,
};

/// 2 pool addresses, ports 20000..=20099 minus 20090..=20099 reserved,
/// 2 workers: worker 0 owns 20000..=20044, worker 1 20045..=20089.
fn cfg() -> GwConfig {
    GwConfig {
        access_port: 0,
        server_port: 1,
        access_mac: ACC_MAC,
        server_mac: SRV_MAC,
        pool: vec![POOL0, POOL1],
        key_port_first: 20_000,
        key_port_last: 20_099,
        reserved_ports: Some((20_090, 20_099)),
        workers: 2,
        timeouts: TIMEOUTS,
        max_flows_per_worker: 1 << 12,
        preserve_port: true,
        attr_slots: 0,
        max_servers: 64,
        require_session: true,
        server_next_hop_mac: Some(ROUTER),
        hash_seed: 0x1234_5678_9abc_def0,
        // pings to the VIPs go to their members here (the echo flows under
        // test); `icmp::vip_echo_*` turn the answer on
        answer_ping: false,
        // no clamps, window cap, RSS steering, NAT64 or IPv6 pool
        ..GwConfig::default()
    }
}

fn member(name: &str, ip: [u8; 4], port: Option<u16>) -> Member {
    Member {
        name: name.into(),
        ip,
        port,
        weight: 1,
        priority: 0,
        up: true,
    }
}

fn groups() -> Vec<Group> {
    vec![
        Group {
            name: "wap".into(),
            service: SVC_WAP,
            policy: Policy::RoundRobin,
            members: vec![member("wap1", WAP1, None), member("wap2", WAP2, None)],
        },
        Group {
            name: "mail".into(),
            service: SVC_MAIL,
            policy: Policy::RoundRobin,
            members: vec![
                member("mail1", MAIL1, Some(2525)),
                member("mail2", MAIL2, Some(2525)),
            ],
        },
    ]
}

fn services(groups: Vec<Group>) -> Services {
    Services::new(
        groups,
        vec![
            Vip {
                ip: VIP_WAP,
                port: None,
                group: "wap".into(),
            },
            Vip {
                ip: VIP_MAIL,
                port: None,
                group: "mail".into(),
            },
        ],
        None,
    )
    .unwrap()
}

fn tables() -> GwTables {
    let sessions = Sessions::new([
        (
            SUB1,
            SubscriberAuth {
                device_id: 1001,
                active: true,
                allowed: SVC_WAP.bit() | SVC_MAIL.bit(),
            },
        ),
        (
            SUB2,
            SubscriberAuth {
                device_id: 1002,
                active: true,
                allowed: SVC_WAP.bit(),
            },
        ),
        (
            SUB_DORMANT,
            SubscriberAuth {
                device_id: 1003,
                active: false,
                allowed: u64::MAX,
            },
        ),
    ]);
    let sessions = sessions.with_v6(nat64::sessions6());
    let neighbours = Neighbours::new([WAP1, WAP2, MAIL1, MAIL2].map(|ip| (ip, mac_of(ip))));
    GwTables::new(services(groups()), sessions, neighbours)
}

/// A sink that refuses after `cap` records.
struct Bounded {
    v: Vec<AcctRecord>,
    cap: usize,
}
impl AcctSink for Bounded {
    fn push(&mut self, r: &AcctRecord) -> bool {
        if self.v.len() >= self.cap {
            return false;
        }
        self.v.push(*r);
        true
    }
}

struct H {
    t: GwTables,
    w: Vec<GwWorker>,
    acct: Vec<AcctRecord>,
    c: WorkerCounters,
}

impl H {
    fn new(cfg: GwConfig) -> H {
        let w = (0..cfg.workers)
            .map(|i| GwWorker::new(&cfg, i).unwrap())
            .collect();
        H {
            t: tables(),
            w,
            acct: Vec::new(),
            c: WorkerCounters::default(),
        }
    }
    fn std() -> H {
        H::new(cfg())
    }
    /// Run `frame` through worker `wi`; the output frame. Checks that no
    /// byte past the frame (in or out) was touched, except the RST's
    /// zero padding up to 60 bytes.
    fn run_on(&mut self, wi: usize, frame: &[u8], port: u16, now: u64) -> (Verdict, Vec<u8>) {
        // 64 bytes of headroom before the frame, as in an mbuf.
        const HEAD: usize = 64;
        let mut buf = vec![FILL; HEAD];
        buf.extend(with_room(frame, frame.len() + 64));
        let mut pkt = Pkt::with_headroom(&mut buf, HEAD, frame.len(), port);
        let v = self.w[wi].process(&self.t, &mut pkt, now, &mut self.acct, &mut self.c);
        let (off, len) = (pkt.headroom(), pkt.len());
        let end = (off + len).max(HEAD + frame.len());
        assert!(
            buf[..off.min(HEAD)].iter().all(|&b| b == FILL),
            "bytes before the frame were written"
        );
        assert!(
            buf[end..].iter().all(|&b| b == FILL),
            "bytes past the frame were written"
        );
        (v, buf[off..off + len].to_vec())
    }
    fn run(&mut self, frame: &[u8], port: u16, now: u64) -> (Verdict, Vec<u8>) {
        self.run_on(0, frame, port, now)
    }
    /// Run `frames` as one burst through worker 0; their verdicts and
    /// output frames.
    fn burst(&mut self, frames: &[Vec<u8>], port: u16, now: u64) -> Vec<(Verdict, Vec<u8>)> {
        let mut bufs: Vec<Vec<u8>> = frames.iter().map(|f| with_room(f, f.len() + 64)).collect();
        let mut pkts: Vec<Pkt<'_>> = bufs
            .iter_mut()
            .zip(frames)
            .map(|(b, f)| Pkt::new(b, f.len(), port))
            .collect();
        let mut out = vec![Verdict::Drop(DropReason::NoRoute); frames.len()];
        let mut m = Meter::new(NoClock);
        let sel = (1u64 << frames.len()) - 1;
        self.w[0].process_burst(
            &self.t,
            &mut pkts,
            sel,
            &mut out,
            now,
            &mut self.acct,
            &mut self.c,
            &mut m,
            &NoPrefetch,
        );
        let lens: Vec<usize> = pkts.iter().map(|p| p.len()).collect();
        drop(pkts);
        out.into_iter()
            .zip(bufs.iter().zip(lens))
            .map(|(v, (b, n))| (v, b[..n].to_vec()))
            .collect()
    }
    /// Run `spec` in from the access side on worker 0.
    fn up(&mut self, spec: &FrameSpec, now: u64) -> (Verdict, Vec<u8>) {
        self.run(&spec.build(), UP, now)
    }
    /// Run `spec` in from the server side on worker 0.
    fn down(&mut self, spec: &FrameSpec, now: u64) -> (Verdict, Vec<u8>) {
        self.run(&spec.build(), DOWN, now)
    }
    fn drops(&self, r: DropReason) -> u64 {
        self.c.drops[r as usize]
    }
    /// Every drop counted once under its reason: each of `want`'s counts,
    /// and `total` drops in all.
    #[track_caller]
    fn assert_drops(&self, want: &[(DropReason, u64)], total: u64) {
        for &(r, n) in want {
            assert_eq!(self.drops(r), n, "{r:?}");
        }
        assert_eq!(self.c.total_drops(), total);
    }
    fn expire(&mut self, wi: usize, now: u64) -> usize {
        self.w[wi].expire(now, 1 << 20, &mut self.acct, &mut self.c)
    }
}

fn tcp(
    macs: ([u8; 6], [u8; 6]),
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> FrameSpec {
    FrameSpec {
        src_mac: macs.0,
        dst_mac: macs.1,
        src_ip: src.0,
        dst_ip: dst.0,
        l4: L4::Tcp {
            src_port: src.1,
            dst_port: dst.1,
            seq,
            ack,
            flags,
            window: 29_200,
            options: Vec::new(),
        },
        payload: payload.to_vec(),
        ..FrameSpec::default()
    }
}

/// A bare SYN (seq 1, no payload) from the access side.
fn bare_syn(src: ([u8; 4], u16), dst: ([u8; 4], u16)) -> FrameSpec {
    tcp((LB1, ACC_MAC), src, dst, SYN, 1, 0, b"")
}

/// A bare SYN-ACK (seq 1, ack 2, no payload) from `mac` on the server side.
fn bare_syn_ack(mac: [u8; 6], src: ([u8; 4], u16), dst: ([u8; 4], u16)) -> FrameSpec {
    tcp((mac, SRV_MAC), src, dst, SYN | ACK, 1, 2, b"")
}

fn udp(
    macs: ([u8; 6], [u8; 6]),
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    payload: &[u8],
) -> FrameSpec {
    FrameSpec {
        src_mac: macs.0,
        dst_mac: macs.1,
        src_ip: src.0,
        dst_ip: dst.0,
        l4: L4::Udp {
            src_port: src.1,
            dst_port: dst.1,
            checksum: true,
        },
        payload: payload.to_vec(),
        ..FrameSpec::default()
    }
}

fn ping(
    macs: ([u8; 6], [u8; 6]),
    src: [u8; 4],
    dst: [u8; 4],
    ty: u8,
    ident: u16,
    seq: u16,
) -> FrameSpec {
    FrameSpec {
        src_mac: macs.0,
        dst_mac: macs.1,
        src_ip: src,
        dst_ip: dst,
        l4: L4::Icmp {
            ty,
            code: 0,
            ident,
            seq,
        },
        payload: b"\x11\x22\x33\x44pgw-ping".to_vec(),
        ..FrameSpec::default()
    }
}

/// `spec` as the GW must send it: new MACs, addresses, ports, TTL − 1.
fn natted(
    spec: &FrameSpec,
    macs: ([u8; 6], [u8; 6]),
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
) -> Vec<u8> {
    let mut s = spec.clone();
    (s.src_mac, s.dst_mac) = macs;
    (s.src_ip, s.dst_ip) = (src.0, dst.0);
    s.ttl -= 1;
    set_ports(&mut s.l4, src.1, dst.1, |ty, ident| {
        *ident = if *ty == ECHO_REQUEST { src.1 } else { dst.1 }
    });
    s.build()
}

/// Set the TCP/UDP ports of `l4` to `src` and `dst`; an ICMP echo's type
/// and identifier are `echo`'s to set.
fn set_ports(l4: &mut L4, src: u16, dst: u16, echo: impl FnOnce(&mut u8, &mut u16)) {
    match l4 {
        L4::Tcp {
            src_port, dst_port, ..
        }
        | L4::Udp {
            src_port, dst_port, ..
        } => (*src_port, *dst_port) = (src, dst),
        L4::Icmp { ty, ident, .. } => echo(ty, ident),
        L4::Raw { .. } => unreachable!(),
    }
}

fn v6(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

/// `spec` as IPv6 from `src` to `dst`.
fn as6(spec: FrameSpec, src: [u8; 16], dst: [u8; 16]) -> FrameSpec {
    FrameSpec {
        ip6: Some(crate::wire::build::Ip6Spec {
            src,
            dst,
            fragment: false,
        }),
        ..spec
    }
}

fn tcp6(
    macs: ([u8; 6], [u8; 6]),
    src: ([u8; 16], u16),
    dst: ([u8; 16], u16),
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> FrameSpec {
    let s = tcp(
        macs,
        ([0; 4], src.1),
        ([0; 4], dst.1),
        flags,
        seq,
        ack,
        payload,
    );
    as6(s, src.0, dst.0)
}

fn udp6(
    macs: ([u8; 6], [u8; 6]),
    src: ([u8; 16], u16),
    dst: ([u8; 16], u16),
    payload: &[u8],
) -> FrameSpec {
    as6(
        udp(macs, ([0; 4], src.1), ([0; 4], dst.1), payload),
        src.0,
        dst.0,
    )
}

/// The IPv4 SYN 192.0.2.10:20000 → wap1 10.33.1.10:80 (seq 0x11223344,
/// MSS 1460, TTL 63) the up fixtures expect, with IPv4 Identification and
/// flags `id_flags`; checksums by an independent RFC 1071 sum.
fn want_syn_to_wap1(id_flags: [u8; 4]) -> Vec<u8> {
    #[rustfmt::skip]
    let mut want: Vec<u8> = vec![
        // Ethernet: wap1's MAC <- our server-side MAC, IPv4
        0x02, 0x5e, 10, 33, 1, 10,   0x02, 0x5e, 0, 0, 0, 0x02,   0x08, 0x00,
        // IPv4: 20 + 24 bytes, id and flags, TTL 63, TCP, csum, 192.0.2.10 -> 10.33.1.10
        0x45, 0x00, 0x00, 44, id_flags[0], id_flags[1], id_flags[2], id_flags[3], 63, 6, 0, 0,
        192, 0, 2, 10,   10, 33, 1, 10,
        // TCP: 20000 -> 80, seq, ack 0, doff 6, SYN, window 29200, csum, urg 0
        0x4e, 0x20, 0x00, 80,   0x11, 0x22, 0x33, 0x44,   0, 0, 0, 0,
        0x60, SYN, 0x72, 0x10,   0, 0,   0, 0,
        2, 4, 0x05, 0xb4,
    ];
    let ipc = rfc1071(&[&want[14..34]]);
    want[24..26].copy_from_slice(&ipc.to_be_bytes());
    let tcpc = rfc1071(&[&POOL0, &WAP1, &[0, 6, 0, 24], &want[34..58]]);
    want[50..52].copy_from_slice(&tcpc.to_be_bytes());
    want
}

/// A round-trip property's server answer (`proto` 0: SYN-ACK, 1: UDP,
/// else an echo reply) from `srv` to the NAT key `nat`, carrying `reply`.
fn server_reply(proto: u8, srv: ([u8; 4], u16), nat: ([u8; 4], u16), reply: &[u8]) -> FrameSpec {
    let rmacs = (ROUTER, SRV_MAC);
    match proto {
        0 => tcp(rmacs, srv, nat, SYN | ACK, 5, 78, reply),
        1 => udp(rmacs, srv, nat, reply),
        _ => FrameSpec {
            payload: reply.to_vec(),
            ..ping(rmacs, srv.0, nat.0, ECHO_REPLY, nat.1, 3)
        },
    }
}

const UP: u16 = 0;
const DOWN: u16 = 1;
const TX_UP: Verdict = Verdict::Tx { port: 1 };
const TX_DOWN: Verdict = Verdict::Tx { port: 0 };

// --------------------------------------------------------------- fixtures --

#[test]
fn syn_to_vip_literal_bytes() {
    let mut h = H::std();
    // SYN 10.0.0.1:40000 -> 10.33.0.1:80, seq 0x11223344, MSS option.
    let mut spec = tcp(
        (LB1, ACC_MAC),
        (SUB1, 40_000),
        (VIP_WAP, 80),
        SYN,
        0x1122_3344,
        0,
        b"",
    );
    if let L4::Tcp { options, .. } = &mut spec.l4 {
        *options = MSS_1460.to_vec();
    }
    let (v, out) = h.up(&spec, 100);
    assert_eq!(v, TX_UP);
    // id 0x1234, DF
    assert_eq!(out, want_syn_to_wap1([0x12, 0x34, 0x40, 0x00]));
    assert!(checksums_ok(&out));
    assert_eq!(h.w[0].counters.new_flows, 1);
}

#[test]
fn tcp_connection_fixture_table() {
    // One connection through its life: (frame in, port, verdict, frame out).
    let mut h = H::std();
    let sub = (SUB1, 40_000);
    let vip = (VIP_WAP, 80);
    let key = (POOL0, 20_000);
    let srv = (WAP1, 80);
    let up_macs = (SRV_MAC, mac_of(WAP1));
    let down_macs = (ACC_MAC, LB1);
    let get = b"GET /index.html HTTP/1.1\r\nHost: wap.example.net\r\nAccept: */*\r\n\r\n";
    let body = [0x5au8; 300];
    let rows: Vec<(FrameSpec, u16, Verdict, Vec<u8>)> = {
        let up = |f, seq, ack, p: &[u8]| tcp((LB1, ACC_MAC), sub, vip, f, seq, ack, p);
        let down = |f, seq, ack, p: &[u8]| tcp((mac_of(WAP1), SRV_MAC), srv, key, f, seq, ack, p);
        let syn = up(SYN, 1000, 0, b"");
        let syn_ack = down(SYN | ACK, 5000, 1001, b"");
        let ack = up(ACK, 1001, 5001, b"");
        let data = up(ACK | PSH, 1001, 5001, get);
        let resp = down(ACK | PSH, 5001, 1001 + get.len() as u32, &body);
        let fin = up(FIN | ACK, 1001 + get.len() as u32, 5301, b"");
        let fin_ack = down(FIN | ACK, 5301, 1002 + get.len() as u32, b"");
        let last = up(ACK, 1002 + get.len() as u32, 5302, b"");
        vec![
            (syn.clone(), UP, TX_UP, natted(&syn, up_macs, key, srv)),
            (
                syn_ack.clone(),
                DOWN,
                TX_DOWN,
                natted(&syn_ack, down_macs, vip, sub),
            ),
            (ack.clone(), UP, TX_UP, natted(&ack, up_macs, key, srv)),
            (data.clone(), UP, TX_UP, natted(&data, up_macs, key, srv)),
            (
                resp.clone(),
                DOWN,
                TX_DOWN,
                natted(&resp, down_macs, vip, sub),
            ),
            (fin.clone(), UP, TX_UP, natted(&fin, up_macs, key, srv)),
            (
                fin_ack.clone(),
                DOWN,
                TX_DOWN,
                natted(&fin_ack, down_macs, vip, sub),
            ),
            // after the close: the last ACK is still translated (hold)
            (last.clone(), UP, TX_UP, natted(&last, up_macs, key, srv)),
        ]
    };
    for (i, (inp, port, verdict, want)) in rows.iter().enumerate() {
        let (v, out) = h.run(&inp.build(), *port, 10 + i as u64);
        assert_eq!(v, *verdict, "row {i}");
        assert_eq!(out, *want, "row {i}");
        assert!(checksums_ok(&out), "row {i}");
    }
    // exactly one record, with exact counts (IP total lengths)
    assert_eq!(h.acct.len(), 1);
    let r = h.acct[0];
    let (l_get, l_body) = (40 + get.len() as u64, 40 + body.len() as u64);
    assert_eq!((r.up_pkts, r.up_bytes), (4, 40 + 40 + l_get + 40));
    assert_eq!((r.down_pkts, r.down_bytes), (3, 40 + l_body + 40));
    assert_eq!((r.start_ms, r.end_ms), (10, 16));
    assert_eq!(r.close, CloseReason::Fin);
    assert_eq!((r.subscriber_ip, r.subscriber_port), sub);
    assert_eq!((r.rep_ip, r.rep_port), vip);
    assert_eq!((r.nat_ip, r.nat_port), key);
    assert_eq!((r.server_ip, r.server_port), srv);
    assert_eq!(
        (r.device_id, r.service, r.group, r.proto),
        (1001, Some(SVC_WAP), Some(0), 6)
    );
    assert_eq!(
        (r.attr.kind, r.attr.as_str()),
        (AttrKind::HttpHost, "wap.example.net")
    );
    let c = &h.w[0].counters;
    assert_eq!(
        (c.new_flows, c.closed_fin, c.late_pkts, c.acct_records),
        (1, 1, 1, 1)
    );
    assert_eq!(h.c.total_drops(), 0);
    // a late retransmitted FIN from the server is translated too
    let (v, _) = h.down(
        &tcp((mac_of(WAP1), SRV_MAC), srv, key, FIN | ACK, 5301, 0, b""),
        20,
    );
    assert_eq!(v, TX_DOWN);
    // nothing more is recorded, not even after the hold
    h.expire(0, 100_000);
    assert_eq!(h.acct.len(), 1);
    assert_eq!(h.w[0].keys_in_use(), 0);
    // and now the flow is gone
    let (v, _) = h.up(&tcp((LB1, ACC_MAC), sub, vip, ACK, 1, 1, b"x"), 100_001);
    assert_eq!(v, Verdict::Drop(DropReason::NoFlow));
}

#[test]
fn rst_from_server_tears_down_and_tls_sni_is_recorded() {
    let mut h = H::std();
    let sub = (SUB1, 40_001);
    let vip = (VIP_WAP, 443);
    let ch = crate::gw::acct::tests::client_hello(b"secure.wap.example");
    h.up(&tcp((LB1, ACC_MAC), sub, vip, SYN, 7, 0, b""), 0);
    let (v, _) = h.down(
        &tcp(
            (mac_of(WAP1), SRV_MAC),
            (WAP1, 443),
            (POOL0, 20_000),
            SYN | ACK,
            9,
            8,
            b"",
        ),
        1,
    );
    assert_eq!(v, TX_DOWN);
    h.up(&tcp((LB1, ACC_MAC), sub, vip, ACK | PSH, 8, 10, &ch), 2);
    let rst = tcp(
        (mac_of(WAP1), SRV_MAC),
        (WAP1, 443),
        (POOL0, 20_000),
        RST | ACK,
        10,
        8,
        b"",
    );
    let (v, out) = h.down(&rst, 3);
    assert_eq!(v, TX_DOWN);
    assert_eq!(out, natted(&rst, (ACC_MAC, LB1), vip, sub));
    assert_eq!(h.acct.len(), 1);
    assert_eq!(h.acct[0].close, CloseReason::Rst);
    assert_eq!(
        (h.acct[0].attr.kind, h.acct[0].attr.as_str()),
        (AttrKind::TlsSni, "secure.wap.example")
    );
    assert_eq!(h.w[0].counters.closed_rst, 1);
    // a RST from the subscriber closes the same way
    let sub2 = (SUB1, 40_002);
    h.up(&tcp((LB1, ACC_MAC), sub2, vip, SYN, 7, 0, b""), 4);
    let (v, _) = h.up(&tcp((LB1, ACC_MAC), sub2, vip, RST, 8, 0, b""), 5);
    assert_eq!(v, TX_UP);
    assert_eq!(h.acct.len(), 2);
    assert_eq!(
        (h.acct[1].close, h.acct[1].up_pkts, h.acct[1].down_pkts),
        (CloseReason::Rst, 2, 0)
    );
}

#[test]
fn non_vip_destination_is_translated_without_balancing() {
    let mut h = H::std();
    let syn = bare_syn((SUB2, 50_000), (EXTERNAL, 443));
    let (v, out) = h.up(&syn, 0);
    assert_eq!(v, TX_UP);
    // no neighbour entry for the destination: the router's MAC
    assert_eq!(
        out,
        natted(&syn, (SRV_MAC, ROUTER), (POOL0, 20_000), (EXTERNAL, 443))
    );
    let reply = bare_syn_ack(ROUTER, (EXTERNAL, 443), (POOL0, 20_000));
    let (v, out) = h.down(&reply, 1);
    assert_eq!(v, TX_DOWN);
    assert_eq!(
        out,
        natted(&reply, (ACC_MAC, LB1), (EXTERNAL, 443), (SUB2, 50_000))
    );
    let f = h.w[0].flow_by_key(POOL0, 20_000).unwrap();
    assert_eq!((f.group, f.service), (entry::NO_GROUP, entry::NO_SERVICE));
}

#[test]
fn external_service_applies_to_non_vip_destinations() {
    let mut h = H::std();
    let s = Services::new(groups(), vec![], Some(ServiceId(7))).unwrap();
    h.t = h.t.with_services(s);
    let (v, out) = h.up(&bare_syn((SUB2, 50_000), (EXTERNAL, 80)), 0);
    assert_eq!(v, TX_DOWN, "RST back on the access port");
    assert_eq!(out[47] & RST, RST);
    let mut sess = SubscriberAuth {
        device_id: 1,
        active: true,
        allowed: ServiceId(7).bit(),
    };
    h.t = h.t.with_sessions(Sessions::new([(SUB2, sess)]));
    let (v, _) = h.up(&bare_syn((SUB2, 50_001), (EXTERNAL, 80)), 0);
    assert_eq!(v, TX_UP);
    sess.allowed = 0;
    h.t = h.t.with_sessions(Sessions::new([(SUB2, sess)]));
    let (v, _) = h.up(&udp((LB1, ACC_MAC), (SUB2, 5353), (EXTERNAL, 53), b"q"), 0);
    assert_eq!(v, Verdict::Drop(DropReason::Unauthorized));
}

#[test]
fn service_switch_same_subscriber_other_vip_gets_other_group() {
    let mut h = H::std();
    let a = bare_syn((SUB1, 41_000), (VIP_WAP, 80));
    let b = bare_syn((SUB1, 41_001), (VIP_MAIL, 25));
    let (va, oa) = h.up(&a, 0);
    let (vb, ob) = h.up(&b, 1);
    assert_eq!((va, vb), (TX_UP, TX_UP));
    assert_eq!(
        oa,
        natted(&a, (SRV_MAC, mac_of(WAP1)), (POOL0, 20_000), (WAP1, 80))
    );
    // the same subscriber keeps its pool address (paired pooling), the
    // rotation gives the next port; mail members listen on 2525
    assert_eq!(
        ob,
        natted(&b, (SRV_MAC, mac_of(MAIL1)), (POOL0, 20_001), (MAIL1, 2525))
    );
    // the mail reply comes back from the mail VIP, port 25
    let reply = bare_syn_ack(mac_of(MAIL1), (MAIL1, 2525), (POOL0, 20_001));
    let (v, out) = h.down(&reply, 2);
    assert_eq!(v, TX_DOWN);
    assert_eq!(
        out,
        natted(&reply, (ACC_MAC, LB1), (VIP_MAIL, 25), (SUB1, 41_001))
    );
    let fa = h.w[0].flow_by_key(POOL0, 20_000).unwrap();
    let fb = h.w[0].flow_by_key(POOL0, 20_001).unwrap();
    assert_eq!((fa.group, fa.service), (0, SVC_WAP.0));
    assert_eq!((fb.group, fb.service), (1, SVC_MAIL.0));
}

#[test]
fn unauthorized_syn_is_answered_with_exact_rst() {
    let mut h = H::std();
    // SUB2 may not use mail. SYN with IP options, TCP options, 5 bytes of
    // data (TFO-like) and a VLAN tag: the RST drops options and data.
    let mut syn = tcp(
        (LB1, ACC_MAC),
        (SUB2, 40_000),
        (VIP_MAIL, 25),
        SYN,
        0xfffffffe,
        0,
        b"early",
    );
    syn.vlan = Some(0x0064);
    syn.ip_options = vec![1, 1, 1, 1];
    if let L4::Tcp { options, .. } = &mut syn.l4 {
        *options = vec![2, 4, 0x05, 0xb4, 1, 3, 3, 7];
    }
    let (v, out) = h.up(&syn, 0);
    assert_eq!(v, Verdict::Tx { port: UP });
    let want_spec = FrameSpec {
        src_mac: ACC_MAC,
        dst_mac: LB1,
        vlan: Some(0x0064),
        src_ip: VIP_MAIL,
        dst_ip: SUB2,
        ttl: 64,
        ident: 0,
        dont_frag: true,
        l4: L4::Tcp {
            src_port: 25,
            dst_port: 40_000,
            seq: 0,
            ack: 0xfffffffe_u32.wrapping_add(1 + 5),
            flags: RST | ACK,
            window: 0,
            options: vec![],
        },
        payload: vec![],
        ..FrameSpec::default()
    };
    let mut want = want_spec.build(); // 58 bytes
    want.resize(60, 0); // zero-padded to the Ethernet minimum
    assert_eq!(out, want);
    assert!(checksums_ok(&out));
    assert_eq!(h.w[0].counters.rst_unauthorized, 1);
    assert_eq!(h.w[0].counters.new_flows, 0);
    assert_eq!(h.w[0].keys_in_use(), 0);
    assert_eq!(h.c.total_drops(), 0);
    // untagged, no options: 54 bytes -> padded to 60
    let syn = tcp(
        (LB1, ACC_MAC),
        (SUB2, 40_001),
        (VIP_MAIL, 25),
        SYN,
        100,
        0,
        b"",
    );
    let (_, out) = h.up(&syn, 0);
    assert_eq!(out.len(), 60);
    assert!(out[54..].iter().all(|&b| b == 0));
    assert!(checksums_ok(&out));
    // UDP and ICMP to a refused service are dropped
    let (v, _) = h.up(&udp((LB1, ACC_MAC), (SUB2, 999), (VIP_MAIL, 25), b"x"), 0);
    assert_eq!(v, Verdict::Drop(DropReason::Unauthorized));
    let (v, _) = h.up(&ping((LB1, ACC_MAC), SUB2, VIP_MAIL, ECHO_REQUEST, 1, 1), 0);
    assert_eq!(v, Verdict::Drop(DropReason::Unauthorized));
    assert_eq!(h.drops(DropReason::Unauthorized), 2);
}

#[test]
fn no_session_is_dropped_unless_not_required() {
    let mut h = H::std();
    for sub in [SUB_NONE, SUB_DORMANT] {
        let (v, _) = h.up(&bare_syn((sub, 1), (VIP_WAP, 80)), 0);
        assert_eq!(v, Verdict::Drop(DropReason::NoSession));
        let (v, _) = h.up(&udp((LB1, ACC_MAC), (sub, 1), (VIP_WAP, 53), b"x"), 0);
        assert_eq!(v, Verdict::Drop(DropReason::NoSession));
    }
    assert_eq!(h.drops(DropReason::NoSession), 4);
    let mut h = H::new(GwConfig {
        require_session: false,
        ..cfg()
    });
    let (v, _) = h.up(&bare_syn((SUB_NONE, 1), (VIP_MAIL, 25)), 0);
    assert_eq!(v, TX_UP);
    assert_eq!(h.w[0].flow_by_key(POOL0, 20_000).unwrap().device_id, 0);
}

#[test]
fn udp_round_trip() {
    let mut h = H::std();
    let q = udp(
        (LB1, ACC_MAC),
        (SUB1, 5353),
        (VIP_WAP, 53),
        b"\x12\x34query",
    );
    let (v, out) = h.up(&q, 0);
    assert_eq!(v, TX_UP);
    assert_eq!(
        out,
        natted(&q, (SRV_MAC, mac_of(WAP1)), (POOL0, 20_000), (WAP1, 53))
    );
    let a = udp(
        (mac_of(WAP1), SRV_MAC),
        (WAP1, 53),
        (POOL0, 20_000),
        b"\x12\x34answer!",
    );
    let (v, out) = h.down(&a, 1);
    assert_eq!(v, TX_DOWN);
    assert_eq!(out, natted(&a, (ACC_MAC, LB1), (VIP_WAP, 53), (SUB1, 5353)));
    // second datagram uses the same flow
    let (_, out2) = h.up(&q, 2);
    assert_eq!(out2, out_of(&q, 20_000));
    // a UDP datagram without checksum keeps 0
    let mut nock = q.clone();
    nock.l4 = L4::Udp {
        src_port: 5354,
        dst_port: 53,
        checksum: false,
    };
    let (_, out) = h.up(&nock, 3);
    assert_eq!(&out[40..42], &[0, 0]);
    assert_eq!(h.w[0].counters.new_flows, 2);

    fn out_of(q: &FrameSpec, port: u16) -> Vec<u8> {
        natted(q, (SRV_MAC, mac_of(WAP1)), (POOL0, port), (WAP1, 53))
    }
}

#[test]
fn icmp_echo_round_trip() {
    let mut h = H::std();
    let req = ping((LB1, ACC_MAC), SUB1, VIP_WAP, ECHO_REQUEST, 0x4242, 7);
    let (v, out) = h.up(&req, 0);
    assert_eq!(v, TX_UP);
    assert_eq!(
        out,
        natted(&req, (SRV_MAC, mac_of(WAP1)), (POOL0, 20_000), (WAP1, 0))
    );
    assert!(checksums_ok(&out));
    let rep = ping((mac_of(WAP1), SRV_MAC), WAP1, POOL0, ECHO_REPLY, 20_000, 7);
    let (v, out) = h.down(&rep, 1);
    assert_eq!(v, TX_DOWN);
    assert_eq!(
        out,
        natted(&rep, (ACC_MAC, LB1), (VIP_WAP, 0), (SUB1, 0x4242))
    );
    assert!(checksums_ok(&out));
    // an echo request to a pool address is for the management thread
    let (v, _) = h.down(&ping((ROUTER, SRV_MAC), WAP1, POOL0, ECHO_REQUEST, 1, 1), 2);
    assert_eq!(v, Verdict::Control);
    // an echo reply from the subscriber side is not translated
    let (v, _) = h.up(&ping((LB1, ACC_MAC), SUB1, VIP_WAP, ECHO_REPLY, 1, 1), 2);
    assert_eq!(v, Verdict::Drop(DropReason::UnsupportedProto));
    h.expire(0, 1 + TIMEOUTS.icmp_ms + 1);
    assert_eq!(h.acct.len(), 1);
    let r = h.acct[0];
    assert_eq!(
        (r.proto, r.subscriber_port, r.nat_port, r.close),
        (1, 0x4242, 20_000, CloseReason::IdleTimeout)
    );
    assert_eq!((r.up_pkts, r.down_pkts, r.end_ms), (1, 1, 1));
}

#[test]
fn drop_reasons_of_the_stage() {
    let mut h = H::std();
    let syn = |sub, sp| bare_syn((sub, sp), (VIP_WAP, 80));
    // non-SYN without a flow
    let (v, _) = h.up(
        &tcp((LB1, ACC_MAC), (SUB1, 1), (VIP_WAP, 80), ACK, 1, 1, b"d"),
        0,
    );
    assert_eq!(v, Verdict::Drop(DropReason::NoFlow));
    // wrong destination MAC
    let mut f = syn(SUB1, 2);
    f.dst_mac = [0x02, 9, 9, 9, 9, 9];
    assert_eq!(h.up(&f, 0).0, Verdict::Drop(DropReason::NotForUs));
    // TTL 1
    let mut f = syn(SUB1, 3);
    f.ttl = 1;
    assert_eq!(h.up(&f, 0).0, Verdict::Drop(DropReason::TtlExceeded));
    // a fragment of a protocol the GW does not translate in fragments
    // (TCP, UDP and ICMP echo ones are: tests/frag.rs): GRE
    let mut f = ping((LB1, ACC_MAC), SUB1, VIP_WAP, ECHO_REQUEST, 4, 1);
    f.l4 = L4::Raw { proto: 47 };
    f.more_frags = true;
    assert_eq!(h.up(&f, 0).0, Verdict::Drop(DropReason::Fragment));
    // IPv6
    let mut f = syn(SUB1, 5);
    f.ip6 = Some(Default::default());
    assert_eq!(
        h.up(&f, 0).0,
        Verdict::Drop(DropReason::UnsupportedEthertype)
    );
    // unknown port
    assert_eq!(
        h.run(&syn(SUB1, 6).build(), 7, 0).0,
        Verdict::Drop(DropReason::UnexpectedPort)
    );
    // down: unknown key, not a pool address, wrong source, reserved port
    let d = |src: ([u8; 4], u16), dst: ([u8; 4], u16)| {
        tcp((mac_of(WAP1), SRV_MAC), src, dst, ACK, 1, 1, b"")
    };
    assert_eq!(
        h.down(&d((WAP1, 80), (POOL0, 20_001)), 0).0,
        Verdict::Drop(DropReason::NoKey)
    );
    assert_eq!(
        h.down(&d((WAP1, 80), (POOL0, 19_999)), 0).0,
        Verdict::Drop(DropReason::NoKey)
    );
    assert_eq!(
        h.down(&d((WAP1, 80), ([192, 0, 2, 99], 20_000)), 0).0,
        Verdict::Drop(DropReason::NotForUs)
    );
    assert_eq!(
        h.down(&d((WAP1, 80), (POOL0, 20_095)), 0).0,
        Verdict::Control
    );
    assert_eq!(h.up(&syn(SUB1, 7), 0).0, TX_UP); // key POOL0:20000
    assert_eq!(
        h.down(&d((WAP2, 80), (POOL0, 20_000)), 0).0,
        Verdict::Drop(DropReason::NoKey)
    );
    assert_eq!(
        h.down(&d((WAP1, 81), (POOL0, 20_000)), 0).0,
        Verdict::Drop(DropReason::NoKey)
    );
    let u = udp((mac_of(WAP1), SRV_MAC), (WAP1, 80), (POOL0, 20_000), b"");
    assert_eq!(
        h.down(&u, 0).0,
        Verdict::Drop(DropReason::NoKey),
        "protocol differs"
    );
    assert_eq!(h.down(&d((WAP1, 80), (POOL0, 20_000)), 0).0, TX_DOWN);
    // every drop counted once under its reason
    h.assert_drops(
        &[
            (DropReason::NoFlow, 1),
            (DropReason::NotForUs, 2),
            (DropReason::TtlExceeded, 1),
            (DropReason::Fragment, 1),
            (DropReason::UnsupportedEthertype, 1),
            (DropReason::UnexpectedPort, 1),
            (DropReason::NoKey, 5),
        ],
        12,
    );
    assert_eq!(h.w[0].counters.control, 1);
}

#[test]
fn no_server_and_no_neighbour() {
    let mut h = H::new(GwConfig {
        server_next_hop_mac: None,
        ..cfg()
    });
    let mut g = groups();
    for m in &mut g[0].members {
        m.up = false;
    }
    h.t = h.t.with_services(services(g));
    let (v, _) = h.up(&bare_syn((SUB1, 1), (VIP_WAP, 80)), 0);
    assert_eq!(v, Verdict::Drop(DropReason::NoServer));
    let (v, _) = h.up(&bare_syn((SUB1, 1), (EXTERNAL, 80)), 0);
    assert_eq!(v, Verdict::Drop(DropReason::NoNeighbor));
    assert_eq!(h.w[0].keys_in_use(), 0, "refused connections take no key");
}

#[test]
fn member_down_is_skipped_and_neighbour_change_is_picked_up() {
    let mut h = H::std();
    let mut g = groups();
    g[0].members[0].up = false;
    h.t = h.t.with_services(services(g));
    for sp in 0..4 {
        let (_, out) = h.up(&bare_syn((SUB1, 100 + sp), (VIP_WAP, 80)), 0);
        assert_eq!(&out[30..34], &WAP2);
    }
    // wap2 moves to a new MAC: published neighbours are re-read once
    let new_mac = [0x02, 0x99, 0, 0, 0, 0x11];
    h.t = h.t.with_neighbours(Neighbours::new([(WAP2, new_mac)]));
    let (_, out) = h.up(
        &tcp((LB1, ACC_MAC), (SUB1, 100), (VIP_WAP, 80), ACK, 2, 1, b""),
        1,
    );
    assert_eq!(&out[0..6], &new_mac);
}

#[test]
fn subscriber_moving_to_another_lb_gets_down_packets_there() {
    let mut h = H::std();
    let sub = (SUB1, 40_000);
    h.up(&tcp((LB1, ACC_MAC), sub, (VIP_WAP, 80), SYN, 1, 0, b""), 0);
    let down = bare_syn_ack(mac_of(WAP1), (WAP1, 80), (POOL0, 20_000)).build();
    assert_eq!(&h.run(&down, DOWN, 1).1[0..6], &LB1);
    h.up(&tcp((LB2, ACC_MAC), sub, (VIP_WAP, 80), ACK, 2, 2, b""), 2);
    assert_eq!(&h.run(&down, DOWN, 3).1[0..6], &LB2);
    assert_eq!(h.w[0].counters.lb_moves, 1);
}

/// Packets of a connection the same burst opens: each later one finds the
/// entry the first one made (the open stage), a UDP flow's datagrams and a
/// retransmitted SYN alike.
#[test]
fn a_burst_that_opens_a_connection_translates_its_later_packets() {
    let mut h = H::std();
    let d = |p: &[u8]| udp((LB1, ACC_MAC), (SUB1, 5000), (EXTERNAL, 53), p).build();
    let syn = bare_syn((SUB1, 6000), (EXTERNAL, 80)).build();
    let out = h.burst(&[d(b"1"), syn.clone(), d(b"2"), syn, d(b"3")], UP, 0);
    for (v, f) in &out {
        assert_eq!(*v, TX_UP);
        assert!(checksums_ok(f));
    }
    assert_eq!(nat_of(&out[0].1), nat_of(&out[2].1));
    assert_eq!(nat_of(&out[0].1), nat_of(&out[4].1));
    assert_eq!(nat_of(&out[1].1), nat_of(&out[3].1));
    assert_eq!(h.w[0].counters.new_flows, 2);
    assert_eq!(h.w[0].counters.up_pkts, 5);
}

/// A move seen on one connection re-points every connection of the
/// subscriber, on every worker: a downstream-only UDP flow on worker 0
/// follows the subscriber's new entry point learnt from its TCP connection
/// on worker 1 (and from a new connection); another subscriber's flow stays.
#[test]
fn a_move_re_points_every_connection_of_the_subscriber() {
    let mut h = H::std();
    let stream = udp((LB1, ACC_MAC), (SUB1, 5000), (EXTERNAL, 53), b"start");
    let key = nat_of(&h.run_on(0, &stream.build(), UP, 0).1);
    let other = udp((LB1, ACC_MAC), (SUB2, 5000), (EXTERNAL, 53), b"start");
    let key2 = nat_of(&h.run_on(0, &other.build(), UP, 0).1);
    let reply = |k: ([u8; 4], u16)| udp((ROUTER, SRV_MAC), (EXTERNAL, 53), k, b"data").build();
    assert_eq!(&h.run_on(0, &reply(key), DOWN, 1).1[0..6], &LB1);
    // worker 1: a TCP connection of SUB1 from LB1, then its ACK from LB2
    let c = |mac, fl| tcp((mac, ACC_MAC), (SUB1, 6000), (EXTERNAL, 80), fl, 1, 1, b"").build();
    h.run_on(1, &c(LB1, SYN), UP, 2);
    h.run_on(1, &c(LB2, ACK), UP, 3);
    assert_eq!(h.w[1].counters.lb_moves, 1);
    // the UDP flow on worker 0 now goes down through LB2
    let (v, out) = h.run_on(0, &reply(key), DOWN, 4);
    assert_eq!(v, TX_DOWN);
    assert_eq!(&out[0..6], &LB2);
    assert_eq!(h.w[0].counters.lb_repointed, 1);
    assert_eq!(
        &h.run_on(0, &reply(key2), DOWN, 4).1[0..6],
        &LB1,
        "SUB2 stays"
    );
    // a new connection of SUB1 from LB1 moves it back
    h.run_on(
        1,
        &tcp((LB1, ACC_MAC), (SUB1, 6001), (EXTERNAL, 80), SYN, 1, 0, b"").build(),
        UP,
        5,
    );
    assert_eq!(&h.run_on(0, &reply(key), DOWN, 6).1[0..6], &LB1);
    assert_eq!(h.w[0].counters.lb_repointed, 2);
    assert_eq!(
        h.w[0].counters.lb_moves, 0,
        "no up packet of the stream moved"
    );
}

/// The management side's re-point (RADIUS reported the subscriber at
/// another NAS, `Moves::repoint`): with no packet of the subscriber at all,
/// every one of its 64 connections, on both workers, takes the new LB with
/// its next down packet; another subscriber's 64 stay.
#[test]
fn a_management_repoint_moves_every_connection_of_the_subscriber() {
    let mut h = H::std();
    let mut flows = Vec::new();
    for i in 0..64u16 {
        let wi = usize::from(i % 2);
        for sub in [SUB1, SUB2] {
            let up = udp((LB1, ACC_MAC), (sub, 5000 + i), (EXTERNAL, 53), b"start").build();
            let (v, out) = h.run_on(wi, &up, UP, 0);
            assert_eq!(v, TX_UP);
            flows.push((wi, nat_of(&out), sub));
        }
    }
    let reply = |k: ([u8; 4], u16)| udp((ROUTER, SRV_MAC), (EXTERNAL, 53), k, b"data").build();
    for &(wi, k, _) in &flows {
        assert_eq!(&h.run_on(wi, &reply(k), DOWN, 1).1[0..6], &LB1);
    }
    assert!(h.t.moves.repoint(moves::key_v4(SUB1), LB2));
    for &(wi, k, sub) in &flows {
        let (v, out) = h.run_on(wi, &reply(k), DOWN, 2);
        assert_eq!(v, TX_DOWN);
        let want = if sub == SUB1 { LB2 } else { LB1 };
        assert_eq!(&out[0..6], &want, "{sub:?} {k:?} on worker {wi}");
    }
    let sum = |f: fn(&GwWorker) -> u64| h.w.iter().map(f).sum::<u64>();
    assert_eq!(sum(|w| w.counters.lb_repointed), 64);
    assert_eq!(
        sum(|w| w.counters.lb_moves),
        0,
        "no up packet moved anything"
    );
}

#[test]
fn entry_bytes_are_as_documented() {
    assert_eq!(std::mem::size_of::<entry::Hot>(), 64);
    assert_eq!(std::mem::align_of::<entry::Hot>(), 64);
    assert_eq!(std::mem::size_of::<entry::Cold>(), 32);
}

// -------------------------------------------------------------- handoff --

/// `syn` opens a flow on worker 1; the server's `reply` lands on worker 0,
/// which hands it off untouched, and worker 1 sends it down; nothing is
/// dropped. The frames worker 1 sent up and down.
fn handed_off(h: &mut H, syn: &FrameSpec, reply: &FrameSpec) -> (Vec<u8>, Vec<u8>) {
    let (v, up) = h.run_on(1, &syn.build(), UP, 0);
    assert_eq!(v, TX_UP);
    let reply = reply.build();
    let (v, out) = h.run_on(0, &reply, DOWN, 1);
    assert_eq!(v, Verdict::Handoff { worker: 1 });
    assert_eq!(out, reply, "handed off untouched");
    assert_eq!(h.w[0].counters.handoffs, 1);
    let (v, down) = h.run_on(1, &reply, DOWN, 1);
    assert_eq!(v, TX_DOWN);
    assert_eq!(h.c.total_drops(), 0);
    (up, down)
}

#[test]
fn down_packet_of_another_workers_key_is_handed_off_untouched() {
    let mut h = H::std();
    // worker 1 opens a connection: its first key is POOL0:20045; its
    // reply lands on worker 0 (RSS): handed off, byte for byte the same;
    // the owner translates it
    let syn = bare_syn((SUB1, 40_000), (VIP_WAP, 80));
    let reply = tcp(
        (mac_of(WAP1), SRV_MAC),
        (WAP1, 80),
        (POOL0, 20_045),
        SYN | ACK,
        1,
        2,
        b"hi",
    );
    let (out_up, out) = handed_off(&mut h, &syn, &reply);
    assert_eq!(&out_up[34..36], &20_045u16.to_be_bytes());
    assert_eq!(key_owner(&cfg(), POOL0, 20_045), Some(1));
    assert_eq!(&out[26..30], &VIP_WAP);
    // and worker 1 hands worker 0's keys back
    let (v, _) = h.run_on(
        1,
        &tcp(
            (mac_of(WAP1), SRV_MAC),
            (WAP1, 80),
            (POOL1, 20_044),
            ACK,
            1,
            2,
            b"",
        )
        .build(),
        DOWN,
        1,
    );
    assert_eq!(v, Verdict::Handoff { worker: 0 });
}

// --------------------------------------------------------------- timers --

#[test]
fn idle_expiry_per_state() {
    let mut h = H::std();
    // (one subscriber: one pool address; the rotation gives the ports)
    let key = |i: u16| (POOL0, 20_000 + i);
    let up = |sp, f| tcp((LB1, ACC_MAC), (SUB1, sp), (VIP_WAP, 80), f, 1, 1, b"");
    // k0: SYN only (syn 1000)
    h.up(&up(1, SYN), 0);
    // k1: established (10000)
    h.up(&up(2, SYN), 0);
    h.up(&up(2, ACK), 0);
    // k2: FIN up (closing 2000)
    h.up(&up(3, SYN), 0);
    h.up(&up(3, ACK), 0);
    h.up(&up(3, FIN | ACK), 0);
    // k3: UDP (3000), k4: ICMP (4000)
    h.up(&udp((LB1, ACC_MAC), (SUB1, 4), (VIP_WAP, 53), b"q"), 0);
    h.up(&ping((LB1, ACC_MAC), SUB1, VIP_WAP, ECHO_REQUEST, 5, 1), 0);
    assert_eq!(h.w[0].open_flows(), 5);
    let mut ended = vec![];
    for (now, expect_port) in [
        (1_000, None),
        (1_001, Some(0)),
        (2_001, Some(2)),
        (3_001, Some(3)),
        (4_001, Some(4)),
        (10_000, None),
        (10_001, Some(1)),
    ] {
        let before = h.acct.len();
        h.expire(0, now);
        match expect_port {
            None => assert_eq!(h.acct.len(), before, "t={now}"),
            Some(i) => {
                assert_eq!(h.acct.len(), before + 1, "t={now}");
                let r = h.acct[before];
                assert_eq!((r.nat_ip, r.nat_port), key(i), "t={now}");
                assert_eq!(r.close, CloseReason::IdleTimeout);
                ended.push(i);
            }
        }
    }
    assert_eq!(ended, vec![0, 2, 3, 4, 1]);
    assert_eq!(h.w[0].open_flows(), 0);
    assert_eq!(h.w[0].counters.expired, 5);
    // expired flows no longer match: data → NoFlow, down → NoKey
    assert_eq!(
        h.up(&up(2, ACK), 10_002).0,
        Verdict::Drop(DropReason::NoFlow)
    );
    let d = tcp((mac_of(WAP2), SRV_MAC), (WAP2, 80), key(1), ACK, 1, 1, b"");
    assert_eq!(h.down(&d, 10_002).0, Verdict::Drop(DropReason::NoKey));
    assert_eq!(h.acct.len(), 5, "records exactly once");
}

#[test]
fn draining_refuses_new_connections_and_close_all_records_the_open_ones() {
    let mut h = H::std();
    let up = |sp, f| tcp((LB1, ACC_MAC), (SUB1, sp), (VIP_WAP, 80), f, 1, 1, b"");
    // An established connection, a UDP one, a SYN alone.
    h.up(&up(1, SYN), 0);
    h.up(&up(1, ACK), 0);
    h.up(&udp((LB1, ACC_MAC), (SUB1, 4), (VIP_WAP, 53), b"q"), 0);
    h.up(&up(3, SYN), 0);
    assert_eq!((h.w[0].open_flows(), h.acct.len()), (3, 0));

    h.w[0].set_draining(true);
    // A new connection is refused; the established one still passes.
    assert_eq!(h.up(&up(9, SYN), 5).0, Verdict::Drop(DropReason::Draining));
    assert_eq!(h.up(&up(1, ACK), 5).0, TX_UP);
    let open = h.w[0].open_flows();
    let n = h.w[0].close_all(7, &mut h.acct);
    assert_eq!((n, open), (3, 3));
    assert_eq!(h.w[0].open_flows(), 0);
    let shut: Vec<_> = h.acct.clone();
    assert_eq!(shut.len(), open, "one record per open connection");
    assert!(
        shut.iter().all(|r| r.close == CloseReason::Shutdown),
        "{shut:?}"
    );
    let mut ends: Vec<(u8, u64)> = shut.iter().map(|r| (r.proto, r.end_ms)).collect();
    ends.sort();
    assert_eq!(
        ends,
        [(6, 0), (6, 5), (17, 0)],
        "ends at each one's last packet"
    );
    assert_eq!(h.w[0].counters.closed_shutdown, open as u64);
    // Closed ones no longer match, and a second call finds nothing.
    assert_eq!(h.up(&up(1, ACK), 8).0, Verdict::Drop(DropReason::NoFlow));
    assert_eq!(h.w[0].close_all(9, &mut h.acct), 0);
    // Drain over (a reload without stopping): new connections again.
    h.w[0].set_draining(false);
    assert_eq!(h.up(&up(10, SYN), 10).0, TX_UP);
}

#[test]
fn lazy_expiry_on_lookup() {
    let mut h = H::std();
    let q = udp((LB1, ACC_MAC), (SUB1, 777), (VIP_WAP, 53), b"q");
    assert_eq!(&h.up(&q, 0).1[34..36], &20_000u16.to_be_bytes());
    assert_eq!(
        &h.up(&q, 3_000).1[34..36],
        &20_000u16.to_be_bytes(),
        "not idle > 3000 yet"
    );
    // idle 3001 ms: the old flow is recorded and a new one (the next key
    // of the subscriber's pool address) starts
    let (v, out) = h.up(&q, 6_001);
    assert_eq!(v, TX_UP);
    assert_eq!(
        (&out[26..30], &out[34..36]),
        (&POOL0[..], &20_001u16.to_be_bytes()[..])
    );
    assert_eq!(h.acct.len(), 1);
    assert_eq!((h.acct[0].up_pkts, h.acct[0].end_ms), (2, 3_000));
    // down path: a SYN never answered, reply arrives too late
    h.up(&bare_syn((SUB1, 9), (VIP_WAP, 80)), 10_000);
    // (round robin: WAP1, WAP2, then WAP1 again)
    let late = bare_syn_ack(mac_of(WAP1), (WAP1, 80), (POOL0, 20_002));
    assert_eq!(h.down(&late, 11_001).0, Verdict::Drop(DropReason::NoKey));
    assert_eq!(h.acct.len(), 2);
    assert_eq!(h.acct[1].close, CloseReason::IdleTimeout);
}

/// 1 pool address, 4 key ports, 1 worker.
fn small_cfg() -> GwConfig {
    GwConfig {
        pool: vec![POOL0],
        key_port_first: 30_000,
        key_port_last: 30_003,
        reserved_ports: None,
        workers: 1,
        ..cfg()
    }
}

const EXT1: [u8; 4] = [198, 51, 100, 8];
const EXT2: [u8; 4] = [198, 51, 100, 9];

/// The NAT source (address, port) of an up frame the GW sent.
fn nat_of(out: &[u8]) -> ([u8; 4], u16) {
    (
        [out[26], out[27], out[28], out[29]],
        u16::from_be_bytes([out[34], out[35]]),
    )
}

#[test]
fn keys_are_unique_per_destination_and_held_after_close() {
    let mut h = H::new(small_cfg());
    let syn = |sp, d| bare_syn((SUB1, sp), (d, 80)).build();
    let rst = |sp, d| tcp((LB1, ACC_MAC), (SUB1, sp), (d, 80), RST, 2, 0, b"").build();
    // 4 keys, all taken for EXT1 (subscriber ports outside the key range:
    // the rotation, in port order)
    for sp in 1..=4 {
        assert_eq!(
            nat_of(&h.run(&syn(sp, EXT1), UP, 0).1),
            (POOL0, 29_999 + sp)
        );
    }
    assert_eq!(
        h.run(&syn(5, EXT1), UP, 0).0,
        Verdict::Drop(DropReason::NatPoolExhausted)
    );
    // another destination: the same keys serve it
    let (v, out) = h.run(&syn(6, EXT2), UP, 0);
    assert_eq!(v, TX_UP);
    assert_eq!(nat_of(&out).0, POOL0);
    // a RST-closed connection the server never answered: the short hold
    // (500 ms), then its key serves EXT1 again
    h.run(&rst(2, EXT1), UP, 10);
    assert_eq!(h.w[0].held(), 1);
    h.expire(0, 509);
    assert_eq!(
        h.run(&syn(7, EXT1), UP, 509).0,
        Verdict::Drop(DropReason::NatPoolExhausted)
    );
    h.expire(0, 510);
    assert_eq!(h.w[0].held(), 0);
    assert_eq!(nat_of(&h.run(&syn(7, EXT1), UP, 510).1), (POOL0, 30_001));
    assert_eq!(h.w[0].counters.keys_recycled, 1);
    assert_eq!(h.drops(DropReason::NatPoolExhausted), 2);
}

/// Establish sp → EXT1:80 and close it by FIN both ways at `t`: the long
/// hold (5000 ms) follows.
fn fin_closed(h: &mut H, sp: u16, t: u64) -> ([u8; 4], u16) {
    let up = |f| tcp((LB1, ACC_MAC), (SUB1, sp), (EXT1, 80), f, 1, 1, b"").build();
    let key = nat_of(&h.run(&up(SYN), UP, t).1);
    let down = |f| tcp((ROUTER, SRV_MAC), (EXT1, 80), key, f, 1, 2, b"").build();
    assert_eq!(h.run(&down(SYN | ACK), DOWN, t).0, TX_DOWN);
    h.run(&up(ACK), UP, t);
    h.run(&up(FIN | ACK), UP, t);
    assert_eq!(h.run(&down(FIN | ACK), DOWN, t).0, TX_DOWN);
    key
}

#[test]
fn established_connections_hold_their_key_for_the_time_wait() {
    let mut h = H::new(small_cfg());
    let keys: Vec<_> = (1..=4).map(|sp| fin_closed(&mut h, sp, 100)).collect();
    assert_eq!(h.w[0].held(), 4);
    assert_eq!(h.acct.len(), 4);
    // a late last ACK is still translated during the hold
    let ack = tcp((LB1, ACC_MAC), (SUB1, 1), (EXT1, 80), ACK, 2, 2, b"").build();
    assert_eq!(h.run(&ack, UP, 200).0, TX_UP);
    assert_eq!(h.w[0].counters.late_pkts, 1);
    // another subscriber port to EXT1: nothing until the hold (5000 ms
    // from the last packet) is over
    let syn = bare_syn((SUB1, 99), (EXT1, 80)).build();
    h.expire(0, 5_099);
    assert_eq!(
        h.run(&syn, UP, 5_099).0,
        Verdict::Drop(DropReason::NatPoolExhausted)
    );
    h.expire(0, 5_100);
    assert_eq!(h.w[0].held(), 0);
    let (v, out) = h.run(&syn, UP, 5_100);
    assert_eq!(v, TX_UP);
    assert!(keys.contains(&nat_of(&out)));
}

#[test]
fn the_same_subscriber_tuple_revives_its_binding_on_hold() {
    let mut h = H::new(small_cfg());
    let key = fin_closed(&mut h, 1, 100);
    // the same 4-tuple opens again within the hold: same key, same server
    let syn = tcp((LB1, ACC_MAC), (SUB1, 1), (EXT1, 80), SYN, 9, 0, b"").build();
    let (v, out) = h.run(&syn, UP, 1_000);
    assert_eq!(v, TX_UP);
    assert_eq!(nat_of(&out), key);
    assert_eq!(h.w[0].counters.revived, 1);
    assert_eq!((h.w[0].held(), h.w[0].open_flows()), (0, 1));
    // a new connection: its own record, from its own start
    let rst = tcp((LB1, ACC_MAC), (SUB1, 1), (EXT1, 80), RST, 10, 0, b"").build();
    h.run(&rst, UP, 1_500);
    assert_eq!(h.acct.len(), 2);
    assert_eq!(
        (h.acct[1].start_ms, h.acct[1].end_ms, h.acct[1].up_pkts),
        (1_000, 1_500, 2)
    );
    assert_eq!((h.acct[1].nat_ip, h.acct[1].nat_port), key);
}

/// Two copies of the SYN of a held tuple whose server went down, in one
/// burst: the first gives the tuple its new binding, the second is a
/// packet of that binding (not a second replacement of the old one).
#[test]
fn a_duplicate_syn_in_the_burst_that_replaces_a_binding_opens_nothing_more() {
    let mut h = H::new(small_cfg());
    let sub = (SUB1, 1234);
    let syn = tcp((LB1, ACC_MAC), sub, (VIP_WAP, 80), SYN, 99, 0, b"").build();
    h.run(&syn, UP, 0);
    h.up(&tcp((LB1, ACC_MAC), sub, (VIP_WAP, 80), RST, 2, 0, b""), 1);
    h.t = h.t.with_services(
        h.t.services
            .with_member_state("wap", "wap1", MemberSide::V4, false)
            .unwrap(),
    );
    let out = h.burst(&[syn.clone(), syn], UP, 2);
    assert_eq!((out[0].0, out[1].0), (TX_UP, TX_UP));
    assert_eq!(
        out[0].1, out[1].1,
        "the same SYN to the same server and key"
    );
    assert_eq!(h.w[0].counters.replaced, 1);
    assert_eq!((h.w[0].open_flows(), h.w[0].held()), (1, 1));
    assert_eq!(h.w[0].keys_in_use(), 2);
}

#[test]
fn a_held_tuple_whose_server_went_down_gets_a_new_binding() {
    let mut h = H::new(small_cfg());
    let sub = (SUB1, 1234);
    let syn = |seq| tcp((LB1, ACC_MAC), sub, (VIP_WAP, 80), SYN, seq, 0, b"").build();
    let (_, out) = h.run(&syn(1), UP, 0);
    let (key, srv) = (nat_of(&out), [out[30], out[31], out[32], out[33]]);
    assert_eq!(srv, WAP1);
    h.up(&tcp((LB1, ACC_MAC), sub, (VIP_WAP, 80), RST, 2, 0, b""), 1);
    // wap1 is down: the tuple cannot keep its server
    h.t = h.t.with_services(
        h.t.services
            .with_member_state("wap", "wap1", MemberSide::V4, false)
            .unwrap(),
    );
    let (v, out) = h.run(&syn(99), UP, 2);
    assert_eq!(v, TX_UP);
    assert_eq!([out[30], out[31], out[32], out[33]], WAP2);
    assert_eq!(h.w[0].counters.replaced, 1);
    // the old binding no longer answers the tuple, but still holds its key
    // for wap1 until its hold ends: its server's late packets are dropped
    let old = tcp((mac_of(WAP1), SRV_MAC), (WAP1, 80), key, ACK, 1, 1, b"");
    assert_eq!(h.down(&old, 3).0, Verdict::Drop(DropReason::NoKey));
    assert_eq!(h.w[0].held(), 1);
    // the old binding's short hold is over: freed; the new connection's
    // SYN was never answered: idle, on hold in its turn, then freed
    h.expire(0, 10_000);
    assert_eq!((h.w[0].held(), h.w[0].keys_in_use()), (1, 1));
    h.expire(0, 10_001);
    assert_eq!((h.w[0].held(), h.w[0].keys_in_use()), (0, 0));
    assert_eq!(h.acct.len(), 2);
}

#[test]
fn the_subscriber_port_is_kept_when_free_for_the_destination() {
    let mut h = H::new(GwConfig {
        key_port_first: 30_000,
        key_port_last: 30_099,
        ..small_cfg()
    });
    let syn = |s, sp, d| bare_syn((s, sp), (d, 80)).build();
    // kept
    assert_eq!(
        nat_of(&h.run(&syn(SUB1, 30_042, EXT1), UP, 0).1),
        (POOL0, 30_042)
    );
    // another subscriber, the same port, the same destination: another key
    let other = nat_of(&h.run(&syn(SUB2, 30_042, EXT1), UP, 0).1);
    assert_ne!(other.1, 30_042);
    // ... but for another destination the port is free again
    assert_eq!(
        nat_of(&h.run(&syn(SUB2, 30_042, EXT2), UP, 0).1),
        (POOL0, 30_042)
    );
    // off: the rotation
    let mut h = H::new(GwConfig {
        key_port_first: 30_000,
        key_port_last: 30_099,
        preserve_port: false,
        ..small_cfg()
    });
    assert_eq!(
        nat_of(&h.run(&syn(SUB1, 30_042, EXT1), UP, 0).1),
        (POOL0, 30_000)
    );
}

#[test]
fn flow_table_full_and_acct_queue_full_are_counted() {
    let mut h = H::new(GwConfig {
        max_flows_per_worker: 2,
        ..small_cfg()
    });
    for sp in 1..=3 {
        h.up(&udp((LB1, ACC_MAC), (SUB1, sp), (VIP_WAP, 53), b"q"), 0);
    }
    assert_eq!(h.drops(DropReason::FlowTableFull), 1);
    let mut sink = Bounded { v: vec![], cap: 1 };
    let n = h.w[0].expire(10_000, 100, &mut sink, &mut h.c);
    assert_eq!(n, 2);
    assert_eq!(sink.v.len(), 1);
    assert_eq!(h.w[0].counters.acct_queue_full, 1);
    assert_eq!(h.w[0].counters.acct_records, 1);
    // Recovered: once the holds have passed, the table takes new
    // connections again (the one refused before, and another).
    h.w[0].expire(10_000 + 60_000 + 1_000, 100, &mut h.acct, &mut h.c);
    for sp in [3, 4] {
        let (v, _) = h.up(
            &udp((LB1, ACC_MAC), (SUB1, sp), (VIP_WAP, 53), b"q"),
            71_001,
        );
        assert_eq!(v, TX_UP, "source port {sp} after the holds");
    }
    assert_eq!(h.drops(DropReason::FlowTableFull), 1, "no more refusals");
}

#[test]
fn expire_budget_bounds_the_sweep() {
    let mut h = H::new(small_cfg());
    for sp in 1..=4 {
        h.up(&udp((LB1, ACC_MAC), (SUB1, sp), (VIP_WAP, 53), b"q"), 0);
    }
    let mut total = 0;
    for _ in 0..4 {
        let n = h.w[0].expire(5_000, 1, &mut h.acct, &mut h.c);
        assert!(n <= 1);
        total += n;
    }
    assert_eq!(total, 4);
    assert_eq!(h.acct.len(), 4);
}

// ------------------------------------------- MSS clamp and window cap --

fn with_tcp(mut spec: FrameSpec, opts: &[u8], win: u16) -> FrameSpec {
    if let L4::Tcp {
        options, window, ..
    } = &mut spec.l4
    {
        *options = opts.to_vec();
        *window = win;
    }
    spec
}

const MSS_1460: [u8; 4] = [2, 4, 0x05, 0xb4];

/// Run an up SYN; the output, the NAT key and the server it went to.
fn open_syn(h: &mut H, syn: &FrameSpec, now: u64) -> (Vec<u8>, Ep4, Ep4) {
    let (v, out) = h.up(syn, now);
    assert_eq!(v, TX_UP);
    let o = crate::wire::parse(&out).unwrap();
    (out, (o.src_v4(), o.src_port), (o.dst_v4(), o.dst_port))
}

fn clamp_cfg(up: Option<u16>, down: Option<u16>, win: Option<u16>) -> GwConfig {
    GwConfig {
        mss_clamp_up: up,
        mss_clamp_down: down,
        window_cap_down: win,
        ..cfg()
    }
}

#[test]
fn mss_is_clamped_on_syn_up_and_syn_ack_down() {
    let mut h = H::new(clamp_cfg(Some(1360), Some(1400), None));
    let (sub, vip, key, srv) = ((SUB1, 40_000), (VIP_WAP, 80), (POOL0, 20_000), (WAP1, 80));
    let syn = with_tcp(
        tcp((LB1, ACC_MAC), sub, vip, SYN, 1, 0, b""),
        &MSS_1460,
        29_200,
    );
    let (v, out) = h.up(&syn, 0);
    assert_eq!(v, TX_UP);
    // MSS option at 54..58 of the output, value 1360 = 0x0550
    assert_eq!(&out[54..58], &[2, 4, 0x05, 0x50]);
    assert!(checksums_ok(&out));
    let want = with_tcp(syn.clone(), &[2, 4, 0x05, 0x50], 29_200);
    assert_eq!(out, natted(&want, (SRV_MAC, mac_of(WAP1)), key, srv));
    // a retransmitted SYN is clamped again
    let (_, out2) = h.up(&syn, 1);
    assert_eq!(out2, out);
    let syn_ack = with_tcp(
        tcp((mac_of(WAP1), SRV_MAC), srv, key, SYN | ACK, 9, 2, b""),
        &MSS_1460,
        29_200,
    );
    let (v, out) = h.down(&syn_ack, 2);
    assert_eq!(v, TX_DOWN);
    assert_eq!(&out[54..58], &[2, 4, 0x05, 0x78]); // 1400
    assert!(checksums_ok(&out));
    let want = with_tcp(syn_ack.clone(), &[2, 4, 0x05, 0x78], 29_200);
    assert_eq!(out, natted(&want, (ACC_MAC, LB1), vip, sub));
    let c = &h.w[0].counters;
    assert_eq!(
        (c.mss_clamped_up, c.mss_clamped_down, c.window_capped),
        (2, 1, 0)
    );
    // data segments are never touched, even with an MSS-like option
    let data = with_tcp(
        tcp((LB1, ACC_MAC), sub, vip, ACK, 2, 10, b"x"),
        &MSS_1460,
        500,
    );
    let (_, out) = h.up(&data, 3);
    assert_eq!(out, natted(&data, (SRV_MAC, mac_of(WAP1)), key, srv));
}

#[test]
fn mss_clamp_leaves_small_or_missing_mss_alone() {
    let mut h = H::new(clamp_cfg(Some(1360), Some(1360), None));
    let vip = (VIP_WAP, 80);
    let cases: [(u16, &[u8]); 3] = [
        (40_000, &[2, 4, 0x04, 0xb0]),       // MSS 1200 < 1360
        (40_001, &[]),                       // no options
        (40_002, &[1, 1, 4, 2, 3, 3, 7, 0]), // SACK-permitted, WS, no MSS
    ];
    for (sport, opts) in cases {
        let syn = with_tcp(
            tcp((LB1, ACC_MAC), (SUB1, sport), vip, SYN, 1, 0, b""),
            opts,
            1000,
        );
        let (out, key, srv) = open_syn(&mut h, &syn, 0);
        assert_eq!(
            out,
            natted(&syn, (SRV_MAC, mac_of(srv.0)), key, srv),
            "{opts:?}"
        );
        let syn_ack = with_tcp(
            tcp((mac_of(srv.0), SRV_MAC), srv, key, SYN | ACK, 9, 2, b""),
            opts,
            1000,
        );
        let (v, out) = h.down(&syn_ack, 1);
        assert_eq!(v, TX_DOWN);
        assert_eq!(
            out,
            natted(&syn_ack, (ACC_MAC, LB1), vip, (SUB1, sport)),
            "{opts:?}"
        );
    }
    let c = &h.w[0].counters;
    assert_eq!((c.mss_clamped_up, c.mss_clamped_down), (0, 0));
    // An MSS at an odd offset (after a NOP) is clamped with a valid checksum.
    let syn = with_tcp(
        tcp((LB1, ACC_MAC), (SUB1, 40_003), vip, SYN, 1, 0, b""),
        &[1, 2, 4, 0x05, 0xb4, 1, 1, 1],
        1000,
    );
    let (out, key, srv) = open_syn(&mut h, &syn, 0);
    let want = with_tcp(syn.clone(), &[1, 2, 4, 0x05, 0x50, 1, 1, 1], 1000);
    assert_eq!(out, natted(&want, (SRV_MAC, mac_of(srv.0)), key, srv));
    assert!(checksums_ok(&out));
}

#[test]
fn window_cap_applies_only_without_window_scaling() {
    const WS: [u8; 4] = [1, 3, 3, 7];
    let mut h = H::new(clamp_cfg(None, None, Some(8192)));
    let vip = (VIP_WAP, 80);
    // (SYN options, SYN-ACK options, capped?)
    let cases: [(&[u8], &[u8], bool); 4] = [
        (&[], &[], true),
        (&WS, &[], true), // the server did not agree: no scaling
        (&[], &WS, true), // a WS in a SYN-ACK alone does not count
        (&WS, &WS, false),
    ];
    for (i, (o_up, o_down, capped)) in cases.into_iter().enumerate() {
        let sub = (SUB1, 41_000 + i as u16);
        let down_macs = (ACC_MAC, LB1);
        let syn = with_tcp(tcp((LB1, ACC_MAC), sub, vip, SYN, 1, 0, b""), o_up, 65_535);
        let (out, key, srv) = open_syn(&mut h, &syn, 0);
        let up_macs = (SRV_MAC, mac_of(srv.0));
        assert_eq!(
            out,
            natted(&syn, up_macs, key, srv),
            "SYN windows are never capped"
        );
        // a down ACK before the SYN-ACK: scaling unknown, not capped
        let early = with_tcp(
            tcp((mac_of(srv.0), SRV_MAC), srv, key, ACK, 9, 2, b""),
            &[],
            30_000,
        );
        let (_, out) = h.down(&early, 1);
        assert_eq!(out, natted(&early, down_macs, vip, sub), "case {i}");
        let syn_ack = with_tcp(
            tcp((mac_of(srv.0), SRV_MAC), srv, key, SYN | ACK, 9, 2, b""),
            o_down,
            29_200,
        );
        let (_, out) = h.down(&syn_ack, 2);
        let want = with_tcp(syn_ack.clone(), o_down, if capped { 8192 } else { 29_200 });
        assert_eq!(out, natted(&want, down_macs, vip, sub), "case {i}");
        assert!(checksums_ok(&out));
        let data = with_tcp(
            tcp(
                (mac_of(srv.0), SRV_MAC),
                srv,
                key,
                ACK | PSH,
                10,
                2,
                b"resp",
            ),
            &[],
            40_000,
        );
        let (_, out) = h.down(&data, 3);
        let want = with_tcp(data.clone(), &[], if capped { 8192 } else { 40_000 });
        assert_eq!(out, natted(&want, down_macs, vip, sub), "case {i}");
        assert!(checksums_ok(&out));
        // a window already below the cap, and every up segment: untouched
        let small = with_tcp(data.clone(), &[], 4096);
        let (_, out) = h.down(&small, 4);
        assert_eq!(out, natted(&small, down_macs, vip, sub));
        let up = with_tcp(tcp((LB1, ACC_MAC), sub, vip, ACK, 2, 10, b""), &[], 60_000);
        let (_, out) = h.up(&up, 5);
        assert_eq!(out, natted(&up, up_macs, key, srv));
    }
    assert_eq!(h.w[0].counters.window_capped, 3 * 2);
}

// ----------------------------------------------------------- properties --

fn arb_sub() -> impl Strategy<Value = [u8; 4]> {
    prop_oneof![Just(SUB1), Just(SUB2)]
}

/// An IPv4 address and port.
type Ep4 = ([u8; 4], u16);

/// The round-trip properties' checks of an up packet `o` sent out by
/// `worker`: the NAT key is a pool address owned by `worker`, the server
/// a wap member (`to_vip`) or `ext`. The NAT key and the server.
fn served(
    o: &crate::wire::Parsed,
    worker: usize,
    to_vip: bool,
    ext: [u8; 4],
) -> Result<(Ep4, Ep4), TestCaseError> {
    let (nat_ip, nat_port) = (o.src_v4(), o.src_port);
    let (srv_ip, srv_port) = (o.dst_v4(), o.dst_port);
    prop_assert!(nat_ip == POOL0 || nat_ip == POOL1);
    prop_assert_eq!(key_owner(&cfg(), nat_ip, nat_port), Some(worker as u16));
    if to_vip {
        prop_assert!(srv_ip == WAP1 || srv_ip == WAP2);
    } else {
        prop_assert_eq!(srv_ip, ext);
    }
    Ok(((nat_ip, nat_port), (srv_ip, srv_port)))
}

/// A round trip the properties run over either address family: the
/// subscriber's ports and `payload`, where it goes (a VIP when `to_vip`,
/// else `ext`), its L4 (`proto` 0 TCP, 1 UDP, 2 echo), TTL or hop limit,
/// VLAN, the server's `reply`, and the worker owning the flow.
#[derive(Clone, Debug)]
struct RoundTrip {
    sport: u16,
    to_vip: bool,
    ext: [u8; 4],
    dport: u16,
    proto: u8,
    ttl: u8,
    vlan: Option<u16>,
    payload: Vec<u8>,
    reply: Vec<u8>,
    worker: usize,
}

fn arb_round_trip() -> impl Strategy<Value = RoundTrip> {
    let ext = any::<[u8; 4]>().prop_filter("a public address", |e| {
        e[0] != 10 && e[0] != 192 && *e != [0; 4]
    });
    let bytes = || proptest::collection::vec(any::<u8>(), 0..200);
    (
        (1u16.., any::<bool>(), ext, 1u16.., 0u8..3),
        (
            2u8..,
            proptest::option::of(0u16..4096),
            bytes(),
            bytes(),
            0usize..2,
        ),
    )
        .prop_map(
            |((sport, to_vip, ext, dport, proto), (ttl, vlan, payload, reply, worker))| RoundTrip {
                sport,
                to_vip,
                ext,
                dport,
                proto,
                ttl,
                vlan,
                payload,
                reply,
                worker,
            },
        )
}

impl RoundTrip {
    /// The IPv4 destination: the wap VIP or `ext`.
    fn dst(&self) -> [u8; 4] {
        if self.to_vip {
            VIP_WAP
        } else {
            self.ext
        }
    }

    /// The subscriber's packet `up` with this trip's TTL and VLAN.
    fn dressed(&self, up: FrameSpec) -> FrameSpec {
        FrameSpec {
            ttl: self.ttl,
            vlan: self.vlan,
            ..up
        }
    }

    /// The server (checked by [`served`]) answers the packet `o` sent up;
    /// the answer goes through [`answered`]. The NAT key, the frame sent
    /// down and its parse.
    fn reply_back(
        &self,
        h: &mut H,
        o: &crate::wire::Parsed,
    ) -> Result<(Ep4, Vec<u8>, crate::wire::Parsed), TestCaseError> {
        let (nat, srv) = served(o, self.worker, self.to_vip, self.ext)?;
        let down = FrameSpec {
            vlan: self.vlan,
            ..server_reply(self.proto, srv, nat, &self.reply)
        };
        let back = answered(h, self.worker, &down)?;
        let b = crate::wire::parse(&back).unwrap();
        Ok((nat, back, b))
    }

    /// [`restored`] with this trip's ports, VLAN and reply.
    fn restored(&self, back: &[u8], b: &crate::wire::Parsed) -> Result<(), TestCaseError> {
        let ports = (self.sport, self.dport);
        restored(back, b, self.proto, ports, self.vlan, &self.reply)
    }
}

/// `up` sent in on `worker` goes out (up) with valid checksums: the frame
/// sent and its parse.
fn sent_up(
    h: &mut H,
    worker: usize,
    up: &FrameSpec,
) -> Result<(Vec<u8>, crate::wire::Parsed), TestCaseError> {
    let (v, out) = h.run_on(worker, &up.build(), UP, 0);
    prop_assert_eq!(v, TX_UP);
    prop_assert!(checksums_ok(&out));
    let o = crate::wire::parse(&out).unwrap();
    Ok((out, o))
}

/// The server's answer `down` to a flow of `worker` lands on the other
/// worker, which hands it off; `worker` sends it down with valid
/// checksums. The frame sent down.
fn answered(h: &mut H, worker: usize, down: &FrameSpec) -> Result<Vec<u8>, TestCaseError> {
    let (v, _) = h.run_on(1 - worker, &down.build(), DOWN, 1);
    prop_assert_eq!(
        v,
        Verdict::Handoff {
            worker: worker as u16
        }
    );
    let (v, back) = h.run_on(worker, &down.build(), DOWN, 1);
    prop_assert_eq!(v, TX_DOWN);
    prop_assert!(checksums_ok(&back));
    Ok(back)
}

/// The answer `back` (parsed: `b`) reaches the subscriber as it asked:
/// ports `sport`/`dport` (or an echo `proto` 2's identifier), the access
/// MACs, `vlan` and the server's `reply` payload.
fn restored(
    back: &[u8],
    b: &crate::wire::Parsed,
    proto: u8,
    (sport, dport): (u16, u16),
    vlan: Option<u16>,
    reply: &[u8],
) -> Result<(), TestCaseError> {
    if proto == 2 {
        prop_assert_eq!(b.dst_port, sport, "identifier restored");
    } else {
        prop_assert_eq!((b.src_port, b.dst_port), (dport, sport));
    }
    prop_assert_eq!(&back[0..12], &[LB1, ACC_MAC].concat()[..]);
    prop_assert_eq!(b.vlan_tci, vlan);
    prop_assert_eq!(&back[b.payload_range()], reply);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any flow NAT'd up, then its reply NAT'd down, gives back the original
    /// tuple; every rewritten frame's checksums verify (full recomputation).
    #[test]
    fn nat_round_trip_restores_the_tuple(sub in arb_sub(), rt in arb_round_trip()) {
        let mut h = H::std();
        let (dst, macs) = (rt.dst(), (LB1, ACC_MAC));
        let (sport, dport, payload) = (rt.sport, rt.dport, &rt.payload);
        let up = rt.dressed(match rt.proto {
            0 => tcp(macs, (sub, sport), (dst, dport), SYN, 77, 0, payload),
            1 => udp(macs, (sub, sport), (dst, dport), payload),
            _ => FrameSpec { payload: payload.clone(), ..ping(macs, sub, dst, ECHO_REQUEST, sport, 3) },
        });
        let (_, o) = sent_up(&mut h, rt.worker, &up)?;
        prop_assert_eq!(o.ttl, rt.ttl - 1);
        let (_, back, b) = rt.reply_back(&mut h, &o)?;
        prop_assert_eq!((b.src_v4(), b.dst_v4()), (dst, sub));
        rt.restored(&back, &b)?;
    }

    /// Data packets with any flags and payload on an open flow: checksums
    /// verify, and the byte counters equal the sum of IP total lengths.
    #[test]
    fn data_rewrites_keep_checksums_and_counts(
        pkts in proptest::collection::vec((any::<bool>(), ACK..=(ACK | PSH | 0x20), proptest::collection::vec(any::<u8>(), 0..300)), 1..20),
    ) {
        let mut h = H::std();
        let sub = (SUB1, 40_000);
        let (v, _) = h.up(&tcp((LB1, ACC_MAC), sub, (VIP_WAP, 80), SYN, 1, 0, b""), 0);
        prop_assert_eq!(v, TX_UP);
        let (mut up_b, mut down_b, mut up_n, mut down_n) = (40u64, 0u64, 1u64, 0u64);
        for (i, (is_up, fl, data)) in pkts.iter().enumerate() {
            let fl = fl & !(FIN | RST | SYN);
            let f = if *is_up {
                tcp((LB1, ACC_MAC), sub, (VIP_WAP, 80), fl, i as u32, 9, data)
            } else {
                tcp((mac_of(WAP1), SRV_MAC), (WAP1, 80), (POOL0, 20_000), fl, 9, i as u32, data)
            };
            let (v, out) = h.run(&f.build(), if *is_up { UP } else { DOWN }, 1 + i as u64);
            prop_assert_eq!(v, if *is_up { TX_UP } else { TX_DOWN });
            prop_assert!(checksums_ok(&out));
            if *is_up { up_n += 1; up_b += 40 + data.len() as u64 } else { down_n += 1; down_b += 40 + data.len() as u64 }
        }
        h.up(&tcp((LB1, ACC_MAC), sub, (VIP_WAP, 80), RST, 0, 0, b""), 1_000);
        up_n += 1;
        up_b += 40;
        prop_assert_eq!(h.acct.len(), 1);
        let r = h.acct[0];
        prop_assert_eq!((r.up_pkts, r.up_bytes, r.down_pkts, r.down_bytes), (up_n, up_b, down_n, down_b));
    }

    /// MSS clamping in both directions, any MSS, clamp and option
    /// position: the MSS leaves as min(MSS, clamp), checksums verify, and
    /// nothing else in the frame changes.
    #[test]
    fn mss_clamp_keeps_checksums(mss in any::<u16>(), up in 88u16.., down in 88u16.., pad in 0usize..4, payload in proptest::collection::vec(any::<u8>(), 0..40)) {
        let mut h = H::new(clamp_cfg(Some(up), Some(down), None));
        let mut opts = vec![1u8; pad];
        opts.extend_from_slice(&[2, 4]);
        opts.extend_from_slice(&mss.to_be_bytes());
        let with = |m: u16| { let mut o = opts.clone(); let n = o.len(); o[n - 2..].copy_from_slice(&m.to_be_bytes()); o };
        let (sub, vip, key, srv) = ((SUB1, 40_000), (VIP_WAP, 80), (POOL0, 20_000), (WAP1, 80));
        let syn = with_tcp(tcp((LB1, ACC_MAC), sub, vip, SYN, 1, 0, &payload), &opts, 1000);
        let (_, out) = h.up(&syn, 0);
        prop_assert!(checksums_ok(&out));
        let want = with_tcp(syn.clone(), &with(mss.min(up)), 1000);
        prop_assert_eq!(out, natted(&want, (SRV_MAC, mac_of(WAP1)), key, srv));
        let sa = with_tcp(tcp((mac_of(WAP1), SRV_MAC), srv, key, SYN | ACK, 5, 2, &payload), &opts, 1000);
        let (_, out) = h.down(&sa, 1);
        prop_assert!(checksums_ok(&out));
        let want = with_tcp(sa.clone(), &with(mss.min(down)), 1000);
        prop_assert_eq!(out, natted(&want, (ACC_MAC, LB1), vip, sub));
    }

    /// Garbage in never panics and is always dropped or handed on.
    #[test]
    fn garbage_never_panics(frame in proptest::collection::vec(any::<u8>(), 0..128), port in 0u16..3) {
        let mut h = H::std();
        let mut buf = frame.clone();
        buf.resize(frame.len() + 32, FILL);
        let mut pkt = Pkt::new(&mut buf, frame.len(), port);
        let _ = h.w[0].process(&h.t, &mut pkt, 0, &mut h.acct, &mut h.c);
    }
}

// ------------------------------------------------- RSS steering, NAT64 --

/// Named IPv6 addresses of a test file's fixture: `name()` is the address.
macro_rules! addresses6 {
    ($($name:ident = $a:literal,)*) => {$(
        fn $name() -> [u8; 16] {
            v6($a)
        }
    )*};
}

mod chained;
mod exhaust;
mod fixtures;
mod frag;
mod icmp4;
mod limits;
mod nat64;
mod nat66;
mod steer;
mod synproxy;
