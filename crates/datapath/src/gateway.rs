//! The GRE gateway: every rule a tunnel gateway applies to a packet, on any [`PacketBuf`].
//!
//! Inside port, IPv4/IPv6 to a tunnel route -> encapsulate in place (RFC 2784/2890 header, outer IPv4 or IPv6
//! per RFC 7676, TTL/TOS fixed or inherited, ECN by RFC 6040 normal mode, DF copied) and send out of the
//! tunnel's port. Outside port, GRE to one of our addresses -> receiver rules, tunnel match on (local, remote,
//! key), checksum and sequence checks, RFC 6040 decapsulation, TTL decrement, and routing to the inside.
//! ARP / ND for our addresses, ICMP echo to our addresses, ICMP errors (fragmentation needed / packet too big /
//! time exceeded, token-bucket limited) and Cisco keepalives are answered in place: no allocation per packet.
//! Every packet ends as a [`Verdict::Tx`] or a [`Verdict::Drop`] with its reason.
use super::{HoldReason, Processor, Verdict, Waiting};
use crate::buf::PacketBuf;
use crate::stats::{Counters, DropReason};
use crate::tunnel::table::{Neighbor, PortRole, Tables, Tunnel, TunnelRef, MAX_ENCAP_HEADER};
use arc_swap::ArcSwap;
use crossbeam::queue::ArrayQueue;
use greway_wire::checksum;
use greway_wire::gre::{self, GreError};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

const ETH: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_VLAN: u16 = 0x8100;
const PROTO_ICMP: u8 = 1;
const PROTO_GRE: u8 = 47;
const PROTO_ICMPV6: u8 = 58;

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

/// What a packet on a handoff ring is for: the tunnel (by run-unique id, so a runtime change in flight can
/// only make it `unknown_tunnel`, never another tunnel's) and whether it is one of the control plane's
/// keepalives (sent even while the tunnel is down) rather than data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handoff {
    pub tunnel: TunnelRef,
    pub keepalive: bool,
}

/// The worker that owns a sequenced tunnel (numbers and sends its packets): by run-unique id, so ownership
/// does not move when other tunnels are added or removed.
#[inline]
pub fn owner_of(tunnel_id: u64, nworkers: usize) -> usize {
    (tunnel_id % nworkers.max(1) as u64) as usize
}

/// What all workers share: the published tables, the event ring to the control thread, and one handoff ring
/// per worker for packets of sequenced tunnels that worker owns.
pub struct Shared<B> {
    pub tables: Arc<ArcSwap<Tables>>,
    pub events: Arc<ArrayQueue<Event>>,
    pub handoff: Vec<Arc<ArrayQueue<(Handoff, B)>>>,
}

impl<B> Clone for Shared<B> {
    fn clone(&self) -> Self {
        Shared {
            tables: self.tables.clone(),
            events: self.events.clone(),
            handoff: self.handoff.clone(),
        }
    }
}

