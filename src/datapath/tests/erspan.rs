//! ERSPAN termination (`mode = "erspan"`) and l2 ports on byte buffers: the mirrored frame of the tunnel's
//! session leaves the `deliver` port byte for byte (types I, II and III); other sessions, bad versions and
//! short headers are dropped and counted; frames received on an l2 port are not routed. The ERSPAN headers are
//! written here by hand, bit by bit from the draft's layout, not with the `wire` Reprs under test.
use super::rig::*;
use crate::buf::VecBuf;
use crate::config::Config;
use crate::control::plane::ControlPlane;
use crate::datapath::gateway::{Gateway, Shared};
use crate::datapath::testkit::{two_ports, DEFAULT_ROUTE};
use crate::datapath::{Processor, Verdict};
use crate::stats::{Counters, DropReason};
use std::time::Instant;

const MIRROR: usize = 2;
/// Tunnel indices in [`erspan_config`].
const SPAN: usize = 0;
const IP_TUNNEL: usize = 1;

fn erspan_config() -> Config {
    let text = format!(
        r#"
{ports}
[[port]]
name = "probe"
device = "net_null2"
role = "l2"
[[tunnel]]
name = "span"
mode = "erspan"
local = "192.0.2.1"
remote = "198.51.100.50"
erspan = {{ session = 55 }}
deliver = "probe"
[[tunnel]]
name = "t1"
local = "192.0.2.1"
remote = "198.51.100.7"
routes = ["10.20.0.0/16"]
[[neighbor]]
port = "inside"
ip = "10.0.0.2"
mac = "02:00:00:00:00:0a"
{DEFAULT_ROUTE}
"#,
        ports = two_ports(r#""10.0.0.1/24""#, r#""192.0.2.1/24""#)
    );
    Config::from_str_named(&text, "erspan-test").unwrap_or_else(|e| panic!("{e}"))
}

struct ErspanRig {
    gw: Gateway<VecBuf>,
    c: Counters,
}

fn erspan_rig(fast: bool) -> ErspanRig {
    let cfg = erspan_config();
    let mut cp = ControlPlane::new(
        &cfg,
        &[IN_MAC, OUT_MAC, [2, 0, 0, 0, 0, 3]],
        Instant::now(),
        1,
    )
    .unwrap();
    let shared = Shared::new(cp.tables(), 1);
    let mut gw = Gateway::new(0, 1, shared, 1_000_000_000);
    gw.set_fast_path(fast);
    Processor::<VecBuf>::begin_burst(&mut gw, 1_000);
    ErspanRig {
        gw,
        c: Counters::new(3, cfg.tunnels.len()),
    }
}

impl ErspanRig {
    fn run(&mut self, frame: &[u8], port: usize) -> (Verdict, Vec<u8>) {
        let mut b = VecBuf::new(frame);
        let v = self.gw.handle(&mut b, port, &mut self.c);
        (v, b.to_vec())
    }
}

/// A mirrored frame: a tagged Ethernet frame with an IPv4 packet, as a switch would capture it.
fn mirrored(n: usize) -> Vec<u8> {
    let mut f = vec![
        0x00, 0x50, 0x56, 0xac, 0x18, 0xa0, 0xf8, 0xc2, 0x88, 0x90, 0xd2, 0x7b,
    ];
    f.extend_from_slice(&[0x81, 0x00, 0x00, 0x14, 0x08, 0x00]);
    f.extend(ipv4(
        [10, 29, 11, 1],
        [10, 29, 20, 21],
        17,
        63,
        0,
        true,
        &udp_payload(n),
    ));
    f
}

/// GRE (flags, protocol, optional sequence number) + `hdr` + `frame`, from `src` to 192.0.2.1, with `pad` bytes
/// of Ethernet padding after it.
fn erspan_frame(
    src: [u8; 4],
    proto: u16,
    seq: Option<u32>,
    hdr: &[u8],
    frame: &[u8],
    pad: usize,
) -> Vec<u8> {
    let mut g = gre_hdr(false, None, seq, proto, &[]);
    g.extend_from_slice(hdr);
    g.extend_from_slice(frame);
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    f.extend(ipv4(src, [192, 0, 2, 1], 47, 60, 0, false, &g));
    f.resize(f.len() + pad, 0);
    f
}

const PEER: [u8; 4] = [198, 51, 100, 50];

/// Type II: version 1, VLAN 20, COS 6, En 0, T 0, `session`, index 32760.
fn type_ii(version: u16, session: u16) -> Vec<u8> {
    let mut h = (version << 12 | 20).to_be_bytes().to_vec();
    h.extend_from_slice(&(6u16 << 13 | session).to_be_bytes());
    h.extend_from_slice(&32760u32.to_be_bytes());
    h
}

/// Type III: version 2, `session`, a timestamp, SGT 0, frame type `ft`, hwid 5, granularity 3, with the
/// platform-specific subheader (O flag) when `platform`.
fn type_iii(session: u16, ft: u16, platform: bool) -> Vec<u8> {
    let mut h = (2u16 << 12 | 20).to_be_bytes().to_vec();
    h.extend_from_slice(&session.to_be_bytes());
    h.extend_from_slice(&0xa359_5bffu32.to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    let flags = ft << 10 | 5 << 4 | 3 << 1 | u16::from(platform);
    h.extend_from_slice(&flags.to_be_bytes());
    if platform {
        h.extend_from_slice(&[0x0c, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
    }
    h
}

#[test]
fn types_i_ii_and_iii_of_the_session_leave_the_deliver_port_byte_for_byte() {
    for fast in [true, false] {
        let mut r = erspan_rig(fast);
        let inner = mirrored(30);
        let cases = [
            (
                "type I",
                erspan_frame(PEER, 0x88be, None, &[], &mirrored(30), 0),
            ),
            (
                "type II",
                erspan_frame(PEER, 0x88be, Some(7), &type_ii(1, 55), &inner, 0),
            ),
            (
                "type III",
                erspan_frame(PEER, 0x22eb, None, &type_iii(55, 0, false), &inner, 0),
            ),
            (
                "type III + subheader",
                erspan_frame(PEER, 0x22eb, None, &type_iii(55, 0, true), &inner, 0),
            ),
            (
                "padded",
                erspan_frame(PEER, 0x22eb, None, &type_iii(55, 0, false), &inner, 9),
            ),
        ];
        let mut n = 0;
        for (what, f) in cases {
            let (v, out) = r.run(&f, OUTSIDE);
            if what == "type I" {
                // Type I has no session: the tunnel's session must be 0 to take it; this one is 55.
                assert_eq!(
                    v,
                    Verdict::Drop(DropReason::ErspanSessionMismatch),
                    "{what}"
                );
                continue;
            }
            n += 1;
            assert_eq!(v, Verdict::Tx(MIRROR), "{what}");
            assert_eq!(out, inner, "{what}: the mirrored frame unchanged");
        }
        assert_eq!(r.c.tunnels[SPAN].decap, n);
        assert_eq!(r.c.tunnels[SPAN].decap_bytes, n * inner.len() as u64);
        assert_eq!(r.c.tunnels[SPAN].drops, 1);
    }
}

#[test]
fn type_i_is_session_zero() {
    let cfg_text = erspan_config();
    let mut cfg = cfg_text;
    cfg.tunnels[SPAN].erspan.as_mut().unwrap().session = 0;
    let mut cp = ControlPlane::new(
        &cfg,
        &[IN_MAC, OUT_MAC, [2, 0, 0, 0, 0, 3]],
        Instant::now(),
        1,
    )
    .unwrap();
    let shared = Shared::new(cp.tables(), 1);
    let mut gw = Gateway::<VecBuf>::new(0, 1, shared, 1_000_000_000);
    Processor::<VecBuf>::begin_burst(&mut gw, 1_000);
    let mut c = Counters::new(3, 2);
    let inner = mirrored(40);
    let mut b = VecBuf::new(&erspan_frame(PEER, 0x88be, None, &[], &inner, 0));
    assert_eq!(gw.handle(&mut b, OUTSIDE, &mut c), Verdict::Tx(MIRROR));
    assert_eq!(b.to_vec(), inner);
    let mut b = VecBuf::new(&erspan_frame(
        PEER,
        0x88be,
        Some(1),
        &type_ii(1, 55),
        &inner,
        0,
    ));
    assert_eq!(
        gw.handle(&mut b, OUTSIDE, &mut c),
        Verdict::Drop(DropReason::ErspanSessionMismatch)
    );
    assert_eq!((c.tunnels[SPAN].decap, c.tunnels[SPAN].drops), (1, 1));
}

#[test]
fn other_sessions_bad_versions_and_short_headers_are_dropped_and_counted() {
    let inner = mirrored(30);
    let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
        (
            "type II, session 56",
            erspan_frame(PEER, 0x88be, Some(1), &type_ii(1, 56), &inner, 0),
            DropReason::ErspanSessionMismatch,
        ),
        (
            "type III, session 54",
            erspan_frame(PEER, 0x22eb, None, &type_iii(54, 0, false), &inner, 0),
            DropReason::ErspanSessionMismatch,
        ),
        (
            "type II header with version 2",
            erspan_frame(PEER, 0x88be, Some(1), &type_ii(2, 55), &inner, 0),
            DropReason::ErspanMalformed,
        ),
        (
            "type III header with version 1",
            erspan_frame(PEER, 0x22eb, None, &type_ii(1, 55), &inner, 0),
            DropReason::ErspanMalformed,
        ),
        (
            "type II header cut short",
            erspan_frame(PEER, 0x88be, Some(1), &type_ii(1, 55)[..5], &[], 0),
            DropReason::ErspanMalformed,
        ),
        (
            "type III with O set and no subheader",
            erspan_frame(PEER, 0x22eb, None, &type_iii(55, 0, true)[..14], &[], 0),
            DropReason::ErspanMalformed,
        ),
        (
            "type III frame type IP",
            erspan_frame(PEER, 0x22eb, None, &type_iii(55, 2, false), &inner[18..], 0),
            DropReason::ErspanMalformed,
        ),
        (
            "less than an Ethernet header inside",
            erspan_frame(PEER, 0x88be, Some(1), &type_ii(1, 55), &inner[..13], 0),
            DropReason::ErspanMalformed,
        ),
        (
            "IPv4 over GRE from the ERSPAN peer",
            erspan_frame(
                PEER,
                0x0800,
                None,
                &[],
                &inner_from_remote([10, 0, 0, 2], 30, 0),
                0,
            ),
            DropReason::UnsupportedGreProtocol,
        ),
    ];
    for fast in [true, false] {
        let mut r = erspan_rig(fast);
        for (what, f, want) in &cases {
            assert_eq!(
                r.run(f, OUTSIDE).0,
                Verdict::Drop(*want),
                "{what} (fast path {fast})"
            );
        }
        assert_eq!(r.c.tunnels[SPAN].drops, cases.len() as u64);
        assert_eq!(r.c.tunnels[SPAN].decap, 0);
    }
}

#[test]
fn erspan_from_a_stranger_or_to_an_ip_tunnel_is_not_delivered() {
    for fast in [true, false] {
        let mut r = erspan_rig(fast);
        let inner = mirrored(30);
        let stranger = erspan_frame(
            [198, 51, 100, 51],
            0x88be,
            Some(1),
            &type_ii(1, 55),
            &inner,
            0,
        );
        assert_eq!(
            r.run(&stranger, OUTSIDE).0,
            Verdict::Drop(DropReason::UnknownTunnel)
        );
        let to_ip = erspan_frame(
            [198, 51, 100, 7],
            0x88be,
            Some(1),
            &type_ii(1, 55),
            &inner,
            0,
        );
        assert_eq!(
            r.run(&to_ip, OUTSIDE).0,
            Verdict::Drop(DropReason::UnsupportedGreProtocol)
        );
        assert_eq!(r.c.tunnels[IP_TUNNEL].drops, 1);
        // The IP tunnel next to it still decapsulates (on the fast path when it is on).
        let ip = erspan_frame(
            [198, 51, 100, 7],
            0x0800,
            None,
            &[],
            &inner_from_remote([10, 0, 0, 2], 30, 0),
            0,
        );
        assert_eq!(r.run(&ip, OUTSIDE).0, Verdict::Tx(INSIDE));
        assert_eq!(r.c.general_path, if fast { 2 } else { 3 });
    }
}

#[test]
fn frames_received_on_an_l2_port_are_not_routed() {
    for fast in [true, false] {
        let mut r = erspan_rig(fast);
        let inner = mirrored(30);
        // Whatever it carries: GRE to our address, IP to a tunnel route, ARP for our address.
        let gre = erspan_frame(PEER, 0x22eb, None, &type_iii(55, 0, false), &inner, 0);
        let mut to_tunnel = eth(IN_MAC, HOST_MAC, 0x0800);
        to_tunnel.extend(ipv4(
            [10, 0, 0, 2],
            [10, 20, 0, 5],
            17,
            64,
            0,
            false,
            &udp_payload(20),
        ));
        for f in [gre, to_tunnel, inner] {
            assert_eq!(r.run(&f, MIRROR).0, Verdict::Drop(DropReason::L2NoBridge));
        }
        assert_eq!(r.c.tunnels[SPAN].decap + r.c.tunnels[IP_TUNNEL].encap, 0);
    }
}
