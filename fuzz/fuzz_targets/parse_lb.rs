//! Fuzz `wire::parse`/`parse_l3`, the ARP responder and the LB stage over arbitrary frames.
//! The body, its input layout and its invariants are
//! `pgw_pipelines::fuzz::parse_lb`; the stable harness
//! (`pipelines/tests/fuzz_smoke.rs`) runs the same function.
//!
//! Run: `cd fuzz && cargo +nightly fuzz run parse_lb` (corpus and artifacts stay
//! in fuzz/corpus, fuzz/artifacts: ignored by git).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pgw_pipelines::fuzz::parse_lb(data));
