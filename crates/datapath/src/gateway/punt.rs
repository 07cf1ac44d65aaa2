//! The host exception path, worker side. Packets to our own addresses that greway does not answer itself (TCP,
//! UDP, other protocols, ICMP other than echo requests and errors about our own GRE packets) go, untouched (TTL
//! and hop limit as received: BGP's GTSM and single-hop BFD check for 255), to the host interface of the port or
//! tunnel they arrived on: at most `Tables::punt_pps` per second per worker, through the worker's bounded punt
//! ring to the control thread, which writes them to the kernel. The other way, what the kernel sends out of a
//! host interface comes back on the worker's `from_host` ring: a tunnel's is encapsulated into that tunnel (by
//! the tunnel's owner, so sequenced tunnels keep their numbering), a port's is routed like a packet greway
//! originates (tunnel routes, then the routes; any port).
use super::*;
use greway_wire::ethernet::HEADER_LEN as ETH;
use greway_wire::{icmpv4, icmpv6};

/// At most this many host interfaces keep a punt budget per worker at a time.
const PUNT_LIMITS_MAX: usize = 4096;

impl<B: PacketBuf> Worker<B> {
    /// A packet to one of our addresses that greway does not answer: hold it for host interface `to`
    /// ([`HoldReason::PuntPort`] or [`HoldReason::PuntTunnel`]) when there are host interfaces and the punt
    /// rate allows; `total` is the IP packet's length (Ethernet padding after it is trimmed).
    pub(super) fn punt(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        to: HoldReason,
        total: usize,
    ) -> Verdict {
        if tables.punt_pps == 0 {
            return Verdict::Drop(DropReason::LocalUnhandled);
        }
        // One budget per host interface; the map holds one entry per interface punted to (tunnels removed at
        // run time leave theirs until it is emptied: bounded by PUNT_LIMITS_MAX).
        if self.punt_rate != tables.punt_pps || self.punt_limits.len() >= PUNT_LIMITS_MAX {
            self.punt_limits.clear();
            self.punt_rate = tables.punt_pps;
        }
        let hif = match to {
            HoldReason::PuntPort { port } => HostIf::Port(port),
            HoldReason::PuntTunnel { tunnel } => HostIf::Tunnel(tables.tunnels[tunnel as usize].id),
            _ => unreachable!("punt reasons only"),
        };
        let (pps, hz) = (tables.punt_pps, self.tsc_hz);
        let bucket = self
            .punt_limits
            .entry(hif)
            .or_insert_with(|| punt_bucket(pps, hz));
        if !bucket.take(self.now) {
            return Verdict::Drop(DropReason::PuntRateLimited);
        }
        // The control thread writes the first segment: the kernel takes one contiguous IP packet.
        if !pkt.is_contiguous() {
            return Verdict::Drop(DropReason::Segmented);
        }
        let excess = pkt.pkt_len() - ETH - total;
        if excess > 0 && !pkt.trim(excess) {
            return Verdict::Drop(DropReason::Segmented);
        }
        Verdict::Hold(to)
    }

    /// Hand a punted packet to the control thread (the hold of [`Worker::punt`]'s verdict, same round).
    pub(super) fn punt_now(&mut self, tables: &Tables, pkt: B, why: HoldReason, c: &mut Counters) {
        let hif = match why {
            HoldReason::PuntPort { port } => HostIf::Port(port),
            HoldReason::PuntTunnel { tunnel } => HostIf::Tunnel(tables.tunnels[tunnel as usize].id),
            _ => unreachable!("punt reasons only"),
        };
        let bytes = (pkt.pkt_len() - ETH) as u64;
        match self.shared.punt[self.worker].push((hif, pkt)) {
            Ok(()) => {
                c.punted += 1;
                c.punted_bytes += bytes;
            }
            Err((_, pkt)) => {
                drop(pkt);
                c.drop_pkt(DropReason::PuntQueueFull);
            }
        }
    }

