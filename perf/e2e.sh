#!/usr/bin/env bash
# perf/e2e.sh OUTDIR — the end-to-end race between real TCP stacks: pgw
# against the Linux kernel (and bare dpdk-testpmd), same topology, same run.
#
# HOW TO RUN: `scripts/bench.sh --e2e` (builds pgw, writes perf/out/e2e/),
# or as part of the full `scripts/bench.sh`; by hand, as root after
# scripts/setup.sh and a release build of pgw:
#     perf/e2e.sh /tmp/e2e-out        (PGW=path/to/pgw to pick the binary)
# E2E_CONFIGS="kernel-nat pgw-afxdp", E2E_RUNS="iperf_m536", E2E_REPS,
# E2E_DURATION narrow a run for
# debugging (the defaults are what the results mean); E2E_RETRIES and
# E2E_FOREIGN_MAX tune the re-runs of disturbed reps (see "quiet machine").
# About 10 minutes on a quiet machine.
#
# WHAT IT MEASURES: real Linux TCP clients (wrk, iperf3) in one network
# namespace talk to real servers (two nginx, iperf3 -s) in another, through a
# DUT in between, four DUTs one after the other on the same veths:
#
#   client netns pgwe2e-cli          dut netns pgwe2e-dut            server netns pgwe2e-srv
#   e2e-c 10.50.0.2/24 ====veth==== e2e-dc   [ DUT ]   e2e-ds ====veth==== e2e-s 10.80.0.11/24 (nginx, iperf3)
#                                                                                10.80.0.12/24 (nginx, iperf3)
#   VIP (representative address) 10.33.0.1: port 80 -> nginx on .11/.12:80,
#   port 5201 -> iperf3 on .11/.12:5201, balanced over both addresses.
#
#   row (config)    DUT                                               client talks to
#   kernel-route    kernel IPv4 forwarding in the dut netns             10.80.0.11 (no VIP, no NAT)
#   kernel-nat      kernel full NAT: nftables DNAT numgen inc mod 2 +   VIP 10.33.0.1
#                   SNAT to 10.80.0.100, conntrack accounting on
#   testpmd-afxdp   dpdk-testpmd io over net_af_xdp on e2e-dc/e2e-ds    10.80.0.11 (no VIP, no NAT;
#                   (no MAC rewrite: static neighbours = peer MACs)     static on-link neighbours)
#   pgw-afxdp       pgw GW role (NAT, round robin, authorization by a   VIP 10.33.0.1
#                   static session, accounting) over the same
#                   net_af_xdp vdevs: configs/bench-gw-afxdp.toml,
#                   pool 10.80.0.100, default GW timeouts
#
# Metrics, each run E2E_REPS (3) times in this order, all reps of one metric
# in a row (so that pgw's close-heavy run comes last and cannot starve the
# others of keys), E2E_DURATION (10) s each:
#   iperf_gbps, iperf_retrans  iperf3 -P 4 -t 10 (receiver Gb/s, sender retransmits)
#   iperf_m536_pps             iperf3 -P 4 -M 536: data-direction packets/s, counted
#                              as rx_packets of the server-side veth e2e-s over the
#                              run / iperf3's receive seconds (the bytes/(MSS-12)
#                              estimate is kept beside it in loss.per_run)
#   http_keepalive_rps         wrk -t2 -c64 --latency GET / (1 KiB), keep-alive
#   http_close_cps, _p99_ms    the same with -H 'Connection: close': one TCP
#                              connection per request, so Requests/sec = conn/s
#
# CPU placement (2 vCPUs): CPU 1 is the DUT's: the testpmd forwarding lcore or
# the pgw worker busy-poll it; in the kernel rows RPS on the dut veths steers
# the forwarding/NAT softirq work there. CPU 0 runs everything else: wrk,
# iperf3 client and server, both nginx (1 worker each), the endpoints' TCP
# stacks (RPS on e2e-c/e2e-s -> CPU 0), testpmd's main lcore / pgw's
# management thread, and, in the AF_XDP rows, the veth XDP redirect into the
# socket (it runs where the sending endpoint runs). Compare rows within one
# run: the figures move with the host and with other jobs on a shared VM.
#
# HOW TO READ: OUTDIR/e2e-<config>.json per row (median of the reps and every
# rep; loss = drops the operator of the DUT would not see in the tools:
# the veths' own rx/tx_dropped (ip -s link; ethtool -S rx_queue_0_drops is
# part of rx_dropped; a frame dropped at the far end of a veth is counted
# once per direction, see perf/e2e.py), and the DUT's counters: kernel
# Ip*Discards and conntrack drop/insert_failed, testpmd's per-port
# missed/errors and RX-minus-TX of io forwarding, pgw's drops by reason and
# PMD counters). With one CPU for clients and servers together, the HTTP runs
# saturate CPU 0 (seen in /proc/stat while developing this: ~1 % idle in a
# kernel-route keep-alive run): an HTTP figure is a ceiling set by the load
# side unless a DUT falls below the others; its p99 and drops still tell.
# OUTDIR/e2e-<config>.cmd lists the commands; raw outputs are
# OUTDIR/e2e-<config>-<metric>-<rep>.txt (+ .counters.json: every counter
# after that run; pgw rows also .pgw-stats.json = `pgw stats --json`).
#
# SAFETY: every DPDK process runs with --no-pci and --in-memory (testpmd
# explicitly, pgw by its profile); traffic stays in the three namespaces this
# script creates; everything it starts is stopped by PID; namespaces (and
# with them veths, nftables table, conntrack state), temp dir and pgw's
# control socket are removed on exit, failure or Ctrl-C.
set -uo pipefail

