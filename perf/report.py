#!/usr/bin/env python3
"""Turn the run files of scripts/bench.sh (perf/out/<mode>/) into RESULTS.md,
RESULTS.json and SVG plots.

Usage: python3 perf/report.py OUTDIR MODE [--json FILE] [--plots DIR] > RESULTS.md

RESULTS.md goes to stdout. RESULTS.json (layout: perf/results_schema.py,
documented in perf/README.md) and the plots go to, by default:
  full:  perf/RESULTS.json, perf/plots/*.svg
  smoke: OUTDIR/RESULTS.json, OUTDIR/plots/*.svg
The plots are drawn by perf/plots.py from RESULTS.json with matplotlib; when no
Python here has matplotlib, RESULTS.md says so and the rest is written anyway.

Reads, per run NAME (every file optional except NAME.cmd, which lists the run):
NAME.json (pgw-gen's report), NAME.cmd (the exact commands), NAME.mem.json,
NAME.dut.json (`pgw stats --json`), NAME.runtime.json (`pgw stats --runtime
--json` over the window), NAME.mgmt.json (management thread CPU), NAME.dut.log,
NAME.idle / NAME.foreign (machine load), NAME.base, NAME.toml; plus
gen-loopback.json, testpmd-lat-<pct>.json (latency baseline), e2e-<config>.json,
criterion/ (estimates), *.perf.txt and callgrind.*.txt. RESULTS.md ends with
perf/HISTORY.md as it is (another hand writes it), when that file exists.
"""
import argparse
import datetime
import glob
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python < 3.11: profiles are then read with regexes
    tomllib = None

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, HERE)
import results_schema as S  # noqa: E402

ap = argparse.ArgumentParser(description="bench.sh run files -> RESULTS.md (stdout), RESULTS.json, plots")
ap.add_argument("outdir")
ap.add_argument("mode", choices=["full", "smoke"])
ap.add_argument("--json", help="RESULTS.json path (default: perf/RESULTS.json; smoke: OUTDIR/RESULTS.json)")
ap.add_argument("--plots", help="plot folder (default: perf/plots; smoke: OUTDIR/plots)")
ARGS = ap.parse_args()
OUT, MODE = ARGS.outdir, ARGS.mode
JSON_PATH = ARGS.json or (os.path.join(OUT, "RESULTS.json") if MODE == "smoke" else os.path.join(HERE, "RESULTS.json"))
PLOT_DIR = ARGS.plots or (os.path.join(OUT, "plots") if MODE == "smoke" else os.path.join(HERE, "plots"))

KEYS_PER_POOL_ADDR = 64512
# A row whose offered rate (or, flat out with no TX refusals, whose rate
# through the DUT) reaches this share of the generator's loopback rate in the
# same run is generator-bound. The VM's run-to-run noise is about ±10 %.
GEN_BOUND_FRACTION = 0.9
# "No TX refusals": at most this share of the offered frames refused.
REFUSED_NONE = 0.001
# The engine's stages (pipelines/src/runtime.rs), in its order.
STAGE_ORDER = ["rx", "handoff_in", "parse", "arp", "wire", "lb", "gw", "gw_lookup", "gw_open", "rewrite",
               "accounting", "dispatch", "handoff_out", "tx", "expiry", "mgmt_tx", "other"]
# Device I/O: the PMD's RX and TX bursts (here memif: copies across cores).
# Every other stage is the engine's own work.
IO_STAGES = ("rx", "tx")
# The GW stages alone (older runs have one `gw` stage for gw_lookup..accounting).
GW_STAGES = ("parse", "gw", "gw_lookup", "gw_open", "rewrite", "accounting")
E2E_CONFIGS = ["kernel-route", "kernel-nat", "testpmd-afxdp", "pgw-afxdp"]
E2E_METRICS = [  # key, header, unit scale, digits
    ("iperf_gbps", "iperf Gbit/s", 1, 2),
    ("iperf_retrans", "iperf retrans", 1, 0),
    ("iperf_m536_pps", "iperf MSS 536 kpps", 1e-3, 1),
    ("http_close_cps", "HTTP close conn/s", 1, 0),
    ("http_close_p99_ms", "HTTP close p99 ms", 1, 2),
    ("http_keepalive_rps", "HTTP keep-alive req/s", 1, 0),
]


# ------------------------------------------------------------------ reading run files
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
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10, cwd=ROOT).stdout.strip()
    except Exception:
        return ""


def num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def div(a, b):
    return a / b if num(a) is not None and num(b) else None


def sub(a, b):
    return a - b if num(a) is not None and num(b) is not None else None


def m(v):
    """pps -> Mpps"""
    return v / 1e6 if num(v) is not None else None


def mpps(v):
    """Mpps figure for the tables (input already in Mpps)."""
    return "–" if v is None else f"{v:.2f}"


def fnum(v, nd=1):
    return "–" if v is None else f"{v:.{nd}f}"


def ints(v):
    return "–" if v is None else f"{v:,}"


def runs():
    return sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(OUT, "*.cmd")))


def mtime_iso(*paths):
    for p in paths:
        try:
            t = os.path.getmtime(p)
            return datetime.datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")
        except OSError:
            continue
    return None


def run_date(name):
    return mtime_iso(*(os.path.join(OUT, f"{name}.{e}") for e in ("json", "cmd", "dut.log")))


def w(name, key):
    d = load(name)
    if not isinstance(d, dict):
        return None
    return (d.get("window") or {}).get(key)


def event(name, ev):
    d = load(name, "dut.json")
    if not isinstance(d, dict):
        return None
    return sum(v for wk in d.get("workers", []) for (n, v) in wk.get("events", []) if n == ev)


def drops(name):
    d = load(name, "dut.json")
    if not isinstance(d, dict):
        return None
    tot = {}
    for wk in d.get("workers", []):
        for n, v in wk.get("drops", []):
            if v:
                tot[n] = tot.get(n, 0) + v
    return dict(sorted(tot.items()))


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


def load_figures(name):
    """(idle before %, others during %, steal %) or Nones."""
    idle = text(name, "idle")
    fr = text(name, "foreign").split()
    try:
        idle = int(idle)
    except ValueError:
        idle = None
    other = steal = None
    if len(fr) >= 2:
        try:
            other, steal = int(fr[0]), int(fr[1])
        except ValueError:
            pass
    return idle, other, steal


def load_note(name):
    """Idle share before the run; CPU share of other processes during it."""
    idle, other, steal = load_figures(name)
    s = f"{idle} %" if idle is not None else "–"
    if other is not None:
        s += f" / {other} %" + (f" (steal {steal} %)" if steal else "")
        if other >= 5:
            s += " ⚠"
    return s


def profile_path(name):
    """(the profile pgw ran, the configs/ profile it came from: NAME.base when there is one)"""
    base = text(name, "base")
    ran = None
    for line in text(name, "cmd").splitlines():
        mo = re.search(r"pgw run --profile (\S+)", line)
        if mo:
            ran = mo.group(1)
    if base:
        return ran, os.path.relpath(base, ROOT) if os.path.isabs(base) else base
    return ran, ran


def read_profile(name):
    """The profile pgw ran, parsed (dict), or {}."""
    ran, base = profile_path(name)
    for p in (os.path.join(OUT, f"{name}.toml"), ran, base):
        if not p:
            continue
        p = p if os.path.isabs(p) else os.path.join(ROOT, p)
        if not os.path.exists(p):
            continue
        s = open(p).read()
        if tomllib:
            try:
                return tomllib.loads(s)
            except Exception:
                pass
        prof = {}
        mo = re.search(r"^workers\s*=\s*\[(.*?)\]", s, re.M)
        if mo:
            prof["cores"] = {"workers": re.findall(r"\d+", mo.group(1))}
        mo = re.search(r"^pool\s*=\s*\[(.*?)\]", s, re.S | re.M)
        if mo:
            prof["gw"] = {"pool": re.findall(r'"[\d.]+"', mo.group(1))}
        mo = re.search(r"^max_flows_per_worker\s*=\s*(\d+)", s, re.M)
        if mo:
            prof.setdefault("gw", {})["max_flows_per_worker"] = int(mo.group(1))
        return prof
    return {}


def pool_size(name):
    pool = (read_profile(name).get("gw") or {}).get("pool")
    return len(pool) if isinstance(pool, list) else None


def pkt_size(d):
    s = (d or {}).get("size")
    if s is None:
        return None
    s = str(s)
    return int(s) if s.isdigit() else s


# ------------------------------------------------------------------ rows
def mk(kind, **kw):
    """A row of `kind` with every field of the layout (null unless given)."""
    names = S.names_of(kind)
    unknown = set(kw) - set(names)
    if unknown:
        raise KeyError(f"report.py: fields {sorted(unknown)} are not in results_schema for kind {kind}")
    row = dict.fromkeys(names)
    row.update(kw)
    row["kind"] = kind
    return row


COMMIT = sh("git rev-parse --short HEAD") or None
DIRTY = bool(sh("git status --porcelain -uno -- . ':!perf/RESULTS.*' ':!perf/plots' ':!perf/HISTORY.md'"))


def run_commit(name):
    """The commit NAME's binaries were built from (NAME.commit), else the report's."""
    return text(name, "commit") or COMMIT
LOOP_NAME = next((n for n in ("gen-loopback", "smoke-loopback") if isinstance(load(n), dict)), None)
LOOP_MPPS = m(w(LOOP_NAME, "dut_pps")) if LOOP_NAME else None
CEIL_NAME = next((n for n in ("testpmd-1k", "smoke-testpmd") if isinstance(load(n), dict)), None)
CEIL_MPPS = m(w(CEIL_NAME, "dut_pps")) if CEIL_NAME else None
ALONE_PPS = testpmd_alone_pps("testpmd-alone")
ALONE_MPPS = m(ALONE_PPS)


def generator_bound(d, offered, through, refused):
    """The rule of perf/README.md ("generator-bound")."""
    if LOOP_MPPS is None or offered is None:
        return None
    limit = GEN_BOUND_FRACTION * LOOP_MPPS
    rate = num(d.get("rate_asked")) or 0
    if rate > 0:
        return offered >= limit
    no_refusals = (refused or 0) <= REFUSED_NONE * max(offered, 1e-9)
    return bool(no_refusals and through is not None and through >= limit)


def base_fields(name, kind, dut):
    d = load(name)
    d = d if isinstance(d, dict) else {}
    return dict(name=name, dut=dut, date=run_date(name), commit=run_commit(name),
                command=text(name, "cmd") or None, flows=d.get("connections"), pkt_size=pkt_size(d))


# Runs against the SYN proxy: the GW answers every SYN itself and the
# generator's RST of a proxied handshake ends there (a `no_flow` drop), so
# the generator's own loss (sent up − reached the servers; answered by the
# servers − reached the access side) counts both as lost. Their loss is
# what a proxy can lose: SYNs without an answer (up), and whatever the
# servers' side sent that did not come back (down: nothing, as a flood
# reaches no server).
SYN_PROXY_RUNS = {"gw-synflood"}


def proxy_loss(d):
    """(up, down) loss of a SYN-proxy run from the generator's totals of NAME.json."""
    t = d.get("totals") or {}
    syn, synack = (t.get("up_tx_by_kind") or {}).get("syn"), t.get("synack_rx")
    srv_tx, acc_rx = t.get("srv_tx"), t.get("acc_rx")
    if not all(isinstance(x, int) for x in (syn, synack, srv_tx, acc_rx)):
        return None, None
    return syn - synack, srv_tx - (acc_rx - synack)


