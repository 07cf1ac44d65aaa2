//! Wiring: EAL init from the config, mempool, ports, pinned worker threads, the control loop (stats merge, live
//! line, exit conditions), and an orderly shutdown with a final report.
use crate::buf::PacketBuf;
use crate::config::TunnelCfg;
use crate::config::{Config, Mode, PortRole};
use crate::control::ctl::{CtlServer, Request, Response, TunnelSpec};
use crate::control::http::MetricsServer;
use crate::control::plane::{ControlPlane, Notice, Outgoing, RouteTarget};
use crate::control::status::{Status, TunnelInfo, TunnelStatus};
use crate::control::{Aggregator, LiveLine};
use crate::datapath::gateway::{Gateway, Shared, KEEPALIVE_HANDOFF};
use crate::datapath::worker::{self, WorkerChannels, WorkerSetup};
use crate::datapath::CrossConnect;
use crate::datapath::Processor;
use crate::dpdk::{self, Eal, Mbuf, Mempool, Port, PortConfig, PortId};
use crate::dpdk::{WorkerPort, WorkerQueues};
use crate::stats::{new_latency_histogram, Counters, LatencySummary, Snapshot};
use arc_swap::ArcSwap;
use crossbeam::queue::ArrayQueue;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
}

/// A run-time failure before or while starting (config errors are caught earlier).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Dpdk(#[from] dpdk::DpdkError),
    #[error("{0}")]
    Setup(String),
}

/// The final report (`--stats-json`).
#[derive(Debug, Serialize)]
pub struct Report {
    pub ports: BTreeMap<String, PortReport>,
    pub drops: BTreeMap<&'static str, u64>,
    /// Tunnels at the end of the run (runtime additions included, removals excluded): state and counters.
    pub tunnels: BTreeMap<String, TunnelStatus>,
    pub mempool: MempoolReport,
    pub latency: LatencySummary,
    pub workers: usize,
    /// Packets the general rules handled because no fast path took them (see README).
    pub general_path_packets: u64,
    pub duration_s: f64,
    /// Steady-state throughput measured by the workers themselves over their TSC-timed window.
    pub bench: BenchReport,
}

/// The workers' measurement window (see `--warmup-s`). The latency summary covers the same window.
#[derive(Debug, Default, Serialize)]
pub struct BenchReport {
    pub tsc_hz: u64,
    pub warmup_s: f64,
    /// The longest worker window, in seconds.
    pub window_s: f64,
    /// Packets sent / received by all workers in their windows.
    pub tx_pkts: u64,
    pub rx_pkts: u64,
    /// tx_pkts / window_s, in millions of packets per second (wall clock).
    pub mpps: f64,
    /// Wall-clock worker core cycles per forwarded packet: the TSC ticks of all workers' windows / tx_pkts
    /// (valid when each worker has its core to itself).
    pub wall_cycles_per_pkt: f64,
    /// CPU time the worker threads actually got in their windows (summed), in seconds.
    pub cpu_s: f64,
    /// tx_pkts / the longest worker CPU time: the rate with each worker on a core of its own. On a shared
    /// machine this is the comparable number (the wall-clock rate depends on what else runs).
    pub cpu_mpps: f64,
    /// Worker core cycles per forwarded packet from CPU time: cpu_s * tsc_hz / tx_pkts.
    pub cycles_per_pkt: f64,
}

#[derive(Debug, Serialize)]
pub struct PortReport {
    pub rx: u64,
    pub tx: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// The device's own counters (rte_eth_stats).
    pub hw: dpdk::PortStats,
}

#[derive(Debug, Serialize)]
pub struct MempoolReport {
    pub size: u32,
    pub free_at_start: u32,
    pub free_at_end: u32,
}

/// EAL arguments for the config: the `[eal] args`, one `--vdev` or `-a` per port, then the extra ones.
pub fn eal_args(cfg: &Config, extra: &[String]) -> Vec<String> {
    let mut a = cfg.eal.args.clone();
    for p in &cfg.ports {
        if is_pci_address(&p.device) {
            a.push("-a".into());
        } else {
            a.push("--vdev".into());
        }
        a.push(p.device.clone());
    }
    a.extend(extra.iter().cloned());
    a
}

