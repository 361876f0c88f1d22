//! Translator tests: literal fixtures (expected bytes written by hand,
//! checksums computed in full over the expected frame), fixtures built with
//! `wire::build` for ICMP errors, round-trip and robustness properties, and
//! an ignored cost measurement.

use super::*;
use crate::wire::build::{checksums_ok, with_room, FrameSpec, Ip6Spec, FILL, L4};
use crate::wire::checksum::{checksum, l4_checksum_v4, l4_checksum_v6, udp_final};
use crate::wire::icmp::{v4 as icmp4, v6 as icmp6};
use crate::wire::tcp::flags::{ACK, PSH, SYN};
use proptest::prelude::*;
use std::net::Ipv6Addr;

const POOL: [u8; 4] = [192, 0, 2, 33];
const SRV: [u8; 4] = [198, 51, 100, 7];
const ROUTER4: [u8; 4] = [203, 0, 113, 1];

fn v6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}
fn sub6() -> [u8; 16] {
    v6("2001:db8::1")
}
fn wkp(a: [u8; 4]) -> [u8; 16] {
    Prefix::WELL_KNOWN.embed(a)
}

const ETH_V6: [u8; 14] = [2, 0, 0, 0, 0, 0x0b, 2, 0, 0, 0, 0, 0x0a, 0x86, 0xdd];
const ETH_V4: [u8; 14] = [2, 0, 0, 0, 0, 0x0b, 2, 0, 0, 0, 0, 0x0a, 0x08, 0x00];

