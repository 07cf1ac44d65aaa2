//! The command line's definitions (clap): parsed by `main.rs`, and the one source of the man pages
//! (`greway man`), the shell completions (`greway completions`) and the `--help` texts that docs/cli.md follows.
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::IpAddr;
use std::path::PathBuf;

use crate::config::{
    ErspanCfg, KeepaliveCfg, MssClamp, ReorderCfg, Tos, Ttl, TunnelCfg, TunnelMode,
};
use ipnet::IpNet;

/// `greway --version`: the version, the git commit it was built from, and the DPDK version built against. The
/// DPDK libraries found at run time are added by [`long_version`].
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("GREWAY_GIT_COMMIT"),
    "\nDPDK (built against): ",
    env!("GREWAY_DPDK_VERSION"),
);

/// [`LONG_VERSION`] with the DPDK version of the libraries this process runs with (`rte_version()`).
pub fn long_version() -> String {
    format!(
        "{LONG_VERSION}\nDPDK (running): {}",
        crate::dpdk::runtime_version()
    )
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// env_logger's text lines (the default).
    #[default]
    Text,
    /// One JSON object per line (ts, level, target, msg), for log shippers.
    Json,
}

#[derive(Parser)]
#[command(
    name = "greway",
    version,
    long_version = LONG_VERSION,
    about = "Kernel-bypass GRE tunnel gateway on DPDK"
)]
pub struct Cli {
    /// Log level: error, warn, info, debug, trace (or RUST_LOG).
    #[arg(long, global = true, default_value = "info")]
    pub log: String,
    /// Log line format: `text`, or `json` (one JSON object per line, for log shippers).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the gateway: start EAL, the ports and the pinned workers; stop on SIGINT/SIGTERM.
    Run {
        /// The TOML configuration (see dpdk-config/ and README).
        #[arg(long, short)]
        config: PathBuf,
        /// Stop once no port has received a packet for N milliseconds (offline processing of pcap files).
        #[arg(long, value_name = "N")]
        exit_idle_ms: Option<u64>,
        /// Write the final counters (ports, drops by reason, tunnels, mempool, latency) as JSON to PATH.
        #[arg(long, value_name = "PATH")]
        stats_json: Option<PathBuf>,
        /// Stop after N seconds.
        #[arg(long, value_name = "N")]
        duration_s: Option<f64>,
        /// Benchmarks: open the workers' measurement window (stats JSON `bench`: Mpps, cycles/packet; latency)
        /// after N seconds, leaving start-up out.
        #[arg(long, value_name = "N")]
        warmup_s: Option<f64>,
        /// Append one JSON line per second to PATH: rx, tx, drops so far and the mempool's free mbufs.
        #[arg(long, value_name = "PATH")]
        live_json: Option<PathBuf>,
        /// No live line (it is printed once a second only when stdout is a terminal).
        #[arg(long, short)]
        quiet: bool,
        /// Extra EAL arguments, after `--`.
        #[arg(last = true, value_name = "EXTRA_EAL_ARGS")]
        eal: Vec<String>,
    },
    /// Micro-benchmarks that need no EAL.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
    /// Generate GRE/UDP test traffic on one port and measure loss, reordering and latency on another.
    Gen(Box<crate::gen::GenArgs>),
    /// Validate a configuration file and exit: 0 when valid, 2 with the file, line and field when not.
    CheckConfig {
        /// The TOML configuration.
        file: PathBuf,
    },
    /// Talk to a running gateway over its control socket (`[control] socket`): prints the JSON answer; exit 0
    /// when the gateway accepted the request, 1 when it refused it (the reason on stderr).
    Ctl {
        /// The gateway's control socket.
        #[arg(long, short)]
        socket: PathBuf,
        #[command(subcommand)]
        cmd: CtlCmd,
    },
    /// Write one man page per command (greway.1, greway-run.1, greway-ctl-tunnel-add.1, ...) into DIR, generated
    /// from these command-line definitions.
    #[command(hide = true)]
    Man {
        /// The directory to write the pages to (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Write the shell completion script for SHELL (bash, zsh, fish, ...) to stdout, generated from these
    /// command-line definitions.
    #[command(hide = true)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
pub enum CtlCmd {
    /// Tunnels: add, del, show.
    Tunnel {
        #[command(subcommand)]
        cmd: TunnelCmd,
    },
    /// Routes: into a tunnel (--tunnel, or --via a peer on a tunnel's subnet) or out of a port (--port [--via]).
    Route {
        #[command(subcommand)]
        cmd: RouteCmd,
    },
    /// Bridges: show their MAC tables.
    Bridge {
        #[command(subcommand)]
        cmd: BridgeCmd,
    },
    /// Port mirroring (ERSPAN out): show.
    Mirror {
        #[command(subcommand)]
        cmd: MirrorCmd,
    },
    /// The live counters (ports, drops by reason, tunnels with state, latency) as JSON.
    Stats,
    /// Read the configuration file the gateway was started with again and apply the difference (as SIGHUP does):
    /// tunnels, routes, neighbours and bridges added, changed or removed, unchanged tunnels undisturbed. Prints
    /// what changed per section; a file that is invalid or changes what needs a restart (EAL, dataplane, ports,
    /// metrics, control, host) is refused and nothing changes (exit 1, the reason on stderr).
    Reload,
}

#[derive(Subcommand)]
pub enum MirrorCmd {
    /// The `[[mirror]]` entries (port, direction, ERSPAN tunnel and session) with their counters: copies sent,
    /// bytes, truncated, and failures by reason.
    Show,
}

#[derive(Subcommand)]
pub enum BridgeCmd {
    /// Every bridge (or the one named) with its settings and MAC table: MAC, member, VLAN (of a PORT.VLAN
    /// member) and age in seconds.
    Show {
        /// The bridge's name.
        name: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum TunnelCmd {
    /// Add a tunnel, validated like the config file: every key of a `[[tunnel]]` has a flag here. Packets of
    /// other tunnels keep flowing.
    Add(Box<TunnelAddArgs>),
    /// Remove a tunnel (its routes go with it).
    Del {
        #[arg(long)]
        name: String,
    },
    /// The tunnels with their parameters and state.
    Show,
}

/// `greway ctl tunnel add`: one flag per key of a `[[tunnel]]` table (docs/configuration.md), of the same
/// meaning; a key left out takes the file's default. `--route`, `--address` and `--allowed-source` repeat.
#[derive(Args, Debug, Clone)]
pub struct TunnelAddArgs {
    /// The tunnel's name (unique).
    #[arg(long)]
    pub name: String,
    /// Outer source: one of our outside addresses.
    #[arg(long)]
    pub local: IpAddr,
    /// Outer destination (the peer).
    #[arg(long)]
    pub remote: IpAddr,
    /// GRE key, both directions (excludes --ikey/--okey).
    #[arg(long, value_name = "N")]
    pub key: Option<u32>,
    /// GRE key expected on received packets.
    #[arg(long, value_name = "N")]
    pub ikey: Option<u32>,
    /// GRE key put on sent packets.
    #[arg(long, value_name = "N")]
    pub okey: Option<u32>,
    /// GRE checksums (RFC 2784).
    #[arg(long)]
    pub checksum: bool,
    /// GRE sequence numbers (RFC 2890).
    #[arg(long)]
    pub sequence: bool,
    /// Reorder received packets by sequence number in a window of N packets (1..=64; needs --sequence).
    #[arg(long, value_name = "N")]
    pub reorder: Option<u16>,
    /// With --reorder: how long a gap is waited for, 1..=60000 ms (default 10).
    #[arg(long, value_name = "MS", requires = "reorder")]
    pub reorder_timeout_ms: Option<u32>,
    /// Outer TTL / hop limit: 1..=255, or `inherit` (from the inner packet). Default 64.
    #[arg(long, value_name = "N|inherit", value_parser = int_or_word::<Ttl>)]
    pub ttl: Option<Ttl>,
    /// Outer TOS / traffic class: 0..=255, or `inherit` (the default).
    #[arg(long, value_name = "N|inherit", value_parser = int_or_word::<Tos>)]
    pub tos: Option<Tos>,
    /// The largest inner packet (default: derived from the outside port's MTU).
    #[arg(long, value_name = "BYTES")]
    pub mtu: Option<u16>,
    /// Cisco keepalives every N seconds (1..=3600; IPv4 tunnels).
    #[arg(long, value_name = "N")]
    pub keepalive: Option<u32>,
    /// With --keepalive: keepalives missed before the tunnel is down, 1..=255 (default 3).
    #[arg(long, value_name = "N", requires = "keepalive")]
    pub keepalive_retries: Option<u32>,
    /// An inner destination prefix routed into the tunnel (repeat for more).
    #[arg(long = "route", value_name = "PREFIX")]
    pub routes: Vec<IpNet>,
    /// Accept only these inner sources on decapsulation (repeat for more; none given: any source).
    #[arg(long = "allowed-source", value_name = "PREFIX")]
    pub allowed_sources: Vec<IpNet>,
    /// An address of the tunnel interface itself, with its prefix length (repeat for more): its subnet
    /// lies through the tunnel.
    #[arg(long = "address", value_name = "CIDR")]
    pub address: Vec<IpNet>,
    /// The name of the tunnel's host interface (with `[host]`; default: the tunnel name cut to 15 characters).
    #[arg(long, value_name = "NAME")]
    pub host_if: Option<String>,
    /// IPv6 outer only: send an RFC 2473 Tunnel Encapsulation Limit of N (0..=255) before GRE.
    #[arg(long, value_name = "N")]
    pub encap_limit: Option<u8>,
    /// Clamp the MSS of TCP SYN and SYN-ACK segments, both directions: alone (or `true`) to the tunnel MTU
    /// - 40 (IPv4) / - 60 (IPv6), or to the MSS given.
    #[arg(long, value_name = "MSS", num_args = 0..=1, default_missing_value = "true",
          value_parser = parse_mss_clamp)]
    pub mss_clamp: Option<MssClamp>,
    /// What the tunnel carries: `ip` (the default), `teb` (Ethernet frames, for a bridge) or `erspan` (mirrored
    /// frames, delivered to --deliver).
    #[arg(long, value_name = "ip|teb|erspan", value_parser = int_or_word::<TunnelMode>)]
    pub mode: Option<TunnelMode>,
    /// With --mode erspan: the ERSPAN session received, 0..=1023.
    #[arg(long, value_name = "N")]
    pub erspan_session: Option<u16>,
    /// With --erspan-session: the ERSPAN version for sending (1: type II, 2: type III).
    #[arg(long, value_name = "N", requires = "erspan_session")]
    pub erspan_version: Option<u8>,
    /// With --erspan-session: the type II port index for sending, 0..=1048575.
    #[arg(long, value_name = "N", requires = "erspan_session")]
    pub erspan_index: Option<u32>,
    /// With --erspan-session: the type III hardware ID for sending, 0..=63.
    #[arg(long, value_name = "N", requires = "erspan_session")]
    pub erspan_hwid: Option<u8>,
    /// With --mode erspan: the l2 port the received mirrored frames leave by.
    #[arg(long, value_name = "PORT")]
    pub deliver: Option<String>,
}

impl TunnelAddArgs {
    /// The `[[tunnel]]` these flags describe; the gateway checks it with the file's rules.
    pub fn into_tunnel(self) -> TunnelCfg {
        let mut t = TunnelCfg::new(self.name, self.local, self.remote);
        t.key = self.key;
        t.ikey = self.ikey;
        t.okey = self.okey;
        t.checksum = self.checksum;
        t.sequence = self.sequence;
        t.reorder = self.reorder.map(|window| ReorderCfg {
            window,
            timeout_ms: self
                .reorder_timeout_ms
                .unwrap_or(ReorderCfg::DEFAULT_TIMEOUT_MS),
        });
        t.ttl = self.ttl.unwrap_or_default();
        t.tos = self.tos.unwrap_or_default();
        t.mtu = self.mtu;
        t.keepalive = self.keepalive.map(|interval_s| KeepaliveCfg {
            interval_s,
            retries: self
                .keepalive_retries
                .unwrap_or(KeepaliveCfg::DEFAULT_RETRIES),
        });
        t.routes = self.routes;
        t.allowed_sources = (!self.allowed_sources.is_empty()).then_some(self.allowed_sources);
        t.address = self.address;
        t.host_if = self.host_if;
        t.encap_limit = self.encap_limit;
        t.mss_clamp = self.mss_clamp.unwrap_or_default();
        t.mode = self.mode.unwrap_or_default();
        t.erspan = self.erspan_session.map(|session| ErspanCfg {
            session,
            version: self.erspan_version,
            index: self.erspan_index,
            hwid: self.erspan_hwid,
        });
        t.deliver = self.deliver;
        t
    }
}

/// A flag value read as the configuration reads the key: a number as an integer, anything else as a string
/// (`--ttl inherit`, `--mode erspan`), with the file's range checks and messages.
fn int_or_word<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    use serde::de::IntoDeserializer;
    let r: Result<T, serde::de::value::Error> = match s.parse::<u64>() {
        Ok(n) => T::deserialize(n.into_deserializer()),
        Err(_) => T::deserialize(s.into_deserializer()),
    };
    r.map_err(|e| e.to_string())
}

#[derive(Subcommand)]
pub enum RouteCmd {
    Add {
        #[arg(long)]
        prefix: String,
        /// Route the prefix into this tunnel.
        #[arg(long, conflicts_with_all = ["port", "via"])]
        tunnel: Option<String>,
        /// Or: route it out of this port...
        #[arg(long)]
        port: Option<String>,
        /// ...through this next hop (none: directly connected). Without --port: a peer on a tunnel's subnet,
        /// and the prefix is routed into that tunnel.
        #[arg(long)]
        via: Option<String>,
    },
    Del {
        #[arg(long)]
        prefix: String,
    },
    Show,
}

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Checksum throughput of every variant this CPU runs and of DPDK's rte_raw_cksum, on warm buffers starting
    /// at an odd address; ends with `checksum-N best=VARIANT gbps=X rte_raw_cksum_gbps=Y ratio=X/Y
    /// rte_raw_cksum_o2_gbps=Z ratio_o2=X/Z bytes_per_cycle=B` per size (Y: rte_raw_cksum built at -O3 in the shim;
    /// Z: built at -O2 with DPDK's pkg-config flags, an application's default).
    Checksum {
        /// Buffer sizes in bytes.
        #[arg(long, value_delimiter = ',', default_value = "64,1500")]
        sizes: Vec<usize>,
        /// Bytes summed per timed repeat (iterations = this / size).
        #[arg(long, default_value_t = 200_000_000)]
        bytes: u64,
    },
}

/// `--mss-clamp` values: `true`, `false`, or an MSS (the configuration's `mss_clamp`).
pub fn parse_mss_clamp(s: &str) -> Result<crate::config::MssClamp, String> {
    use crate::config::MssClamp;
    match s {
        "true" => Ok(MssClamp::Auto),
        "false" => Ok(MssClamp::Off),
        n => match n.parse::<u16>() {
            Ok(m) if m >= MssClamp::MIN => Ok(MssClamp::Fixed(m)),
            _ => Err(format!(
                "expected true, false or an MSS {}..=65535, got {n:?}",
                MssClamp::MIN
            )),
        },
    }
}
