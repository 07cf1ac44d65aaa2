//! Packet templates: every frame the generator sends is built once here, then copied into a fresh mbuf and
//! stamped with [`Template::stamp`] (sequence number, TSC, UDP checksum, GRE sequence and checksum). Nothing
//! else is formatted per packet.
//!
//! Frame sizes are Ethernet frame sizes including the 4-byte FCS (RFC 2544 convention: a "64-byte frame" is 60
//! bytes handed to the NIC plus the FCS it appends). A size too small for the headers and the 18-byte signature
//! is raised to the smallest that fits (see [`Plan::min_frame`]).
use crate::gen::config::{GenEncap, GeneratorCfg};
use crate::wire::checksum;
use crate::wire::erspan::{self, TypeIIIRepr, TypeIIRepr};
use crate::wire::ethernet;
use crate::wire::gre::{self, GreRepr};
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::ipv6::Ipv6Repr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Bytes of the signature at the start of the UDP payload: magic (2) + run (1) + stream (3) + seq (6) + tsc (6),
/// all big-endian. 18 bytes let a plain IPv4/UDP frame of 64 bytes carry it. The 48-bit TSC wraps after about a
/// day at 3 GHz; latency is taken modulo 2^48.
pub const SIGNATURE_LEN: usize = 18;
/// The signature's first two bytes.
pub const MAGIC: [u8; 2] = *b"Gw";
/// Sequence numbers and TSC values are carried modulo 2^48.
pub const MASK48: u64 = (1 << 48) - 1;
/// The Ethernet FCS the NIC appends (counted in frame sizes, absent from mbufs).
pub const FCS: usize = 4;
/// Simple IMIX, one period: 7 x 64, 4 x 594, 1 x 1518, interleaved so that bursts stay mixed.
pub const IMIX: [u16; 12] = [64, 594, 64, 64, 594, 64, 1518, 64, 594, 64, 594, 64];

const ETH_LEN: usize = crate::wire::ethernet::HEADER_LEN;
const UDP_LEN: usize = 8;
/// The mirrored frame's MACs (`encap = "erspan"`): a host talking to its router, as a switch would capture it.
pub const ERSPAN_INNER_SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x0a];
pub const ERSPAN_INNER_DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];

/// One prebuilt frame (without FCS).
#[derive(Clone, Debug)]
pub struct Template {
    pub bytes: Vec<u8>,
    pub stream: u32,
    pub tunnel: u32,
    /// Offset of the UDP header.
    udp_off: usize,
    /// One's-complement sum (unfolded) of the UDP pseudo-header and datagram with checksum, seq and tsc zero.
    udp_sum: u32,
    /// Offset of the GRE header (GRE profiles).
    gre_off: Option<usize>,
    /// Offset of the GRE sequence field (when sequence numbers are on).
    gre_seq_off: Option<usize>,
    gre_checksum: bool,
}

impl Template {
    /// Offset of the signature (the UDP payload).
    pub fn sig_off(&self) -> usize {
        self.udp_off + UDP_LEN
    }

