//! The one-pass fast paths for the common shapes: option-less IPv4/IPv6 into a tunnel, and option-less GRE
//! (key or not, no checksum or sequence number) carrying IP to an inside neighbour. Each declines (returns
//! `None`, packet untouched) anything the general rules must see.
use super::*;
use crate::tunnel::table::{fast, inner_check};

impl<B: PacketBuf> Worker<B> {
    //
    // The bulk of a gateway's traffic is one shape per direction: on the inside, an option-less IPv4 packet
    // routed into a tunnel; on the outside, an option-less IPv4 GRE packet (key or not, no checksum or
    // sequence number) carrying IPv4 to an inside neighbour. Each fast path checks that shape in one pass over
    // fixed-size header views (no re-parsing between rule stages, no bounds checks per field) and then does
    // exactly what the general rules do for it. Anything else, or any check that fails, returns `None` with the
    // packet untouched and the general rules take it (so every drop keeps its reason and its counter).
    // `tests::fast_path_equals_general_rules` runs both on the same packets and compares bytes and counters.

    /// Inside port: IPv4 to a tunnel route -> encapsulated (see above).
    #[inline(always)]
    pub(super) fn fast_encap4(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        staged: u32,
        c: &mut Counters,
    ) -> Option<Verdict> {
        let d = pkt.data();
        let len = d.len();
        // One segment, exactly one IPv4 packet without options (no Ethernet padding to trim).
        if len != pkt.pkt_len() {
            return None;
        }
        let (eth, ip) = eth_ipv4(frame_prefix::<ETH_IPV4>(d)?);
        if !eth.ethertype_is(ethertype::IPV4) || ip.ver_ihl() != ipv4::VER_IHL_NO_OPTIONS {
            return None;
        }
        let ip_len = len - ethernet::HEADER_LEN;
        // (A NIC with IPv4 rx checksum offload has verified the header already.)
        if usize::from(ip.total_len()) != ip_len
            || !(pkt.rx_ipv4_cksum_good() || ip.checksum_valid_nonzero())
        {
            return None;
        }
        let dst = ip.dst_u32();
        // Not multicast/broadcast (224/3: first octet 224 or more), TTL left to forward with.
        if dst >= 0xe000_0000 || ip.ttl() <= 1 {
            return None;
        }
        // Staged on this same destination (the packet is unchanged since), or looked up now.
        let ti = if staged < NOT_STAGED {
            staged
        } else if staged == NOT_STAGED {
            tables.routes.encap4.lookup(dst)?
        } else {
            return None;
        };
        // Not for us: only possible here when some tunnel route covers one of our addresses.
        if tables.local4_tunneled && self.is_local4(tables, dst.to_be_bytes()) {
            return None;
        }
        let t = tables.tunnels.get(ti as usize)?;
        // The tunnel's shape, decided when the table was built; a tunnel with any setting the fast path must
        // look at (0) takes the full checks here.
        let mut shape = t.fast & fast::ENCAP_MASK;
        if shape == 0 {
            // Sequenced tunnels (owner worker), unresolved next hops, down tunnels: general.
            if t.sequence || !t.resolved || t.is_down() {
                return None;
            }
            // A tunnel with inner-packet rules (MSS clamping, encapsulation limit): what they apply to, general.
            if t.inner_checks != 0
                && inner::inner_needs_general(
                    pkt.data(),
                    ethernet::HEADER_LEN,
                    true,
                    t.inner_checks,
                )
            {
                return None;
            }
            shape = t.encap_shape();
            if shape == 0 {
                // IPv6 outside with Destination Options or a GRE checksum.
                if ip_len > usize::from(t.mtu.get()) {
                    return None;
                }
                return Some(self.encap_emit(t, pkt, ti, true, ip_len, true, true, c));
            }
        }
        // Too big (the MTU may be a path MTU learned meanwhile): general.
        if ip_len > usize::from(t.mtu.get()) {
            return None;
        }
        // IPv4 outside: one copy per header shape. The plain tunnel's copy has no checksum code at all, and
        // every copy writes a header of constant length.
        let mut ident = self.ip_ident;
        let v = match shape {
            fast::ENCAP4_PLAIN => {
                self.fast_emit4::<false, false, false>(t, pkt, ti, ip_len, &mut ident, c)
            }
            fast::ENCAP4_KEY => {
                self.fast_emit4::<false, true, false>(t, pkt, ti, ip_len, &mut ident, c)
            }
            fast::ENCAP4_CSUM => {
                self.fast_emit4::<true, false, false>(t, pkt, ti, ip_len, &mut ident, c)
            }
            fast::ENCAP6_PLAIN => self.fast_emit6::<false, false>(t, pkt, ti, ip_len, c),
            fast::ENCAP6_KEY => self.fast_emit6::<true, false>(t, pkt, ti, ip_len, c),
            _ => self.fast_emit4::<true, true, false>(t, pkt, ti, ip_len, &mut ident, c),
        };
        self.ip_ident = ident;
        Some(v)
    }

    /// [`Worker::encap_emit`] for the fast path's IPv4-outside tunnels (no sequence number there, so a 38-, 42-
    /// or 46-byte header: `CSUM` and `KEY` say which), for an IPv4 packet inside of `len` bytes or (`V6`,
    /// without `CSUM`) an IPv6 one: the mbuf grows by the header first, then the tunnel's template is written,
    /// the inner TTL or hop limit decremented and the outer IPv4 header's fields, at fixed offsets, written: two
    /// length checks and straight-line stores.
    /// The caller checked the packet as the fast paths do (an option-less IPv4 header with a TTL above 1, or an
    /// IPv6 one with a hop limit above 1, right after the Ethernet header). The inner header's values are read
    /// where they are used, after the mbuf is updated: the compiler then holds none of them across it.
    /// `tests::fast_path_equals_general_rules` compares it byte for byte with the general rules.
    /// `ip_ident`: the worker's IPv4 identification, which the outer header takes (and advances); the encap
    /// pass keeps it in a register through the burst (1.9 instructions per packet on `encap-64`).
    #[inline(always)]
    pub(super) fn fast_emit4<const CSUM: bool, const KEY: bool, const V6: bool>(
        &mut self,
        t: &Tunnel,
        pkt: &mut B,
        ti: u32,
        len: usize,
        ip_ident: &mut u16,
        c: &mut Counters,
    ) -> Verdict {
        let Some(outer_len) =
            encap_write4::<B, Tunnel, CSUM, KEY, V6, false>(t, t, pkt, len, ip_ident)
        else {
            return Verdict::Drop(DropReason::NoHeadroom);
        };
        let tc = &mut c.tunnels[ti as usize];
        tc.encap += 1;
        tc.encap_bytes += len as u64;
        self.take_bytes(len + ethernet::HEADER_LEN, outer_len + ethernet::HEADER_LEN);
        Verdict::Tx(usize::from(t.out_port))
    }

