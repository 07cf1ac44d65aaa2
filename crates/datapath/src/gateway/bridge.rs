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
    /// A frame received on l2 port `in_port`: into the bridge of its VLAN, or of the whole port.
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
        if !pb.vlans.is_empty() && ethertype_of(d) == ethertype::VLAN {
            let Some(tci) = d.get(ETH..ETH + 2) else {
                return Verdict::Drop(DropReason::Truncated);
            };
            let vid = VlanTag::from_tci(u16::from_be_bytes([tci[0], tci[1]])).vid;
            if let Some(m) = pb.vlan(vid) {
                if d.len() < VLAN_HEADER_LEN {
                    return Verdict::Drop(DropReason::Truncated);
                }
                // Into the bridge untagged.
                ethernet::move_addresses_over_vlan_tag(pkt.data_mut());
                pkt.adj(VLAN_TAG_LEN);
                return self.bridge(tables, pkt, m, c);
            }
        }
        match pb.whole {
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
        let bi = usize::from(m.bridge);
        let b = &tables.bridges[bi];
        if c.bridges.len() <= bi {
            // Once per worker (its first bridged frame).
            c.ensure_bridges(tables.bridges.len());
        }
        let eth = ethernet::Header::from_prefix(pkt.data()).expect("checked by the caller");
        let (dst, src) = (eth.dst(), eth.src());
        c.bridges[bi].rx += 1;
        if src[0] & 1 != 0 || src == [0; 6] {
            return Verdict::Drop(DropReason::BridgeBadSource);
        }
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
                    return self.member_out(tables, pkt, b.members[usize::from(to)], c);
                }
            }
        }
        c.bridges[bi].flooded += 1;
        self.flood(tables, pkt, m, c)
    }

    /// Send the frame to every member of its bridge but `from`: copies to all of them but the last, which gets
    /// the frame itself (this packet's verdict).
    fn flood(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        from: MemberRef,
        c: &mut Counters,
    ) -> Verdict {
        let bi = usize::from(from.bridge);
        let members = &tables.bridges[bi].members;
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
