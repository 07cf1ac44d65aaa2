//! `[[neighbor]]`: static neighbour entries on a port's subnets.
use std::collections::HashMap;
use std::net::IpAddr;

use super::ports::unknown_port;
use crate::config::{issue, Check, Config, MacAddr};

pub(super) fn check_neighbors(cfg: &Config) -> Check {
    let mut seen: HashMap<(&str, IpAddr), usize> = HashMap::new();
    for (i, n) in cfg.neighbors.iter().enumerate() {
        let at = format!("neighbor[{i}]");
        let Some(port) = cfg.port_by_name(&n.port) else {
            return Err(unknown_port(cfg, format!("{at}.port"), &n.port));
        };
        if !port.on_link(n.ip) || port.has_address(n.ip) {
            return Err(issue(
                format!("{at}.ip"),
                format!(
                    "neighbor {} is not a foreign host on a subnet of port {:?}",
                    n.ip, port.name
                ),
            ));
        }
        if n.mac.is_multicast() || n.mac == MacAddr::ZERO {
            return Err(issue(
                format!("{at}.mac"),
                format!("neighbor MAC {} must be a non-zero unicast address", n.mac),
            ));
        }
        if let Some(j) = seen.insert((&n.port, n.ip), i) {
            return Err(issue(
                format!("{at}.ip"),
                format!(
                    "duplicate neighbor {} on port {:?} (also neighbor[{j}])",
                    n.ip, n.port
                ),
            ));
        }
    }
    Ok(())
}
