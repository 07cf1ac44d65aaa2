//! The fast pass over a whole rx burst ([`Processor::fast_burst`]): on an inside port, (1) each packet's checks
//! and encap-route lookup and (3) its encapsulation, in one loop while the tunnels stay in L1 (after a run: the
//! burst's first packets of one family into one tunnel, checked in one loop and written in a second, counted
//! once), or with many tunnels in stages over the burst as VPP runs its nodes over a vector, (1) for every
//! packet with (2) its tunnel's lines prefetched, then (3) for every staged packet (first those into tunnels of
//! one shape, checked in one loop and written in a second, then the rest one by one); on an outside port, every
//! packet through the decap fast paths. Each loop is out of the worker's poll loop, so its values stay in
//! registers. The stages do exactly what the per-packet fast paths do (`fast.rs`;
//! `tests::fast_path_equals_general_rules` runs both and the general rules on the same packets): a packet they
//! decline is left untouched for `Processor::process`, and so is every packet after it (the pass ends there),
//! so the worker's state changes in arrival order.
use super::fast::{
    encap4_hl, encap6_hl, encap_write4, encap_write4_grown, encap_write6, never_routed6, Outer4,
    Outer6,
};
use super::*;
use crate::plan;
use crate::tunnel::table::fast;
use greway_wire::ethernet::HEADER_LEN as ETH;

/// A staged lookup of an IPv6 packet: the tunnel index is in the low bits.
const STAGED_V6: u32 = 1 << 31;

impl<B: PacketBuf> Gateway<B> {
    /// [`Processor::fast_burst`]: the stages by the role of `in_port` (an l2 port's frames are bridged by the
    /// general rules: nothing planned).
    #[inline]
    pub(super) fn fast_pass(
        &mut self,
        pkts: &mut [B],
        in_port: usize,
        plan: &mut [u16],
        c: &mut Counters,
    ) -> Option<PassBytes> {
        let tables = &*self.tables;
        let w = &mut self.w;
        let staged = &mut self.pass_staged[..];
        // Nothing staged for `process` (it looks up what it needs itself).
        w.staged_len = 0;
        w.staged_next = 0;
        if !w.fast_path || pkts.len() > STAGE_MAX || plan.len() != pkts.len() {
            return None;
        }
        w.pass_bytes = PassSums::default();
        // Two copies of the decap pass, by "does the NIC check IPv4 headers": without the offload it never reads
        // the mbuf's checksum flags. The encap pass has the two copies in its runs' checks and its staged stage 1
        // only (a copy of its per-packet loop without the read measured 6 instructions per packet more on
        // `encap-64`, the route lookup's registers shuffled around it).
        let planned = match tables.ports.get(in_port).map(|p| (p.role, p.rx_ipv4_cksum)) {
            Some((PortRole::Inside, nic)) => {
                w.encap_pass(tables, pkts, plan, &mut staged[..pkts.len()], nic, c)
            }
            Some((PortRole::Outside, false)) => w.decap_pass::<false>(tables, pkts, plan, c),
            Some((PortRole::Outside, true)) => w.decap_pass::<true>(tables, pkts, plan, c),
            Some((PortRole::L2, _)) => w.l2_pass(tables, pkts, in_port, plan, c),
            _ => false,
        };
        // A pass that took not even the first packet leaves the burst to the worker's own loop (`prepare_burst`
        // and `process` inline): a port whose traffic is not of the fast shapes pays one packet's checks.
        if !planned {
            return None;
        }
        #[cfg(feature = "testkit")]
        {
            w.fast_hits += plan.iter().filter(|&&p| p != plan::SLOW).count() as u64;
        }
        Some(PassBytes {
            rx: w.pass_bytes.rx,
            tx: w.pass_bytes.tx,
        })
    }
}