    /// [`Worker::fast_emit4`] for the tunnels with an IPv6 outer header ([`fast`]`::ENCAP6_*`; a key or not:
    /// `KEY`), for an IPv4 packet inside of `len` bytes or (`V6`) an IPv6 one ([`encap_write6`]).
    #[inline(always)]
    pub(super) fn fast_emit6<const KEY: bool, const V6: bool>(
        &mut self,
        t: &Tunnel,
        pkt: &mut B,
        ti: u32,
        len: usize,
        c: &mut Counters,
    ) -> Verdict {
        let Some(outer_len) = encap_write6::<B, Tunnel, KEY, V6, false>(t, t, pkt, len) else {
            return Verdict::Drop(DropReason::NoHeadroom);
        };
        let tc = &mut c.tunnels[ti as usize];
        tc.encap += 1;
        tc.encap_bytes += len as u64;
        self.take_bytes(len + ethernet::HEADER_LEN, outer_len + ethernet::HEADER_LEN);
        Verdict::Tx(usize::from(t.out_port))
    }

    /// Inside port: IPv6 to a tunnel route -> encapsulated. The same shape as [`Worker::fast_encap4`]: one
    /// segment holding exactly one IPv6 packet (payload length = the rest of the frame), not multicast or
    /// link-local, hop limit left, a tunnel route, not one of our addresses, and a tunnel the fast path may use.
    /// Extension headers need no look here: a router forwards them untouched (RFC 8200 section 4), and the
    /// general rules do not read past the fixed header either.
    #[inline(always)]
    pub(super) fn fast_encap6(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        staged: u32,
        c: &mut Counters,
    ) -> Option<Verdict> {
        let d = pkt.data();
        let len = d.len();
        if len != pkt.pkt_len() {
            return None;
        }
        let (eth, ip) = eth_ipv6(frame_prefix::<ETH_IPV6>(d)?);
        if !eth.ethertype_is(ethertype::IPV6) || ip.version() != 6 {
            return None;
        }
        let ip_len = len - ethernet::HEADER_LEN;
        if usize::from(ip.payload_len()) + ipv6::HEADER_LEN != ip_len {
            return None;
        }
        let dst = ip.dst_bytes();
        // Not multicast or link-local (never routed), hop limit left to forward with.
        if never_routed6(dst) || ip.hop_limit() <= 1 {
            return None;
        }
        let ti = if staged < NOT_STAGED {
            staged
        } else if staged == NOT_STAGED {
            tables.routes.encap6.lookup_bytes(dst)?
        } else {
            return None;
        };
        // Not for us: only possible here when some tunnel route covers an address of ours.
        if tables.local6_tunneled && self.is_local6(tables, *dst) {
            return None;
        }
        let t = tables.tunnels.get(ti as usize)?;
        if t.sequence || !t.resolved || t.is_down() || ip_len > usize::from(t.mtu.get()) {
            return None;
        }
        if t.inner_checks != 0
            && inner::inner_needs_general(pkt.data(), ethernet::HEADER_LEN, false, t.inner_checks)
        {
            return None;
        }
        Some(self.encap_emit(t, pkt, ti, false, ip_len, true, false, c))
    }

    /// Outside port: IPv4 GRE (key or not) to one of our addresses, carrying IPv4 to an inside neighbour ->
    /// decapsulated and forwarded (see above).
    /// `NIC`: the port's NIC verifies IPv4 header checksums
    /// ([`PortInfo::rx_ipv4_cksum`](crate::tunnel::table::PortInfo)): the outer header's verdict is read from
    /// the mbuf.
    /// `HDR`: try the header cache first ([`Decap4Match`]; the decap pass). The general rules' dispatch, which
    /// sees the packets a pass declined and those after them, goes straight to every check.
    #[inline(always)]
    pub(super) fn fast_decap4<const NIC: bool, const HDR: bool>(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        c: &mut Counters,
    ) -> Option<Planned> {
        let (ti, proto, off) = self.fast_decap4_match::<NIC, HDR>(tables, pkt)?;
        self.fast_decap_inner(tables, pkt, ti, proto, off, c)
    }

    /// The first half of [`Worker::fast_decap4`]: the outer IPv4 and GRE headers checked and the tunnel matched.
    /// Returns (tunnel index, with [`DECAP_FAST`] for a tunnel without settings to check; GRE protocol; offset
    /// of the inner packet); reads the packet only. A frame whose header is the last match's under the mask of
    /// [`Decap4Match`] needs only its length and header checksum checked; any other takes every check
    /// ([`Worker::fast_decap4_full`]).
    #[inline(always)]
    pub(super) fn fast_decap4_match<const NIC: bool, const HDR: bool>(
        &mut self,
        tables: &Tables,
        pkt: &B,
    ) -> Option<(u32, u16, usize)> {
        let d = pkt.data();
        let len = d.len();
        if len != pkt.pkt_len() {
            return None;
        }
        // One length check for the three headers, a key and an inner IPv4 header (the shortest packet this path
        // takes with a key; one without is 4 bytes shorter, and declined at 58 to 61 bytes); the views of `h`
        // are then in bounds by its constant length, the key's and the inner header's included.
        let h = frame_prefix::<{ DECAP4_PREFIX }>(d)?;
        // (Not read without `HDR`, where the compiler drops the loads.)
        let words = HeaderCache::words_of(h, Decap4Match::AT);
        let m = &self.last_decap4.hdr;
        // (The EtherType first, though the compare has it: an IPv6 frame then costs two instructions here, not
        // the compare.)
        let (eth, ip) = eth_ipv4(h);
        if HDR && eth.ethertype_is(ethertype::IPV4) && m.matches(&words) {
            // (An empty cache's `len_bias` fails every frame here.)
            if usize::from(ip.total_len()) + m.len_bias != len
                || !((NIC && pkt.rx_ipv4_cksum_good()) || ip.checksum_valid_nonzero())
            {
                return None;
            }
            return Some((m.ti, m.proto, usize::from(m.off)));
        }
        self.fast_decap4_full::<NIC, HDR>(tables, pkt, len, h, words)
    }

