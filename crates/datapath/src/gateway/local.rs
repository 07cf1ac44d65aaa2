//! Answers for our own addresses: ARP (RFC 826), ICMP echo, ICMPv6 echo and neighbour discovery (RFC 4861).
use super::*;

impl<B: PacketBuf> Worker<B> {
    pub(super) fn arp_in(&mut self, tables: &Tables, pkt: &mut B, in_port: usize) -> Verdict {
        let d = pkt.data();
        if d.len() < ETH + 28 {
            return Verdict::Drop(DropReason::Truncated);
        }
        let a = &d[ETH..ETH + 28];
        if be16(a, 0) != 1 || be16(a, 2) != ETHERTYPE_IPV4 || a[4] != 6 || a[5] != 4 {
            return Verdict::Drop(DropReason::ArpIgnored);
        }
        let op = be16(a, 6);
        let sha: [u8; 6] = a[8..14].try_into().expect("6");
        let spa: [u8; 4] = a[14..18].try_into().expect("4");
        let tpa: [u8; 4] = a[24..28].try_into().expect("4");
        let port = &tables.ports[in_port];
        let ours = port.v4.iter().any(|x| x.0.octets() == tpa);
        let sender_on_link = port.v4.iter().any(|(a, l)| {
            ipnet::Ipv4Net::new(*a, *l).is_ok_and(|n| n.contains(&Ipv4Addr::from(spa)))
        });
        if sender_on_link && spa != [0; 4] && sha[0] & 1 == 0 {
            let known = tables.neighbors.get(&IpAddr::from(spa)).map(|n| n.mac);
            if known != Some(sha) && (ours || op == 2) {
                self.event(Event::Neighbor {
                    port: in_port,
                    ip: IpAddr::from(spa),
                    mac: sha,
                });
            }
        }
        if op != 1 || !ours {
            return Verdict::Drop(if op == 2 {
                DropReason::NeighborLearned
            } else {
                DropReason::ArpIgnored
            });
        }
        if !self.reply_limit.take(self.now) {
            return Verdict::Drop(DropReason::ReplyRateLimited);
        }
        let mac = port.mac;
        let d = pkt.data_mut();
        d[0..6].copy_from_slice(&sha);
        d[6..12].copy_from_slice(&mac);
        let a = &mut d[ETH..ETH + 28];
        put16(a, 6, 2);
        a[18..24].copy_from_slice(&sha);
        a[24..28].copy_from_slice(&spa);
        a[8..14].copy_from_slice(&mac);
        a[14..18].copy_from_slice(&tpa);
        Verdict::Tx(in_port)
    }

    pub(super) fn icmp4_local(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        ihl: usize,
        total: usize,
    ) -> Verdict {
        let d = pkt.data();
        if total < ihl + 8 {
            return Verdict::Drop(DropReason::Truncated);
        }
        if d[ETH + ihl] != 8 {
            return Verdict::Drop(DropReason::LocalUnhandled);
        }
        let excess = pkt.pkt_len() - ETH - total;
        if excess > 0 && !pkt.trim(excess) {
            return Verdict::Drop(DropReason::Segmented);
        }
        if checksum::fold(checksum::sum(&pkt.data()[ETH + ihl..], 0)) != 0xffff {
            return Verdict::Drop(DropReason::BadChecksum);
        }
        let mac = tables.ports[in_port].mac;
        let d = pkt.data_mut();
        // Echo reply: swap addresses, type 8 -> 0 (RFC 1624 update of the ICMP checksum), fresh TTL.
        let (eth, rest) = d.split_at_mut(6);
        eth.copy_from_slice(&rest[..6]);
        d[6..12].copy_from_slice(&mac);
        let ip = &mut d[ETH..];
        let mut src = [0u8; 4];
        src.copy_from_slice(&ip[12..16]);
        ip.copy_within(16..20, 12);
        ip[16..20].copy_from_slice(&src);
        ip[8] = 64;
        put16(ip, 10, 0);
        let ck = ipv4_header_checksum(&ip[..ihl]);
        put16(ip, 10, ck);
        let icmp = &mut ip[ihl..];
        let old = be16(icmp, 0);
        icmp[0] = 0;
        let ck = checksum::update16(be16(icmp, 2), old, be16(icmp, 0));
        put16(icmp, 2, ck);
        Verdict::Tx(in_port)
    }

