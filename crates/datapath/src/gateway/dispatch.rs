//! Classification and forwarding: the per-packet entry point (fast paths first, then the general rules),
//! the ethertype dispatch, the IPv4 and IPv6 receive checks (RFC 1812 5.2.2 / RFC 8200), routing to a tunnel
//! or a next hop, and the Ethernet rewrite toward that next hop.
use super::*;
use crate::plan;

impl<B: PacketBuf> Worker<B> {
    /// Keep a packet held for its neighbour or handed off to its tunnel's owner, converting the reason (decided
    /// on `tables`, this round) into one that names its tunnel by id. Reorder and fragment holds come from the
    /// receive path only and go through [`Processor::hold`].
    pub(super) fn hold_now(&mut self, tables: &Tables, pkt: B, why: HoldReason, c: &mut Counters) {
        match why {
            HoldReason::Neighbor(w) => {
                let held = match w {
                    Waiting::L2 { port } => {
                        // The next hop `l2_rewrite` waited for: the route's for the packet's destination.
                        match packet_dst(pkt.data()).and_then(|dst| tables.routes.next_hop(dst)) {
                            Some((p, nh)) if p == usize::from(port) => Held::L2 { port: p, nh },
                            _ => return c.drop_pkt(DropReason::NoRoute),
                        }
                    }
                    Waiting::Encap { in_port, tunnel } => Held::Encap {
                        in_port: usize::from(in_port),
                        tunnel: tables.tunnels[tunnel as usize].tref(),
                    },
                };
                if self.held.len() < HOLD_MAX {
                    let deadline = self.now + ms_to_ticks(HOLD_MS, self.tsc_hz);
                    self.held.push_back((deadline, held, pkt));
                } else {
                    c.drop_pkt(DropReason::NoNeighbor);
                }
            }
            HoldReason::Handoff { owner, tunnel } => {
                let h = Handoff {
                    tunnel: tables.tunnels[tunnel as usize].tref(),
                    keepalive: false,
                };
                if self.shared.handoff[usize::from(owner)]
                    .push((h, pkt))
                    .is_err()
                {
                    c.drop_pkt(DropReason::HandoffFull);
                }
            }
            HoldReason::PuntPort { .. } | HoldReason::PuntTunnel { .. } => {
                self.punt_now(tables, pkt, why, c)
            }
            HoldReason::Reorder { .. } | HoldReason::Fragment => {
                c.drop_pkt(DropReason::LocalUnhandled)
            }
        }
    }

    pub(super) fn event(&self, e: Event) {
        // A full ring drops the event: the control thread is behind; the next packet asks again.
        let _ = self.shared.events.push(e);
    }

    /// Hold the packet until its neighbour is known, while there is room; else drop it.
    pub(super) fn wait_for_neighbor(&mut self, w: Waiting) -> Verdict {
        if self.held.len() >= HOLD_MAX {
            return Verdict::Drop(DropReason::NoNeighbor);
        }
        Verdict::Hold(HoldReason::Neighbor(w))
    }

    pub(super) fn owner_of(&self, t: &Tunnel) -> usize {
        owner_of(t.id, self.nworkers)
    }

    #[inline]
    pub(super) fn is_local4(&self, tables: &Tables, a: [u8; 4]) -> bool {
        tables.local4_set.contains(u32::from_be_bytes(a))
    }

    /// The tunnel of an IPv4 GRE packet (outer header `ip`, key word `kw`) to one of our addresses, from the
    /// table (the decap match caches' miss path); `None` for a packet not to us or of no tunnel.
    #[inline(always)]
    pub(super) fn tunnel_of4(
        &self,
        tables: &Tables,
        ip: &ipv4::Header<'_>,
        kw: u64,
    ) -> Option<u32> {
        if !self.is_local4(tables, ip.dst()) {
            return None;
        }
        let dk = crate::tunnel::table::DecapKey {
            local: IpAddr::V4(ip.dst_u32().into()),
            remote: IpAddr::V4(ip.src_u32().into()),
            key: key_of_word(kw),
        };
        tables.decap.get(&dk).copied()
    }

    #[inline]
    pub(super) fn is_local6(&self, tables: &Tables, a: [u8; 16]) -> bool {
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
        self.handle_staged(tables, pkt, in_port, NOT_STAGED, c)
    }

