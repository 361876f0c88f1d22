#!/usr/bin/env python3
"""Helper of perf/e2e.sh (not run by hand): counter snapshots, tool-output
parsing and the e2e-<config>.json files.

  e2e.py snap FILE KIND [--testpmd-log LOG] [--pgw PGW --profile TOML]
      Counters now: the four veths (ip -s -j link, ethtool -S), the machine's
      softnet drops, and the DUT's own counters for KIND (kernel-route,
      kernel-nat: /proc/net/snmp+netstat and conntrack -S of the dut netns;
      testpmd-afxdp: the last NIC-statistics block testpmd printed;
      pgw-afxdp: pgw stats --json).
  e2e.py record OUT CONFIG METRIC REP RAW SNAP0 SNAP1
      Parse one tool output (iperf3 -J or wrk), diff the snapshots, write
      the run's record (one JSON line) to OUT; print a summary.
  e2e.py foreign REC
      The share of CPU other processes took during that run (percent).
  e2e.py assemble RUNS OUTDIR CONFIG META.json
      Write OUTDIR/e2e-CONFIG.json (the contract in perf/e2e.sh).
  e2e.py iperf-ok RAW | wrk-ok RAW
      Exit 0 if the output holds a result.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time

NS = {"cli": "pgwe2e-cli", "dut": "pgwe2e-dut", "srv": "pgwe2e-srv"}
VETHS = [("dut", "e2e-dc"), ("dut", "e2e-ds"), ("cli", "e2e-c"), ("srv", "e2e-s")]
METRICS = ["iperf_gbps", "iperf_retrans", "iperf_m536_pps", "http_close_cps",
           "http_close_p99_ms", "http_keepalive_rps"]
# The raw-output name of each run (e2e-<config>-<run>-<rep>.txt) -> metrics it gives.
RUN_METRICS = {
    "iperf": ["iperf_gbps", "iperf_retrans"],
    "iperf_m536": ["iperf_m536_pps"],
    "http_keepalive": ["http_keepalive_rps"],
    "http_close": ["http_close_cps", "http_close_p99_ms"],
}
MSS = 536


def sh(args, ns=None):
    if ns:
        args = ["ip", "netns", "exec", NS[ns]] + args
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=20).stdout
    except Exception as e:  # noqa: BLE001 - a snapshot must never stop the run
        return f"ERROR {e}"


def veth_counters(ns, dev):
    out = {}
    try:
        j = json.loads(sh(["ip", "-n", NS[ns], "-s", "-j", "link", "show", "dev", dev]))[0]
        st = j.get("stats64", {})
        for d in ("rx", "tx"):
            for k, v in st.get(d, {}).items():
                out[f"{d}_{k}"] = v
    except Exception:  # noqa: BLE001
        pass
    for line in sh(["ethtool", "-S", dev], ns).splitlines():
        m = re.match(r"\s*([\w\-]+):\s*(\d+)\s*$", line)
        if m and m.group(1) != "peer_ifindex":
            out["ethtool_" + m.group(1)] = int(m.group(2))
    return out


def softnet_dropped():
    # /proc/net/softnet_stat: per CPU, hex; column 2 = dropped (backlog full).
    tot = 0
    try:
        for line in open("/proc/net/softnet_stat"):
            tot += int(line.split()[1], 16)
    except OSError:
        pass
    return tot


def proc_snmp(ns):
    out = {}
    for f in ("/proc/net/snmp", "/proc/net/netstat"):
        lines = sh(["cat", f], ns).splitlines()
        for a, b in zip(lines[0::2], lines[1::2]):
            ka, kb = a.split(), b.split()
            if not ka or ka[0] != kb[0]:
                continue
            pre = ka[0].rstrip(":")
            for k, v in zip(ka[1:], kb[1:]):
                try:
                    out[pre + k] = int(v)
                except ValueError:
                    pass
    return out


def conntrack_stats(ns):
    out = {}
    for line in sh(["conntrack", "-S"], ns).splitlines():
        for k, v in re.findall(r"(\w+)=(\d+)", line):
            if k != "cpu":
                out[k] = out.get(k, 0) + int(v)
    cnt = sh(["conntrack", "-C"], ns).strip()
    out["count"] = int(cnt) if cnt.isdigit() else None
    return out


def testpmd_last(log):
    """Last 'NIC statistics for port N' block of each port in testpmd's log."""
    try:
        text = open(log, errors="replace").read()
    except OSError:
        return {}
    ports = {}
    for m in re.finditer(r"NIC statistics for port (\d+)\s*#+(.*?)#{10,}", text, re.S):
        body = m.group(2)
        d = {k: int(v) for k, v in re.findall(r"([A-Za-z\-]+):\s+(\d+)", body)}
        ports[m.group(1)] = d
    return ports


