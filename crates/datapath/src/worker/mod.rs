//! The poll-mode worker loop: rx burst -> process each packet in place -> per-port tx bursts -> tx, with
//! refused packets freed and counted, a latency histogram per worker, and a snapshot handoff to the control
//! thread at a fixed cadence. No locks, allocation or syscalls on the hot path (the optional adaptive idle
//! sleep is the one deliberate syscall, and only when the queues stay empty).
use super::{plan, MirrorCopy, MirrorDir, Processor, Verdict};
use crate::buf::PacketBuf;
use crate::stats::{new_latency_histogram, Counters, DropReason, Snapshot};
use crossbeam::queue::ArrayQueue;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The largest burst the worker handles (config `burst` is capped to it).
pub const MAX_BURST: usize = 256;

/// A burst of owned packets, in order: what a port's rx fills and what its tx drains. Dropping it (or calling
/// [`PacketBurst::free_all`]) frees what is left, in bulk where the buffer kind allows.
pub trait PacketBurst: Default {
    type Pkt: PacketBuf;
    /// Packets held.
    fn len(&self) -> usize;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Add a packet; gives it back when full.
    fn push(&mut self, p: Self::Pkt) -> Result<(), Self::Pkt>;
    /// Sum of the packet lengths added by `push` and still held.
    fn pushed_bytes(&self) -> u64;
    /// The packets held, borrowed.
    fn as_slice(&self) -> &[Self::Pkt];
    /// The packets held, borrowed to be rewritten in place.
    fn as_mut_slice(&mut self) -> &mut [Self::Pkt];
    /// Take all packets out, in order; those the iterator does not yield are freed when it drops.
    fn drain(&mut self) -> impl Iterator<Item = Self::Pkt> + '_;
    /// Free everything held; returns how many were freed.
    fn free_all(&mut self) -> usize;
    /// Move every packet of `from`, in order, to the end of this burst when they all fit (`from` is left empty),
    /// counted as `bytes` (their lengths' sum, which the caller knows: an rx burst has no `push` count); false,
    /// with nothing moved, when they do not.
    fn append(&mut self, from: &mut Self, bytes: u64) -> bool;
}

/// A worker's ports as its poll loop sees them: its own rx and tx queue on each. Implemented on DPDK queues by
/// the binary (one FFI call per burst) and on in-memory queues in tests, so flush, tx-full retry and drain are
/// tested without EAL.
pub trait PortIo {
    type Pkt: PacketBuf;
    type Burst: PacketBurst<Pkt = Self::Pkt>;
    /// Number of ports (port indices are `0..nports()`).
    fn nports(&self) -> usize;
    /// Receive up to `max` packets of port `port` into `into` (empty); 0 when this worker does not poll it.
    fn rx(&mut self, port: usize, into: &mut Self::Burst, max: usize) -> usize;
    /// Transmit as many as port `port`'s queue takes; what it refused stays in `from`, in order.
    fn tx(&mut self, port: usize, from: &mut Self::Burst) -> usize;
    /// The clock of the poll loop (TSC ticks).
    fn now(&self) -> u64;
    /// CPU time the calling thread has had, in ns (for the measurement window; 0 where unknown).
    fn cpu_ns(&self) -> u64 {
        0
    }
}

/// The lock-free channels between a worker and the control thread.
pub struct WorkerChannels<P> {
    /// Worker -> control: cumulative snapshots.
    pub snapshots: Arc<ArrayQueue<Box<Snapshot>>>,
    /// Control -> worker: emptied snapshot boxes for reuse (no allocation on the worker).
    pub recycled: Arc<ArrayQueue<Box<Snapshot>>>,
    /// Control -> worker: packets the control thread wants sent (ARP requests, keepalives, held packets).
    pub inject: Arc<ArrayQueue<(usize, P)>>,
}

