//! The generator's results: the report (`--report-json`), the rates of one run, and the human form.
use super::trial::Outcome;
use super::WIRE_OVERHEAD;
use crate::stats::LatencySummary;
use serde::Serialize;

/// The report (`--report-json`).
#[derive(Debug, Serialize)]
pub struct GenReport {
    pub profile: String,
    pub tx_port: String,
    pub rx_port: Option<String>,
    /// Target rate (pps); none = as fast as possible.
    pub target_pps: Option<f64>,
    pub mean_frame_bytes: f64,
    #[serde(flatten)]
    pub result: RunResult,
    pub rfc2544: Option<Rfc2544Report>,
}

/// Counters and rates of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub duration_s: f64,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub loss_pct: f64,
    pub reordered: u64,
    pub duplicates: u64,
    /// Packets of an earlier run (trial) that arrived late.
    pub stale: u64,
    /// Received frames without a generator signature (ARP, keepalives, ...).
    pub foreign: u64,
    pub tx_mpps: f64,
    pub tx_gbps: f64,
    pub tx_gbps_wire: f64,
    pub rx_mpps: f64,
    pub rx_gbps: f64,
    pub rx_gbps_wire: f64,
    pub latency: LatencySummary,
}

/// RFC 2544 throughput search.
#[derive(Debug, Serialize)]
pub struct Rfc2544Report {
    /// Highest offered rate with loss within tolerance (pps), none if even the lowest failed.
    pub throughput_pps: Option<f64>,
    pub throughput_gbps_wire: Option<f64>,
    pub loss_tolerance_pct: f64,
    pub trials: Vec<Rfc2544Trial>,
}

#[derive(Debug, Serialize)]
pub struct Rfc2544Trial {
    pub offered_pps: f64,
    pub passed: bool,
    /// The generator sent less than 95 % of the offered rate (the trial fails: the tester was the limit).
    pub generator_limited: bool,
    #[serde(flatten)]
    pub result: RunResult,
}

pub(super) fn result_of(o: &Outcome, measured: bool) -> RunResult {
    let unique = o.received - o.duplicates;
    let lost = if measured {
        o.sent.saturating_sub(unique)
    } else {
        0
    };
    let d = o.tx_s.max(1e-9);
    let gbps = |bytes: u64| bytes as f64 * 8.0 / d / 1e9;
    RunResult {
        duration_s: o.tx_s,
        sent: o.sent,
        received: o.received,
        lost,
        loss_pct: if o.sent > 0 {
            lost as f64 * 100.0 / o.sent as f64
        } else {
            0.0
        },
        reordered: o.reordered,
        duplicates: o.duplicates,
        stale: o.stale,
        foreign: o.foreign,
        tx_mpps: o.sent as f64 / d / 1e6,
        tx_gbps: gbps(o.tx_bytes),
        tx_gbps_wire: gbps(o.tx_bytes + WIRE_OVERHEAD * o.sent),
        rx_mpps: o.received as f64 / d / 1e6,
        rx_gbps: gbps(o.rx_bytes),
        rx_gbps_wire: gbps(o.rx_bytes + WIRE_OVERHEAD * o.received),
        latency: LatencySummary::of(&o.latency_ns),
    }
}

/// The human report.
pub fn print_report(r: &GenReport) {
    let x = &r.result;
    println!("greway gen: {}", r.profile);
    println!(
        "  tx port {} -> rx port {}, target {}, mean frame {:.1} B",
        r.tx_port,
        r.rx_port.as_deref().unwrap_or("(none)"),
        r.target_pps
            .map_or("max".to_string(), |p| format!("{:.3} Mpps", p / 1e6)),
        r.mean_frame_bytes
    );
    println!(
        "  sent {} received {} lost {} ({:.4} %) reordered {} duplicates {} stale {} foreign {}",
        x.sent, x.received, x.lost, x.loss_pct, x.reordered, x.duplicates, x.stale, x.foreign
    );
    println!(
        "  tx {:.3} Mpps {:.3} Gbit/s ({:.3} Gbit/s on the wire) | rx {:.3} Mpps {:.3} Gbit/s ({:.3} on the wire) over {:.3} s",
        x.tx_mpps, x.tx_gbps, x.tx_gbps_wire, x.rx_mpps, x.rx_gbps, x.rx_gbps_wire, x.duration_s
    );
    if x.latency.count > 0 {
        println!(
            "  latency: p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us, max {:.2} us ({} samples)",
            x.latency.p50_us,
            x.latency.p99_us,
            x.latency.p999_us,
            x.latency.max_us,
            x.latency.count
        );
    }
    if let Some(rf) = &r.rfc2544 {
        match rf.throughput_pps {
            Some(p) => println!(
                "  RFC 2544 throughput at {} % loss: {:.3} Mpps ({:.3} Gbit/s on the wire) after {} trials",
                rf.loss_tolerance_pct,
                p / 1e6,
                rf.throughput_gbps_wire.unwrap_or(0.0),
                rf.trials.len()
            ),
            None => println!("  RFC 2544: no trial passed ({} trials)", rf.trials.len()),
        }
    }
}
