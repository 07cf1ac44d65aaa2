//! ERSPAN out (`[[mirror]]`) on byte buffers: the copies a mirror makes are checked field by field against the
//! layout of draft-foschiano-erspan and Linux's `include/net/erspan.h`, decoded here by hand (not with the
//! `wire` Reprs that wrote them), with an independent IPv4 checksum; the originals are never touched; what
//! cannot be copied is counted by reason; a copy fed to a far-end gateway's ERSPAN receiver comes out as the
//! original frame.
use super::rig::*;
use crate::buf::{PacketBuf, VecBuf};
use crate::config::Config;
use crate::control::plane::ControlPlane;
use crate::datapath::gateway::{Event, Gateway, Shared};
use crate::datapath::testkit::{two_ports, EAL_ONE_WORKER};
use crate::datapath::{MirrorCopy, MirrorDir, Processor, Verdict};
use crate::stats::{Counters, DropReason};
use std::time::Instant;

/// The sender: an inside and an outside port, an IP tunnel, and the ERSPAN tunnel "span" to 198.51.100.50
/// (through the default route's next hop 192.0.2.254) with `span` lines, mirrored by `mirrors`.
fn mirror_config(span: &str, mirrors: &str, neighbor: bool) -> Config {
    let nb = if neighbor {
        "[[neighbor]]\nport = \"outside\"\nip = \"192.0.2.254\"\nmac = \"02:00:00:00:00:fe\"\n\
         [[neighbor]]\nport = \"outside\"\nip = \"2001:db8:ffff::fe\"\nmac = \"02:00:00:00:00:fe\""
    } else {
        ""
    };
    let text = format!(
        r#"
{ports}
[[tunnel]]
name = "t1"
local = "192.0.2.1"
remote = "198.51.100.7"
routes = ["10.20.0.0/16"]
[[tunnel]]
name = "span"
mode = "erspan"
{span}
{mirrors}
{nb}
[[neighbor]]
port = "inside"
ip = "10.0.0.2"
mac = "02:00:00:00:00:0a"
[[route]]
prefix = "0.0.0.0/0"
via = "192.0.2.254"
port = "outside"
[[route]]
prefix = "2001:db8:eeee::/48"
via = "2001:db8:ffff::fe"
port = "outside"
"#,
        ports = two_ports(
            r#""10.0.0.1/24""#,
            r#"["192.0.2.1/24", "2001:db8:ffff::1/64"]"#
        )
    );
    Config::from_str_named(&text, "mirror-test").unwrap_or_else(|e| panic!("{e}"))
}

const SPAN_V4: &str = "local = \"192.0.2.1\"\nremote = \"198.51.100.50\"";
const SPAN: u32 = 1;
const TSC_HZ: u64 = 1_000_000_000;

struct MirrorRig {
    gw: Gateway<VecBuf>,
    shared: Shared<VecBuf>,
    c: Counters,
}

fn mirror_rig(cfg: &Config) -> MirrorRig {
    let mut cp = ControlPlane::new(cfg, &[IN_MAC, OUT_MAC], Instant::now(), 1).unwrap();
    let shared = Shared::new(cp.tables(), 1);
    let mut gw = Gateway::new(0, 1, shared.clone(), TSC_HZ);
    Processor::<VecBuf>::begin_burst(&mut gw, 1_000);
    let mut c = Counters::new(2, cfg.tunnels.len());
    c.ensure_mirrors(Processor::<VecBuf>::mirror_count(&gw));
    MirrorRig { gw, shared, c }
}

