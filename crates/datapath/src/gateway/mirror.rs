//! ERSPAN out (`[[mirror]]`): copies of the frames a port receives or sends, each in a new buffer, wrapped in
//! outer IP, GRE and an ERSPAN type II or III header of the session's tunnel, the way Linux's `erspan_xmit`
//! (`net/ipv4/ip_gre.c`, `include/net/erspan.h`) sends them:
//!
//! - GRE with the S bit and a sequence number per session, no key (the session ID is the key) and no
//!   checksum; protocol 0x88BE (type II) or 0x22EB (type III).
//! - Type II: the frame's 802.1Q VLAN ID with En = 3 ("VLAN tag preserved in frame") when it has a tag, else
//!   VLAN 0 and En = 0; the configured index.
//! - Type III: VLAN as above; BSO "short" under 60 bytes and "oversized" over 1514 (Linux's
//!   `erspan_detect_bso`); a timestamp of the wall clock in units of 100 µs (granularity 0, 32 bits, wraps
//!   every 4.97 days); P = 1, frame type 0 (Ethernet), the configured hardware ID, D = 0 for a received frame
//!   and 1 for a sent one.
//! - COS: the 802.1Q priority of a tagged frame, else the IP precedence (the top 3 bits of the TOS / traffic
//!   class) of an IPv4 or IPv6 frame, else 0.
//! - A frame longer than the tunnel MTU (the largest frame an outer packet carries whole) is cut to it and
//!   sent with the T bit set, as Linux does; outer packets are never fragmented (DF is set on IPv4).
//!
//! The original is never changed, delayed or dropped: a copy that cannot be made (no buffer, next hop not
//! resolved) is counted under its `[[mirror]]` entry and skipped; nothing is queued.
use super::*;
use crate::tunnel::table::{ErspanTx, MirrorDir};
use crate::MirrorCopy;
use greway_wire::erspan::{self, TypeIIIRepr, TypeIIRepr};
use greway_wire::ethernet::Frame;

/// ERSPAN type II En: the mirrored frame carries its 802.1Q tag.
const EN_VLAN_IN_FRAME: u8 = 3;
/// Type III BSO values (RFC 1757 as `include/net/erspan.h` lists them).
const BSO_SHORT: u8 = 1;
const BSO_OVERSIZED: u8 = 2;
/// Ethernet frame bounds of `erspan_detect_bso` (ETH_ZLEN, ETH_FRAME_LEN: without the FCS).
const ETH_MIN_FRAME: usize = 60;
const ETH_MAX_FRAME: usize = 1514;
/// Outer TTL when the tunnel's `ttl` is `"inherit"` (a mirrored frame need not carry IP).
const DEFAULT_TTL: u8 = 64;
/// Timestamp units per second (granularity 0: 100 µs).
const TIMESTAMP_HZ: u64 = 10_000;

/// The per-frame ERSPAN fields read from the mirrored frame: (VLAN ID, tagged, COS).
fn frame_fields(d: &[u8]) -> (u16, bool, u8) {
    let Ok(f) = Frame::new_checked(d) else {
        return (0, false, 0);
    };
    if let Some(tag) = f.vlan_tag() {
        return (tag.vid, true, tag.pcp);
    }
    let ip = &d[ethernet::HEADER_LEN..];
    let tos = match f.outer_ethertype() {
        ethertype::IPV4 => ipv4::Header::from_prefix(ip).map(|h| h.dscp_ecn()),
        ethertype::IPV6 => ipv6::Header::from_prefix(ip).map(|h| h.traffic_class()),
        _ => None,
    };
    (0, false, tos.map_or(0, |t| t >> 5))
}

/// Microseconds / 100 since the Unix epoch, now (read once per worker, see [`Worker::erspan_timestamp`]).
fn unix_100us_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64 / 100)
}

impl<B: PacketBuf> Worker<B> {
    /// See [`crate::Processor::mirror`].
    pub(super) fn mirror(
        &mut self,
        tables: &Tables,
        pkts: &[B],
        port: usize,
        dir: MirrorDir,
        emit: &mut dyn FnMut(MirrorCopy, B) -> bool,
        c: &mut Counters,
    ) {
        for src in tables.mirrors.of(port, dir) {
            let entry = src.entry as usize;
            c.ensure_mirrors(entry + 1);
            let ti = src.tunnel as usize;
            // The entry and its tunnel come from one table generation (a reload that removes a mirror's tunnel
            // removes the mirror too: validated), and the tunnel sends (validated).
            let Some((t, e)) = tables
                .tunnels
                .get(ti)
                .and_then(|t| t.erspan_tx.map(|e| (t, e)))
            else {
                continue;
            };
            if !t.resolved {
                // Copies are never held: ask for the next hop and count them.
                self.event(Event::Resolve {
                    port: usize::from(t.out_port),
                    ip: t.next_hop,
                });
                c.mirrors[entry].no_neighbor += pkts.len() as u64;
                continue;
            }
            for (i, p) in pkts.iter().enumerate() {
                let Some((copy, truncated)) = self.erspan_copy(t, e, p, dir) else {
                    c.mirrors[entry].no_mbuf += 1;
                    continue;
                };
                let tag = MirrorCopy {
                    out: t.out_port,
                    entry: src.entry,
                    orig: i as u16,
                    bytes: p.pkt_len() as u32,
                    truncated,
                };
                if emit(tag, copy) {
                    let tc = &mut c.tunnels[ti];
                    tc.encap += 1;
                    tc.encap_bytes += u64::from(tag.bytes);
                } else {
                    c.mirrors[entry].queue_full += 1;
                }
            }
        }
    }

