//! Per-worker counters (one writer each), the drop-reason table, and the snapshot handoff to the control thread.
//!
//! Contract: a worker owns its [`Counters`] and writes them with plain stores (no atomics, no locks). At a fixed
//! cadence it copies them into a recycled [`Snapshot`] and pushes that through a lock-free ring
//! ([`crossbeam::queue::ArrayQueue`]); the control thread keeps the newest snapshot per worker and sums them.
//! Snapshots are cumulative, so a lost or late one only delays what is shown, never corrupts it.
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Why a packet was dropped. Every drop in greway has exactly one of these and a counter.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Frame shorter than its headers or than its length fields say.
    Truncated,
    /// EtherType greway does not handle on this port.
    UnsupportedEthertype,
    /// IPv4/IPv6 header invalid (version, IHL, length, header checksum).
    BadIpHeader,
    /// Not addressed to us and nothing to route it to.
    NoRoute,
    /// Next hop MAC unknown and the resolution queue is full.
    NoNeighbor,
    /// TTL / hop limit reached zero.
    TtlExpired,
    /// Larger than the tunnel MTU with DF set (an ICMP error was sent when allowed).
    TooBig,
    /// GRE packet for no configured tunnel (local, remote, key).
    UnknownTunnel,
    /// GRE version not 0 (other than PPTP).
    BadGreVersion,
    /// GRE version 1 (PPTP enhanced GRE): recognised, not decapsulated.
    Pptp,
    /// GRE R, s or Recur bits set (RFC 1701 routing/recursion).
    GreReservedBits,
    /// GRE checksum present and wrong.
    BadChecksum,
    /// Tunnel requires a checksum; packet has none.
    MissingChecksum,
    /// Tunnel requires a key; packet has none, or the key differs.
    KeyMismatch,
    /// Tunnel requires sequence numbers; packet has none.
    MissingSequence,
    /// Sequence number not later than the last one delivered (RFC 2890 late or duplicate).
    LateSequence,
    /// GRE protocol type greway does not forward (CDP, ERSPAN, TEB, MPLS...).
    UnsupportedGreProtocol,
    /// RFC 6040: outer CE on a Not-ECT inner packet.
    EcnCeOnNotEct,
    /// Decapsulated packet addressed to our own tunnel endpoint (loop).
    TunnelLoop,
    /// Tunnel is down (keepalives missed).
    TunnelDown,
    /// Inner source not in the tunnel's allowed source prefixes (anti-spoofing).
    SpoofedSource,
    /// Outer IPv4 fragment (reassembly not done on this path).
    OuterFragment,
    /// An IP fragment we cannot handle on this path.
    Fragment,
    /// ARP/ND packet not for us, or malformed.
    ArpIgnored,
    /// The egress queue did not take the packet.
    TxFull,
    /// No headroom left to prepend headers.
    NoHeadroom,
    /// A chained (multi-segment) mbuf on a path that needs contiguous data.
    Segmented,
    /// Packet to a local address and protocol greway does not serve.
    LocalUnhandled,
    /// Handoff ring to the owner worker of a sequenced tunnel was full.
    HandoffFull,
    /// Keepalive reply consumed (not an error: accounts for every packet).
    KeepaliveConsumed,
    /// ARP reply / neighbour advertisement consumed after learning from it (not an error).
    NeighborLearned,
    /// ARP reply or neighbour advertisement suppressed by the reply rate limiter (no amplification).
    ReplyRateLimited,
}

impl DropReason {
    /// Number of reasons (size of counter arrays).
    pub const COUNT: usize = DropReason::ReplyRateLimited as usize + 1;

