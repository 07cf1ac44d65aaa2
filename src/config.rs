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
//! deserializers), and once into a small span tree. Serde errors carry a byte span; the tree
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
//!   the port has an IPv6 address). `role` is `"inside"` or `"outside"`; when absent it is taken
//!   from the name if that is `inside`/`outside`, otherwise it is an error.
//! * Roles: at least one port; a config with tunnels needs at least one inside-role port and at
//!   least one outside-role port. Several ports of either role are allowed.
//! * Neighbors: `port` must name a port, `ip` must lie in one of that port's subnets, `mac`
//!   unicast, one entry per (port, ip).
//! * Routes: `prefix` without host bits, each prefix at most once, `port` must exist, `via`
//!   (optional; absent = directly connected) of the prefix's family and on one of the port's
//!   subnets.
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
//! * Tunnel MTU: the default is the MTU of the outside port that owns `local` minus the
//!   encapsulation overhead (outer IPv4 20 / IPv6 40 bytes, GRE 4 bytes, plus 4 for each of
//!   checksum, out-key and sequence). An explicit `mtu` may not exceed that (greway does not
//!   fragment outer packets). The minimum is 576 (RFC 791) for a tunnel carrying only IPv4
//!   routes and 1280 (RFC 8200) as soon as it carries an IPv6 route. The same minimum applies
//!   to the derived default.
//! * `metrics.prometheus` is a socket address; `control.socket` a non-empty path.
//!
//! [`validate_tunnel_addition`] applies the tunnel rules (including duplicates against the
//! tunnels already in the config) to a tunnel added at run time.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ipnet::IpNet;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A configuration error: file, line, field path and message.
///
/// Displays as `FILE:LINE: FIELD: message` (`FILE: FIELD: message` when no line is known, e.g.
/// an unreadable file or a tunnel added at run time; the field part is left out when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    file: String,
    line: Option<usize>,
    field: String,
    message: String,
}

impl ConfigError {
    fn new(
        file: &str,
        line: Option<usize>,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.to_string(),
            line,
            field: field.into(),
            message: msg.into(),
        }
    }

    /// The file name as given to [`Config::load`] / [`Config::from_str_named`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// 1-based line of the offending value or table, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// Field path in TOML spelling, e.g. `tunnel[1].key`; empty for file-level errors.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The human-readable message (without file, line and field).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if let Some(line) = self.line {
            write!(f, "{line}:")?;
        }
        if !self.field.is_empty() {
            write!(f, " {}:", self.field)?;
        }
        write!(f, " {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A rule violation before it is placed in a file: field path plus message.
#[derive(Debug)]
struct Issue {
    path: String,
    msg: String,
}

fn issue(path: impl Into<String>, msg: impl Into<String>) -> Issue {
    Issue {
        path: path.into(),
        msg: msg.into(),
    }
}

type Check = Result<(), Issue>;

// ---------------------------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------------------------

/// An Ethernet MAC address. Parses `02:00:00:00:00:01` (also `-` separated); displays lower-case
/// with colons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// True for group (multicast/broadcast) addresses.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// True for 00:00:00:00:00:00.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }
}

/// Error returned by `MacAddr::from_str`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hex bytes like 02:00:00:00:00:01")]
pub struct MacParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError(s.to_string());
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(sep) {
            if n == 6 || part.len() != 2 {
                return Err(err());
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| err())?;
            n += 1;
        }
        if n != 6 {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a MAC address string", |s| {
            s.parse::<MacAddr>().map_err(|e| e.to_string())
        })
    }
}

/// Deserializes a string and parses it inside the deserializer's visitor, so that a parse error
/// carries the span of the value (and so its line and, within arrays, its index).
fn parse_str<'de, D: Deserializer<'de>, T>(
    d: D,
    what: &'static str,
    f: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct V<T> {
        what: &'static str,
        f: fn(&str) -> Result<T, String>,
    }
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.what)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.f)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V { what, f })
}

/// Outer TTL / hop limit: a fixed value 1..=255 or copied from the inner packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ttl {
    Fixed(u8),
    Inherit,
}

impl Default for Ttl {
    fn default() -> Self {
        Ttl::Fixed(64)
    }
}

/// Outer TOS / traffic class: a fixed value 0..=255 or copied from the inner packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Tos {
    Fixed(u8),
    #[default]
    Inherit,
}

/// Visitor for "integer in lo..=255 or the string \"inherit\"".
struct FixedOrInherit {
    what: &'static str,
    lo: i64,
}

impl FixedOrInherit {
    fn range_msg(&self, got: &dyn fmt::Display) -> String {
        format!(
            "{} must be {}..=255 or \"inherit\", got {got}",
            self.what, self.lo
        )
    }
}

impl Visitor<'_> for FixedOrInherit {
    type Value = Option<u8>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an integer {}..=255 or \"inherit\"", self.lo)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u8>, E> {
        if (self.lo..=255).contains(&v) {
            Ok(Some(v as u8))
        } else {
            Err(E::custom(self.range_msg(&v)))
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u8>, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(E::custom(self.range_msg(&v))),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<u8>, E> {
        if v == "inherit" {
            Ok(None)
        } else {
            Err(E::custom(self.range_msg(&format!("{v:?}"))))
        }
    }
}

impl<'de> Deserialize<'de> for Ttl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(FixedOrInherit { what: "ttl", lo: 1 })?;
        Ok(v.map_or(Ttl::Inherit, Ttl::Fixed))
    }
}

impl<'de> Deserialize<'de> for Tos {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(FixedOrInherit { what: "tos", lo: 0 })?;
        Ok(v.map_or(Tos::Inherit, Tos::Fixed))
    }
}

impl Serialize for Ttl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ttl::Fixed(v) => s.serialize_u8(*v),
            Ttl::Inherit => s.serialize_str("inherit"),
        }
    }
}

impl Serialize for Tos {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tos::Fixed(v) => s.serialize_u8(*v),
            Tos::Inherit => s.serialize_str("inherit"),
        }
    }
}

pub use greway_datapath::tunnel::table::PortRole;

// ---- deserializers with messages that quote the bad value --------------------------------------

struct Cidr(IpNet);

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a CIDR string", parse_cidr).map(Cidr)
    }
}

fn parse_cidr(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>().map_err(|_| {
        format!("invalid CIDR {s:?}: expected ADDRESS/PREFIX-LENGTH such as 10.0.0.0/24 or 2001:db8::/32")
    })
}

struct Ip(IpAddr);

impl<'de> Deserialize<'de> for Ip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "an IP address string", |s| {
            s.parse::<IpAddr>().map_err(|_| {
                format!(
                    "invalid IP address {s:?}: expected an IPv4 or IPv6 address such as 192.0.2.1"
                )
            })
        })
        .map(Ip)
    }
}

