//! `greway gen`: a GRE traffic generator and latency meter.
//!
//! Contract: transmit prebuilt templates ([`template::Plan`]) on one port at a TSC-paced rate (or as fast as
//! the port takes them) for a duration or a packet count; receive on another port (or the same one) of the same
//! process and measure loss, reordering, duplicates and one-way latency from the 18-byte signature each packet
//! carries (magic, run id, stream id, sequence number, TSC at transmit). Both ends read the same TSC, so the
//! latency needs no clock synchronisation. The transmit loop runs on a pinned, EAL-registered thread (the
//! `[dataplane] workers[0]` core); the receive loop, the live line and the report run on the main thread.
//!
//! Per packet the transmitter makes one copy of the template and the fixups of [`template::Template::stamp`];
//! per burst one bulk mempool allocation, one TSC read and one `tx_burst`. Rates: `Mpps`; `Gbit/s` counts the
//! frame with its FCS, `wire Gbit/s` adds the 20 bytes of preamble, SFD and inter-frame gap per frame.
//!
//! - [`args`]: the command line and the effective settings; [`config`]: the `[generator]` section and its rules.
//! - [`template`]: the frames to send; [`tx`]: the paced transmit loop; [`rx`]: the receive side.
//! - [`trial`]: one transmit/receive run; [`rfc2544`]: the throughput search; [`report`]: the results.
pub mod args;
pub mod config;
pub mod report;
pub mod rfc2544;
pub mod rx;
pub mod template;
mod trial;
mod tx;

use args::synth_config;
pub use args::{effective, GenArgs, UsageError};
pub use report::{print_report, GenReport, Rfc2544Report, Rfc2544Trial, RunResult};

use crate::app::{self, Runtime};
use crate::config::Config;
use crate::dpdk;
use config::GeneratorCfg;
use report::result_of;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use template::Plan;
use trial::{empty_outcome, run_trial, Env, Trial};

/// Per-frame Ethernet overhead on the wire beyond the frame: preamble + SFD (8) and inter-frame gap (12).
pub const WIRE_OVERHEAD: u64 = 20;

