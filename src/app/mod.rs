//! Wiring: EAL init from the config, mempool, ports, pinned worker threads, the control loop (stats merge, live
//! line, exit conditions), and an orderly shutdown with a final report.
//!
//! - [`wiring`]: EAL arguments, the EAL, mempool and ports ([`Runtime`]), the instance lock and runtime directory.
//! - [`workers`]: spawning the pinned workers with their channels, and joining them.
//! - [`control_loop`]: the control thread's loop ([`run`]), the published status and telemetry.
//! - [`changes`]: the gateway's control duties and runtime changes from `greway ctl`.
//! - [`reload`]: configuration reload (`greway ctl reload`, SIGHUP).
//! - [`report`]: the final report (`--stats-json`) and its human form.
mod changes;
mod control_loop;
mod reload;
mod report;
mod wiring;
mod workers;

pub use control_loop::{run, Board, ControlDuties};
pub use report::{print_summary, BenchReport, MempoolReport, PortReport, Report};
pub use wiring::{device_name, eal_args, is_pci_address, remove_runtime_dir, Runtime};

use crate::config::{Config, Mode, PortRole};
use crate::control::plane::ControlPlane;
use crate::datapath::gateway::{Gateway, Shared};
use crate::datapath::CrossConnect;
use crate::dpdk::{self, Mbuf};
use changes::GatewayControl;
use control_loop::NoControlPlane;
use crossbeam::queue::ArrayQueue;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Control -> worker ring of frames to send: (port index, frame).
pub type InjectRing = Arc<ArrayQueue<(usize, Mbuf)>>;

/// Options of `greway run` beyond the config file.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// End once no port has received a packet for this long (offline pcap processing).
    pub exit_idle: Option<Duration>,
    /// Write the final report here as JSON.
    pub stats_json: Option<PathBuf>,
    /// Extra EAL arguments appended to the config's.
    pub extra_eal_args: Vec<String>,
    /// Print the live line once a second (when stdout is a terminal).
    pub live: bool,
    /// Stop after this long regardless (tests, benchmarks).
    pub duration: Option<Duration>,
    /// Benchmarks: the workers' measurement window (rate, cycles/packet, latency) opens this long after they
    /// start, leaving EAL init, port start and cache warm-up out of it.
    pub warmup: Option<Duration>,
    /// Append one JSON line per second here: totals so far and the mempool's free mbufs (soak tests).
    pub live_json: Option<PathBuf>,
    /// The configuration file the gateway runs, read again by a reload.
    pub config_path: Option<PathBuf>,
    /// Set (by SIGHUP) to reload the configuration file; the control loop clears it and reloads.
    pub reload: Option<Arc<AtomicBool>>,
}

/// A run-time failure before or while starting (config errors are caught earlier).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Dpdk(#[from] dpdk::DpdkError),
    #[error("{0}")]
    Setup(String),
}

/// The role of each configured port, by index.
pub fn port_roles(cfg: &Config) -> Vec<PortRole> {
    cfg.ports.iter().map(|p| p.role()).collect()
}

/// Run with the processor the config asks for.
pub fn run_configured(
    cfg: &Config,
    rt: &Runtime,
    opts: &RunOptions,
    stop: Arc<AtomicBool>,
) -> Result<Report, AppError> {
    match cfg.dataplane.mode {
        Mode::Forward => run(cfg, rt, opts, stop, |_| CrossConnect, &mut NoControlPlane),
        Mode::Gateway => {
            let tsc_hz = dpdk::tsc_hz();
            let nworkers = cfg.dataplane.workers.len();
            let mut cp = ControlPlane::new(cfg, &rt.macs, Instant::now(), dpdk::rdtsc())
                .map_err(|e| AppError::Setup(e.to_string()))?;
            for (i, port) in rt.ports.iter().enumerate() {
                cp.set_rx_ipv4_cksum(i, port.rx_ipv4_cksum_offload());
            }
            let shared: Shared<Mbuf> = Shared::new(cp.tables(), nworkers);
            // Before any worker runs: a host interface that cannot be made fails the start (those made so far
            // are removed again).
            let host = match &cfg.host {
                Some(_) => Some(
                    crate::host::HostIfaces::create(cfg, cp.tunnel_ids())
                        .map_err(|e| AppError::Setup(e.to_string()))?,
                ),
                None => None,
            };
            // Routes from the kernel: the learner dumps the table and follows it from its own thread.
            let learner = match (&cfg.host, &host) {
                (Some(h), Some(ifaces)) if h.routes == crate::config::HostRoutes::Learn => Some(
                    crate::host::learn::Learner::spawn(ifaces.learn_spec(h.table))
                        .map_err(|e| AppError::Setup(format!("host route learning: {e}")))?,
                ),
                _ => None,
            };
            let mut ctl = GatewayControl {
                host,
                learner,
                learned: Default::default(),
                cp,
                shared: shared.clone(),
                pool: rt.pool.clone(),
                next_tick: Instant::now(),
                tsc_hz,
                nworkers,
                config_path: opts.config_path.clone(),
            };
            run(
                cfg,
                rt,
                opts,
                stop,
                |w| Gateway::new(w, nworkers, shared.clone(), tsc_hz),
                &mut ctl,
            )
        }
    }
}