    /// Fix up a copy of this template in `out` (same length): signature run id, seq and tsc, then the UDP
    /// checksum (incrementally from the template's sum), the GRE sequence and the GRE checksum (over the whole
    /// GRE packet, as RFC 2784 section 2.1 defines it).
    #[inline]
    pub fn stamp(&self, out: &mut [u8], run: u8, seq: u64, tsc: u64, gre_seq: u32) {
        let s = self.sig_off();
        out[s + 2] = run;
        out[s + 6..s + 12].copy_from_slice(&seq.to_be_bytes()[2..]);
        out[s + 12..s + 18].copy_from_slice(&tsc.to_be_bytes()[2..]);
        // The fields changed start at even offsets from the UDP header, so their 16-bit words add directly.
        let mut sum = self.udp_sum + (u32::from(run) << 8); // run is the high byte of its word
        for w in out[s + 6..s + 18].chunks_exact(2) {
            sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        let mut ck = !checksum::fold(sum);
        if ck == 0 {
            ck = 0xffff; // RFC 768: a computed zero is sent as all ones
        }
        out[self.udp_off + 6..self.udp_off + 8].copy_from_slice(&ck.to_be_bytes());
        if let Some(at) = self.gre_seq_off {
            out[at..at + 4].copy_from_slice(&gre_seq.to_be_bytes());
        }
        if self.gre_checksum {
            if let Some(g) = self.gre_off {
                let _ = gre::fill_checksum(&mut out[g..]);
            }
        }
    }
}

/// All templates of a run and the order in which they are sent.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `templates[stream * sizes.len() + size_index]`.
    pub templates: Vec<Template>,
    /// Distinct frame sizes (FCS included) actually sent, after raising to `min_frame`.
    pub sizes: Vec<u16>,
    /// The size pattern cycled packet by packet, as indices into `sizes`.
    pub pattern: Vec<usize>,
    pub streams: u32,
    pub tunnels: u32,
    /// Smallest frame (FCS included) that holds the headers and the signature.
    pub min_frame: u16,
    /// Mean frame size over one pattern period (FCS included).
    pub mean_frame: f64,
    /// A human description of the profile.
    pub profile: String,
}

fn add_ip(ip: IpAddr, n: u32) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(n))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add(u128::from(n)))),
    }
}

fn ip_header_len(ip: IpAddr) -> usize {
    if ip.is_ipv4() {
        20
    } else {
        40
    }
}

/// GRE profiles (`gre`, `erspan`) have an outer IP and GRE header.
fn outer(g: &GeneratorCfg) -> bool {
    g.encap != GenEncap::Udp
}

fn gre_repr(g: &GeneratorCfg, tunnel: u32) -> GreRepr {
    if g.encap == GenEncap::Erspan {
        // As Linux's erspan_xmit: a sequence number, no key (the session identifies the packets), no checksum.
        return GreRepr {
            checksum: false,
            key: None,
            sequence: Some(0),
            protocol: if g.erspan_version == erspan::VERSION_TYPE_II {
                gre::protocol::ERSPAN
            } else {
                gre::protocol::ERSPAN3
            },
        };
    }
    GreRepr {
        checksum: g.checksum,
        key: g.key.map(|k| k.wrapping_add(tunnel)),
        sequence: g.sequence.then_some(0),
        protocol: if g.encap == GenEncap::Teb {
            gre::protocol::TEB
        } else {
            ip_ethertype(g.inner_src)
        },
    }
}

fn ip_ethertype(ip: IpAddr) -> u16 {
    if ip.is_ipv4() {
        ethernet::ethertype::IPV4
    } else {
        ethernet::ethertype::IPV6
    }
}

/// Default inner MACs of `encap = "teb"` frames (flow j: source + j).
pub const DEFAULT_INNER_SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0x20, 1];
pub const DEFAULT_INNER_DST_MAC: [u8; 6] = [2, 0, 0, 0, 0x10, 2];

/// `mac` with `n` added to its last three bytes (wrapping within them: the OUI part stays).
fn add_mac(mac: [u8; 6], n: u32) -> [u8; 6] {
    let low = u32::from_be_bytes([0, mac[3], mac[4], mac[5]]).wrapping_add(n) & 0x00ff_ffff;
    let b = low.to_be_bytes();
    [mac[0], mac[1], mac[2], b[1], b[2], b[3]]
}

/// The ERSPAN header and the mirrored frame's Ethernet header before the inner IP (`encap = "erspan"`).
fn erspan_len(g: &GeneratorCfg) -> usize {
    match (g.encap, g.erspan_version) {
        (GenEncap::Erspan, erspan::VERSION_TYPE_II) => erspan::TYPE_II_LEN + ETH_LEN,
        (GenEncap::Erspan, _) => erspan::TYPE_III_LEN + ETH_LEN,
        _ => 0,
    }
}

