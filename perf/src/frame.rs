//! Frame templates of the generator, patched per packet with incremental
//! checksums, and the reflector's in-place answer.
//!
//! Layout is fixed (Ethernet, IPv4 without options, TCP without options or
//! UDP) so the hot path works at constant offsets; templates are built once
//! with `pgw_pipelines::wire::build` and their checksums are then the sum of
//! a precomputed base and the few 16-bit words that change per packet.
//!
//! Sizes are Ethernet frame sizes **on the wire, FCS included** (as Pktgen,
//! TRex and RFC 2544 count them): a "64 B" frame is 60 bytes in the mbuf.
//! Every generated frame carries a 48-bit TSC timestamp as the first 6 bytes
//! of its L4 payload; the reflector echoes the payload, so the timestamp comes
//! back with the answer.

use pgw_pipelines::wire::build::{FrameSpec, L4};

/// Ethernet FCS, counted in sizes but not present in the mbuf.
pub const FCS: usize = 4;
pub const OFF_IP: usize = 14;
pub const OFF_L4: usize = 34;
/// Payload offset of TCP (no options) and UDP frames.
pub const OFF_PAY_TCP: usize = 54;
pub const OFF_PAY_UDP: usize = 42;
/// Bytes of the timestamp in the payload.
pub const TS_LEN: usize = 6;
pub const TS_MASK: u64 = (1 << 48) - 1;
/// Smallest frame size (wire, FCS included) that holds a TCP header and the timestamp.
pub const MIN_SIZE: usize = OFF_PAY_TCP + TS_LEN + FCS; // 64
/// Largest size: a 1500-byte IP packet.
pub const MAX_SIZE: usize = 1518;

pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// TCP flag bits.
pub use pgw_pipelines::wire::tcp::flags;

#[inline]
fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Unfolded ones'-complement sum of big-endian 16-bit words (even length).
fn sum_words(b: &[u8]) -> u64 {
    b.chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u64)
        .sum()
}

#[inline]
fn w32(a: [u8; 4]) -> u64 {
    (u16::from_be_bytes([a[0], a[1]]) as u64) + (u16::from_be_bytes([a[2], a[3]]) as u64)
}

#[inline]
fn ts_words(ts: u64) -> u64 {
    ((ts >> 32) & 0xffff) + ((ts >> 16) & 0xffff) + (ts & 0xffff)
}

/// One frame layout (protocol and size) with everything fixed filled in
/// and the per-packet fields zero.
#[derive(Clone, Debug)]
pub struct Template {
    pub bytes: Vec<u8>,
    pub proto: u8,
    /// Wire size (FCS included).
    pub size: usize,
    ip_base: u64,
    l4_base: u64,
}

