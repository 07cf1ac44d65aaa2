//! Bridging (`[[bridge]]`): frames from l2 ports, from one VLAN of an l2 port, and from TEB tunnels.
//!
//! IEEE 802.1Q learning and forwarding, as Linux's bridge does it: the source MAC is learned against the member
//! the frame came from (unless `learning = false`); a unicast destination learned on another member goes to that
//! member only; a destination learned on the member the frame came from is not sent back (`bridge_same_member`);
//! broadcast, multicast and unknown unicast are flooded to every member but the one it came from. A frame with a
//! group or all-zero source is dropped (`bridge_bad_source`). On a VLAN member the 802.1Q tag is removed on the
//! way in and put back (priority 0) on the way out; inside the bridge frames are untagged.
//!
//! Flooding makes a copy per extra member (`PacketBuf::alloc_sibling`); the original goes to the last member
//! as this packet's verdict, the copies through the worker's deferred queue (sent at the end of the poll round).
//! A copy that cannot be made (no mbuf, the frame longer than one, the deferred queue full) is counted in the
//! bridge's `flood_copy_failed`: that member misses the frame; nothing waits for room.
//!
//! This is its own path, reached only for l2 ports and for GRE protocol 0x6558 in the general decapsulation:
//! the IP fast paths never see a bridged frame.
use super::*;
use crate::bridge::mac_table::Learn;
use crate::bridge::{Member, MemberRef};
use greway_wire::ethernet::{VlanTag, HEADER_LEN as ETH, VLAN_HEADER_LEN, VLAN_TAG_LEN};

impl<B: PacketBuf> Worker<B> {
    /// A frame received on l2 port `in_port`: into the bridge of its VLAN, or of the whole port. (Inline into
    /// the l2 pass and the general rules' dispatch: one call, `bridge`, per frame.)
    #[inline(always)]
    pub(super) fn bridge_from_port(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        in_port: usize,
        c: &mut Counters,
    ) -> Verdict {
        let Some(pb) = tables.port_bridging.get(in_port) else {
            return Verdict::Drop(DropReason::L2NoBridge);
        };
        let d = pkt.data();
        if d.len() < ETH {
            return Verdict::Drop(DropReason::Truncated);
        }
        let mut m = pb.whole;
        if !pb.vlans.is_empty() && ethertype_of(d) == ethertype::VLAN {
            match vlan_member(pkt, pb) {
                Ok(None) => {}
                Ok(vm) => m = vm,
                Err(r) => return Verdict::Drop(r),
            }
        }
        match m {
            Some(m) => self.bridge(tables, pkt, m, c),
            None => Verdict::Drop(DropReason::L2NoBridge),
        }
    }