impl<B: PacketBuf> Worker<B> {
    /// An inside burst: stage 1 checks each packet and looks its destination up (a tunnel index, or
    /// `NO_TUNNEL` for a packet the fast paths leave alone); stage 3 encapsulates. With many tunnels stage 1
    /// runs over the burst first, prefetching each matched tunnel (stage 2), before stage 3; with few, one loop does
    /// both stages per packet.
    #[inline(never)]
    fn encap_pass(
        &mut self,
        tables: &Tables,
        pkts: &mut [B],
        plan: &mut [u16],
        staged: &mut [u32],
        nic: bool,
        c: &mut Counters,
    ) -> bool {
        const PREFETCH_MIN_TUNNELS: usize = 16;
        // With few tunnels (their lines stay in L1) nothing is prefetched: stages 1 and 3 run in one loop, each
        // packet's header values still in registers from its checks when it is rewritten.
        // The IPv4 identification in a register through the pass (`self.ip_ident` again at its end, and around
        // the out-of-line paths that use it).
        if tables.tunnels.len() < PREFETCH_MIN_TUNNELS {
            // The burst's first packets into one tunnel (often the whole burst) as a run, then the rest one by
            // one.
            let start = self.encap_run(tables, pkts, plan, nic, c);
            let mut ident = self.ip_ident;
            let rest = plan[start..].iter_mut().zip(pkts[start..].iter_mut());
            for (i, (code, p)) in rest.enumerate() {
                let s = stage_encap::<B, true>(tables, p);
                *code = self.encap_stage3(tables, p, s, &mut ident, c);
                if *code >= plan::DROP {
                    if *code == plan::SLOW {
                        self.ip_ident = ident;
                        leave_rest(plan, start + i);
                        return start + i > 0;
                    }
                    self.count_planned_drop(p);
                }
            }
            self.ip_ident = ident;
            return true;
        }
        // Stages 1 and 2 up to the first packet stage 1 cannot stage: stage 3 would end there anyway.
        // One copy per "does the NIC check IPv4 headers" and "is a tunnel route over one of our addresses".
        let n = match (nic, tables.local4_tunneled || tables.local6_tunneled) {
            (false, false) => stage_burst::<B, false, false>(tables, pkts, staged, c),
            (false, true) => stage_burst::<B, false, true>(tables, pkts, staged, c),
            (true, false) => stage_burst::<B, true, false>(tables, pkts, staged, c),
            (true, true) => stage_burst::<B, true, true>(tables, pkts, staged, c),
        };
        if n == 0 {
            return false;
        }
        let staged = &staged[..n];
        // Stage 3: the staged packets from the start into tunnels of one constant shape (often all of them) in
        // two loops, as a run; the rest one by one.
        let start = self.encap_uniform(tables, pkts, plan, staged, c);
        let mut ident = self.ip_ident;
        for (i, ((code, p), &s)) in plan
            .iter_mut()
            .zip(pkts.iter_mut())
            .zip(staged.iter())
            .enumerate()
            .skip(start)
        {
            *code = self.encap_stage3(tables, p, s, &mut ident, c);
            if *code >= plan::DROP {
                if *code == plan::SLOW {
                    self.ip_ident = ident;
                    leave_rest(plan, i);
                    return i > 0;
                }
                self.count_planned_drop(p);
            }
        }
        self.ip_ident = ident;
        leave_rest(plan, n);
        true
    }

    /// A run: the packets from the burst's start of one family (IPv4 or IPv6, the first's) into one tunnel
    /// with a constant header without GRE checksum (the first's tunnel; IPv4 or IPv6 outside), each within the tunnel's
    /// MTU, encapsulated. One loop checks them (`run_len`), a second writes their headers (`run_write`); the
    /// run's codes (all one egress port) and counters are written once at its end. Returns how many packets
    /// the run took (0: none); the first packet it declines is unchanged. Each packet is checked and written
    /// as [`Worker::encap_staged`] does.
    #[inline(never)]
    fn encap_run(
        &mut self,
        tables: &Tables,
        pkts: &mut [B],
        plan: &mut [u16],
        nic: bool,
        c: &mut Counters,
    ) -> usize {
        let Some(first) = pkts.first() else {
            return 0;
        };
        // The first packet decides the family and the tunnel (its checks are not repeated).
        let v6 = ethertype_of(first.data()) == ethertype::IPV6;
        let stage = if v6 {
            stage_encap6::<B, true>(tables, first)
        } else {
            stage_encap4::<B, true, true>(tables, first)
        };
        let Some(ti) = stage else {
            return 0;
        };
        // (With a tunnel route over one of our addresses, each packet's "is it ours" check: no runs.)
        if (v6 && tables.local6_tunneled) || (!v6 && tables.local4_tunneled) {
            return 0;
        }
        let Some(t) = tables.tunnels.get(ti as usize) else {
            return 0;
        };
        let key = match t.fast & fast::ENCAP_MASK {
            fast::ENCAP4_PLAIN => false,
            fast::ENCAP4_KEY => true,
            fast::ENCAP6_PLAIN | fast::ENCAP6_KEY => {
                return self.encap_run6(tables, t, ti, v6, pkts, plan, c);
            }
            _ => return 0,
        };
        self.encap_run_into::<false>(tables, t, ti, v6, key, nic, pkts, plan, c)
    }

    /// [`Worker::encap_run`] into a tunnel with an IPv6 outer header. (Out of line: with its loops in
    /// `encap_run`, the IPv4-outside loops spilled two more values, 1.6 instructions per packet on `encap-64`.)
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn encap_run6(
        &mut self,
        tables: &Tables,
        t: &Tunnel,
        ti: u32,
        v6: bool,
        pkts: &mut [B],
        plan: &mut [u16],
        c: &mut Counters,
    ) -> usize {
        let key = t.fast & fast::ENCAP_MASK == fast::ENCAP6_KEY;
        // (One copy: a run into an IPv6-outside tunnel checks inner IPv4 headers in software even where the
        // NIC verified them.)
        self.encap_run_into::<true>(tables, t, ti, v6, key, false, pkts, plan, c)
    }

