//! `[host]` and the host interface names (`host_if` of ports and tunnels), and the tunnels' own addresses.
use std::collections::HashMap;

use super::ports::valid_name;
use crate::config::{issue, Check, Config, IFNAMSIZ_MAX};

/// Packets per second a worker may punt, at most.
pub(crate) const PUNT_PPS_MAX: u32 = 1_000_000;

pub(super) fn check_host(cfg: &Config) -> Check {
    let Some(h) = &cfg.host else {
        // Without host interfaces a name for one means nothing: say so rather than ignore it.
        let named = cfg
            .ports
            .iter()
            .enumerate()
            .filter(|(_, p)| p.host_if.is_some())
            .map(|(i, _)| format!("port[{i}].host_if"))
            .chain(
                cfg.tunnels
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.host_if.is_some())
                    .map(|(i, _)| format!("tunnel[{i}].host_if")),
            )
            .next();
        return match named {
            Some(at) => Err(issue(
                at,
                "host_if names a host interface, which needs a [host] section",
            )),
            None => Ok(()),
        };
    };
    if let Some(ns) = &h.netns {
        if !valid_name(ns) || ns == "." || ns == ".." {
            return Err(issue(
                "host.netns",
                format!("invalid namespace name {ns:?}: use letters, digits, '_', '-' or '.'"),
            ));
        }
    }
    if h.table == 0 {
        return Err(issue(
            "host.table",
            "table must be a kernel routing table id 1..=4294967295 (254 is the main table)",
        ));
    }
    if h.punt_pps == 0 || h.punt_pps > PUNT_PPS_MAX {
        return Err(issue(
            "host.punt_pps",
            format!("punt_pps must be 1..={PUNT_PPS_MAX}, got {}", h.punt_pps),
        ));
    }
    // Interface name -> the entry that has it; an explicit name is reported at `host_if`, a derived one at
    // `name` (the name it was cut from).
    let mut names: HashMap<String, String> = HashMap::new();
    let entries = cfg
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("port[{i}]"), p.host_if.is_some(), p.host_if_name()))
        .chain(cfg.tunnels.iter().enumerate().map(|(i, t)| {
            (
                format!("tunnel[{i}]"),
                t.host_if.is_some(),
                t.host_if_name(),
            )
        }));
    for (at, explicit, name) in entries {
        let field = if explicit {
            format!("{at}.host_if")
        } else {
            format!("{at}.name")
        };
        if !valid_if_name(&name) {
            return Err(issue(
                field,
                format!(
                    "invalid host interface name {name:?}: 1..={IFNAMSIZ_MAX} letters, digits, '_', '-' or '.'"
                ),
            ));
        }
        if let Some(other) = names.insert(name.clone(), at.clone()) {
            let hint = if explicit {
                ""
            } else {
                " (the name cut to 15 characters); set host_if to another name"
            };
            return Err(issue(
                field,
                format!("host interface name {name:?} is already used by {other}{hint}"),
            ));
        }
    }
    Ok(())
}

/// A Linux interface name greway accepts: at most 15 bytes (IFNAMSIZ), the characters of port names, not `.`
/// or `..`.
pub(crate) fn valid_if_name(s: &str) -> bool {
    valid_name(s) && s.len() <= IFNAMSIZ_MAX && s != "." && s != ".."
}