    /// [`Worker::fast_decap4_match`] of a frame (`len` bytes, `h` its first, `words` those the header cache
    /// looks at) that is not the last match's header: every check, then (`HDR`) the header cache refilled from
    /// it.
    #[inline(always)]
    fn fast_decap4_full<const NIC: bool, const HDR: bool>(
        &mut self,
        tables: &Tables,
        pkt: &B,
        len: usize,
        h: &[u8; DECAP4_PREFIX],
        words: [u64; 4],
    ) -> Option<(u32, u16, usize)> {
        const GRE_AT: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
        let (eth, ip) = eth_ipv4(h);
        let gre: &[u8; gre::BASE_HEADER_LEN] = checked_prefix(&h[GRE_AT..]);
        if !eth.ethertype_is(ethertype::IPV4)
            || ip.ver_ihl() != ipv4::VER_IHL_NO_OPTIONS
            || ip.protocol() != protocol::GRE
        {
            return None;
        }
        // (The GRE header before the IP header's checks: a TEB packet, which the decap pass then offers its
        // TEB way, is declined after a few instructions, not after the header checksum.)
        let (proto, kw, off) = fast_gre(h, GRE_AT, gre)?;
        // Exact length, valid checksum, not a fragment, no CE mark to fold into the inner header.
        if usize::from(ip.total_len()) != len - ethernet::HEADER_LEN
            || ip.is_fragment()
            || ip.ecn() == ecn::CE
            || !((NIC && pkt.rx_ipv4_cksum_good()) || ip.checksum_valid_nonzero())
        {
            return None;
        }
        // The cache's words: the addresses, the key.
        let addrs = addr_word4(&ip);
        let m = &mut self.last_decap4;
        let ti = if m.addrs == addrs && m.kw == kw {
            // (The cached match passed the "ours" check in this table generation.)
            m.addrs_ti
        } else {
            let ti = decap_cached(tables, self.tunnel_of4(tables, &ip, kw)?);
            let m = &mut self.last_decap4;
            (m.addrs, m.kw, m.addrs_ti) = (addrs, kw, ti);
            ti
        };
        // Every check above made of this frame holds for a frame with the same bytes under the mask.
        if HDR {
            let mask = Decap4Match::mask(kw >> 32 != 0);
            (self.last_decap4.hdr).fill(&words, mask, ethernet::HEADER_LEN, ti, proto, off);
        }
        Some((ti, proto, off))
    }

    /// Outside port: IPv6 GRE (RFC 7676; key or not) to one of our addresses, carrying IPv4 or IPv6 to an inside
    /// neighbour -> decapsulated and forwarded. The outer checks of [`Worker::fast_decap4`] in IPv6 terms: GRE
    /// right after the fixed header (no extension headers), exact payload length, no CE mark; IPv6 has no
    /// header checksum.
    /// `HDR`: try the header cache first ([`Decap6Match`]), as [`Worker::fast_decap4`]'s.
    #[inline(always)]
    pub(super) fn fast_decap6<const HDR: bool>(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        c: &mut Counters,
    ) -> Option<Planned> {
        const GRE_AT: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN;
        let d = pkt.data();
        let len = d.len();
        if len != pkt.pkt_len() {
            return None;
        }
        let hdr = frame_prefix::<{ DECAP6_PREFIX }>(d).filter(|_| HDR);
        if let Some(h) = hdr {
            let m = &self.last_decap6.hdr;
            // (The EtherType first, though the compare has it, as in `fast_decap4_match`: an IPv4 frame, which
            // the decap pass offers its TEB way next, then costs two instructions here, not the compare.)
            if eth_ipv6(h).0.ethertype_is(ethertype::IPV6)
                && m.matches(&HeaderCache::words_of(h, Decap6Match::AT))
            {
                // The same checked fields as the frame the cache was filled from: only the length is left.
                // (An empty cache's `len_bias` fails every frame here.)
                let (_, ip) = eth_ipv6(h);
                if usize::from(ip.payload_len()) + m.len_bias != len {
                    return None;
                }
                let (ti, proto, off) = (m.ti, m.proto, usize::from(m.off));
                return self.fast_decap_inner(tables, pkt, ti, proto, off, c);
            }
        }
        // One length check for the three headers; the views of `h` are then in bounds by its constant length.
        let h = frame_prefix::<{ GRE_AT + gre::BASE_HEADER_LEN }>(d)?;
        let (eth, ip) = eth_ipv6(h);
        let gre: &[u8; gre::BASE_HEADER_LEN] = checked_prefix(&h[GRE_AT..]);
        if !eth.ethertype_is(ethertype::IPV6)
            || ip.version() != 6
            || ip.next_header() != protocol::GRE
        {
            return None;
        }
        if usize::from(ip.payload_len()) + ipv6::HEADER_LEN != len - ethernet::HEADER_LEN
            || ip.ecn() == ecn::CE
        {
            return None;
        }
        let (proto, kw, off) = fast_gre(d, GRE_AT, gre)?;
        let (local, remote) = (ip.dst(), ip.src());
        // As `last_decap4`: the addresses as they lie in memory, the key.
        let half =
            |a: &[u8; 16], i: usize| u64::from_ne_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let addrs = [
            half(&remote, 0),
            half(&remote, 8),
            half(&local, 0),
            half(&local, 8),
        ];
        let m = &self.last_decap6;
        let ti = if m.addrs == addrs && m.kw == kw {
            // (The cached match passed the "ours" check below in this table generation.)
            m.addrs_ti
        } else {
            if !self.is_local6(tables, local) {
                return None;
            }
            let dk = crate::tunnel::table::DecapKey {
                local: IpAddr::from(local),
                remote: IpAddr::from(remote),
                key: key_of_word(kw),
            };
            let ti = decap_cached(tables, *tables.decap.get(&dk)?);
            let m = &mut self.last_decap6;
            (m.addrs, m.kw, m.addrs_ti) = (addrs, kw, ti);
            ti
        };
        // Every check above made of this frame holds for a frame with the same bytes under the mask. (Every
        // frame that gets here has the cache's bytes: its inner header follows them.)
        if let Some(h) = hdr {
            let words = HeaderCache::words_of(h, Decap6Match::AT);
            let mask = Decap6Match::mask(kw >> 32 != 0);
            (self.last_decap6.hdr).fill(&words, mask, ETH_IPV6, ti, proto, off);
        }
        self.fast_decap_inner(tables, pkt, ti, proto, off, c)
    }