/// Everything a worker needs; moved into its thread.
pub struct WorkerSetup<P> {
    pub index: usize,
    pub burst: usize,
    pub idle_sleep_us: u32,
    pub tsc_hz: u64,
    pub stop: Arc<AtomicBool>,
    /// TSC of the last received packet (any worker), for `--exit-idle-ms`.
    pub last_rx_tsc: Arc<AtomicU64>,
    pub channels: WorkerChannels<P>,
    pub n_tunnels: usize,
    /// TSC at which the measurement window opens (`--warmup-s`): the worker notes its tx count and resets its
    /// latency histogram there. 0: the window opens when the loop starts.
    pub window_start_tsc: u64,
}

/// A worker's own measurement window: from `window_start_tsc` (or the loop start) to the loop's end, timed by
/// the TSC of the core it busy-polls.
#[derive(Clone, Copy, Debug, Default)]
pub struct Window {
    /// TSC ticks in the window.
    pub ticks: u64,
    /// Packets sent (all ports) in the window.
    pub tx_pkts: u64,
    /// Packets received (all ports) in the window.
    pub rx_pkts: u64,
    /// CPU time this worker thread got in the window, in ns: on a shared machine the core is not all ours, and
    /// this (not the TSC) is what the packets cost.
    pub cpu_ns: u64,
}

/// Snapshots per second handed to the control thread.
const SNAPSHOTS_PER_SEC: u64 = 10;

fn tx_rx_total(c: &Counters) -> (u64, u64) {
    c.ports
        .iter()
        .fold((0, 0), |(t, r), p| (t + p.tx, r + p.rx))
}

/// What the poll loop keeps between bursts: the rx burst, a tx burst per port, the burst's dropped packets,
/// and the `[[mirror]]` copies.
struct LoopState<IO: PortIo> {
    tx: Vec<IO::Burst>,
    /// The burst's dropped packets, freed together once it is done (one bulk call instead of one per packet).
    dropped: IO::Burst,
    mirror: MirrorState<IO::Burst>,
    ns_per_tick: TickScale,
}

/// TSC ticks to nanoseconds in fixed point: `ticks * mult >> 32`, one multiply (the `f64` conversion it
/// replaced took some 20 instructions per tx burst). `mult` is 10^9 * 2^32 / tsc_hz, truncated: off by less
/// than one part in `mult` (about 10^9 at 4 GHz), under a nanosecond for any latency below a second.
#[derive(Debug, Clone, Copy)]
struct TickScale {
    mult: u64,
}

