//! greway: a kernel-bypass GRE tunnel gateway on DPDK.
//!
//! Layers (each may import only those below it): `wire` -> `stats`, `tunnel` -> `datapath` -> `dpdk`
//! (the only FFI) -> `control`, `app`, `cli`. See ../shared/design/architecture.md.
pub mod config;
pub mod wire;
