//! `[[tunnel]]`: addresses, keys, identity, options, routes and MTU, against the ports and the earlier tunnels.
use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::ports::{check_unicast_address, valid_name};
use super::routes::check_prefix_list;
use crate::config::{issue, Check, Config, PortRole, Ttl, TunnelCfg, TunnelMode};

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

    check_tunnel_addresses(cfg, &at, t, earlier, earlier_routes)?;

    check_erspan(cfg, &at, t)?;

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

/// Two prefixes overlap when one contains the other.
fn overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The tunnel interface's own addresses (`address`): usable, unique across ports and tunnels, and each subnet
/// apart from the ports' and the earlier tunnels' subnets, from every prefix routed into a tunnel or out of a
/// port, and from the tunnels' remotes. The routes of `t` are checked against the earlier tunnels' subnets too
/// (the subnets of the later ones are checked against `t`'s routes when their turn comes).
fn check_tunnel_addresses(
    cfg: &Config,
    at: &str,
    t: &TunnelCfg,
    earlier: &[TunnelCfg],
    earlier_routes: &HashMap<IpNet, usize>,
) -> Check {
    // Subnets of the earlier tunnels (also host addresses: nothing may overlap those either).
    let earlier_nets: Vec<(usize, usize, IpNet)> = earlier
        .iter()
        .enumerate()
        .flat_map(|(j, o)| o.address.iter().enumerate().map(move |(k, a)| (j, k, *a)))
        .collect();
    for (k, a) in t.address.iter().enumerate() {
        let here = format!("{at}.address[{k}]");
        check_unicast_address(&here, a)?;
        let ip = a.addr();
        let net = a.trunc();
        if a.prefix_len() == 0 {
            return Err(issue(
                here,
                format!(
                    "{a}: a tunnel subnet cannot be the whole address space; for a default route into the \
                     tunnel use a [[route]] with tunnel = {:?}",
                    t.name
                ),
            ));
        }
        let below = if ip.is_ipv4() { 31 } else { 127 };
        if a.prefix_len() < below && ip == net.addr() {
            return Err(issue(
                here,
                format!("{ip} is the network address of {net}, not a host address"),
            ));
        }
        if ip.is_ipv4() && a.prefix_len() < below && ip == a.broadcast() {
            return Err(issue(
                here,
                format!("{ip} is the broadcast address of {net}, not a host address"),
            ));
        }
        for (pi, p) in cfg.ports.iter().enumerate() {
            for (pk, pa) in p.addresses.iter().enumerate() {
                if pa.addr() == ip {
                    return Err(issue(
                        here,
                        format!("address {ip} is already used by port[{pi}].address[{pk}]"),
                    ));
                }
                if overlap(&pa.trunc(), &net) {
                    return Err(issue(
                        here,
                        format!(
                            "subnet {net} overlaps the subnet {} of port[{pi}] {:?}",
                            pa.trunc(),
                            p.name
                        ),
                    ));
                }
            }
        }
        let own = t.address[..k].iter().map(|o| (None, *o));
        let others = earlier_nets.iter().map(|&(j, _, o)| (Some(j), o));
        for (j, o) in own.chain(others) {
            let whose = match j {
                Some(j) => format!("tunnel[{j}] {:?}", earlier[j].name),
                None => "another address of this tunnel".to_string(),
            };
            if o.addr() == ip {
                return Err(issue(
                    here,
                    format!("address {ip} is already used by {whose}"),
                ));
            }
            if overlap(&o.trunc(), &net) {
                return Err(issue(
                    here,
                    format!("subnet {net} overlaps the subnet {} of {whose}", o.trunc()),
                ));
            }
        }
        if t.routes.contains(&net) {
            return Err(issue(
                here,
                format!("subnet {net} is also in this tunnel's routes: it is connected already"),
            ));
        }
        if let Some(&j) = earlier_routes.get(&net) {
            return Err(issue(
                here,
                format!(
                    "subnet {net} is a route into tunnel[{j}] {:?}; a prefix can go to one tunnel only",
                    earlier[j].name
                ),
            ));
        }
        if let Some(ri) = cfg.routes.iter().position(|r| r.prefix == net) {
            return Err(issue(
                here,
                format!("subnet {net} is also the prefix of route[{ri}]"),
            ));
        }
        if let Some(o) = earlier
            .iter()
            .chain(std::iter::once(t))
            .find(|o| net.contains(&o.remote))
        {
            return Err(issue(
                here,
                format!(
                    "subnet {net} holds the remote {} of tunnel {:?}: its GRE packets would be routed into a tunnel",
                    o.remote, o.name
                ),
            ));
        }
    }
    if !earlier_nets.is_empty() {
        let nets: HashMap<IpNet, usize> = earlier_nets
            .iter()
            .map(|&(j, _, n)| (n.trunc(), j))
            .collect();
        for (k, p) in t.routes.iter().enumerate() {
            if let Some(&j) = nets.get(p) {
                return Err(issue(
                    format!("{at}.routes[{k}]"),
                    format!(
                        "{p} is the connected subnet of tunnel[{j}] {:?}",
                        earlier[j].name
                    ),
                ));
            }
        }
        if let Some((j, o)) = earlier_nets.iter().find_map(|&(j, _, n)| {
            (n.prefix_len() < n.max_prefix_len() && n.contains(&t.remote)).then_some((j, n))
        }) {
            return Err(issue(
                format!("{at}.remote"),
                format!(
                    "remote {} lies in the subnet {} of tunnel[{j}] {:?}: its GRE packets would be routed into a tunnel",
                    t.remote,
                    o.trunc(),
                    earlier[j].name
                ),
            ));
        }
    }
    Ok(())
}

