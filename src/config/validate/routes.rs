//! `[[route]]` and the prefix lists of tunnels: no host bits, no duplicates, a port and a reachable next hop.
use std::collections::HashMap;

use ipnet::IpNet;

use super::ports::unknown_port;
use crate::config::{issue, Check, Config, RouteCfg};

pub(super) fn host_bits_msg(p: &IpNet) -> String {
    format!("prefix {p} has host bits set; did you mean {}?", p.trunc())
}

pub(super) fn check_routes(cfg: &Config) -> Check {
    let mut seen: HashMap<IpNet, usize> = HashMap::new();
    for (i, r) in cfg.routes.iter().enumerate() {
        let at = format!("route[{i}]");
        if r.prefix.trunc() != r.prefix {
            return Err(issue(format!("{at}.prefix"), host_bits_msg(&r.prefix)));
        }
        if let Some(j) = seen.insert(r.prefix, i) {
            return Err(issue(
                format!("{at}.prefix"),
                format!("duplicate route {} (also route[{j}])", r.prefix),
            ));
        }
        check_route(cfg, &at, r)?;
    }
    Ok(())
}

/// The rules of one route that do not depend on the other routes: its port and next hop.
pub(super) fn check_route(cfg: &Config, at: &str, r: &RouteCfg) -> Check {
    let Some(port) = cfg.port_by_name(&r.port) else {
        return Err(unknown_port(cfg, format!("{at}.port"), &r.port));
    };
    if let Some(via) = r.via {
        if via.is_ipv4() != r.prefix.addr().is_ipv4() {
            return Err(issue(
                format!("{at}.via"),
                format!("next hop {via} is not of the same family as {}", r.prefix),
            ));
        }
        if !port.on_link(via) || port.has_address(via) {
            return Err(issue(
                format!("{at}.via"),
                format!(
                    "next hop {via} is not a foreign host on a subnet of port {:?}",
                    port.name
                ),
            ));
        }
    }
    Ok(())
}

pub(super) fn check_prefix_list(at: &str, list: &[IpNet]) -> Check {
    let mut seen: HashMap<IpNet, usize> = HashMap::new();
    for (k, p) in list.iter().enumerate() {
        if p.trunc() != *p {
            return Err(issue(format!("{at}[{k}]"), host_bits_msg(p)));
        }
        if let Some(j) = seen.insert(*p, k) {
            return Err(issue(
                format!("{at}[{k}]"),
                format!("duplicate prefix {p} (also {at}[{j}])"),
            ));
        }
    }
    Ok(())
}