def proc_ticks(pid, children=False):
    """utime+stime (+ cutime+cstime of reaped children) of a process, in ticks."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    # after "(comm)": state is field 3, utime 14, stime 15, cutime 16, cstime 17
    t = int(f[11]) + int(f[12])
    return t + (int(f[13]) + int(f[14]) if children else 0)


def cpu_sample(shell_pid):
    """Machine CPU ticks and the ticks of what this benchmark runs: every
    process in its namespaces (servers, DUT, tools still running) plus the
    script itself with its reaped children (the tools that ran and exited)."""
    cpu = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    inos = set()
    for n in NS.values():
        try:
            inos.add(os.stat(f"/run/netns/{n}").st_ino)
        except OSError:
            pass
    ours = proc_ticks(shell_pid, children=True) if shell_pid else 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}/ns/net").st_ino in inos:
                    ours += proc_ticks(pid)
            except OSError:
                pass
    return {"user": cpu[0], "nice": cpu[1], "system": cpu[2], "idle": cpu[3], "iowait": cpu[4],
            "irq": cpu[5], "softirq": cpu[6], "steal": cpu[7], "ours": ours}


def foreign_cpu(c0, c1):
    """Share of the machine's CPU time (percent) used by processes that are not
    this benchmark's while the run went on, and the hypervisor's steal."""
    d = {k: c1[k] - c0[k] for k in c1}
    total = sum(v for k, v in d.items() if k != "ours") or 1
    foreign = max(0, d["user"] + d["nice"] + d["system"] - d["ours"])
    return round(100.0 * foreign / total, 1), round(100.0 * d["steal"] / total, 1)


def cmd_snap(argv):
    f, kind = argv[0], argv[1]
    opts = dict(zip(argv[2::2], argv[3::2]))
    s = {"t": time.time(), "softnet_dropped": softnet_dropped(),
         "cpu": cpu_sample(opts.get("--shell-pid")),
         "veth": {dev: veth_counters(ns, dev) for ns, dev in VETHS}}
    if kind in ("kernel-route", "kernel-nat"):
        s["kernel"] = proc_snmp("dut")
        if kind == "kernel-nat":
            s["conntrack"] = conntrack_stats("dut")
    elif kind == "testpmd-afxdp":
        s["testpmd"] = testpmd_last(opts["--testpmd-log"])
    elif kind == "pgw-afxdp":
        out = sh([opts["--pgw"], "stats", "--profile", opts["--profile"], "--json"])
        try:
            s["pgw"] = json.loads(out)
        except ValueError:
            s["pgw"] = None
            s["pgw_error"] = out[-300:]
    json.dump(s, open(f, "w"))


# ------------------------------------------------------------ tool outputs
def parse_iperf(raw):
    """-> dict(gbps, retrans, bytes, seconds) or dict(error)."""
    try:
        j = json.load(open(raw))
    except (OSError, ValueError) as e:
        return {"error": f"iperf3 output is not JSON ({e})"}
    if j.get("error"):
        return {"error": "iperf3: " + j["error"]}
    end = j.get("end", {})
    rcv, snd = end.get("sum_received", {}), end.get("sum_sent", {})
    if not rcv.get("seconds"):
        return {"error": "iperf3 gave no end.sum_received"}
    return {"gbps": rcv["bits_per_second"] / 1e9, "retrans": snd.get("retransmits"),
            "bytes": rcv["bytes"], "seconds": rcv["seconds"]}


def to_ms(v, unit):
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}[unit]


def parse_wrk(raw):
    try:
        text = open(raw, errors="replace").read()
    except OSError as e:
        return {"error": str(e)}
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        return {"error": "wrk printed no Requests/sec: " + text.strip()[-200:]}
    r["rps"] = float(m.group(1))
    m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    r["p99_ms"] = to_ms(m.group(1), m.group(2)) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    r["socket_errors"] = dict(zip(["connect", "read", "write", "timeout"],
                                  map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    r["non_2xx"] = int(m.group(1)) if m else 0
    return r


# ------------------------------------------------------------ counter deltas
def diff_flat(a, b):
    out = {}
    for k, v in b.items():
        if isinstance(v, (int, float)) and isinstance(a.get(k), (int, float)):
            out[k] = v - a[k]
    return out


def veth_delta(s0, s1):
    return {dev: diff_flat(s0["veth"].get(dev, {}), s1["veth"].get(dev, {}))
            for _, dev in VETHS}


# veth pairs, each direction: (sender, receiver)
DIRECTIONS = [("e2e-c", "e2e-dc"), ("e2e-dc", "e2e-c"), ("e2e-s", "e2e-ds"), ("e2e-ds", "e2e-s")]


def veth_drops_by_direction(vd, xdp):
    """Frames lost between the two ends of each veth, each counted once.

    A receiver without XDP drops in netif_rx (backlog full): the kernel counts
    that frame twice, as the sender's tx_dropped and the receiver's
    rx_dropped, so the direction loses max(tx, rx). A receiver with XDP (the
    DUT veths in the AF_XDP rows) counts its own drops (rx_queue_0_drops:
    e.g. the AF_XDP ring full) in rx_dropped, and a full ptr_ring in front of
    it only as the sender's tx_dropped: disjoint, so the two add up."""
    out = {}
    for a, b in DIRECTIONS:
        tx, rx = vd.get(a, {}).get("tx_dropped", 0), vd.get(b, {}).get("rx_dropped", 0)
        out[f"{a}->{b}"] = tx + rx if (xdp and b in ("e2e-dc", "e2e-ds")) else max(tx, rx)
    return out


