#!/usr/bin/env bash
# README's first command: the main job on an embedded default.
# Builds pgw, starts it on two net_tap ports (configs/tap-wire.toml), puts a
# subscriber host and a server host in network namespaces on either side,
# drives HTTP traffic from the subscriber through pgw, and shows the live
# counters. Ctrl-C (or DEMO_SECONDS=N) stops it and removes everything it
# created (namespaces, the pgw process, temp files).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p pgw-engine --locked 2>&1 | tail -n 1
PGW=target/release/pgw
PROFILE=${PGW_PROFILE:-configs/tap-wire.toml}
SOCK=/tmp/pgw-tap-wire.sock
NS_SUB=pgwdemo-sub NS_SRV=pgwdemo-srv
WORK=$(mktemp -d /tmp/pgw-demo.XXXXXX)
PIDS=()

cleanup() {
  trap - EXIT INT TERM
  echo; echo "demo: stopping"
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  [ -f "$WORK/pgw.log" ] && sed -n '/final counters/,$p' "$WORK/pgw.log"
  ip netns del $NS_SUB 2>/dev/null || true
  ip netns del $NS_SRV 2>/dev/null || true
  rm -rf "$WORK"
  echo "demo: cleaned up"
}
trap cleanup EXIT INT TERM

$PGW check-config "$PROFILE"
for n in $NS_SUB $NS_SRV; do ip netns del $n 2>/dev/null || true; ip netns add $n; ip -n $n link set lo up; done
$PGW run --profile "$PROFILE" >"$WORK/pgw.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -S $SOCK ] && ip link show pgw-a 2>/dev/null | grep -q ',UP' && ip link show pgw-b 2>/dev/null | grep -q ',UP' && break; sleep 0.1; done
[ -S $SOCK ] || { echo "demo: pgw did not start:"; cat "$WORK/pgw.log"; exit 1; }
ip link set pgw-a netns $NS_SUB; ip link set pgw-b netns $NS_SRV
ip -n $NS_SUB addr add 10.77.0.1/24 dev pgw-a; ip -n $NS_SUB link set pgw-a up
ip -n $NS_SRV addr add 10.77.0.2/24 dev pgw-b; ip -n $NS_SRV link set pgw-b up
mkdir -p "$WORK/www"; head -c 4194304 /dev/urandom >"$WORK/www/file.bin"
ip netns exec $NS_SRV python3 -m http.server --bind 10.77.0.2 8080 --directory "$WORK/www" >/dev/null 2>&1 &
PIDS+=($!)
sleep 1
echo "demo: subscriber 10.77.0.1 (netns $NS_SUB) <-> pgw <-> server 10.77.0.2:8080 (netns $NS_SRV)"
(
  end=$(( $(date +%s) + ${DEMO_SECONDS:-3600} ))
  while [ "$(date +%s)" -lt "$end" ]; do
    ip netns exec $NS_SUB curl -s -o /dev/null -w 'curl: %{http_code} %{size_download} B in %{time_total}s\n' http://10.77.0.2:8080/file.bin || true
    sleep 1
  done
) &
PIDS+=($!)
end=$(( $(date +%s) + ${DEMO_SECONDS:-3600} ))
while [ "$(date +%s)" -lt "$end" ]; do
  sleep 3
  clear 2>/dev/null || true
  $PGW stats --socket $SOCK || true
  echo "(Ctrl-C to stop)"
done