OUTDIR=${1:?usage: perf/e2e.sh OUTDIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/machine.sh
. "$ROOT/scripts/machine.sh"
HELPER=$ROOT/perf/e2e.py
PGW=${PGW:-${CARGO_TARGET_DIR:-$ROOT/target/perf}/release/pgw}
PROFILE=$ROOT/configs/bench-gw-afxdp.toml
TESTPMD=$(command -v dpdk-testpmd || true)
DUR=${E2E_DURATION:-10}
REPS=${E2E_REPS:-3}
CONFIGS=${E2E_CONFIGS:-kernel-route kernel-nat testpmd-afxdp pgw-afxdp}
RUNS=${E2E_RUNS:-iperf iperf_m536 http_keepalive http_close}
RETRIES=${E2E_RETRIES:-6}
FOREIGN_MAX=${E2E_FOREIGN_MAX:-15}   # % of CPU other processes may take during a run before it is redone

NSC=pgwe2e-cli NSD=pgwe2e-dut NSS=pgwe2e-srv
C_IF=e2e-c DC_IF=e2e-dc DS_IF=e2e-ds S_IF=e2e-s
CLI_IP=10.50.0.2 DUT_CIP=10.50.0.1 DUT_SIP=10.80.0.1
SRV1=10.80.0.11 SRV2=10.80.0.12 POOL=10.80.0.100 VIP=10.33.0.1
HTTP_PORT=80 IPERF_PORT=5201
CPU_LOAD=0 CPU_DUT=1
PGW_SOCK=/run/pgwe2e/bench-gw-afxdp.sock   # = instance.control_socket of $PROFILE

say() { echo "e2e: $*" >&2; }
die() { echo "e2e: error: $*" >&2; exit 1; }

# ------------------------------------------------------------ preflight
[ "$(id -u)" = 0 ] || die "run as root (namespaces, XDP, hugepages)"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (load on CPU $CPU_LOAD, DUT on CPU $CPU_DUT)"
for t in ip ethtool nft conntrack nginx wrk iperf3 curl taskset python3 flock; do
    command -v "$t" > /dev/null || die "$t not found: run scripts/setup.sh"
done
mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
exec 9> /tmp/pgw-e2e.lock
flock -n 9 || die "another perf/e2e.sh holds /tmp/pgw-e2e.lock"
rm -f "$OUTDIR"/e2e-* 2> /dev/null

TMP=$(mktemp -d /tmp/pgw-e2e.XXXXXX) || die "mktemp failed"
chmod 755 "$TMP"   # nginx workers run as nobody and read $TMP/www

# ------------------------------------------------------------ cleanup
PIDS=()
stop_pid() {  # pid: SIGINT, then SIGKILL after 10 s
    local p=$1
    kill -0 "$p" 2> /dev/null || { wait "$p" 2> /dev/null; return 0; }
    kill -INT "$p" 2> /dev/null
    for _ in $(seq 100); do kill -0 "$p" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2> /dev/null
    wait "$p" 2> /dev/null
    return 0
}
forget_pid() {  # drop a stopped pid from PIDS
    local p=$1 q keep=()
    for q in "${PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
    PIDS=("${keep[@]}")
}
delete_topology() {
    ip -n "$NSC" link del "$C_IF" 2> /dev/null
    ip -n "$NSS" link del "$S_IF" 2> /dev/null
    local n
    for n in "$NSC" "$NSD" "$NSS"; do ip netns del "$n" 2> /dev/null; done
}
cleanup() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
    delete_topology
    rm -f "$PGW_SOCK"; rmdir "$(dirname "$PGW_SOCK")" 2> /dev/null
    rm -rf "$TMP" /tmp/pgw-e2e.lock
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

nsx() { local n=$1; shift; ip netns exec "$n" "$@"; }
cpumask() { printf '%x' $((1 << $1)); }

# ------------------------------------------------------------ topology
# Namespaces of a run that was killed with SIGKILL are ours (we hold the lock).
for n in "$NSC" "$NSD" "$NSS"; do
    if ip netns list | grep -qw "$n"; then say "removing stale namespace $n"; fi
done
delete_topology
sleep 0.5
build_topology() {
    local n
    for n in "$NSC" "$NSD" "$NSS"; do
        ip netns add "$n" || return 1
        ip -n "$n" link set lo up
    done
    ip link add "$C_IF" netns "$NSC" type veth peer name "$DC_IF" netns "$NSD" || return 1
    ip link add "$S_IF" netns "$NSS" type veth peer name "$DS_IF" netns "$NSD" || return 1
    for x in "$NSC $C_IF" "$NSD $DC_IF" "$NSD $DS_IF" "$NSS $S_IF"; do
        set -- $x
        ip -n "$1" link set "$2" up || return 1
    done
    # Endpoints: no TX checksum offload (a CHECKSUM_PARTIAL frame read by
    # AF_XDP leaves with a bad checksum: ping works, TCP does not). Applied
    # in every row so that the rows share one topology.
    nsx "$NSC" ethtool -K "$C_IF" tx off > /dev/null || return 1
    nsx "$NSS" ethtool -K "$S_IF" tx off > /dev/null || return 1
    # RPS: the endpoints' receive work on the load CPU, the DUT veths' on the
    # DUT CPU (the kernel rows' forwarding; XDP runs before RPS).
    nsx "$NSC" sh -c "echo $(cpumask $CPU_LOAD) > /sys/class/net/$C_IF/queues/rx-0/rps_cpus" || return 1
    nsx "$NSS" sh -c "echo $(cpumask $CPU_LOAD) > /sys/class/net/$S_IF/queues/rx-0/rps_cpus" || return 1
    nsx "$NSD" sh -c "echo $(cpumask $CPU_DUT) > /sys/class/net/$DC_IF/queues/rx-0/rps_cpus" || return 1
    nsx "$NSD" sh -c "echo $(cpumask $CPU_DUT) > /sys/class/net/$DS_IF/queues/rx-0/rps_cpus" || return 1
    ip -n "$NSC" addr add "$CLI_IP/24" dev "$C_IF" || return 1
    ip -n "$NSS" addr add "$SRV1/24" dev "$S_IF" || return 1
    ip -n "$NSS" addr add "$SRV2/24" dev "$S_IF" || return 1
    # Many client ports: the close test opens ~10^5 connections per run.
    nsx "$NSC" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" || return 1
    nsx "$NSS" sysctl -qw net.core.somaxconn=8192 net.ipv4.tcp_max_syn_backlog=8192 || return 1
    C_MAC=$(nsx "$NSC" cat "/sys/class/net/$C_IF/address") || return 1
    S_MAC=$(nsx "$NSS" cat "/sys/class/net/$S_IF/address") || return 1
}
build_topology || die "building the namespaces/veths failed (see above)"

# Back to a neutral state between rows: no DUT addresses, routes, neighbours,
# NAT table or conntrack entries.
reset_topology() {
    local d
    for d in "$DC_IF" "$DS_IF"; do
        ip -n "$NSD" addr flush dev "$d"
        ip -n "$NSD" link set dev "$d" xdp off 2> /dev/null   # a DPDK process killed hard leaves its program
    done
    nsx "$NSD" sysctl -qw net.ipv4.ip_forward=0
    nsx "$NSD" nft delete table ip pgwe2e 2> /dev/null
    nsx "$NSD" conntrack -F > /dev/null 2>&1
    ip -n "$NSC" route flush dev "$C_IF" 2> /dev/null
    ip -n "$NSS" route flush dev "$S_IF" 2> /dev/null
    ip -n "$NSC" addr flush dev "$C_IF"; ip -n "$NSC" addr add "$CLI_IP/24" dev "$C_IF"
    ip -n "$NSS" addr flush dev "$S_IF"
    ip -n "$NSS" addr add "$SRV1/24" dev "$S_IF"; ip -n "$NSS" addr add "$SRV2/24" dev "$S_IF"
    ip -n "$NSC" neigh flush dev "$C_IF" nud all 2> /dev/null
    ip -n "$NSS" neigh flush dev "$S_IF" nud all 2> /dev/null
    ip -n "$NSD" neigh flush all 2> /dev/null
}

# ------------------------------------------------------------ servers
mkdir -p "$TMP/www"
head -c 1024 /dev/zero | tr '\0' 'x' > "$TMP/www/index.html"
chmod -R a+rX "$TMP/www"
start_bg() {  # LOG CMD... : start in the background, remember the PID
    local log=$1; shift
    "$@" < /dev/null > "$log" 2>&1 &
    BGPID=$!
    PIDS+=("$BGPID")
}
NGINX_CMDS=()
for i in 1 2; do
    ip=$([ $i = 1 ] && echo $SRV1 || echo $SRV2)
    d=$TMP/nginx$i
    mkdir -p "$d/tmp" "$d/logs"
    cat > "$d/nginx.conf" << EOF
# perf/e2e.sh: server $i ($ip), its own pid/log/temp dirs under $d
daemon off;
master_process on;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    default_type text/plain;
    server {
        listen $ip:$HTTP_PORT backlog=8192;
        root $TMP/www;
    }
}
EOF
    cmd=(ip netns exec "$NSS" taskset -c "$CPU_LOAD" nginx -p "$d" -e "$d/logs/error.log" -c "$d/nginx.conf")
    start_bg "$d/logs/stderr" "${cmd[@]}"
    cp "$d/nginx.conf" "$OUTDIR/e2e-nginx-$i.conf"
    NGINX_CMDS+=("${cmd[*]}  # (conf kept as e2e-nginx-$i.conf)")
