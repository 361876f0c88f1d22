//! The data plane's machinery: EAL, ports, mempools and rings through the
//! one unsafe wrapper ([`dpdk`]), the per-core poll loop ([`worker`]), the
//! engine's set-up and tear-down ([`engine`]), the management plane's
//! handle on it ([`link`]), and per-core and per-port
//! counters with their reports ([`stats`]).

#[allow(unsafe_code)]
pub mod dpdk;
pub mod engine;
pub mod info;
pub mod link;
pub mod netlink;
pub mod stats;
pub mod worker;