/// Run `f` on a copy of `frame` with 64 bytes of room; check that nothing
/// past the frame was written and that an `Err` left the frame as it was.
fn run(
    frame: &[u8],
    f: impl Fn(&mut Pkt<'_>) -> Result<(), DropReason>,
) -> Result<Vec<u8>, DropReason> {
    run_room(frame, frame.len() + 64, f)
}

fn run_room(
    frame: &[u8],
    room: usize,
    f: impl Fn(&mut Pkt<'_>) -> Result<(), DropReason>,
) -> Result<Vec<u8>, DropReason> {
    // Once with the frame at the start of its buffer (a header that grows
    // moves the payload), once behind 64 bytes of headroom (it grows at the
    // front, as in an mbuf): both must give the same frame.
    let plain = run_at(frame, 0, room, &f);
    let headroom = run_at(frame, 64, room, &f);
    assert_eq!(plain, headroom, "the headroom changed the result");
    plain
}

fn run_at(
    frame: &[u8],
    head: usize,
    room: usize,
    f: &impl Fn(&mut Pkt<'_>) -> Result<(), DropReason>,
) -> Result<Vec<u8>, DropReason> {
    let mut buf = vec![FILL; head];
    buf.extend(with_room(frame, room));
    let (r, off, len) = {
        let mut pkt = Pkt::with_headroom(&mut buf, head, frame.len(), 0);
        let r = f(&mut pkt);
        (r, pkt.headroom(), pkt.len())
    };
    // Nothing written outside the frame: before it, and past the longer of
    // the frame before and after.
    let end = (off + len).max(head + frame.len());
    for (outside, side) in [(&buf[..off.min(head)], "before"), (&buf[end..], "past")] {
        assert!(
            outside.iter().all(|&b| b == FILL),
            "bytes {side} the frame were written"
        );
    }
    match r {
        Ok(()) => Ok(buf[off..off + len].to_vec()),
        Err(e) => {
            assert_eq!((off, len), (head, frame.len()), "{e:?}: frame moved");
            assert_eq!(&buf[off..off + len], frame, "{e:?}: frame changed");
            Err(e)
        }
    }
}

fn to6(frame: &[u8], to: &To6) -> Result<Vec<u8>, DropReason> {
    run(frame, |p| v4_to_v6(p, &XlatConfig::default(), to))
}
fn to4(frame: &[u8], to: &To4) -> Result<Vec<u8>, DropReason> {
    run(frame, |p| v6_to_v4(p, &XlatConfig::default(), to))
}

/// Set the IPv4 TOS byte of a frame built by `FrameSpec` (untagged unless
/// `l3` says otherwise) and refill the header checksum.
fn set_tos(f: &mut [u8], l3: usize, tos: u8) {
    f[l3 + 1] = tos;
    Ipv4Packet::new_checked(&mut f[l3..])
        .unwrap()
        .fill_checksum();
}

/// Set the traffic class and flow label of an IPv6 frame.
fn set_tc_flow(f: &mut [u8], l3: usize, tc: u8, flow: u32) {
    Ipv6Packet::new_unchecked(&mut f[l3..]).set_version_tc_flow(tc, flow);
}

fn ip6_spec(src: [u8; 16], dst: [u8; 16]) -> Option<Ip6Spec> {
    Some(Ip6Spec {
        src,
        dst,
        fragment: false,
    })
}

// ------------------------------------------------------ literal fixtures --

#[test]
fn tcp_v4_to_v6_literal_bytes() {
    let mut f = FrameSpec {
        src_ip: SRV,
        dst_ip: POOL,
        l4: L4::Tcp {
            src_port: 80,
            dst_port: 40_000,
            seq: 0x1122_3344,
            ack: 0x5566_7788,
            flags: SYN | ACK,
            window: 29_200,
            options: vec![2, 4, 0x05, 0xb4],
        },
        payload: Vec::new(),
        ..FrameSpec::default()
    }
    .build();
    set_tos(&mut f, 14, 0xb8);
    let out = to6(&f, &To6::new(wkp(SRV), sub6())).unwrap();
    #[rustfmt::skip]
    let mut want: Vec<u8> = [
        &ETH_V6[..],
        // IPv6: TC 0xb8, flow 0, payload 24, TCP, hop 63
        &[0x6b, 0x80, 0x00, 0x00, 0x00, 24, 6, 63],
        &[0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 198, 51, 100, 7],
        &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        // TCP 80 -> 40000, seq, ack, doff 6, SYN|ACK, window 29200, csum, urg
        &[0x00, 0x50, 0x9c, 0x40, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88],
        &[0x60, 0x12, 0x72, 0x10, 0, 0, 0, 0, 2, 4, 0x05, 0xb4],
    ]
    .concat();
    let c = l4_checksum_v6(&wkp(SRV), &sub6(), 6, &want[54..]);
    want[70..72].copy_from_slice(&c.to_be_bytes());
    assert_eq!(out, want);
    assert!(checksums_ok(&out));
}

#[test]
fn udp_v6_to_v4_literal_bytes() {
    let mut f = FrameSpec {
        ip6: ip6_spec(sub6(), wkp(SRV)),
        l4: L4::Udp {
            src_port: 5353,
            dst_port: 53,
            checksum: true,
        },
        payload: b"pgw-dns?".to_vec(),
        ..FrameSpec::default()
    }
    .build();
    set_tc_flow(&mut f, 14, 0x28, 0x12345);
    let out = to4(&f, &To4::new(POOL, SRV).ident(0xbeef)).unwrap();
    #[rustfmt::skip]
    let mut want: Vec<u8> = [
        &ETH_V4[..],
        // IPv4: TOS 0x28, total 36, id 0xbeef, DF 0 (<= 1260), TTL 63, UDP
        &[0x45, 0x28, 0x00, 36, 0xbe, 0xef, 0x00, 0x00, 63, 17, 0, 0],
        &POOL, &SRV,
        // UDP 5353 -> 53, length 16, csum
        &[0x14, 0xe9, 0x00, 0x35, 0x00, 16, 0, 0],
        b"pgw-dns?",
    ]
    .concat();
    let hc = checksum(&want[14..34]);
    want[24..26].copy_from_slice(&hc.to_be_bytes());
    let uc = udp_final(l4_checksum_v4(POOL, SRV, 17, &want[34..]));
    want[40..42].copy_from_slice(&uc.to_be_bytes());
    assert_eq!(out, want);
    assert!(checksums_ok(&out));
}

#[test]
fn echo_request_v4_to_v6_literal_bytes() {
    let f = FrameSpec {
        src_ip: SRV,
        dst_ip: POOL,
        l4: L4::Icmp {
            ty: icmp4::ECHO_REQUEST,
            code: 0,
            ident: 0x4242,
            seq: 7,
        },
        payload: b"ping!".to_vec(),
        ..FrameSpec::default()
    }
    .build();
    let out = to6(&f, &To6::new(wkp(SRV), sub6())).unwrap();
    #[rustfmt::skip]
    let mut want: Vec<u8> = [
        &ETH_V6[..],
        &[0x60, 0, 0, 0, 0x00, 13, 58, 63],
        &wkp(SRV), &sub6(),
        // ICMPv6 echo request, csum, id 0x4242, seq 7
        &[128, 0, 0, 0, 0x42, 0x42, 0x00, 0x07],
        b"ping!",
    ]
    .concat();
    let c = l4_checksum_v6(&wkp(SRV), &sub6(), 58, &want[54..]);
    want[56..58].copy_from_slice(&c.to_be_bytes());
    assert_eq!(out, want);
    assert!(checksums_ok(&out));
}

#[test]
fn echo_reply_v6_to_v4_literal_bytes() {
    let f = FrameSpec {
        ip6: ip6_spec(sub6(), wkp(SRV)),
        l4: L4::Icmp {
            ty: icmp6::ECHO_REPLY,
            code: 0,
            ident: 0x4242,
            seq: 8,
        },
        payload: b"pong".to_vec(),
        ..FrameSpec::default()
    }
    .build();
    let out = to4(&f, &To4::new(POOL, SRV).ident(7)).unwrap();
    #[rustfmt::skip]
    let mut want: Vec<u8> = [
        &ETH_V4[..],
        &[0x45, 0x00, 0x00, 32, 0x00, 0x07, 0x00, 0x00, 63, 1, 0, 0],
        &POOL, &SRV,
        // ICMP echo reply, csum, id, seq
        &[0, 0, 0, 0, 0x42, 0x42, 0x00, 0x08],
        b"pong",
    ]
    .concat();
    let hc = checksum(&want[14..34]);
    want[24..26].copy_from_slice(&hc.to_be_bytes());
    let ic = checksum(&want[34..]);
    want[36..38].copy_from_slice(&ic.to_be_bytes());
    assert_eq!(out, want);
    assert!(checksums_ok(&out));
}

// ------------------------------------------------------- other fixtures --

/// A TCP/UDP frame of `spec` with its addresses replaced, hop/TTL − 1,
/// as `wire::build` makes it (checksums in full), IPv6 flow label 0.
fn rebuilt6(spec: &FrameSpec, src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
    let mut s = spec.clone();
    s.ip6 = ip6_spec(src, dst);
    s.ttl -= 1;
    if let L4::Icmp { ty, .. } = &mut s.l4 {
        *ty = if *ty == icmp4::ECHO_REQUEST { 128 } else { 129 };
    }
    let mut f = s.build();
    let l3 = f.len() - s.payload.len() - l4_hdr_len(&s.l4) - 40;
    set_tc_flow(&mut f, l3, 0, 0);
    f
}

fn l4_hdr_len(l4: &L4) -> usize {
    match l4 {
        L4::Tcp { options, .. } => 20 + options.len().div_ceil(4) * 4,
        L4::Udp { .. } | L4::Icmp { .. } => 8,
        L4::Raw { .. } => 0,
    }
}

#[test]
fn udp_without_checksum_gets_one_over_ipv6() {
    let spec = FrameSpec {
        src_ip: SRV,
        dst_ip: POOL,
        l4: L4::Udp {
            src_port: 53,
            dst_port: 40_001,
            checksum: false,
        },
        payload: b"answer".to_vec(),
        ..FrameSpec::default()
    };
    let f = spec.build();
    assert_eq!(&f[40..42], &[0, 0]);
    let out = to6(&f, &To6::new(wkp(SRV), sub6())).unwrap();
    let mut with_csum = spec.clone();
    with_csum.l4 = L4::Udp {
        src_port: 53,
        dst_port: 40_001,
        checksum: true,
    };
    assert_eq!(out, rebuilt6(&with_csum, wkp(SRV), sub6()));
    assert!(checksums_ok(&out));
    // Over IPv6 a zero checksum is kept as is going to IPv4 ("none" there).
    let mut z = FrameSpec {
        ip6: ip6_spec(sub6(), wkp(SRV)),
        ..spec
    }
    .build();
    z[14 + 40 + 6..14 + 40 + 8].fill(0);
    let out = to4(&z, &To4::new(POOL, SRV)).unwrap();
    assert_eq!(&out[40..42], &[0, 0]);
    assert!(checksums_ok(&out));
}

#[test]
fn vlan_tag_and_macs_are_kept_and_ipv4_options_dropped() {
    let spec = FrameSpec {
        vlan: Some(0x2064),
        src_ip: SRV,
        dst_ip: POOL,
        ip_options: vec![1, 1, 1, 0], // NOP NOP NOP EOL: IHL 6
        ..FrameSpec::tcp(80, 40_000, ACK | PSH)
    };
    let f = spec.build();
    let out = to6(&f, &To6::new(wkp(SRV), sub6())).unwrap();
    let mut plain = spec.clone();
    plain.ip_options.clear();
    assert_eq!(out, rebuilt6(&plain, wkp(SRV), sub6()));
    assert_eq!(&out[12..16], &[0x81, 0x00, 0x20, 0x64]);
    assert_eq!(out.len(), f.len() + 16);
    // 40 bytes of options (IHL 15): the frame shrinks going to IPv6.
    let mut big = spec.clone();
    big.ip_options = vec![1; 40];
    let f = big.build();
    let out = to6(&f, &To6::new(wkp(SRV), sub6())).unwrap();
    assert_eq!(out, rebuilt6(&plain, wkp(SRV), sub6()));
    assert_eq!(out.len(), f.len() - 20);
    // An unexpired loose source route is not translated; an expired one is.
    let mut sr = spec.clone();
    sr.ip_options = vec![0x83, 7, 4, 10, 0, 0, 1, 0];
    assert_eq!(
        to6(&sr.build(), &To6::new(wkp(SRV), sub6())),
        Err(DropReason::XlatUntranslatable)
    );
    sr.ip_options[2] = 8;
    assert!(to6(&sr.build(), &To6::new(wkp(SRV), sub6())).is_ok());
}

#[test]
fn ipv6_extension_headers_skipped_routing_and_icmp_fragments_refused() {
    let base = FrameSpec {
        ip6: ip6_spec(sub6(), wkp(SRV)),
        ..FrameSpec::udp(5000, 53)
    };
    let plain = base.build();
    let want = to4(&plain, &To4::new(POOL, SRV)).unwrap();
    // Insert a hop-by-hop (8 bytes) and a destination options header (16).
    let mut f = plain[..54].to_vec();
    f.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]); // HBH -> DO, PadN
    f.extend_from_slice(&[17, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // DO -> UDP
    f.extend_from_slice(&plain[54..]);
    f[14 + 6] = 0; // next header: HBH
    let plen = (f.len() - 54) as u16;
    f[18..20].copy_from_slice(&plen.to_be_bytes());
    assert_eq!(to4(&f, &To4::new(POOL, SRV)).unwrap(), want);
    // Routing header with segments left 1.
    let mut r = f.clone();
    r[14 + 6] = ip_proto::IPV6_ROUTING;
    r[54 + 3] = 1;
    assert_eq!(
        to4(&r, &To4::new(POOL, SRV)),
        Err(DropReason::XlatUntranslatable)
    );
    // Segments left 0: skipped like the others.
    r[54 + 3] = 0;
    assert_eq!(to4(&r, &To4::new(POOL, SRV)).unwrap(), want);
    // A header running past the payload.
    let mut m = f.clone();
    m[55] = 200;
    assert_eq!(to4(&m, &To4::new(POOL, SRV)), Err(DropReason::BadIpv6));
    // Fragments of ICMP (TCP and UDP ones are translated: below).
    let echo6 = FrameSpec {
        ip6: Some(Ip6Spec {
            fragment: true,
            ..ip6_spec(sub6(), wkp(SRV)).unwrap()
        }),
        l4: L4::Icmp {
            ty: icmp6::ECHO_REQUEST,
            code: 0,
            ident: 1,
            seq: 1,
        },
        ..base.clone()
    }
    .build();
    assert_eq!(
        to4(&echo6, &To4::new(POOL, SRV)),
        Err(DropReason::XlatFragment)
    );
    for (mf, off) in [(true, 0), (false, 1480), (true, 8)] {
        let f4 = FrameSpec {
            more_frags: mf,
            frag_offset: off,
            l4: L4::Icmp {
                ty: icmp4::ECHO_REPLY,
                code: 0,
                ident: 1,
                seq: 1,
            },
            ..FrameSpec::udp(53, 5000)
        }
        .build();
        assert_eq!(
            to6(&f4, &To6::new(wkp(SRV), sub6())),
            Err(DropReason::XlatFragment)
        );
    }
}

/// A datagram of `n` bytes of payload (a pattern) over `l4`.
fn big(l4: L4, n: usize) -> FrameSpec {
    FrameSpec {
        l4,
        payload: (0..n).map(|i| (i * 7 + 3) as u8).collect(),
        dont_frag: false,
        ..FrameSpec::default()
    }
}

/// RFC 7915 §5.1.1, §4.1: each fragment translated alone is the fragment
/// of the whole datagram translated at once, cut at the same places.
#[test]
fn fragments_translate_alone_as_the_whole_datagram_would() {
    use crate::wire::build::{fragment_v4, fragment_v6};
    let udp = |s, d| L4::Udp {
        src_port: s,
        dst_port: d,
        checksum: true,
    };
    let tcp = |s, d| L4::Tcp {
        src_port: s,
        dst_port: d,
        seq: 7,
        ack: 9,
        flags: ACK | PSH,
        window: 1000,
        options: vec![],
    };
    for l4 in [udp(5000, 53), tcp(40_000, 80)] {
        // 6 -> 4: ID 0xabcd_1234 gives the IPv4 Identification 0x1234.
        let whole = FrameSpec {
            ip6: ip6_spec(sub6(), wkp(SRV)),
            ..big(l4.clone(), 3000)
        }
        .build();
        let to = To4::new(POOL, SRV).ident(0x1234);
        let want = fragment_v4(&to4(&whole, &to).unwrap(), 1448);
        let frags = fragment_v6(&whole, 1448, 0xabcd_1234);
        assert_eq!(frags.len(), 3);
        for (k, f) in frags.iter().enumerate() {
            // (any Identification of To4: a fragment keeps its own)
            let out = to4(f, &To4::new(POOL, SRV).ident(0x9999)).unwrap();
            assert_eq!(out, want[k], "6->4 fragment {k}");
        }
        // 4 -> 6: the IPv4 Identification zero-extended; 28 bytes more.
        let whole = FrameSpec {
            src_ip: SRV,
            dst_ip: POOL,
            ident: 0x4321,
            ..big(l4.clone(), 3000)
        }
        .build();
        let to = To6::new(wkp(SRV), sub6());
        let want = fragment_v6(&to6(&whole, &to).unwrap(), 1400, 0x4321);
        let frags = fragment_v4(&whole, 1400);
        assert_eq!(frags.len(), 3);
        for (k, f) in frags.iter().enumerate() {
            let out = to6(f, &to).unwrap();
            assert_eq!(out.len(), f.len() + 28);
            assert_eq!(out, want[k], "4->6 fragment {k}");
        }
    }
}

#[test]
fn fragments_that_cannot_be_translated() {
    use crate::wire::build::{fragment_v4, fragment_v6};
    let to = To6::new(wkp(SRV), sub6());
    // A first UDP fragment without a checksum (IPv6 needs one over the
    // whole datagram): untranslatable; the later ones do not carry it.
    let nock = FrameSpec {
        src_ip: SRV,
        dst_ip: POOL,
        ..big(
            L4::Udp {
                src_port: 53,
                dst_port: 5000,
                checksum: false,
            },
            3000,
        )
    }
    .build();
    let f = fragment_v4(&nock, 1400);
    assert_eq!(to6(&f[0], &to), Err(DropReason::XlatUntranslatable));
    assert!(to6(&f[1], &to).is_ok());
    // A first fragment too short for its UDP header, both ways.
    let ck = FrameSpec {
        src_ip: SRV,
        dst_ip: POOL,
        ..FrameSpec::udp(53, 5000)
    }
    .build();
    let short4 = fragment_v4(&ck, 8)[0].clone();
    assert!(to6(&short4, &to).is_ok(), "8 bytes: the header is there");
    let mut s4 = short4.clone();
    s4.truncate(14 + 20 + 4);
    s4[16..18].copy_from_slice(&24u16.to_be_bytes());
    Ipv4Packet::new_unchecked(&mut s4[14..]).fill_checksum();
    assert_eq!(to6(&s4, &to), Err(DropReason::BadL4));
    let whole6 = FrameSpec {
        ip6: ip6_spec(sub6(), wkp(SRV)),
        ..FrameSpec::udp(5000, 53)
    }
    .build();
    let mut s6 = fragment_v6(&whole6, 8, 1)[0].clone();
    s6.truncate(14 + 40 + 8 + 4);
    s6[18..20].copy_from_slice(&12u16.to_be_bytes());
    assert_eq!(to4(&s6, &To4::new(POOL, SRV)), Err(DropReason::BadL4));
    // A Fragment header cut short.
    let mut c6 = s6.clone();
    c6.truncate(14 + 40 + 4);
    c6[18..20].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(to4(&c6, &To4::new(POOL, SRV)), Err(DropReason::BadIpv6));
}

#[test]
fn drops_have_their_reason() {
    let t6 = To6::new(wkp(SRV), sub6());
    let t4 = To4::new(POOL, SRV);
    // TTL / hop limit 1
    let f = FrameSpec {
        ttl: 1,
        ..FrameSpec::udp(1, 2)
    };
    assert_eq!(to6(&f.build(), &t6), Err(DropReason::TtlExceeded));
    let f6 = FrameSpec {
        ip6: ip6_spec(sub6(), wkp(SRV)),
        ..f
    };
    assert_eq!(to4(&f6.build(), &t4), Err(DropReason::TtlExceeded));
    // wrong version for the direction
    let v6 = FrameSpec {
        ip6: ip6_spec(sub6(), wkp(SRV)),
        ..FrameSpec::udp(1, 2)
    }
    .build();
    let v4 = FrameSpec::udp(1, 2).build();
    assert_eq!(to6(&v6, &t6), Err(DropReason::UnsupportedEthertype));
    assert_eq!(to4(&v4, &t4), Err(DropReason::UnsupportedEthertype));
    // other protocols
    let gre = FrameSpec {
        l4: L4::Raw { proto: 47 },
        ..FrameSpec::default()
    };
    assert_eq!(to6(&gre.build(), &t6), Err(DropReason::UnsupportedProto));
    let gre6 = FrameSpec {
        ip6: ip6_spec(sub6(), wkp(SRV)),
        ..gre
    };
    assert_eq!(to4(&gre6.build(), &t4), Err(DropReason::UnsupportedProto));
    // ICMP types without a counterpart: timestamp, neighbour solicitation
    let ts = FrameSpec {
        l4: L4::Icmp {
            ty: 13,
            code: 0,
            ident: 1,
            seq: 1,
        },
        ..FrameSpec::default()
    };
    assert_eq!(to6(&ts.build(), &t6), Err(DropReason::XlatUntranslatable));
    let ns = FrameSpec {
        ip6: ip6_spec(sub6(), wkp(SRV)),
        l4: L4::Icmp {
            ty: icmp6::NEIGHBOR_SOLICIT,
            code: 0,
            ident: 0,
            seq: 0,
        },
        ..FrameSpec::default()
    };
    assert_eq!(to4(&ns.build(), &t4), Err(DropReason::XlatUntranslatable));
    // truncated TCP header
    let mut t = FrameSpec::tcp(1, 2, ACK).build();
    t[14 + 20 + 12] = 0xf0;
    assert_eq!(to6(&t, &t6), Err(DropReason::BadL4));
    // no room to grow by 20 bytes (no headroom, 19 bytes of tailroom)...
    let f = FrameSpec::udp(1, 2).build();
    let grow = |p: &mut Pkt<'_>| v4_to_v6(p, &XlatConfig::default(), &t6);
    assert_eq!(run_at(&f, 0, f.len() + 19, &grow), Err(DropReason::TooBig));
    // ...but 20 bytes of headroom are room enough, whatever the tailroom
    assert!(run_at(&f, 20, f.len(), &grow).is_ok());
    assert_eq!(run_at(&f, 19, f.len() + 19, &grow), Err(DropReason::TooBig));
    assert!(run_room(&f, f.len() + 20, |p| v4_to_v6(
        p,
        &XlatConfig::default(),
        &t6
    ))
    .is_ok());
}

#[test]
fn dont_fragment_follows_the_1260_byte_rule() {
    for (payload, df) in [(1260 - 28, false), (1260 - 27, true)] {
        let f = FrameSpec {
            ip6: ip6_spec(sub6(), wkp(SRV)),
            payload: vec![0x5a; payload],
            ..FrameSpec::udp(1, 2)
        }
        .build();
        let out = to4(&f, &To4::new(POOL, SRV)).unwrap();
        let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
        assert_eq!(
            (ip.total_len() as usize, ip.dont_frag()),
            (payload + 28, df)
        );
        assert!(!ip.more_frags() && ip.frag_offset() == 0);
        assert!(checksums_ok(&out));
    }
}

// ------------------------------------------------------------ ICMP errors --

/// An IPv4 frame with an ICMP error quoting `quoted` (IP bytes); `rest`
/// fills bytes 4..8. (The GW's NAT64 tests use it too.)
pub(crate) fn err4(
    src: [u8; 4],
    dst: [u8; 4],
    ty: u8,
    code: u8,
    rest: u32,
    quoted: &[u8],
) -> FrameSpec {
    FrameSpec {
        src_ip: src,
        dst_ip: dst,
        l4: L4::Icmp {
            ty,
            code,
            ident: (rest >> 16) as u16,
            seq: rest as u16,
        },
        payload: quoted.to_vec(),
        ..FrameSpec::default()
    }
}

/// As [`err4`] over IPv6.
fn err6(src: [u8; 16], dst: [u8; 16], ty: u8, code: u8, rest: u32, quoted: &[u8]) -> FrameSpec {
    FrameSpec {
        ip6: ip6_spec(src, dst),
        ..err4([0; 4], [0; 4], ty, code, rest, quoted)
    }
}

/// The IP bytes of `spec` as IPv6 with these addresses, flow label 0, the
/// TTL kept (quoted packets are not decremented).
fn quoted6(spec: &FrameSpec, src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
    let mut s = spec.clone();
    s.ttl += 1;
    rebuilt6(&s, src, dst)[14..].to_vec()
}

/// The up packet a subscriber sent, as the server's side saw it.
fn up_udp4() -> FrameSpec {
    FrameSpec {
        src_ip: POOL,
        dst_ip: SRV,
        ident: 0,
        dont_frag: false,
        ttl: 61,
        payload: b"query".to_vec(),
        ..FrameSpec::udp(40_000, 53)
    }
}

#[test]
fn port_unreachable_v4_to_v6_translates_the_quoted_packet() {
    let quoted = up_udp4().build()[14..].to_vec();
    let f = err4(SRV, POOL, icmp4::DEST_UNREACHABLE, 3, 0, &quoted).build();
    let out = to6(&f, &To6::new(wkp(SRV), sub6())).unwrap();
    let q6 = quoted6(&up_udp4(), sub6(), wkp(SRV));
    let mut want = err6(wkp(SRV), sub6(), icmp6::DEST_UNREACHABLE, 4, 0, &q6);
    want.ttl = 63;
    let mut want = want.build();
    set_tc_flow(&mut want, 14, 0, 0);
    assert_eq!(out, want);
    // the quoted UDP checksum is still right for the quoted addresses
    let q = &out[14 + 48..];
    assert!(UdpPacket::new_checked(&q[40..])
        .unwrap()
        .verify_checksum_v6(&sub6(), &wkp(SRV)));
    // and back: the original error, TTL − 2 (identification given back)
    let back = to4(&out, &To4::new(SRV, POOL).ident(0x1234)).unwrap();
    let mut orig = err4(SRV, POOL, icmp4::DEST_UNREACHABLE, 3, 0, &quoted);
    orig.ttl = 62;
    orig.dont_frag = false;
    assert_eq!(back, orig.build());
}

#[test]
fn fragmentation_needed_becomes_packet_too_big_with_the_mtu_adjusted() {
    let up = FrameSpec {
        src_ip: POOL,
        dst_ip: SRV,
        ident: 0,
        dont_frag: true,
        payload: vec![0x77; 1400],
        ..FrameSpec::tcp(40_000, 443, ACK)
    };
    // An old-style quote: IP header + 8 bytes.
    let quoted = &up.build()[14..14 + 28];
    let f = err4(ROUTER4, POOL, icmp4::DEST_UNREACHABLE, 4, 1400, quoted).build();
    let to = To6::new(wkp(ROUTER4), sub6()).inner(sub6(), wkp(SRV));
    let out = to6(&f, &to).unwrap();
    let q6 = &quoted6(&up, sub6(), wkp(SRV))[..48]; // IPv6 header + 8 bytes
    let mut want = err6(wkp(ROUTER4), sub6(), icmp6::PACKET_TOO_BIG, 0, 1420, q6);
    want.ttl = 63;
    let mut want = want.build();
    set_tc_flow(&mut want, 14, 0, 0);
    assert_eq!(out, want);
    // payload length of the quoted header is the original one
    assert_eq!(
        Ipv6Packet::new_unchecked(&out[62..]).payload_len(),
        20 + 1400
    );
    // link MTUs bound it; a router that says 0 gets an RFC 1191 plateau
    let cfg = XlatConfig {
        mtu4: 1300,
        mtu6: 1500,
    };
    let out = run(&f, |p| v4_to_v6(p, &cfg, &to)).unwrap();
    assert_eq!(&out[58..62], &1320u32.to_be_bytes());
    // (the quoted total length says 2040: the plateau below is 2002)
    let mut q2040 = quoted.to_vec();
    q2040[2..4].copy_from_slice(&2040u16.to_be_bytes());
    let f0 = err4(ROUTER4, POOL, icmp4::DEST_UNREACHABLE, 4, 0, &q2040).build();
    let big = XlatConfig {
        mtu4: 9000,
        mtu6: 9000,
    };
    let out = run(&f0, |p| v4_to_v6(p, &big, &to)).unwrap();
    assert_eq!(&out[58..62], &(2002u32 + 20).to_be_bytes());
}

#[test]
fn time_exceeded_for_echo_v6_to_v4_translates_the_quoted_echo() {
    // A router on the IPv6 side says a down echo reply died there.
    let down = FrameSpec {
        ip6: ip6_spec(wkp(SRV), sub6()),
        ttl: 1,
        l4: L4::Icmp {
            ty: icmp6::ECHO_REPLY,
            code: 0,
            ident: 0x77,
            seq: 3,
        },
        payload: b"echo data".to_vec(),
        ..FrameSpec::default()
    };
    let quoted = down.build()[14..].to_vec();
    let router6 = v6("2001:db8:ffff::1");
    let f = err6(router6, wkp(SRV), icmp6::TIME_EXCEEDED, 0, 0, &quoted).build();
    let out = to4(&f, &To4::new(POOL, SRV).ident(9)).unwrap();
    // expected: ICMPv4 time exceeded quoting the IPv4 echo reply SRV -> POOL
    let q4 = FrameSpec {
        src_ip: SRV,
        dst_ip: POOL,
        ident: 0,
        dont_frag: false,
        ..FrameSpec {
            ip6: None,
            l4: L4::Icmp {
                ty: icmp4::ECHO_REPLY,
                code: 0,
                ident: 0x77,
                seq: 3,
            },
            ..down
        }
    }
    .build()[14..]
        .to_vec();
    let want = FrameSpec {
        ident: 9,
        dont_frag: false,
        ttl: 63,
        ..err4(POOL, SRV, icmp4::TIME_EXCEEDED, 0, 0, &q4)
    }
    .build();
    assert_eq!(out, want);
    let m = IcmpPacket::new_checked(&out[34..]).unwrap();
    assert!(m.verify_checksum_v4());
    assert!(IcmpPacket::new_checked(&out[34 + 28..])
        .unwrap()
        .verify_checksum_v4());
}

#[test]
fn packet_too_big_v6_to_v4_and_port_unreachable_codes() {
    let down = FrameSpec {
        ip6: ip6_spec(wkp(SRV), sub6()),
        payload: vec![1; 1300],
        ..FrameSpec::tcp(443, 40_000, ACK)
    };
    let quoted = down.build()[14..14 + 1232].to_vec(); // RFC 4443: as much as fits 1280
    let router6 = v6("2001:db8:ffff::1");
    let f = err6(router6, wkp(SRV), icmp6::PACKET_TOO_BIG, 0, 1400, &quoted).build();
    let out = to4(&f, &To4::new(POOL, SRV)).unwrap();
    let m = IcmpPacket::new_checked(&out[34..]).unwrap();
    assert_eq!((m.msg_type(), m.msg_code()), (3, 4));
    assert_eq!(&out[38..42], &[0, 0, 0x05, 0x64]); // 1380
    assert!(m.verify_checksum_v4());
    let inner = Ipv4Packet::new_unchecked(&out[42..62]);
    assert!(inner.verify_checksum());
    assert_eq!((inner.src_addr(), inner.dst_addr()), (SRV, POOL));
    assert_eq!(inner.total_len(), 20 + 20 + 1300);
    assert!(inner.dont_frag(), "1340 bytes > 1260");
    assert_eq!(out.len(), 14 + 20 + 8 + 20 + 1232 - 40);
    // Destination unreachable, port (1/4) -> (3/3); admin (1/1) -> (3/10)
    for (c6, c4) in [(4u8, 3u8), (1, 10), (0, 1), (3, 1)] {
        let f = err6(
            sub6(),
            wkp(SRV),
            icmp6::DEST_UNREACHABLE,
            c6,
            0,
            &quoted[..48],
        )
        .build();
        let out = to4(&f, &To4::new(POOL, SRV)).unwrap();
        assert_eq!((out[34], out[35]), (3, c4));
    }
}

#[test]
fn parameter_problem_pointers_and_protocol_unreachable() {
    let quoted = up_udp4().build()[14..].to_vec();
    let t6 = To6::new(wkp(SRV), sub6());
    // v4 pointer 9 (protocol) -> v6 pointer 6 (next header)
    let f = err4(SRV, POOL, 12, 0, 9 << 24, &quoted).build();
    let out = to6(&f, &t6).unwrap();
    assert_eq!(&out[54..62], &[4, 0, out[56], out[57], 0, 0, 0, 6]);
    // pointer 4 (identification) has no counterpart
    let f = err4(SRV, POOL, 12, 0, 4 << 24, &quoted).build();
    assert_eq!(to6(&f, &t6), Err(DropReason::XlatUntranslatable));
    // protocol unreachable -> parameter problem, unrecognised next header, 6
    let f = err4(SRV, POOL, 3, 2, 0, &quoted).build();
    let out = to6(&f, &t6).unwrap();
    assert_eq!(&out[54..62], &[4, 1, out[56], out[57], 0, 0, 0, 6]);
    // and the other way: v6 pointer 7 (hop limit) -> v4 pointer 8 (TTL)
    let q6 = quoted6(&up_udp4(), sub6(), wkp(SRV));
    let f = err6(sub6(), wkp(SRV), 4, 0, 7, &q6).build();
    let out = to4(&f, &To4::new(POOL, SRV)).unwrap();
    assert_eq!(&out[34..42], &[12, 0, out[36], out[37], 8, 0, 0, 0]);
    assert!(IcmpPacket::new_checked(&out[34..])
        .unwrap()
        .verify_checksum_v4());
}

#[test]
fn big_ipv4_errors_are_cut_to_1280_bytes_of_ipv6() {
    let up = FrameSpec {
        payload: vec![9; 1400],
        ..up_udp4()
    };
    let quoted = up.build()[14..].to_vec();
    let f = err4(SRV, POOL, 3, 3, 0, &quoted).build();
    let out = to6(&f, &To6::new(wkp(SRV), sub6())).unwrap();
    assert_eq!(out.len(), 14 + IPV6_MIN_MTU);
    let ip = Ipv6Packet::new_checked(&out[14..]).unwrap();
    assert_eq!(ip.payload_len() as usize, IPV6_MIN_MTU - 40);
    let m = IcmpPacket::new_checked(ip.payload()).unwrap();
    assert!(m.verify_checksum_v6(&wkp(SRV), &sub6()));
    // the quoted UDP header's checksum was updated (it is in the quote):
    // the same as a full computation over the untruncated translated packet
    let full = quoted6(&up, sub6(), wkp(SRV));
    assert_eq!(&out[14 + 48..14 + 48 + 48], &full[..48]);
}

#[test]
fn untranslatable_errors_are_dropped_with_their_reason() {
    let quoted = up_udp4().build()[14..].to_vec();
    let t6 = To6::new(wkp(SRV), sub6());
    // bad error checksum
    let mut f = err4(SRV, POOL, 3, 3, 0, &quoted).build();
    f[36] ^= 1;
    assert_eq!(to6(&f, &t6), Err(DropReason::BadL4));
    // quote shorter than its IP header
    let f = err4(SRV, POOL, 3, 3, 0, &quoted[..19]).build();
    assert_eq!(to6(&f, &t6), Err(DropReason::XlatIcmpInner));
    // an error quoting an error
    let inner_err = err4(POOL, SRV, 3, 3, 0, &quoted).build()[14..].to_vec();
    let f = err4(SRV, POOL, 11, 0, 0, &inner_err).build();
    assert_eq!(to6(&f, &t6), Err(DropReason::XlatIcmpInner));
    // a quoted fragment
    let frag = FrameSpec {
        more_frags: true,
        ..up_udp4()
    }
    .build()[14..]
        .to_vec();
    let f = err4(SRV, POOL, 11, 0, 0, &frag).build();
    assert_eq!(to6(&f, &t6), Err(DropReason::XlatFragment));
    // v6: a quoted packet with a fragment header; with hop-by-hop
    let q6 = FrameSpec {
        ip6: Some(Ip6Spec {
            fragment: true,
            ..ip6_spec(wkp(SRV), sub6()).unwrap()
        }),
        ..FrameSpec::udp(53, 40_000)
    }
    .build()[14..]
        .to_vec();
    let t4 = To4::new(POOL, SRV);
    let f = err6(sub6(), wkp(SRV), 1, 4, 0, &q6).build();
    assert_eq!(to4(&f, &t4), Err(DropReason::XlatFragment));
    let mut hbh = q6.clone();
    hbh[6] = 0;
    let f = err6(sub6(), wkp(SRV), 1, 4, 0, &hbh).build();
    assert_eq!(to4(&f, &t4), Err(DropReason::XlatIcmpInner));
    // bad ICMPv6 checksum
    let mut f = err6(sub6(), wkp(SRV), 1, 4, 0, &q6[..48]).build();
    f[14 + 40 + 2] ^= 0x80;
    assert_eq!(to4(&f, &t4), Err(DropReason::BadL4));
}

// ------------------------------------------------------------ properties --

fn arb_prefix() -> impl Strategy<Value = Prefix> {
    (any::<[u8; 16]>(), 0usize..7).prop_map(|(raw, i)| {
        if i == 6 {
            return Prefix::WELL_KNOWN;
        }
        let len = [32u8, 40, 48, 56, 64, 96][i];
        let mut b = [0u8; 16];
        b[..len as usize / 8].copy_from_slice(&raw[..len as usize / 8]);
        b[8] = 0;
        Prefix::new(b, len).unwrap()
    })
}

/// TCP (random flags, window, MSS option), UDP, echo request or reply.
fn arb_l4() -> impl Strategy<Value = L4> {
    prop_oneof![
        (
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<u16>(),
            proptest::option::of(any::<u16>())
        )
            .prop_map(|(s, d, seq, ack, flags, window, mss)| L4::Tcp {
                src_port: s,
                dst_port: d,
                seq,
                ack,
                flags,
                window,
                options: mss.map_or(Vec::new(), |m| vec![2, 4, (m >> 8) as u8, m as u8]),
            }),
        (any::<u16>(), any::<u16>()).prop_map(|(s, d)| L4::Udp {
            src_port: s,
            dst_port: d,
            checksum: true,
        }),
        (any::<bool>(), any::<u16>(), any::<u16>()).prop_map(|(req, ident, seq)| L4::Icmp {
            ty: if req { 8 } else { 0 },
            code: 0,
            ident,
            seq,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Rewriting the quoted ports of an ICMPv4 error keeps the error's
    /// checksum valid, and the quoted TCP/UDP/echo checksum valid for the
    /// new ports (the whole packet quoted); the rest is untouched.
    #[test]
    fn quoted_port_rewrite_keeps_checksums(
        l4 in arb_l4(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        sport in any::<u16>(),
        dport in any::<u16>(),
        opts in 0usize..3,
    ) {
        let q = FrameSpec { src_ip: POOL, dst_ip: SRV, l4: l4.clone(), payload, ip_options: vec![1; opts * 4], ..FrameSpec::default() };
        let quoted = q.build()[14..].to_vec();
        let mut f = err4(SRV, POOL, icmp4::DEST_UNREACHABLE, 3, 0, &quoted).build();
        let ihl = 20 + opts * 4;
        let proto = f[14 + 28 + 9];
        rewrite_quoted_ports(&mut f[34..], 8 + ihl, proto, sport, dport);
        prop_assert!(IcmpPacket::new_checked(&f[34..]).unwrap().verify_checksum_v4());
        let mut want = q.clone();
        match &mut want.l4 {
            L4::Tcp { src_port, dst_port, .. } | L4::Udp { src_port, dst_port, .. } => (*src_port, *dst_port) = (sport, dport),
            L4::Icmp { ident, .. } => *ident = sport,
            L4::Raw { .. } => unreachable!(),
        }
        prop_assert_eq!(&f[42..], &want.build()[14..]);
    }

    /// IPv4 → IPv6 → IPv4 gives back the frame, but for two router hops
    /// (TTL − 2) and DF by the 1260-byte rule; every step's checksums verify.
    #[test]
    fn v4_v6_v4_round_trip(
        l4 in arb_l4(), src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
        ttl in 3u8.., tos in any::<u8>(), ident in any::<u16>(), df in any::<bool>(),
        vlan in proptest::option::of(0u16..4096),
        payload in proptest::collection::vec(any::<u8>(), 0..1400),
        pf in arb_prefix(),
    ) {
        let spec = FrameSpec { src_ip: src, dst_ip: dst, ttl, ident, dont_frag: df, vlan, l4, payload, ..FrameSpec::default() };
        let l3 = if vlan.is_some() { 18 } else { 14 };
        let mut f = spec.build();
        set_tos(&mut f, l3, tos);
        let (s6, d6) = (pf.embed(src), pf.embed(dst));
        let mid = to6(&f, &To6::new(s6, d6)).unwrap();
        prop_assert!(checksums_ok(&mid));
        prop_assert_eq!(mid.len(), f.len() + 20);
        let m = crate::wire::parse(&mid).unwrap();
        prop_assert_eq!((m.src, m.dst, m.ttl), (s6, d6, ttl - 1));
        let back = to4(&mid, &To4::new(pf.extract(&s6).unwrap(), pf.extract(&d6).unwrap()).ident(ident)).unwrap();
        prop_assert!(checksums_ok(&back));
        let mut want = FrameSpec { ttl: ttl - 2, dont_frag: f.len() - l3 > DF_ABOVE, ..spec }.build();
        set_tos(&mut want, l3, tos);
        prop_assert_eq!(back, want);
    }

    /// IPv6 → IPv4 → IPv6 gives back the frame but for hop limit − 2 and the
    /// flow label (0).
    #[test]
    fn v6_v4_v6_round_trip(
        l4 in arb_l4(), src in any::<[u8; 16]>(), v4 in any::<[u8; 4]>(), pool in any::<[u8; 4]>(),
        hop in 3u8.., tc in any::<u8>(), flow in 0u32..1 << 20, ident in any::<u16>(),
        vlan in proptest::option::of(0u16..4096),
        payload in proptest::collection::vec(any::<u8>(), 0..1400),
        pf in arb_prefix(),
    ) {
        let l4 = match l4 { L4::Icmp { ty, code, ident, seq } => L4::Icmp { ty: if ty == 8 { 128 } else { 129 }, code, ident, seq }, l => l };
        let dst = pf.embed(v4);
        let spec = FrameSpec { ip6: ip6_spec(src, dst), ttl: hop, vlan, l4, payload, ..FrameSpec::default() };
        let l3 = if vlan.is_some() { 18 } else { 14 };
        let mut f = spec.build();
        set_tc_flow(&mut f, l3, tc, flow);
        let mid = to4(&f, &To4::new(pool, pf.extract(&dst).unwrap()).ident(ident)).unwrap();
        prop_assert!(checksums_ok(&mid));
        let ip = Ipv4Packet::new_checked(&mid[l3..]).unwrap();
        prop_assert_eq!((ip.ident(), ip.ttl(), ip.dscp() << 2 | ip.ecn()), (ident, hop - 1, tc));
        prop_assert_eq!(ip.dont_frag(), ip.total_len() as usize > DF_ABOVE);
        let back = to6(&mid, &To6::new(src, dst)).unwrap();
        prop_assert!(checksums_ok(&back));
        let mut want = FrameSpec { ttl: hop - 2, ..spec }.build();
        set_tc_flow(&mut want, l3, tc, 0);
        prop_assert_eq!(back, want);
    }

    /// Random bytes never panic; a refused frame is left as it was (checked
    /// by `run`); an accepted one is a well-formed frame of the other
    /// version.
    #[test]
    fn random_bytes_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..160), et6 in any::<bool>()) {
        let mut f = frame;
        if f.len() >= 15 {
            // steer most frames past the Ethernet check
            f[12..14].copy_from_slice(if et6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
            f[14] = if et6 { 0x60 | (f[14] & 0x0f) } else { 0x45 };
        }
        if let Ok(out) = to6(&f, &To6::new(wkp(SRV), sub6())) {
            prop_assert!(parse_l3(&out).unwrap().is_ipv6());
        }
        if let Ok(out) = to4(&f, &To4::new(POOL, SRV)) {
            prop_assert!(parse_l3(&out).unwrap().is_ipv4());
        }
    }

    /// Valid frames (errors included) with random bytes changed or cut:
    /// never a panic, refused ones untouched.
    #[test]
    fn mutated_frames_never_panic(
        which in 0usize..8,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(), do_cut in any::<bool>(),
    ) {
        let quoted = up_udp4().build()[14..].to_vec();
        let q6 = quoted6(&up_udp4(), sub6(), wkp(SRV));
        let echo6 = FrameSpec { l4: L4::Icmp { ty: 128, code: 0, ident: 1, seq: 2 }, ..err6(sub6(), wkp(SRV), 0, 0, 0, b"x") };
        let frames = [
            FrameSpec::tcp(1, 2, SYN).build(),
            FrameSpec { ip6: ip6_spec(sub6(), wkp(SRV)), ..FrameSpec::udp(1, 2) }.build(),
            err4(SRV, POOL, 3, 4, 1400, &quoted).build(),
            err4(SRV, POOL, 11, 0, 0, &quoted[..28]).build(),
            err4(SRV, POOL, 12, 0, 9 << 24, &quoted).build(),
            err6(sub6(), wkp(SRV), 2, 0, 1400, &q6).build(),
            err6(sub6(), wkp(SRV), 4, 0, 6, &q6[..44]).build(),
            echo6.build(),
        ];
        let mut f = frames[which].clone();
        for (i, b) in edits {
            let i = i.index(f.len());
            f[i] = b;
        }
        if do_cut {
            f.truncate(cut.index(f.len() + 1));
        }
        if let Ok(out) = to6(&f, &To6::new(wkp(SRV), sub6())) {
            prop_assert!(parse_l3(&out).unwrap().is_ipv6());
        }
        if let Ok(out) = to4(&f, &To4::new(POOL, SRV)) {
            prop_assert!(parse_l3(&out).unwrap().is_ipv4());
        }
    }
}
