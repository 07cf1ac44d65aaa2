//! The control side of the `[[mirror]]` entries (ERSPAN sessions' sources): their run-unique ids, which carry
//! their counters across reloads, and what the status shows of them (stats JSON, `greway ctl mirror show`, the
//! final summary, Prometheus).
use crate::config::diff::mirror_kept;
use crate::config::Config;
use crate::control::status::escape;
use crate::stats::{Counters, MirrorCounters};
use serde::Serialize;
use std::fmt::Write;

/// The run-unique ids of `new`'s `[[mirror]]` entries (file order) when `new` replaces `old`, whose entries have
/// `old_ids`: an entry the change keeps ([`mirror_kept`]: the same port, direction and tunnel, the tunnel itself
/// kept) keeps its id, and with it its counters; any other entry takes the next id of `next`. Ids are never
/// reused, so a removed entry's counters are never shown again and a new one starts from zero.
pub fn mirror_ids(old: &Config, old_ids: &[u32], new: &Config, next: &mut u32) -> Vec<u32> {
    new.mirrors
        .iter()
        .map(|m| {
            let kept = old
                .mirrors
                .iter()
                .zip(old_ids)
                .find(|(o, _)| mirror_kept(old, o, new, m));
            match kept {
                Some((_, &id)) => id,
                None => {
                    *next += 1;
                    *next - 1
                }
            }
        })
        .collect()
}

/// One `[[mirror]]` entry (a source of an ERSPAN session): what it copies, where to, and its counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MirrorStatus {
    /// Its run-unique id: the same while reloads keep the entry, a new one when an entry is added or changed.
    pub id: u32,
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
    /// Every `[[mirror]]` of `cfg` (configuration order), whose run-unique ids are `ids`, with its counters in
    /// `total`.
    pub fn all(cfg: &Config, ids: &[u32], total: &Counters) -> Vec<MirrorStatus> {
        cfg.mirrors
            .iter()
            .zip(ids)
            .map(|(m, &id)| {
                let e = cfg.tunnel_by_name(&m.tunnel).and_then(|t| t.erspan);
                MirrorStatus {
                    id,
                    port: m.port.clone(),
                    direction: m.direction.to_string(),
                    tunnel: m.tunnel.clone(),
                    session: e.map_or(0, |e| e.session),
                    version: e.and_then(|e| e.version).unwrap_or(0),
                    counters: total.mirrors.get(id as usize).copied().unwrap_or_default(),
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