fn de_ip<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    Ip::deserialize(d).map(|i| i.0)
}

fn de_opt_ip<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    Ip::deserialize(d).map(|i| Some(i.0))
}

fn de_cidr<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
    Cidr::deserialize(d).map(|c| c.0)
}

fn de_cidrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<Cidr>::deserialize(d).map(|v| v.into_iter().map(|c| c.0).collect())
}

fn de_opt_cidrs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<IpNet>>, D::Error> {
    de_cidrs(d).map(Some)
}

/// A CIDR string or an array of CIDR strings.
fn de_one_or_many_cidrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<IpNet>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a CIDR string or an array of CIDR strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<IpNet>, E> {
            parse_cidr(v).map(|n| vec![n]).map_err(E::custom)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<IpNet>, A::Error> {
            let mut out = Vec::new();
            while let Some(c) = seq.next_element::<Cidr>()? {
                out.push(c.0);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

fn de_opt_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a GRE key, an integer 0..=4294967295")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u32>, E> {
            u32::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("GRE key must be 0..=4294967295 (u32), got {v}")))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u32>, E> {
            u32::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("GRE key must be 0..=4294967295 (u32), got {v}")))
        }
    }
    d.deserialize_any(V)
}

fn de_sockaddr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    parse_str(d, "a socket address string", |s| {
        s.parse::<SocketAddr>().map_err(|_| {
            format!("invalid socket address {s:?}: expected IP:PORT such as 127.0.0.1:9469")
        })
    })
}

// ---------------------------------------------------------------------------------------------
// The configuration
// ---------------------------------------------------------------------------------------------

/// The whole, validated configuration. Field names in TOML are singular (`[[port]]`,
/// `[[tunnel]]`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub eal: EalCfg,
    pub dataplane: DataplaneCfg,
    #[serde(rename = "port")]
    pub ports: Vec<PortCfg>,
    #[serde(rename = "tunnel", default)]
    pub tunnels: Vec<TunnelCfg>,
    #[serde(rename = "neighbor", default)]
    pub neighbors: Vec<NeighborCfg>,
    #[serde(rename = "route", default)]
    pub routes: Vec<RouteCfg>,
    #[serde(default)]
    pub metrics: Option<MetricsCfg>,
    #[serde(default)]
    pub control: Option<ControlCfg>,
    /// `[generator]`: settings of `greway gen` (ignored by `greway run`).
    #[serde(default)]
    pub generator: Option<GeneratorCfg>,
}

/// `[eal]`: arguments passed to `rte_eal_init` (the program name is added by the runtime).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EalCfg {
    pub args: Vec<String>,
}

/// `[dataplane]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataplaneCfg {
    /// Lcores for the poll-mode workers; the control thread stays on the EAL main lcore.
    pub workers: Vec<u32>,
    /// RX/TX burst size, 1..=256.
    #[serde(default = "default_burst")]
    pub burst: u16,
    /// Mbufs in the packet pool.
    #[serde(default = "default_mbufs")]
    pub mbufs: u32,
    /// 0 = busy poll; N > 0 = after empty polls back off to sleeps of up to N microseconds.
    #[serde(default)]
    pub idle_sleep_us: u32,
    /// `gateway` (default): GRE encapsulation/decapsulation; `forward`: a plain cross-connect of ports 0 and 1
    /// (testpmd io-style baseline).
    #[serde(default)]
    pub mode: Mode,
}

/// What the workers do with packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Gateway,
    Forward,
}

fn default_burst() -> u16 {
    32
}
fn default_mbufs() -> u32 {
    8191
}
fn default_port_mtu() -> u16 {
    1500
}

/// `[[port]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortCfg {
    pub name: String,
    /// DPDK vdev arguments (`net_pcap0,rx_pcap=...`) or a PCI address (`0000:03:00.0`).
    pub device: String,
    /// `address` in TOML: a CIDR string or an array of them (IPv4 and/or IPv6).
    #[serde(rename = "address", deserialize_with = "de_one_or_many_cidrs")]
    pub addresses: Vec<IpNet>,
    /// None: use the port's own MAC.
    #[serde(default)]
    pub mac: Option<MacAddr>,
    #[serde(default = "default_port_mtu")]
    pub mtu: u16,
    /// As written; after validation always `Some` (inferred from the name). Use [`PortCfg::role`].
    #[serde(default)]
    pub role: Option<PortRole>,
}

impl PortCfg {
    /// The port's role: explicit, else from the name. Always defined for a validated config
    /// (an unvalidated port whose role cannot be inferred reports `Outside`).
    pub fn role(&self) -> PortRole {
        self.role
            .or_else(|| PortRole::from_name(&self.name))
            .unwrap_or(PortRole::Outside)
    }

    /// True if `ip` is one of this port's own addresses.
    pub fn has_address(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|a| a.addr() == ip)
    }

    /// True if `ip` lies in one of this port's connected subnets.
    pub fn on_link(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|a| a.contains(&ip))
    }
}

/// `reorder = { window = 4, timeout_ms = 10 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReorderCfg {
    /// 1..=64 packets.
    pub window: u16,
    /// 1..=60000, default 10.
    #[serde(default = "default_reorder_timeout")]
    pub timeout_ms: u32,
}

fn default_reorder_timeout() -> u32 {
    10
}

/// `keepalive = { interval_s = 10, retries = 3 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepaliveCfg {
    /// 1..=3600.
    pub interval_s: u32,
    /// 1..=255, default 3.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_retries() -> u32 {
    3
}

/// `[[tunnel]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelCfg {
    pub name: String,
    /// Outer source; one of our outside ports' addresses.
    #[serde(deserialize_with = "de_ip")]
    pub local: IpAddr,
    /// Outer destination; same family as `local`.
    #[serde(deserialize_with = "de_ip")]
    pub remote: IpAddr,
    /// Key for both directions (excludes `ikey`/`okey`).
    #[serde(default, deserialize_with = "de_opt_key")]
    pub key: Option<u32>,
    /// Key expected on received packets.
    #[serde(default, deserialize_with = "de_opt_key")]
    pub ikey: Option<u32>,
    /// Key put on sent packets.
    #[serde(default, deserialize_with = "de_opt_key")]
    pub okey: Option<u32>,
    #[serde(default)]
    pub checksum: bool,
    #[serde(default)]
    pub sequence: bool,
    #[serde(default)]
    pub reorder: Option<ReorderCfg>,
    #[serde(default)]
    pub ttl: Ttl,
    #[serde(default)]
    pub tos: Tos,
    /// None: derived, see [`TunnelCfg::effective_mtu`].
    #[serde(default)]
    pub mtu: Option<u16>,
    #[serde(default)]
    pub keepalive: Option<KeepaliveCfg>,
    /// Inner destination prefixes sent into this tunnel.
    #[serde(default, deserialize_with = "de_cidrs")]
    pub routes: Vec<IpNet>,
    /// None: any inner source accepted on decap; Some: only these prefixes.
    #[serde(default, deserialize_with = "de_opt_cidrs")]
    pub allowed_sources: Option<Vec<IpNet>>,
}

