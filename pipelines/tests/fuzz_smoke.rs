//! The fuzz targets (`pgw_pipelines::fuzz`) on a stable toolchain: for a
//! time budget per target, inputs from a seeded generator (random bytes and
//! mutations of each target's valid inputs); any panic fails the test with
//! the seed, the iteration and the input in hex.
//!
//! Environment:
//! - `PGW_FUZZ_SECS`: seconds per target (default 2; `scripts/test.sh`
//!   gives more);
//! - `PGW_FUZZ_SEED`: the generator's seed in hex (default: from the clock;
//!   printed either way, so a run can be repeated);
//! - `PGW_FUZZ_TARGET`: run only this target;
//! - `PGW_FUZZ_REPLAY`: hex of one input to run (with `PGW_FUZZ_TARGET`).
//!
//! `cargo test --release -p pgw-pipelines --test fuzz_smoke -- --nocapture`
//! prints each target's seed and count.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use pgw_pipelines::fuzz::{self, Rng, Target};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Runs one input; a panic is reported with everything needed to replay it.
fn run_one(t: &Target, input: &[u8], seed: u64, n: u64) {
    if catch_unwind(AssertUnwindSafe(|| (t.run)(input))).is_err() {
        panic!(
            "fuzz {}: seed {seed:#x}, input {n} panicked (message above); replay with\n  \
             PGW_FUZZ_TARGET={} PGW_FUZZ_REPLAY={} cargo test -p pgw-pipelines --test fuzz_smoke",
            t.name,
            t.name,
            fuzz::to_hex(input)
        );
    }
}

#[test]
fn every_fuzz_target_survives_its_time_budget() {
    let secs: f64 =
        env("PGW_FUZZ_SECS").map_or(2.0, |s| s.parse().expect("PGW_FUZZ_SECS: seconds"));
    let seed = env("PGW_FUZZ_SEED").map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        },
        |s| u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("PGW_FUZZ_SEED: hex"),
    );
    let only = env("PGW_FUZZ_TARGET");
    let targets: Vec<&Target> = fuzz::TARGETS
        .iter()
        .filter(|t| only.as_deref().is_none_or(|o| o == t.name))
        .collect();
    assert!(!targets.is_empty(), "no fuzz target named {only:?}");
    if let Some(hex) = env("PGW_FUZZ_REPLAY") {
        let input = fuzz::from_hex(&hex).expect("PGW_FUZZ_REPLAY: hex");
        for t in &targets {
            run_one(t, &input, seed, 0);
            println!("fuzz {}: replayed {} bytes, no panic", t.name, input.len());
        }
        return;
    }
    let budget = Duration::from_secs_f64(secs);
    for t in targets {
        let corpus = (t.seeds)();
        for s in &corpus {
            run_one(t, s, seed, 0);
        }
        // Each target its own stream, so one target's count does not shift
        // another's inputs.
        let tseed = t.name.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let mut rng = Rng::new(tseed);
        let start = Instant::now();
        let mut n = 0u64;
        while !n.is_multiple_of(32) || start.elapsed() < budget {
            let input = fuzz::generate(&mut rng, &corpus, t.max_len);
            run_one(t, &input, seed, n);
            n += 1;
        }
        println!(
            "fuzz {}: seed {seed:#x}, {n} inputs in {:.1} s, no panic",
            t.name,
            start.elapsed().as_secs_f64()
        );
    }
}
