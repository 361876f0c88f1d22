//! pgw engine: the DPDK side of the gateway, in folders by plane.
//!
//! - [`runtime`]: the data plane's machinery — the DPDK wrapper (the only
//!   module with `unsafe`), the per-core worker loop, the engine's
//!   lifecycle, counters and their reports;
//! - [`mgmt`]: the management plane — the management thread, RADIUS, health
//!   checks, the control socket and protocol, accounting export;
//! - [`config`]: profiles, their validation, and building the pipelines'
//!   tables from them;
//! - the `pgw` command line is the binary in `src/cli/`.
//!
//! Imports go one way: `cli → mgmt → runtime → config` (and each may use
//! `pgw-pipelines`); `scripts/check-layers.sh` holds the tree to it.
#![deny(unsafe_code)]

pub mod config;
pub mod mgmt;
pub mod runtime;
