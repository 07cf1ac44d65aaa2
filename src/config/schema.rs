//! The configuration's serde structs: one per TOML table, every one `deny_unknown_fields`.
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::value::{
    de_cidr, de_cidrs, de_ip, de_one_or_many_cidrs, de_opt_cidrs, de_opt_ip, de_opt_key,
    de_sockaddr, MacAddr, MssClamp, PortRole, Tos, Ttl,
};
use crate::gen::config::GeneratorCfg;

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
    /// `[[mirror]]`: ports whose frames are copied into ERSPAN tunnels.
    #[serde(rename = "mirror", default)]
    pub mirrors: Vec<MirrorCfg>,
    #[serde(rename = "bridge", default)]
    pub bridges: Vec<BridgeCfg>,
    #[serde(default)]
    pub metrics: Option<MetricsCfg>,
    #[serde(default)]
    pub control: Option<ControlCfg>,
    /// `[host]`: the kernel exception path (host interfaces). None: no host interfaces.
    #[serde(default)]
    pub host: Option<HostCfg>,
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

pub(crate) fn default_burst() -> u16 {
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
    /// `address` in TOML: a CIDR string or an array of them (IPv4 and/or IPv6). Required, except on an l2 port,
    /// which has none.
    #[serde(rename = "address", default, deserialize_with = "de_one_or_many_cidrs")]
    pub addresses: Vec<IpNet>,
    /// None: use the port's own MAC.
    #[serde(default, with = "super::value::opt_mac")]
    pub mac: Option<MacAddr>,
    #[serde(default = "default_port_mtu")]
    pub mtu: u16,
    /// As written; after validation always `Some` (inferred from the name). Use [`PortCfg::role`].
    #[serde(default)]
    pub role: Option<PortRole>,
    /// The name of the port's host interface (with `[host]`). None: the port name cut to 15 characters.
    #[serde(default)]
    pub host_if: Option<String>,
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

    /// The name of the port's host interface: `host_if`, else the port name cut to [`IFNAMSIZ_MAX`] bytes.
    pub fn host_if_name(&self) -> String {
        default_if_name(self.host_if.as_deref(), &self.name)
    }
}

/// The longest Linux interface name (IFNAMSIZ 16 with the terminating NUL).
pub const IFNAMSIZ_MAX: usize = 15;

/// `explicit`, else `name` cut to [`IFNAMSIZ_MAX`] bytes (names are ASCII, see the name rules).
fn default_if_name(explicit: Option<&str>, name: &str) -> String {
    match explicit {
        Some(n) => n.to_string(),
        None => name.chars().take(IFNAMSIZ_MAX).collect(),
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

impl ReorderCfg {
    /// `timeout_ms` when left out.
    pub const DEFAULT_TIMEOUT_MS: u32 = 10;
}

fn default_reorder_timeout() -> u32 {
    ReorderCfg::DEFAULT_TIMEOUT_MS
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

impl KeepaliveCfg {
    /// `retries` when left out.
    pub const DEFAULT_RETRIES: u32 = 3;
}

fn default_retries() -> u32 {
    KeepaliveCfg::DEFAULT_RETRIES
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
    /// The tunnel interface's own addresses (`address` in TOML: a CIDR string or an array of them, like a
    /// port's). Each is an address of greway; its subnet (unless a /32 or /128) lies through the tunnel: a
    /// connected route into it.
    #[serde(default, deserialize_with = "de_one_or_many_cidrs")]
    pub address: Vec<IpNet>,
    /// The name of the tunnel's host interface (with `[host]`). None: the tunnel name cut to 15 characters.
    #[serde(default)]
    pub host_if: Option<String>,
    /// IPv6 outer only: send an RFC 2473 Tunnel Encapsulation Limit of this value in a Destination Options
    /// header before GRE (as Linux ip6gre's `encaplimit`). None: no such header.
    #[serde(default)]
    pub encap_limit: Option<u8>,
    /// Lower the MSS option of TCP SYN and SYN-ACK segments through the tunnel, both directions.
    #[serde(default)]
    pub mss_clamp: MssClamp,
    /// What the tunnel carries: IP packets (default) or ERSPAN mirrored frames.
    #[serde(default)]
    pub mode: TunnelMode,
    /// `mode = "erspan"`: the ERSPAN session (and, for sending, version, index and hwid).
    #[serde(default)]
    pub erspan: Option<ErspanCfg>,
    /// `mode = "erspan"`: the l2 port the received mirrored frames leave by.
    #[serde(default)]
    pub deliver: Option<String>,
}

/// `[[tunnel]] mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelMode {
    /// IP packets inside (GRE protocol 0x0800 / 0x86DD).
    #[default]
    Ip,
    /// ERSPAN: mirrored Ethernet frames (GRE protocol 0x88BE, types I and II; 0x22EB, type III).
    Erspan,
    /// Transparent Ethernet bridging (GRE protocol 0x6558, Linux "gretap"): Ethernet frames of a bridge inside.
    Teb,
}

impl std::fmt::Display for TunnelMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TunnelMode::Ip => "ip",
            TunnelMode::Erspan => "erspan",
            TunnelMode::Teb => "teb",
        })
    }
}

