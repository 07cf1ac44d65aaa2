//! What the control side shows of the bridges: their MAC tables (`greway ctl bridge show [NAME]`) and their
//! size in the status (stats JSON, Prometheus).
use crate::config::{BridgeMember, Config};
use greway_datapath::bridge::mac_table::MacTable;
use serde::Serialize;
use std::sync::Arc;

/// A bridge as the status shows it beside its counters: its MAC table's fill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeInfo {
    pub name: String,
    /// Entries in the MAC table now (aged ones until the next second's expiry).
    pub mac_entries: usize,
    /// `mac_table_size`.
    pub mac_table_size: usize,
}

/// The bridges of `cfg` over their MAC tables (config order).
pub fn bridge_infos(cfg: &Config, tables: &[Arc<MacTable>]) -> Vec<BridgeInfo> {
    cfg.bridges
        .iter()
        .zip(tables)
        .map(|(b, t)| BridgeInfo {
            name: b.name.clone(),
            mac_entries: t.len(),
            mac_table_size: t.capacity(),
        })
        .collect()
}

/// One MAC table entry of `ctl bridge show`.
#[derive(Clone, Debug, Serialize)]
struct MacJson {
    mac: String,
    /// The member as configured (`lan`, `lan.10`, `l2-b`).
    member: String,
    /// The member's VLAN, for a `PORT.VLAN` member.
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<u16>,
    age_s: u32,
}

/// `ctl bridge show [NAME]`: every bridge (or the one named) with its settings and its MAC table's live entries
/// at `now_s` (the MAC tables' clock), sorted by MAC.
pub fn bridges_json(
    cfg: &Config,
    tables: &[Arc<MacTable>],
    name: Option<&str>,
    now_s: u32,
) -> Result<serde_json::Value, String> {
    if let Some(n) = name {
        if !cfg.bridges.iter().any(|b| b.name == n) {
            let known: Vec<&str> = cfg.bridges.iter().map(|b| b.name.as_str()).collect();
            return Err(format!(
                "no bridge named {n:?} (bridges: {})",
                known.join(", ")
            ));
        }
    }
    let list: Vec<serde_json::Value> = cfg
        .bridges
        .iter()
        .zip(tables)
        .filter(|(b, _)| name.is_none_or(|n| b.name == n))
        .map(|(b, t)| {
            let macs: Vec<MacJson> = t
                .entries(now_s)
                .into_iter()
                .map(|e| {
                    let member = b
                        .members
                        .get(usize::from(e.member))
                        .cloned()
                        .unwrap_or_default();
                    let vlan = match cfg.bridge_member(&member) {
                        Ok(BridgeMember::Port { vlan, .. }) => vlan,
                        _ => None,
                    };
                    MacJson {
                        mac: crate::config::MacAddr(e.mac).to_string(),
                        member,
                        vlan,
                        age_s: e.age_s,
                    }
                })
                .collect();
            serde_json::json!({
                "name": b.name,
                "members": b.members,
                "learning": b.learning,
                "mac_table_size": b.mac_table_size,
                "aging_s": b.aging_s,
                "mac_entries": macs.len(),
                "macs": macs,
            })
        })
        .collect();
    Ok(serde_json::json!({ "bridges": list }))
}