/// True for `0000:03:00.0` or `03:00.0` (optionally followed by `,devargs`).
pub fn is_pci_address(device: &str) -> bool {
    let id = device.split(',').next().unwrap_or("");
    let parts: Vec<&str> = id.split(':').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
    let devfn = |s: &str| {
        s.split_once('.').is_some_and(|(d, f)| {
            hex(d, 2) && f.len() == 1 && f.chars().all(|c| ('0'..='7').contains(&c))
        })
    };
    match parts.as_slice() {
        [dom, bus, df] => hex(dom, 4) && hex(bus, 2) && devfn(df),
        [bus, df] => hex(bus, 2) && devfn(df),
        _ => false,
    }
}

/// The ethdev name EAL gives the device.
pub fn device_name(device: &str) -> String {
    let id = device.split(',').next().unwrap_or(device);
    if is_pci_address(id) && id.len() == 7 {
        format!("0000:{id}")
    } else {
        id.to_string()
    }
}

/// Create the directories of any `tx_pcap=` output paths so the pcap PMD can open them.
fn prepare_pcap_outputs(cfg: &Config) {
    for p in &cfg.ports {
        for kv in p.device.split(',').skip(1) {
            if let Some(path) = kv.strip_prefix("tx_pcap=") {
                if let Some(dir) = std::path::Path::new(path).parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
            }
        }
    }
}

/// Everything that lives while the gateway runs. Field order is drop order: ports and pool before EAL.
pub struct Runtime {
    pub ports: Vec<Port>,
    pub macs: Vec<[u8; 6]>,
    pub pool: Arc<Mempool>,
    pub free_at_start: u32,
    pub eal: Eal,
    /// Held for the whole run: a second greway with the same `--file-prefix` fails before touching EAL.
    _instance_lock: Option<std::fs::File>,
}

impl Runtime {
    /// Initialise EAL, create the pool and start every port with one rx queue per worker (as the device allows)
    /// and one tx queue per worker.
    pub fn start(cfg: &Config, extra_eal: &[String]) -> Result<Runtime, AppError> {
        let args = eal_args(cfg, extra_eal);
        // Before EAL and before the pcap outputs: a second instance must not truncate the first one's files,
        // take over its telemetry socket, or remove its runtime directory.
        let instance_lock = lock_instance(&file_prefix(&args))?;
        prepare_pcap_outputs(cfg);
        log::info!("EAL args: {}", args.join(" "));
        let eal = Eal::init(&args)?;
        // Packet capture for dpdk-dumpcap: needs a primary with hugepages and shared config.
        match dpdk::telemetry::pdump_init() {
            Ok(()) => log::info!("pdump server ready (dpdk-dumpcap can attach)"),
            Err(e) => log::info!("pdump not available ({e}): dpdk-dumpcap needs hugepages"),
        }
        let nworkers = cfg.dataplane.workers.len() as u16;
        // Per-lcore cache: DPDK's rule of thumb, capped so small pools still work.
        let cache = (cfg.dataplane.mbufs / 16).clamp(0, 256);
        let pool = Arc::new(Mempool::new(
            "greway_pkts",
            cfg.dataplane.mbufs,
            cache,
            dpdk::sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
            eal.socket_id().max(0),
        )?);
        let mut ports = Vec::new();
        let mut macs = Vec::new();
        for p in &cfg.ports {
            let id: PortId = Port::lookup(&device_name(&p.device))?;
            let pc = PortConfig {
                rx_queues: nworkers,
                tx_queues: nworkers,
                mtu: Some(p.mtu),
                ..PortConfig::default()
            };
            let port = match Port::start(id, &p.name, &pc, &pool) {
                Ok(port) => port,
                Err(e) if nworkers > 1 => {
                    // Devices with a single rx queue (pcap) are polled by worker 0 only; tx still needs one
                    // queue per worker.
                    log::warn!("{}: {e}; trying 1 rx queue", p.name);
                    let pc1 = PortConfig { rx_queues: 1, ..pc };
                    Port::start(id, &p.name, &pc1, &pool).map_err(|e2| {
                        AppError::Setup(format!(
                            "port {}: needs {nworkers} tx queues (one per worker): {e2}",
                            p.name
                        ))
                    })?
                }
                Err(e) => return Err(e.into()),
            };
            let mac = match p.mac {
                Some(m) => m.0,
                None => port.mac()?,
            };
            log::info!(
                "port {} ({}) up: {} rx / {} tx queues, mac {}, rx IPv4 checksum offload {}",
                p.name,
                id,
                port.rx_queues(),
                port.tx_queues(),
                crate::config::MacAddr(mac),
                if port.rx_ipv4_cksum_offload() {
                    "on"
                } else {
                    "off (checked in software)"
                }
            );
            ports.push(port);
            macs.push(mac);
        }
        let free_at_start = pool.available();
        Ok(Runtime {
            ports,
            macs,
            pool,
            free_at_start,
            eal,
            _instance_lock: instance_lock,
        })
    }
}

