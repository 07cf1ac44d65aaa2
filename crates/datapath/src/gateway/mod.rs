//! The GRE gateway: every rule a tunnel gateway applies to a packet, on any [`PacketBuf`].
//!
//! Inside port, IPv4/IPv6 to a tunnel route -> encapsulate in place (RFC 2784/2890 header, outer IPv4 or IPv6
//! per RFC 7676, TTL/TOS fixed or inherited, ECN by RFC 6040 normal mode, DF copied) and send out of the
//! tunnel's port. Outside port, GRE to one of our addresses -> receiver rules, tunnel match on (local, remote,
//! key), checksum and sequence checks, RFC 6040 decapsulation, TTL decrement, and routing to the inside.
//! ARP / ND for our addresses, ICMP echo to our addresses, ICMP errors (fragmentation needed / packet too big /
//! time exceeded, token-bucket limited) and Cisco keepalives are answered in place: no allocation per packet.
//! Every packet ends as a [`Verdict::Tx`] or a [`Verdict::Drop`] with its reason.
mod bridge;
mod burst;
mod decap;
mod deferred;
mod dispatch;
mod encap;
mod fast;
mod icmp_error;
mod inner;
mod local;
mod mirror;
mod punt;

pub use local::LocalIngress;

use super::{HoldReason, PassBytes, Processor, Verdict, Waiting};
use crate::buf::PacketBuf;
use crate::plan;
use crate::stats::{Counters, DropReason};
use crate::tunnel::table::{Neighbor, PortRole, Tables, Tunnel, TunnelRef, MAX_ENCAP_HEADER};
use arc_swap::ArcSwap;
use crossbeam::queue::ArrayQueue;
use greway_wire::checksum;
use greway_wire::ethernet::{self, ethertype};
use greway_wire::gre::{self, GreError};
use greway_wire::ip::{ecn, protocol};
use greway_wire::{ipv4, ipv6};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Control-plane work a worker asks the control thread to do (it never blocks on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A neighbour's MAC was seen (ARP request/reply, ND solicitation/advertisement).
    Neighbor {
        port: usize,
        ip: IpAddr,
        mac: [u8; 6],
    },
    /// A packet needed this next hop and its MAC is unknown: resolve it.
    Resolve { port: usize, ip: IpAddr },
}

/// What a packet in the neighbour queue waits for, named so that it survives table changes (the queue outlives
/// the generation the packet was held in).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Held {
    /// A finished packet for port `port`: its Ethernet header is written once `nh`'s MAC is known.
    L2 { port: usize, nh: IpAddr },
    /// An inner packet for `tunnel`, encapsulated once the tunnel's outer next hop is resolved.
    Encap { in_port: usize, tunnel: TunnelRef },
}

/// What a packet on a handoff ring is for: the tunnel (by run-unique id, so a runtime change in flight can
/// only make it `unknown_tunnel`, never another tunnel's) and whether it is one of the control plane's
/// keepalives (sent even while the tunnel is down) rather than data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handoff {
    pub tunnel: TunnelRef,
    pub keepalive: bool,
}

/// A host interface (the kernel's exception path, owned by the control thread), named so that it survives table
/// generations: a port by index (ports never change at run time), a tunnel by run-unique id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostIf {
    Port(u16),
    Tunnel(u64),
}

/// Packets between the workers and the host interfaces, per worker: `punt` carries what a worker hands to the
/// kernel (worker -> control thread), `from_host` what the kernel sent out of a host interface (control thread
/// -> worker). Both are bounded: a full ring drops and counts.
pub type HostRing<B> = Arc<ArrayQueue<(HostIf, B)>>;

/// Packets per ring between a worker and the control thread's host interfaces, each way.
pub const HOST_RING: usize = 1024;

/// Packets from the kernel a worker takes from its `from_host` ring per poll round.
pub const FROM_HOST_PER_ROUND: usize = 64;

/// The worker that owns a sequenced tunnel (numbers and sends its packets): by run-unique id, so ownership
/// does not move when other tunnels are added or removed.
#[inline]
pub fn owner_of(tunnel_id: u64, nworkers: usize) -> usize {
    (tunnel_id % nworkers.max(1) as u64) as usize
}

/// The published tables ([`Shared::tables`]): the table in an `ArcSwap`, and its generation beside it. A worker
/// compares the generation each poll round (one atomic load) and loads the table only when it changed: the
/// `ArcSwap` load with its thread-local bookkeeping took about 60 instructions a round (1.8 per packet at
/// 32-packet bursts).
pub struct TableCell {
    cell: ArcSwap<Tables>,
    generation: AtomicU64,
}

impl TableCell {
    pub fn new(tables: Tables) -> Self {
        let generation = AtomicU64::new(tables.generation);
        TableCell {
            cell: ArcSwap::from_pointee(tables),
            generation,
        }
    }

    /// Publishes `tables`: the table first, then its generation, so that a worker that sees the generation
    /// loads this table (or a later one).
    pub fn store(&self, tables: Arc<Tables>) {
        let g = tables.generation;
        self.cell.store(tables);
        self.generation.store(g, Ordering::Release);
    }

    /// The table published last.
    pub fn load(&self) -> arc_swap::Guard<Arc<Tables>> {
        self.cell.load()
    }

    /// The table published last, as an `Arc` of its own.
    pub fn load_full(&self) -> Arc<Tables> {
        self.cell.load_full()
    }

