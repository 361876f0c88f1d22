#!/usr/bin/env python3
"""Turn the run files of scripts/bench.sh (perf/out/<mode>/) into RESULTS.md.

Usage: python3 perf/report.py OUTDIR MODE > RESULTS.md
Reads, per run NAME: NAME.json (pgw-gen's report), NAME.cmd (the exact
commands), NAME.mem.json, NAME.dut.json (`pgw stats --json`), NAME.dut.log,
NAME.idle / NAME.busy (machine load before the run), NAME.base; plus
criterion/ (estimates), *.perf.txt and callgrind.*.txt.
"""
import datetime
import glob
import json
import os
import platform
import re
import subprocess
import sys

OUT, MODE = sys.argv[1], sys.argv[2]
KEYS_PER_POOL_ADDR = 64512


def load(name, ext="json"):
    try:
        with open(os.path.join(OUT, f"{name}.{ext}")) as f:
            return json.load(f) if ext.endswith("json") else f.read()
    except (OSError, ValueError):
        return None


def text(name, ext):
    v = load(name, ext)
    return v.strip() if isinstance(v, str) else ""


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def mpps(v):
    return "–" if v is None else f"{v / 1e6:.2f}"


def fnum(v, nd=1):
    return "–" if v is None else f"{v:.{nd}f}"


def runs():
    return sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(OUT, "*.cmd")))


def w(name, key):
    d = load(name)
    if not d:
        return None
    return d.get("window", {}).get(key)


def event(name, ev):
    d = load(name, "dut.json")
    if not d:
        return None
    return sum(v for wk in d.get("workers", []) for (n, v) in wk.get("events", []) if n == ev)


def drops(name):
    d = load(name, "dut.json")
    if not d:
        return ""
    tot = {}
    for wk in d.get("workers", []):
        for n, v in wk.get("drops", []):
            if v:
                tot[n] = tot.get(n, 0) + v
    return ", ".join(f"{k} {v}" for k, v in sorted(tot.items())) or "none"


def testpmd_alone_pps(name):
    """Sum over both ports of the last Rx-pps lines testpmd printed."""
    log = text(name, "dut.log")
    vals = [int(x) for x in re.findall(r"Rx-pps:\s+(\d+)", log)]
    if len(vals) < 2:
        return None
    # Skip the first period of each port (start-up), average the rest.
    per_port = [vals[0::2], vals[1::2]]
    tail = [p[1:] or p for p in per_port]
    return sum(sum(p) / len(p) for p in tail)


def load_note(name):
    """Idle share before the run; CPU share of other processes during it."""
    idle = text(name, "idle")
    fr = text(name, "foreign").split()
    s = f"{idle} %" if idle else "–"
    if fr:
        other, steal = int(fr[0]), int(fr[1])
        s += f" / {other} %" + (f" (steal {steal} %)" if steal else "")
        if other >= 5:
            s += " ⚠"
    return s


def lat(name, which):
    d = load(name)
    return (d or {}).get(which) or {}


def mem(name):
    return load(name, "mem.json") or {}


def pool_size(name):
    base = text(name, "base")
    prof = os.path.join(OUT, f"{name}.toml") if os.path.exists(os.path.join(OUT, f"{name}.toml")) else None
    path = prof or (base if base else None)
    if not path or not os.path.exists(path):
        return None
    s = open(path).read()
    m = re.search(r"^pool\s*=\s*\[(.*?)\]", s, re.S | re.M)
    return len(re.findall(r'"[\d.]+"', m.group(1))) if m else None


out = []
P = out.append
now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
cpu = sh("lscpu | sed -n 's/^Model name: *//p'") or platform.processor()
ncpu = os.cpu_count()
dpdk = sh("pkg-config --modversion libdpdk")
git = sh("git rev-parse --short HEAD") + (" (work tree modified)" if sh("git status --porcelain -uno") else "")

P("# pgw benchmark results" + (" (smoke run)" if MODE == "smoke" else ""))
P("")
P(f"Written by `scripts/bench.sh{' --smoke' if MODE == 'smoke' else ''}` on {now}.")
P("")
ram_gib = sh("free -g | awk '/Mem:/ {print $2}'")
hyp = sh("lscpu | sed -n 's/^Hypervisor vendor: *//p'")
hp_total = sh("awk '/^HugePages_Total/ {print $2}' /proc/meminfo")
hp_size = sh("awk '/^Hugepagesize/ {print $2 $3}' /proc/meminfo")
P("| | |")
P("|---|---|")
P(f"| machine | {cpu}, {ncpu} vCPUs ({hyp + ' VM' if hyp else 'no hypervisor reported'}), "
  f"{ram_gib} GiB RAM, kernel {platform.release()} |")
