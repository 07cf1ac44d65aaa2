//! Decapsulation: the RFC 2784/2890 receiver rules (tunnel match on local, remote and key; checksum and
//! sequence checks, reordering), RFC 6040 ECN, and Cisco keepalive replies.
use super::*;

impl<B: PacketBuf> Worker<B> {
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
                    let ck = checksum::update16(be16(d, ETH + 10), old, be16(d, ETH));
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
    pub(super) fn keepalive_in(
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
}