def nonzero(d):
    return {k: v for k, v in d.items() if v}


KERNEL_DROP_KEYS = ["IpInDiscards", "IpOutDiscards", "IpInHdrErrors", "IpInAddrErrors",
                    "IpOutNoRoutes", "IpExtInNoRoutes", "IpExtInCsumErrors"]
CT_DROP_KEYS = ["drop", "early_drop", "insert_failed", "chaintoolong", "error", "invalid"]


def pgw_flat(p):
    """pgw stats JSON -> flat counters: drops by reason, port PMD counters, events."""
    out = {}
    if not p:
        return out
    for w in p.get("workers", []):
        for k, v in w.get("drops", []):
            out["drop." + k] = out.get("drop." + k, 0) + v
        for k, v in w.get("events", []):
            out["event." + k] = out.get("event." + k, 0) + v
        for k in ("rx", "tx"):
            out["worker." + k] = out.get("worker." + k, 0) + w.get(k, 0)
    for pt in p.get("ports", []):
        for k in ("ipackets", "opackets", "imissed", "ierrors", "oerrors", "rx_nombuf"):
            out[f"port.{pt['name']}.{k}"] = pt.get(k, 0)
    return out


def dut_delta(kind, s0, s1):
    """-> (drops {reason: n}, other counters {name: n})"""
    drops, other = {}, {}
    if kind in ("kernel-route", "kernel-nat"):
        d = diff_flat(s0.get("kernel", {}), s1.get("kernel", {}))
        drops = {k: d.get(k, 0) for k in KERNEL_DROP_KEYS}
        other = {k: d.get(k, 0) for k in ("IpForwDatagrams", "IpInReceives")}
        if kind == "kernel-nat":
            c = diff_flat(s0.get("conntrack", {}), s1.get("conntrack", {}))
            for k in CT_DROP_KEYS:
                drops["conntrack_" + k] = c.get(k, 0)
            other["conntrack_count_after"] = s1.get("conntrack", {}).get("count")
    elif kind == "testpmd-afxdp":
        t0, t1 = s0.get("testpmd", {}), s1.get("testpmd", {})
        if t1:
            d = {p: diff_flat(t0.get(p, {}), t1[p]) for p in t1}
            for p in d:
                for k in ("RX-missed", "RX-errors", "RX-nombuf", "TX-errors"):
                    drops[f"port{p}_{k}"] = d[p].get(k, 0)
                other[f"port{p}_RX-packets"] = d[p].get("RX-packets", 0)
                other[f"port{p}_TX-packets"] = d[p].get("TX-packets", 0)
            # io forwarding: what one port received and the other did not send
            # was refused by the TX queue and freed (testpmd's TX-dropped).
            if "0" in d and "1" in d:
                drops["tx_dropped_0to1"] = max(0, d["0"].get("RX-packets", 0) - d["1"].get("TX-packets", 0))
                drops["tx_dropped_1to0"] = max(0, d["1"].get("RX-packets", 0) - d["0"].get("TX-packets", 0))
    elif kind == "pgw-afxdp":
        d = diff_flat(pgw_flat(s0.get("pgw")), pgw_flat(s1.get("pgw")))
        for k, v in d.items():
            if k.startswith("drop."):
                drops[k[5:]] = v
            elif k.split(".")[-1] in ("imissed", "ierrors", "oerrors", "rx_nombuf"):
                drops[k] = v
            else:
                other[k] = v
    return drops, other


