//! Answers for our own addresses: ARP (RFC 826), ICMP echo, ICMPv6 echo and neighbour discovery (RFC 4861).
//! Requests are read through `wire` views and Reprs; answers are written in place of the request through the
//! views' setters and `emit`, so no answer allocates.
use super::*;
use greway_wire::arp::{ArpRepr, Operation};
use greway_wire::ethernet::{ethertype, EthernetRepr, Frame, HEADER_LEN as ETH};
use greway_wire::icmpv6::Icmpv6Repr;
use greway_wire::ipv6::Ipv6Repr;
use greway_wire::{icmpv4, icmpv6, ipv4, ipv6, Error as WireError, MacAddr};

/// Where a packet for one of our own addresses (a port's or a tunnel's) came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalIngress {
    /// Received on this port (index in the tables).
    Port(usize),
    /// Decapsulated from this tunnel (index in the current tables): its Ethernet header is a placeholder.
    Tunnel(u32),
}

impl LocalIngress {
    /// The port a reply made from the packet is routed from: the port it came in on, or the tunnel's outer port.
    fn port(self, tables: &Tables) -> usize {
        match self {
            LocalIngress::Port(p) => p,
            LocalIngress::Tunnel(ti) => usize::from(tables.tunnels[ti as usize].out_port),
        }
    }
}

impl<B: PacketBuf> Worker<B> {
    /// An IPv4 packet for one of our own addresses (not GRE from a port, which is decapsulated): echo requests
    /// are answered, anything else goes to [`Worker::unserved_local`]. `ihl`/`total`: the checked header and
    /// total lengths.
    pub(super) fn local4_in(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        from: LocalIngress,
        ihl: usize,
        total: usize,
        c: &mut Counters,
    ) -> Verdict {
        let ip = ipv4::Packet::new_unchecked(&pkt.data()[ETH..]);
        if ip.protocol() == protocol::ICMP {
            return self.icmp4_local(tables, pkt, from, ihl, total, c);
        }
        self.unserved_local(tables, pkt, from, total)
    }

    /// An IPv6 packet for one of our own addresses, or to the all-nodes / a solicited-node group (not GRE
    /// from a port): ICMPv6 (echo, neighbour discovery) is answered, anything else goes to
    /// [`Worker::unserved_local`]. `total`: the IPv6 packet's length.
    pub(super) fn local6_in(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        from: LocalIngress,
        total: usize,
        c: &mut Counters,
    ) -> Verdict {
        let ip = ipv6::Packet::new_unchecked(&pkt.data()[ETH..]);
        if ip.next_header() == protocol::ICMPV6 {
            return self.icmp6_local(tables, pkt, from, total, c);
        }
        if !self.is_local6(tables, ip.dst_addr().octets()) {
            // A group we listen to for neighbour discovery only.
            return Verdict::Drop(DropReason::LocalUnhandled);
        }
        self.unserved_local(tables, pkt, from, total)
    }

    /// The one place a packet for one of our own addresses ends when greway does not answer it itself (any
    /// protocol but GRE, ICMP echo, ARP and neighbour discovery; ICMP other than echo requests and errors about
    /// our own GRE packets), with where it came from: punted to the host interface of that port or tunnel
    /// (`punt`: with `[host]`, within the punt rate), else dropped and counted as `local_unhandled`. `total`:
    /// the IP packet's length.
    #[cold]
    #[inline(never)]
    pub(super) fn unserved_local(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        from: LocalIngress,
        total: usize,
    ) -> Verdict {
        let to = match from {
            LocalIngress::Port(p) => HoldReason::PuntPort { port: p as u16 },
            LocalIngress::Tunnel(ti) => HoldReason::PuntTunnel { tunnel: ti },
        };
        self.punt(tables, pkt, to, total)
    }

    /// Whether the echo reply to a request for `dst` is routed by the tables rather than turned around on the
    /// port the request came in on: when the request came through a tunnel, or is for a tunnel's own address
    /// (its reply goes where the tables send the sender's address: back through the tunnel, for a health
    /// check from the tunnel's peer). Routed replies take a token of the reply rate limit.
    fn echo_reply_routed(tables: &Tables, from: LocalIngress, dst: IpAddr) -> bool {
        matches!(from, LocalIngress::Tunnel(_)) || tables.tunnel_addrs.contains(&dst)
    }

