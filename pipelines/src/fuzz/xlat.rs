//! The IPv4 <-> IPv6 translator (RFC 7915) over arbitrary frames, both
//! directions, with the frame placed in a buffer that leaves room to grow.
//! Byte 0 picks the direction (bit 0: 0 = v6 -> v4, 1 = v4 -> v6) and how
//! much spare room the buffer has (the other bits).
//! Invariants: no panic; a refused frame is left exactly as it was; a
//! translated frame fits its buffer; translating back what v4 -> v6 produced
//! never panics either.
use crate::xlat::{v4_to_v6, v6_to_v4, To4, To6, XlatConfig};
use crate::Pkt;

const SRC6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
];
const DST6: [u8; 16] = [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 10, 33, 0, 1];

/// Run one input (layout in this module's doc).
pub fn xlat(data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let (ctl, frame) = (data[0], &data[1..]);
    let room = frame.len() + (ctl as usize >> 1) % 64;
    let mut buf = vec![0u8; room];
    buf[..frame.len()].copy_from_slice(frame);
    let before = buf.clone();
    let cfg = XlatConfig::default();
    let mut pkt = Pkt::new(&mut buf, frame.len(), 0);
    let r = if ctl & 1 == 0 {
        v6_to_v4(&mut pkt, &cfg, &To4::new([10, 80, 0, 100], [10, 80, 0, 11]))
    } else {
        v4_to_v6(&mut pkt, &cfg, &To6::new(DST6, SRC6))
    };
    let len = pkt.len();
    assert!(len <= room);
    match r {
        Err(_) => assert_eq!(
            &buf[..frame.len()],
            &before[..frame.len()],
            "a refused frame was modified"
        ),
        Ok(()) if ctl & 1 == 1 => {
            // Back again: must not panic whatever it decides.
            let mut p = Pkt::new(&mut buf, len, 0);
            let _ = v6_to_v4(&mut p, &cfg, &To4::new([10, 33, 0, 1], [10, 50, 0, 2]));
        }
        Ok(()) => {}
    }
}

/// TCP, UDP and ICMP each way, an IPv6 fragment, ICMP errors.
pub(super) fn seeds() -> Vec<Vec<u8>> {
    use crate::wire::build::{FrameSpec, Ip6Spec, L4};
    let with = |ctl: u8, frame: Vec<u8>| {
        let mut v = vec![ctl];
        v.extend(frame);
        v
    };
    let six = |f: FrameSpec, fragment: bool| FrameSpec {
        ip6: Some(Ip6Spec {
            src: SRC6,
            dst: DST6,
            fragment,
        }),
        ..f
    };
    let four = |f: FrameSpec| FrameSpec {
        src_ip: [10, 33, 0, 1],
        dst_ip: [10, 80, 0, 100],
        ..f
    };
    let icmp_err = |ty: u8, code: u8| FrameSpec {
        l4: L4::Icmp {
            ty,
            code,
            ident: 0,
            seq: 1400,
        },
        payload: four(FrameSpec::tcp(80, 40000, 0x10)).build()[14..48].to_vec(),
        ..four(FrameSpec::default())
    };
    vec![
        with(0x20, six(FrameSpec::tcp(33000, 80, 0x02), false).build()),
        with(0x20, six(FrameSpec::udp(33000, 53), false).build()),
        with(0x20, six(FrameSpec::ping(1, 2), false).build()),
        with(0x20, six(FrameSpec::udp(33000, 53), true).build()),
        with(0x41, four(FrameSpec::tcp(80, 33000, 0x12)).build()),
        with(0x41, four(FrameSpec::udp(53, 33000)).build()),
        with(0x41, four(FrameSpec::ping(1, 2)).build()),
        with(0x41, icmp_err(3, 4).build()),
        with(0x41, icmp_err(11, 0).build()),
    ]
}