impl TickScale {
    fn new(tsc_hz: u64) -> Self {
        let mult = (1_000_000_000u128 << 32) / u128::from(tsc_hz.max(1));
        TickScale {
            mult: u64::try_from(mult).unwrap_or(u64::MAX),
        }
    }
    #[inline(always)]
    fn ns(self, ticks: u64) -> u64 {
        let ns = (u128::from(ticks) * u128::from(self.mult)) >> 32;
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

/// The rx side of the poll loop: the burst being processed and the fast pass's outcome per packet
/// ([`Processor::fast_burst`]). Apart from [`LoopState`] so that the packets can be drained while their
/// verdicts are carried out.
struct RxState<IO: PortIo> {
    burst: IO::Burst,
    plan: [u16; MAX_BURST],
}

/// The `[[mirror]]` side of the loop. Copies go into bursts of their own per egress port, sent after the
/// originals and never mirrored themselves (a tx mirror on the port that carries the session would otherwise
/// copy its own copies). Copies of a tx-mirrored burst are made before its tx call (the NIC owns the
/// originals after it) and wait in `staged`: those whose original the queue refused are freed, so a tx
/// mirror shows exactly what was sent.
struct MirrorState<Bu: PacketBurst> {
    /// Port masks of this poll round (`Processor::mirror_ports`).
    rx_ports: u64,
    tx_ports: u64,
    /// Per egress port: the copies and their tags, index for index.
    out: Vec<(Bu, Vec<MirrorCopy>)>,
    /// A tx-mirrored burst's copies until its tx call returns (never grows past `MAX_BURST`).
    staged: Vec<(MirrorCopy, Bu::Pkt)>,
    /// Some copy is waiting in `out`.
    pending: bool,
}

impl<Bu: PacketBurst> MirrorState<Bu> {
    fn new(nports: usize) -> Self {
        MirrorState {
            rx_ports: 0,
            tx_ports: 0,
            out: (0..nports)
                .map(|_| (Bu::default(), Vec::with_capacity(MAX_BURST)))
                .collect(),
            staged: Vec::with_capacity(MAX_BURST),
            pending: false,
        }
    }
}

/// Bit `i` of a port mask (ports past 64 have none: validated).
#[inline(always)]
fn has_port(mask: u64, i: usize) -> bool {
    i < 64 && (mask >> i) & 1 != 0
}

/// Run the poll loop until `stop` is set; returns the final counters (also pushed as a last snapshot), the
/// latency histogram (of the window) and the measurement window.
pub fn run<IO: PortIo, P: Processor<IO::Pkt>>(
    setup: WorkerSetup<IO::Pkt>,
    io: &mut IO,
    mut proc: P,
) -> (Counters, Histogram<u64>, Window) {
    let nports = io.nports();
    let burst = setup.burst.clamp(1, MAX_BURST);
    let mut counters = Counters::new(nports, setup.n_tunnels);
    counters.ensure_mirrors(proc.mirror_count());
    let mut hist: Histogram<u64> = new_latency_histogram();
    let mut rx = RxState::<IO> {
        burst: IO::Burst::default(),
        plan: [plan::SLOW; MAX_BURST],
    };
    let mut st = LoopState::<IO> {
        tx: (0..nports).map(|_| IO::Burst::default()).collect(),
        dropped: IO::Burst::default(),
        mirror: MirrorState::new(nports),
        ns_per_tick: TickScale::new(setup.tsc_hz),
    };
    let snapshot_every = setup.tsc_hz / SNAPSHOTS_PER_SEC;
    let mut next_snapshot = io.now() + snapshot_every;
    let mut idle_rounds: u32 = 0;
    let mut sleep_us: u32 = 0;
    // (tsc, tx, rx, thread cpu ns) when the window opened.
    // Without a warm-up the window opens now, before any packet (the histogram keeps every sample).
    let mut window: Option<(u64, u64, u64, u64)> =
        (setup.window_start_tsc == 0).then(|| (io.now(), 0, 0, io.cpu_ns()));
    let mut window_pending = window.is_none();

    // `last_rx_tsc` is shared by all workers: refreshed at most once per millisecond (an atomic read-modify-write
    // per burst would cost more than the packets' own counters).
    let rx_tsc_every = (setup.tsc_hz / 1000).max(1);
    let mut rx_tsc_published = 0u64;

    while !setup.stop.load(Ordering::Relaxed) {
        // Relaxed: the flag carries no data; the worker only needs to see it eventually.
        counters.polls += 1;
        // One clock read and one table check per poll round: the round's bursts, its deferred work and its
        // packets' latency all start from `now` (taken just before the rx calls, so the latency includes them).
        let now = io.now();
        // Pick up a new table (and lay the counters out for it) before any packet or deferred work uses it.
        proc.begin_burst(now);
        sync_tunnel_layout::<IO::Pkt, P>(&proc, &mut counters);
        // Mirrors: one test per poll round; a table without them runs the mirror-free instance of the round.
        let (mrx, mtx) = proc.mirror_ports();
        st.mirror.rx_ports = mrx;
        st.mirror.tx_ports = mtx;
        let rx_tsc = if (mrx | mtx) == 0 {
            round::<IO, P, false>(
                &setup,
                io,
                &mut proc,
                &mut rx,
                &mut st,
                &mut counters,
                &mut hist,
                now,
                burst,
            )
        } else {
            round::<IO, P, true>(
                &setup,
                io,
                &mut proc,
                &mut rx,
                &mut st,
                &mut counters,
                &mut hist,
                now,
                burst,
            )
        };
        let got_any = rx_tsc.is_some();
        if let Some(t_rx) = rx_tsc {
            if t_rx.wrapping_sub(rx_tsc_published) >= rx_tsc_every {
                rx_tsc_published = t_rx;
                // Relaxed: a coarse "last activity" clock read by the control thread.
                setup.last_rx_tsc.fetch_max(t_rx, Ordering::Relaxed);
            }
        }

        if !got_any {
            counters.empty_polls += 1;
            if setup.idle_sleep_us > 0 {
                idle_rounds += 1;
                // Like l3fwd-power: after a run of empty polls, sleep, doubling up to the configured bound.
                if idle_rounds > 300 {
                    sleep_us = (sleep_us.max(1) * 2).min(setup.idle_sleep_us);
                    std::thread::sleep(std::time::Duration::from_micros(u64::from(sleep_us)));
                }
            }
        } else {
            idle_rounds = 0;
            sleep_us = 0;
        }

        if window_pending && now >= setup.window_start_tsc {
            window_pending = false;
            let (t, r) = tx_rx_total(&counters);
            window = Some((now, t, r, io.cpu_ns()));
            hist.reset();
        }

        if now >= next_snapshot {
            next_snapshot = now + snapshot_every;
            publish(&setup, &counters, &hist);
        }
    }
    // Final drain: retry what the queues refused for a short while, then free and count it.
    for (out, b) in st.tx.iter_mut().enumerate() {
        for _ in 0..1000 {
            if b.is_empty() {
                break;
            }
            io.tx(out, b);
        }
        let left = b.free_all();
        counters.drops[DropReason::TxFull as usize] += left as u64;
    }
    // Mirror copies are flushed every round: nothing is left but what a stop in mid-round could leave.
    flush_mirrors(io, &mut st.mirror, &mut counters);
    let end = io.now();
    let end_cpu = io.cpu_ns();
    proc.finish(&mut counters);
    publish(&setup, &counters, &hist);
    let (t, r) = tx_rx_total(&counters);
    let win = window.map_or_else(Window::default, |(t0, tx0, rx0, cpu0)| Window {
        ticks: end.saturating_sub(t0),
        tx_pkts: t - tx0,
        rx_pkts: r - rx0,
        cpu_ns: end_cpu.saturating_sub(cpu0),
    });
    (counters, hist, win)
}

/// One poll round: an rx burst per port, each processed and flushed, then the processor's deferred work and
/// the control thread's packets. `MIRROR`: some port is mirrored this round (with false, the mirror code is
/// not in this instance at all). Returns the TSC of the round's receive when anything was received.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn round<IO: PortIo, P: Processor<IO::Pkt>, const MIRROR: bool>(
    setup: &WorkerSetup<IO::Pkt>,
    io: &mut IO,
    proc: &mut P,
    rx: &mut RxState<IO>,
    st: &mut LoopState<IO>,
    counters: &mut Counters,
    hist: &mut Histogram<u64>,
    now: u64,
    burst: usize,
) -> Option<u64> {
    let nports = st.tx.len();
    let mut got_any = false;
    for pi in 0..nports {
        let n = io.rx(pi, &mut rx.burst, burst);
        if n == 0 {
            continue;
        }
        got_any = true;
        let t_rx = now;
        if MIRROR && has_port(st.mirror.rx_ports, pi) {
            // The frames as received, before anything rewrites them.
            let m = &mut st.mirror;
            let (out, pending) = (&mut m.out, &mut m.pending);
            proc.mirror(
                rx.burst.as_slice(),
                pi,
                MirrorDir::Rx,
                &mut |tag, copy| {
                    *pending = true;
                    let (b, tags) = &mut out[usize::from(tag.out)];
                    match b.push(copy) {
                        Ok(()) => {
                            tags.push(tag);
                            true
                        }
                        Err(copy) => {
                            drop(copy);
                            false
                        }
                    }
                },
                counters,
            );
        }
        let codes = &mut rx.plan[..rx.burst.len()];
        let pass = if proc.has_fast_pass(pi) {
            proc.fast_burst(rx.burst.as_mut_slice(), pi, codes, counters)
        } else {
            None
        };
        let mut rx_bytes = 0u64;
        if let Some(bytes) = pass {
            // Planned: the packets the fast pass finished go straight to their tx burst (or are dropped) in
            // order; the others take `process`, out of line so that this loop stays small. The common burst,
            // every packet to one port, moves there whole when it fits (the fold has no early exit: it runs
            // over the codes 8 or 16 at a time). The pass summed the bytes of what it took.
            let first = codes[0];
            let uniform = first < plan::DROP && codes.iter().fold(0, |a, &c| a | (c ^ first)) == 0;
            rx_bytes = bytes.rx;
            if !(uniform && st.tx[usize::from(first)].append(&mut rx.burst, bytes.tx)) {
                rx_bytes += planned::<IO, P, MIRROR>(io, proc, rx, st, pi, counters, hist, t_rx);
            }
        } else {
            proc.prepare_burst(rx.burst.as_slice(), pi, counters);
            for m in rx.burst.drain() {
                rx_bytes += m.pkt_len() as u64;
                dispose::<IO, P, MIRROR>(io, proc, st, pi, m, counters, hist, t_rx);
            }
        }
        st.dropped.free_all();
        let pc = &mut counters.ports[pi];
        pc.rx += n as u64;
        pc.rx_bytes += rx_bytes;
        flush_all::<IO, P, MIRROR>(io, proc, st, counters, hist, t_rx);
    }
    // Work the processor deferred (handoff rings, reorder timeouts) and packets from the control thread.
    let mut extra = false;
    let tx = &mut st.tx;
    proc.poll_deferred(
        now,
        &mut |out, m| {
            extra = true;
            if let Err(m) = tx[out].push(m) {
                drop(m);
                return false;
            }
            true
        },
        counters,
    );
    // (`ArrayQueue::pop` on an empty queue ends in a sequentially consistent fence, a locked instruction:
    // `is_empty` is two plain loads.)
    while !setup.channels.inject.is_empty() {
        let Some((out, m)) = setup.channels.inject.pop() else {
            break;
        };
        extra = true;
        if out < nports && st.tx[out].push(m).is_ok() {
            continue;
        }
        counters.drop_pkt(DropReason::TxFull);
    }
    if extra {
        flush_all::<IO, P, MIRROR>(io, proc, st, counters, hist, now);
    }
    got_any.then_some(now)
}

/// A table with another tunnel set was picked up: move the per-tunnel counters to its indices (rare; the
/// check is a pointer comparison per burst).
#[inline(always)]
fn sync_tunnel_layout<B: PacketBuf, P: Processor<B>>(proc: &P, counters: &mut Counters) {
    if let Some(ids) = proc.tunnel_ids() {
        if !Arc::ptr_eq(ids, &counters.tunnel_ids) {
            if ids[..] != counters.tunnel_ids[..] {
                counters.relayout(ids);
            } else {
                // Same tunnels (a neighbour change, or the first table): adopt the pointer, keep the counters.
                counters.tunnel_ids = ids.clone();
            }
        }
    }
}

/// One packet through `process`, its verdict carried out: queued for tx (flushing a full tx burst first),
/// dropped (freed with the burst's drops) or held.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dispose<IO: PortIo, P: Processor<IO::Pkt>, const MIRROR: bool>(
    io: &mut IO,
    proc: &mut P,
    st: &mut LoopState<IO>,
    pi: usize,
    mut m: IO::Pkt,
    counters: &mut Counters,
    hist: &mut Histogram<u64>,
    t_rx: u64,
) {
    match proc.process(&mut m, pi, counters) {
        Verdict::Tx(out) => {
            if let Err(m) = st.tx[out].push(m) {
                retry_full::<IO, P, MIRROR>(io, proc, st, out, m, counters, hist, t_rx);
            }
        }
        Verdict::Drop(r) => {
            counters.drop_pkt(r);
            // Never full: it holds at most one rx burst.
            if let Err(m) = st.dropped.push(m) {
                drop(m);
            }
        }
        Verdict::Hold(why) => proc.hold(m, why, counters),
    }
}