    /// The run of [`Worker::encap_run`] once its first packet's tunnel `t` (index `ti`) is known to have a
    /// constant header (`OUTER6`: IPv6 outside; `key`: with a GRE key); `v6`: the first packet is IPv6. The
    /// checks' loop, the write loop, the counts.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn encap_run_into<const OUTER6: bool>(
        &mut self,
        tables: &Tables,
        t: &Tunnel,
        ti: u32,
        v6: bool,
        key: bool,
        nic: bool,
        pkts: &mut [B],
        plan: &mut [u16],
        c: &mut Counters,
    ) -> usize {
        let Some((first, rest)) = pkts.split_first() else {
            return 0;
        };
        // The MTU as the run starts (it may be a path MTU learned meanwhile).
        let (mtu, room) = (usize::from(t.mtu.get()), t.header_bytes() - ETH);
        let len = first.data().len();
        if len - ETH > mtu || first.headroom() < room {
            return 0;
        }
        let (n, bytes) = match (v6, nic) {
            (false, false) => run_len::<B, false, false>(tables, rest, ti, mtu, room),
            (false, true) => run_len::<B, false, true>(tables, rest, ti, mtu, room),
            (true, _) => run_len::<B, true, false>(tables, rest, ti, mtu, room),
        };
        let (n, bytes) = (n + 1, bytes + len as u64);
        let run = &mut pkts[..n];
        if OUTER6 {
            if v6 {
                run_write6_family::<B, true>(t, run, key);
            } else {
                run_write6_family::<B, false>(t, run, key);
            }
        } else {
            let mut ident = self.ip_ident;
            if v6 {
                run_write_family::<B, true>(t, run, key, &mut ident);
            } else {
                run_write_family::<B, false>(t, run, key, &mut ident);
            }
            self.ip_ident = ident;
        }
        // Counted as `fast_emit4` counts each packet: the IP bytes into the tunnel; the frame's bytes received,
        // and after the header's `hl - ETH` more sent.
        let count = n as u64;
        let tc = &mut c.tunnels[ti as usize];
        tc.encap += count;
        tc.encap_bytes += bytes - count * ETH as u64;
        self.pass_bytes.rx += bytes;
        self.pass_bytes.tx += bytes + count * room as u64;
        plan[..n].fill(plan::tx(usize::from(t.out_port)));
        n
    }

    /// Stage 3 of the staged packets (`staged`: stage 1's results, none `NO_TUNNEL`) from the start of one
    /// family (the first's) into tunnels of one constant IPv4-outside shape without GRE checksum (the first's
    /// tunnel's: with a key or not, with a fixed TTL or not), each within its tunnel's MTU and with headroom for
    /// the header: one loop checks them, grows each by the header and counts it into its tunnel, a second
    /// writes them (`uniform`); the pass's bytes are counted once. Returns how many packets it took (0: none);
    /// the first it declines is unchanged. Each packet is checked and written as [`Worker::encap_staged`] does.
    #[inline(never)]
    fn encap_uniform(
        &mut self,
        tables: &Tables,
        pkts: &mut [B],
        plan: &mut [u16],
        staged: &[u32],
        c: &mut Counters,
    ) -> usize {
        let Some(&s) = staged.first() else {
            return 0;
        };
        let v6 = s >= STAGED_V6;
        let Some(first) = tables.tunnels.get((s & !STAGED_V6) as usize) else {
            return 0;
        };
        let fixed = first.fast & fast::TTL_FIXED != 0;
        let key = match first.fast & fast::ENCAP_MASK {
            fast::ENCAP4_PLAIN => false,
            fast::ENCAP4_KEY => true,
            _ => return 0,
        };
        let ident = &mut self.ip_ident;
        // One copy of the loops per family, shape and TTL.
        macro_rules! uniform_by {
            ($([$v6:literal, $key:literal, $fixed:literal]),*) => {
                match (v6, key, fixed) {
                    $(($v6, $key, $fixed) => {
                        uniform::<B, $v6, $key, $fixed>(tables, first, pkts, plan, staged, ident, c)
                    })*
                }
            };
        }
        let (n, bytes) = uniform_by!(
            [false, false, false],
            [false, false, true],
            [false, true, false],
            [false, true, true],
            [true, false, false],
            [true, false, true],
            [true, true, false],
            [true, true, true]
        );
        // Counted as `fast_emit4` counts each packet: the frame's bytes received, and after the header's
        // `hl - ETH` more sent.
        let room = encap4_hl(false, key) - ETH;
        self.pass_bytes.rx += bytes;
        self.pass_bytes.tx += bytes + (n * room) as u64;
        n
    }

    /// Stage 3 of a packet by its stage-1 result `s` (a tunnel index, with `STAGED_V6` for an IPv6 packet, or
    /// `NO_TUNNEL`: left for `process`). One copy of [`Worker::encap_staged`] per family: the IPv4 one tests
    /// and masks no `STAGED_V6`.
    #[inline(always)]
    fn encap_stage3(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        s: u32,
        ident: &mut u16,
        c: &mut Counters,
    ) -> u16 {
        if s < STAGED_V6 {
            self.encap_staged(tables, pkt, s, false, ident, c)
        } else if s != NO_TUNNEL {
            self.encap_staged(tables, pkt, s & !STAGED_V6, true, ident, c)
        } else {
            plan::SLOW
        }
    }

    /// Stage 3 of a packet that passed stage 1 toward tunnel `ti` (`v6`: an IPv6 packet): a tunnel whose header
    /// shape was decided when the table was built gets it written here (within its MTU; an IPv6 packet into a
    /// tunnel without GRE checksum); any other takes [`Worker::fast_encap4`] or [`Worker::fast_encap6`] with
    /// their per-tunnel checks.
    #[inline(always)]
    fn encap_staged(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        ti: u32,
        v6: bool,
        ident: &mut u16,
        c: &mut Counters,
    ) -> u16 {
        let Some(t) = tables.tunnels.get(ti as usize) else {
            return plan::SLOW;
        };
        let shape = t.fast & fast::ENCAP_MASK;
        if shape == 0 || (v6 && (shape == fast::ENCAP4_CSUM || shape == fast::ENCAP4_CSUM_KEY)) {
            self.ip_ident = *ident;
            let code = self.encap_other(tables, pkt, ti, v6, c);
            *ident = self.ip_ident;
            return code;
        }
        let ip_len = pkt.data().len() - ETH;
        // Too big (the MTU may be a path MTU learned meanwhile): the general rules.
        if ip_len > usize::from(t.mtu.get()) {
            return plan::SLOW;
        }
        // (Stage 1 saw the whole IP header after the Ethernet header: `fast_emit4` reads it.) The shapes without
        // GRE checksum inline; those with one out of line, so that the loop's registers serve the common ones.
        plan::of(match (v6, shape) {
            (false, fast::ENCAP4_PLAIN) => {
                self.fast_emit4::<false, false, false>(t, pkt, ti, ip_len, ident, c)
            }
            (false, fast::ENCAP4_KEY) => {
                self.fast_emit4::<false, true, false>(t, pkt, ti, ip_len, ident, c)
            }
            (true, fast::ENCAP4_PLAIN) => {
                self.fast_emit4::<false, false, true>(t, pkt, ti, ip_len, ident, c)
            }
            (true, fast::ENCAP4_KEY) => {
                self.fast_emit4::<false, true, true>(t, pkt, ti, ip_len, ident, c)
            }
            (_, fast::ENCAP6_PLAIN | fast::ENCAP6_KEY) => {
                self.encap_staged6(t, pkt, ti, ip_len, shape, v6, c)
            }
            _ => self.encap_staged_csum(t, pkt, ti, ip_len, shape, ident, c),
        })
    }

    /// [`Worker::encap_staged`]'s header write into a tunnel with an IPv6 outer header (out of line, as
    /// [`Worker::encap_staged_csum`]).
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn encap_staged6(
        &mut self,
        t: &Tunnel,
        pkt: &mut B,
        ti: u32,
        ip_len: usize,
        shape: u8,
        v6: bool,
        c: &mut Counters,
    ) -> Verdict {
        match (shape == fast::ENCAP6_KEY, v6) {
            (false, false) => self.fast_emit6::<false, false>(t, pkt, ti, ip_len, c),
            (false, true) => self.fast_emit6::<false, true>(t, pkt, ti, ip_len, c),
            (true, false) => self.fast_emit6::<true, false>(t, pkt, ti, ip_len, c),
            (true, true) => self.fast_emit6::<true, true>(t, pkt, ti, ip_len, c),
        }
    }

    /// [`Worker::encap_staged`]'s header write for an IPv4 packet into a tunnel with GRE checksum.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn encap_staged_csum(
        &mut self,
        t: &Tunnel,
        pkt: &mut B,
        ti: u32,
        ip_len: usize,
        shape: u8,
        ident: &mut u16,
        c: &mut Counters,
    ) -> Verdict {
        if shape == fast::ENCAP4_CSUM {
            self.fast_emit4::<true, false, false>(t, pkt, ti, ip_len, ident, c)
        } else {
            self.fast_emit4::<true, true, false>(t, pkt, ti, ip_len, ident, c)
        }
    }

    /// Stage 3 of a packet the constant-shape code does not take: an IPv6 packet (`v6`), or one into a tunnel
    /// whose shape is decided per packet; out of line, so that the common shape's loop keeps its registers.
    #[inline(never)]
    fn encap_other(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        ti: u32,
        v6: bool,
        c: &mut Counters,
    ) -> u16 {
        // Counted here, whichever emit the fast path takes (`fast_emit4` counts itself: undone).
        let (before, rx_len) = (self.pass_bytes, pkt.pkt_len());
        let v = if v6 {
            self.fast_encap6(tables, pkt, ti, c)
        } else {
            self.fast_encap4(tables, pkt, ti, c)
        };
        self.pass_bytes = before;
        if let Some(Verdict::Tx(_)) = v {
            self.take_bytes(rx_len, pkt.pkt_len());
        }
        v.map_or(plan::SLOW, plan::of)
    }

    /// One more packet the fast paths finished: `rx_len` bytes received, `tx_len` after the rewrite.
    #[inline(always)]
    pub(super) fn take_bytes(&mut self, rx_len: usize, tx_len: usize) {
        self.pass_bytes.rx += rx_len as u64;
        self.pass_bytes.tx += tx_len as u64;
    }

    /// A drop the pass planned, in its received bytes (the fast paths drop before they change a length).
    #[inline(always)]
    fn count_planned_drop(&mut self, p: &B) {
        self.pass_bytes.rx += p.pkt_len() as u64;
    }

    /// An l2 port's burst: every frame bridged by the general rules' own bridge (`bridge_from_port`, which is
    /// all the general rules do with an l2 port's frames), in a loop of its own instead of the worker's
    /// per-packet loop. Only where no bridge of the port can hold a frame (`Bridge::never_holds`: a held frame
    /// cannot be planned); else nothing is planned.
    #[inline(never)]
    fn l2_pass(
        &mut self,
        tables: &Tables,
        pkts: &mut [B],
        in_port: usize,
        plan: &mut [u16],
        c: &mut Counters,
    ) -> bool {
        let Some(pb) = tables.port_bridging.get(in_port) else {
            return false;
        };
        let may_hold = |m: &crate::bridge::MemberRef| {
            !tables
                .bridges
                .get(usize::from(m.bridge))
                .is_some_and(|b| b.never_holds)
        };
        if pb
            .whole
            .iter()
            .chain(pb.vlans.iter().map(|(_, m)| m))
            .any(may_hold)
        {
            return false;
        }
        for (code, p) in plan.iter_mut().zip(pkts.iter_mut()) {
            let rx = p.pkt_len();
            let v = match self.bridge_from_port(tables, p, in_port, c) {
                // As the general rules say it.
                Verdict::Drop(DropReason::Truncated) if !p.is_contiguous() => {
                    Verdict::Drop(DropReason::Segmented)
                }
                v => v,
            };
            *code = plan::of(v);
            self.pass_bytes.rx += rx as u64;
            if let Verdict::Tx(_) = v {
                self.pass_bytes.tx += p.pkt_len() as u64;
            }
        }
        true
    }

    /// An outside packet the IPv4 decap fast path declined: the IPv6 one (out of line, as above).
    #[inline(never)]
    fn decap_other(&mut self, tables: &Tables, pkt: &mut B, c: &mut Counters) -> u16 {
        Planned::code(self.fast_decap6::<true>(tables, pkt, c))
    }

    /// An outside packet both IP decap fast paths declined: the TEB way ([`Worker::fast_teb`]).
    #[inline(never)]
    #[cold]
    fn decap_teb<const NIC: bool>(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        c: &mut Counters,
    ) -> u16 {
        self.fast_teb::<NIC>(tables, pkt, c)
            .map_or(plan::SLOW, plan::of)
    }

    /// An outside burst: each packet through the decap fast paths. (Staged like an inside burst, the outer
    /// match in a loop of its own, it measured 20 instructions per packet more: the match's values must be
    /// packed, stored and loaded again, and nothing waits on a table load worth overlapping.)
    #[inline(never)]
    fn decap_pass<const NIC: bool>(
        &mut self,
        tables: &Tables,
        pkts: &mut [B],
        plan: &mut [u16],
        c: &mut Counters,
    ) -> bool {
        for (i, (code, p)) in plan.iter_mut().zip(pkts.iter_mut()).enumerate() {
            // (A declined packet's code is `SLOW`: it tries the IPv6 path.)
            *code = Planned::code(self.fast_decap4::<NIC, true>(tables, p, c));
            if *code == plan::SLOW {
                *code = self.decap_other(tables, p, c);
            }
            if *code >= plan::DROP {
                if *code == plan::SLOW {
                    // The last way, TEB, in the branch of the pass's end: not in the IP paths' way.
                    *code = self.decap_teb::<NIC>(tables, p, c);
                    if *code == plan::SLOW {
                        leave_rest(plan, i);
                        return i > 0;
                    }
                    if *code >= plan::DROP {
                        self.count_planned_drop(p);
                    }
                    // A TEB packet: the rest of the burst tries the TEB way first.
                    self.decap_rest_teb_first::<NIC>(
                        tables,
                        &mut pkts[i + 1..],
                        &mut plan[i + 1..],
                        c,
                    );
                    return true;
                }
                if *code >= plan::DROP {
                    self.count_planned_drop(p);
                }
            }
        }
        true
    }

    /// The rest of an outside burst after a packet the TEB way took: each packet tries the TEB way
    /// ([`Worker::fast_teb`]) first and the IP paths after it, so that a TEB burst does not pay for the IP paths'
    /// match declining each of its packets (and the IP paths' loop keeps no state for it). The ways take disjoint
    /// packets (GRE protocol 0x6558, or IPv4 and IPv6 inside) and the IP paths' caches change only on a packet
    /// they take, so the order changes nothing but the work. The first packet no way takes ends the pass, as in
    /// [`Worker::decap_pass`].
    #[inline(never)]
    fn decap_rest_teb_first<const NIC: bool>(
        &mut self,
        tables: &Tables,
        pkts: &mut [B],
        plan: &mut [u16],
        c: &mut Counters,
    ) {
        for (i, (code, p)) in plan.iter_mut().zip(pkts.iter_mut()).enumerate() {
            *code = self
                .fast_teb::<NIC>(tables, p, c)
                .map_or(plan::SLOW, plan::of);
            if *code == plan::SLOW {
                *code = Planned::code(self.fast_decap4::<NIC, true>(tables, p, c));
                if *code == plan::SLOW {
                    *code = self.decap_other(tables, p, c);
                }
                if *code == plan::SLOW {
                    leave_rest(plan, i);
                    return;
                }
            }
            if *code >= plan::DROP {
                self.count_planned_drop(p);
            }
        }
    }
}

