//! `greway`: the command line. Exit status: 0 ok, 1 runtime failure, 2 invalid configuration or arguments.
use clap::{CommandFactory, Parser, Subcommand};
use greway::app::{self, RunOptions, Runtime};
use greway::config::Config;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "greway",
    version,
    about = "Kernel-bypass GRE tunnel gateway on DPDK"
)]
struct Cli {
    /// Log level: error, warn, info, debug, trace (or RUST_LOG).
    #[arg(long, global = true, default_value = "info")]
    log: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
    Gen(Box<greway::gen::GenArgs>),
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
}

#[derive(Subcommand)]
enum CtlCmd {
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
    /// The live counters (ports, drops by reason, tunnels with state, latency) as JSON.
    Stats,
    /// Port mirroring (ERSPAN out): show.
    Mirror {
        #[command(subcommand)]
        cmd: MirrorCmd,
    },
}

#[derive(Subcommand)]
enum MirrorCmd {
    /// The `[[mirror]]` entries (port, direction, ERSPAN tunnel and session) with their counters: copies sent,
    /// bytes, truncated, and failures by reason.
    Show,
}

#[derive(Subcommand)]
enum TunnelCmd {
    /// Add a tunnel; validated like the config file. Packets of other tunnels keep flowing.
    Add {
        #[arg(long)]
        name: String,
        /// Outer source: one of our outside addresses.
        #[arg(long)]
        local: String,
        /// Outer destination (the peer).
        #[arg(long)]
        remote: String,
        /// GRE key, both directions.
        #[arg(long)]
        key: Option<u32>,
        /// GRE checksums (RFC 2784).
        #[arg(long)]
        checksum: bool,
        /// GRE sequence numbers (RFC 2890).
        #[arg(long)]
        sequence: bool,
        /// Clamp the MSS of TCP SYN and SYN-ACK segments, both directions: alone (or `true`) to the tunnel MTU
        /// - 40 (IPv4) / - 60 (IPv6), or to the MSS given.
        #[arg(long, value_name = "MSS", num_args = 0..=1, default_missing_value = "true",
              value_parser = parse_mss_clamp)]
        mss_clamp: Option<greway::config::MssClamp>,
        /// IPv6 outer only: send an RFC 2473 Tunnel Encapsulation Limit of N (0..=255) before GRE.
        #[arg(long, value_name = "N")]
        encap_limit: Option<u8>,
        /// An inner destination prefix routed into the tunnel (repeat for more).
        #[arg(long = "route", value_name = "PREFIX")]
        routes: Vec<String>,
        /// An address of the tunnel interface itself, with its prefix length (repeat for more): its subnet
        /// lies through the tunnel.
        #[arg(long = "address", value_name = "CIDR")]
        address: Vec<String>,
        /// What the tunnel carries: `ip` (default) or `erspan` (receive ERSPAN of --erspan-session and deliver
        /// it to the l2 port --deliver).
        #[arg(long, value_name = "MODE", value_parser = parse_tunnel_mode)]
        mode: Option<greway::config::TunnelMode>,
        /// With --mode erspan: the ERSPAN session received, 0..=1023.
        #[arg(long, value_name = "N")]
        erspan_session: Option<u16>,
        /// With --mode erspan: the l2 port the mirrored frames leave by.
        #[arg(long, value_name = "PORT")]
        deliver: Option<String>,
    },
    /// Remove a tunnel (its routes go with it).
    Del {
        #[arg(long)]
        name: String,
    },
    /// The tunnels with their parameters and state.
    Show,
}

