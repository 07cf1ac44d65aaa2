//! ICMP errors built in place of the offending packet (RFC 792/1812, RFC 4443): fragmentation needed,
//! packet too big, time exceeded, and (IPv6) parameter problem; rate-limited by a token bucket. The offending packet is read through `wire`
//! views; the new headers are `emit`ted in front of the quoted part and the ICMP header is set through the view.
use super::*;
use greway_wire::ethernet::{ethertype, EthernetRepr, Frame, HEADER_LEN as ETH};
use greway_wire::ipv4::Ipv4Repr;
use greway_wire::ipv6::Ipv6Repr;
use greway_wire::{icmpv4, icmpv6, ipv4, ipv6, MacAddr};

impl<B: PacketBuf> Worker<B> {
    /// Turn the offending packet into an ICMP error back to its source (rate limited), then route it.
    pub(super) fn icmp_error(
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
            IcmpKind::ParamProblem { reason, .. } => reason,
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
        let frame = Frame::new_unchecked(d);
        let v4 = frame.outer_ethertype() == ethertype::IPV4;
        let port = &tables.ports[in_port];
        let eth = EthernetRepr {
            src_addr: MacAddr(port.mac),
            dst_addr: frame.src_addr(),
            vlan: None,
            ethertype: if v4 { ethertype::IPV4 } else { ethertype::IPV6 },
        };
        let l3 = &d[ETH..];
        if v4 {
            let Some(me) = port.first_v4().or_else(|| tables.local4.first().copied()) else {
                return Verdict::Drop(drop_reason);
            };
            let ip = ipv4::Packet::new_unchecked(l3);
            // Never answer an ICMP error with one (RFC 1122 3.2.2), nor a fragment other than the first.
            if ip.protocol() == ipv4::protocol::ICMP {
                let t = l3.get(ip.header_len()).copied().unwrap_or(0);
                if !icmpv4::message_type::is_query(t) {
                    return Verdict::Drop(drop_reason);
                }
            }
            if ip.frag_offset() != 0 {
                return Verdict::Drop(drop_reason);
            }
            let orig_src = ip.src_addr();
            let head = ipv4::HEADER_LEN + icmpv4::HEADER_LEN;
            // RFC 1812 4.3.2.3: as much of the original as fits in 576 bytes.
            let Some(quote) = quote_behind(pkt, head, icmpv4::MAX_ERROR_DATAGRAM_LEN) else {
                return Verdict::Drop(DropReason::NoHeadroom);
            };
            let ip = Ipv4Repr {
                src_addr: me,
                dst_addr: orig_src,
                protocol: ipv4::protocol::ICMP,
                payload_len: (icmpv4::HEADER_LEN + quote) as u16,
                ttl: 64,
                dscp_ecn: 0,
                ident: 0,
                dont_frag: false,
                more_frags: false,
                frag_offset: 0,
            };
            let d = pkt.data_mut();
            let at = eth.emit(d);
            let at = at + ip.emit(&mut d[at..]);
            let mut icmp = icmpv4::Packet::new_unchecked(&mut d[at..]);
            match kind {
                IcmpKind::TooBig(mtu) => {
                    icmp.set_msg_type(icmpv4::message_type::DST_UNREACHABLE);
                    icmp.set_code(icmpv4::unreachable_code::FRAGMENTATION_NEEDED);
                    // RFC 1191 4: the next-hop MTU in the low-order 16 bits of the second word.
                    icmp.set_rest_of_header(u32::from(mtu).to_be_bytes());
                }
                IcmpKind::TimeExceeded => {
                    icmp.set_msg_type(icmpv4::message_type::TIME_EXCEEDED);
                    icmp.set_code(icmpv4::time_exceeded_code::TTL_EXCEEDED_IN_TRANSIT);
                    icmp.set_rest_of_header([0; 4]);
                }
                IcmpKind::ParamProblem { .. } => unreachable!("IPv6 packets only"),
            }
            icmp.fill_checksum();
        } else {
            let Some(me) = port.first_v6().or_else(|| tables.local6.first().copied()) else {
                return Verdict::Drop(drop_reason);
            };
            let ip = ipv6::Packet::new_unchecked(l3);
            // RFC 4443 2.2: an error about a packet sent to one of our unicast addresses comes from that address.
            let me = match kind {
                IcmpKind::ParamProblem { .. } if self.is_local6(tables, ip.dst_addr().octets()) => {
                    ip.dst_addr()
                }
                _ => me,
            };
            // RFC 4443 2.4 (e): never to a source that does not name a single node.
            if matches!(kind, IcmpKind::ParamProblem { .. })
                && (ip.src_addr().is_multicast() || ip.src_addr().is_unspecified())
            {
                return Verdict::Drop(drop_reason);
            }
            if ip.next_header() == ipv6::next_header::ICMPV6
                && l3
                    .get(ipv6::HEADER_LEN)
                    .is_some_and(|t| icmpv6::message_type::is_error(*t))
            {
                return Verdict::Drop(drop_reason);
            }
            let orig_src = ip.src_addr();
            let head = ipv6::HEADER_LEN + icmpv6::HEADER_LEN;
            // RFC 4443 2.4(c): as much of the invoking packet as fits in the minimum IPv6 MTU.
            let Some(quote) = quote_behind(pkt, head, icmpv6::MAX_ERROR_PACKET_LEN) else {
                return Verdict::Drop(DropReason::NoHeadroom);
            };
            let ip = Ipv6Repr {
                src_addr: me,
                dst_addr: orig_src,
                next_header: ipv6::next_header::ICMPV6,
                payload_len: (icmpv6::HEADER_LEN + quote) as u16,
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0,
            };
            let d = pkt.data_mut();
            let at = eth.emit(d);
            let at = at + ip.emit(&mut d[at..]);
            let mut icmp = icmpv6::Packet::new_unchecked(&mut d[at..]);
            match kind {
                IcmpKind::TooBig(mtu) => {
                    icmp.set_msg_type(icmpv6::message_type::PACKET_TOO_BIG);
                    icmp.set_code(0);
                    // RFC 4443 3.2: the MTU of the next-hop link, 32 bits.
                    icmp.set_rest_of_header(u32::from(mtu).to_be_bytes());
                }
                IcmpKind::TimeExceeded => {
                    icmp.set_msg_type(icmpv6::message_type::TIME_EXCEEDED);
                    // Code 0: hop limit exceeded in transit (RFC 4443 3.3).
                    icmp.set_code(0);
                    icmp.set_rest_of_header([0; 4]);
                }
                IcmpKind::ParamProblem { code, pointer, .. } => {
                    icmp.set_msg_type(icmpv6::message_type::PARAMETER_PROBLEM);
                    icmp.set_code(code);
                    // RFC 4443 3.4: the offset of the offending octet in the invoking packet.
                    icmp.set_rest_of_header(pointer.to_be_bytes());
                }
            }
            icmp.fill_checksum(ip.src_addr, ip.dst_addr);
        }
        c.icmp_errors_sent += 1;
        // Back toward the sender: the source is behind the port the packet came in on, or behind a tunnel.
        let src_role = tables.ports[in_port].role;
        let to_sender = matches!(
            kind,
            IcmpKind::ParamProblem {
                to_sender: true,
                ..
            }
        );
        if src_role == PortRole::Inside || to_sender {
            Verdict::Tx(in_port)
        } else {
            self.route_ip(tables, pkt, in_port, false, c)
        }
    }
}

/// Cut the offending IP packet so that the error, `head` bytes of new IP and ICMP header in front of it, is at
/// most `max_len` bytes of IP, and make room for the headers (the Ethernet header moves to the front). Returns
/// the length quoted; None when the buffer cannot be cut or has no headroom.
fn quote_behind<B: PacketBuf>(pkt: &mut B, head: usize, max_len: usize) -> Option<usize> {
    let quote = (pkt.pkt_len() - ETH).min(max_len - head);
    let excess = pkt.pkt_len() - ETH - quote;
    if (excess > 0 && !pkt.trim(excess)) || pkt.prepend(head).is_none() {
        return None;
    }
    Some(quote)
}