/// `erspan = { session = 55 }` (with `version`, `index`, `hwid` for sending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErspanCfg {
    /// Session ID, 0..=1023. Received packets of other sessions are dropped.
    pub session: u16,
    /// 1: type II; 2: type III (for sending; received types I, II and III are all accepted).
    #[serde(default)]
    pub version: Option<u8>,
    /// Type II port index, 0..=1048575 (for sending).
    #[serde(default)]
    pub index: Option<u32>,
    /// Type III hardware ID, 0..=63 (for sending).
    #[serde(default)]
    pub hwid: Option<u8>,
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
            address: Vec::new(),
            host_if: None,
            encap_limit: None,
            mss_clamp: MssClamp::Off,
            mode: TunnelMode::Ip,
            erspan: None,
            deliver: None,
        }
    }

    /// `mode = "erspan"` resolved for the datapath: the session and the index of the `deliver` port (None for
    /// other tunnels; `deliver` None for a tunnel without one, or an unvalidated config's that names no port).
    pub fn erspan_rx(&self, cfg: &Config) -> Option<greway_datapath::tunnel::table::ErspanRx> {
        if self.mode != TunnelMode::Erspan {
            return None;
        }
        let deliver = self
            .deliver
            .as_deref()
            .and_then(|d| cfg.ports.iter().position(|p| p.name == d))
            .and_then(|p| u16::try_from(p).ok());
        Some(greway_datapath::tunnel::table::ErspanRx {
            session: self.erspan?.session,
            deliver,
        })
    }

    /// True when some `[[mirror]]` sends into this tunnel (it is then an ERSPAN sender, see
    /// [`TunnelCfg::erspan_tx`]).
    pub fn is_mirror_target(&self, cfg: &Config) -> bool {
        cfg.mirrors.iter().any(|m| m.tunnel == self.name)
    }

    /// The ERSPAN header this tunnel sends when a `[[mirror]]` targets it (None otherwise, or without
    /// `erspan.version`: invalid then).
    pub fn erspan_tx(&self, cfg: &Config) -> Option<greway_datapath::tunnel::table::ErspanTx> {
        if self.mode != TunnelMode::Erspan || !self.is_mirror_target(cfg) {
            return None;
        }
        let e = self.erspan?;
        Some(greway_datapath::tunnel::table::ErspanTx {
            version: e.version?,
            session: e.session,
            index: e.index.unwrap_or(0),
            hwid: e.hwid.unwrap_or(0),
        })
    }

    /// True if `ip` is one of this tunnel's own addresses.
    pub fn has_address(&self, ip: IpAddr) -> bool {
        self.address.iter().any(|a| a.addr() == ip)
    }

    /// The connected subnets through this tunnel: its addresses' prefixes, except host addresses (/32, /128),
    /// which have no peer subnet.
    pub fn subnets(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.address
            .iter()
            .filter(|a| a.prefix_len() < a.max_prefix_len())
            .map(|a| a.trunc())
    }

    /// True if `ip` is a foreign host on one of this tunnel's subnets: a next hop through it.
    pub fn peer_on_link(&self, ip: IpAddr) -> bool {
        !self.has_address(ip) && self.subnets().any(|n| n.contains(&ip))
    }

    /// The name of the tunnel's host interface: `host_if`, else the tunnel name cut to 15 bytes.
    pub fn host_if_name(&self) -> String {
        default_if_name(self.host_if.as_deref(), &self.name)
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
    /// each of checksum, out-key and sequence, + 8 for the Destination Options header of `encap_limit`, + 14
    /// for a TEB tunnel, whose MTU (like a Linux gretap device's) counts the Ethernet payload of its frames, not
    /// their Ethernet header.
    pub fn overhead(&self) -> u16 {
        let inner_ethernet = if self.mode == TunnelMode::Teb { 14 } else { 0 };
        self.outer_ip_len() + 4 + 4 * self.gre_options() + inner_ethernet
    }

    /// The outer IP header's length (20 / 40), with the Destination Options header of `encap_limit`.
    fn outer_ip_len(&self) -> u16 {
        if self.local.is_ipv4() {
            20
        } else if self.encap_limit.is_some() {
            40 + greway_wire::ipv6_options::EncapLimitRepr::HEADER_LEN as u16
        } else {
            40
        }
    }

    /// [`overhead`](Self::overhead) in `cfg`: an ERSPAN tunnel that a `[[mirror]]` sends into adds the GRE
    /// header Linux's erspan sends (4 bytes and a 4-byte sequence number, no key or checksum) and the ERSPAN
    /// header (8 bytes for type II, 12 for type III) in front of each mirrored frame.
    pub fn overhead_in(&self, cfg: &Config) -> u16 {
        match self.erspan_tx(cfg) {
            Some(e) => self.outer_ip_len() + 8 + e.header_len() as u16,
            None => self.overhead(),
        }
    }

    /// Number of GRE optional fields this tunnel sends as an IP tunnel (checksum, out-key, sequence).
    fn gre_options(&self) -> u16 {
        [self.checksum, self.out_key().is_some(), self.sequence]
            .iter()
            .filter(|&&b| b)
            .count() as u16
    }

    /// Largest inner packet the outside port owning `local` can carry without fragmenting
    /// (port MTU minus [`overhead_in`](Self::overhead_in); port MTU 1500 if no port owns `local`). For an
    /// ERSPAN sender: the largest mirrored frame (Ethernet header included) sent whole.
    pub fn max_mtu(&self, cfg: &Config) -> u16 {
        let port_mtu = cfg.port_for_local(self.local).map_or(1500, |p| p.mtu);
        port_mtu.saturating_sub(self.overhead_in(cfg))
    }

    /// The inner MTU: explicit `mtu`, else [`max_mtu`](Self::max_mtu).
    pub fn effective_mtu(&self, cfg: &Config) -> u16 {
        self.mtu.unwrap_or_else(|| self.max_mtu(cfg))
    }

    /// The MSS `mss_clamp` lowers SYN and SYN-ACK segments to, for (IPv4, IPv6) inner packets: `true` is the
    /// tunnel MTU minus the IP and TCP headers (40 / 60 bytes, as MikroTik's `clamp-tcp-mss`), a number is
    /// that MSS for both.
    pub fn mss_clamp_values(&self, cfg: &Config) -> Option<(u16, u16)> {
        match self.mss_clamp {
            MssClamp::Off => None,
            MssClamp::Fixed(m) => Some((m, m)),
            MssClamp::Auto => {
                let mtu = self.effective_mtu(cfg);
                Some((mtu.saturating_sub(40), mtu.saturating_sub(60)))
            }
        }
    }

    /// Minimum inner MTU: 1280 if the tunnel carries an IPv6 route or has an IPv6 address (RFC 8200), else 576.
    pub fn min_mtu(&self) -> u16 {
        if self
            .routes
            .iter()
            .chain(&self.address)
            .any(|r| matches!(r, IpNet::V6(_)))
        {
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
    #[serde(with = "super::value::mac")]
    pub mac: MacAddr,
}

/// `[[route]]`: an outer route (to tunnel remotes), an inside route (to inner hosts), or a route into a tunnel.
/// Exactly one of `port`, `tunnel`, or a `via` in a tunnel's subnet says where it goes ([`Config::route_tunnel`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteCfg {
    #[serde(deserialize_with = "de_cidr")]
    pub prefix: IpNet,
    /// With `port`: the next hop on the port's subnet (None: directly connected). Without `port`: a peer on a
    /// tunnel's subnet, and the route goes into that tunnel.
    #[serde(default, deserialize_with = "de_opt_ip")]
    pub via: Option<IpAddr>,
    /// The egress port (an outer or inside route).
    #[serde(default)]
    pub port: Option<String>,
    /// Straight into this tunnel (no `via`).
    #[serde(default)]
    pub tunnel: Option<String>,
}

impl RouteCfg {
    /// A route out of `port`, through `via` or directly connected.
    pub fn through_port(prefix: IpNet, port: impl Into<String>, via: Option<IpAddr>) -> Self {
        RouteCfg {
            prefix,
            via,
            port: Some(port.into()),
            tunnel: None,
        }
    }
}

/// `[[mirror]]`: copy the frames a port receives (`rx`), sends (`tx`) or both into an ERSPAN tunnel (an ERSPAN
/// session: the tunnel's `erspan.session`, `version`, `index`, `hwid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorCfg {
    /// Any port.
    pub port: String,
    /// `"rx"` (default), `"tx"` or `"both"`.
    #[serde(default)]
    pub direction: MirrorDirection,
    /// An ERSPAN tunnel (`mode = "erspan"` with `erspan.version`).
    pub tunnel: String,
}

