#!/usr/bin/env bash
# pgw's benchmark suite (issue 6): one command, writes perf/RESULTS.md.
#
#   scripts/bench.sh                 full suite (~5 min on 2 vCPUs) -> perf/RESULTS.md
#   scripts/bench.sh --smoke         a few seconds: it runs and reports (CI); no timed
#                                    pass/fail -> perf/out/smoke/RESULTS.md
#   scripts/bench.sh --e2e           only perf/e2e.sh (~10 min): real TCP stacks (wrk,
#                                    iperf3, nginx) through the kernel, testpmd and pgw
#                                    -> perf/out/e2e/e2e-*.json (the full suite runs it too)
#   options: --duration S (measurement window per run, default 5), --no-criterion,
#            --no-profile, --no-e2e, --out FILE, --scrape-pairs N (default 6),
#            --only RUN[,RUN...]  re-run only these runs (names as in perf/out/full:
#                                 gw-16m, testpmd-1k, criterion, callgrind, e2e, ...; shell
#                                 patterns allowed: 'gw-lat-*'); the other runs'
#                                 files stay and the report is rebuilt from all
#
# Per pgw run the engine's runtime accounting over the generator's window goes
# to NAME.runtime.json (`pgw stats --runtime --json`: busy cycles per packet per
# stage, capacity), the management thread's CPU and the worker's involuntary
# context switches to NAME.mgmt.json; testpmd runs record testpmd's own busy
# cycles per packet (--record-core-cycles) in the same shape.
#
# Topology (every DPDK process runs with --no-pci; traffic only over net_memif
# unix sockets in /tmp):
#
#   pgw-gen (CPU 0)                         DUT (CPU 1)
#     access  port --memif /tmp/pgw-bench-acc.sock--> access  port   pgw GW worker,
#     servers port <--memif /tmp/pgw-bench-srv.sock-- servers port   or dpdk-testpmd io
#
# pgw-gen is the memif server (started first), the DUT the client. Every
# process this script starts is ended by its PID; the sockets are removed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=machine.sh
. "$ROOT/scripts/machine.sh"

MODE=full
SMOKE_ARGS=()
DUR=5
WARM=1
CRITERION=1
PROFILE=1
E2E=1
SCRAPE_PAIRS=6
ONLY=""
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) MODE=smoke ;;
        --e2e) MODE=e2e ;;
        --duration) DUR=$2; shift ;;
        --no-criterion) CRITERION=0 ;;
        --no-profile) PROFILE=0 ;;
        --no-e2e) E2E=0 ;;
        --only) ONLY=$2; shift ;;
        --scrape-pairs) SCRAPE_PAIRS=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$MODE" = smoke ]; then
    DUR=1; WARM=0.2; PROFILE=0; SMOKE_ARGS=(--open-timeout 10)
fi

# A target directory of this checkout's own: a shared one would let another
# checkout's build (a CI clone) stand in for this one's binaries.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/perf}
BIN=$CARGO_TARGET_DIR/release
GEN=$BIN/pgw-gen
PGW=$BIN/pgw
OUTDIR=$ROOT/perf/out/$MODE
RESULTS=${OUT:-$([ "$MODE" = smoke ] && echo "$OUTDIR/RESULTS.md" || echo "$ROOT/perf/RESULTS.md")}
SOCK_ACC=/tmp/pgw-bench-acc.sock
SOCK_SRV=/tmp/pgw-bench-srv.sock
GEN_MAC_ACC=02:50:47:47:00:01
GEN_MAC_SRV=02:50:47:47:00:02
PGW_MAC_ACC=02:50:47:57:00:01
PGW_MAC_SRV=02:50:47:57:00:02

say() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

wanted() {  # NAME: is this run part of this invocation (--only)?
    [ -z "$ONLY" ] && return 0
    local p IFS=,
    for p in $ONLY; do
        # shellcheck disable=SC2254
        case $1 in $p) return 0 ;; esac
    done
    return 1
}

# ------------------------------------------------------------ cleanup
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill -INT "$p" 2>/dev/null
            for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$p" 2>/dev/null
        fi
    done
    rm -f "$SOCK_ACC" "$SOCK_SRV" /tmp/pgw-bench-lo.sock
    if [ -n "${HP_RESTORE:-}" ]; then
        sysctl -q -w vm.nr_hugepages="$HP_RESTORE" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A DUT that dies leaves its command FIFO without a reader: writing to it must
# fail (EPIPE), not kill this script.
trap '' PIPE