    pub(super) fn icmp6_local(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        total: usize,
    ) -> Verdict {
        let excess = pkt.pkt_len() - ETH - total;
        if excess > 0 && !pkt.trim(excess) {
            return Verdict::Drop(DropReason::Segmented);
        }
        let d = pkt.data();
        if total < 48 {
            return Verdict::Drop(DropReason::Truncated);
        }
        let src: [u8; 16] = d[ETH + 8..ETH + 24].try_into().expect("16");
        let dst: [u8; 16] = d[ETH + 24..ETH + 40].try_into().expect("16");
        let icmp = &d[ETH + 40..ETH + total];
        let plen = icmp.len() as u32;
        let ps = icmpv6_pseudo(&src, &dst, plen);
        if checksum::fold(checksum::sum(icmp, ps)) != 0xffff {
            return Verdict::Drop(DropReason::BadChecksum);
        }
        let mac = tables.ports[in_port].mac;
        match icmp[0] {
            128 if self.is_local6(tables, dst) => {
                let d = pkt.data_mut();
                let (eth, rest) = d.split_at_mut(6);
                eth.copy_from_slice(&rest[..6]);
                d[6..12].copy_from_slice(&mac);
                d[ETH + 8..ETH + 24].copy_from_slice(&dst);
                d[ETH + 24..ETH + 40].copy_from_slice(&src);
                d[ETH + 7] = 64;
                // Swapping src and dst leaves the pseudo-header sum unchanged: only the type changes.
                let old = be16(d, ETH + 40);
                d[ETH + 40] = 129;
                let ck = checksum::update16(be16(d, ETH + 42), old, be16(d, ETH + 40));
                put16(d, ETH + 42, ck);
                Verdict::Tx(in_port)
            }
            135 => self.nd_solicit(tables, pkt, in_port, src, total),
            136 => {
                // Neighbour advertisement: learn the target's link-layer address (RFC 4861 7.2.5).
                if d[ETH + 7] == 255 && icmp.len() >= 24 {
                    let target: [u8; 16] = icmp[8..24].try_into().expect("16");
                    if let Some(ll) = nd_option(&icmp[24..], 2) {
                        self.event(Event::Neighbor {
                            port: in_port,
                            ip: IpAddr::from(target),
                            mac: ll,
                        });
                    }
                }
                Verdict::Drop(DropReason::NeighborLearned)
            }
            _ => Verdict::Drop(DropReason::LocalUnhandled),
        }
    }

    /// RFC 4861 7.2.4: answer a solicitation for one of our addresses with a solicited advertisement carrying
    /// our link-layer address; learn the solicitor's address from its option.
    pub(super) fn nd_solicit(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        src: [u8; 16],
        total: usize,
    ) -> Verdict {
        let d = pkt.data();
        let icmp = &d[ETH + 40..ETH + total];
        if d[ETH + 7] != 255 || icmp.len() < 24 || icmp[1] != 0 {
            return Verdict::Drop(DropReason::ArpIgnored);
        }
        let target: [u8; 16] = icmp[8..24].try_into().expect("16");
        let port = &tables.ports[in_port];
        if !port.v6.iter().any(|a| a.0.octets() == target) {
            return Verdict::Drop(DropReason::ArpIgnored);
        }
        let sll = nd_option(&icmp[24..], 1);
        let unspecified = src == [0; 16];
        if let (Some(mac), false) = (sll, unspecified) {
            self.event(Event::Neighbor {
                port: in_port,
                ip: IpAddr::from(src),
                mac,
            });
        }
        if !self.reply_limit.take(self.now) {
            return Verdict::Drop(DropReason::ReplyRateLimited);
        }
        let mac = port.mac;
        let req_mac: [u8; 6] = d[6..12].try_into().expect("6");
        // The advertisement is 24 bytes + an 8-byte target link-layer option.
        let want = ETH + 40 + 32;
        let have = pkt.pkt_len();
        if have < want {
            if pkt.append(want - have).is_none() {
                return Verdict::Drop(DropReason::NoHeadroom);
            }
        } else if have > want && !pkt.trim(have - want) {
            return Verdict::Drop(DropReason::Segmented);
        }
        let dst6: [u8; 16] = if unspecified {
            // RFC 4861 7.2.4: to all-nodes when the solicitation came from the unspecified address.
            [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        } else {
            src
        };
        let d = pkt.data_mut();
        if unspecified {
            d[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
        } else {
            d[0..6].copy_from_slice(&req_mac);
        }
        d[6..12].copy_from_slice(&mac);
        let ip = &mut d[ETH..];
        put16(ip, 4, 32);
        ip[6] = PROTO_ICMPV6;
        ip[7] = 255;
        ip[8..24].copy_from_slice(&target);
        ip[24..40].copy_from_slice(&dst6);
        let icmp = &mut ip[40..72];
        icmp[0] = 136;
        icmp[1] = 0;
        put16(icmp, 2, 0);
        // Flags: Solicited (unless to all-nodes) and Override.
        icmp[4] = if unspecified { 0x20 } else { 0x60 };
        icmp[5..8].fill(0);
        icmp[8..24].copy_from_slice(&target);
        icmp[24] = 2;
        icmp[25] = 1;
        icmp[26..32].copy_from_slice(&mac);
        let ps = icmpv6_pseudo(&target, &dst6, 32);
        let ck = !checksum::fold(checksum::sum(icmp, ps));
        put16(icmp, 2, ck);
        Verdict::Tx(in_port)
    }
}
