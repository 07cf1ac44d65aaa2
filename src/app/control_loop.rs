//! The control thread's loop: merges the workers' snapshots, publishes the status (Prometheus, telemetry, `ctl
//! stats`), runs the control duties, answers `greway ctl` and decides when the run ends.
use super::workers::{join_workers, spawn_workers};
use super::{AppError, InjectRing, MempoolReport, PortReport, Report, RunOptions, Runtime};
use crate::config::Config;
use crate::control::ctl::{CtlServer, Request, Response};
use crate::control::http::MetricsServer;
use crate::control::status::{MirrorStatus, Status, TunnelInfo};
use crate::control::{Aggregator, LiveLine};
use crate::datapath::Processor;
use crate::dpdk::{self, Mbuf};
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
/// The control thread's duties beyond stats: the gateway's control plane, or nothing (forward mode).
pub trait ControlDuties {
    /// Called every control loop iteration (10 ms).
    fn poll(&mut self, inject: &[InjectRing]);
    /// The current tunnels (name, run-unique id, state).
    fn tunnels(&self) -> Vec<TunnelInfo>;
    /// A `greway ctl` request other than `stats`.
    fn request(&mut self, req: Request) -> Response;
    /// Every worker has stopped: free what is still in flight between them (a worker that stopped first can
    /// still have been handed packets by another) and count it in `total`.
    fn after_stop(&mut self, _total: &mut crate::stats::Counters) {}
    /// How long one control loop round lasts (what [`ControlDuties::poll`] waits at most).
    fn round(&self) -> Duration {
        Duration::from_millis(10)
    }
    /// The bridges and their MAC tables' fill (the counters are the workers', filled in by the loop).
    fn bridges(&self) -> Vec<crate::control::bridges::BridgeInfo> {
        Vec::new()
    }
    /// The running configuration's `[[mirror]]` entries with their counters in `total` (none in forward mode,
    /// which does not mirror).
    fn mirrors(&self, _total: &crate::stats::Counters) -> Vec<MirrorStatus> {
        Vec::new()
    }
    /// The host interfaces and their counters, with `[host]` (the worker-side totals are filled in by the loop).
    fn host_status(&self) -> Option<crate::host::HostStatus> {
        None
    }
}

/// The host status with the workers' totals.
fn host_status(
    duties: &dyn ControlDuties,
    total: &crate::stats::Counters,
) -> Option<crate::host::HostStatus> {
    duties.host_status().map(|mut h| {
        h.punted = total.punted;
        h.punted_bytes = total.punted_bytes;
        h.from_host = total.from_host;
        h
    })
}

/// Forward mode: no control plane.
pub(super) struct NoControlPlane;

impl ControlDuties for NoControlPlane {
    fn poll(&mut self, _inject: &[InjectRing]) {}
    fn tunnels(&self) -> Vec<TunnelInfo> {
        Vec::new()
    }
    fn request(&mut self, req: Request) -> Response {
        let msg = "dataplane.mode is \"forward\": no tunnels or routes to change";
        if req == Request::Reload {
            let e = format!("reload refused: {msg}");
            log::error!("{e}");
            return Response::err(e);
        }
        Response::err(msg)
    }
}

/// How often the published status (Prometheus, telemetry, `ctl stats`) is rebuilt.
const STATUS_EVERY: Duration = Duration::from_millis(250);

/// The shared, published view of the gateway, swapped by the control loop and read by the exporters.
#[derive(Clone)]
pub struct Board {
    pub status: Arc<ArcSwap<Status>>,
    pub prometheus: Arc<ArcSwap<String>>,
}

impl Board {
    fn new() -> Self {
        Board {
            status: Arc::new(ArcSwap::from_pointee(Status::default())),
            prometheus: Arc::new(ArcSwap::from_pointee(String::new())),
        }
    }

    fn publish(&self, st: Status) {
        self.prometheus.store(Arc::new(st.prometheus()));
        self.status.store(Arc::new(st));
    }
}

/// A telemetry command: name, help, and its answer from the status.
type TelCommand = (
    &'static str,
    &'static str,
    fn(&Status) -> Vec<(String, dpdk::telemetry::TelValue)>,
);