    pub(super) fn arp_in(&mut self, tables: &Tables, pkt: &mut B, in_port: usize) -> Verdict {
        let arp = match ArpRepr::parse_bytes(&pkt.data()[ETH..]) {
            Ok(a) => a,
            Err(WireError::Truncated { .. }) => return Verdict::Drop(DropReason::Truncated),
            // Not Ethernet/IPv4, or neither request nor reply.
            Err(_) => return Verdict::Drop(DropReason::ArpIgnored),
        };
        let (sha, spa) = (arp.sender_hardware_addr, arp.sender_protocol_addr);
        let port = &tables.ports[in_port];
        let ours = port.v4.iter().any(|x| x.0 == arp.target_protocol_addr);
        let sender_on_link = port
            .v4
            .iter()
            .any(|(a, l)| ipnet::Ipv4Net::new(*a, *l).is_ok_and(|n| n.contains(&spa)));
        let reply = arp.operation == Operation::Reply;
        if sender_on_link && !spa.is_unspecified() && sha.is_unicast() {
            let known = tables.neighbors.get(&IpAddr::V4(spa)).map(|n| n.mac);
            if known != Some(sha.0) && (ours || reply) {
                self.event(Event::Neighbor {
                    port: in_port,
                    ip: IpAddr::V4(spa),
                    mac: sha.0,
                });
            }
        }
        if reply || !ours {
            return Verdict::Drop(if reply {
                DropReason::NeighborLearned
            } else {
                DropReason::ArpIgnored
            });
        }
        if !self.reply_limit.take(self.now) {
            return Verdict::Drop(DropReason::ReplyRateLimited);
        }
        let mac = MacAddr(port.mac);
        let d = pkt.data_mut();
        let mut frame = Frame::new_unchecked(&mut d[..]);
        frame.set_dst_addr(sha);
        frame.set_src_addr(mac);
        arp.reply_from(mac).emit(&mut d[ETH..]);
        Verdict::Tx(in_port)
    }

    pub(super) fn icmp4_local(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        from: LocalIngress,
        ihl: usize,
        total: usize,
        c: &mut Counters,
    ) -> Verdict {
        if total < ihl + icmpv4::HEADER_LEN {
            return Verdict::Drop(DropReason::Truncated);
        }
        let request = icmpv4::Packet::new_unchecked(&pkt.data()[ETH..][ihl..total]);
        // Errors about our own GRE packets are greway's (fragmentation needed: path MTU discovery); any other
        // ICMP but echo requests is the kernel's.
        let about_our_gre = request.msg_type() != icmpv4::message_type::ECHO_REQUEST
            && Self::icmp4_about_our_gre(tables, &pkt.data()[ETH..][ihl..total]);
        let frag_needed = about_our_gre
            && request.msg_type() == icmpv4::message_type::DST_UNREACHABLE
            && request.code() == icmpv4::unreachable_code::FRAGMENTATION_NEEDED;
        if request.msg_type() != icmpv4::message_type::ECHO_REQUEST && !frag_needed {
            if about_our_gre {
                return Verdict::Drop(DropReason::LocalUnhandled);
            }
            return self.unserved_local(tables, pkt, from, total);
        }
        let excess = pkt.pkt_len() - ETH - total;
        if excess > 0 && !pkt.trim(excess) {
            return Verdict::Drop(DropReason::Segmented);
        }
        let icmp = icmpv4::Packet::new_unchecked(&pkt.data()[ETH..][ihl..]);
        if !icmp.verify_checksum() {
            return Verdict::Drop(DropReason::BadChecksum);
        }
        if frag_needed {
            // RFC 1191: about one of our packets, whose quote says which tunnel.
            let quote = crate::pmtu::Quote::from_ipv4(icmp.data());
            return self.pmtu_report(tables, quote, u32::from(icmp.next_hop_mtu()));
        }
        let dst = ipv4::Packet::new_unchecked(&pkt.data()[ETH..]).dst_addr();
        let routed = Self::echo_reply_routed(tables, from, IpAddr::V4(dst));
        if routed && !self.reply_limit.take(self.now) {
            return Verdict::Drop(DropReason::ReplyRateLimited);
        }
        // Echo reply: swap addresses, type 8 -> 0 (RFC 1624 update of the ICMP checksum), fresh TTL.
        let mut ip = ipv4::Packet::new_unchecked(&mut pkt.data_mut()[ETH..]);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        ip.set_ttl(64);
        ip.fill_checksum();
        let mut icmp = icmpv4::Packet::new_unchecked(ip.payload_mut());
        let old = u16::from_be_bytes([icmp.msg_type(), icmp.code()]);
        icmp.set_msg_type(icmpv4::message_type::ECHO_REPLY);
        let new = u16::from_be_bytes([icmp.msg_type(), icmp.code()]);
        icmp.set_checksum(checksum::update16(icmp.checksum(), old, new));
        self.send_reply(tables, pkt, from, routed, c)
    }