impl Template {
    /// A frame of `size` bytes on the wire from `src_mac` to `dst_mac`.
    pub fn new(proto: u8, size: usize, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Template {
        assert!((MIN_SIZE..=MAX_SIZE).contains(&size), "frame size {size}");
        let frame_len = size - FCS;
        let hdr = if proto == PROTO_TCP {
            OFF_PAY_TCP
        } else {
            OFF_PAY_UDP
        };
        let l4 = if proto == PROTO_TCP {
            L4::Tcp {
                src_port: 0,
                dst_port: 0,
                seq: 0x1000_0000,
                ack: 0x2000_0000,
                flags: 0,
                window: 65535,
                options: Vec::new(),
            }
        } else {
            L4::Udp {
                src_port: 0,
                dst_port: 0,
                checksum: true,
            }
        };
        // Payload: the timestamp (zero here), then a recognisable pattern.
        let mut payload = vec![0u8; frame_len - hdr];
        for (i, b) in payload.iter_mut().enumerate().skip(TS_LEN) {
            *b = (i as u8).wrapping_mul(7) ^ 0x5a;
        }
        let spec = FrameSpec {
            src_mac,
            dst_mac,
            src_ip: [0; 4],
            dst_ip: [0; 4],
            ttl: 64,
            ident: 0,
            dont_frag: true,
            l4,
            payload,
            ..FrameSpec::default()
        };
        let mut bytes = spec.build();
        assert_eq!(bytes.len(), frame_len);
        // Zero the checksums and compute the base sums of what is fixed.
        bytes[OFF_IP + 10..OFF_IP + 12].fill(0);
        let ip_base = sum_words(&bytes[OFF_IP..OFF_L4]);
        let ck = if proto == PROTO_TCP {
            OFF_L4 + 16
        } else {
            OFF_L4 + 6
        };
        bytes[ck..ck + 2].fill(0);
        let l4_len = (frame_len - OFF_L4) as u64;
        let l4_base = proto as u64 + l4_len + sum_words(&bytes[OFF_L4..]);
        Template {
            bytes,
            proto,
            size,
            ip_base,
            l4_base,
        }
    }

    /// Frame length in the mbuf.
    #[inline]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Write this template into `buf` with the packet's own fields and
    /// correct checksums; returns the frame length. `tcp_flags` is ignored
    /// for UDP.
    #[inline]
    pub fn write(
        &self,
        buf: &mut [u8],
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        tcp_flags: u8,
        ts: u64,
    ) -> usize {
        let n = self.bytes.len();
        let b = &mut buf[..n];
        b.copy_from_slice(&self.bytes);
        b[OFF_IP + 12..OFF_IP + 16].copy_from_slice(&src.0);
        b[OFF_IP + 16..OFF_IP + 20].copy_from_slice(&dst.0);
        let ipc = !fold(self.ip_base + w32(src.0) + w32(dst.0));
        b[OFF_IP + 10..OFF_IP + 12].copy_from_slice(&ipc.to_be_bytes());
        b[OFF_L4..OFF_L4 + 2].copy_from_slice(&src.1.to_be_bytes());
        b[OFF_L4 + 2..OFF_L4 + 4].copy_from_slice(&dst.1.to_be_bytes());
        let ts = ts & TS_MASK;
        let tsb = ts.to_be_bytes();
        let var = w32(src.0) + w32(dst.0) + src.1 as u64 + dst.1 as u64 + ts_words(ts);
        if self.proto == PROTO_TCP {
            b[OFF_L4 + 13] = tcp_flags;
            b[OFF_PAY_TCP..OFF_PAY_TCP + TS_LEN].copy_from_slice(&tsb[2..8]);
            let c = !fold(self.l4_base + var + tcp_flags as u64);
            b[OFF_L4 + 16..OFF_L4 + 18].copy_from_slice(&c.to_be_bytes());
        } else {
            b[OFF_PAY_UDP..OFF_PAY_UDP + TS_LEN].copy_from_slice(&tsb[2..8]);
            let mut c = !fold(self.l4_base + var);
            if c == 0 {
                c = 0xffff;
            }
            b[OFF_L4 + 6..OFF_L4 + 8].copy_from_slice(&c.to_be_bytes());
        }
        n
    }
}

/// The fields of a received frame the generator looks at (fixed offsets,
/// checked lengths; `None` for anything that is not IPv4 TCP/UDP without IP
/// options; TCP options are skipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub proto: u8,
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    /// The 48-bit timestamp at the start of the payload; `None` for a
    /// segment with no room for one (the GW's own SYN-ACK with the SYN
    /// proxy: options, no payload).
    pub ts: Option<u64>,
}

#[inline]
pub fn peek(f: &[u8]) -> Option<Seen> {
    if f.len() < OFF_PAY_UDP + TS_LEN || f[12] != 0x08 || f[13] != 0x00 || f[OFF_IP] != 0x45 {
        return None;
    }
    let proto = f[OFF_IP + 9];
    let pay = match proto {
        PROTO_TCP if f.len() >= OFF_PAY_TCP && f[OFF_L4 + 12] >> 4 >= 5 => {
            OFF_L4 + (f[OFF_L4 + 12] >> 4) as usize * 4
        }
        PROTO_UDP => OFF_PAY_UDP,
        _ => return None,
    };
    let a4 = |o: usize| [f[o], f[o + 1], f[o + 2], f[o + 3]];
    let ts = f.get(pay..pay + TS_LEN).map(|b| {
        let mut t = [0u8; 8];
        t[2..8].copy_from_slice(b);
        u64::from_be_bytes(t)
    });
    Some(Seen {
        proto,
        src: a4(OFF_IP + 12),
        dst: a4(OFF_IP + 16),
        sport: u16::from_be_bytes([f[OFF_L4], f[OFF_L4 + 1]]),
        dport: u16::from_be_bytes([f[OFF_L4 + 2], f[OFF_L4 + 3]]),
        tcp_flags: if proto == PROTO_TCP {
            f[OFF_L4 + 13]
        } else {
            0
        },
        ts,
    })
}