/// The first packet a fast pass left (`plan[first]`) is the end of the pass: it and every packet after it go to
/// `process` in order, so that the burst's packets change the worker's state (the IPv4 identification, caches,
/// held packets) in the order they came in, exactly as one at a time. Mixed bursts are rare at rate; the
/// common ones go through the fast pass whole.
#[inline(always)]
fn leave_rest(plan: &mut [u16], first: usize) {
    for code in plan.iter_mut().skip(first) {
        *code = plan::SLOW;
    }
}

/// Stage 1 of an inside packet: for IPv4, the checks of [`Worker::fast_encap4`] before its tunnel (one
/// segment, exactly one option-less packet with a valid header checksum, not multicast, TTL left, a tunnel
/// route, not one of our addresses) and the tunnel index; for IPv6, those of [`Worker::fast_encap6`] likewise.
/// `NO_TUNNEL` otherwise. Reads the packet only.
#[inline(always)]
fn stage_encap<B: PacketBuf, const NIC: bool>(tables: &Tables, pkt: &B) -> u32 {
    stage_encap_parts::<B, NIC, true>(tables, pkt).map_or(NO_TUNNEL, |(_, s)| s)
}

/// [`stage_encap`] with the tunnel index apart: (index, stage 1's result). Stage 2 prefetches by the index
/// without masking `STAGED_V6` off again. `LOCAL` as for [`stage_ipv4`].
#[inline(always)]
fn stage_encap_parts<B: PacketBuf, const NIC: bool, const LOCAL: bool>(
    tables: &Tables,
    pkt: &B,
) -> Option<(u32, u32)> {
    let d = pkt.data();
    let len = d.len();
    if len != pkt.pkt_len() {
        return None;
    }
    let (eth, ip) = eth_ipv4(frame_prefix::<ETH_IPV4>(d)?);
    if eth.ethertype_is(ethertype::IPV4) {
        let ti = stage_ipv4::<B, NIC, LOCAL>(tables, pkt, ip, len)?;
        Some((ti, ti))
    } else if eth.ethertype_is(ethertype::IPV6) {
        let ti = stage_ipv6::<LOCAL>(tables, d)?;
        Some((ti, ti | STAGED_V6))
    } else {
        None
    }
}

