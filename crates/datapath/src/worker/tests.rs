//! The poll loop on in-memory queues (no EAL): flush, the tx-full retry, refused packets counted, the final
//! drain, held packets released, and every packet accounted for (rx = tx + drops).
use super::*;
use crate::buf::VecBuf;
use crate::{CrossConnect, MirrorCopy, MirrorDir, PassBytes};
use std::collections::VecDeque;

/// A burst of `VecBuf`s.
#[derive(Default)]
struct VecBurst {
    pkts: Vec<VecBuf>,
    bytes: u64,
}

impl PacketBurst for VecBurst {
    type Pkt = VecBuf;
    fn len(&self) -> usize {
        self.pkts.len()
    }
    fn push(&mut self, p: VecBuf) -> Result<(), VecBuf> {
        if self.pkts.len() >= MAX_BURST {
            return Err(p);
        }
        self.bytes += p.pkt_len() as u64;
        self.pkts.push(p);
        Ok(())
    }
    fn pushed_bytes(&self) -> u64 {
        self.bytes
    }
    fn as_slice(&self) -> &[VecBuf] {
        &self.pkts
    }
    fn as_mut_slice(&mut self) -> &mut [VecBuf] {
        &mut self.pkts
    }
    fn drain(&mut self) -> impl Iterator<Item = VecBuf> + '_ {
        self.bytes = 0;
        self.pkts.drain(..)
    }
    fn free_all(&mut self) -> usize {
        let n = self.pkts.len();
        self.pkts.clear();
        self.bytes = 0;
        n
    }
    fn append(&mut self, from: &mut Self, bytes: u64) -> bool {
        if self.pkts.len() + from.pkts.len() > MAX_BURST {
            return false;
        }
        assert_eq!(
            bytes,
            from.pkts.iter().map(|p| p.pkt_len() as u64).sum::<u64>(),
            "the caller's byte count"
        );
        self.bytes += bytes;
        self.pkts.append(&mut from.pkts);
        from.bytes = 0;
        true
    }
}

/// Ports as in-memory queues: rx queues filled up front, tx queues that accept at most `tx_room` packets per
/// call (a slow reader), a clock that advances per call, and a stop flag raised once everything was received
/// and `idle_rounds` more rounds have passed.
struct MemPorts {
    rx: Vec<VecDeque<VecBuf>>,
    tx: Vec<Vec<VecBuf>>,
    tx_room: usize,
    /// Per port: overrides `tx_room` when set.
    tx_rooms: Vec<Option<usize>>,
    /// Tx calls that accept nothing (a reader that stalls), before it drains at `tx_room` per call.
    stall_calls: usize,
    clock: std::cell::Cell<u64>,
    stop: Arc<AtomicBool>,
    idle_rounds: usize,
}

impl MemPorts {
    fn new(rx: Vec<Vec<VecBuf>>, tx_room: usize, stop: Arc<AtomicBool>) -> Self {
        let n = rx.len();
        MemPorts {
            rx: rx.into_iter().map(VecDeque::from).collect(),
            tx: (0..n).map(|_| Vec::new()).collect(),
            tx_room,
            tx_rooms: vec![None; n],
            stall_calls: 0,
            clock: std::cell::Cell::new(1),
            stop,
            idle_rounds: 3,
        }
    }
}

impl PortIo for MemPorts {
    type Pkt = VecBuf;
    type Burst = VecBurst;
    fn nports(&self) -> usize {
        self.rx.len()
    }
    fn rx(&mut self, port: usize, into: &mut VecBurst, max: usize) -> usize {
        let q = &mut self.rx[port];
        let n = q.len().min(max);
        for p in q.drain(..n) {
            into.pkts.push(p);
        }
        if port == 0 && self.rx.iter().all(|q| q.is_empty()) {
            if self.idle_rounds == 0 {
                self.stop.store(true, Ordering::Relaxed);
            } else {
                self.idle_rounds -= 1;
            }
        }
        n
    }
    fn tx(&mut self, port: usize, from: &mut VecBurst) -> usize {
        if self.stall_calls > 0 {
            self.stall_calls -= 1;
            return 0;
        }
        let n = from
            .pkts
            .len()
            .min(self.tx_rooms[port].unwrap_or(self.tx_room));
        self.tx[port].extend(from.pkts.drain(..n));
        from.bytes = from.pkts.iter().map(|p| p.pkt_len() as u64).sum();
        n
    }
    fn now(&self) -> u64 {
        let t = self.clock.get() + 1000;
        self.clock.set(t);
        t
    }
}