/// What the reflector does with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reflect {
    /// Answered in place: send it back.
    Answer,
    /// A pure ACK or a RST: nothing to answer (the server's stack would
    /// absorb it too).
    Absorb,
    /// Not IPv4 TCP/UDP (ARP from the gateway, ...).
    Other,
}

/// Answer a frame in place as a server would: Ethernet and IP addresses and
/// ports swapped (the checksums do not change: the sums are commutative),
/// SYN → SYN-ACK, FIN → FIN-ACK, data (PSH) echoed with ACK, UDP echoed;
/// the payload (with the timestamp) is kept. `our_mac` becomes the source.
#[inline]
pub fn reflect(f: &mut [u8], our_mac: [u8; 6]) -> Reflect {
    let Some(s) = peek(f) else {
        return Reflect::Other;
    };
    if s.proto == PROTO_TCP {
        let fl = s.tcp_flags;
        let new = if fl & flags::RST != 0 {
            return Reflect::Absorb;
        } else if fl & flags::SYN != 0 {
            if fl & flags::ACK != 0 {
                return Reflect::Absorb;
            }
            flags::SYN | flags::ACK
        } else if fl & flags::FIN != 0 {
            flags::FIN | flags::ACK
        } else if fl & flags::PSH != 0 {
            flags::PSH | flags::ACK
        } else {
            return Reflect::Absorb;
        };
        if new != fl {
            // RFC 1624: HC' = ~(~HC + ~m + m') over the word at offset 12.
            let word_old = u16::from_be_bytes([f[OFF_L4 + 12], fl]) as u64;
            let word_new = u16::from_be_bytes([f[OFF_L4 + 12], new]) as u64;
            let hc = u16::from_be_bytes([f[OFF_L4 + 16], f[OFF_L4 + 17]]) as u64;
            let c = !fold((!hc & 0xffff) + (!word_old & 0xffff) + word_new);
            f[OFF_L4 + 13] = new;
            f[OFF_L4 + 16..OFF_L4 + 18].copy_from_slice(&c.to_be_bytes());
        }
    }
    // Ethernet: back to the sender.
    let mut peer = [0u8; 6];
    peer.copy_from_slice(&f[6..12]);
    f[0..6].copy_from_slice(&peer);
    f[6..12].copy_from_slice(&our_mac);
    // IP addresses and ports.
    for i in 0..4 {
        f.swap(OFF_IP + 12 + i, OFF_IP + 16 + i);
    }
    f.swap(OFF_L4, OFF_L4 + 2);
    f.swap(OFF_L4 + 1, OFF_L4 + 3);
    Reflect::Answer
}

/// Frame sizes to cycle through: one size, or a mix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SizeMix {
    /// One entry per slot of the cycle (IMIX 7:4:1 has 12 slots).
    pub cycle: Vec<usize>,
    pub name: String,
}