# ------------------------------------------------------------ record / assemble
def cmd_record(argv):
    out, config, run, rep, raw, f0, f1 = argv[:7]
    s0, s1 = json.load(open(f0)), json.load(open(f1))
    rec = {"config": config, "run": run, "rep": int(rep), "raw": os.path.basename(raw),
           "seconds_wall": round(s1["t"] - s0["t"], 2)}
    if run.startswith("iperf"):
        r = parse_iperf(raw)
    else:
        r = parse_wrk(raw)
    rec["tool"] = r
    vd = veth_delta(s0, s1)
    rec["veth"] = {dev: nonzero(v) for dev, v in vd.items()}
    by_dir = veth_drops_by_direction(vd, config.endswith("afxdp"))
    rec["veth_drops"] = sum(by_dir.values())
    rec["veth_drops_by_direction"] = nonzero(by_dir)
    rec["softnet_dropped"] = s1["softnet_dropped"] - s0["softnet_dropped"]
    rec["foreign_cpu_pct"], rec["steal_pct"] = foreign_cpu(s0["cpu"], s1["cpu"])
    drops, other = dut_delta(config, s0, s1)
    rec["dut_drops"] = drops
    rec["dut_other"] = other
    vals = {}
    if "error" not in r:
        if run == "iperf":
            vals = {"iperf_gbps": round(r["gbps"], 3), "iperf_retrans": r["retrans"]}
        elif run == "iperf_m536":
            # Data-direction packets delivered per second: the server-side
            # veth's rx_packets over the run (in the server netns: what reached
            # the iperf3 server, ACK-less direction) / iperf3's receive time.
            pk = vd["e2e-s"].get("rx_packets", 0)
            vals = {"iperf_m536_pps": round(pk / r["seconds"])}
            rec["m536_from_bytes_pps"] = round(r["bytes"] / r["seconds"] / (MSS - 12))
            rec["m536_gbps"] = round(r["gbps"], 3)
        elif run == "http_keepalive":
            vals = {"http_keepalive_rps": round(r["rps"])}
        elif run == "http_close":
            vals = {"http_close_cps": round(r["rps"]),
                    "http_close_p99_ms": None if r["p99_ms"] is None else round(r["p99_ms"], 2)}
        # wrk ran but no request completed (e.g. the DUT refused every new
        # connection): that is a measured 0, with no latency sample.
        if not run.startswith("iperf") and r.get("requests", 1) == 0:
            vals = {k: (None if k.endswith("_ms") else 0) for k in vals}
            r["zero"] = True
    rec["values"] = vals
    with open(out, "w") as fh:
        fh.write(json.dumps(rec) + "\n")
    short = ", ".join(f"{k}={v}" for k, v in vals.items()) or r.get("error", "?")
    extra = ""
    if not run.startswith("iperf") and "error" not in r:
        se = {k: v for k, v in r.get("socket_errors", {}).items() if v}
        if se or r.get("non_2xx"):
            extra = f" (wrk errors {se}, non-2xx {r.get('non_2xx')})"
    dd = nonzero(drops)
    print(f"{short}{extra}; veth drops {rec['veth_drops']}; DUT drops {dd if dd else 0}; "
          f"foreign CPU {rec['foreign_cpu_pct']} %")


def med(xs):
    v = [x for x in xs if x is not None]
    return round(statistics.median(v), 3) if v else None