fn setup(ports: usize, burst: usize, stop: Arc<AtomicBool>) -> WorkerSetup<VecBuf> {
    let _ = ports;
    WorkerSetup {
        index: 0,
        burst,
        idle_sleep_us: 0,
        tsc_hz: 1_000_000_000,
        stop,
        last_rx_tsc: Arc::new(AtomicU64::new(0)),
        channels: WorkerChannels {
            snapshots: Arc::new(ArrayQueue::new(4)),
            recycled: Arc::new(ArrayQueue::new(4)),
            inject: Arc::new(ArrayQueue::new(16)),
        },
        n_tunnels: 0,
        window_start_tsc: 0,
    }
}

fn frames(n: usize, tag: u8) -> Vec<VecBuf> {
    (0..n)
        .map(|i| {
            VecBuf::new(&[
                tag,
                (i >> 8) as u8,
                i as u8,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                8,
                0,
            ])
        })
        .collect()
}

fn total_drops(c: &Counters) -> u64 {
    c.drops.iter().sum()
}

#[test]
fn every_packet_is_sent_in_order_when_the_queues_keep_up() {
    let stop = Arc::new(AtomicBool::new(false));
    let mut io = MemPorts::new(
        vec![frames(100, 1), frames(70, 2)],
        usize::MAX,
        stop.clone(),
    );
    let (c, _, win) = run(setup(2, 32, stop), &mut io, CrossConnect);
    assert_eq!(c.ports[0].rx, 100);
    assert_eq!(c.ports[1].rx, 70);
    assert_eq!(c.ports[1].tx, 100, "port 0's packets leave port 1");
    assert_eq!(c.ports[0].tx, 70);
    assert_eq!(total_drops(&c), 0);
    assert_eq!(win.tx_pkts, 170);
    // In order, each byte accounted.
    let seq: Vec<u16> = io.tx[1]
        .iter()
        .map(|p| u16::from_be_bytes([p.data()[1], p.data()[2]]))
        .collect();
    assert_eq!(seq, (0..100).collect::<Vec<u16>>());
    assert_eq!(c.ports[1].tx_bytes, 100 * 14);
}

#[test]
fn a_slow_reader_makes_tx_full_drops_counted_and_the_loop_recovers() {
    let stop = Arc::new(AtomicBool::new(false));
    // Each tx call takes at most 8 of a 32-packet burst: the rest of every flush is refused, freed, counted.
    let mut io = MemPorts::new(vec![frames(256, 1), Vec::new()], 8, stop.clone());
    io.stall_calls = 3;
    let (c, _, _) = run(setup(2, 32, stop), &mut io, CrossConnect);
    let sent = io.tx[1].len() as u64;
    assert_eq!(c.ports[1].tx, sent);
    assert!(
        c.drops[DropReason::TxFull as usize] > 0,
        "refused packets are counted"
    );
    assert_eq!(
        c.ports[0].rx,
        sent + c.drops[DropReason::TxFull as usize],
        "rx = tx + drops"
    );
    assert_eq!(c.drops[DropReason::TxFull as usize], total_drops(&c));
    // The reader keeps up again after its stall: every burst after the stall sent its first 8.
    assert!(sent >= (256 / 32 - 3) as u64 * 8, "sent {sent}");
}