impl MirrorRig {
    /// Mirror `frames` (port, direction) and return each emitted copy with its tag; `take` says whether the
    /// loop takes the n-th one.
    fn mirror_with(
        &mut self,
        frames: &[Vec<u8>],
        port: usize,
        dir: MirrorDir,
        take: impl Fn(usize) -> bool,
    ) -> Vec<(MirrorCopy, Vec<u8>)> {
        let bufs: Vec<VecBuf> = frames.iter().map(|f| VecBuf::new(f)).collect();
        let mut out = Vec::new();
        let mut n = 0;
        Processor::<VecBuf>::mirror(
            &mut self.gw,
            &bufs,
            port,
            dir,
            &mut |tag, b: VecBuf| {
                n += 1;
                if !take(n - 1) {
                    return false;
                }
                out.push((tag, b.to_vec()));
                true
            },
            &mut self.c,
        );
        for (b, f) in bufs.iter().zip(frames) {
            assert_eq!(&b.to_vec(), f, "the original is not changed");
        }
        out
    }

    fn mirror(
        &mut self,
        frames: &[Vec<u8>],
        port: usize,
        dir: MirrorDir,
    ) -> Vec<(MirrorCopy, Vec<u8>)> {
        self.mirror_with(frames, port, dir, |_| true)
    }
}

/// An untagged frame with an IPv4/UDP packet of `n` payload bytes and TOS `tos`.
fn frame(n: usize, tos: u8) -> Vec<u8> {
    let mut f = eth([2, 0, 0, 0, 0, 0x77], HOST_MAC, 0x0800);
    f.extend(ipv4(
        [10, 0, 0, 2],
        [10, 20, 0, 9],
        17,
        64,
        tos,
        true,
        &udp_payload(n),
    ));
    f
}

