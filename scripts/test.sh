#!/usr/bin/env bash
# The test command (README's second command): set-up, then every test.
#   unit + property tests of the sans-I/O pipelines,
#   DPDK tests on virtual devices (net_ring with 2 workers),
#   end-to-end tests with real Linux TCP stacks in network namespaces
#   (net_tap; needs root), CLI/profile checks, a time-boxed fuzz run of
#   every fuzz target on stable.
# Every DPDK process started here runs with --no-pci (see configs/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

export CARGO_TERM_COLOR=never
# Tests that start several DPDK processes share the 2 cores: one test
# binary at a time (cargo's default), and tests inside a binary serially.
cargo build --workspace --all-targets --locked 2>&1 | tail -n 3
# Tests that cannot run here (no root, a tool missing) fail under CI=true;
# elsewhere they say SKIP and land in this file, counted in the summary.
SKIPLOG=target/tmp/pgw-skipped.log
mkdir -p target/tmp && rm -f "$SKIPLOG"
set +e
cargo test --workspace --locked --no-fail-fast -- --test-threads=1 2>&1 | tee /tmp/pgw-test.log \
  | grep -E "^(test result|running|test .* (FAILED|ok|ignored)$)"
status=${PIPESTATUS[0]}
set -e
# Every failing test's whole report (its message, its captured output and
# the logs its lab printed), not just where it panicked.
awk '/^failures:$/ {f = 1} f {print} /^test result:/ {f = 0}' /tmp/pgw-test.log

# The benchmark report on made-up run files (nothing is a result): the
# RESULTS.json layout, the generator-bound rule, added latency, the plots.
if ! python3 perf/test_report.py >/tmp/pgw-report-test.log 2>&1; then
  echo "report self-test FAILED"; tail -30 /tmp/pgw-report-test.log; status=1
else
  tail -1 /tmp/pgw-report-test.log
fi

# Benchmark smoke run: the suite's generator against pgw and testpmd over
# net_memif for a few seconds; it asserts only that everything runs and
# reports (no timing pass/fail: figures come from scripts/bench.sh).
if ! scripts/bench.sh --smoke >/tmp/pgw-bench-smoke.log 2>&1; then
  echo "bench smoke FAILED"; tail -30 /tmp/pgw-bench-smoke.log; status=1
else
  echo "bench smoke: ok ($(grep -c '^|' perf/out/smoke/RESULTS.md 2>/dev/null || echo 0) report rows)"
fi

# Fuzz run on stable (about 45 s): every target in pgw_pipelines::fuzz for
# a time budget, random bytes and mutations of valid inputs from a printed
# seed; a panic prints the input in hex to replay. (cargo-fuzz runs the
# same targets where nightly exists: cd fuzz && cargo +nightly fuzz run NAME.)
if ! PGW_FUZZ_SECS="${PGW_FUZZ_SECS:-8}" cargo test -p pgw-pipelines --locked --test fuzz_smoke \
    -- --nocapture >/tmp/pgw-fuzz.log 2>&1; then
  echo "fuzz FAILED"; tail -30 /tmp/pgw-fuzz.log; status=1
else
  grep '^fuzz ' /tmp/pgw-fuzz.log
fi
# The cargo-fuzz crate still builds on stable (its targets call the same functions).
if [ -d fuzz ]; then
  (cd fuzz && cargo build --quiet 2>&1 | tail -n 3) || { echo "fuzz crate build FAILED"; status=1; }
fi

read -r passed failed ignored < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i } } END { print p+0, f+0, g+0 }' /tmp/pgw-test.log)
nskip=0
if [ -f "$SKIPLOG" ]; then nskip=$(wc -l < "$SKIPLOG"); fi
skipped=$((nskip + ignored))
if [ "$skipped" -gt 0 ]; then
  echo "skipped (they count as passed by cargo, not here):"; sed 's/^/  /' "$SKIPLOG"
  passed=$((passed - skipped))
fi
if [ "${failed:-0}" -gt 0 ]; then
  # Where each failing test panicked, once more at the end (the reports
  # above can be long; a CI page keeps the tail).
  echo "failed tests, where they panicked:"
  grep -A4 "panicked at" /tmp/pgw-test.log | cut -c1-400 | head -60 | sed 's/^/  /'
fi
echo "summary: passed ${passed:-0}, failed ${failed:-0}, skipped ${skipped}"
exit "$status"
