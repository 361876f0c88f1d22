#!/usr/bin/env bash
# Idempotent machine set-up for pgw (Debian 12 / Ubuntu): packages, Rust
# check, hugepages. Safe to run again and again; prints what it did.
#   scripts/setup.sh            # everything
#   PGW_HUGEPAGES=0 scripts/setup.sh   # skip hugepages (pgw then runs --no-huge)
set -euo pipefail

say() { printf 'setup: %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else say "not root and no sudo: cannot install packages or reserve hugepages"; exit 1; fi
fi

# 1. Debian packages: DPDK (headers, PMDs, testpmd), bindgen's libclang, and
#    the real peers the tests drive (radclient, nfcapd/nfdump, curl, iproute2,
#    prometheus and promtool for the metrics endpoint),
#    matplotlib for the benchmark plots (perf/plots.py), and what
#    perf/e2e.sh races pgw with (nginx, wrk, iperf3, and the kernel's own
#    full NAT through nftables + conntrack). perf/e2e.sh runs its own nginx
#    in a namespace and e2e_metrics its own prometheus on a free port; a
#    service either package may start is not used.
#    traceroute shows a router hop through the GW (engine/tests/e2e_pmtud.rs);
#    script (bsdutils) gives `pgw top` a pseudo-terminal (e2e_top.rs);
#    hping3 floods the GW with spoofed SYNs (e2e_syn_proxy.rs);
#    stress-ng loads every core for scripts/stress-e2e.sh.
PKGS=(dpdk dpdk-dev libdpdk-dev clang libclang-dev pkg-config
      iproute2 ethtool curl iputils-ping tcpdump traceroute python3 procps bsdutils
      freeradius-utils nfdump prometheus python3-matplotlib
      nginx wrk iperf3 nftables conntrack hping3 stress-ng)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "packages: all present"
fi
say "DPDK $(pkg-config --modversion libdpdk)"

# 2. Rust toolchain (the machine's rustup one; we do not download toolchains).
if ! command -v cargo >/dev/null; then
  say "cargo not found: install Rust (rustup) first"; exit 1
fi

# 3. Hugepages: 2 MiB pages, mounted at /dev/hugepages. pgw profiles use
#    hugepages = "auto": with too few free pages they run with --no-huge.
want=${PGW_HUGEPAGES:-1024}
if [ "$want" -gt 0 ]; then
  have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
  if [ "$have" -lt "$want" ]; then
    if $SUDO sysctl -q -w vm.nr_hugepages="$want" 2>/dev/null; then :; fi
    have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
  fi
  $SUDO mkdir -p /dev/hugepages
  if ! mountpoint -q /dev/hugepages; then
    $SUDO mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages 2>/dev/null || true
  fi
  free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
  if [ "${free:-0}" -gt 0 ]; then
    say "hugepages: $have reserved, $free free (2 MiB each), mounted at /dev/hugepages"
  else
    say "hugepages: NONE available (the kernel refused vm.nr_hugepages=$want): pgw will run with --no-huge (about 30 % slower)"
  fi
else
  say "hugepages: skipped (PGW_HUGEPAGES=0): pgw will run with --no-huge"
fi