# ------------------------------------------------------------ preflight
[ "$(id -u)" = 0 ] || die "run as root (DPDK, hugepages)"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (generator on CPU 0, DUT on CPU 1)"
for s in "$SOCK_ACC" "$SOCK_SRV"; do
    [ -e "$s" ] && die "$s exists: another benchmark running? (remove it if not)"
done
hp_free_mb() { awk '/^HugePages_Free/ {f=$2} /^Hugepagesize/ {s=$2} END {print int(f*s/1024)}' /proc/meminfo; }
# pgw keeps its connection tables in hugepages (the 16 M row needs about
# 2 GiB of them besides the mbufs and the generator's): the full suite
# reserves 3 GiB for its duration and gives back what it added at the end.
if [ "$MODE" = full ]; then
    hp_now=$(cat /proc/sys/vm/nr_hugepages)
    if [ "$hp_now" -lt 1536 ]; then
        HP_RESTORE=$hp_now
        sysctl -q -w vm.nr_hugepages=1536 2>/dev/null || say "could not reserve 1536 hugepages: the 16 M row may fall back to the heap"
    fi
fi
NOHUGE=()
if [ "$(hp_free_mb)" -lt 1024 ]; then
    say "only $(hp_free_mb) MiB of hugepages free: generator runs --no-huge (slower; run scripts/setup.sh)"
    NOHUGE=(--no-huge)
fi
TESTPMD=$(command -v dpdk-testpmd || true)
[ -n "$TESTPMD" ] || say "dpdk-testpmd not found: the ceiling runs are skipped"

