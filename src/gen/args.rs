//! `greway gen` flags, the flag-only config they make, and the effective generator settings.
use super::config::{check_generator, GenEncap, GeneratorCfg};
use crate::config::{parse_mac, Config};
use clap::Args;
use std::net::IpAddr;
use std::path::PathBuf;

/// `greway gen` flags. Any flag overrides the config's `[generator]` field of the same name.
#[derive(Args, Debug, Clone, Default)]
pub struct GenArgs {
    /// A greway config with `[eal]`, `[dataplane]`, `[[port]]` and an optional `[generator]` section.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Without --config: the device to transmit on (e.g. `net_pcap0,tx_pcap=out.pcap`); its port is `tx`.
    #[arg(long, value_name = "DEVARGS")]
    pub tx_dev: Option<String>,
    /// Without --config: the device to receive on; its port is `rx`.
    #[arg(long, value_name = "DEVARGS")]
    pub rx_dev: Option<String>,
    /// Without --config: EAL arguments (space separated).
    #[arg(
        long,
        value_name = "ARGS",
        allow_hyphen_values = true,
        default_value = "-l 0-1 --no-huge -m 512 --no-pci --no-shconf --file-prefix greway-gen --log-level 3"
    )]
    pub eal_args: String,
    /// Without --config: the core of the transmit thread.
    #[arg(long, default_value_t = 1)]
    pub core: u32,
    /// Port name to transmit on.
    #[arg(long)]
    pub tx_port: Option<String>,
    /// Port name to receive on.
    #[arg(long)]
    pub rx_port: Option<String>,
    /// Rate in packets per second.
    #[arg(long)]
    pub rate_pps: Option<f64>,
    /// Rate in Gbit/s on the wire (20 B per frame of preamble and gap included).
    #[arg(long)]
    pub rate_gbps: Option<f64>,
    /// Seconds to transmit.
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Packets to transmit.
    #[arg(long)]
    pub count: Option<u64>,
    /// Frame size(s) in bytes with FCS; several (comma separated) make a size sweep cycled per packet.
    #[arg(long, value_delimiter = ',')]
    pub size: Vec<u16>,
    /// IMIX 7:4:1 of 64/594/1518-byte frames.
    #[arg(long)]
    pub imix: bool,
    /// `udp`, `gre`, `teb` (Ethernet frames in GRE, protocol 0x6558) or `erspan`.
    #[arg(long)]
    pub encap: Option<String>,
    /// With `--encap erspan`: 1 (type II) or 2 (type III).
    #[arg(long)]
    pub erspan_version: Option<u8>,
    /// With `--encap erspan`: the ERSPAN session ID.
    #[arg(long)]
    pub erspan_session: Option<u16>,
    /// Inner source address (flow j: + j); its family picks the inner IP version.
    #[arg(long)]
    pub inner_src: Option<IpAddr>,
    /// Inner destination address.
    #[arg(long)]
    pub inner_dst: Option<IpAddr>,
    /// GRE outer source address (tunnel i: + i); its family picks the outer IP version.
    #[arg(long)]
    pub outer_src: Option<IpAddr>,
    /// GRE outer destination address (the device's tunnel local address).
    #[arg(long)]
    pub outer_dst: Option<IpAddr>,
    /// Source MAC (default: the tx port's).
    #[arg(long)]
    pub src_mac: Option<String>,
    /// Destination MAC (the device under test's).
    #[arg(long)]
    pub dst_mac: Option<String>,
    /// With `--encap teb`: the inner frame's source MAC of flow 0 (flow j: + j).
    #[arg(long)]
    pub inner_src_mac: Option<String>,
    /// With `--encap teb`: the inner frame's destination MAC.
    #[arg(long)]
    pub inner_dst_mac: Option<String>,
    /// UDP source port of flow 0 (flow j: + j).
    #[arg(long)]
    pub udp_sport: Option<u16>,
    /// UDP destination port.
    #[arg(long)]
    pub udp_dport: Option<u16>,
    /// GRE tunnels (outer source and key + i).
    #[arg(long)]
    pub tunnels: Option<u32>,
    /// Flows per tunnel (inner source and UDP source port + i).
    #[arg(long)]
    pub flows: Option<u32>,
    /// GRE key of tunnel 0.
    #[arg(long)]
    pub key: Option<u32>,
    /// GRE checksum on.
    #[arg(long)]
    pub checksum: bool,
    /// GRE sequence numbers on.
    #[arg(long)]
    pub sequence: bool,
    /// First GRE sequence number (per tunnel).
    #[arg(long)]
    pub sequence_start: Option<u32>,
    /// Packets per tx burst.
    #[arg(long)]
    pub burst: Option<u16>,
    /// Milliseconds the receiver keeps counting after the last packet is sent.
    #[arg(long)]
    pub drain_ms: Option<u32>,
    /// Search the throughput at zero loss (RFC 2544 binary search on rate).
    #[arg(long)]
    pub rfc2544: bool,
    /// RFC 2544: number of trials.
    #[arg(long)]
    pub trials: Option<u32>,
    /// RFC 2544: seconds per trial.
    #[arg(long)]
    pub trial_s: Option<f64>,
    /// RFC 2544: highest rate searched (pps).
    #[arg(long)]
    pub max_pps: Option<f64>,
    /// RFC 2544: loss accepted as zero, in percent.
    #[arg(long)]
    pub loss_tolerance_pct: Option<f64>,
    /// Write the report as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,
    /// No live line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Extra EAL arguments, after `--`.
    #[arg(last = true, value_name = "EXTRA_EAL_ARGS")]
    pub eal: Vec<String>,
}

