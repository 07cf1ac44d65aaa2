//! Semantic rules on the typed [`Config`], one module per section. Each rule reports an [`Issue`]: the field path
//! and a message; [`super::location`] turns the path into a line.
mod bridges;
mod dataplane;
mod host;
mod mirrors;
mod neighbors;
mod ports;
mod routes;
mod runtime;
mod tunnels;

use std::collections::HashMap;

use super::{issue, Check, Config, TunnelMode};
use crate::gen::config::check_generator_issue;

use bridges::check_bridges;
use dataplane::check_dataplane;
#[cfg(test)]
pub(super) use dataplane::parse_core_list;
use host::check_host;
use mirrors::check_mirrors;
use neighbors::check_neighbors;
use ports::check_ports;
pub(super) use ports::check_roles_for_tunnels;
pub(crate) use ports::unknown_port;
use routes::{check_routes, check_routes_into_tunnels};
pub use runtime::{
    validate_route_addition, validate_route_removal, validate_tunnel_route_addition,
};
pub(super) use tunnels::{check_tunnel, route_index};

pub(super) fn validate(cfg: &Config) -> Check {
    check_dataplane(cfg)?;
    check_ports(cfg)?;
    check_roles_for_tunnels(
        cfg,
        !cfg.tunnels.is_empty(),
        cfg.tunnels.iter().any(|t| t.mode == TunnelMode::Ip),
    )?;
    check_neighbors(cfg)?;
    check_routes(cfg)?;
    // Route prefix -> the earlier tunnel that has it, built as the tunnels are checked (a linear scan of every
    // earlier tunnel's routes per route would be quadratic: 100k routes took seconds).
    let mut routes = HashMap::new();
    for (i, t) in cfg.tunnels.iter().enumerate() {
        check_tunnel(cfg, i, t, &cfg.tunnels[..i], &routes)?;
        for p in &t.routes {
            routes.entry(*p).or_insert(i);
        }
    }
    // Routes into tunnels, against the tunnels' routes and subnets (checked above, so subnets are unique).
    for (i, t) in cfg.tunnels.iter().enumerate() {
        for n in t.subnets() {
            routes.entry(n).or_insert(i);
        }
    }
    check_routes_into_tunnels(cfg, &routes)?;
    check_bridges(cfg)?;
    check_mirrors(cfg)?;
    check_host(cfg)?;
    if let Some(c) = &cfg.control {
        if c.socket.as_os_str().is_empty() {
            return Err(issue("control.socket", "socket path must not be empty"));
        }
    }
    if let Some(g) = &cfg.generator {
        check_generator_issue(cfg, g)?;
    }
    Ok(())
}