def gen_fields(name):
    """The GEN fields (+ offered_mpps, loss_pkts, generator_bound) from NAME.json."""
    d = load(name)
    idle, other, _ = load_figures(name)
    f = dict(idle_before_pct=idle, others_during_pct=other,
             contaminated=(other >= 5) if other is not None else None)
    if not isinstance(d, dict):
        return f
    win = d.get("window") or {}
    loss = d.get("loss") or {}
    up_tx, down_tx = num(win.get("up_tx_pps")), num(win.get("down_tx_pps"))
    offered = m(up_tx + down_tx) if up_tx is not None and down_tx is not None else None
    through = m(win.get("dut_pps"))
    refused = m(win.get("tx_refused_ps"))
    lu, ld = loss.get("up"), loss.get("down")
    if name in SYN_PROXY_RUNS:
        lu, ld = proxy_loss(d)
    f.update(dut_mpps=through, up_mpps=m(win.get("up_rx_pps")), down_mpps=m(win.get("down_rx_pps")),
             rate_asked_mpps=num(d.get("rate_asked")), gen_tx_refused_mpps=refused,
             loss_up_pkts=lu, loss_down_pkts=ld, mean_wire_bytes=num(d.get("mean_wire_bytes")),
             window_s=num(win.get("seconds")), gen_loopback_mpps=LOOP_MPPS, offered_mpps=offered,
             loss_pkts=(lu + ld) if isinstance(lu, int) and isinstance(ld, int) else None,
             generator_bound=generator_bound(d, offered, through, refused))
    return f


def runtime(name):
    """Engine runtime accounting (NAME.runtime.json) summed over workers, or {}."""
    rt = load(name, "runtime.json")
    if not isinstance(rt, dict):
        return {}
    hz = num(rt.get("tsc_hz"))
    wks = [x for x in rt.get("workers") or [] if isinstance(x, dict)]
    tot = rt.get("total") or {}
    pk = num(tot.get("packets"))
    if pk is None and wks:
        pk = sum(num(x.get("packets")) or 0 for x in wks)
    bc = num(tot.get("busy_cycles"))
    if bc is None and wks:
        bc = sum(num(x.get("busy_cycles")) or 0 for x in wks)
    bcpp = num(tot.get("busy_cycles_per_pkt"))
    if bcpp is None:
        bcpp = div(bc, pk)
    cap = num(tot.get("capacity_mpps"))
    if cap is None and hz and bcpp:
        cap = hz / bcpp / 1e6
    cyc = sum(num(x.get("cycles")) or 0 for x in wks)
    busy = sum(num(x.get("busy_cycles")) or 0 for x in wks)
    busy_pct = 100 * busy / cyc if cyc else None
    if busy_pct is None and wks and all(num(x.get("busy_pct")) is not None for x in wks):
        busy_pct = sum(x["busy_pct"] for x in wks) / len(wks)
    st = {}
    for x in wks:
        for s in x.get("stages") or []:
            if not isinstance(s, dict) or not s.get("name"):
                continue
            a = st.setdefault(s["name"], {"calls": 0, "packets": 0, "cycles": 0})
            for k in a:
                a[k] += num(s.get(k)) or 0
    order = [n for n in STAGE_ORDER if n in st] + sorted(n for n in st if n not in STAGE_ORDER)
    stages = [{"name": n, "calls": st[n]["calls"], "packets": st[n]["packets"], "cycles": st[n]["cycles"],
               "cycles_per_pkt": div(st[n]["cycles"], st[n]["packets"]),
               "pkts_per_call": div(st[n]["packets"], st[n]["calls"]),
               "cycles_per_pkt_through": div(st[n]["cycles"], pk)} for n in order]
    per_worker = [{"worker": x.get("worker"), "lcore": x.get("lcore"), "busy_pct": num(x.get("busy_pct")),
                   "packets": x.get("packets"), "busy_cycles_per_pkt": num(x.get("busy_cycles_per_pkt")),
                   "capacity_mpps": num(x.get("capacity_mpps"))} for x in wks]
    # Stage cycles are measured only with engine.runtime_stages (the file says
    # `timed`; an older file does not, and then the cycles themselves do).
    stage_cycles = sum(a["cycles"] for a in st.values())
    timed = rt.get("timed") if isinstance(rt.get("timed"), bool) else (stage_cycles > 0 if st else None)
    io = eng = gwc = eng_cap = None
    if timed and stage_cycles > 0 and pk:
        io = sum(a["cycles"] for n, a in st.items() if n in IO_STAGES) / pk
        eng = sum(a["cycles"] for n, a in st.items() if n not in IO_STAGES) / pk
        gwc = sum(a["cycles"] for n, a in st.items() if n in GW_STAGES) / pk
        eng_cap = max(len(wks), 1) * hz / eng / 1e6 if hz and eng else None
    return dict(tsc_hz=int(hz) if hz else None, busy_pct=busy_pct, stages=stages or None,
                runtime_workers=per_worker or None, busy_cycles_per_pkt=bcpp, capacity_mpps=cap,
                window=num(rt.get("window_s")), busy_cycles=bc, timed=timed if wks else None,
                io_cycles_per_pkt=io, engine_cycles_per_pkt=eng, gw_cycles_per_pkt=gwc, engine_capacity_mpps=eng_cap)


def mgmt_pct(name):
    mg = load(name, "mgmt.json")
    if not isinstance(mg, dict):
        return None
    ms, win = num(mg.get("mgmt_cpu_ms")), num(mg.get("window_s"))
    return 100 * ms / (win * 1000) if ms is not None and win else None


def worker_count(name, rt):
    if rt.get("runtime_workers"):
        return len(rt["runtime_workers"])
    wk = (read_profile(name).get("cores") or {}).get("workers")
    if isinstance(wk, list) and wk:
        return len(wk)
    d = load(name, "dut.json")
    if isinstance(d, dict) and d.get("workers"):
        return len(d["workers"])
    return None


def pgw_fields(name, with_runtime=True):
    rt = runtime(name) if with_runtime else {}
    _, base = profile_path(name)
    f = dict(profile=base, workers=worker_count(name, runtime(name)),
             mgmt_cpu_pct=mgmt_pct(name) if with_runtime else None,
             drops=drops(name), open_flows=event(name, "gw_open_flows"))
    if rt:
        f.update({k: rt[k] for k in ("tsc_hz", "busy_pct", "stages", "runtime_workers", "busy_cycles_per_pkt",
                                     "capacity_mpps", "io_cycles_per_pkt", "engine_cycles_per_pkt",
                                     "gw_cycles_per_pkt", "engine_capacity_mpps")},
                 runtime_timed=rt["timed"])
    return f


def testpmd_fields(name):
    """testpmd's own busy cycles per packet (NAME.runtime.json from --record-core-cycles), or {}."""
    rt = runtime(name)
    if rt.get("busy_cycles_per_pkt") is None:
        return {}
    return dict(busy_cycles_per_pkt=rt["busy_cycles_per_pkt"], capacity_mpps=rt["capacity_mpps"])


# The ceiling's own busy cycles per packet (testpmd --record-core-cycles).
CEIL_BCPP = testpmd_fields(CEIL_NAME).get("busy_cycles_per_pkt") if CEIL_NAME else None

THROUGHPUT_RUNS = [
    ("gen-loopback", "none (generator ports looped)"),
    ("testpmd-1k", "dpdk-testpmd io (the ceiling)"),
    ("gw-1k", "pgw"),
    ("gw-1k-untimed", "pgw, `engine.runtime_stages = false`"),
    ("gw-1k-scraped", "pgw, `[metrics]`, `/metrics` scraped every other second"),
    ("gw-1m", "pgw, 1 M table"),
    ("gw-4m", "pgw, 4 M table"),
    ("gw-16m", "pgw, 16 M table"),
    ("gw-1k-2w", "pgw, 2 workers"),
    ("gw-1k-imix", "pgw"),
    ("gw-1k-1518", "pgw"),
    ("smoke-loopback", "none (generator ports looped)"),
    ("smoke-gw-1k", "pgw"),
    ("smoke-testpmd", "dpdk-testpmd io (the ceiling)"),
]
DUT_DESC = dict(THROUGHPUT_RUNS)


def throughput_rows():
    rows = []
    for name, _ in THROUGHPUT_RUNS:
        if not isinstance(load(name), dict):
            continue
        if "loopback" in name:
            r = mk("generator", **base_fields(name, "generator", "none"), **gen_fields(name))
            r["generator_bound"] = None  # no DUT to be bound by
        elif "testpmd" in name:
            r = mk("ceiling", **base_fields(name, "ceiling", "dpdk-testpmd"), **gen_fields(name), workers=1,
                   **testpmd_fields(name))
            r["ceiling_mpps"] = r["dut_mpps"]
        else:
            r = mk("throughput", **base_fields(name, "throughput", "pgw"), **gen_fields(name), **pgw_fields(name))
            r.update(pgw_mpps=r["dut_mpps"], ceiling_run=CEIL_NAME, ceiling_mpps=CEIL_MPPS,
                     ratio=div(r["dut_mpps"], CEIL_MPPS), ceiling_alone_mpps=ALONE_MPPS,
                     ratio_alone=div(r["dut_mpps"], ALONE_MPPS), ceiling_busy_cycles_per_pkt=CEIL_BCPP,
                     busy_cycles_ratio=div(CEIL_BCPP, r["busy_cycles_per_pkt"]))
        rows.append(r)
    if ALONE_MPPS is not None:
        idle, other, _ = load_figures("testpmd-alone")
        rows.append(mk("ceiling", name="testpmd-alone", dut="dpdk-testpmd", date=run_date("testpmd-alone"),
                       commit=run_commit("testpmd-alone"), command=text("testpmd-alone", "cmd") or None, workers=1, pkt_size=64,
                       ceiling_mpps=ALONE_MPPS, dut_mpps=ALONE_MPPS, idle_before_pct=idle,
                       others_during_pct=other, contaminated=(other >= 5) if other is not None else None))
    return rows


CPS_RUNS = [
    ("gw-1m", "opening phase of the 1 M run (SYN, SYN-ACK, ACK; window 65 536)"),
    ("gw-4m", "opening phase of the 4 M run"),
    ("gw-16m", "opening phase of the 16 M run"),
    ("gw-cps", "churn: SYN → SYN-ACK → RST, 64 B"),
    ("gw-synflood", "SYN flood on the SYN proxy (gw.syn_proxy = on): SYN → the GW's cookie SYN-ACK → RST (no_flow); a connection = what one SYN costs, plus its RST"),
    ("gw-mix", "mix: SYN, 8 echoed data, FIN/FIN-ACK/ACK; 20 % UDP (8 datagrams); IMIX"),
    ("smoke-gw-cps", "mix (smoke)"),
]
CPS_DESC = dict(CPS_RUNS)
# Fields of the run's measurement window: not the opening phase's.
WINDOW_ONLY = ["offered_mpps", "dut_mpps", "up_mpps", "down_mpps", "gen_tx_refused_mpps", "generator_bound",
               "rate_asked_mpps", "window_s"]


def cps_rows():
    rows = []
    for name, _ in CPS_RUNS:
        d = load(name)
        if not isinstance(d, dict):
            continue
        r = mk("cps", **base_fields(name, "cps", "pgw"), **gen_fields(name))
        if d.get("mode") == "established":
            o = d.get("open") or {}
            r.update(pgw_fields(name, with_runtime=False))
            for k in WINDOW_ONLY:
                r[k] = None
            r.update(phase="open", new_conns_per_s=num(o.get("per_s")), opened=o.get("opened"),
                     open_seconds=num(o.get("seconds")))
        else:
            r.update(pgw_fields(name))
            r.update(phase="churn", pgw_mpps=r["dut_mpps"], new_conns_per_s=num(w(name, "handshakes_per_s")),
                     completed_per_s=num(w(name, "completed_per_s")))
            # Busy cycles per new connection: busy cycles per second of the
            # runtime window over connections per second of the generator's
            # window (the two windows nearly coincide; rates make it exact).
            rt = runtime(name)
            per_s = div(rt.get("busy_cycles"), rt.get("window"))
            r["busy_cycles_per_conn"] = div(per_s, r["new_conns_per_s"])
            r["conn_capacity_per_s"] = div(rt.get("tsc_hz"), r["busy_cycles_per_conn"])
        rows.append(r)
    return rows


def lat_of(d, which):
    h = (d or {}).get(which) or {}
    return h if h.get("count") else {}