/// `[[mirror]] direction`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MirrorDirection {
    /// Frames as received.
    #[default]
    Rx,
    /// Frames as sent.
    Tx,
    /// Both.
    Both,
}

impl MirrorDirection {
    /// Whether this direction copies received (`rx`) / sent (`tx`) frames.
    pub fn rx(self) -> bool {
        self != MirrorDirection::Tx
    }
    pub fn tx(self) -> bool {
        self != MirrorDirection::Rx
    }
}

impl std::fmt::Display for MirrorDirection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MirrorDirection::Rx => "rx",
            MirrorDirection::Tx => "tx",
            MirrorDirection::Both => "both",
        })
    }
}

/// `[[bridge]]`: l2 ports, VLANs of l2 ports and TEB tunnels bridged together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeCfg {
    pub name: String,
    /// `"PORT"` (an l2 port), `"PORT.VLAN"` (one 802.1Q VLAN of an l2 port) or a TEB tunnel's name.
    pub members: Vec<String>,
    /// Learn source MACs (default). Off: every frame is flooded.
    #[serde(default = "default_true")]
    pub learning: bool,
    /// Most MACs learned at once.
    #[serde(default = "default_mac_table_size")]
    pub mac_table_size: u32,
    /// Seconds a learned MAC is kept without being seen again.
    #[serde(default = "default_aging_s")]
    pub aging_s: u32,
}

