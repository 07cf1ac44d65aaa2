//! `[[port]]`: names, devices, addresses, MACs, MTUs and roles.
use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::{issue, Check, Config, Issue, MacAddr, PortRole};

pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

pub(super) fn check_ports(cfg: &Config) -> Check {
    if cfg.ports.is_empty() {
        return Err(issue("port", "at least one [[port]] is required"));
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut devices: HashMap<&str, usize> = HashMap::new();
    let mut addrs: HashMap<IpAddr, String> = HashMap::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let at = format!("port[{i}]");
        if !valid_name(&p.name) {
            return Err(issue(
                format!("{at}.name"),
                format!(
                    "invalid port name {:?}: use letters, digits, '_', '-' or '.'",
                    p.name
                ),
            ));
        }
        if let Some(j) = names.insert(&p.name, i) {
            return Err(issue(
                format!("{at}.name"),
                format!("duplicate port name {:?} (also port[{j}])", p.name),
            ));
        }
        let dev = p.device.trim();
        if dev.is_empty() {
            return Err(issue(
                format!("{at}.device"),
                "device must not be empty: give vdev arguments (net_pcap0,...) or a PCI address",
            ));
        }
        // Input files a vdev reads must exist before EAL starts: say which field names a missing one.
        for kv in dev.split(',').skip(1) {
            if let Some(path) = kv.strip_prefix("rx_pcap=") {
                if !std::path::Path::new(path).exists() {
                    return Err(issue(
                        format!("{at}.device"),
                        format!("rx_pcap file {path} does not exist (paths are relative to the working directory)"),
                    ));
                }
            }
        }
        if let Some(j) = devices.insert(dev, i) {
            return Err(issue(
                format!("{at}.device"),
                format!("device {dev:?} is already used by port[{j}]"),
            ));
        }
        if p.role == Some(PortRole::L2) {
            if !p.addresses.is_empty() {
                return Err(issue(
                    format!("{at}.address"),
                    "an l2 port carries Ethernet frames as they are and has no address: remove address",
                ));
            }
        } else if p.addresses.is_empty() {
            return Err(issue(
                format!("{at}.address"),
                "at least one address is required",
            ));
        }
        for (k, a) in p.addresses.iter().enumerate() {
            let ip = a.addr();
            check_unicast_address(&format!("{at}.address[{k}]"), a)?;
            if let Some(other) = addrs.insert(ip, format!("{at}.address[{k}]")) {
                return Err(issue(
                    format!("{at}.address[{k}]"),
                    format!("address {ip} is already used by {other}"),
                ));
            }
        }
        if let Some(mac) = p.mac {
            if mac.is_multicast() || mac == MacAddr::ZERO {
                return Err(issue(
                    format!("{at}.mac"),
                    format!("port MAC {mac} must be a non-zero unicast address"),
                ));
            }
        }
        let has_v6 = p.addresses.iter().any(|a| matches!(a, IpNet::V6(_)));
        let min = if has_v6 { 1280 } else { 576 };
        if p.mtu < min || p.mtu > 9216 {
            let why = if has_v6 {
                " (the port has an IPv6 address, RFC 8200)"
            } else {
                ""
            };
            return Err(issue(
                format!("{at}.mtu"),
                format!("port mtu must be {min}..=9216{why}, got {}", p.mtu),
            ));
        }
        if p.role.is_none() && PortRole::from_name(&p.name).is_none() {
            return Err(issue(
                format!("{at}.role"),
                format!(
                    "cannot infer the role of port {:?} from its name: set role = \"inside\", \"outside\" or \"l2\"",
                    p.name
                ),
            ));
        }
    }
    Ok(())
}

/// An interface address (a port's or a tunnel's) must be a usable unicast address.
pub(super) fn check_unicast_address(at: &str, a: &IpNet) -> Check {
    let ip = a.addr();
    if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
        return Err(issue(
            at.to_string(),
            format!("{a} is not a usable unicast interface address"),
        ));
    }
    Ok(())
}

/// A config with tunnels needs at least one outside-role port, and one inside-role port when some tunnel carries
/// IP (an ERSPAN tunnel delivers to an l2 port). `tunnels`: any tunnel at all; `ip_tunnels`: any that carries IP.
pub(crate) fn check_roles_for_tunnels(cfg: &Config, tunnels: bool, ip_tunnels: bool) -> Check {
    for (role, needed) in [(PortRole::Inside, ip_tunnels), (PortRole::Outside, tunnels)] {
        if needed && cfg.ports_with_role(role).next().is_none() {
            return Err(issue(
                "port",
                format!("a config with tunnels needs at least one port with role \"{role}\""),
            ));
        }
    }
    Ok(())
}

pub(crate) fn unknown_port(cfg: &Config, path: String, name: &str) -> Issue {
    let known: Vec<&str> = cfg.ports.iter().map(|p| p.name.as_str()).collect();
    issue(
        path,
        format!("unknown port {name:?} (ports: {})", known.join(", ")),
    )
}
