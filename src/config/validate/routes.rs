//! `[[route]]` and the prefix lists of tunnels: no host bits, no duplicates, a port and a reachable next hop.
use std::collections::HashMap;

use ipnet::IpNet;

use super::ports::unknown_port;
use super::tunnels::check_tunnel_mtu;
use crate::config::{issue, Check, Config, Issue, PortRole, RouteCfg, TunnelMode};

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
        // Routes into tunnels are checked once the tunnels are (`check_routes_into_tunnels`).
        if r.port.is_some() && r.tunnel.is_none() {
            check_route(cfg, &at, r)?;
        }
    }
    Ok(())
}

/// The `[[route]]`s that do not name a port alone: where they go, then against the tunnels' prefixes. `owners`
/// maps each tunnel route and tunnel subnet to its tunnel. Run after the tunnels are checked.
pub(super) fn check_routes_into_tunnels(cfg: &Config, owners: &HashMap<IpNet, usize>) -> Check {
    for (i, r) in cfg.routes.iter().enumerate() {
        if r.port.is_some() && r.tunnel.is_none() {
            continue;
        }
        let at = format!("route[{i}]");
        check_route(cfg, &at, r)?;
        if let Some(ti) = cfg.route_tunnel(r) {
            check_route_into_tunnel(cfg, &at, r, ti, owners.get(&r.prefix).copied())?;
        }
    }
    Ok(())
}

/// The rules of one route that do not depend on the other routes: where it goes (exactly one of `port`,
/// `tunnel`, or a `via` in a tunnel's subnet) and its next hop.
pub(super) fn check_route(cfg: &Config, at: &str, r: &RouteCfg) -> Check {
    if let Some(via) = r.via {
        if via.is_ipv4() != r.prefix.addr().is_ipv4() {
            return Err(issue(
                format!("{at}.via"),
                format!("next hop {via} is not of the same family as {}", r.prefix),
            ));
        }
    }
    match (&r.port, &r.tunnel, r.via) {
        (Some(_), Some(_), _) => Err(issue(
            format!("{at}.tunnel"),
            "give either port or tunnel, not both",
        )),
        (None, Some(_), Some(via)) => Err(issue(
            format!("{at}.via"),
            format!(
                "via {via} cannot be combined with tunnel: a route with tunnel goes straight into it (leave \
                 out tunnel to route via a peer on a tunnel's subnet)"
            ),
        )),
        (None, Some(name), None) => match cfg.tunnel_by_name(name) {
            Some(t) if t.mode != TunnelMode::Ip => Err(issue(
                format!("{at}.tunnel"),
                format!(
                    "tunnel {name:?} is a {} tunnel: no routed IP goes into it",
                    t.mode
                ),
            )),
            Some(_) => Ok(()),
            None => Err(unknown_tunnel(cfg, format!("{at}.tunnel"), name)),
        },
        (None, None, Some(via)) => {
            if cfg.tunnel_for_next_hop(via).is_some() {
                return Ok(());
            }
            let why = match cfg.tunnels.iter().find(|t| t.has_address(via)) {
                Some(t) => format!("next hop {via} is an address of tunnel {:?} itself", t.name),
                None => format!(
                    "next hop {via} is on no tunnel's subnet; a next hop on a port's subnet needs port"
                ),
            };
            Err(issue(format!("{at}.via"), why))
        }
        (None, None, None) => Err(issue(
            at.to_string(),
            "a route needs port, tunnel, or a via on a tunnel's subnet",
        )),
        (Some(name), None, via) => {
            let Some(port) = cfg.port_by_name(name) else {
                return Err(unknown_port(cfg, format!("{at}.port"), name));
            };
            if port.role() == PortRole::L2 {
                return Err(issue(
                    format!("{at}.port"),
                    format!("port {name:?} is an l2 port: no routed IP leaves by it"),
                ));
            }
            if let Some(via) = via {
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
    }
}

/// A route into tunnel `ti` against the tunnels' own prefixes: `owner` is the tunnel that already has its
/// prefix, as a route or as its connected subnet (a prefix goes into one tunnel only). An IPv6 prefix needs the
/// tunnel MTU to allow IPv6.
pub(super) fn check_route_into_tunnel(
    cfg: &Config,
    at: &str,
    r: &RouteCfg,
    ti: usize,
    owner: Option<usize>,
) -> Check {
    let p = r.prefix;
    if let Some(j) = owner {
        let o = &cfg.tunnels[j];
        let what = if o.subnets().any(|n| n == p) {
            "is the connected subnet of"
        } else {
            "already points into"
        };
        return Err(issue(
            format!("{at}.prefix"),
            format!(
                "{p} {what} tunnel[{j}] {:?}; a prefix can go to one tunnel only",
                o.name
            ),
        ));
    }
    if p.addr().is_ipv6() {
        check_tunnel_mtu(cfg, ti, &cfg.tunnels[ti], 1280)?;
    }
    Ok(())
}

pub(crate) fn unknown_tunnel(cfg: &Config, path: String, name: &str) -> Issue {
    let known: Vec<&str> = cfg.tunnels.iter().map(|t| t.name.as_str()).collect();
    issue(
        path,
        format!("unknown tunnel {name:?} (tunnels: {})", known.join(", ")),
    )
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
