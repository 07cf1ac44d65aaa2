//! Run-time route changes checked with the file's rules, in O(1) of the routes: the control plane keeps the
//! indexes (which prefixes exist, which tunnel routes a prefix) and passes what they say.
use ipnet::IpNet;

use super::routes::{check_route, check_route_into_tunnel, host_bits_msg};
use super::tunnels::{check_tunnel_mtu, no_route_to_remote, remote_reachable};
use crate::config::{issue, Check, Config, ConfigError, RouteCfg};

/// Checks a `[[route]]` about to be added at run time: `exists` says whether `cfg.routes` already has its
/// prefix; `tunnel_owner` is the tunnel that has the prefix as a tunnel route or as its connected subnet, if
/// any (the control plane's index). The error's field is `route[N].…` with N the index the route would get.
pub fn validate_route_addition(
    cfg: &Config,
    r: &RouteCfg,
    exists: bool,
    tunnel_owner: Option<usize>,
) -> Result<(), ConfigError> {
    let i = cfg.routes.len();
    let at = format!("route[{i}]");
    let check = || -> Check {
        if r.prefix.trunc() != r.prefix {
            return Err(issue(format!("{at}.prefix"), host_bits_msg(&r.prefix)));
        }
        if exists {
            let j = cfg
                .routes
                .iter()
                .position(|o| o.prefix == r.prefix)
                .unwrap_or(i);
            return Err(issue(
                format!("{at}.prefix"),
                format!("duplicate route {} (also route[{j}])", r.prefix),
            ));
        }
        check_route(cfg, &at, r)?;
        match cfg.route_tunnel(r) {
            Some(ti) => check_route_into_tunnel(cfg, &at, r, ti, tunnel_owner),
            None => match tunnel_owner {
                // A route out of a port may share its prefix with a tunnel route (which wins), not with a
                // tunnel's connected subnet.
                Some(j) if cfg.tunnels[j].subnets().any(|n| n == r.prefix) => Err(issue(
                    format!("{at}.prefix"),
                    format!(
                        "{} is the connected subnet of tunnel[{j}] {:?}",
                        r.prefix, cfg.tunnels[j].name
                    ),
                )),
                _ => Ok(()),
            },
        }
    };
    check().map_err(|iss| ConfigError::new("<runtime>", None, iss.path, iss.msg))
}

/// Checks an inner prefix about to be routed into tunnel `ti` at run time: `owner` is the tunnel that already
/// routes the prefix, if any. The error names the field the file check would (the later of two tunnels routing
/// the same prefix).
pub fn validate_tunnel_route_addition(
    cfg: &Config,
    ti: usize,
    p: &IpNet,
    owner: Option<usize>,
) -> Result<(), ConfigError> {
    let t = &cfg.tunnels[ti];
    let k = t.routes.len();
    let position = |o: usize| cfg.tunnels[o].routes.iter().position(|r| r == p);
    let check = || -> Check {
        let at = format!("tunnel[{ti}].routes");
        if p.trunc() != *p {
            return Err(issue(format!("{at}[{k}]"), host_bits_msg(p)));
        }
        match owner {
            Some(o) if cfg.tunnels[o].subnets().any(|n| n == *p) => {
                return Err(issue(
                    format!("{at}[{k}]"),
                    format!(
                        "{p} is the connected subnet of tunnel[{o}] {:?}",
                        cfg.tunnels[o].name
                    ),
                ));
            }
            Some(o) if o == ti => {
                let j = position(o).unwrap_or(k);
                return Err(issue(
                    format!("{at}[{k}]"),
                    format!("duplicate prefix {p} (also {at}[{j}])"),
                ));
            }
            Some(o) => {
                let ((later, later_k), earlier) = if o < ti {
                    ((ti, k), o)
                } else {
                    ((o, position(o).unwrap_or(0)), ti)
                };
                return Err(issue(
                    format!("tunnel[{later}].routes[{later_k}]"),
                    format!(
                        "route {p} already points into tunnel[{earlier}] {:?}; a prefix can go to one tunnel only",
                        cfg.tunnels[earlier].name
                    ),
                ));
            }
            None => {}
        }
        if p.addr().is_ipv6() {
            // The tunnel now carries IPv6 (RFC 8200's minimum MTU); it passed with its routes before.
            check_tunnel_mtu(cfg, ti, t, 1280)?;
        }
        Ok(())
    };
    check().map_err(|iss| ConfigError::new("<runtime>", None, iss.path, iss.msg))
}

/// Checks that removing the `[[route]]` for `p` at run time leaves every tunnel's remote reachable, as the file's
/// rules require. O(tunnels), plus O(routes) per tunnel whose remote this route's prefix covers.
pub fn validate_route_removal(cfg: &Config, p: &IpNet) -> Result<(), ConfigError> {
    for (i, t) in cfg.tunnels.iter().enumerate() {
        if p.contains(&t.remote) && !remote_reachable(cfg, t, Some(p)) {
            let iss = no_route_to_remote(&format!("tunnel[{i}]"), t);
            return Err(ConfigError::new("<runtime>", None, iss.path, iss.msg));
        }
    }
    Ok(())
}
