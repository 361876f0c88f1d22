//! Profiles: the TOML files under `configs/` that say what one `pgw`
//! instance runs (role, ports, cores, EAL options, table sizes).
//!
//! Every error names the file, the key and what is wrong. The EAL argument
//! list is derived here and nowhere else, so the PCI rule lives in one place:
//! `--no-pci` unless a `[[port]]` names a PCI address, and then only an
//! allow-list (`-a`) of exactly those addresses.

pub mod gw;
pub mod log;
pub mod profile;
pub mod radius;
pub mod validate;

pub use profile::*;
