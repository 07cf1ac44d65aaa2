//! Tunnel and route tables: pure Rust, no DPDK, no `unsafe`.
//!
//! The datapath does one longest-prefix-match lookup per packet (inner destination -> tunnel on
//! encapsulation; destination -> next hop). The tables here are *build-then-lookup*: the control
//! thread collects routes (in a [`lpm::Lpm4Builder`] / [`lpm6::Lpm6Builder`], or a plain slice),
//! builds an immutable table and publishes it to the workers (e.g. through `arc-swap`); workers
//! only ever read. Nothing here needs DPDK's EAL, so the logic is unit- and property-tested on
//! any machine.
//!
//! - [`lpm::Lpm4`]: IPv4, DIR-24-8 (like DPDK's `rte_lpm`): at most two dependent memory loads
//!   per lookup, plus a burst lookup that issues all first-level loads before the second-level
//!   ones.
//! - [`lpm6::Lpm6`]: IPv6, a 2^24-entry first level followed by a multibit trie of 8-bit strides
//!   (like `rte_lpm6`): at most 14 dependent loads, `1 + ceil((len - 24) / 8)` for a match of
//!   length `len > 24`.
//!
//! Measured once (release, 2 shared cores under load, 4 KiB pages): `Lpm4` with 1M routes and
//! random addresses ~20-25 ns per lookup single or in bursts of 32, bound by TLB and cache misses
//! on the 64 MiB `tbl24` (backing it with huge pages is the datapath's business); `Lpm6` with
//! ~9k routes (23k groups) ~50 ns single, ~40 ns bulk; with 180k routes (460k groups, 450 MiB)
//! ~310 ns single, ~115 ns bulk, where each trie level is a dependent cache miss.
//!
//! Both map a prefix to a next-hop value `u32 <=` [`lpm::MAX_NEXT_HOP`] (2^30 - 1); the caller
//! decides what it means (tunnel index, next-hop index). Longer prefixes win; for the same
//! prefix given twice the last one wins. Host bits beyond the prefix length are ignored.
pub mod lpm;
pub mod lpm6;
pub mod table;
pub mod update;

pub use lpm::{Lpm4, Lpm4Builder, LpmError, BURST, MAX_NEXT_HOP};
pub use lpm6::{Lpm6, Lpm6Builder};

/// Sorts `(length, network, value)` routes by (length, network) and keeps one route per prefix, with the value
/// of the last one given (a stable sort keeps the input order among equal prefixes).
pub(crate) fn sort_dedup_routes<A: Ord + Copy>(routes: &mut Vec<(u8, A, u32)>) {
    routes.sort_by_key(|&(len, addr, _)| (len, addr));
    routes.dedup_by(|later, kept| {
        let same = (later.0, later.1) == (kept.0, kept.1);
        if same {
            kept.2 = later.2;
        }
        same
    });
}