done
# One iperf3 server on the wildcard address serves both server addresses:
# the DUT balances a test's control and data connections over .11 and .12,
# and they must reach the same iperf3 process (its cookie).
IPERF_S_CMD=(ip netns exec "$NSS" taskset -c "$CPU_LOAD" iperf3 -s -p "$IPERF_PORT")
start_bg "$TMP/iperf3-s.log" "${IPERF_S_CMD[@]}"
IPERF_S_PID=$BGPID
sleep 1
for i in 1 2; do
    ip=$([ $i = 1 ] && echo $SRV1 || echo $SRV2)
    nsx "$NSS" curl -s -o /dev/null -m 2 "http://$ip/" \
        || die "nginx $i on $ip does not answer in $NSS: $(tail -3 "$TMP/nginx$i/logs/error.log" "$TMP/nginx$i/logs/stderr" 2> /dev/null)"
done
kill -0 "$IPERF_S_PID" 2> /dev/null || die "iperf3 -s did not start: $(cat "$TMP/iperf3-s.log")"

restart_iperf_server() {  # a failed test can leave iperf3 -s stuck
    stop_pid "$IPERF_S_PID"; forget_pid "$IPERF_S_PID"
    start_bg "$TMP/iperf3-s.log" "${IPERF_S_CMD[@]}"
    IPERF_S_PID=$BGPID
    sleep 0.5
}