P(f"| DPDK | {dpdk} (Debian packages), every process `--no-pci`, virtual devices only |")
P(f"| rustc | {sh('rustc -V')} |")
P(f"| commit | {git} |")
P(f"| hugepages | {hp_total} x {hp_size} |")
P("")
P("Topology: `pgw-gen` (CPU 0, one lcore) plays the subscribers on its *access* port and every "
  "server on its *servers* port (a reflector: addresses and ports swapped, SYN → SYN-ACK, FIN → "
  "FIN-ACK, data and UDP echoed). Each port is a `net_memif` link (unix socket in /tmp) to the "
  "device under test (DUT) on CPU 1: pgw's GW role (1 worker), or `dpdk-testpmd --forward-mode=io` "
  "for the ceiling. Frame sizes are on the wire with FCS (64 B = 60 bytes in the mbuf). "
  "**Mpps through the DUT** = up packets that reached the servers port + down packets that reached "
  "the access port, per second: what the DUT forwarded. The machine is a shared 2-vCPU VM: numbers "
  "move ±10–15 % between runs, so compare within this file, as ratios. The last column of each "
  "table gives the CPU idle share seen just before the run (the script waits up to 60 s for ≥ 85 %) "
  "and the share of the machine's CPU time other processes took *during* it; generator and DUT "
  "busy-poll one CPU each, so anything else steals from them: runs marked ⚠ (others ≥ 5 %) are "
  "contaminated and understate.")
P("")

# ------------------------------------------------------------------ issue banner
asis = w("gw-1k-asis", "dut_pps")
wk = w("gw-1k", "dut_pps")
if asis is not None and wk is not None:
    P("> **History.** The first run of this suite found the worker's drain tick scanning the whole "
      "key table (`GwWorker::open_flows`, ~77 % of pgw's CPU in `perf`) and the up table refusing "
      "inserts at a load of 0.34; both are fixed (O(1) count; two-choice buckets), and partial TX "
      "bursts now go out at the end of an unsaturated loop turn. "
      f"`gw-1k-asis` is the profile as committed ({mpps(asis)} Mpps); the *W* runs set "
      f"`tx_drain_us = 100000` ({mpps(wk)} Mpps in `gw-1k`), which no longer helps and is kept only "
      "for comparison with the first run.")
    P("")

# ------------------------------------------------------------------ throughput
P("## Throughput (established connections)")
P("")
P("| run | DUT | connections | frame | up Mpps | down Mpps | **Mpps through DUT** | vs testpmd (same gen) | vs testpmd alone | gen TX refused Mpps | loss up / down | idle before / others during |")
P("|---|---|---|---|---|---|---|---|---|---|---|---|")
ceil = w("testpmd-1k", "dut_pps")
alone = testpmd_alone_pps("testpmd-alone")
rows = [
    ("gen-loopback", "none (generator ports looped)"),
    ("testpmd-1k", "dpdk-testpmd io"),
    ("gw-1k-asis", "pgw, profile as committed"),
    ("gw-1k", "pgw W"),
    ("gw-1m", "pgw W, 1 M table"),
    ("gw-4m", "pgw W, 4 M table"),
    ("gw-16m", "pgw W, 16 M table"),
    ("gw-1k-2w", "pgw W, 2 workers"),
    ("gw-1k-imix", "pgw W"),
    ("gw-1k-1518", "pgw W"),
    ("smoke-loopback", "none (generator ports looped)"),
    ("smoke-gw-1k", "pgw W"),
    ("smoke-testpmd", "dpdk-testpmd io"),
]
for name, dut in rows:
    d = load(name)
    if not d:
        continue
    win = d["window"]
    loss = d["loss"]
    vs = (f"{win['dut_pps'] / ceil:.2f}" if ceil and name.startswith(("gw", "smoke-gw")) else "–")
    va = (f"{win['dut_pps'] / alone:.2f}" if alone and name.startswith(("gw", "smoke-gw")) else "–")
    P(f"| `{name}` | {dut} | {d['connections']:,} | {d['size']} | {mpps(win['up_rx_pps'])} | "
      f"{mpps(win['down_rx_pps'])} | **{mpps(win['dut_pps'])}** | {vs} | {va} | "
      f"{mpps(win['tx_refused_ps'])} | {loss['up']} / {loss['down']} | {load_note(name)} |")
