#!/usr/bin/env bash
# Soak test (not part of CI): the demo's system of FIG. 2 (scripts/demo.sh:
# two LBs, two GWs, six servers, subscribers logged in with radclient and
# browsing, alice moving between the entry points) for a long time, with
# churn on top: every 30 s bob logs out and in again (RADIUS Accounting
# Stop, Access-Request, Start) and a burst of pings goes to each VIP.
# Every 10 s it samples each instance's RSS, the GWs' open connections,
# held bindings and keys in use, and the sessions, into perf/soak.csv; at
# the end the traffic stops and it waits for the holds to run out.
#
# Before the clock starts, bob logs out and in SOAK_FILL times in a row
# (default 1100): every closed session goes to lb1's in-memory session log,
# which keeps the last 1024 (SESSION_LOG_KEPT in engine/src/mgmt/radius.rs),
# so the log is full and the soak measures the steady state, not a bounded
# table filling up (at one close per 30 s it would take 8.5 hours). The
# script prints what lb1's anonymous memory did over the fill.
#
#   scripts/soak.sh                  30 minutes of traffic (SOAK_MINUTES=N)
#   scripts/soak.sh --report         the verdict and plot of perf/soak.csv again
#
# Pass: each instance's RSS floor grows by at most 1 % between the first
# and the last quarter of the traffic after the warm-up (a fifth of the
# run, at least 60 s), and once the traffic has stopped and the holds have
# run out the GWs have no connection, binding or key left. The floor of a
# quarter is its lowest sample: a leak raises it, while the management
# thread's short-lived buffers (a reply, a scrape, SQLite's statement
# memory) only add peaks that malloc gives back; the growth between the
# first and last samples and the peak are printed beside it. Each sample
# also splits the RSS into anonymous and file-backed memory (RssAnon,
# RssFile) to tell heap growth from mapped files. Writes perf/soak.csv and
# perf/plots/soak.svg; exits 1 on a failed criterion.
set -euo pipefail
cd "$(dirname "$0")/.."
MIN=${SOAK_MINUTES:-30}
TRAFFIC=$((MIN * 60))
REPORT_ONLY=0
[ "${1:-}" = --report ] && REPORT_ONLY=1
# The plot needs matplotlib (python3-matplotlib, which setup.sh installs, is
# Debian's python3; another python3 may come first on PATH).
PY=python3
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null && PY=/usr/bin/python3
DRAIN=150                 # > the GWs' close hold (60 s) + the wheel's turn
CSV=perf/soak.csv
LOG=/tmp/pgw-soak-demo.log
INSTANCES=(lb1 lb2 gw1 gw2)

