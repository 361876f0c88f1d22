"""The layout of perf/RESULTS.json: one place for report.py (which writes it),
check_results.py (which validates it) and perf/README.md (which documents it;
test_report.py checks that every field below is named there).

RESULTS.json = {"meta": {...}, "rows": [...]}. Every row carries every COMMON
field and every field of its kind (KIND_FIELDS); a value the row does not
measure is null. Adding a field is compatible; renaming or removing one bumps
SCHEMA.
"""

SCHEMA = 2  # 2: drain_variant and the latency variant (asis / W) removed

# type tags: "str", "int", "num" (int or float), "bool", "size" (int or str),
# "list", "dict"; every field may also be null.
# (name, type, unit, meaning)
COMMON = [
    ("name", "str", "", "run name (NAME of perf/out/<mode>/NAME.*); e2e-<config>; criterion bench id"),
    ("kind", "str", "", "throughput | cps | latency | memory | ceiling | generator | e2e | criterion"),
    ("dut", "str", "", "device under test: pgw, dpdk-testpmd, none (generator looped), or the e2e config's DUT"),
    ("date", "str", "ISO 8601", "when the run's files were written"),
    ("commit", "str", "", "git commit (short) of the tree the report was written from"),
    ("command", "str", "", "the exact command(s) of the run, one per line (NAME.cmd)"),
    ("profile", "str", "", "pgw profile (configs/...) the run used; null for other DUTs"),
    ("flows", "int", "connections", "connections the generator keeps open (established) or its concurrent slots (cps)"),
    ("workers", "int", "", "DUT worker cores"),
    ("pkt_size", "size", "bytes on the wire", "frame size incl. FCS (64 = 60 B in the mbuf), or a mix name (\"imix\")"),
    ("offered_mpps", "num", "Mpps", "frames the generator put on the DUT-bound rings, both directions"),
    ("pgw_mpps", "num", "Mpps", "Mpps through pgw (up frames that reached the servers port + down frames that reached the access port); null when the DUT is not pgw"),
    ("ceiling_mpps", "num", "Mpps", "dpdk-testpmd io on the same devices with the same generator, same run"),
    ("ratio", "num", "", "pgw_mpps / ceiling_mpps"),
    ("busy_cycles_per_pkt", "num", "TSC cycles", "busy worker cycles per packet over the window (pgw's runtime accounting; testpmd rows: testpmd --record-core-cycles)"),
    ("capacity_mpps", "num", "Mpps", "workers x tsc_hz / busy_cycles_per_pkt / 1e6: what the worker(s) could carry if never idle"),
    ("new_conns_per_s", "num", "1/s", "new connections per second (handshakes through the DUT)"),
    ("p50_us", "num", "µs", "one-way latency (generator access TX -> DUT -> servers RX), median"),
    ("p99_us", "num", "µs", "one-way latency, 99th percentile"),
    ("p999_us", "num", "µs", "one-way latency, 99.9th percentile"),
    ("baseline_p99_us", "num", "µs", "p99 of the latency baseline (testpmd io, same generator, same offered rate)"),
    ("rss_bytes", "int", "bytes", "pgw's peak resident set (VmHWM) during the run"),
    ("hugepage_bytes", "int", "bytes", "pgw's own hugepages: peak of *_Hugetlb in /proc/<pgw>/smaps_rollup (older runs: the machine's HugePages_Free drop while it ran)"),
    ("bytes_per_conn", "num", "bytes", "(rss_bytes + hugepage_bytes) / connection capacity (capacity_conns)"),
    ("loss_pkts", "int", "packets", "frames lost, both directions (e2e: veth + DUT drops)"),
    ("generator_bound", "bool", "", "the generator, not the DUT, set the rate: DUT figures are lower bounds"),
]

