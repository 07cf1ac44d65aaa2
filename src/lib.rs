//! greway: a kernel-bypass GRE tunnel gateway on DPDK.
//!
//! Layers (each may import only those below it): `wire` -> `stats`, `tunnel` -> `datapath` -> `dpdk`
//! (the only FFI) -> `control`, `app`, `cli`. `config` (serde types and validation) is used by every layer above
//! `wire`. See ../shared/design/architecture.md.
pub mod app;
pub mod buf;
pub mod config;
pub mod control;
pub mod datapath;
pub mod dpdk;
pub mod gen;
pub mod stats;
pub mod tunnel;
pub mod wire;
