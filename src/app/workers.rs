//! The workers: one pinned thread per `[dataplane] workers` core, each with its port queues and its channels to
//! the control thread; joined at the end into the run's counters, latency and measurement window.
use super::{AppError, BenchReport, InjectRing, RunOptions, Runtime};
use crate::config::Config;
use crate::datapath::worker::{self, Window, WorkerChannels, WorkerSetup};
use crate::datapath::Processor;
use crate::dpdk::{self, Mbuf, WorkerPort, WorkerQueues};
use crate::stats::{new_latency_histogram, Counters, Snapshot};
use crossbeam::queue::ArrayQueue;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What a worker thread returns: its counters, its latency histogram and its measurement window.
pub(super) type WorkerTask = dpdk::PinnedTask<(Counters, Histogram<u64>, Window)>;

/// A worker's channels as the control thread holds them: snapshots in, recycled snapshot boxes out, frames to
/// inject.
pub(super) type Channels = (
    Arc<ArrayQueue<Box<Snapshot>>>,
    Arc<ArrayQueue<Box<Snapshot>>>,
    InjectRing,
);

/// Spawns one worker per configured core with a processor from `make_proc`. On a failure the workers already
/// running are stopped and joined before the error is returned.
pub(super) fn spawn_workers<P, F>(
    cfg: &Config,
    rt: &Runtime,
    opts: &RunOptions,
    stop: &Arc<AtomicBool>,
    last_rx: &Arc<AtomicU64>,
    tsc_hz: u64,
    mut make_proc: F,
) -> Result<(Vec<WorkerTask>, Vec<Channels>), AppError>
where
    P: Processor<Mbuf> + 'static,
    F: FnMut(usize) -> P,
{
    let n_tunnels = cfg.tunnels.len();
    let mut handles: Vec<WorkerTask> = Vec::new();
    let mut chans = Vec::new();
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
            let mut queues = queues;
            worker::run(setup, &mut queues, proc)
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
    Ok((handles, chans))
}

/// Joins the workers: their counters merged over `nports` ports, their latency histograms, and the measurement
/// window of the run (`--warmup-s`).
pub(super) fn join_workers(
    handles: Vec<WorkerTask>,
    nports: usize,
    tsc_hz: u64,
    warmup: Option<Duration>,
) -> (Counters, Histogram<u64>, BenchReport) {
    let mut total = Counters::new(nports, 0);
    let mut hist = new_latency_histogram();
    let mut bench = BenchReport {
        tsc_hz,
        warmup_s: warmup.map_or(0.0, |d| d.as_secs_f64()),
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
    (total, hist, bench)
}