# Measured by the generator (pgw-gen) in every run it took part in.
GEN = [
    ("dut_mpps", "num", "Mpps", "Mpps through the DUT, whatever the DUT is"),
    ("up_mpps", "num", "Mpps", "up frames that reached the servers port per second"),
    ("down_mpps", "num", "Mpps", "down frames that reached the access port per second"),
    ("rate_asked_mpps", "num", "Mpps", "pgw-gen --rate (0 = flat out)"),
    ("gen_tx_refused_mpps", "num", "Mpps", "frames the ring toward the DUT had no room for"),
    ("loss_up_pkts", "int", "packets", "up frames sent minus received at the servers port"),
    ("loss_down_pkts", "int", "packets", "down frames sent minus received at the access port"),
    ("mean_wire_bytes", "num", "bytes", "mean frame size on the wire"),
    ("window_s", "num", "s", "measurement window"),
    ("gen_loopback_mpps", "num", "Mpps", "the generator's own loopback rate in the same run"),
    ("idle_before_pct", "num", "%", "CPU idle share just before the run"),
    ("others_during_pct", "num", "%", "share of the machine's CPU other processes took during the run"),
    ("contaminated", "bool", "", "others_during_pct >= 5: the run understates"),
]

# From pgw's own files (NAME.runtime.json, NAME.mgmt.json, NAME.dut.json).
PGW = [
    ("tsc_hz", "int", "Hz", "TSC frequency of the runtime accounting"),
    ("busy_pct", "num", "%", "busy cycles / all cycles of the worker(s) over the window"),
    ("stages", "list", "", "per-stage accounting summed over workers: {name, calls, packets, cycles, cycles_per_pkt, pkts_per_call, cycles_per_pkt_through}"),
    ("runtime_workers", "list", "", "per worker: {worker, lcore, busy_pct, packets, busy_cycles_per_pkt, capacity_mpps}"),
    ("mgmt_cpu_pct", "num", "%", "CPU the management thread used during the run (mgmt_cpu_ms / window)"),
    ("drops", "dict", "packets", "pgw drops by reason (pgw stats)"),
    ("open_flows", "int", "connections", "flows pgw had open at the end"),
    ("runtime_timed", "bool", "", "stage cycles were measured (engine.runtime_stages; false: calls and packets only)"),
    ("io_cycles_per_pkt", "num", "TSC cycles", "device I/O: cycles of the stages rx and tx per packet (the PMD's work)"),
    ("engine_cycles_per_pkt", "num", "TSC cycles", "engine: cycles of every other stage per packet (~ busy_cycles_per_pkt - io_cycles_per_pkt: the stages, other included, add up to the busy cycles)"),
    ("gw_cycles_per_pkt", "num", "TSC cycles", "the GW stages alone: parse + gw_lookup + gw_open + rewrite + accounting (older runs: parse + gw)"),
    ("engine_capacity_mpps", "num", "Mpps", "workers x tsc_hz / engine_cycles_per_pkt / 1e6: capacity if device I/O cost nothing"),
]

