//! What the control thread shows the outside: a [`Status`] built from the merged worker snapshots a few times a
//! second, and its renderings (Prometheus text exposition, DPDK telemetry dictionaries, JSON for `greway ctl
//! stats`). Everything here runs on control-side threads; workers never see it.
use crate::control::bridges::BridgeInfo;
use crate::control::mirrors::mirror_metrics;
pub use crate::control::mirrors::MirrorStatus;
use crate::dpdk::telemetry::TelValue;
use crate::stats::{
    BridgeCounters, Counters, DropReason, LatencyBuckets, LatencySummary, TunnelCounters,
};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One port's counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PortStatus {
    pub rx: u64,
    pub tx: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// One tunnel: its state and counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TunnelStatus {
    pub up: bool,
    /// The path MTU in use (outer packet bytes): the configured one, or less while a lower one is learned.
    pub pmtu: u16,
    #[serde(flatten)]
    pub counters: TunnelCounters,
}

/// One bridge: its MAC table's fill and its counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BridgeStatus {
    pub mac_entries: usize,
    pub mac_table_size: usize,
    #[serde(flatten)]
    pub counters: BridgeCounters,
}

/// A tunnel as the control side knows it: name, run-unique id, whether it is up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelInfo {
    pub name: String,
    pub id: u64,
    pub up: bool,
    /// The path MTU in use (outer packet bytes).
    pub pmtu: u16,
}

/// The gateway's state at one instant.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Status {
    pub uptime_s: f64,
    pub workers: usize,
    pub ports: BTreeMap<String, PortStatus>,
    /// Every drop reason, zero or not.
    pub drops: BTreeMap<&'static str, u64>,
    pub tunnels: BTreeMap<String, TunnelStatus>,
    pub tunnels_up: usize,
    pub tunnels_down: usize,
    /// The bridges (`[[bridge]]`); absent without any.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bridges: BTreeMap<String, BridgeStatus>,
    pub latency: LatencySummary,
    pub icmp_errors_sent: u64,
    pub icmp_errors_suppressed: u64,
    /// Packets the general rules handled (no fast path took them).
    pub general_path_packets: u64,
    pub mempool_available: u32,
    /// Mbufs in the packet pool (`[dataplane] mbufs`): the scale of `mempool_available`.
    pub mempool_size: u32,
    /// The host interfaces (`[host]`) and their counters; absent without `[host]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<crate::host::HostStatus>,
    /// The `[[mirror]]` entries and their counters; absent without mirrors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<MirrorStatus>,
    #[serde(skip)]
    pub latency_buckets: LatencyBuckets,
}

