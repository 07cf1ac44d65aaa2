//! `greway`: the command line. Exit status: 0 ok, 1 runtime failure, 2 invalid configuration or arguments.
use clap::{Parser, Subcommand};
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
    /// Validate a configuration file and exit: 0 when valid, 2 with the file, line and field when not.
    CheckConfig {
        /// The TOML configuration.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(&cli.log))
        .format_timestamp_millis()
        .init();
    match cli.cmd {
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
        Cmd::Run {
            config,
            exit_idle_ms,
            stats_json,
            duration_s,
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