mkdir -p "$OUTDIR"
# A whole run starts from an empty folder; --only keeps the other runs' files
# (each run clears its own: fresh).
[ -z "$ONLY" ] && rm -f "$OUTDIR"/*.json "$OUTDIR"/*.log "$OUTDIR"/*.cmd "$OUTDIR"/*.txt "$OUTDIR"/*.toml "$OUTDIR"/*.base "$OUTDIR"/*.idle "$OUTDIR"/*.busy "$OUTDIR"/*.foreign "$OUTDIR"/*.fifo 2>/dev/null
fresh() {  # NAME: remove what an earlier run of NAME left (not its profile variant)
    local f
    for f in "$OUTDIR/$1".*; do
        case $f in *.toml) ;; *) rm -f "$f" ;; esac
    done
    # The commit the binaries of this run were built from (--only mixes runs).
    echo "$BUILT_FROM" > "$OUTDIR/$1.commit"
}

say "building (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
[ "$MODE" = e2e ] || cargo build --release -q -p pgw-perf --bin pgw-gen || die "build of pgw-gen failed"
cargo build --release -q -p pgw-engine --bin pgw || die "build of pgw failed"
# (source files changed against HEAD mark it; the report's own outputs do not)
BUILT_FROM=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- . \
    ':!perf/RESULTS.*' ':!perf/plots' ':!perf/HISTORY.md' || echo "+modified")

# The end-to-end race (perf/e2e.sh, its own namespaces and cleanup): alone
# with --e2e, at the end of the full suite otherwise.
run_e2e() {
    rm -f "$OUTDIR"/e2e-* 2>/dev/null
    echo "$BUILT_FROM" > "$OUTDIR/e2e.commit"
    PGW=$PGW perf/e2e.sh "$OUTDIR" || { local rc=$?; say "perf/e2e.sh failed (rc $rc)"; return $rc; }
}
if [ "$MODE" = e2e ]; then run_e2e; exit $?; fi

# ------------------------------------------------------------ helpers
# Wait (at most 60 s) until the machine is quiet: CPU idle >= 85 % over 1 s,
# so that another job on this shared VM does not end up in the figures. The
# idle share seen last is recorded with each run.
wait_quiet() {
    local name=$1 idle t0=$SECONDS
    while :; do
        idle=$(cpu_idle_pct)
        if [ "$idle" -ge 85 ] || [ $((SECONDS - t0)) -ge 60 ] || [ "$MODE" = smoke ]; then break; fi
        say "machine busy (CPU idle ${idle} %): waiting before $name"
    done
    echo "$idle" > "$OUTDIR/$name.idle"
    busiest_processes > "$OUTDIR/$name.busy"
}

gen_ports=(--access "net_memif0,role=server,socket=$SOCK_ACC,socket-abstract=no,mac=$GEN_MAC_ACC"
           --servers "net_memif1,role=server,socket=$SOCK_SRV,socket-abstract=no,mac=$GEN_MAC_SRV"
           --cpu 0 --gw-mac "$PGW_MAC_ACC")
# --drain 1: a second after the window for in-flight answers, and for this
# script to read the DUT's counters before the generator (the memif server)
# leaves.
set_common() {  # WINDOW_S: the generator's options common to every run
    common=(--warmup "$WARM" --duration "$1" --drain 1 "${NOHUGE[@]}" "${SMOKE_ARGS[@]}")
}
set_common "$DUR"

start_gen() {  # name args...
    local name=$1; shift
    local cmd=("$GEN" "${gen_ports[@]}" "${common[@]}" "$@" --json "$OUTDIR/$name.json")
    echo "${cmd[*]}" | sed "s#$BIN/##g" > "$OUTDIR/$name.cmd"
    rm -f "$SOCK_ACC" "$SOCK_SRV"
    "${cmd[@]}" 2> "$OUTDIR/$name.gen.log" &
    GPID=$!
    PIDS+=("$GPID")
    # The DUT (memif client) may connect once the generator's ports are
    # started: a client refused by a server whose port is not started yet
    # never tries again (the links then stay down).
    for _ in $(seq 300); do
        [ -S "$SOCK_ACC" ] && [ -S "$SOCK_SRV" ] \
            && grep -q "ports started" "$OUTDIR/$name.gen.log" 2>/dev/null && return 0
        kill -0 "$GPID" 2>/dev/null || break
        sleep 0.1
    done
    say "$name: the generator did not start its ports; log:"; cat "$OUTDIR/$name.gen.log" >&2
    return 1
}

stop_pid() {  # pid: SIGINT, then KILL after 20 s
    local p=$1
    kill -INT "$p" 2>/dev/null
    for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}

# CPU taken by other processes while a run goes on: the generator and the DUT
# busy-poll one CPU each, so anything else running steals from them. Sampled
# while the run goes on; FOREIGN_PCT = share of the machine's CPU time used by
# processes not ours (and STEAL_PCT by the hypervisor).
cpu_sample() {  # pids... -> sets S_BUSY S_TOTAL S_STEAL S_OURS
    read -r _ u n sy id io irq sirq st _ < /proc/stat
    S_BUSY=$((u + n + sy + irq + sirq)); S_TOTAL=$((u + n + sy + id + io + irq + sirq + st)); S_STEAL=$st
    S_OURS=0
    local p
    for p in "$@"; do
        S_OURS=$((S_OURS + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
}
watch_begin() { cpu_sample "$@"; W0=("$S_BUSY" "$S_TOTAL" "$S_STEAL" "$S_OURS"); W1=("${W0[@]}"); }
watch_tick() {  # call while all pids are alive
    local alive=1 p
    for p in "$@"; do kill -0 "$p" 2>/dev/null || alive=0; done
    [ "$alive" = 1 ] || return 0
    cpu_sample "$@"; W1=("$S_BUSY" "$S_TOTAL" "$S_STEAL" "$S_OURS")
}
watch_end() {  # name
    local dt=$((W1[1] - W0[1]))
    [ "$dt" -gt 0 ] || dt=1
    local foreign=$(( (W1[0] - W0[0]) - (W1[3] - W0[3]) ))
    [ "$foreign" -lt 0 ] && foreign=0
    echo "$((100 * foreign / dt)) $((100 * (W1[2] - W0[2]) / dt))" > "$OUTDIR/$1.foreign"
}

# Memory of a running process and of the machine's hugepages.
mem_sample() {  # pid -> "rss_kb hwm_kb hugetlb_kb" (hugetlb: the process's own hugepages)
    local rh ht
    rh=$(awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {print r+0, h+0}' "/proc/$1/status" 2>/dev/null) || rh="0 0"
    ht=$(awk '/_Hugetlb:/ {s+=$2} END {print s+0}' "/proc/$1/smaps_rollup" 2>/dev/null) || ht=0
    echo "$rh ${ht:-0}"
}

# A variant of a profile with one more [engine] key (e.g. runtime_stages =
# false): written next to the results; the command names it.
engine_variant() {  # NAME PROFILE 'key = value' -> path
    local out="$OUTDIR/$1.toml"
    awk -v kv="$3" '{print} /^\[engine\]/ {print kv "   # bench.sh variant"}' "$2" > "$out"
    echo "$out"
}

# CPU time (ns) of the DUT's management thread, and the involuntary context
# switches of its worker 0 (the main thread): the first shows the thread
# stays quiet on the generator's CPU, the second that nothing else ran on
# the worker's CPU during the window.
mgmt_ns() {  # pid
    local t
    for t in /proc/"$1"/task/*; do
        if [ "$(cat "$t/comm" 2>/dev/null)" = pgw-mgmt ]; then
            awk '{print $1}' "$t/schedstat" 2>/dev/null; return
        fi
    done
    echo 0
}
worker_nvcsw() {  # pid
    awk '/^nonvoluntary_ctxt_switches/ {print $2}' "/proc/$1/task/$1/status" 2>/dev/null || echo 0
}

gw_variant() {  # NAME PROFILE 'key = value' -> path: PROFILE with a [gw] key added
    local out="$OUTDIR/$1.toml"
    awk -v kv="$3" '{print} /^\[gw\]/ {print kv "   # bench.sh variant"}' "$2" > "$out"
    echo "$out"
}

metrics_variant() {  # NAME PROFILE PORT -> path: PROFILE with a Prometheus endpoint
    local out="$OUTDIR/$1.toml"
    { cat "$2"; printf '\n[metrics]   # bench.sh variant\nlisten = "127.0.0.1:%s"\n' "$3"; } > "$out"
    echo "$out"
}

# run_gw NAME PROFILE [perf] [scrape=URL] -- GEN ARGS...
# scrape=URL: the generator's window cut into 1-s segments at whose
# boundaries the DUT's runtime counters are read (NAME.segN.json, N from 0);
# curl fetches URL (Prometheus's scrape, once a second in the demo) at the
# start of every odd segment, so not scraped and scraped segments alternate
# within one run (the report compares each pair). curl runs on CPU 0: the
# bench profiles' management CPU (pgw-gen's too), not the worker's; a
# Prometheus server runs elsewhere, pgw's management thread answers it.
# The generator says "window start" / "window end" around its measurement
# window; the DUT's runtime counters are cleared at the start and read at the
# end (NAME.runtime.json), so busy cycles per packet cover the same window.
run_gw() {
    local name=$1 profile=$2; shift 2
    wanted "$name" || return 0
    fresh "$name"
    local perfrec=0
    if [ "$1" = perf ]; then perfrec=$PROFILE; shift; fi
    local scrape=""
    case "$1" in scrape=*) scrape=${1#scrape=}; shift ;; esac
    rm -f "$OUTDIR/$name.perf.data"
    [ "$1" = -- ] && shift
    wait_quiet "$name"
    say "$name: pgw ($profile) <- pgw-gen $*"
    local hp0; hp0=$(hp_free_mb)
    start_gen "$name" "$@" || return 1
    local hp1; hp1=$(hp_free_mb)
    echo "pgw run --profile ${profile#$ROOT/}" >> "$OUTDIR/$name.cmd"
    "$PGW" run --profile "$profile" > "$OUTDIR/$name.dut.log" 2>&1 &
    local dpid=$!
    PIDS+=("$dpid")
    local spid=""
    local rss=0 hwm=0 htlb=0 ppid="" hpmin=$hp1 hpn win=0 m0=0 c0=0
    watch_begin "$GPID" "$dpid"
    while kill -0 "$GPID" 2>/dev/null; do
        watch_tick "$GPID" "$dpid"
        hpn=$(hp_free_mb); [ "$hpn" -lt "$hpmin" ] && hpmin=$hpn
        read -r r h t < <(mem_sample "$dpid")
        [ "$r" -gt "$rss" ] && rss=$r
        [ "$h" -gt "$hwm" ] && hwm=$h
        [ "$t" -gt "$htlb" ] && htlb=$t
        if [ "$win" = 0 ] && grep -q "window start" "$OUTDIR/$name.gen.log" 2>/dev/null; then
            win=1
            "$PGW" ctl --profile "$profile" runtime-clear > /dev/null 2>&1
            m0=$(mgmt_ns "$dpid"); c0=$(worker_nvcsw "$dpid")
            if [ -n "$scrape" ]; then
                echo "every 1 s in the window: pgw stats --runtime --json > NAME.segN.json; at odd N then: taskset -c 0 curl -s -o /dev/null $scrape" >> "$OUTDIR/$name.cmd"
                (for i in $(seq 0 $((2 * SCRAPE_PAIRS))); do
                    "$PGW" stats --runtime --json --profile "$profile" > "$OUTDIR/$name.seg$i.json" 2>/dev/null
                    if [ $((i % 2)) = 1 ] && [ "$i" -lt $((2 * SCRAPE_PAIRS)) ]; then
                        taskset -c 0 curl -s -o /dev/null -w '%{http_code}\n' --max-time 1 "$scrape" >> "$OUTDIR/$name.scrapes"
                    fi
                    sleep 1
                 done) &
                spid=$!
                PIDS+=("$spid")
            fi
            if [ "$perfrec" = 1 ]; then
                echo "perf record -e cpu-clock -g -p <pgw pid> -- sleep 3   (in the window)" >> "$OUTDIR/$name.cmd"
                perf record -q -e cpu-clock -g -p "$dpid" -o "$OUTDIR/$name.perf.data" -- sleep 3 \
                    > /dev/null 2>&1 &
                ppid=$!
            fi
        fi
        if [ "$win" = 1 ] && grep -q "window end" "$OUTDIR/$name.gen.log" 2>/dev/null; then
            win=2
            "$PGW" stats --runtime --json --profile "$profile" > "$OUTDIR/$name.runtime.json" 2>/dev/null
            "$PGW" stats --json --profile "$profile" > "$OUTDIR/$name.dut.json" 2>/dev/null
            local m1 c1; m1=$(mgmt_ns "$dpid"); c1=$(worker_nvcsw "$dpid")
            printf '{"mgmt_cpu_ms": %s, "window_s": %s, "worker_nonvoluntary_switches": %s}\n' \
                "$(awk -v a="$m0" -v b="$m1" 'BEGIN {printf "%.1f", (b - a) / 1e6}')" \
                "$(jget "$OUTDIR/$name.runtime.json" 'd["window_s"]' || echo null)" \
                "$((c1 - c0))" > "$OUTDIR/$name.mgmt.json"
        fi
        sleep 0.1
    done
    wait "$GPID"; local grc=$?
    watch_end "$name"
    local hp2; hp2=$(hp_free_mb)
    read -r r h t < <(mem_sample "$dpid"); [ "$r" -gt "$rss" ] && rss=$r; [ "$h" -gt "$hwm" ] && hwm=$h
    [ "$t" -gt "$htlb" ] && htlb=$t
    # The counters after the drain, if the DUT still answers (DPDK 22.11's
    # memif PMD can crash a client whose server leaves mid-burst: the window's
    # copy above stays then).
    if "$PGW" stats --profile "$profile" --json > "$OUTDIR/$name.dut.json.end" 2>/dev/null \
        && [ -s "$OUTDIR/$name.dut.json.end" ]; then
        mv "$OUTDIR/$name.dut.json.end" "$OUTDIR/$name.dut.json"
    else
        rm -f "$OUTDIR/$name.dut.json.end"
        kill -0 "$dpid" 2>/dev/null || say "$name: the DUT had exited when the generator left (see $name.dut.log; dmesg)"
    fi
    stop_pid "$dpid"
    [ -n "$spid" ] && { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
    [ -n "$ppid" ] && wait "$ppid" 2>/dev/null
    printf '{"hp_free_mb_before_gen": %s, "hp_free_mb_before_dut": %s, "hp_free_mb_min_during": %s, "hp_free_mb_end": %s, "dut_rss_kb": %s, "dut_hwm_kb": %s, "dut_hugetlb_kb": %s, "gen_rc": %s}\n' \
        "$hp0" "$hp1" "$hpmin" "$hp2" "$rss" "$hwm" "$htlb" "$grc" > "$OUTDIR/$name.mem.json"
    [ "$grc" = 0 ] || { say "$name: generator failed (rc $grc):"; tail -5 "$OUTDIR/$name.gen.log" >&2; }
    [ "$win" = 2 ] || say "$name: no runtime window (the generator never reported one)"
    return 0
}

# run_testpmd NAME -- GEN ARGS...: the same generator against dpdk-testpmd io
# forwarding, the ceiling. testpmd runs interactive on a FIFO so that its
# forwarding statistics are cleared at the generator's window start and shown
# at its end: with --record-core-cycles they give testpmd's own busy cycles
# per packet over the same window (NAME.runtime.json, in the shape of pgw's).
run_testpmd() {
    local name=$1; shift; [ "$1" = -- ] && shift
    wanted "$name" || return 0
    [ -n "$TESTPMD" ] || return 0
    local attempt
    for attempt in 1 2; do
        fresh "$name"
        run_testpmd_once "$name" "$@"
        [ -s "$OUTDIR/$name.runtime.json" ] && return 0
        # testpmd 22.11 has crashed (SIGSEGV) at "show fwd stats all" on memif
        # once in many runs: the row is run again, once.
        say "$name: testpmd gave no forwarding statistics (attempt $attempt; log: $name.dut.log)"
        [ -f "$OUTDIR/$name.dut.log" ] && cp "$OUTDIR/$name.dut.log" "$OUTDIR/crashed-$name-$attempt.log"
    done
}
run_testpmd_once() {
    local name=$1; shift
    wait_quiet "$name"
    say "$name: dpdk-testpmd io <- pgw-gen $*"
    start_gen "$name" "$@" || return 1
    local cmd=("$TESTPMD" -l 0,1 --main-lcore 0 --no-pci --in-memory --file-prefix=pgw-bench-testpmd
        "--vdev=net_memif0,role=client,socket=$SOCK_ACC,socket-abstract=no,mac=$PGW_MAC_ACC"
        "--vdev=net_memif1,role=client,socket=$SOCK_SRV,socket-abstract=no,mac=$PGW_MAC_SRV"
        --log-level=pmd.net.memif:error
        -- -i --forward-mode=io --auto-start --nb-cores=1 --burst=32
        --rxd=1024 --txd=1024 --record-core-cycles)
    echo "${cmd[*]}" >> "$OUTDIR/$name.cmd"
    echo "testpmd> clear fwd stats all   (at the generator's window start); show fwd stats all   (at its end)" >> "$OUTDIR/$name.cmd"
    local fifo="$OUTDIR/$name.fifo"
    rm -f "$fifo"; mkfifo "$fifo"
    "${cmd[@]}" < "$fifo" > "$OUTDIR/$name.dut.log" 2>&1 &
    local dpid=$!
    PIDS+=("$dpid")
    exec 7> "$fifo"
    local win=0
    watch_begin "$GPID" "$dpid"
    while kill -0 "$GPID" 2>/dev/null; do
        watch_tick "$GPID" "$dpid"
        if [ "$win" = 0 ] && grep -q "window start" "$OUTDIR/$name.gen.log" 2>/dev/null; then
            win=1; echo "clear fwd stats all" >&7
        fi
        if [ "$win" = 1 ] && grep -q "window end" "$OUTDIR/$name.gen.log" 2>/dev/null; then
            win=2; echo "show fwd stats all" >&7
        fi
        sleep 0.1
    done
    wait "$GPID"; local grc=$?
    watch_end "$name"
    if ! kill -0 "$dpid" 2>/dev/null; then
        wait "$dpid"; say "$name: testpmd exited before the end of the run (status $?)"
    fi
    echo "quit" >&7 2>/dev/null
    exec 7>&-
    for _ in $(seq 100); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$dpid"
    rm -f "$fifo"
    python3 - "$OUTDIR/$name.dut.log" "$(awk -v d="$DUR" 'BEGIN {print d}')" > "$OUTDIR/$name.runtime.json" <<'PY' || rm -f "$OUTDIR/$name.runtime.json"
import re, sys, json
t = open(sys.argv[1]).read()
m = re.findall(r"CPU cycles/packet=([0-9.]+) \(total cycles=(\d+) / total \S+ packets=(\d+)\) at (\d+) MHz", t)
if not m:
    sys.exit(1)
cpp, cyc, pkts, mhz = m[0]  # the window's "show fwd stats all" (quit prints more)
hz = int(mhz) * 1_000_000
cpp = float(cpp)
print(json.dumps({"source": "testpmd --record-core-cycles (busy cycles of its forwarding bursts)",
                  "tsc_hz": hz, "window_s": float(sys.argv[2]), "timed": True, "workers": [],
                  "total": {"packets": int(pkts), "busy_cycles": int(cyc), "busy_cycles_per_pkt": cpp,
                            "capacity_mpps": hz / cpp / 1e6 if cpp else 0.0}}))
PY
    [ "$grc" = 0 ] || { say "$name: generator failed (rc $grc)"; tail -5 "$OUTDIR/$name.gen.log" >&2; }
}

# testpmd alone: io forwarding over a memif pair looped back inside testpmd
# (--tx-first): testpmd's own per-core forwarding rate on this device.
run_testpmd_alone() {
    local name=$1
    wanted "$name" || return 0
    fresh "$name"
    [ -n "$TESTPMD" ] || return 0
    wait_quiet "$name"
    say "$name: dpdk-testpmd io over a looped memif pair, alone"
    local secs; secs=$(awk -v d="$DUR" -v w="$WARM" 'BEGIN {printf "%d", d + w + 2}')
    local cmd=(timeout -s INT "$secs" "$TESTPMD" -l 0,1 --main-lcore 0 --no-pci --in-memory
        --file-prefix=pgw-bench-testpmd-lo
        "--vdev=net_memif0,role=server,socket=/tmp/pgw-bench-lo.sock,socket-abstract=no"
        "--vdev=net_memif1,role=client,socket=/tmp/pgw-bench-lo.sock,socket-abstract=no"
        --log-level=pmd.net.memif:error
        -- --forward-mode=io --auto-start --tx-first --stats-period 1 --nb-cores=1 --burst=32
        --rxd=1024 --txd=1024)
    echo "${cmd[*]}" > "$OUTDIR/$name.cmd"
    "${cmd[@]}" < /dev/null > "$OUTDIR/$name.dut.log" 2>&1 &
    local tp=$!; PIDS+=("$tp")
    sleep 1
    local tpp; tpp=$(pgrep -P "$tp" | head -1)
    watch_begin "$tpp"
    while kill -0 "$tp" 2>/dev/null; do watch_tick "$tpp"; sleep 0.25; done
    wait "$tp"
    watch_end "$name"
    rm -f /tmp/pgw-bench-lo.sock
}

run_loopback() {  # NAME GEN ARGS...
    local name=$1; shift
    wanted "$name" || return 0
    fresh "$name"
    wait_quiet "$name"
    say "$name: pgw-gen loopback (no DUT) $*"
    local cmd=("$GEN" --loopback --cpu 0 "${common[@]}" "$@" --json "$OUTDIR/$name.json")
    echo "${cmd[*]}" | sed "s#$BIN/##g" > "$OUTDIR/$name.cmd"
    "${cmd[@]}" 2> "$OUTDIR/$name.gen.log" &
    GPID=$!; PIDS+=("$GPID")
    watch_begin "$GPID"
    while kill -0 "$GPID" 2>/dev/null; do watch_tick "$GPID"; sleep 0.25; done
    wait "$GPID" || say "$name: generator failed"
    watch_end "$name"
}

jget() {  # file python-expression-on-d
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null
}

# ------------------------------------------------------------ the suite
P1K=configs/bench-gw-memif.toml
P1M=configs/bench-gw-memif-1m.toml
P4M=configs/bench-gw-memif-4m.toml
P16M=configs/bench-gw-memif-16m.toml
P2W=configs/bench-gw-memif-2w.toml
K1=(--subs 1000 --conns 1)

if [ "$MODE" = smoke ]; then
    run_loopback smoke-loopback "${K1[@]}" --verify
    run_gw smoke-gw-1k "$P1K" -- "${K1[@]}" --verify --udp-pct 20
    run_gw smoke-gw-cps "$P1M" -- --mode cps --subs 64 --conns 64 --data 2 --close fin \
        --udp-pct 20 --size imix --verify
    run_testpmd smoke-testpmd -- "${K1[@]}"
else
    run_loopback gen-loopback "${K1[@]}"
    run_testpmd testpmd-1k -- "${K1[@]}"
    run_testpmd_alone testpmd-alone
    run_gw gw-1k "$P1K" perf -- "${K1[@]}"
    # What the runtime accounting costs: the same run with stage timing off
    # (busy cycles per packet are measured either way).
    run_gw gw-1k-untimed "$(engine_variant gw-1k-untimed "$P1K" 'runtime_stages = false')" -- "${K1[@]}"
    # What a Prometheus scrape once a second costs the worker: gw-1k with
    # [metrics], its window cut into 1-s segments alternately not scraped and
    # scraped (run_gw scrape=); a window long enough for SCRAPE_PAIRS pairs.
    set_common $((2 * SCRAPE_PAIRS + 3))
    run_gw gw-1k-scraped "$(metrics_variant gw-1k-scraped "$P1K" 19464)" scrape=http://127.0.0.1:19464/metrics \
        -- "${K1[@]}"
    set_common "$DUR"
    run_gw gw-1m "$P1M" -- --subs 1000 --conns 1000
    run_gw gw-4m "$P4M" -- --subs 4000 --conns 1000
    run_gw gw-16m "$P16M" -- --subs 16000 --conns 1000
    run_gw gw-1k-2w "$P2W" -- "${K1[@]}" --queues 2
    run_gw gw-1k-imix "$P1K" -- "${K1[@]}" --size imix
    run_gw gw-1k-1518 "$P1K" -- "${K1[@]}" --size 1518
    run_gw gw-cps "$P1M" -- --mode cps --subs 256 --conns 256 --close rst
    # A SYN flood the SYN proxy absorbs: every SYN answered by the GW's cookie
    # SYN-ACK (no entry), the generator's RST dropped as no_flow.
    run_gw gw-synflood "$(gw_variant gw-synflood "$P1M" 'syn_proxy = "on"')" \
        -- --mode cps --subs 256 --conns 256 --close rst
    run_gw gw-mix "$P1M" -- --mode cps --subs 256 --conns 256 --data 8 --close fin \
        --udp-pct 20 --size imix
    # Latency at 10 / 50 / 90 % of the up rate pgw sustained at full load,
    # through pgw and, as the baseline of the harness itself, through
    # dpdk-testpmd io at the same offered rates.
    MAXUP=$(jget "$OUTDIR/gw-1k.json" 'd["window"]["up_rx_pps"]/1e6')
    if [ -n "$MAXUP" ]; then
        for pct in 10 50 90; do
            rate=$(awk -v m="$MAXUP" -v p="$pct" 'BEGIN {printf "%.4f", m * p / 100}')
            run_testpmd "testpmd-lat-$pct" -- "${K1[@]}" --rate "$rate"
            run_gw "gw-lat-$pct" "$P1K" -- "${K1[@]}" --rate "$rate"
        done
    fi
fi

# ------------------------------------------------------------ micro-benchmarks
if [ "$CRITERION" = 1 ] && wanted criterion; then
    wait_quiet criterion
    if [ "$MODE" = smoke ]; then
        say "criterion benches, test mode (each bench once)"
        cargo bench -q -p pgw-perf --bench stages -- --test > "$OUTDIR/criterion.log" 2>&1 \
            || say "criterion test mode failed (see $OUTDIR/criterion.log)"
    else
        say "criterion benches (perf/benches/stages.rs)"
        rm -rf "$CARGO_TARGET_DIR/criterion"
        echo "$BUILT_FROM" > "$OUTDIR/criterion.commit"
        PGW_BENCH_16M=1 cargo bench -q -p pgw-perf --bench stages -- --warm-up-time 1 --measurement-time 3 \
            > "$OUTDIR/criterion.log" 2>&1 || say "criterion failed (see $OUTDIR/criterion.log)"
        echo "PGW_BENCH_16M=1 CARGO_TARGET_DIR=target/perf cargo bench -p pgw-perf --bench stages -- --warm-up-time 1 --measurement-time 3" \
            > "$OUTDIR/criterion.cmd"
        rm -rf "$OUTDIR/criterion"
        cp -r "$CARGO_TARGET_DIR/criterion" "$OUTDIR/criterion" 2>/dev/null || true
    fi
fi

# ------------------------------------------------------------ profiles
if [ "$PROFILE" = 1 ]; then
    if [ -f "$OUTDIR/gw-1k.perf.data" ] && wanted gw-1k; then
        perf report -i "$OUTDIR/gw-1k.perf.data" --stdio --no-children --sort symbol \
            --percent-limit 1.5 2>/dev/null | grep -v '^$' | grep -v '^#' | grep '%' | head -30 \
            > "$OUTDIR/gw-1k.perf.txt" || true
    fi
    BENCH_EXE=$(ls -t "$CARGO_TARGET_DIR"/release/deps/stages-* 2>/dev/null | grep -v '\.d$' | head -1)
    if command -v valgrind > /dev/null && [ -n "$BENCH_EXE" ] && wanted callgrind; then
        say "callgrind on the GW up/down data benches (1M flows)"
        for b in up down; do
            valgrind --tool=callgrind --callgrind-out-file="$OUTDIR/callgrind.$b.out" \
                "$BENCH_EXE" --bench --profile-time 2 "gw data/$b/1000000 flows" > /dev/null 2>&1 || true
            callgrind_annotate --inclusive=no "$OUTDIR/callgrind.$b.out" 2>/dev/null \
                | grep -E '^ *[0-9,]+ \(' | head -14 > "$OUTDIR/callgrind.$b.txt" || true
            echo "valgrind --tool=callgrind $(basename "$BENCH_EXE") --bench --profile-time 2 'gw data/$b/1000000 flows'; callgrind_annotate" \
                > "$OUTDIR/callgrind.$b.cmd"
        done
    fi
fi

[ "$MODE" = full ] && [ "$E2E" = 1 ] && wanted e2e && run_e2e

# ------------------------------------------------------------ report
python3 perf/report.py "$OUTDIR" "$MODE" > "$RESULTS.tmp" || die "report failed"
mv "$RESULTS.tmp" "$RESULTS"
say "wrote $RESULTS"
if [ "$MODE" = smoke ]; then
    # It ran and reported: traffic went through pgw both ways, translated and
    # answered correctly. No timing is asserted.
    python3 - "$OUTDIR" <<'EOF' || die "smoke: the report shows no traffic through pgw"
import json, sys
d = json.load(open(sys.argv[1] + "/smoke-gw-1k.json"))
t = d["totals"]
assert t["acc_rx"] > 0 and t["srv_rx"] > 0, "no traffic"
assert t["acc_mismatch"] == 0 and t["acc_bad_csum"] == 0, t
c = json.load(open(sys.argv[1] + "/smoke-gw-cps.json"))["totals"]
assert c["closed"] > 0 and c["finack_rx"] > 0 and c["udp_rx"] > 0, c
print("bench smoke: ok")
EOF
    # RESULTS.json has every documented field in every row (no figures checked).
    python3 perf/check_results.py "$OUTDIR/RESULTS.json" || die "smoke: RESULTS.json lacks documented fields"
fi