/// The control thread's duties beyond stats: the gateway's control plane, or nothing (forward mode).
pub trait ControlDuties {
    /// Called every control loop iteration (10 ms).
    fn poll(&mut self, inject: &[InjectRing]);
    /// The current tunnels (name, run-unique id, state).
    fn tunnels(&self) -> Vec<TunnelInfo>;
    /// A `greway ctl` request other than `stats`.
    fn request(&mut self, req: Request) -> Response;
}

/// Forward mode: no control plane.
struct NoControlPlane;

impl ControlDuties for NoControlPlane {
    fn poll(&mut self, _inject: &[InjectRing]) {}
    fn tunnels(&self) -> Vec<TunnelInfo> {
        Vec::new()
    }
    fn request(&mut self, _req: Request) -> Response {
        Response::err("dataplane.mode is \"forward\": no tunnels or routes to change")
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

    let mut handles: Vec<dpdk::PinnedTask<_>> = Vec::new();
    let mut chans = Vec::new();
    let started = Instant::now();
    let window_start_tsc = opts.warmup.map_or(0, |d| {
        dpdk::rdtsc() + (d.as_secs_f64() * tsc_hz as f64) as u64
    });
    for (w, &core) in cfg.dataplane.workers.iter().enumerate() {
        let snapshots = Arc::new(ArrayQueue::new(4));
        let recycled = Arc::new(ArrayQueue::new(4));
        for _ in 0..3 {
            let _ = recycled.push(Box::new(Snapshot {
                worker: w,
                counters: Counters::new(rt.ports.len(), n_tunnels),
                latency_ns: new_latency_histogram(),
            }));
        }
        let inject = Arc::new(ArrayQueue::new(1024));
        chans.push((snapshots.clone(), recycled.clone(), inject.clone()));
        let ports: Vec<WorkerPort> = rt
            .ports
            .iter()
            .map(|p| WorkerPort {
                port_id: p.id().0,
                rx_queue: if (w as u16) < p.rx_queues() {
                    Some(w as u16)
                } else {
                    None
                },
                tx_queue: w as u16,
            })
            .collect();
        let queues = WorkerQueues::new(ports);
        let setup = WorkerSetup {
            index: w,
            burst: usize::from(cfg.dataplane.burst),
            idle_sleep_us: cfg.dataplane.idle_sleep_us,
            tsc_hz,
            stop: stop.clone(),
            last_rx_tsc: last_rx.clone(),
            channels: WorkerChannels {
                snapshots,
                recycled,
                inject,
            },
            n_tunnels,
            window_start_tsc,
        };
        let proc = make_proc(w);
        // On the EAL worker lcore of its core when there is one (the usual case: `-l` lists the worker cores),
        // so DPDK multi-process stays enabled for dpdk-dumpcap; otherwise a pinned thread registered with EAL.
        let h = match dpdk::spawn_pinned(&format!("worker {w}"), core, move || {
            worker::run(setup, queues, proc)
        }) {
            Ok(h) => h,
            Err(e) => {
                // Stop and join the workers already running before EAL is torn down.
                stop.store(true, Ordering::Relaxed);
                for h in handles {
                    let _ = h.join();
                }
                return Err(e.into());
            }
        };
        handles.push(h);
    }

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
        let round_end = Instant::now() + Duration::from_millis(10);
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
            let st = Status::build(
                &port_names,
                &total,
                &hist,
                &duties.tunnels(),
                nworkers,
                started.elapsed().as_secs_f64(),
                rt.pool.available(),
            );
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
    let mut total = Counters::new(rt.ports.len(), 0);
    let mut hist = new_latency_histogram();
    let mut bench = BenchReport {
        tsc_hz,
        warmup_s: opts.warmup.map_or(0.0, |d| d.as_secs_f64()),
        ..BenchReport::default()
    };
    let mut window_ticks = 0u64;
    let mut max_ticks = 0u64;
    let mut cpu_ns = 0u64;
    let mut max_cpu_ns = 0u64;
    for h in handles {
        let (c, hw, win) = h.join().expect("worker panicked");
        total.merge(&c);
        let _ = hist.add(&hw);
        bench.tx_pkts += win.tx_pkts;
        bench.rx_pkts += win.rx_pkts;
        window_ticks += win.ticks;
        max_ticks = max_ticks.max(win.ticks);
        cpu_ns += win.cpu_ns;
        max_cpu_ns = max_cpu_ns.max(win.cpu_ns);
    }
    bench.cpu_s = cpu_ns as f64 / 1e9;
    if max_cpu_ns > 0 {
        bench.cpu_mpps = bench.tx_pkts as f64 / (max_cpu_ns as f64 / 1e9) / 1e6;
    }
    bench.window_s = max_ticks as f64 / tsc_hz.max(1) as f64;
    if bench.window_s > 0.0 {
        bench.mpps = bench.tx_pkts as f64 / bench.window_s / 1e6;
    }
    if bench.tx_pkts > 0 {
        bench.wall_cycles_per_pkt = window_ticks as f64 / bench.tx_pkts as f64;
        bench.cycles_per_pkt = bench.cpu_s * tsc_hz as f64 / bench.tx_pkts as f64;
    }
    for (_, _, inject) in &chans {
        while let Some((_, m)) = inject.pop() {
            drop(m);
        }
    }
    let duration_s = started.elapsed().as_secs_f64();
    let free_at_end = rt.pool.available();
    let fin = Status::build(
        &port_names,
        &total,
        &hist,
        &duties.tunnels(),
        nworkers,
        duration_s,
        free_at_end,
    );
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
        mempool: MempoolReport {
            size: rt.pool.size(),
            free_at_start: rt.free_at_start,
            free_at_end,
        },
        latency: fin.latency,
        workers: nworkers,
        general_path_packets: fin.general_path_packets,
        duration_s,
        bench,
    })
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
            let shared: Shared<Mbuf> = Shared::new(cp.tables(), nworkers);
            let mut ctl = GatewayControl {
                cp,
                shared: shared.clone(),
                pool: rt.pool.clone(),
                next_tick: Instant::now(),
                tsc_hz,
                nworkers,
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

/// Print the final counters (the human form of `--stats-json`).
pub fn print_summary(r: &Report) {
    println!(
        "greway: ran {:.2} s with {} worker(s)",
        r.duration_s, r.workers
    );
    for (name, p) in &r.ports {
        println!(
            "  port {name:<10} rx {:>12} pkts {:>14} bytes | tx {:>12} pkts {:>14} bytes",
            p.rx, p.rx_bytes, p.tx, p.tx_bytes
        );
    }
    let drops: Vec<String> = r
        .drops
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    println!(
        "  drops: {}",
        if drops.is_empty() {
            "none".to_string()
        } else {
            drops.join(" ")
        }
    );
    for (name, t) in &r.tunnels {
        let c = &t.counters;
        println!(
            "  tunnel {name:<10} {} encap {} decap {} drops {} keepalives rx {} reflected {}",
            if t.up { "up" } else { "down" },
            c.encap,
            c.decap,
            c.drops,
            c.keepalives_rx,
            c.keepalives_reflected
        );
    }
    println!(
        "  mempool: {} mbufs, free at start {}, free at end {}",
        r.mempool.size, r.mempool.free_at_start, r.mempool.free_at_end
    );
    if r.bench.warmup_s > 0.0 {
        println!(
            "  bench: {:.3} Mpps wall, {:.3} Mpps per worker CPU time, {:.1} cycles/packet over {:.2} s \
             ({:.2} s worker CPU) after {:.2} s warm-up",
            r.bench.mpps,
            r.bench.cpu_mpps,
            r.bench.cycles_per_pkt,
            r.bench.window_s,
            r.bench.cpu_s,
            r.bench.warmup_s
        );
    }
    if r.latency.count > 0 {
        println!(
            "  latency: p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us, max {:.2} us ({} samples)",
            r.latency.p50_us,
            r.latency.p99_us,
            r.latency.p999_us,
            r.latency.max_us,
            r.latency.count
        );
    }
}

/// The EAL `--file-prefix` in `args` (EAL's default is "rte").
fn file_prefix(args: &[String]) -> String {
    args.iter()
        .position(|a| a == "--file-prefix")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--file-prefix=").map(str::to_string))
        })
        .unwrap_or_else(|| "rte".to_string())
}

