//! Encapsulation (RFC 2784/2890, outer IPv4 or IPv6 per RFC 7676): MTU, neighbour and ownership checks, the
//! outer header from the tunnel's template, GRE checksum and sequence number, fragmentation of non-DF packets.
use super::fast::frame_write;
use super::*;
use crate::tunnel::table::{fast, inner_check};

impl<B: PacketBuf> Worker<B> {
    /// Encapsulate the IP packet after the Ethernet header into tunnel `ti` (TTL already handled). Inlined into the routing step:
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
        let v4 = ethertype_of(pkt.data()) == ethertype::IPV4;
        // RFC 2473 4.1.1 (Linux ip6gre): an inner IPv6 packet's own encapsulation limit, before anything else
        // (a packet that may not be encapsulated gets no Packet Too Big).
        let mut outer_limit = None;
        if t.inner_checks & inner_check::ENCAP_LIMIT != 0 && !v4 {
            match inner::inner_encap_limit(&pkt.data()[ethernet::HEADER_LEN..]) {
                inner::InnerEncapLimit::None => {}
                inner::InnerEncapLimit::Decremented(l) => outer_limit = Some(l),
                inner::InnerEncapLimit::Exceeded { pointer } => {
                    c.tunnels[ti as usize].drops += 1;
                    let kind = IcmpKind::ParamProblem {
                        code: greway_wire::icmpv6::param_problem_code::ERRONEOUS_HEADER_FIELD,
                        pointer,
                        reason: DropReason::EncapLimitExceeded,
                        to_sender: false,
                    };
                    return self.icmp_error(tables, pkt, in_port, kind, c);
                }
            }
        }
        let inner_len = pkt.pkt_len() - ethernet::HEADER_LEN;
        if inner_len > usize::from(t.mtu.get()) {
            return self.encap_too_big(tables, pkt, in_port, ti, decrement, c);
        }
        if let Some(v) = self.encap_not_ready(t, in_port, ti, c) {
            return v;
        }
        if t.inner_checks & inner_check::MSS_CLAMP != 0 {
            // MSS clamping into the tunnel (after the MTU check: an ICMP error quotes the packet as received).
            // The hot flag first: `mss_clamp` lives in the tunnel's cold part.
            if let Some(clamp) = t.mss_clamp {
                inner::clamp_mss(pkt.data_mut(), ethernet::HEADER_LEN, v4, clamp);
            }
        }
        let v = self.encap_emit(t, pkt, ti, v4, inner_len, decrement, false, c);
        if let (Some(limit), Some(at), Verdict::Tx(_)) = (outer_limit, t.dest_opts_at(), v) {
            inner::set_outer_encap_limit(pkt.data_mut(), at, limit);
        }
        v
    }

    /// The checks every encapsulation makes once the packet fits the tunnel: the outer next hop's MAC is known
    /// (else the packet waits for it), and a sequenced tunnel's packets are sent by its owner worker (else handed
    /// off). `Some` with the verdict when the packet cannot be encapsulated here and now.
    #[inline(always)]
    pub(super) fn encap_not_ready(
        &mut self,
        t: &Tunnel,
        in_port: usize,
        ti: u32,
        c: &mut Counters,
    ) -> Option<Verdict> {
        if !t.resolved {
            self.event(Event::Resolve {
                port: usize::from(t.out_port),
                ip: t.next_hop,
            });
            let v = self.wait_for_neighbor(Waiting::Encap {
                in_port: in_port as u16,
                tunnel: ti,
            });
            if !v.is_hold() {
                c.tunnels[ti as usize].drops += 1;
            }
            return Some(v);
        }
        if t.sequence && self.owner_of(t) != self.worker {
            // RFC 2890 order on the wire: only the owner numbers and sends this tunnel's packets.
            return Some(Verdict::Hold(HoldReason::Handoff {
                owner: self.owner_of(t) as u16,
                tunnel: ti,
            }));
        }
        None
    }

    /// The encapsulation proper, every check passed: the router hop's TTL decrement, the outer header from the
    /// tunnel's template with the per-packet fields, GRE checksum and sequence number, counters.
    ///
    /// `plain4`: the packet is one segment holding exactly an option-less IPv4 packet after the Ethernet header whose header
    /// checksum was verified (the fast path's shape). The GRE checksum then skips the inner header: a valid
    /// header sums to 0xffff, which adds nothing to a one's-complement sum, and the TTL decrement's RFC 1624
    /// update keeps it so. The payload is summed before any header is written (so its loads never wait on
    /// the stores that write the headers) and the GRE header's words come from the tunnel, not the packet.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn encap_emit(
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
                &pkt.data()[ETH_IPV4..],
                u32::from(t.gre_base_sum),
            )))
        } else {
            None
        };
        if decrement {
            // After the MTU check: an ICMP error quotes the packet as it was received.
            decrement_ip_ttl(pkt.data_mut(), v4);
        }
        let d = pkt.data();
        let (tos_in, ttl_in, df) = if v4 {
            let (_, ip) = eth_ipv4(checked_prefix::<ETH_IPV4>(d));
            (ip.dscp_ecn(), ip.ttl(), ip.dont_frag())
        } else {
            let (_, ip) = eth_ipv6(checked_prefix::<ETH_IPV6>(d));
            (ip.traffic_class(), ip.hop_limit(), true)
        };
        // RFC 6040 normal mode: the outer ECN field is a copy of the inner one. DSCP inherited or fixed (the
        // masks are decided per tunnel, see `Tunnel::tos_keep`).
        // The packet's Ethernet header becomes the outer one; the GRE protocol type is the inner family's.
        let outer = Outer {
            tos_in,
            ttl_in,
            df,
            grow: t.header_bytes() - ethernet::HEADER_LEN,
            protocol: if v4 { ethertype::IPV4 } else { ethertype::IPV6 },
            inner_len,
            payload_sum,
        };
        self.emit_outer(t, pkt, ti, outer, c)
    }

    /// The outer headers in front of a packet that passed every check (IP routed into the tunnel, or an Ethernet
    /// frame bridged into it): the tunnel's template grown by `o.grow` bytes, the per-packet IP fields, the
    /// GRE protocol type, sequence number and checksum, and the tunnel's counters.
    #[inline(always)]
    pub(super) fn emit_outer(
        &mut self,
        t: &Tunnel,
        pkt: &mut B,
        ti: u32,
        o: Outer,
        c: &mut Counters,
    ) -> Verdict {
        let Outer {
            tos_in,
            ttl_in,
            df,
            grow,
            protocol,
            inner_len,
            payload_sum,
        } = o;
        let tos = (tos_in & t.tos_keep) | t.tos_set;
        let ttl = if t.ttl_set != 0 { t.ttl_set } else { ttl_in };
        let hl = t.header_bytes();
        debug_assert!(hl <= MAX_ENCAP_HEADER);
        if pkt.prepend(grow).is_none() {
            return Verdict::Drop(DropReason::NoHeadroom);
        }
        let outer_len = inner_len + hl - ethernet::HEADER_LEN;
        let d = pkt.data_mut();
        copy_header(d, &t.template, hl);
        if t.outer_v6() {
            let (_, mut ip) = eth_ipv6_mut(checked_prefix_mut::<ETH_IPV6>(d));
            outer_ipv6_fields(&mut ip, tos, outer_len, Some(ttl));
        } else {
            // (Only an IPv4 outer header takes an identification.)
            let ident = self.ip_ident;
            self.ip_ident = ident.wrapping_add(1);
            let (_, mut ip) = eth_ipv4_mut(checked_prefix_mut::<ETH_IPV4>(d));
            outer_ipv4_fields(&mut ip, t, tos, outer_len, ident, df, ttl);
        }
        if protocol != ethertype::IPV4 {
            // The template's protocol type is IPv4.
            let at = t.gre_at();
            d.get_mut(at..at + gre::BASE_HEADER_LEN)
                .and_then(gre::HeaderMut::from_prefix)
                .expect("the template's GRE header")
                .set_protocol(protocol);
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
            pkt.data_mut()
                .get_mut(gre_off..gre_off + gre::CHECKSUM_HEADER_LEN)
                .and_then(gre::ChecksumHeaderMut::from_prefix)
                .expect("the template's GRE header with a checksum")
                .set_checksum(!s);
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
    pub(super) fn encap_too_big(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        ti: u32,
        decrement: bool,
        c: &mut Counters,
    ) -> Verdict {
        let t = &tables.tunnels[ti as usize];
        // Read once: a path MTU learned meanwhile applies from the next packet.
        let mtu = t.mtu.get();
        let d = pkt.data();
        let v4 = ethertype_of(d) == ethertype::IPV4;
        let inner_len = pkt.pkt_len() - ethernet::HEADER_LEN;
        let df = !v4 || frame_prefix::<ETH_IPV4>(d).is_none_or(|h| eth_ipv4(h).1.dont_frag());
        if df {
            c.tunnels[ti as usize].drops += 1;
            return self.icmp_error(tables, pkt, in_port, IcmpKind::TooBig(mtu), c);
        }
        let mut rest: [Option<B>; MAX_FRAGMENTS] = Default::default();
        let mut n = 0;
        let res = if inner_len.div_ceil(usize::from(mtu).saturating_sub(20) & !7) > MAX_FRAGMENTS {
            Err(crate::frag::FragError::Unsupported)
        } else {
            crate::frag::fragment_ipv4(pkt, usize::from(mtu), &mut |f| {
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
                Verdict::Hold(why) => self.hold_now(tables, f, why, c),
            }
        }
        self.encap(tables, pkt, in_port, ti, decrement, false, c)
    }
}

/// What [`Worker::emit_outer`] needs to know of the packet it encapsulates.
#[derive(Clone, Copy)]
pub(super) struct Outer {
    /// The inner TOS / traffic class and TTL / hop limit (what `tos = "inherit"` and `ttl = "inherit"` take).
    pub tos_in: u8,
    pub ttl_in: u8,
    /// The outer IPv4 header's DF bit.
    pub df: bool,
    /// Bytes the packet grows by at the front (the header length, less the Ethernet header an IP packet already
    /// has in front of it).
    pub grow: usize,
    /// The GRE protocol type (the template holds IPv4's).
    pub protocol: u16,
    /// Bytes of the inner packet (an IP packet, or a whole Ethernet frame).
    pub inner_len: usize,
    /// The GRE checksum of a fast-path packet, summed before the headers were written (see `encap_emit`).
    pub payload_sum: Option<u16>,
}

impl<B: PacketBuf> Worker<B> {
    /// Encapsulate the Ethernet frame `pkt` (from its first byte) into TEB tunnel `ti` (GRE protocol 0x6558,
    /// RFC 1701): the frame goes inside as it is, behind the tunnel's whole template. A frame longer than the
    /// tunnel MTU plus its Ethernet header is dropped (`frame_too_big`): an Ethernet payload is not fragmented,
    /// and its sender cannot be told (it is not an IP hop of ours). The outer DF bit is set. `tos` and `ttl`
    /// inherit from an untagged IPv4 or IPv6 packet in the frame (as Linux gretap does); any other frame
    /// inherits TOS 0 and TTL 64.
    ///
    /// A tunnel with a [`fast::TEB_MASK`] shape (decided with the table: resolved, no keepalives, checksum or
    /// sequence numbers) takes the template write [`frame_write`] when the fast paths are on; every other
    /// the general one, [`Worker::emit_outer`]. `tests::teb` compares the two.
    #[inline(always)]
    pub(super) fn encap_frame(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        ti: u32,
        c: &mut Counters,
    ) -> Verdict {
        let t = &tables.tunnels[ti as usize];
        let shape = (t.fast & fast::TEB_MASK) >> fast::TEB_SHIFT;
        if shape == 0 || !self.fast_path {
            return self.encap_frame_general(tables, pkt, ti, c);
        }
        let frame_len = pkt.pkt_len();
        if frame_len > usize::from(t.mtu.get()) + ethernet::HEADER_LEN {
            c.tunnels[ti as usize].drops += 1;
            return Verdict::Drop(DropReason::FrameTooBig);
        }
        // (A tunnel that inherits neither reads nothing of the frame.)
        let (tos_in, ttl_in) = if t.tos_keep == 0 && t.ttl_set != 0 {
            (0, 64)
        } else {
            frame_inherit(pkt.data())
        };
        let ident = &mut self.ip_ident;
        let written = match shape {
            fast::ENCAP4_PLAIN => {
                frame_write::<B, false, false>(t, pkt, frame_len, tos_in, ttl_in, ident)
            }
            fast::ENCAP4_KEY => {
                frame_write::<B, false, true>(t, pkt, frame_len, tos_in, ttl_in, ident)
            }
            fast::ENCAP6_PLAIN => {
                frame_write::<B, true, false>(t, pkt, frame_len, tos_in, ttl_in, ident)
            }
            _ => {
                debug_assert_eq!(shape, fast::ENCAP6_KEY);
                frame_write::<B, true, true>(t, pkt, frame_len, tos_in, ttl_in, ident)
            }
        };
        if written.is_none() {
            return Verdict::Drop(DropReason::NoHeadroom);
        }
        let tc = &mut c.tunnels[ti as usize];
        tc.encap += 1;
        tc.encap_bytes += frame_len as u64;
        Verdict::Tx(usize::from(t.out_port))
    }

    /// [`Worker::encap_frame`] by the general rules: every setting tested, the header written by
    /// [`Worker::emit_outer`].
    #[inline(never)]
    fn encap_frame_general(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        ti: u32,
        c: &mut Counters,
    ) -> Verdict {
        let t = &tables.tunnels[ti as usize];
        if t.is_down() {
            c.tunnels[ti as usize].drops += 1;
            return Verdict::Drop(DropReason::TunnelDown);
        }
        let frame_len = pkt.pkt_len();
        if frame_len > usize::from(t.mtu.get()) + ethernet::HEADER_LEN {
            c.tunnels[ti as usize].drops += 1;
            return Verdict::Drop(DropReason::FrameTooBig);
        }
        if let Some(v) = self.encap_not_ready(t, 0, ti, c) {
            return v;
        }
        let (tos_in, ttl_in) = frame_inherit(pkt.data());
        let outer = Outer {
            tos_in,
            ttl_in,
            df: true,
            grow: t.header_bytes(),
            protocol: gre::protocol::TEB,
            inner_len: frame_len,
            payload_sum: None,
        };
        self.emit_outer(t, pkt, ti, outer, c)
    }

    /// Encapsulate a packet that waited (for the tunnel's next hop, or on the owner's handoff ring): an Ethernet
    /// frame for a TEB tunnel, else an IP packet as a router hop (its TTL is decremented now: the hold came
    /// before the encapsulation's decrement).
    pub(super) fn encap_released(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        ti: u32,
        c: &mut Counters,
    ) -> Verdict {
        if tables.tunnels[ti as usize].is_teb() {
            self.encap_frame(tables, pkt, ti, c)
        } else {
            self.encap(tables, pkt, in_port, ti, true, false, c)
        }
    }
}

/// What a TEB tunnel's outer header inherits from Ethernet frame `d` (its first segment): the TOS or traffic
/// class and TTL or hop limit of an untagged IPv4 or IPv6 packet in it (as Linux gretap); TOS 0 and TTL 64 for
/// any other frame.
#[inline(always)]
fn frame_inherit(d: &[u8]) -> (u8, u8) {
    match ethertype_of(d) {
        ethertype::IPV4 => frame_prefix::<ETH_IPV4>(d)
            .map(|h| eth_ipv4(h).1)
            .filter(|ip| ip.version() == 4)
            .map(|ip| (ip.dscp_ecn(), ip.ttl())),
        ethertype::IPV6 => frame_prefix::<ETH_IPV6>(d)
            .map(|h| eth_ipv6(h).1)
            .filter(|ip| ip.version() == 6)
            .map(|ip| (ip.traffic_class(), ip.hop_limit())),
        _ => None,
    }
    .unwrap_or((0, 64))
}
