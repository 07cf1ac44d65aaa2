//! `[[bridge]]`: names, members (l2 ports, `PORT.VLAN`, TEB tunnels), the MAC table's size and aging.
use std::collections::HashMap;

use super::ports::valid_name;
use crate::config::{issue, BridgeMember, Check, Config, PortRole, TunnelMode};
use greway_datapath::bridge::mac_table::{MAX_AGING_S, MAX_MEMBERS, MAX_SIZE};

pub(super) fn check_bridges(cfg: &Config) -> Check {
    let mut names: HashMap<&str, usize> = HashMap::new();
    // Member -> the bridge that has it (a port as a whole, one VLAN of a port, a tunnel).
    let mut owner: HashMap<BridgeMember, (usize, &str)> = HashMap::new();
    for (i, b) in cfg.bridges.iter().enumerate() {
        let at = format!("bridge[{i}]");
        if !valid_name(&b.name) {
            return Err(issue(
                format!("{at}.name"),
                format!(
                    "invalid bridge name {:?}: use letters, digits, '_', '-' or '.'",
                    b.name
                ),
            ));
        }
        if let Some(j) = names.insert(&b.name, i) {
            return Err(issue(
                format!("{at}.name"),
                format!("duplicate bridge name {:?} (also bridge[{j}])", b.name),
            ));
        }
        if b.members.len() < 2 {
            return Err(issue(
                format!("{at}.members"),
                "a bridge needs at least two members",
            ));
        }
        if b.members.len() > MAX_MEMBERS {
            return Err(issue(
                format!("{at}.members"),
                format!("a bridge has at most {MAX_MEMBERS} members"),
            ));
        }
        for (k, name) in b.members.iter().enumerate() {
            let mat = format!("{at}.members[{k}]");
            if cfg.port_index(name).is_some() && cfg.tunnel_by_name(name).is_some() {
                return Err(issue(
                    mat,
                    format!("{name:?} names both a port and a tunnel: rename one"),
                ));
            }
            let m = cfg.bridge_member(name).map_err(|e| issue(mat.clone(), e))?;
            match m {
                BridgeMember::Port { port, vlan } => {
                    let p = &cfg.ports[port];
                    if p.role() != PortRole::L2 {
                        return Err(issue(
                            mat,
                            format!(
                                "port {:?} has role {}; a bridge member needs a port with role = \"l2\"",
                                p.name,
                                p.role()
                            ),
                        ));
                    }
                    // A port as a whole and one of its VLANs in the same bridge would loop the VLAN's frames
                    // back onto the wire untagged.
                    let both = owner.iter().find_map(|(o, &(bi, first))| match o {
                        BridgeMember::Port { port: q, vlan: v }
                            if bi == i && *q == port && v.is_none() != vlan.is_none() =>
                        {
                            Some(first)
                        }
                        _ => None,
                    });
                    if let Some(first) = both {
                        return Err(issue(
                            mat,
                            format!(
                                "{name:?} and {first:?} are the same port in one bridge: make the port a \
                                 member as a whole or by VLAN, not both"
                            ),
                        ));
                    }
                }
                BridgeMember::Tunnel(t) => {
                    let tc = &cfg.tunnels[t];
                    if tc.mode != TunnelMode::Teb {
                        return Err(issue(
                            mat,
                            format!(
                                "tunnel {:?} has mode = \"{}\"; a bridge member needs a tunnel with mode = \"teb\"",
                                tc.name, tc.mode
                            ),
                        ));
                    }
                }
            }
            if let Some((j, first)) = owner.insert(m, (i, name)) {
                let msg = if j == i {
                    format!("{name:?} is a member of this bridge twice (also as {first:?})")
                } else {
                    format!(
                        "{name:?} is already a member of bridge {:?}: a member belongs to one bridge",
                        cfg.bridges[j].name
                    )
                };
                return Err(issue(mat, msg));
            }
        }
        if !(1..=MAX_SIZE).contains(&b.mac_table_size) {
            return Err(issue(
                format!("{at}.mac_table_size"),
                format!(
                    "mac_table_size must be 1..={MAX_SIZE}, got {}",
                    b.mac_table_size
                ),
            ));
        }
        if !(1..=MAX_AGING_S).contains(&b.aging_s) {
            return Err(issue(
                format!("{at}.aging_s"),
                format!("aging_s must be 1..={MAX_AGING_S}, got {}", b.aging_s),
            ));
        }
    }
    // A TEB tunnel outside every bridge would receive frames it has nowhere to send.
    for (i, t) in cfg.tunnels.iter().enumerate() {
        if t.mode == TunnelMode::Teb && !owner.contains_key(&BridgeMember::Tunnel(i)) {
            return Err(issue(
                format!("tunnel[{i}].mode"),
                format!(
                    "tunnel {:?} has mode = \"teb\" but is a member of no bridge: add it to a [[bridge]]'s members",
                    t.name
                ),
            ));
        }
    }
    Ok(())
}
