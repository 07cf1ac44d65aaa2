//! Wiring: EAL init from the config, mempool, ports, pinned worker threads, the control loop (stats merge, live
//! line, exit conditions), and an orderly shutdown with a final report.
use crate::buf::PacketBuf;
use crate::config::{Config, Mode, PortRole};
use crate::control::plane::{ControlPlane, Notice, Outgoing};
use crate::control::{Aggregator, LiveLine};
use crate::datapath::gateway::{Gateway, Shared};
use crate::datapath::worker::{self, WorkerChannels, WorkerPort, WorkerSetup};
use crate::datapath::CrossConnect;
use crate::datapath::Processor;
use crate::dpdk::{self, Eal, Mbuf, Mempool, Port, PortConfig, PortId};
use crate::stats::{new_latency_histogram, Counters, DropReason, LatencySummary, Snapshot};
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
    pub tunnels: BTreeMap<String, crate::stats::TunnelCounters>,
    pub mempool: MempoolReport,
    pub latency: LatencySummary,
    pub workers: usize,
    pub duration_s: f64,
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
                "port {} ({}) up: {} rx / {} tx queues, mac {}",
                p.name,
                id,
                port.rx_queues(),
                port.tx_queues(),
                crate::config::MacAddr(mac)
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

/// Run the gateway with processors made by `make_proc` (one per worker) until a signal, `--exit-idle-ms` or
/// `duration`; returns the final report.
pub fn run<P, F>(
    cfg: &Config,
    rt: &Runtime,
    opts: &RunOptions,
    stop: Arc<AtomicBool>,
    mut make_proc: F,
    hook: &mut dyn FnMut(&[InjectRing]),
) -> Report
where
    P: Processor<Mbuf> + 'static,
    F: FnMut(usize) -> P,
{
    let nworkers = cfg.dataplane.workers.len();
    let tsc_hz = dpdk::tsc_hz();
    let last_rx = Arc::new(AtomicU64::new(dpdk::rdtsc()));
    let n_tunnels = cfg.tunnels.len();
    let mut handles = Vec::new();
    let mut chans = Vec::new();
    let started = Instant::now();
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
        let setup = WorkerSetup {
            index: w,
            ports,
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
        };
        let proc = make_proc(w);
        let h = std::thread::Builder::new()
            .name(format!("greway-w{w}"))
            .spawn(move || {
                // Build the CoreId explicitly: after rte_eal_init this thread inherits the main lcore's mask.
                if !core_affinity::set_for_current(core_affinity::CoreId { id: core as usize }) {
                    log::warn!("worker {w}: cannot pin to core {core}");
                }
                let lcore = dpdk::register_thread();
                match lcore {
                    Ok(l) => log::info!("worker {w} on core {core} as {l}"),
                    Err(e) => {
                        log::warn!("worker {w}: {e} (running unregistered, mempool cache bypassed)")
                    }
                }
                let out = worker::run(setup, proc);
                dpdk::unregister_thread();
                out
            })
            .expect("spawn worker thread");
        handles.push(h);
    }

    // The control loop on the main thread.
    let mut agg = Aggregator::new(nworkers, rt.ports.len(), n_tunnels);
    let mut live = LiveLine::new(cfg);
    let exit_idle_ticks = opts
        .exit_idle
        .map(|d| (d.as_secs_f64() * tsc_hz as f64) as u64);
    let mut next_live = Instant::now() + Duration::from_secs(1);
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
        std::thread::sleep(Duration::from_millis(10));
        hook(&injects);
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
        if opts.live && Instant::now() >= next_live {
            next_live += Duration::from_secs(1);
            println!("{}", live.line(&agg.total()));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = Counters::new(rt.ports.len(), n_tunnels);
    let mut hist = new_latency_histogram();
    for h in handles {
        let (c, hw) = h.join().expect("worker thread panicked");
        total.merge(&c);
        let _ = hist.add(&hw);
    }
    for (_, _, inject) in &chans {
        while let Some((_, m)) = inject.pop() {
            drop(m);
        }
    }
    let duration_s = started.elapsed().as_secs_f64();
    let free_at_end = rt.pool.available();
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
    let drops = DropReason::ALL
        .iter()
        .map(|r| (r.name(), total.drops[*r as usize]))
        .collect();
    let tunnels = cfg
        .tunnels
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                t.name.clone(),
                total.tunnels.get(i).copied().unwrap_or_default(),
            )
        })
        .collect();
    Report {
        ports,
        drops,
        tunnels,
        mempool: MempoolReport {
            size: rt.pool.size(),
            free_at_start: rt.free_at_start,
            free_at_end,
        },
        latency: LatencySummary::of(&hist),
        workers: nworkers,
        duration_s,
    }
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
        Mode::Forward => Ok(run(cfg, rt, opts, stop, |_| CrossConnect, &mut |_| {})),
        Mode::Gateway => {
            let tsc_hz = dpdk::tsc_hz();
            let nworkers = cfg.dataplane.workers.len();
            let mut cp = ControlPlane::new(cfg, &rt.macs, Instant::now(), dpdk::rdtsc())
                .map_err(|e| AppError::Setup(e.to_string()))?;
            let shared: Shared<Mbuf> = Shared::new(cp.tables(), nworkers);
            let mut ctl = GatewayControl {
                shared: shared.clone(),
                pool: rt.pool.clone(),
                next_tick: Instant::now(),
                tsc_hz,
                nworkers,
            };
            let mut hook = |inject: &[InjectRing]| ctl.poll(&mut cp, inject);
            Ok(run(
                cfg,
                rt,
                opts,
                stop,
                |w| Gateway::new(w, nworkers, shared.clone(), tsc_hz),
                &mut hook,
            ))
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
        println!(
            "  tunnel {name:<10} encap {} decap {} drops {} keepalives rx {} reflected {}",
            t.encap, t.decap, t.drops, t.keepalives_rx, t.keepalives_reflected
        );
    }
    println!(
        "  mempool: {} mbufs, free at start {}, free at end {}",
        r.mempool.size, r.mempool.free_at_start, r.mempool.free_at_end
    );
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
    // SAFETY: getuid has no preconditions and cannot fail.
    let base = if unsafe { libc::getuid() } == 0 {
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

/// The control thread's gateway duties, called every loop iteration (10 ms).
struct GatewayControl {
    shared: Shared<Mbuf>,
    pool: Arc<Mempool>,
    next_tick: Instant,
    tsc_hz: u64,
    nworkers: usize,
}

impl GatewayControl {
    fn poll(&mut self, cp: &mut ControlPlane, inject: &[InjectRing]) {
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
                    let _ = self.shared.handoff[owner].push((tunnel, m));
                }
            }
        }
    }
}