# ------------------------------------------------------------ quiet machine
# This VM is shared: wait (at most 60 s) until its CPUs are >= 85 % idle
# before a row, so that another job's load does not end up in the figures;
# what was seen goes into the row's notes. Each run also measures the CPU
# share that processes other than this benchmark's took while it ran
# (loss.per_run[].foreign_cpu_pct); a rep where that reached 15 % is run
# again once (at most E2E_RETRIES = 6 times in all), the first output kept
# as ...-<rep>.discarded.txt and said in the notes.
wait_quiet() {  # MAX_SECONDS WHAT
    local idle t0=$SECONDS
    while :; do
        idle=$(cpu_idle_pct)
        [ "$idle" -ge 85 ] && break
        if [ $((SECONDS - t0)) -ge "$1" ]; then
            NOTES+=("The machine was busy before $2 (CPU idle ${idle} % after waiting $1 s; top: $(busiest_processes)).")
            say "machine still busy (CPU idle ${idle} %): running anyway"
            break
        fi
        say "machine busy (CPU idle ${idle} %): waiting"
    done
    IDLE_BEFORE=$idle
}

# ------------------------------------------------------------ rows
# Each row sets: DUT_DESC, TARGET (address the client uses), NOTES (lines),
# DUT_CMDS (lines), and for DPDK rows DUT_PID / DUT_LOG.
PLACEMENT="CPU $CPU_DUT: the DUT (kernel rows: forwarding/NAT softirq via RPS on $DC_IF/$DS_IF; testpmd forwarding lcore; pgw worker, busy poll). CPU $CPU_LOAD: wrk (-t2), iperf3 client and server, 2 x nginx (1 worker each), the endpoints' TCP stacks (RPS on $C_IF/$S_IF), testpmd main lcore / pgw management thread, and in the AF_XDP rows the veth XDP redirect into the socket (runs on the sender's CPU)."