/// A configuration problem: exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

/// A config for flag-only use: ports `tx` (and `rx`) on the given devices.
pub(super) fn synth_config(a: &GenArgs) -> Result<Config, UsageError> {
    let tx = a
        .tx_dev
        .as_ref()
        .ok_or_else(|| UsageError("give --config FILE or --tx-dev DEVARGS".into()))?;
    let eal: Vec<String> = a.eal_args.split_whitespace().map(str::to_string).collect();
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let eal_list: Vec<String> = eal.iter().map(|s| q(s)).collect();
    let mut text = format!(
        "[eal]\nargs = [{}]\n[dataplane]\nworkers = [{}]\n[[port]]\nname = \"tx\"\nrole = \"outside\"\ndevice = {}\naddress = \"198.18.0.1/24\"\n",
        eal_list.join(", "),
        a.core,
        q(tx)
    );
    if let Some(rx) = &a.rx_dev {
        if rx != tx {
            text += &format!(
                "[[port]]\nname = \"rx\"\nrole = \"inside\"\ndevice = {}\naddress = \"198.18.1.1/24\"\n",
                q(rx)
            );
        }
    }
    Config::from_str_named(&text, "<flags>").map_err(|e| UsageError(e.to_string()))
}

/// The effective generator settings: the config's section (or defaults) with the flags applied, validated.
pub fn effective(cfg: &Config, a: &GenArgs) -> Result<GeneratorCfg, UsageError> {
    let mut g = cfg.generator.clone().unwrap_or_default();
    if a.config.is_none() && a.tx_dev.is_some() {
        g.tx_port.get_or_insert_with(|| "tx".into());
        if let Some(rx) = &a.rx_dev {
            let same = a.tx_dev.as_deref() == Some(rx.as_str());
            g.rx_port = Some(if same { "tx" } else { "rx" }.into());
        }
    }
    let bad = |f: &str, e: String| UsageError(format!("--{f}: {e}"));
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = a.$f.clone() { g.$f = v.into(); } )* };
    }
    set!(tx_port, rx_port, rate_pps, rate_gbps, duration_s, count, inner_src, inner_dst);
    set!(outer_src, outer_dst, tunnels, flows, key, burst, drain_ms, udp_sport, udp_dport);
    set!(sequence_start);
    if a.rate_pps.is_some() {
        g.rate_gbps = None;
    }
    if a.rate_gbps.is_some() {
        g.rate_pps = None;
    }
    if a.count.is_some() && a.duration_s.is_none() {
        g.duration_s = None;
    }
    if !a.size.is_empty() {
        g.sizes = a.size.clone();
        g.imix = false;
    }
    g.imix |= a.imix;
    g.checksum |= a.checksum;
    g.sequence |= a.sequence;
    if let Some(e) = &a.encap {
        g.encap = match e.as_str() {
            "udp" => GenEncap::Udp,
            "gre" => GenEncap::Gre,
            "teb" => GenEncap::Teb,
            "erspan" => GenEncap::Erspan,
            _ => {
                return Err(bad(
                    "encap",
                    format!("{e:?} is not udp, gre, teb or erspan"),
                ))
            }
        };
    }
    if let Some(v) = a.erspan_version {
        g.erspan_version = v;
    }
    if let Some(v) = a.erspan_session {
        g.erspan_session = v;
    }
    for (f, src, dst) in [
        ("src-mac", &a.src_mac, &mut g.src_mac),
        ("dst-mac", &a.dst_mac, &mut g.dst_mac),
        ("inner-src-mac", &a.inner_src_mac, &mut g.inner_src_mac),
        ("inner-dst-mac", &a.inner_dst_mac, &mut g.inner_dst_mac),
    ] {
        if let Some(s) = src {
            *dst = Some(parse_mac(s).map_err(|e| bad(f, e.to_string()))?);
        }
    }
    if let Some(t) = a.trials {
        g.rfc2544.trials = t;
    }
    if let Some(t) = a.trial_s {
        g.rfc2544.trial_s = t;
    }
    if a.max_pps.is_some() {
        g.rfc2544.max_pps = a.max_pps;
    }
    if let Some(t) = a.loss_tolerance_pct {
        g.rfc2544.loss_tolerance_pct = t;
    }
    if g.tx_port.is_none() {
        g.tx_port = cfg.ports.first().map(|p| p.name.clone());
    }
    if g.duration_s.is_none() && g.count.is_none() {
        g.duration_s = Some(1.0);
    }
    check_generator(cfg, &g).map_err(UsageError)?;
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"
[eal]
args = ["-l", "0-1"]
[dataplane]
workers = [1]
[[port]]
name = "a"
role = "outside"
device = "net_null0"
address = "192.0.2.2/24"
[[port]]
name = "b"
role = "inside"
device = "net_null1"
address = "10.0.0.2/24"
[generator]
rx_port = "b"
encap = "gre"
rate_gbps = 1.0
sizes = [64, 1518]
"#;

    #[test]
    fn flags_override_the_section_and_are_validated() {
        let cfg = Config::from_str_named(CFG, "g.toml").unwrap();
        let g = effective(&cfg, &GenArgs::default()).unwrap();
        assert_eq!(g.tx_port.as_deref(), Some("a"), "first port by default");
        assert_eq!(g.duration_s, Some(1.0));
        let a = GenArgs {
            rate_pps: Some(1000.0),
            count: Some(10),
            size: vec![128],
            key: Some(5),
            ..GenArgs::default()
        };
        let g = effective(&cfg, &a).unwrap();
        assert_eq!((g.rate_pps, g.rate_gbps), (Some(1000.0), None));
        assert_eq!((g.count, g.duration_s), (Some(10), None));
        assert_eq!((g.sizes.clone(), g.key), (vec![128], Some(5)));
        let bad = GenArgs {
            tunnels: Some(2),
            encap: Some("udp".into()),
            ..GenArgs::default()
        };
        let e = effective(&cfg, &bad).unwrap_err().0;
        assert!(e.starts_with("generator.tunnels:"), "{e}");
        let bad = GenArgs {
            rx_port: Some("zz".into()),
            ..GenArgs::default()
        };
        assert!(effective(&cfg, &bad)
            .unwrap_err()
            .0
            .contains("unknown port \"zz\""));
    }

    #[test]
    fn section_errors_have_line_and_field() {
        for (bad, field) in [
            ("sizes = [63]", "generator.sizes[0]"),
            ("rate_pps = -1.0", "generator.rate_pps"),
            ("rfc2544 = { trials = 0 }", "generator.rfc2544.trials"),
            ("flows = 0", "generator.flows"),
            ("inner_dst = \"2001:db8::1\"", "generator.inner_dst"),
            (
                "inner_src_mac = \"02:00:00:00:00:01\"",
                "generator.inner_src_mac",
            ),
            ("colour = 1", "generator.colour"),
        ] {
            let text = CFG.replace("sizes = [64, 1518]", bad);
            let e = Config::from_str_named(&text, "g.toml").unwrap_err();
            assert_eq!(e.field(), field, "{e}");
            assert_eq!(e.line(), Some(20), "{e}");
        }
    }

    #[test]
    fn flag_only_config_has_tx_and_rx_ports() {
        let a = GenArgs {
            tx_dev: Some("net_ring0".into()),
            rx_dev: Some("net_ring0".into()),
            eal_args: "-l 0-1 --no-huge".into(),
            core: 1,
            ..GenArgs::default()
        };
        let cfg = synth_config(&a).unwrap();
        assert_eq!(cfg.ports.len(), 1);
        let g = effective(&cfg, &a).unwrap();
        assert_eq!(
            (g.tx_port.as_deref(), g.rx_port.as_deref()),
            (Some("tx"), Some("tx"))
        );
    }
}