    /// Whether the ICMP message `icmp` (type and code first) is an error about one of our own GRE packets: the
    /// packet it quotes is GRE from one of our tunnel endpoints. Those stay with greway; any other ICMP to our
    /// addresses is the kernel's.
    pub(super) fn icmp4_about_our_gre(tables: &Tables, icmp: &[u8]) -> bool {
        let Ok(msg) = icmpv4::Packet::new_checked(icmp) else {
            return false;
        };
        if icmpv4::message_type::is_query(msg.msg_type()) {
            return false;
        }
        ipv4::Header::from_prefix(msg.data()).is_some_and(|quoted| {
            quoted.protocol() == protocol::GRE
                && tables
                    .tunnel_locals
                    .contains(&IpAddr::V4(quoted.src_addr()))
        })
    }

    /// [`Worker::icmp4_about_our_gre`] for ICMPv6 (RFC 4443 errors quote the packet after 8 bytes).
    pub(super) fn icmp6_about_our_gre(tables: &Tables, icmp: &[u8]) -> bool {
        let Ok(msg) = icmpv6::Packet::new_checked(icmp) else {
            return false;
        };
        if !icmpv6::message_type::is_error(msg.msg_type()) {
            return false;
        }
        // After any extension headers (a Destination Options header before GRE, say).
        crate::pmtu::Quote::from_ipv6(msg.data())
            .is_some_and(|q| tables.tunnel_locals.contains(&q.src))
    }

    /// A packet the kernel sent out of host interface `hif` (an IP packet after an Ethernet header whose
    /// addresses are still to be written): into the tunnel, or routed from a port. Never a router hop: the
    /// TTL stays as the kernel set it.
    pub(super) fn send_from_host(
        &mut self,
        tables: &Tables,
        hif: HostIf,
        pkt: &mut B,
        c: &mut Counters,
    ) -> Verdict {
        c.from_host += 1;
        let d = pkt.data();
        let checked = match ethertype_of(d) {
            ethertype::IPV4 => Self::check_ipv4(d).map(|(_, total)| total),
            ethertype::IPV6 => Self::check_ipv6(d),
            _ => Err(DropReason::UnsupportedEthertype),
        };
        let total = match checked {
            Ok(t) => t,
            Err(r) => return Verdict::Drop(r),
        };
        let excess = pkt.pkt_len() - ETH - total;
        if excess > 0 && !pkt.trim(excess) {
            return Verdict::Drop(DropReason::Segmented);
        }
        match hif {
            HostIf::Tunnel(id) => {
                let Some(ti) = tables.tunnel_ids.iter().position(|&x| x == id) else {
                    return Verdict::Drop(DropReason::UnknownTunnel);
                };
                let out = usize::from(tables.tunnels[ti].out_port);
                self.encap(tables, pkt, out, ti as u32, false, false, c)
            }
            HostIf::Port(_) => self.route_local(tables, pkt, c),
        }
    }

    /// Route a packet greway (its kernel) originates: a tunnel route first, else the routes, out of any port.
    fn route_local(&mut self, tables: &Tables, pkt: &mut B, c: &mut Counters) -> Verdict {
        let Some(dst) = packet_dst(pkt.data()) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        let group = match dst {
            IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
            IpAddr::V6(a) => a.is_multicast(),
        };
        if group {
            return Verdict::Drop(DropReason::NoRoute);
        }
        let rt = &tables.routes;
        let tunnel = match dst {
            IpAddr::V4(a) => rt.encap4.lookup(u32::from(a)),
            IpAddr::V6(a) => rt.encap6.lookup(u128::from(a)),
        };
        if let Some(ti) = tunnel {
            let out = usize::from(tables.tunnels[ti as usize].out_port);
            return self.encap(tables, pkt, out, ti, false, false, c);
        }
        let Some((port, nh)) = rt.next_hop(dst) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        self.l2_rewrite(tables, pkt, port, nh)
    }
}