/// A bridge member resolved against the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BridgeMember {
    /// Port index, and the VLAN for `PORT.VLAN`.
    Port { port: usize, vlan: Option<u16> },
    /// Tunnel index.
    Tunnel(usize),
}

impl Config {
    /// What a bridge member string names: a port, a tunnel, or `PORT.VLAN` (a port name followed by a dot and a
    /// number; a port or tunnel whose own name has a dot is found first). `Err` says what is wrong.
    pub fn bridge_member(&self, s: &str) -> Result<BridgeMember, String> {
        if let Some(p) = self.port_index(s) {
            return Ok(BridgeMember::Port {
                port: p,
                vlan: None,
            });
        }
        if let Some(t) = self.tunnels.iter().position(|t| t.name == s) {
            return Ok(BridgeMember::Tunnel(t));
        }
        if let Some((port, vlan)) = s.rsplit_once('.') {
            if let Some(p) = self.port_index(port) {
                return match vlan.parse::<u16>() {
                    Ok(v) if (1..=4094).contains(&v) => Ok(BridgeMember::Port {
                        port: p,
                        vlan: Some(v),
                    }),
                    _ => Err(format!(
                        "VLAN {vlan:?} of port {port:?}: a VLAN ID is 1..=4094"
                    )),
                };
            }
        }
        let ports: Vec<&str> = self.ports.iter().map(|p| p.name.as_str()).collect();
        let tunnels: Vec<&str> = self.tunnels.iter().map(|t| t.name.as_str()).collect();
        Err(format!(
            "{s:?} is no port, PORT.VLAN or tunnel (ports: {}; tunnels: {})",
            ports.join(", "),
            tunnels.join(", ")
        ))
    }
}

fn default_true() -> bool {
    true
}
fn default_mac_table_size() -> u32 {
    4096
}
fn default_aging_s() -> u32 {
    300
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsCfg {
    /// Prometheus exporter listen address.
    #[serde(deserialize_with = "de_sockaddr")]
    pub prometheus: SocketAddr,
}

/// `[host]`: greway's host interfaces (one kernel TUN interface per port and tunnel) and what it learns from
/// the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostCfg {
    /// The network namespace of the host interfaces (created, like `ip netns add`, when it does not exist).
    /// None: greway's own namespace.
    #[serde(default)]
    pub netns: Option<String>,
    /// Whether kernel routes through the host interfaces become greway routes.
    #[serde(default)]
    pub routes: HostRoutes,
    /// The kernel routing table routes are learned from.
    #[serde(default = "default_host_table")]
    pub table: u32,
    /// Packets per second each worker hands to the host interfaces; the excess is dropped and counted.
    #[serde(default = "default_punt_pps")]
    pub punt_pps: u32,
}

/// `[host] routes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostRoutes {
    /// Kernel routes whose next hop is a host interface become greway routes.
    #[default]
    Learn,
    /// Nothing is learned from the kernel.
    Off,
}

/// The kernel's main routing table (RT_TABLE_MAIN).
fn default_host_table() -> u32 {
    254
}

fn default_punt_pps() -> u32 {
    10_000
}

/// `[control]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlCfg {
    /// Unix socket of the control interface.
    pub socket: PathBuf,
}