KIND_FIELDS = {
    "throughput": GEN + PGW + [
        ("ceiling_run", "str", "", "the ceiling row ceiling_mpps comes from"),
        ("ceiling_busy_cycles_per_pkt", "num", "TSC cycles", "the ceiling's (testpmd's) own busy cycles per packet"),
        ("busy_cycles_ratio", "num", "", "ceiling_busy_cycles_per_pkt / busy_cycles_per_pkt (1 = as cheap as testpmd io)"),
        ("ceiling_alone_mpps", "num", "Mpps", "testpmd io alone (memif pair looped inside testpmd, no generator)"),
        ("ratio_alone", "num", "", "pgw_mpps / ceiling_alone_mpps"),
    ],
    "ceiling": GEN,
    "generator": GEN,
    "cps": GEN + PGW + [
        ("phase", "str", "", "open (opening phase of an established run) or churn (cps mode)"),
        ("completed_per_s", "num", "1/s", "connections closed per second (churn)"),
        ("opened", "int", "connections", "connections opened (opening phase)"),
        ("open_seconds", "num", "s", "duration of the opening phase"),
        ("busy_cycles_per_conn", "num", "TSC cycles", "busy cycles (all workers) per new connection: busy cycles per second of the runtime window / new_conns_per_s (churn)"),
        ("conn_capacity_per_s", "num", "1/s", "tsc_hz / busy_cycles_per_conn: new connections/s of one worker busy all the time (churn)"),
    ],
    "latency": GEN + PGW + [
        ("load_pct", "int", "%", "offered up rate as a share of the rate pgw sustained flat out"),
        ("up_offered_mpps", "num", "Mpps", "up frames offered per second"),
        ("max_us", "num", "µs", "one-way latency, maximum"),
        ("rtt_p50_us", "num", "µs", "round trip (two passes through the DUT), median"),
        ("rtt_p99_us", "num", "µs", "round trip, 99th percentile"),
        ("rtt_p999_us", "num", "µs", "round trip, 99.9th percentile"),
        ("rtt_max_us", "num", "µs", "round trip, maximum"),
        ("baseline_run", "str", "", "the testpmd-lat-<pct> row used as baseline"),
        ("baseline_p50_us", "num", "µs", "baseline one-way p50"),
        ("baseline_p999_us", "num", "µs", "baseline one-way p99.9"),
        ("added_p50_us", "num", "µs", "p50_us - baseline_p50_us: what pgw adds"),
        ("added_p99_us", "num", "µs", "p99_us - baseline_p99_us"),
        ("added_p999_us", "num", "µs", "p999_us - baseline_p999_us"),
    ],
    "memory": [
        ("pool_addrs", "int", "", "pool addresses in the profile"),
        ("keys", "int", "", "NAT keys: pool addresses x 64 512 key ports"),
        ("capacity_conns", "int", "connections", "connection capacity: gw.max_flows_per_worker x workers (older profiles: keys)"),
        ("open_flows", "int", "connections", "connections open when memory was sampled"),
        ("hugepage_source", "str", "", "process (pgw's smaps_rollup) or machine (HugePages_Free drop: runs before the former was recorded)"),
        ("machine_hugepage_drop_bytes", "int", "bytes", "the machine's HugePages_Free drop from pgw's start to its lowest point in the run (includes other processes')"),
        ("total_bytes", "int", "bytes", "rss_bytes + hugepage_bytes"),
        ("marginal_bytes_per_conn", "num", "bytes", "total_bytes of the largest capacity minus the smallest, over the difference in capacity_conns"),
    ],
    "e2e": [
        ("config", "str", "", "kernel-route | kernel-nat | testpmd-afxdp | pgw-afxdp"),
        ("iperf_gbps", "num", "Gbit/s", "iperf3 TCP throughput (median of reps)"),
        ("iperf_retrans", "num", "segments", "iperf3 TCP retransmissions (median)"),
        ("iperf_m536_pps", "num", "packets/s", "iperf3 with MSS 536: packets per second (median)"),
        ("http_close_cps", "num", "1/s", "HTTP/1.1 with Connection: close: connections per second (median)"),
        ("http_close_p99_ms", "num", "ms", "HTTP connection-close request p99 (median)"),
        ("http_keepalive_rps", "num", "1/s", "HTTP keep-alive requests per second (median)"),
        ("reps", "dict", "", "every repetition of every metric"),
        ("veth_drops", "int", "packets", "drops on the veth links"),
        ("dut_drops", "dict", "packets", "DUT drops by reason"),
        ("loss_notes", "str", "", "notes on loss"),
        ("notes", "str", "", "notes on the config"),
        ("vs_testpmd", "dict", "", "pgw-afxdp metric / testpmd-afxdp metric, per metric (pgw-afxdp row only)"),
        ("vs_kernel_nat", "dict", "", "pgw-afxdp metric / kernel-nat metric, per metric (pgw-afxdp row only)"),
    ],
    "criterion": [
        ("elements", "int", "", "elements (packets, or connections) per iteration: criterion's Throughput::Elements (gw data: a burst of 32)"),
        ("iter_mean_ns", "num", "ns", "criterion's mean time per iteration"),
        ("mean_ns", "num", "ns", "mean time per element (packet, or connection): iter_mean_ns / elements"),
        ("median_ns", "num", "ns", "median per element"),
        ("ci_low_ns", "num", "ns", "95 % confidence interval of the mean per element, low"),
        ("ci_high_ns", "num", "ns", "95 % confidence interval of the mean per element, high"),
        ("est_mpps", "num", "Mpps", "1e3 / mean_ns: million elements/s of that stage alone on one core"),
    ],
}

