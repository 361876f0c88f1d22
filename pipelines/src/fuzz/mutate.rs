//! A seeded input generator: random bytes, and mutations of valid inputs.
//! Deterministic for a seed, so a run can be repeated exactly.

/// SplitMix64: small, fast, and every seed gives a full-period stream.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Bytes that sit at boundaries of length and type fields.
const INTERESTING_U8: [u8; 12] = [0, 1, 2, 3, 4, 16, 19, 20, 0x7f, 0x80, 0xfe, 0xff];

/// One input: one time in eight random bytes (up to `max_len`), otherwise a
/// corpus entry with one to four mutations. An empty corpus gives random
/// bytes.
pub fn generate(rng: &mut Rng, corpus: &[Vec<u8>], max_len: usize) -> Vec<u8> {
    if corpus.is_empty() || rng.chance(8) {
        let cap = if rng.chance(2) { 64 } else { max_len };
        let n = rng.below(max_len.min(cap) + 1);
        return (0..n).map(|_| rng.byte()).collect();
    }
    let mut v = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(4) {
        mutate(rng, &mut v, corpus, max_len);
    }
    v
}

/// One mutation of `v` in place (its length stays within `max_len`).
pub fn mutate(rng: &mut Rng, v: &mut Vec<u8>, corpus: &[Vec<u8>], max_len: usize) {
    let len = v.len();
    match rng.below(11) {
        // Bit flip.
        0 if len > 0 => {
            let i = rng.below(len);
            v[i] ^= 1 << rng.below(8);
        }
        // Random byte.
        1 if len > 0 => {
            let i = rng.below(len);
            v[i] = rng.byte();
        }
        // Interesting byte.
        2 if len > 0 => {
            let i = rng.below(len);
            v[i] = INTERESTING_U8[rng.below(INTERESTING_U8.len())];
        }
        // Small arithmetic on a byte (a length or count one off).
        3 if len > 0 => {
            let i = rng.below(len);
            let d = 1 + rng.below(4) as u8;
            v[i] = if rng.chance(2) {
                v[i].wrapping_add(d)
            } else {
                v[i].wrapping_sub(d)
            };
        }
        // Length-field tampering: a big-endian u16 near the input's own
        // length (or a limit) written where a length field may be.
        4 if len >= 2 => {
            let i = rng.below(len - 1);
            let near = [
                0,
                1,
                len,
                len.saturating_sub(i),
                len + 1,
                len.saturating_sub(1),
                4096,
                4097,
                0xffff,
            ][rng.below(9)];
            let value = (near as u16)
                .wrapping_add(rng.below(3) as u16)
                .wrapping_sub(1);
            v[i..i + 2].copy_from_slice(&value.to_be_bytes());
        }
        // Truncation.
        5 if len > 0 => v.truncate(rng.below(len)),
        // Insert random bytes.
        6 => {
            let at = rng.below(len + 1);
            let n = (1 + rng.below(16)).min(max_len.saturating_sub(len));
            let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            v.splice(at..at, bytes);
        }
        // Delete a range.
        7 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(32));
            v.drain(at..at + n);
        }
        // Duplicate a range in place.
        8 if len > 0 => {
            let at = rng.below(len);
            let n = (1 + rng.below((len - at).min(32))).min(max_len.saturating_sub(len));
            let chunk = v[at..at + n].to_vec();
            v.splice(at..at, chunk);
        }
        // Splice: our head, another input's tail.
        9 if !corpus.is_empty() => {
            let other = &corpus[rng.below(corpus.len())];
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            v.truncate(cut);
            v.extend_from_slice(&other[from..]);
            v.truncate(max_len);
        }
        // Extend with the fill a buffer may have.
        _ => {
            let n = rng.below(8).min(max_len.saturating_sub(len));
            let b = if rng.chance(2) { 0 } else { 0xff };
            v.resize(len + n, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_inputs_and_lengths_bounded() {
        let corpus = vec![vec![1u8; 40], (0..200u8).collect()];
        let run = |seed| {
            let mut r = Rng::new(seed);
            (0..2000)
                .map(|_| generate(&mut r, &corpus, 256))
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        assert!(a.iter().all(|v| v.len() <= 256));
        // Every kind of change happens: shorter, longer, same length but different.
        assert!(a.iter().any(|v| v.len() < 40));
        assert!(a.iter().any(|v| v.len() > 200));
        assert!(a.iter().any(|v| v.len() == 200 && v[..] != corpus[1][..]));
    }

    #[test]
    fn mutations_of_a_radius_packet_are_both_accepted_and_refused() {
        use crate::mgmt::radius::{attr, Builder, Code, Packet};
        let mut b = Builder::new(Code::AccountingRequest, 1);
        b.attr_str(attr::USER_NAME, "alice").unwrap();
        b.attr_u32(attr::ACCT_STATUS_TYPE, 1).unwrap();
        let corpus = vec![b.finish_accounting_request(b"k")];
        let mut r = Rng::new(1);
        let (mut ok, mut bad) = (0, 0);
        for _ in 0..2000 {
            match Packet::parse(&generate(&mut r, &corpus, 4096)) {
                Ok(_) => ok += 1,
                Err(_) => bad += 1,
            }
        }
        assert!(ok > 100 && bad > 100, "parsed {ok}, refused {bad}");
    }
}
