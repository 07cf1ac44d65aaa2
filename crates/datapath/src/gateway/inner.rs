//! Per-tunnel rules about the inner packet, decided at table build time ([`Tunnel::inner_checks`]): TCP MSS
//! clamping (`mss_clamp`, as MikroTik's `clamp-tcp-mss` and Cisco's `ip tcp adjust-mss`) in both directions,
//! and the RFC 2473 Tunnel Encapsulation Limit an inner IPv6 packet carries (`encap_limit`, as Linux ip6gre).
//! A tunnel with neither has `inner_checks == 0` and none of this runs for it.
use super::*;
use crate::tunnel::table::{inner_check, MssClamp};
use greway_wire::ipv6_options::{self, EncapLimitRepr};
use greway_wire::tcp;

/// Whether an IPv6 Next Header value is an extension header the inner checks would have to walk (RFC 8200
/// section 4: the ones `ipv6::walk_extension_headers` understands).
#[inline]
fn is_extension_header(nh: u8) -> bool {
    matches!(
        nh,
        protocol::HOP_BY_HOP
            | protocol::ROUTING
            | protocol::FRAGMENT
            | protocol::DESTINATION_OPTIONS
            | protocol::AUTHENTICATION
    )
}

/// Where the TCP header of the IP packet at `ip_at` of frame `d` starts, when the packet is TCP and not a
/// non-first fragment (a later fragment holds no TCP header), and the end of the IP packet within `d`.
fn tcp_segment(d: &[u8], ip_at: usize, v4: bool) -> Option<(usize, usize)> {
    let ip = d.get(ip_at..)?;
    if v4 {
        let h = ipv4::Header::from_prefix(ip)?;
        if h.protocol() != protocol::TCP || h.flags_frag() & ipv4::flags_frag::OFFSET_MASK != 0 {
            return None;
        }
        let ihl = h.header_len();
        let end = usize::from(h.total_len()).min(ip.len());
        (ihl >= ipv4::HEADER_LEN && ihl < end).then_some((ip_at + ihl, ip_at + end))
    } else {
        let h = ipv6::Header::from_prefix(ip)?;
        let end = (ipv6::HEADER_LEN + usize::from(h.payload_len())).min(ip.len());
        let upper =
            ipv6::walk_extension_headers(h.next_header(), &ip[ipv6::HEADER_LEN..end]).ok()?;
        if upper.protocol != protocol::TCP || upper.fragment.is_some_and(|f| f.offset != 0) {
            return None;
        }
        Some((ip_at + ipv6::HEADER_LEN + upper.offset, ip_at + end))
    }
}

/// The fast paths' question for a tunnel with `checks` ([`inner_check`] bits) set: may the inner packet at
/// `ip_at` need one of these rules? Yes for a TCP SYN (or a TCP header too short to tell) when clamping, and
/// for an IPv6 packet with extension headers (which may hide either). Out of line: tunnels without the
/// features never call it.
#[cold]
#[inline(never)]
pub(super) fn inner_needs_general(d: &[u8], ip_at: usize, v4: bool, checks: u8) -> bool {
    let (nh, l4_at) = if v4 {
        let Some(h) = d.get(ip_at..).and_then(ipv4::Header::from_prefix) else {
            return true;
        };
        if h.flags_frag() & ipv4::flags_frag::OFFSET_MASK != 0 {
            return false;
        }
        (h.protocol(), ip_at + h.header_len())
    } else {
        let Some(h) = d.get(ip_at..).and_then(ipv6::Header::from_prefix) else {
            return true;
        };
        if is_extension_header(h.next_header()) {
            return true;
        }
        (h.next_header(), ip_at + ipv6::HEADER_LEN)
    };
    if checks & inner_check::MSS_CLAMP == 0 || nh != protocol::TCP {
        return false;
    }
    d.get(l4_at..)
        .and_then(tcp::Header::from_prefix)
        .is_none_or(|t| t.syn())
}

/// Lower the MSS option of a TCP SYN or SYN-ACK in the IP packet at `ip_at` to the tunnel's clamp for its
/// family, updating the TCP checksum incrementally. Anything else (not TCP, not a SYN, a later fragment,
/// malformed options, an MSS already small enough) is left as it is.
pub(super) fn clamp_mss(d: &mut [u8], ip_at: usize, v4: bool, clamp: MssClamp) {
    let Some((at, end)) = tcp_segment(d, ip_at, v4) else {
        return;
    };
    let mss = if v4 { clamp.v4 } else { clamp.v6 };
    let _ = tcp::clamp_mss(&mut d[at..end], mss);
}

/// What an inner IPv6 packet's own Tunnel Encapsulation Limit means for a tunnel with `encap_limit` (RFC 2473
/// section 4.1.1, as Linux ip6gre's `prepare_ip6gre_xmit_ipv6` applies it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum InnerEncapLimit {
    /// The packet carries none: the tunnel's own limit goes out.
    None,
    /// The packet carries limit N > 0: the outer header carries N - 1.
    Decremented(u8),
    /// The packet carries limit 0: it must not be encapsulated; an ICMPv6 Parameter Problem (code 0) points
    /// at this offset (the limit byte, from the inner IPv6 header).
    Exceeded { pointer: u32 },
}

pub(super) fn inner_encap_limit(ip: &[u8]) -> InnerEncapLimit {
    match ipv6_options::find_tunnel_encap_limit(ip) {
        None => InnerEncapLimit::None,
        Some(at) if at.limit == 0 => InnerEncapLimit::Exceeded {
            pointer: at.limit_offset() as u32,
        },
        Some(at) => InnerEncapLimit::Decremented(at.limit - 1),
    }
}

/// Write `limit` into the Destination Options header the tunnel's template put at `at` of frame `d`.
pub(super) fn set_outer_encap_limit(d: &mut [u8], at: usize, limit: u8) {
    if let Some(h) = d.get_mut(at..) {
        ipv6_options::Header::new_unchecked(h)
            .set_option_byte(EncapLimitRepr::OPTION_OFFSET, limit);
    }
}