/// A planned burst ([`Processor::fast_burst`]) taken packet by packet: each finished packet to its tx burst or
/// the burst's drops, each packet left (`plan::SLOW`) through `process`, in order. Returns the received bytes
/// of the packets left (the pass counted those it took).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn planned<IO: PortIo, P: Processor<IO::Pkt>, const MIRROR: bool>(
    io: &mut IO,
    proc: &mut P,
    rx: &mut RxState<IO>,
    st: &mut LoopState<IO>,
    pi: usize,
    counters: &mut Counters,
    hist: &mut Histogram<u64>,
    t_rx: u64,
) -> u64 {
    let mut left_bytes = 0u64;
    for (m, &code) in rx.burst.drain().zip(rx.plan.iter()) {
        if code < plan::DROP {
            let out = usize::from(code);
            if let Err(m) = st.tx[out].push(m) {
                retry_full::<IO, P, MIRROR>(io, proc, st, out, m, counters, hist, t_rx);
            }
        } else if code != plan::SLOW {
            counters.drops[usize::from(code & 0xff)] += 1;
            // Never full: it holds at most one rx burst.
            if let Err(m) = st.dropped.push(m) {
                drop(m);
            }
        } else {
            left_bytes += m.pkt_len() as u64;
            process_one::<IO, P, MIRROR>(io, proc, st, pi, m, counters, hist, t_rx);
        }
    }
    left_bytes
}