if alone:
    P(f"| `testpmd-alone` | dpdk-testpmd io, memif pair looped inside testpmd (`--tx-first`), no generator | – | 64 | – | – | **{mpps(alone)}** | – | – | – | – | {load_note('testpmd-alone')} |")
P("")
P("*gen TX refused*: frames the memif ring toward the DUT had no room for — the generator "
  "offered more than the DUT took, so a run with refusals is DUT-bound. The generator is one "
  "lcore doing both ends (subscribers and servers): `gen-loopback` is its own ceiling with no DUT "
  "(the same four memif operations per round trip as with a DUT). `testpmd-alone` is testpmd's "
  "per-core forwarding rate on memif with no generator in the loop.")
P("")
for name in ("gw-1k-asis", "gw-1k", "gw-1m", "gw-4m", "gw-16m", "gw-1k-2w"):
    if load(name, "dut.json"):
        P(f"- `{name}` pgw drops: {drops(name)}; open flows at the end: {event(name, 'gw_open_flows')}")
P("")

# ------------------------------------------------------------------ cps
P("## New connections")
P("")
P("| run | what | concurrent slots | handshakes/s (SYN → SYN-ACK through pgw) | completed/s | pgw new flows (total) | loss up / down | idle before / others during |")
P("|---|---|---|---|---|---|---|---|")
for name, what in (("gw-1m", "opening phase of the 1 M run (SYN, SYN-ACK, ACK; window 65 536)"),
                   ("gw-4m", "opening phase of the 4 M run"),
                   ("gw-16m", "opening phase of the 16 M run"),
                   ("gw-cps", "churn: SYN → SYN-ACK → RST, 64 B"),
                   ("gw-mix", "mix: SYN, 8 echoed data, FIN/FIN-ACK/ACK; 20 % UDP (8 datagrams); IMIX"),
                   ("smoke-gw-cps", "mix (smoke)")):
    d = load(name)
    if not d:
        continue
    if d["mode"] == "established":
        o = d.get("open") or {}
        P(f"| `{name}` | {what} | {d['connections']:,} | **{fnum((o.get('per_s') or 0) / 1e6, 3)} M/s** "
          f"({o.get('opened', 0):,} in {fnum(o.get('seconds'), 2)} s) | – | {event(name, 'gw_new_flows')} | "
          f"{d['loss']['up']} / {d['loss']['down']} | {load_note(name)} |")
    else:
        P(f"| `{name}` | {what} | {d['connections']:,} | **{fnum(w(name, 'handshakes_per_s') / 1e6, 3)} M/s** | "
          f"{fnum(w(name, 'completed_per_s') / 1e6, 3)} M/s | {event(name, 'gw_new_flows')} | "
          f"{d['loss']['up']} / {d['loss']['down']} | {load_note(name)} |")
P("")

# ------------------------------------------------------------------ latency
P("## Latency")
P("")
P("Up one-way = generator access TX → pgw → generator servers RX (one pass through pgw); round "
  "trip = up, reflection, down back to the access port (two passes). TSC stamps in the payload, "
  "HdrHistogram, every packet of the window. Rates are fractions of the up rate the same profile "
  "sustained at full load.")
P("")
P("| run | profile | load | up Mpps offered / through | one-way p50 / p99 / p99.9 / max µs | round trip p50 / p99 / p99.9 / max µs | idle before / others during |")
P("|---|---|---|---|---|---|---|")
for v, base, prof in (("gw-lat-asis-", "gw-1k-asis", "as committed (drain 100 µs)"), ("gw-lat-", "gw-1k", "W (drain 100 ms)")):
    for pct in (10, 50, 90, 100):
        name = base if pct == 100 else f"{v}{pct}"
        d = load(name)
        if not d:
            continue
        o, r = d["latency_up_oneway"], d["latency_rtt"]
        q = lambda h: " / ".join(fnum(h.get(k)) for k in ("p50_us", "p99_us", "p999_us", "max_us")) if h.get("count") else "–"
        P(f"| `{name}` | {prof} | {pct} % | {mpps(d['window']['up_tx_pps'])} / {mpps(d['window']['up_rx_pps'])} | {q(o)} | {q(r)} | {load_note(name)} |")