/// EAL's runtime directory for a prefix: /var/run/dpdk/PREFIX for root, else under $XDG_RUNTIME_DIR or /tmp.
fn runtime_dir(prefix: &str) -> std::path::PathBuf {
    // The owner of /proc/self is our effective uid (no FFI outside dpdk/).
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let base = if root {
        std::path::PathBuf::from("/var/run")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from("/tmp"))
    };
    base.join("dpdk").join(prefix)
}

/// Take an exclusive lock on `greway.lock` in the prefix's runtime directory. With `--no-shconf` EAL itself
/// does not notice a second primary process with the same prefix, so greway does. A directory that cannot be
/// created (read-only system) only warns; a lock held by another process is an error.
fn lock_instance(prefix: &str) -> Result<Option<std::fs::File>, AppError> {
    let dir = runtime_dir(prefix);
    let path = dir.join("greway.lock");
    let file = match std::fs::create_dir_all(&dir).and_then(|_| {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
    }) {
        Ok(f) => f,
        Err(e) => {
            log::warn!("{}: {e}; no single-instance check", path.display());
            return Ok(None);
        }
    };
    match file.try_lock() {
        Ok(()) => {
            use std::io::Write;
            let _ = file.set_len(0);
            let _ = writeln!(&file, "{}", std::process::id());
            Ok(Some(file))
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let owner = std::fs::read_to_string(&path).unwrap_or_default();
            Err(AppError::Setup(format!(
                "another greway (pid {}) is running with --file-prefix {prefix} (lock {}): give each \
                 instance its own file prefix",
                owner.trim(),
                path.display()
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => {
            log::warn!("{}: {e}; no single-instance check", path.display());
            Ok(None)
        }
    }
}

/// EAL leaves /var/run/dpdk/PREFIX behind even with --no-shconf: remove it after a clean exit.
pub fn remove_runtime_dir(cfg: &Config, extra: &[String]) {
    let args = eal_args(cfg, extra);
    let _ = std::fs::remove_dir_all(runtime_dir(&file_prefix(&args)));
}

/// The control thread's gateway duties: worker events, keepalives and neighbours every loop iteration (10 ms),
/// and runtime changes from `greway ctl`, validated like the file and published as a new table.
struct GatewayControl {
    cp: ControlPlane,
    shared: Shared<Mbuf>,
    pool: Arc<Mempool>,
    next_tick: Instant,
    tsc_hz: u64,
    nworkers: usize,
}

impl ControlDuties for GatewayControl {
    fn poll(&mut self, inject: &[InjectRing]) {
        let cp = &mut self.cp;
        let now = Instant::now();
        let mut out = Vec::new();
        while let Some(e) = self.shared.events.pop() {
            if let Some(o) = cp.on_event(e, now) {
                out.push(o);
            }
        }
        if now >= self.next_tick {
            self.next_tick = now + Duration::from_millis(100);
            let (frames, notices) = cp.tick(now, dpdk::rdtsc(), self.tsc_hz);
            out.extend(frames);
            for n in notices {
                match n {
                    Notice::TunnelUp(t) => log::info!("tunnel {t} is up"),
                    Notice::TunnelDown(t) => log::warn!("tunnel {t} is down (keepalives missed)"),
                }
            }
        }
        if cp.take_dirty() {
            self.shared.tables.store(Arc::new(cp.tables()));
        }
        for o in out {
            let (bytes, dest) = match o {
                Outgoing::Frame { port, bytes } => (bytes, Ok(port)),
                Outgoing::Encap { tunnel, bytes } => (bytes, Err(tunnel)),
            };
            let Some(mut m) = self.pool.alloc() else {
                log::warn!("control: mempool empty, frame not sent");
                continue;
            };
            match m.append(bytes.len()) {
                Some(buf) => buf.copy_from_slice(&bytes),
                None => continue,
            }
            // A full ring drops the frame (freed here); the next tick sends another.
            match dest {
                Ok(port) => {
                    let _ = inject[0].push((port, m));
                }
                Err(tunnel) => {
                    let owner = tunnel as usize % self.nworkers;
                    let _ = self.shared.handoff[owner].push((tunnel | KEEPALIVE_HANDOFF, m));
                }
            }
        }
    }

    fn tunnels(&self) -> Vec<TunnelInfo> {
        tunnel_infos(&self.cp)
    }

    fn request(&mut self, req: Request) -> Response {
        let cfg = self.cp.config();
        let changed = match req {
            Request::Stats => return Response::err("stats is answered by the socket thread"),
            Request::TunnelShow => return Response::ok(Some(tunnels_json(&self.cp))),
            Request::RouteShow => return Response::ok(Some(routes_json(cfg))),
            Request::TunnelAdd { tunnel } => add_tunnel(cfg, &tunnel),
            Request::TunnelDel { name } => {
                let mut c = cfg.clone();
                let before = c.tunnels.len();
                c.tunnels.retain(|t| t.name != name);
                if c.tunnels.len() == before {
                    Err(format!("no tunnel named {name:?}"))
                } else {
                    Ok(c)
                }
            }
            Request::RouteAdd { .. } | Request::RouteDel { .. } => {
                return self.route_change(req);
            }
        };
        let new = match changed.and_then(|c| {
            crate::config::validate_runtime(&c)
                .map(|()| c)
                .map_err(|e| e.to_string())
        }) {
            Ok(c) => c,
            Err(e) => return Response::err(e),
        };
        if let Err(e) = self.cp.reconfigure(new, Instant::now(), dpdk::rdtsc()) {
            return Response::err(e.to_string());
        }
        // Workers pick the new table up between bursts; tunnels that kept their name keep their state and
        // counters (run-unique ids).
        self.cp.take_dirty();
        self.shared.tables.store(Arc::new(self.cp.tables()));
        log::info!(
            "runtime change applied: {} tunnel(s), {} route(s)",
            self.cp.config().tunnels.len(),
            self.cp.config().routes.len()
        );
        Response::ok(Some(tunnels_json(&self.cp)))
    }
}

impl GatewayControl {
    /// A route added or removed in place (no table rebuilt) and published at once: workers use it from
    /// their next poll round. `quiet` requests are answered without the tunnel list.
    fn route_change(&mut self, req: Request) -> Response {
        let (result, quiet) = match req {
            Request::RouteAdd {
                prefix,
                tunnel,
                port,
                via,
                quiet,
            } => (route_add(&mut self.cp, &prefix, tunnel, port, via), quiet),
            Request::RouteDel { prefix, quiet } => (
                parse("prefix", &prefix).and_then(|p| self.cp.del_route(p)),
                quiet,
            ),
            _ => unreachable!("route requests only"),
        };
        if let Err(e) = result {
            return Response::err(e);
        }
        self.cp.take_dirty();
        self.shared.tables.store(Arc::new(self.cp.tables()));
        log::debug!("route change applied");
        Response::ok((!quiet).then(|| tunnels_json(&self.cp)))
    }
}

fn route_add(
    cp: &mut ControlPlane,
    prefix: &str,
    tunnel: Option<String>,
    port: Option<String>,
    via: Option<String>,
) -> Result<(), String> {
    let p: ipnet::IpNet = parse("prefix", prefix)?;
    let target = match (tunnel, port) {
        (Some(t), None) => RouteTarget::Tunnel(t),
        (None, Some(port)) => RouteTarget::Port {
            port,
            via: via.map(|v| parse("via", &v)).transpose()?,
        },
        _ => return Err("give either --tunnel NAME or --port NAME [--via IP]".into()),
    };
    cp.add_route(p, target)
}

/// Name, id and state of the control plane's tunnels. A tunnel without keepalives is always up.
fn tunnel_infos(cp: &ControlPlane) -> Vec<TunnelInfo> {
    cp.config()
        .tunnels
        .iter()
        .zip(cp.tunnel_ids().iter())
        .zip(cp.tunnel_states())
        .map(|((t, id), st)| TunnelInfo {
            name: t.name.clone(),
            id: *id,
            up: t.keepalive.is_none() || st.up.load(Ordering::Relaxed),
        })
        .collect()
}

fn tunnels_json(cp: &ControlPlane) -> serde_json::Value {
    let infos = tunnel_infos(cp);
    let list: Vec<serde_json::Value> = cp
        .config()
        .tunnels
        .iter()
        .zip(infos)
        .map(|(t, i)| {
            serde_json::json!({
                "name": t.name,
                "local": t.local.to_string(),
                "remote": t.remote.to_string(),
                "ikey": t.ikey.or(t.key),
                "okey": t.out_key(),
                "checksum": t.checksum,
                "sequence": t.sequence,
                "keepalive": t.keepalive.is_some(),
                "routes": t.routes.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                "up": i.up,
            })
        })
        .collect();
    serde_json::json!({ "tunnels": list })
}

fn routes_json(cfg: &Config) -> serde_json::Value {
    let tunnel_routes: Vec<serde_json::Value> = cfg
        .tunnels
        .iter()
        .flat_map(|t| {
            t.routes
                .iter()
                .map(move |r| serde_json::json!({"prefix": r.to_string(), "tunnel": t.name}))
        })
        .collect();
    let routes: Vec<serde_json::Value> = cfg
        .routes
        .iter()
        .map(|r| {
            serde_json::json!({
                "prefix": r.prefix.to_string(),
                "via": r.via.map(|v| v.to_string()),
                "port": r.port,
            })
        })
        .collect();
    serde_json::json!({ "tunnel_routes": tunnel_routes, "routes": routes })
}

fn parse<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{what}: cannot parse {s:?}"))
}

/// The config with `spec` appended, checked by [`crate::config::validate_tunnel_addition`] (the file's rules
/// against the existing tunnels).
fn add_tunnel(cfg: &Config, spec: &TunnelSpec) -> Result<Config, String> {
    let mut t = TunnelCfg::new(
        spec.name.clone(),
        parse("local", &spec.local)?,
        parse("remote", &spec.remote)?,
    );
    t.key = spec.key;
    t.checksum = spec.checksum;
    t.sequence = spec.sequence;
    t.routes = spec
        .routes
        .iter()
        .map(|r| parse("route", r))
        .collect::<Result<_, _>>()?;
    crate::config::validate_tunnel_addition(cfg, &t).map_err(|e| e.to_string())?;
    let mut c = cfg.clone();
    c.tunnels.push(t);
    Ok(c)
}