/// [`dispose`] for a packet the fast pass left to `process` (out of line: the planned loop stays small).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn process_one<IO: PortIo, P: Processor<IO::Pkt>, const MIRROR: bool>(
    io: &mut IO,
    proc: &mut P,
    st: &mut LoopState<IO>,
    pi: usize,
    m: IO::Pkt,
    counters: &mut Counters,
    hist: &mut Histogram<u64>,
    t_rx: u64,
) {
    dispose::<IO, P, MIRROR>(io, proc, st, pi, m, counters, hist, t_rx);
}

/// A full tx burst: flush it now and queue `m` again (counted as `tx_full` if the queue still has no room).
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn retry_full<IO: PortIo, P: Processor<IO::Pkt>, const MIRROR: bool>(
    io: &mut IO,
    proc: &mut P,
    st: &mut LoopState<IO>,
    out: usize,
    m: IO::Pkt,
    counters: &mut Counters,
    hist: &mut Histogram<u64>,
    t_rx: u64,
) {
    flush::<IO, P, MIRROR>(
        io,
        proc,
        &mut st.tx[out],
        &mut st.mirror,
        out,
        counters,
        hist,
        t_rx,
        st.ns_per_tick,
    );
    if st.tx[out].push(m).is_err() {
        counters.drop_pkt(DropReason::TxFull);
    }
}

