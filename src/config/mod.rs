//! Configuration layer: a TOML file becomes a typed, fully validated [`Config`].
//!
//! Everything is checked here, before any EAL or port is touched. Every failure is a
//! [`ConfigError`] that names the file, the 1-based line of the offending value (or of the
//! table that should have contained it) and the field path in TOML spelling
//! (`tunnel[1].key`, `port[0].address[1]`), plus a human message:
//!
//! ```text
//! greway.toml:31: tunnel[1].key: key cannot be combined with ikey/okey; use either key or ikey/okey
//! ```
//!
//! # How it works
//!
//! The text is parsed twice: once into the typed structs below (serde, every struct
//! `deny_unknown_fields`, values such as CIDRs, MACs and TTLs parsed by their own
//! deserializers), and once into a small span tree ([`location`], from toml_edit's document and its public
//! span accessors). Serde errors carry a byte span; the tree
//! turns that span into a field path. Semantic rules then run on the typed [`Config`] and report
//! a field path; the tree turns that path into a line.
//!
//! Which line: the line of the offending value (for an array element, the element); for an
//! unknown key, the key; for a missing key or a rule about a value that was left at its default
//! (e.g. a derived tunnel MTU), the header of the table that should hold it (`[[tunnel]]`); for
//! "needs an outside port", the first `[[port]]`; for a missing top-level table, line 1. TOML
//! syntax errors have an empty field and the parser's line. An unreadable file has no line.
//! A port `address` written as a single string is reported as `port[0].address`, an array
//! element as `port[0].address[1]`.
//!
//! # Rules (product decisions)
//!
//! * Unknown keys, missing required keys, wrong types: rejected.
//! * `[eal]` (with `args`), `[dataplane]` (with `workers`) and at least one `[[port]]` are required.
//! * `dataplane.workers`: non-empty, no duplicate cores; when the EAL args contain `-l LIST`,
//!   every worker must be in LIST and none may be the EAL main lcore (`--main-lcore N`, else the
//!   lowest core of LIST), because the control thread runs there.
//!   `burst` 1..=256 (default 32); `mbufs` 512..=16777215 (default 8191);
//!   `idle_sleep_us` 0..=1000000 (default 0 = busy poll).
//! * Ports: unique non-empty names (letters, digits, `_`, `-`, `.`), non-empty unique `device`,
//!   at least one address (a string or an array of CIDR strings), no address used twice, no
//!   unspecified/multicast/loopback address, unicast `mac`, `mtu` 576..=9216 (at least 1280 when
//!   the port has an IPv6 address). `role` is `"inside"`, `"outside"` or `"l2"`; when absent it is taken
//!   from the name if that is `inside`/`outside`, otherwise it is an error.
//! * Roles: at least one port; a config with tunnels needs at least one outside-role port, and at least one
//!   inside-role port unless every tunnel is an ERSPAN or TEB tunnel. Several ports of each role are allowed. An
//!   `l2` port has no address.
//! * Neighbors: `port` must name a port, `ip` must lie in one of that port's subnets, `mac`
//!   unicast, one entry per (port, ip).
//! * Routes: `prefix` without host bits, each prefix at most once; exactly one of `port`, `tunnel`
//!   or a `via` in a tunnel's subnet. With `port`: the port must exist, `via` (optional; absent =
//!   directly connected) of the prefix's family and a foreign host on one of the port's subnets.
//!   With `tunnel`: the tunnel must exist and there is no `via`. With `via` alone: a foreign host on
//!   a tunnel's subnet, of the prefix's family. A route into a tunnel takes a prefix that no tunnel
//!   route or tunnel subnet has, and an IPv6 one needs the tunnel MTU to be at least 1280.
//! * Tunnels: unique names; `local` must be an address of an outside-role port; `remote` of the
//!   same family, unicast, different from `local`, and reachable (inside a connected subnet of an
//!   outside-role port or covered by a `[[route]]` through an outside-role port); keys are u32;
//!   `key` excludes `ikey`/`okey`; the identity (local, remote, in-key) is unique; `reorder` needs
//!   `sequence = true`, `reorder.window` 1..=64, `reorder.timeout_ms` 1..=60000; `ttl` 1..=255 or
//!   `"inherit"` (default 64); `tos` 0..=255 or `"inherit"` (default inherit); `keepalive`
//!   `interval_s` 1..=3600, `retries` 1..=255 (default 3); `routes` and `allowed_sources` are
//!   prefixes without host bits, no duplicates inside a tunnel; the same route prefix in two
//!   tunnels is an error (overlapping prefixes of different lengths are fine: longest prefix
//!   wins); `allowed_sources`, when present, must not be empty (omit it to accept any source).
//! * Tunnel addresses (`address`, a CIDR or an array like a port's): unicast, not a /0, not the
//!   network address (IPv4 below /31, IPv6 below /127) nor the IPv4 broadcast address (below /31);
//!   no address used twice across ports and tunnels; each subnet overlaps no port subnet and no
//!   other tunnel subnet, is no tunnel route's or `[[route]]`'s prefix, and holds no tunnel's
//!   `remote`. A /32 or /128 is an address without a peer subnet.
//! * Tunnel MTU: the default is the MTU of the outside port that owns `local` minus the
//!   encapsulation overhead (outer IPv4 20 / IPv6 40 bytes, GRE 4 bytes, plus 4 for each of
//!   checksum, out-key and sequence). An explicit `mtu` may not exceed that (greway does not
//!   fragment outer packets). The minimum is 576 (RFC 791) for a tunnel carrying only IPv4
//!   routes and 1280 (RFC 8200) as soon as it carries an IPv6 route. The same minimum applies
//!   to the derived default.
//! * `[[mirror]]`: `port` names a port among the first 64; `direction` is `"rx"` (default), `"tx"` or `"both"`;
//!   `tunnel` names a tunnel with `mode = "erspan"`, which then sends: it needs `erspan.version` and may not have
//!   `key`, `okey` or `checksum`; two entries of one port and tunnel may not overlap in direction. An erspan
//!   tunnel needs `deliver` unless a `[[mirror]]` names it. Its MTU is the largest mirrored frame sent whole
//!   (the port MTU minus outer IP, 8 bytes of GRE and 8 / 12 of ERSPAN header).
//! * TEB tunnels (`mode = "teb"`): no `routes`, `address`, `allowed_sources`, `mss_clamp` or `host_if`; a member
//!   of exactly one bridge; their MTU counts the Ethernet payload (overhead + 14).
//! * Bridges: unique names; 2..=1024 `members`, each an l2 port, `PORT.VLAN` (VLAN 1..=4094 of an l2 port) or a
//!   TEB tunnel, in one bridge only, once; not a port as a whole and by VLAN in one bridge; `mac_table_size`
//!   1..=1048576 (default 4096), `aging_s` 1..=1000000 (default 300).
//! * `metrics.prometheus` is a socket address; `control.socket` a non-empty path.
//! * Tunnel `address`: unicast, non-loopback addresses, none used twice across ports and tunnels.
//! * `[host]`: `netns` a name of letters, digits, `_`, `-`, `.`; `routes` `"learn"` (default) or `"off"`;
//!   `table` 1..=4294967295 (default 254); `punt_pps` 1..=1000000 (default 10000). `host_if` of a port or
//!   tunnel (default: its name cut to 15 characters) needs `[host]`, is 1..=15 such characters and unique
//!   across ports and tunnels, derived names included.
//!
//! [`validate_tunnel_addition`] applies the tunnel rules (including duplicates against the
//! tunnels already in the config) to a tunnel added at run time.