    /// Sends an answer made in place of a request: routed by the tables from the port the request came in on
    /// (no TTL decrement: the answer starts here), or turned around to the request's sender on that port.
    fn send_reply(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        from: LocalIngress,
        routed: bool,
        c: &mut Counters,
    ) -> Verdict {
        let in_port = from.port(tables);
        if routed {
            return self.route_ip(tables, pkt, in_port, false, c);
        }
        turn_around(
            &mut pkt.data_mut()[..ETH],
            MacAddr(tables.ports[in_port].mac),
        );
        Verdict::Tx(in_port)
    }

    pub(super) fn icmp6_local(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        from: LocalIngress,
        total: usize,
        c: &mut Counters,
    ) -> Verdict {
        let excess = pkt.pkt_len() - ETH - total;
        if excess > 0 && !pkt.trim(excess) {
            return Verdict::Drop(DropReason::Segmented);
        }
        if total < ipv6::HEADER_LEN + icmpv6::HEADER_LEN {
            return Verdict::Drop(DropReason::Truncated);
        }
        let l3 = &pkt.data()[ETH..][..total];
        let ip = ipv6::Packet::new_unchecked(l3);
        let (src, dst, hop_limit) = (ip.src_addr(), ip.dst_addr(), ip.hop_limit());
        let icmp = icmpv6::Packet::new_unchecked(&l3[ipv6::HEADER_LEN..]);
        if !icmp.verify_checksum(src, dst) {
            return Verdict::Drop(DropReason::BadChecksum);
        }
        // Neighbour discovery is link-local: only on a port.
        let on_port = match from {
            LocalIngress::Port(p) => Some(p),
            LocalIngress::Tunnel(_) => None,
        };
        match (icmp.msg_type(), on_port) {
            (icmpv6::message_type::ECHO_REQUEST, _) if self.is_local6(tables, dst.octets()) => {
                self.echo6_reply(tables, pkt, from, IpAddr::V6(dst), c)
            }
            (icmpv6::message_type::PACKET_TOO_BIG, _)
                if self.is_local6(tables, dst.octets())
                    && Self::icmp6_about_our_gre(tables, &pkt.data()[ETH + ipv6::HEADER_LEN..]) =>
            {
                // RFC 8201: about one of our packets, whose quote says which tunnel.
                let quote = crate::pmtu::Quote::from_ipv6(icmp.data());
                self.pmtu_report(tables, quote, u32::from_be_bytes(icmp.rest_of_header()))
            }
            (icmpv6::message_type::NEIGHBOR_SOLICIT, Some(in_port)) => {
                self.nd_solicit(tables, pkt, in_port, total)
            }
            (icmpv6::message_type::NEIGHBOR_ADVERT, Some(in_port)) => {
                // Neighbour advertisement: learn the target's link-layer address (RFC 4861 7.2.5).
                if hop_limit == icmpv6::ND_HOP_LIMIT {
                    if let (Ok(target), Ok(Some(ll))) = (
                        icmp.nd_target(),
                        icmp.nd_lladdr(icmpv6::nd_option::TARGET_LLADDR),
                    ) {
                        self.event(Event::Neighbor {
                            port: in_port,
                            ip: IpAddr::V6(target),
                            mac: ll.0,
                        });
                    }
                }
                Verdict::Drop(DropReason::NeighborLearned)
            }
            // Unicast to us: the kernel's, unless it is an error about one of our own GRE packets.
            _ if self.is_local6(tables, dst.octets())
                && !Self::icmp6_about_our_gre(tables, &pkt.data()[ETH + ipv6::HEADER_LEN..]) =>
            {
                self.unserved_local(tables, pkt, from, total)
            }
            _ => Verdict::Drop(DropReason::LocalUnhandled),
        }
    }

    /// A fragmentation needed / packet too big (checksum verified) that quoted `quote`, reporting a next-hop MTU
    /// of `mtu`: lowers the path MTU of the tunnel it quotes (`crate::pmtu`); consumed either way.
    fn pmtu_report(&self, tables: &Tables, quote: Option<crate::pmtu::Quote>, mtu: u32) -> Verdict {
        use crate::pmtu::{apply, ticks_to_ms, Outcome};
        let now_ms = ticks_to_ms(self.now, self.tsc_hz);
        Verdict::Drop(match quote.and_then(|q| apply(tables, &q, mtu, now_ms)) {
            None => DropReason::PmtuNoTunnel,
            Some(Outcome::Learned) => DropReason::PmtuLearned,
            Some(Outcome::NotLower) => DropReason::PmtuNotLower,
            Some(Outcome::RateLimited) => DropReason::PmtuRateLimited,
        })
    }