    /// All reasons, in counter order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::UnsupportedEthertype,
        DropReason::BadIpHeader,
        DropReason::NoRoute,
        DropReason::NoNeighbor,
        DropReason::TtlExpired,
        DropReason::TooBig,
        DropReason::UnknownTunnel,
        DropReason::BadGreVersion,
        DropReason::Pptp,
        DropReason::GreReservedBits,
        DropReason::BadChecksum,
        DropReason::MissingChecksum,
        DropReason::KeyMismatch,
        DropReason::MissingSequence,
        DropReason::LateSequence,
        DropReason::UnsupportedGreProtocol,
        DropReason::EcnCeOnNotEct,
        DropReason::TunnelLoop,
        DropReason::TunnelDown,
        DropReason::SpoofedSource,
        DropReason::OuterFragment,
        DropReason::Fragment,
        DropReason::ArpIgnored,
        DropReason::TxFull,
        DropReason::NoHeadroom,
        DropReason::Segmented,
        DropReason::LocalUnhandled,
        DropReason::HandoffFull,
        DropReason::KeepaliveConsumed,
        DropReason::NeighborLearned,
        DropReason::ReplyRateLimited,
    ];

    /// The snake_case name used in JSON, Prometheus labels and logs.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::UnsupportedEthertype => "unsupported_ethertype",
            DropReason::BadIpHeader => "bad_ip_header",
            DropReason::NoRoute => "no_route",
            DropReason::NoNeighbor => "no_neighbor",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::TooBig => "too_big",
            DropReason::UnknownTunnel => "unknown_tunnel",
            DropReason::BadGreVersion => "bad_gre_version",
            DropReason::Pptp => "pptp",
            DropReason::GreReservedBits => "gre_reserved_bits",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::MissingChecksum => "missing_checksum",
            DropReason::KeyMismatch => "key_mismatch",
            DropReason::MissingSequence => "missing_sequence",
            DropReason::LateSequence => "late_sequence",
            DropReason::UnsupportedGreProtocol => "unsupported_gre_protocol",
            DropReason::EcnCeOnNotEct => "ecn_ce_on_not_ect",
            DropReason::TunnelLoop => "tunnel_loop",
            DropReason::TunnelDown => "tunnel_down",
            DropReason::SpoofedSource => "spoofed_source",
            DropReason::OuterFragment => "outer_fragment",
            DropReason::Fragment => "fragment",
            DropReason::ArpIgnored => "arp_ignored",
            DropReason::TxFull => "tx_full",
            DropReason::NoHeadroom => "no_headroom",
            DropReason::Segmented => "segmented",
            DropReason::LocalUnhandled => "local_unhandled",
            DropReason::HandoffFull => "handoff_full",
            DropReason::KeepaliveConsumed => "keepalive_consumed",
            DropReason::NeighborLearned => "neighbor_learned",
            DropReason::ReplyRateLimited => "reply_rate_limited",
        }
    }
}

/// Counters of one port, as seen by one worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortCounters {
    pub rx: u64,
    pub rx_bytes: u64,
    pub tx: u64,
    pub tx_bytes: u64,
}

/// Counters of one tunnel, as seen by one worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TunnelCounters {
    pub encap: u64,
    pub encap_bytes: u64,
    pub decap: u64,
    pub decap_bytes: u64,
    pub drops: u64,
    pub keepalives_rx: u64,
    pub keepalives_reflected: u64,
}

/// All counters of one worker. Written by that worker only.
#[derive(Clone, Debug)]
pub struct Counters {
    pub ports: Vec<PortCounters>,
    pub tunnels: Vec<TunnelCounters>,
    pub drops: [u64; DropReason::COUNT],
    /// Packets whose TSC latency was recorded.
    pub latency_samples: u64,
    /// Worker loop iterations and those that received nothing (for the idle ratio).
    pub polls: u64,
    pub empty_polls: u64,
    /// ICMP errors sent (the offending packet became the error) and suppressed by the rate limiter (dropped
    /// under the offending packet's reason).
    pub icmp_errors_sent: u64,
    pub icmp_errors_suppressed: u64,
}

