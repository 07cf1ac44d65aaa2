//! What the control side shows of the `[[mirror]]` entries (ERSPAN sessions' sources): their counters in the
//! status (stats JSON, `greway ctl mirror show`, the final summary) and in Prometheus.
use crate::control::status::escape;
use crate::stats::{Counters, MirrorCounters};
use serde::Serialize;
use std::fmt::Write;

/// One `[[mirror]]` entry (a source of an ERSPAN session): what it copies, where to, and its counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MirrorStatus {
    pub port: String,
    /// `rx`, `tx` or `both`.
    pub direction: String,
    /// The ERSPAN tunnel, its session ID and ERSPAN version (1: type II, 2: type III).
    pub tunnel: String,
    pub session: u16,
    pub version: u8,
    #[serde(flatten)]
    pub counters: MirrorCounters,
}

impl MirrorStatus {
    /// Every `[[mirror]]` of `cfg` with its counters in `total` (configuration order).
    pub fn all(cfg: &crate::config::Config, total: &Counters) -> Vec<MirrorStatus> {
        cfg.mirrors
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let e = cfg.tunnel_by_name(&m.tunnel).and_then(|t| t.erspan);
                MirrorStatus {
                    port: m.port.clone(),
                    direction: m.direction.to_string(),
                    tunnel: m.tunnel.clone(),
                    session: e.map_or(0, |e| e.session),
                    version: e.and_then(|e| e.version).unwrap_or(0),
                    counters: total.mirrors.get(i).copied().unwrap_or_default(),
                }
            })
            .collect()
    }
}

/// The `[[mirror]]` metrics: one series per entry, labelled with its port, direction, tunnel and session;
/// failures by reason. Nothing without mirrors.
pub(super) fn mirror_metrics(
    o: &mut String,
    mirrors: &[MirrorStatus],
    family: impl Fn(&mut String, &str, &str, &str),
) {
    if mirrors.is_empty() {
        return;
    }
    let labels = |m: &MirrorStatus| {
        format!(
            "port=\"{}\",direction=\"{}\",tunnel=\"{}\",session=\"{}\"",
            escape(&m.port),
            m.direction,
            escape(&m.tunnel),
            m.session
        )
    };
    type Get = fn(&MirrorCounters) -> u64;
    let per: [(&str, &str, Get); 3] = [
        (
            "greway_mirror_packets_total",
            "Mirror copies sent (ERSPAN packets).",
            |c| c.packets,
        ),
        (
            "greway_mirror_bytes_total",
            "Bytes of the frames mirrored (as captured, before truncation).",
            |c| c.bytes,
        ),
        (
            "greway_mirror_truncated_total",
            "Mirror copies sent cut to the tunnel MTU (ERSPAN T bit).",
            |c| c.truncated,
        ),
    ];
    for (name, help, f) in per {
        family(o, name, "counter", help);
        for m in mirrors {
            let _ = writeln!(o, "{name}{{{}}} {}", labels(m), f(&m.counters));
        }
    }
    let name = "greway_mirror_failures_total";
    family(o, name, "counter", "Mirror copies not sent, by reason.");
    let reasons: [(&str, Get); 4] = [
        ("no_mbuf", |c| c.no_mbuf),
        ("no_neighbor", |c| c.no_neighbor),
        ("queue_full", |c| c.queue_full),
        ("tx_full", |c| c.tx_full),
    ];
    for m in mirrors {
        for (reason, f) in reasons {
            let _ = writeln!(
                o,
                "{name}{{{},reason=\"{reason}\"}} {}",
                labels(m),
                f(&m.counters)
            );
        }
    }
}