/// The host path's metrics (with `[host]`): the workers' totals, then one series per host interface.
fn host_metrics(
    o: &mut String,
    h: &crate::host::HostStatus,
    family: impl Fn(&mut String, &str, &str, &str),
) {
    let totals: [(&str, &str, u64); 3] = [
        (
            "greway_host_punted_packets_total",
            "Packets the workers handed to the host interfaces.",
            h.punted,
        ),
        (
            "greway_host_punted_bytes_total",
            "IP bytes the workers handed to the host interfaces.",
            h.punted_bytes,
        ),
        (
            "greway_host_from_host_packets_total",
            "Packets from the host interfaces the workers sent or dropped.",
            h.from_host,
        ),
    ];
    for (name, help, v) in totals {
        family(o, name, "counter", help);
        let _ = writeln!(o, "{name} {v}");
    }
    type Get = fn(&crate::host::HostIfCounters) -> u64;
    let per_if: [(&str, &str, Get); 6] = [
        (
            "greway_host_to_kernel_packets_total",
            "Packets written to the host interface.",
            |c| c.to_kernel,
        ),
        (
            "greway_host_to_kernel_bytes_total",
            "IP bytes written to the host interface.",
            |c| c.to_kernel_bytes,
        ),
        (
            "greway_host_to_kernel_dropped_total",
            "Packets the kernel did not take from the host interface.",
            |c| c.to_kernel_dropped,
        ),
        (
            "greway_host_from_kernel_packets_total",
            "Packets the kernel sent out of the host interface, passed to a worker.",
            |c| c.from_kernel,
        ),
        (
            "greway_host_from_kernel_bytes_total",
            "IP bytes the kernel sent out of the host interface, passed to a worker.",
            |c| c.from_kernel_bytes,
        ),
        (
            "greway_host_from_kernel_dropped_total",
            "Packets the kernel sent out of the host interface that no worker could take.",
            |c| c.from_kernel_dropped,
        ),
    ];
    if let Some(r) = &h.routes {
        let learned: [(&str, &str, &str, u64); 5] = [
            (
                "greway_host_routes_learned",
                "gauge",
                "Kernel routes installed now (origin kernel).",
                r.learned,
            ),
            (
                "greway_host_routes_installed_total",
                "counter",
                "Kernel routes installed or replaced.",
                r.installed,
            ),
            (
                "greway_host_routes_refused_total",
                "counter",
                "Kernel routes not installed (a config route on the prefix, or refused).",
                r.refused,
            ),
            (
                "greway_host_route_dumps_total",
                "counter",
                "Dumps of the kernel table (the first and one per resync).",
                r.dumps,
            ),
            (
                "greway_host_route_overruns_total",
                "counter",
                "Lost route messages or interrupted dumps that caused a resync.",
                r.overruns,
            ),
        ];
        for (name, kind, help, v) in learned {
            family(o, name, kind, help);
            let _ = writeln!(o, "{name} {v}");
        }
    }
    for (name, help, f) in per_if {
        family(o, name, "counter", help);
        for (ifname, s) in &h.interfaces {
            let _ = writeln!(
                o,
                "{name}{{host_if=\"{}\",{}=\"{}\"}} {}",
                escape(ifname),
                s.kind,
                escape(&s.name),
                f(&s.counters)
            );
        }
    }
}

