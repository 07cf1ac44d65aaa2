//! Every gateway rule on plain byte buffers (no EAL): frames are built here independently, the results are
//! checked with the `wire` parsers and an independent checksum.
//!
//! One file per topic; [`rig`] holds the shared gateway rig and frame builders.
mod decap;
mod encap;
mod erspan;
mod fast_path;
mod fragments;
mod icmp_errors;
mod interop;
mod keepalive;
mod local;
mod mirror;
mod neighbors;
mod pmtu;
mod punt;
mod rig;
mod sequence;
mod teb;
mod tunnel_addresses;