/// [`stage_encap`] for an IPv6 packet only (`None` for any other): the checks of a run's packets.
#[inline(always)]
fn stage_encap6<B: PacketBuf, const LOCAL: bool>(tables: &Tables, pkt: &B) -> Option<u32> {
    let d = pkt.data();
    if d.len() != pkt.pkt_len() {
        return None;
    }
    let (eth, _) = eth_ipv6(frame_prefix::<ETH_IPV6>(d)?);
    if !eth.ethertype_is(ethertype::IPV6) {
        return None;
    }
    stage_ipv6::<LOCAL>(tables, d)
}

/// Stage 1 of a frame `d` holding IPv6 after its Ethernet header: the checks of `Worker::fast_encap6` before
/// its tunnel (one packet, exactly the rest of the frame, not multicast or link-local, hop limit left, a
/// tunnel route, not one of our addresses); the tunnel index (below `STAGED_V6`). `LOCAL` as for
/// [`stage_ipv4`].
#[inline(always)]
fn stage_ipv6<const LOCAL: bool>(tables: &Tables, d: &[u8]) -> Option<u32> {
    let (_, ip6) = eth_ipv6(frame_prefix::<ETH_IPV6>(d)?);
    let dst = ip6.dst_bytes();
    if ip6.version() != 6
        || usize::from(ip6.payload_len()) + ipv6::HEADER_LEN != d.len() - ETH
        || never_routed6(dst)
        || ip6.hop_limit() <= 1
    {
        return None;
    }
    let ti = tables.routes.encap6.lookup_bytes(dst)?;
    // (The route tables hold indices below 2^30: never with `STAGED_V6`.)
    debug_assert!(ti < STAGED_V6);
    if LOCAL && tables.local6_tunneled && tables.local6.contains(&Ipv6Addr::from(*dst)) {
        return None;
    }
    Some(ti)
}