setup_kernel_route() {
    DUT_DESC="Linux kernel IPv4 forwarding (dut netns, ip_forward=1)"
    TARGET=$SRV1
    ip -n "$NSD" addr add "$DUT_CIP/24" dev "$DC_IF" || return 1
    ip -n "$NSD" addr add "$DUT_SIP/24" dev "$DS_IF" || return 1
    nsx "$NSD" sysctl -qw net.ipv4.ip_forward=1 || return 1
    ip -n "$NSC" route add default via "$DUT_CIP" || return 1
    ip -n "$NSS" route add default via "$DUT_SIP" || return 1
    DUT_CMDS+=("ip netns exec $NSD sysctl -w net.ipv4.ip_forward=1  # + addresses $DUT_CIP/24 on $DC_IF, $DUT_SIP/24 on $DS_IF; routes via them")
    if [ "$CONFIG" = kernel-route ]; then
        NOTES+=("No VIP and no NAT: the client talks to server $SRV1 directly (routed through the dut netns), so every metric goes to nginx/iperf3 on $SRV1 only.")
    fi
}

setup_kernel_nat() {
    setup_kernel_route || return 1
    DUT_DESC="Linux kernel full NAT: nftables DNAT numgen inc mod 2 + SNAT, conntrack accounting"
    TARGET=$VIP
    ip -n "$NSD" addr add "$POOL/32" dev "$DS_IF" || return 1
    nsx "$NSD" sysctl -qw net.netfilter.nf_conntrack_acct=1 || return 1
    cat > "$OUTDIR/e2e-kernel-nat.nft" << EOF
table ip pgwe2e {
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $VIP tcp dport { $HTTP_PORT, $IPERF_PORT } counter dnat to numgen inc mod 2 map { 0 : $SRV1, 1 : $SRV2 }
    }
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "$DS_IF" ct status dnat counter snat to $POOL
    }
}
EOF
    nsx "$NSD" nft -f "$OUTDIR/e2e-kernel-nat.nft" || return 1
    DUT_CMDS+=("ip netns exec $NSD sysctl -w net.netfilter.nf_conntrack_acct=1")
    DUT_CMDS+=("ip netns exec $NSD nft -f e2e-kernel-nat.nft  # DNAT $VIP:{$HTTP_PORT,$IPERF_PORT} -> numgen inc mod 2 {$SRV1,$SRV2}, SNAT to $POOL")
    NOTES+=("VIP $VIP balanced by numgen inc mod 2 over $SRV1/$SRV2, SNAT to $POOL; conntrack timeouts and table size are the kernel's defaults (nf_conntrack_max $(cat /proc/sys/net/netfilter/nf_conntrack_max 2> /dev/null))." )
}

wait_dpdk_link() {  # LOG PATTERN: wait up to 30 s for the DPDK process to say PATTERN
    local log=$1 pat=$2
    for _ in $(seq 300); do
        grep -q "$pat" "$log" 2> /dev/null && return 0
        kill -0 "$DUT_PID" 2> /dev/null || return 1
        sleep 0.1
    done
    return 1
}

setup_testpmd_afxdp() {
    DUT_DESC="dpdk-testpmd io forwarding over net_af_xdp (1 forwarding lcore)"
    TARGET=$SRV1
    [ -n "$TESTPMD" ] || { SETUP_ERR="dpdk-testpmd not found (apt-get install dpdk)"; return 1; }
    # io mode does not rewrite MACs: each endpoint sends straight to the
    # other's MAC over an on-link route; permanent neighbours, no ARP.
    ip -n "$NSC" route add 10.80.0.0/24 dev "$C_IF" || return 1
    ip -n "$NSS" route add 10.50.0.0/24 dev "$S_IF" || return 1
    for s in $SRV1 $SRV2; do
        ip -n "$NSC" neigh replace "$s" lladdr "$S_MAC" dev "$C_IF" nud permanent || return 1
    done
    ip -n "$NSS" neigh replace "$CLI_IP" lladdr "$C_MAC" dev "$S_IF" nud permanent || return 1
    DUT_LOG=$TMP/testpmd.log
    local cmd=(ip netns exec "$NSD" "$TESTPMD" --no-pci --in-memory --file-prefix=pgwe2e-testpmd
        -l "$CPU_LOAD,$CPU_DUT" --main-lcore "$CPU_LOAD"
        "--vdev=net_af_xdp0,iface=$DC_IF,start_queue=0,queue_count=1"
        "--vdev=net_af_xdp1,iface=$DS_IF,start_queue=0,queue_count=1"
        -- --forward-mode=io --auto-start --stats-period 1 --nb-cores=1 --burst=32
        --rxd=2048 --txd=2048)
    DUT_CMDS+=("${cmd[*]}")
    DUT_CMDS+=("ip -n $NSC route add 10.80.0.0/24 dev $C_IF; ip -n $NSC neigh replace $SRV1 lladdr <$S_IF MAC> dev $C_IF nud permanent; ip -n $NSS route add 10.50.0.0/24 dev $S_IF; ip -n $NSS neigh replace $CLI_IP lladdr <$C_IF MAC> dev $S_IF nud permanent")
    start_bg "$DUT_LOG" "${cmd[@]}"
    DUT_PID=$BGPID
    wait_dpdk_link "$DUT_LOG" "NIC statistics for port 1" \
        || { SETUP_ERR="dpdk-testpmd did not start: $(grep -v '^ *$' "$DUT_LOG" | tail -4 | tr '\n' ' ')"; return 1; }
    NOTES+=("No VIP and no NAT: plain io forwarding, the client talks to $SRV1 directly (on-link routes and permanent neighbour entries carrying the peer veth's MAC).")
}

