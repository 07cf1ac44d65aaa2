//! greway: a kernel-bypass GRE tunnel gateway on DPDK.
//!
//! Layers, each importing only those below it, enforced by crate boundaries (docs/architecture.md):
//! - `greway-wire` (crates/wire, re-exported as [`wire`]): packet formats and checksums.
//! - `greway-datapath` (crates/datapath; [`buf`], [`stats`], [`tunnel`], [`datapath`]): the packet logic, the
//!   generic poll loop, tables and counters. Neither pure crate depends on DPDK, the configuration or the
//!   control plane, and neither has a build script.
//! - this crate: [`dpdk`] (the only FFI), [`config`], [`control`], [`app`], [`gen`] and [`host`] (the host
//!   interfaces), and the CLI.
pub mod app;
pub mod cli;
pub mod config;
pub mod control;
pub mod datapath;
pub mod dpdk;
pub mod gen;
pub mod host;

pub use greway_datapath::{buf, pmtu, stats, tunnel};
pub use greway_wire as wire;