impl Status {
    /// Build from merged counters (tunnels keyed by id), the merged histogram and the current tunnels.
    pub fn build(
        port_names: &[String],
        total: &Counters,
        hist: &Histogram<u64>,
        tunnels: &[TunnelInfo],
        workers: usize,
        uptime_s: f64,
        mempool_available: u32,
    ) -> Status {
        let ports = port_names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let c = total.ports.get(i).copied().unwrap_or_default();
                (
                    n.clone(),
                    PortStatus {
                        rx: c.rx,
                        tx: c.tx,
                        rx_bytes: c.rx_bytes,
                        tx_bytes: c.tx_bytes,
                    },
                )
            })
            .collect();
        let drops = DropReason::ALL
            .iter()
            .map(|r| (r.name(), total.drops[*r as usize]))
            .collect();
        let tunnels: BTreeMap<String, TunnelStatus> = tunnels
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    TunnelStatus {
                        up: t.up,
                        pmtu: t.pmtu,
                        counters: total.tunnel_by_id(t.id).copied().unwrap_or_default(),
                    },
                )
            })
            .collect();
        let tunnels_up = tunnels.values().filter(|t| t.up).count();
        Status {
            uptime_s,
            workers,
            ports,
            drops,
            tunnels_down: tunnels.len() - tunnels_up,
            tunnels_up,
            tunnels,
            bridges: BTreeMap::new(),
            latency: LatencySummary::of(hist),
            icmp_errors_sent: total.icmp_errors_sent,
            icmp_errors_suppressed: total.icmp_errors_suppressed,
            general_path_packets: total.general_path,
            mempool_available,
            mempool_size: 0,
            host: None,
            mirrors: Vec::new(),
            latency_buckets: LatencyBuckets::of(hist),
        }
    }

    /// Fill in the bridges from the merged counters (each bridge's at the index of its run-unique id).
    pub fn set_bridges(&mut self, bridges: &[BridgeInfo], total: &Counters) {
        self.bridges = bridges
            .iter()
            .map(|b| {
                let i = b.id as usize;
                (
                    b.name.clone(),
                    BridgeStatus {
                        mac_entries: b.mac_entries,
                        mac_table_size: b.mac_table_size,
                        counters: total.bridges.get(i).copied().unwrap_or_default(),
                    },
                )
            })
            .collect();
    }

    /// The Prometheus text exposition format (version 0.0.4) of this status.
    pub fn prometheus(&self) -> String {
        let mut o = String::with_capacity(8192);
        let family = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} {kind}");
        };
        family(
            &mut o,
            "greway_uptime_seconds",
            "gauge",
            "Seconds since the workers started.",
        );
        let _ = writeln!(o, "greway_uptime_seconds {}", self.uptime_s);
        family(
            &mut o,
            "greway_workers",
            "gauge",
            "Datapath worker threads.",
        );
        let _ = writeln!(o, "greway_workers {}", self.workers);
        let port_metrics: [Family<PortStatus>; 4] = [
            (
                "greway_port_rx_packets_total",
                "Packets received on the port.",
                |p| p.rx,
            ),
            (
                "greway_port_tx_packets_total",
                "Packets sent on the port.",
                |p| p.tx,
            ),
            (
                "greway_port_rx_bytes_total",
                "Bytes received on the port.",
                |p| p.rx_bytes,
            ),
            (
                "greway_port_tx_bytes_total",
                "Bytes sent on the port.",
                |p| p.tx_bytes,
            ),
        ];
        for (name, help, f) in port_metrics {
            family(&mut o, name, "counter", help);
            for (port, p) in &self.ports {
                let _ = writeln!(o, "{name}{{port=\"{}\"}} {}", escape(port), f(p));
            }
        }
        family(
            &mut o,
            "greway_drops_total",
            "counter",
            "Packets dropped (or consumed), by reason.",
        );
        for (reason, n) in &self.drops {
            let _ = writeln!(o, "greway_drops_total{{reason=\"{reason}\"}} {n}");
        }
        family(
            &mut o,
            "greway_tunnel_up",
            "gauge",
            "1 when the tunnel is up (no keepalive configured, or keepalives answered), 0 when down.",
        );
        for (t, s) in &self.tunnels {
            let _ = writeln!(
                o,
                "greway_tunnel_up{{tunnel=\"{}\"}} {}",
                escape(t),
                u8::from(s.up)
            );
        }
        family(
            &mut o,
            "greway_tunnel_pmtu_bytes",
            "gauge",
            "Path MTU the tunnel uses (outer IP packet bytes): the configured one, or a lower one learned from ICMP.",
        );
        for (t, s) in &self.tunnels {
            let _ = writeln!(
                o,
                "greway_tunnel_pmtu_bytes{{tunnel=\"{}\"}} {}",
                escape(t),
                s.pmtu
            );
        }
        let tunnel_metrics: [Family<TunnelCounters>; 7] = [
            (
                "greway_tunnel_encap_packets_total",
                "Packets encapsulated into the tunnel.",
                |c| c.encap,
            ),
            (
                "greway_tunnel_encap_bytes_total",
                "Bytes encapsulated into the tunnel (inner frames).",
                |c| c.encap_bytes,
            ),
            (
                "greway_tunnel_decap_packets_total",
                "Packets decapsulated from the tunnel.",
                |c| c.decap,
            ),
            (
                "greway_tunnel_decap_bytes_total",
                "Bytes decapsulated from the tunnel.",
                |c| c.decap_bytes,
            ),
            (
                "greway_tunnel_drops_total",
                "Packets of the tunnel dropped (any reason).",
                |c| c.drops,
            ),
            (
                "greway_tunnel_keepalives_received_total",
                "Cisco keepalives received.",
                |c| c.keepalives_rx,
            ),
            (
                "greway_tunnel_keepalives_reflected_total",
                "Cisco keepalives reflected to the peer.",
                |c| c.keepalives_reflected,
            ),
        ];
        for (name, help, f) in tunnel_metrics {
            family(&mut o, name, "counter", help);
            for (t, s) in &self.tunnels {
                let _ = writeln!(o, "{name}{{tunnel=\"{}\"}} {}", escape(t), f(&s.counters));
            }
        }
        if !self.bridges.is_empty() {
            self.prometheus_bridges(&mut o, family);
        }
        mirror_metrics(&mut o, &self.mirrors, family);
        family(
            &mut o,
            "greway_general_path_packets_total",
            "counter",
            "Packets handled by the general rules because no fast path took them.",
        );
        let _ = writeln!(
            o,
            "greway_general_path_packets_total {}",
            self.general_path_packets
        );
        family(
            &mut o,
            "greway_icmp_errors_sent_total",
            "counter",
            "ICMP errors sent.",
        );
        let _ = writeln!(o, "greway_icmp_errors_sent_total {}", self.icmp_errors_sent);
        family(
            &mut o,
            "greway_icmp_errors_suppressed_total",
            "counter",
            "ICMP errors suppressed by the rate limiter.",
        );
        let _ = writeln!(
            o,
            "greway_icmp_errors_suppressed_total {}",
            self.icmp_errors_suppressed
        );
        family(
            &mut o,
            "greway_mempool_available_mbufs",
            "gauge",
            "Free mbufs in the packet pool.",
        );
        let _ = writeln!(
            o,
            "greway_mempool_available_mbufs {}",
            self.mempool_available
        );
        family(
            &mut o,
            "greway_mempool_size_mbufs",
            "gauge",
            "Mbufs in the packet pool ([dataplane] mbufs).",
        );
        let _ = writeln!(o, "greway_mempool_size_mbufs {}", self.mempool_size);
        family(
            &mut o,
            "greway_latency_seconds",
            "histogram",
            "Time from rx burst to tx of forwarded packets.",
        );
        let b = &self.latency_buckets;
        for (le, n) in &b.le_ns {
            let _ = writeln!(
                o,
                "greway_latency_seconds_bucket{{le=\"{}\"}} {n}",
                *le as f64 / 1e9
            );
        }
        let _ = writeln!(
            o,
            "greway_latency_seconds_bucket{{le=\"+Inf\"}} {}",
            b.count
        );
        let _ = writeln!(o, "greway_latency_seconds_sum {}", b.sum_ns as f64 / 1e9);
        let _ = writeln!(o, "greway_latency_seconds_count {}", b.count);
        if let Some(h) = &self.host {
            host_metrics(&mut o, h, family);
        }
        o
    }

    /// `/greway/stats` for DPDK telemetry: a flat dictionary (22.11 dictionaries nest only arrays) with
    /// `/`-separated keys such as `port/inside/rx` and `drops/bad_checksum`.
    pub fn telemetry_stats(&self) -> Vec<(String, TelValue)> {
        let mut v = vec![
            (
                "uptime_ms".into(),
                TelValue::U64((self.uptime_s * 1e3) as u64),
            ),
            ("workers".into(), TelValue::U64(self.workers as u64)),
            ("tunnels_up".into(), TelValue::U64(self.tunnels_up as u64)),
            (
                "tunnels_down".into(),
                TelValue::U64(self.tunnels_down as u64),
            ),
        ];
        for (n, p) in &self.ports {
            let n = tel_key(n);
            v.push((format!("port/{n}/rx"), TelValue::U64(p.rx)));
            v.push((format!("port/{n}/tx"), TelValue::U64(p.tx)));
            v.push((format!("port/{n}/rx_bytes"), TelValue::U64(p.rx_bytes)));
            v.push((format!("port/{n}/tx_bytes"), TelValue::U64(p.tx_bytes)));
        }
        v.push((
            "drops/total".into(),
            TelValue::U64(self.drops.values().sum()),
        ));
        for (r, n) in &self.drops {
            v.push((format!("drops/{r}"), TelValue::U64(*n)));
        }
        v.push((
            "general_path_packets".into(),
            TelValue::U64(self.general_path_packets),
        ));
        v.extend(self.telemetry_latency());
        v
    }

    /// `/greway/tunnels`: `NAME/up`, `NAME/encap`, ... per tunnel (names with other characters than
    /// alphanumerics and `_` get `_` there).
    pub fn telemetry_tunnels(&self) -> Vec<(String, TelValue)> {
        let mut v = Vec::new();
        for (n, t) in &self.tunnels {
            let n = tel_key(n);
            let c = &t.counters;
            v.push((format!("{n}/up"), TelValue::U64(u64::from(t.up))));
            v.push((format!("{n}/pmtu"), TelValue::U64(u64::from(t.pmtu))));
            v.push((format!("{n}/encap"), TelValue::U64(c.encap)));
            v.push((format!("{n}/encap_bytes"), TelValue::U64(c.encap_bytes)));
            v.push((format!("{n}/decap"), TelValue::U64(c.decap)));
            v.push((format!("{n}/decap_bytes"), TelValue::U64(c.decap_bytes)));
            v.push((format!("{n}/drops"), TelValue::U64(c.drops)));
            v.push((format!("{n}/keepalives_rx"), TelValue::U64(c.keepalives_rx)));
        }
        v
    }

    /// `/greway/latency`: sample count and percentiles in nanoseconds.
    pub fn telemetry_latency(&self) -> Vec<(String, TelValue)> {
        let ns = |us: f64| TelValue::U64((us * 1e3).round() as u64);
        vec![
            ("latency/count".into(), TelValue::U64(self.latency.count)),
            ("latency/p50_ns".into(), ns(self.latency.p50_us)),
            ("latency/p99_ns".into(), ns(self.latency.p99_us)),
            ("latency/p999_ns".into(), ns(self.latency.p999_us)),
            ("latency/max_ns".into(), ns(self.latency.max_us)),
        ]
    }
}