    /// The ERSPAN packet of frame `p` for tunnel `t`: a new buffer from `p`'s pool holding the tunnel's
    /// template, the ERSPAN header and (at most the tunnel MTU of) the frame. None when there is no buffer, or
    /// none with room for the headers. Also says whether the frame was cut.
    fn erspan_copy(&mut self, t: &Tunnel, e: ErspanTx, p: &B, dir: MirrorDir) -> Option<(B, bool)> {
        let mut cp = p.alloc_sibling()?;
        let hl = t.header_bytes();
        let el = e.header_len();
        let frame_len = p.pkt_len();
        let len = frame_len.min(usize::from(t.mtu.get())).min(cp.tailroom());
        let truncated = len < frame_len;
        let dst = cp.append(len)?;
        if p.is_contiguous() {
            dst.copy_from_slice(&p.data()[..len]);
        } else {
            let mut at = 0;
            p.for_each_segment(&mut |seg| {
                let n = seg.len().min(len - at);
                dst[at..at + n].copy_from_slice(&seg[..n]);
                at += n;
            });
        }
        let (vlan, tagged, cos) = frame_fields(p.data());
        let timestamp = if e.version == erspan::VERSION_TYPE_III {
            self.erspan_timestamp()
        } else {
            0
        };
        // An identification counter of their own: mirroring leaves the originals' outer headers as they were.
        let ident = self.mirror_ident;
        self.mirror_ident = self.mirror_ident.wrapping_add(1);
        let d = cp.prepend(hl + el)?;
        copy_header(d, &t.template, hl);
        let outer_len = hl - ethernet::HEADER_LEN + el + len;
        let ttl = if t.ttl_set != 0 {
            t.ttl_set
        } else {
            DEFAULT_TTL
        };
        if t.outer_v6() {
            let (_, mut ip) = eth_ipv6_mut(checked_prefix_mut::<ETH_IPV6>(d));
            outer_ipv6_fields(&mut ip, t.tos_set, outer_len, Some(ttl));
        } else {
            let (_, mut ip) = eth_ipv4_mut(checked_prefix_mut::<ETH_IPV4>(d));
            outer_ipv4_fields(&mut ip, t, t.tos_set, outer_len, ident, true, ttl);
        }
        // RFC 2890 / Linux erspan: the session's packets are numbered in the order their workers took numbers
        // (one atomic add per copy; the numbers are unique, and increasing per worker).
        let seq = t.state.tx_seq.fetch_add(1, Ordering::Relaxed);
        let at = usize::from(t.seq_off);
        d[at..at + 4].copy_from_slice(&seq.to_be_bytes());
        let h = &mut d[hl..];
        if e.version == erspan::VERSION_TYPE_II {
            TypeIIRepr {
                vlan,
                cos,
                en: if tagged { EN_VLAN_IN_FRAME } else { 0 },
                truncated,
                session: e.session,
                index: e.index,
            }
            .emit(h);
        } else {
            TypeIIIRepr {
                vlan,
                cos,
                bso: if frame_len < ETH_MIN_FRAME {
                    BSO_SHORT
                } else if frame_len > ETH_MAX_FRAME {
                    BSO_OVERSIZED
                } else {
                    0
                },
                truncated,
                session: e.session,
                timestamp,
                sgt: 0,
                p: true,
                ft: TypeIIIRepr::FT_ETHERNET,
                hwid: e.hwid,
                d: dir == MirrorDir::Tx,
                gra: 0,
                platform: None,
            }
            .emit(h);
        }
        Some((cp, truncated))
    }

    /// The type III timestamp of this poll round: the wall clock in 100 µs units, from the TSC and one reading
    /// of the system clock the first time it is needed (no system call per packet).
    fn erspan_timestamp(&mut self) -> u32 {
        let now = self.now;
        let (tsc0, wall0) = *self
            .wall_anchor
            .get_or_insert_with(|| (now, unix_100us_now()));
        let per_unit = (self.tsc_hz / TIMESTAMP_HZ).max(1);
        (wall0 + now.saturating_sub(tsc0) / per_unit) as u32
    }
}

impl<B> Gateway<B> {
    /// Anchor the ERSPAN type III timestamps: TSC `tsc` is `unix_100us` (the Unix time in 100 µs units).
    /// Without it the first mirrored packet reads the system clock.
    pub fn set_wall_clock(&mut self, tsc: u64, unix_100us: u64) {
        self.w.wall_anchor = Some((tsc, unix_100us));
    }
}