#[derive(Subcommand)]
enum RouteCmd {
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
enum BenchCmd {
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

fn bench_checksum(sizes: &[usize], bytes: u64) {
    use greway::wire::checksum::{available_variants, best_variant, measure_fn_gbps, measure_gbps};
    let mut summary = Vec::new();
    // The TSC rate (no EAL here): ticks over a 100 ms sleep.
    let (t0, i0) = (greway::dpdk::rdtsc(), std::time::Instant::now());
    std::thread::sleep(std::time::Duration::from_millis(100));
    let tsc_hz =
        greway::dpdk::rdtsc().wrapping_sub(t0) as f64 / i0.elapsed().as_secs_f64().max(1e-9);
    for &len in sizes {
        let iters = (bytes / len.max(1) as u64).max(1);
        for v in available_variants() {
            println!(
                "checksum-{len} variant={v} gbps={:.2}",
                measure_gbps(v, len, iters)
            );
        }
        if len <= greway::wire::checksum::SHORT_MAX {
            // What `sum` runs at this size: the inline short-buffer routine, not a SIMD variant.
            println!(
                "checksum-{len} variant=inline-short gbps={:.2}",
                measure_fn_gbps(|d| greway::wire::checksum::sum_short(d, 0), len, iters)
            );
        }
        let best = best_variant();
        let x = measure_gbps(best, len, iters);
        let y = measure_fn_gbps(greway::dpdk::raw_cksum, len, iters);
        let y2 = measure_fn_gbps(greway::dpdk::raw_cksum_o2, len, iters);
        // Bytes per TSC cycle: how close to the L1 load bandwidth (64 B/cycle on this core with 2 loads of 32 B,
        // 128 with AVX-512 loads).
        let bpc = x * 1e9 / tsc_hz;
        summary.push(format!(
            "checksum-{len} best={best} gbps={x:.2} rte_raw_cksum_gbps={y:.2} ratio={:.2} \
             rte_raw_cksum_o2_gbps={y2:.2} ratio_o2={:.2} bytes_per_cycle={bpc:.1}",
            x / y.max(1e-9),
            x / y2.max(1e-9)
        ));
    }
    for l in summary {
        println!("{l}");
    }
}

fn main() -> ExitCode {
    greway::dpdk::large_allocations_from_mmap();
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(&cli.log))
        .format_timestamp_millis()
        .init();
    match cli.cmd {
        Cmd::Bench {
            what: BenchCmd::Checksum { sizes, bytes },
        } => {
            bench_checksum(&sizes, bytes);
            ExitCode::SUCCESS
        }
        Cmd::Gen(a) => greway::gen::main(*a),
        Cmd::CheckConfig { file } => match Config::load(&file) {
            Ok(cfg) => {
                println!(
                    "{}: ok ({} ports, {} tunnels, {} workers)",
                    file.display(),
                    cfg.ports.len(),
                    cfg.tunnels.len(),
                    cfg.dataplane.workers.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Ctl { socket, cmd } => ctl(&socket, cmd),
        Cmd::Man { out } => man_pages(&out),
        Cmd::Run {
            config,
            exit_idle_ms,
            stats_json,
            duration_s,
            warmup_s,
            live_json,
            quiet,
            eal,
        } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let opts = RunOptions {
                exit_idle: exit_idle_ms.map(Duration::from_millis),
                stats_json,
                extra_eal_args: eal,
                live: !quiet && std::io::stdout().is_terminal(),
                duration: duration_s.map(Duration::from_secs_f64),
                warmup: warmup_s.map(Duration::from_secs_f64),
                live_json,
            };
            match run(&cfg, &opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// `greway man --out DIR`: the man pages of every visible command, from the clap definitions above.
fn man_pages(out: &std::path::Path) -> ExitCode {
    match std::fs::create_dir_all(out).and_then(|()| clap_mangen::generate_to(Cli::command(), out))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}: {e}", out.display());
            ExitCode::from(1)
        }
    }
}

/// `--mss-clamp` values: `true`, `false`, or an MSS (the configuration's `mss_clamp`).
fn parse_mss_clamp(s: &str) -> Result<greway::config::MssClamp, String> {
    use greway::config::MssClamp;
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

/// `--mode`: a tunnel mode as the file spells it.
fn parse_tunnel_mode(s: &str) -> Result<greway::config::TunnelMode, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("expected ip or erspan, got {s:?}"))
}

fn ctl(socket: &std::path::Path, cmd: CtlCmd) -> ExitCode {
    use greway::control::ctl::{call, Request, TunnelSpec};
    let req = match cmd {
        CtlCmd::Stats => Request::Stats,
        CtlCmd::Mirror {
            cmd: MirrorCmd::Show,
        } => Request::MirrorShow,
        CtlCmd::Tunnel { cmd } => match cmd {
            TunnelCmd::Add {
                name,
                local,
                remote,
                key,
                checksum,
                sequence,
                mss_clamp,
                encap_limit,
                routes,
                address,
                mode,
                erspan_session,
                deliver,
            } => Request::TunnelAdd {
                tunnel: TunnelSpec {
                    name,
                    local,
                    remote,
                    key,
                    checksum,
                    sequence,
                    routes,
                    address,
                    mss_clamp: mss_clamp.unwrap_or_default(),
                    encap_limit,
                    mode: mode.unwrap_or_default(),
                    erspan_session,
                    deliver,
                },
            },
            TunnelCmd::Del { name } => Request::TunnelDel { name },
            TunnelCmd::Show => Request::TunnelShow,
        },
        CtlCmd::Route { cmd } => match cmd {
            RouteCmd::Add {
                prefix,
                tunnel,
                port,
                via,
            } => Request::RouteAdd {
                prefix,
                tunnel,
                port,
                via,
                quiet: false,
            },
            RouteCmd::Del { prefix } => Request::RouteDel {
                prefix,
                quiet: false,
            },
            RouteCmd::Show => Request::RouteShow,
        },
    };
    match call(socket, &req) {
        Ok(r) if r.ok => {
            let data = r.data.unwrap_or(serde_json::Value::Null);
            println!(
                "{}",
                serde_json::to_string_pretty(&data).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok(r) => {
            eprintln!("error: {}", r.error.unwrap_or_else(|| "refused".into()));
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {}: {e}", socket.display());
            ExitCode::from(1)
        }
    }
}

fn run(cfg: &Config, opts: &RunOptions) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let rt = Runtime::start(cfg, &opts.extra_eal_args)?;
    let report = app::run_configured(cfg, &rt, opts, stop)?;
    app::print_summary(&report);
    if let Some(p) = &opts.stats_json {
        std::fs::write(p, serde_json::to_string_pretty(&report)? + "\n")?;
        log::info!("final counters written to {}", p.display());
    }
    drop(rt);
    app::remove_runtime_dir(cfg, &opts.extra_eal_args);
    Ok(())
}
