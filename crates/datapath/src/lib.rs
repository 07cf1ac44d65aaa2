//! greway's datapath: what happens to each packet, with no DPDK, configuration or control-plane dependency.
//!
//! Every decision is made by a [`Processor`] written against [`PacketBuf`], so the rules run on plain byte
//! buffers in tests; the poll loop ([`worker::run`]) is generic over the ports' rx/tx ([`worker::PortIo`]).
//! The tunnel and route tables ([`tunnel`]) and the counters ([`stats`]) live here too. The binary crate
//! implements `PacketBuf` and `PortIo` on DPDK mbufs and queues, and builds the tables from the configuration.
pub mod bridge;
pub mod buf;
pub mod frag;
pub mod gateway;
pub mod pmtu;
pub mod reasm;
pub mod reorder;
pub mod stats;
pub mod tunnel;
pub mod worker;

pub use greway_wire as wire;

use crate::buf::PacketBuf;
use crate::stats::{Counters, DropReason};
pub use crate::tunnel::table::MirrorDir;

/// What to do with a packet after processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it out of port index `n` (index into the configured ports).
    Tx(usize),
    /// Drop it and count the reason.
    Drop(DropReason),
    /// The processor keeps it, for the reason given: the worker hands ownership over with
    /// [`Processor::hold`], passing the reason back.
    Hold(HoldReason),
}

impl Verdict {
    /// True for [`Verdict::Hold`], whatever the reason.
    pub fn is_hold(&self) -> bool {
        matches!(self, Verdict::Hold(_))
    }
}

/// Why a packet is held rather than sent or dropped.
///
/// A hold is decided and taken in the same poll round, on the same table generation: the worker passes the
/// reason straight back to [`Processor::hold`]. So a tunnel is named here by its index in that generation, and
/// everything is kept small enough for [`Verdict`] to come back in two registers (see the size check below).
/// Whatever outlives the round (a handoff ring entry, a packet waiting for its neighbour) is converted by
/// `hold` into a form that names its tunnel by run-unique id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldReason {
    /// A packet of a sequenced tunnel that another worker owns: only the owner numbers and sends that tunnel's
    /// packets (RFC 2890 order on the wire), so it goes over the owner's handoff ring.
    Handoff { owner: u16, tunnel: u32 },
    /// Waiting for a next hop's MAC (like the kernel's unresolved-neighbour queue).
    Neighbor(Waiting),
    /// A GRE packet of a reordering tunnel that arrived ahead of a gap (RFC 2890 2.2): buffered until the gap
    /// fills or its time is up.
    Reorder { tunnel: u32, seq: u32 },
    /// An outer IPv4 fragment, kept for reassembly.
    Fragment,
    /// A packet to one of our port addresses that greway does not answer itself: for the host interface of
    /// port index `port` (the kernel's exception path, see `gateway::HostIf`).
    PuntPort { port: u16 },
    /// A decapsulated packet to one of tunnel index `tunnel`'s own addresses that greway does not answer
    /// itself: for that tunnel's host interface.
    PuntTunnel { tunnel: u32 },
}

/// What a packet held for its neighbour waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// A finished packet for port `port` that only needs its next hop's MAC. The next hop is the route's for the
    /// packet's destination, in this generation: `hold` looks it up again rather than carrying 16 bytes here.
    L2 { port: u16 },
    /// An inner packet for tunnel index `tunnel` whose outer next hop is unresolved (encapsulated once it is).
    Encap { in_port: u16, tunnel: u32 },
}

// A verdict of at most 16 bytes is returned in two registers (x86-64 SysV, AArch64); a larger one goes through
// memory on every packet.
const _: () = assert!(std::mem::size_of::<Verdict>() <= 16);

/// A `[[mirror]]` copy as the processor hands it to the poll loop: where it goes and what it counts under. The
/// copy is a finished ERSPAN packet; the loop sends it after the burst's originals and never mirrors it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MirrorCopy {
    /// Egress port index.
    pub out: u16,
    /// The `[[mirror]]` entry's run-unique id (its counter slot in [`Counters::mirrors`]).
    pub entry: u32,
    /// Index of the original in the slice given to [`Processor::mirror`].
    pub orig: u16,
    /// The original frame's length (what `bytes` counts).
    pub bytes: u32,
    /// The copy was cut to the session's tunnel MTU (ERSPAN T bit).
    pub truncated: bool,
}

/// The bytes of the packets a fast pass took (every packet it planned as anything but [`plan::SLOW`]), summed
/// as it went: `rx` as they were received, `tx` as they leave (those planned for a port). The packets it left
/// are untouched: the worker counts them itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassBytes {
    pub rx: u64,
    pub tx: u64,
}

impl PassBytes {
    /// One more packet sent: `rx_len` bytes received, `tx_len` bytes after the rewrite.
    #[inline(always)]
    pub fn take(&mut self, rx_len: usize, tx_len: usize) {
        self.rx += rx_len as u64;
        self.tx += tx_len as u64;
    }
}

