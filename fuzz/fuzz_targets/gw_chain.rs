//! Fuzz the GW role's whole chain over a sequence of frames (connections opened, answered, closed, expired).
//! The body, its input layout and its invariants are
//! `pgw_pipelines::fuzz::gw_chain`; the stable harness
//! (`pipelines/tests/fuzz_smoke.rs`) runs the same function.
//!
//! Run: `cd fuzz && cargo +nightly fuzz run gw_chain` (corpus and artifacts stay
//! in fuzz/corpus, fuzz/artifacts: ignored by git).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pgw_pipelines::fuzz::gw_chain(data));