    /// The decap fast paths after the tunnel match (`ti`, maybe with [`DECAP_FAST`]): a tunnel without checksum,
    /// sequence numbers or source filter, then the inner packet (GRE protocol `proto`, at `off`) by family.
    #[inline(always)]
    pub(super) fn fast_decap_inner(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        ti: u32,
        proto: u16,
        off: usize,
        c: &mut Counters,
    ) -> Option<Planned> {
        // (A tunnel with no setting to look at skips the checks: the match said so.)
        if ti & DECAP_FAST == 0 && !Self::fast_decap_tunnel_ok(tables, pkt, ti, proto, off) {
            return None;
        }
        let ti = ti & !DECAP_FAST;
        if proto == ethertype::IPV6 {
            self.fast_decap_inner6(tables, pkt, off, ti, c)
        } else {
            self.fast_decap_inner4(tables, pkt, off, ti, c)
        }
    }

    /// Whether tunnel `ti` lets the decap fast paths take this packet (GRE protocol `proto`, inner packet at
    /// `off`): a tunnel without checksum, sequence numbers or source filter, routing IP packets, whose MSS
    /// clamping (if any) does not apply to it. Reads the packet only. Out of line and cold: a tunnel with no
    /// setting to check skips it ([`DECAP_FAST`]), and inline its call (MSS clamping's) made the decap pass keep
    /// the inner packet's offset on the stack, reloaded eight times per packet (decap-64: 184.7 against 173.7
    /// instructions).
    #[inline(never)]
    #[cold]
    pub(super) fn fast_decap_tunnel_ok(
        tables: &Tables,
        pkt: &B,
        ti: u32,
        proto: u16,
        off: usize,
    ) -> bool {
        let Some(t) = tables.tunnels.get(ti as usize) else {
            return false;
        };
        // (A packet for one of our own addresses, a tunnel's included, is declined by the inner checks.)
        // A tunnel with no setting to look at, decided when the table was built, skips the rest.
        if t.fast & fast::DECAP != 0 {
            return true;
        }
        if t.checksum || t.sequence || t.allowed_sources.is_some() {
            return false;
        }
        // MSS clamping leaving the tunnel: TCP SYNs take the general rules. An ERSPAN or TEB tunnel routes no IP
        // packet: the general rules say why.
        !(t.inner_checks & (inner_check::ERSPAN | inner_check::TEB) != 0
            || (t.inner_checks & inner_check::MSS_CLAMP != 0
                && inner::inner_needs_general(
                    pkt.data(),
                    off,
                    proto != ethertype::IPV6,
                    inner_check::MSS_CLAMP,
                )))
    }

    /// The rest of the decap fast paths for an IPv4 packet inside (the outer header and GRE checked, tunnel `ti`
    /// matched, the inner packet at `off`).
    #[inline(always)]
    pub(super) fn fast_decap_inner4(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        off: usize,
        ti: u32,
        c: &mut Counters,
    ) -> Option<Planned> {
        let d = pkt.data();
        let len = d.len();
        // The inner IPv4 header: option-less, exactly the rest of the frame, valid, not GRE (keepalives and
        // tunnel-in-tunnel take the general rules), not to an address of ours (loop or local delivery), routable.
        let inner = ipv4::Header::new(d.get(off..off + ipv4::HEADER_LEN)?.try_into().ok()?);
        let inner_total = usize::from(inner.total_len());
        let idst = inner.dst_u32();
        if inner.ver_ihl() != ipv4::VER_IHL_NO_OPTIONS
            || inner_total != len - off
            || inner.protocol() == protocol::GRE
            || inner.ttl() <= 1
            || idst >= 0xe000_0000
            || !inner.checksum_valid_nonzero()
        {
            return None;
        }
        // Where it goes: cached for this destination, or found now (`hop4`).
        let slot = Hop::<u32>::slot(idst);
        if self.hops4[slot].dst != idst {
            let h = self.hop4(tables, idst)?;
            self.hops4[slot] = h;
        }
        // Accepted: strip the outer headers, leaving room for the new Ethernet header, and forward.
        if !pkt.adj(off - ethernet::HEADER_LEN) {
            return None;
        }
        // One length check for the whole rewrite (the inner header was seen whole above). The hop is read from
        // its slot here, after the mbuf update: held across it, it would be spilled.
        let (mut eth, mut ip) = eth_ipv4_mut(checked_prefix_mut::<ETH_IPV4>(pkt.data_mut()));
        let hop = &self.hops4[slot];
        eth.set_all(&hop.eth);
        let port = hop.port;
        ip.decrement_ttl();
        let tc = &mut c.tunnels[ti as usize];
        tc.decap += 1;
        tc.decap_bytes += inner_total as u64;
        self.take_bytes(len, inner_total + ethernet::HEADER_LEN);
        Planned::tx(usize::from(port))
    }