impl Counters {
    pub fn new(ports: usize, tunnels: usize) -> Self {
        Counters {
            ports: vec![PortCounters::default(); ports],
            tunnels: vec![TunnelCounters::default(); tunnels],
            drops: [0; DropReason::COUNT],
            latency_samples: 0,
            polls: 0,
            empty_polls: 0,
            icmp_errors_sent: 0,
            icmp_errors_suppressed: 0,
        }
    }

    /// Count a drop.
    #[inline(always)]
    pub fn drop_pkt(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }

    /// Make room for more tunnels (a runtime table change added some).
    pub fn ensure_tunnels(&mut self, n: usize) {
        if self.tunnels.len() < n {
            self.tunnels.resize(n, TunnelCounters::default());
        }
    }

    /// Add another worker's counters into these.
    pub fn merge(&mut self, o: &Counters) {
        if self.ports.len() < o.ports.len() {
            self.ports.resize(o.ports.len(), PortCounters::default());
        }
        for (a, b) in self.ports.iter_mut().zip(&o.ports) {
            a.rx += b.rx;
            a.rx_bytes += b.rx_bytes;
            a.tx += b.tx;
            a.tx_bytes += b.tx_bytes;
        }
        self.ensure_tunnels(o.tunnels.len());
        for (a, b) in self.tunnels.iter_mut().zip(&o.tunnels) {
            a.encap += b.encap;
            a.encap_bytes += b.encap_bytes;
            a.decap += b.decap;
            a.decap_bytes += b.decap_bytes;
            a.drops += b.drops;
            a.keepalives_rx += b.keepalives_rx;
            a.keepalives_reflected += b.keepalives_reflected;
        }
        for (a, b) in self.drops.iter_mut().zip(o.drops.iter()) {
            *a += b;
        }
        self.latency_samples += o.latency_samples;
        self.polls += o.polls;
        self.empty_polls += o.empty_polls;
        self.icmp_errors_sent += o.icmp_errors_sent;
        self.icmp_errors_suppressed += o.icmp_errors_suppressed;
    }

    /// Total drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Drops by reason name (non-zero only, sorted).
    pub fn drops_by_name(&self) -> BTreeMap<&'static str, u64> {
        DropReason::ALL
            .iter()
            .filter(|r| self.drops[**r as usize] != 0)
            .map(|r| (r.name(), self.drops[*r as usize]))
            .collect()
    }
}

/// Latency histogram in nanoseconds: 1 ns .. 10 s, 3 significant digits.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("static histogram bounds")
}

/// What a worker hands to the control thread: its cumulative counters and latency histogram.
pub struct Snapshot {
    pub worker: usize,
    pub counters: Counters,
    pub latency_ns: Histogram<u64>,
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let us = |v: u64| v as f64 / 1000.0;
        LatencySummary {
            count: h.len(),
            p50_us: us(h.value_at_quantile(0.50)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_table_is_complete_and_names_unique() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "ALL must be in discriminant order");
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn merge_sums_everything() {
        let mut a = Counters::new(2, 1);
        let mut b = Counters::new(2, 3);
        a.ports[0].rx = 5;
        b.ports[0].rx = 7;
        b.tunnels[2].encap = 4;
        a.drop_pkt(DropReason::BadChecksum);
        b.drop_pkt(DropReason::BadChecksum);
        b.drop_pkt(DropReason::NoRoute);
        a.merge(&b);
        assert_eq!(a.ports[0].rx, 12);
        assert_eq!(a.tunnels.len(), 3);
        assert_eq!(a.tunnels[2].encap, 4);
        assert_eq!(a.drops_by_name()["bad_checksum"], 2);
        assert_eq!(a.total_drops(), 3);
    }

    #[test]
    fn latency_summary_reads_percentiles() {
        let mut h = new_latency_histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.count, 1000);
        assert!((s.p50_us - 500.0).abs() < 2.0, "{s:?}");
        assert!((s.p99_us - 990.0).abs() < 2.0, "{s:?}");
    }
}
