#!/usr/bin/env bash
# README's first command: the main job on an embedded default.
#
# Builds pgw and runs the system of FIG. 2 on virtual devices (net_tap) in
# network namespaces: two entry points (LB instances; LB1 also runs RADIUS
# and the session manager), two packet gateways (GW instances), six
# servers in three service groups. Two subscribers log in with radclient
# (RADIUS Access-Request + Accounting Start), then browse the representative
# addresses; alice keeps moving between the two entry points; bob is not
# allowed "chat" (the GW answers with a TCP reset). The live table shows, per
# instance, packets, connections, sessions, drops and accounting records.
# Ctrl-C (or DEMO_SECONDS=N) stops everything and removes what it created;
# DEMO_TRAFFIC_SECONDS=M stops the traffic earlier (scripts/soak.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p pgw-engine --locked 2>&1 | tail -n 1
PGW=$PWD/target/release/pgw
CFG=$PWD/configs/demo
WORK=/tmp/pgw-demo
NS_SUB=pgwdemo-sub NS_LAN=pgwdemo-lan NS_SRV=pgwdemo-srv
PIDS=() PGW_PIDS=() TRAFFIC=""
INSTANCES=(lb1 lb2 gw1 gw2)

stop_pids() { # signal timeout_s pids...: signal each, wait, then KILL
  local sig=$1 t=$2; shift 2
  for p in "$@"; do kill "-$sig" "$p" 2>/dev/null || true; done
  for p in "$@"; do
    for _ in $(seq $((t * 10))); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
}
cleanup() {
  trap - EXIT INT TERM
  echo; echo "demo: stopping: traffic first, then SIGTERM to every instance (the gateways drain and write an accounting record for every connection)"
  [ -n "$TRAFFIC" ] && stop_pids TERM 3 "$TRAFFIC"
  [ ${#PGW_PIDS[@]} -gt 0 ] && stop_pids TERM 20 "${PGW_PIDS[@]}"
  [ ${#PIDS[@]} -gt 0 ] && stop_pids INT 5 "${PIDS[@]}"
  for i in "${INSTANCES[@]}"; do
    [ -f "$WORK/$i.log" ] && { echo "--- $i final counters"; sed -n '/final counters/,$p' "$WORK/$i.log" | grep -E "^(instance|  [a-z_]+ +[0-9]+$)" | head -20; }
  done
  for g in gw1 gw2; do
    [ -f "$WORK/$g.db" ] || continue
    python3 - "$WORK/$g.log" "$WORK/$g.db" "$g" <<'PY' || true
import re, sqlite3, sys
log, db, g = sys.argv[1:]
new = sum(int(m) for m in re.findall(r"^  gw_new_flows +(\d+)$", open(log).read(), re.M))
rows = sqlite3.connect(db).execute("select close_reason, count(*) from accounting group by 1").fetchall()
n = sum(c for _, c in rows)
by = ", ".join(f"{r} {c}" for r, c in sorted(rows))
print(f"--- {g} accounting: {new} connections, {n} records in {g}.db ({by or 'none'})"
      + ("" if n == new else "  MISSING RECORDS"))
PY
  done
  for n in $NS_SUB $NS_LAN $NS_SRV; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$WORK"
  echo "demo: cleaned up (namespaces, processes, files)"
}
trap cleanup EXIT INT TERM

rm -rf "$WORK"; mkdir -p "$WORK"
for n in $NS_SUB $NS_LAN $NS_SRV; do ip netns del "$n" 2>/dev/null || true; ip netns add "$n"; ip -n "$n" link set lo up; done

start() { # instance, taps...
  local i=$1; shift
  $PGW check-config "$CFG/$i.toml" >/dev/null
  $PGW run --profile "$CFG/$i.toml" >"$WORK/$i.log" 2>&1 &
  PGW_PIDS+=($!)
  for _ in $(seq 200); do
    local ok=1
    [ -S "/tmp/pgw-demo-$i.sock" ] || ok=0
    for t in "$@"; do ip link show "$t" 2>/dev/null | grep -q ',UP' || ok=0; done
    [ $ok = 1 ] && return 0
    sleep 0.1
  done
  echo "demo: $i did not start:"; cat "$WORK/$i.log"; exit 1
}
start lb1 d-a1 d-l1
start lb2 d-a2 d-l2
start gw1 d-g1a d-g1s
start gw2 d-g2a d-g2s

# LAN and server network are bridges; a tap's kernel side gets a MAC of its
# own (a bridge keeps frames to a member port's own MAC for itself).
ip -n $NS_LAN link add br0 type bridge; ip -n $NS_LAN link set br0 up
i=0; for d in d-l1 d-l2 d-g1a d-g2a; do
  ip link set $d netns $NS_LAN; ip -n $NS_LAN link set $d address 02:00:00:00:ee:0$i
  ip -n $NS_LAN link set $d master br0; ip -n $NS_LAN link set $d up; i=$((i+1)); done
ip -n $NS_SRV link add br1 type bridge; ip -n $NS_SRV link set br1 up
for d in d-g1s d-g2s; do
  ip link set $d netns $NS_SRV; ip -n $NS_SRV link set $d address 02:00:00:00:ee:1$i
  ip -n $NS_SRV link set $d master br1; ip -n $NS_SRV link set $d up; i=$((i+1)); done
for n in 1 2; do
  ip link set d-a$n netns $NS_SUB; ip -n $NS_SUB link set d-a$n address 02:00:00:00:5$n:02
  ip -n $NS_SUB addr add 10.60.$n.2/24 dev d-a$n; ip -n $NS_SUB link set d-a$n up
done
for s in wap1:10.80.0.11 wap2:10.80.0.12 mail1:10.80.0.21 mail2:10.80.0.22 chat1:10.80.0.31 chat2:10.80.0.32; do
  name=${s%%:*} addr=${s##*:}
  ip -n $NS_SRV addr add $addr/24 dev br1
  mkdir -p "$WORK/www/$name"; echo "hello from $name" >"$WORK/www/$name/index.html"
  head -c 262144 /dev/urandom >"$WORK/www/$name/file.bin"
  ip netns exec $NS_SRV python3 -m http.server --bind $addr 8080 --directory "$WORK/www/$name" >/dev/null 2>&1 &
  PIDS+=($!)
done
# Prometheus scrapes every instance each second (README "Monitoring with
# Prometheus"); the live table ends with what it answers.
PROM=127.0.0.1:19090
{
  echo "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}"
  echo "scrape_configs:"
  echo "  - job_name: pgw"
  echo "    static_configs:"
  for t in lb1:9464 lb2:9466 gw1:9465 gw2:9467; do
    echo "      - {targets: ['127.0.0.1:${t##*:}'], labels: {pgw: ${t%%:*}}}"
  done
} >"$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus" \
  --web.listen-address=$PROM >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)

echo "demo: topology up; waiting for the LBs to see both gateways healthy"
for _ in $(seq 100); do
  $PGW servers --socket /tmp/pgw-demo-lb1.sock --json | grep -q '"up":false' || break; sleep 0.2; done

login() { # user password device -> address
  local out
  out=$(printf 'User-Name=%s,User-Password=%s,Calling-Station-Id=%s\n' "$1" "$2" "$3" | radclient -r 3 -t 2 -x 127.0.0.1:18120 auth testing123)
  echo "$out" | awk -F' = ' '/Framed-IP-Address/ {print $2; exit}'
}
start_acct() { # user device address
  acct Start "$@" 192.0.2.1
}
acct() { # status user device address nas: an accounting request from NAS `nas`
  printf 'User-Name=%s,Acct-Status-Type=%s,Acct-Session-Id=%s-1,Calling-Station-Id=%s,Framed-IP-Address=%s,NAS-IP-Address=%s\n' "$2" "$1" "$2" "$3" "$4" "$5" \
    | radclient -r 3 -t 2 127.0.0.1:18130 acct testing123 >/dev/null
}
ALICE=$(login alice alice-pw 09011110001); start_acct alice 09011110001 "$ALICE"
BOB=$(login bob bob-pw 09011110002); start_acct bob 09011110002 "$BOB"
echo "demo: RADIUS gave alice $ALICE and bob $BOB (least-loaded gateway first)"
ip -n $NS_SUB addr add "$ALICE/32" dev lo; ip -n $NS_SUB addr add "$BOB/32" dev lo
ip -n $NS_SUB route add 10.33.0.0/24 via 10.60.1.1

# Traffic: both subscribers browse the three services; alice moves between
# the entry points every 10 s (her address's route flips LB1 <-> LB2, and
# the NAS of the new entry point sends an Interim-Update).
(
  end=$(( $(date +%s) + ${DEMO_TRAFFIC_SECONDS:-${DEMO_SECONDS:-3600}} )); k=0
  while [ "$(date +%s)" -lt "$end" ]; do
    for who in "$ALICE" "$BOB"; do
      for vip in 10.33.0.1 10.33.0.2 10.33.0.3; do
        ip netns exec $NS_SUB curl -s -o /dev/null --max-time 2 --interface "$who" http://$vip/file.bin || true
      done
    done
    k=$((k+1))
    if [ $((k % 10)) = 0 ]; then
      lb=$(( (k / 10) % 2 + 1 ))
      ip -n $NS_SUB route replace 10.33.0.0/24 via 10.60.$lb.1
      # ... and her NAS there says so (configs/demo/lb1.toml [[radius.nas]]).
      acct Interim-Update alice 09011110001 "$ALICE" 192.0.2.$lb || true
    fi
    sleep 0.5
  done
) &
TRAFFIC=$!

# The operators' own tools against gw1 once traffic flows (README
# "Telemetry and capture"): promtool lints a scrape, DPDK's telemetry client asks
# pgw's /pgw/stats, dpdk-dumpcap (a DPDK secondary process on gw1's file
# prefix; eal.capture = true in gw1.toml) records an HTTP exchange on the
# server port that tcpdump decodes. The lines stay at the live table's top.
operations() {
  local m
  if m=$(curl -s --max-time 2 http://127.0.0.1:9465/metrics) && [ -n "$m" ] \
      && echo "$m" | promtool check metrics >"$WORK/promtool.txt" 2>&1; then
    echo "promtool check metrics (gw1's /metrics, $(echo "$m" | grep -c '^pgw_') samples): ok"
  else
    echo "promtool check metrics (gw1's /metrics): FAILED: $(head -c 300 "$WORK/promtool.txt" 2>/dev/null)"
  fi
  printf '/pgw/stats\n' | timeout 10 dpdk-telemetry.py -f pgw-demo-gw1 >"$WORK/telemetry.txt" 2>&1 || true
  python3 - "$WORK/telemetry.txt" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
s = a[-1].get("/pgw/stats") if a else None
if s:
    print(f"dpdk-telemetry.py -f pgw-demo-gw1 /pgw/stats: rx {s['rx']}, tx {s['tx']}, drops {s['drops']}")
else:
    print("dpdk-telemetry.py -f pgw-demo-gw1: no answer: " + open(sys.argv[1]).read()[-300:])
PY
  # The secondary must not scan this machine's PCI bus: its PCI scan
  # looks at an empty folder (dumpcap takes no EAL options).
  mkdir -p "$WORK/no-pci"
  env SYSFS_PCI_DEVICES="$WORK/no-pci" timeout 20 dpdk-dumpcap --file-prefix=pgw-demo-gw1 \
    -i net_tap_dg1s -f 'tcp port 8080' -c 20 -w "$WORK/gw1-servers.pcapng" >"$WORK/dumpcap.log" 2>&1 || true
  local got
  got=$(tcpdump -nn -r "$WORK/gw1-servers.pcapng" 2>/dev/null | grep -c 'IP ' || true)
  if [ "${got:-0}" -gt 0 ]; then
    echo "dpdk-dumpcap -i net_tap_dg1s (gw1's server port): $got packets, tcpdump -r reads e.g.:"
    tcpdump -nn -r "$WORK/gw1-servers.pcapng" 2>/dev/null | grep -m 2 'HTTP\|Flags \[S\]' | sed 's/^[0-9:.]* /    /' | cut -c 1-110
  else
    echo "dpdk-dumpcap on gw1: nothing captured: $(tail -2 "$WORK/dumpcap.log" | tr '\n' ' ')"
  fi
}

summary() {
  python3 - "$PGW" "$PROM" <<'PY'
import json, subprocess, sys, urllib.parse, urllib.request
pgw, prom = sys.argv[1], sys.argv[2]
def q(sock, what):
    try:
        return json.loads(subprocess.run([pgw, "ctl", "--socket", sock, what], capture_output=True, text=True, timeout=3).stdout)
    except Exception:
        return None
print(f"{'instance':<9} {'rx':>9} {'tx':>9} {'drops':>7}  details")
for inst in ["lb1", "lb2", "gw1", "gw2"]:
    sock = f"/tmp/pgw-demo-{inst}.sock"
    s = q(sock, "stats")
    if not s:
        print(f"{inst:<9} (not reachable)"); continue
    ev = {}
    for w in s["workers"]:
        for k, v in w["events"]:
            ev[k] = ev.get(k, 0) + v
    drops = {}
    for w in s["workers"]:
        for k, v in w["drops"]:
            if v: drops[k] = drops.get(k, 0) + v
    rx = sum(w["rx"] for w in s["workers"]); tx = sum(w["tx"] for w in s["workers"])
    if inst.startswith("lb"):
        d = f"to primary {ev.get('lb_to_primary',0)}, to substitute {ev.get('lb_to_substitute',0)}, down {ev.get('lb_down_path',0)}"
    else:
        a = q(sock, "accounting") or {}
        d = (f"connections {ev.get('gw_new_flows',0)} (open {ev.get('gw_open_flows',0)}), "
             f"RST unauthorized {ev.get('gw_rst_unauthorized',0)}, accounting records {a.get('total',0)}")
    print(f"{inst:<9} {rx:>9} {tx:>9} {sum(drops.values()):>7}  {d}")
    if drops:
        print(f"{'':<9} drops: " + ", ".join(f"{k} {v}" for k, v in sorted(drops.items())))
ss = q("/tmp/pgw-demo-lb1.sock", "sessions") or {}
for x in ss.get("sessions", []):
    print(f"session  {x['device_id']:<12} {x['address']:<12} {x['gateway']:<4} {x['state']:<8} NAS {x.get('nas') or '-'}")
if ss:
    print(f"RADIUS: {ss.get('nas_moves', 0)} reports of a session at another NAS than its own (a move)")
def promq(expr):
    url = f"http://{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return {x["metric"].get("pgw", "?"): float(x["value"][1]) for x in json.load(r)["data"]["result"]}
    except Exception:
        return None
up = promq('up{job="pgw"}')
if up is None:
    print(f"prometheus http://{prom}: not answering yet")
else:
    rate = promq('sum by (pgw) (rate(pgw_port_rx_packets_total[10s]))') or {}
    print(f"prometheus http://{prom}: {sum(1 for v in up.values() if v == 1)}/{len(up)} targets up; rx packets/s: "
          + ", ".join(f"{k} {rate.get(k, 0):.0f}" for k in sorted(up)))
PY
}
echo "demo: traffic flows; operators' tools against gw1 (promtool, dpdk-telemetry.py, dpdk-dumpcap)"
sleep 2
{ operations || echo "demo: an operators' tool failed (see above)"; } | tee "$WORK/operations.txt"
end=$(( $(date +%s) + ${DEMO_SECONDS:-3600} ))
while [ "$(date +%s)" -lt "$end" ]; do
  sleep 3
  clear 2>/dev/null || true
  echo "pgw demo — FIG. 2 on net_tap: 2 LBs (LB1 = management/RADIUS), 2 GWs, 6 servers   (Ctrl-C to stop)"
  summary
  echo; cat "$WORK/operations.txt"
done