    /// Where the IPv4 decap fast path sends a packet to inner destination `idst`, found in the tables: not one
    /// of our own addresses (a tunnel endpoint: a loop; any other: delivered locally), routed to an inside port
    /// (not into a tunnel again), toward a neighbour we know. `None`: the general rules take it. Out of line:
    /// [`Worker::hops4`] answers most packets.
    #[inline(never)]
    fn hop4(&mut self, tables: &Tables, idst: u32) -> Option<Hop<u32>> {
        if tables.local4_set.contains(idst) {
            return None;
        }
        let rt = &tables.routes;
        let route = rt.routes.get(rt.routes4.lookup(idst)? as usize)?;
        // A tunnel route wins over any route (into a tunnel again: the general rules); only one overlapping the
        // matched route's prefix can match this destination.
        if route.tunnel_overlap && rt.encap4.lookup(idst).is_some() {
            return None;
        }
        let port = tables.ports.get(route.port)?;
        if port.role != PortRole::Inside {
            return None;
        }
        let nh = route.via.unwrap_or(IpAddr::V4(idst.into()));
        let mac = self.neighbor_mac(tables, nh)?;
        Hop::new(idst, route.port, mac, port.mac, ethertype::IPV4)
    }

    /// The rest of the decap fast paths for an IPv6 packet inside (the outer header and GRE checked, tunnel
    /// `ti` matched, the inner packet at `off`): exactly the rest of the frame, hop limit left, not multicast,
    /// not to an address of ours (a loop, or local delivery), not into a tunnel again, routed to an inside
    /// neighbour we know.
    // Out of line: the IPv4-inside decapsulation, the common case, keeps its registers.
    #[inline(never)]
    pub(super) fn fast_decap_inner6(
        &mut self,
        tables: &Tables,
        pkt: &mut B,
        off: usize,
        ti: u32,
        c: &mut Counters,
    ) -> Option<Planned> {
        let d = pkt.data();
        let inner = ipv6::Header::new(d.get(off..off + ipv6::HEADER_LEN)?.try_into().ok()?);
        let inner_total = usize::from(inner.payload_len()) + ipv6::HEADER_LEN;
        let idst = inner.dst_bytes();
        if inner.version() != 6
            || inner_total != d.len() - off
            || inner.hop_limit() <= 1
            || idst[0] == 0xff
        {
            return None;
        }
        let key = [
            u64::from_ne_bytes(idst[..8].try_into().expect("8 bytes")),
            u64::from_ne_bytes(idst[8..].try_into().expect("8 bytes")),
        ];
        // Where it goes: cached for this destination, or found now (`hop6`).
        let slot = Hop::<[u64; 2]>::slot(key);
        if self.hops6[slot].dst != key {
            let h = self.hop6(tables, idst, key)?;
            self.hops6[slot] = h;
        }
        if !pkt.adj(off - ethernet::HEADER_LEN) {
            return None;
        }
        // (The hop read after the mbuf update, as in `fast_decap_inner4`.)
        let (mut eth, mut ip) = eth_ipv6_mut(checked_prefix_mut::<ETH_IPV6>(pkt.data_mut()));
        let hop = &self.hops6[slot];
        eth.set_all(&hop.eth);
        let port = hop.port;
        ip.decrement_hop_limit();
        let tc = &mut c.tunnels[ti as usize];
        tc.decap += 1;
        tc.decap_bytes += inner_total as u64;
        self.take_bytes(off + inner_total, inner_total + ethernet::HEADER_LEN);
        Planned::tx(usize::from(port))
    }

    /// [`Worker::hop4`] for IPv6 inner destination `idst` (`key`: its halves, as cached): not ours, not into a
    /// tunnel again, routed to an inside port, toward a neighbour we know.
    #[inline(never)]
    fn hop6(&mut self, tables: &Tables, idst: &[u8; 16], key: [u64; 2]) -> Option<Hop<[u64; 2]>> {
        let dst = Ipv6Addr::from(*idst);
        if tables.local6.contains(&dst) {
            return None;
        }
        let rt = &tables.routes;
        let route = rt.routes.get(rt.routes6.lookup_bytes(idst)? as usize)?;
        // As in `hop4`: the tunnel-route walk only where a tunnel route overlaps the route's prefix.
        if route.tunnel_overlap && rt.encap6.lookup_bytes(idst).is_some() {
            return None;
        }
        let port = tables.ports.get(route.port)?;
        if port.role != PortRole::Inside {
            return None;
        }
        let nh = route.via.unwrap_or(IpAddr::V6(dst));
        let mac = self.neighbor_mac(tables, nh)?;
        Hop::new(key, route.port, mac, port.mac, ethertype::IPV6)
    }
}

/// A decap match's tunnel index as the match caches keep it: with [`DECAP_FAST`] when the tunnel has no setting
/// the decap fast paths must look at.
#[inline]
fn decap_cached(tables: &Tables, ti: u32) -> u32 {
    debug_assert!(ti < DECAP_FAST);
    match tables.tunnels.get(ti as usize) {
        Some(t) if t.fast & fast::DECAP != 0 => ti | DECAP_FAST,
        _ => ti,
    }
}

/// What [`encap_write4`] takes of a tunnel for its outer header: a run into one tunnel copies it once (the loop
/// then holds no pointer to the tunnel), a single packet reads it from the tunnel. `V6`: the copy is made for
/// IPv6 packets, whose outer header always has DF and whose GRE protocol type is IPv6: both are in its
/// template, and DF's word in its base sum (two stores and two additions less per packet).
pub(super) struct Outer4<const V6: bool> {
    /// The header (Ethernet, outer IPv4, GRE; `hl` bytes, 38 to 46) in three 16-byte parts, the last
    /// overlapping the second: bytes 0..16, 16..32 and `hl - 16..hl`.
    tpl: [[u8; 16]; 3],
    fields: OuterFields,
}

/// The values [`encap_write4`] adds to a tunnel's template in the outer IPv4 header.
#[derive(Clone, Copy)]
pub(super) struct OuterFields {
    /// The sum of the template's words of the outer IPv4 header (`Tunnel::ip4_base_sum`: with a fixed TTL's
    /// word).
    base_sum: u32,
    /// `Tunnel::ttl_set`, `Tunnel::tos_keep`, `Tunnel::tos_set`.
    ttl: u8,
    tos_keep: u8,
    tos_set: u8,
}