setup_pgw_afxdp() {
    DUT_DESC="pgw GW role over net_af_xdp (1 worker)"
    TARGET=$VIP
    [ -x "$PGW" ] || { SETUP_ERR="pgw binary $PGW not found (cargo build --release -p pgw-engine --bin pgw)"; return 1; }
    "$PGW" check-config "$PROFILE" > "$TMP/check.log" 2>&1 \
        || { SETUP_ERR="pgw check-config $PROFILE: $(cat "$TMP/check.log")"; return 1; }
    # pgw answers ARP for 10.50.0.1 (the client's gateway) and resolves the
    # servers itself; the servers reach the pool address on-link.
    ip -n "$NSC" route add default via "$DUT_CIP" || return 1
    rm -f "$PGW_SOCK"; rmdir "$(dirname "$PGW_SOCK")" 2> /dev/null
    DUT_LOG=$TMP/pgw.log
    local cmd=(ip netns exec "$NSD" "$PGW" run --profile "$PROFILE")
    DUT_CMDS+=("ip netns exec $NSD pgw run --profile configs/bench-gw-afxdp.toml  # EAL: $("$PGW" eal-args "$PROFILE" 2> /dev/null | tr '\n' ' ')")
    DUT_CMDS+=("pgw stats --profile configs/bench-gw-afxdp.toml --json  # after every run")
    start_bg "$DUT_LOG" "${cmd[@]}"
    DUT_PID=$BGPID
    for _ in $(seq 300); do
        "$PGW" stats --profile "$PROFILE" --json > "$TMP/pgw-stats.json" 2> /dev/null && break
        kill -0 "$DUT_PID" 2> /dev/null || break
        sleep 0.1
    done
    kill -0 "$DUT_PID" 2> /dev/null && [ -s "$TMP/pgw-stats.json" ] \
        || { SETUP_ERR="pgw did not start: $(grep -v '^ *$' "$DUT_LOG" | tail -5 | tr '\n' ' ')"; return 1; }
    NOTES+=("VIP $VIP:$HTTP_PORT and :$IPERF_PORT, round robin over $SRV1/$SRV2, pool $POOL, static session for $CLI_IP (authorization of services web+iperf), accounting records kept in memory (no [accounting] writer). GW timeouts are pgw's defaults (close_hold 60 s, key ports 1024-65535 on one pool address: ~64 k keys per destination; the client's reused ports revive their bindings).")
}

stop_dut() {
    [ -n "${DUT_PID:-}" ] || return 0
    stop_pid "$DUT_PID"; forget_pid "$DUT_PID"
    DUT_PID=""
}

# ------------------------------------------------------------ one row
snap() {  # FILE
    local extra=()
    case $CONFIG in
        testpmd-afxdp) extra=(--testpmd-log "$DUT_LOG") ;;
        pgw-afxdp) extra=(--pgw "$PGW" --profile "$PROFILE") ;;
    esac
    python3 "$HELPER" snap "$1" "$CONFIG" --shell-pid $$ "${extra[@]}"
}

check_path() {  # HTTP through the DUT; to a VIP both members must answer
    local ok=0
    for _ in $(seq 40); do
        if nsx "$NSC" curl -s -o /dev/null -f -m 2 "http://$TARGET:$HTTP_PORT/"; then
            ok=$((ok + 1)); [ $ok -ge 4 ] && return 0
        else
            sleep 0.25
        fi
    done
    return 1
}