/// `greway gen`: exit 0 when the run completed, 1 on a runtime failure, 2 on a configuration error.
pub fn main(a: GenArgs) -> ExitCode {
    let cfg = match &a.config {
        Some(p) => Config::load(p).map_err(|e| UsageError(e.to_string())),
        None => synth_config(&a),
    };
    let (cfg, g) = match cfg.and_then(|c| effective(&c, &a).map(|g| (c, g))) {
        Ok(x) => x,
        Err(UsageError(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let live = !a.quiet && std::io::stdout().is_terminal();
    match run(&cfg, &g, &a, live) {
        Ok(report) => {
            print_report(&report);
            if let Some(p) = &a.report_json {
                let text = serde_json::to_string_pretty(&report).unwrap_or_default() + "\n";
                if let Err(e) = std::fs::write(p, text) {
                    eprintln!("error: {}: {e}", p.display());
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Start EAL and the ports, build the templates, run (one run or the RFC 2544 search), stop.
pub fn run(cfg: &Config, g: &GeneratorCfg, a: &GenArgs, live: bool) -> anyhow::Result<GenReport> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let tx_name = g.tx_port.clone().unwrap_or_default();
    let tx_idx = cfg
        .port_index(&tx_name)
        .ok_or_else(|| anyhow::anyhow!("no port {tx_name}"))?;
    let rx_idx = g.rx_port.as_deref().and_then(|n| cfg.port_index(n));
    let rt = Runtime::start(cfg, &a.eal)?;
    // Like a hardware tester, start only once the links are up (memif and real NICs take a moment).
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in std::iter::once(tx_idx).chain(rx_idx) {
        let p = &rt.ports[i];
        while !p.link().map(|l| l.up).unwrap_or(true) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        match p.link() {
            Ok(l) if l.up => log::info!("port {}: link up, {} Mbit/s", p.name(), l.speed_mbps),
            _ => log::warn!(
                "port {}: link still down after 10 s; sending anyway",
                p.name()
            ),
        }
    }
    let src_mac = g.src_mac.map_or(rt.macs[tx_idx], |m| m.0);
    let dst_mac = g.dst_mac.map_or([2, 0, 0, 0, 0, 2], |m| m.0);
    let plan = Plan::new(g, src_mac, dst_mac);
    if plan
        .sizes
        .first()
        .is_some_and(|&s| g.sizes.iter().any(|&x| x < s))
        || (g.imix && plan.min_frame > 64)
    {
        log::warn!(
            "frames smaller than {} B cannot hold the headers and the signature: raised to {} B",
            plan.min_frame,
            plan.min_frame
        );
    }
    log::info!("profile: {}", plan.profile);
    let env = Env {
        plan: Arc::new(plan),
        pool: rt.pool.clone(),
        tx_port: rt.ports[tx_idx].id().0,
        rx: rx_idx.map(|i| (rt.ports[i].id().0, rt.ports[i].rx_queues())),
        burst: usize::from(g.burst),
        drain: Duration::from_millis(u64::from(g.drain_ms)),
        core: cfg.dataplane.workers[0],
        hz: dpdk::tsc_hz(),
        live,
        stop: stop.clone(),
        gre_seq: std::sync::Mutex::new(vec![g.sequence_start; g.tunnels as usize]),
    };
    let target_pps = g.rate_pps.or(g
        .rate_gbps
        .map(|gb| gb * 1e9 / 8.0 / (env.plan.mean_frame + WIRE_OVERHEAD as f64)));
    let measured = env.rx.is_some();
    let mut report = GenReport {
        profile: env.plan.profile.clone(),
        tx_port: tx_name,
        rx_port: g.rx_port.clone(),
        target_pps,
        mean_frame_bytes: env.plan.mean_frame,
        result: result_of(&empty_outcome(), measured),
        rfc2544: None,
    };
    if a.rfc2544 {
        anyhow::ensure!(measured, "--rfc2544 needs a receive port (rx_port)");
        let r = &g.rfc2544;
        let max = r.max_pps.or(target_pps).unwrap_or(10e6);
        let mut search = rfc2544::Search::new(max);
        let mut trials = Vec::new();
        for i in 0..r.trials {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let rate = search.rate();
            let o = run_trial(
                &env,
                &Trial {
                    rate_pps: Some(rate),
                    duration: Some(Duration::from_secs_f64(r.trial_s)),
                    count: None,
                    run: (i + 1) as u8,
                },
            );
            let res = result_of(&o, true);
            // A trial counts only if the generator really offered the rate: otherwise the tester, not the
            // device, is the limit, and the search goes down.
            let offered = res.sent as f64 / r.trial_s;
            let generator_limited = offered < rate * 0.95;
            let passed = res.sent > 0 && res.loss_pct <= r.loss_tolerance_pct && !generator_limited;
            println!(
                "rfc2544 trial {}/{}: offered {:.3} Mpps, sent {} received {} lost {} ({:.4} %): {}",
                i + 1,
                r.trials,
                rate / 1e6,
                res.sent,
                res.received,
                res.lost,
                res.loss_pct,
                if passed {
                    "pass"
                } else if generator_limited {
                    "FAIL (generator could not offer the rate)"
                } else {
                    "FAIL"
                }
            );
            report.result = res.clone();
            trials.push(Rfc2544Trial {
                offered_pps: rate,
                passed,
                generator_limited,
                result: res,
            });
            if !search.record(passed) {
                break;
            }
        }
        let best = search.best();
        if let Some(b) = trials
            .iter()
            .filter(|t| t.passed)
            .max_by(|x, y| x.offered_pps.total_cmp(&y.offered_pps))
        {
            report.result = b.result.clone();
        }
        report.rfc2544 = Some(Rfc2544Report {
            throughput_pps: best,
            throughput_gbps_wire: best
                .map(|b| b * (env.plan.mean_frame + WIRE_OVERHEAD as f64) * 8.0 / 1e9),
            loss_tolerance_pct: r.loss_tolerance_pct,
            trials,
        });
    } else {
        let o = run_trial(
            &env,
            &Trial {
                rate_pps: target_pps,
                duration: g.duration_s.map(Duration::from_secs_f64),
                count: g.count,
                run: 0,
            },
        );
        report.result = result_of(&o, measured);
    }
    drop(env);
    drop(rt);
    app::remove_runtime_dir(cfg, &a.eal);
    Ok(report)
}