/// [`stage_encap`] for an IPv4 packet only (`None` for any other): the checks of a run's packets. `NIC`: the
/// port's NIC verifies IPv4 header checksums (without, the mbuf's flags are not read).
#[inline(always)]
fn stage_encap4<B: PacketBuf, const NIC: bool, const LOCAL: bool>(
    tables: &Tables,
    pkt: &B,
) -> Option<u32> {
    let d = pkt.data();
    let len = d.len();
    if len != pkt.pkt_len() {
        return None;
    }
    let (eth, ip) = eth_ipv4(frame_prefix::<ETH_IPV4>(d)?);
    if !eth.ethertype_is(ethertype::IPV4) {
        return None;
    }
    stage_ipv4::<B, NIC, LOCAL>(tables, pkt, ip, len)
}

/// Stage 1 of a frame of `len` bytes holding IPv4 (`ip`, right after the Ethernet header): an option-less
/// header of exactly the rest of the frame with a valid checksum, not multicast, TTL left, a tunnel route, not
/// one of our addresses; the tunnel index. `LOCAL`: test "one of our addresses" where a tunnel route covers
/// one (`Tables::local4_tunneled`); false only for a caller that has seen that none does.
#[inline(always)]
fn stage_ipv4<B: PacketBuf, const NIC: bool, const LOCAL: bool>(
    tables: &Tables,
    pkt: &B,
    ip: ipv4::Header<'_>,
    len: usize,
) -> Option<u32> {
    if ip.ver_ihl() != ipv4::VER_IHL_NO_OPTIONS
        || usize::from(ip.total_len()) != len - ETH
        || !((NIC && pkt.rx_ipv4_cksum_good()) || ip.checksum_valid_nonzero())
    {
        return None;
    }
    let dst = ip.dst_u32();
    if dst >= 0xe000_0000 || ip.ttl() <= 1 {
        return None;
    }
    let ti = tables.routes.encap4.lookup(dst)?;
    // (The route tables hold indices below 2^30: never a sentinel, never with `STAGED_V6`.)
    if LOCAL && tables.local4_tunneled && tables.local4_set.contains(dst) {
        return None;
    }
    Some(ti)
}

