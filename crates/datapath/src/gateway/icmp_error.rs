//! ICMP errors built in place of the offending packet (RFC 792/1812, RFC 4443): fragmentation needed,
//! packet too big, time exceeded; rate-limited by a token bucket.
use super::*;

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
