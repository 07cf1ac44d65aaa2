//! `[[tunnel]]`: addresses, keys, identity, options, routes and MTU, against the ports and the earlier tunnels.
use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::ports::valid_name;
use super::routes::check_prefix_list;
use crate::config::{issue, Check, Config, PortRole, Ttl, TunnelCfg};

/// Route prefix -> index of the first of `tunnels` that routes it.
pub(crate) fn route_index(tunnels: &[TunnelCfg]) -> HashMap<IpNet, usize> {
    let mut m = HashMap::new();
    for (i, t) in tunnels.iter().enumerate() {
        for p in &t.routes {
            m.entry(*p).or_insert(i);
        }
    }
    m
}

/// Rules for one tunnel, at index `idx`, against the ports/routes of `cfg` and the tunnels in
/// `earlier` (the ones before it in the file, or all existing ones for a runtime addition).
/// `earlier_routes` indexes the routes of `earlier` ([`route_index`]).
pub(crate) fn check_tunnel(
    cfg: &Config,
    idx: usize,
    t: &TunnelCfg,
    earlier: &[TunnelCfg],
    earlier_routes: &HashMap<IpNet, usize>,
) -> Check {
    let at = format!("tunnel[{idx}]");
    if !valid_name(&t.name) {
        return Err(issue(
            format!("{at}.name"),
            format!(
                "invalid tunnel name {:?}: use letters, digits, '_', '-' or '.'",
                t.name
            ),
        ));
    }
    if let Some(j) = earlier.iter().position(|o| o.name == t.name) {
        return Err(issue(
            format!("{at}.name"),
            format!("duplicate tunnel name {:?} (also tunnel[{j}])", t.name),
        ));
    }

    // Outer addresses.
    let Some(port) = cfg.port_for_local(t.local) else {
        return Err(issue(
            format!("{at}.local"),
            format!("local {} is not an address of any port", t.local),
        ));
    };
    if port.role() != PortRole::Outside {
        return Err(issue(
            format!("{at}.local"),
            format!(
                "local {} belongs to port {:?}, whose role is {}; it must be an outside port's address",
                t.local,
                port.name,
                port.role()
            ),
        ));
    }
    if t.local.is_ipv4() != t.remote.is_ipv4() {
        return Err(issue(
            format!("{at}.remote"),
            format!(
                "remote {} and local {} are of different address families",
                t.remote, t.local
            ),
        ));
    }
    let bad_remote = t.remote.is_unspecified()
        || t.remote.is_multicast()
        || t.remote.is_loopback()
        || t.remote == IpAddr::from([255, 255, 255, 255]);
    if bad_remote || t.remote == t.local {
        return Err(issue(
            format!("{at}.remote"),
            format!(
                "remote {} must be a unicast address other than local",
                t.remote
            ),
        ));
    }
    if !remote_reachable(cfg, t, None) {
        return Err(no_route_to_remote(&at, t));
    }

    // Keys.
    if t.key.is_some() && (t.ikey.is_some() || t.okey.is_some()) {
        return Err(issue(
            format!("{at}.key"),
            "key cannot be combined with ikey/okey; use either key or ikey/okey",
        ));
    }
    if let Some((j, o)) = earlier
        .iter()
        .enumerate()
        .find(|(_, o)| o.local == t.local && o.remote == t.remote && o.in_key() == t.in_key())
    {
        let key = t
            .in_key()
            .map_or("no key".to_string(), |k| format!("in-key {k}"));
        return Err(issue(
            at.clone(),
            format!(
                "tunnel {:?} has the same identity (local {}, remote {}, {key}) as tunnel[{j}] {:?}: received packets could not be told apart",
                t.name, t.local, t.remote, o.name
            ),
        ));
    }

    // Options.
    if let Some(r) = &t.reorder {
        if !t.sequence {
            return Err(issue(
                format!("{at}.reorder"),
                "reorder requires sequence = true",
            ));
        }
        if !(1..=64).contains(&r.window) {
            return Err(issue(
                format!("{at}.reorder.window"),
                format!("reorder window must be 1..=64, got {}", r.window),
            ));
        }
        if !(1..=60_000).contains(&r.timeout_ms) {
            return Err(issue(
                format!("{at}.reorder.timeout_ms"),
                format!("reorder timeout_ms must be 1..=60000, got {}", r.timeout_ms),
            ));
        }
    }
    if let Ttl::Fixed(0) = t.ttl {
        return Err(issue(
            format!("{at}.ttl"),
            "ttl must be 1..=255 or \"inherit\", got 0",
        ));
    }
    if t.encap_limit.is_some() && t.local.is_ipv4() {
        // RFC 2473's option lives in an IPv6 Destination Options header: an IPv4 outer header has no place
        // for it.
        return Err(issue(
            format!("{at}.encap_limit"),
            "encap_limit applies to tunnels with an IPv6 outer header (RFC 2473); remove it from this IPv4 \
             tunnel",
        ));
    }
    if let Some(k) = &t.keepalive {
        if t.local.is_ipv6() {
            // Sent and answered in Cisco's IPv4 format only: on an IPv6 tunnel no reply would ever come, and the
            // tunnel would go down and drop everything after `retries` intervals.
            return Err(issue(
                format!("{at}.keepalive"),
                "keepalives are supported on IPv4 tunnels only (Cisco's format); remove keepalive from this \
                 IPv6 tunnel",
            ));
        }
        if !(1..=3600).contains(&k.interval_s) {
            return Err(issue(
                format!("{at}.keepalive.interval_s"),
                format!(
                    "keepalive interval_s must be 1..=3600, got {}",
                    k.interval_s
                ),
            ));
        }
        if !(1..=255).contains(&k.retries) {
            return Err(issue(
                format!("{at}.keepalive.retries"),
                format!("keepalive retries must be 1..=255, got {}", k.retries),
            ));
        }
    }

    // Prefixes.
    check_prefix_list(&format!("{at}.routes"), &t.routes)?;
    if let Some(src) = &t.allowed_sources {
        if src.is_empty() {
            return Err(issue(
                format!("{at}.allowed_sources"),
                "allowed_sources must not be empty; omit it to accept any inner source",
            ));
        }
        check_prefix_list(&format!("{at}.allowed_sources"), src)?;
    }
    for (k, p) in t.routes.iter().enumerate() {
        if let Some((j, o)) = earlier_routes
            .get(p)
            .and_then(|&j| earlier.get(j).map(|o| (j, o)))
        {
            return Err(issue(
                format!("{at}.routes[{k}]"),
                format!(
                    "route {p} already points into tunnel[{j}] {:?}; a prefix can go to one tunnel only",
                    o.name
                ),
            ));
        }
    }

    check_tunnel_mtu(cfg, idx, t, t.min_mtu())
}