report() {  # the verdict and the plot of $CSV
  mkdir -p perf/plots
  "$PY" - "$CSV" <<'PY'
import csv, sys
path = sys.argv[1]
rows = list(csv.DictReader(open(path)))
# the traffic ran until the first sample of the drain
traffic = min((int(r["t_s"]) for r in rows if r["phase"] == "drain"), default=0)
warm = max(60, traffic // 5)
ok = True
by = {}
for r in rows:
    by.setdefault(r["instance"], []).append(r)
def col(r, k):
    return int(r[k]) if r.get(k) else None
for inst, rs in sorted(by.items()):
    after = [r for r in rs if r["rss_kb"] and r["phase"] == "traffic" and int(r["t_s"]) >= warm]
    if len(after) < 8:
        print(f"soak: {inst}: too few samples after the warm-up ({len(after)})"); ok = False; continue
    q = len(after) // 4
    first, last = after[:q], after[-q:]
    floor0 = min(col(r, "rss_kb") for r in first)
    floor1 = min(col(r, "rss_kb") for r in last)
    rss = [col(r, "rss_kb") for r in after]
    floor_growth = 100.0 * (floor1 - floor0) / floor0
    ends = 100.0 * (rss[-1] - rss[0]) / rss[0]
    peak = 100.0 * (max(rss) - rss[0]) / rss[0]
    parts = ""
    if all(r.get("rss_anon_kb") for r in first + last):
        a0, a1 = (min(col(r, "rss_anon_kb") for r in w) for w in (first, last))
        f0, f1 = (min(col(r, "rss_file_kb") for r in w) for w in (first, last))
        parts = f"; anonymous floor {a0} -> {a1} kB, file-backed floor {f0} -> {f1} kB"
    good = floor_growth <= 1.0
    ok &= good
    print(f"soak: {inst}: RSS floor {floor0} kB in the first quarter after the warm-up, {floor1} kB in the last "
          f"({floor_growth:+.2f} %; first to last sample {ends:+.2f} %, peak {peak:+.2f} %{parts}): "
          f"{'ok' if good else 'GROWS'}")
    if inst.startswith("gw"):
        last = rs[-1]
        left = {k: last[k] for k in ("open_flows", "held", "keys_in_use")}
        busy = max(int(r["open_flows"] or 0) for r in rs)
        held = max(int(r["held"] or 0) for r in rs)
        good = all(v == "0" for v in left.values())
        ok &= good
        print(f"soak: {inst}: up to {busy} connections open and {held} held; after the drain {left}: {'ok' if good else 'LEFT OVER'}")
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for inst, rs in sorted(by.items()):
        pts = [(int(r["t_s"]), int(r["rss_kb"]) / 1024) for r in rs if r["rss_kb"]]
        a.plot([p[0] for p in pts], [p[1] for p in pts], label=inst)
        if inst.startswith("gw"):
            b.plot([int(r["t_s"]) for r in rs], [int(r["open_flows"] or 0) for r in rs], label=f"{inst} open")
            b.plot([int(r["t_s"]) for r in rs], [int(r["keys_in_use"] or 0) for r in rs], "--", label=f"{inst} keys")
    for ax in (a, b):
        ax.axvline(traffic, color="grey", lw=0.8)
        ax.axvline(warm, color="grey", lw=0.5, ls=":")
        ax.legend(fontsize=7)
    a.set_ylabel("RSS MiB")
    b.set_ylabel("connections / keys")
    b.set_xlabel("seconds (traffic until the grey line)")
    fig.savefig("perf/plots/soak.svg")
    print("soak: wrote perf/soak.csv and perf/plots/soak.svg")
except ImportError:
    print("soak: wrote perf/soak.csv (no matplotlib: no plot)")
print("soak: PASS" if ok else "soak: FAIL")
sys.exit(0 if ok else 1)
PY
}
if [ "$REPORT_ONLY" = 1 ]; then report; exit $?; fi

DEMO_PID=""
stop_demo() {
  # The demo cleans up after itself (namespaces, processes, files) on TERM
  # (not INT: a background job of a script starts with SIGINT ignored, and
  # bash cannot trap a signal ignored at entry).
  if [ -n "$DEMO_PID" ] && kill -0 "$DEMO_PID" 2>/dev/null; then
    kill -TERM "$DEMO_PID" 2>/dev/null || true
    for _ in $(seq 600); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.1; done
  fi
}
trap stop_demo EXIT INT TERM

echo "soak: $MIN min of traffic, then $DRAIN s without; demo log in $LOG"
# The demo's start-up and the fill get FILL_BUDGET seconds of the demo's
# time; the measured traffic starts when they are over.
FILL_BUDGET=${SOAK_FILL_BUDGET_S:-300}
DEMO_SECONDS=$((FILL_BUDGET + TRAFFIC + DRAIN)) DEMO_TRAFFIC_SECONDS=$((FILL_BUDGET + TRAFFIC)) \
  scripts/demo.sh >"$LOG" 2>&1 &
DEMO_PID=$!
demo_t0=$(date +%s)
for _ in $(seq 300); do
  grep -q "RADIUS gave alice" "$LOG" 2>/dev/null && break
  kill -0 "$DEMO_PID" 2>/dev/null || { echo "soak: the demo ended early:"; tail -20 "$LOG"; exit 1; }
  sleep 1
done
grep -q "RADIUS gave alice" "$LOG" || { echo "soak: the demo did not start"; tail -20 "$LOG"; exit 1; }
PGW=$PWD/target/release/pgw
BOB=$(sed -n 's/.*and bob \([0-9.]*\) .*/\1/p' "$LOG" | head -1)

pid_of() { pgrep -f "pgw run --profile $PWD/configs/demo/$1.toml" | head -1; }
sample() { # t_s phase
  python3 - "$PGW" "$1" "$2" "$(for i in "${INSTANCES[@]}"; do echo "$i=$(pid_of "$i")"; done)" <<'PY' >>"$CSV"
import json, subprocess, sys
pgw, t, phase, pids = sys.argv[1], sys.argv[2], sys.argv[3], dict(x.split("=") for x in sys.argv[4].split())
def q(inst, what):
    try:
        r = subprocess.run([pgw, "ctl", "--socket", f"/tmp/pgw-demo-{inst}.sock", what],
                           capture_output=True, text=True, timeout=5)
        return json.loads(r.stdout)
    except Exception:
        return None
for inst, pid in pids.items():
    mem = {}
    try:
        for l in open(f"/proc/{pid}/status"):
            k = l.split(":")[0]
            if k in ("VmRSS", "RssAnon", "RssFile"):
                mem[k] = l.split()[1]
    except Exception:
        pass
    s = q(inst, "stats") or {}
    ev = {}
    for w in s.get("workers", []):
        for k, v in w["events"]:
            ev[k] = ev.get(k, 0) + v
    sessions = ""
    if inst == "lb1":
        ss = q(inst, "sessions")
        sessions = len(ss.get("sessions", [])) if ss else ""
    print(",".join(str(x) for x in (t, phase, inst, mem.get("VmRSS", ""), ev.get("gw_open_flows", ""), ev.get("gw_held", ""),
                                    ev.get("gw_entries_in_use", ""), sessions, mem.get("RssAnon", ""),
                                    mem.get("RssFile", ""))))
PY
}

churn() { # bob logs out and in again (RADIUS Accounting Stop, Access-Request, Start)
  printf 'User-Name=bob,Acct-Status-Type=Stop,Acct-Session-Id=bob-1,Calling-Station-Id=09011110002,Framed-IP-Address=%s\n' "$BOB" \
    | radclient -r 2 -t 2 127.0.0.1:18130 acct testing123 >/dev/null 2>&1 || true
  printf 'User-Name=bob,User-Password=bob-pw,Calling-Station-Id=09011110002\n' \
    | radclient -r 2 -t 2 127.0.0.1:18120 auth testing123 >/dev/null 2>&1 || true
  printf 'User-Name=bob,Acct-Status-Type=Start,Acct-Session-Id=bob-1,Calling-Station-Id=09011110002,Framed-IP-Address=%s\n' "$BOB" \
    | radclient -r 2 -t 2 127.0.0.1:18130 acct testing123 >/dev/null 2>&1 || true
}
anon_kb() { awk '/^RssAnon/ {print $2}' "/proc/$(pid_of "$1")/status"; }
logged() {
  "$PGW" ctl --socket /tmp/pgw-demo-lb1.sock sessions \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["session_log_total"], len(d["session_log"]))'
}
FILL=${SOAK_FILL:-1100}
a0=$(anon_kb lb1)
for _ in $(seq "$FILL"); do churn; done
a1=$(anon_kb lb1)
read -r total kept < <(logged)
echo "soak: fill: $FILL logins and logouts of bob; lb1's session log: $total closed, $kept kept;" \
  "lb1 anonymous memory $a0 -> $a1 kB ($(( (a1 - a0) * 1024 / FILL )) bytes per closed session)"