impl<const V6: bool> Outer4<V6> {
    /// Tunnel `t`'s, whose header is `hl` bytes.
    #[inline(always)]
    pub(super) fn new(t: &Tunnel, hl: usize) -> Self {
        let mut tpl = t.template;
        let mut fields = t.fields();
        if V6 {
            let (headers, gre) = tpl.split_at_mut(ETH_IPV4);
            let (_, mut ip) = eth_ipv4_mut(checked_prefix_mut::<ETH_IPV4>(headers));
            ip.set_flags_frag(ipv4::flags_frag::DONT_FRAGMENT);
            gre::HeaderMut::new(checked_prefix_mut(gre)).set_protocol(ethertype::IPV6);
            fields.base_sum += u32::from(u16::from_ne_bytes(
                ipv4::flags_frag::DONT_FRAGMENT.to_be_bytes(),
            ));
        }
        // (Opaque to the optimizer: knowing the patched bytes, it split each 16-byte move into constant
        // stores, two more per packet.)
        let tpl = std::hint::black_box(tpl);
        let part = |at: usize| -> [u8; 16] { *checked_prefix(&tpl[at..]) };
        Outer4 {
            tpl: [part(0), part(16), part(hl - 16)],
            fields,
        }
    }
}

/// What [`encap_write6`] takes of a tunnel with an IPv6 outer header for a run (as [`Outer4`]): `V6`, the copy
/// is made for IPv6 packets, whose GRE protocol type is in it.
pub(super) struct Outer6<const V6: bool> {
    /// The header (Ethernet, outer IPv6, GRE; `hl` bytes, 58 or 62) in four 16-byte parts, the last overlapping
    /// the third: bytes 0..16, 16..32, `hl - 16..hl` and 32..48 ([`OuterSource::part`]'s order).
    tpl: [[u8; 16]; 4],
    fields: OuterFields,
}

impl<const V6: bool> Outer6<V6> {
    /// Tunnel `t`'s, whose header is `hl` bytes.
    #[inline(always)]
    pub(super) fn new(t: &Tunnel, hl: usize) -> Self {
        let mut tpl = t.template;
        if V6 {
            gre::HeaderMut::new(checked_prefix_mut(&mut tpl[ETH_IPV6..]))
                .set_protocol(ethertype::IPV6);
        }
        // (Opaque to the optimizer, as in `Outer4::new`.)
        let tpl = std::hint::black_box(tpl);
        let part = |at: usize| -> [u8; 16] { *checked_prefix(&tpl[at..]) };
        Outer6 {
            tpl: [part(0), part(16), part(hl - 16), part(32)],
            fields: t.fields(),
        }
    }
}

impl<const V6: bool> OuterSource for Outer6<V6> {
    const FOR_V6: bool = V6;
    #[inline(always)]
    fn part<const I: usize>(&self, _hl: usize) -> &[u8; 16] {
        &self.tpl[I]
    }
    #[inline(always)]
    fn fields(&self) -> OuterFields {
        self.fields
    }
}

/// Where [`encap_write4`] reads what it takes of a tunnel: the tunnel itself (one packet: its fields where they
/// are, each loaded where it is used) or an [`Outer4`] (a run: a copy, held in registers or on the stack
/// through the loop, so that the loop needs no pointer to the tunnel).
pub(super) trait OuterSource {
    /// Part `I` of the header of `hl` bytes: bytes 0..16, 16..32, `hl - 16..hl` or (an IPv6 outer header's
    /// only, [`encap_write6`]) 32..48.
    fn part<const I: usize>(&self, hl: usize) -> &[u8; 16];
    /// The values added to the template.
    fn fields(&self) -> OuterFields;
    /// The template and the base sum are made for IPv6 packets: DF set (its word in the sum), GRE protocol type
    /// IPv6 ([`Outer4`]).
    const FOR_V6: bool = false;
}

impl OuterSource for Tunnel {
    #[inline(always)]
    fn part<const I: usize>(&self, hl: usize) -> &[u8; 16] {
        let at = [0, 16, hl - 16, 32][I];
        checked_prefix(&self.template[at..])
    }
    #[inline(always)]
    fn fields(&self) -> OuterFields {
        OuterFields {
            base_sum: self.ip4_base_sum,
            ttl: self.ttl_set,
            tos_keep: self.tos_keep,
            tos_set: self.tos_set,
        }
    }
}

impl<const V6: bool> OuterSource for Outer4<V6> {
    const FOR_V6: bool = V6;
    #[inline(always)]
    fn part<const I: usize>(&self, _hl: usize) -> &[u8; 16] {
        &self.tpl[I]
    }
    #[inline(always)]
    fn fields(&self) -> OuterFields {
        self.fields
    }
}

/// Whether IPv6 destination `dst` is never routed: multicast (ff00::/8) or link-local (fe80::/10). One test
/// for the common case, an address below fe00::/8.
#[inline(always)]
pub(super) fn never_routed6(dst: &[u8; 16]) -> bool {
    dst[0] >= 0xfe && (dst[0] == 0xff || dst[1] & 0xc0 == 0x80)
}

/// The header length of [`encap_write4`]'s shapes: 38 or 42 without a GRE checksum (key or not), 42 or 46
/// with one.
#[inline(always)]
pub(super) const fn encap4_hl(csum: bool, key: bool) -> usize {
    ethernet::HEADER_LEN
        + ipv4::HEADER_LEN
        + gre::BASE_HEADER_LEN
        + if csum { 4 } else { 0 }
        + if key { 4 } else { 0 }
}

/// The header write of [`Worker::fast_emit4`], without its counting: the mbuf grows by the tunnel's header, the
/// template and the per-packet fields are written. Returns the outer IP packet's length, or `None` (nothing
/// changed) when the mbuf has no headroom for the header. `outer`: what it adds to the tunnel's template
/// (the tunnel itself, or [`Outer4::new`]); `FIXED_TTL`: the tunnel has a fixed TTL. Shared by `fast_emit4`
/// and the encap pass's runs into one tunnel (`burst.rs`), which count a run at its end.
#[inline(always)]
pub(super) fn encap_write4<
    B: PacketBuf,
    O: OuterSource,
    const CSUM: bool,
    const KEY: bool,
    const V6: bool,
    const FIXED_TTL: bool,