/// A processor that sends port 0's packets to port 1 but holds every third one, releasing it in the next
/// deferred poll: what is held is neither lost nor double counted.
#[derive(Default)]
struct HoldEveryThird {
    n: usize,
    held: Vec<VecBuf>,
}

impl Processor<VecBuf> for HoldEveryThird {
    fn process(&mut self, _pkt: &mut VecBuf, in_port: usize, _c: &mut Counters) -> Verdict {
        self.n += 1;
        if self.n.is_multiple_of(3) {
            Verdict::Hold(crate::HoldReason::Fragment)
        } else if self.n.is_multiple_of(7) {
            Verdict::Drop(DropReason::Truncated)
        } else {
            Verdict::Tx(in_port ^ 1)
        }
    }
    fn hold(&mut self, pkt: VecBuf, why: crate::HoldReason, _c: &mut Counters) {
        assert_eq!(why, crate::HoldReason::Fragment, "the reason comes back");
        self.held.push(pkt);
    }
    fn poll_deferred(
        &mut self,
        _now: u64,
        emit: &mut dyn FnMut(usize, VecBuf) -> bool,
        c: &mut Counters,
    ) {
        for p in self.held.drain(..) {
            if !emit(1, p) {
                c.drop_pkt(DropReason::TxFull);
            }
        }
    }
}

#[test]
fn held_packets_are_released_and_everything_is_accounted_for() {
    let stop = Arc::new(AtomicBool::new(false));
    let mut io = MemPorts::new(vec![frames(500, 1), Vec::new()], usize::MAX, stop.clone());
    let (c, _, _) = run(setup(2, 32, stop), &mut io, HoldEveryThird::default());
    let dropped = c.drops[DropReason::Truncated as usize];
    assert!(dropped > 0);
    assert_eq!(c.ports[0].rx, 500);
    assert_eq!(c.ports[1].tx + total_drops(&c), 500, "rx = tx + drops");
    assert_eq!(io.tx[1].len() as u64, c.ports[1].tx);
}

#[test]
fn what_the_queue_still_refuses_at_stop_is_freed_and_counted() {
    let stop = Arc::new(AtomicBool::new(false));
    // A queue that never takes anything: every packet ends as tx_full, in the loop or in the final drain.
    let mut io = MemPorts::new(vec![frames(40, 1), Vec::new()], 0, stop.clone());
    let (c, _, _) = run(setup(2, 32, stop), &mut io, CrossConnect);
    assert_eq!(c.ports[1].tx, 0);
    assert_eq!(c.drops[DropReason::TxFull as usize], 40);
    assert!(io.tx[1].is_empty());
}

/// Cross-connects ports 0 and 1 and mirrors like a `[[mirror]]`: port 0's received frames (entry 0) and port
/// 1's and port 2's sent frames (entry 1) are copied, each copy a marker byte and the frame, out of port 2.
/// Port 2 carries the copies, so its tx mirror must never see them (a copy of a copy).
struct MirrorTo;

const COPY_PORT: usize = 2;
const MARK_RX: u8 = 0xe0;
const MARK_TX: u8 = 0xe1;

impl Processor<VecBuf> for MirrorTo {
    fn process(&mut self, _pkt: &mut VecBuf, in_port: usize, _c: &mut Counters) -> Verdict {
        Verdict::Tx(in_port ^ 1)
    }
    fn mirror_ports(&self) -> (u64, u64) {
        (1 << 0, 1 << 1 | 1 << COPY_PORT)
    }
    fn mirror_count(&self) -> usize {
        2
    }
    fn mirror(
        &mut self,
        pkts: &[VecBuf],
        port: usize,
        dir: MirrorDir,
        emit: &mut dyn FnMut(MirrorCopy, VecBuf) -> bool,
        c: &mut Counters,
    ) {
        let (entry, mark) = match dir {
            MirrorDir::Rx => (0, MARK_RX),
            MirrorDir::Tx => (1, MARK_TX),
        };
        assert!(
            port != COPY_PORT
                || pkts
                    .iter()
                    .all(|p| p.data()[0] != MARK_RX && p.data()[0] != MARK_TX),
            "copies are never mirrored"
        );
        for (i, p) in pkts.iter().enumerate() {
            let mut b = vec![mark];
            b.extend_from_slice(p.data());
            let tag = MirrorCopy {
                out: COPY_PORT as u16,
                entry,
                orig: i as u16,
                bytes: p.pkt_len() as u32,
                truncated: false,
            };
            if !emit(tag, VecBuf::new(&b)) {
                c.mirrors[entry as usize].queue_full += 1;
            }
        }
    }
}

