//! Fuzz targets as plain functions, and the input generator that drives
//! them on a stable toolchain.
//!
//! Each target is a `fn(&[u8])` that must not panic on any input; it checks
//! its own invariants with `assert!`. Two drivers call the same functions:
//! - `fuzz/fuzz_targets/*.rs` (cargo-fuzz, libFuzzer, needs nightly), one
//!   line each;
//! - `pipelines/tests/fuzz_smoke.rs` (stable, `cargo test`): for a time
//!   budget per target it feeds inputs from [`generate`] — random bytes and
//!   mutations (bit flips, truncation, length-field tampering, splicing, ...)
//!   of the target's valid [`Target::seeds`] — from a printed seed, and
//!   prints a failing input as hex for replay.
//!
//! The targets allocate and build fixtures per input: this is test code,
//! never on the packet path.

mod gw_chain;
mod mgmt;
mod mutate;
mod parse_lb;
mod xlat;

pub use gw_chain::gw_chain;
pub use mgmt::{ctlproto, radius};
pub use mutate::{generate, mutate, Rng};
pub use parse_lb::parse_lb;
pub use xlat::xlat;

/// One fuzz target: its body and valid inputs to start mutating from.
#[derive(Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    /// Well-formed inputs in the target's input layout.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Longest input worth generating.
    pub max_len: usize,
}

/// Every target, in the order the stable harness runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "parse_lb",
        run: parse_lb,
        seeds: parse_lb::seeds,
        max_len: 512,
    },
    Target {
        name: "gw_chain",
        run: gw_chain,
        seeds: gw_chain::seeds,
        max_len: 2048,
    },
    Target {
        name: "xlat",
        run: xlat,
        seeds: xlat::seeds,
        max_len: 512,
    },
    Target {
        name: "radius",
        run: radius,
        seeds: mgmt::radius_seeds,
        max_len: 4096,
    },
    Target {
        name: "ctlproto",
        run: ctlproto,
        seeds: mgmt::ctlproto_seeds,
        max_len: 4096,
    },
];

/// Lower-case hex of `bytes` (how the harness prints an input).
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a hex string (whitespace ignored); `None` if it is not hex.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
        .collect()
}

/// Records `[ctl: u8][len: u16 BE][len bytes]` (the layout of the
/// management targets), the last one cut short by the input's end.
fn records(data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < 3 {
            return None;
        }
        let (ctl, len) = (rest[0], usize::from(u16::from_be_bytes([rest[1], rest[2]])));
        let take = len.min(rest.len() - 3);
        let body = &rest[3..3 + take];
        rest = &rest[3 + take..];
        Some((ctl, body))
    })
}

/// One record in the layout [`records`] reads.
fn record(ctl: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ctl];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_of_every_target_runs() {
        for t in TARGETS {
            let seeds = (t.seeds)();
            assert!(!seeds.is_empty(), "{}: no seeds", t.name);
            for s in &seeds {
                assert!(s.len() <= t.max_len, "{}: seed longer than max_len", t.name);
                (t.run)(s);
            }
        }
    }

    #[test]
    fn hex_round_trip() {
        let b = vec![0u8, 1, 0xab, 0xff];
        assert_eq!(to_hex(&b), "0001abff");
        assert_eq!(from_hex("00 01 AB ff"), Some(b));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
    }

    #[test]
    fn records_split_and_cut_short() {
        let mut v = record(1, b"abc");
        v.extend(record(2, b""));
        v.extend_from_slice(&[3, 0, 9, b'x']);
        let r: Vec<(u8, &[u8])> = records(&v).collect();
        assert_eq!(r, vec![(1, &b"abc"[..]), (2, &b""[..]), (3, &b"x"[..])]);
    }
}