P("")

# ------------------------------------------------------------------ memory
P("## Memory")
P("")
P("pgw allocates its tables once at start (`GwWorker::new`): a 160-byte `Flow` for every key the "
  "worker owns (pool addresses × 64 512 key ports), 8 bytes × next_pow2(2 × max flows) of up "
  "table, 20 bytes per key of allocator rings. Hugepages hold only mbufs and rings (EAL). RSS is "
  "pgw's peak (VmHWM) while the run's connections were open; hugepages = the drop of "
  "HugePages_Free from just before pgw started to its lowest point during the run (the "
  "generator had already taken its own).")
P("")
P("| run | pool addresses | keys (table capacity) | open connections | pgw RSS peak MiB | pgw hugepages MiB | RSS bytes per key |")
P("|---|---|---|---|---|---|---|")
memrows = []
for name in ("gw-1k", "gw-1m", "gw-4m", "gw-16m", "gw-1k-asis", "smoke-gw-1k"):
    m = mem(name)
    d = load(name)
    if not m or not d:
        continue
    npool = pool_size(name) or 1
    keys = npool * KEYS_PER_POOL_ADDR
    hwm = m.get("dut_hwm_kb", 0) * 1024
    hp = (m.get("hp_free_mb_before_dut", 0) - m.get("hp_free_mb_min_during", m.get("hp_free_mb_end", 0)))
    memrows.append((name, keys, hwm))
    P(f"| `{name}` | {npool} | {keys:,} | {event(name, 'gw_open_flows')} | {hwm / 2**20:.0f} | {hp} | {hwm / keys:.0f} |")
if len(memrows) >= 2:
    a = min(memrows, key=lambda r: r[1])
    b = max(memrows, key=lambda r: r[1])
    if b[1] > a[1]:
        per = (b[2] - a[2]) / (b[1] - a[1])
        P("")
        P(f"Marginal cost: **{per:.0f} bytes per connection** of capacity (RSS of `{b[0]}` minus "
          f"`{a[0]}`, over the difference in keys); 16 M connections at that rate: "
          f"{per * 16e6 / 2**30:.2f} GiB. A key is (pool address, 16-bit port): 16 M needs 256 "
          "pool addresses, the most `GwConfig::MAX_POOL` allows.")
P("")

# ------------------------------------------------------------------ criterion
P("## Pipeline stages (criterion, ns per packet)")
P("")
crit = []
for est in glob.glob(os.path.join(OUT, "criterion", "**", "new", "estimates.json"), recursive=True):
    try:
        e = json.load(open(est))
        b = json.load(open(os.path.join(os.path.dirname(est), "benchmark.json")))
        crit.append((b.get("full_id") or b.get("title"), e["mean"]["point_estimate"],
                     e["median"]["point_estimate"], e["mean"]["confidence_interval"]))
    except (OSError, ValueError, KeyError):
        pass
if crit:
    P("Each iteration copies the next 60-byte frame into the buffer (stages rewrite in place) and "
      "runs the stage on it; frames rotate over the flows in a strided order. `gw new connection` "
      "is per connection (its SYN and the RST that closes it).")
    P("")
    P("| stage | mean ns | median ns | 95 % CI ns | ≈ Mpps on one core |")
    P("|---|---|---|---|---|")
    for name, mean, med, ci in sorted(crit):
        P(f"| {name} | {mean:.1f} | {med:.1f} | {ci['lower_bound']:.1f}–{ci['upper_bound']:.1f} | {1e3 / mean:.1f} |")
elif os.path.exists(os.path.join(OUT, "criterion.log")):
    P("criterion ran in test mode (smoke): each bench once, no timing.")
else:
    P("not run (`--no-criterion`).")
P("")

# ------------------------------------------------------------------ targets
P("## Targets of issue 6")
P("")


def verdict(ok):
    return "**met**" if ok else "**not met**"


trows = []
g1 = w("gw-1k", "dut_pps")
if asis is not None:
    trows.append(("established 64 B ≥ 10 Mpps per worker",
                  f"{mpps(asis)} Mpps as committed; {mpps(g1)} Mpps with the W workaround (`gw-1k-asis`, `gw-1k`)",
                  verdict(max(asis, g1 or 0) >= 10e6)))