fn marked(io: &MemPorts, mark: u8) -> Vec<Vec<u8>> {
    io.tx[COPY_PORT]
        .iter()
        .filter(|p| p.data()[0] == mark)
        .map(|p| p.data()[1..].to_vec())
        .collect()
}

#[test]
fn mirror_copies_go_out_after_the_originals_and_are_never_mirrored_again() {
    let stop = Arc::new(AtomicBool::new(false));
    let rx0: Vec<Vec<u8>> = frames(100, 1).iter().map(|p| p.to_vec()).collect();
    let mut io = MemPorts::new(
        vec![frames(100, 1), frames(30, 2), Vec::new()],
        usize::MAX,
        stop.clone(),
    );
    let (c, _, _) = run(setup(3, 32, stop), &mut io, MirrorTo);
    // The originals: as without mirrors.
    assert_eq!((c.ports[0].rx, c.ports[1].tx), (100, 100));
    assert_eq!((c.ports[1].rx, c.ports[0].tx), (30, 30));
    assert_eq!(total_drops(&c), 0);
    assert_eq!(c.latency_samples, 130, "copies are not forwarded packets");
    // rx copies of port 0 in order, byte for byte; tx copies of what port 1 sent (the same frames).
    assert_eq!(marked(&io, MARK_RX), rx0);
    let sent1: Vec<Vec<u8>> = io.tx[1].iter().map(|p| p.to_vec()).collect();
    assert_eq!(marked(&io, MARK_TX), sent1);
    assert_eq!(io.tx[COPY_PORT].len(), 200);
    assert_eq!(c.ports[COPY_PORT].tx, 200, "the copies' port counts them");
    assert_eq!(c.ports[COPY_PORT].tx_bytes, 200 * 15);
    assert_eq!((c.mirrors[0].packets, c.mirrors[0].bytes), (100, 100 * 14));
    assert_eq!((c.mirrors[1].packets, c.mirrors[1].failures()), (100, 0));
}

#[test]
fn a_tx_mirror_copies_only_what_the_queue_took() {
    let stop = Arc::new(AtomicBool::new(false));
    let mut io = MemPorts::new(
        vec![frames(256, 1), Vec::new(), Vec::new()],
        usize::MAX,
        stop.clone(),
    );
    // Port 1 takes 8 of each 32-packet burst; the copies' port takes everything.
    io.tx_rooms[1] = Some(8);
    let (c, _, _) = run(setup(3, 32, stop), &mut io, MirrorTo);
    let sent = io.tx[1].len() as u64;
    assert_eq!(c.ports[1].tx, sent);
    assert_eq!(c.ports[0].rx, sent + c.drops[DropReason::TxFull as usize]);
    let sent1: Vec<Vec<u8>> = io.tx[1].iter().map(|p| p.to_vec()).collect();
    assert_eq!(
        marked(&io, MARK_TX),
        sent1,
        "the copies are exactly the frames sent"
    );
    assert_eq!(c.mirrors[1].packets, sent);
    assert_eq!(
        c.mirrors[1].tx_full,
        256 - sent,
        "refused originals: their copies are not sent"
    );
    // rx copies do not depend on the originals' fate.
    assert_eq!(c.mirrors[0].packets, 256);
}