/// The first loop of [`Worker::encap_run`]: how many packets from the start the run into tunnel `ti` takes,
/// each with the checks of stage 1 (`NIC`: the port's NIC verifies IPv4 header checksums; without, the mbuf's
/// flags are not read), within the MTU `mtu`, with `room` bytes of headroom for the header, and their frame
/// bytes. Reads the packets only. (A run never starts where a tunnel route covers one of our addresses: no
/// `LOCAL` test.)
#[inline(always)]
fn run_len<B: PacketBuf, const V6: bool, const NIC: bool>(
    tables: &Tables,
    pkts: &[B],
    ti: u32,
    mtu: usize,
    room: usize,
) -> (usize, u64) {
    let mut bytes = 0;
    for (i, p) in pkts.iter().enumerate() {
        let len = p.data().len();
        let s = if V6 {
            stage_encap6::<B, false>(tables, p)
        } else {
            stage_encap4::<B, NIC, false>(tables, p)
        };
        if s != Some(ti) || len - ETH > mtu || p.headroom() < room {
            return (i, bytes);
        }
        bytes += len as u64;
    }
    (pkts.len(), bytes)
}

/// [`run_write`] by the tunnel's shape: with a key or not, with a fixed TTL or not (IPv6 inside: `V6`).
#[inline(always)]
fn run_write_family<B: PacketBuf, const V6: bool>(
    t: &Tunnel,
    pkts: &mut [B],
    key: bool,
    ident: &mut u16,
) {
    match (key, t.ttl_set != 0) {
        (false, false) => run_write::<B, V6, false, false>(t, pkts, ident),
        (false, true) => run_write::<B, V6, false, true>(t, pkts, ident),
        (true, false) => run_write::<B, V6, true, false>(t, pkts, ident),
        (true, true) => run_write::<B, V6, true, true>(t, pkts, ident),
    }
}

/// [`run_write6`] by the tunnel's shape, as [`run_write_family`].
#[inline(always)]
fn run_write6_family<B: PacketBuf, const V6: bool>(t: &Tunnel, pkts: &mut [B], key: bool) {
    match (key, t.ttl_set != 0) {
        (false, false) => run_write6::<B, V6, false, false>(t, pkts),
        (false, true) => run_write6::<B, V6, false, true>(t, pkts),
        (true, false) => run_write6::<B, V6, true, false>(t, pkts),
        (true, true) => run_write6::<B, V6, true, true>(t, pkts),
    }
}

/// [`run_write`] into a tunnel with an IPv6 outer header ([`encap_write6`]).
#[inline(always)]
fn run_write6<B: PacketBuf, const V6: bool, const KEY: bool, const FIXED_TTL: bool>(
    t: &Tunnel,
    pkts: &mut [B],
) {
    let outer = Outer6::<V6>::new(t, encap6_hl(KEY));
    for p in pkts {
        let len = p.data().len() - ETH;
        encap_write6::<B, Outer6<V6>, KEY, V6, FIXED_TTL>(t, &outer, p, len)
            .expect("the headroom was checked");
    }
}

/// The second loop of [`Worker::encap_run`]: the headers of a run's packets (each taken by [`run_len`]) into
/// tunnel `t`, whose header is constant (with a key or not: `KEY`; with a fixed TTL or not: `FIXED_TTL`).
/// Without exits and with the tunnel's values copied ([`Outer4`]), it keeps its values in registers (one loop
/// with the checks and the writes spilled a dozen).
#[inline(always)]
fn run_write<B: PacketBuf, const V6: bool, const KEY: bool, const FIXED_TTL: bool>(
    t: &Tunnel,
    pkts: &mut [B],
    ident: &mut u16,
) {
    let outer = Outer4::<V6>::new(t, encap4_hl(false, KEY));
    for p in pkts {
        let len = p.data().len() - ETH;
        encap_write4::<B, Outer4<V6>, false, KEY, V6, FIXED_TTL>(t, &outer, p, len, ident)
            .expect("the headroom was checked");
    }
}