/// Header bytes before the signature for this generator config.
pub fn header_len(g: &GeneratorCfg) -> usize {
    let mut n = ETH_LEN + ip_header_len(g.inner_src) + UDP_LEN;
    if outer(g) {
        n += ip_header_len(g.outer_src) + gre_repr(g, 0).header_len() + erspan_len(g);
    }
    if g.encap == GenEncap::Teb {
        n += ETH_LEN;
    }
    n
}

/// Write an IP header (`src` picks the family) for `payload_len` bytes of `proto`; returns its length.
fn emit_ip(buf: &mut [u8], src: IpAddr, dst: IpAddr, proto: u8, payload_len: usize) -> usize {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Ipv4Repr {
            src_addr: s,
            dst_addr: d,
            protocol: proto,
            payload_len: payload_len as u16,
            ttl: 64,
            dscp_ecn: 0,
            ident: 0,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        }
        .emit(buf),
        (IpAddr::V6(s), IpAddr::V6(d)) => Ipv6Repr {
            src_addr: s,
            dst_addr: d,
            next_header: proto,
            payload_len: payload_len as u16,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        }
        .emit(buf),
        _ => unreachable!("address families are validated in config"),
    }
}

fn pseudo_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    use crate::wire::checksum::{pseudo_header_v4, pseudo_header_v6};
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo_header_v4(s.octets(), d.octets(), proto, len as u32)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo_header_v6(&s.octets(), &d.octets(), proto, len as u32)
        }
        _ => unreachable!("address families are validated in config"),
    }
}