    /// [`Worker::handle`] with the packet's staged encap lookup, when `prepare_burst` made one (a tunnel index,
    /// `NO_TUNNEL`), else `NOT_STAGED`.
    #[inline(always)]
    pub(super) fn handle_staged(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        staged: u32,
        c: &mut Counters,
    ) -> Verdict {
        if self.fast_path {
            // A staged packet came in on an inside port (`prepare_burst` stages only those).
            // (An IPv6 packet, staged or not, is declined by the IPv4 path at its ethertype check.)
            let (role, nic) = (
                tables.ports[in_port].role,
                tables.ports[in_port].rx_ipv4_cksum,
            );
            let fast = if staged != NOT_STAGED || role == PortRole::Inside {
                match self.fast_encap4(tables, pkt, staged, c) {
                    Some(v) => Some(v),
                    None => self.fast_encap6(tables, pkt, staged, c),
                }
            } else if role == PortRole::Outside {
                let v4 = if nic {
                    self.fast_decap4::<true, false>(tables, pkt, c)
                } else {
                    self.fast_decap4::<false, false>(tables, pkt, c)
                };
                match v4 {
                    Some(code) => Some(code),
                    None => self.fast_decap6::<false>(tables, pkt, c),
                }
                .map(|p| plan::verdict(Planned::code(Some(p))))
            } else {
                // An l2 port: the general rules (which bridge it).
                None
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
    pub(super) fn handle_released(
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
    pub(super) fn general(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        released: Option<u32>,
        c: &mut Counters,
    ) -> Verdict {
        if tables.ports[in_port].role == PortRole::L2 {
            // Frames of an l2 port are bridged, never routed; without a bridge they go nowhere.
            return self.bridge_from_port(tables, pkt, in_port, c);
        }
        let d = pkt.data();
        let Some(eth) = ethernet::Header::from_prefix(d) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        let mut ether = eth.ethertype();
        if ether == ethertype::VLAN {
            // Access-port semantics: a single 802.1Q tag is accepted and removed; replies leave untagged.
            if d.len() < ethernet::VLAN_HEADER_LEN {
                return Verdict::Drop(DropReason::Truncated);
            }
            ethernet::move_addresses_over_vlan_tag(pkt.data_mut());
            pkt.adj(ethernet::VLAN_TAG_LEN);
            ether = ethertype_of(pkt.data());
        }
        let v = match ether {
            ethertype::IPV4 => self.ipv4_in(tables, pkt, in_port, released, c),
            ethertype::IPV6 => self.ipv6_in(tables, pkt, in_port, released, c),
            ethertype::ARP => self.arp_in(tables, pkt, in_port),
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

    /// Validate the IPv4 header after the Ethernet header; returns (header length, total length).
    #[inline]
    pub(super) fn check_ipv4(d: &[u8]) -> Result<(usize, usize), DropReason> {
        let Some((_, ip)) = ethernet::Header::split_prefix(d) else {
            return Err(DropReason::Truncated);
        };
        let Some(hdr) = ipv4::Header::from_prefix(ip) else {
            return Err(DropReason::Truncated);
        };
        let ihl = hdr.header_len();
        if hdr.version() != 4 || ihl < ipv4::HEADER_LEN {
            return Err(DropReason::BadIpHeader);
        }
        let total = usize::from(hdr.total_len());
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

    pub(super) fn ipv4_in(
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
        let (_, ip) = eth_ipv4(checked_prefix::<ETH_IPV4>(pkt.data()));
        let dst = ip.dst();
        let proto = ip.protocol();
        if self.is_local4(tables, dst) {
            if proto == protocol::GRE {
                return self.decap(tables, pkt, ihl, total, false, released, c);
            }
            return self.local4_in(tables, pkt, LocalIngress::Port(in_port), ihl, total, c);
        }
        if tables.ports[in_port].role != PortRole::Inside {
            return Verdict::Drop(DropReason::NoRoute);
        }
        // Trailing Ethernet padding is not part of the packet.
        let excess = pkt.pkt_len() - ethernet::HEADER_LEN - total;
        if excess > 0 && !pkt.trim(excess) {
            return Verdict::Drop(DropReason::Segmented);
        }
        self.route_ip(tables, pkt, in_port, true, c)
    }

    #[inline]
    pub(super) fn check_ipv6(d: &[u8]) -> Result<usize, DropReason> {
        let Some(h) = frame_prefix::<ETH_IPV6>(d) else {
            return Err(DropReason::Truncated);
        };
        let (_, ip) = eth_ipv6(h);
        if ip.version() != 6 {
            return Err(DropReason::BadIpHeader);
        }
        let plen = usize::from(ip.payload_len());
        if d.len() - ETH_IPV6 < plen {
            return Err(DropReason::Truncated);
        }
        Ok(ipv6::HEADER_LEN + plen)
    }

    pub(super) fn ipv6_in(
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
        let (_, ip) = eth_ipv6(checked_prefix::<ETH_IPV6>(pkt.data()));
        let dst = ip.dst();
        let next = ip.next_header();
        let solicited_node = dst[0] == 0xff && dst[1] == 0x02 && dst[11] == 1 && dst[12] == 0xff;
        if self.is_local6(tables, dst)
            || solicited_node
            || dst == [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        {
            if next == protocol::GRE && !solicited_node {
                return self.decap(tables, pkt, ipv6::HEADER_LEN, total, true, released, c);
            }
            if next == protocol::DESTINATION_OPTIONS && !solicited_node {
                // Linux ip6gre's default: the RFC 2473 encapsulation limit in a Destination Options header.
                return self.dest_opts_in(tables, pkt, in_port, total, released, c);
            }
            return self.local6_in(tables, pkt, LocalIngress::Port(in_port), total, c);
        }
        if dst[0] == 0xff || (dst[0] == 0xfe && dst[1] & 0xc0 == 0x80) {
            // Multicast and link-local are not routed.
            return Verdict::Drop(DropReason::NoRoute);
        }
        if tables.ports[in_port].role != PortRole::Inside {
            return Verdict::Drop(DropReason::NoRoute);
        }
        let excess = pkt.pkt_len() - ethernet::HEADER_LEN - total;
        if excess > 0 && !pkt.trim(excess) {
            return Verdict::Drop(DropReason::Segmented);
        }
        self.route_ip(tables, pkt, in_port, true, c)
    }

    /// Route an IP packet as a router hop: decrement TTL (ICMP time exceeded at zero), then encapsulate into
    /// the tunnel its destination routes to, or send it to an inside neighbour.
    #[inline(always)]
    pub(super) fn route_ip(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        decrement: bool,
        c: &mut Counters,
    ) -> Verdict {
        let d = pkt.data();
        let v4 = ethertype_of(d) == ethertype::IPV4;
        // (group, TTL, destination): no multicast or broadcast routing (and so no ICMP errors about them, RFC
        // 1812 4.3.2.7).
        let (group, ttl, dst) = if v4 {
            let (_, ip) = eth_ipv4(checked_prefix::<ETH_IPV4>(d));
            (ip.dst()[0] >= 224, ip.ttl(), IpAddr::V4(ip.dst_addr()))
        } else {
            let (_, ip) = eth_ipv6(checked_prefix::<ETH_IPV6>(d));
            (
                ip.dst()[0] == 0xff,
                ip.hop_limit(),
                IpAddr::V6(ip.dst_addr()),
            )
        };
        if group {
            return Verdict::Drop(DropReason::NoRoute);
        }
        if decrement && ttl <= 1 {
            return self.icmp_error(tables, pkt, in_port, IcmpKind::TimeExceeded, c);
        }
        let rt = &tables.routes;
        let tunnel = match dst {
            IpAddr::V4(a) => rt.encap4.lookup(u32::from(a)),
            IpAddr::V6(a) => rt.encap6.lookup(u128::from(a)),
        };
        if let Some(ti) = tunnel {
            return self.encap(tables, pkt, in_port, ti, decrement, false, c);
        }
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
    pub(super) fn neighbor_mac(&mut self, tables: &Tables, nh: IpAddr) -> Option<[u8; 6]> {
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
    pub(super) fn l2_rewrite(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        port: usize,
        nh: IpAddr,
    ) -> Verdict {
        let Some(mac) = self.neighbor_mac(tables, nh) else {
            self.event(Event::Resolve { port, ip: nh });
            debug_assert_eq!(
                packet_dst(pkt.data()).and_then(|d| tables.routes.next_hop(d)),
                Some((port, nh)),
                "a held packet's next hop is found again from its destination"
            );
            return self.wait_for_neighbor(Waiting::L2 { port: port as u16 });
        };
        let src = tables.ports[port].mac;
        let mut eth = ethernet::HeaderMut::from_prefix(pkt.data_mut()).expect("an Ethernet header");
        eth.set_dst(mac);
        eth.set_src(src);
        Verdict::Tx(port)
    }
}
