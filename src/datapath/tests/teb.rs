//! TEB tunnels (`mode = "teb"`) and bridges (`[[bridge]]`) on byte buffers: learning, forwarding, flooding with
//! copies, no reflection, VLAN members, the bounded MAC table, pseudowires, the MTU of Ethernet payloads, and
//! the GRE options of TEB tunnels. Frames are built here by hand; the outer headers are checked field by field
//! against an independent checksum.
use super::rig::*;
use crate::buf::VecBuf;
use crate::config::Config;
use crate::control::plane::ControlPlane;
use crate::datapath::gateway::{Gateway, Shared};
use crate::datapath::testkit::{two_ports, DEFAULT_ROUTE};
use crate::datapath::{plan, Processor, Verdict};
use crate::stats::{Counters, DropReason};
use std::time::Instant;

const LAN: usize = 2;
const TRUNK: usize = 3;
/// Bridges in [`teb_config`].
const OFFICE: usize = 0;
const SMALL: usize = 1;
const PW: usize = 2;
/// Tunnels.
const L2B: usize = 0;
const L2C: usize = 1;
const L2D: usize = 2;

const TSC_HZ: u64 = 1_000_000_000;

fn teb_config() -> Config {
    teb_config_with("")
}

/// [`teb_config`] with `extra` at its end.
fn teb_config_with(extra: &str) -> Config {
    let text = format!(
        r#"
{ports}
[[port]]
name = "lan"
device = "net_null2"
role = "l2"
[[port]]
name = "trunk"
device = "net_null3"
role = "l2"
[[tunnel]]
name = "l2-b"
mode = "teb"
local = "192.0.2.1"
remote = "198.51.100.7"
key = 7
[[tunnel]]
name = "l2-c"
mode = "teb"
local = "192.0.2.1"
remote = "198.51.100.8"
checksum = true
sequence = true
ttl = 9
tos = 0x20
[[tunnel]]
name = "l2-d"
mode = "teb"
local = "192.0.2.1"
remote = "198.51.100.9"
[[bridge]]
name = "office"
members = ["lan", "trunk.10", "l2-b"]
[[bridge]]
name = "small"
members = ["trunk.30", "l2-d"]
mac_table_size = 2
aging_s = 60
[[bridge]]
name = "pw"
members = ["trunk.20", "l2-c"]
learning = false
{DEFAULT_ROUTE}
{extra}
"#,
        ports = two_ports(
            r#""10.0.0.1/24""#,
            r#"["192.0.2.1/24", "2001:db8:ffff::1/64"]"#
        )
    );
    Config::from_str_named(&text, "teb-test").unwrap_or_else(|e| panic!("{e}"))
}

struct TebRig {
    cp: ControlPlane,
    gw: Gateway<VecBuf>,
    c: Counters,
    now: u64,
}

fn teb_rig() -> TebRig {
    teb_rig_with(teb_config())
}

fn teb_rig_with(cfg: Config) -> TebRig {
    let mut cp = ControlPlane::new(
        &cfg,
        &[IN_MAC, OUT_MAC, [2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 4]],
        Instant::now(),
        1,
    )
    .unwrap();
    let shared = Shared::new(cp.tables(), 1);
    let mut gw = Gateway::new(0, 1, shared, TSC_HZ);
    let now = 5 * TSC_HZ;
    Processor::<VecBuf>::begin_burst(&mut gw, now);
    TebRig {
        cp,
        gw,
        c: Counters::new(4, cfg.tunnels.len()),
        now,
    }
}

impl TebRig {
    fn run(&mut self, frame: &[u8], port: usize) -> (Verdict, Vec<u8>) {
        let mut b = VecBuf::new(frame);
        let v = self.gw.handle(&mut b, port, &mut self.c);
        (v, b.to_vec())
    }

    /// The copies flooding queued, as the end of the poll round sends them.
    fn copies(&mut self) -> Vec<(usize, Vec<u8>)> {
        deferred(&mut self.gw, self.now, &mut self.c)
    }

    /// Move the clock on by `s` seconds.
    fn later(&mut self, s: u64) {
        self.now += s * TSC_HZ;
        Processor::<VecBuf>::begin_burst(&mut self.gw, self.now);
    }
}

const A: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
const B: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 2];
const C: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 3];

/// An untagged Ethernet frame from `src` to `dst` carrying IPv4/UDP with `n` payload bytes, TOS 0x48, TTL 33
/// (the tunnels' outer TOS inherits it; their TTL is 64, or 9 for "l2-c").
fn frame(dst: [u8; 6], src: [u8; 6], n: usize) -> Vec<u8> {
    let mut f = eth(dst, src, 0x0800);
    f.extend(ipv4(
        [10, 9, 0, 1],
        [10, 9, 0, 2],
        17,
        33,
        0x48,
        false,
        &udp_payload(n),
    ));
    f
}