impl TunnelCfg {
    /// A tunnel with every optional field at its default.
    pub fn new(name: impl Into<String>, local: IpAddr, remote: IpAddr) -> Self {
        TunnelCfg {
            name: name.into(),
            local,
            remote,
            key: None,
            ikey: None,
            okey: None,
            checksum: false,
            sequence: false,
            reorder: None,
            ttl: Ttl::default(),
            tos: Tos::default(),
            mtu: None,
            keepalive: None,
            routes: Vec::new(),
            allowed_sources: None,
        }
    }

    /// Key expected on received packets (`ikey`, else `key`).
    pub fn in_key(&self) -> Option<u32> {
        self.ikey.or(self.key)
    }

    /// Key written on sent packets (`okey`, else `key`).
    pub fn out_key(&self) -> Option<u32> {
        self.okey.or(self.key)
    }

    /// Bytes added by encapsulation: outer IP header (20 / 40) + GRE base header (4) + 4 for
    /// each of checksum, out-key and sequence.
    pub fn overhead(&self) -> u16 {
        let ip = if self.local.is_ipv4() { 20 } else { 40 };
        let opts = [self.checksum, self.out_key().is_some(), self.sequence]
            .iter()
            .filter(|&&b| b)
            .count() as u16;
        ip + 4 + 4 * opts
    }

    /// Largest inner packet the outside port owning `local` can carry without fragmenting
    /// (port MTU minus [`overhead`](Self::overhead); port MTU 1500 if no port owns `local`).
    pub fn max_mtu(&self, cfg: &Config) -> u16 {
        let port_mtu = cfg.port_for_local(self.local).map_or(1500, |p| p.mtu);
        port_mtu.saturating_sub(self.overhead())
    }

    /// The inner MTU: explicit `mtu`, else [`max_mtu`](Self::max_mtu).
    pub fn effective_mtu(&self, cfg: &Config) -> u16 {
        self.mtu.unwrap_or_else(|| self.max_mtu(cfg))
    }

    /// Minimum inner MTU: 1280 if the tunnel carries an IPv6 route (RFC 8200), else 576.
    pub fn min_mtu(&self) -> u16 {
        if self.routes.iter().any(|r| matches!(r, IpNet::V6(_))) {
            1280
        } else {
            576
        }
    }
}

/// `[[neighbor]]`: a static next hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborCfg {
    pub port: String,
    #[serde(deserialize_with = "de_ip")]
    pub ip: IpAddr,
    pub mac: MacAddr,
}

/// `[[route]]`: an outer route (to tunnel remotes) or inside route (to inner hosts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteCfg {
    #[serde(deserialize_with = "de_cidr")]
    pub prefix: IpNet,
    /// None: directly connected on `port`.
    #[serde(default, deserialize_with = "de_opt_ip")]
    pub via: Option<IpAddr>,
    pub port: String,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsCfg {
    /// Prometheus exporter listen address.
    #[serde(deserialize_with = "de_sockaddr")]
    pub prometheus: SocketAddr,
}

/// `[control]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlCfg {
    /// Unix socket of the control interface.
    pub socket: PathBuf,
}

/// `[generator]`: the traffic generator and latency meter (`greway gen`). Every field has a default, so an empty
/// section (or none, with `--tx-port`) is valid; command-line flags override it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorCfg {
    /// Port (by name) to transmit on; default: the first port.
    #[serde(default)]
    pub tx_port: Option<String>,
    /// Port (by name) to receive and measure on; default: none (transmit only).
    #[serde(default)]
    pub rx_port: Option<String>,
    /// Target rate in packets per second; with neither this nor `rate_gbps`, as fast as possible.
    #[serde(default)]
    pub rate_pps: Option<f64>,
    /// Target rate in Gbit/s on the wire (frame + FCS + 20 B preamble/IFG per frame: 10.0 is 10GbE line rate).
    #[serde(default)]
    pub rate_gbps: Option<f64>,
    /// Stop after this many seconds (default 1 s when `count` is absent too).
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Stop after this many packets.
    #[serde(default)]
    pub count: Option<u64>,
    /// Frame sizes in bytes including the 4-byte FCS, cycled packet by packet (one value: fixed size;
    /// several: a size sweep); ignored when `imix` is on. Default [128].
    #[serde(default = "default_gen_sizes")]
    pub sizes: Vec<u16>,
    /// Simple IMIX: 64/594/1518-byte frames in the ratio 7:4:1.
    #[serde(default)]
    pub imix: bool,
    /// `"udp"` (plain inner packets) or `"gre"` (GRE-encapsulated).
    #[serde(default)]
    pub encap: GenEncap,
    /// Inner source address (IPv4 or IPv6, which picks the inner family); flows add to it.
    #[serde(default = "default_gen_inner_src", deserialize_with = "de_ip")]
    pub inner_src: IpAddr,
    /// Inner destination address (same family as `inner_src`).
    #[serde(default = "default_gen_inner_dst", deserialize_with = "de_ip")]
    pub inner_dst: IpAddr,
    /// Outer (tunnel) source for GRE; tunnels add to it.
    #[serde(default = "default_gen_outer_src", deserialize_with = "de_ip")]
    pub outer_src: IpAddr,
    /// Outer (tunnel) destination for GRE (same family as `outer_src`).
    #[serde(default = "default_gen_outer_dst", deserialize_with = "de_ip")]
    pub outer_dst: IpAddr,
    /// Destination MAC (default broadcast-free 02:00:00:00:00:02).
    #[serde(default)]
    pub dst_mac: Option<MacAddr>,
    /// Source MAC (default: the tx port's MAC).
    #[serde(default)]
    pub src_mac: Option<MacAddr>,
    /// UDP source port of flow 0; flows add to it (RSS spreads them).
    #[serde(default = "default_gen_sport")]
    pub udp_sport: u16,
    /// UDP destination port.
    #[serde(default = "default_gen_dport")]
    pub udp_dport: u16,
    /// Number of GRE tunnels (outer source and key vary per tunnel).
    #[serde(default = "default_one")]
    pub tunnels: u32,
    /// Flows per tunnel (inner source address and UDP source port vary per flow).
    #[serde(default = "default_one")]
    pub flows: u32,
    /// GRE key of tunnel 0 (tunnel i uses key + i); none = no key.
    #[serde(default, deserialize_with = "de_opt_key")]
    pub key: Option<u32>,
    /// GRE checksum present (RFC 2784).
    #[serde(default)]
    pub checksum: bool,
    /// GRE sequence numbers present (RFC 2890), one counter per tunnel.
    #[serde(default)]
    pub sequence: bool,
    /// First GRE sequence number of each tunnel (they continue across RFC 2544 trials). A receiver that keeps
    /// RFC 2890 state drops a restarted lower sequence as late: start a second run above the first one's end.
    #[serde(default)]
    pub sequence_start: u32,
    /// Packets per tx burst, 1..=256.
    #[serde(default = "default_burst")]
    pub burst: u16,
    /// How long the receiver keeps counting after the last packet was sent, in ms.
    #[serde(default = "default_gen_drain_ms")]
    pub drain_ms: u32,
    /// Throughput at zero loss (`--rfc2544`): binary search settings.
    #[serde(default)]
    pub rfc2544: Rfc2544Cfg,
}