left=$((demo_t0 + FILL_BUDGET - $(date +%s)))
if [ "$left" -lt 0 ]; then
  echo "soak: start-up and fill took $((FILL_BUDGET - left)) s, more than SOAK_FILL_BUDGET_S=$FILL_BUDGET"
  exit 1
fi
sleep "$left"

echo "t_s,phase,instance,rss_kb,open_flows,held,keys_in_use,sessions,rss_anon_kb,rss_file_kb" >"$CSV"
t0=$(date +%s)
next_churn=$((t0 + 30))
while :; do
  now=$(date +%s); t=$((now - t0))
  [ "$t" -ge $((TRAFFIC + DRAIN - 5)) ] && break
  kill -0 "$DEMO_PID" 2>/dev/null || { echo "soak: the demo ended early:"; tail -20 "$LOG"; exit 1; }
  phase=traffic; [ "$t" -ge "$TRAFFIC" ] && phase=drain
  sample "$t" "$phase"
  if [ "$phase" = traffic ] && [ "$now" -ge "$next_churn" ]; then
    next_churn=$((now + 30))
    # bob logs out and in again; pings to each VIP (answered by the GWs).
    churn
    for vip in 10.33.0.1 10.33.0.2 10.33.0.3; do
      ip netns exec pgwdemo-sub ping -q -c 3 -i 0.2 -W 1 -I "$BOB" "$vip" >/dev/null 2>&1 || true
    done
  fi
  sleep $((10 - ($(date +%s) - now) % 10))
done
stop_demo
DEMO_PID=""

report