/// `f` with an 802.1Q tag of VLAN `vid` (priority 0).
fn tagged(f: &[u8], vid: u16) -> Vec<u8> {
    let mut t = f[..12].to_vec();
    t.extend_from_slice(&[0x81, 0x00]);
    t.extend_from_slice(&vid.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

/// A TEB packet from `peer` to 192.0.2.1 with GRE header `gre` in front of `inner`.
fn from_peer(peer: [u8; 4], gre: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut g = gre.to_vec();
    g.extend_from_slice(inner);
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    f.extend(ipv4(peer, [192, 0, 2, 1], 47, 60, 0, false, &g));
    f
}

const PEER_B: [u8; 4] = [198, 51, 100, 7];
const PEER_C: [u8; 4] = [198, 51, 100, 8];
const PEER_D: [u8; 4] = [198, 51, 100, 9];

/// The encapsulated frame `out` (the verdict's bytes) checked field by field: outer Ethernet to the next hop,
/// IPv4 from 192.0.2.1 to `peer` with DF, `ttl`, `tos` and a valid checksum, then the GRE header `gre` (as
/// sent), then `inner` byte for byte. Returns the GRE header and payload.
fn check_encap(
    out: &[u8],
    peer: [u8; 4],
    ttl: u8,
    tos: u8,
    gre_len: usize,
    inner: &[u8],
) -> Vec<u8> {
    assert_eq!(&out[..14], &eth(GW_MAC, OUT_MAC, 0x0800)[..]);
    let ip = &out[14..34];
    assert_eq!(ip[0], 0x45);
    assert_eq!(ip[1], tos, "outer TOS");
    assert_eq!(
        usize::from(u16::from_be_bytes([ip[2], ip[3]])),
        20 + gre_len + inner.len()
    );
    assert_eq!(ip[6] & 0x40, 0x40, "DF");
    assert_eq!((ip[8], ip[9]), (ttl, 47));
    assert_eq!(&ip[12..16], &[192, 0, 2, 1]);
    assert_eq!(&ip[16..20], &peer);
    assert_eq!(csum(ip), 0, "outer IPv4 header checksum");
    assert_eq!(
        &out[34 + gre_len..],
        inner,
        "the inner frame, byte for byte"
    );
    assert_eq!(&out[36..38], &[0x65, 0x58], "GRE protocol type TEB");
    out[34..].to_vec()
}

#[test]
fn unknown_unicast_is_flooded_to_every_other_member_and_goes_into_the_tunnel_byte_for_byte() {
    let mut r = teb_rig();
    let f = frame(B, A, 40);
    let (v, out) = r.run(&f, LAN);
    // The last member (the tunnel) gets the frame itself; the VLAN member a copy, tagged.
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    let gre = check_encap(&out, PEER_B, 64, 0x48, 8, &f);
    assert_eq!(&gre[..8], &[0x20, 0x00, 0x65, 0x58, 0, 0, 0, 7]);
    assert_eq!(r.copies(), vec![(TRUNK, tagged(&f, 10))]);
    let b = r.c.bridges[OFFICE];
    assert_eq!(
        (b.rx, b.flooded, b.flood_copies, b.learned, b.forwarded),
        (1, 1, 1, 1, 0)
    );
    assert_eq!(r.c.tunnels[L2B].encap, 1);
    assert_eq!(r.c.tunnels[L2B].encap_bytes, f.len() as u64);
}

#[test]
fn a_learned_mac_gets_its_frames_alone_both_ways() {
    let mut r = teb_rig();
    r.run(&frame(B, A, 10), LAN);
    r.copies();
    // B answers through the tunnel: A is known on "lan", the frame leaves it exactly as B's peer sent it.
    let reply = frame(A, B, 64);
    let (v, out) = r.run(
        &from_peer(PEER_B, &gre_hdr(false, Some(7), None, 0x6558, &[]), &reply),
        OUTSIDE,
    );
    assert_eq!(v, Verdict::Tx(LAN));
    assert_eq!(out, reply);
    assert_eq!(r.c.tunnels[L2B].decap, 1);
    // And now B is known on the tunnel: A's next frame goes there alone, no copies.
    let f = frame(B, A, 20);
    let (v, out) = r.run(&f, LAN);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    check_encap(&out, PEER_B, 64, 0x48, 8, &f);
    assert!(r.copies().is_empty());
    let b = r.c.bridges[OFFICE];
    assert_eq!((b.forwarded, b.flooded, b.learned), (2, 1, 2));
}

#[test]
fn a_vlan_member_loses_its_tag_inside_the_bridge_and_gets_it_back_outside() {
    let mut r = teb_rig();
    // B known on the tunnel.
    r.run(
        &from_peer(
            PEER_B,
            &gre_hdr(false, Some(7), None, 0x6558, &[]),
            &frame(A, B, 8),
        ),
        OUTSIDE,
    );
    r.copies();
    // C on VLAN 10 of the trunk to B: the tunnel carries the frame untagged.
    let f = frame(B, C, 30);
    let (v, out) = r.run(&tagged(&f, 10), TRUNK);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    check_encap(&out, PEER_B, 64, 0x48, 8, &f);
    // B to C: out of the trunk with VLAN 10's tag.
    let back = frame(C, B, 50);
    let (v, out) = r.run(
        &from_peer(PEER_B, &gre_hdr(false, Some(7), None, 0x6558, &[]), &back),
        OUTSIDE,
    );
    assert_eq!(v, Verdict::Tx(TRUNK));
    assert_eq!(out, tagged(&back, 10));
    // A tagged frame arriving through the tunnel (the far side's VLANs) is carried as it is.
    let inner_tagged = tagged(&frame(C, B, 5), 77);
    let (v, out) = r.run(
        &from_peer(
            PEER_B,
            &gre_hdr(false, Some(7), None, 0x6558, &[]),
            &inner_tagged,
        ),
        OUTSIDE,
    );
    assert_eq!(v, Verdict::Tx(TRUNK));
    assert_eq!(out, tagged(&inner_tagged, 10));
}

#[test]
fn nothing_goes_back_to_the_member_it_came_from() {
    let mut r = teb_rig();
    r.run(&frame(B, A, 10), LAN);
    r.copies();
    // A frame to A from the member A is on: not sent back.
    assert_eq!(
        r.run(&frame(A, C, 10), LAN).0,
        Verdict::Drop(DropReason::BridgeSameMember)
    );
    assert!(r.copies().is_empty());
    // A broadcast from the tunnel: to "lan" and to VLAN 10 of the trunk, never into the tunnel again.
    let bc = frame([0xff; 6], B, 12);
    let (v, out) = r.run(
        &from_peer(PEER_B, &gre_hdr(false, Some(7), None, 0x6558, &[]), &bc),
        OUTSIDE,
    );
    assert_eq!(v, Verdict::Tx(TRUNK));
    assert_eq!(out, tagged(&bc, 10));
    assert_eq!(r.copies(), vec![(LAN, bc.clone())]);
    // A multicast from "lan": the trunk (tagged) and the tunnel.
    let mc = frame([0x01, 0x00, 0x5e, 0, 0, 1], A, 12);
    let (v, _) = r.run(&mc, LAN);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    assert_eq!(r.copies(), vec![(TRUNK, tagged(&mc, 10))]);
}

#[test]
fn a_full_mac_table_learns_nothing_more_counts_it_and_floods_to_the_unlearned() {
    let mut r = teb_rig();
    let from_trunk = |r: &mut TebRig, src: [u8; 6]| r.run(&tagged(&frame(B, src, 10), 30), TRUNK).0;
    for src in [A, C, [0x02, 0xdd, 0, 0, 0, 4]] {
        assert_eq!(from_trunk(&mut r, src), Verdict::Tx(OUTSIDE));
    }
    let b = r.c.bridges[SMALL];
    assert_eq!((b.learned, b.table_full), (2, 1));
    assert_eq!(r.c.tunnels[L2D].encap, 3);
    assert_eq!(r.cp.mac_tables()[SMALL].len(), 2);
    // Frames to the MAC that was not learned are flooded (here: the one other member); to a learned one,
    // forwarded.
    let gre = gre_hdr(false, None, None, 0x6558, &[]);
    r.run(
        &from_peer(PEER_D, &gre, &frame([0x02, 0xdd, 0, 0, 0, 4], B, 10)),
        OUTSIDE,
    );
    r.run(&from_peer(PEER_D, &gre, &frame(A, B, 10)), OUTSIDE);
    let b = r.c.bridges[SMALL];
    // B came through the tunnel: also refused (full).
    assert_eq!((b.flooded, b.forwarded, b.table_full), (4, 1, 3));
    // A minute and a second later the entries are old: no longer used, and the control thread's expiry frees
    // their room for new MACs.
    r.later(61);
    assert_eq!(
        r.cp.mac_tables()[SMALL].expire(greway_datapath::bridge::clock_s(r.now, TSC_HZ)),
        2
    );
    from_trunk(&mut r, [0x02, 0xdd, 0, 0, 0, 4]);
    assert_eq!(r.c.bridges[SMALL].learned, 3);
}

#[test]
fn learning_off_floods_every_frame_a_pseudowire() {
    let mut r = teb_rig();
    let f = frame(B, A, 10);
    for _ in 0..3 {
        let (v, out) = r.run(&tagged(&f, 20), TRUNK);
        assert_eq!(v, Verdict::Tx(OUTSIDE));
        assert_eq!(&out[out.len() - f.len()..], &f[..]);
    }
    let back = frame(A, B, 10);
    for seq in 0..2 {
        let gre = gre_hdr(true, None, Some(seq), 0x6558, &back);
        let (v, out) = r.run(&from_peer(PEER_C, &gre, &back), OUTSIDE);
        assert_eq!(v, Verdict::Tx(TRUNK));
        assert_eq!(out, tagged(&back, 20));
    }
    let b = r.c.bridges[PW];
    assert_eq!(
        (b.flooded, b.forwarded, b.learned, b.flood_copies),
        (5, 0, 0, 0)
    );
    assert!(r.cp.mac_tables()[PW].is_empty());
}

#[test]
fn checksum_sequence_ttl_and_tos_work_on_teb_tunnels_as_on_ip_ones() {
    let mut r = teb_rig();
    let f = frame(B, A, 33);
    for seq in 0..2u32 {
        let (v, out) = r.run(&tagged(&f, 20), TRUNK);
        assert_eq!(v, Verdict::Tx(OUTSIDE));
        // ttl = 9, tos = 0x20 (the inner ECN bits, 0 here, are kept).
        let gre = check_encap(&out, PEER_C, 9, 0x20, 12, &f);
        assert_eq!(&gre[..2], &[0x90, 0x00], "C and S");
        assert_eq!(&gre[8..12], &seq.to_be_bytes());
        assert_eq!(csum(&gre), 0, "GRE checksum over header and frame");
    }
    assert_eq!(r.c.tunnels[L2C].encap, 2);
    // Received: a bad checksum, a missing sequence number, a late one are dropped as for IP.
    let back = frame(A, B, 10);
    let mut bad = gre_hdr(true, None, Some(0), 0x6558, &back);
    bad[4] ^= 1;
    let cases = [
        (bad, DropReason::BadChecksum),
        (
            gre_hdr(true, None, None, 0x6558, &back),
            DropReason::MissingSequence,
        ),
        (
            gre_hdr(false, None, Some(0), 0x6558, &back),
            DropReason::MissingChecksum,
        ),
    ];
    for (gre, why) in cases {
        assert_eq!(
            r.run(&from_peer(PEER_C, &gre, &back), OUTSIDE).0,
            Verdict::Drop(why)
        );
    }
    let good = gre_hdr(true, None, Some(5), 0x6558, &back);
    assert_eq!(
        r.run(&from_peer(PEER_C, &good, &back), OUTSIDE).0,
        Verdict::Tx(TRUNK)
    );
    let late = gre_hdr(true, None, Some(4), 0x6558, &back);
    assert_eq!(
        r.run(&from_peer(PEER_C, &late, &back), OUTSIDE).0,
        Verdict::Drop(DropReason::LateSequence)
    );
}

#[test]
fn frames_over_the_tunnel_mtu_plus_their_ethernet_header_are_dropped_not_fragmented() {
    let mut r = teb_rig();
    // Port MTU 1500 - IPv4 20 - GRE with key 8 - Ethernet 14 = 1458: frames of up to 1472 bytes.
    assert_eq!(r.gw.tables().tunnels[L2B].mtu.get(), 1458);
    let learn_b = from_peer(
        PEER_B,
        &gre_hdr(false, Some(7), None, 0x6558, &[]),
        &frame(A, B, 8),
    );
    r.run(&learn_b, OUTSIDE);
    r.copies();
    let fits = frame(B, A, 1472 - 14 - 28);
    assert_eq!(fits.len(), 1472);
    let (v, out) = r.run(&fits, LAN);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    assert_eq!(out.len(), 14 + 1500);
    let over = frame(B, A, 1473 - 14 - 28);
    assert_eq!(r.run(&over, LAN).0, Verdict::Drop(DropReason::FrameTooBig));
    assert_eq!(r.c.tunnels[L2B].drops, 1);
}

#[test]
fn strangers_bad_sources_and_ip_in_a_teb_tunnel_are_dropped_with_their_reason() {
    let mut r = teb_rig();
    let gre = gre_hdr(false, Some(7), None, 0x6558, &[]);
    let cases: Vec<(Vec<u8>, usize, DropReason)> = vec![
        // A group source address.
        (
            frame(B, [0x03, 0, 0, 0, 0, 1], 10),
            LAN,
            DropReason::BridgeBadSource,
        ),
        (frame(B, [0; 6], 10), LAN, DropReason::BridgeBadSource),
        // The trunk is a member by VLAN only: untagged frames and other VLANs belong to no bridge.
        (frame(B, A, 10), TRUNK, DropReason::L2NoBridge),
        (tagged(&frame(B, A, 10), 99), TRUNK, DropReason::L2NoBridge),
        (frame(B, A, 10)[..13].to_vec(), LAN, DropReason::Truncated),
        // Less than an Ethernet header inside.
        (
            from_peer(PEER_B, &gre, &[1, 2, 3]),
            OUTSIDE,
            DropReason::Truncated,
        ),
        // IP in a TEB tunnel (other than a peer's keepalive).
        (
            from_peer(
                PEER_B,
                &gre_hdr(false, Some(7), None, 0x0800, &[]),
                &inner_from_remote([10, 0, 0, 9], 9, 0),
            ),
            OUTSIDE,
            DropReason::UnsupportedGreProtocol,
        ),
    ];
    for (f, port, why) in cases {
        assert_eq!(r.run(&f, port).0, Verdict::Drop(why), "{f:02x?}");
    }
    assert!(r.copies().is_empty());
}

#[test]
fn bridge_show_lists_mac_member_vlan_and_age() {
    let mut r = teb_rig();
    r.run(&frame(B, A, 10), LAN);
    r.run(&tagged(&frame(B, C, 10), 10), TRUNK);
    r.copies();
    r.later(7);
    let now_s = greway_datapath::bridge::clock_s(r.now, TSC_HZ);
    let j = crate::control::bridges::bridges_json(
        r.cp.config(),
        r.cp.mac_tables(),
        Some("office"),
        now_s,
    )
    .unwrap();
    let office = &j["bridges"][0];
    assert_eq!(office["name"], "office");
    assert_eq!(office["mac_entries"], 2);
    assert_eq!(office["macs"][0]["mac"], "02:aa:00:00:00:01");
    assert_eq!(office["macs"][0]["member"], "lan");
    assert!(office["macs"][0].get("vlan").is_none());
    assert_eq!(office["macs"][0]["age_s"], 7);
    assert_eq!(office["macs"][1]["member"], "trunk.10");
    assert_eq!(office["macs"][1]["vlan"], 10);
    assert!(crate::control::bridges::bridges_json(
        r.cp.config(),
        r.cp.mac_tables(),
        Some("nope"),
        now_s
    )
    .is_err());
}

/// An IPv6 TEB tunnel (`l2-e`, key 9, the peer `outer_gre6` sends from) in a bridge of its own, and a bridge
/// of two TEB tunnels (`l2-f`, key 11, and `l2-g`) and a VLAN, for [`teb_config_with`].
const SIX: &str = r#"
[[tunnel]]
name = "l2-e"
mode = "teb"
local = "2001:db8:ffff::1"
remote = "2001:db8:eeee::7"
key = 9
[[bridge]]
name = "six"
members = ["trunk.40", "l2-e"]
[[tunnel]]
name = "l2-f"
mode = "teb"
local = "192.0.2.1"
remote = "198.51.100.10"
key = 11
[[tunnel]]
name = "l2-g"
mode = "teb"
local = "192.0.2.1"
remote = "198.51.100.11"
[[bridge]]
name = "hub"
members = ["trunk.50", "l2-f", "l2-g"]
[[tunnel]]
name = "ip-h"
local = "192.0.2.1"
remote = "198.51.100.30"
key = 30
[[neighbor]]
port = "inside"
ip = "10.0.0.5"
mac = "02:00:00:00:00:05"
[[neighbor]]
port = "outside"
ip = "2001:db8:ffff::fe"
mac = "02:00:00:00:00:fe"
[[route]]
prefix = "2001:db8:eeee::/48"
via = "2001:db8:ffff::fe"
port = "outside"
"#;

impl TebRig {
    /// A burst as the worker takes it: the fast pass (`fast_burst`), then `process` for each packet it left.
    /// Each packet's verdict and bytes; the pass's byte counts checked against them.
    fn burst(&mut self, frames: &[Vec<u8>], port: usize) -> Vec<(Verdict, Vec<u8>)> {
        let mut bufs: Vec<VecBuf> = frames.iter().map(|f| VecBuf::new(f)).collect();
        let mut codes = vec![plan::SLOW; bufs.len()];
        let pass = if self.gw.has_fast_pass(port) {
            self.gw.fast_burst(&mut bufs, port, &mut codes, &mut self.c)
        } else {
            None
        };
        if pass.is_none() {
            self.gw.prepare_burst(&bufs, port, &self.c);
        }
        let out: Vec<(Verdict, Vec<u8>)> = bufs
            .iter_mut()
            .zip(&codes)
            .map(|(b, &code)| {
                let v = if pass.is_some() && code != plan::SLOW {
                    plan::verdict(code)
                } else {
                    self.gw.process(b, port, &mut self.c)
                };
                (v, b.to_vec())
            })
            .collect();
        if let Some(bytes) = pass {
            let (mut rx, mut tx) = (0, 0);
            for ((f, (_, o)), &code) in frames.iter().zip(&out).zip(&codes) {
                if code != plan::SLOW {
                    rx += f.len() as u64;
                }
                if code < plan::DROP {
                    tx += o.len() as u64;
                }
            }
            assert_eq!((bytes.rx, bytes.tx), (rx, tx), "the pass's byte counts");
        }
        out
    }
}

/// `frames` from `port` in bursts of each size in `bursts`, through `fast`'s passes and through `slow`'s general
/// rules one by one: the same verdicts, bytes, flood copies and counters (but `general_path`).
fn assert_bursts_equal(
    fast: &mut TebRig,
    slow: &mut TebRig,
    frames: &[Vec<u8>],
    port: usize,
    bursts: &[usize],
) {
    for &burst in bursts {
        for chunk in frames.chunks(burst) {
            let got = fast.burst(chunk, port);
            for (f, (v, out)) in chunk.iter().zip(got) {
                let (vs, os) = slow.run(f, port);
                assert_eq!(v, vs, "verdict: port {port} burst {burst} frame {f:02x?}");
                assert_eq!(out, os, "bytes: port {port} burst {burst} frame {f:02x?}");
            }
            assert_eq!(
                fast.copies(),
                slow.copies(),
                "flood copies: port {port} burst {burst}"
            );
            let mut sc = slow.c.clone();
            sc.general_path = fast.c.general_path;
            assert_eq!(
                format!("{:?}", fast.c),
                format!("{sc:?}"),
                "counters: port {port} burst {burst}"
            );
        }
    }
}

/// The decap pass's way for TEB (`Worker::fast_teb`) and the l2 ports' pass (`Worker::l2_pass`) against the
/// general rules alone, in bursts: the same verdicts, bytes, counters and flood copies.
/// - From the l2 ports, tagged and not, every Ethernet and VLAN header byte changed in turn: from a port whose
///   bridges cannot hold a frame (the pass) and one whose can (the general rules).
/// - GRE/TEB packets over IPv4 and IPv6, keyed and not, of tunnels with and without checksum and sequence
///   numbers, in bridges with one tunnel member and with two, carrying frames that are flooded, forwarded to a
///   learned member, sent back to their own member, of a bad source, or too short; every byte of their outer
///   headers and inner Ethernet header changed in turn (the IPv4 checksum fixed, and once not).
#[test]
fn the_fast_passes_bridge_frames_as_the_general_rules_do() {
    let mut fast = teb_rig_with(teb_config_with(SIX));
    let mut slow = teb_rig_with(teb_config_with(SIX));
    slow.gw.set_fast_path(false);
    // A on the lan (office), C on trunk.40 (six): frames to them are forwarded, not flooded.
    for r in [&mut fast, &mut slow] {
        r.run(&frame(B, A, 10), LAN);
        r.run(&tagged(&frame(B, C, 10), 40), TRUNK);
        r.copies();
    }
    let inners = [
        frame(B, A, 10),
        frame(A, B, 10),
        frame(C, B, 10),
        frame([0xff; 6], B, 10),
        frame(B, [0x03, 0, 0, 0, 0, 1], 10),
        frame(B, C, 1)[..14].to_vec(),
        frame(B, C, 1)[..13].to_vec(),
    ];
    let mut bases = Vec::new();
    for inner in &inners {
        // l2-b (office, key 7), l2-d (small, no key), l2-c (pw: checksum and sequence numbers), l2-e (IPv6).
        bases.push(from_peer(
            PEER_B,
            &gre_hdr(false, Some(7), None, 0x6558, inner),
            inner,
        ));
        bases.push(from_peer(
            PEER_D,
            &gre_hdr(false, None, None, 0x6558, inner),
            inner,
        ));
        bases.push(from_peer(
            PEER_C,
            &gre_hdr(true, None, Some(9), 0x6558, inner),
            inner,
        ));
        bases.push(outer_gre6(
            &gre_hdr(false, Some(9), None, 0x6558, inner),
            inner,
            0,
        ));
        // l2-f: its bridge has another tunnel member (the pass leaves it to the general rules).
        bases.push(from_peer(
            [198, 51, 100, 10],
            &gre_hdr(false, Some(11), None, 0x6558, inner),
            inner,
        ));
    }
    let mut all = bases.clone();
    for base in bases.iter().take(4) {
        let end = if base[12] == 0x86 { 14 + 40 } else { 14 + 20 } + 8 + 14;
        for at in 0..end {
            for x in [0x01u8, 0x40, 0x80, 0xff] {
                let mut f = base.clone();
                f[at] ^= x;
                if x != 0xff && f[14] == 0x45 {
                    f[24] = 0;
                    f[25] = 0;
                    let ck = csum(&f[14..34]);
                    f[24..26].copy_from_slice(&ck.to_be_bytes());
                }
                all.push(f);
            }
        }
    }
    // From the l2 ports: the lan (its bridge cannot hold a frame: the l2 pass) and the trunk (one of its VLANs'
    // bridges has a sequenced tunnel, whose packets another worker may own: the general rules), tagged and not,
    // every byte of the Ethernet and VLAN headers changed in turn.
    let mut l2 = Vec::new();
    for inner in &inners {
        l2.push((LAN, inner.clone()));
        for vid in [10u16, 20, 30, 40, 50, 99] {
            l2.push((TRUNK, tagged(inner, vid)));
            l2.push((LAN, tagged(inner, vid)));
        }
    }
    for (port, base) in l2.clone().iter().take(3) {
        for at in 0..18.min(base.len()) {
            for x in [0x01u8, 0x80, 0xff] {
                let mut f = base.clone();
                f[at] ^= x;
                l2.push((*port, f));
            }
        }
    }
    let mut hits = fast.gw.fast_path_hits();
    for port in [LAN, TRUNK] {
        let frames: Vec<Vec<u8>> = l2
            .iter()
            .filter(|(p, _)| *p == port)
            .map(|(_, f)| f.clone())
            .collect();
        assert_bursts_equal(&mut fast, &mut slow, &frames, port, &[1, 7, 32]);
        let now = fast.gw.fast_path_hits();
        if port == LAN {
            assert!(
                now - hits > 100,
                "the lan's frames took the l2 pass: {}",
                now - hits
            );
        } else {
            assert_eq!(now, hits, "the trunk's frames took the general rules");
        }
        hits = now;
    }
    assert_bursts_equal(&mut fast, &mut slow, &all, OUTSIDE, &[1, 5, 32]);
    // TEB and IP packets mixed (IPv4 in GRE of the IP tunnel ip-h, to an inside neighbour), which the pass
    // takes by different ways in turn.
    let ip = ipv4(
        [10, 30, 0, 1],
        [10, 0, 0, 5],
        17,
        20,
        0,
        false,
        &udp_payload(12),
    );
    let ip_gre = from_peer(
        [198, 51, 100, 30],
        &gre_hdr(false, Some(30), None, 0x0800, &ip),
        &ip,
    );
    let mut mixed = Vec::new();
    for (i, f) in bases.iter().enumerate() {
        mixed.push(f.clone());
        if i % 3 != 1 {
            mixed.push(ip_gre.clone());
        }
    }
    let before = fast.gw.fast_path_hits();
    assert_bursts_equal(&mut fast, &mut slow, &mixed, OUTSIDE, &[4, 32]);
    assert!(fast.gw.fast_path_hits() - before > 40);
    let h = fast
        .gw
        .tables()
        .tunnels
        .iter()
        .position(|t| t.name == "ip-h");
    let sent = mixed.iter().filter(|f| **f == ip_gre).count() as u64;
    assert_eq!(
        fast.c.tunnels[h.unwrap()].decap,
        2 * sent,
        "ip-h decapsulated all"
    );
    // The bursts went through the pass's TEB way, not around it.
    assert!(
        fast.gw.fast_path_hits() > 100,
        "fast pass hits: {}",
        fast.gw.fast_path_hits()
    );
    assert!(fast.c.general_path < slow.c.general_path);
}

/// TEB tunnels of every shape of the template write (`fast::TEB_MASK`: IPv4 and IPv6 outside, a key or not),
/// each a pseudowire with a VLAN of the trunk, with fixed and inherited TTL and TOS and a small MTU; and one
/// with a checksum, which keeps the general write. For [`teb_config_with`].
const SHAPES: &str = r#"
[[tunnel]]
name = "w4"
mode = "teb"
local = "192.0.2.1"
remote = "198.51.100.20"
ttl = "inherit"
[[tunnel]]
name = "w4k"
mode = "teb"
local = "192.0.2.1"
remote = "198.51.100.21"
key = 21
ttl = 200
tos = 0xb8
mtu = 600
[[tunnel]]
name = "w6"
mode = "teb"
local = "2001:db8:ffff::1"
remote = "2001:db8:eeee::20"
ttl = "inherit"
[[tunnel]]
name = "w6k"
mode = "teb"
local = "2001:db8:ffff::1"
remote = "2001:db8:eeee::21"
okey = 22
ikey = 23
ttl = 5
tos = 0x10
[[tunnel]]
name = "w4c"
mode = "teb"
local = "192.0.2.1"
remote = "198.51.100.22"
checksum = true
[[bridge]]
name = "p60"
members = ["trunk.60", "w4"]
learning = false
[[bridge]]
name = "p61"
members = ["trunk.61", "w4k"]
learning = false
[[bridge]]
name = "p62"
members = ["trunk.62", "w6"]
learning = false
[[bridge]]
name = "p63"
members = ["trunk.63", "w6k"]
learning = false
[[bridge]]
name = "p64"
members = ["trunk.64", "w4c"]
learning = false
[[neighbor]]
port = "outside"
ip = "2001:db8:ffff::fe"
mac = "02:00:00:00:00:fe"
[[route]]
prefix = "2001:db8:eeee::/48"
via = "2001:db8:ffff::fe"
port = "outside"
"#;

/// Frames into TEB tunnels with a shape of the template write (`fast::frame_write`) leave byte for byte and
/// counter for counter as the general write (`emit_outer`) sends them: IPv4 and IPv6 outside, a key or not,
/// TTL and TOS fixed or inherited from IPv4 and IPv6 packets of every TOS and TTL, frames that carry no IP,
/// one with a wrong IP version, the shortest frame, frames over the MTU; a checksummed tunnel keeps the general
/// write.
#[test]
fn frames_take_the_template_write_as_the_general_write_sends_them() {
    use crate::tunnel::table::fast;
    let mut fast_rig = teb_rig_with(teb_config_with(SHAPES));
    let mut slow = teb_rig_with(teb_config_with(SHAPES));
    slow.gw.set_fast_path(false);
    let shape = |name: &str| {
        let t = fast_rig.gw.tables().tunnels.iter().find(|t| t.name == name);
        (t.expect(name).fast & fast::TEB_MASK) >> fast::TEB_SHIFT
    };
    assert_eq!(shape("w4"), fast::ENCAP4_PLAIN);
    assert_eq!(shape("w4k"), fast::ENCAP4_KEY);
    assert_eq!(shape("w6"), fast::ENCAP6_PLAIN);
    assert_eq!(shape("w6k"), fast::ENCAP6_KEY);
    assert_eq!(shape("w4c"), 0);
    let mut inners = Vec::new();
    for (tos, ttl) in [(0x48, 33), (0x00, 1), (0xff, 255), (0x03, 64), (0xb9, 0)] {
        let mut f = eth(A, B, 0x0800);
        f.extend(ipv4(
            [10, 9, 0, 1],
            [10, 9, 0, 2],
            17,
            ttl,
            tos,
            false,
            &udp_payload(20),
        ));
        inners.push(f);
        let mut f = eth(A, B, 0x86dd);
        let (s, d) = (v6("2001:db8:1::1"), v6("2001:db8:1::2"));
        f.extend(ipv6(s, d, 17, ttl, tos, &udp_payload(20)));
        inners.push(f);
    }
    // Not IP (ARP's EtherType), IPv4's EtherType with IPv6 inside and the reverse, IP headers cut short.
    let mut arp = eth([0xff; 6], B, 0x0806);
    arp.extend([0x11; 28]);
    inners.push(arp);
    let mut wrong = inners[1].clone();
    wrong[12..14].copy_from_slice(&[0x08, 0x00]);
    inners.push(wrong);
    let mut wrong = inners[0].clone();
    wrong[12..14].copy_from_slice(&[0x86, 0xdd]);
    inners.push(wrong);
    inners.push(inners[0][..14 + 19].to_vec());
    inners.push(inners[1][..14 + 39].to_vec());
    inners.push(inners[0][..14].to_vec());
    // Over and at w4k's MTU (600 bytes of Ethernet payload), and a large frame.
    for n in [600 - 28, 600 - 28 + 1, 1400] {
        inners.push(frame(A, B, n));
    }
    let frames: Vec<Vec<u8>> = inners
        .iter()
        .flat_map(|f| (60..=64).map(|vid| tagged(f, vid)))
        .collect();
    assert_bursts_equal(&mut fast_rig, &mut slow, &frames, TRUNK, &[1, 7, 32]);
    // Every tunnel sent each of the 19 frames (in each of the three runs) but w4k, which dropped the two over
    // its MTU.
    for (name, sent) in [
        ("w4", 19),
        ("w4k", 17),
        ("w6", 19),
        ("w6k", 19),
        ("w4c", 19),
    ] {
        let ti = fast_rig
            .gw
            .tables()
            .tunnels
            .iter()
            .position(|t| t.name == name);
        let tc = &fast_rig.c.tunnels[ti.unwrap()];
        assert_eq!(tc.encap, 3 * sent, "{name}");
    }
    let w4k = fast_rig
        .gw
        .tables()
        .tunnels
        .iter()
        .position(|t| t.name == "w4k");
    assert_eq!(fast_rig.c.tunnels[w4k.unwrap()].drops, 3 * 2);
}