run_tool() {  # RUN REP RAW: run one measurement, output in RAW
    local run=$1 rep=$2 raw=$3 cmd
    case $run in
        iperf) cmd=(iperf3 -c "$TARGET" -p "$IPERF_PORT" -P 4 -t "$DUR" -J --connect-timeout 3000) ;;
        iperf_m536) cmd=(iperf3 -c "$TARGET" -p "$IPERF_PORT" -P 4 -t "$DUR" -M 536 -J --connect-timeout 3000) ;;
        http_keepalive) cmd=(wrk -t2 -c64 "-d${DUR}s" --latency "http://$TARGET:$HTTP_PORT/") ;;
        http_close) cmd=(wrk -t2 -c64 "-d${DUR}s" --latency -H "Connection: close" "http://$TARGET:$HTTP_PORT/") ;;
    esac
    local full=(ip netns exec "$NSC" taskset -c "$CPU_LOAD" timeout $((DUR + 30)) "${cmd[@]}")
    if [ "$rep" = 1 ]; then
        printf '%s\n' "${full[*]}" | sed "s/Connection: close/'Connection: close'/" >> "$CMDF"
    fi
    "${full[@]}" > "$raw" 2> "$raw.err"
    local rc=$?
    [ -s "$raw.err" ] && cat "$raw.err" >> "$raw"
    rm -f "$raw.err"
    if [ "${run%%_*}" = iperf ] && ! python3 "$HELPER" iperf-ok "$raw"; then
        restart_iperf_server
    fi
    return $rc
}