/// The outcome codes of [`Processor::fast_burst`]: an egress port index, a drop with its reason, or "not
/// decided" (the packet goes through [`Processor::process`]).
pub mod plan {
    use crate::stats::DropReason;
    /// Not decided by the fast pass: the packet is unchanged and goes to `process`.
    pub const SLOW: u16 = u16::MAX;
    /// Codes from this one up are drops (the low byte is the [`DropReason`]).
    pub const DROP: u16 = 0x8000;
    /// Sent out of port index `port`.
    #[inline(always)]
    pub fn tx(port: usize) -> u16 {
        debug_assert!(port < usize::from(DROP));
        port as u16
    }
    /// Dropped for `r`.
    #[inline(always)]
    pub fn drop(r: DropReason) -> u16 {
        DROP | r as u16
    }
    /// The verdict a code stands for (`SLOW`, which is none, is not passed here).
    #[inline(always)]
    pub fn verdict(code: u16) -> crate::Verdict {
        debug_assert_ne!(code, SLOW);
        if code < DROP {
            crate::Verdict::Tx(usize::from(code))
        } else {
            crate::Verdict::Drop(DropReason::ALL[usize::from(code & 0xff)])
        }
    }
    /// A fast path's verdict as a code. The fast paths only send or drop; a hold cannot be planned (it would
    /// need the packet itself), so it is counted as a drop if one ever came back (debug builds stop there).
    #[inline(always)]
    pub fn of(v: crate::Verdict) -> u16 {
        match v {
            crate::Verdict::Tx(p) => tx(p),
            crate::Verdict::Drop(r) => drop(r),
            crate::Verdict::Hold(_) => {
                debug_assert!(false, "a fast path held a packet");
                drop(DropReason::LocalUnhandled)
            }
        }
    }
}

/// Per-packet logic, generic over the buffer so it runs on mbufs and on `VecBuf`s.
pub trait Processor<B: PacketBuf>: Send {
    /// Called once per received burst, with the TSC of the rx call.
    fn begin_burst(&mut self, _now_tsc: u64) {}
    /// Called with each received burst before its packets are processed one by one: a chance to start the
    /// burst's table loads together (batched lookups, prefetching). Must not change any packet. When it is
    /// called, `process` must next be called once for each of these packets, in this order (the processor
    /// may hand each packet a result staged here); without it, `process` works alone.
    fn prepare_burst(&mut self, _pkts: &[B], _in_port: usize, _counters: &Counters) {}
    /// Whether bursts from port index `in_port` go through [`Processor::fast_burst`] (asked once per burst,
    /// before it).
    fn has_fast_pass(&self, _in_port: usize) -> bool {
        false
    }
    /// The fast pass over a whole burst received on port index `in_port`, before its packets are taken one by
    /// one (VPP-style: each stage runs over the burst). The processor finishes every packet its fast paths take,
    /// rewriting it in place, and notes the outcome in `plan[i]` ([`plan::tx`], [`plan::drop`]); a packet it
    /// leaves untouched gets [`plan::SLOW`], and the worker hands it to `process` in order. Returns the bytes
    /// of the packets it took ([`PassBytes`]: the worker counts the port's rx and tx bytes from them, as the
    /// rewritten packets no longer show what came in), or `None` when it planned nothing (the worker then
    /// calls `prepare_burst` and `process` for every packet). Called only when [`Processor::has_fast_pass`]
    /// says so.
    /// `plan.len() == pkts.len()`.
    fn fast_burst(
        &mut self,
        _pkts: &mut [B],
        _in_port: usize,
        _plan: &mut [u16],
        _counters: &mut Counters,
    ) -> Option<PassBytes> {
        None
    }
    /// Decide the fate of one packet received on port index `in_port`, rewriting it in place.
    fn process(&mut self, pkt: &mut B, in_port: usize, counters: &mut Counters) -> Verdict;
    /// Take ownership of a packet `process` returned [`Verdict::Hold`] for, with the reason it gave.
    fn hold(&mut self, pkt: B, why: HoldReason, counters: &mut Counters) {
        let _ = (pkt, why);
        counters.drop_pkt(DropReason::LocalUnhandled);
    }
    /// Release deferred packets (handoffs, reorder timeouts): `emit(port, pkt)` queues one for tx and returns
    /// false if it could not (the packet is then already dropped and must be counted by the caller of emit).
    fn poll_deferred(
        &mut self,
        _now_tsc: u64,
        _emit: &mut dyn FnMut(usize, B) -> bool,
        _counters: &mut Counters,
    ) {
    }
    /// Run-unique ids of the tunnels of the table in use (index order), when the processor has tunnels: the
    /// worker re-lays out its per-tunnel counters when this changes ([`Counters::relayout`]).
    fn tunnel_ids(&self) -> Option<&std::sync::Arc<[u64]>> {
        None
    }
    /// The worker is stopping: free or count whatever is held.
    fn finish(&mut self, _counters: &mut Counters) {}
    /// The ports whose frames `[[mirror]]` sessions copy, as bit masks by port index: (received, sent). Read
    /// once per poll round, after [`Processor::begin_burst`]; (0, 0) keeps the loop on its mirror-free code.
    fn mirror_ports(&self) -> (u64, u64) {
        (0, 0)
    }
    /// Number of `[[mirror]]` entries (the worker's mirror counter slots).
    fn mirror_count(&self) -> usize {
        0
    }
    /// Copy every packet of `pkts` (received on, or about to be sent out of, port index `port`) into each
    /// ERSPAN session that mirrors that port and direction, and hand each finished copy to `emit`, which
    /// returns false when it could not take it (the copy is then already freed; the processor counts it as
    /// `queue_full`). Copies that cannot be made are counted by reason here. `pkts` are not changed.
    fn mirror(
        &mut self,
        _pkts: &[B],
        _port: usize,
        _dir: MirrorDir,
        _emit: &mut dyn FnMut(MirrorCopy, B) -> bool,
        _counters: &mut Counters,
    ) {
    }
}

/// `mode = "forward"`: a plain cross-connect between two ports (port 0 <-> port 1), like testpmd's io mode. The
/// baseline for benchmarks and the foundation's end-to-end test.
#[derive(Clone, Copy, Debug, Default)]
pub struct CrossConnect;

impl<B: PacketBuf> Processor<B> for CrossConnect {
    #[inline(always)]
    fn process(&mut self, _pkt: &mut B, in_port: usize, _c: &mut Counters) -> Verdict {
        Verdict::Tx(in_port ^ 1)
    }
}