    /// The Ethernet frame `pkt` (from its first byte, at least an Ethernet header) came from member `m`: learn,
    /// then forward or flood.
    pub(super) fn bridge(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        m: MemberRef,
        c: &mut Counters,
    ) -> Verdict {
        let b = &tables.bridges[usize::from(m.bridge)];
        let bi = b.counters as usize;
        if c.bridges.len() <= bi {
            // Once per worker and bridge (its first bridged frame).
            c.ensure_bridges(bi + 1);
        }
        let eth = ethernet::Header::from_prefix(pkt.data()).expect("checked by the caller");
        let (dst, src) = (eth.dst(), eth.src());
        c.bridges[bi].rx += 1;
        if src[0] & 1 != 0 || src == [0; 6] {
            return Verdict::Drop(DropReason::BridgeBadSource);
        }
        let members = &b.members;
        let to = 'to: {
            if b.learning {
                let now_s = self.bridge_clock();
                let bc = &mut c.bridges[bi];
                match b.macs.learn(src, m.member, now_s) {
                    Learn::Known | Learn::Raced => {}
                    Learn::Learned => bc.learned += 1,
                    Learn::Moved => bc.moved += 1,
                    Learn::Full => bc.table_full += 1,
                }
                if dst[0] & 1 == 0 {
                    if let Some(to) = b.macs.lookup(dst, now_s) {
                        if to == m.member {
                            return Verdict::Drop(DropReason::BridgeSameMember);
                        }
                        bc.forwarded += 1;
                        break 'to members[usize::from(to)];
                    }
                }
            }
            c.bridges[bi].flooded += 1;
            if members.len() != 2 {
                return self.flood(tables, pkt, m, c);
            }
            // Two members: the flood is the frame itself, to the other one.
            members[usize::from(m.member == 0)]
        };
        // (The one place the frame leaves a bridge by, inline here.)
        self.member_out(tables, pkt, to, c)
    }

    /// Send the frame to every member of its bridge but `from`: copies to all of them but the last, which gets
    /// the frame itself (this packet's verdict). (Out of line: the copies' loop would hold registers in
    /// `bridge`, whose bridges of two members have no copies to make.)
    #[inline(never)]
    fn flood(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        from: MemberRef,
        c: &mut Counters,
    ) -> Verdict {
        let b = &tables.bridges[usize::from(from.bridge)];
        // Made room for by `bridge`.
        let bi = b.counters as usize;
        let members = &b.members;
        let from = usize::from(from.member);
        let Some(last) = (0..members.len()).rev().find(|&i| i != from) else {
            // A bridge of one member (not a valid configuration): nowhere to go.
            return Verdict::Drop(DropReason::L2NoBridge);
        };
        for (i, &to) in members.iter().enumerate() {
            if i == from || i == last {
                continue;
            }
            let copy = if self.deferred.len() < DEFERRED_CAP {
                copy_frame(pkt)
            } else {
                None
            };
            let Some(mut copy) = copy else {
                c.bridges[bi].flood_copy_failed += 1;
                continue;
            };
            c.bridges[bi].flood_copies += 1;
            match self.member_out(tables, &mut copy, to, c) {
                Verdict::Tx(p) => self.deferred.push((p, copy)),
                Verdict::Drop(r) => c.drop_pkt(r),
                Verdict::Hold(why) => self.hold_now(tables, copy, why, c),
            }
        }
        self.member_out(tables, pkt, members[last], c)
    }

    /// A frame leaving the bridge by member `to`: out of its port (tagged for a VLAN member), or into its tunnel.
    #[inline(always)]
    fn member_out(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        to: Member,
        c: &mut Counters,
    ) -> Verdict {
        match to {
            Member::Port { port, vlan: None } => Verdict::Tx(usize::from(port)),
            Member::Port {
                port,
                vlan: Some(vid),
            } => {
                if pkt.prepend(VLAN_TAG_LEN).is_none() {
                    return Verdict::Drop(DropReason::NoHeadroom);
                }
                let tag = VlanTag {
                    pcp: 0,
                    dei: false,
                    vid,
                };
                ethernet::insert_vlan_tag(pkt.data_mut(), tag);
                Verdict::Tx(usize::from(port))
            }
            Member::Tunnel { tunnel } => self.encap_frame(tables, pkt, tunnel, c),
        }
    }

    /// A TEB packet (GRE protocol 0x6558) of tunnel `ti`, member `m` of a bridge (or of none), every GRE check
    /// passed: the Ethernet frame inside is bridged as it is. The GRE payload is `strip..total` of the outer IP
    /// packet.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn teb_in(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        ti: u32,
        m: Option<MemberRef>,
        strip: usize,
        total: usize,
        c: &mut Counters,
    ) -> Verdict {
        let tc = &mut c.tunnels[ti as usize];
        let frame_len = total - strip;
        if frame_len < ETH {
            tc.drops += 1;
            return Verdict::Drop(DropReason::Truncated);
        }
        let Some(m) = m else {
            tc.drops += 1;
            return Verdict::Drop(DropReason::L2NoBridge);
        };
        let trail = pkt.pkt_len() - ETH - total;
        if !pkt.adj(ETH + strip) || (trail > 0 && !pkt.trim(trail)) {
            tc.drops += 1;
            return Verdict::Drop(DropReason::Truncated);
        }
        tc.decap += 1;
        tc.decap_bytes += frame_len as u64;
        self.bridge(tables, pkt, m, c)
    }

    /// The decap pass's way for TEB (GRE protocol 0x6558): a packet to one of our addresses over IPv4 (no
    /// options, not a fragment, a valid header checksum; `NIC`: the NIC verified it) or IPv6 (GRE right after
    /// the fixed header), exactly one packet in the frame, GRE with a key or not and no other flag, of a TEB
    /// tunnel without checksum or sequence numbers that is a member of a bridge with no other tunnel member:
    /// the outer headers go and the frame inside is bridged ([`Worker::bridge`], the general rules' own). Its
    /// other members being ports, the frame is sent or dropped, never held. Anything else returns `None`
    /// unchanged, for the general rules (which also say why a frame shorter than an Ethernet header, or of a
    /// tunnel in no bridge, is dropped). The pass's bytes: a frame sent is counted here; for one dropped the
    /// outer headers are (the pass counts what is left, as for every planned drop).
    /// (Inline into its two callers: the pass's cold `decap_teb`, and the rest of a burst after a TEB packet.)
    #[inline(always)]
    pub(super) fn fast_teb<const NIC: bool>(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        c: &mut Counters,
    ) -> Option<Verdict> {
        // GRE's first four bytes as they lie in the packet: no flag or K, version 0, protocol TEB.
        const fn shape(flags: u16) -> u32 {
            let (f, p) = (flags.to_be_bytes(), gre::protocol::TEB.to_be_bytes());
            u32::from_ne_bytes([f[0], f[1], p[0], p[1]])
        }
        const PLAIN: u32 = shape(0);
        const KEYED: u32 = shape(gre::flags::KEY);
        let d = pkt.data();
        let len = d.len();
        if len != pkt.pkt_len() {
            return None;
        }
        // GRE at `gre_at`: its key word ([`key_word`]) and the offset of the frame inside.
        let gre_of = |gre_at: usize| -> Option<(u64, usize)> {
            let base: [u8; 4] = *checked_prefix(d.get(gre_at..)?);
            let key_at = gre_at + gre::BASE_HEADER_LEN;
            match u32::from_ne_bytes(base) {
                PLAIN => Some((key_word(None), key_at)),
                KEYED => Some((
                    key_word(Some(*checked_prefix(d.get(key_at..key_at + 4)?))),
                    key_at + 4,
                )),
                _ => None,
            }
        };
        let (ti, off) = match ethertype_of(d) {
            ethertype::IPV4 => {
                let (_, ip) = eth_ipv4(frame_prefix::<ETH_IPV4>(d)?);
                if ip.ver_ihl() != ipv4::VER_IHL_NO_OPTIONS
                    || ip.protocol() != protocol::GRE
                    || usize::from(ip.total_len()) != len - ETH
                    || ip.is_fragment()
                    || !((NIC && pkt.rx_ipv4_cksum_good()) || ip.checksum_valid_nonzero())
                {
                    return None;
                }
                let (kw, off) = gre_of(ETH_IPV4)?;
                // As `last_decap4`.
                let addrs = addr_word4(&ip);
                let (a, k, ti) = self.last_teb4;
                if a == addrs && k == kw {
                    // (The cached match passed the "ours" check in this table generation.)
                    (ti, off)
                } else {
                    let ti = self.tunnel_of4(tables, &ip, kw)?;
                    self.last_teb4 = (addrs, kw, ti);
                    (ti, off)
                }
            }
            ethertype::IPV6 => {
                let (_, ip) = eth_ipv6(frame_prefix::<ETH_IPV6>(d)?);
                if ip.version() != 6
                    || ip.next_header() != protocol::GRE
                    || usize::from(ip.payload_len()) + ipv6::HEADER_LEN != len - ETH
                    || !self.is_local6(tables, ip.dst())
                {
                    return None;
                }
                let (kw, off) = gre_of(ETH_IPV6)?;
                let dk = crate::tunnel::table::DecapKey {
                    local: IpAddr::from(ip.dst()),
                    remote: IpAddr::from(ip.src()),
                    key: key_of_word(kw),
                };
                let ti = match self.last_decap {
                    Some((k, ti)) if k == dk => ti,
                    _ => {
                        let ti = *tables.decap.get(&dk)?;
                        self.last_decap = Some((dk, ti));
                        ti
                    }
                };
                (ti, off)
            }
            _ => return None,
        };
        // At least the inner Ethernet header.
        if len < off + ETH {
            return None;
        }
        let t = tables.tunnels.get(ti as usize)?;
        if !t.is_teb() || t.checksum || t.sequence || t.erspan.is_some() {
            return None;
        }
        let m = t.teb?;
        if !tables.bridges.get(usize::from(m.bridge))?.one_tunnel {
            return None;
        }
        // As `teb_in`.
        if !pkt.adj(off) {
            return None;
        }
        let tc = &mut c.tunnels[ti as usize];
        tc.decap += 1;
        tc.decap_bytes += (len - off) as u64;
        let v = self.bridge(tables, pkt, m, c);
        match v {
            Verdict::Tx(_) => self.take_bytes(len, pkt.pkt_len()),
            _ => self.pass_bytes.rx += off as u64,
        }
        Some(v)
    }

    /// The MAC tables' clock ([`crate::bridge::clock_s`] of the poll round's TSC), divided out once a second.
    #[inline]
    fn bridge_clock(&mut self) -> u32 {
        if self.now >= self.clock_next_tsc {
            let hz = self.tsc_hz.max(1);
            self.clock_s = crate::bridge::clock_s(self.now, hz);
            self.clock_next_tsc = (u64::from(self.clock_s) + 1) * hz;
        }
        self.clock_s
    }
}