/// Stages 1 and 2 over a burst, into `staged`, up to the first packet stage 1 cannot stage (`NIC`: the port's
/// NIC verifies IPv4 header checksums; without, the mbuf's flags are not read; `LOCAL` as for [`stage_ipv4`]);
/// how many it staged. Each staged
/// packet's tunnel lines (one, or two where some tunnel needs them) and counters are prefetched as soon as its
/// lookup is done. (A loop of its own for the prefetches cost 10 instructions per packet more on
/// `encap-1k-tunnels`.)
#[inline(never)]
fn stage_burst<B: PacketBuf, const NIC: bool, const LOCAL: bool>(
    tables: &Tables,
    pkts: &[B],
    staged: &mut [u32],
    c: &Counters,
) -> usize {
    // (Addresses only: a prefetch never faults, so it needs no bounds check.)
    let tunnels = tables.tunnels.as_ptr().cast::<u8>();
    // Each tunnel's second line where some tunnel needs two, else its first again: a prefetch of a line just
    // prefetched costs an instruction and no memory traffic, a test per packet two instructions.
    let second = tunnels.wrapping_add(if tables.tunnel_lines > 1 { 64 } else { 0 });
    let counters = c.tunnels.as_ptr().cast::<u8>();
    for (i, (s, p)) in staged.iter_mut().zip(pkts.iter()).enumerate() {
        let Some((ti, staged)) = stage_encap_parts::<B, NIC, LOCAL>(tables, p) else {
            *s = NO_TUNNEL;
            return i;
        };
        *s = staged;
        let at = ti as usize * std::mem::size_of::<Tunnel>();
        prefetch(tunnels.wrapping_add(at));
        prefetch(second.wrapping_add(at));
        prefetch(
            counters
                .wrapping_add(ti as usize * std::mem::size_of::<crate::stats::TunnelCounters>()),
        );
    }
    pkts.len().min(staged.len())
}

/// The loops of [`Worker::encap_uniform`] for one family (`V6`) and shape (`KEY`, `FIXED_TTL`), from the
/// staged packets' first tunnel `first`: how many staged packets from the start it took, and their frame bytes
/// (as received). The first loop checks each packet, grows it by the header once it passes, counts it into its
/// tunnel and plans it to its tunnel's egress port; the second writes the headers (each tunnel's template and
/// values read in place: the tunnels differ).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn uniform<B: PacketBuf, const V6: bool, const KEY: bool, const FIXED_TTL: bool>(
    tables: &Tables,
    first: &Tunnel,
    pkts: &mut [B],
    plan: &mut [u16],
    staged: &[u32],
    ident: &mut u16,
    c: &mut Counters,
) -> (usize, u64) {
    let shape = if KEY {
        fast::ENCAP4_KEY
    } else {
        fast::ENCAP4_PLAIN
    } | if FIXED_TTL { fast::TTL_FIXED } else { 0 };
    let room = encap4_hl(false, KEY) - ETH;
    // The family's flag: `s ^ flag` is the tunnel index of a packet of the family, and out of the table's
    // bounds for one of the other.
    let flag = if V6 { STAGED_V6 } else { 0 };
    // Each taken packet's tunnel, for the write loop.
    let mut ts = [first; STAGE_MAX];
    let mut bytes = 0;
    let mut n = staged.len().min(pkts.len()).min(STAGE_MAX);
    // The tunnels' counters as many as the tunnels: a tunnel's index needs one bounds check for both.
    let Some(counters) = c.tunnels.get_mut(..tables.tunnels.len()) else {
        return (0, 0);
    };
    // The checks, and for a packet that passes them its tunnel's counts and its plan code: the second loop
    // has no exit, so each packet counted here is sent. (The write loop then needs no pointer to the counters,
    // the plan or the tables: with them it spilled a dozen values.)
    for (i, (((&s, p), code), tr)) in staged
        .iter()
        .zip(pkts.iter_mut())
        .zip(plan.iter_mut())
        .zip(ts.iter_mut())
        .enumerate()
    {
        let len = p.data().len();
        let ti = (s ^ flag) as usize;
        // The packet grows by the header as its last check (the headroom's): the write loop needs no exit for
        // it, and a packet declined here is unchanged.
        let t = match tables.tunnels.get(ti) {
            Some(t)
                if t.fast & (fast::ENCAP_MASK | fast::TTL_FIXED) == shape
                    && len - ETH <= usize::from(t.mtu.get())
                    && p.prepend(room).is_some() =>
            {
                t
            }
            _ => {
                n = i;
                break;
            }
        };
        *tr = t;
        bytes += len as u64;
        let tc = &mut counters[ti];
        tc.encap += 1;
        tc.encap_bytes += (len - ETH) as u64;
        *code = plan::tx(usize::from(t.out_port));
    }
    let mut id = *ident;
    for (p, &t) in pkts.iter_mut().zip(&ts[..n]) {
        let len = p.data().len() - ETH - room;
        encap_write4_grown::<B, Tunnel, false, KEY, V6, FIXED_TTL>(t, t, p, len, &mut id, None);
    }
    *ident = id;
    (n, bytes)
}