    /// The generation of the table published last.
    #[inline(always)]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// What all workers share: the published tables, the event ring to the control thread, and one handoff ring
/// per worker for packets of sequenced tunnels that worker owns.
pub struct Shared<B> {
    pub tables: Arc<TableCell>,
    pub events: Arc<ArrayQueue<Event>>,
    pub handoff: Vec<Arc<ArrayQueue<(Handoff, B)>>>,
    /// Per worker: packets for the host interfaces (worker -> control thread).
    pub punt: Vec<HostRing<B>>,
    /// Per worker: packets the kernel sent out of a host interface (control thread -> worker).
    pub from_host: Vec<HostRing<B>>,
}

impl<B> Clone for Shared<B> {
    fn clone(&self) -> Self {
        Shared {
            tables: self.tables.clone(),
            events: self.events.clone(),
            handoff: self.handoff.clone(),
            punt: self.punt.clone(),
            from_host: self.from_host.clone(),
        }
    }
}

impl<B> Shared<B> {
    /// Shared state for `workers` workers around an initial table.
    pub fn new(tables: Tables, workers: usize) -> Self {
        Shared {
            tables: Arc::new(TableCell::new(tables)),
            events: Arc::new(ArrayQueue::new(4096)),
            handoff: (0..workers)
                .map(|_| Arc::new(ArrayQueue::new(4096)))
                .collect(),
            punt: (0..workers)
                .map(|_| Arc::new(ArrayQueue::new(HOST_RING)))
                .collect(),
            from_host: (0..workers)
                .map(|_| Arc::new(ArrayQueue::new(HOST_RING)))
                .collect(),
        }
    }
}

/// ARP replies / neighbour advertisements per second and burst, per worker.
pub const REPLY_RATE_PER_S: f64 = 10_000.0;
pub const REPLY_BURST: f64 = 1_000.0;

/// A token bucket in TSC ticks: `rate` tokens per second, at most `burst` saved.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    tokens: f64,
    burst: f64,
    per_tick: f64,
    last: u64,
}