>(
    t: &Tunnel,
    outer: &O,
    pkt: &mut B,
    len: usize,
    ip_ident: &mut u16,
) -> Option<usize> {
    // RFC 2784 2.5, summed before anything is written (see `encap_emit`): the GRE words from the tunnel's
    // precomputed sum plus the inner payload; the verified inner header sums to all ones and adds nothing,
    // and the TTL decrement's RFC 1624 update keeps it so. (An IPv6 packet has no header checksum: the
    // caller never asks for `CSUM` with `V6`.)
    debug_assert_eq!(CSUM, t.checksum);
    debug_assert!(!(CSUM && V6));
    let gre_sum = if CSUM && !V6 {
        Some(checksum::fold(checksum::sum(
            &pkt.data()[ETH_IPV4..],
            u32::from(t.gre_base_sum),
        )))
    } else {
        None
    };
    // The mbuf's lengths first, then the stores into the packet: those could alias the mbuf's fields, so
    // after them the compiler would load the fields again.
    pkt.prepend(encap4_hl(CSUM, KEY) - ethernet::HEADER_LEN)?;
    Some(encap_write4_grown::<B, O, CSUM, KEY, V6, FIXED_TTL>(
        t, outer, pkt, len, ip_ident, gre_sum,
    ))
}

/// [`encap_write4`] after its `prepend`: the mbuf has grown by the header's `hl - ETH` bytes at its front (the
/// encap pass's loops over many tunnels grow each packet as they check it); `gre_sum`, the GRE checksum's
/// sum with `CSUM`. Returns the outer IP packet's length.
#[inline(always)]
pub(super) fn encap_write4_grown<
    B: PacketBuf,
    O: OuterSource,
    const CSUM: bool,
    const KEY: bool,
    const V6: bool,
    const FIXED_TTL: bool,
>(
    t: &Tunnel,
    outer: &O,
    pkt: &mut B,
    len: usize,
    ip_ident: &mut u16,
    gre_sum: Option<u16>,
) -> usize {
    debug_assert_eq!(CSUM, gre_sum.is_some());
    let hl = encap4_hl(CSUM, KEY);
    debug_assert_eq!(hl, t.header_bytes());
    let (d, inner_ip) = grown_headers::<B, V6>(pkt, hl);
    // The template first, then the inner header's values (read where they are used, each live briefly: 1
    // instruction per packet on `encap-64`). Three 16-byte moves, the last overlapping the second (two 32-byte
    // copies took four).
    d[..16].copy_from_slice(outer.part::<0>(hl));
    d[16..32].copy_from_slice(outer.part::<1>(hl));
    d[hl - 16..].copy_from_slice(outer.part::<2>(hl));
    let (ttl_in, tos_in, df) = forward_inner::<V6>(inner_ip);
    let f = outer.fields();
    let tos = (tos_in & f.tos_keep) | f.tos_set;
    // The TTL written and the TTL whose word is added: a fixed TTL is the template's and in the base sum
    // (`Tunnel::ip4_base_sum`), so with `FIXED_TTL` neither; an inherited one is the inner packet's.
    debug_assert!(!FIXED_TTL || t.ttl_set != 0);
    let (ttl, ttl_sum) = if FIXED_TTL {
        (None, 0)
    } else if f.ttl != 0 {
        (Some(f.ttl), 0)
    } else {
        (Some(ttl_in), ttl_in)
    };
    let outer_len = len + hl - ethernet::HEADER_LEN;
    let ident = *ip_ident;
    *ip_ident = ident.wrapping_add(1);
    let (headers, gre) = d.split_at_mut(ETH_IPV4);
    let (_, mut ip) = eth_ipv4_mut(checked_prefix_mut::<ETH_IPV4>(headers));
    // (An `outer` made for IPv6 packets holds their DF and protocol type already.)
    debug_assert!(!O::FOR_V6 || V6);
    let df = (!O::FOR_V6).then_some(df);
    outer_ipv4_fields_from(&mut ip, f.base_sum, tos, outer_len, ident, df, ttl, ttl_sum);
    if V6 && !O::FOR_V6 {
        // The template's protocol type is IPv4.
        gre::HeaderMut::new(checked_prefix_mut(gre)).set_protocol(ethertype::IPV6);
    }
    if let Some(s) = gre_sum {
        gre::ChecksumHeaderMut::new(checked_prefix_mut(gre)).set_checksum(!s);
    }
    outer_len
}

/// A packet grown by an encapsulation header of `hl` bytes: the new headers, and the inner IP header after them
/// (IPv6 with `V6`; the frame held at least an Ethernet and that header before): slices of constant length, so
/// the views on them need no runtime check.
#[inline(always)]
fn grown_headers<B: PacketBuf, const V6: bool>(pkt: &mut B, hl: usize) -> (&mut [u8], &mut [u8]) {
    let inner_hl = if V6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::HEADER_LEN
    };
    pkt.data_mut()[..hl + inner_hl].split_at_mut(hl)
}

/// The inner packet of an encapsulation (its IP header at the start of `inner_ip`, an IPv6 one with `V6`):
/// its TTL or hop limit drops by one (forwarded: RFC 1812, RFC 8200). Returns what the outer header inherits:
/// the TTL or hop limit after the decrement, the TOS (the IPv6 traffic class, as `encap_emit`) and DF (always
/// for IPv6).
#[inline(always)]
fn forward_inner<const V6: bool>(inner_ip: &mut [u8]) -> (u8, u8, bool) {
    if V6 {
        let mut ip = ipv6::HeaderMut::new(checked_prefix_mut(inner_ip));
        ip.decrement_hop_limit();
        (ip.hop_limit(), ip.traffic_class(), true)
    } else {
        let mut ip = ipv4::HeaderMut::new(checked_prefix_mut(inner_ip));
        let (tos, df) = (ip.dscp_ecn(), ip.dont_frag());
        ip.decrement_ttl();
        (ip.ttl(), tos, df)
    }
}

