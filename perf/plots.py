#!/usr/bin/env python3
"""Draw the benchmark plots (SVG) from RESULTS.json with matplotlib.

Usage: python3 perf/plots.py RESULTS.json PLOTDIR
report.py calls it after writing RESULTS.json; by hand it redraws the plots of
any RESULTS.json. Prints {"written": [files], "skipped": {file: why}} on
stdout; exits 3 when matplotlib is missing.

  table_size.svg  Mpps through pgw and capacity against the number of
                  connections (gw-1k, gw-1m, gw-4m, gw-16m), with the testpmd
                  ceiling and the generator's loopback rate as lines; below,
                  busy and engine-only cycles/packet (device I/O excluded), with
                  testpmd's own busy cycles/packet as a line
  latency.svg     one-way p50 / p99 / p99.9 against offered load: pgw and the
                  testpmd baseline at the same offered rates
  e2e.svg         the e2e medians per config, one panel per metric, bars with
                  the range of the repetitions
"""
import json
import os
import sys

try:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter
except ImportError:
    print("plots.py: matplotlib is not installed (apt-get install python3-matplotlib)", file=sys.stderr)
    sys.exit(3)

PLOTS = ("table_size.svg", "latency.svg", "e2e.svg")
TABLE_RUNS = ["gw-1k", "gw-1m", "gw-4m", "gw-16m", "smoke-gw-1k"]
E2E_METRICS = [
    ("iperf_gbps", "iperf3 TCP, Gbit/s", 1),
    ("iperf_retrans", "iperf3 retransmissions", 1),
    ("iperf_m536_pps", "iperf3 MSS 536, kpps", 1e-3),
    ("http_close_cps", "HTTP close, connections/s", 1),
    ("http_close_p99_ms", "HTTP close p99, ms", 1),
    ("http_keepalive_rps", "HTTP keep-alive, requests/s", 1),
]

# Reproducible SVGs: no date, fixed element ids.
matplotlib.rcParams.update({
    "svg.hashsalt": "pgw-bench",
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
})


def save(fig, path):
    fig.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)


def human(n):
    for div, suf in ((1e6, " M"), (1e3, " k")):
        if n >= div:
            v = n / div
            return f"{v:.0f}{suf}" if v == int(v) else f"{v:.1f}{suf}"
    return f"{n:.0f}"


