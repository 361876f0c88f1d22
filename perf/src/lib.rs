//! pgw's benchmark suite (issue 6).
//!
//! - [`frame`]: frame templates patched per packet (incremental checksums),
//!   the 48-bit TSC timestamp in the payload, the reflector's in-place answer;
//! - [`plan`]: N subscribers × M connections toward VIPs, as arithmetic;
//! - [`gen`]: the generator's poll loop (sender, access receiver, reflector)
//!   and its report.
//!
//! The binary `pgw-gen` drives a running `pgw` GW instance (or
//! `dpdk-testpmd`, or itself in loopback) over two `net_memif` links;
//! `scripts/bench.sh` runs the suite and writes `perf/RESULTS.md`. All DPDK
//! calls go through `pgw_engine::runtime::dpdk`'s safe wrappers.
#![forbid(unsafe_code)]

pub mod frame;
pub mod gen;
pub mod plan;