/// The header length of [`encap_write6`]'s shapes: an IPv6 outer header without Destination Options, GRE
/// without checksum: 58 bytes, 62 with a key.
#[inline(always)]
pub(super) const fn encap6_hl(key: bool) -> usize {
    ETH_IPV6 + gre::BASE_HEADER_LEN + if key { 4 } else { 0 }
}

/// [`encap_write4`] for a tunnel with an IPv6 outer header ([`fast`]`::ENCAP6_*`: no checksum, no
/// Destination Options; a key or not, `KEY`): the mbuf grows by the header, the template is written, the inner
/// TTL or hop limit decremented, and the outer header's traffic class, payload length and (unless
/// `FIXED_TTL`: the template's) hop limit written. Returns the outer IP packet's length, or `None` (nothing
/// changed) when the mbuf has no headroom. No IPv4 identification is taken: the outer header has none.
#[inline(always)]
pub(super) fn encap_write6<
    B: PacketBuf,
    O: OuterSource,
    const KEY: bool,
    const V6: bool,
    const FIXED_TTL: bool,
>(
    t: &Tunnel,
    outer: &O,
    pkt: &mut B,
    len: usize,
) -> Option<usize> {
    debug_assert!(t.outer_v6() && !t.checksum);
    let hl = encap6_hl(KEY);
    debug_assert_eq!(hl, t.header_bytes());
    pkt.prepend(hl - ethernet::HEADER_LEN)?;
    let (d, inner_ip) = grown_headers::<B, V6>(pkt, hl);
    // Four 16-byte moves, the last overlapping the third.
    d[..16].copy_from_slice(outer.part::<0>(hl));
    d[16..32].copy_from_slice(outer.part::<1>(hl));
    d[32..48].copy_from_slice(outer.part::<3>(hl));
    d[hl - 16..].copy_from_slice(outer.part::<2>(hl));
    let (hop_in, tos_in, _) = forward_inner::<V6>(inner_ip);
    let f = outer.fields();
    let tos = (tos_in & f.tos_keep) | f.tos_set;
    debug_assert!(!FIXED_TTL || t.ttl_set != 0);
    let outer_len = len + hl - ethernet::HEADER_LEN;
    let (headers, gre) = d.split_at_mut(ETH_IPV6);
    let (_, mut ip) = eth_ipv6_mut(checked_prefix_mut::<ETH_IPV6>(headers));
    let hop = (!FIXED_TTL).then_some(if f.ttl != 0 { f.ttl } else { hop_in });
    outer_ipv6_fields(&mut ip, tos, outer_len, hop);
    if V6 && !O::FOR_V6 {
        // The template's protocol type is IPv4.
        gre::HeaderMut::new(checked_prefix_mut(gre)).set_protocol(ethertype::IPV6);
    }
    Some(outer_len)
}

/// The header write of an Ethernet frame of `frame_len` bytes into a TEB tunnel whose [`fast::TEB_MASK`] shape
/// is `OUTER6` (an IPv6 outer header) and `KEY` (a key): what [`Worker::emit_outer`] writes for it, without
/// its tests of settings the shape rules out (GRE checksum, sequence numbers, Destination Options). The mbuf
/// grows by the whole header (the frame keeps its Ethernet header inside), the template is written, then the
/// outer header's TOS or traffic class, length, TTL or hop limit (unless fixed: the template's), for IPv4 the
/// identification (taken from `ip_ident`), DF and checksum, and the GRE protocol type TEB. `tos_in`, `ttl_in`:
/// what the frame's IP packet gives an inheriting tunnel. Returns the outer IP packet's length, or `None`
/// (nothing changed) when the mbuf has no headroom.
#[inline(always)]
pub(super) fn frame_write<B: PacketBuf, const OUTER6: bool, const KEY: bool>(
    t: &Tunnel,
    pkt: &mut B,
    frame_len: usize,
    tos_in: u8,
    ttl_in: u8,
    ip_ident: &mut u16,
) -> Option<usize> {
    let hl = if OUTER6 {
        encap6_hl(KEY)
    } else {
        encap4_hl(false, KEY)
    };
    debug_assert_eq!(hl, t.header_bytes());
    debug_assert!(t.is_teb() && !t.checksum && !t.sequence && t.outer_v6() == OUTER6);
    pkt.prepend(hl)?;
    let d = &mut pkt.data_mut()[..hl];
    // The template in 16-byte moves, the last overlapping the one before.
    d[..16].copy_from_slice(t.part::<0>(hl));
    d[16..32].copy_from_slice(t.part::<1>(hl));
    if OUTER6 {
        d[32..48].copy_from_slice(t.part::<3>(hl));
    }
    d[hl - 16..].copy_from_slice(t.part::<2>(hl));
    let tos = (tos_in & t.tos_keep) | t.tos_set;
    let fixed_ttl = t.ttl_set != 0;
    let outer_len = frame_len + hl - ethernet::HEADER_LEN;
    let gre = if OUTER6 {
        let (headers, gre) = d.split_at_mut(ETH_IPV6);
        let (_, mut ip) = eth_ipv6_mut(checked_prefix_mut::<ETH_IPV6>(headers));
        outer_ipv6_fields(&mut ip, tos, outer_len, (!fixed_ttl).then_some(ttl_in));
        gre
    } else {
        let ident = *ip_ident;
        *ip_ident = ident.wrapping_add(1);
        let (headers, gre) = d.split_at_mut(ETH_IPV4);
        let (_, mut ip) = eth_ipv4_mut(checked_prefix_mut::<ETH_IPV4>(headers));
        // A fixed TTL is the template's and in the base sum; an inherited one is written and added.
        let (ttl, ttl_sum) = if fixed_ttl {
            (None, 0)
        } else {
            (Some(ttl_in), ttl_in)
        };
        let base = t.ip4_base_sum;
        outer_ipv4_fields_from(
            &mut ip,
            base,
            tos,
            outer_len,
            ident,
            Some(true),
            ttl,
            ttl_sum,
        );
        gre
    };
    // The template's protocol type is IPv4.
    gre::HeaderMut::new(checked_prefix_mut(gre)).set_protocol(gre::protocol::TEB);
    Some(outer_len)
}
