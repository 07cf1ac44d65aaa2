//! `greway`: the command line. Exit status: 0 ok, 1 runtime failure, 2 invalid configuration or arguments.
use clap::{CommandFactory, FromArgMatches};
use greway::app::{self, RunOptions, Runtime};
use greway::cli::{
    BenchCmd, BridgeCmd, Cli, Cmd, CtlCmd, LogFormat, MirrorCmd, RouteCmd, TunnelCmd,
};
use greway::config::Config;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

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
    // `--version` also names the DPDK libraries loaded at run time, known only now.
    let matches = Cli::command()
        .long_version(greway::cli::long_version())
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    init_logging(&cli.log, cli.log_format);
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
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "greway", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
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
                config_path: Some(config),
                reload: None,
            };
            match run(&cfg, opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// Log lines on stderr through env_logger: its own text format, or one JSON object per line
/// (`{"ts":"2024-05-01T12:00:00.123Z","level":"INFO","target":"greway::app","msg":"..."}`) for log shippers,
/// written with serde_json so that any message is escaped correctly.
fn init_logging(level: &str, format: LogFormat) {
    use std::io::Write;
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level));
    match format {
        LogFormat::Text => {
            b.format_timestamp_millis();
        }
        LogFormat::Json => {
            b.format(|buf, r| {
                let line = serde_json::json!({
                    "ts": buf.timestamp_millis().to_string(),
                    "level": r.level().as_str(),
                    "target": r.target(),
                    "msg": r.args().to_string(),
                });
                writeln!(buf, "{line}")
            });
        }
    }
    b.init();
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

fn ctl(socket: &std::path::Path, cmd: CtlCmd) -> ExitCode {
    use greway::control::ctl::{call, Request};
    let req = match cmd {
        CtlCmd::Stats => Request::Stats,
        CtlCmd::Mirror {
            cmd: MirrorCmd::Show,
        } => Request::MirrorShow,
        CtlCmd::Tunnel { cmd } => match cmd {
            TunnelCmd::Add(a) => Request::TunnelAdd {
                tunnel: a.into_tunnel(),
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
        CtlCmd::Bridge {
            cmd: BridgeCmd::Show { name },
        } => Request::BridgeShow { name },
        CtlCmd::Reload => Request::Reload,
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

fn run(cfg: &Config, mut opts: RunOptions) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    // SIGHUP reloads the configuration file (registered before EAL starts: its default action would end the
    // process; one received during the start is served by the control loop's first round).
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())?;
    opts.reload = Some(reload);
    let opts = &opts;
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