    /// An ICMPv6 echo request to one of our addresses (`dst`, checksum verified) becomes the reply in place.
    fn echo6_reply(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        from: LocalIngress,
        dst: IpAddr,
        c: &mut Counters,
    ) -> Verdict {
        let routed = Self::echo_reply_routed(tables, from, dst);
        if routed && !self.reply_limit.take(self.now) {
            return Verdict::Drop(DropReason::ReplyRateLimited);
        }
        let l3 = &mut pkt.data_mut()[ETH..];
        let Ok(mut ip) = Ipv6Repr::parse(&ipv6::Packet::new_unchecked(&*l3)) else {
            return Verdict::Drop(DropReason::BadIpHeader);
        };
        (ip.src_addr, ip.dst_addr) = (ip.dst_addr, ip.src_addr);
        ip.hop_limit = 64;
        let at = ip.emit(l3);
        // Swapping src and dst leaves the pseudo-header sum unchanged: only the type changes.
        let mut icmp = icmpv6::Packet::new_unchecked(&mut l3[at..]);
        let old = u16::from_be_bytes([icmp.msg_type(), icmp.code()]);
        icmp.set_msg_type(icmpv6::message_type::ECHO_REPLY);
        let new = u16::from_be_bytes([icmp.msg_type(), icmp.code()]);
        icmp.set_checksum(checksum::update16(icmp.checksum(), old, new));
        self.send_reply(tables, pkt, from, routed, c)
    }

    /// RFC 4861 7.2.4: answer a solicitation for one of our addresses with a solicited advertisement carrying
    /// our link-layer address; learn the solicitor's address from its option.
    pub(super) fn nd_solicit(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        total: usize,
    ) -> Verdict {
        let d = pkt.data();
        let requester_mac = Frame::new_unchecked(d).src_addr();
        let l3 = &d[ETH..][..total];
        let ip = ipv6::Packet::new_unchecked(l3);
        let (src, hop_limit) = (ip.src_addr(), ip.hop_limit());
        let icmp = icmpv6::Packet::new_unchecked(&l3[ipv6::HEADER_LEN..]);
        // RFC 4861 7.1: hop limit 255, code 0, at least 24 bytes.
        let target = match icmp.nd_target() {
            Ok(t) if hop_limit == icmpv6::ND_HOP_LIMIT && icmp.code() == 0 => t,
            _ => return Verdict::Drop(DropReason::ArpIgnored),
        };
        let port = &tables.ports[in_port];
        if !port.v6.iter().any(|a| a.0 == target) {
            return Verdict::Drop(DropReason::ArpIgnored);
        }
        let sll = icmp
            .nd_lladdr(icmpv6::nd_option::SOURCE_LLADDR)
            .ok()
            .flatten();
        let unspecified = src.is_unspecified();
        if let (Some(mac), false) = (sll, unspecified) {
            self.event(Event::Neighbor {
                port: in_port,
                ip: IpAddr::V6(src),
                mac: mac.0,
            });
        }
        if !self.reply_limit.take(self.now) {
            return Verdict::Drop(DropReason::ReplyRateLimited);
        }
        let mac = MacAddr(port.mac);
        let (dst_mac, dst) = if unspecified {
            // RFC 4861 7.2.4: to all-nodes when the solicitation came from the unspecified address.
            (
                MacAddr::ipv6_multicast(icmpv6::ALL_NODES),
                icmpv6::ALL_NODES,
            )
        } else {
            (requester_mac, src)
        };
        let eth = EthernetRepr {
            src_addr: mac,
            dst_addr: dst_mac,
            vlan: None,
            ethertype: ethertype::IPV6,
        };
        // Solicited (unless to all-nodes) and Override, with our link-layer address.
        let advert = Icmpv6Repr::NeighborAdvert {
            router: false,
            solicited: !unspecified,
            override_: true,
            target,
            target_lladdr: Some(mac),
        };
        let ip = advert.ipv6_repr(target, dst, icmpv6::ND_HOP_LIMIT);
        let want = eth.header_len() + ip.header_len() + advert.buffer_len();
        let have = pkt.pkt_len();
        if have < want {
            if pkt.append(want - have).is_none() {
                return Verdict::Drop(DropReason::NoHeadroom);
            }
        } else if have > want && !pkt.trim(have - want) {
            return Verdict::Drop(DropReason::Segmented);
        }
        let d = pkt.data_mut();
        let at = eth.emit(d);
        let at = at + ip.emit(&mut d[at..]);
        advert.emit(target, dst, &mut d[at..]);
        Verdict::Tx(in_port)
    }
}

/// An answer goes back to the sender of the request it is made from, from our port's address.
fn turn_around(ethernet_header: &mut [u8], ours: MacAddr) {
    let mut frame = Frame::new_unchecked(ethernet_header);
    let peer = frame.src_addr();
    frame.set_dst_addr(peer);
    frame.set_src_addr(ours);
}