impl<B> Shared<B> {
    /// Shared state for `workers` workers around an initial table.
    pub fn new(tables: Tables, workers: usize) -> Self {
        Shared {
            tables: Arc::new(ArcSwap::from_pointee(tables)),
            events: Arc::new(ArrayQueue::new(4096)),
            handoff: (0..workers)
                .map(|_| Arc::new(ArrayQueue::new(4096)))
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

/// Per-worker gateway: the table generation it reads plus its private state. One per worker thread.
pub struct Gateway<B> {
    tables: Arc<Tables>,
    w: Worker<B>,
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
    now: u64,
    tsc_hz: u64,
    /// Packets waiting for a next hop's MAC (at most [`HOLD_MAX`], each for at most [`HOLD_MS`]): (deadline TSC,
    /// what it waits for, packet). Released by `poll_deferred` once the neighbour is in the tables.
    held: VecDeque<(u64, Waiting, B)>,
    /// Extra packets a rule produced (fragments) waiting for the worker's next deferred flush.
    deferred: Vec<(usize, B)>,
    /// RFC 2890 reordering buffers, by tunnel index of the table in use (moved by tunnel id when a new table
    /// generation is picked up).
    reorder: Vec<super::reorder::ReorderBuf<B>>,
    /// Outer IPv4 reassembly table.
    reasm: super::reasm::Reassembler<B>,
    /// Packets held in all reordering buffers (so an idle poll round need not look at them).
    reorder_held: usize,
    /// Last-tunnel cache of the decap match (traffic comes in trains per tunnel): the key and its tunnel. Valid
    /// for the table generation it was filled from; cleared when the worker picks up a new one.
    last_decap: Option<(crate::tunnel::table::DecapKey, u32)>,
    /// Last next hop resolved by `l2_rewrite` and its MAC (same validity).
    last_neighbor: Option<(IpAddr, [u8; 6])>,
    /// The IPv4 fast paths' decap match cache: (outer destination, outer source, key) as raw words -> tunnel
    /// (same validity as `last_decap`).
    last_decap4: Option<(u32, u32, Option<u32>, u32)>,
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
    /// Packets the fast paths took (tests only: the hot path carries no extra counter).
    #[cfg(feature = "testkit")]
    fast_hits: u64,
}

/// The largest burst whose encap lookups are staged (the worker's `MAX_BURST`); a larger one is not staged.
const STAGE_MAX: usize = 256;
/// A staged lookup that found no tunnel (or a packet that is not IPv4).
const NO_TUNNEL: u32 = u32::MAX;

/// At most this many fragments per packet (a 9000-byte jumbo into a 576-byte MTU needs 17).
const MAX_FRAGMENTS: usize = 32;

/// Packets a worker holds while their next hop is being resolved (beyond that they are dropped as
/// `no_neighbor`), like the kernel's unresolved-neighbour queue: the first packet to a new host is not lost.
pub const HOLD_MAX: usize = 64;
/// How long a held packet waits for its neighbour before it is dropped as `no_neighbor`.
pub const HOLD_MS: u64 = 1000;

#[inline(always)]
fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

#[inline(always)]
fn put16(d: &mut [u8], at: usize, v: u16) {
    d[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for one 16-bit word changing from `old` to `new`.
#[inline(always)]
pub fn csum_update16(hc: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!hc) + u32::from(!old) + u32::from(new);
    !checksum::fold(s)
}

/// The IPv4 header checksum of `hdr` (the checksum field must be zero, or it is included). 20-byte headers
/// take the fixed-size routine.
#[inline(always)]
fn ipv4_header_checksum(hdr: &[u8]) -> u16 {
    match <&[u8; 20]>::try_from(hdr) {
        Ok(h) => checksum::ipv4_header_checksum(h),
        Err(_) => checksum::checksum(hdr),
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
                now: 0,
                tsc_hz,
                held: VecDeque::with_capacity(HOLD_MAX),
                deferred: Vec::with_capacity(64),
                reorder: Vec::new(),
                reorder_held: 0,
                reasm: Default::default(),
                last_decap: None,
                last_neighbor: None,
                staged_ti: Box::new([NO_TUNNEL; STAGE_MAX]),
                staged_len: 0,
                staged_next: 0,
                last_decap4: None,
                fast_path: true,
                #[cfg(feature = "testkit")]
                fast_hits: 0,
            },
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

impl<B: PacketBuf> Worker<B> {
    /// Keep a packet a rule held for its neighbour or handed off to its tunnel's owner (the `Hold` of a packet
    /// made inside a rule: fragments, ICMP errors, released packets). Reorder and fragment holds come from the
    /// receive path only and go through [`Processor::hold`].
    fn hold_now(&mut self, pkt: B, why: HoldReason, c: &mut Counters) {
        match why {
            HoldReason::Neighbor(w) => {
                if self.held.len() < HOLD_MAX {
                    let deadline = self.now + ms_to_ticks(HOLD_MS, self.tsc_hz);
                    self.held.push_back((deadline, w, pkt));
                } else {
                    c.drop_pkt(DropReason::NoNeighbor);
                }
            }
            HoldReason::Handoff { owner, tunnel } => {
                let h = Handoff {
                    tunnel,
                    keepalive: false,
                };
                if self.shared.handoff[owner].push((h, pkt)).is_err() {
                    c.drop_pkt(DropReason::HandoffFull);
                }
            }
            HoldReason::Reorder { .. } | HoldReason::Fragment => {
                c.drop_pkt(DropReason::LocalUnhandled)
            }
        }
    }

    fn event(&self, e: Event) {
        // A full ring drops the event: the control thread is behind; the next packet asks again.
        let _ = self.shared.events.push(e);
    }

    /// Hold the packet until its neighbour is known, while there is room; else drop it.
    fn wait_for_neighbor(&mut self, w: Waiting) -> Verdict {
        if self.held.len() >= HOLD_MAX {
            return Verdict::Drop(DropReason::NoNeighbor);
        }
        Verdict::Hold(HoldReason::Neighbor(w))
    }

    fn owner_of(&self, t: &Tunnel) -> usize {
        owner_of(t.id, self.nworkers)
    }

    #[inline]
    fn is_local4(&self, tables: &Tables, a: [u8; 4]) -> bool {
        tables.local4_set.contains(u32::from_be_bytes(a))
    }

    #[inline]
    fn is_local6(&self, tables: &Tables, a: [u8; 16]) -> bool {
        let a = Ipv6Addr::from(a);
        tables.local6.contains(&a)
    }

    /// Entry point per packet: the fast paths inline (into the worker's loop), everything else through the
    /// general rules, out of line.
    #[inline(always)]
    pub fn handle(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        c: &mut Counters,
    ) -> Verdict {
        self.handle_staged(tables, pkt, in_port, None, c)
    }

    /// [`Worker::handle`] with the packet's staged encap lookup, when `prepare_burst` made one.
    #[inline(always)]
    fn handle_staged(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        staged: Option<u32>,
        c: &mut Counters,
    ) -> Verdict {
        if self.fast_path {
            // A staged packet came in on an inside port (`prepare_burst` stages only those).
            // (An IPv6 packet, staged or not, is declined by the IPv4 path at its ethertype check.)
            let fast = if staged.is_some() || tables.ports[in_port].role == PortRole::Inside {
                match self.fast_encap4(tables, pkt, staged, c) {
                    Some(v) => Some(v),
                    None => self.fast_encap6(tables, pkt, staged, c),
                }
            } else {
                match self.fast_decap4(tables, pkt, c) {
                    Some(v) => Some(v),
                    None => self.fast_decap6(tables, pkt, c),
                }
            };
            if let Some(v) = fast {
                #[cfg(feature = "testkit")]
                {
                    self.fast_hits += 1;
                }
                return v;
            }
        }
        c.general_path += 1;
        self.general(tables, pkt, in_port, None, c)
    }

    /// A packet released from a reordering buffer with sequence number `seq`: the whole decision again, with the
    /// sequence check letting `seq` through instead of holding it a second time.
    fn handle_released(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        seq: u32,
        c: &mut Counters,
    ) -> Verdict {
        c.general_path += 1;
        self.general(tables, pkt, in_port, Some(seq), c)
    }

    /// Every rule, for any packet (the fast paths' packets give the same result here).
    #[inline(never)]
    fn general(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        released: Option<u32>,
        c: &mut Counters,
    ) -> Verdict {
        let d = pkt.data();
        if d.len() < ETH {
            return Verdict::Drop(DropReason::Truncated);
        }
        let mut ethertype = be16(d, 12);
        if ethertype == ETHERTYPE_VLAN {
            // Access-port semantics: a single 802.1Q tag is accepted and removed; replies leave untagged.
            if d.len() < ETH + 4 {
                return Verdict::Drop(DropReason::Truncated);
            }
            pkt.data_mut().copy_within(0..12, 4);
            pkt.adj(4);
            ethertype = be16(pkt.data(), 12);
        }
        let v = match ethertype {
            ETHERTYPE_IPV4 => self.ipv4_in(tables, pkt, in_port, released, c),
            ETHERTYPE_IPV6 => self.ipv6_in(tables, pkt, in_port, released, c),
            ETHERTYPE_ARP => self.arp_in(tables, pkt, in_port),
            _ => Verdict::Drop(DropReason::UnsupportedEthertype),
        };
        // The rules read headers from the first segment: a chained (jumbo) frame whose length fields point past
        // it is not truncated but segmented.
        match v {
            Verdict::Drop(DropReason::Truncated) if !pkt.is_contiguous() => {
                Verdict::Drop(DropReason::Segmented)
            }
            v => v,
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // IPv4 fast paths
    // ---------------------------------------------------------------------------------------------------------
    //
    // The bulk of a gateway's traffic is one shape per direction: on the inside, an option-less IPv4 packet
    // routed into a tunnel; on the outside, an option-less IPv4 GRE packet (key or not, no checksum or
    // sequence number) carrying IPv4 to an inside neighbour. Each fast path checks that shape in one pass over
    // fixed-size header views (no re-parsing between rule stages, no bounds checks per field) and then does
    // exactly what the general rules do for it. Anything else, or any check that fails, returns `None` with the
    // packet untouched and the general rules take it (so every drop keeps its reason and its counter).
    // `tests::fast_path_equals_general_rules` runs both on the same packets and compares bytes and counters.

    /// Inside port: IPv4 to a tunnel route -> encapsulated (see above).
    #[inline(always)]
    fn fast_encap4(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        staged: Option<u32>,
        c: &mut Counters,
    ) -> Option<Verdict> {
        let d = pkt.data();
        let len = d.len();
        // One segment, exactly one IPv4 packet without options (no Ethernet padding to trim).
        if len != pkt.pkt_len() {
            return None;
        }
        let h: &[u8; ETH + 20] = d.get(..ETH + 20)?.try_into().ok()?;
        let (eth, ip) = h.split_at(ETH);
        let ip: &[u8; 20] = ip.try_into().ok()?;
        if eth[12] != 0x08 || eth[13] != 0x00 || ip[0] != 0x45 {
            return None;
        }
        // (A NIC with IPv4 rx checksum offload has verified the header already.)
        if usize::from(u16::from_be_bytes([ip[2], ip[3]])) != len - ETH
            || !(pkt.rx_ipv4_cksum_good() || checksum::ipv4_header_valid(ip))
        {
            return None;
        }
        let dst = [ip[16], ip[17], ip[18], ip[19]];
        // Not multicast/broadcast, TTL left to forward with.
        if dst[0] >= 224 || ip[8] <= 1 {
            return None;
        }
        let ti = match staged {
            // Staged on this same destination (the packet is unchanged since).
            Some(NO_TUNNEL) => return None,
            Some(ti) => ti,
            None => tables.routes.encap4.lookup(u32::from_be_bytes(dst))?,
        };
        // Not for us: only possible here when some tunnel route covers one of our addresses.
        if tables.local4_tunneled && self.is_local4(tables, dst) {
            return None;
        }
        let t = tables.tunnels.get(ti as usize)?;
        // Sequenced tunnels (owner worker), unresolved next hops, down tunnels and too-big packets: general.
        if t.sequence || !t.resolved || t.is_down() || len - ETH > usize::from(t.mtu) {
            return None;
        }
        if !t.outer_v6() {
            // IPv4 outside: from the header values already loaded, at fixed offsets.
            let inner = InnerV4 {
                len: len - ETH,
                tos: ip[1],
                ttl: ip[8],
                df: ip[6] & 0x40 != 0,
                cksum: u16::from_be_bytes([ip[10], ip[11]]),
            };
            // One copy per checksum setting: the plain tunnel's copy has no checksum code at all.
            return Some(if t.checksum {
                self.fast_emit4::<true>(t, pkt, ti, inner, c)
            } else {
                self.fast_emit4::<false>(t, pkt, ti, inner, c)
            });
        }
        Some(self.encap_emit(t, pkt, ti, true, len - ETH, true, true, c))
    }

    /// [`Worker::encap_emit`] for the fast path's IPv4-outside tunnels (no sequence number there, so a 38-, 42-
    /// or 46-byte header: key and GRE checksum optional): the inner header's TTL is decremented before
    /// prepending and the outer IPv4 header sits at fixed offsets, so the whole rewrite is two length checks and
    /// straight-line stores of values already in registers. `tests::fast_path_equals_general_rules` compares it
    /// byte for byte with the general rules.
    #[inline(always)]
    fn fast_emit4<const CSUM: bool>(
        &mut self,
        t: &Tunnel,
        pkt: &mut B,
        ti: u32,
        inner: InnerV4,
        c: &mut Counters,
    ) -> Verdict {
        const HL_MIN: usize = ETH + 20 + 4;
        // RFC 2784 2.5, summed before anything is written (see `encap_emit`): the GRE words from the tunnel's
        // precomputed sum plus the inner payload; the verified inner header sums to all ones and adds nothing,
        // and the TTL decrement's RFC 1624 update keeps it so.
        debug_assert_eq!(CSUM, t.checksum);
        let gre_sum = if CSUM {
            Some(checksum::fold(checksum::sum(
                &pkt.data()[ETH + 20..],
                t.gre_base_sum,
            )))
        } else {
            None
        };
        // The caller saw more than 1 (forwarded: the TTL drops by one, RFC 1812).
        let ttl_in = inner.ttl - 1;
        {
            let h: &mut [u8; ETH + 20] = (&mut pkt.data_mut()[..ETH + 20])
                .try_into()
                .expect("inner IPv4 header checked by the caller");
            h[ETH + 8] = ttl_in;
            h[ETH + 10..ETH + 12]
                .copy_from_slice(&ttl_decrement_checksum(inner.cksum).to_be_bytes());
        }
        let tos = (inner.tos & t.tos_keep) | t.tos_set;
        let ttl = if t.ttl_set != 0 { t.ttl_set } else { ttl_in };
        // A value the compiler knows the range of, so the copies below need no checks: 38 or 42 without a
        // checksum (key or not), 42 or 46 with one.
        let short = if CSUM { HL_MIN + 4 } else { HL_MIN };
        let hl = if t.header_bytes() > short {
            short + 4
        } else {
            short
        };
        debug_assert_eq!(hl, t.header_bytes());
        if pkt.prepend(hl - ETH).is_none() {
            return Verdict::Drop(DropReason::NoHeadroom);
        }
        let outer_len = inner.len + hl - ETH;
        let ident = self.ip_ident;
        self.ip_ident = self.ip_ident.wrapping_add(1);
        // At least the shortest header and the 20-byte inner header after it.
        let d: &mut [u8; HL_MIN + 20] = (&mut pkt.data_mut()[..HL_MIN + 20])
            .try_into()
            .expect("a header and an IPv4 header");
        d[..32].copy_from_slice(&t.template[..32]);
        d[hl - 32..hl].copy_from_slice(&t.template[hl - 32..hl]);
        let ip: &mut [u8; 20] = (&mut d[ETH..ETH + 20]).try_into().expect("20");
        outer_ipv4_fields(ip, t, tos, outer_len, ident, inner.df, ttl);
        if let Some(s) = gre_sum {
            // The checksum field follows the GRE flags and protocol.
            put16(d, ETH + 20 + 4, !s);
        }
        let tc = &mut c.tunnels[ti as usize];
        tc.encap += 1;
        tc.encap_bytes += inner.len as u64;
        Verdict::Tx(usize::from(t.out_port))
    }

    /// Inside port: IPv6 to a tunnel route -> encapsulated. The same shape as [`Worker::fast_encap4`]: one
    /// segment holding exactly one IPv6 packet (payload length = the rest of the frame), not multicast or
    /// link-local, hop limit left, a tunnel route, not one of our addresses, and a tunnel the fast path may use.
    /// Extension headers need no look here: a router forwards them untouched (RFC 8200 section 4), and the
    /// general rules do not read past the fixed header either.
    #[inline(always)]
    fn fast_encap6(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        staged: Option<u32>,
        c: &mut Counters,
    ) -> Option<Verdict> {
        let d = pkt.data();
        let len = d.len();
        if len != pkt.pkt_len() {
            return None;
        }
        let h: &[u8; ETH + 40] = d.get(..ETH + 40)?.try_into().ok()?;
        let (eth, ip) = h.split_at(ETH);
        if eth[12] != 0x86 || eth[13] != 0xdd || ip[0] >> 4 != 6 {
            return None;
        }
        if usize::from(u16::from_be_bytes([ip[4], ip[5]])) + 40 != len - ETH {
            return None;
        }
        let dst: [u8; 16] = ip[24..40].try_into().ok()?;
        // Not multicast or link-local (never routed), hop limit left to forward with.
        if dst[0] == 0xff || (dst[0] == 0xfe && dst[1] & 0xc0 == 0x80) || ip[7] <= 1 {
            return None;
        }
        let ti = match staged {
            Some(NO_TUNNEL) => return None,
            Some(ti) => ti,
            None => tables.routes.encap6.lookup_bytes(&dst)?,
        };
        // Not for us: only possible here when some tunnel route covers an address of ours.
        if tables.local6_tunneled && self.is_local6(tables, dst) {
            return None;
        }
        let t = tables.tunnels.get(ti as usize)?;
        if t.sequence || !t.resolved || t.is_down() || len - ETH > usize::from(t.mtu) {
            return None;
        }
        Some(self.encap_emit(t, pkt, ti, false, len - ETH, true, false, c))
    }

    /// Outside port: IPv4 GRE (key or not) to one of our addresses, carrying IPv4 to an inside neighbour ->
    /// decapsulated and forwarded (see above).
    #[inline(always)]
    fn fast_decap4(&mut self, tables: &Tables, pkt: &mut B, c: &mut Counters) -> Option<Verdict> {
        const GRE_AT: usize = ETH + 20;
        let d = pkt.data();
        let len = d.len();
        if len != pkt.pkt_len() {
            return None;
        }
        let h: &[u8; GRE_AT + 4] = d.get(..GRE_AT + 4)?.try_into().ok()?;
        let (eth, rest) = h.split_at(ETH);
        let (ip, gre) = rest.split_at(20);
        let ip: &[u8; 20] = ip.try_into().ok()?;
        if eth[12] != 0x08 || eth[13] != 0x00 || ip[0] != 0x45 || ip[9] != PROTO_GRE {
            return None;
        }
        // Exact length, valid checksum, not a fragment, no CE mark to fold into the inner header.
        if usize::from(u16::from_be_bytes([ip[2], ip[3]])) != len - ETH
            || (ip[6] & 0x3f) != 0
            || ip[7] != 0
            || ip[1] & 0x03 == 0x03
            || !(pkt.rx_ipv4_cksum_good() || checksum::ipv4_header_valid(ip))
        {
            return None;
        }
        let local = [ip[16], ip[17], ip[18], ip[19]];
        if !self.is_local4(tables, local) {
            return None;
        }
        let (proto, key, off) = fast_gre(d, GRE_AT, gre)?;
        let local = u32::from_be_bytes(local);
        let remote = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
        let ti = match self.last_decap4 {
            Some((l, r, k, ti)) if l == local && r == remote && k == key => ti,
            _ => {
                let dk = crate::tunnel::table::DecapKey {
                    local: IpAddr::V4(local.into()),
                    remote: IpAddr::V4(remote.into()),
                    key,
                };
                let ti = *tables.decap.get(&dk)?;
                self.last_decap4 = Some((local, remote, key, ti));
                ti
            }
        };
        self.fast_decap_inner(tables, pkt, ti, proto, off, c)
    }

    /// Outside port: IPv6 GRE (RFC 7676; key or not) to one of our addresses, carrying IPv4 or IPv6 to an inside
    /// neighbour -> decapsulated and forwarded. The outer checks of [`Worker::fast_decap4`] in IPv6 terms: GRE
    /// right after the fixed header (no extension headers), exact payload length, no CE mark; IPv6 has no
    /// header checksum.
    #[inline(always)]
    fn fast_decap6(&mut self, tables: &Tables, pkt: &mut B, c: &mut Counters) -> Option<Verdict> {
        const GRE_AT: usize = ETH + 40;
        let d = pkt.data();
        let len = d.len();
        if len != pkt.pkt_len() {
            return None;
        }
        let h: &[u8; GRE_AT + 4] = d.get(..GRE_AT + 4)?.try_into().ok()?;
        let (eth, rest) = h.split_at(ETH);
        let (ip, gre) = rest.split_at(40);
        if eth[12] != 0x86 || eth[13] != 0xdd || ip[0] >> 4 != 6 || ip[6] != PROTO_GRE {
            return None;
        }
        if usize::from(u16::from_be_bytes([ip[4], ip[5]])) + 40 != len - ETH
            || (ip[1] >> 4) & 0x03 == 0x03
        {
            return None;
        }
        let local: [u8; 16] = ip[24..40].try_into().ok()?;
        let remote: [u8; 16] = ip[8..24].try_into().ok()?;
        if !self.is_local6(tables, local) {
            return None;
        }
        let (proto, key, off) = fast_gre(d, GRE_AT, gre)?;
        let dk = crate::tunnel::table::DecapKey {
            local: IpAddr::from(local),
            remote: IpAddr::from(remote),
            key,
        };
        // The general rules' one-entry cache (same key, same tables).
        let ti = match self.last_decap {
            Some((k, ti)) if k == dk => ti,
            _ => {
                let ti = *tables.decap.get(&dk)?;
                self.last_decap = Some((dk, ti));
                ti
            }
        };
        self.fast_decap_inner(tables, pkt, ti, proto, off, c)
    }

    /// The decap fast paths after the tunnel match: a tunnel without checksum, sequence numbers or source filter,
    /// then the inner packet (GRE protocol `proto`, at `off`) by family.
    #[inline(always)]
    fn fast_decap_inner(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        ti: u32,
        proto: u16,
        off: usize,
        c: &mut Counters,
    ) -> Option<Verdict> {
        let t = tables.tunnels.get(ti as usize)?;
        if t.checksum || t.sequence || t.allowed_sources.is_some() {
            return None;
        }
        if proto == ETHERTYPE_IPV6 {
            self.fast_decap_inner6(tables, pkt, off, ti, c)
        } else {
            self.fast_decap_inner4(tables, pkt, off, ti, c)
        }
    }

    /// The rest of the decap fast paths for an IPv4 packet inside (the outer header and GRE checked, tunnel `ti`
    /// matched, the inner packet at `off`).
    #[inline(always)]
    fn fast_decap_inner4(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        off: usize,
        ti: u32,
        c: &mut Counters,
    ) -> Option<Verdict> {
        let d = pkt.data();
        let len = d.len();
        // The inner IPv4 header: option-less, exactly the rest of the frame, valid, not GRE (keepalives and
        // tunnel-in-tunnel take the general rules), not to a tunnel endpoint of ours (loop), routable.
        let inner: &[u8; 20] = d.get(off..off + 20)?.try_into().ok()?;
        let inner_total = usize::from(u16::from_be_bytes([inner[2], inner[3]]));
        if inner[0] != 0x45
            || inner_total != len - off
            || inner[9] == PROTO_GRE
            || inner[8] <= 1
            || inner[16] >= 224
            || !checksum::ipv4_header_valid(inner)
        {
            return None;
        }
        let idst = u32::from_be_bytes([inner[16], inner[17], inner[18], inner[19]]);
        if tables.tunnel_locals4.contains(idst) {
            return None;
        }
        // `RouteTables::next_hop` by hand on the raw address: calling it (with an `IpAddr`) measured 16 cycles/packet
        // slower on decap-64 (scripts/bench-ab.sh, 3 runs each, 144 -> 160).
        let rt = &tables.routes;
        let route = rt.routes.get(rt.routes4.lookup(idst)? as usize)?;
        // A tunnel route wins over any route (into a tunnel again: the general rules); only one overlapping the
        // matched route's prefix can match this destination.
        if route.tunnel_overlap && rt.encap4.lookup(idst).is_some() {
            return None;
        }
        if tables.ports.get(route.port)?.role != PortRole::Inside {
            return None;
        }
        let nh = route.via.unwrap_or(IpAddr::V4(idst.into()));
        let mac = self.neighbor_mac(tables, nh)?;
        // Accepted: strip the outer headers, leaving room for the new Ethernet header, and forward.
        if !pkt.adj(off - ETH) {
            return None;
        }
        let src = tables.ports[route.port].mac;
        // One length check for the whole rewrite (the inner header was seen whole above).
        let d: &mut [u8; ETH + 20] = (&mut pkt.data_mut()[..ETH + 20])
            .try_into()
            .expect("inner IPv4 header checked above");
        d[0..6].copy_from_slice(&mac);
        d[6..12].copy_from_slice(&src);
        d[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        decrement_ttl4(d);
        let tc = &mut c.tunnels[ti as usize];
        tc.decap += 1;
        tc.decap_bytes += inner_total as u64;
        Some(Verdict::Tx(route.port))
    }

    /// The rest of the decap fast paths for an IPv6 packet inside (the outer header and GRE checked, tunnel
    /// `ti` matched, the inner packet at `off`): exactly the rest of the frame, hop limit left, not multicast,
    /// not to a tunnel endpoint of ours (loop), not into a tunnel again, routed to an inside neighbour we know.
    #[inline(always)]
    fn fast_decap_inner6(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        off: usize,
        ti: u32,
        c: &mut Counters,
    ) -> Option<Verdict> {
        let d = pkt.data();
        let inner: &[u8; 40] = d.get(off..off + 40)?.try_into().ok()?;
        let inner_total = usize::from(u16::from_be_bytes([inner[4], inner[5]])) + 40;
        if inner[0] >> 4 != 6 || inner_total != d.len() - off || inner[7] <= 1 || inner[24] == 0xff
        {
            return None;
        }
        let idst: &[u8; 16] = inner[24..40].try_into().ok()?;
        let rt = &tables.routes;
        let route = rt.routes6.lookup_bytes(idst);
        let dst = Ipv6Addr::from(*idst);
        if tables.tunnel_locals.contains(&IpAddr::V6(dst)) {
            return None;
        }
        let route = rt.routes.get(route? as usize)?;
        // As in `fast_decap_inner4`: the tunnel-route walk only where a tunnel route overlaps the route's prefix.
        if route.tunnel_overlap && rt.encap6.lookup_bytes(idst).is_some() {
            return None;
        }
        if tables.ports.get(route.port)?.role != PortRole::Inside {
            return None;
        }
        let nh = route.via.unwrap_or(IpAddr::V6(dst));
        let mac = self.neighbor_mac(tables, nh)?;
        if !pkt.adj(off - ETH) {
            return None;
        }
        let src = tables.ports[route.port].mac;
        let d: &mut [u8; ETH + 40] = (&mut pkt.data_mut()[..ETH + 40])
            .try_into()
            .expect("inner IPv6 header checked above");
        d[0..6].copy_from_slice(&mac);
        d[6..12].copy_from_slice(&src);
        d[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        d[ETH + 7] -= 1;
        let tc = &mut c.tunnels[ti as usize];
        tc.decap += 1;
        tc.decap_bytes += inner_total as u64;
        Some(Verdict::Tx(route.port))
    }

    // ---------------------------------------------------------------------------------------------------------
    // IPv4 in
    // ---------------------------------------------------------------------------------------------------------

    /// Validate the IPv4 header at ETH; returns (header length, total length).
    #[inline]
    fn check_ipv4(d: &[u8]) -> Result<(usize, usize), DropReason> {
        if d.len() < ETH + 20 {
            return Err(DropReason::Truncated);
        }
        let ip = &d[ETH..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        if ip[0] >> 4 != 4 || ihl < 20 {
            return Err(DropReason::BadIpHeader);
        }
        let total = usize::from(be16(ip, 2));
        if total < ihl || ip.len() < ihl {
            return Err(DropReason::BadIpHeader);
        }
        if ip.len() < total {
            return Err(DropReason::Truncated);
        }
        // RFC 1812 5.2.2: a router MUST verify the header checksum. The common 20-byte header takes the
        // fixed-size routine (straight-line, no dispatch through the SIMD entry table).
        let valid = match <&[u8; 20]>::try_from(&ip[..ihl]) {
            Ok(h) => checksum::ipv4_header_valid(h),
            Err(_) => checksum::fold(checksum::sum(&ip[..ihl], 0)) == 0xffff,
        };
        if !valid {
            return Err(DropReason::BadIpHeader);
        }
        Ok((ihl, total))
    }

    fn ipv4_in(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        released: Option<u32>,
        c: &mut Counters,
    ) -> Verdict {
        let (ihl, total) = match Self::check_ipv4(pkt.data()) {
            Ok(v) => v,
            Err(r) => return Verdict::Drop(r),
        };
        let d = pkt.data();
        let dst: [u8; 4] = d[ETH + 16..ETH + 20].try_into().expect("4 bytes");
        let proto = d[ETH + 9];
        if self.is_local4(tables, dst) {
            return match proto {
                PROTO_GRE => self.decap(tables, pkt, ihl, total, false, released, c),
                PROTO_ICMP => self.icmp4_local(tables, pkt, in_port, ihl, total),
                _ => Verdict::Drop(DropReason::LocalUnhandled),
            };
        }
        if tables.ports[in_port].role != PortRole::Inside {
            return Verdict::Drop(DropReason::NoRoute);
        }
        // Trailing Ethernet padding is not part of the packet.
        let excess = pkt.pkt_len() - ETH - total;
        if excess > 0 && !pkt.trim(excess) {
            return Verdict::Drop(DropReason::Segmented);
        }
        self.route_ip(tables, pkt, in_port, true, c)
    }

    // ---------------------------------------------------------------------------------------------------------
    // IPv6 in
    // ---------------------------------------------------------------------------------------------------------

    #[inline]
    fn check_ipv6(d: &[u8]) -> Result<usize, DropReason> {
        if d.len() < ETH + 40 {
            return Err(DropReason::Truncated);
        }
        if d[ETH] >> 4 != 6 {
            return Err(DropReason::BadIpHeader);
        }
        let plen = usize::from(be16(d, ETH + 4));
        if d.len() < ETH + 40 + plen {
            return Err(DropReason::Truncated);
        }
        Ok(40 + plen)
    }

    fn ipv6_in(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        released: Option<u32>,
        c: &mut Counters,
    ) -> Verdict {
        let total = match Self::check_ipv6(pkt.data()) {
            Ok(v) => v,
            Err(r) => return Verdict::Drop(r),
        };
        let d = pkt.data();
        let dst: [u8; 16] = d[ETH + 24..ETH + 40].try_into().expect("16 bytes");
        let next = d[ETH + 6];
        let solicited_node = dst[0] == 0xff && dst[1] == 0x02 && dst[11] == 1 && dst[12] == 0xff;
        if self.is_local6(tables, dst)
            || solicited_node
            || dst == [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        {
            return match next {
                PROTO_GRE if !solicited_node => {
                    self.decap(tables, pkt, 40, total, true, released, c)
                }
                PROTO_ICMPV6 => self.icmp6_local(tables, pkt, in_port, total),
                _ => Verdict::Drop(DropReason::LocalUnhandled),
            };
        }
        if dst[0] == 0xff || (dst[0] == 0xfe && dst[1] & 0xc0 == 0x80) {
            // Multicast and link-local are not routed.
            return Verdict::Drop(DropReason::NoRoute);
        }
        if tables.ports[in_port].role != PortRole::Inside {
            return Verdict::Drop(DropReason::NoRoute);
        }
        let excess = pkt.pkt_len() - ETH - total;
        if excess > 0 && !pkt.trim(excess) {
            return Verdict::Drop(DropReason::Segmented);
        }
        self.route_ip(tables, pkt, in_port, true, c)
    }

    // ---------------------------------------------------------------------------------------------------------
    // Forwarding of an IP packet (Ethernet header at 0, IP at ETH, exact length)
    // ---------------------------------------------------------------------------------------------------------

    /// Route an IP packet as a router hop: decrement TTL (ICMP time exceeded at zero), then encapsulate into
    /// the tunnel its destination routes to, or send it to an inside neighbour.
    #[inline(always)]
    fn route_ip(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        decrement: bool,
        c: &mut Counters,
    ) -> Verdict {
        let d = pkt.data();
        let v4 = be16(d, 12) == ETHERTYPE_IPV4;
        // No multicast or broadcast routing (and so no ICMP errors about them, RFC 1812 4.3.2.7).
        let group = if v4 {
            d[ETH + 16] >= 224
        } else {
            d[ETH + 24] == 0xff
        };
        if group {
            return Verdict::Drop(DropReason::NoRoute);
        }
        if decrement {
            let ttl = if v4 { d[ETH + 8] } else { d[ETH + 7] };
            if ttl <= 1 {
                return self.icmp_error(tables, pkt, in_port, IcmpKind::TimeExceeded, c);
            }
        }
        let d = pkt.data();
        let rt = &tables.routes;
        let tunnel = if v4 {
            let dst = u32::from_be_bytes(d[ETH + 16..ETH + 20].try_into().expect("4"));
            rt.encap4.lookup(dst)
        } else {
            let dst = u128::from_be_bytes(d[ETH + 24..ETH + 40].try_into().expect("16"));
            rt.encap6.lookup(dst)
        };
        if let Some(ti) = tunnel {
            return self.encap(tables, pkt, in_port, ti, decrement, false, c);
        }
        let dst: IpAddr = if v4 {
            IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(&d[ETH + 16..ETH + 20]).expect("4"),
            ))
        } else {
            IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(&d[ETH + 24..ETH + 40]).expect("16"),
            ))
        };
        let Some((port, nh)) = rt.next_hop(dst) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        // Plain IP only ever leaves through an inside port: nothing crosses the transport side unencapsulated.
        if tables.ports[port].role != PortRole::Inside {
            return Verdict::Drop(DropReason::NoRoute);
        }
        if decrement {
            decrement_ttl(pkt.data_mut());
        }
        self.l2_rewrite(tables, pkt, port, nh)
    }

    /// The MAC of next hop `nh`, through the last-neighbour cache; None while it is unresolved.
    #[inline(always)]
    fn neighbor_mac(&mut self, tables: &Tables, nh: IpAddr) -> Option<[u8; 6]> {
        match self.last_neighbor {
            Some((ip, mac)) if ip == nh => Some(mac),
            _ => {
                let Neighbor { mac, .. } = *tables.neighbors.get(&nh)?;
                self.last_neighbor = Some((nh, mac));
                Some(mac)
            }
        }
    }

    /// Write the Ethernet header for `port` toward next hop `nh`.
    fn l2_rewrite(&mut self, tables: &Tables, pkt: &mut B, port: usize, nh: IpAddr) -> Verdict {
        let Some(mac) = self.neighbor_mac(tables, nh) else {
            self.event(Event::Resolve { port, ip: nh });
            return self.wait_for_neighbor(Waiting::L2 { port, nh });
        };
        let src = tables.ports[port].mac;
        let d = pkt.data_mut();
        d[0..6].copy_from_slice(&mac);
        d[6..12].copy_from_slice(&src);
        Verdict::Tx(port)
    }

    // ---------------------------------------------------------------------------------------------------------
    // Encapsulation
    // ---------------------------------------------------------------------------------------------------------

    /// Encapsulate the IP packet at ETH into tunnel `ti` (TTL already handled). Inlined into the routing step:
    /// the call boundaries of handle -> route_ip -> encap cost a measurable share of the per-packet budget.
    ///
    /// `keepalive`: one of our own keepalives, sent even while the tunnel is down (it is what brings it up).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn encap(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        ti: u32,
        decrement: bool,
        keepalive: bool,
        c: &mut Counters,
    ) -> Verdict {
        let t = &tables.tunnels[ti as usize];
        if t.is_down() && !keepalive {
            c.tunnels[ti as usize].drops += 1;
            return Verdict::Drop(DropReason::TunnelDown);
        }
        let d = pkt.data();
        let v4 = be16(d, 12) == ETHERTYPE_IPV4;
        let inner_len = pkt.pkt_len() - ETH;
        if inner_len > usize::from(t.mtu) {
            return self.encap_too_big(tables, pkt, in_port, ti, decrement, c);
        }
        if !t.resolved {
            self.event(Event::Resolve {
                port: usize::from(t.out_port),
                ip: t.next_hop,
            });
            let v = self.wait_for_neighbor(Waiting::Encap {
                in_port,
                tunnel: t.tref(),
            });
            if !v.is_hold() {
                c.tunnels[ti as usize].drops += 1;
            }
            return v;
        }
        if t.sequence && self.owner_of(t) != self.worker {
            // RFC 2890 order on the wire: only the owner numbers and sends this tunnel's packets.
            return Verdict::Hold(HoldReason::Handoff {
                owner: self.owner_of(t),
                tunnel: t.tref(),
            });
        }
        self.encap_emit(t, pkt, ti, v4, inner_len, decrement, false, c)
    }

    /// The encapsulation proper, every check passed: the router hop's TTL decrement, the outer header from the
    /// tunnel's template with the per-packet fields, GRE checksum and sequence number, counters.
    ///
    /// `plain4`: the packet is one segment holding exactly an option-less IPv4 packet at ETH whose header
    /// checksum was verified (the fast path's shape). The GRE checksum then skips the inner header: a valid
    /// header sums to 0xffff, which adds nothing to a one's-complement sum, and the TTL decrement's RFC 1624
    /// update keeps it so. The payload is summed before any header is written (so its loads never wait on
    /// the stores that write the headers) and the GRE header's words come from the tunnel, not the packet.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn encap_emit(
        &mut self,
        t: &Tunnel,
        pkt: &mut B,
        ti: u32,
        v4: bool,
        inner_len: usize,
        decrement: bool,
        plain4: bool,
        c: &mut Counters,
    ) -> Verdict {
        // (Not with a sequence number: the fast path never has one, and the general sum covers it.)
        let payload_sum = if plain4 && t.checksum && !t.sequence {
            Some(checksum::fold(checksum::sum(
                &pkt.data()[ETH + 20..],
                t.gre_base_sum,
            )))
        } else {
            None
        };
        if decrement {
            // After the MTU check: an ICMP error quotes the packet as it was received.
            if v4 {
                decrement_ttl4(pkt.data_mut());
            } else {
                pkt.data_mut()[ETH + 7] -= 1;
            }
        }
        let d = pkt.data();
        let (tos_in, ttl_in, df) = if v4 {
            (d[ETH + 1], d[ETH + 8], d[ETH + 6] & 0x40 != 0)
        } else {
            (((be16(d, ETH) >> 4) & 0xff) as u8, d[ETH + 7], true)
        };
        // RFC 6040 normal mode: the outer ECN field is a copy of the inner one. DSCP inherited or fixed (the
        // masks are decided per tunnel, see `Tunnel::tos_keep`).
        let tos = (tos_in & t.tos_keep) | t.tos_set;
        let ttl = if t.ttl_set != 0 { t.ttl_set } else { ttl_in };
        let hl = t.header_bytes();
        debug_assert!(hl <= MAX_ENCAP_HEADER);
        if pkt.prepend(hl - ETH).is_none() {
            return Verdict::Drop(DropReason::NoHeadroom);
        }
        let outer_len = inner_len + hl - ETH;
        let ident = self.ip_ident;
        self.ip_ident = self.ip_ident.wrapping_add(1);
        let d = pkt.data_mut();
        copy_header(d, &t.template, hl);
        if t.outer_v6() {
            let ip = &mut d[ETH..ETH + 40];
            ip[0] = 0x60 | (tos >> 4);
            ip[1] = tos << 4;
            put16(ip, 4, (outer_len - 40) as u16);
            ip[7] = ttl;
        } else {
            let ip: &mut [u8; 20] = (&mut d[ETH..ETH + 20]).try_into().expect("20");
            outer_ipv4_fields(ip, t, tos, outer_len, ident, df, ttl);
        }
        if !v4 {
            // The template's protocol type is IPv4.
            put16(d, t.gre_at() + 2, ETHERTYPE_IPV6);
        }
        if t.sequence {
            // Single writer (the owner worker): load + store, no read-modify-write contention.
            let seq = t.state.tx_seq.load(Ordering::Relaxed);
            t.state.tx_seq.store(seq.wrapping_add(1), Ordering::Relaxed);
            let at = usize::from(t.seq_off);
            d[at..at + 4].copy_from_slice(&seq.to_be_bytes());
        }
        if t.checksum {
            // RFC 2784 2.5: one's complement of the sum of the GRE header and payload, checksum field zero.
            let gre_off = t.gre_at();
            let s = if let Some(p) = payload_sum {
                // GRE header (from the template) + inner payload; the inner header adds nothing.
                p
            } else if pkt.is_contiguous() {
                checksum::fold(checksum::sum(&pkt.data()[gre_off..], 0))
            } else {
                let mut acc = checksum::Accumulator::new();
                let mut first = true;
                pkt.for_each_segment(&mut |seg| {
                    if first {
                        acc.add(&seg[gre_off..]);
                        first = false;
                    } else {
                        acc.add(seg);
                    }
                });
                acc.finish()
            };
            put16(pkt.data_mut(), gre_off + 4, !s);
        }
        let tc = &mut c.tunnels[ti as usize];
        tc.encap += 1;
        tc.encap_bytes += inner_len as u64;
        Verdict::Tx(usize::from(t.out_port))
    }

    /// The inner packet exceeds the tunnel MTU: ICMP "too big" when it may not be fragmented, else fragment it
    /// (RFC 791) and encapsulate each piece; the first goes out as this packet's verdict, the others through the
    /// deferred queue. Out of line: it keeps the fragment array and its stack frame off the fast path (and
    /// `encap` non-recursive, so it inlines into the routing step).
    #[cold]
    #[inline(never)]
    fn encap_too_big(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        ti: u32,
        decrement: bool,
        c: &mut Counters,
    ) -> Verdict {
        let t = &tables.tunnels[ti as usize];
        let d = pkt.data();
        let v4 = be16(d, 12) == ETHERTYPE_IPV4;
        let inner_len = pkt.pkt_len() - ETH;
        let df = !v4 || d[ETH + 6] & 0x40 != 0;
        if df {
            c.tunnels[ti as usize].drops += 1;
            return self.icmp_error(tables, pkt, in_port, IcmpKind::TooBig(t.mtu), c);
        }
        let mut rest: [Option<B>; MAX_FRAGMENTS] = Default::default();
        let mut n = 0;
        let res = if inner_len.div_ceil(usize::from(t.mtu).saturating_sub(20) & !7) > MAX_FRAGMENTS
        {
            Err(super::frag::FragError::Unsupported)
        } else {
            super::frag::fragment_ipv4(pkt, usize::from(t.mtu), &mut |f| {
                rest[n] = Some(f);
                n += 1;
            })
        };
        if res.is_err() {
            c.tunnels[ti as usize].drops += 1;
            return Verdict::Drop(DropReason::TooBig);
        }
        c.fragments_created += n as u64;
        for f in rest.iter_mut().take(n) {
            let mut f = f.take().expect("filled");
            match self.encap(tables, &mut f, in_port, ti, decrement, false, c) {
                Verdict::Tx(p) => self.deferred.push((p, f)),
                Verdict::Drop(r) => c.drop_pkt(r),
                Verdict::Hold(why) => self.hold_now(f, why, c),
            }
        }
        self.encap(tables, pkt, in_port, ti, decrement, false, c)
    }

    // ---------------------------------------------------------------------------------------------------------
    // Decapsulation
    // ---------------------------------------------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn decap(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        ihl: usize,
        total: usize,
        outer_v6: bool,
        released: Option<u32>,
        c: &mut Counters,
    ) -> Verdict {
        if !pkt.is_contiguous() {
            return Verdict::Drop(DropReason::Segmented);
        }
        let d = pkt.data();
        let (local, remote, outer_ecn) = if outer_v6 {
            let dst: [u8; 16] = d[ETH + 24..ETH + 40].try_into().expect("16");
            let src: [u8; 16] = d[ETH + 8..ETH + 24].try_into().expect("16");
            (
                IpAddr::from(dst),
                IpAddr::from(src),
                ((be16(d, ETH) >> 4) & 0x03) as u8,
            )
        } else {
            // An outer fragment: reassemble first (`reasm`), then this path runs on the whole datagram.
            if be16(d, ETH + 6) & 0x3fff != 0 {
                let excess = pkt.pkt_len() - ETH - total;
                if excess > 0 && !pkt.trim(excess) {
                    return Verdict::Drop(DropReason::Segmented);
                }
                return Verdict::Hold(HoldReason::Fragment);
            }
            let dst: [u8; 4] = d[ETH + 16..ETH + 20].try_into().expect("4");
            let src: [u8; 4] = d[ETH + 12..ETH + 16].try_into().expect("4");
            (IpAddr::from(dst), IpAddr::from(src), d[ETH + 1] & 0x03)
        };
        let gre_bytes = &d[ETH + ihl..ETH + total];
        let g = match gre::Packet::new_checked(gre_bytes) {
            Ok(g) => g,
            Err(e) => {
                return Verdict::Drop(match e {
                    GreError::Truncated { .. } => DropReason::Truncated,
                    GreError::RoutingOrRecursion { .. } => DropReason::GreReservedBits,
                    GreError::Pptp(_) => DropReason::Pptp,
                    GreError::UnsupportedVersion { .. } => DropReason::BadGreVersion,
                })
            }
        };
        let key = g.key();
        let dk = crate::tunnel::table::DecapKey { local, remote, key };
        let ti = match self.last_decap {
            Some((k, ti)) if k == dk => ti,
            _ => {
                let Some(&ti) = tables.decap.get(&dk) else {
                    // Never decapsulate for strangers; tell a wrong key from an unknown peer.
                    return Verdict::Drop(if tables.peers.contains_key(&(local, remote)) {
                        DropReason::KeyMismatch
                    } else {
                        DropReason::UnknownTunnel
                    });
                };
                self.last_decap = Some((dk, ti));
                ti
            }
        };
        let t = &tables.tunnels[ti as usize];
        let tdrop = |c: &mut Counters, r: DropReason| {
            c.tunnels[ti as usize].drops += 1;
            Verdict::Drop(r)
        };
        if g.has_checksum() && !g.verify_checksum() {
            return tdrop(c, DropReason::BadChecksum);
        }
        let proto = g.protocol();
        let mut off = ETH + ihl + g.header_len();
        let seq = g.sequence();
        if proto == gre::protocol::KEEPALIVE {
            // The reply to our keepalive is the inner header we built: key, no checksum, no sequence number
            // (Cisco's format). It carries no data, so the tunnel's checksum requirement does not apply.
            return self.keepalive_in(tables, pkt, t, off, ETH + total, c);
        }
        if !g.has_checksum() && t.checksum {
            return tdrop(c, DropReason::MissingChecksum);
        }
        if t.sequence {
            let Some(s) = seq else {
                return tdrop(c, DropReason::MissingSequence);
            };
            // RFC 2890 2.2: deliver only packets later than the last delivered one.
            let last = t.state.rx_seq.load(Ordering::Relaxed);
            if !gre::seq_is_later(s, last) {
                return tdrop(c, DropReason::LateSequence);
            }
            let released = released == Some(s);
            if t.reorder.is_some() && !released && s != last.wrapping_add(1) {
                // Ahead of a gap: hold it in the reordering buffer (see `reorder`).
                return Verdict::Hold(HoldReason::Reorder {
                    tunnel: t.tref(),
                    seq: s,
                });
            }
            t.state.rx_seq.store(s, Ordering::Relaxed);
        }
        let inner_type = match proto {
            gre::protocol::IPV4 | gre::protocol::IPV6 => proto,
            gre::protocol::CISCO_METADATA => {
                match gre::CiscoMetaData::parse(&d[off..ETH + total]) {
                    Ok(m)
                        if m.inner_ethertype == ETHERTYPE_IPV4
                            || m.inner_ethertype == ETHERTYPE_IPV6 =>
                    {
                        off += m.shim_len;
                        m.inner_ethertype
                    }
                    Ok(_) => return tdrop(c, DropReason::UnsupportedGreProtocol),
                    Err(_) => return tdrop(c, DropReason::Truncated),
                }
            }
            _ => return tdrop(c, DropReason::UnsupportedGreProtocol),
        };
        let end = ETH + total;
        // Strip everything before the inner packet but leave room for a fresh Ethernet header.
        let strip = off - ETH;
        let trail = pkt.pkt_len() - end;
        if !pkt.adj(strip) || (trail > 0 && !pkt.trim(trail)) {
            return tdrop(c, DropReason::Truncated);
        }
        put16(pkt.data_mut(), 12, inner_type);
        let inner_ok = if inner_type == ETHERTYPE_IPV4 {
            Self::check_ipv4(pkt.data()).map(|(_, tot)| tot)
        } else {
            Self::check_ipv6(pkt.data())
        };
        let inner_total = match inner_ok {
            Ok(v) => v,
            Err(r) => return tdrop(c, r),
        };
        let excess = pkt.pkt_len() - ETH - inner_total;
        if excess > 0 && !pkt.trim(excess) {
            return tdrop(c, DropReason::Truncated);
        }
        let d = pkt.data();
        let (isrc, idst): (IpAddr, IpAddr) = if inner_type == ETHERTYPE_IPV4 {
            (
                IpAddr::from(<[u8; 4]>::try_from(&d[ETH + 12..ETH + 16]).expect("4")),
                IpAddr::from(<[u8; 4]>::try_from(&d[ETH + 16..ETH + 20]).expect("4")),
            )
        } else {
            (
                IpAddr::from(<[u8; 16]>::try_from(&d[ETH + 8..ETH + 24]).expect("16")),
                IpAddr::from(<[u8; 16]>::try_from(&d[ETH + 24..ETH + 40]).expect("16")),
            )
        };
        if inner_type == ETHERTYPE_IPV4
            && d[ETH + 9] == PROTO_GRE
            && isrc == t.local
            && idst == t.remote
        {
            // A Cisco keepalive from the peer: the inner packet goes back to the peer as it is (reflection),
            // only for a configured tunnel (we got here through the tunnel match) and only to its remote.
            c.tunnels[ti as usize].keepalives_rx += 1;
            c.tunnels[ti as usize].keepalives_reflected += 1;
            let Some((port, nh)) = tables.routes.next_hop(t.remote) else {
                return tdrop(c, DropReason::NoRoute);
            };
            return self.l2_rewrite(tables, pkt, port, nh);
        }
        if let Some(allowed) = &t.allowed_sources {
            if !allowed.iter().any(|n| n.contains(&isrc)) {
                return tdrop(c, DropReason::SpoofedSource);
            }
        }
        if tables.tunnel_locals.contains(&idst) {
            // A tunnel packet addressed to a tunnel endpoint of ours would loop (RFC 2784 has no TTL of its own).
            return tdrop(c, DropReason::TunnelLoop);
        }
        // RFC 6040 section 4.2 decapsulation (normal mode): outer CE with inner Not-ECT -> drop; outer CE with
        // inner ECT -> inner CE; otherwise the inner field stands.
        if outer_ecn == 0b11 {
            let d = pkt.data_mut();
            if inner_type == ETHERTYPE_IPV4 {
                let ecn = d[ETH + 1] & 0x03;
                if ecn == 0 {
                    return tdrop(c, DropReason::EcnCeOnNotEct);
                }
                if ecn != 0b11 {
                    let old = be16(d, ETH);
                    d[ETH + 1] |= 0x03;
                    let ck = csum_update16(be16(d, ETH + 10), old, be16(d, ETH));
                    put16(d, ETH + 10, ck);
                }
            } else {
                let ecn = ((be16(d, ETH) >> 4) & 0x03) as u8;
                if ecn == 0 {
                    return tdrop(c, DropReason::EcnCeOnNotEct);
                }
                d[ETH + 1] |= 0x30;
            }
        }
        let tc = &mut c.tunnels[ti as usize];
        tc.decap += 1;
        tc.decap_bytes += inner_total as u64;
        let in_port = usize::from(t.out_port);
        self.route_ip(tables, pkt, in_port, true, c)
    }

    /// Cisco keepalives (GRE protocol 0). A peer's keepalive carries an inner IPv4+GRE packet addressed back
    /// to the peer: forward it (reflect). An empty one is our own keepalive coming back: the tunnel is alive.
    fn keepalive_in(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        t: &Tunnel,
        off: usize,
        end: usize,
        c: &mut Counters,
    ) -> Verdict {
        let ti = t.index as usize;
        let d = pkt.data();
        let payload = &d[off..end];
        if payload.len() < 20 || payload[0] >> 4 != 4 {
            t.state
                .last_keepalive_tsc
                .store(self.now.max(1), Ordering::Relaxed);
            c.tunnels[ti].keepalives_rx += 1;
            return Verdict::Drop(DropReason::KeepaliveConsumed);
        }
        // The inner packet must go back to the tunnel's peer, from our tunnel address: reflect nothing else.
        let idst = IpAddr::from(<[u8; 4]>::try_from(&payload[16..20]).expect("4"));
        let isrc = IpAddr::from(<[u8; 4]>::try_from(&payload[12..16]).expect("4"));
        if idst != t.remote || isrc != t.local || payload[9] != PROTO_GRE {
            c.tunnels[ti].drops += 1;
            return Verdict::Drop(DropReason::UnsupportedGreProtocol);
        }
        let trail = pkt.pkt_len() - end;
        if !pkt.adj(off - ETH) || (trail > 0 && !pkt.trim(trail)) {
            return Verdict::Drop(DropReason::Truncated);
        }
        put16(pkt.data_mut(), 12, ETHERTYPE_IPV4);
        if Self::check_ipv4(pkt.data()).is_err() {
            c.tunnels[ti].drops += 1;
            return Verdict::Drop(DropReason::BadIpHeader);
        }
        c.tunnels[ti].keepalives_rx += 1;
        c.tunnels[ti].keepalives_reflected += 1;
        let Some((port, nh)) = tables.routes.next_hop(t.remote) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        self.l2_rewrite(tables, pkt, port, nh)
    }

    // ---------------------------------------------------------------------------------------------------------
    // Local: ARP, ICMP echo, ND
    // ---------------------------------------------------------------------------------------------------------

    fn arp_in(&mut self, tables: &Tables, pkt: &mut B, in_port: usize) -> Verdict {
        let d = pkt.data();
        if d.len() < ETH + 28 {
            return Verdict::Drop(DropReason::Truncated);
        }
        let a = &d[ETH..ETH + 28];
        if be16(a, 0) != 1 || be16(a, 2) != ETHERTYPE_IPV4 || a[4] != 6 || a[5] != 4 {
            return Verdict::Drop(DropReason::ArpIgnored);
        }
        let op = be16(a, 6);
        let sha: [u8; 6] = a[8..14].try_into().expect("6");
        let spa: [u8; 4] = a[14..18].try_into().expect("4");
        let tpa: [u8; 4] = a[24..28].try_into().expect("4");
        let port = &tables.ports[in_port];
        let ours = port.v4.iter().any(|x| x.0.octets() == tpa);
        let sender_on_link = port.v4.iter().any(|(a, l)| {
            ipnet::Ipv4Net::new(*a, *l).is_ok_and(|n| n.contains(&Ipv4Addr::from(spa)))
        });
        if sender_on_link && spa != [0; 4] && sha[0] & 1 == 0 {
            let known = tables.neighbors.get(&IpAddr::from(spa)).map(|n| n.mac);
            if known != Some(sha) && (ours || op == 2) {
                self.event(Event::Neighbor {
                    port: in_port,
                    ip: IpAddr::from(spa),
                    mac: sha,
                });
            }
        }
        if op != 1 || !ours {
            return Verdict::Drop(if op == 2 {
                DropReason::NeighborLearned
            } else {
                DropReason::ArpIgnored
            });
        }
        if !self.reply_limit.take(self.now) {
            return Verdict::Drop(DropReason::ReplyRateLimited);
        }
        let mac = port.mac;
        let d = pkt.data_mut();
        d[0..6].copy_from_slice(&sha);
        d[6..12].copy_from_slice(&mac);
        let a = &mut d[ETH..ETH + 28];
        put16(a, 6, 2);
        a[18..24].copy_from_slice(&sha);
        a[24..28].copy_from_slice(&spa);
        a[8..14].copy_from_slice(&mac);
        a[14..18].copy_from_slice(&tpa);
        Verdict::Tx(in_port)
    }

    fn icmp4_local(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        ihl: usize,
        total: usize,
    ) -> Verdict {
        let d = pkt.data();
        if total < ihl + 8 {
            return Verdict::Drop(DropReason::Truncated);
        }
        if d[ETH + ihl] != 8 {
            return Verdict::Drop(DropReason::LocalUnhandled);
        }
        let excess = pkt.pkt_len() - ETH - total;
        if excess > 0 && !pkt.trim(excess) {
            return Verdict::Drop(DropReason::Segmented);
        }
        if checksum::fold(checksum::sum(&pkt.data()[ETH + ihl..], 0)) != 0xffff {
            return Verdict::Drop(DropReason::BadChecksum);
        }
        let mac = tables.ports[in_port].mac;
        let d = pkt.data_mut();
        // Echo reply: swap addresses, type 8 -> 0 (RFC 1624 update of the ICMP checksum), fresh TTL.
        let (eth, rest) = d.split_at_mut(6);
        eth.copy_from_slice(&rest[..6]);
        d[6..12].copy_from_slice(&mac);
        let ip = &mut d[ETH..];
        let mut src = [0u8; 4];
        src.copy_from_slice(&ip[12..16]);
        ip.copy_within(16..20, 12);
        ip[16..20].copy_from_slice(&src);
        ip[8] = 64;
        put16(ip, 10, 0);
        let ck = ipv4_header_checksum(&ip[..ihl]);
        put16(ip, 10, ck);
        let icmp = &mut ip[ihl..];
        let old = be16(icmp, 0);
        icmp[0] = 0;
        let ck = csum_update16(be16(icmp, 2), old, be16(icmp, 0));
        put16(icmp, 2, ck);
        Verdict::Tx(in_port)
    }

    fn icmp6_local(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        total: usize,
    ) -> Verdict {
        let excess = pkt.pkt_len() - ETH - total;
        if excess > 0 && !pkt.trim(excess) {
            return Verdict::Drop(DropReason::Segmented);
        }
        let d = pkt.data();
        if total < 48 {
            return Verdict::Drop(DropReason::Truncated);
        }
        let src: [u8; 16] = d[ETH + 8..ETH + 24].try_into().expect("16");
        let dst: [u8; 16] = d[ETH + 24..ETH + 40].try_into().expect("16");
        let icmp = &d[ETH + 40..ETH + total];
        let plen = icmp.len() as u32;
        let ps = icmpv6_pseudo(&src, &dst, plen);
        if checksum::fold(checksum::sum(icmp, ps)) != 0xffff {
            return Verdict::Drop(DropReason::BadChecksum);
        }
        let mac = tables.ports[in_port].mac;
        match icmp[0] {
            128 if self.is_local6(tables, dst) => {
                let d = pkt.data_mut();
                let (eth, rest) = d.split_at_mut(6);
                eth.copy_from_slice(&rest[..6]);
                d[6..12].copy_from_slice(&mac);
                d[ETH + 8..ETH + 24].copy_from_slice(&dst);
                d[ETH + 24..ETH + 40].copy_from_slice(&src);
                d[ETH + 7] = 64;
                // Swapping src and dst leaves the pseudo-header sum unchanged: only the type changes.
                let old = be16(d, ETH + 40);
                d[ETH + 40] = 129;
                let ck = csum_update16(be16(d, ETH + 42), old, be16(d, ETH + 40));
                put16(d, ETH + 42, ck);
                Verdict::Tx(in_port)
            }
            135 => self.nd_solicit(tables, pkt, in_port, src, total),
            136 => {
                // Neighbour advertisement: learn the target's link-layer address (RFC 4861 7.2.5).
                if d[ETH + 7] == 255 && icmp.len() >= 24 {
                    let target: [u8; 16] = icmp[8..24].try_into().expect("16");
                    if let Some(ll) = nd_option(&icmp[24..], 2) {
                        self.event(Event::Neighbor {
                            port: in_port,
                            ip: IpAddr::from(target),
                            mac: ll,
                        });
                    }
                }
                Verdict::Drop(DropReason::NeighborLearned)
            }
            _ => Verdict::Drop(DropReason::LocalUnhandled),
        }
    }

    /// RFC 4861 7.2.4: answer a solicitation for one of our addresses with a solicited advertisement carrying
    /// our link-layer address; learn the solicitor's address from its option.
    fn nd_solicit(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        src: [u8; 16],
        total: usize,
    ) -> Verdict {
        let d = pkt.data();
        let icmp = &d[ETH + 40..ETH + total];
        if d[ETH + 7] != 255 || icmp.len() < 24 || icmp[1] != 0 {
            return Verdict::Drop(DropReason::ArpIgnored);
        }
        let target: [u8; 16] = icmp[8..24].try_into().expect("16");
        let port = &tables.ports[in_port];
        if !port.v6.iter().any(|a| a.0.octets() == target) {
            return Verdict::Drop(DropReason::ArpIgnored);
        }
        let sll = nd_option(&icmp[24..], 1);
        let unspecified = src == [0; 16];
        if let (Some(mac), false) = (sll, unspecified) {
            self.event(Event::Neighbor {
                port: in_port,
                ip: IpAddr::from(src),
                mac,
            });
        }
        if !self.reply_limit.take(self.now) {
            return Verdict::Drop(DropReason::ReplyRateLimited);
        }
        let mac = port.mac;
        let req_mac: [u8; 6] = d[6..12].try_into().expect("6");
        // The advertisement is 24 bytes + an 8-byte target link-layer option.
        let want = ETH + 40 + 32;
        let have = pkt.pkt_len();
        if have < want {
            if pkt.append(want - have).is_none() {
                return Verdict::Drop(DropReason::NoHeadroom);
            }
        } else if have > want && !pkt.trim(have - want) {
            return Verdict::Drop(DropReason::Segmented);
        }
        let dst6: [u8; 16] = if unspecified {
            // RFC 4861 7.2.4: to all-nodes when the solicitation came from the unspecified address.
            [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        } else {
            src
        };
        let d = pkt.data_mut();
        if unspecified {
            d[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
        } else {
            d[0..6].copy_from_slice(&req_mac);
        }
        d[6..12].copy_from_slice(&mac);
        let ip = &mut d[ETH..];
        put16(ip, 4, 32);
        ip[6] = PROTO_ICMPV6;
        ip[7] = 255;
        ip[8..24].copy_from_slice(&target);
        ip[24..40].copy_from_slice(&dst6);
        let icmp = &mut ip[40..72];
        icmp[0] = 136;
        icmp[1] = 0;
        put16(icmp, 2, 0);
        // Flags: Solicited (unless to all-nodes) and Override.
        icmp[4] = if unspecified { 0x20 } else { 0x60 };
        icmp[5..8].fill(0);
        icmp[8..24].copy_from_slice(&target);
        icmp[24] = 2;
        icmp[25] = 1;
        icmp[26..32].copy_from_slice(&mac);
        let ps = icmpv6_pseudo(&target, &dst6, 32);
        let ck = !checksum::fold(checksum::sum(icmp, ps));
        put16(icmp, 2, ck);
        Verdict::Tx(in_port)
    }

    // ---------------------------------------------------------------------------------------------------------
    // ICMP errors, in place
    // ---------------------------------------------------------------------------------------------------------

    /// Turn the offending packet into an ICMP error back to its source (rate limited), then route it.
    fn icmp_error(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        kind: IcmpKind,
        c: &mut Counters,
    ) -> Verdict {
        let drop_reason = match kind {
            IcmpKind::TooBig(_) => DropReason::TooBig,
            IcmpKind::TimeExceeded => DropReason::TtlExpired,
        };
        // The packet becomes the ICMP error (a tx); when the limiter says no, it is dropped under its reason.
        if !self.icmp_limit.take(self.now) {
            c.icmp_errors_suppressed += 1;
            return Verdict::Drop(drop_reason);
        }
        if !pkt.is_contiguous() {
            return Verdict::Drop(DropReason::Segmented);
        }
        let d = pkt.data();
        let v4 = be16(d, 12) == ETHERTYPE_IPV4;
        let port = &tables.ports[in_port];
        let src_mac: [u8; 6] = d[6..12].try_into().expect("6");
        if v4 {
            let Some(me) = port.first_v4().or_else(|| tables.local4.first().copied()) else {
                return Verdict::Drop(drop_reason);
            };
            let orig_src: [u8; 4] = d[ETH + 12..ETH + 16].try_into().expect("4");
            // Never answer an ICMP error with one (RFC 1122 3.2.2), nor a fragment other than the first.
            if d[ETH + 9] == PROTO_ICMP {
                let ihl = usize::from(d[ETH] & 0x0f) * 4;
                let t = d.get(ETH + ihl).copied().unwrap_or(0);
                if !matches!(t, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18) {
                    return Verdict::Drop(drop_reason);
                }
            }
            if be16(d, ETH + 6) & 0x1fff != 0 {
                return Verdict::Drop(drop_reason);
            }
            // RFC 1812 4.3.2.3: as much of the original as fits in 576 bytes.
            let quote = (pkt.pkt_len() - ETH).min(576 - 28);
            let excess = pkt.pkt_len() - ETH - quote;
            if (excess > 0 && !pkt.trim(excess)) || pkt.prepend(28).is_none() {
                return Verdict::Drop(DropReason::NoHeadroom);
            }
            let d = pkt.data_mut();
            d[0..6].copy_from_slice(&src_mac);
            d[6..12].copy_from_slice(&port.mac);
            put16(d, 12, ETHERTYPE_IPV4);
            let total = 28 + quote;
            let ip = &mut d[ETH..ETH + 20];
            ip.copy_from_slice(&[
                0x45, 0, 0, 0, 0, 0, 0, 0, 64, PROTO_ICMP, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ]);
            put16(ip, 2, total as u16);
            ip[12..16].copy_from_slice(&me.octets());
            ip[16..20].copy_from_slice(&orig_src);
            let ck = ipv4_header_checksum(ip);
            put16(ip, 10, ck);
            let icmp = &mut d[ETH + 20..];
            match kind {
                IcmpKind::TooBig(mtu) => {
                    icmp[0..8].copy_from_slice(&[3, 4, 0, 0, 0, 0, 0, 0]);
                    put16(icmp, 6, mtu);
                }
                IcmpKind::TimeExceeded => icmp[0..8].copy_from_slice(&[11, 0, 0, 0, 0, 0, 0, 0]),
            }
            let ck = checksum::checksum(icmp);
            put16(icmp, 2, ck);
        } else {
            let Some(me) = port.first_v6().or_else(|| tables.local6.first().copied()) else {
                return Verdict::Drop(drop_reason);
            };
            let orig_src: [u8; 16] = d[ETH + 8..ETH + 24].try_into().expect("16");
            if d[ETH + 6] == PROTO_ICMPV6 && d.get(ETH + 40).is_some_and(|t| *t < 128) {
                return Verdict::Drop(drop_reason);
            }
            // RFC 4443 2.4(c): as much of the invoking packet as fits in the minimum IPv6 MTU.
            let quote = (pkt.pkt_len() - ETH).min(1280 - 48);
            let excess = pkt.pkt_len() - ETH - quote;
            if (excess > 0 && !pkt.trim(excess)) || pkt.prepend(48).is_none() {
                return Verdict::Drop(DropReason::NoHeadroom);
            }
            let d = pkt.data_mut();
            d[0..6].copy_from_slice(&src_mac);
            d[6..12].copy_from_slice(&port.mac);
            put16(d, 12, ETHERTYPE_IPV6);
            let plen = (8 + quote) as u16;
            let ip = &mut d[ETH..ETH + 40];
            ip[0..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 0, PROTO_ICMPV6, 64]);
            put16(ip, 4, plen);
            ip[8..24].copy_from_slice(&me.octets());
            ip[24..40].copy_from_slice(&orig_src);
            let icmp = &mut d[ETH + 40..];
            match kind {
                IcmpKind::TooBig(mtu) => {
                    icmp[0..8].copy_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
                    icmp[4..8].copy_from_slice(&u32::from(mtu).to_be_bytes());
                }
                IcmpKind::TimeExceeded => icmp[0..8].copy_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]),
            }
            let ps = icmpv6_pseudo(&me.octets(), &orig_src, u32::from(plen));
            let ck = !checksum::fold(checksum::sum(icmp, ps));
            put16(icmp, 2, ck);
        }
        c.icmp_errors_sent += 1;
        // Back toward the sender: the source is behind the port the packet came in on, or behind a tunnel.
        let src_role = tables.ports[in_port].role;
        if src_role == PortRole::Inside {
            Verdict::Tx(in_port)
        } else {
            self.route_ip(tables, pkt, in_port, false, c)
        }
    }
}

/// Copy the first `hl` bytes of an encapsulation template into `d` as two overlapping fixed-size copies (inline
/// vector moves) instead of a variable-length `memcpy` call: headers are 38..70 bytes.
/// The GRE header of a decap fast path at `gre_at` (its first four bytes `gre`, already in view): version 0, no
/// flag but K, protocol IPv4 or IPv6. Returns (protocol, key, offset of the inner packet).
#[inline(always)]
fn fast_gre(d: &[u8], gre_at: usize, gre: &[u8]) -> Option<(u16, Option<u32>, usize)> {
    let flags = u16::from_be_bytes([gre[0], gre[1]]);
    let proto = u16::from_be_bytes([gre[2], gre[3]]);
    if flags & !gre::flags::KEY != 0 || (proto != ETHERTYPE_IPV4 && proto != ETHERTYPE_IPV6) {
        return None;
    }
    if flags != 0 {
        let k = d.get(gre_at + 4..gre_at + 8)?;
        Some((
            proto,
            Some(u32::from_be_bytes([k[0], k[1], k[2], k[3]])),
            gre_at + 8,
        ))
    } else {
        Some((proto, None, gre_at + 4))
    }
}

/// The per-packet fields of an outer IPv4 header whose other fields the tunnel's template wrote: TOS, total
/// length, identification, DF, TTL, and the header checksum from the tunnel's precomputed sum plus these words,
/// in registers (never read back from the packet).
#[inline(always)]
fn outer_ipv4_fields(
    ip: &mut [u8; 20],
    t: &Tunnel,
    tos: u8,
    outer_len: usize,
    ident: u16,
    df: bool,
    ttl: u8,
) {
    let frag: u16 = if df { 0x4000 } else { 0 };
    let sum = t.ip4_base_sum
        + u32::from(tos)
        + outer_len as u32
        + u32::from(ident)
        + u32::from(frag)
        + (u32::from(ttl) << 8);
    ip[1] = tos;
    put16(ip, 2, outer_len as u16);
    put16(ip, 4, ident);
    put16(ip, 6, frag);
    ip[8] = ttl;
    put16(ip, 10, !checksum::fold(sum));
}

/// The inner IPv4 header values [`Worker::fast_emit4`] needs, as the fast path's checks loaded them.
#[derive(Clone, Copy)]
struct InnerV4 {
    /// Inner packet length (bytes of IP).
    len: usize,
    tos: u8,
    /// As received (more than 1).
    ttl: u8,
    df: bool,
    /// The header checksum as received (host order of the big-endian field).
    cksum: u16,
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

/// Decrement the TTL / hop limit of the IP packet at ETH (caller checked it is > 1), updating the IPv4 header
/// checksum incrementally (RFC 1624).
#[inline(always)]
fn decrement_ttl(d: &mut [u8]) {
    if be16(d, 12) == ETHERTYPE_IPV4 {
        decrement_ttl4(d);
    } else {
        d[ETH + 7] -= 1;
    }
}

/// [`decrement_ttl`] for a frame known to carry IPv4.
#[inline(always)]
fn decrement_ttl4(d: &mut [u8]) {
    // One bounds check for the header; the TTL/protocol word drops by 0x0100.
    let ip: &mut [u8; 20] = (&mut d[ETH..ETH + 20]).try_into().expect("20");
    ip[8] -= 1;
    let ck = ttl_decrement_checksum(u16::from_be_bytes([ip[10], ip[11]]));
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
}

/// The IPv4 header checksum after the TTL drops by one: `csum_update16(hc, old, old - 0x0100)` for any
/// TTL/protocol word `old` (RFC 1624 eqn. 3), folded by hand: `!old + old` is 0xffff, so the sum is
/// `!hc + 0xfeff`, which one end-around carry folds (at most 0x1fefe).
#[inline(always)]
fn ttl_decrement_checksum(hc: u16) -> u16 {
    let s = u32::from(!hc) + 0xfeff;
    !(((s & 0xffff) + (s >> 16)) as u16)
}

use greway_wire::cpu::prefetch;

#[derive(Clone, Copy, Debug)]
enum IcmpKind {
    TooBig(u16),
    TimeExceeded,
}

/// The ICMPv6 pseudo-header sum (RFC 8200 8.1).
fn icmpv6_pseudo(src: &[u8; 16], dst: &[u8; 16], len: u32) -> u32 {
    let mut s = checksum::sum(src, 0);
    s = checksum::sum(dst, u32::from(checksum::fold(s)));
    let mut tail = [0u8; 8];
    tail[0..4].copy_from_slice(&len.to_be_bytes());
    tail[7] = PROTO_ICMPV6;
    checksum::sum(&tail, u32::from(checksum::fold(s)))
}

/// Find an ND option of `kind` with a 6-byte link-layer address (RFC 4861 4.6.1).
fn nd_option(mut opts: &[u8], kind: u8) -> Option<[u8; 6]> {
    while opts.len() >= 8 {
        let len = usize::from(opts[1]) * 8;
        if len == 0 || len > opts.len() {
            return None;
        }
        if opts[0] == kind && len >= 8 {
            return opts[2..8].try_into().ok();
        }
        opts = &opts[len..];
    }
    None
}

impl<B: PacketBuf + Send> Processor<B> for Gateway<B> {
    #[inline]
    fn begin_burst(&mut self, now_tsc: u64) {
        self.w.now = now_tsc;
        // Pick up a newly published table between bursts (an atomic load; the Arc clone only on change).
        let cur = self.w.shared.tables.load();
        if cur.generation != self.tables.generation {
            let new = arc_swap::Guard::into_inner(cur);
            if self.w.reorder.iter().any(|r| !r.is_empty())
                && new.tunnel_ids[..] != self.tables.tunnel_ids[..]
            {
                // Tunnels moved: carry the reordering buffers over by run-unique tunnel id.
                let mut old = std::mem::take(&mut self.w.reorder);
                self.w
                    .reorder
                    .resize_with(new.tunnels.len(), Default::default);
                for (oi, buf) in old.iter_mut().enumerate() {
                    let id = self.tables.tunnel_ids.get(oi);
                    if let Some(ni) = id.and_then(|id| new.tunnel_ids.iter().position(|x| x == id))
                    {
                        std::mem::swap(&mut self.w.reorder[ni], buf);
                    }
                }
                // A deleted tunnel's held packets are freed with `old`.
                self.w.reorder_held = self.w.reorder.iter().map(|r| r.len()).sum();
            }
            self.tables = new;
            self.w.last_decap = None;
            self.w.last_neighbor = None;
            self.w.last_decap4 = None;
        }
    }

    /// The encapsulation fast path's first stage for an inside burst: every IPv4 destination's encap-route
    /// lookup, in a loop of its own (see `Worker::staged_ti`). With many tunnels their entries no longer stay
    /// in L1, so after the lookups the tunnels' hot lines and counters are prefetched for the whole burst. The
    /// `tbl24` entries are not prefetched first: in this short loop their misses overlap anyway, and a separate
    /// prefetch pass measured 9 cycles/packet slower on encap-1k-tunnels (140.1 against 131.2).
    #[inline]
    fn prepare_burst(&mut self, pkts: &[B], in_port: usize, counters: &Counters) {
        const PREFETCH_MIN_TUNNELS: usize = 16;
        let w = &mut self.w;
        w.staged_len = 0;
        w.staged_next = 0;
        let tables = &*self.tables;
        if !w.fast_path
            || pkts.len() > STAGE_MAX
            || tables.ports.get(in_port).map(|p| p.role) != Some(PortRole::Inside)
        {
            return;
        }
        // The destination's encap route by family (IPv6: the fixed header's destination).
        let lookup = |p: &B| {
            let d = p.data();
            if d.len() >= ETH + 20 && be16(d, 12) == ETHERTYPE_IPV4 {
                let a = u32::from_be_bytes([d[ETH + 16], d[ETH + 17], d[ETH + 18], d[ETH + 19]]);
                tables.routes.encap4.lookup(a)
            } else if d.len() >= ETH + 40 && be16(d, 12) == ETHERTYPE_IPV6 {
                let a: &[u8; 16] = d[ETH + 24..ETH + 40].try_into().ok()?;
                tables.routes.encap6.lookup_bytes(a)
            } else {
                None
            }
        };
        let many = tables.tunnels.len() >= PREFETCH_MIN_TUNNELS;
        let staged = &mut w.staged_ti[..pkts.len()];
        for (slot, p) in staged.iter_mut().zip(pkts) {
            *slot = lookup(p).unwrap_or(NO_TUNNEL);
        }
        if many {
            for &ti in staged.iter() {
                if let Some(t) = tables.tunnels.get(ti as usize) {
                    let base = (t as *const Tunnel).cast::<u8>();
                    for line in 0..tables.tunnel_lines {
                        prefetch(base.wrapping_add(64 * line));
                    }
                    if let Some(tc) = counters.tunnels.get(ti as usize) {
                        prefetch((tc as *const crate::stats::TunnelCounters).cast::<u8>());
                    }
                }
            }
        }
        w.staged_len = pkts.len();
    }

    #[inline(always)]
    fn process(&mut self, pkt: &mut B, in_port: usize, counters: &mut Counters) -> Verdict {
        // The worker calls `process` once per packet of the prepared burst, in order.
        let w = &mut self.w;
        let staged = if w.staged_next < w.staged_len {
            let ti = w.staged_ti[w.staged_next];
            w.staged_next += 1;
            Some(ti)
        } else {
            None
        };
        w.handle_staged(&self.tables, pkt, in_port, staged, counters)
    }

    fn hold(&mut self, pkt: B, why: HoldReason, counters: &mut Counters) {
        match why {
            HoldReason::Fragment => self.hold_fragment(pkt, counters),
            HoldReason::Reorder { tunnel, seq } => {
                // Decided in this poll round, on this table generation: the index is current.
                let ti = tunnel.index as usize;
                let t = &self.tables.tunnels[ti];
                debug_assert_eq!(t.id, tunnel.id);
                let (window, timeout_ms) = t.reorder.unwrap_or((1, 0));
                let last = t.state.rx_seq.load(Ordering::Relaxed);
                let deadline = self.w.now + ms_to_ticks(u64::from(timeout_ms), self.w.tsc_hz);
                let w = &mut self.w.reorder;
                if w.len() <= ti {
                    w.resize_with(ti + 1, Default::default);
                }
                match w[ti].insert(seq, last, deadline, window, pkt) {
                    None => self.w.reorder_held += 1,
                    Some((seq, mut pkt)) => {
                        // The window is full: its earliest packet is delivered now (sent with the round's
                        // deferred packets), which keeps the buffer within its window.
                        let port = usize::from(t.out_port);
                        match self
                            .w
                            .handle_released(&self.tables, &mut pkt, port, seq, counters)
                        {
                            Verdict::Tx(p) => self.w.deferred.push((p, pkt)),
                            Verdict::Drop(r) => counters.drop_pkt(r),
                            Verdict::Hold(why) => Processor::hold(self, pkt, why, counters),
                        }
                    }
                }
            }
            HoldReason::Handoff { .. } | HoldReason::Neighbor(_) => {
                self.w.hold_now(pkt, why, counters)
            }
        }
    }

    fn poll_deferred(
        &mut self,
        now_tsc: u64,
        emit: &mut dyn FnMut(usize, B) -> bool,
        counters: &mut Counters,
    ) {
        // Called every poll round: nothing deferred, held or handed off (the common case) costs three loads.
        if self.w.deferred.is_empty()
            && self.w.reasm.is_empty()
            && self.w.reorder_held == 0
            && self.w.held.is_empty()
            && self.w.shared.handoff[self.w.worker].is_empty()
        {
            return;
        }
        // The table stays the one `begin_burst` loaded for this poll round: the worker laid its counters out
        // for it, and a new generation is only picked up at the start of the next round.
        self.w.now = now_tsc;
        if !self.w.reasm.is_empty() {
            let mut expired = 0u64;
            self.w.reasm.expire(now_tsc, &mut |pkt| {
                drop(pkt);
                expired += 1;
            });
            counters.drops[DropReason::OuterFragment as usize] += expired;
        }
        for (p, pkt) in self.w.deferred.drain(..) {
            if !emit(p, pkt) {
                counters.drop_pkt(DropReason::TxFull);
            }
        }
        // Reordering buffers: release what is in order now, or whose time is up, through the whole decision
        // again (the sequence check lets the released number through).
        for ti in 0..self.w.reorder.len() {
            if self.w.reorder[ti].is_empty() {
                continue;
            }
            let Some(t) = self.tables.tunnels.get(ti) else {
                for pkt in self.w.reorder[ti].drain() {
                    drop(pkt);
                    self.w.reorder_held -= 1;
                    counters.drop_pkt(DropReason::UnknownTunnel);
                }
                continue;
            };
            let state = t.state.clone();
            let port = usize::from(t.out_port);
            loop {
                let last = state.rx_seq.load(Ordering::Relaxed);
                let Some((seq, mut pkt)) = self.w.reorder[ti].pop_ready(last, now_tsc) else {
                    break;
                };
                self.w.reorder_held -= 1;
                let v = self
                    .w
                    .handle_released(&self.tables, &mut pkt, port, seq, counters);
                self.settle(v, pkt, emit, counters);
            }
        }
        if !self.w.held.is_empty() {
            self.release_held(now_tsc, emit, counters);
        }
        for _ in 0..256 {
            let Some((h, mut pkt)) = self.w.shared.handoff[self.w.worker].pop() else {
                break;
            };
            // Named by id: a tunnel removed (or replaced under the same index) since the packet was handed
            // off is not this packet's tunnel.
            let Some(ti) = self.tables.resolve(h.tunnel) else {
                drop(pkt);
                counters.drop_pkt(DropReason::UnknownTunnel);
                continue;
            };
            // The sending worker already handled TTL and MTU; only the owner's numbering and sending is left.
            let v = if h.keepalive {
                self.encap_keepalive(&mut pkt, ti, counters)
            } else {
                self.encap(&mut pkt, 0, ti, counters)
            };
            self.settle(v, pkt, emit, counters);
        }
    }

    fn tunnel_ids(&self) -> Option<&Arc<[u64]>> {
        Some(&self.tables.tunnel_ids)
    }

    fn finish(&mut self, counters: &mut Counters) {
        let mut held = 0u64;
        self.w.reasm.drain(&mut |pkt| {
            drop(pkt);
            held += 1;
        });
        counters.drops[DropReason::OuterFragment as usize] += held;
        while let Some((_, _, pkt)) = self.w.held.pop_front() {
            drop(pkt);
            counters.drop_pkt(DropReason::NoNeighbor);
        }
        for (_, pkt) in self.w.deferred.drain(..) {
            drop(pkt);
            counters.drop_pkt(DropReason::TxFull);
        }
        for r in &mut self.w.reorder {
            for pkt in r.drain() {
                drop(pkt);
                counters.drop_pkt(DropReason::LateSequence);
            }
        }
        while let Some((_, pkt)) = self.w.shared.handoff[self.w.worker].pop() {
            drop(pkt);
            counters.drop_pkt(DropReason::HandoffFull);
        }
    }
}

impl<B: PacketBuf + Send> Gateway<B> {
    /// An outer fragment: into the reassembly table; a completed datagram goes on through the rules.
    fn hold_fragment(&mut self, pkt: B, counters: &mut Counters) {
        // Incomplete datagrams are given up after a second.
        let deadline = self.w.now + self.w.tsc_hz;
        match self.w.reasm.offer(pkt, deadline) {
            super::reasm::Offer::Held => {}
            super::reasm::Offer::Dropped(all) => {
                counters.drops[DropReason::OuterFragment as usize] += all.len() as u64;
            }
            super::reasm::Offer::Complete(mut whole, n) => {
                // The fragments beyond the first were received and are now part of this datagram: they are
                // accounted as `fragment_reassembled` (not an error), the datagram goes on as the first.
                counters.fragments_reassembled += 1;
                counters.drops[DropReason::FragmentReassembled as usize] += (n - 1) as u64;
                let port = self
                    .tables
                    .ports
                    .iter()
                    .position(|p| p.role == PortRole::Outside)
                    .unwrap_or(0);
                match self.w.handle(&self.tables, &mut whole, port, counters) {
                    Verdict::Tx(p) => self.w.deferred.push((p, whole)),
                    Verdict::Drop(r) => counters.drop_pkt(r),
                    Verdict::Hold(why) => Processor::hold(self, whole, why, counters),
                }
            }
        }
    }

    /// The end of a deferred packet's decision: queued for tx, dropped with its reason, or held again.
    fn settle(
        &mut self,
        v: Verdict,
        pkt: B,
        emit: &mut dyn FnMut(usize, B) -> bool,
        counters: &mut Counters,
    ) {
        match v {
            Verdict::Tx(p) => {
                if !emit(p, pkt) {
                    counters.drop_pkt(DropReason::TxFull);
                }
            }
            Verdict::Drop(r) => {
                drop(pkt);
                counters.drop_pkt(r)
            }
            Verdict::Hold(why) => Processor::hold(self, pkt, why, counters),
        }
    }

    /// Send the held packets whose neighbour is now known; drop (as `no_neighbor`) those that waited too long.
    fn release_held(
        &mut self,
        now: u64,
        emit: &mut dyn FnMut(usize, B) -> bool,
        counters: &mut Counters,
    ) {
        for _ in 0..self.w.held.len() {
            let Some((deadline, w, mut pkt)) = self.w.held.pop_front() else {
                break;
            };
            // None: still waiting.
            let v = match w {
                Waiting::L2 { port, nh } => self.tables.neighbors.get(&nh).map(|n| {
                    let (mac, src) = (n.mac, self.tables.ports[port].mac);
                    let d = pkt.data_mut();
                    d[0..6].copy_from_slice(&mac);
                    d[6..12].copy_from_slice(&src);
                    Verdict::Tx(port)
                }),
                // By id: the tunnel may have moved to another index, or be gone.
                Waiting::Encap { in_port, tunnel } => match self.tables.resolve(tunnel) {
                    Some(ti) if self.tables.tunnels[ti as usize].resolved => Some(self.w.encap(
                        &self.tables,
                        &mut pkt,
                        in_port,
                        ti,
                        true,
                        false,
                        counters,
                    )),
                    Some(_) => None,
                    None => Some(Verdict::Drop(DropReason::UnknownTunnel)),
                },
            };
            match v {
                // Released: sent, dropped, handed off to the tunnel's owner, or (an ICMP error) held for another
                // neighbour.
                Some(v) => self.settle(v, pkt, emit, counters),
                None if now < deadline => self.w.held.push_back((deadline, w, pkt)),
                None => {
                    drop(pkt);
                    counters.drop_pkt(DropReason::NoNeighbor)
                }
            }
        }
    }
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
mod checksum_update_tests {
    use super::*;

    #[test]
    fn ttl_decrement_checksum_equals_rfc1624_update_for_every_checksum() {
        for hc in 0..=u16::MAX {
            for old in [0x0201u16, 0x0211, 0x0506, 0x4011, 0x402f, 0xff2f, 0xffff] {
                assert_eq!(
                    ttl_decrement_checksum(hc),
                    csum_update16(hc, old, old - 0x0100),
                    "hc={hc:#06x} old={old:#06x}"
                );
            }
        }
    }
}
