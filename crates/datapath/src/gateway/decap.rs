//! Decapsulation: the RFC 2784/2890 receiver rules (tunnel match on local, remote and key; checksum and
//! sequence checks, reordering), RFC 6040 ECN, and Cisco keepalive replies.
use super::*;
use crate::tunnel::table::ErspanRx;
use greway_wire::erspan;
use greway_wire::ethernet::{ethertype, EthernetRepr, HEADER_LEN as ETH};
use greway_wire::icmpv6::param_problem_code;
use greway_wire::ipv6::Ipv6Repr;
use greway_wire::ipv6_options::{self, option_type, UnrecognizedAction};
use greway_wire::{ipv4, ipv6, MacAddr};

impl<B: PacketBuf> Worker<B> {
    /// An IPv6 packet to one of our addresses with a Destination Options header (RFC 8200 4.6) first, as
    /// Linux ip6gre sends by default (`encaplimit 4`: the RFC 2473 Tunnel Encapsulation Limit and a PadN).
    /// Its options are processed by RFC 8200 4.2; one such header, then GRE, is decapsulated like GRE right
    /// after the fixed header. `total` is the IPv6 packet's length.
    pub(super) fn dest_opts_in(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        total: usize,
        released: Option<u32>,
        c: &mut Counters,
    ) -> Verdict {
        if !pkt.is_contiguous() {
            return Verdict::Drop(DropReason::Segmented);
        }
        let l3 = &pkt.data()[ETH..ETH + total];
        let dst_multicast = ipv6::Packet::new_unchecked(l3).dst_addr().is_multicast();
        let Ok(h) = ipv6_options::Header::new_checked(&l3[ipv6::HEADER_LEN..]) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        for opt in h.options() {
            let Ok(opt) = opt else {
                return Verdict::Drop(DropReason::BadIpv6Options);
            };
            // Padding and the encapsulation limit are understood (the limit matters to a tunnel entry point,
            // not here); any other option is acted on by its type's two high bits.
            if opt.is_padding() || opt.option_type == option_type::TUNNEL_ENCAP_LIMIT {
                continue;
            }
            let report = match UnrecognizedAction::of(opt.option_type) {
                UnrecognizedAction::Skip => continue,
                UnrecognizedAction::Discard => false,
                UnrecognizedAction::DiscardAndReport => true,
                UnrecognizedAction::DiscardAndReportUnlessMulticast => !dst_multicast,
            };
            if !report {
                return Verdict::Drop(DropReason::UnknownIpv6Option);
            }
            let kind = IcmpKind::ParamProblem {
                code: param_problem_code::UNRECOGNIZED_OPTION,
                pointer: (ipv6::HEADER_LEN + opt.offset) as u32,
                reason: DropReason::UnknownIpv6Option,
                to_sender: true,
            };
            return self.icmp_error(tables, pkt, in_port, kind, c);
        }
        if h.next_header() != protocol::GRE {
            return Verdict::Drop(DropReason::LocalUnhandled);
        }
        let gre_at = ipv6::HEADER_LEN + h.header_len();
        self.decap(tables, pkt, gre_at, total, true, released, c)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn decap(
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
        let l3 = &d[ETH..];
        let (local, remote, outer_ecn) = if outer_v6 {
            let ip = ipv6::Packet::new_unchecked(l3);
            (
                IpAddr::V6(ip.dst_addr()),
                IpAddr::V6(ip.src_addr()),
                ip.traffic_class() & ECN_MASK,
            )
        } else {
            let ip = ipv4::Packet::new_unchecked(l3);
            // An outer fragment: reassemble first (`reasm`), then this path runs on the whole datagram.
            if ip.is_fragment() {
                let excess = pkt.pkt_len() - ETH - total;
                if excess > 0 && !pkt.trim(excess) {
                    return Verdict::Drop(DropReason::Segmented);
                }
                return Verdict::Hold(HoldReason::Fragment);
            }
            (
                IpAddr::V4(ip.dst_addr()),
                IpAddr::V4(ip.src_addr()),
                ip.dscp_ecn() & ECN_MASK,
            )
        };
        let outer = &l3[..total];
        let g = match gre::Packet::new_checked(&outer[ihl..]) {
            Ok(g) => g,
            Err(e) => {
                return Verdict::Drop(match e {
                    GreError::Truncated { .. } => DropReason::Truncated,
                    GreError::RoutingOrRecursion { .. } => DropReason::GreReservedBits,
                    GreError::Pptp(_) => DropReason::Pptp,
                    GreError::Eoip(_) => DropReason::Eoip,
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
        // Bytes of outer IP header and GRE header (and shim) in front of the inner packet.
        let mut strip = ihl + g.header_len();
        let seq = g.sequence();
        if let Some(e) = t.erspan {
            return self.erspan_in(pkt, ti, e, proto, seq.is_some(), strip, total, c);
        }
        if proto == gre::protocol::KEEPALIVE {
            // The reply to our keepalive is the inner header we built: key, no checksum, no sequence number
            // (Cisco's format). It carries no data, so the tunnel's checksum requirement does not apply.
            return self.keepalive_in(tables, pkt, t, strip, total, c);
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
                return Verdict::Hold(HoldReason::Reorder { tunnel: ti, seq: s });
            }
            t.state.rx_seq.store(s, Ordering::Relaxed);
        }
        if proto == gre::protocol::TEB && t.is_teb() {
            return self.teb_in(tables, pkt, ti, t.teb, strip, total, c);
        }
        let inner_type = match proto {
            gre::protocol::IPV4 | gre::protocol::IPV6 => proto,
            gre::protocol::CISCO_METADATA => match gre::CiscoMetaData::parse(&outer[strip..]) {
                Ok(m)
                    if m.inner_ethertype == ethertype::IPV4
                        || m.inner_ethertype == ethertype::IPV6 =>
                {
                    strip += m.shim_len;
                    m.inner_ethertype
                }
                Ok(_) => return tdrop(c, DropReason::UnsupportedGreProtocol),
                Err(_) => return tdrop(c, DropReason::Truncated),
            },
            _ => return tdrop(c, DropReason::UnsupportedGreProtocol),
        };
        // Strip everything before the inner packet but leave room for a fresh Ethernet header.
        let trail = pkt.pkt_len() - ETH - total;
        if !pkt.adj(strip) || (trail > 0 && !pkt.trim(trail)) {
            return tdrop(c, DropReason::Truncated);
        }
        fresh_ethernet(pkt.data_mut(), inner_type);
        let inner_ok = if inner_type == ethertype::IPV4 {
            Self::check_ipv4(pkt.data())
        } else {
            Self::check_ipv6(pkt.data()).map(|tot| (ipv6::HEADER_LEN, tot))
        };
        let (inner_ihl, inner_total) = match inner_ok {
            Ok(v) => v,
            Err(r) => return tdrop(c, r),
        };
        let excess = pkt.pkt_len() - ETH - inner_total;
        if excess > 0 && !pkt.trim(excess) {
            return tdrop(c, DropReason::Truncated);
        }
        let inner = &pkt.data()[ETH..];
        let (isrc, idst, inner_gre) = if inner_type == ethertype::IPV4 {
            let ip = ipv4::Packet::new_unchecked(inner);
            (
                IpAddr::V4(ip.src_addr()),
                IpAddr::V4(ip.dst_addr()),
                ip.protocol() == ipv4::protocol::GRE,
            )
        } else {
            let ip = ipv6::Packet::new_unchecked(inner);
            (IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()), false)
        };
        if inner_gre && isrc == t.local && idst == t.remote {
            // A Cisco keepalive from the peer: the inner packet goes back to the peer as it is (reflection),
            // only for a configured tunnel (we got here through the tunnel match) and only to its remote.
            c.tunnels[ti as usize].keepalives_rx += 1;
            c.tunnels[ti as usize].keepalives_reflected += 1;
            let Some((port, nh)) = tables.routes.next_hop(t.remote) else {
                return tdrop(c, DropReason::NoRoute);
            };
            return self.l2_rewrite(tables, pkt, port, nh);
        }
        if t.is_teb() {
            // A TEB tunnel carries Ethernet frames (and keepalives, answered above), no routed IP.
            return tdrop(c, DropReason::UnsupportedGreProtocol);
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
        if outer_ecn == ECN_CE {
            let inner = &mut pkt.data_mut()[ETH..];
            if inner_type == ethertype::IPV4 {
                let mut ip = ipv4::Packet::new_unchecked(inner);
                let tos = ip.dscp_ecn();
                match tos & ECN_MASK {
                    ECN_NOT_ECT => return tdrop(c, DropReason::EcnCeOnNotEct),
                    ECN_CE => {}
                    _ => {
                        ip.set_dscp_ecn(tos | ECN_CE);
                        // RFC 1624 update for the changed DSCP/ECN byte (the low half of the first word).
                        let ck = checksum::update16(
                            ip.checksum(),
                            u16::from(tos),
                            u16::from(tos | ECN_CE),
                        );
                        ip.set_checksum(ck);
                    }
                }
            } else {
                let Ok(mut ip) = Ipv6Repr::parse(&ipv6::Packet::new_unchecked(&*inner)) else {
                    return tdrop(c, DropReason::BadIpHeader);
                };
                if ip.traffic_class & ECN_MASK == ECN_NOT_ECT {
                    return tdrop(c, DropReason::EcnCeOnNotEct);
                }
                ip.traffic_class |= ECN_CE;
                ip.emit(inner);
            }
        }
        if let Some(clamp) = t.mss_clamp {
            // MSS clamping leaving the tunnel: the SYN-ACK of a connection opened from the inside, or a SYN
            // opened from the far side.
            inner::clamp_mss(pkt.data_mut(), ETH, inner_type == ethertype::IPV4, clamp);
        }
        let tc = &mut c.tunnels[ti as usize];
        tc.decap += 1;
        tc.decap_bytes += inner_total as u64;
        // For us (a tunnel's own address, or a port's): answered or handed on here, never routed.
        let ours = match idst {
            IpAddr::V4(a) => self.is_local4(tables, a.octets()),
            IpAddr::V6(a) => self.is_local6(tables, a.octets()),
        };
        if ours {
            let from = LocalIngress::Tunnel(ti);
            return if inner_type == ethertype::IPV4 {
                self.local4_in(tables, pkt, from, inner_ihl, inner_total, c)
            } else {
                self.local6_in(tables, pkt, from, inner_total, c)
            };
        }
        let in_port = usize::from(t.out_port);
        self.route_ip(tables, pkt, in_port, true, c)
    }

    /// A packet of an ERSPAN tunnel (`mode = "erspan"`): the mirrored Ethernet frame of the tunnel's session
    /// leaves the `deliver` port byte for byte. Type I (protocol 0x88BE without a GRE sequence number) has no
    /// ERSPAN header and no session: it counts as session 0. Type II (0x88BE with a sequence number) and type
    /// III (0x22EB) headers are checked by `greway_wire::erspan`. The GRE payload is `strip..total` of the
    /// outer IP packet.
    #[allow(clippy::too_many_arguments)]
    fn erspan_in(
        &mut self,
        pkt: &mut B,
        ti: u32,
        e: ErspanRx,
        proto: u16,
        has_seq: bool,
        strip: usize,
        total: usize,
        c: &mut Counters,
    ) -> Verdict {
        let tdrop = |c: &mut Counters, r: DropReason| {
            c.tunnels[ti as usize].drops += 1;
            Verdict::Drop(r)
        };
        let payload = &pkt.data()[ETH..][strip..total];
        let header = match proto {
            gre::protocol::ERSPAN if !has_seq => Ok((0, 0)),
            gre::protocol::ERSPAN => {
                erspan::TypeIIRepr::parse(payload).map(|h| (h.session, erspan::TYPE_II_LEN))
            }
            gre::protocol::ERSPAN3 => erspan::TypeIIIRepr::parse(payload).and_then(|h| {
                if h.ft == erspan::TypeIIIRepr::FT_ETHERNET {
                    Ok((h.session, h.header_len()))
                } else {
                    Err(greway_wire::Error::Malformed {
                        layer: greway_wire::Layer::Erspan,
                        reason: "frame type is not Ethernet",
                    })
                }
            }),
            _ => return tdrop(c, DropReason::UnsupportedGreProtocol),
        };
        let Ok((session, erspan_len)) = header else {
            return tdrop(c, DropReason::ErspanMalformed);
        };
        if session != e.session {
            return tdrop(c, DropReason::ErspanSessionMismatch);
        }
        let Some(deliver) = e.deliver else {
            return tdrop(c, DropReason::ErspanNoDeliver);
        };
        let frame_len = payload.len() - erspan_len;
        if frame_len < ETH {
            return tdrop(c, DropReason::ErspanMalformed);
        }
        let trail = pkt.pkt_len() - ETH - total;
        if !pkt.adj(ETH + strip + erspan_len) || (trail > 0 && !pkt.trim(trail)) {
            return tdrop(c, DropReason::Truncated);
        }
        let tc = &mut c.tunnels[ti as usize];
        tc.decap += 1;
        tc.decap_bytes += frame_len as u64;
        Verdict::Tx(usize::from(deliver))
    }

    /// Cisco keepalives (GRE protocol 0). A peer's keepalive carries an inner IPv4+GRE packet addressed back
    /// to the peer: forward it (reflect). An empty one is our own keepalive coming back: the tunnel is alive.
    /// The GRE payload is `strip..total` of the outer IP packet.
    pub(super) fn keepalive_in(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        t: &Tunnel,
        strip: usize,
        total: usize,
        c: &mut Counters,
    ) -> Verdict {
        let ti = t.index as usize;
        let payload = &pkt.data()[ETH..][strip..total];
        let ip = ipv4::Packet::new_unchecked(payload);
        if payload.len() < ipv4::HEADER_LEN || ip.version() != 4 {
            t.state
                .last_keepalive_tsc
                .store(self.now.max(1), Ordering::Relaxed);
            c.tunnels[ti].keepalives_rx += 1;
            return Verdict::Drop(DropReason::KeepaliveConsumed);
        }
        // The inner packet must go back to the tunnel's peer, from our tunnel address: reflect nothing else.
        if IpAddr::V4(ip.dst_addr()) != t.remote
            || IpAddr::V4(ip.src_addr()) != t.local
            || ip.protocol() != ipv4::protocol::GRE
        {
            c.tunnels[ti].drops += 1;
            return Verdict::Drop(DropReason::UnsupportedGreProtocol);
        }
        let trail = pkt.pkt_len() - ETH - total;
        if !pkt.adj(strip) || (trail > 0 && !pkt.trim(trail)) {
            return Verdict::Drop(DropReason::Truncated);
        }
        fresh_ethernet(pkt.data_mut(), ethertype::IPV4);
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
}

/// RFC 3168 section 5: the ECN field, the low two bits of the IPv4 TOS byte / IPv6 traffic class.
const ECN_MASK: u8 = 0b11;
const ECN_NOT_ECT: u8 = 0b00;
const ECN_CE: u8 = 0b11;

/// The Ethernet header in front of a decapsulated packet: its EtherType; the addresses are written when the
/// packet is routed (`l2_rewrite`). Written whole: the bytes there are what was left of the outer headers, and
/// a view that looked for a VLAN tag in them could be fooled.
#[inline(always)]
fn fresh_ethernet(d: &mut [u8], inner_type: u16) {
    EthernetRepr {
        src_addr: MacAddr::ZERO,
        dst_addr: MacAddr::ZERO,
        vlan: None,
        ethertype: inner_type,
    }
    .emit(d);
}

#[cfg(test)]
mod tests {
    use greway_wire::checksum::update16;

    /// The ECN update names only the DSCP/ECN byte; RFC 1624 eqn. 3 over the whole first word (version/IHL
    /// byte unchanged) sums to the same value, so the header checksum is the same.
    #[test]
    fn ecn_update_of_the_tos_byte_equals_the_update_of_the_first_word() {
        for hc in (0..=u16::MAX).step_by(3) {
            for tos in (0..=u8::MAX).filter(|t| matches!(t & 3, 1 | 2)) {
                for ver_ihl in [0x45u16, 0x46, 0x4f] {
                    assert_eq!(
                        update16(hc, u16::from(tos), u16::from(tos | 3)),
                        update16(
                            hc,
                            ver_ihl << 8 | u16::from(tos),
                            ver_ihl << 8 | u16::from(tos | 3)
                        ),
                        "hc={hc:#06x} tos={tos:#04x}"
                    );
                }
            }
        }
    }
}