def latency_rows():
    rows = []
    base_rows = {}
    for pct in (10, 50, 90):
        name = f"testpmd-lat-{pct}"
        d = load(name)
        if not isinstance(d, dict):
            continue
        o, rt = lat_of(d, "latency_up_oneway"), lat_of(d, "latency_rtt")
        r = mk("latency", **base_fields(name, "latency", "dpdk-testpmd"), **gen_fields(name), workers=1,
               **testpmd_fields(name), load_pct=pct, up_offered_mpps=m(w(name, "up_tx_pps")),
               p50_us=o.get("p50_us"), p99_us=o.get("p99_us"), p999_us=o.get("p999_us"), max_us=o.get("max_us"),
               rtt_p50_us=rt.get("p50_us"), rtt_p99_us=rt.get("p99_us"), rtt_p999_us=rt.get("p999_us"),
               rtt_max_us=rt.get("max_us"))
        base_rows[pct] = r
    # gw-lat-<pct> against testpmd-lat-<pct> (same offered rate); gw-1k is
    # the flat-out point (100 %), with no baseline.
    for pct in (10, 50, 90, 100):
        name = "gw-1k" if pct == 100 else f"gw-lat-{pct}"
        d = load(name)
        if not isinstance(d, dict):
            continue
        o, rt = lat_of(d, "latency_up_oneway"), lat_of(d, "latency_rtt")
        r = mk("latency", **base_fields(name, "latency", "pgw"), **gen_fields(name), **pgw_fields(name),
               load_pct=pct, up_offered_mpps=m(w(name, "up_tx_pps")),
               p50_us=o.get("p50_us"), p99_us=o.get("p99_us"), p999_us=o.get("p999_us"),
               max_us=o.get("max_us"), rtt_p50_us=rt.get("p50_us"), rtt_p99_us=rt.get("p99_us"),
               rtt_p999_us=rt.get("p999_us"), rtt_max_us=rt.get("max_us"))
        r["pgw_mpps"] = r["dut_mpps"]
        b = base_rows.get(pct)
        if b and b["p99_us"] is not None and r["p99_us"] is not None:
            r.update(baseline_run=b["name"], baseline_p50_us=b["p50_us"], baseline_p99_us=b["p99_us"],
                     baseline_p999_us=b["p999_us"], added_p50_us=sub(r["p50_us"], b["p50_us"]),
                     added_p99_us=sub(r["p99_us"], b["p99_us"]), added_p999_us=sub(r["p999_us"], b["p999_us"]))
        rows.append(r)
    return rows + [base_rows[p] for p in sorted(base_rows)]


def memory_rows():
    rows = []
    for name in ("gw-1k", "gw-1m", "gw-4m", "gw-16m", "smoke-gw-1k"):
        mm = load(name, "mem.json")
        d = load(name)
        if not isinstance(mm, dict) or not isinstance(d, dict):
            continue
        npool = pool_size(name) or 1
        keys = npool * KEYS_PER_POOL_ADDR
        nw = worker_count(name, runtime(name))
        mf = (read_profile(name).get("gw") or {}).get("max_flows_per_worker")
        cap = mf * (nw or 1) if isinstance(mf, int) and mf > 0 else keys
        hwm = int(mm.get("dut_hwm_kb", 0)) * 1024
        if int(mm.get("dut_hugetlb_kb") or 0) > 0:
            # pgw's own hugepages (/proc/PID/smaps_rollup *_Hugetlb, peak)
            hp, hp_src = int(mm["dut_hugetlb_kb"]) * 1024, "process"
        else:
            # older runs: the machine's HugePages_Free drop (may include others')
            hp = int(mm.get("hp_free_mb_before_dut", 0) - mm.get("hp_free_mb_min_during", mm.get("hp_free_mb_end", 0)))
            hp, hp_src = max(hp, 0) * 2**20, "machine"
        hp_machine = int(mm.get("hp_free_mb_before_dut", 0) - mm.get("hp_free_mb_min_during", mm.get("hp_free_mb_end", 0)))
        _, prof = profile_path(name)
        rows.append(mk("memory", **base_fields(name, "memory", "pgw"), profile=prof, workers=nw, pool_addrs=npool,
                       keys=keys, capacity_conns=cap, open_flows=event(name, "gw_open_flows"), rss_bytes=hwm,
                       hugepage_bytes=hp, hugepage_source=hp_src, machine_hugepage_drop_bytes=max(hp_machine, 0) * 2**20,
                       total_bytes=hwm + hp, bytes_per_conn=(hwm + hp) / cap))
    marginal = None
    if len(rows) >= 2:
        a = min(rows, key=lambda r: r["capacity_conns"])
        b = max(rows, key=lambda r: r["capacity_conns"])
        if b["capacity_conns"] > a["capacity_conns"]:
            marginal = (b["total_bytes"] - a["total_bytes"]) / (b["capacity_conns"] - a["capacity_conns"])
            for r in rows:
                r["marginal_bytes_per_conn"] = marginal
    return rows, marginal