impl TokenBucket {
    pub fn new(rate_per_s: f64, burst: f64, tsc_hz: u64) -> Self {
        TokenBucket {
            tokens: burst,
            burst,
            per_tick: rate_per_s / tsc_hz.max(1) as f64,
            last: 0,
        }
    }
    /// Take a token at time `now` (TSC); false when empty.
    pub fn take(&mut self, now: u64) -> bool {
        if self.last != 0 {
            self.tokens = (self.tokens + now.saturating_sub(self.last) as f64 * self.per_tick)
                .min(self.burst);
        }
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The punt limiter for `pps` packets per second: a burst of a tenth of a second (at least one packet), so that
/// no second lets more than 1.1 × `pps` through.
pub fn punt_bucket(pps: u32, tsc_hz: u64) -> TokenBucket {
    let rate = f64::from(pps);
    TokenBucket::new(rate, (rate / 10.0).max(1.0), tsc_hz)
}

/// Per-worker gateway: the table generation it reads plus its private state. One per worker thread.
pub struct Gateway<B> {
    tables: Arc<Tables>,
    w: Worker<B>,
    /// The burst fast pass's stage 1 results (a tunnel index per packet; see `burst.rs`), apart from the
    /// worker so that stage 3 reads them while it changes the worker, and kept so that no burst clears one.
    pass_staged: Box<[u32; STAGE_MAX]>,
}

/// The mutable per-worker part, kept apart from the tables so the hot path borrows both without cloning.
struct Worker<B> {
    worker: usize,
    nworkers: usize,
    shared: Shared<B>,
    ip_ident: u16,
    icmp_limit: TokenBucket,
    /// ARP replies and neighbour advertisements: a request costs its sender as much as our reply, but a
    /// flood must not turn the gateway into a reflector at line rate.
    reply_limit: TokenBucket,
    /// Packets toward the host interfaces: at most `Tables::punt_pps` per second to each host interface (keyed
    /// by port index, or by tunnel id), so that a flood toward one (a port's address) does not starve the
    /// control protocols of another (BGP and BFD over a tunnel). Emptied when the rate changes.
    punt_limits: crate::tunnel::table::FxMap<crate::gateway::HostIf, TokenBucket>,
    punt_rate: u32,
    now: u64,
    tsc_hz: u64,
    /// Packets waiting for a next hop's MAC (at most [`HOLD_MAX`], each for at most [`HOLD_MS`]): (deadline TSC,
    /// what it waits for, packet). Released by `poll_deferred` once the neighbour is in the tables.
    held: VecDeque<(u64, Held, B)>,
    /// Extra packets a rule produced (fragments, flooded copies) waiting for the worker's next deferred flush.
    /// Flooding adds to it only below [`DEFERRED_CAP`] (its capacity, allocated once).
    deferred: Vec<(usize, B)>,
    /// The MAC tables' clock in seconds, and the TSC at which it next moves on (see `bridge_clock`).
    clock_s: u32,
    clock_next_tsc: u64,
    /// RFC 2890 reordering buffers, by tunnel index of the table in use (moved by tunnel id when a new table
    /// generation is picked up).
    reorder: Vec<crate::reorder::ReorderBuf<B>>,
    /// Outer IPv4 reassembly table.
    reasm: crate::reasm::Reassembler<B>,
    /// Packets held in all reordering buffers (so an idle poll round need not look at them).
    reorder_held: usize,
    /// Last-tunnel cache of the decap match (traffic comes in trains per tunnel): the key and its tunnel. Valid
    /// for the table generation it was filled from; cleared when the worker picks up a new one.
    last_decap: Option<(crate::tunnel::table::DecapKey, u32)>,
    /// Last next hop resolved by `l2_rewrite` and its MAC (same validity).
    last_neighbor: Option<(IpAddr, [u8; 6])>,
    /// The IPv4 fast paths' decap match cache ([`Decap4Match`]): the last match's outer header and what it
    /// gave (same validity as `last_decap`). [`Decap4Match::EMPTY`] when empty.
    last_decap4: Decap4Match,
    /// The same for the IPv6 fast path ([`Decap6Match`]). [`Decap6Match::EMPTY`] when empty.
    last_decap6: Decap6Match,
    /// The TEB way's tunnel match over IPv4 ([`Worker::fast_teb`]): source and destination as they lie in the
    /// header, the key word ([`key_word`]), and the tunnel index they gave; [`TEB4_EMPTY`] when empty (same
    /// validity as `last_decap`).
    last_teb4: (u64, u64, u32),
    /// The bytes of the packets the fast paths finished, as received and as sent: set to zero when a fast pass
    /// starts and returned when it ends ([`Processor::fast_burst`]). The fast paths add to them as they finish a
    /// packet (where both lengths are in registers); outside a pass nothing reads them.
    pass_bytes: PassSums,
    /// The decap fast paths' next hops by inner destination (direct-mapped caches, [`Hop::slot`]): what the
    /// route lookup, the tunnel-route check, the egress port's role and the neighbour gave for that destination
    /// (same validity as `last_decap`: cleared when the worker picks up a new table, so a route or neighbour
    /// change is seen at once).
    hops4: Box<[Hop<u32>; HOPS]>,
    hops6: Box<[Hop<[u64; 2]>; HOPS]>,
    /// Whether the one-pass fast paths run (they only ever accept packets the general rules treat the same
    /// way; off in the equivalence test, which compares both).
    fast_path: bool,
    /// The encapsulation fast path's first stage, run over a whole inside burst by `prepare_burst`: each
    /// packet's encap-route lookup on its IPv4 destination (`NO_TUNNEL`: none, or not IPv4). `process` takes
    /// them in order (`staged_next` of `staged_len`). In a short loop of its own the lookups of a burst
    /// overlap; inside the per-packet code each waited on the one chain of loads before it (mbuf -> data ->
    /// table -> tunnel), measured 12 cycles/packet.
    staged_ti: Box<[u32; STAGE_MAX]>,
    staged_len: usize,
    staged_next: usize,
    /// IPv4 identification of the mirror copies (apart from `ip_ident`, so that mirroring changes no
    /// original).
    mirror_ident: u16,
    /// ERSPAN type III timestamps: (TSC, Unix time in 100 µs units) read together once (see `mirror`).
    wall_anchor: Option<(u64, u64)>,
    /// Packets the fast paths took (tests only: the hot path carries no extra counter).
    #[cfg(feature = "testkit")]
    fast_hits: u64,
}

/// The decap fast paths' header cache. Packets come in trains per tunnel, and a tunnel's packets differ in their
/// outer headers only in a few fields: IPv4's total length, identification, TTL and checksum; IPv6's flow label,
/// payload length and hop limit. So the cache keeps `N` words of the last frame the match accepted (from its
/// EtherType or before, through the GRE key) with those fields masked out, and what the match gave. A frame
/// whose words are the same under the mask passes every check the match made of that frame (EtherType, version,
/// header length, protocol GRE, not a fragment, no CE mark, the GRE flags, version and protocol, one of our
/// addresses), to the same tunnel: only its length (and IPv4's header checksum) is left to check. That is one
/// masked compare, which the compiler does in vector registers, against some forty instructions of field checks
/// and the match's tunnel cache compare.
#[derive(Clone, Copy, Debug)]
struct HeaderCache<const N: usize> {
    /// The accepted frame's words under `mask`, as they lie in memory.
    words: [u64; N],
    /// The bytes that must be equal (see above; the four bytes after the GRE base header only when they are
    /// its key).
    mask: [u64; N],
    /// The frame's length less its IP length field when filled (`ethernet::HEADER_LEN`, and IPv6's fixed
    /// header). Empty, it is larger than any frame: the frames that match the empty header (all zero under the
    /// mask, EtherType 0 included) fail without a test of their own.
    len_bias: usize,
    /// What the match gave: tunnel index (maybe with [`DECAP_FAST`]), GRE protocol, offset of the inner packet.
    ti: u32,
    proto: u16,
    /// (One byte: the compiler then knows the inner header's end does not overflow.)
    off: u8,
}

impl<const N: usize> HeaderCache<N> {
    const EMPTY: Self = HeaderCache {
        words: [0; N],
        mask: [u64::MAX; N],
        len_bias: usize::MAX / 2,
        ti: 0,
        proto: 0,
        off: 0,
    };

    /// The `N` words of `h` from byte `at`, as they lie in memory (no byte swap: compared, never read).
    #[inline(always)]
    fn words_of<const L: usize>(h: &[u8; L], at: usize) -> [u64; N] {
        std::array::from_fn(|i| {
            let b = at + 8 * i;
            u64::from_ne_bytes(h[b..b + 8].try_into().expect("constant length"))
        })
    }

    /// Whether `w` (the words of a frame) are the cached header under the mask.
    #[inline(always)]
    fn matches(&self, w: &[u64; N]) -> bool {
        (0..N).fold(0, |acc, i| acc | (w[i] ^ self.words[i]) & self.mask[i]) == 0
    }

    /// Filled from an accepted frame's words `w`, under `mask` (`off` is below 256: the GRE header ends within
    /// the cache's words).
    #[inline(always)]
    fn fill(
        &mut self,
        w: &[u64; N],
        mask: [u64; N],
        len_bias: usize,
        ti: u32,
        proto: u16,
        off: usize,
    ) {
        *self = HeaderCache {
            words: std::array::from_fn(|i| w[i] & mask[i]),
            mask,
            len_bias,
            ti,
            proto,
            off: u8::try_from(off).unwrap_or(u8::MAX),
        };
    }
}

/// A mask of `N` words from the bytes `b` (`0xff`: compared, `0`: not, else the bits of the byte compared).
const fn mask_words<const N: usize>(b: &[u8]) -> [u64; N] {
    let mut w = [0u64; N];
    let mut i = 0;
    while i < N {
        let mut k = 0;
        let mut bytes = [0u8; 8];
        while k < 8 {
            bytes[k] = b[8 * i + k];
            k += 1;
        }
        w[i] = u64::from_ne_bytes(bytes);
        i += 1;
    }
    w
}

/// `bytes` with the bytes at `out` (and those in `out_range`) cleared.
const fn clear_bytes<const L: usize>(
    mut bytes: [u8; L],
    out: &[usize],
    out_range: (usize, usize),
) -> [u8; L] {
    let mut i = 0;
    while i < out.len() {
        bytes[out[i]] = 0;
        i += 1;
    }
    let mut k = out_range.0;
    while k < out_range.1 {
        bytes[k] = 0;
        k += 1;
    }
    bytes
}

/// A decap fast path's match cache: the header cache of `N` words, and behind it the match's own tunnel cache
/// (`addrs`, `kw`): a frame of the same tunnel whose other fields differ (its DSCP, ECN or DF) is matched without
/// a table lookup, and refills the header.
#[derive(Clone, Copy, Debug)]
struct DecapMatch<const N: usize, A> {
    hdr: HeaderCache<N>,
    /// The tunnel cache: outer source and destination as they lie in the header (`A`: one word for IPv4, four
    /// for IPv6) and the [`key_word`] of the last table lookup, and its tunnel index. The key word of the empty
    /// cache (all ones) matches no packet's (33 bits at most).
    addrs: A,
    kw: u64,
    addrs_ti: u32,
}

/// The IPv4 decap fast path's match cache ([`Worker::last_decap4`]): the header cache of the frame's bytes 12
/// to 43 (EtherType, IPv4 header, GRE base header, key, two bytes after; a frame the fast path takes has at
/// least [`DECAP4_PREFIX`]).
type Decap4Match = DecapMatch<4, u64>;

impl Decap4Match {
    /// The first byte the header cache looks at: the EtherType's.
    const AT: usize = ethernet::HEADER_LEN - 2;
    const EMPTY: Decap4Match = DecapMatch {
        hdr: HeaderCache::EMPTY,
        addrs: 0,
        kw: u64::MAX,
        addrs_ti: 0,
    };

    /// The header cache's mask with a GRE key (`keyed`) or without. Per byte from 12: EtherType (2),
    /// version/IHL, DSCP/ECN kept; total length, identification out; flags and fragment offset kept; TTL out,
    /// protocol kept; checksum out; source, destination, GRE base header kept; key kept when there is one; the
    /// two bytes after out.
    #[inline(always)]
    fn mask(keyed: bool) -> [u64; 4] {
        const OUT: [usize; 9] = [4, 5, 6, 7, 10, 12, 13, 30, 31];
        const KEYED: [u64; 4] = mask_words(&clear_bytes([0xff; 32], &OUT, (0, 0)));
        const PLAIN: [u64; 4] = mask_words(&clear_bytes([0xff; 32], &OUT, (26, 30)));
        if keyed {
            KEYED
        } else {
            PLAIN
        }
    }
}

/// The IPv6 decap fast path's match cache ([`Worker::last_decap6`]): the header cache of the frame's bytes 6 to
/// 61 (the source MAC's last six, EtherType, IPv6 header, GRE base header, key; a frame the cache looks at has
/// at least [`DECAP6_PREFIX`]).
type Decap6Match = DecapMatch<7, [u64; 4]>;

impl Decap6Match {
    /// The first byte the header cache looks at (six before the EtherType: seven whole words to the key's end).
    const AT: usize = ethernet::HEADER_LEN - 8;
    const EMPTY: Decap6Match = DecapMatch {
        hdr: HeaderCache::EMPTY,
        addrs: [0; 4],
        kw: u64::MAX,
        addrs_ti: 0,
    };

    /// The header cache's mask. Per byte from 6: the source MAC out (6); EtherType (2), version and traffic
    /// class (ECN included) kept; flow label, payload length out; next header kept, hop limit out; source,
    /// destination, GRE base header kept; key kept when there is one.
    #[inline(always)]
    fn mask(keyed: bool) -> [u64; 7] {
        const fn bytes(keyed: bool) -> [u8; 56] {
            let mut b = clear_bytes(
                [0xff; 56],
                &[0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 15],
                if keyed { (0, 0) } else { (52, 56) },
            );
            // The traffic class's low four bits and the flow label's high four share a byte.
            b[9] = 0xf0;
            b
        }
        const KEYED: [u64; 7] = mask_words(&bytes(true));
        const PLAIN: [u64; 7] = mask_words(&bytes(false));
        if keyed {
            KEYED
        } else {
            PLAIN
        }
    }
}

/// A GRE key as the decap match caches keep it: the key's four bytes as they lie in the packet (one load, no
/// byte swap) with a presence bit above them (33 bits at most, so the empty caches' all-ones word matches
/// none).
#[inline(always)]
fn key_word(key: Option<[u8; 4]>) -> u64 {
    key.map_or(0, |k| 1 << 32 | u64::from(u32::from_ne_bytes(k)))
}

/// The words an IPv4 decap match cache keeps of the outer header: source and destination as they lie in the
/// header (one 8-byte load).
#[inline(always)]
fn addr_word4(ip: &ipv4::Header<'_>) -> u64 {
    u64::from(u32::from_ne_bytes(ip.src())) | u64::from(u32::from_ne_bytes(ip.dst())) << 32
}

/// The GRE key of a [`key_word`] (for the table lookup on a cache miss).
#[inline]
fn key_of_word(kw: u64) -> Option<u32> {
    (kw >> 32 != 0).then(|| u32::from_be_bytes((kw as u32).to_ne_bytes()))
}

/// Set in a decap match cache's tunnel index when the tunnel has no setting the decap fast paths must look at
/// (`fast::DECAP`, decided when the table was built): a hit then skips the tunnel's checks. Tunnel indices
/// are far below it (a tunnel takes hundreds of bytes).
const DECAP_FAST: u32 = 1 << 31;

/// [`Worker::pass_bytes`]: [`PassBytes`] with its two sums 16 bytes apart. Side by side, the compiler packs
/// the two adds of a packet into one vector add, whose operands take more instructions than the two adds (4
/// per packet, measured on `encap-64`: 212.5 to 208.5).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
struct PassSums {
    rx: u64,
    _apart: u64,
    tx: u64,
}

/// What a decap fast path planned for a packet it took: its [`plan`] code, kept inverted so that no code it
/// returns (never `plan::SLOW`) is zero and `Option<Planned>` is one `u16` (`None`, a packet declined, reads
/// as `plan::SLOW`). Through the fast paths' chain of checks the compiler then carries one register, not a
/// flag and a value it merges at the end (2 instructions per packet on `decap-64`: 216.9 to 214.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Planned(std::num::NonZeroU16);

impl Planned {
    /// Sent out of port index `port`.
    #[inline(always)]
    fn tx(port: usize) -> Option<Planned> {
        std::num::NonZeroU16::new(!plan::tx(port)).map(Planned)
    }

    /// The code of a fast path's outcome: `plan::SLOW` for a declined packet.
    #[inline(always)]
    fn code(p: Option<Planned>) -> u16 {
        p.map_or(plan::SLOW, |p| !p.0.get())
    }
}

/// An empty [`Worker::last_teb4`]: its all-ones key word matches no frame's ([`key_word`]).
const TEB4_EMPTY: (u64, u64, u32) = (0, u64::MAX, u32::MAX);

/// Slots of [`Worker::hops4`] and of [`Worker::hops6`].
const HOPS: usize = 64;

/// Where a decap fast path sends a decapsulated packet to inner destination `dst` (IPv4: the address; IPv6: its
/// two halves as they lie in memory): out of port `port` (an inside port) with Ethernet header `eth` (the
/// neighbour's MAC, the port's, the EtherType). An empty slot has a multicast `dst` (all ones), which the fast
/// paths never look up (they decline multicast before).
#[derive(Clone, Copy, Debug)]
pub(super) struct Hop<K> {
    dst: K,
    port: u16,
    eth: [u8; ethernet::HEADER_LEN],
}

impl<K: Copy> Hop<K> {
    /// The hop to `dst` out of port `port` (whose MAC is `src`) toward neighbour MAC `mac`.
    fn new(dst: K, port: usize, mac: [u8; 6], src: [u8; 6], et: u16) -> Option<Self> {
        let mut eth = [0; ethernet::HEADER_LEN];
        let mut h = ethernet::HeaderMut::new(&mut eth);
        h.set_dst(mac);
        h.set_src(src);
        h.set_ethertype(et);
        Some(Hop {
            dst,
            port: u16::try_from(port).ok()?,
            eth,
        })
    }
}

impl Hop<u32> {
    const EMPTY: Self = Hop {
        dst: u32::MAX,
        port: 0,
        eth: [0; ethernet::HEADER_LEN],
    };
    /// The slot of `dst` (multiplicative hashing: the top 6 bits of a 32-bit product).
    #[inline(always)]
    fn slot(dst: u32) -> usize {
        const _: () = assert!(HOPS == 1 << 6);
        (dst.wrapping_mul(0x9e37_79b9) >> 26) as usize
    }
}

impl Hop<[u64; 2]> {
    const EMPTY: Self = Hop {
        dst: [u64::MAX; 2],
        port: 0,
        eth: [0; ethernet::HEADER_LEN],
    };
    /// The slot of `dst` (the halves folded, then as for IPv4 in 64 bits).
    #[inline(always)]
    fn slot(dst: [u64; 2]) -> usize {
        ((dst[0] ^ dst[1]).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize
    }
}

/// The largest burst whose encap lookups are staged (the worker's `MAX_BURST`); a larger one is not staged.
const STAGE_MAX: usize = 256;
const _: () = assert!(STAGE_MAX.is_power_of_two());
/// A staged lookup that found no tunnel (or a packet that is not IP).
const NO_TUNNEL: u32 = u32::MAX;
/// No staged lookup for this packet (the fast path looks the route up itself). Tunnel indices stay below it.
const NOT_STAGED: u32 = u32::MAX - 1;

/// Room in a worker's deferred queue, allocated once: the copies one poll round's flooding may add.
const DEFERRED_CAP: usize = 1024;

/// At most this many fragments per packet (a 9000-byte jumbo into a 576-byte MTU needs 17).
const MAX_FRAGMENTS: usize = 32;

/// Packets a worker holds while their next hop is being resolved (beyond that they are dropped as
/// `no_neighbor`), like the kernel's unresolved-neighbour queue: the first packet to a new host is not lost.
pub const HOLD_MAX: usize = 64;
/// How long a held packet waits for its neighbour before it is dropped as `no_neighbor`.
pub const HOLD_MS: u64 = 1000;

/// An Ethernet header and the IPv4 header after it (20 bytes: options, if any, follow them).
const ETH_IPV4: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
/// An Ethernet header and the IPv6 fixed header after it.
const ETH_IPV6: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN;

/// The shortest frame the IPv4 decap fast path takes: Ethernet, IPv4, GRE base header, key, inner IPv4 header.
const DECAP4_PREFIX: usize = ETH_IPV4 + gre::BASE_HEADER_LEN + 4 + ipv4::HEADER_LEN;

/// The shortest frame the IPv6 decap fast path's header cache looks at: Ethernet, IPv6, GRE base header, key.
/// (Every frame the path takes is longer: an inner header follows.)
const DECAP6_PREFIX: usize = ETH_IPV6 + gre::BASE_HEADER_LEN + 4;

/// The first `N` bytes of frame `d` as an array, or None when it is shorter: the one length check the header
/// views after it need.
#[inline(always)]
fn frame_prefix<const N: usize>(d: &[u8]) -> Option<&[u8; N]> {
    d.get(..N)?.try_into().ok()
}

/// The first `N` bytes of a frame the caller checked holds them (panics when shorter, like indexing).
#[inline(always)]
fn checked_prefix<const N: usize>(d: &[u8]) -> &[u8; N] {
    d[..N].try_into().expect("length checked by the caller")
}

/// [`checked_prefix`], writable.
#[inline(always)]
fn checked_prefix_mut<const N: usize>(d: &mut [u8]) -> &mut [u8; N] {
    (&mut d[..N])
        .try_into()
        .expect("length checked by the caller")
}

/// The Ethernet and IPv4 header views at the start of `h`, whose length is a constant at least
/// [`ETH_IPV4`]: no runtime check (the conversions below compile to nothing).
#[inline(always)]
fn eth_ipv4<const N: usize>(h: &[u8; N]) -> (ethernet::Header<'_>, ipv4::Header<'_>) {
    const { assert!(N >= ETH_IPV4) };
    let (eth, ip) = h.split_at(ethernet::HEADER_LEN);
    (
        ethernet::Header::new(eth.try_into().expect("constant length")),
        ipv4::Header::new(ip[..ipv4::HEADER_LEN].try_into().expect("constant length")),
    )
}

/// [`eth_ipv4`], writable.
#[inline(always)]
fn eth_ipv4_mut<const N: usize>(h: &mut [u8; N]) -> (ethernet::HeaderMut<'_>, ipv4::HeaderMut<'_>) {
    const { assert!(N >= ETH_IPV4) };
    let (eth, ip) = h.split_at_mut(ethernet::HEADER_LEN);
    (
        ethernet::HeaderMut::new(eth.try_into().expect("constant length")),
        ipv4::HeaderMut::new(
            (&mut ip[..ipv4::HEADER_LEN])
                .try_into()
                .expect("constant length"),
        ),
    )
}

/// The Ethernet and IPv6 fixed header views at the start of `h` (constant length, at least [`ETH_IPV6`]).
#[inline(always)]
fn eth_ipv6<const N: usize>(h: &[u8; N]) -> (ethernet::Header<'_>, ipv6::Header<'_>) {
    const { assert!(N >= ETH_IPV6) };
    let (eth, ip) = h.split_at(ethernet::HEADER_LEN);
    (
        ethernet::Header::new(eth.try_into().expect("constant length")),
        ipv6::Header::new(ip[..ipv6::HEADER_LEN].try_into().expect("constant length")),
    )
}

/// [`eth_ipv6`], writable.
#[inline(always)]
fn eth_ipv6_mut<const N: usize>(h: &mut [u8; N]) -> (ethernet::HeaderMut<'_>, ipv6::HeaderMut<'_>) {
    const { assert!(N >= ETH_IPV6) };
    let (eth, ip) = h.split_at_mut(ethernet::HEADER_LEN);
    (
        ethernet::HeaderMut::new(eth.try_into().expect("constant length")),
        ipv6::HeaderMut::new(
            (&mut ip[..ipv6::HEADER_LEN])
                .try_into()
                .expect("constant length"),
        ),
    )
}

/// The EtherType of frame `d` (0 when it is shorter than an Ethernet header: the callers checked it is not).
#[inline(always)]
fn ethertype_of(d: &[u8]) -> u16 {
    ethernet::Header::from_prefix(d).map_or(0, |eth| eth.ethertype())
}

/// The IP destination of a frame holding IPv4 or IPv6 after its Ethernet header.
fn packet_dst(d: &[u8]) -> Option<IpAddr> {
    let ip = d.get(ethernet::HEADER_LEN..)?;
    match ethertype_of(d) {
        ethertype::IPV4 => ipv4::Header::from_prefix(ip).map(|h| IpAddr::V4(h.dst_addr())),
        ethertype::IPV6 => ipv6::Header::from_prefix(ip).map(|h| IpAddr::V6(h.dst_addr())),
        _ => None,
    }
}

impl<B: PacketBuf> Gateway<B> {
    /// A gateway for worker `worker` of `nworkers`. ICMP errors are limited to 1000/s (burst 100) per worker,
    /// ARP replies and neighbour advertisements to [`REPLY_RATE_PER_S`] (burst [`REPLY_BURST`]).
    pub fn new(worker: usize, nworkers: usize, shared: Shared<B>, tsc_hz: u64) -> Self {
        let tables = shared.tables.load_full();
        Gateway {
            tables,
            w: Worker {
                worker,
                nworkers: nworkers.max(1),
                shared,
                ip_ident: (worker as u16).wrapping_mul(0x3d1),
                icmp_limit: TokenBucket::new(1000.0, 100.0, tsc_hz),
                reply_limit: TokenBucket::new(REPLY_RATE_PER_S, REPLY_BURST, tsc_hz),
                punt_limits: Default::default(),
                punt_rate: 0,
                now: 0,
                tsc_hz,
                held: VecDeque::with_capacity(HOLD_MAX),
                deferred: Vec::with_capacity(DEFERRED_CAP),
                clock_s: 0,
                clock_next_tsc: 0,
                reorder: Vec::new(),
                reorder_held: 0,
                reasm: Default::default(),
                last_decap: None,
                last_neighbor: None,
                staged_ti: Box::new([NO_TUNNEL; STAGE_MAX]),
                staged_len: 0,
                staged_next: 0,
                last_decap4: Decap4Match::EMPTY,
                last_teb4: TEB4_EMPTY,
                last_decap6: Decap6Match::EMPTY,
                pass_bytes: PassSums::default(),
                hops4: Box::new([Hop::<u32>::EMPTY; HOPS]),
                hops6: Box::new([Hop::<[u64; 2]>::EMPTY; HOPS]),
                fast_path: true,
                wall_anchor: None,
                mirror_ident: (worker as u16).wrapping_mul(0x3d1) ^ 0x8000,
                #[cfg(feature = "testkit")]
                fast_hits: 0,
            },
            pass_staged: Box::new([NO_TUNNEL; STAGE_MAX]),
        }
    }

    /// The tables this worker currently reads.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// Turn the one-pass IPv4 fast paths on or off (on by default). Off, every packet takes the general
    /// rules: the equivalence test runs both ways and compares.
    pub fn set_fast_path(&mut self, on: bool) {
        self.w.fast_path = on;
    }

    /// Packets the fast paths took.
    #[cfg(feature = "testkit")]
    pub fn fast_path_hits(&self) -> u64 {
        self.w.fast_hits
    }

    /// Entry point per packet.
    #[inline(always)]
    pub fn handle(&mut self, pkt: &mut B, in_port: usize, c: &mut Counters) -> Verdict {
        self.w.handle(&self.tables, pkt, in_port, c)
    }

    /// Encapsulate the IP packet at offset 14 into tunnel `ti` as a router hop (TTL decremented after the
    /// MTU check); tests and the handoff path.
    pub fn encap(&mut self, pkt: &mut B, in_port: usize, ti: u32, c: &mut Counters) -> Verdict {
        self.w.encap(&self.tables, pkt, in_port, ti, true, false, c)
    }

    /// Encapsulate one of our keepalives into tunnel `ti`: like data, but also while the tunnel is down (the
    /// keepalive is what brings it back up).
    pub fn encap_keepalive(&mut self, pkt: &mut B, ti: u32, c: &mut Counters) -> Verdict {
        self.w.encap(&self.tables, pkt, 0, ti, true, true, c)
    }
}

/// The GRE header of a decap fast path at `gre_at` (its first four bytes `base`, already in view): version 0, no
/// flag but K, protocol IPv4 or IPv6. Returns (protocol, key as a [`key_word`], offset of the inner packet).
#[inline(always)]
fn fast_gre(d: &[u8], gre_at: usize, base: &[u8; 4]) -> Option<(u16, u64, usize)> {
    // The four shapes of the base header, as they lie in the packet: one 4-byte compare each, no byte swap.
    const fn shape(flags: u16, proto: u16) -> u32 {
        let (f, p) = (flags.to_be_bytes(), proto.to_be_bytes());
        u32::from_ne_bytes([f[0], f[1], p[0], p[1]])
    }
    const KEY4: u32 = shape(gre::flags::KEY, ethertype::IPV4);
    const PLAIN4: u32 = shape(0, ethertype::IPV4);
    const KEY6: u32 = shape(gre::flags::KEY, ethertype::IPV6);
    const PLAIN6: u32 = shape(0, ethertype::IPV6);
    let (proto, keyed) = match u32::from_ne_bytes(*base) {
        KEY4 => (ethertype::IPV4, true),
        PLAIN4 => (ethertype::IPV4, false),
        KEY6 => (ethertype::IPV6, true),
        PLAIN6 => (ethertype::IPV6, false),
        _ => return None,
    };
    // Without C, the key (RFC 2890 2.1, 4 bytes) is the first optional field: right after the base header.
    let key_at = gre_at + gre::BASE_HEADER_LEN;
    if keyed {
        let k: &[u8; 4] = d.get(key_at..key_at + 4)?.try_into().ok()?;
        Some((proto, key_word(Some(*k)), key_at + 4))
    } else {
        Some((proto, key_word(None), key_at))
    }
}

/// The per-packet fields of an outer IPv4 header whose other fields the tunnel's template wrote: TOS, total
/// length, identification, DF, TTL, and the header checksum from the tunnel's precomputed sum plus these words,
/// in registers (never read back from the packet). The sum is of the words as they lie in memory (RFC 1071
/// 2.B: the order of the bytes does not change a ones' complement sum), so each word is swapped once, for its
/// store, and the checksum not at all.
#[inline(always)]
fn outer_ipv4_fields(
    ip: &mut ipv4::HeaderMut<'_>,
    t: &Tunnel,
    tos: u8,
    outer_len: usize,
    ident: u16,
    df: bool,
    ttl: u8,
) {
    // (A fixed TTL's word is in the base sum; the template holds it, written again here.)
    let ttl_sum = if t.ttl_set != 0 { 0 } else { ttl };
    outer_ipv4_fields_from(
        ip,
        t.ip4_base_sum,
        tos,
        outer_len,
        ident,
        Some(df),
        Some(ttl),
        ttl_sum,
    );
}

/// The per-packet fields of an outer IPv6 header written over a tunnel's template: the traffic class (the
/// template's flow label is zero, and stays so), the payload length of an outer packet of `outer_len` bytes,
/// and the hop limit (`None`: the template's stays, a fixed one).
#[inline(always)]
pub(super) fn outer_ipv6_fields(
    ip: &mut ipv6::HeaderMut<'_>,
    tos: u8,
    outer_len: usize,
    hop_limit: Option<u8>,
) {
    ip.set_ver_tc_flow(tos, 0);
    ip.set_payload_len((outer_len - ipv6::HEADER_LEN) as u16);
    if let Some(h) = hop_limit {
        ip.set_hop_limit(h);
    }
}

/// [`outer_ipv4_fields`] from the sum `base` of the template's words (the tunnel's `ip4_base_sum`): `ttl` is
/// written (`None`: the template's stays), and `ttl_sum`'s word added to the sum (0 for a fixed TTL, whose word
/// the base holds); DF as `df` says (`None`: the template and the base have it already).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn outer_ipv4_fields_from(
    ip: &mut ipv4::HeaderMut<'_>,
    base: u32,
    tos: u8,
    outer_len: usize,
    ident: u16,
    df: Option<bool>,
    ttl: Option<u8>,
    ttl_sum: u8,
) {
    let frag: u16 = if df == Some(true) {
        ipv4::flags_frag::DONT_FRAGMENT
    } else {
        0
    };
    let ne = |w: u16| u32::from(u16::from_ne_bytes(w.to_be_bytes()));
    // Word 0 is (version and IHL, TOS), word 4 (TTL, protocol).
    let sum = base
        + u32::from(u16::from_ne_bytes([0, tos]))
        + ne(outer_len as u16)
        + ne(ident)
        + ne(frag)
        + u32::from(u16::from_ne_bytes([ttl_sum, 0]));
    ip.set_dscp_ecn(tos);
    ip.set_total_len(outer_len as u16);
    ip.set_ident(ident);
    if df.is_some() {
        ip.set_flags_frag(frag);
    }
    if let Some(ttl) = ttl {
        ip.set_ttl(ttl);
    }
    ip.set_checksum(u16::from_be_bytes((!checksum::fold(sum)).to_ne_bytes()));
}

#[inline(always)]
fn copy_header(d: &mut [u8], tpl: &[u8; MAX_ENCAP_HEADER], hl: usize) {
    if hl >= 64 {
        d[..64].copy_from_slice(&tpl[..64]);
        d[hl - 64..hl].copy_from_slice(&tpl[hl - 64..hl]);
    } else if hl >= 32 {
        d[..32].copy_from_slice(&tpl[..32]);
        d[hl - 32..hl].copy_from_slice(&tpl[hl - 32..hl]);
    } else {
        d[..hl].copy_from_slice(&tpl[..hl]);
    }
}

/// Decrement the TTL / hop limit of the IP packet after the Ethernet header (caller checked it is > 1),
/// updating the IPv4 header checksum incrementally (RFC 1624).
#[inline(always)]
fn decrement_ttl(d: &mut [u8]) {
    let v4 = ethertype_of(d) == ethertype::IPV4;
    decrement_ip_ttl(d, v4);
}

/// [`decrement_ttl`] for a frame known to carry IPv4 (`v4`) or IPv6 (the caller checked the header is there).
#[inline(always)]
fn decrement_ip_ttl(d: &mut [u8], v4: bool) {
    if v4 {
        let (_, mut ip) = eth_ipv4_mut(checked_prefix_mut::<ETH_IPV4>(d));
        ip.decrement_ttl();
    } else {
        let (_, mut ip) = eth_ipv6_mut(checked_prefix_mut::<ETH_IPV6>(d));
        ip.decrement_hop_limit();
    }
}

use greway_wire::cpu::prefetch;

#[derive(Clone, Copy, Debug)]
enum IcmpKind {
    TooBig(u16),
    TimeExceeded,
    /// ICMPv6 Parameter Problem (RFC 4443 3.4) with `code` and `pointer` (the offending octet's offset in the
    /// invoking packet), for an IPv6 packet only. `reason`: its drop reason when the error is not sent.
    /// `to_sender`: the error goes straight back out of the port the packet came in on, to the frame's
    /// source (an outer packet to one of our addresses), rather than routed.
    ParamProblem {
        code: u8,
        pointer: u32,
        reason: DropReason,
        to_sender: bool,
    },
}

/// Time in TSC ticks for `ms` milliseconds.
pub fn ms_to_ticks(ms: u64, tsc_hz: u64) -> u64 {
    ms * tsc_hz / 1000
}

impl<B> Gateway<B> {
    /// TSC frequency this gateway was built with.
    pub fn tsc_hz(&self) -> u64 {
        self.w.tsc_hz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_is_one_u16_and_keeps_its_code() {
        assert_eq!(std::mem::size_of::<Option<Planned>>(), 2);
        assert_eq!(Planned::code(None), plan::SLOW);
        for port in [0, 1, 7, usize::from(plan::DROP) - 1] {
            assert_eq!(Planned::code(Planned::tx(port)), plan::tx(port));
        }
    }

    #[test]
    fn key_words_give_back_their_key() {
        assert_eq!(key_of_word(key_word(None)), None);
        for k in [0u32, 1, 0x0102_0304, u32::MAX] {
            let kw = key_word(Some(k.to_be_bytes()));
            assert_eq!(key_of_word(kw), Some(k));
            assert_ne!(
                kw,
                Decap4Match::EMPTY.kw,
                "no key word matches the empty cache"
            );
        }
    }

    /// The header caches' masks keep every byte the matches check (or that picks the tunnel) and only those: a
    /// change to any kept byte misses, one to another (IPv4's total length, identification, TTL or checksum;
    /// IPv6's flow label, payload length or hop limit; without a key, the bytes after the GRE base header)
    /// hits.
    #[test]
    fn decap_header_masks_keep_the_checked_bytes() {
        fn check<const N: usize>(
            at: usize,
            mask: [u64; N],
            kept: impl Fn(usize) -> bool,
            what: &str,
        ) {
            let frame: [u8; 80] = std::array::from_fn(|i| i as u8 ^ 0x5a);
            let mut m = HeaderCache::<N>::EMPTY;
            let w = HeaderCache::<N>::words_of(&frame, at);
            assert!(
                !m.matches(&w),
                "{what}: the empty cache matches only EtherType 0"
            );
            m.fill(&w, mask, 14, 1, 0x0800, 42);
            assert!(m.matches(&w));
            for i in 0..frame.len() {
                for bit in 0..8 {
                    let mut f = frame;
                    f[i] ^= 1 << bit;
                    let hit = m.matches(&HeaderCache::<N>::words_of(&f, at));
                    assert_eq!(hit, !kept(i * 8 + bit), "{what}: byte {i} bit {bit}");
                }
            }
        }
        // Bits, numbered from the frame's start (byte * 8 + bit, bit 0 the least significant).
        let byte = |b: usize| move |x: usize| x / 8 == b;
        for keyed in [true, false] {
            let v4_out = [16, 17, 18, 19, 22, 24, 25];
            let end4 = if keyed { 42 } else { 38 };
            check(
                Decap4Match::AT,
                Decap4Match::mask(keyed),
                |x| (12..end4).contains(&(x / 8)) && !v4_out.iter().any(|&b| byte(b)(x)),
                &format!("IPv4, keyed {keyed}"),
            );
            let end6 = if keyed { 62 } else { 58 };
            check(
                Decap6Match::AT,
                Decap6Match::mask(keyed),
                |x| {
                    let b = x / 8;
                    (12..end6).contains(&b)
                        && ![16, 17, 18, 19, 21].contains(&b)
                        && !(b == 15 && x % 8 < 4)
                },
                &format!("IPv6, keyed {keyed}"),
            );
        }
        // The empty cache matches frames of EtherType 0 (all zero here), and its length fails them.
        let e = HeaderCache::<4>::EMPTY;
        assert!(e.matches(&[0; 4]));
        assert!(usize::from(u16::MAX) + e.len_bias > 1 << 20);
    }
}