#[test]
fn copies_the_queue_refuses_are_counted_per_mirror_and_the_originals_are_not_affected() {
    let stop = Arc::new(AtomicBool::new(false));
    let mut io = MemPorts::new(
        vec![frames(64, 1), Vec::new(), Vec::new()],
        usize::MAX,
        stop.clone(),
    );
    io.tx_rooms[COPY_PORT] = Some(0);
    let (c, _, _) = run(setup(3, 32, stop), &mut io, MirrorTo);
    assert_eq!((c.ports[0].rx, c.ports[1].tx), (64, 64));
    assert_eq!(total_drops(&c), 0, "copies are not the originals' drops");
    assert_eq!(c.ports[COPY_PORT].tx, 0);
    assert_eq!((c.mirrors[0].packets, c.mirrors[0].tx_full), (0, 64));
    assert_eq!((c.mirrors[1].packets, c.mirrors[1].tx_full), (0, 64));
}

/// A processor with a fast pass on port 0, as the gateway's: it finishes most packets itself (marks byte 3 with
/// `FAST` and plans port 1), plans a drop for every 50th and leaves every 64th to `process` (which marks it
/// `SLOW`); port 1 has no fast pass. The frame number is in bytes 1..3.
struct Planner {
    processed: Arc<AtomicU64>,
}

const FAST: u8 = 0xaa;
const SLOW: u8 = 0xbb;
/// Bytes the fast pass adds to each packet it sends.
const GROWN: usize = 2;

impl Processor<VecBuf> for Planner {
    fn process(&mut self, pkt: &mut VecBuf, in_port: usize, _c: &mut Counters) -> Verdict {
        self.processed.fetch_add(1, Ordering::Relaxed);
        pkt.data_mut()[3] = SLOW;
        Verdict::Tx(in_port ^ 1)
    }
    fn has_fast_pass(&self, in_port: usize) -> bool {
        in_port == 0
    }
    fn fast_burst(
        &mut self,
        pkts: &mut [VecBuf],
        _in_port: usize,
        codes: &mut [u16],
        _c: &mut Counters,
    ) -> Option<PassBytes> {
        let mut bytes = PassBytes::default();
        for (p, code) in pkts.iter_mut().zip(codes.iter_mut()) {
            let n = usize::from(u16::from_be_bytes([p.data()[1], p.data()[2]]));
            let rx_len = p.pkt_len();
            *code = if n % 64 == 63 {
                plan::SLOW
            } else if n % 50 == 49 {
                // (The worker counts a planned drop.)
                plan::drop(DropReason::Truncated)
            } else {
                // Rewritten and grown, as an encapsulation grows it: the worker must count the bytes the pass
                // gives, not the rewritten lengths.
                p.data_mut()[3] = FAST;
                p.append(GROWN).expect("tailroom");
                plan::tx(1)
            };
            if *code < plan::DROP {
                bytes.take(rx_len, p.pkt_len());
            } else if *code != plan::SLOW {
                bytes.rx += rx_len as u64;
            }
        }
        Some(bytes)
    }
}

/// Frame numbers and marks of what left `port`.
fn sent_marks(io: &MemPorts, port: usize) -> Vec<(usize, u8)> {
    io.tx[port]
        .iter()
        .map(|p| {
            let d = p.data();
            (usize::from(u16::from_be_bytes([d[1], d[2]])), d[3])
        })
        .collect()
}

