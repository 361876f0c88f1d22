//! pgw engine: the DPDK side of the gateway.
//!
//! - [`dpdk`]: the only module with `unsafe` (safe wrappers over `rte-sys`);
//! - [`config`]: profiles and the EAL argument list they imply;
//! - [`app`]: set-up and tear-down of EAL, pool, ports, rings and threads;
//! - [`worker`]: the per-core poll loop;
//! - [`mgmt`]: the management thread; [`control`]: its socket;
//! - [`stats`]: per-core and per-port counters and their report.
#![deny(unsafe_code)]

pub mod acctlog;
pub mod app;
pub mod config;
pub mod control;
pub mod ctlproto;
#[allow(unsafe_code)]
pub mod dpdk;
pub mod gwcfg;
pub mod health;
pub mod mgmt;
pub mod radius;
pub mod stats;
pub mod worker;