def cmd_assemble(argv):
    runs_f, outdir, config, meta_f = argv
    meta = json.load(open(meta_f))
    recs = []
    if os.path.exists(runs_f):
        recs = [json.loads(line) for line in open(runs_f) if line.strip()]
    reps = {m: [] for m in METRICS}
    notes = list(meta.get("notes", []))
    failed = {}
    for run, ms in RUN_METRICS.items():
        rr = sorted([r for r in recs if r["run"] == run], key=lambda r: r["rep"])
        for r in rr:
            for m in ms:
                reps[m].append(r["values"].get(m))
            if "error" in r["tool"]:
                failed.setdefault(run, []).append(f"rep {r['rep']}: {r['tool']['error']}")
        if not rr:
            for m in ms:
                reps[m] = [None] * meta.get("reps", 3)
            failed.setdefault(run, []).append(meta.get("skip_reason", {}).get(run, "not run"))
    for r in recs:
        if r["tool"].get("zero"):
            notes.append(f"{r['run']} rep {r['rep']}: wrk completed no request in the whole run: "
                         f"0 counted as the rate, no latency sample (p99 null) "
                         f"(wrk socket errors {r['tool'].get('socket_errors')})")
    for run, why in failed.items():
        notes.append(f"{run} failed or null: " + "; ".join(why))
    median = {m: med(reps[m]) for m in METRICS}
    for m in METRICS:
        ok = [x for x in reps[m] if x is not None]
        if ok and len(ok) < len(reps[m]):
            notes.append(f"{m}: median of the {len(ok)} successful reps")
    # wrk socket errors are part of what the client saw: keep them visible
    for r in recs:
        se = {k: v for k, v in r["tool"].get("socket_errors", {}).items() if v}
        if se or r["tool"].get("non_2xx"):
            notes.append(f"{r['run']} rep {r['rep']}: wrk socket errors {se}, non-2xx {r['tool'].get('non_2xx', 0)}")
    busy = [f"{r['run']} #{r['rep']} {r['foreign_cpu_pct']} %" for r in recs if r["foreign_cpu_pct"] >= 5]
    if busy:
        notes.append("Other processes on this shared VM took CPU during some runs (share of the machine's "
                     "CPU not used by this benchmark's processes): " + ", ".join(busy)
                     + "; those figures are low by an unknown amount.")
    vdrops = sum(r["veth_drops"] for r in recs)
    dd = {}
    for r in recs:
        for k, v in r["dut_drops"].items():
            dd[k] = dd.get(k, 0) + v
    per_run = [{"run": r["run"], "rep": r["rep"], "values": r["values"],
                "veth_drops": r["veth_drops"],
                "veth_drops_by_direction": r["veth_drops_by_direction"], "veth": r["veth"],
                "softnet_dropped": r["softnet_dropped"],
                "foreign_cpu_pct": r["foreign_cpu_pct"], "steal_pct": r["steal_pct"],
                "dut_drops": nonzero(r["dut_drops"]), "dut_counters": nonzero(r["dut_other"]),
                **({"m536_from_bytes_pps": r["m536_from_bytes_pps"], "m536_gbps": r["m536_gbps"]}
                   if "m536_from_bytes_pps" in r else {}),
                **({"wrk_socket_errors": r["tool"].get("socket_errors"),
                    "wrk_requests": r["tool"].get("requests")} if not r["run"].startswith("iperf") else {})}
               for r in recs]
    out = {
        "config": config,
        "dut": meta["dut"],
        "date": meta["date"],
        "commands": meta["commands"],
        "reps": reps,
        "median": median,
        "loss": {
            "veth_drops": vdrops,
            "dut_drops": dd,
            "notes": meta["loss_notes"],
            "per_run": per_run,
        },
        "notes": " ".join(notes),
        "placement": meta.get("placement"),
        "target": meta.get("target"),
    }
    for k in ("dut_final", "dut_counters_total"):
        if k in meta:
            out[k] = meta[k]
    with open(os.path.join(outdir, f"e2e-{config}.json"), "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")
    print(json.dumps(median))


def main():
    cmd, argv = sys.argv[1], sys.argv[2:]
    if cmd == "snap":
        cmd_snap(argv)
    elif cmd == "record":
        cmd_record(argv)
    elif cmd == "assemble":
        cmd_assemble(argv)
    elif cmd == "foreign":
        print(json.loads(open(argv[0]).readline())["foreign_cpu_pct"])
    elif cmd == "iperf-ok":
        sys.exit(0 if "error" not in parse_iperf(argv[0]) else 1)
    elif cmd == "wrk-ok":
        sys.exit(0 if "error" not in parse_wrk(argv[0]) else 1)
    else:
        sys.exit(f"e2e.py: unknown command {cmd}")


if __name__ == "__main__":
    main()