#[test]
fn planned_bursts_go_out_whole_or_packet_by_packet_in_order_and_counted() {
    let stop = Arc::new(AtomicBool::new(false));
    // Bursts of 32: frames 0..32 all planned for port 1 (the whole-burst move); later bursts mix drops and
    // packets left to `process`.
    let mut io = MemPorts::new(vec![frames(256, 1), Vec::new()], usize::MAX, stop.clone());
    let processed = Arc::new(AtomicU64::new(0));
    let planner = Planner {
        processed: processed.clone(),
    };
    let (c, _, _) = run(setup(2, 32, stop), &mut io, planner);
    let dropped: Vec<usize> = (0..256).filter(|n| n % 64 != 63 && n % 50 == 49).collect();
    let expect: Vec<(usize, u8)> = (0..256)
        .filter(|n| !dropped.contains(n))
        .map(|n| (n, if n % 64 == 63 { SLOW } else { FAST }))
        .collect();
    assert_eq!(sent_marks(&io, 1), expect, "every packet once, in order");
    assert_eq!(
        processed.load(Ordering::Relaxed),
        4,
        "only the packets left go through process"
    );
    assert_eq!(c.ports[0].rx, 256);
    assert_eq!(c.ports[0].rx_bytes, 256 * 14);
    assert_eq!(c.ports[1].tx, expect.len() as u64);
    let fast = expect.iter().filter(|(_, m)| *m == FAST).count() as u64;
    assert_eq!(
        c.ports[1].tx_bytes,
        expect.len() as u64 * 14 + fast * GROWN as u64
    );
    assert_eq!(
        c.drops[DropReason::Truncated as usize],
        dropped.len() as u64
    );
    assert_eq!(total_drops(&c), dropped.len() as u64, "rx = tx + drops");
}

#[test]
fn a_planned_burst_moved_whole_onto_a_slow_reader_is_counted_like_any_other() {
    let stop = Arc::new(AtomicBool::new(false));
    // 63 frames in bursts of 32 (no frame 63: nothing left to `process`; frame 49 planned as a drop); a queue
    // that takes 8 per call: each flush sends 8 and counts the rest as tx_full.
    let mut io = MemPorts::new(vec![frames(63, 1), Vec::new()], 8, stop.clone());
    let processed = Arc::new(AtomicU64::new(0));
    let planner = Planner {
        processed: processed.clone(),
    };
    let (c, _, _) = run(setup(2, 32, stop), &mut io, planner);
    assert_eq!(processed.load(Ordering::Relaxed), 0);
    let sent = sent_marks(&io, 1);
    assert_eq!(
        sent,
        (0..8).chain(32..40).map(|n| (n, FAST)).collect::<Vec<_>>(),
        "the first 8 of each burst"
    );
    assert_eq!(c.ports[1].tx, 16);
    assert_eq!(c.ports[0].rx_bytes, 63 * 14);
    assert_eq!(c.ports[1].tx_bytes, 16 * (14 + GROWN as u64));
    assert_eq!(c.drops[DropReason::Truncated as usize], 1);
    assert_eq!(c.drops[DropReason::TxFull as usize], 63 - 16 - 1);
    assert_eq!(total_drops(&c), 63 - 16, "rx = tx + drops");
}

#[test]
fn tick_scale_gives_the_nanoseconds_of_the_float_conversion() {
    for tsc_hz in [
        1_000_000_000u64,
        2_100_000_000,
        2_399_999_999,
        3_000_000_000,
        4_700_000_000,
    ] {
        let scale = TickScale::new(tsc_hz);
        for ticks in [
            0u64,
            1,
            2,
            37,
            1_000,
            123_456,
            9_999_999,
            3_000_000_000,
            1 << 40,
        ] {
            let exact = ticks as f64 * 1e9 / tsc_hz as f64;
            let ns = scale.ns(ticks) as f64;
            // Truncated, and `mult`'s own truncation off by less than one part in 10^9 * 2^32 / tsc_hz.
            let bound = 1.0 + exact * tsc_hz as f64 / (1e9 * 4294967296.0);
            assert!(
                ns <= exact + 1e-6 && exact - ns < bound,
                "{tsc_hz} Hz, {ticks} ticks: {ns} against {exact}"
            );
        }
    }
    // A clock below 1 GHz: more nanoseconds than ticks, and no overflow at the top.
    let slow = TickScale::new(1_000_000);
    assert_eq!(slow.ns(3), 3_000);
    assert_eq!(slow.ns(u64::MAX), u64::MAX);
}