/// `generator.encap`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GenEncap {
    #[default]
    Udp,
    Gre,
}

/// `[generator.rfc2544]`: the binary search on rate for the throughput at zero loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rfc2544Cfg {
    /// Number of trials, 1..=32.
    #[serde(default = "default_rfc_trials")]
    pub trials: u32,
    /// Length of each trial in seconds, (0, 60].
    #[serde(default = "default_rfc_trial_s")]
    pub trial_s: f64,
    /// Highest rate searched, pps (default: the generator's rate, else 10 Mpps).
    #[serde(default)]
    pub max_pps: Option<f64>,
    /// Loss accepted as "zero", in percent of the packets sent (RFC 2544 says 0).
    #[serde(default)]
    pub loss_tolerance_pct: f64,
}

impl Default for Rfc2544Cfg {
    fn default() -> Self {
        Rfc2544Cfg {
            trials: default_rfc_trials(),
            trial_s: default_rfc_trial_s(),
            max_pps: None,
            loss_tolerance_pct: 0.0,
        }
    }
}

impl Default for GeneratorCfg {
    fn default() -> Self {
        toml::from_str("").expect("all generator fields have defaults")
    }
}

fn default_gen_sizes() -> Vec<u16> {
    vec![128]
}
fn default_gen_inner_src() -> IpAddr {
    IpAddr::from([10, 20, 0, 1])
}
fn default_gen_inner_dst() -> IpAddr {
    IpAddr::from([10, 0, 0, 2])
}
fn default_gen_outer_src() -> IpAddr {
    IpAddr::from([198, 51, 100, 7])
}
fn default_gen_outer_dst() -> IpAddr {
    IpAddr::from([192, 0, 2, 1])
}
fn default_gen_sport() -> u16 {
    1024
}
fn default_gen_dport() -> u16 {
    4000
}
fn default_one() -> u32 {
    1
}
fn default_gen_drain_ms() -> u32 {
    200
}
fn default_rfc_trials() -> u32 {
    8
}
fn default_rfc_trial_s() -> f64 {
    1.0
}

/// Checks a `[generator]` section against the config (port names exist) and its own ranges. Public so that the
/// command line can re-check after its flags override fields.
pub fn check_generator(cfg: &Config, g: &GeneratorCfg) -> Result<(), String> {
    check_generator_issue(cfg, g).map_err(|i| format!("{}: {}", i.path, i.msg))
}

fn check_generator_issue(cfg: &Config, g: &GeneratorCfg) -> Check {
    for (field, name) in [
        ("generator.tx_port", &g.tx_port),
        ("generator.rx_port", &g.rx_port),
    ] {
        if let Some(n) = name {
            if cfg.port_by_name(n).is_none() {
                return Err(unknown_port(cfg, field.to_string(), n));
            }
        }
    }
    if g.rate_pps.is_some() && g.rate_gbps.is_some() {
        return Err(issue(
            "generator.rate_pps",
            "give either rate_pps or rate_gbps, not both",
        ));
    }
    for (f, v) in [
        ("generator.rate_pps", g.rate_pps),
        ("generator.rate_gbps", g.rate_gbps),
    ] {
        if let Some(v) = v {
            if !(v.is_finite() && v > 0.0) {
                return Err(issue(f, format!("rate must be a positive number, got {v}")));
            }
        }
    }
    if let Some(d) = g.duration_s {
        if !(d.is_finite() && d > 0.0 && d <= 86400.0) {
            return Err(issue(
                "generator.duration_s",
                format!("duration must be in (0, 86400] seconds, got {d}"),
            ));
        }
    }
    if g.count == Some(0) {
        return Err(issue("generator.count", "count must be at least 1"));
    }
    if g.sizes.is_empty() {
        return Err(issue(
            "generator.sizes",
            "at least one frame size is needed",
        ));
    }
    for (i, s) in g.sizes.iter().enumerate() {
        if !(64..=9018).contains(s) {
            return Err(issue(
                format!("generator.sizes[{i}]"),
                format!("frame size {s} is outside 64..=9018 (bytes, FCS included)"),
            ));
        }
    }
    if g.inner_src.is_ipv4() != g.inner_dst.is_ipv4() {
        return Err(issue(
            "generator.inner_dst",
            "inner_src and inner_dst must be of the same family",
        ));
    }
    if g.outer_src.is_ipv4() != g.outer_dst.is_ipv4() {
        return Err(issue(
            "generator.outer_dst",
            "outer_src and outer_dst must be of the same family",
        ));
    }
    if let Some(m) = g.src_mac {
        if m.is_multicast() {
            return Err(issue("generator.src_mac", "source MAC must be unicast"));
        }
    }
    if !(1..=65536).contains(&g.tunnels) {
        return Err(issue(
            "generator.tunnels",
            format!("tunnels must be in 1..=65536, got {}", g.tunnels),
        ));
    }
    if !(1..=65536).contains(&g.flows) {
        return Err(issue(
            "generator.flows",
            format!("flows must be in 1..=65536, got {}", g.flows),
        ));
    }
    if u64::from(g.tunnels) * u64::from(g.flows) > 65536 {
        return Err(issue(
            "generator.flows",
            format!(
                "tunnels x flows = {} exceeds 65536 streams",
                u64::from(g.tunnels) * u64::from(g.flows)
            ),
        ));
    }
    if g.tunnels > 1 && g.encap == GenEncap::Udp {
        return Err(issue(
            "generator.tunnels",
            "tunnels > 1 needs encap = \"gre\" (use flows for plain UDP)",
        ));
    }
    if !(1..=256).contains(&g.burst) {
        return Err(issue(
            "generator.burst",
            format!("burst must be in 1..=256, got {}", g.burst),
        ));
    }
    if g.drain_ms > 60_000 {
        return Err(issue(
            "generator.drain_ms",
            "drain_ms must be at most 60000",
        ));
    }
    let r = &g.rfc2544;
    if !(1..=32).contains(&r.trials) {
        return Err(issue(
            "generator.rfc2544.trials",
            format!("trials must be in 1..=32, got {}", r.trials),
        ));
    }
    if !(r.trial_s.is_finite() && r.trial_s > 0.0 && r.trial_s <= 60.0) {
        return Err(issue(
            "generator.rfc2544.trial_s",
            format!("trial_s must be in (0, 60], got {}", r.trial_s),
        ));
    }
    if let Some(m) = r.max_pps {
        if !(m.is_finite() && m > 0.0) {
            return Err(issue(
                "generator.rfc2544.max_pps",
                format!("max_pps must be positive, got {m}"),
            ));
        }
    }
    if !(0.0..100.0).contains(&r.loss_tolerance_pct) {
        return Err(issue(
            "generator.rfc2544.loss_tolerance_pct",
            "loss_tolerance_pct must be in [0, 100)",
        ));
    }
    Ok(())
}

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
        let tree = toml::from_str::<Node>(text).ok();
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
    check_roles_for_tunnels(cfg, 1)
        .and_then(|()| check_tunnel(cfg, cfg.tunnels.len(), t, &cfg.tunnels, &routes))
        .map_err(|iss| ConfigError::new("<runtime>", None, iss.path, iss.msg))
}

