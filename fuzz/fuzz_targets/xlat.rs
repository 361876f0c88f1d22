//! Fuzz the IPv4 <-> IPv6 translator (RFC 7915) over arbitrary frames, both
//! directions, with the frame placed in a buffer that leaves room to grow.
//! Byte 0 picks the direction and how much spare room the buffer has.
//! Invariants: no panic; a refused frame is left exactly as it was; a
//! translated frame fits its buffer; translating back what v4 -> v6 produced
//! never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgw_pipelines::xlat::{v4_to_v6, v6_to_v4, To4, To6, XlatConfig};
use pgw_pipelines::Pkt;

const SRC6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
];
const DST6: [u8; 16] = [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 10, 33, 0, 1];

fuzz_target!(|data: &[u8]| {
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
    let len = pkt.len;
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
});