pub mod diff;
mod error;
mod location;
mod schema;
mod validate;
mod value;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

pub use error::ConfigError;
pub(crate) use error::{issue, Check, Issue};
use location::{describe_toml_error, line_of, resolve_path};
pub use schema::*;
pub(crate) use validate::unknown_port;
use validate::{check_roles_for_tunnels, check_tunnel, route_index, validate};
pub use validate::{
    validate_route_addition, validate_route_removal, validate_tunnel_route_addition,
};
pub(crate) use value::{de_ip, de_opt_key};
pub use value::{mac, opt_mac, parse_mac, MacAddr, MacParseError, MssClamp, PortRole, Tos, Ttl};

impl Config {
    /// Reads, parses and validates a config file. Errors name `path` as the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(&name, None, "", format!("cannot read config file: {e}"))
        })?;
        Config::from_str_named(&text, &name)
    }

    /// Parses and validates TOML text; `name` is used as the file name in errors.
    pub fn from_str_named(text: &str, name: &str) -> Result<Config, ConfigError> {
        let tree = location::tree(text);
        let mut cfg: Config = toml::from_str(text).map_err(|e| {
            let (field, msg) = describe_toml_error(&e, tree.as_ref());
            let line = e.span().map(|s| line_of(text, s.start));
            ConfigError::new(name, line, field, msg)
        })?;
        if let Err(iss) = validate(&cfg) {
            let (field, span) = match &tree {
                Some(t) => resolve_path(t, &iss.path),
                None => (iss.path.clone(), None),
            };
            let line = Some(span.map_or(1, |s| line_of(text, s.start)));
            return Err(ConfigError::new(name, line, field, iss.msg));
        }
        for p in &mut cfg.ports {
            p.role = Some(p.role());
        }
        Ok(cfg)
    }

    /// The port called `name`.
    pub fn port_by_name(&self, name: &str) -> Option<&PortCfg> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// Index of the port called `name`.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }

    /// The tunnel called `name`.
    pub fn tunnel_by_name(&self, name: &str) -> Option<&TunnelCfg> {
        self.tunnels.iter().find(|t| t.name == name)
    }

    /// The port that owns address `ip` (for a tunnel: its outside port).
    pub fn port_for_local(&self, ip: IpAddr) -> Option<&PortCfg> {
        self.ports.iter().find(|p| p.has_address(ip))
    }

    /// Ports of the given role, in file order.
    pub fn ports_with_role(&self, role: PortRole) -> impl Iterator<Item = &PortCfg> {
        self.ports.iter().filter(move |p| p.role() == role)
    }

    /// Index of the tunnel whose subnet holds next hop `ip` (a peer on it, not the tunnel's own address).
    /// Tunnel subnets do not overlap (validated), so there is at most one.
    pub fn tunnel_for_next_hop(&self, ip: IpAddr) -> Option<usize> {
        self.tunnels.iter().position(|t| t.peer_on_link(ip))
    }

    /// The tunnel a `[[route]]` sends into, resolved now: `tunnel = NAME`, or (without `port`) the tunnel whose
    /// subnet holds `via`. None for a route out of a port (or one that resolves to nothing: invalid).
    pub fn route_tunnel(&self, r: &RouteCfg) -> Option<usize> {
        if r.port.is_some() {
            return None;
        }
        match (&r.tunnel, r.via) {
            (Some(name), _) => self.tunnels.iter().position(|t| &t.name == name),
            (None, Some(via)) => self.tunnel_for_next_hop(via),
            (None, None) => None,
        }
    }
}

impl FromStr for Config {
    type Err = ConfigError;

    /// Same as [`Config::from_str_named`] with the name `<string>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Config::from_str_named(s, "<string>")
    }
}

/// Checks a tunnel about to be added at run time against `cfg` with the same rules as a file
/// (including duplicate names, identities and route prefixes against the existing tunnels).
/// The error's file is `<runtime>`, it has no line, and its field is `tunnel[N].…` with N the
/// index the tunnel would get.
pub fn validate_tunnel_addition(cfg: &Config, t: &TunnelCfg) -> Result<(), ConfigError> {
    let routes = route_index(&cfg.tunnels);
    check_roles_for_tunnels(cfg, true, t.mode == TunnelMode::Ip)
        .and_then(|()| check_tunnel(cfg, cfg.tunnels.len(), t, &cfg.tunnels, &routes))
        .map_err(|iss| ConfigError::new("<runtime>", None, iss.path, iss.msg))
}

/// Checks a whole configuration changed at run time (`greway ctl`) with the same rules as a file.
/// The error's file is `<runtime>` and it has no line.
pub fn validate_runtime(cfg: &Config) -> Result<(), ConfigError> {
    validate(cfg).map_err(|iss| ConfigError::new("<runtime>", None, iss.path, iss.msg))
}