/// Checks a whole configuration changed at run time (`greway ctl`) with the same rules as a file.
/// The error's file is `<runtime>` and it has no line.
pub fn validate_runtime(cfg: &Config) -> Result<(), ConfigError> {
    validate(cfg).map_err(|iss| ConfigError::new("<runtime>", None, iss.path, iss.msg))
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

fn validate(cfg: &Config) -> Check {
    check_dataplane(cfg)?;
    check_ports(cfg)?;
    check_roles_for_tunnels(cfg, cfg.tunnels.len())?;
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

/// Parses an EAL core list such as `0-3,6,8-9`.
fn parse_core_list(s: &str) -> Option<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?);
                if a > b || b - a > 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(part.parse::<u32>().ok()?);
            }
        }
    }
    Some(out)
}

fn check_dataplane(cfg: &Config) -> Check {
    let dp = &cfg.dataplane;
    if dp.workers.is_empty() {
        return Err(issue(
            "dataplane.workers",
            "at least one worker core is required",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, w) in dp.workers.iter().enumerate() {
        if !seen.insert(*w) {
            return Err(issue(
                format!("dataplane.workers[{i}]"),
                format!("duplicate worker core {w}"),
            ));
        }
    }
    if !(1..=256).contains(&dp.burst) {
        return Err(issue(
            "dataplane.burst",
            format!("burst must be 1..=256, got {}", dp.burst),
        ));
    }
    if !(512..=16_777_215).contains(&dp.mbufs) {
        return Err(issue(
            "dataplane.mbufs",
            format!("mbufs must be 512..=16777215, got {}", dp.mbufs),
        ));
    }
    if dp.idle_sleep_us > 1_000_000 {
        return Err(issue(
            "dataplane.idle_sleep_us",
            format!(
                "idle_sleep_us must be 0..=1000000 (0 = busy poll), got {}",
                dp.idle_sleep_us
            ),
        ));
    }

    // Worker cores against the EAL core list, when given as `-l LIST`.
    let args = &cfg.eal.args;
    let mut cores: Option<(usize, BTreeSet<u32>)> = None;
    let mut main_lcore: Option<u32> = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let (val, idx) = if a == "-l" || a == "--main-lcore" {
            (args.get(i + 1).map(String::as_str), i + 1)
        } else if let Some(rest) = a.strip_prefix("-l").filter(|r| !r.is_empty()) {
            (Some(rest), i)
        } else if let Some(rest) = a.strip_prefix("--main-lcore=") {
            (Some(rest), i)
        } else {
            i += 1;
            continue;
        };
        let Some(val) = val else {
            return Err(issue(
                format!("eal.args[{i}]"),
                format!("{a} needs a value"),
            ));
        };
        if a.starts_with("-l") {
            match parse_core_list(val) {
                Some(set) if !set.is_empty() => cores = Some((idx, set)),
                _ => {
                    return Err(issue(
                        format!("eal.args[{idx}]"),
                        format!("cannot parse EAL core list {val:?} (expected e.g. 0-3,6)"),
                    ))
                }
            }
        } else {
            match val.parse::<u32>() {
                Ok(v) => main_lcore = Some(v),
                Err(_) => {
                    return Err(issue(
                        format!("eal.args[{idx}]"),
                        format!("cannot parse --main-lcore value {val:?}"),
                    ))
                }
            }
        }
        i = idx + 1;
    }
    if let Some((idx, set)) = cores {
        let main = main_lcore.or_else(|| set.first().copied());
        let list = &args[idx];
        for (i, w) in dp.workers.iter().enumerate() {
            if !set.contains(w) {
                return Err(issue(
                    format!("dataplane.workers[{i}]"),
                    format!(
                        "worker core {w} is not in the EAL core list {list:?} (eal.args[{idx}])"
                    ),
                ));
            }
            if Some(*w) == main {
                return Err(issue(
                    format!("dataplane.workers[{i}]"),
                    format!(
                        "worker core {w} is the EAL main lcore, which runs the control thread; \
                         pick another core from {list:?}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn check_ports(cfg: &Config) -> Check {
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
        if p.addresses.is_empty() {
            return Err(issue(
                format!("{at}.address"),
                "at least one address is required",
            ));
        }
        for (k, a) in p.addresses.iter().enumerate() {
            let ip = a.addr();
            if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
                return Err(issue(
                    format!("{at}.address[{k}]"),
                    format!("{a} is not a usable unicast interface address"),
                ));
            }
            if let Some(other) = addrs.insert(ip, format!("{at}.address[{k}]")) {
                return Err(issue(
                    format!("{at}.address[{k}]"),
                    format!("address {ip} is already used by {other}"),
                ));
            }
        }
        if let Some(mac) = p.mac {
            if mac.is_multicast() || mac.is_zero() {
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
                    "cannot infer the role of port {:?} from its name: set role = \"inside\" or role = \"outside\"",
                    p.name
                ),
            ));
        }
    }
    Ok(())
}

/// A config with tunnels needs at least one inside-role and one outside-role port.
fn check_roles_for_tunnels(cfg: &Config, tunnels: usize) -> Check {
    if tunnels == 0 {
        return Ok(());
    }
    for role in [PortRole::Inside, PortRole::Outside] {
        if cfg.ports_with_role(role).next().is_none() {
            return Err(issue(
                "port",
                format!("a config with tunnels needs at least one port with role \"{role}\""),
            ));
        }
    }
    Ok(())
}

fn unknown_port(cfg: &Config, path: String, name: &str) -> Issue {
    let known: Vec<&str> = cfg.ports.iter().map(|p| p.name.as_str()).collect();
    issue(
        path,
        format!("unknown port {name:?} (ports: {})", known.join(", ")),
    )
}

fn check_neighbors(cfg: &Config) -> Check {
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
        if n.mac.is_multicast() || n.mac.is_zero() {
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

fn host_bits_msg(p: &IpNet) -> String {
    format!("prefix {p} has host bits set; did you mean {}?", p.trunc())
}

fn check_routes(cfg: &Config) -> Check {
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
fn check_route(cfg: &Config, at: &str, r: &RouteCfg) -> Check {
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

/// Checks a `[[route]]` about to be added at run time with the file's rules, in O(1) of the
/// routes: `exists` says whether `cfg.routes` already has its prefix (the caller keeps an index).
/// The error's field is `route[N].…` with N the index the route would get.
pub fn validate_route_addition(
    cfg: &Config,
    r: &RouteCfg,
    exists: bool,
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
        check_route(cfg, &at, r)
    };
    check().map_err(|iss| ConfigError::new("<runtime>", None, iss.path, iss.msg))
}

/// Checks an inner prefix about to be routed into tunnel `ti` at run time with the file's rules, in
/// O(1) of the routes: `owner` is the tunnel that already routes the prefix, if any (the caller
/// keeps an index). The error names the field the file check would (the later of two tunnels
/// routing the same prefix).
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

/// Checks that removing the `[[route]]` for `p` at run time leaves every tunnel's remote
/// reachable, as the file's rules require. O(tunnels), plus O(routes) per tunnel whose remote
/// only this route's prefix or another route reaches.
pub fn validate_route_removal(cfg: &Config, p: &IpNet) -> Result<(), ConfigError> {
    for (i, t) in cfg.tunnels.iter().enumerate() {
        if p.contains(&t.remote) && !remote_reachable(cfg, t, Some(p)) {
            let iss = no_route_to_remote(&format!("tunnel[{i}]"), t);
            return Err(ConfigError::new("<runtime>", None, iss.path, iss.msg));
        }
    }
    Ok(())
}

/// Whether tunnel `t`'s remote is on an outside port's subnet or covered by a `[[route]]` (other
/// than `skip`) through an outside port.
fn remote_reachable(cfg: &Config, t: &TunnelCfg, skip: Option<&IpNet>) -> bool {
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

fn no_route_to_remote(at: &str, t: &TunnelCfg) -> Issue {
    issue(
        format!("{at}.remote"),
        format!(
            "no route to remote {}: it is on no outside port's subnet and no [[route]] through an outside port covers it",
            t.remote
        ),
    )
}

fn check_prefix_list(at: &str, list: &[IpNet]) -> Check {
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

/// Rules for one tunnel, at index `idx`, against the ports/routes of `cfg` and the tunnels in
/// `earlier` (the ones before it in the file, or all existing ones for a runtime addition).
/// Route prefix -> index of the first of `tunnels` that routes it.
fn route_index(tunnels: &[TunnelCfg]) -> HashMap<IpNet, usize> {
    let mut m = HashMap::new();
    for (i, t) in tunnels.iter().enumerate() {
        for p in &t.routes {
            m.entry(*p).or_insert(i);
        }
    }
    m
}

/// `earlier_routes` indexes the routes of `earlier` ([`route_index`]).
fn check_tunnel(
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

/// The tunnel's MTU (explicit, or derived from its port's) against `min` and its port.
fn check_tunnel_mtu(cfg: &Config, idx: usize, t: &TunnelCfg, min: u16) -> Check {
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

// ---------------------------------------------------------------------------------------------
// Span tree: maps byte spans to field paths and field paths to lines
// ---------------------------------------------------------------------------------------------

// The toml crate hands out spans through the serde_spanned protocol; these are its (stable
// within serde_spanned 0.6) private names. Asking for them lets a node take its span when the
// deserializer knows it and fall back to a plain value when it does not (implicit tables).
const SP_NAME: &str = "$__serde_spanned_private_Spanned";
const SP_START: &str = "$__serde_spanned_private_start";
const SP_END: &str = "$__serde_spanned_private_end";
const SP_VALUE: &str = "$__serde_spanned_private_value";
const SP_FIELDS: [&str; 3] = [SP_START, SP_END, SP_VALUE];

#[derive(Debug)]
struct Node {
    span: Option<Range<usize>>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Table(Vec<(Key, Node)>),
    Array(Vec<Node>),
    Scalar,
}

#[derive(Debug)]
struct Key {
    name: String,
    span: Option<Range<usize>>,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SP_NAME, &SP_FIELDS, NodeVisitor)
    }
}

struct AnyNode;

impl<'de> DeserializeSeed<'de> for AnyNode {
    type Value = Node;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

fn scalar() -> Node {
    Node {
        span: None,
        kind: Kind::Scalar,
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any TOML value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(scalar())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(scalar())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(scalar())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(scalar())
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(scalar())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Node {
            span: None,
            kind: Kind::Array(items),
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        let Some(first) = map.next_key::<Key>()? else {
            return Ok(Node {
                span: None,
                kind: Kind::Table(entries),
            });
        };
        if first.name == SP_START && first.span.is_none() {
            let start: usize = map.next_value()?;
            map.next_key::<Key>()?;
            let end: usize = map.next_value()?;
            map.next_key::<Key>()?;
            let mut node = map.next_value_seed(AnyNode)?;
            node.span = Some(start..end);
            return Ok(node);
        }
        let v = map.next_value::<Node>()?;
        entries.push((first, v));
        while let Some(k) = map.next_key::<Key>()? {
            let v = map.next_value::<Node>()?;
            entries.push((k, v));
        }
        Ok(Node {
            span: None,
            kind: Kind::Table(entries),
        })
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a TOML key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key {
                    name: v.to_string(),
                    span: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
                map.next_key::<String>()?;
                let start: usize = map.next_value()?;
                map.next_key::<String>()?;
                let end: usize = map.next_value()?;
                map.next_key::<String>()?;
                let name: String = map.next_value()?;
                Ok(Key {
                    name,
                    span: Some(start..end),
                })
            }
        }
        d.deserialize_struct(SP_NAME, &SP_FIELDS, V)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The path of the smallest key or value span in the tree that contains `offset`.
fn locate(root: &Node, offset: usize) -> Option<String> {
    fn visit(node: &Node, path: &str, offset: usize, best: &mut Option<(usize, String)>) {
        fn consider(
            span: &Option<Range<usize>>,
            p: &str,
            offset: usize,
            best: &mut Option<(usize, String)>,
        ) {
            if let Some(s) = span {
                let hit = s.contains(&offset) || (s.is_empty() && s.start == offset);
                if hit && best.as_ref().is_none_or(|(len, _)| s.len() <= *len) {
                    *best = Some((s.len(), p.to_string()));
                }
            }
        }
        consider(&node.span, path, offset, best);
        match &node.kind {
            Kind::Table(entries) => {
                for (k, v) in entries {
                    let p = join(path, &k.name);
                    consider(&k.span, &p, offset, best);
                    visit(v, &p, offset, best);
                }
            }
            Kind::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    visit(v, &format!("{path}[{i}]"), offset, best);
                }
            }
            Kind::Scalar => {}
        }
    }
    let mut best = None;
    visit(root, "", offset, &mut best);
    best.map(|(_, p)| p)
}

/// Follows `path` (`tunnel[1].routes[0]`) in the tree as far as it exists. Returns the path to
/// display (an `[0]` index into a scalar written without brackets is dropped) and the span of
/// the deepest node found.
fn resolve_path(root: &Node, path: &str) -> (String, Option<Range<usize>>) {
    let mut node = Some(root);
    let mut span = root.span.clone();
    let mut shown = String::new();
    for seg in path.split('.') {
        let (name, indices) = match seg.find('[') {
            Some(b) => (&seg[..b], &seg[b..]),
            None => (seg, ""),
        };
        let mut seg_shown = name.to_string();
        node = node.and_then(|n| match &n.kind {
            Kind::Table(entries) => entries.iter().find(|(k, _)| k.name == name).map(|(_, v)| v),
            _ => None,
        });
        if let Some(n) = node {
            if n.span.is_some() {
                span = n.span.clone();
            }
        }
        for ix in indices.split('[').filter(|s| !s.is_empty()) {
            let ix = ix.trim_end_matches(']');
            let i: usize = ix.parse().unwrap_or(usize::MAX);
            match node.map(|n| &n.kind) {
                Some(Kind::Array(items)) => {
                    seg_shown.push_str(&format!("[{ix}]"));
                    node = items.get(i);
                    if let Some(s) = node.and_then(|n| n.span.clone()) {
                        span = Some(s);
                    }
                }
                Some(_) if i == 0 => {} // `address = "x"` is element 0 of itself
                _ => {
                    seg_shown.push_str(&format!("[{ix}]"));
                    node = None;
                }
            }
        }
        shown = join(&shown, &seg_shown);
    }
    (shown, span)
}

/// Field path and message for a serde/TOML error.
fn describe_toml_error(e: &toml::de::Error, tree: Option<&Node>) -> (String, String) {
    let msg = e.message().trim().to_string();
    let Some(tree) = tree else {
        return (String::new(), format!("invalid TOML: {msg}"));
    };
    let path = e
        .span()
        .and_then(|s| locate(tree, s.start))
        .unwrap_or_default();
    let quoted = |prefix: &str| -> Option<String> {
        let rest = msg.strip_prefix(prefix)?;
        Some(rest.split('`').next().unwrap_or("").to_string())
    };
    if let Some(k) = quoted("unknown field `") {
        let field = if path == k || path.ends_with(&format!(".{k}")) {
            path
        } else {
            join(&path, &k)
        };
        let rest = msg.split_once(", ").map_or("", |(_, r)| r);
        let msg = if rest.is_empty() {
            format!("unknown key `{k}`")
        } else {
            format!("unknown key `{k}`; {rest}")
        };
        return (field, msg);
    }
    if let Some(k) = quoted("missing field `") {
        return (join(&path, &k), format!("missing required key `{k}`"));
    }
    (path, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[eal]
args = ["-l", "0-1"]
[dataplane]
workers = [1]
[[port]]
name = "inside"
device = "net_null0"
address = "10.0.0.1/24"
[[port]]
name = "outside"
device = "net_null1"
address = ["192.0.2.1/24", "2001:db8::1/64"]
[[tunnel]]
name = "a"
local = "192.0.2.1"
remote = "192.0.2.7"
key = 7
routes = ["10.20.0.0/16"]
"#;

    #[test]
    fn mac_roundtrip() {
        let m: MacAddr = "02:00:00:00:00:FE".parse().unwrap();
        assert_eq!(m.0, [2, 0, 0, 0, 0, 0xfe]);
        assert_eq!(m.to_string(), "02:00:00:00:00:fe");
        assert_eq!("02-00-00-00-00-01".parse::<MacAddr>().unwrap().0[5], 1);
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "0g:00:00:00:00:00",
            "2:0:0:0:0:0",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn minimal_loads_with_defaults() {
        let c = Config::from_str_named(MINIMAL, "m.toml").unwrap();
        assert_eq!(c.dataplane.burst, 32);
        assert_eq!(c.dataplane.mbufs, 8191);
        assert_eq!(c.dataplane.idle_sleep_us, 0);
        assert_eq!(c.ports[0].role, Some(PortRole::Inside));
        assert_eq!(c.ports[1].addresses.len(), 2);
        assert_eq!(c.ports[1].mtu, 1500);
        let t = &c.tunnels[0];
        assert_eq!(t.ttl, Ttl::Fixed(64));
        assert_eq!(t.tos, Tos::Inherit);
        assert_eq!((t.in_key(), t.out_key()), (Some(7), Some(7)));
        assert_eq!(t.overhead(), 28);
        assert_eq!(t.effective_mtu(&c), 1472);
        assert_eq!(c.port_by_name("outside").unwrap().role(), PortRole::Outside);
    }

    #[test]
    fn overhead_counts_options() {
        let mut t = TunnelCfg::new(
            "x",
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        assert_eq!(t.overhead(), 44);
        t.checksum = true;
        t.sequence = true;
        t.ikey = Some(1);
        assert_eq!(t.overhead(), 52); // ikey alone adds nothing on egress
        t.okey = Some(2);
        assert_eq!(t.overhead(), 56);
    }

    #[test]
    fn error_has_file_line_field() {
        let text = MINIMAL.replace("key = 7", "key = 7\nikey = 8");
        let e = Config::from_str_named(&text, "m.toml").unwrap_err();
        assert_eq!(e.field(), "tunnel[0].key");
        assert_eq!(e.line(), Some(18));
        assert!(
            e.to_string()
                .starts_with("m.toml:18: tunnel[0].key: key cannot"),
            "{e}"
        );
    }

    #[test]
    fn serde_errors_are_located() {
        let text = MINIMAL.replace("key = 7", "key = 7\ncolour = 1");
        let e = Config::from_str_named(&text, "m.toml").unwrap_err();
        assert_eq!((e.field(), e.line()), ("tunnel[0].colour", Some(19)), "{e}");
        let text = MINIMAL.replace("\"2001:db8::1/64\"", "\"2001:db8::zz/64\"");
        let e = Config::from_str_named(&text, "m.toml").unwrap_err();
        assert_eq!(
            (e.field(), e.line()),
            ("port[1].address[1]", Some(13)),
            "{e}"
        );
        let text = MINIMAL.replace("name = \"a\"\n", "");
        let e = Config::from_str_named(&text, "m.toml").unwrap_err();
        assert_eq!((e.field(), e.line()), ("tunnel[0].name", Some(14)), "{e}");
        let e = Config::from_str_named("[eal]\nargs = []\n", "m.toml").unwrap_err();
        assert_eq!(e.field(), "dataplane", "{e}");
        let e = Config::from_str_named("[eal\n", "m.toml").unwrap_err();
        assert_eq!((e.field(), e.line()), ("", Some(1)), "{e}");
    }

    #[test]
    fn dotted_and_inline_tables_are_located() {
        let text = MINIMAL.replace("key = 7", "key = 7\nsequence = true\nreorder.window = 65");
        let e = Config::from_str_named(&text, "m.toml").unwrap_err();
        assert_eq!(
            (e.field(), e.line()),
            ("tunnel[0].reorder.window", Some(20)),
            "{e}"
        );
        let text = MINIMAL.replace(
            "key = 7",
            "key = 7\nkeepalive = { interval_s = 10, retriez = 1 }",
        );
        let e = Config::from_str_named(&text, "m.toml").unwrap_err();
        assert_eq!(
            (e.field(), e.line()),
            ("tunnel[0].keepalive.retriez", Some(19)),
            "{e}"
        );
    }

    #[test]
    fn single_string_address_path_has_no_index() {
        let text = MINIMAL.replace("\"10.0.0.1/24\"", "\"192.0.2.1/24\"");
        let e = Config::from_str_named(&text, "m.toml").unwrap_err();
        assert_eq!(
            (e.field(), e.line()),
            ("port[1].address[0]", Some(13)),
            "{e}"
        );
        let text = MINIMAL.replace("address = \"10.0.0.1/24\"", "address = \"0.0.0.0/0\"");
        let e = Config::from_str_named(&text, "m.toml").unwrap_err();
        assert_eq!((e.field(), e.line()), ("port[0].address", Some(9)), "{e}");
    }

    #[test]
    fn worker_cores_checked_against_eal_list() {
        let text = MINIMAL.replace("workers = [1]", "workers = [0]");
        let e = Config::from_str_named(&text, "m.toml").unwrap_err();
        assert_eq!(e.field(), "dataplane.workers[0]");
        assert!(e.message().contains("main lcore"), "{e}");
        let text = MINIMAL.replace("workers = [1]", "workers = [1, 2]");
        let e = Config::from_str_named(&text, "m.toml").unwrap_err();
        assert_eq!(e.field(), "dataplane.workers[1]");
        assert!(e.message().contains("not in the EAL core list"), "{e}");
        assert_eq!(parse_core_list("0-2,5").unwrap().len(), 4);
        assert!(parse_core_list("2-1").is_none());
    }

    #[test]
    fn runtime_tunnel_addition() {
        let c = Config::from_str_named(MINIMAL, "m.toml").unwrap();
        let mut t = TunnelCfg::new(
            "b",
            "192.0.2.1".parse().unwrap(),
            "192.0.2.8".parse().unwrap(),
        );
        t.routes = vec!["10.30.0.0/16".parse().unwrap()];
        validate_tunnel_addition(&c, &t).unwrap();
        t.routes = vec!["10.20.0.0/16".parse().unwrap()];
        let e = validate_tunnel_addition(&c, &t).unwrap_err();
        assert_eq!(
            (e.field(), e.line(), e.file()),
            ("tunnel[1].routes[0]", None, "<runtime>")
        );
        t.routes.clear();
        t.name = "a".into();
        assert_eq!(
            validate_tunnel_addition(&c, &t).unwrap_err().field(),
            "tunnel[1].name"
        );
        t.name = "b".into();
        t.remote = "192.0.2.7".parse().unwrap();
        t.key = Some(7);
        assert_eq!(
            validate_tunnel_addition(&c, &t).unwrap_err().field(),
            "tunnel[1]"
        );
        t.key = Some(8);
        validate_tunnel_addition(&c, &t).unwrap();
    }

    #[test]
    fn serializes_back_to_an_equal_config() {
        let text = MINIMAL.replace(
            "key = 7",
            "key = 7\nttl = \"inherit\"\ntos = 8\nmac_placeholder",
        );
        let text = text.replace(
            "mac_placeholder",
            "reorder = { window = 2 }\nsequence = true",
        );
        let c = Config::from_str_named(&text, "m").unwrap();
        let back = toml::to_string(&c).unwrap();
        let c2 = Config::from_str_named(&back, "back").unwrap();
        assert_eq!(c, c2, "{back}");
    }

    #[test]
    fn enum_and_type_errors_are_located() {
        let text = MINIMAL.replace(
            "name = \"inside\"\n",
            "name = \"inside\"\nrole = \"transit\"\n",
        );
        let e = Config::from_str_named(&text, "m").unwrap_err();
        assert_eq!((e.field(), e.line()), ("port[0].role", Some(8)), "{e}");
        let text = MINIMAL.replace("key = 7", "key = \"seven\"");
        let e = Config::from_str_named(&text, "m").unwrap_err();
        assert_eq!((e.field(), e.line()), ("tunnel[0].key", Some(18)), "{e}");
        let text = MINIMAL.replace("workers = [1]", "workers = [1]\nburst = 70000");
        let e = Config::from_str_named(&text, "m").unwrap_err();
        assert_eq!((e.field(), e.line()), ("dataplane.burst", Some(6)), "{e}");
    }

    #[test]
    fn ttl_tos_values() {
        for (v, want) in [
            ("1", Ttl::Fixed(1)),
            ("255", Ttl::Fixed(255)),
            ("\"inherit\"", Ttl::Inherit),
        ] {
            let text = MINIMAL.replace("key = 7", &format!("key = 7\nttl = {v}"));
            assert_eq!(
                Config::from_str_named(&text, "m").unwrap().tunnels[0].ttl,
                want
            );
        }
        for v in ["0", "256", "-1", "\"copy\""] {
            let text = MINIMAL.replace("key = 7", &format!("key = 7\nttl = {v}"));
            let e = Config::from_str_named(&text, "m").unwrap_err();
            assert_eq!((e.field(), e.line()), ("tunnel[0].ttl", Some(19)), "{e}");
        }
        let text = MINIMAL.replace("key = 7", "key = 7\ntos = 0");
        assert_eq!(
            Config::from_str_named(&text, "m").unwrap().tunnels[0].tos,
            Tos::Fixed(0)
        );
    }
}