impl SizeMix {
    /// `64`, `1518`, `imix` (7 × 64, 4 × 576, 1 × 1518), or `64,576,1518`
    /// (equal shares).
    pub fn parse(s: &str) -> Result<SizeMix, String> {
        let cycle = if s.eq_ignore_ascii_case("imix") {
            let mut v = vec![64; 7];
            v.extend([576; 4]);
            v.push(1518);
            v
        } else {
            s.split(',')
                .map(|x| {
                    x.trim()
                        .parse::<usize>()
                        .map_err(|_| format!("--size {s:?}: not a number or \"imix\""))
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        for &n in &cycle {
            if !(MIN_SIZE..=MAX_SIZE).contains(&n) {
                return Err(format!(
                    "--size {n}: frame sizes (FCS included) must be within {MIN_SIZE}..={MAX_SIZE}"
                ));
            }
        }
        Ok(SizeMix {
            cycle,
            name: s.to_string(),
        })
    }

    /// Mean wire size.
    pub fn mean(&self) -> f64 {
        self.cycle.iter().sum::<usize>() as f64 / self.cycle.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgw_pipelines::wire::build::checksums_ok;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    #[test]
    fn templates_give_valid_checksums_at_every_size() {
        for proto in [PROTO_TCP, PROTO_UDP] {
            for size in [64, 65, 128, 576, 1518] {
                let t = Template::new(proto, size, A, B);
                let mut buf = vec![0u8; 2048];
                for (i, fl) in [flags::SYN, flags::PSH | flags::ACK, flags::FIN | flags::ACK]
                    .into_iter()
                    .enumerate()
                {
                    let ts = 0xfedc_ba98_7654_3210u64.wrapping_mul(i as u64 + 1);
                    let n = t.write(
                        &mut buf,
                        ([10, 1, i as u8, 7], 40000 + i as u16),
                        ([10, 33, 0, 1], 443),
                        fl,
                        ts,
                    );
                    assert_eq!(n, size - FCS);
                    assert!(checksums_ok(&buf[..n]), "proto {proto} size {size}");
                    let s = peek(&buf[..n]).unwrap();
                    assert_eq!(s.ts, Some(ts & TS_MASK));
                    assert_eq!(s.sport, 40000 + i as u16);
                    if proto == PROTO_TCP {
                        assert_eq!(s.tcp_flags, fl);
                    }
                }
            }
        }
    }

    #[test]
    fn reflection_answers_with_valid_checksums() {
        let t = Template::new(PROTO_TCP, 64, A, B);
        let mut buf = vec![0u8; 64];
        for (fl, want, answer) in [
            (flags::SYN, flags::SYN | flags::ACK, Reflect::Answer),
            (
                flags::PSH | flags::ACK,
                flags::PSH | flags::ACK,
                Reflect::Answer,
            ),
            (
                flags::FIN | flags::ACK,
                flags::FIN | flags::ACK,
                Reflect::Answer,
            ),
            (flags::FIN, flags::FIN | flags::ACK, Reflect::Answer),
            (flags::ACK, 0, Reflect::Absorb),
            (flags::RST, 0, Reflect::Absorb),
        ] {
            let n = t.write(
                &mut buf,
                ([10, 1, 0, 7], 40000),
                ([10, 80, 0, 11], 8080),
                fl,
                77,
            );
            assert_eq!(reflect(&mut buf[..n], [2, 9, 9, 9, 9, 9]), answer);
            if answer == Reflect::Answer {
                assert!(checksums_ok(&buf[..n]));
                let s = peek(&buf[..n]).unwrap();
                assert_eq!((s.src, s.sport), ([10, 80, 0, 11], 8080));
                assert_eq!((s.dst, s.dport), ([10, 1, 0, 7], 40000));
                assert_eq!(s.tcp_flags, want);
                assert_eq!(s.ts, Some(77));
                assert_eq!(&buf[0..6], &A);
                assert_eq!(&buf[6..12], &[2, 9, 9, 9, 9, 9]);
            }
        }
        let u = Template::new(PROTO_UDP, 128, A, B);
        let mut buf = vec![0u8; 128];
        let n = u.write(&mut buf, ([10, 1, 0, 7], 5353), ([10, 33, 0, 3], 53), 0, 5);
        assert_eq!(reflect(&mut buf[..n], B), Reflect::Answer);
        assert!(checksums_ok(&buf[..n]));
    }

    #[test]
    fn size_mixes() {
        assert_eq!(SizeMix::parse("64").unwrap().cycle, vec![64]);
        let imix = SizeMix::parse("imix").unwrap();
        assert_eq!(imix.cycle.len(), 12);
        assert!((imix.mean() - 355.83).abs() < 0.1);
        assert!(SizeMix::parse("60").is_err());
        assert!(SizeMix::parse("64,1519").is_err());
    }
}
