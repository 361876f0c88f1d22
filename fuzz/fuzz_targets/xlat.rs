//! Fuzz the IPv4 <-> IPv6 translator (RFC 7915), both directions.
//! The body, its input layout and its invariants are
//! `pgw_pipelines::fuzz::xlat`; the stable harness
//! (`pipelines/tests/fuzz_smoke.rs`) runs the same function.
//!
//! Run: `cd fuzz && cargo +nightly fuzz run xlat` (corpus and artifacts stay
//! in fuzz/corpus, fuzz/artifacts: ignored by git).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pgw_pipelines::fuzz::xlat(data));
