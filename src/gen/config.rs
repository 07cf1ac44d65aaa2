//! The generator's configuration: the `[generator]` section of a greway config and its rules.
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::config::{
    de_ip, de_opt_key, default_burst, issue, unknown_port, Check, Config, MacAddr,
};

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
    /// `"udp"` (plain inner packets), `"gre"` (GRE-encapsulated), `"teb"` (Ethernet frames in GRE, protocol
    /// 0x6558, as a gretap tunnel carries them) or `"erspan"` (the UDP frame mirrored in ERSPAN over GRE).
    #[serde(default)]
    pub encap: GenEncap,
    /// With `encap = "erspan"`: 1 (type II, the default) or 2 (type III).
    #[serde(default = "default_erspan_version")]
    pub erspan_version: u8,
    /// With `encap = "erspan"`: the session ID, 0..=1023.
    #[serde(default)]
    pub erspan_session: u16,
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
    #[serde(default, with = "crate::config::opt_mac")]
    pub dst_mac: Option<MacAddr>,
    /// Source MAC (default: the tx port's MAC).
    #[serde(default, with = "crate::config::opt_mac")]
    pub src_mac: Option<MacAddr>,
    /// `encap = "teb"`: the inner Ethernet frame's source MAC of flow 0; flow j adds j to its last three bytes
    /// (so a bridge learns one MAC per flow). Default 02:00:00:00:20:01.
    #[serde(default, with = "crate::config::opt_mac")]
    pub inner_src_mac: Option<MacAddr>,
    /// `encap = "teb"`: the inner Ethernet frame's destination MAC. Default 02:00:00:00:10:02.
    #[serde(default, with = "crate::config::opt_mac")]
    pub inner_dst_mac: Option<MacAddr>,
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
    /// Transparent Ethernet bridging: GRE protocol 0x6558 carrying an Ethernet frame (Linux gretap).
    Teb,
    /// A UDP frame inside ERSPAN type II or III (GRE with a sequence number, no key, no checksum).
    Erspan,
}

impl GenEncap {
    /// GRE (with an IP or an Ethernet payload).
    pub fn is_gre(self) -> bool {
        self != GenEncap::Udp
    }
}

fn default_erspan_version() -> u8 {
    greway_wire::erspan::VERSION_TYPE_II
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

pub(crate) fn check_generator_issue(cfg: &Config, g: &GeneratorCfg) -> Check {
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
            "tunnels > 1 needs encap = \"gre\", \"teb\" or \"erspan\" (use flows for plain UDP)",
        ));
    }
    for (f, m) in [
        ("generator.inner_src_mac", g.inner_src_mac),
        ("generator.inner_dst_mac", g.inner_dst_mac),
    ] {
        if m.is_some() && g.encap != GenEncap::Teb {
            return Err(issue(f, "an inner MAC needs encap = \"teb\""));
        }
    }
    if let Some(m) = g.inner_src_mac {
        if m.is_multicast() || m.0 == [0; 6] {
            return Err(issue(
                "generator.inner_src_mac",
                "inner source MAC must be non-zero unicast",
            ));
        }
    }
    if g.erspan_version != greway_wire::erspan::VERSION_TYPE_II
        && g.erspan_version != greway_wire::erspan::VERSION_TYPE_III
    {
        return Err(issue(
            "generator.erspan_version",
            format!(
                "erspan_version must be 1 (type II) or 2 (type III), got {}",
                g.erspan_version
            ),
        ));
    }
    if g.erspan_session > greway_wire::erspan::MAX_SESSION {
        return Err(issue(
            "generator.erspan_session",
            format!("erspan_session must be 0..=1023, got {}", g.erspan_session),
        ));
    }
    if g.encap == GenEncap::Erspan {
        for (set, key) in [(g.key.is_some(), "key"), (g.checksum, "checksum")] {
            if set {
                return Err(issue(
                    format!("generator.{key}"),
                    format!("{key} with encap = \"erspan\": ERSPAN is sent without a GRE key or checksum (as Linux's erspan)"),
                ));
            }
        }
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
