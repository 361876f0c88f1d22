//! Sans-I/O packet pipelines of pgw.
//!
//! Contract: every function here works on byte slices, takes time as an
//! argument (`now_ms`, a monotonic millisecond count chosen by the caller),
//! never allocates on the per-packet path, never locks, logs or does I/O.
//! The engine (`pgw-engine`) feeds it frames that live inside DPDK mbufs;
//! tests feed it `Vec<u8>`s.
#![forbid(unsafe_code)]

pub mod arp;
pub mod fuzz;
pub mod fwd;
pub mod gw;
pub mod health;
pub mod hw;
pub mod lb;
pub mod mgmt;
pub mod ndp;
pub mod pipeline;
pub mod runtime;
pub mod verdict;
pub mod wire;
pub mod xlat;

pub use verdict::{DropReason, Pkt, PortIdx, Verdict, WorkerCounters, MAX_BURST};