/// Build one template: `frame` bytes (FCS excluded) for `stream` = tunnel * flows + flow.
fn build(
    g: &GeneratorCfg,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    tunnel: u32,
    flow: u32,
    frame: usize,
) -> Template {
    let stream = tunnel * g.flows + flow;
    let mut b = vec![0u8; frame];
    let inner_src = add_ip(g.inner_src, flow);
    let outer_family = if outer(g) { g.outer_src } else { g.inner_src };
    let inner_ethertype = if g.inner_src.is_ipv4() {
        ethernet::ethertype::IPV4
    } else {
        ethernet::ethertype::IPV6
    };
    let mut eth =
        ethernet::HeaderMut::from_prefix(&mut b).expect("a frame holds an Ethernet header");
    eth.set_dst(dst_mac);
    eth.set_src(src_mac);
    eth.set_ethertype(ip_ethertype(outer_family));
    let mut at = ETH_LEN;
    let mut gre_off = None;
    let mut gre_seq_off = None;
    if outer(g) {
        let outer_payload = frame - at - ip_header_len(g.outer_src);
        at += emit_ip(
            &mut b[at..],
            add_ip(g.outer_src, tunnel),
            g.outer_dst,
            47,
            outer_payload,
        );
        let gr = gre_repr(g, tunnel);
        gre_off = Some(at);
        let hl = gr.emit(&mut b[at..]);
        if gr.sequence.is_some() {
            gre_seq_off = Some(at + hl - 4);
        }
        at += hl;
        if g.encap == GenEncap::Erspan {
            // The ERSPAN header (type III: timestamp 0, ingress, hardware ID 0) and the mirrored frame's
            // Ethernet header.
            at += if g.erspan_version == erspan::VERSION_TYPE_II {
                TypeIIRepr {
                    vlan: 0,
                    cos: 0,
                    en: 0,
                    truncated: false,
                    session: g.erspan_session,
                    index: 0,
                }
                .emit(&mut b[at..])
            } else {
                TypeIIIRepr {
                    vlan: 0,
                    cos: 0,
                    bso: 0,
                    truncated: false,
                    session: g.erspan_session,
                    timestamp: 0,
                    sgt: 0,
                    p: true,
                    ft: TypeIIIRepr::FT_ETHERNET,
                    hwid: 0,
                    d: false,
                    gra: 0,
                    platform: None,
                }
                .emit(&mut b[at..])
            };
            let mut e = ethernet::HeaderMut::from_prefix(&mut b[at..])
                .expect("a frame holds the mirrored Ethernet header");
            e.set_dst(ERSPAN_INNER_DST_MAC);
            e.set_src(ERSPAN_INNER_SRC_MAC);
            e.set_ethertype(inner_ethertype);
            at += ETH_LEN;
        }
    }
    if g.encap == GenEncap::Teb {
        // The bridged frame: its own Ethernet header, then the same IP/UDP packet as the other profiles.
        let src = g.inner_src_mac.map_or(DEFAULT_INNER_SRC_MAC, |m| m.0);
        let dst = g.inner_dst_mac.map_or(DEFAULT_INNER_DST_MAC, |m| m.0);
        let mut eth = ethernet::HeaderMut::from_prefix(&mut b[at..])
            .expect("a frame holds the inner Ethernet header");
        eth.set_dst(dst);
        eth.set_src(add_mac(src, flow));
        eth.set_ethertype(ip_ethertype(g.inner_src));
        at += ETH_LEN;
    }
    let inner_payload = frame - at - ip_header_len(g.inner_src);
    at += emit_ip(&mut b[at..], inner_src, g.inner_dst, 17, inner_payload);
    let udp_off = at;
    let udp_len = frame - udp_off;
    let sport = g.udp_sport.wrapping_add(flow as u16);
    b[at..at + 2].copy_from_slice(&sport.to_be_bytes());
    b[at + 2..at + 4].copy_from_slice(&g.udp_dport.to_be_bytes());
    b[at + 4..at + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let sig = at + UDP_LEN;
    b[sig..sig + 2].copy_from_slice(&MAGIC);
    b[sig + 3..sig + 6].copy_from_slice(&stream.to_be_bytes()[1..]);
    for (i, x) in b[sig + SIGNATURE_LEN..].iter_mut().enumerate() {
        *x = i as u8;
    }
    let udp_sum = checksum::sum(
        &b[udp_off..],
        pseudo_sum(inner_src, g.inner_dst, 17, udp_len),
    );
    Template {
        bytes: b,
        stream,
        tunnel,
        udp_off,
        udp_sum,
        gre_off,
        gre_seq_off,
        gre_checksum: g.encap.is_gre() && g.checksum,
    }
}

impl Plan {
    /// Build every template for `g`, sending from `src_mac` to `dst_mac`.
    pub fn new(g: &GeneratorCfg, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Plan {
        let min_frame = (header_len(g) + SIGNATURE_LEN + FCS).max(64) as u16;
        let raw: Vec<u16> = if g.imix {
            IMIX.to_vec()
        } else {
            g.sizes.clone()
        };
        let raw: Vec<u16> = raw.iter().map(|&s| s.max(min_frame)).collect();
        let mut sizes: Vec<u16> = raw.clone();
        sizes.sort_unstable();
        sizes.dedup();
        let pattern: Vec<usize> = raw
            .iter()
            .map(|s| sizes.iter().position(|x| x == s).unwrap_or(0))
            .collect();
        let mean_frame = raw.iter().map(|&s| f64::from(s)).sum::<f64>() / raw.len() as f64;
        let (src_mac, dst_mac) = (src_mac, dst_mac);
        let mut templates = Vec::new();
        for t in 0..g.tunnels {
            for f in 0..g.flows {
                for &s in &sizes {
                    templates.push(build(g, src_mac, dst_mac, t, f, usize::from(s) - FCS));
                }
            }
        }
        let fam = |ip: IpAddr| if ip.is_ipv4() { "IPv4" } else { "IPv6" };
        let inner = format!("{} UDP", fam(g.inner_src));
        let profile = match g.encap {
            GenEncap::Udp => format!("{inner}, {} flows", g.flows),
            GenEncap::Gre | GenEncap::Teb => {
                let mut opts = Vec::new();
                if let Some(k) = g.key {
                    opts.push(format!("key {k}"));
                }
                if g.checksum {
                    opts.push("csum".into());
                }
                if g.sequence {
                    opts.push("seq".into());
                }
                let carrying = if g.encap == GenEncap::Teb {
                    format!("Ethernet (TEB) with {inner}")
                } else {
                    inner
                };
                format!(
                    "GRE/{}{}{} carrying {carrying}, {} tunnels x {} flows",
                    fam(g.outer_src),
                    if opts.is_empty() { "" } else { " " },
                    opts.join(" "),
                    g.tunnels,
                    g.flows
                )
            }
            GenEncap::Erspan => format!(
                "ERSPAN type {} session {} over GRE/{} carrying Ethernet + {inner}, {} tunnels x {} flows",
                if g.erspan_version == erspan::VERSION_TYPE_II {
                    "II"
                } else {
                    "III"
                },
                g.erspan_session,
                fam(g.outer_src),
                g.tunnels,
                g.flows
            ),
        };
        let size_desc = if g.imix {
            "IMIX 7:4:1 of 64/594/1518".to_string()
        } else if raw.len() == 1 {
            format!("{} B frames", raw[0])
        } else {
            format!("size sweep {:?} B", raw)
        };
        Plan {
            templates,
            sizes,
            pattern,
            streams: g.tunnels * g.flows,
            tunnels: g.tunnels,
            min_frame,
            mean_frame,
            profile: format!("{profile}, {size_desc}"),
        }
    }

    /// The template of `stream` at size index `size`.
    #[inline]
    pub fn template(&self, stream: u32, size: usize) -> &Template {
        &self.templates[stream as usize * self.sizes.len() + size]
    }
}

/// What the receiver reads from a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    pub run: u8,
    pub stream: u32,
    pub seq: u64,
    pub tsc: u64,
}

/// Find and read the signature in a received frame: Ethernet (one optional 802.1Q tag), IPv4/IPv6, through up
/// to two GRE layers (any flags, RFC 2784/2890), the Ethernet frames of TEB (GRE protocol 0x6558, again with one
/// optional tag) and ERSPAN types I, II and III with the mirrored Ethernet frame, down to UDP. `None` for
/// anything else.
pub fn find_signature(f: &[u8]) -> Option<Signature> {
    let (mut et, mut at) = ethernet_payload(f, 0)?;
    for _ in 0..5 {
        let (proto, next) = match et {
            ethernet::ethertype::IPV4 => {
                let ihl = usize::from(*f.get(at)? & 0x0f) * 4;
                (*f.get(at + 9)?, at + ihl)
            }
            ethernet::ethertype::IPV6 => (*f.get(at + 6)?, at + 40),
            gre::protocol::TEB => {
                (et, at) = ethernet_payload(f, at)?;
                continue;
            }
            _ => return None,
        };
        match proto {
            17 => {
                let s = next + UDP_LEN;
                let sig = f.get(s..s + SIGNATURE_LEN)?;
                if sig[0..2] != MAGIC {
                    return None;
                }
                let be = |r: std::ops::Range<usize>| {
                    sig[r].iter().fold(0u64, |a, &x| a << 8 | u64::from(x))
                };
                return Some(Signature {
                    run: sig[2],
                    stream: be(3..6) as u32,
                    seq: be(6..12),
                    tsc: be(12..18),
                });
            }
            47 => {
                let g = f.get(next..)?;
                let p = gre::Packet::new_checked(g).ok()?;
                et = p.protocol();
                at = next + p.header_len();
                let ers = match et {
                    // Type I (no sequence number) has no ERSPAN header.
                    gre::protocol::ERSPAN if p.sequence().is_none() => Some(0),
                    gre::protocol::ERSPAN => Some(erspan::TYPE_II_LEN),
                    gre::protocol::ERSPAN3 => {
                        Some(TypeIIIRepr::parse(f.get(at..)?).ok()?.header_len())
                    }
                    _ => None,
                };
                if let Some(n) = ers {
                    // The mirrored Ethernet frame (one optional 802.1Q tag).
                    (et, at) = ethernet_payload(f, at + n)?;
                }
            }
            _ => return None,
        }
    }
    None
}

/// The payload EtherType and offset of the Ethernet frame at `at` in `f` (after its 802.1Q tag, if any).
fn ethernet_payload(f: &[u8], at: usize) -> Option<(u16, usize)> {
    let frame = ethernet::Frame::new_checked(f.get(at..)?).ok()?;
    Some((frame.ethertype(), at + frame.header_len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::checksum;

    fn cfg(toml_text: &str) -> GeneratorCfg {
        toml::from_str(toml_text).unwrap()
    }

    fn udp_ok(t: &Template, b: &[u8], src: IpAddr, dst: IpAddr) -> bool {
        let udp = &b[t.udp_off..];
        checksum::fold(checksum::sum(udp, pseudo_sum(src, dst, 17, udp.len()))) == 0xffff
    }

    #[test]
    fn gre_v4_template_stamps_valid_checksums_and_signature() {
        let g = cfg("encap = \"gre\"\nkey = 7\nchecksum = true\nsequence = true\nsizes = [64, 200]\ntunnels = 2\nflows = 3");
        let p = Plan::new(&g, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        assert_eq!(p.templates.len(), 2 * 3 * 2);
        // 14 + 20 + 16 + 20 + 8 + 18 + 4 = 100: 64 is raised.
        assert_eq!(p.min_frame, 100);
        assert_eq!(p.sizes, vec![100, 200]);
        let t = p.template(4, 1);
        assert_eq!((t.stream, t.tunnel), (4, 1));
        let mut b = t.bytes.clone();
        t.stamp(&mut b, 9, 12345, 0xbeef_0000_0001, 77);
        assert_eq!(b.len(), 196);
        // Outer IPv4 header valid, GRE checksum valid, key 8, seq 77.
        assert_eq!(checksum(&b[14..34]), 0);
        let gp = gre::Packet::new_checked(&b[34..]).unwrap();
        assert!(gp.verify_checksum());
        assert_eq!(gp.key(), Some(8));
        assert_eq!(gp.sequence(), Some(77));
        assert_eq!(checksum(&b[50..70]), 0, "inner IPv4 header");
        let src = add_ip(g.inner_src, 1);
        assert!(udp_ok(t, &b, src, g.inner_dst));
        let s = find_signature(&b).unwrap();
        assert_eq!(
            s,
            Signature {
                run: 9,
                stream: 4,
                seq: 12345,
                tsc: 0xbeef_0000_0001
            }
        );
    }

    #[test]
    fn erspan_templates_carry_the_session_a_sequence_and_the_udp_frame() {
        for (version, proto, el) in [(1u8, 0x88be, 8usize), (2, 0x22eb, 12)] {
            let g = cfg(&format!(
                "encap = \"erspan\"\nerspan_version = {version}\nerspan_session = 700\nsizes = [64, 300]\ntunnels = 2"
            ));
            let p = Plan::new(&g, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
            // 14 + 20 + 8 (GRE with sequence) + el + 14 + 20 + 8 + 18 + 4.
            assert_eq!(
                usize::from(p.min_frame),
                14 + 20 + 8 + el + 14 + 20 + 8 + 18 + 4
            );
            let t = p.template(1, 1);
            let mut b = t.bytes.clone();
            t.stamp(&mut b, 3, 99, 0x1234, 41);
            assert_eq!(checksum(&b[14..34]), 0, "outer IPv4 header");
            assert_eq!(&b[26..30], &[198, 51, 100, 8], "tunnel 1: outer source + 1");
            let gp = gre::Packet::new_checked(&b[34..]).unwrap();
            assert_eq!(
                (gp.protocol(), gp.sequence(), gp.key()),
                (proto, Some(41), None)
            );
            assert!(!gp.has_checksum());
            let at = 34 + gp.header_len();
            let session = if version == 1 {
                TypeIIRepr::parse(&b[at..]).unwrap().session
            } else {
                TypeIIIRepr::parse(&b[at..]).unwrap().session
            };
            assert_eq!(session, 700);
            let inner = &b[at + el..];
            assert_eq!(&inner[..6], &ERSPAN_INNER_DST_MAC);
            assert_eq!(&inner[6..12], &ERSPAN_INNER_SRC_MAC);
            assert_eq!(&inner[12..14], &[0x08, 0x00]);
            assert_eq!(checksum(&inner[14..34]), 0, "inner IPv4 header");
            assert!(udp_ok(t, &b, g.inner_src, g.inner_dst));
            let s = find_signature(&b).unwrap();
            assert_eq!((s.run, s.stream, s.seq, s.tsc), (3, 1, 99, 0x1234));
            // What an ERSPAN receiver delivers (the mirrored frame alone) carries the signature too.
            assert_eq!(find_signature(inner), Some(s));
        }
        let bad = |t: &str| check_generator_text(t);
        assert!(bad("encap = \"erspan\"\nerspan_version = 3").contains("erspan_version"));
        assert!(bad("encap = \"erspan\"\nerspan_session = 1024").contains("erspan_session"));
        assert!(bad("encap = \"erspan\"\nkey = 5").contains("generator.key"));
    }

    /// The `[generator]` error of a config whose generator section is `text`.
    fn check_generator_text(text: &str) -> String {
        let full = format!(
            "[eal]\nargs = [\"-l\", \"0-1\"]\n[dataplane]\nworkers = [1]\n[[port]]\nname = \"a\"\nrole = \"outside\"\ndevice = \"net_null0\"\naddress = \"192.0.2.2/24\"\n[generator]\n{text}\n"
        );
        crate::config::Config::from_str_named(&full, "g")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn ipv6_udp_checksum_is_right_for_many_stamps() {
        let g = cfg("inner_src = \"2001:db8:20::1\"\ninner_dst = \"2001:db8:10::2\"\nflows = 2\nsizes = [99]");
        let p = Plan::new(&g, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let t = p.template(1, 0);
        for (seq, tsc) in [
            (0u64, 0u64),
            (1, MASK48),
            (MASK48, 0x8000),
            (0xffff, 0xffff_0000),
        ] {
            let mut b = t.bytes.clone();
            t.stamp(&mut b, 255, seq, tsc, 0);
            assert!(
                udp_ok(t, &b, add_ip(g.inner_src, 1), g.inner_dst),
                "{seq} {tsc}"
            );
            assert_eq!(find_signature(&b).unwrap().seq, seq);
        }
    }

    #[test]
    fn gre_over_ipv6_carrying_ipv6() {
        let g = cfg("encap = \"gre\"\nchecksum = true\nouter_src = \"2001:db8:ffff::2\"\nouter_dst = \"2001:db8:ffff::1\"\ninner_src = \"2001:db8:20::1\"\ninner_dst = \"2001:db8:10::2\"\nsizes = [256]");
        let p = Plan::new(&g, [2; 6], [4; 6]);
        let t = &p.templates[0];
        let mut b = t.bytes.clone();
        t.stamp(&mut b, 1, 42, 7, 0);
        assert_eq!(&b[12..14], &[0x86, 0xdd]);
        assert_eq!(b[14 + 6], 47, "outer next header GRE");
        let payload_len = u16::from_be_bytes([b[18], b[19]]) as usize;
        assert_eq!(payload_len, b.len() - 14 - 40);
        let gp = gre::Packet::new_checked(&b[54..]).unwrap();
        assert!(gp.verify_checksum());
        assert_eq!(gp.protocol(), 0x86dd);
        assert!(udp_ok(t, &b, g.inner_src, g.inner_dst));
        assert_eq!(find_signature(&b).unwrap().seq, 42);
        assert_eq!(
            p.profile,
            "GRE/IPv6 csum carrying IPv6 UDP, 1 tunnels x 1 flows, 256 B frames"
        );
    }

    #[test]
    fn teb_template_carries_an_ethernet_frame_per_flow() {
        let g = cfg("encap = \"teb\"\nkey = 7\nchecksum = true\nsequence = true\nflows = 3\ntunnels = 2\nsizes = [64, 300]\ninner_dst_mac = \"02:00:00:00:33:02\"");
        let p = Plan::new(&g, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        // 14 + 20 + 16 + 14 + 20 + 8 + 18 + 4 = 114: 64 is raised.
        assert_eq!(p.min_frame, 114);
        assert_eq!(
            p.profile,
            "GRE/IPv4 key 7 csum seq carrying Ethernet (TEB) with IPv4 UDP, 2 tunnels x 3 flows, size sweep [114, 300] B"
        );
        let t = p.template(5, 1); // tunnel 1, flow 2
        let mut b = t.bytes.clone();
        t.stamp(&mut b, 3, 999, 0x1234, 41);
        assert_eq!(b.len(), 296);
        assert_eq!(checksum(&b[14..34]), 0, "outer IPv4 header");
        let gp = gre::Packet::new_checked(&b[34..]).unwrap();
        assert_eq!(gp.protocol(), 0x6558);
        assert!(gp.verify_checksum());
        assert_eq!((gp.key(), gp.sequence()), (Some(8), Some(41)));
        let inner = ethernet::Frame::new_checked(&b[50..]).unwrap();
        assert_eq!(inner.dst_addr().0, [2, 0, 0, 0, 0x33, 2]);
        assert_eq!(
            inner.src_addr().0,
            [2, 0, 0, 0, 0x20, 3],
            "flow 2: source MAC + 2"
        );
        assert_eq!(inner.ethertype(), 0x0800);
        assert_eq!(checksum(&b[64..84]), 0, "inner IPv4 header");
        assert!(udp_ok(t, &b, add_ip(g.inner_src, 2), g.inner_dst));
        let s = find_signature(&b).unwrap();
        assert_eq!((s.stream, s.seq, s.tsc, s.run), (5, 999, 0x1234, 3));
        // What a gateway decapsulating the TEB tunnel delivers (the inner frame), and the same frame tagged by
        // a VLAN member on its way out, are found too.
        assert_eq!(find_signature(&b[50..]).unwrap().seq, 999);
        let mut tagged = b[50..62].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        tagged.extend_from_slice(&b[62..]);
        assert_eq!(find_signature(&tagged).unwrap().seq, 999);
    }

    #[test]
    fn add_mac_wraps_in_the_low_three_bytes() {
        assert_eq!(add_mac([2, 0, 0, 0xff, 0xff, 0xff], 1), [2, 0, 0, 0, 0, 0]);
        assert_eq!(add_mac([2, 1, 2, 0, 0, 0xff], 2), [2, 1, 2, 0, 1, 1]);
    }

    #[test]
    fn imix_pattern_is_7_4_1() {
        let g = cfg("imix = true");
        let p = Plan::new(&g, [2; 6], [4; 6]);
        assert_eq!(p.sizes, vec![64, 594, 1518]);
        let count = |i| p.pattern.iter().filter(|&&x| x == i).count();
        assert_eq!((count(0), count(1), count(2)), (7, 4, 1));
        assert!((p.mean_frame - (7.0 * 64.0 + 4.0 * 594.0 + 1518.0) / 12.0).abs() < 1e-9);
    }

    #[test]
    fn foreign_frames_have_no_signature() {
        assert_eq!(find_signature(&[0u8; 10]), None);
        let g = cfg("");
        let p = Plan::new(&g, [2; 6], [4; 6]);
        let mut b = p.templates[0].bytes.clone();
        assert_eq!(p.min_frame, 64, "plain IPv4 UDP fits in 64 B");
        b[14 + 20 + 8] = b'X';
        assert_eq!(find_signature(&b), None);
        // Truncated inside the signature.
        let b = &p.templates[0].bytes[..14 + 20 + 8 + 10];
        assert_eq!(find_signature(b), None);
    }
}