/// Flush every port's tx burst, then (with `MIRROR`) the mirror copies they and the rx burst made.
#[inline(always)]
fn flush_all<IO: PortIo, P: Processor<IO::Pkt>, const MIRROR: bool>(
    io: &mut IO,
    proc: &mut P,
    st: &mut LoopState<IO>,
    counters: &mut Counters,
    hist: &mut Histogram<u64>,
    t_rx: u64,
) {
    for (out, b) in st.tx.iter_mut().enumerate() {
        flush::<IO, P, MIRROR>(
            io,
            proc,
            b,
            &mut st.mirror,
            out,
            counters,
            hist,
            t_rx,
            st.ns_per_tick,
        );
    }
    if MIRROR && st.mirror.pending {
        flush_mirrors(io, &mut st.mirror, counters);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn flush<IO: PortIo, P: Processor<IO::Pkt>, const MIRROR: bool>(
    io: &mut IO,
    proc: &mut P,
    b: &mut IO::Burst,
    mirror: &mut MirrorState<IO::Burst>,
    out: usize,
    counters: &mut Counters,
    hist: &mut Histogram<u64>,
    t_rx: u64,
    ns_per_tick: TickScale,
) {
    if b.is_empty() {
        return;
    }
    let tx_mirrored = MIRROR && has_port(mirror.tx_ports, out);
    if tx_mirrored {
        // The frames as sent: copied now, kept only for the originals the queue takes (below).
        let staged = &mut mirror.staged;
        proc.mirror(
            b.as_slice(),
            out,
            MirrorDir::Tx,
            &mut |tag, copy| {
                if staged.len() < staged.capacity() {
                    staged.push((tag, copy));
                    true
                } else {
                    drop(copy);
                    false
                }
            },
            counters,
        );
    }
    let bytes = b.pushed_bytes();
    let n = b.len();
    let sent = io.tx(out, b);
    let refused = b.len();
    let refused_bytes = b.pushed_bytes();
    if refused > 0 {
        // The egress queue is full: drop (counted) rather than stall the poll loop.
        b.free_all();
        counters.drops[DropReason::TxFull as usize] += refused as u64;
    }
    debug_assert_eq!(sent + refused, n);
    counters.ports[out].tx += sent as u64;
    counters.ports[out].tx_bytes += bytes - refused_bytes;
    if sent > 0 {
        let lat_ns = ns_per_tick.ns(io.now().saturating_sub(t_rx));
        let _ = hist.record_n(lat_ns.max(1), sent as u64);
        counters.latency_samples += sent as u64;
    }
    if tx_mirrored && !mirror.staged.is_empty() {
        let MirrorState {
            staged, out: outs, ..
        } = mirror;
        for (tag, copy) in staged.drain(..) {
            let slot = &mut counters.mirrors[tag.entry as usize];
            if usize::from(tag.orig) >= sent {
                // Its original was not sent: neither is the copy.
                slot.tx_full += 1;
                drop(copy);
                continue;
            }
            let (mb, tags) = &mut outs[usize::from(tag.out)];
            let copy = match mb.push(copy) {
                Ok(()) => {
                    tags.push(tag);
                    continue;
                }
                Err(copy) => copy,
            };
            // A full batch of copies for that port: send it, then retry once.
            flush_mirror(io, usize::from(tag.out), mb, tags, counters);
            if mb.push(copy).is_ok() {
                tags.push(tag);
            } else {
                counters.mirrors[tag.entry as usize].queue_full += 1;
            }
        }
        mirror.pending = true;
    }
}

/// Send every port's mirror copies.
fn flush_mirrors<Bu: PacketBurst, IO: PortIo<Burst = Bu, Pkt = Bu::Pkt>>(
    io: &mut IO,
    m: &mut MirrorState<Bu>,
    counters: &mut Counters,
) {
    for (out, (b, tags)) in m.out.iter_mut().enumerate() {
        flush_mirror(io, out, b, tags, counters);
    }
    m.pending = false;
}

/// Send one port's mirror copies: the port's tx counters take them (not the latency histogram: they were
/// not forwarded), each `[[mirror]]` entry counts its sent copies and bytes, and what the queue refused.
fn flush_mirror<Bu: PacketBurst, IO: PortIo<Burst = Bu, Pkt = Bu::Pkt>>(
    io: &mut IO,
    out: usize,
    b: &mut Bu,
    tags: &mut Vec<MirrorCopy>,
    counters: &mut Counters,
) {
    if b.is_empty() {
        return;
    }
    let bytes = b.pushed_bytes();
    let sent = io.tx(out, b);
    let refused_bytes = b.pushed_bytes();
    b.free_all();
    counters.ports[out].tx += sent as u64;
    counters.ports[out].tx_bytes += bytes - refused_bytes;
    for (i, tag) in tags.drain(..).enumerate() {
        let slot = &mut counters.mirrors[tag.entry as usize];
        if i < sent {
            slot.packets += 1;
            slot.bytes += u64::from(tag.bytes);
            slot.truncated += u64::from(tag.truncated);
        } else {
            slot.tx_full += 1;
        }
    }
}

fn publish<P>(setup: &WorkerSetup<P>, counters: &Counters, hist: &Histogram<u64>) {
    // No free box: skip this tick rather than allocate on the hot path.
    let Some(mut snap) = setup.channels.recycled.pop() else {
        return;
    };
    snap.worker = setup.index;
    snap.counters.clone_from(counters);
    snap.latency_ns.reset();
    let _ = snap.latency_ns.add(hist);
    if let Err(s) = setup.channels.snapshots.push(snap) {
        let _ = setup.channels.recycled.push(s);
    }
}

#[cfg(test)]
mod tests;