run_row() {
    CONFIG=$1
    local row=$TMP/$CONFIG
    mkdir -p "$row"
    local runs=$row/runs.jsonl
    CMDF=$OUTDIR/e2e-$CONFIG.cmd
    : > "$CMDF"
    NOTES=() DUT_CMDS=() SETUP_ERR="" DUT_PID="" DUT_LOG="" TARGET="" DUT_DESC=""
    local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    say "=== $CONFIG"
    reset_topology
    wait_quiet 60 "this row"
    NOTES+=("CPU idle before the row: ${IDLE_BEFORE} %.")
    local skip=""
    if ! "setup_${CONFIG//-/_}"; then
        skip="setup failed: ${SETUP_ERR:-see the commands above}"
    elif ! check_path; then
        skip="no HTTP path from the client to $TARGET:$HTTP_PORT through the DUT (40 tries of curl)"
        [ -n "$DUT_LOG" ] && skip="$skip; DUT log: $(grep -v '^ *$' "$DUT_LOG" | grep -v 'statistics\|####\|-pps\|Throughput\|RX-\|TX-' | tail -3 | tr '\n' ' ')"
    fi
    {
        printf '%s\n' "${NGINX_CMDS[@]}" "${IPERF_S_CMD[*]}" "${DUT_CMDS[@]}"
    } >> "$CMDF"
    if [ -z "$skip" ]; then
        say "$CONFIG: $DUT_DESC; client -> $TARGET"
        snap "$row/s0.json"
        local prev=$row/s0.json run rep attempt foreign
        for run in $RUNS; do
            for rep in $(seq "$REPS"); do
                for attempt in 1 2; do
                    local raw=$OUTDIR/e2e-$CONFIG-$run-$rep.txt cur=$row/$run-$rep.json rec=$row/$run-$rep.rec
                    run_tool "$run" "$rep" "$raw"
                    sleep 1.5   # TCP teardown; testpmd prints its counters each second
                    snap "$cur"
                    [ "$CONFIG" = pgw-afxdp ] && "$PGW" stats --profile "$PROFILE" --json \
                        > "$OUTDIR/e2e-$CONFIG-$run-$rep.pgw-stats.json" 2>&1
                    say "$CONFIG $run #$rep: $(python3 "$HELPER" record "$rec" "$CONFIG" "$run" "$rep" "$raw" "$prev" "$cur")"
                    foreign=$(python3 "$HELPER" foreign "$rec")
                    # Another job took the CPU: run this rep again, once (not
                    # pgw's close reps: each one changes the key hold the next sees).
                    if [ "$attempt" = 1 ] && [ "$RETRIES" -gt 0 ] && awk -v f="$foreign" -v m="$FOREIGN_MAX" 'BEGIN {exit !(f >= m)}' \
                        && ! { [ "$CONFIG" = pgw-afxdp ] && [ "$run" = http_close ]; }; then
                        RETRIES=$((RETRIES - 1))
                        mv "$raw" "${raw%.txt}.discarded.txt"
                        NOTES+=("$run rep $rep ran twice: other processes took ${foreign} % of the CPU during the first attempt (its output: e2e-$CONFIG-$run-$rep.discarded.txt).")
                        say "$CONFIG $run #$rep: other processes took ${foreign} % of the CPU: running it again"
                        wait_quiet 30 "$run rep $rep (again)"
                        prev=$row/pre-$run-$rep.json
                        snap "$prev"
                        continue
                    fi
                    cat "$rec" >> "$runs"
                    cp "$cur" "$OUTDIR/e2e-$CONFIG-$run-$rep.counters.json"
                    prev=$cur
                    break
                done
            done
        done
    else
        say "$CONFIG: SKIPPED: $skip"
        NOTES+=("All metrics null: $skip")
    fi
    # The DUT's own final counters.
    local final=""
    case $CONFIG in
        pgw-afxdp)
            [ -n "$DUT_PID" ] && "$PGW" stats --profile "$PROFILE" > "$OUTDIR/e2e-$CONFIG-final-stats.txt" 2>&1
            ;;
    esac
    stop_dut
    [ -n "$DUT_LOG" ] && cp "$DUT_LOG" "$OUTDIR/e2e-$CONFIG-dut.log"
    if [ "$CONFIG" = kernel-nat ]; then
        nsx "$NSD" nft list table ip pgwe2e > "$OUTDIR/e2e-$CONFIG-nft-counters.txt" 2>&1
        nsx "$NSD" conntrack -S > "$OUTDIR/e2e-$CONFIG-conntrack-S.txt" 2>&1
    fi
    # Metadata for the JSON.
    local loss_notes="veth_drops: frames lost between the ends of the veths $C_IF-$DC_IF and $DS_IF-$S_IF over all runs, from ip -s link rx_dropped/tx_dropped (rx_dropped includes ethtool rx_queue_0_drops: in the AF_XDP rows, frames the XDP program could not put in the socket's ring), each lost frame counted once (per direction in loss.per_run: a netif_rx backlog drop at a receiver without XDP is counted by the kernel on both ends). "
    case $CONFIG in
        kernel-*) loss_notes+="dut_drops: the dut netns' Ip*Discards/NoRoutes/HdrErrors (/proc/net/snmp, netstat)$([ "$CONFIG" = kernel-nat ] && echo ', conntrack -S drop, early_drop, insert_failed, chaintoolong, error and invalid (invalid = packets conntrack could not track, not necessarily dropped)'). " ;;
        testpmd-afxdp) loss_notes+="dut_drops: testpmd's per-port RX-missed/RX-errors/RX-nombuf/TX-errors (its NIC statistics, printed each second; RX-missed of net_af_xdp is the socket's XDP rx_dropped, the same frames as the veth's rx_queue_0_drops, so it overlaps veth_drops) and tx_dropped_AtoB = RX-packets of port A minus TX-packets of port B over each run (io forwarding: what the TX queue refused, freed). Port 0 = $DC_IF (client side), port 1 = $DS_IF. " ;;
        pgw-afxdp) loss_notes+="dut_drops: pgw stats drops by reason (summed over workers) and the ports' PMD counters port.<name>.imissed/ierrors/oerrors/rx_nombuf, deltas over the runs (imissed of net_af_xdp is the socket's XDP rx_dropped, the same frames as the veth's rx_queue_0_drops, so it overlaps veth_drops); pgw stats --json after each run in e2e-pgw-afxdp-<run>-<rep>.pgw-stats.json. " ;;
    esac
    loss_notes+="softnet_dropped in loss.per_run: the machine-wide netif_rx backlog drops (/proc/net/softnet_stat) during the run."
    python3 - "$row/meta.json" "$DUT_DESC" "$date" "$CMDF" "$loss_notes" "$PLACEMENT" "$TARGET" "$REPS" "$skip" "${NOTES[@]}" << 'EOF'
import json, sys
f, dut, date, cmdf, loss_notes, placement, target, reps, skip, *notes = sys.argv[1:]
cmds = [l.rstrip("\n") for l in open(cmdf) if l.strip()]
meta = {"dut": dut, "date": date, "commands": cmds, "loss_notes": loss_notes,
        "placement": placement, "target": target, "reps": int(reps), "notes": notes,
        "skip_reason": {r: skip for r in ("iperf", "iperf_m536", "http_keepalive", "http_close")} if skip else {}}
json.dump(meta, open(f, "w"))
EOF
    say "$CONFIG medians: $(python3 "$HELPER" assemble "$runs" "$OUTDIR" "$CONFIG" "$row/meta.json")"
}

T0=$SECONDS
say "outputs in $OUTDIR; rows: $CONFIGS; $REPS x ${DUR}s per metric"
for c in $CONFIGS; do
    case $c in
        kernel-route | kernel-nat | testpmd-afxdp | pgw-afxdp) run_row "$c" ;;
        *) say "unknown config $c (kernel-route kernel-nat testpmd-afxdp pgw-afxdp)" ;;
    esac
done
say "done in $((SECONDS - T0)) s"