def criterion_rows():
    """One row per criterion bench. criterion times an iteration; its
    `throughput` (benchmark.json, `{"Elements": n}`) says how many packets
    (or connections) one iteration handles: the `gw data` benches run a burst
    of 32. The per-element figures are the iteration's over n."""
    rows = []
    cmd = text("criterion", "cmd") or None
    for est in glob.glob(os.path.join(OUT, "criterion", "**", "new", "estimates.json"), recursive=True):
        try:
            e = json.load(open(est))
            b = json.load(open(os.path.join(os.path.dirname(est), "benchmark.json")))
            name = b.get("full_id") or b.get("title")
            mean, med, ci = e["mean"]["point_estimate"], e["median"]["point_estimate"], e["mean"]["confidence_interval"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not name:
            continue
        tp = b.get("throughput") if isinstance(b.get("throughput"), dict) else {}
        n = tp.get("Elements")
        n = n if isinstance(n, int) and n > 0 else 1
        fl = re.search(r"(\d+) flows", name)
        rows.append(mk("criterion", name=name, dut="none", date=mtime_iso(est), commit=run_commit("criterion"), command=cmd,
                       flows=int(fl.group(1)) if fl else None, workers=1, pkt_size=64, elements=n,
                       iter_mean_ns=mean, mean_ns=mean / n, median_ns=med / n, ci_low_ns=ci["lower_bound"] / n,
                       ci_high_ns=ci["upper_bound"] / n, est_mpps=1e3 * n / mean if mean else None))
    return sorted(rows, key=lambda r: r["name"] or "")


def as_str(v):
    """A string field from someone else's file: strings as they are, anything else as JSON."""
    if v is None or isinstance(v, str):
        return v or None
    return json.dumps(v)


def e2e_rows():
    found = {}
    for p in glob.glob(os.path.join(OUT, "e2e-*.json")):
        cfg = os.path.basename(p)[4:-5]
        try:
            d = json.load(open(p))
        except (OSError, ValueError):
            continue
        # e2e.sh also leaves per-repetition side files (NAME-REP.counters.json,
        # NAME-REP.pgw-stats.json): a config's summary is the one with medians.
        if isinstance(d, dict) and isinstance(d.get("median"), dict):
            found[cfg] = (p, d)
    order = [c for c in E2E_CONFIGS if c in found] + sorted(c for c in found if c not in E2E_CONFIGS)
    med = {c: found[c][1]["median"] for c in order
           if isinstance(found[c][1], dict) and isinstance(found[c][1].get("median"), dict)}

    def ratios(other):
        if "pgw-afxdp" not in med or other not in med:
            return None
        return {k: div(num(med["pgw-afxdp"].get(k)), num(med[other].get(k))) for k, *_ in E2E_METRICS}

    rows = []
    for c in order:
        p, d = found[c]
        if not isinstance(d, dict):
            continue
        md = d.get("median") if isinstance(d.get("median"), dict) else {}
        loss = d.get("loss") if isinstance(d.get("loss"), dict) else {}
        dd = loss.get("dut_drops") if isinstance(loss.get("dut_drops"), dict) else None
        veth = loss.get("veth_drops") if isinstance(loss.get("veth_drops"), int) else None
        lp = None
        if veth is not None or dd:
            lp = (veth or 0) + sum(v for v in (dd or {}).values() if isinstance(v, int))
        cmds = d.get("commands")
        r = mk("e2e", name=f"e2e-{c}", dut=as_str(d.get("dut")) or c, date=as_str(d.get("date")) or mtime_iso(p),
               commit=as_str(d.get("commit")) or run_commit("e2e"),
               command="\n".join(map(str, cmds)) if isinstance(cmds, list) else as_str(cmds),
               config=c, reps=d.get("reps") if isinstance(d.get("reps"), dict) else None, veth_drops=veth,
               dut_drops=dd, loss_notes=as_str(loss.get("notes")), notes=as_str(d.get("notes")), loss_pkts=lp,
               new_conns_per_s=num(md.get("http_close_cps")),
               **{k: num(md.get(k)) for k, *_ in E2E_METRICS})
        if c == "pgw-afxdp":
            r["vs_testpmd"] = ratios("testpmd-afxdp")
            r["vs_kernel_nat"] = ratios("kernel-nat")
            # Packets through the DUT at MSS 536, against testpmd on the same devices.
            r["pgw_mpps"] = m(num(md.get("iperf_m536_pps")))
            if "testpmd-afxdp" in med:
                r["ceiling_mpps"] = m(num(med["testpmd-afxdp"].get("iperf_m536_pps")))
                r["ratio"] = div(r["pgw_mpps"], r["ceiling_mpps"])
        rows.append(r)
    return rows


T_ROWS = throughput_rows()
C_ROWS = cps_rows()
L_ROWS = latency_rows()
M_ROWS, MARGINAL = memory_rows()
CR_ROWS = criterion_rows()
E_ROWS = e2e_rows()
ALL_ROWS = T_ROWS + C_ROWS + L_ROWS + M_ROWS + E_ROWS + CR_ROWS


def row(name, kind):
    return next((r for r in ALL_ROWS if r["name"] == name and r["kind"] == kind), None)


def val(name, kind, field):
    r = row(name, kind)
    return r.get(field) if r else None


# ------------------------------------------------------------------ targets
def verdict(ok):
    return "– (not measured)" if ok is None else ("**met**" if ok else "**not met**")


def to_ns(cycles, hz):
    return cycles * 1e9 / hz if cycles is not None and hz else None


def crit(direction, flows):
    """The criterion row `gw data/<direction>/<N> flows` with N within 10 % of `flows`."""
    for r in CR_ROWS:
        mo = re.fullmatch(r"gw data/(up|down)/(\d+) flows", r["name"] or "")
        if mo and mo.group(1) == direction and abs(int(mo.group(2)) / flows - 1) <= 0.1:
            return r
    return None


def stages_named(name, kind, which):
    st = val(name, kind, "stages") or []
    return "+".join(s["name"] for s in st if s["name"] in which) or "–"


def f2(v, nd=2):
    return fnum(v, nd)


# Accounting cost: the same run with stage timing on (gw-1k) and off
# (gw-1k-untimed); busy cycles per packet are measured either way.
_timed, _untimed = val("gw-1k", "throughput", "busy_cycles_per_pkt"), val("gw-1k-untimed", "throughput", "busy_cycles_per_pkt")
ACCT_COST = sub(_timed, _untimed)
ACCT_COST_PCT = 100 * ACCT_COST / _untimed if ACCT_COST is not None and _untimed else None

# Metrics cost: gw-1k with [metrics], its window cut into 1-s segments,
# not scraped (even) and scraped at their start (odd); a segment's figures
# are the differences of the runtime counters read at its ends
# (gw-1k-scraped.segN.json). Each pair's scraped minus not scraped, the
# median over the pairs: the machine's drift is common to both halves.
def median(xs):
    xs = sorted(x for x in xs if num(x) is not None)
    if not xs:
        return None
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


def scrape_segments(name="gw-1k-scraped"):
    """[{segment, scraped, packets, busy_cycles_per_pkt, io_cycles_per_pkt, engine_cycles_per_pkt}]."""
    snaps = []
    while isinstance(load(name, f"seg{len(snaps)}.json"), dict):
        snaps.append(load(name, f"seg{len(snaps)}.json"))
    tot = []
    for sn in snaps:
        wks = [x for x in sn.get("workers") or [] if isinstance(x, dict)]
        io = sum(num(st.get("cycles")) or 0 for x in wks for st in x.get("stages") or []
                 if isinstance(st, dict) and st.get("name") in IO_STAGES)
        tot.append((sum(num(x.get("packets")) or 0 for x in wks), sum(num(x.get("busy_cycles")) or 0 for x in wks), io))
    segs = []
    for i in range(len(tot) - 1):
        pk, bc, io = (tot[i + 1][k] - tot[i][k] for k in range(3))
        if pk <= 0:
            continue
        segs.append(dict(segment=i, scraped=i % 2 == 1, packets=int(pk), busy_cycles_per_pkt=bc / pk,
                         io_cycles_per_pkt=io / pk, engine_cycles_per_pkt=(bc - io) / pk))
    return segs


SCRAPE_SEGMENTS = scrape_segments()
_by_seg = {x["segment"]: x for x in SCRAPE_SEGMENTS}
SCRAPE_PAIRS = [(_by_seg[i], _by_seg[i + 1]) for i in sorted(_by_seg) if i % 2 == 0 and i + 1 in _by_seg]
_unscraped = median(a["engine_cycles_per_pkt"] for a, _ in SCRAPE_PAIRS)
_scraped = median(b["engine_cycles_per_pkt"] for _, b in SCRAPE_PAIRS)
SCRAPE_COST = median(b["engine_cycles_per_pkt"] - a["engine_cycles_per_pkt"] for a, b in SCRAPE_PAIRS)
SCRAPE_COST_PCT = 100 * SCRAPE_COST / _unscraped if SCRAPE_COST is not None and _unscraped else None
SCRAPE_BUSY_COST = median(b["busy_cycles_per_pkt"] - a["busy_cycles_per_pkt"] for a, b in SCRAPE_PAIRS)

NOT_RUN = "not in this run: "


def targets():
    """The targets of the GW flow-path issue and of the TCP end-to-end issue:
    [{group, target, measured, value, unit, rows, met}]; met None = not measured.
    Nothing here is asserted anywhere: it is the report only."""
    t = []

    def add(group, target, measured, value, unit, rows, met):
        t.append(dict(group=group, target=target, measured=measured, value=value, unit=unit, rows=rows,
                      met=met if value is not None else None))

    G = "GW flow path"
    # 1. Busy cost per packet at 1 M flows, 1 worker.
    hz = val("gw-1m", "throughput", "tsc_hz")
    gwc = val("gw-1m", "throughput", "gw_cycles_per_pkt")
    gns = to_ns(gwc, hz)
    add(G, "GW stages ≤ 100 ns/packet at 1 M flows, 1 worker (runtime accounting)",
        f"{fnum(gns)} ns ({fnum(gwc, 0)} cycles/packet at {hz / 1e9:.2f} GHz; stages {stages_named('gw-1m', 'throughput', GW_STAGES)})"
        if gns is not None else NOT_RUN + "`gw-1m` with timed runtime stages",
        gns, "ns", ["gw-1m"], gns is not None and gns <= 100)
    # criterion: a verdict needs both directions; one alone is shown, unjudged.
    cu, cd = crit("up", 1e6), crit("down", 1e6)
    cv = [r["mean_ns"] for r in (cu, cd) if r]
    add(G, "GW path ≤ 100 ns/packet at 1 M flows (criterion, up and down)",
        f"up {fnum(cu['mean_ns']) if cu else '(not run)'} ns, down {fnum(cd['mean_ns']) if cd else '(not run)'} ns "
        f"per packet (mean per iteration / {(cu or cd)['elements']} packets)" if cv
        else NOT_RUN + "criterion `gw data/up|down/1000000 flows`",
        max(cv) if cv else None, "ns", [r["name"] for r in (cu, cd) if r], max(cv) <= 100 if len(cv) == 2 else None)
    bc = val("gw-1m", "throughput", "busy_cycles_per_pkt")
    cap = val("gw-1m", "throughput", "capacity_mpps")
    io = val("gw-1m", "throughput", "io_cycles_per_pkt")
    add(G, "whole busy cost at 1 M flows incl. device I/O: capacity ≥ 10 Mpps (≤ 100 ns/packet)",
        f"capacity {mpps(cap)} Mpps: {fnum(to_ns(bc, hz))} ns/packet ({fnum(bc, 0)} busy cycles, of which device I/O "
        f"{fnum(io, 0)})" if cap is not None else NOT_RUN + "`gw-1m` runtime accounting",
        cap, "Mpps", ["gw-1m"], cap is not None and cap >= 10)
    # 2. Cost against table size.
    e1 = val("gw-1k", "throughput", "engine_cycles_per_pkt")
    for big, label, lim in (("gw-1m", "1 M", 1.6), ("gw-16m", "16 M", 1.8)):
        eb = val(big, "throughput", "engine_cycles_per_pkt")
        r = div(eb, e1)
        g1, gb = val("gw-1k", "throughput", "gw_cycles_per_pkt"), val(big, "throughput", "gw_cycles_per_pkt")
        add(G, f"engine cycles/packet at {label} ÷ at 1 k ≤ {lim} (runtime accounting)",
            f"{f2(r)}: {fnum(eb, 0)} ÷ {fnum(e1, 0)} engine cycles/packet (GW stages alone: {fnum(gb, 0)} ÷ {fnum(g1, 0)} = "
            f"{f2(div(gb, g1))})" if r is not None else NOT_RUN + f"`{big}` and `gw-1k` with timed runtime stages",
            r, "×", [big, "gw-1k"], r is not None and r <= lim)
    for nb, label, lim in ((1e6, "1 M", 1.6), (16e6, "16 M", 1.8)):
        parts, names, missing = [], [], []
        for d in ("up", "down"):
            a, b = crit(d, 1e3), crit(d, nb)
            if a and b:
                parts.append((d, b["mean_ns"] / a["mean_ns"], b["mean_ns"], a["mean_ns"]))
                names += [b["name"], a["name"]]
            else:
                missing.append(d)
        worst = max(x for _, x, _, _ in parts) if parts else None
        add(G, f"ns/packet at {label} ÷ at 1 k ≤ {lim} (criterion, up and down)",
            "; ".join([f"{d} {f2(x)} ({fnum(b)} ÷ {fnum(a)} ns)" for d, x, b, a in parts]
                      + [f"{d}: not in this run" for d in missing])
            if parts else NOT_RUN + f"criterion `gw data/up|down/{int(nb)} flows` and `…/1000 flows`",
            worst, "×", names, worst <= lim if len(parts) == 2 else None)
    # 3. New connections per worker.
    c = row("gw-cps", "cps")
    cc = c and c.get("conn_capacity_per_s")
    cn = next((r for r in CR_ROWS if (r["name"] or "").startswith("gw new connection/")), None)
    add(G, "new connections/s per worker (capacity) ≥ 2 M",
        (f"{cc / 1e6:.2f} M/s = TSC Hz ÷ {fnum(c['busy_cycles_per_conn'], 0)} busy cycles per connection "
         f"(SYN → SYN-ACK → RST); through the harness {fnum(m(c['new_conns_per_s']), 3)} M/s at "
         f"{fnum(c.get('busy_pct'))} % busy" if cc else NOT_RUN + "`gw-cps` with its runtime accounting")
        + (f"; criterion `{cn['name']}`: {fnum(cn['mean_ns'])} ns = {cn['est_mpps']:.2f} M/s" if cn else ""),
        cc / 1e6 if cc else None, "M/s", ["gw-cps"] + ([cn["name"]] if cn else []), bool(cc) and cc >= 2e6)
    # 3b. A SYN flood on the SYN proxy costs a worker less than connections.
    sf = row("gw-synflood", "cps")
    sfc = sf and sf.get("conn_capacity_per_s")
    rs = div(sfc, cc) if sfc and cc else None
    add("Hardening", "a SYN flood on the SYN proxy costs less than connections: SYNs/s one worker absorbs ≥ its new connections/s (capacity)",
        (f"{f2(rs)} ×: {sfc / 1e6:.2f} M SYNs/s = TSC Hz ÷ {fnum(sf['busy_cycles_per_conn'], 0)} busy cycles per SYN "
         f"(cookie SYN-ACK, and the RST dropped) against {cc / 1e6:.2f} M connections/s (`gw-cps`); through the harness "
         f"{fnum(m(sf['new_conns_per_s']), 3)} M SYNs/s answered, {ints(sf.get('loss_up_pkts'))} SYNs unanswered, "
         f"{ints(event('gw-synflood', 'gw_new_flows'))} connections opened")
        if rs is not None else NOT_RUN + "`gw-synflood` and `gw-cps` with their runtime accounting",
        rs, "×", ["gw-synflood", "gw-cps"], rs is not None and rs >= 1)
    # 4. Memory for 16 M connections.
    m16 = row("gw-16m", "memory")
    tb = m16 and m16["total_bytes"]
    add(G, "memory for 16 M concurrent connections ≤ 2 GiB (RSS peak + hugepages taken)",
        f"{tb / 2**30:.2f} GiB = RSS {m16['rss_bytes'] / 2**30:.2f} + hugepages {m16['hugepage_bytes'] / 2**30:.2f} GiB, "
        f"{ints(m16['open_flows'])} connections open" if tb else NOT_RUN + "`gw-16m` memory",
        tb / 2**30 if tb else None, "GiB", ["gw-16m"], bool(tb) and tb <= 2 * 2**30)
    # 5. Added latency at 50 % load.
    l50 = row("gw-lat-50", "latency")
    for key, bkey, label, lim in (("added_p99_us", "baseline_p99_us", "p99", 20),
                                  ("added_p999_us", "baseline_p999_us", "p99.9", 50)):
        a = l50 and l50.get(key)
        pk = "p99_us" if label == "p99" else "p999_us"
        add(G, f"latency added over the baseline at 50 % load: {label} ≤ {lim} µs",
            f"{fnum(a)} µs = {fnum(l50[pk])} (pgw) − {fnum(l50[bkey])} µs (testpmd)" if a is not None
            else NOT_RUN + "`gw-lat-50` and its baseline `testpmd-lat-50`",
            a, "µs", ["gw-lat-50", "testpmd-lat-50"], a is not None and a <= lim)
    # 6. Two workers.
    c1, c2 = val("gw-1k", "throughput", "capacity_mpps"), val("gw-1k-2w", "throughput", "capacity_mpps")
    r2 = div(c2, c1)
    wk = val("gw-1k-2w", "throughput", "runtime_workers") or []
    tot = sum(x.get("packets") or 0 for x in wk)
    split = " / ".join(f"{100 * (x.get('packets') or 0) / tot:.0f} %" for x in wk) if tot else "–"
    thr = div(val("gw-1k-2w", "throughput", "pgw_mpps"), val("gw-1k", "throughput", "pgw_mpps"))
    add(G, "two workers ≥ 1.8 × one worker (capacity)",
        f"{f2(r2)}: {mpps(c2)} ÷ {mpps(c1)} Mpps; packets per worker {split} (lcores "
        f"{', '.join(str(x.get('lcore')) for x in wk)}); Mpps through the DUT {f2(thr)} ×" if r2 is not None
        else NOT_RUN + "`gw-1k-2w` and `gw-1k` runtime accounting",
        r2, "×", ["gw-1k-2w", "gw-1k"], r2 is not None and r2 >= 1.8)
    E = "TCP end to end"
    pg = row("e2e-pgw-afxdp", "e2e")
    vt = (pg or {}).get("vs_testpmd") or {}
    vk = (pg or {}).get("vs_kernel_nat") or {}

    def e2e(target, ratios, other, key, lim, what):
        v = ratios.get(key)
        mine, theirs = (pg or {}).get(key), val(f"e2e-{other}", "e2e", key)
        add(E, target, f"{f2(v)} × ({what(mine)} vs {what(theirs)} through {other})" if v is not None
            else NOT_RUN + f"`e2e-pgw-afxdp` and `e2e-{other}`", v, "×", ["e2e-pgw-afxdp", f"e2e-{other}"],
            v is not None and v >= lim)

    e2e("new HTTP connections/s through pgw ≥ 1.2 × kernel-nat", vk, "kernel-nat", "http_close_cps", 1.2,
        lambda x: f"{fnum(x, 0)}/s")
    e2e("new HTTP connections/s within 10 % of testpmd-afxdp (≥ 0.9 ×)", vt, "testpmd-afxdp", "http_close_cps", 0.9,
        lambda x: f"{fnum(x, 0)}/s")
    e2e("packets/s at MSS 536 ≥ 0.95 × testpmd-afxdp", vt, "testpmd-afxdp", "iperf_m536_pps", 0.95,
        lambda x: f"{fnum(x and x / 1e3, 1)} kpps")
    e2e("iperf3 Gbit/s within 10 % of testpmd-afxdp (≥ 0.9 ×)", vt, "testpmd-afxdp", "iperf_gbps", 0.9,
        lambda x: f"{fnum(x, 2)} Gbit/s")
    for x in t:
        x["why"], x["close"] = explained(x["target"]) if x["met"] is False else (None, None)
    return t


# ------------------------------------------------------------------ why a target is missed
def stage_cost(name):
    """{stage: cycles per packet through} of NAME's runtime accounting (any kind of row)."""
    r = next((r for r in ALL_ROWS if r["name"] == name and r.get("stages")), None)
    return {s["name"]: s["cycles_per_pkt_through"] for s in (r or {}).get("stages") or []
            if num(s.get("cycles_per_pkt_through")) is not None}


def stage_story(name, which, base=None, top=5):
    """NAME's costliest stages among `which`, cycles per packet through, with BASE's beside."""
    a, b = stage_cost(name), stage_cost(base) if base else {}
    names = sorted((n for n in a if n in which), key=lambda n: -a[n])[:top]
    if not names:
        return None
    return ", ".join(f"{n} {fnum(a[n], 0)}" + (f" (`{base}` {fnum(b[n], 0)})" if n in b else "") for n in names)


def grew(name, base, stage):
    """How many cycles per packet STAGE costs in NAME over BASE, and its share of the whole growth."""
    a, b = stage_cost(name), stage_cost(base)
    if stage not in a or stage not in b:
        return None, None
    total = sum(a.values()) - sum(b.values())
    d = a[stage] - b[stage]
    return d, (100 * d / total if total > 0 else None)


def explained(target):
    """explain(target), with a why that says so where this run has no figure for it."""
    why, close = explain(target)
    return why or "this run has no stage accounting for the rows named", close


def explain(target):
    """(why, close) of a missed target: WHY from this run's own figures (the
    runtime accounting's stages, the ceiling's and the baseline's rows),
    CLOSE what would close the gap. None where the run has no figure."""
    GWS = GW_STAGES
    hz = val("gw-1m", "throughput", "tsc_hz") or val("gw-1k", "throughput", "tsc_hz")
    lookup_close = ("hide the entry's miss: the lookup takes two dependent misses per packet (bucket, then the "
                    "entry its tag names), and within one burst of 32 the entries' prefetches are issued just "
                    "before they are compared; issue them a burst earlier (the next burst's buckets while this "
                    "one is rewritten, as VPP's nat44-ed pipelines frames), or keep established IPv4 tuples in "
                    "the bucket itself so that the common case takes one miss")
    c1k, c1m = stage_cost("gw-1k"), stage_cost("gw-1m")
    lk = (f"gw_lookup costs {fnum(c1m.get('gw_lookup'), 0)} cycles per packet at 1 M flows against "
          f"{fnum(c1k.get('gw_lookup'), 0)} at 1 k (`gw-1m`, `gw-1k`): at 1 M the 64-byte hot entries alone "
          f"take 64 MiB and, with their buckets, miss the cache on every packet, while parse and rewrite, "
          f"which touch no table, cost no more ({fnum(c1m.get('parse'), 0)} / {fnum(c1m.get('rewrite'), 0)} "
          f"against {fnum(c1k.get('parse'), 0)} / {fnum(c1k.get('rewrite'), 0)})") if "gw_lookup" in c1m and "gw_lookup" in c1k else None
    if target.startswith("GW stages ≤ 100 ns/packet at 1 M"):
        st = stage_story("gw-1m", GWS)
        return (f"`gw-1m` GW stages, cycles per packet: {st}; {lk}" if st and lk else None), lookup_close + (
            "; then parse, the next stage (a fast path reading only the 5-tuple of established IPv4 TCP/UDP)")
    if target.startswith("GW path ≤ 100 ns/packet at 1 M"):
        cu, cd, cu1, cd1 = crit("up", 1e6), crit("down", 1e6), crit("up", 1e3), crit("down", 1e3)
        why = (f"the same path without device I/O: up {fnum(cu['mean_ns'])} ns per packet against "
               f"{fnum(cu1['mean_ns'])} at 1 k flows, down {fnum(cd['mean_ns'])} against {fnum(cd1['mean_ns'])}; "
               f"the difference is the lookup's miss, as the runtime accounting shows: {lk}"
               ) if cu and cd and cu1 and cd1 and lk else None
        return why, lookup_close
    if target.startswith("engine cycles/packet at 1 M") or target.startswith("ns/packet at 1 M"):
        return lk, lookup_close
    if target.startswith("memory for 16 M"):
        m16 = row("gw-16m", "memory") or {}
        why = (f"RSS {fnum((m16.get('rss_bytes') or 0) / 2**30, 2)} GiB + hugepages "
               f"{fnum((m16.get('hugepage_bytes') or 0) / 2**30, 2)} GiB for {ints(m16.get('open_flows'))} "
               f"connections; {fnum(MARGINAL, 0)} bytes per added connection (the 64-byte hot entry, the "
               f"32-byte cold record, the key's binding and the table's buckets at its load factor)"
               ) if m16.get("total_bytes") else None
        return why, "a fuller table (a higher load factor of the buckets) or a smaller cold record"
    if target.startswith("iperf3 Gbit/s"):
        return (f"pgw busy-polls one of the VM's {os.cpu_count()} vCPUs, which iperf3 at both ends and the "
                f"kernel's veth and XDP work must share"), "a core of its own for the DUT (≥ 3 cores)"
    if target.startswith("whole busy cost at 1 M"):
        bc, io = val("gw-1m", "throughput", "busy_cycles_per_pkt"), val("gw-1m", "throughput", "io_cycles_per_pkt")
        why = (f"device I/O (memif rx + tx, a copy of every frame across cores) is {fnum(io, 0)} of the "
               f"{fnum(bc, 0)} busy cycles per packet; testpmd's io forwarding through the same memif costs "
               f"{fnum(CEIL_BCPP, 0)} cycles per packet by itself, so with this device no forwarder passes "
               f"{mpps(hz / CEIL_BCPP / 1e6 if hz and CEIL_BCPP else None)} Mpps, and pgw's engine alone "
               f"({fnum(bc - io, 0)} cycles) would carry {mpps(hz / (bc - io) / 1e6 if hz else None)} Mpps"
               ) if bc and io and CEIL_BCPP else None
        return why, ("a NIC PMD (DMA descriptors, no copy) instead of memif for device I/O, and the engine's "
                     "lookup as in the first target")
    if target.startswith("engine cycles/packet at 16 M") or target.startswith("ns/packet at 16 M"):
        st = stage_story("gw-16m", set(GWS) | {"rx", "tx"}, "gw-4m", top=7)
        c4, c16 = stage_cost("gw-4m"), stage_cost("gw-16m")
        io4, io16 = (sum(c.get(n, 0) for n in ("rx", "tx")) for c in (c4, c16))
        why = (f"`gw-16m` against `gw-4m`, cycles per packet through: {st}. The lookup grows by "
               f"{fnum(c16.get('gw_lookup', 0) - c4.get('gw_lookup', 0), 0)} cycles though the 4 M table is "
               f"already far out of cache; but every stage is slower in `gw-16m`, device I/O too "
               f"({fnum(io16, 0)} against {fnum(io4, 0)} cycles), which never touches the flow table: part of "
               f"the 16 M figure is the machine during that run, not the table. This VM has no hardware "
               f"counters to tell TLB misses from cache misses") if io4 and io16 and st else None
        if target.startswith("ns/packet at 16 M"):
            cu, cd, cu1, cd1 = crit("up", 16e6), crit("down", 16e6), crit("up", 1e3), crit("down", 1e3)
            why = (f"criterion, no device I/O: up {fnum(cu['mean_ns'])} ns per packet against "
                   f"{fnum(cu1['mean_ns'])} at 1 k flows (× {f2(cu['mean_ns'] / cu1['mean_ns'])}), down "
                   f"{fnum(cd['mean_ns'])} against {fnum(cd1['mean_ns'])} (× {f2(cd['mean_ns'] / cd1['mean_ns'])}): "
                   f"the up path, which hashes the subscriber's tuple into the 16 M-entry table, is the one that "
                   f"grows") if cu and cd and cu1 and cd1 else None
        return why, ("measure `gw-16m` and `gw-4m` alternately in one run to separate the machine from the "
                     "table; the flow table on 1 GiB hugepages (this VM's CPU has pdpe1gb and its kernel "
                     "offers 1 GiB pages; DPDK takes them from a hugetlbfs mounted with pagesize=1G) so that "
                     "16 M entries need a handful of TLB entries; and the lookup's prefetching as at 1 M")
    if target.startswith("new connections/s per worker"):
        c = row("gw-cps", "cps") or {}
        st = stage_story("gw-cps", set(GWS) | {"rx", "tx"}, top=7)
        cost = {s["name"]: s for s in c.get("stages") or []}
        per = lambda n: fnum((cost.get(n) or {}).get("cycles_per_pkt"), 0)
        cn = next((r for r in CR_ROWS if (r["name"] or "").startswith("gw new connection/")), None)
        why = (f"{fnum(c.get('busy_cycles_per_conn'), 0)} busy cycles per connection: three packets "
               f"(SYN, SYN-ACK, RST) each through device I/O, parse, lookup and rewrite, plus the open "
               f"({per('gw_open')} cycles per opening packet) and the accounting record "
               f"({per('accounting')} per record); `gw-cps` stages, cycles per packet through: {st}"
               + (f". Without memif (criterion `{cn['name']}`) one connection costs {fnum(cn['mean_ns'])} ns = "
                  f"{cn['est_mpps']:.2f} M/s" if cn else "")) if c.get("busy_cycles_per_conn") else None
        return why, ("device I/O as above (the same connection without memif already passes 2 M/s), and the "
                     "accounting record written in a batch per burst instead of one at a time at the close")
    if target.startswith("a SYN flood on the SYN proxy"):
        st = stage_story("gw-synflood", set(GWS) | {"rx", "tx"}, "gw-cps", top=7)
        return (f"`gw-synflood` against `gw-cps`, cycles per packet through: {st}" if st else None), (
            "answer the SYN before the flow lookup (a SYN to a VIP with the proxy on needs no table) and drop "
            "the flood's RSTs at parse")
    if target.startswith("latency added over the baseline"):
        l50, lb = row("gw-lat-50", "latency") or {}, row("testpmd-lat-50", "latency") or {}
        bc = l50.get("busy_cycles_per_pkt") or val("gw-lat-50", "latency", "busy_cycles_per_pkt")
        why = (f"the baseline is the harness: testpmd's io forwarding through the same generator and memif "
               f"already has p99 {fnum(lb.get('p99_us'))} µs and p99.9 {fnum(lb.get('p999_us'))} µs at 50 % load, "
               f"two orders above the targets, while pgw's worker spends {fnum(to_ns(bc, hz))} ns of busy time "
               f"per packet at that load; the difference of two such tails is the generator's and the VM "
               f"scheduler's queueing, not pgw's") if lb.get("p99_us") else None
        return why, ("a generator whose own latency tail is microseconds: on its own physical core, with "
                     "hardware timestamps (a NIC with PTP RX/TX timestamps), which this 2-vCPU VM cannot give")
    if target.startswith("two workers"):
        wk = val("gw-1k-2w", "throughput", "runtime_workers") or []
        parts = "; ".join(f"worker {x.get('worker')} on lcore {x.get('lcore')}: {fnum(x.get('busy_cycles_per_pkt'), 0)} "
                          f"cycles/pkt" for x in wk)
        why = (f"this VM has {os.cpu_count()} vCPUs and the generator busy-polls one of them: the second "
               f"worker shares lcore 0 with the generator ({parts}), so it runs only when the generator "
               f"yields, and device I/O per packet rises to "
               f"{fnum(val('gw-1k-2w', 'throughput', 'io_cycles_per_pkt'), 0)} cycles") if wk else None
        return why, "a machine where the generator and each worker have a core of their own (≥ 3 cores)"
    if target.startswith("new HTTP connections/s") or target.startswith("packets/s at MSS 536"):
        shared = (f"pgw busy-polls one of the VM's {os.cpu_count()} vCPUs, which the kernel's veth and XDP "
                  f"work, wrk, nginx and the client must share")
        if "kernel-nat" in target:
            why = shared + ("; the kernel's NAT (nftables + conntrack) runs in softirq on whichever vCPU the "
                            "packet is on, without a core taken from the stacks at both ends")
        else:
            why = shared + ("; testpmd-afxdp takes the same core but forwards without state, rewrite or "
                            "accounting, so the stacks get the same share of CPU for less work per packet")
        return why, "a core of its own for the DUT (≥ 3 cores), and the engine's per-packet cost as above"
    return None, None


TARGETS = targets()

# ------------------------------------------------------------------ RESULTS.json, plots
now = datetime.datetime.now().astimezone()
cpu = sh("lscpu | sed -n 's/^Model name: *//p'") or platform.processor()
ncpu = os.cpu_count()
dpdk = sh("pkg-config --modversion libdpdk")
ram_gib = sh("free -g | awk '/Mem:/ {print $2}'")
hyp = sh("lscpu | sed -n 's/^Hypervisor vendor: *//p'")
hp_total = sh("awk '/^HugePages_Total/ {print $2}' /proc/meminfo")
hp_size = sh("awk '/^Hugepagesize/ {print $2 $3}' /proc/meminfo")
rustc = sh("rustc -V")

META = {
    "schema": S.SCHEMA,
    "mode": MODE,
    "written": now.isoformat(timespec="seconds"),
    "commit": COMMIT,
    "work_tree_modified": DIRTY,
    "machine": {"cpu": cpu, "vcpus": ncpu, "hypervisor": hyp or None,
                "ram_gib": int(ram_gib) if ram_gib.isdigit() else None, "kernel": platform.release()},
    "dpdk": dpdk or None,
    "rustc": rustc or None,
    "hugepages": f"{hp_total} x {hp_size}" if hp_total else None,
    "gen_loopback_run": LOOP_NAME,
    "gen_loopback_mpps": LOOP_MPPS,
    "gen_bound_fraction": GEN_BOUND_FRACTION,
    "ceiling_run": CEIL_NAME,
    "ceiling_mpps": CEIL_MPPS,
    "ceiling_alone_mpps": ALONE_MPPS,
    "ceiling_busy_cycles_per_pkt": CEIL_BCPP,
    "accounting_cost_cycles_per_pkt": ACCT_COST,
    "accounting_cost_pct": ACCT_COST_PCT,
    "scrape_cost_cycles_per_pkt": SCRAPE_COST,
    "scrape_cost_pct": SCRAPE_COST_PCT,
    "scrape_cost_busy_cycles_per_pkt": SCRAPE_BUSY_COST,
    "scrape_pairs": len(SCRAPE_PAIRS),
    "scrape_segments": SCRAPE_SEGMENTS or None,
    "marginal_bytes_per_conn": MARGINAL,
    "targets": TARGETS,
    "plots": [],
    "plots_note": None,
    "fields": {"common": [f[0] for f in S.COMMON], **{k: [f[0] for f in v] for k, v in S.KIND_FIELDS.items()}},
}


def finite(v):
    """JSON has no NaN or infinity: such a figure was not measured."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite(x) for x in v]
    return v


def write_json():
    os.makedirs(os.path.dirname(os.path.abspath(JSON_PATH)), exist_ok=True)
    tmp = JSON_PATH + ".tmp"
    with open(tmp, "w") as f:
        json.dump(finite({"meta": META, "rows": ALL_ROWS}), f, indent=1, ensure_ascii=False, allow_nan=False)
        f.write("\n")
    os.replace(tmp, JSON_PATH)


def plot_python():
    """A Python that has matplotlib: this one, else Debian's (python3-matplotlib
    installs there; a pyenv python3 first on PATH does not see it)."""
    seen = set()
    for py in (sys.executable, "/usr/bin/python3", shutil.which("python3")):
        if not py or py in seen or not os.path.exists(py):
            continue
        seen.add(py)
        try:
            if subprocess.run([py, "-c", "import matplotlib"], capture_output=True, timeout=60).returncode == 0:
                return py
        except Exception:
            continue
    return None


def draw_plots():
    py = plot_python()
    if not py:
        META["plots_note"] = ("matplotlib is not installed (Debian: apt-get install python3-matplotlib, which "
                              "scripts/setup.sh does): no plots")
        return
    try:
        p = subprocess.run([py, os.path.join(HERE, "plots.py"), JSON_PATH, PLOT_DIR],
                           capture_output=True, text=True, timeout=300)
        res = json.loads(p.stdout) if p.returncode == 0 else None
    except Exception as e:  # the report must still be written
        res, p = None, None
        META["plots_note"] = f"plots.py failed: {e}"
    if res is None:
        if p is not None:
            err = (p.stderr.strip().splitlines() or ["?"])[-1]
            META["plots_note"] = f"plots.py failed: {err}"
        return
    base = os.path.dirname(os.path.abspath(JSON_PATH))
    META["plots"] = [os.path.relpath(os.path.join(PLOT_DIR, f), base) for f in res.get("written", [])]
    skipped = res.get("skipped") or {}
    if skipped:
        META["plots_note"] = "; ".join(f"{k}: {v}" for k, v in skipped.items())


write_json()
draw_plots()
write_json()


def plot_link(fname, alt):
    rel = next((p for p in META["plots"] if os.path.basename(p) == fname), None)
    return f"![{alt}]({rel})" if rel else None


# ------------------------------------------------------------------ RESULTS.md
out = []
P = out.append

P("# pgw benchmark results" + (" (smoke run)" if MODE == "smoke" else ""))
P("")
_run_times = sorted(os.path.getmtime(f) for f in glob.glob(os.path.join(OUT, "*.cmd")))


def _when(t):
    return datetime.datetime.fromtimestamp(t).astimezone().strftime('%Y-%m-%d %H:%M %Z')


P(f"Written by `scripts/bench.sh{' --smoke' if MODE == 'smoke' else ''}` on {now.strftime('%Y-%m-%d %H:%M %Z')}"
  + (f" from the runs of {_when(_run_times[0])} to {_when(_run_times[-1])} (the run files' times)" if _run_times else "")
  + f". The same figures, one object per row, are in `{os.path.basename(JSON_PATH)}` (fields: `perf/README.md`).")
P("")
P("| | |")
P("|---|---|")
P(f"| machine | {cpu}, {ncpu} vCPUs ({hyp + ' VM' if hyp else 'no hypervisor reported'}), "
  f"{ram_gib} GiB RAM, kernel {platform.release()} |")
P(f"| DPDK | {dpdk} (Debian packages), every process `--no-pci`, virtual devices only |")
P(f"| rustc | {rustc} |")
_built = sorted({r["commit"] for r in ALL_ROWS if r.get("commit") and r["commit"] != COMMIT})
P(f"| commit | report at {COMMIT}{' (work tree modified)' if DIRTY else ''}"
  + (f"; runs built from {', '.join(_built)} (each row's `commit`)" if _built else "") + " |")
P(f"| hugepages | {hp_total} x {hp_size} |")
if META["plots"]:
    P("| plots | " + ", ".join(f"[{os.path.basename(p)}]({p})" for p in META["plots"]) + " |")
if META["plots_note"]:
    P(f"| plots not drawn | {META['plots_note']} |")
P("")
P("Topology: `pgw-gen` (CPU 0, one lcore) plays the subscribers on its *access* port and every "
  "server on its *servers* port (a reflector: addresses and ports swapped, SYN → SYN-ACK, FIN → "
  "FIN-ACK, data and UDP echoed). Each port is a `net_memif` link (unix socket in /tmp) to the "
  "device under test (DUT) on CPU 1: pgw's GW role (1 worker), or `dpdk-testpmd --forward-mode=io` "
  "for the ceiling. Frame sizes are on the wire with FCS (64 B = 60 bytes in the mbuf). "
  "**Mpps through the DUT** = up packets that reached the servers port + down packets that reached "
  "the access port, per second: what the DUT forwarded. **Busy cycles/packet** = the cycles pgw's "
  "worker spent in loop turns that found work, per packet (the engine's own accounting over the "
  "window); **capacity** = TSC Hz / busy cycles per packet: what the worker would carry if it never "
  "waited for traffic. A row is **generator-bound** when the generator offered (or, flat out with no "
  f"TX refusals, got through) at least {GEN_BOUND_FRACTION:.0%} of its own loopback rate in this run: "
  "the DUT figure is then only a lower bound (≥) and its capacity is the figure to read. The machine "
  "is a shared 2-vCPU VM: numbers move ±10–15 % between runs, so compare within this file, as "
  "ratios. The last column of each table gives the CPU idle share seen just before the run (the "
  "script waits up to 60 s for ≥ 85 %) and the share of the machine's CPU time other processes took "
  "*during* it; generator and DUT busy-poll one CPU each, so anything else steals from them: runs "
  "marked ⚠ (others ≥ 5 %) are contaminated and understate.")
P("")

# ------------------------------------------------------------------ targets
def target_table(group):
    rows = [x for x in TARGETS if x["group"] == group]
    P("| target | measured | from | |")
    P("|---|---|---|---|")
    for x in rows:
        v = "– (incomplete)" if x["met"] is None and x["value"] is not None else verdict(x["met"])
        P(f"| {x['target']} | {x['measured']} | {', '.join(f'`{n}`' for n in x['rows']) or '–'} | {v} |")
    P("")
    missed = [x for x in rows if x.get("why") or x.get("close")]
    if missed:
        P("Why each target above is missed, from this run's own figures (the runtime accounting's stages of "
          "the rows named; *Where the cycles go* below), and what would close it:")
        P("")
        for x in missed:
            P(f"- **{x['target']}**: {x.get('why') or '(no figure in this run)'}. *To close it*: {x.get('close') or '–'}.")
        P("")


P("## Targets")
P("")
P("The targets of the GW flow-path issue, from the e2e rows of the TCP end-to-end issue, and of the "
  "hardening issue (the SYN proxy's flood): the "
  "figure, the rows it comes from, met or not. Nothing is asserted in CI; this table is the only "
  "place they are checked. ns = cycles ÷ TSC GHz. *Engine* cycles exclude device I/O (the stages "
  "`rx` and `tx`, the PMD's work: here memif copies across cores); *GW stages* are parse, lookup, "
  "open, rewrite and accounting alone (see *Cost per packet*).")
P("")
P("### GW flow path")
P("")
target_table("GW flow path")
P("### TCP end to end")
P("")
target_table("TCP end to end")
P("### Hardening")
P("")
target_table("Hardening")


def through_cell(r):
    v = r.get("dut_mpps")
    if v is None:
        return "–"
    if r.get("generator_bound"):
        return f"**≥ {v:.2f}** (generator-bound)"
    return f"**{v:.2f}**"


def ratio_cell(r, key):
    v = r.get(key)
    if v is None:
        return "–"
    return ("≥ " if r.get("generator_bound") else "") + f"{v:.2f}"


# ------------------------------------------------------------------ throughput
P("## Throughput (established connections)")
P("")
P("| run | DUT | connections | frame | up Mpps | down Mpps | **Mpps through DUT** | vs testpmd (same gen) | "
  "vs testpmd alone | busy cycles/pkt | capacity Mpps | gen TX refused Mpps | loss up / down | mgmt CPU % | "
  "idle before / others during |")
P("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in T_ROWS:
    n = r["name"]
    if n == "testpmd-alone":
        P(f"| `testpmd-alone` | dpdk-testpmd io, memif pair looped inside testpmd (`--tx-first`), no generator | – | 64 | "
          f"– | – | **{mpps(r['dut_mpps'])}** | – | – | – | – | – | – | – | {load_note(n)} |")
        continue
    P(f"| `{n}` | {DUT_DESC[n]} | {ints(r['flows'])} | {r['pkt_size']} | {mpps(r['up_mpps'])} | "
      f"{mpps(r['down_mpps'])} | {through_cell(r)} | {ratio_cell(r, 'ratio')} | {ratio_cell(r, 'ratio_alone')} | "
      f"{fnum(r.get('busy_cycles_per_pkt'), 0)} | {mpps(r.get('capacity_mpps'))} | {mpps(r['gen_tx_refused_mpps'])} | "
      f"{r['loss_up_pkts']} / {r['loss_down_pkts']} | {fnum(r.get('mgmt_cpu_pct'), 2)} | {load_note(n)} |")
P("")
P("*gen TX refused*: frames the memif ring toward the DUT had no room for — the generator "
  "offered more than the DUT took, so a run with refusals is DUT-bound. The generator is one "
  "lcore doing both ends (subscribers and servers): "
  + (f"`{LOOP_NAME}` ({mpps(LOOP_MPPS)} Mpps) is its own ceiling with no DUT "
     "(the same four memif operations per round trip as with a DUT). " if LOOP_NAME else "")
  + ("`testpmd-alone` is testpmd's per-core forwarding rate on memif with no generator in the loop. "
     if ALONE_MPPS is not None else "")
  + "*busy cycles/pkt*, *capacity*: the DUT's own accounting (pgw's runtime accounting; testpmd's "
  "`--record-core-cycles`), split below; *mgmt CPU*: the share of one CPU "
  "pgw's management thread used during the run. *≥ x (generator-bound)*: the DUT carried all the "
  "generator could offer; read its capacity instead.")
P("")
for r in T_ROWS:
    if r["kind"] == "throughput" and r["drops"] is not None:
        dr = ", ".join(f"{k} {v}" for k, v in r["drops"].items()) or "none"
        P(f"- `{r['name']}` pgw drops: {dr}; open flows at the end: {r['open_flows']}")
P("")

# ------------------------------------------------------------------ cost per packet
P("### Cost per packet: device I/O and engine")
P("")
P("Busy cycles per packet split by the runtime accounting's stages: **device I/O** = the stages "
  "`rx` and `tx` (the PMD's bursts; on memif they copy every frame across cores, so they cost far "
  "more here than on a NIC), **engine** = every other stage (parse, the GW stages, dispatch, "
  "handoff, expiry, mgmt_tx, arp, other); *GW stages* = parse + gw_lookup + gw_open + rewrite + "
  "accounting (older runs: parse + gw), part of the engine. *Engine capacity* = TSC Hz ÷ engine "
  "cycles: what a worker would carry if device I/O cost nothing. *testpmd* = the ceiling's own busy "
  f"cycles per packet (`{CEIL_NAME or 'testpmd-1k'}`, `--record-core-cycles`: all of it device I/O and "
  "the io loop; 64 B frames, so compare it with the 64 B rows); *testpmd ÷ pgw* = its busy cycles over "
  "pgw's (1 = as cheap as testpmd io). Rows "
  "at very different *vectors/call* (below) are not comparable: a small batch carries more of the "
  "per-burst cost.")
P("")
P("| run | frame | busy % | **busy cycles/pkt** | device I/O (rx + tx) | engine | of which GW stages | busy ns/pkt | "
  "capacity Mpps | engine capacity Mpps | testpmd busy cycles/pkt | testpmd ÷ pgw |")
P("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in T_ROWS:
    if r["kind"] == "ceiling" and r.get("busy_cycles_per_pkt") is not None:
        P(f"| `{r['name']}` | {r['pkt_size']} | – | **{fnum(r['busy_cycles_per_pkt'], 0)}** | – | – | – | – | "
          f"{mpps(r['capacity_mpps'])} | – | {fnum(r['busy_cycles_per_pkt'], 0)} | 1.00 |")
    elif r["kind"] == "throughput":
        timed_note = " (stages untimed)" if r.get("runtime_timed") is False else ""
        P(f"| `{r['name']}` | {r['pkt_size']} | {fnum(r.get('busy_pct'))} | **{fnum(r.get('busy_cycles_per_pkt'), 0)}** | "
          f"{fnum(r.get('io_cycles_per_pkt'), 0)}{timed_note} | {fnum(r.get('engine_cycles_per_pkt'), 0)} | "
          f"{fnum(r.get('gw_cycles_per_pkt'), 0)} | {fnum(to_ns(r.get('busy_cycles_per_pkt'), r.get('tsc_hz')))} | "
          f"{mpps(r.get('capacity_mpps'))} | {mpps(r.get('engine_capacity_mpps'))} | "
          f"{fnum(r.get('ceiling_busy_cycles_per_pkt'), 0)} | {fnum(r.get('busy_cycles_ratio'), 2)} |")
P("")


def cost_paragraph(what, cost, pct, how, minuend, subtrahend, caveat, missing):
    """A measured cost per packet (signed, with its share) in bold, or what measuring it needs."""
    if cost is None:
        P(f"{what}: not measured ({missing}).")
    else:
        signed = f"{cost:+.1f} cycles/packet ({pct:+.1f} %)".replace("-", "−")
        eq = f"{fnum(minuend, 1)} − {fnum(subtrahend, 1)} = " if minuend is not None else ""
        P(f"**{what}** ({how}): {eq}**{signed}**. {caveat}")
    P("")


cost_paragraph("Cost of the runtime accounting", ACCT_COST, ACCT_COST_PCT,
               "`gw-1k` timed vs `gw-1k-untimed`, `engine.runtime_stages = false`; "
               "busy cycles per packet are measured either way", _timed, _untimed,
               "Two separate runs: the device I/O over memif alone moves between runs by up to 4× on this VM "
               "(see the scrape cost below), so only a difference that repeats across runs is a cost.",
               "needs `gw-1k` and `gw-1k-untimed` with their runtime files")
_pairs_txt = ", ".join(f"{fnum(a['engine_cycles_per_pkt'], 0)} / {fnum(b['engine_cycles_per_pkt'], 0)}"
                      for a, b in SCRAPE_PAIRS)
cost_paragraph("Cost of a Prometheus scrape every second", SCRAPE_COST, SCRAPE_COST_PCT,
               f"`gw-1k-scraped`: the `gw-1k` profile with `[metrics]`, its window cut into 1-s segments, "
               "alternately not scraped and scraped by `curl` fetching `/metrics` at the segment's start; engine "
               f"cycles per packet (busy minus device I/O) of each segment; the median over {len(SCRAPE_PAIRS)} "
               "pairs of scraped minus not scraped", None, None,
               f"Pairs, not scraped / scraped: {_pairs_txt}; medians {fnum(_unscraped, 1)} / {fnum(_scraped, 1)}. "
               "The same in whole busy cycles, device I/O included: "
               f"{fnum(SCRAPE_BUSY_COST, 1)} cycles/packet. The management thread (pinned to CPU 0 by the bench "
               "profiles, as is `curl`) answers the scrape from the counters the workers publish; a difference "
               "within the pairs' spread is noise, not a cost.",
               "needs `gw-1k-scraped` with its segment files (`scripts/bench.sh --only gw-1k-scraped`)")
if any(r["kind"] == "throughput" and len(r.get("runtime_workers") or []) > 1 for r in T_ROWS):
    P("*capacity* of a row with several workers is workers × TSC Hz ÷ the busy cycles per packet of them all "
      "(the engine's `total.capacity_mpps`).")
    P("")
lk = plot_link("table_size.svg", "Mpps through pgw, capacity and cycles per packet against table size")
if lk:
    P(lk)
    P("")
    P("Mpps through pgw and its capacity against the number of connections (1 k → 16 M), with the "
      "testpmd ceiling and the generator's loopback rate as reference lines; below, busy and engine-only "
      "cycles per packet, with testpmd's busy cycles per packet as a line.")
    P("")

# ------------------------------------------------------------------ runtime
rt_rows = [r for r in T_ROWS + C_ROWS if r["kind"] in ("throughput", "cps") and r.get("stages")]
rt_rows = [r for r in rt_rows if r["kind"] == "throughput" or r.get("phase") == "churn"]
P("## Where the cycles go (engine runtime accounting)")
P("")
if rt_rows:
    P("Per pgw run, `pgw stats --runtime` over the measurement window, in the style of VPP's `show runtime`: "
      "*calls* = times the stage ran, *vectors* = packets it handled, *cycles/vector* = its cycles per "
      "packet it handled, *vectors/call* = packets per call (the batch), *cycles per packet through* = its "
      "cycles over all packets the worker handled (these add up to busy cycles/packet); *part*: device I/O, "
      "engine, or engine / GW stage.")
    P("")

    def part(n):
        return "device I/O" if n in IO_STAGES else "engine / GW" if n in GW_STAGES else "engine"

    for r in rt_rows:
        P(f"### `{r['name']}`")
        P("")
        hz = r.get("tsc_hz")
        split = (f" = device I/O {fnum(r['io_cycles_per_pkt'], 0)} + engine {fnum(r['engine_cycles_per_pkt'], 0)} "
                 f"(GW stages {fnum(r['gw_cycles_per_pkt'], 0)})" if r.get("io_cycles_per_pkt") is not None else "")
        P(f"busy {fnum(r.get('busy_pct'))} % of the window"
          + (f" (TSC {hz / 1e9:.3f} GHz)" if hz else "")
          + f"; **{fnum(r.get('busy_cycles_per_pkt'), 0)} busy cycles/packet**{split}; capacity "
            f"**{mpps(r.get('capacity_mpps'))} Mpps**"
          + (f" (engine alone {mpps(r['engine_capacity_mpps'])})" if r.get("engine_capacity_mpps") is not None else "")
          + f"; through the DUT {mpps(r.get('dut_mpps'))} Mpps"
          + (" (generator-bound)" if r.get("generator_bound") else "") + ".")
        if r.get("runtime_timed") is False:
            P("")
            P("Stage timing off (`engine.runtime_stages = false`): calls and packets only.")
        if r.get("runtime_workers") and len(r["runtime_workers"]) > 1:
            P("")
            P("Per worker: " + "; ".join(
                f"worker {x['worker']} (lcore {x['lcore']}): busy {fnum(x['busy_pct'])} %, "
                f"{ints(x['packets'])} packets, {fnum(x['busy_cycles_per_pkt'], 0)} cycles/pkt, "
                f"capacity {mpps(x['capacity_mpps'])} Mpps"
                for x in r["runtime_workers"]))
        P("")
        P("| stage | part | calls | vectors | cycles/vector | vectors/call | cycles per packet through |")
        P("|---|---|---|---|---|---|---|")
        timed = r.get("runtime_timed") is not False
        for s in r["stages"]:
            cv = fnum(s['cycles_per_pkt']) if timed else "–"
            ct = fnum(s['cycles_per_pkt_through']) if timed else "–"
            P(f"| {s['name']} | {part(s['name'])} | {int(s['calls']):,} | {int(s['packets']):,} | {cv} | "
              f"{fnum(s['pkts_per_call'])} | {ct} |")
        P("")
else:
    P("No `NAME.runtime.json` in this run (the engine's runtime accounting was not recorded).")
    P("")

# ------------------------------------------------------------------ cps
P("## New connections")
P("")
P("| run | what | concurrent slots | handshakes/s (SYN → SYN-ACK through pgw) | completed/s | busy % | "
  "busy cycles/pkt | busy cycles/connection | **capacity, connections/s per worker** | pgw new flows (total) | "
  "loss up / down | idle before / others during |")
P("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in C_ROWS:
    n = r["name"]
    nc = r["new_conns_per_s"]
    if r["phase"] == "open":
        P(f"| `{n}` | {CPS_DESC[n]} | {ints(r['flows'])} | **{fnum((nc or 0) / 1e6, 3)} M/s** "
          f"({(r['opened'] or 0):,} in {fnum(r['open_seconds'], 2)} s) | – | – | – | – | – | {event(n, 'gw_new_flows')} | "
          f"{r['loss_up_pkts']} / {r['loss_down_pkts']} | {load_note(n)} |")
    else:
        cc = r.get("conn_capacity_per_s")
        P(f"| `{n}` | {CPS_DESC[n]} | {ints(r['flows'])} | "
          f"**{('≥ ' if r['generator_bound'] else '') + fnum(m(nc), 3)} M/s** | "
          f"{fnum(m(r['completed_per_s']), 3)} M/s | {fnum(r.get('busy_pct'))} | {fnum(r.get('busy_cycles_per_pkt'), 0)} | "
          f"{fnum(r.get('busy_cycles_per_conn'), 0)} | **{fnum(m(cc), 3)} M/s** | {event(n, 'gw_new_flows')} | "
          f"{r['loss_up_pkts']} / {r['loss_down_pkts']} | {load_note(n)} |")
P("")
P("*busy cycles/connection* = busy cycles per second of the runtime window ÷ handshakes per second "
  "(every packet of a connection included: SYN, SYN-ACK, then RST, or the data and FIN of `gw-mix`); "
  "*capacity* = TSC Hz ÷ that: the connections/s one worker would open if it never waited for the "
  "generator. The opening phases of the established runs are paced by the generator (SYN retries after 1 s). "
  "The SYN proxy's rows (`gw-synflood`) count as loss the SYNs the GW left unanswered (up) and what the servers "
  "sent that did not come back (down): the proxy answers every SYN itself, and the RST of a proxied handshake "
  "ends at the GW by design.")
P("")

# ------------------------------------------------------------------ latency
P("## Latency")
P("")
P("Up one-way = generator access TX → DUT → generator servers RX (one pass through the DUT); round "
  "trip = up, reflection, down back to the access port (two passes). TSC stamps in the payload, "
  "HdrHistogram, every packet of the window. `gw-lat-<pct>` offers <pct> % of the up rate `gw-1k` "
  "sustained flat out; `gw-1k` itself is the 100 % point. The **baseline** `testpmd-lat-<pct>` is "
  "dpdk-testpmd io through the same generator at the same offered rate: what the generator, memif "
  "and a minimal forwarder take. **Added** = pgw's one-way percentile minus the baseline's: what pgw "
  "itself adds (a difference of percentiles: an estimate, it can be slightly negative in noise).")
P("")
if L_ROWS:
    P("| run | DUT | load | up Mpps offered / through | one-way p50 / p99 / p99.9 / max µs | "
      "baseline p50 / p99 / p99.9 µs | **added p50 / p99 / p99.9 µs** | round trip p50 / p99 / p99.9 / max µs | "
      "busy cycles/pkt | idle before / others during |")
    P("|---|---|---|---|---|---|---|---|---|---|")
for r in L_ROWS:
    def q(keys):
        vals = [r.get(k) for k in keys]
        return " / ".join(fnum(v) for v in vals) if any(v is not None for v in vals) else "–"
    P(f"| `{r['name']}` | {'pgw' if r['dut'] == 'pgw' else 'dpdk-testpmd io (baseline)'} | {r['load_pct']} % | "
      f"{mpps(r['up_offered_mpps'])} / {mpps(r['up_mpps'])} | {q(('p50_us', 'p99_us', 'p999_us', 'max_us'))} | "
      f"{q(('baseline_p50_us', 'baseline_p99_us', 'baseline_p999_us'))} | "
      f"{q(('added_p50_us', 'added_p99_us', 'added_p999_us'))} | "
      f"{q(('rtt_p50_us', 'rtt_p99_us', 'rtt_p999_us', 'rtt_max_us'))} | {fnum(r.get('busy_cycles_per_pkt'), 0)} | "
      f"{load_note(r['name'])} |")
if not L_ROWS:
    P("No latency runs in this report.")
P("")
lk = plot_link("latency.svg", "one-way latency percentiles against offered load, pgw and the testpmd baseline")
if lk:
    P(lk)
    P("")

# ------------------------------------------------------------------ memory
P("## Memory")
P("")
P("pgw's worker allocates its tables once at start, sized by connection capacity "
  "(`gw.max_flows_per_worker` per worker; see `ARCHITECTURE.md`, *Memory*), in hugepages when EAL has "
  "them (the heap otherwise); mbufs and rings are in hugepages too. *RSS* is pgw's peak (VmHWM) while "
  "the run's connections were open (hugepages are not part of it); *hugepages* = pgw's own hugepages, "
  "the peak of `Private_Hugetlb` + `Shared_Hugetlb` in `/proc/<pgw>/smaps_rollup` over the run (rows "
  "marked † are from runs before that was recorded: the drop of the machine's HugePages_Free from just "
  "before pgw started to its lowest point, which also counts what other processes took meanwhile); "
  "*machine drop* = that drop, for comparison; *total* = RSS + pgw's hugepages. Bytes per connection = "
  "total ÷ capacity.")
P("")
P("| run | pool addresses | keys | connection capacity | open connections | RSS peak MiB | hugepages MiB | "
  "**total MiB** | bytes per connection | machine drop MiB |")
P("|---|---|---|---|---|---|---|---|---|---|")
for r in M_ROWS:
    mark = "" if r.get("hugepage_source") == "process" else " †"
    P(f"| `{r['name']}` | {r['pool_addrs']} | {r['keys']:,} | {r['capacity_conns']:,} | {ints(r['open_flows'])} | "
      f"{r['rss_bytes'] / 2**20:.0f} | {r['hugepage_bytes'] / 2**20:.0f}{mark} | **{r['total_bytes'] / 2**20:.0f}** | "
      f"{r['bytes_per_conn']:.0f} | {r.get('machine_hugepage_drop_bytes', 0) / 2**20:.0f} |")
if MARGINAL is not None:
    a = min(M_ROWS, key=lambda r: r["capacity_conns"])
    b = max(M_ROWS, key=lambda r: r["capacity_conns"])
    P("")
    P(f"Marginal cost: **{MARGINAL:.0f} bytes per connection** of capacity (total of `{b['name']}` minus "
      f"`{a['name']}`, over the difference in capacity); 16 M connections at that rate: "
      f"{MARGINAL * 16e6 / 2**30:.2f} GiB. A key is (pool address, 16-bit port): 16 M connections need "
      "256 pool addresses, the most `GwConfig::MAX_POOL` allows.")
P("")

# ------------------------------------------------------------------ e2e
P("## End to end (real TCP stacks)")
P("")
if E_ROWS:
    P("Medians over the repetitions (each config's `e2e-<config>.json` has every repetition). "
      "Ratio rows: pgw-afxdp's median over the other config's, per metric (for retransmissions and "
      "p99 lower is better, so a ratio < 1 favours pgw there).")
    P("")
    P("| config | DUT | " + " | ".join(h for _, h, *_ in E2E_METRICS) + " | drops (veth / DUT) |")
    P("|---|---|" + "---|" * len(E2E_METRICS) + "---|")
    for r in E_ROWS:
        cells = []
        for k, _, sc, nd in E2E_METRICS:
            cells.append(fnum(r[k] * sc if r[k] is not None else None, nd))
        dd = ", ".join(f"{k} {v}" for k, v in (r["dut_drops"] or {}).items() if v) or "none"
        P(f"| `{r['config']}` | {r['dut']} | " + " | ".join(cells)
          + f" | {r['veth_drops'] if r['veth_drops'] is not None else '–'} / {dd if r['dut_drops'] is not None else '–'} |")
    pg = next((r for r in E_ROWS if r["config"] == "pgw-afxdp"), None)
    if pg:
        for key, label in (("vs_testpmd", "pgw / testpmd-afxdp"), ("vs_kernel_nat", "pgw / kernel-nat")):
            rr = pg.get(key)
            if rr:
                P(f"| *{label}* | ratio | " + " | ".join(fnum(rr.get(k), 2) for k, *_ in E2E_METRICS) + " | |")
    P("")
    for r in E_ROWS:
        notes = " ".join(x for x in (r.get("notes"), r.get("loss_notes")) if x)
        if notes:
            P(f"- `{r['config']}`: {notes}")
    P("")
    lk = plot_link("e2e.svg", "end-to-end metrics per config")
    if lk:
        P(lk)
        P("")
else:
    P("No `e2e-<config>.json` in this run.")
    P("")

# ------------------------------------------------------------------ criterion
P("## Pipeline stages (criterion, ns per packet)")
P("")
if CR_ROWS:
    P("Each iteration copies the next frames into their buffers (stages rewrite in place) and runs the "
      "stage on them; frames rotate over the flows in a strided order. criterion times an *iteration*: "
      "a `gw data` iteration is a burst of 32 packets (its `throughput` in elements), so **ns per "
      "packet** = the iteration's mean ÷ 32; `gw new connection` is per connection (its SYN and the RST "
      "that closes it); the others one packet per iteration. No device I/O here: the stage alone.")
    P("")
    P("| bench | elements / iteration | mean ns / iteration | **ns per element** | median ns | 95 % CI ns | "
      "≈ M elements/s on one core |")
    P("|---|---|---|---|---|---|---|")
    for r in CR_ROWS:
        P(f"| {r['name']} | {r['elements']} | {r['iter_mean_ns']:.1f} | **{r['mean_ns']:.1f}** | {r['median_ns']:.1f} | "
          f"{r['ci_low_ns']:.1f}–{r['ci_high_ns']:.1f} | {r['est_mpps']:.1f} |")
elif os.path.exists(os.path.join(OUT, "criterion.log")):
    P("criterion ran in test mode (smoke): each bench once, no timing.")
else:
    P("No `criterion/` in this run (`--no-criterion`, or not copied).")
P("")

# ------------------------------------------------------------------ profiles
perf_txt = text("gw-1k", "perf.txt")
cg = {b: text("callgrind", f"{b}.txt") for b in ("up", "down")}
if perf_txt or any(cg.values()):
    P("## Where the time goes (profilers)")
    P("")
    P("`perf stat -e instructions` is not supported in this VM (no hardware counters), so: "
      "`perf record -e cpu-clock` (a software timer) on the running pgw, and callgrind "
      "(instruction counts) on the criterion benches.")
    P("")
if perf_txt:
    P("pgw during `gw-1k`, `perf report --no-children --sort symbol`:")
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
P("Binaries from `CARGO_TARGET_DIR=target/perf cargo build --release -p pgw-perf -p pgw-engine`. A profile "
  "under `perf/out/<mode>/` (`NAME.toml`) is a variant bench.sh wrote next to the results: the `configs/` "
  "profile with one `[engine]` key more, marked `# bench.sh variant` (`gw-1k-untimed`: "
  "`runtime_stages = false`).")
P("")
for name in runs():
    P(f"- `{name}`:")
    P("  ```")
    for line in text(name, "cmd").splitlines():
        P("  " + line)
    P("  ```")
for r in E_ROWS:
    if r["command"]:
        P(f"- `{r['name']}`:")
        P("  ```")
        for line in r["command"].splitlines():
            P("  " + line)
        P("  ```")

# ------------------------------------------------------------------ history
# perf/HISTORY.md is written by hand (what changed between runs and why):
# included as it is, last (its own headings follow no section of ours).
HISTORY = os.path.join(HERE, "HISTORY.md")
if os.path.exists(HISTORY):
    P("")
    P(open(HISTORY).read().rstrip("\n"))
    P("")

print("\n".join(out))