/// Whether tunnel `t`'s remote is on an outside port's subnet or covered by a `[[route]]` (other
/// than `skip`) through an outside port.
pub(super) fn remote_reachable(cfg: &Config, t: &TunnelCfg, skip: Option<&IpNet>) -> bool {
    cfg.ports_with_role(PortRole::Outside)
        .any(|p| p.on_link(t.remote))
        || cfg.routes.iter().any(|r| {
            Some(&r.prefix) != skip
                && r.prefix.contains(&t.remote)
                && r.port
                    .as_deref()
                    .and_then(|name| cfg.port_by_name(name))
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
                    t.overhead_in(cfg)
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
                    t.overhead_in(cfg)
                ),
            ))
        }
        _ => {}
    }
    Ok(())
}

/// `mode`, `erspan` and `deliver`: an ERSPAN tunnel has a session and an l2 port to deliver to, and none of the
/// options of a tunnel that carries IP; `erspan` and `deliver` belong to ERSPAN tunnels only.
fn check_erspan(cfg: &Config, at: &str, t: &TunnelCfg) -> Check {
    use greway_wire::erspan;
    if t.mode == TunnelMode::Teb {
        check_not_ip(
            at,
            t,
            "a teb tunnel carries the Ethernet frames of its bridge",
            false,
        )?;
    }
    if t.mode != TunnelMode::Erspan {
        for (set, key) in [
            (t.erspan.is_some(), "erspan"),
            (t.deliver.is_some(), "deliver"),
        ] {
            if set {
                return Err(issue(
                    format!("{at}.{key}"),
                    format!(
                        "{key} needs mode = \"erspan\" (this tunnel's mode is {})",
                        t.mode
                    ),
                ));
            }
        }
        return Ok(());
    }
    let Some(e) = t.erspan else {
        return Err(issue(
            format!("{at}.erspan"),
            "an erspan tunnel needs erspan = { session = N }",
        ));
    };
    if e.session > erspan::MAX_SESSION {
        return Err(issue(
            format!("{at}.erspan.session"),
            format!(
                "session must be 0..={}, got {}",
                erspan::MAX_SESSION,
                e.session
            ),
        ));
    }
    if let Some(v) = e.version {
        if v != erspan::VERSION_TYPE_II && v != erspan::VERSION_TYPE_III {
            return Err(issue(
                format!("{at}.erspan.version"),
                format!("version must be 1 (type II) or 2 (type III), got {v}"),
            ));
        }
    }
    if let Some(i) = e.index {
        if i > erspan::MAX_INDEX {
            return Err(issue(
                format!("{at}.erspan.index"),
                format!("index must be 0..={}, got {i}", erspan::MAX_INDEX),
            ));
        }
    }
    if let Some(h) = e.hwid {
        if h > erspan::MAX_HWID {
            return Err(issue(
                format!("{at}.erspan.hwid"),
                format!("hwid must be 0..={}, got {h}", erspan::MAX_HWID),
            ));
        }
    }
    match &t.deliver {
        // A `[[mirror]]` target only sends: it needs no port to deliver to.
        None if t.is_mirror_target(cfg) => {}
        None => {
            return Err(issue(
                format!("{at}.deliver"),
                "an erspan tunnel needs deliver = \"PORT\", the l2 port its received mirrored frames leave by (or a [[mirror]] that sends into it)",
            ))
        }
        Some(name) => {
            let Some(port) = cfg.port_by_name(name) else {
                return Err(super::ports::unknown_port(
                    cfg,
                    format!("{at}.deliver"),
                    name,
                ));
            };
            if port.role() != PortRole::L2 {
                return Err(issue(
                    format!("{at}.deliver"),
                    format!(
                        "port {name:?} has role {}; deliver needs a port with role = \"l2\"",
                        port.role()
                    ),
                ));
            }
        }
    }
    check_not_ip(at, t, "an erspan tunnel carries mirrored frames", true)
}

/// The options of a tunnel that carries IP, on a tunnel that carries frames (`what` says which): routes, own
/// addresses, source filters and MSS clamping never apply; keepalives and sequence numbers (with reordering) do
/// on a TEB tunnel, not on an ERSPAN one (`no_gre_options`).
fn check_not_ip(at: &str, t: &TunnelCfg, what: &str, no_gre_options: bool) -> Check {
    let ip_only = [
        (!t.routes.is_empty(), "routes"),
        (!t.address.is_empty(), "address"),
        (t.allowed_sources.is_some(), "allowed_sources"),
        (t.mss_clamp != crate::config::MssClamp::Off, "mss_clamp"),
        (t.host_if.is_some(), "host_if"),
        (no_gre_options && t.keepalive.is_some(), "keepalive"),
        (no_gre_options && t.sequence, "sequence"),
        (no_gre_options && t.reorder.is_some(), "reorder"),
    ];
    if let Some((_, key)) = ip_only.iter().find(|(set, _)| *set) {
        return Err(issue(
            format!("{at}.{key}"),
            format!("{key} is for tunnels that carry IP; {what}"),
        ));
    }
    Ok(())
}
