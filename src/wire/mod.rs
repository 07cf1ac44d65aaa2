//! Packet views and representations: pure Rust, no DPDK, no `unsafe` outside `checksum/simd`.
pub mod checksum;
