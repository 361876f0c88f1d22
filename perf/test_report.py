#!/usr/bin/env python3
"""Self-test of the report chain (report.py -> RESULTS.json -> check_results.py,
plots.py) on run files made up here, in a temporary folder. Nothing written
here is a result; it checks the arithmetic and the layout:

  * a complete run with bench.sh's run names (every optional input present):
    every kind of row, the generator-bound rule, added latency over the
    baseline, capacity from the runtime accounting, device I/O vs engine
    cycles, testpmd's busy cycles, the accounting's cost, criterion per
    packet, the targets, perf/HISTORY.md, management CPU, e2e ratios, plots
    when matplotlib is there, every field named in perf/README.md;
  * an old run (no runtime, mgmt, baseline, loopback, e2e or criterion files):
    the report is still written and still passes the check;
  * check_results.py names the row and the field that is missing.

Usage: python3 perf/test_report.py    (scripts/test.sh runs it)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, HERE)
import results_schema as S  # noqa: E402

FAILS = []


def ok(cond, what):
    if not cond:
        FAILS.append(what)
        print(f"FAIL: {what}")


def close(a, b, what, tol=1e-6):
    ok(a is not None and b is not None and abs(a - b) <= tol * max(1, abs(b)), f"{what}: {a} != {b}")


def gen(conns=1000, size="64", through=3.2e6, refused=5e6, rate=0.0, mode="established", lat=None,
        hs=0.0, done=0.0):
    half = through / 2
    h = lat or {"count": 0}
    rtt = {k: (v * 2 if k != "count" else v) for k, v in h.items()}
    return {
        "mode": mode, "connections": conns, "subs": conns, "conns_per_sub": 1, "udp_pct": 0, "size": size,
        "mean_wire_bytes": 64.0 if size == "64" else 353.8, "rate_asked": rate, "queues": 1,
        "tsc_hz": 2445000000, "interrupted": False,
        "open": None if mode == "cps" else {"opened": conns, "seconds": conns / 450000, "resent": 0,
                                             "per_s": 450000.0},
        "window": {"seconds": 5.0, "up_tx_pps": half, "up_rx_pps": half, "down_tx_pps": half,
                   "down_rx_pps": half, "dut_pps": through, "up_tx_bps": 0, "down_rx_bps": 0,
                   "handshakes_per_s": hs, "completed_per_s": done, "tx_refused_ps": refused, "counters": {}},
        "latency_rtt": rtt, "latency_up_oneway": h,
        "loss": {"up": 100, "down": 20, "up_pct": 0.0, "down_pct": 0.0},
        "pending_left": 0,
        "totals": {"acc_rx": 1, "srv_rx": 1, "acc_mismatch": 0, "acc_bad_csum": 0},
    }


def lat(p50, p99, p999):
    return {"count": 1000, "mean_us": p50, "p50_us": p50, "p90_us": p99 / 2, "p99_us": p99, "p999_us": p999,
            "max_us": p999 * 2}


HZ = 2445000000
PK = 20000000


def runtime(bcpp, workers=1, timed=True, old_stages=False):
    """pgw stats --runtime --json: stages rx 30 + parse 40 + gw_lookup (bcpp - 150) + rewrite 50 + tx 30
    cycles/packet, and expiry 1e6 cycles per worker (no packets): device I/O 60, GW stages bcpp - 60.
    old_stages: the stages of older code, rx 30 + gw (bcpp - 100) + dispatch 20 + tx 30, other 1e6."""
    hz = HZ
    pk = PK
    ws = []
    per = (("rx", 30.0), ("gw", bcpp - 100), ("dispatch", 20.0), ("tx", 30.0)) if old_stages else \
        (("rx", 30.0), ("parse", 40.0), ("gw_lookup", bcpp - 150), ("rewrite", 50.0), ("tx", 30.0))
    for i in range(workers):
        stages = [{"name": n, "calls": 100000, "packets": pk // workers, "cycles": (c * pk / workers) if timed else 0,
                   "cycles_per_pkt": c if timed else 0.0, "pkts_per_call": (pk / workers) / 100000}
                  for n, c in per]
        stages.append({"name": "other" if old_stages else "expiry", "calls": 5000, "packets": 0,
                       "cycles": 1e6 if timed else 0, "cycles_per_pkt": 0.0, "pkts_per_call": 0.0})
        ws.append({"worker": i, "lcore": 1 - i, "turns": 200000, "busy_turns": 100000, "cycles": 1.2e10,
                   "busy_cycles": bcpp * pk / workers, "busy_pct": 100 * bcpp * pk / workers / 1.2e10,
                   "packets": pk // workers, "busy_cycles_per_pkt": bcpp, "capacity_mpps": hz / bcpp / 1e6,
                   "stages": stages})
    return {"tsc_hz": hz, "window_s": 5.0, "timed": timed, "workers": ws,
            "total": {"packets": pk, "busy_cycles": bcpp * pk, "busy_cycles_per_pkt": bcpp,
                      "capacity_mpps": workers * hz / bcpp / 1e6}}


def testpmd_runtime(bcpp):
    """What bench.sh's run_testpmd makes of testpmd's --record-core-cycles."""
    return {"source": "testpmd --record-core-cycles (busy cycles of its forwarding bursts)", "tsc_hz": HZ,
            "window_s": 5.0, "timed": True, "workers": [],
            "total": {"packets": PK, "busy_cycles": int(bcpp * PK), "busy_cycles_per_pkt": bcpp,
                      "capacity_mpps": HZ / bcpp / 1e6}}


def dut_json(conns):
    return {"workers": [{"drops": [["tx_full", 2016], ["no_session", 0]],
                         "events": [["gw_open_flows", conns], ["gw_new_flows", conns]]}]}


def write(d, name, ext, v):
    with open(os.path.join(d, f"{name}.{ext}"), "w") as f:
        f.write(v if isinstance(v, str) else json.dumps(v))


def pgw_run(d, name, profile, g, bcpp=None, workers=1, mgmt=True, extras=True, variant=None, timed=True,
            old_stages=False):
    """As bench.sh's run_gw; variant: one [engine] key more, in NAME.toml next to the run (engine_variant)."""
    write(d, name, "json", g)
    ran = profile
    if variant:
        ran = os.path.join(d, f"{name}.toml")
        with open(os.path.join(ROOT, profile)) as f, open(ran, "w") as o:
            for line in f:
                o.write(line)
                if line.startswith("[engine]"):
                    o.write(variant + "   # bench.sh variant\n")
    write(d, name, "cmd", f"pgw-gen --cpu 0 ... --json {d}/{name}.json\npgw run --profile {ran}\n")
    write(d, name, "idle", "99\n")
    write(d, name, "foreign", "3 0\n")
    write(d, name, "dut.json", dut_json(g["connections"]))
    mem = {"hp_free_mb_before_dut": 1000, "hp_free_mb_min_during": 922, "hp_free_mb_end": 1000,
           "dut_rss_kb": 66000, "dut_hwm_kb": 66000 + g["connections"] // 6, "gen_rc": 0}
    if name == "gw-16m":  # a run that recorded pgw's own hugepages
        mem["dut_hugetlb_kb"] = 1900 * 1024
    write(d, name, "mem.json", mem)
    if extras and bcpp:
        write(d, name, "runtime.json", runtime(bcpp, workers, timed, old_stages))
    if extras and mgmt:
        write(d, name, "mgmt.json", {"mgmt_cpu_ms": 12.0, "window_s": 6.0})


def other_run(d, name, g, cmd="dpdk-testpmd -l 0,1 --no-pci ..."):
    write(d, name, "json", g)
    write(d, name, "cmd", cmd + "\n")
    write(d, name, "idle", "100\n")
    write(d, name, "foreign", "1 0\n")


def criterion_bench(d, full_id, iter_mean_ns, elements):
    """What criterion leaves in target/criterion/<id>/new (bench.sh copies it)."""
    cdir = os.path.join(d, "criterion", *full_id.split("/"), "new")
    os.makedirs(cdir)
    json.dump({"mean": {"point_estimate": iter_mean_ns,
                        "confidence_interval": {"lower_bound": iter_mean_ns * 0.99, "upper_bound": iter_mean_ns * 1.01}},
               "median": {"point_estimate": iter_mean_ns * 0.995}}, open(os.path.join(cdir, "estimates.json"), "w"))
    group, fn, *value = full_id.split("/")
    json.dump({"group_id": group, "function_id": fn, "value_str": value[0] if value else None,
               "throughput": {"Elements": elements}, "full_id": full_id, "title": full_id},
              open(os.path.join(cdir, "benchmark.json"), "w"))


# criterion, ns per iteration of a 32-packet burst: per packet up 50 / 75 / 90 ns
# and down 70 / 110 / 140 ns at 1 k / 1 M / 16 M flows.
CRIT_GW = {("up", 1000): 1600.0, ("up", 1000000): 2400.0, ("up", 16000000): 2880.0,
           ("down", 1000): 2240.0, ("down", 1000000): 3520.0, ("down", 16000000): 4480.0}


def make_full(d):
    """Every run of bench.sh's full suite, with its run names."""
    other_run(d, "gen-loopback", gen(through=14.75e6, refused=0), "pgw-gen --loopback --cpu 0 ...")
    other_run(d, "testpmd-1k", gen(through=4.78e6, refused=0.39e6))
    write(d, "testpmd-1k", "runtime.json", testpmd_runtime(300.0))
    write(d, "testpmd-alone", "cmd", "timeout -s INT 8 dpdk-testpmd --no-pci ...\n")
    write(d, "testpmd-alone", "dut.log", "".join(f"Rx-pps: {v}\n" for v in (1, 1, 17000000, 17290000, 17000000, 17290000)))
    pgw_run(d, "gw-1k", "configs/bench-gw-memif.toml", gen(through=3.19e6, lat=lat(577, 2534, 4997)), bcpp=450.0)
    pgw_run(d, "gw-1k-untimed", "configs/bench-gw-memif.toml", gen(through=3.3e6), bcpp=460.0,
            variant="runtime_stages = false", timed=False)
    pgw_run(d, "gw-1k-scraped", "configs/bench-gw-memif.toml", gen(through=3.2e6), bcpp=455.0)
    # its segments: counters read at 5 boundaries (2 pairs); per segment
    # (packets, busy cycles, rx+tx cycles): engine 400 / 410, then 600 / 596
    segs = [(1000, 500e3, 100e3), (2000, 510e3, 100e3), (1000, 700e3, 100e3), (1000, 696e3, 100e3)]
    acc = [0, 0, 0]
    for i in range(len(segs) + 1):
        pk, bc, io = acc
        write(d, "gw-1k-scraped", f"seg{i}.json", {"tsc_hz": HZ, "workers": [
            {"worker": 0, "packets": pk, "busy_cycles": bc,
             "stages": [{"name": "rx", "cycles": io / 2}, {"name": "parse", "cycles": 7},
                        {"name": "tx", "cycles": io / 2}]}]})
        if i < len(segs):
            acc = [a + b for a, b in zip(acc, segs[i])]
    # flat out, no refusals, at the generator's loopback rate: generator-bound
    pgw_run(d, "gw-1m", "configs/bench-gw-memif-1m.toml", gen(1000000, through=14.0e6, refused=0), bcpp=700.0)
    # the stages of older code (one `gw` stage)
    pgw_run(d, "gw-4m", "configs/bench-gw-memif-4m.toml", gen(4000000, through=1.84e6), bcpp=900.0, old_stages=True)
    pgw_run(d, "gw-16m", "configs/bench-gw-memif-16m.toml", gen(16000000, through=1.5e6), bcpp=1100.0)
    pgw_run(d, "gw-1k-2w", "configs/bench-gw-memif-2w.toml", gen(through=2.37e6), bcpp=480.0, workers=2)
    pgw_run(d, "gw-1k-imix", "configs/bench-gw-memif.toml", gen(size="imix", through=2.11e6), bcpp=600.0)
    pgw_run(d, "gw-cps", "configs/bench-gw-memif-1m.toml", gen(65536, mode="cps", through=1.0e6, hs=503000, done=502000),
            bcpp=2000.0)
    # the SYN proxy's flood: every SYN answered by the GW, none reached a
    # server, each RST dropped (the generator's own loss counts both)
    sf = gen(65536, mode="cps", through=1.0e6, hs=1.0e6, done=1.0e6)
    sf["totals"].update(up_tx_by_kind={"syn": 5000000, "rst": 4999990}, synack_rx=4999990, srv_tx=0,
                        acc_rx=4999990)
    sf["loss"] = {"up": 10000000, "down": -4999990, "up_pct": 100.0, "down_pct": 0.0}
    pgw_run(d, "gw-synflood", "configs/bench-gw-memif-1m.toml", sf, bcpp=900.0)
    pgw_run(d, "gw-mix", "configs/bench-gw-memif-1m.toml",
            gen(65536, size="imix", mode="cps", through=1.3e6, hs=50000, done=190000), bcpp=1900.0)
    for pct, rate, p in ((10, 0.16, (2.5, 1462, 2676)), (50, 0.8, (2.0, 1303, 2385)), (90, 1.44, (7.5, 1182, 2508))):
        pgw_run(d, f"gw-lat-{pct}", "configs/bench-gw-memif.toml",
                gen(through=2 * rate * 1e6, refused=0, rate=rate, lat=lat(*p)), bcpp=800.0)
        other_run(d, f"testpmd-lat-{pct}", gen(through=2 * rate * 1e6, refused=0, rate=rate,
                                               lat=lat(p[0] / 2, p[1] / 4, p[2] / 4)))
        write(d, f"testpmd-lat-{pct}", "runtime.json", testpmd_runtime(600.0))
    # offered at the loopback rate: generator-bound whatever got through
    pgw_run(d, "gw-1k-1518", "configs/bench-gw-memif.toml", gen(size="1518", through=13.5e6, refused=0, rate=7.0),
            bcpp=450.0)
    med = {"kernel-route": 9.0, "kernel-nat": 6.0, "testpmd-afxdp": 8.0, "pgw-afxdp": 4.0}
    for cfg, v in med.items():
        reps = {"iperf_gbps": [v - 0.1, v, v + 0.1], "iperf_retrans": [0, 1, 2], "iperf_m536_pps": [v * 1e5] * 3,
                "http_close_cps": [v * 1000] * 3, "http_close_p99_ms": [1.0, 1.2, 1.4],
                "http_keepalive_rps": [v * 5000] * 3}
        write(d, f"e2e-{cfg}", "json", {
            "config": cfg, "dut": f"{cfg} box", "date": "2026-11-24T10:00:00+00:00",
            "commands": [f"iperf3 -c 10.0.0.1 # {cfg}", "wrk ..."], "reps": reps,
            "median": {k: sorted(x)[1] for k, x in reps.items()},
            "loss": {"veth_drops": 3, "dut_drops": {"tx_full": 2}, "notes": "made up"}, "notes": "made up"})
    for (direction, flows), ns in CRIT_GW.items():
        criterion_bench(d, f"gw data/{direction}/{flows} flows", ns, 32)
    criterion_bench(d, "gw new connection/SYN + RST (per connection)", 400.0, 1)
    criterion_bench(d, "wire/parse 64B TCP", 12.0, 1)
    write(d, "criterion", "cmd", "cargo bench -p pgw-perf --bench stages\n")


def make_old(d):
    """What an older bench.sh left: no runtime, mgmt, baseline, loopback, e2e, criterion."""
    other_run(d, "testpmd-1k", gen(through=4.78e6, refused=0.39e6))
    pgw_run(d, "gw-1k", "configs/bench-gw-memif.toml", gen(through=3.19e6, lat=lat(577, 2534, 4997)), extras=False)
    pgw_run(d, "gw-lat-50", "configs/bench-gw-memif.toml", gen(through=1.6e6, refused=0, rate=0.8, lat=lat(2, 1303, 2385)),
            extras=False)
    write(d, "broken", "cmd", "pgw-gen ... (the generator died: no JSON)\n")


def report(d, mode="full"):
    j, pl = os.path.join(d, "out", "RESULTS.json"), os.path.join(d, "out", "plots")
    p = subprocess.run([sys.executable, os.path.join(HERE, "report.py"), d, mode, "--json", j, "--plots", pl],
                       capture_output=True, text=True)
    ok(p.returncode == 0, f"report.py exit {p.returncode}: {p.stderr[-2000:]}")
    c = subprocess.run([sys.executable, os.path.join(HERE, "check_results.py"), j], capture_output=True, text=True)
    ok(c.returncode == 0, f"check_results.py on {d}: {c.stderr[-2000:]}")
    doc = json.load(open(j)) if os.path.exists(j) else {"meta": {}, "rows": []}
    return p.stdout, doc, j, pl


def get(doc, name, kind):
    return next((r for r in doc["rows"] if r["name"] == name and r["kind"] == kind), None)


def test_full(tmp):
    d = os.path.join(tmp, "full")
    os.makedirs(d)
    make_full(d)
    md, doc, j, pl = report(d)
    kinds = {r["kind"] for r in doc["rows"]}
    ok(kinds == set(S.KINDS), f"every kind present: {sorted(kinds)}")
    g1 = get(doc, "gw-1k", "throughput")
    close(g1["pgw_mpps"], 3.19, "gw-1k pgw_mpps")
    close(g1["ceiling_mpps"], 4.78, "gw-1k ceiling")
    close(g1["ratio"], 3.19 / 4.78, "gw-1k ratio")
    close(g1["busy_cycles_per_pkt"], 450.0, "gw-1k busy cycles")
    close(g1["capacity_mpps"], 2445000000 / 450 / 1e6, "gw-1k capacity")
    close(g1["mgmt_cpu_pct"], 0.2, "gw-1k mgmt cpu % (12 ms in 6 s)")
    close(g1["ceiling_alone_mpps"], 34.29, "testpmd alone from the log")
    ok(g1["generator_bound"] is False, "gw-1k is DUT-bound (refusals)")
    ok(g1["workers"] == 1 and g1["profile"] == "configs/bench-gw-memif.toml" and g1["runtime_timed"] is True,
       f"gw-1k context {g1['workers']} {g1['profile']} {g1['runtime_timed']}")
    ok("drain_variant" not in g1 and "variant" not in get(doc, "gw-lat-50", "latency"), "no drain variant fields")
    # device I/O (rx 30 + tx 30) vs engine (the rest, expiry's 1e6 cycles included)
    close(g1["io_cycles_per_pkt"], 60.0, "gw-1k device I/O cycles")
    close(g1["engine_cycles_per_pkt"], 450.0 - 60 + 1e6 / PK, "gw-1k engine cycles")
    close(g1["gw_cycles_per_pkt"], 450.0 - 60, "gw-1k GW stages (parse + gw_lookup + rewrite)")
    close(g1["engine_capacity_mpps"], HZ / (450.0 - 60 + 1e6 / PK) / 1e6, "gw-1k engine capacity")
    close(g1["ceiling_busy_cycles_per_pkt"], 300.0, "testpmd's busy cycles beside pgw's")
    close(g1["busy_cycles_ratio"], 300.0 / 450.0, "testpmd / pgw busy cycles")
    tp = get(doc, "testpmd-1k", "ceiling")
    close(tp["busy_cycles_per_pkt"], 300.0, "testpmd-1k busy cycles from its runtime.json")
    close(tp["capacity_mpps"], HZ / 300.0 / 1e6, "testpmd-1k capacity")
    close(doc["meta"]["ceiling_busy_cycles_per_pkt"], 300.0, "meta ceiling busy cycles")
    close(get(doc, "testpmd-lat-50", "latency")["busy_cycles_per_pkt"], 600.0, "baseline busy cycles")
    un = get(doc, "gw-1k-untimed", "throughput")
    ok(un is not None and un["runtime_timed"] is False and un["io_cycles_per_pkt"] is None
       and un["engine_cycles_per_pkt"] is None and un["profile"].endswith("gw-1k-untimed.toml"),
       f"untimed run: no split, its variant profile: {un and un['profile']}")
    close(un["busy_cycles_per_pkt"], 460.0, "untimed busy cycles")
    close(doc["meta"]["accounting_cost_cycles_per_pkt"], -10.0, "accounting cost (timed - untimed)")
    close(doc["meta"]["accounting_cost_pct"], -1000 / 460, "accounting cost %")
    ok("**−10.0 cycles/packet (−2.2 %)**" in md, "RESULTS.md: accounting cost line")
    # pairs (engine cycles/packet): 400 / 205, 600 / 596 -> differences -195, -4: median -99.5;
    # not scraped median 500; busy: 500 / 255, 700 / 696 -> -245, -4: -124.5
    close(doc["meta"]["scrape_cost_cycles_per_pkt"], -99.5, "scrape cost (median of paired differences)")
    close(doc["meta"]["scrape_cost_pct"], -99.5 / 5, "scrape cost %")
    close(doc["meta"]["scrape_cost_busy_cycles_per_pkt"], -124.5, "scrape cost in busy cycles")
    ok(doc["meta"]["scrape_pairs"] == 2 and [x["scraped"] for x in doc["meta"]["scrape_segments"]]
       == [False, True, False, True], f"scrape pairs: {doc['meta']['scrape_pairs']}")
    ok("**−99.5 cycles/packet (−19.9 %)**" in md and "400 / 205, 600 / 596" in md,
       "RESULTS.md: scrape cost line and its pairs")
    g4 = get(doc, "gw-4m", "throughput")
    close(g4["gw_cycles_per_pkt"], 800.0, "older stages: the GW stage is `gw`")
    close(g4["engine_cycles_per_pkt"], 820.0 + 1e6 / PK, "older stages: engine = gw + dispatch + other")
    ok("| `gw-1k` | 64 | 75.0 | **450** | 60 | 390 | 390 |" in md, "RESULTS.md: cost per packet table")
    ok("pgw run --profile" in g1["command"], "command from NAME.cmd")
    ok([s["name"] for s in g1["stages"]] == ["rx", "parse", "gw_lookup", "rewrite", "tx", "expiry"]
       and [s["name"] for s in g4["stages"]] == ["rx", "gw", "dispatch", "tx", "other"],
       f"stage order {[s['name'] for s in g1['stages']]}")
    close(sum(s["cycles_per_pkt_through"] for s in g1["stages"] if s["name"] != "expiry"), 450.0,
          "stages add up to busy cycles/packet")
    g2 = get(doc, "gw-1k-2w", "throughput")
    ok(g2["workers"] == 2 and len(g2["runtime_workers"]) == 2, "2 workers")
    ok(g2["stages"][0]["packets"] == 20000000, "stages summed over workers")
    gm = get(doc, "gw-1m", "throughput")
    ok(gm["generator_bound"] is True, "gw-1m: flat out, no refusals, at loopback rate -> generator-bound")
    ok("≥ 14.00** (generator-bound)" in md, "RESULTS.md writes ≥ x (generator-bound)")
    ok(get(doc, "gw-1k-1518", "throughput")["generator_bound"] is True, "offered at loopback rate -> generator-bound")
    ok(get(doc, "gen-loopback", "generator")["dut_mpps"] == 14.75, "loopback row")
    ok(get(doc, "testpmd-1k", "ceiling")["ceiling_mpps"] == 4.78, "ceiling row")
    ok(get(doc, "testpmd-alone", "ceiling") is not None, "testpmd-alone row")
    l50 = get(doc, "gw-lat-50", "latency")
    close(l50["baseline_p99_us"], 1303 / 4, "baseline p99")
    close(l50["added_p99_us"], 1303 - 1303 / 4, "added p99")
    close(l50["added_p50_us"], 1.0, "added p50")
    close(l50["added_p999_us"], 2385 - 2385 / 4, "added p99.9")
    ok(l50["baseline_run"] == "testpmd-lat-50", "baseline run named")
    ok(get(doc, "gw-lat-10", "latency")["baseline_run"] == "testpmd-lat-10", "gw-lat-10 pairs with testpmd-lat-10")
    ok(get(doc, "gw-1k", "latency")["baseline_run"] is None, "the 100 % point has no baseline")
    ok(get(doc, "testpmd-lat-50", "latency")["dut"] == "dpdk-testpmd", "baseline rows")
    ok(get(doc, "gw-1k", "latency")["load_pct"] == 100, "gw-1k at 100 % in the latency table")
    c = get(doc, "gw-cps", "cps")
    ok(c["new_conns_per_s"] == 503000 and c["phase"] == "churn", "cps churn row")
    # 2000 busy cycles x 20 M packets in a 5 s window, 503 000 handshakes/s
    close(c["busy_cycles_per_conn"], 2000.0 * PK / 5.0 / 503000, "busy cycles per connection")
    close(c["conn_capacity_per_s"], HZ * 503000 / (2000.0 * PK / 5.0), "connections/s per worker (capacity)")
    f = get(doc, "gw-synflood", "cps")
    ok((f["loss_up_pkts"], f["loss_down_pkts"]) == (10, 0), "SYN proxy run: SYNs unanswered, nothing down lost")
    ok(get(doc, "gw-1m", "cps")["new_conns_per_s"] == 450000.0, "opening phase row")
    ok(get(doc, "gw-1m", "cps")["capacity_mpps"] is None, "opening phase carries no window figures")
    m16 = get(doc, "gw-16m", "memory")
    ok(m16["keys"] == 256 * 64512 and m16["pool_addrs"] == 256, "16 M profile has 256 pool addresses")
    ok(m16["rss_bytes"] == (66000 + 16000000 // 6) * 1024 and m16["hugepage_bytes"] == 1900 * 2**20, "memory")
    ok(m16["hugepage_source"] == "process" and m16["machine_hugepage_drop_bytes"] == 78 * 2**20,
       "pgw's own hugepages preferred over the machine's drop")
    ok(m16["total_bytes"] == m16["rss_bytes"] + 1900 * 2**20, "memory total = RSS + hugepages")
    import tomllib
    cap16 = tomllib.load(open(os.path.join(ROOT, "configs", "bench-gw-memif-16m.toml"), "rb"))["gw"]["max_flows_per_worker"]
    ok(m16["capacity_conns"] == cap16, f"capacity from max_flows_per_worker: {m16['capacity_conns']} != {cap16}")
    close(m16["bytes_per_conn"], m16["total_bytes"] / cap16, "bytes per connection of capacity")
    m1k = get(doc, "gw-1k", "memory")
    ok(m1k["hugepage_source"] == "machine" and m1k["hugepage_bytes"] == 78 * 2**20,
       "runs without pgw's own hugepages fall back to the machine's drop")
    close(doc["meta"]["marginal_bytes_per_conn"], (m16["total_bytes"] - m1k["total_bytes"]) / (cap16 - 65536),
          "marginal bytes per connection")
    pg = get(doc, "e2e-pgw-afxdp", "e2e")
    close(pg["vs_testpmd"]["iperf_gbps"], 0.5, "e2e pgw / testpmd")
    close(pg["vs_kernel_nat"]["http_close_cps"], 4 / 6, "e2e pgw / kernel-nat")
    close(pg["ratio"], 0.5, "e2e ratio (MSS 536 pps)")
    ok(pg["loss_pkts"] == 5 and pg["new_conns_per_s"] == 4000, "e2e loss and conns")
    ok("iperf3 -c" in pg["command"], "e2e commands")
    ok("| *pgw / kernel-nat* |" in md, "e2e ratio rows in RESULTS.md")
    cr = get(doc, "gw data/up/1000000 flows", "criterion")
    ok(cr["flows"] == 1000000 and cr["elements"] == 32, "criterion row, 32 packets per iteration")
    close(cr["iter_mean_ns"], 2400.0, "criterion mean per iteration")
    close(cr["mean_ns"], 75.0, "criterion ns per packet = iteration / 32")
    close(cr["est_mpps"], 1e3 / 75.0, "criterion Mpps per packet")
    close(get(doc, "gw new connection/SYN + RST (per connection)", "criterion")["mean_ns"], 400.0,
          "criterion per connection (1 element)")
    ok("| gw data/up/1000000 flows | 32 | 2400.0 | **75.0** |" in md, "RESULTS.md: criterion per packet")
    # targets
    tg = {x["target"]: x for x in doc["meta"]["targets"]}

    def target(prefix):
        x = next((v for k, v in tg.items() if k.startswith(prefix)), None)
        ok(x is not None, f"target {prefix!r} listed")
        return x or {"value": None, "met": None, "rows": []}

    t = target("GW stages ≤ 100 ns/packet at 1 M flows")
    close(t["value"], (700.0 - 60) / (HZ / 1e9), "target: GW stages ns at 1 M")
    ok(t["met"] is False and t["rows"] == ["gw-1m"], "target: GW stages not met, from gw-1m")
    t = target("GW path ≤ 100 ns/packet at 1 M flows (criterion")
    close(t["value"], 110.0, "target: criterion worst of up 75 / down 110 ns")
    ok(t["met"] is False, "target: criterion 1 M not met (down 110 ns)")
    t = target("whole busy cost at 1 M flows")
    close(t["value"], HZ / 700.0 / 1e6, "target: capacity at 1 M")
    t = target("engine cycles/packet at 1 M ÷ at 1 k")
    close(t["value"], (700.0 - 60 + 1e6 / PK) / (450.0 - 60 + 1e6 / PK), "target: engine 1 M / 1 k")
    ok(t["met"] is False, "target: 1.64 > 1.6")
    t = target("ns/packet at 1 M ÷ at 1 k ≤ 1.6 (criterion")
    close(t["value"], 110.0 / 70.0, "target: criterion 1 M / 1 k, worst direction")
    ok(t["met"] is True, "target: criterion 1 M / 1 k met (1.5, 1.57)")
    # A missed target says why (from the run's figures) and what would close
    # it; a met one says neither.
    for x in doc["meta"]["targets"]:
        if x["met"] is False:
            ok(bool(x.get("why")) and bool(x.get("close")), f"target missed, why and close given: {x['target']}")
        else:
            ok(x.get("why") is None and x.get("close") is None, f"target met or unmeasured, no why: {x['target']}")
    t = target("GW stages ≤ 100 ns/packet at 1 M flows")
    ok("gw_lookup" in (t.get("why") or ""), "target: the 1 M miss is explained by the lookup stage")
    ok("*To close it*" in md, "RESULTS.md: the missed targets' reasons")
    t = target("ns/packet at 16 M ÷ at 1 k ≤ 1.8 (criterion")
    close(t["value"], 2.0, "target: criterion 16 M / 1 k")
    ok(t["met"] is False, "target: criterion 16 M / 1 k not met (2.0)")
    t = target("new connections/s per worker")
    close(t["value"], c["conn_capacity_per_s"] / 1e6, "target: connections/s capacity")
    ok("gw new connection/SYN + RST (per connection)" in t["rows"], "target: criterion per connection beside it")
    t = target("a SYN flood on the SYN proxy")
    close(t["value"], f["conn_capacity_per_s"] / c["conn_capacity_per_s"], "target: SYN flood vs connections")
    ok(t["met"] is True and t["group"] == "Hardening", "target: SYN flood 900 vs 2000 cycles, met")
    t = target("memory for 16 M")
    close(t["value"], m16["total_bytes"] / 2**30, "target: 16 M memory GiB")
    ok(t["met"] is False, "target: 16 M memory 2.68 GiB > 2 GiB")
    t = target("latency added over the baseline at 50 % load: p99 ")
    close(t["value"], 1303 - 1303 / 4, "target: added p99")
    ok(t["rows"] == ["gw-lat-50", "testpmd-lat-50"] and t["met"] is False, "target: latency rows")
    t = target("two workers")
    close(t["value"], 2 * 450.0 / 480.0, "target: 2 workers capacity ratio")
    ok(t["met"] is True, "target: 1.875 >= 1.8")
    t = target("new HTTP connections/s through pgw ≥ 1.2 × kernel-nat")
    close(t["value"], 4 / 6, "target: e2e vs kernel-nat")
    t = target("packets/s at MSS 536")
    close(t["value"], 0.5, "target: e2e MSS 536 vs testpmd")
    ok(all(x["met"] is not None for x in doc["meta"]["targets"]), "every target measured in a complete run")
    hist = os.path.join(HERE, "HISTORY.md")
    if os.path.exists(hist):
        ok(open(hist).read().strip() in md, "RESULTS.md includes perf/HISTORY.md as it is")
    ok("| rx | device I/O | 100,000 | 20,000,000 |" in md, "per-stage runtime table")
    try:
        import matplotlib  # noqa: F401
        have_mpl = True
    except ImportError:
        have_mpl = os.path.exists("/usr/bin/python3") and subprocess.run(
            ["/usr/bin/python3", "-c", "import matplotlib"], capture_output=True).returncode == 0
    if have_mpl:
        for f in ("table_size.svg", "latency.svg", "e2e.svg"):
            p = os.path.join(pl, f)
            ok(os.path.exists(p) and open(p).read().lstrip().startswith("<?xml"), f"plot {f}")
            ok(f"(plots/{f})" in md, f"RESULTS.md links plots/{f}")
        ok(doc["meta"]["plots"] == ["plots/table_size.svg", "plots/latency.svg", "plots/e2e.svg"],
           f"meta.plots {doc['meta']['plots']}")
    else:
        ok("matplotlib" in (doc["meta"]["plots_note"] or ""), "no matplotlib: the report says so")
        print("note: matplotlib not installed here: plots not checked")
    return j


def test_old(tmp):
    d = os.path.join(tmp, "old")
    os.makedirs(d)
    make_old(d)
    md, doc, j, pl = report(d)
    g1 = get(doc, "gw-1k", "throughput")
    ok(g1 is not None and g1["capacity_mpps"] is None and g1["generator_bound"] is None,
       "old run: no runtime, no loopback -> nulls")
    ok(get(doc, "gw-lat-50", "latency")["added_p99_us"] is None, "old run: no baseline")
    ok("No `NAME.runtime.json`" in md and "No `e2e-<config>.json`" in md, "old run: the report says what is missing")
    ok(doc["meta"]["targets"] and all(x["met"] is None for x in doc["meta"]["targets"]),
       "old run: every target listed, none measured")
    ok("– (not measured)" in md, "old run: RESULTS.md says not measured")


def test_check_names_missing_field(tmp, j):
    doc = json.load(open(j))
    victim = next(i for i, r in enumerate(doc["rows"]) if r["name"] == "gw-4m" and r["kind"] == "throughput")
    del doc["rows"][victim]["capacity_mpps"]
    doc["rows"][0]["pgw_mpps"] = "fast"
    bad = os.path.join(tmp, "bad.json")
    json.dump(doc, open(bad, "w"))
    c = subprocess.run([sys.executable, os.path.join(HERE, "check_results.py"), bad], capture_output=True, text=True)
    ok(c.returncode == 1, "check fails on a missing field")
    ok(f"row {victim} (gw-4m, kind throughput): missing field 'capacity_mpps'" in c.stderr,
       f"message names row and field: {c.stderr}")
    ok("field 'pgw_mpps' is str" in c.stderr, f"message names a wrong type: {c.stderr}")
    open(bad, "w").write("{not json")
    c = subprocess.run([sys.executable, os.path.join(HERE, "check_results.py"), bad], capture_output=True, text=True)
    ok(c.returncode == 1 and "not JSON" in c.stderr, "check fails on bad JSON")


def test_readme_documents_every_field():
    readme = open(os.path.join(HERE, "README.md")).read()
    names = {f[0] for f in S.COMMON + S.META} | {f[0] for v in S.KIND_FIELDS.values() for f in v}
    missing = sorted(n for n in names if not re.search(r"`" + re.escape(n) + r"`", readme))
    ok(not missing, f"perf/README.md documents every RESULTS.json field; missing: {missing}")


def main():
    tmp = tempfile.mkdtemp(prefix="pgw-report-test-")
    try:
        j = test_full(tmp)
        test_old(tmp)
        test_check_names_missing_field(tmp, j)
        test_readme_documents_every_field()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"report self-test: {'FAILED' if FAILS else 'ok'} ({len(FAILS)} failures)")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