/// Register the `/greway/*` telemetry commands, answered from the board (on DPDK's telemetry thread).
fn register_telemetry(board: &Board) {
    let cmds: [TelCommand; 3] = [
        (
            "/greway/stats",
            "greway counters: ports, drops by reason, latency. Takes no parameters.",
            Status::telemetry_stats,
        ),
        (
            "/greway/tunnels",
            "greway tunnels: state (up 1/0) and counters per tunnel. Takes no parameters.",
            Status::telemetry_tunnels,
        ),
        (
            "/greway/latency",
            "greway rx-to-tx latency percentiles (ns). Takes no parameters.",
            Status::telemetry_latency,
        ),
    ];
    for (cmd, help, f) in cmds {
        let st = board.status.clone();
        if let Err(e) = dpdk::telemetry::register(cmd, help, Box::new(move || f(&st.load()))) {
            log::warn!("telemetry: {e}");
        }
    }
}

/// Run the gateway with processors made by `make_proc` (one per worker) until a signal, `--exit-idle-ms` or
/// `duration`; returns the final report. The calling thread becomes the control thread: it merges the workers'
/// snapshots, publishes the status (Prometheus, telemetry, `ctl stats`), runs `duties` and answers `greway
/// ctl`.
pub fn run<P, F>(
    cfg: &Config,
    rt: &Runtime,
    opts: &RunOptions,
    stop: Arc<AtomicBool>,
    mut make_proc: F,
    duties: &mut dyn ControlDuties,
) -> Result<Report, AppError>
where
    P: Processor<Mbuf> + 'static,
    F: FnMut(usize) -> P,
{
    let nworkers = cfg.dataplane.workers.len();
    let tsc_hz = dpdk::tsc_hz();
    let last_rx = Arc::new(AtomicU64::new(dpdk::rdtsc()));
    let n_tunnels = cfg.tunnels.len();
    let port_names: Vec<String> = rt.ports.iter().map(|p| p.name().to_string()).collect();

    // Control-side services first: a bad listen address fails the start, before any worker runs.
    let board = Board::new();
    let metrics = match &cfg.metrics {
        Some(m) => {
            let srv =
                MetricsServer::start(m.prometheus, board.prometheus.clone()).map_err(|e| {
                    AppError::Setup(format!("metrics.prometheus {}: {e}", m.prometheus))
                })?;
            log::info!("Prometheus metrics on http://{}/metrics", srv.addr());
            Some(srv)
        }
        None => None,
    };
    let (ctl, ctl_rx) = match &cfg.control {
        Some(c) => {
            let (srv, rx) = CtlServer::start(&c.socket, board.status.clone()).map_err(|e| {
                AppError::Setup(format!("control.socket {}: {e}", c.socket.display()))
            })?;
            log::info!("control socket {}", c.socket.display());
            (Some(srv), Some(rx))
        }
        None => (None, None),
    };
    register_telemetry(&board);

    let started = Instant::now();
    let (handles, chans) = spawn_workers(cfg, rt, opts, &stop, &last_rx, tsc_hz, &mut make_proc)?;

    // The control loop on the main thread.
    let mut agg = Aggregator::new(nworkers, rt.ports.len(), n_tunnels);
    let mut live = LiveLine::new(cfg);
    let exit_idle_ticks = opts
        .exit_idle
        .map(|d| (d.as_secs_f64() * tsc_hz as f64) as u64);
    let mut next_live = Instant::now() + Duration::from_secs(1);
    let mut next_status = Instant::now();
    let mut live_json = opts.live_json.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| log::warn!("--live-json {}: {e}", p.display()))
            .ok()
    });
    let mut next_live_json = Instant::now() + Duration::from_secs(1);
    let injects: Vec<InjectRing> = chans.iter().map(|c| c.2.clone()).collect();
    while !stop.load(Ordering::Relaxed) {
        // A 10 ms round, during which `greway ctl` requests are answered as they arrive (a client that waits for
        // each answer is not held to one change per round).
        let round_end = Instant::now() + duties.round();
        loop {
            let left = round_end.saturating_duration_since(Instant::now());
            let Some(rx) = &ctl_rx else {
                std::thread::sleep(left);
                break;
            };
            match rx.recv_timeout(left) {
                Ok((req, back)) => {
                    let _ = back.send(duties.request(req));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(left);
                    break;
                }
            }
        }
        // SIGHUP: the same reload as `greway ctl reload` (it logs what it did).
        if let Some(flag) = &opts.reload {
            // Relaxed: the flag carries no data; a signal during the reload sets it again for the next round.
            if flag.swap(false, Ordering::Relaxed) {
                log::info!("SIGHUP: reloading the configuration");
                let _ = duties.request(Request::Reload);
            }
        }
        duties.poll(&injects);
        for (snapshots, recycled, _) in &chans {
            while let Some(s) = snapshots.pop() {
                agg.absorb(&s);
                let _ = recycled.push(s);
            }
        }
        if let Some(t) = exit_idle_ticks {
            // Relaxed: a monotone clock value; staleness only delays the exit.
            if dpdk::rdtsc().saturating_sub(last_rx.load(Ordering::Relaxed)) > t {
                log::info!(
                    "no packet for {:?}: stopping",
                    opts.exit_idle.unwrap_or_default()
                );
                break;
            }
        }
        if opts.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if let Some(f) = live_json
            .as_mut()
            .filter(|_| Instant::now() >= next_live_json)
        {
            next_live_json += Duration::from_secs(1);
            let t = agg.total();
            let line = serde_json::json!({
                "t_s": started.elapsed().as_secs_f64(),
                "rx": t.ports.iter().map(|p| p.rx).sum::<u64>(),
                "tx": t.ports.iter().map(|p| p.tx).sum::<u64>(),
                "drops": t.total_drops(),
                "mempool_size": rt.pool.size(),
                "mempool_free_at_start": rt.free_at_start,
                "mempool_free": rt.pool.available(),
            });
            use std::io::Write;
            let _ = writeln!(f, "{line}");
        }
        let now = Instant::now();
        let want_live = opts.live && now >= next_live;
        if now >= next_status || want_live {
            next_status = now + STATUS_EVERY;
            let total = agg.total();
            let hist = agg.latency();
            let mut st = Status::build(
                &port_names,
                &total,
                &hist,
                &duties.tunnels(),
                nworkers,
                started.elapsed().as_secs_f64(),
                rt.pool.available(),
            );
            st.host = host_status(duties, &total);
            st.mirrors = duties.mirrors(&total);
            st.set_bridges(&duties.bridges(), &total);
            st.mempool_size = rt.pool.size();
            if want_live {
                next_live += Duration::from_secs(1);
                println!(
                    "{}",
                    live.full(&total, &hist, st.tunnels_up, st.tunnels_down)
                );
            }
            board.publish(st);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (mut total, hist, bench) = join_workers(handles, rt.ports.len(), tsc_hz, opts.warmup);
    duties.after_stop(&mut total);
    for (_, _, inject) in &chans {
        while let Some((_, m)) = inject.pop() {
            drop(m);
        }
    }
    let duration_s = started.elapsed().as_secs_f64();
    let free_at_end = rt.pool.available();
    let mut fin = Status::build(
        &port_names,
        &total,
        &hist,
        &duties.tunnels(),
        nworkers,
        duration_s,
        free_at_end,
    );
    fin.host = host_status(duties, &total);
    fin.mirrors = duties.mirrors(&total);
    fin.set_bridges(&duties.bridges(), &total);
    fin.mempool_size = rt.pool.size();
    board.publish(fin.clone());
    drop(ctl);
    drop(metrics);
    let mut ports = BTreeMap::new();
    for (i, p) in rt.ports.iter().enumerate() {
        let c = total.ports[i];
        ports.insert(
            p.name().to_string(),
            PortReport {
                rx: c.rx,
                tx: c.tx,
                rx_bytes: c.rx_bytes,
                tx_bytes: c.tx_bytes,
                hw: p.stats().unwrap_or_default(),
            },
        );
    }
    Ok(Report {
        ports,
        drops: fin.drops,
        tunnels: fin.tunnels,
        bridges: fin.bridges.clone(),
        mempool: MempoolReport {
            size: rt.pool.size(),
            free_at_start: rt.free_at_start,
            free_at_end,
        },
        latency: fin.latency,
        workers: nworkers,
        general_path_packets: fin.general_path_packets,
        host: fin.host.clone(),
        mirrors: fin.mirrors.clone(),
        duration_s,
        bench,
    })
}
