//! One transmit/receive run: the transmit thread on its pinned core, the receive loop and the live line on the
//! calling thread.
use super::template::{find_signature, Plan, FCS};
use super::tx::{transmit, TxSetup};
use super::{rx, template};
use crate::buf::PacketBuf;
use crate::dpdk::{self, Burst, Mempool};
use crate::stats::{new_latency_histogram, LatencySummary};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the run needs, shared by every trial.
pub(super) struct Env {
    pub(super) plan: Arc<Plan>,
    pub(super) pool: Arc<Mempool>,
    pub(super) tx_port: u16,
    /// (port id, rx queues).
    pub(super) rx: Option<(u16, u16)>,
    pub(super) burst: usize,
    pub(super) drain: Duration,
    pub(super) core: u32,
    pub(super) hz: u64,
    pub(super) live: bool,
    pub(super) stop: Arc<AtomicBool>,
    /// GRE sequence numbers per tunnel, carried from one trial to the next (RFC 2890 receivers keep state).
    pub(super) gre_seq: std::sync::Mutex<Vec<u32>>,
}

/// One transmit/receive run.
pub(super) struct Trial {
    pub(super) rate_pps: Option<f64>,
    pub(super) duration: Option<Duration>,
    pub(super) count: Option<u64>,
    pub(super) run: u8,
}

/// Raw results of one trial.
pub(super) struct Outcome {
    pub(super) sent: u64,
    pub(super) tx_bytes: u64,
    pub(super) tx_s: f64,
    pub(super) received: u64,
    pub(super) rx_bytes: u64,
    pub(super) reordered: u64,
    pub(super) duplicates: u64,
    pub(super) stale: u64,
    pub(super) foreign: u64,
    pub(super) latency_ns: Histogram<u64>,
}

pub(super) fn empty_outcome() -> Outcome {
    Outcome {
        sent: 0,
        tx_bytes: 0,
        tx_s: 0.0,
        received: 0,
        rx_bytes: 0,
        reordered: 0,
        duplicates: 0,
        stale: 0,
        foreign: 0,
        latency_ns: new_latency_histogram(),
    }
}

pub(super) fn run_trial(env: &Env, t: &Trial) -> Outcome {
    let live_sent = Arc::new(AtomicU64::new(0));
    let tx_stop = Arc::new(AtomicBool::new(false));
    // The transmitter starts after the receive loop's first poll: a receive queue may be armed only by it
    // (net_memif: the server can send nothing to this client before its first rx_burst hands the ring's
    // slots over), and what is sent before that is dropped on the way back (the 1-in-5000 memif loss).
    let mut start_tx = Some({
        let x = TxSetup {
            plan: env.plan.clone(),
            pool: env.pool.clone(),
            port: env.tx_port,
            burst_max: env.burst,
            hz: env.hz,
            stop: tx_stop.clone(),
            live_sent: live_sent.clone(),
            gre_seq: env.gre_seq.lock().map(|v| v.clone()).unwrap_or_default(),
        };
        let core = env.core;
        let trial = Trial { ..*t };
        move || {
            dpdk::spawn_pinned("gen tx", core, move || transmit(&x, &trial))
                .expect("start the transmit task")
        }
    });
    let mut handle: Option<dpdk::PinnedTask<super::tx::TxDone>> = None;
    let mut o = empty_outcome();
    let mut streams = vec![rx::StreamRx::default(); env.plan.streams as usize];
    let mut b: Burst<64> = Burst::new();
    let started = Instant::now();
    let mut next_live = started + Duration::from_secs(1);
    let mut last_live = (0u64, 0u64, started);
    let mut drain_until: Option<Instant> = None;
    let ns_per_tick = 1e9 / env.hz as f64;
    loop {
        if env.stop.load(Ordering::Relaxed) {
            tx_stop.store(true, Ordering::Relaxed);
        }
        if drain_until.is_none() && handle.as_ref().is_some_and(|h| h.is_finished()) {
            drain_until = Some(
                Instant::now()
                    + if env.rx.is_some() {
                        env.drain
                    } else {
                        Duration::ZERO
                    },
            );
        }
        if drain_until.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        match env.rx {
            Some((port, nq)) => {
                let mut got = 0;
                for q in 0..nq {
                    let n = b.rx(port, q);
                    got += n;
                    let now = dpdk::rdtsc();
                    for i in 0..n {
                        let m = b.get_mut(i);
                        let Some(sig) = find_signature(m.data()) else {
                            o.foreign += 1;
                            continue;
                        };
                        if sig.run != t.run {
                            o.stale += 1;
                            continue;
                        }
                        let Some(st) = streams.get_mut(sig.stream as usize) else {
                            o.foreign += 1;
                            continue;
                        };
                        o.rx_bytes += (m.pkt_len() + FCS) as u64;
                        if st.on_seq(sig.seq) != rx::Arrival::Duplicate {
                            let ticks = now.wrapping_sub(sig.tsc) & template::MASK48;
                            let ns = (ticks as f64 * ns_per_tick) as u64;
                            o.latency_ns.saturating_record(ns.max(1));
                        }
                    }
                    b.free_all();
                }
                if got == 0 {
                    std::hint::spin_loop();
                }
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
        if let Some(start) = start_tx.take() {
            handle = Some(start());
        }
        if env.live && Instant::now() >= next_live {
            let now = Instant::now();
            next_live += Duration::from_secs(1);
            let tot = rx::totals(&streams);
            let sent = live_sent.load(Ordering::Relaxed);
            let dt = now.duration_since(last_live.2).as_secs_f64().max(1e-9);
            let lat = LatencySummary::of(&o.latency_ns);
            println!(
                "gen: tx {:.3} Mpps ({} total) | rx {:.3} Mpps ({} total) | reordered {} dup {} | p50 {:.1} us p99 {:.1} us",
                (sent - last_live.0) as f64 / dt / 1e6,
                sent,
                (tot.received - last_live.1) as f64 / dt / 1e6,
                tot.received,
                tot.reordered,
                tot.duplicates,
                lat.p50_us,
                lat.p99_us
            );
            last_live = (sent, tot.received, now);
        }
    }
    let done = handle
        .expect("the transmit task starts in the first iteration")
        .join()
        .expect("transmit task panicked");
    if let Ok(mut v) = env.gre_seq.lock() {
        *v = done.gre_seq;
    }
    let tot = rx::totals(&streams);
    o.sent = done.sent;
    o.tx_bytes = done.bytes;
    o.tx_s = done.secs;
    o.received = tot.received;
    o.reordered = tot.reordered;
    o.duplicates = tot.duplicates;
    o
}