impl Status {
    /// The bridges' metrics: the MAC table's fill (gauges) and the counters, labelled `bridge`.
    fn prometheus_bridges(&self, o: &mut String, family: impl Fn(&mut String, &str, &str, &str)) {
        let gauges: [Family<BridgeStatus>; 2] = [
            (
                "greway_bridge_mac_entries",
                "MACs in the bridge's MAC table (aged ones until the next second's expiry).",
                |b| b.mac_entries as u64,
            ),
            (
                "greway_bridge_mac_table_size",
                "The bridge's mac_table_size: the most MACs it learns.",
                |b| b.mac_table_size as u64,
            ),
        ];
        let counters: [Family<BridgeCounters>; 8] = [
            (
                "greway_bridge_rx_frames_total",
                "Frames received from the bridge's members.",
                |c| c.rx,
            ),
            (
                "greway_bridge_forwarded_frames_total",
                "Known unicast frames sent to the one member that learned their destination.",
                |c| c.forwarded,
            ),
            (
                "greway_bridge_flooded_frames_total",
                "Frames flooded to every other member (broadcast, multicast, unknown unicast, learning off).",
                |c| c.flooded,
            ),
            (
                "greway_bridge_flood_copies_total",
                "Copies made for flooding.",
                |c| c.flood_copies,
            ),
            (
                "greway_bridge_flood_copy_failed_total",
                "Flood copies that could not be made (no mbuf, deferred queue full): a member missed a frame.",
                |c| c.flood_copy_failed,
            ),
            (
                "greway_bridge_learned_total",
                "Source MACs learned.",
                |c| c.learned,
            ),
            (
                "greway_bridge_moved_total",
                "Source MACs that moved to another member.",
                |c| c.moved,
            ),
            (
                "greway_bridge_table_full_total",
                "Source MACs not learned because the MAC table was full.",
                |c| c.table_full,
            ),
        ];
        for (name, help, f) in gauges {
            family(o, name, "gauge", help);
            for (b, s) in &self.bridges {
                let _ = writeln!(o, "{name}{{bridge=\"{}\"}} {}", escape(b), f(s));
            }
        }
        for (name, help, f) in counters {
            family(o, name, "counter", help);
            for (b, s) in &self.bridges {
                let _ = writeln!(o, "{name}{{bridge=\"{}\"}} {}", escape(b), f(&s.counters));
            }
        }
    }
}