/// Whether tunnel `t`'s remote is on an outside port's subnet or covered by a `[[route]]` (other
/// than `skip`) through an outside port.
pub(super) fn remote_reachable(cfg: &Config, t: &TunnelCfg, skip: Option<&IpNet>) -> bool {
    cfg.ports_with_role(PortRole::Outside)
        .any(|p| p.on_link(t.remote))
        || cfg.routes.iter().any(|r| {
            Some(&r.prefix) != skip
                && r.prefix.contains(&t.remote)
                && cfg
                    .port_by_name(&r.port)
                    .is_some_and(|p| p.role() == PortRole::Outside)
        })
}

pub(super) fn no_route_to_remote(at: &str, t: &TunnelCfg) -> crate::config::Issue {
    issue(
        format!("{at}.remote"),
        format!(
            "no route to remote {}: it is on no outside port's subnet and no [[route]] through an outside port covers it",
            t.remote
        ),
    )
}

/// The tunnel's MTU (explicit, or derived from its port's) against `min` and its port.
pub(super) fn check_tunnel_mtu(cfg: &Config, idx: usize, t: &TunnelCfg, min: u16) -> Check {
    let at = format!("tunnel[{idx}]");
    let Some(port) = cfg.port_for_local(t.local) else {
        return Ok(());
    };
    let max = t.max_mtu(cfg);
    let why_min = if min == 1280 {
        "the tunnel carries IPv6 routes (RFC 8200)"
    } else {
        "IPv4 minimum (RFC 791)"
    };
    match t.mtu {
        Some(m) if m < min => {
            return Err(issue(
                format!("{at}.mtu"),
                format!("tunnel mtu {m} is below the minimum {min}: {why_min}"),
            ))
        }
        Some(m) if m > max => {
            return Err(issue(
                format!("{at}.mtu"),
                format!(
                    "tunnel mtu {m} exceeds {max} = port {:?} mtu {} - {} bytes of encapsulation; outer packets are not fragmented",
                    port.name,
                    port.mtu,
                    t.overhead()
                ),
            ))
        }
        None if max < min => {
            return Err(issue(
                format!("{at}.mtu"),
                format!(
                    "derived tunnel mtu {max} (port {:?} mtu {} - {} bytes of encapsulation) is below the minimum {min}: {why_min}; raise the port mtu",
                    port.name,
                    port.mtu,
                    t.overhead()
                ),
            ))
        }
        _ => {}
    }
    Ok(())
}