if g1 and ceil:
    r = g1 / ceil
    ra = (g1 / alone) if alone else None
    trows.append(("≥ 40 % of testpmd",
                  f"{r:.0%} of testpmd with the same generator (`testpmd-1k`, {mpps(ceil)} Mpps, generator-bound); "
                  + (f"{ra:.0%} of testpmd alone on memif ({mpps(alone)} Mpps); " if ra else "")
                  + f"as committed: {asis / ceil:.0%} / " + (f"{asis / alone:.0%}" if alone else "–"),
                  verdict(r >= 0.4 and (ra is None or ra >= 0.4)) + (" (vs same-generator ceiling only)" if r >= 0.4 and ra is not None and ra < 0.4 else "")))
cps = w("gw-cps", "handshakes_per_s")
if cps is not None:
    trows.append(("≥ 2 M new connections/s per worker", f"{cps / 1e6:.2f} M/s (`gw-cps`)", verdict(cps >= 2e6)))
g4 = w("gw-4m", "dut_pps")
g16 = w("gw-16m", "dut_pps")
m16 = next((r for r in memrows if r[0] == "gw-16m"), None)
if g16 and g1 and m16:
    ok = m16[2] <= 2 * 2**30 and g16 >= 0.6 * g1
    trows.append(("16 M connections in ≤ 2 GiB at ≥ 60 % of the 1 k rate",
                  f"16 M: RSS {m16[2] / 2**30:.2f} GiB, rate {g16 / g1:.0%} of the 1 k rate (`gw-16m` / `gw-1k`)",
                  verdict(ok)))
elif g4 and g1 and memrows:
    b = max(memrows, key=lambda r: r[1])
    trows.append(("16 M connections in ≤ 2 GiB at ≥ 60 % of the 1 k rate",
                  f"no 16 M run in this report; at 4 M: RSS {b[2] / 2**30:.2f} GiB, "
                  f"rate {g4 / g1:.0%} of the 1 k rate (`gw-4m` / `gw-1k`)",
                  "**not met**"))
l50 = lat("gw-lat-asis-50", "latency_up_oneway")
if l50.get("count"):
    ok = l50["p99_us"] <= 20 and l50["p999_us"] <= 50
    trows.append(("p99 ≤ 20 µs, p99.9 ≤ 50 µs at 50 % load",
                  f"one-way p99 {l50['p99_us']:.1f} µs, p99.9 {l50['p999_us']:.1f} µs (`gw-lat-asis-50`)",
                  verdict(ok)))
if trows:
    P("| target | measured | |")
    P("|---|---|---|")
    for t in trows:
        P(f"| {t[0]} | {t[1]} | {t[2]} |")
P("")

# ------------------------------------------------------------------ profiles
perf_txt = text("gw-1k", "perf.txt")
cg = {b: text("callgrind", f"{b}.txt") for b in ("up", "down")}
if perf_txt or any(cg.values()):
    P("## Where the time goes")
    P("")
    P("`perf stat -e instructions` is not supported in this VM (no hardware counters), so: "
      "`perf record -e cpu-clock` (a software timer) on the running pgw, and callgrind "
      "(instruction counts) on the criterion benches.")
    P("")
if perf_txt:
    P("pgw during `gw-1k` (W variant), `perf report --no-children --sort symbol`:")
    P("")
    P("```")
    P(perf_txt)
    P("```")
    P("")
for b, t in cg.items():
    if t:
        P(f"callgrind, `gw data/{b}/1000000 flows` (instructions, exclusive, top functions):")
        P("")
        P("```")
        P(t)
        P("```")
        P("")

# ------------------------------------------------------------------ commands
P("## Exact commands")
P("")
P("Binaries from `CARGO_TARGET_DIR=/tmp/target-perf cargo build --release -p pgw-perf -p pgw-engine`; "
  "W profiles are written by bench.sh next to the results (`perf/out/<mode>/NAME.toml`: the named "
  "`configs/` profile plus `tx_drain_us = 100000`).")
P("")
for name in runs():
    base = text(name, "base")
    P(f"- `{name}`" + (f" (W = `{base}` + `tx_drain_us = 100000`)" if base else "") + ":")
    P("  ```")
    for line in text(name, "cmd").splitlines():
        P("  " + line)
    P("  ```")
print("\n".join(out))
