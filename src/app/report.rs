//! The final report of a run (`--stats-json`) and its human form.
use crate::control::status::{BridgeStatus, TunnelStatus};
use crate::dpdk;
use crate::stats::LatencySummary;
use serde::Serialize;
use std::collections::BTreeMap;

/// The final report (`--stats-json`).
#[derive(Debug, Serialize)]
pub struct Report {
    pub ports: BTreeMap<String, PortReport>,
    pub drops: BTreeMap<&'static str, u64>,
    /// Tunnels at the end of the run (runtime additions included, removals excluded): state and counters.
    pub tunnels: BTreeMap<String, TunnelStatus>,
    /// The bridges (`[[bridge]]`): MAC table fill and counters; absent without any.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bridges: BTreeMap<String, BridgeStatus>,
    pub mempool: MempoolReport,
    pub latency: LatencySummary,
    pub workers: usize,
    /// Packets the general rules handled because no fast path took them (see README).
    pub general_path_packets: u64,
    /// The host interfaces (`[host]`) and their counters; absent without `[host]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<crate::host::HostStatus>,
    /// The `[[mirror]]` entries and their counters; absent without mirrors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<crate::control::status::MirrorStatus>,
    pub duration_s: f64,
    /// Steady-state throughput measured by the workers themselves over their TSC-timed window.
    pub bench: BenchReport,
}

/// The workers' measurement window (see `--warmup-s`). The latency summary covers the same window.
#[derive(Debug, Default, Serialize)]
pub struct BenchReport {
    pub tsc_hz: u64,
    pub warmup_s: f64,
    /// The longest worker window, in seconds.
    pub window_s: f64,
    /// Packets sent / received by all workers in their windows.
    pub tx_pkts: u64,
    pub rx_pkts: u64,
    /// tx_pkts / window_s, in millions of packets per second (wall clock).
    pub mpps: f64,
    /// Wall-clock worker core cycles per forwarded packet: the TSC ticks of all workers' windows / tx_pkts
    /// (valid when each worker has its core to itself).
    pub wall_cycles_per_pkt: f64,
    /// CPU time the worker threads actually got in their windows (summed), in seconds.
    pub cpu_s: f64,
    /// tx_pkts / the longest worker CPU time: the rate with each worker on a core of its own. On a shared
    /// machine this is the comparable number (the wall-clock rate depends on what else runs).
    pub cpu_mpps: f64,
    /// Worker core cycles per forwarded packet from CPU time: cpu_s * tsc_hz / tx_pkts.
    pub cycles_per_pkt: f64,
}

#[derive(Debug, Serialize)]
pub struct PortReport {
    pub rx: u64,
    pub tx: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// The device's own counters (rte_eth_stats).
    pub hw: dpdk::PortStats,
}

#[derive(Debug, Serialize)]
pub struct MempoolReport {
    pub size: u32,
    pub free_at_start: u32,
    pub free_at_end: u32,
}

/// Print the final counters (the human form of `--stats-json`).
pub fn print_summary(r: &Report) {
    println!(
        "greway: ran {:.2} s with {} worker(s)",
        r.duration_s, r.workers
    );
    for (name, p) in &r.ports {
        println!(
            "  port {name:<10} rx {:>12} pkts {:>14} bytes | tx {:>12} pkts {:>14} bytes",
            p.rx, p.rx_bytes, p.tx, p.tx_bytes
        );
    }
    let drops: Vec<String> = r
        .drops
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    println!(
        "  drops: {}",
        if drops.is_empty() {
            "none".to_string()
        } else {
            drops.join(" ")
        }
    );
    for (name, t) in &r.tunnels {
        let c = &t.counters;
        println!(
            "  tunnel {name:<10} {} encap {} decap {} drops {} keepalives rx {} reflected {}",
            if t.up { "up" } else { "down" },
            c.encap,
            c.decap,
            c.drops,
            c.keepalives_rx,
            c.keepalives_reflected
        );
    }
    for m in &r.mirrors {
        let c = &m.counters;
        println!(
            "  mirror {} {} -> {} (session {}) sent {} truncated {} failed {} (no_mbuf {} no_neighbor {} queue_full {} tx_full {})",
            m.port,
            m.direction,
            m.tunnel,
            m.session,
            c.packets,
            c.truncated,
            c.failures(),
            c.no_mbuf,
            c.no_neighbor,
            c.queue_full,
            c.tx_full
        );
    }
    println!(
        "  mempool: {} mbufs, free at start {}, free at end {}",
        r.mempool.size, r.mempool.free_at_start, r.mempool.free_at_end
    );
    if r.bench.warmup_s > 0.0 {
        println!(
            "  bench: {:.3} Mpps wall, {:.3} Mpps per worker CPU time, {:.1} cycles/packet over {:.2} s \
             ({:.2} s worker CPU) after {:.2} s warm-up",
            r.bench.mpps,
            r.bench.cpu_mpps,
            r.bench.cycles_per_pkt,
            r.bench.window_s,
            r.bench.cpu_s,
            r.bench.warmup_s
        );
    }
    if r.latency.count > 0 {
        println!(
            "  latency: p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us, max {:.2} us ({} samples)",
            r.latency.p50_us,
            r.latency.p99_us,
            r.latency.p999_us,
            r.latency.max_us,
            r.latency.count
        );
    }
}