/// An 802.1Q-tagged frame (PCP 5, VLAN 300) with an IPv4 packet.
fn tagged(n: usize) -> Vec<u8> {
    let mut f = eth([2, 0, 0, 0, 0, 0x77], HOST_MAC, 0x8100);
    f.extend_from_slice(&(5u16 << 13 | 300).to_be_bytes());
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend(ipv4(
        [10, 0, 0, 2],
        [10, 20, 0, 9],
        17,
        64,
        0,
        true,
        &udp_payload(n),
    ));
    f
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The outer IPv4 + GRE of a copy, checked; returns (GRE protocol, sequence number, offset of the ERSPAN
/// header).
fn outer_v4(p: &[u8]) -> (u16, u32, usize) {
    assert_eq!(&p[..6], &GW_MAC, "to the next hop");
    assert_eq!(&p[6..12], &OUT_MAC, "from the outside port");
    assert_eq!(be16(p, 12), 0x0800);
    let ip = &p[14..34];
    assert_eq!(ip[0], 0x45);
    assert_eq!(usize::from(be16(ip, 2)), p.len() - 14, "total length");
    assert_eq!(be16(ip, 6), 0x4000, "DF, not a fragment");
    assert_eq!(ip[8], 64, "TTL");
    assert_eq!(ip[9], 47, "GRE");
    assert_eq!(csum(ip), 0, "header checksum");
    assert_eq!(&ip[12..16], &[192, 0, 2, 1]);
    assert_eq!(&ip[16..20], &[198, 51, 100, 50]);
    // RFC 2890 / Linux erspan: only S set, version 0; no key, no checksum.
    assert_eq!(be16(p, 34), 0x1000, "GRE flags: S only");
    (be16(p, 36), be32(p, 38), 42)
}

#[test]
fn rx_copies_are_erspan_type_ii_with_the_session_numbered_and_the_frame_byte_for_byte() {
    let cfg = mirror_config(
        &format!("{SPAN_V4}\nerspan = {{ session = 123, version = 1, index = 7 }}"),
        "[[mirror]]\nport = \"inside\"\ndirection = \"rx\"\ntunnel = \"span\"",
        true,
    );
    let mut r = mirror_rig(&cfg);
    let frames = vec![frame(30, 0xb8), tagged(40), frame(200, 0)];
    let copies = r.mirror(&frames, INSIDE, MirrorDir::Rx);
    assert_eq!(copies.len(), 3);
    for (i, ((tag, p), f)) in copies.iter().zip(&frames).enumerate() {
        assert_eq!(
            *tag,
            MirrorCopy {
                out: OUTSIDE as u16,
                entry: 0,
                orig: i as u16,
                bytes: f.len() as u32,
                truncated: false
            }
        );
        let (proto, seq, at) = outer_v4(p);
        assert_eq!(proto, 0x88be, "type II");
        assert_eq!(seq, i as u32, "per-session sequence numbers from 0");
        let w0 = be16(p, at);
        let w1 = be16(p, at + 2);
        assert_eq!(w0 >> 12, 1, "version 1");
        assert_eq!(w1 & 0x3ff, 123, "session");
        assert_eq!(w1 & 0x0400, 0, "not truncated");
        assert_eq!(be32(p, at + 4), 7, "index");
        let (vlan, en, cos) = match i {
            // DSCP 46 (EF): precedence 5.
            0 => (0, 0, 5),
            1 => (300, 3, 5),
            _ => (0, 0, 0),
        };
        assert_eq!(
            (w0 & 0xfff, (w1 >> 11) & 3, w1 >> 13),
            (vlan, en, cos),
            "copy {i}"
        );
        assert_eq!(&p[at + 8..], &f[..], "the mirrored frame, byte for byte");
    }
    let m = r.c.mirrors[0];
    assert_eq!(m.failures(), 0);
    // The loop counts what was sent; the tunnel counts what was encapsulated.
    assert_eq!(r.c.tunnels[SPAN as usize].encap, 3);
    // tx is not mirrored on this port.
    assert!(r.mirror(&frames, INSIDE, MirrorDir::Tx).is_empty());
    assert!(r.mirror(&frames, OUTSIDE, MirrorDir::Rx).is_empty());
}

/// The fast paths' per-tunnel byte (decided when the table is built): an ERSPAN sender never takes the IPv4
/// encapsulation fast path (its GRE header carries a sequence number each copy fills in, and its copies are made
/// by the mirror, not encapsulated as routed IP; its template's 42-byte shape would otherwise pass for a keyed
/// tunnel's) nor the decapsulation one (what it receives takes the ERSPAN rules): type II or III, IPv4 or IPv6
/// outside. The resolved IP tunnel beside it keeps its fast paths.
#[test]
fn an_erspan_sender_never_takes_a_fast_path() {
    use greway_datapath::tunnel::table::fast;
    let v6 = "local = \"2001:db8:ffff::1\"\nremote = \"2001:db8:eeee::50\"";
    for span in [
        format!("{SPAN_V4}\nerspan = {{ session = 123, version = 1, index = 7 }}"),
        format!("{SPAN_V4}\nerspan = {{ session = 5, version = 2, hwid = 1 }}\nttl = 9"),
        format!("{v6}\nerspan = {{ session = 5, version = 1 }}"),
    ] {
        let cfg = mirror_config(
            &span,
            "[[mirror]]\nport = \"inside\"\ndirection = \"both\"\ntunnel = \"span\"",
            true,
        );
        let r = mirror_rig(&cfg);
        let tables = r.gw.tables();
        let t = &tables.tunnels[SPAN as usize];
        assert!(t.erspan_tx.is_some() && t.resolved, "{span}");
        assert_eq!(t.fast, 0, "{span}");
        let ip = &tables.tunnels[0];
        assert_eq!(ip.fast & fast::ENCAP_MASK, fast::ENCAP4_PLAIN);
        assert_ne!(ip.fast & fast::DECAP, 0);
    }
}

#[test]
fn type_iii_copies_carry_the_timestamp_direction_hwid_and_bso() {
    let cfg = mirror_config(
        &format!("{SPAN_V4}\nerspan = {{ session = 1023, version = 2, hwid = 42 }}"),
        "[[mirror]]\nport = \"inside\"\ndirection = \"both\"\ntunnel = \"span\"",
        true,
    );
    let mut r = mirror_rig(&cfg);
    // TSC 1000 is Unix time 1_700_000_000.0000 s; the round below is 2.5 s later.
    let wall = 1_700_000_000u64 * 10_000;
    r.gw.set_wall_clock(1_000, wall);
    Processor::<VecBuf>::begin_burst(&mut r.gw, 1_000 + 2_500_000_000);
    let short = frame(2, 0);
    assert!(short.len() < 60);
    let frames = vec![frame(100, 0x20), short, tagged(1600)];
    assert!(frames[2].len() > 1514);
    for (dir, d_bit, seq0) in [(MirrorDir::Rx, 0, 0u32), (MirrorDir::Tx, 1, 3)] {
        let copies = r.mirror(&frames, INSIDE, dir);
        assert_eq!(copies.len(), 3);
        for (i, ((_, p), f)) in copies.iter().zip(&frames).enumerate() {
            let (proto, seq, at) = outer_v4(p);
            assert_eq!(proto, 0x22eb, "type III");
            assert_eq!(
                seq,
                seq0 + i as u32,
                "one sequence for both directions of the session"
            );
            let (w0, w1) = (be16(p, at), be16(p, at + 2));
            assert_eq!(w0 >> 12, 2, "version 2");
            assert_eq!(w1 & 0x3ff, 1023);
            let bso = (w1 >> 11) & 3;
            assert_eq!(bso, [0, 1, 2][i], "BSO: good, short, oversized");
            assert_eq!(w0 & 0xfff, if i == 2 { 300 } else { 0 }, "VLAN");
            assert_eq!(w1 >> 13, [1, 0, 5][i], "COS: precedence, none, PCP");
            assert_eq!(
                be32(p, at + 4) as u64,
                (wall + 25_000) & 0xffff_ffff,
                "timestamp in 100 us"
            );
            assert_eq!(be16(p, at + 8), 0, "SGT");
            let fl = be16(p, at + 10);
            assert_eq!(fl >> 15, 1, "P");
            assert_eq!((fl >> 10) & 0x1f, 0, "frame type Ethernet");
            assert_eq!((fl >> 4) & 0x3f, 42, "hwid");
            assert_eq!((fl >> 3) & 1, d_bit, "direction");
            assert_eq!((fl >> 1) & 3, 0, "granularity 100 us");
            assert_eq!(fl & 1, 0, "no platform subheader");
            // The tunnel MTU (1500 - 40) cuts the oversized one.
            assert_eq!(&p[at + 12..], &f[..f.len().min(1460)]);
        }
    }
}

#[test]
fn frames_longer_than_the_tunnel_mtu_are_cut_and_flagged() {
    let cfg = mirror_config(
        &format!("{SPAN_V4}\nerspan = {{ session = 9, version = 1 }}\nmtu = 600"),
        "[[mirror]]\nport = \"inside\"\ntunnel = \"span\"",
        true,
    );
    let mut r = mirror_rig(&cfg);
    let frames = vec![frame(1000, 0), frame(600 - 14 - 20 - 8, 0)];
    assert_eq!(frames[1].len(), 600);
    let copies = r.mirror(&frames, INSIDE, MirrorDir::Rx);
    let (tag, p) = &copies[0];
    assert!(tag.truncated);
    assert_eq!(
        tag.bytes as usize,
        frames[0].len(),
        "bytes counts the frame as captured"
    );
    let (_, _, at) = outer_v4(p);
    assert_ne!(be16(p, at + 2) & 0x0400, 0, "T bit");
    assert_eq!(&p[at + 8..], &frames[0][..600]);
    assert_eq!(
        p.len(),
        14 + 20 + 8 + 8 + 600,
        "the outer packet is the port MTU's at most"
    );
    let (tag, p) = &copies[1];
    assert!(!tag.truncated);
    assert_eq!(
        &p[50..],
        &frames[1][..],
        "a frame of exactly the MTU is whole"
    );
}

#[test]
fn an_ipv6_outer_session_sends_ipv6() {
    let cfg = mirror_config(
        "local = \"2001:db8:ffff::1\"\nremote = \"2001:db8:eeee::50\"\nerspan = { session = 5, version = 1 }\nttl = 9\ntos = 0x20",
        "[[mirror]]\nport = \"outside\"\ndirection = \"tx\"\ntunnel = \"span\"",
        true,
    );
    let mut r = mirror_rig(&cfg);
    let f = frame(50, 0);
    let copies = r.mirror(std::slice::from_ref(&f), OUTSIDE, MirrorDir::Tx);
    let (tag, p) = &copies[0];
    assert_eq!(tag.out as usize, OUTSIDE);
    assert_eq!(be16(p, 12), 0x86dd);
    let ip = &p[14..54];
    assert_eq!(ip[0] >> 4, 6);
    assert_eq!((be16(ip, 0) >> 4) as u8, 0x20, "traffic class from tos");
    assert_eq!(usize::from(be16(ip, 4)), p.len() - 54, "payload length");
    assert_eq!((ip[6], ip[7]), (47, 9), "GRE, hop limit from ttl");
    assert_eq!(&ip[8..24], &v6("2001:db8:ffff::1"));
    assert_eq!(&ip[24..40], &v6("2001:db8:eeee::50"));
    assert_eq!((be16(p, 54), be16(p, 56)), (0x1000, 0x88be));
    assert_eq!(&p[54 + 8 + 8..], &f[..]);
}

#[test]
fn copies_that_cannot_be_made_are_counted_not_held() {
    let cfg = mirror_config(
        &format!("{SPAN_V4}\nerspan = {{ session = 9, version = 1 }}"),
        "[[mirror]]\nport = \"inside\"\ndirection = \"both\"\ntunnel = \"span\"",
        false,
    );
    let mut r = mirror_rig(&cfg);
    let frames = vec![frame(10, 0), frame(20, 0)];
    // The next hop is not resolved: nothing is copied, resolution is asked for.
    assert!(r.mirror(&frames, INSIDE, MirrorDir::Rx).is_empty());
    assert_eq!(r.c.mirrors[0].no_neighbor, 2);
    let mut asked = false;
    while let Some(e) = r.shared.events.pop() {
        asked |=
            matches!(e, Event::Resolve { port: OUTSIDE, ip } if ip.to_string() == "192.0.2.254");
    }
    assert!(asked, "the next hop is resolved like any tunnel's");
    // Resolved: a loop that takes the first copy and not the second counts the second as queue_full.
    let cfg = mirror_config(
        &format!("{SPAN_V4}\nerspan = {{ session = 9, version = 1 }}"),
        "[[mirror]]\nport = \"inside\"\ndirection = \"both\"\ntunnel = \"span\"",
        true,
    );
    let mut r = mirror_rig(&cfg);
    let copies = r.mirror_with(&frames, INSIDE, MirrorDir::Rx, |n| n == 0);
    assert_eq!(copies.len(), 1);
    assert_eq!((r.c.mirrors[0].queue_full, r.c.mirrors[0].no_mbuf), (1, 0));
    // The refused copy still took its sequence number: the probe sees the gap where a copy was lost.
    let copies = r.mirror(&frames[..1], INSIDE, MirrorDir::Rx);
    assert_eq!(outer_v4(&copies[0].1).1, 2);
}

#[test]
fn a_mirror_only_tunnel_drops_what_it_receives_and_a_far_end_delivers_the_copy_unchanged() {
    let cfg = mirror_config(
        &format!("{SPAN_V4}\nerspan = {{ session = 77, version = 2, hwid = 1 }}"),
        "[[mirror]]\nport = \"inside\"\ntunnel = \"span\"",
        true,
    );
    let mut r = mirror_rig(&cfg);
    let f = tagged(300);
    let copies = r.mirror(std::slice::from_ref(&f), INSIDE, MirrorDir::Rx);
    let copy = copies[0].1.clone();

    // The same packet arriving at the sender (from the session's peer): it has no deliver port.
    let mut back = copy.clone();
    back[..6].copy_from_slice(&OUT_MAC);
    back[6..12].copy_from_slice(&GW_MAC);
    // Swap the outer addresses (the checksum is unchanged by a swap of two words).
    let (src, dst) = (back[26..30].to_vec(), back[30..34].to_vec());
    back[26..30].copy_from_slice(&dst);
    back[30..34].copy_from_slice(&src);
    let mut b = VecBuf::new(&back);
    assert_eq!(
        r.gw.handle(&mut b, OUTSIDE, &mut r.c),
        Verdict::Drop(DropReason::ErspanNoDeliver)
    );

    // A far end at 198.51.100.50 whose erspan tunnel delivers session 77 to its l2 port "probe".
    let far = Config::from_str_named(
        &format!(
            r#"
{EAL_ONE_WORKER}
[[port]]
name = "outside"
device = "net_null0"
address = "198.51.100.50/24"
mac = "02:00:00:00:00:fe"
[[port]]
name = "probe"
device = "net_null1"
role = "l2"
[[tunnel]]
name = "from-span"
mode = "erspan"
local = "198.51.100.50"
remote = "192.0.2.1"
erspan = {{ session = 77 }}
deliver = "probe"
[[route]]
prefix = "0.0.0.0/0"
via = "198.51.100.1"
port = "outside"
"#
        ),
        "far-end",
    )
    .unwrap();
    let mut cp =
        ControlPlane::new(&far, &[GW_MAC, [2, 0, 0, 0, 0, 0x33]], Instant::now(), 1).unwrap();
    let mut gw: Gateway<VecBuf> = Gateway::new(0, 1, Shared::new(cp.tables(), 1), TSC_HZ);
    Processor::<VecBuf>::begin_burst(&mut gw, 1_000);
    let mut c = Counters::new(2, 1);
    let mut b = VecBuf::new(&copy);
    assert_eq!(gw.handle(&mut b, 0, &mut c), Verdict::Tx(1));
    assert_eq!(
        b.to_vec(),
        f,
        "greway's ERSPAN in gives back greway's ERSPAN out's frame"
    );
    assert_eq!(c.tunnels[0].decap, 1);
}

/// A buffer whose pool is empty: every copy fails as `no_mbuf`.
#[derive(Debug)]
struct NoPool(VecBuf);

impl PacketBuf for NoPool {
    fn data(&self) -> &[u8] {
        self.0.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }
    fn pkt_len(&self) -> usize {
        self.0.pkt_len()
    }
    fn headroom(&self) -> usize {
        self.0.headroom()
    }
    fn tailroom(&self) -> usize {
        self.0.tailroom()
    }
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        self.0.prepend(n)
    }
    fn adj(&mut self, n: usize) -> bool {
        self.0.adj(n)
    }
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        self.0.append(n)
    }
    fn trim(&mut self, n: usize) -> bool {
        self.0.trim(n)
    }
}

