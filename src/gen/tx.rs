//! The transmit loop: TSC-paced bursts of prebuilt templates, stamped with stream, sequence and TSC.
use super::template::{Plan, FCS};
use super::trial::Trial;
use crate::buf::PacketBuf;
use crate::dpdk::{self, Burst, Mempool};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the transmit thread returns.
pub(super) struct TxDone {
    pub(super) gre_seq: Vec<u32>,
    pub(super) sent: u64,
    pub(super) bytes: u64,
    pub(super) secs: f64,
}

/// What the transmit thread works with.
pub(super) struct TxSetup {
    pub(super) plan: Arc<Plan>,
    pub(super) pool: Arc<Mempool>,
    pub(super) port: u16,
    pub(super) burst_max: usize,
    pub(super) hz: u64,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) live_sent: Arc<AtomicU64>,
    pub(super) gre_seq: Vec<u32>,
}

/// The transmit loop: paced by TSC, `burst` packets at most per `tx_burst`.
pub(super) fn transmit(x: &TxSetup, t: &Trial) -> TxDone {
    let (plan, pool, port, burst_max, hz) = (&*x.plan, &*x.pool, x.port, x.burst_max, x.hz);
    let (stop, live_sent) = (&*x.stop, &*x.live_sent);
    let mut seq = vec![0u64; plan.streams as usize];
    let mut gre_seq = x.gre_seq.clone();
    let (mut stream, mut pat) = (0u32, 0usize);
    let mut burst: Burst<256> = Burst::new();
    let (mut sent, mut bytes) = (0u64, 0u64);
    let start = dpdk::rdtsc();
    let end = t
        .duration
        .map(|d| start + (d.as_secs_f64() * hz as f64) as u64);
    let pps_per_tick = t.rate_pps.map(|r| r / hz as f64);
    let mut last_tx = start;
    'outer: loop {
        // Relaxed: a stop request only needs to be seen eventually.
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let now = dpdk::rdtsc();
        if end.is_some_and(|e| now >= e) {
            break;
        }
        let mut want = burst_max as u64;
        if let Some(c) = t.count {
            want = want.min(c - sent);
            if want == 0 {
                break;
            }
        }
        if let Some(k) = pps_per_tick {
            let due = ((now - start) as f64 * k) as u64 + 1;
            want = want.min(due.saturating_sub(sent));
            if want == 0 {
                // At low rates, give the core back (it may be shared with the device under test): sleep for
                // half the time to the next packet when that is over 200 us, spin otherwise.
                let next_due = start + ((sent as f64) / k) as u64;
                let wait_us = next_due.saturating_sub(now) * 1_000_000 / hz;
                if wait_us > 200 {
                    std::thread::sleep(Duration::from_micros(wait_us / 2));
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
        }
        // One bulk allocation per burst (the burst is empty here); a pool too short for it gives one mbuf.
        if !pool.alloc_bulk(&mut burst, want as usize) {
            if let Some(m) = pool.alloc() {
                let _ = burst.push(m);
            }
        }
        for i in 0..burst.len() {
            let tp = plan.template(stream, plan.pattern[pat]);
            let Some(buf) = burst.get_mut(i).append(tp.bytes.len()) else {
                burst.truncate(i);
                break;
            };
            buf.copy_from_slice(&tp.bytes);
            let s = &mut seq[stream as usize];
            let gs = &mut gre_seq[tp.tunnel as usize];
            tp.stamp(buf, t.run, *s, now, *gs);
            *s += 1;
            *gs = gs.wrapping_add(1);
            stream += 1;
            if stream == plan.streams {
                stream = 0;
            }
            pat += 1;
            if pat == plan.pattern.len() {
                pat = 0;
            }
        }
        // Retry what the queue refused until it is taken or the run ends.
        while !burst.is_empty() {
            let before = burst.total_len();
            let n = burst.tx(port, 0);
            sent += n as u64;
            bytes += (before - burst.total_len() + FCS * n) as u64;
            if stop.load(Ordering::Relaxed) || end.is_some_and(|e| dpdk::rdtsc() >= e) {
                burst.free_all();
                break 'outer;
            }
        }
        last_tx = dpdk::rdtsc();
        // Relaxed: a statistic for the live line.
        live_sent.store(sent, Ordering::Relaxed);
    }
    live_sent.store(sent, Ordering::Relaxed);
    TxDone {
        gre_seq,
        sent,
        bytes,
        secs: (last_tx.max(start + 1) - start) as f64 / hz as f64,
    }
}