/// A copy of frame `pkt` in a new buffer of the same kind (an mbuf of the same pool), or None when there is no
/// buffer, or the frame does not fit one.
fn copy_frame<B: PacketBuf>(pkt: &B) -> Option<B> {
    let mut copy = pkt.alloc_sibling()?;
    let len = pkt.pkt_len();
    let out = copy.append(len)?;
    let mut at = 0;
    pkt.for_each_segment(&mut |seg| {
        out[at..at + seg.len()].copy_from_slice(seg);
        at += seg.len();
    });
    Some(copy)
}

/// The VLAN member of l2 port bridging `pb` that the 802.1Q-tagged frame `pkt` (at least an Ethernet header)
/// belongs to, its tag removed (into the bridge untagged); `None`, the frame untouched, when its VLAN is in no
/// bridge.
fn vlan_member<B: PacketBuf>(
    pkt: &mut B,
    pb: &crate::bridge::PortBridging,
) -> Result<Option<MemberRef>, DropReason> {
    let d = pkt.data();
    let Some(tci) = d.get(ETH..ETH + 2) else {
        return Err(DropReason::Truncated);
    };
    let vid = VlanTag::from_tci(u16::from_be_bytes([tci[0], tci[1]])).vid;
    let Some(m) = pb.vlan(vid) else {
        return Ok(None);
    };
    if d.len() < VLAN_HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    ethernet::move_addresses_over_vlan_tag(pkt.data_mut());
    pkt.adj(VLAN_TAG_LEN);
    Ok(Some(m))
}