#[test]
fn no_buffer_for_a_copy_is_counted_and_the_original_is_untouched() {
    let cfg = mirror_config(
        &format!("{SPAN_V4}\nerspan = {{ session = 9, version = 1 }}"),
        "[[mirror]]\nport = \"inside\"\ntunnel = \"span\"",
        true,
    );
    let mut cp = ControlPlane::new(&cfg, &[IN_MAC, OUT_MAC], Instant::now(), 1).unwrap();
    let mut gw: Gateway<NoPool> = Gateway::new(0, 1, Shared::new(cp.tables(), 1), TSC_HZ);
    Processor::<NoPool>::begin_burst(&mut gw, 1_000);
    let mut c = Counters::new(2, 2);
    let f = frame(30, 0);
    let pkts = [NoPool(VecBuf::new(&f)), NoPool(VecBuf::new(&f))];
    let mut emitted = 0;
    Processor::<NoPool>::mirror(
        &mut gw,
        &pkts,
        INSIDE,
        MirrorDir::Rx,
        &mut |_, _| {
            emitted += 1;
            true
        },
        &mut c,
    );
    assert_eq!(emitted, 0);
    assert_eq!(c.mirrors[0].no_mbuf, 2);
    assert_eq!(pkts[0].0.to_vec(), f);
    // The original is forwarded as without a mirror.
    let mut p = NoPool(VecBuf::new(&inside_v4([10, 20, 0, 9], 64, 0, false, 30)));
    assert_eq!(gw.handle(&mut p, INSIDE, &mut c), Verdict::Tx(OUTSIDE));
}