/// A metric family of a per-port or per-tunnel counter: name, help, and how to read the value.
type Family<T> = (&'static str, &'static str, fn(&T) -> u64);

/// DPDK telemetry names allow alphanumerics, `_` and `/` only.
fn tel_key(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Escape a Prometheus label value (backslash, double quote, newline).
pub(super) fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_latency_histogram;

    fn sample() -> Status {
        let mut c = Counters::new(2, 2);
        c.ports[0].rx = 10;
        c.ports[1].tx = 9;
        c.tunnels[1].encap = 7;
        c.drop_pkt(DropReason::BadChecksum);
        let mut h = new_latency_histogram();
        h.record_n(1500, 9).unwrap();
        Status::build(
            &["inside".into(), "outside".into()],
            &c,
            &h,
            &[
                TunnelInfo {
                    name: "a\"b".into(),
                    id: 0,
                    up: false,
                    pmtu: 1500,
                },
                TunnelInfo {
                    name: "site-b".into(),
                    id: 1,
                    up: true,
                    pmtu: 1400,
                },
            ],
            1,
            2.5,
            100,
        )
    }

    #[test]
    fn prometheus_text_has_families_labels_and_histogram() {
        let s = sample();
        let t = s.prometheus();
        assert!(
            t.contains("greway_port_rx_packets_total{port=\"inside\"} 10\n"),
            "{t}"
        );
        assert!(t.contains("greway_drops_total{reason=\"bad_checksum\"} 1\n"));
        assert!(t.contains("greway_tunnel_encap_packets_total{tunnel=\"site-b\"} 7\n"));
        assert!(
            t.contains("greway_tunnel_up{tunnel=\"a\\\"b\"} 0\n"),
            "escaped: {t}"
        );
        assert!(t.contains("greway_tunnel_up{tunnel=\"site-b\"} 1\n"));
        assert!(t.contains("# TYPE greway_tunnel_pmtu_bytes gauge\n"), "{t}");
        assert!(
            t.contains("greway_tunnel_pmtu_bytes{tunnel=\"site-b\"} 1400\n"),
            "{t}"
        );
        assert!(t.contains("greway_latency_seconds_bucket{le=\"+Inf\"} 9\n"));
        assert!(
            t.contains("greway_latency_seconds_bucket{le=\"0.000002\"} 9\n"),
            "{t}"
        );
        assert!(t.contains("greway_latency_seconds_bucket{le=\"0.000001\"} 0\n"));
        assert!(t.contains("greway_latency_seconds_count 9\n"));
        // Every sample line belongs to a declared family and every family is declared once.
        let mut declared = std::collections::HashSet::new();
        for l in t.lines() {
            if let Some(r) = l.strip_prefix("# TYPE ") {
                assert!(declared.insert(r.split(' ').next().unwrap().to_string()));
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                let base = name
                    .strip_suffix("_bucket")
                    .or_else(|| name.strip_suffix("_sum"))
                    .or_else(|| name.strip_suffix("_count"))
                    .filter(|b| declared.contains(*b))
                    .unwrap_or(name);
                assert!(declared.contains(base), "undeclared {name}");
                let value = l.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "bad value in {l}");
            }
        }
    }

    #[test]
    fn telemetry_keys_are_valid_names() {
        let s = sample();
        for (k, _) in s
            .telemetry_stats()
            .into_iter()
            .chain(s.telemetry_tunnels())
            .chain(s.telemetry_latency())
        {
            assert!(
                k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/'),
                "{k}"
            );
            assert!(k.len() < 128);
        }
        assert!(s
            .telemetry_tunnels()
            .contains(&("site_b/encap".into(), TelValue::U64(7))));
        assert_eq!(s.tunnels_up, 1);
        assert_eq!(s.tunnels_down, 1);
    }

    #[test]
    fn a_tunnels_json_keeps_the_documented_key_order() {
        // docs/observability.md shows a tunnel as `up, pmtu, encap, encap_bytes, decap, decap_bytes, drops, ...`;
        // the counters' memory layout differs (see `TunnelCounters`), their JSON must not.
        let s = sample();
        let j = serde_json::to_string(&s.tunnels["site-b"]).unwrap();
        assert_eq!(
            j,
            "{\"up\":true,\"pmtu\":1400,\"encap\":7,\"encap_bytes\":0,\"decap\":0,\"decap_bytes\":0,\
             \"drops\":0,\"keepalives_rx\":0,\"keepalives_reflected\":0}"
        );
    }
}