KINDS = list(KIND_FIELDS)

META = [
    ("schema", "int", "", "layout version of this file (this is 2)"),
    ("mode", "str", "", "full or smoke"),
    ("written", "str", "ISO 8601", "when report.py wrote the file"),
    ("commit", "str", "", "git commit (short) of the tree"),
    ("work_tree_modified", "bool", "", "the tree had uncommitted changes"),
    ("machine", "dict", "", "cpu, vcpus, hypervisor, ram_gib, kernel"),
    ("dpdk", "str", "", "DPDK version"),
    ("rustc", "str", "", "rustc -V"),
    ("hugepages", "str", "", "hugepages reserved on the machine"),
    ("gen_loopback_run", "str", "", "the generator-loopback row of this run"),
    ("gen_loopback_mpps", "num", "Mpps", "its rate"),
    ("gen_bound_fraction", "num", "", "a row reaching this share of gen_loopback_mpps counts as generator-bound"),
    ("ceiling_run", "str", "", "the ceiling row (testpmd with the same generator)"),
    ("ceiling_mpps", "num", "Mpps", "its rate"),
    ("ceiling_alone_mpps", "num", "Mpps", "testpmd alone"),
    ("ceiling_busy_cycles_per_pkt", "num", "TSC cycles", "the ceiling's own busy cycles per packet (testpmd --record-core-cycles)"),
    ("accounting_cost_cycles_per_pkt", "num", "TSC cycles", "what the runtime stage accounting costs: busy cycles/packet of gw-1k minus gw-1k-untimed"),
    ("accounting_cost_pct", "num", "%", "the same as a share of gw-1k-untimed's busy cycles/packet"),
    ("scrape_cost_cycles_per_pkt", "num", "TSC cycles", "what a Prometheus scrape every second costs the worker: over gw-1k-scraped's pairs of 1-s segments, the median of scraped minus not scraped engine cycles/packet"),
    ("scrape_cost_pct", "num", "%", "the same as a share of the not scraped segments' median"),
    ("scrape_cost_busy_cycles_per_pkt", "num", "TSC cycles", "the same median difference in whole busy cycles/packet"),
    ("scrape_pairs", "int", "", "how many not scraped / scraped segment pairs"),
    ("scrape_segments", "list", "", "gw-1k-scraped's segments: {segment, scraped, packets, busy_cycles_per_pkt, io_cycles_per_pkt, engine_cycles_per_pkt}"),
    ("marginal_bytes_per_conn", "num", "bytes", "memory per connection of capacity (see memory rows)"),
    ("targets", "list", "", "the targets table: {group, target, measured, value, rows, met, why, close}; met null = not measured; why (from the run's own figures) and close (what would close it) for a target not met, else null"),
    ("plots", "list", "", "SVG files written, relative to this file's folder"),
    ("plots_note", "str", "", "why plots are missing, if they are"),
    ("fields", "dict", "", "field names: {common: [...], <kind>: [...]} (this layout)"),
]


def fields_of(kind):
    """Every field a row of `kind` carries, in order."""
    return COMMON + KIND_FIELDS.get(kind, [])


def names_of(kind):
    return [f[0] for f in fields_of(kind)]


def type_ok(tag, v):
    if v is None:
        return True
    if tag == "str":
        return isinstance(v, str)
    if tag == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if tag == "num":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if tag == "bool":
        return isinstance(v, bool)
    if tag == "size":
        return (isinstance(v, int) and not isinstance(v, bool)) or isinstance(v, str)
    if tag == "list":
        return isinstance(v, list)
    if tag == "dict":
        return isinstance(v, dict)
    return True