def table_size(meta, rows, path):
    pts = []
    for r in rows:
        if r["kind"] == "throughput" and r["name"] in TABLE_RUNS and r.get("pgw_mpps") is not None \
                and r.get("flows"):
            pts.append(r)
    if not pts:
        return "no throughput rows gw-1k / gw-1m / gw-4m / gw-16m"
    pts.sort(key=lambda r: r["flows"])
    x = [r["flows"] for r in pts]
    fig, (ax, ax2) = plt.subplots(2, 1, sharex=True, figsize=(7, 6), gridspec_kw={"height_ratios": [3, 2]})
    ax.plot(x, [r["pgw_mpps"] for r in pts], "o-", color="C0", label="pgw: Mpps through the DUT")
    gb = [r for r in pts if r.get("generator_bound")]
    if gb:
        ax.plot([r["flows"] for r in gb], [r["pgw_mpps"] for r in gb], "o", mfc="white", color="C0", ms=9,
                label="generator-bound (≥: the DUT could do more)")
    cap = [r for r in pts if r.get("capacity_mpps") is not None]
    if cap:
        ax.plot([r["flows"] for r in cap], [r["capacity_mpps"] for r in cap], "s--", color="C2",
                label="pgw capacity (TSC Hz / busy cycles per packet)")
    if meta.get("ceiling_mpps") is not None:
        ax.axhline(meta["ceiling_mpps"], color="C3", ls="-.",
                   label=f"dpdk-testpmd io, same generator ({meta.get('ceiling_run')}): {meta['ceiling_mpps']:.2f}")
    if meta.get("gen_loopback_mpps") is not None:
        ax.axhline(meta["gen_loopback_mpps"], color="grey", ls=":",
                   label=f"generator loopback ({meta.get('gen_loopback_run')}): {meta['gen_loopback_mpps']:.2f}")
    for r in pts:
        ax.annotate(f"{'≥ ' if r.get('generator_bound') else ''}{r['pgw_mpps']:.2f}", (r["flows"], r["pgw_mpps"]),
                    textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    ax.set_ylabel("Mpps (both directions)")
    ax.set_ylim(bottom=0)
    ax.set_title("pgw, 1 worker, 64 B: rate against table size")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    cyc = [r for r in pts if r.get("busy_cycles_per_pkt") is not None]
    if cyc:
        def cycles(rs, key, style, color, label, dy):
            """One cycles-per-packet series against the table size, each point labelled."""
            ax2.plot([r["flows"] for r in rs], [r[key] for r in rs], style, color=color, label=label)
            for r in rs:
                ax2.annotate(f"{r[key]:.0f}", (r["flows"], r[key]),
                             textcoords="offset points", xytext=(0, dy), ha="center", fontsize=8)

        cycles(cyc, "busy_cycles_per_pkt", "o-", "C1", "pgw busy (device I/O + engine)", 6)
        eng = [r for r in cyc if r.get("engine_cycles_per_pkt") is not None]
        if eng:
            cycles(eng, "engine_cycles_per_pkt", "s--", "C4", "pgw engine only (no rx/tx)", -12)
        if meta.get("ceiling_busy_cycles_per_pkt") is not None:
            ax2.axhline(meta["ceiling_busy_cycles_per_pkt"], color="C3", ls="-.",
                        label=f"dpdk-testpmd io busy ({meta.get('ceiling_run')}): "
                              f"{meta['ceiling_busy_cycles_per_pkt']:.0f}")
        ax2.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        ax2.set_ylim(bottom=0)
    else:
        ax2.text(0.5, 0.5, "no runtime accounting (NAME.runtime.json) in this run", ha="center", va="center",
                 transform=ax2.transAxes)
    ax2.set_ylabel("cycles / packet")
    ax2.set_xlabel("connections (table size)")
    ax2.set_xscale("log")
    ax2.set_xticks(x)
    ax2.xaxis.set_major_formatter(FuncFormatter(lambda v, _: human(v)))
    ax2.minorticks_off()
    if len(x) == 1:
        ax2.set_xlim(x[0] / 4, x[0] * 4)
    save(fig, path)
    return None


def latency(meta, rows, path):
    lat = [r for r in rows if r["kind"] == "latency" and r.get("p50_us") is not None
           and r.get("up_offered_mpps") is not None]
    if not lat:
        return "no latency rows"
    series = [
        ("pgw", [r for r in lat if r["dut"] == "pgw"], "C0", "o-"),
        ("dpdk-testpmd io (baseline, same offered rate)", [r for r in lat if r["dut"] != "pgw"], "C3", "s--"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), sharey=True)
    for ax, (key, title) in zip(axes, (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"))):
        for label, rs, color, style in series:
            rs = sorted((r for r in rs if r.get(key) is not None), key=lambda r: r["up_offered_mpps"])
            if rs:
                ax.plot([r["up_offered_mpps"] for r in rs], [r[key] for r in rs], style, color=color, label=label)
        ax.set_title(f"one-way {title}")
        ax.set_xlabel("offered up Mpps")
        ax.set_yscale("log")
    axes[0].set_ylabel("µs (log)")
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle("Latency against offered load (one pass through the DUT)")
    save(fig, path)
    return None


def e2e(meta, rows, path):
    ee = [r for r in rows if r["kind"] == "e2e"]
    if not ee:
        return "no e2e rows"
    fig, axes = plt.subplots(2, 3, figsize=(11, 6))
    names = [r["config"] for r in ee]
    colors = ["C0" if n == "pgw-afxdp" else "C7" if n.startswith("kernel") else "C3" for n in names]
    for ax, (key, title, scale) in zip(axes.flat, E2E_METRICS):
        vals = [(r.get(key) * scale) if r.get(key) is not None else 0 for r in ee]
        lo, hi = [], []
        for r, v in zip(ee, vals):
            reps = [x * scale for x in ((r.get("reps") or {}).get(key) or []) if isinstance(x, (int, float))]
            lo.append(v - min(reps) if reps else 0)
            hi.append(max(reps) - v if reps else 0)
        ax.bar(range(len(ee)), vals, color=colors, yerr=[lo, hi], capsize=3)
        ax.set_xticks(range(len(ee)))
        ax.set_xticklabels(names, rotation=20, fontsize=7)
        ax.set_title(title)
        for i, (r, v) in enumerate(zip(ee, vals)):
            if r.get(key) is None:
                ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=7)
    fig.suptitle("End to end: medians per config (bars: range of the repetitions)")
    fig.tight_layout()
    save(fig, path)
    return None


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    doc = json.load(open(sys.argv[1]))
    meta, rows = doc.get("meta", {}), doc.get("rows", [])
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    written, skipped = [], {}
    for fname, fn in zip(PLOTS, (table_size, latency, e2e)):
        path = os.path.join(out, fname)
        if os.path.exists(path):
            os.remove(path)  # no stale plot from an earlier run
        why = fn(meta, rows, path)
        if why:
            skipped[fname] = why
        else:
            written.append(fname)
    print(json.dumps({"written": written, "skipped": skipped}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
