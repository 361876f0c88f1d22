#!/usr/bin/env bash
# The end-to-end suite N times in a row on a loaded machine (not part of
# CI): the flakiness check of the hardening issue. `stress-ng` keeps every
# core busy (one CPU hog per core, the same priority as the tests) while
# every engine/tests/e2e_*.rs binary runs, serially, as scripts/test.sh runs
# them (CI=true: a test that cannot run fails instead of skipping).
#
#   scripts/stress-e2e.sh                 10 rounds, stress on every core
#   STRESS_ROUNDS=3 scripts/stress-e2e.sh
#   STRESS_CPUS=0 scripts/stress-e2e.sh   no load (a baseline)
#
# Writes perf/out/stress-e2e/round-K.log for each round and a table
# (perf/out/stress-e2e/summary.txt): round, start, seconds, tests passed,
# failed, pgw instances still there 30 s after SIGINT with the rest of their
# exit in the kernel (their last line logged, or their main thread waiting
# in the kernel: target/tmp/pgw-slow-exits.log, kept as
# perf/out/stress-e2e/round-K.slow-exits.log: each thread's state, wait
# channel and kernel stack at the 30th second), and the load average seen
# at the end of the round. Stops at the
# first failing round unless STRESS_KEEP_GOING=1; exits 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
command -v stress-ng >/dev/null || { echo "stress-e2e: stress-ng is not installed (apt-get install stress-ng)"; exit 1; }

rounds="${STRESS_ROUNDS:-10}"
cpus="${STRESS_CPUS:-$(nproc)}"
out=perf/out/stress-e2e
mkdir -p "$out"
summary="$out/summary.txt"

export CARGO_TERM_COLOR=never CI=true
tests=()
for f in engine/tests/e2e_*.rs; do tests+=(--test "$(basename "$f" .rs)"); done
# Built once before the load starts; the rounds only run.
cargo test -p pgw-engine --locked "${tests[@]}" --no-run 2>&1 | tail -n 2

stress_pid=""
stop_stress() { if [ -n "$stress_pid" ]; then kill "$stress_pid" 2>/dev/null || true; wait "$stress_pid" 2>/dev/null || true; fi; }
trap stop_stress EXIT
if [ "$cpus" -gt 0 ]; then
  stress-ng --cpu "$cpus" --cpu-method int64 --quiet &
  stress_pid=$!
fi

printf '%-6s %-20s %8s %7s %7s %5s %s\n' round start seconds passed failed slow load >"$summary"
slow_log=target/tmp/pgw-slow-exits.log
fail=0
for k in $(seq "$rounds"); do
  log="$out/round-$k.log"
  t0=$(date +%s)
  rm -f "$slow_log"
  set +e
  cargo test -p pgw-engine --locked "${tests[@]}" --no-fail-fast -- --test-threads=1 >"$log" 2>&1
  rc=$?
  set -e
  read -r p f < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p+0, f+0 }' "$log")
  slow=0
  if [ -s "$slow_log" ]; then
    cp "$slow_log" "$out/round-$k.slow-exits.log"
    slow=$(grep -c "after the wait began; its threads" "$slow_log" || true)
  fi
  printf '%-6s %-20s %8s %7s %7s %5s %s\n' "$k" "$(date -u -d "@$t0" +%FT%TZ)" $(( $(date +%s) - t0 )) "$p" "$f" \
    "$slow" "$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$summary"
  if [ "$rc" -ne 0 ] || [ "$f" -gt 0 ]; then
    fail=1
    grep -E "^test .* FAILED$|panicked at" "$log" | head -20
    [ "${STRESS_KEEP_GOING:-0}" = 1 ] || break
  fi
done
if [ "$fail" -eq 0 ]; then echo "stress-e2e: $rounds rounds, every test passed (stress-ng on $cpus CPUs)"; else echo "stress-e2e: FAILED (see $out)"; fi
exit "$fail"
