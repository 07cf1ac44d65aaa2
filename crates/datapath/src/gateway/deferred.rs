//! Deferred work: the `Processor` interface the worker loop drives (table pick-up per poll round, the staged
//! encap lookups of a burst, held packets by reason), handed-off packets, reordering buffers, packets waiting
//! for a neighbour, reassembly, and what is left at stop.
use super::*;
use greway_wire::ethernet::{ethertype, Frame, HEADER_LEN as ETH};
use greway_wire::{ipv4, ipv6, MacAddr};

impl<B: PacketBuf + Send> Processor<B> for Gateway<B> {
    #[inline(always)]
    fn mirror_ports(&self) -> (u64, u64) {
        let m = &self.tables.mirrors;
        (m.rx_ports, m.tx_ports)
    }

    fn mirror_count(&self) -> usize {
        self.tables.mirrors.count
    }

    fn mirror(
        &mut self,
        pkts: &[B],
        port: usize,
        dir: crate::MirrorDir,
        emit: &mut dyn FnMut(crate::MirrorCopy, B) -> bool,
        counters: &mut Counters,
    ) {
        self.w.mirror(&self.tables, pkts, port, dir, emit, counters);
    }

    #[inline]
    fn begin_burst(&mut self, now_tsc: u64) {
        self.w.now = now_tsc;
        // Pick up a newly published table between bursts (an atomic load of its generation; the table's load
        // and the Arc clone only on change).
        if self.w.shared.tables.generation() == self.tables.generation {
            return;
        }
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
                // A deleted (or replaced) tunnel's packets stay behind the new table's tunnels, where this
                // round's `poll_deferred` finds no tunnel for them and drops them as `unknown_tunnel`.
                self.w
                    .reorder
                    .extend(old.into_iter().filter(|r| !r.is_empty()));
                self.w.reorder_held = self.w.reorder.iter().map(|r| r.len()).sum();
            }
            self.tables = new;
            self.w.last_decap = None;
            self.w.last_neighbor = None;
            self.w.last_decap4 = Decap4Match::EMPTY;
            self.w.last_teb4 = TEB4_EMPTY;
            self.w.last_decap6 = Decap6Match::EMPTY;
            self.w.hops4.fill(Hop::<u32>::EMPTY);
            self.w.hops6.fill(Hop::<[u64; 2]>::EMPTY);
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
            let frame = Frame::new_unchecked(d);
            if d.len() >= ETH + ipv4::HEADER_LEN && frame.outer_ethertype() == ethertype::IPV4 {
                let dst = ipv4::Packet::new_unchecked(&d[ETH..]).dst_addr();
                tables.routes.encap4.lookup(u32::from(dst))
            } else if d.len() >= ETH + ipv6::HEADER_LEN
                && frame.outer_ethertype() == ethertype::IPV6
            {
                let dst = ipv6::Packet::new_unchecked(&d[ETH..]).dst_addr();
                tables.routes.encap6.lookup_bytes(&dst.octets())
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
    fn has_fast_pass(&self, in_port: usize) -> bool {
        self.w.fast_path
            && matches!(
                self.tables.ports.get(in_port).map(|p| p.role),
                Some(PortRole::Inside | PortRole::Outside | PortRole::L2)
            )
    }

    #[inline]
    fn fast_burst(
        &mut self,
        pkts: &mut [B],
        in_port: usize,
        plan: &mut [u16],
        counters: &mut Counters,
    ) -> Option<PassBytes> {
        self.fast_pass(pkts, in_port, plan, counters)
    }

    #[inline(always)]
    fn process(&mut self, pkt: &mut B, in_port: usize, counters: &mut Counters) -> Verdict {
        // The worker calls `process` once per packet of the prepared burst, in order.
        let w = &mut self.w;
        let i = w.staged_next;
        let staged = if i < w.staged_len {
            w.staged_next = i + 1;
            // (`staged_len` <= STAGE_MAX, a power of two: the mask only spares the bounds check.)
            w.staged_ti[i % STAGE_MAX]
        } else {
            NOT_STAGED
        };
        w.handle_staged(&self.tables, pkt, in_port, staged, counters)
    }

    fn hold(&mut self, pkt: B, why: HoldReason, counters: &mut Counters) {
        match why {
            HoldReason::Fragment => self.hold_fragment(pkt, counters),
            HoldReason::Reorder { tunnel, seq } => {
                // Decided in this poll round, on this table generation: the index is current.
                let ti = tunnel as usize;
                let t = &self.tables.tunnels[ti];
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
            HoldReason::Handoff { .. }
            | HoldReason::Neighbor(_)
            | HoldReason::PuntPort { .. }
            | HoldReason::PuntTunnel { .. } => self.w.hold_now(&self.tables, pkt, why, counters),
        }
    }

    #[inline(always)]
    fn poll_deferred(
        &mut self,
        now_tsc: u64,
        emit: &mut dyn FnMut(usize, B) -> bool,
        counters: &mut Counters,
    ) {
        // Called every poll round: nothing deferred, held or handed off (the common case) costs a few loads in
        // the worker's loop, without a call.
        if self.w.deferred.is_empty()
            && self.w.reasm.is_empty()
            && self.w.reorder_held == 0
            && self.w.held.is_empty()
            && self.w.shared.handoff[self.w.worker].is_empty()
            && self.w.shared.from_host[self.w.worker].is_empty()
        {
            return;
        }
        self.poll_deferred_work(now_tsc, emit, counters);
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
    /// [`Processor::poll_deferred`] when something is deferred, held or handed off: out of line.
    #[inline(never)]
    fn poll_deferred_work(
        &mut self,
        now_tsc: u64,
        emit: &mut dyn FnMut(usize, B) -> bool,
        counters: &mut Counters,
    ) {
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
                self.w
                    .encap_released(&self.tables, &mut pkt, 0, ti, counters)
            };
            self.settle(v, pkt, emit, counters);
        }
        // What the kernel sent out of a host interface, a bounded number per round.
        for _ in 0..FROM_HOST_PER_ROUND {
            let Some((hif, mut pkt)) = self.w.shared.from_host[self.w.worker].pop() else {
                break;
            };
            let v = self.w.send_from_host(&self.tables, hif, &mut pkt, counters);
            self.settle(v, pkt, emit, counters);
        }
    }

    /// An outer fragment: into the reassembly table; a completed datagram goes on through the rules.
    fn hold_fragment(&mut self, pkt: B, counters: &mut Counters) {
        // Incomplete datagrams are given up after a second.
        let deadline = self.w.now + self.w.tsc_hz;
        match self.w.reasm.offer(pkt, deadline) {
            crate::reasm::Offer::Held => {}
            crate::reasm::Offer::Dropped(all) => {
                counters.drops[DropReason::OuterFragment as usize] += all.len() as u64;
            }
            crate::reasm::Offer::Complete(mut whole, n) => {
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
                Held::L2 { port, nh } => self.tables.neighbors.get(&nh).map(|n| {
                    let mut frame = Frame::new_unchecked(pkt.data_mut());
                    frame.set_dst_addr(MacAddr(n.mac));
                    frame.set_src_addr(MacAddr(self.tables.ports[port].mac));
                    Verdict::Tx(port)
                }),
                // By id: the tunnel may have moved to another index, or be gone.
                Held::Encap { in_port, tunnel } => match self.tables.resolve(tunnel) {
                    Some(ti) if self.tables.tunnels[ti as usize].resolved => Some(
                        self.w
                            .encap_released(&self.tables, &mut pkt, in_port, ti, counters),
                    ),
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
