//! Fuzz the control protocol's receiver (MAC, JSON, replay, age, table assembly) over a sequence of datagrams.
//! The body, its input layout and its invariants are
//! `pgw_pipelines::fuzz::ctlproto`; the stable harness
//! (`pipelines/tests/fuzz_smoke.rs`) runs the same function.
//!
//! Run: `cd fuzz && cargo +nightly fuzz run ctlproto` (corpus and artifacts stay
//! in fuzz/corpus, fuzz/artifacts: ignored by git).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pgw_pipelines::fuzz::ctlproto(data));
