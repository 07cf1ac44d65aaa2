//! Every gateway rule on plain byte buffers (no EAL): frames are built here independently, the results are
//! checked with the `wire` parsers and an independent checksum.
use super::gateway::{Event, Gateway, Handoff, Shared};
use super::{HoldReason, Processor, Verdict};
use crate::buf::VecBuf;
use crate::config::Config;
use crate::control::plane::{ControlPlane, Outgoing};
use crate::stats::{Counters, DropReason};
use crate::wire::gre;
use std::time::Instant;

const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const IN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const OUT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const INSIDE: usize = 0;
const OUTSIDE: usize = 1;

/// The reason of a verdict that must be a hold.
fn held(v: Verdict) -> HoldReason {
    match v {
        Verdict::Hold(why) => why,
        v => panic!("expected a hold, got {v:?}"),
    }
}

/// How the control thread hands a keepalive for the gateway's first tunnel to its owner.
fn keepalive_handoff(gw: &Gateway<VecBuf>) -> Handoff {
    Handoff {
        tunnel: gw.tables().tunnels[0].tref(),
        keepalive: true,
    }
}

fn config(tunnel_extra: &str) -> Config {
    super::testkit::config_with(tunnel_extra)
}

struct Rig {
    gw: Gateway<VecBuf>,
    cp: ControlPlane,
    shared: Shared<VecBuf>,
    c: Counters,
}

fn rig_n(
    tunnel_extra: &str,
    workers: usize,
) -> (Vec<Gateway<VecBuf>>, Shared<VecBuf>, ControlPlane, Counters) {
    let cfg = config(tunnel_extra);
    let mut cp = ControlPlane::new(&cfg, &[IN_MAC, OUT_MAC], Instant::now(), 1).unwrap();
    let shared = Shared::new(cp.tables(), workers);
    let gws = (0..workers)
        .map(|w| Gateway::new(w, workers, shared.clone(), 1_000_000_000))
        .collect();
    let c = Counters::new(2, cfg.tunnels.len());
    (gws, shared, cp, c)
}

fn rig(tunnel_extra: &str) -> Rig {
    let (mut gws, shared, cp, c) = rig_n(tunnel_extra, 1);
    let mut gw = gws.remove(0);
    Processor::<VecBuf>::begin_burst(&mut gw, 1_000);
    Rig { gw, cp, shared, c }
}

impl Rig {
    fn run(&mut self, frame: &[u8], port: usize) -> (Verdict, Vec<u8>) {
        let mut b = VecBuf::new(frame);
        let v = self.gw.handle(&mut b, port, &mut self.c);
        (v, b.to_vec())
    }
}

fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// IPv4 header + payload with a valid header checksum.
fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    ttl: u8,
    tos: u8,
    df: bool,
    payload: &[u8],
) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut h = vec![
        0x45,
        tos,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        if df { 0x40 } else { 0 },
        0,
        ttl,
        proto,
        0,
        0,
    ];
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let ck = csum(&h);
    h[10..12].copy_from_slice(&ck.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, hop: u8, tc: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60 | (tc >> 4), tc << 4, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.push(next);
    h.push(hop);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

fn v6(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

fn udp_payload(n: usize) -> Vec<u8> {
    let mut p = vec![0x13, 0x88, 0x07, 0xd0, 0, (8 + n) as u8, 0, 0];
    p.extend((0..n).map(|i| i as u8));
    p
}

fn inside_v4(dst: [u8; 4], ttl: u8, tos: u8, df: bool, n: usize) -> Vec<u8> {
    let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
    f.extend(ipv4([10, 0, 0, 2], dst, 17, ttl, tos, df, &udp_payload(n)));
    f
}

/// A GRE packet from the peer of t1 (outer 198.51.100.7 -> 192.0.2.1).
fn outer_gre(gre_hdr: &[u8], inner: &[u8], outer_tos: u8) -> Vec<u8> {
    let mut g = gre_hdr.to_vec();
    g.extend_from_slice(inner);
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    f.extend(ipv4(
        [198, 51, 100, 7],
        [192, 0, 2, 1],
        47,
        60,
        outer_tos,
        false,
        &g,
    ));
    f
}

/// A GRE packet from the peer of t6 over IPv6 (outer 2001:db8:eeee::7 -> 2001:db8:ffff::1, hop limit 60).
fn outer_gre6(gre_hdr: &[u8], inner: &[u8], outer_tc: u8) -> Vec<u8> {
    let mut g = gre_hdr.to_vec();
    g.extend_from_slice(inner);
    let mut f = eth(OUT_MAC, GW_MAC, 0x86dd);
    f.extend(ipv6(
        v6("2001:db8:eeee::7"),
        v6("2001:db8:ffff::1"),
        47,
        60,
        outer_tc,
        &g,
    ));
    f
}

fn gre_hdr(
    csum_on: bool,
    key: Option<u32>,
    seq: Option<u32>,
    proto: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut flags = 0u16;
    let mut h = Vec::new();
    if csum_on {
        flags |= 0x8000;
    }
    if key.is_some() {
        flags |= 0x2000;
    }
    if seq.is_some() {
        flags |= 0x1000;
    }
    h.extend_from_slice(&flags.to_be_bytes());
    h.extend_from_slice(&proto.to_be_bytes());
    if csum_on {
        h.extend_from_slice(&[0, 0, 0, 0]);
    }
    if let Some(k) = key {
        h.extend_from_slice(&k.to_be_bytes());
    }
    if let Some(s) = seq {
        h.extend_from_slice(&s.to_be_bytes());
    }
    if csum_on {
        let mut all = h.clone();
        all.extend_from_slice(payload);
        let ck = csum(&all);
        h[4..6].copy_from_slice(&ck.to_be_bytes());
    }
    h
}

fn inner_from_remote(dst: [u8; 4], ttl: u8, tos: u8) -> Vec<u8> {
    ipv4([10, 20, 0, 5], dst, 17, ttl, tos, false, &udp_payload(18))
}

// -------------------------------------------------------------------------------------------------------------
// Encapsulation
// -------------------------------------------------------------------------------------------------------------

#[test]
fn encap_ipv4_with_key_checksum_sequence() {
    let mut r = rig("key = 1001\nchecksum = true\nsequence = true\nttl = 64");
    let frame = inside_v4([10, 20, 1, 1], 17, 0x02, true, 18);
    for expect_seq in 0..3u32 {
        let (v, out) = r.run(&frame, INSIDE);
        assert_eq!(v, Verdict::Tx(OUTSIDE));
        assert_eq!(&out[0..6], &GW_MAC, "next hop MAC");
        assert_eq!(&out[6..12], &OUT_MAC);
        assert_eq!(&out[12..14], &[0x08, 0x00]);
        let ip = &out[14..34];
        assert_eq!(ip[0], 0x45);
        assert_eq!(
            usize::from(u16::from_be_bytes([ip[2], ip[3]])),
            out.len() - 14
        );
        assert_eq!(ip[6] & 0x40, 0x40, "DF copied from the inner header");
        assert_eq!(ip[8], 64, "fixed TTL");
        assert_eq!(ip[9], 47);
        assert_eq!(ip[1], 0x02, "ECN ECT(0) copied (RFC 6040 normal mode)");
        assert_eq!(&ip[12..16], &[192, 0, 2, 1]);
        assert_eq!(&ip[16..20], &[198, 51, 100, 7]);
        assert_eq!(csum(ip), 0, "outer header checksum valid");
        let g = gre::Packet::new_checked(&out[34..]).unwrap();
        assert_eq!(g.protocol(), 0x0800);
        assert_eq!(g.key(), Some(1001));
        assert_eq!(
            g.sequence(),
            Some(expect_seq),
            "RFC 2890: first packet 0, then +1"
        );
        assert!(g.verify_checksum(), "GRE checksum valid");
        assert_eq!(csum(&out[34..]), 0, "independent GRE checksum check");
        let inner = g.payload();
        assert_eq!(inner[8], 16, "inner TTL decremented by one router hop");
        assert_eq!(csum(&inner[..20]), 0, "inner header checksum updated");
        assert_eq!(&inner[20..], &frame[34..], "payload untouched");
    }
    assert_eq!(r.c.tunnels[0].encap, 3);
}

#[test]
fn encap_inherits_ttl_and_dscp_and_fixed_tos_keeps_ecn() {
    let mut r = rig("ttl = \"inherit\"\ntos = \"inherit\"");
    let (v, out) = r.run(&inside_v4([10, 20, 1, 1], 33, 0xb9, false, 10), INSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    assert_eq!(out[14 + 8], 32, "outer TTL = inner TTL after decrement");
    assert_eq!(out[14 + 1], 0xb9, "TOS inherited");
    assert_eq!(out[14 + 6] & 0x40, 0, "DF clear copied");
    assert_eq!(gre::Packet::new_checked(&out[34..]).unwrap().key(), None);

    let mut r = rig("tos = 0x20");
    let (_, out) = r.run(&inside_v4([10, 20, 1, 1], 33, 0x03, false, 10), INSIDE);
    assert_eq!(
        out[14 + 1],
        0x23,
        "fixed DSCP, ECN (CE) copied per RFC 6040 normal mode"
    );
}

#[test]
fn encap_ipv6_inner_over_ipv4_outer() {
    let mut r = rig("key = 7");
    let mut f = eth(IN_MAC, HOST_MAC, 0x86dd);
    f.extend(ipv6(
        v6("2001:db8:1::2"),
        v6("2001:db8:20::9"),
        17,
        9,
        0x01,
        &udp_payload(30),
    ));
    let (v, out) = r.run(&f, INSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    let ip = &out[14..34];
    assert_eq!(ip[6] & 0x40, 0x40, "IPv6 inner: outer DF set");
    assert_eq!(ip[1] & 3, 1, "ECN copied from the traffic class");
    let g = gre::Packet::new_checked(&out[34..]).unwrap();
    assert_eq!(g.protocol(), 0x86dd);
    assert_eq!(g.payload()[7], 8, "inner hop limit decremented");
}

#[test]
fn encap_ipv4_inner_over_ipv6_outer() {
    let mut r = rig("");
    let (v, out) = r.run(&inside_v4([10, 60, 0, 1], 20, 0, false, 12), INSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    let ip = &out[14..54];
    assert_eq!(ip[0] >> 4, 6);
    assert_eq!(ip[6], 47, "next header GRE");
    assert_eq!(
        usize::from(u16::from_be_bytes([ip[4], ip[5]])),
        out.len() - 54
    );
    assert_eq!(&ip[8..24], &v6("2001:db8:ffff::1"));
    assert_eq!(&ip[24..40], &v6("2001:db8:eeee::7"));
    let g = gre::Packet::new_checked(&out[54..]).unwrap();
    assert_eq!(g.key(), Some(6));
    assert_eq!(g.protocol(), 0x0800);
}

#[test]
fn too_big_with_df_gets_frag_needed_with_the_tunnel_mtu() {
    let mut r = rig("mtu = 1400");
    let frame = inside_v4([10, 20, 1, 1], 64, 0, true, 1500 - 28);
    let (v, out) = r.run(&frame, INSIDE);
    assert_eq!(
        v,
        Verdict::Tx(INSIDE),
        "the ICMP error goes back to the sender"
    );
    assert_eq!(&out[0..6], &HOST_MAC);
    assert_eq!(&out[6..12], &IN_MAC);
    let ip = &out[14..34];
    assert_eq!(csum(ip), 0);
    assert_eq!(ip[9], 1);
    assert_eq!(
        &ip[12..16],
        &[10, 0, 0, 1],
        "from the gateway's inside address"
    );
    assert_eq!(&ip[16..20], &[10, 0, 0, 2], "to the sender");
    assert_eq!(
        usize::from(u16::from_be_bytes([ip[2], ip[3]])),
        out.len() - 14
    );
    assert!(out.len() - 14 <= 576, "RFC 1812: at most 576 bytes");
    let icmp = &out[34..];
    assert_eq!(
        (icmp[0], icmp[1]),
        (3, 4),
        "destination unreachable, fragmentation needed"
    );
    assert_eq!(
        u16::from_be_bytes([icmp[6], icmp[7]]),
        1400,
        "next-hop MTU = tunnel MTU"
    );
    assert_eq!(csum(icmp), 0, "ICMP checksum valid");
    assert_eq!(&icmp[8..28], &frame[14..34], "quotes the original header");
    assert_eq!(r.c.icmp_errors_sent, 1);
}

#[test]
fn too_big_ipv6_gets_packet_too_big() {
    let mut r = rig("mtu = 1280");
    let mut f = eth(IN_MAC, HOST_MAC, 0x86dd);
    f.extend(ipv6(
        v6("2001:db8:1::2"),
        v6("2001:db8:20::9"),
        17,
        9,
        0,
        &udp_payload(1300),
    ));
    let (v, out) = r.run(&f, INSIDE);
    assert_eq!(v, Verdict::Tx(INSIDE));
    let ip = &out[14..54];
    assert_eq!(&ip[8..24], &v6("2001:db8:1::1"));
    assert_eq!(&ip[24..40], &v6("2001:db8:1::2"));
    let icmp = &out[54..];
    assert_eq!(icmp[0], 2, "packet too big");
    assert_eq!(u32::from_be_bytes(icmp[4..8].try_into().unwrap()), 1280);
    assert!(out.len() - 14 <= 1280);
    let r6 = crate::wire::icmpv6::Packet::new_checked(icmp).unwrap();
    let _ = r6;
    // Independent ICMPv6 checksum with the pseudo-header.
    let mut ps = Vec::new();
    ps.extend_from_slice(&ip[8..40]);
    ps.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    ps.extend_from_slice(&[0, 0, 0, 58]);
    ps.extend_from_slice(icmp);
    assert_eq!(csum(&ps), 0);
}

#[test]
fn too_big_without_df_is_fragmented_then_encapsulated() {
    let mut r = rig("mtu = 1400\nkey = 5");
    let frame = inside_v4([10, 20, 1, 1], 64, 0, false, 2000);
    let (v, first) = r.run(&frame, INSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    let mut rest = Vec::new();
    Processor::<VecBuf>::poll_deferred(
        &mut r.gw,
        2_000,
        &mut |p, b: VecBuf| {
            rest.push((p, b.to_vec()));
            true
        },
        &mut r.c,
    );
    assert_eq!(rest.len(), 1, "2028-byte packet, MTU 1400: two fragments");
    assert_eq!(r.c.fragments_created, 1);
    let mut payload = Vec::new();
    for (i, out) in std::iter::once(&first)
        .chain(rest.iter().map(|(_, b)| b))
        .enumerate()
    {
        assert!(
            out.len() - 14 - 28 <= 1400,
            "each inner fragment fits the tunnel MTU"
        );
        let g = gre::Packet::new_checked(&out[34..]).unwrap();
        assert_eq!(g.key(), Some(5));
        let ip = g.payload();
        assert_eq!(csum(&ip[..20]), 0);
        assert_eq!(ip[8], 63, "each fragment's TTL decremented once");
        assert_eq!(ip[6] & 0x20 != 0, i == 0, "MF on the first only");
        payload.extend_from_slice(&ip[20..]);
    }
    assert_eq!(
        payload,
        frame[34..].to_vec(),
        "fragments carry the whole payload in order"
    );
}

#[test]
fn ttl_one_gets_time_exceeded() {
    let mut r = rig("");
    let (v, out) = r.run(&inside_v4([10, 20, 1, 1], 1, 0, false, 10), INSIDE);
    assert_eq!(v, Verdict::Tx(INSIDE));
    assert_eq!(out[34], 11, "time exceeded");
    assert_eq!(csum(&out[34..]), 0);
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut r = rig("");
    let f = inside_v4([10, 20, 1, 1], 1, 0, false, 10);
    let mut sent = 0;
    for _ in 0..300 {
        if r.run(&f, INSIDE).0 == Verdict::Tx(INSIDE) {
            sent += 1;
        }
    }
    assert_eq!(sent, 100, "burst of 100, no refill at a fixed clock");
    assert_eq!(r.c.icmp_errors_suppressed, 200);
}

#[test]
fn no_route_and_no_neighbor_are_counted_and_resolution_is_requested() {
    let mut r = rig("");
    let (v, _) = r.run(&inside_v4([172, 16, 0, 1], 64, 0, false, 10), INSIDE);
    assert_eq!(
        v,
        Verdict::Drop(DropReason::NoRoute),
        "non-tunnel traffic never leaves unencapsulated"
    );
    // A tunnel whose next hop has no static neighbour.
    let mut cfg_extra = rig("");
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    f.extend(ipv4(
        [198, 51, 100, 7],
        [192, 0, 2, 1],
        47,
        60,
        0,
        false,
        &{
            let mut g = gre_hdr(false, None, None, 0x0800, &[]);
            g.extend(inner_from_remote([10, 0, 0, 77], 30, 0));
            g
        },
    ));
    let (v, _) = cfg_extra.run(&f, OUTSIDE);
    assert!(v.is_hold(), "held while the next hop is resolved");
    let e = cfg_extra.shared.events.pop().expect("a resolve event");
    assert_eq!(
        e,
        Event::Resolve {
            port: INSIDE,
            ip: "10.0.0.77".parse().unwrap()
        }
    );
    match cfg_extra.cp.on_event(e, Instant::now()) {
        Some(Outgoing::Frame { port, bytes }) => {
            assert_eq!(port, INSIDE);
            let a = crate::wire::arp::Packet::new_checked(&bytes[14..]).unwrap();
            let rep = crate::wire::arp::ArpRepr::parse(&a).unwrap();
            assert_eq!(format!("{:?}", rep.target_protocol_addr), "10.0.0.77");
        }
        other => panic!("expected an ARP request, got {other:?}"),
    }
}

/// A poll round with no received packets at `now`, as the worker runs it (the round's table picked up first,
/// then the deferred work): what it sent.
fn deferred(gw: &mut Gateway<VecBuf>, now: u64, c: &mut Counters) -> Vec<(usize, Vec<u8>)> {
    let mut sent = Vec::new();
    Processor::<VecBuf>::begin_burst(gw, now);
    Processor::<VecBuf>::poll_deferred(
        gw,
        now,
        &mut |p, b: VecBuf| {
            sent.push((p, b.to_vec()));
            true
        },
        c,
    );
    sent
}

#[test]
fn packets_wait_for_their_neighbour_and_leave_once_it_is_learned() {
    // Found end to end: the first packet to a new host was always lost (dropped as no_neighbor while the
    // ARP/ND request went out), so every new flow lost its first ping. Now it waits (bounded, 1 s).
    let mut r = rig("");
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    f.extend(ipv4(
        [198, 51, 100, 7],
        [192, 0, 2, 1],
        47,
        60,
        0,
        false,
        &{
            let mut g = gre_hdr(false, None, None, 0x0800, &[]);
            g.extend(inner_from_remote([10, 0, 0, 77], 30, 0));
            g
        },
    ));
    let mut b = VecBuf::new(&f);
    let why = held(r.gw.handle(&mut b, OUTSIDE, &mut r.c));
    Processor::<VecBuf>::hold(&mut r.gw, b, why, &mut r.c);
    assert!(
        deferred(&mut r.gw, 2_000, &mut r.c).is_empty(),
        "still unresolved"
    );
    // The host answers the ARP request: the control thread learns it and publishes new tables.
    let host77 = [2, 0, 0, 0, 0, 0x77];
    let _ = r.cp.on_event(
        Event::Neighbor {
            port: INSIDE,
            ip: "10.0.0.77".parse().unwrap(),
            mac: host77,
        },
        Instant::now(),
    );
    assert!(r.cp.take_dirty());
    r.shared.tables.store(std::sync::Arc::new(r.cp.tables()));
    let sent = deferred(&mut r.gw, 3_000, &mut r.c);
    assert_eq!(sent.len(), 1, "released");
    assert_eq!(sent[0].0, INSIDE);
    assert_eq!(&sent[0].1[0..6], &host77);
    assert_eq!(&sent[0].1[6..12], &IN_MAC);
    assert_eq!(&sent[0].1[14 + 16..14 + 20], &[10, 0, 0, 77]);
    assert_eq!(sent[0].1[14 + 8], 29, "TTL decremented once");
    assert_eq!(r.c.drops[DropReason::NoNeighbor as usize], 0);

    // Unanswered: dropped as no_neighbor after HOLD_MS (the rig's clock is 1 GHz).
    let inner = {
        let mut g = gre_hdr(false, None, None, 0x0800, &[]);
        g.extend(inner_from_remote([10, 0, 0, 78], 30, 0));
        g
    };
    let mut f2 = eth(OUT_MAC, GW_MAC, 0x0800);
    f2.extend(ipv4(
        [198, 51, 100, 7],
        [192, 0, 2, 1],
        47,
        60,
        0,
        false,
        &inner,
    ));
    let mut b = VecBuf::new(&f2);
    let why = held(r.gw.handle(&mut b, OUTSIDE, &mut r.c));
    Processor::<VecBuf>::hold(&mut r.gw, b, why, &mut r.c);
    let hold_ticks = super::gateway::HOLD_MS * 1_000_000;
    // Held at the last burst's clock (3_000).
    assert!(deferred(&mut r.gw, 3_000 + hold_ticks / 2, &mut r.c).is_empty());
    assert_eq!(
        r.c.drops[DropReason::NoNeighbor as usize],
        0,
        "still waiting"
    );
    assert!(deferred(&mut r.gw, 3_000 + hold_ticks + 1, &mut r.c).is_empty());
    assert_eq!(r.c.drops[DropReason::NoNeighbor as usize], 1, "expired");

    // Bounded: beyond HOLD_MAX waiting packets, no_neighbor at once.
    for _ in 0..super::gateway::HOLD_MAX {
        let mut b = VecBuf::new(&f2);
        let why = held(r.gw.handle(&mut b, OUTSIDE, &mut r.c));
        Processor::<VecBuf>::hold(&mut r.gw, b, why, &mut r.c);
    }
    let mut b = VecBuf::new(&f2);
    assert_eq!(
        r.gw.handle(&mut b, OUTSIDE, &mut r.c),
        Verdict::Drop(DropReason::NoNeighbor)
    );
    Processor::<VecBuf>::finish(&mut r.gw, &mut r.c);
    assert_eq!(
        r.c.drops[DropReason::NoNeighbor as usize],
        1 + super::gateway::HOLD_MAX as u64,
        "held packets are freed and counted at the end"
    );
}

#[test]
fn tunnel_traffic_waits_for_the_outer_next_hop() {
    // A tunnel whose remote is on the outside link with no static neighbour: its first packet waits for ARP.
    let mut r = rig("");
    let text = "[eal]\nargs = [\"-l\", \"0-1\"]\n[dataplane]\nworkers = [1]\n[[port]]\nname = \"inside\"\n\
        device = \"net_null0\"\naddress = \"10.0.0.1/24\"\nmac = \"02:00:00:00:00:01\"\n[[port]]\n\
        name = \"outside\"\ndevice = \"net_null1\"\naddress = \"192.0.2.1/24\"\nmac = \"02:00:00:00:00:02\"\n\
        [[tunnel]]\nname = \"t1\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.9\"\nroutes = [\"10.20.0.0/16\"]\n";
    let cfg = Config::from_str_named(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut cp = ControlPlane::new(&cfg, &[IN_MAC, OUT_MAC], Instant::now(), 1).unwrap();
    let shared = Shared::new(cp.tables(), 1);
    let mut gw = Gateway::new(0, 1, shared.clone(), 1_000_000_000);
    Processor::<VecBuf>::begin_burst(&mut gw, 1_000);
    let mut b = VecBuf::new(&inside_v4([10, 20, 1, 1], 64, 0, false, 10));
    let why = held(gw.handle(&mut b, INSIDE, &mut r.c));
    Processor::<VecBuf>::hold(&mut gw, b, why, &mut r.c);
    // A packet the control thread hands over (a keepalive) waits the same way instead of being dropped.
    let ka = inside_v4([10, 20, 1, 2], 64, 0, false, 10);
    assert!(shared.handoff[0]
        .push((keepalive_handoff(&gw), VecBuf::new(&ka)))
        .is_ok());
    assert!(deferred(&mut gw, 1_500, &mut r.c).is_empty());
    assert_eq!(r.c.drops.iter().sum::<u64>(), 0, "nothing dropped");
    let _ = cp.on_event(
        Event::Neighbor {
            port: OUTSIDE,
            ip: "192.0.2.9".parse().unwrap(),
            mac: GW_MAC,
        },
        Instant::now(),
    );
    shared.tables.store(std::sync::Arc::new(cp.tables()));
    let sent = deferred(&mut gw, 2_000, &mut r.c);
    assert_eq!(sent.len(), 2, "the data packet and the handed-over one");
    assert_eq!(sent[0].0, OUTSIDE);
    assert_eq!(&sent[0].1[0..6], &GW_MAC);
    assert_eq!(sent[0].1[14 + 9], 47, "encapsulated in GRE");
    assert_eq!(sent[0].1[14 + 24 + 8], 63, "inner TTL decremented once");
}

// -------------------------------------------------------------------------------------------------------------
// Decapsulation
// -------------------------------------------------------------------------------------------------------------

#[test]
fn decap_valid_packet_to_the_inside_host() {
    let mut r = rig("key = 1001\nchecksum = true\nsequence = true");
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
    for seq in [0u32, 1, 5] {
        let f = outer_gre(
            &gre_hdr(true, Some(1001), Some(seq), 0x0800, &inner),
            &inner,
            0,
        );
        let (v, out) = r.run(&f, OUTSIDE);
        assert_eq!(v, Verdict::Tx(INSIDE), "seq {seq}");
        assert_eq!(&out[0..6], &HOST_MAC);
        assert_eq!(&out[6..12], &IN_MAC);
        assert_eq!(&out[12..14], &[0x08, 0]);
        let mut expect = inner.clone();
        expect[8] -= 1;
        let ck = u16::from_be_bytes([expect[10], expect[11]]);
        let _ = ck;
        expect[10..12].fill(0);
        let ck = csum(&expect[..20]);
        expect[10..12].copy_from_slice(&ck.to_be_bytes());
        assert_eq!(
            &out[14..],
            &expect[..],
            "inner packet identical but for TTL and its checksum"
        );
    }
    assert_eq!(r.c.tunnels[0].decap, 3);
}

#[test]
fn decap_receiver_rules_each_have_their_reason() {
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
    let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
        (
            "wrong key",
            gre_hdr(true, Some(1), Some(0), 0x0800, &inner),
            DropReason::KeyMismatch,
        ),
        (
            "no key",
            gre_hdr(true, None, Some(0), 0x0800, &inner),
            DropReason::KeyMismatch,
        ),
        (
            "missing checksum",
            gre_hdr(false, Some(1001), Some(0), 0x0800, &inner),
            DropReason::MissingChecksum,
        ),
        (
            "missing sequence",
            gre_hdr(true, Some(1001), None, 0x0800, &inner),
            DropReason::MissingSequence,
        ),
        (
            "unsupported type",
            gre_hdr(true, Some(1001), Some(0), 0x2000, &inner),
            DropReason::UnsupportedGreProtocol,
        ),
        (
            "version 1 (PPTP)",
            {
                let mut h = gre_hdr(false, Some(1001), Some(0), 0x880b, &inner);
                h[1] |= 1;
                h
            },
            DropReason::Pptp,
        ),
        (
            "version 2",
            {
                let mut h = gre_hdr(false, None, None, 0x0800, &inner);
                h[1] |= 2;
                h
            },
            DropReason::BadGreVersion,
        ),
        (
            "routing bit",
            {
                let mut h = gre_hdr(false, None, None, 0x0800, &inner);
                h[0] |= 0x40;
                h
            },
            DropReason::GreReservedBits,
        ),
    ];
    for (what, hdr, reason) in cases {
        let mut r = rig("key = 1001\nchecksum = true\nsequence = true");
        let (v, _) = r.run(&outer_gre(&hdr, &inner, 0), OUTSIDE);
        assert_eq!(v, Verdict::Drop(reason), "{what}");
    }
    // Bad checksum.
    let mut r = rig("key = 1001\nchecksum = true\nsequence = true");
    let mut h = gre_hdr(true, Some(1001), Some(0), 0x0800, &inner);
    h[4] ^= 0x55;
    assert_eq!(
        r.run(&outer_gre(&h, &inner, 0), OUTSIDE).0,
        Verdict::Drop(DropReason::BadChecksum)
    );
    // Truncated optional fields.
    let h = gre_hdr(true, Some(1001), Some(0), 0x0800, &[]);
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    f.extend(ipv4(
        [198, 51, 100, 7],
        [192, 0, 2, 1],
        47,
        60,
        0,
        false,
        &h[..10],
    ));
    assert_eq!(r.run(&f, OUTSIDE).0, Verdict::Drop(DropReason::Truncated));
    // Unknown peer.
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    let mut g = gre_hdr(false, None, None, 0x0800, &inner);
    g.extend_from_slice(&inner);
    f.extend(ipv4([203, 0, 113, 9], [192, 0, 2, 1], 47, 60, 0, false, &g));
    assert_eq!(
        r.run(&f, OUTSIDE).0,
        Verdict::Drop(DropReason::UnknownTunnel)
    );
}

#[test]
fn decap_sequence_drops_late_and_duplicate_packets() {
    let mut r = rig("sequence = true");
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
    let mut results = Vec::new();
    for seq in [0u32, 1, 1, 3, 2, 4, u32::MAX] {
        let f = outer_gre(&gre_hdr(false, None, Some(seq), 0x0800, &inner), &inner, 0);
        results.push(r.run(&f, OUTSIDE).0);
    }
    let late = Verdict::Drop(DropReason::LateSequence);
    let ok = Verdict::Tx(INSIDE);
    assert_eq!(results, vec![ok, ok, late, ok, late, ok, late]);
}

#[test]
fn test_kit_gateways_start_fresh() {
    // A fuzz input must reproduce alone: a gateway from the test kit carries no tunnel state (here the RFC 2890
    // receive sequence) over from the one before it.
    let kit =
        super::testkit::Kit::<VecBuf>::new(super::testkit::tables_for(&config("sequence = true")));
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
    let f = outer_gre(&gre_hdr(false, None, Some(7), 0x0800, &inner), &inner, 0);
    for _ in 0..2 {
        let (mut gw, mut c) = kit.gateway();
        let mut results = Vec::new();
        for _ in 0..2 {
            results.push(gw.handle(&mut VecBuf::new(&f), OUTSIDE, &mut c));
        }
        let late = Verdict::Drop(DropReason::LateSequence);
        assert_eq!(results, vec![Verdict::Tx(INSIDE), late]);
    }
}

#[test]
fn decap_ecn_rfc6040() {
    let mut r = rig("");
    // Outer CE, inner Not-ECT: drop.
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0x00);
    let f = outer_gre(&gre_hdr(false, None, None, 0x0800, &inner), &inner, 0x03);
    assert_eq!(
        r.run(&f, OUTSIDE).0,
        Verdict::Drop(DropReason::EcnCeOnNotEct)
    );
    // Outer CE, inner ECT(0): inner becomes CE, checksum still valid.
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0x02);
    let f = outer_gre(&gre_hdr(false, None, None, 0x0800, &inner), &inner, 0x03);
    let (v, out) = r.run(&f, OUTSIDE);
    assert_eq!(v, Verdict::Tx(INSIDE));
    assert_eq!(out[15] & 3, 3);
    assert_eq!(csum(&out[14..34]), 0);
    // Outer ECT(0), inner Not-ECT: inner stays.
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0x00);
    let f = outer_gre(&gre_hdr(false, None, None, 0x0800, &inner), &inner, 0x02);
    let (_, out) = r.run(&f, OUTSIDE);
    assert_eq!(out[15] & 3, 0);
}

#[test]
fn decap_anti_spoofing_loop_and_ttl() {
    let mut r = rig("allowed_sources = [\"10.20.0.0/16\"]");
    let bad = ipv4(
        [10, 99, 0, 5],
        [10, 0, 0, 2],
        17,
        30,
        0,
        false,
        &udp_payload(4),
    );
    let f = outer_gre(&gre_hdr(false, None, None, 0x0800, &bad), &bad, 0);
    assert_eq!(
        r.run(&f, OUTSIDE).0,
        Verdict::Drop(DropReason::SpoofedSource)
    );
    let mut r = rig("");
    let looped = ipv4(
        [10, 20, 0, 5],
        [192, 0, 2, 1],
        47,
        30,
        0,
        false,
        &udp_payload(4),
    );
    let f = outer_gre(&gre_hdr(false, None, None, 0x0800, &looped), &looped, 0);
    assert_eq!(r.run(&f, OUTSIDE).0, Verdict::Drop(DropReason::TunnelLoop));
    // TTL 1 after decap: time exceeded goes back into the tunnel toward the inner source.
    let inner = inner_from_remote([10, 0, 0, 2], 1, 0);
    let f = outer_gre(&gre_hdr(false, None, None, 0x0800, &inner), &inner, 0);
    let (v, out) = r.run(&f, OUTSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE), "encapsulated back to the peer");
    let g = gre::Packet::new_checked(&out[34..]).unwrap();
    let icmp_ip = g.payload();
    assert_eq!(icmp_ip[9], 1);
    assert_eq!(&icmp_ip[16..20], &[10, 20, 0, 5]);
    assert_eq!(icmp_ip[20], 11);
}

#[test]
fn decap_ipv6_outer() {
    let mut r = rig("");
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
    let f = outer_gre6(&gre_hdr(false, Some(6), None, 0x0800, &inner), &inner, 0);
    let (v, out) = r.run(&f, OUTSIDE);
    assert_eq!(v, Verdict::Tx(INSIDE));
    assert_eq!(&out[14 + 12..14 + 16], &[10, 20, 0, 5]);
    assert_eq!(r.c.tunnels[1].decap, 1);
}

#[test]
fn ethernet_padding_is_not_decapsulated() {
    let mut r = rig("");
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
    let mut f = outer_gre(&gre_hdr(false, None, None, 0x0800, &inner), &inner, 0);
    f.extend_from_slice(&[0xee; 6]);
    let (_, out) = r.run(&f, OUTSIDE);
    assert_eq!(out.len(), 14 + inner.len());
}

// -------------------------------------------------------------------------------------------------------------
// Local services
// -------------------------------------------------------------------------------------------------------------

#[test]
fn arp_request_for_our_address_gets_a_reply_and_teaches_the_sender() {
    let mut r = rig("");
    let mut f = eth([0xff; 6], HOST_MAC, 0x0806);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&HOST_MAC);
    f.extend_from_slice(&[10, 0, 0, 9]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 0, 0, 1]);
    let (v, out) = r.run(&f, INSIDE);
    assert_eq!(v, Verdict::Tx(INSIDE));
    let a = crate::wire::arp::ArpRepr::parse(
        &crate::wire::arp::Packet::new_checked(&out[14..]).unwrap(),
    )
    .unwrap();
    assert_eq!(format!("{:?}", a.sender_protocol_addr), "10.0.0.1");
    assert_eq!(a.sender_hardware_addr.0, IN_MAC);
    assert_eq!(a.target_hardware_addr.0, HOST_MAC);
    assert_eq!(&out[0..6], &HOST_MAC);
    assert_eq!(
        r.shared.events.pop(),
        Some(Event::Neighbor {
            port: INSIDE,
            ip: "10.0.0.9".parse().unwrap(),
            mac: HOST_MAC
        })
    );
    // For someone else: ignored.
    f[38..42].copy_from_slice(&[10, 0, 0, 50]);
    assert_eq!(r.run(&f, INSIDE).0, Verdict::Drop(DropReason::ArpIgnored));
}

#[test]
fn arp_and_nd_replies_are_rate_limited_and_refill_with_time() {
    use crate::datapath::gateway::{REPLY_BURST, REPLY_RATE_PER_S};
    let mut r = rig("");
    let mut arp = eth([0xff; 6], HOST_MAC, 0x0806);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&HOST_MAC);
    arp.extend_from_slice(&[10, 0, 0, 9]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[10, 0, 0, 1]);
    let burst = REPLY_BURST as usize;
    let mut sent = 0;
    for _ in 0..burst + 500 {
        match r.run(&arp, INSIDE).0 {
            Verdict::Tx(INSIDE) => sent += 1,
            Verdict::Drop(DropReason::ReplyRateLimited) => {}
            v => panic!("unexpected verdict {v:?}"),
        }
    }
    assert_eq!(
        sent, burst,
        "a burst of {burst}, no refill at a fixed clock"
    );
    // Requests for others are never answered and never take a token.
    let mut other = arp.clone();
    other[38..42].copy_from_slice(&[10, 0, 0, 50]);
    assert_eq!(
        r.run(&other, INSIDE).0,
        Verdict::Drop(DropReason::ArpIgnored)
    );
    // Neighbour solicitations share the bucket: still empty.
    let src = v6("2001:db8:1::2");
    let target = v6("2001:db8:1::1");
    let group = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1];
    let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
    ns.extend_from_slice(&target);
    ns.extend_from_slice(&[1, 1]);
    ns.extend_from_slice(&HOST_MAC);
    let mut ps = src.to_vec();
    ps.extend_from_slice(&group);
    ps.extend_from_slice(&(ns.len() as u32).to_be_bytes());
    ps.extend_from_slice(&[0, 0, 0, 58]);
    ps.extend_from_slice(&ns);
    let ck = csum(&ps);
    ns[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut nsf = eth([0x33, 0x33, 0xff, 0, 0, 1], HOST_MAC, 0x86dd);
    nsf.extend(ipv6(src, group, 58, 255, 0, &ns));
    assert_eq!(
        r.run(&nsf, INSIDE).0,
        Verdict::Drop(DropReason::ReplyRateLimited)
    );
    // 10 ms later (the rig's TSC runs at 1 GHz) the bucket holds rate * 0.01 tokens again.
    let refill = (REPLY_RATE_PER_S * 0.01) as usize;
    Processor::<VecBuf>::begin_burst(&mut r.gw, 1_000 + 10_000_000);
    let mut sent = 0;
    for _ in 0..refill + 50 {
        if r.run(&arp, INSIDE).0 == Verdict::Tx(INSIDE) {
            sent += 1;
        }
    }
    assert!(
        (refill - 1..=refill).contains(&sent),
        "refilled at {REPLY_RATE_PER_S}/s: {sent}"
    );
    Processor::<VecBuf>::begin_burst(&mut r.gw, 1_000 + 20_000_000);
    assert_eq!(
        r.run(&nsf, INSIDE).0,
        Verdict::Tx(INSIDE),
        "ND answered again"
    );
}

#[test]
fn learned_neighbor_is_published_and_used() {
    let mut r = rig("");
    r.cp.on_event(
        Event::Neighbor {
            port: INSIDE,
            ip: "10.0.0.77".parse().unwrap(),
            mac: [2, 0, 0, 0, 0, 0x77],
        },
        Instant::now(),
    );
    assert!(r.cp.take_dirty());
    r.shared.tables.store(std::sync::Arc::new(r.cp.tables()));
    Processor::<VecBuf>::begin_burst(&mut r.gw, 2_000);
    let inner = inner_from_remote([10, 0, 0, 77], 30, 0);
    let (v, out) = r.run(
        &outer_gre(&gre_hdr(false, None, None, 0x0800, &inner), &inner, 0),
        OUTSIDE,
    );
    assert_eq!(v, Verdict::Tx(INSIDE));
    assert_eq!(&out[0..6], &[2, 0, 0, 0, 0, 0x77]);
}

#[test]
fn ping_of_the_gateway_v4_and_v6() {
    let mut r = rig("");
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    icmp.extend_from_slice(b"abcdefgh");
    let ck = csum(&icmp);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
    f.extend(ipv4([10, 0, 0, 2], [10, 0, 0, 1], 1, 64, 0, false, &icmp));
    let (v, out) = r.run(&f, INSIDE);
    assert_eq!(v, Verdict::Tx(INSIDE));
    assert_eq!(&out[14 + 12..14 + 20], &[10, 0, 0, 1, 10, 0, 0, 2]);
    assert_eq!(out[34], 0, "echo reply");
    assert_eq!(csum(&out[14..34]), 0);
    assert_eq!(csum(&out[34..]), 0);
    assert_eq!(
        &out[38..],
        &icmp[4..],
        "identifier, sequence and data echoed"
    );

    let src = v6("2001:db8:1::2");
    let dst = v6("2001:db8:1::1");
    let mut icmp = vec![128, 0, 0, 0, 0, 7, 0, 1, 1, 2, 3];
    let mut ps = src.to_vec();
    ps.extend_from_slice(&dst);
    ps.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    ps.extend_from_slice(&[0, 0, 0, 58]);
    ps.extend_from_slice(&icmp);
    let ck = csum(&ps);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut f = eth(IN_MAC, HOST_MAC, 0x86dd);
    f.extend(ipv6(src, dst, 58, 64, 0, &icmp));
    let (v, out) = r.run(&f, INSIDE);
    assert_eq!(v, Verdict::Tx(INSIDE));
    assert_eq!(out[54], 129);
    let mut ps = out[22..54].to_vec();
    ps.extend_from_slice(&((out.len() - 54) as u32).to_be_bytes());
    ps.extend_from_slice(&[0, 0, 0, 58]);
    ps.extend_from_slice(&out[54..]);
    assert_eq!(csum(&ps), 0, "ICMPv6 checksum valid");
}

#[test]
fn neighbor_solicitation_for_our_address_gets_an_advertisement() {
    let mut r = rig("");
    let src = v6("2001:db8:1::2");
    let target = v6("2001:db8:1::1");
    let group = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1];
    let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
    ns.extend_from_slice(&target);
    ns.extend_from_slice(&[1, 1]);
    ns.extend_from_slice(&HOST_MAC);
    let mut ps = src.to_vec();
    ps.extend_from_slice(&group);
    ps.extend_from_slice(&(ns.len() as u32).to_be_bytes());
    ps.extend_from_slice(&[0, 0, 0, 58]);
    ps.extend_from_slice(&ns);
    let ck = csum(&ps);
    ns[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut f = eth([0x33, 0x33, 0xff, 0, 0, 1], HOST_MAC, 0x86dd);
    f.extend(ipv6(src, group, 58, 255, 0, &ns));
    let (v, out) = r.run(&f, INSIDE);
    assert_eq!(v, Verdict::Tx(INSIDE));
    let ip = &out[14..54];
    let icmp = &out[54..];
    let na = crate::wire::icmpv6::Packet::new_checked(icmp).unwrap();
    let repr = crate::wire::icmpv6::Icmpv6Repr::parse(
        &na,
        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap()),
        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap()),
    )
    .expect("a valid neighbour advertisement (checksum included)");
    let text = format!("{repr:?}");
    assert!(text.contains("NeighborAdvert"), "{text}");
    assert!(text.contains("solicited: true"), "{text}");
    assert_eq!(ip[7], 255);
    assert_eq!(&out[0..6], &HOST_MAC);
}

// -------------------------------------------------------------------------------------------------------------
// Keepalives and sequencing with several workers
// -------------------------------------------------------------------------------------------------------------

#[test]
fn keepalive_from_peer_is_reflected_and_our_reply_marks_alive() {
    let mut r = rig("key = 40\nkeepalive = { interval_s = 10, retries = 3 }");
    // The peer's keepalive: GRE(IPv4) carrying IP(us -> peer) / GRE(protocol 0).
    let mut ka_inner = vec![0u8; 28];
    let n = gre::emit_cisco_keepalive_inner(
        "198.51.100.7".parse().unwrap(),
        "192.0.2.1".parse().unwrap(),
        1,
        Some(40),
        &mut ka_inner,
    );
    ka_inner.truncate(n);
    // emit_cisco_keepalive_inner(peer, us) builds IP(peer -> us); the peer builds it from its side.
    let mut from_peer = vec![0u8; 28];
    let n = gre::emit_cisco_keepalive_inner(
        "192.0.2.1".parse().unwrap(),
        "198.51.100.7".parse().unwrap(),
        1,
        Some(40),
        &mut from_peer,
    );
    from_peer.truncate(n);
    let f = outer_gre(
        &gre_hdr(false, Some(40), None, 0x0800, &from_peer),
        &from_peer,
        0,
    );
    let (v, out) = r.run(&f, OUTSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE), "reflected");
    assert_eq!(&out[0..6], &GW_MAC);
    assert_eq!(
        &out[14..],
        &from_peer[..],
        "the inner packet goes back unchanged"
    );
    assert_eq!(r.c.tunnels[0].keepalives_reflected, 1);
    // The reply to our own keepalive: IP(peer -> us) / GRE(protocol 0) with nothing behind it.
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    f.extend_from_slice(&ka_inner);
    Processor::<VecBuf>::begin_burst(&mut r.gw, 5_000);
    assert_eq!(
        r.run(&f, OUTSIDE).0,
        Verdict::Drop(DropReason::KeepaliveConsumed)
    );
    assert_eq!(r.c.tunnels[0].keepalives_rx, 2);
    let st = &r.cp.tunnel_states()[0];
    assert_eq!(
        st.last_keepalive_tsc
            .load(std::sync::atomic::Ordering::Relaxed),
        5_000
    );
}

#[test]
fn keepalives_are_sent_and_missed_ones_take_the_tunnel_down() {
    let mut r = rig("key = 40\nkeepalive = { interval_s = 1, retries = 2 }");
    let t0 = Instant::now();
    let hz = 1_000_000_000u64;
    let (out, notices) = r.cp.tick(t0, 1, hz);
    let ka = out
        .iter()
        .find_map(|o| match o {
            Outgoing::Encap { tunnel: 0, bytes } => Some(bytes.clone()),
            _ => None,
        })
        .expect("a keepalive for tunnel 0");
    assert!(notices.is_empty());
    // The owner worker encapsulates it like data: outer GRE(IPv4, key 40) + IP(peer -> us) + GRE(0).
    let mut b = VecBuf::new(&ka);
    assert_eq!(r.gw.encap(&mut b, 0, 0, &mut r.c), Verdict::Tx(OUTSIDE));
    let out = b.to_vec();
    let g = gre::Packet::new_checked(&out[34..]).unwrap();
    assert_eq!(g.key(), Some(40));
    let inner = g.payload();
    assert_eq!(&inner[12..16], &[198, 51, 100, 7]);
    assert_eq!(&inner[16..20], &[192, 0, 2, 1]);
    assert_eq!(
        gre::Packet::new_checked(&inner[20..]).unwrap().protocol(),
        0
    );
    // 3 s without a reply > 1 s x 2 retries: down; traffic is dropped.
    let (_, notices) = r.cp.tick(t0, 3 * hz, hz);
    assert_eq!(
        notices,
        vec![crate::control::plane::Notice::TunnelDown("t1".into())]
    );
    let (v, _) = r.run(&inside_v4([10, 20, 1, 1], 64, 0, false, 10), INSIDE);
    assert_eq!(v, Verdict::Drop(DropReason::TunnelDown));
    // A reply arrives: up again.
    r.cp.tunnel_states()[0]
        .last_keepalive_tsc
        .store(3 * hz, std::sync::atomic::Ordering::Relaxed);
    let (_, notices) = r.cp.tick(t0, 3 * hz + 10, hz);
    assert_eq!(
        notices,
        vec![crate::control::plane::Notice::TunnelUp("t1".into())]
    );
}

#[test]
fn keepalive_reply_on_a_checksummed_tunnel_needs_no_gre_checksum() {
    // Found end to end: the reply to our keepalive is the inner header we built (key, no checksum); a tunnel
    // with `checksum = true` dropped it as missing_checksum, so keepalives never came back and the tunnel went
    // down 3 intervals after start.
    let mut r = rig("key = 40\nchecksum = true\nkeepalive = { interval_s = 1, retries = 3 }");
    let mut ka = vec![0u8; 28];
    let n = gre::emit_cisco_keepalive_inner(
        "198.51.100.7".parse().unwrap(),
        "192.0.2.1".parse().unwrap(),
        1,
        Some(40),
        &mut ka,
    );
    ka.truncate(n);
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    f.extend_from_slice(&ka);
    Processor::<VecBuf>::begin_burst(&mut r.gw, 7_000);
    assert_eq!(
        r.run(&f, OUTSIDE).0,
        Verdict::Drop(DropReason::KeepaliveConsumed)
    );
    assert_eq!(
        r.cp.tunnel_states()[0]
            .last_keepalive_tsc
            .load(std::sync::atomic::Ordering::Relaxed),
        7_000
    );
    // Data without a checksum on that tunnel is still refused.
    let inner = inner_from_remote([10, 0, 0, 2], 64, 0);
    let f = outer_gre(&gre_hdr(false, Some(40), None, 0x0800, &inner), &inner, 0);
    assert_eq!(
        r.run(&f, OUTSIDE).0,
        Verdict::Drop(DropReason::MissingChecksum)
    );
    // A keepalive with a wrong checksum is still refused.
    let mut bad = gre_hdr(true, Some(40), None, 0, &[]);
    bad[4] ^= 0xff;
    let f = outer_gre(&bad, &[], 0);
    assert_eq!(r.run(&f, OUTSIDE).0, Verdict::Drop(DropReason::BadChecksum));
}

#[test]
fn keepalives_are_sent_while_the_tunnel_is_down_and_bring_it_back_with_fresh_sequence_state() {
    // Found end to end: keepalives went through the data path's tunnel-down check, so a tunnel that went down
    // never sent another keepalive and never came back up.
    use std::sync::atomic::Ordering;
    let mut r = rig("key = 40\nsequence = true\nkeepalive = { interval_s = 1, retries = 2 }");
    let t0 = Instant::now();
    let hz = 1_000_000_000u64;
    let _ = r.cp.tick(t0, 1, hz);
    let (_, notices) =
        r.cp.tick(t0 + std::time::Duration::from_secs(3), 3 * hz, hz);
    assert_eq!(
        notices,
        vec![crate::control::plane::Notice::TunnelDown("t1".into())]
    );
    let (out, _) =
        r.cp.tick(t0 + std::time::Duration::from_secs(4), 4 * hz, hz);
    let ka = out
        .iter()
        .find_map(|o| match o {
            Outgoing::Encap { tunnel: 0, bytes } => Some(bytes.clone()),
            _ => None,
        })
        .expect("a keepalive while down");
    // Data is dropped while down ...
    let (v, _) = r.run(&inside_v4([10, 20, 1, 1], 64, 0, false, 10), INSIDE);
    assert_eq!(v, Verdict::Drop(DropReason::TunnelDown));
    // ... the keepalive, handed over as the control thread does, is sent.
    assert!(r.shared.handoff[0]
        .push((keepalive_handoff(&r.gw), VecBuf::new(&ka)))
        .is_ok());
    let mut sent = Vec::new();
    Processor::<VecBuf>::poll_deferred(
        &mut r.gw,
        10,
        &mut |p, b: VecBuf| {
            sent.push((p, b.to_vec()));
            true
        },
        &mut r.c,
    );
    assert_eq!(sent.len(), 1, "keepalive sent while the tunnel is down");
    assert_eq!(sent[0].0, OUTSIDE);
    let g = gre::Packet::new_checked(&sent[0].1[34..]).unwrap();
    assert_eq!(g.key(), Some(40));
    // The peer had delivered up to 1000 before it restarted; its reply brings the tunnel up and resets the
    // receive sequence state, so its restarted numbering (from 0) is accepted.
    let st = r.cp.tunnel_states()[0].clone();
    st.rx_seq.store(1000, Ordering::Relaxed);
    st.last_keepalive_tsc.store(5 * hz, Ordering::Relaxed);
    let (_, notices) =
        r.cp.tick(t0 + std::time::Duration::from_secs(5), 5 * hz, hz);
    assert_eq!(
        notices,
        vec![crate::control::plane::Notice::TunnelUp("t1".into())]
    );
    assert_eq!(
        st.rx_seq.load(Ordering::Relaxed),
        gre::RECEIVER_INITIAL_SEQUENCE
    );
    let inner = inner_from_remote([10, 0, 0, 2], 64, 0);
    let f = outer_gre(
        &gre_hdr(false, Some(40), Some(0), 0x0800, &inner),
        &inner,
        0,
    );
    assert_eq!(r.run(&f, OUTSIDE).0, Verdict::Tx(INSIDE));
}

#[test]
fn sequenced_tunnel_with_two_workers_numbers_in_order_on_its_owner() {
    let (mut gws, _shared, _cp, mut c) = rig_n("sequence = true", 2);
    let frame = inside_v4([10, 20, 1, 1], 64, 0, false, 10);
    let mut gw1 = gws.pop().unwrap();
    let mut gw0 = gws.pop().unwrap();
    // Tunnel 0 is owned by worker 0: worker 1 hands its packets over.
    let mut b = VecBuf::new(&frame);
    let why = held(gw1.handle(&mut b, INSIDE, &mut c));
    Processor::<VecBuf>::hold(&mut gw1, b, why, &mut c);
    let mut b = VecBuf::new(&frame);
    assert_eq!(gw0.handle(&mut b, INSIDE, &mut c), Verdict::Tx(OUTSIDE));
    let first = gre::Packet::new_checked(&b.to_vec()[34..])
        .unwrap()
        .sequence();
    let mut sent = Vec::new();
    Processor::<VecBuf>::poll_deferred(
        &mut gw0,
        10,
        &mut |p, b: VecBuf| {
            sent.push((p, b.to_vec()));
            true
        },
        &mut c,
    );
    assert_eq!(first, Some(0));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, OUTSIDE);
    assert_eq!(
        gre::Packet::new_checked(&sent[0].1[34..])
            .unwrap()
            .sequence(),
        Some(1)
    );
}

#[test]
fn non_ip_and_truncated_frames_are_counted() {
    let mut r = rig("");
    assert_eq!(
        r.run(&[0u8; 10], INSIDE).0,
        Verdict::Drop(DropReason::Truncated)
    );
    assert_eq!(
        r.run(&eth(IN_MAC, HOST_MAC, 0x88cc), INSIDE).0,
        Verdict::Drop(DropReason::UnsupportedEthertype)
    );
    let mut f = inside_v4([10, 20, 1, 1], 64, 0, false, 10);
    f[14 + 10] ^= 1;
    assert_eq!(
        r.run(&f, INSIDE).0,
        Verdict::Drop(DropReason::BadIpHeader),
        "bad header checksum"
    );
    let f = inside_v4([10, 20, 1, 1], 64, 0, false, 10);
    assert_eq!(
        r.run(&f[..30], INSIDE).0,
        Verdict::Drop(DropReason::Truncated)
    );
}

#[test]
fn a_single_vlan_tag_is_accepted_and_removed() {
    let mut r = rig("");
    let plain = inside_v4([10, 20, 1, 1], 64, 0, false, 10);
    let mut tagged = plain[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x04, 0xbd]);
    tagged.extend_from_slice(&plain[12..]);
    let (v1, o1) = r.run(&plain, INSIDE);
    let (v2, o2) = r.run(&tagged, INSIDE);
    assert_eq!(v1, v2);
    // Identical but for the outer IP ident (one per packet) and so the outer header checksum.
    assert_eq!(o1.len(), o2.len());
    assert_eq!(&o1[..18], &o2[..18]);
    assert_eq!(&o1[34..], &o2[34..]);
}

#[test]
fn reorder_buffer_releases_in_order_and_on_timeout() {
    let mut r = rig("sequence = true\nreorder = { window = 4, timeout_ms = 10 }");
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
    let frame = |seq: u32| outer_gre(&gre_hdr(false, None, Some(seq), 0x0800, &inner), &inner, 0);
    let send = |r: &mut Rig, seq: u32| -> Verdict {
        let mut b = VecBuf::new(&frame(seq));
        let v = r.gw.handle(&mut b, OUTSIDE, &mut r.c);
        if let Verdict::Hold(why) = v {
            Processor::<VecBuf>::hold(&mut r.gw, b, why, &mut r.c);
        }
        v
    };
    let drain = |r: &mut Rig, now: u64| -> usize {
        let mut n = 0;
        Processor::<VecBuf>::poll_deferred(
            &mut r.gw,
            now,
            &mut |p, _b: VecBuf| {
                assert_eq!(p, INSIDE);
                n += 1;
                true
            },
            &mut r.c,
        );
        n
    };
    assert_eq!(send(&mut r, 0), Verdict::Tx(INSIDE));
    assert!(send(&mut r, 2).is_hold(), "ahead of a gap: held");
    assert!(send(&mut r, 3).is_hold());
    assert_eq!(drain(&mut r, 1_000), 0, "1 is still missing");
    assert_eq!(send(&mut r, 1), Verdict::Tx(INSIDE), "the gap fills");
    assert_eq!(drain(&mut r, 1_000), 2, "2 and 3 follow in order");
    assert_eq!(r.c.tunnels[0].decap, 4);
    // A gap that never fills: 6 is released after the 10 ms timeout (clock: 1 GHz TSC in the rig).
    assert!(send(&mut r, 6).is_hold());
    assert_eq!(drain(&mut r, 2_000), 0);
    assert_eq!(drain(&mut r, 1_000 + 11_000_000), 1);
    assert_eq!(
        send(&mut r, 5),
        Verdict::Drop(DropReason::LateSequence),
        "5 is late once 6 went"
    );
    assert_eq!(r.c.tunnels[0].decap, 5);
}

#[test]
fn outer_fragments_are_reassembled_then_decapsulated() {
    let mut r = rig("key = 1001");
    let inner = ipv4(
        [10, 20, 3, 4],
        [10, 0, 0, 2],
        17,
        30,
        0,
        false,
        &udp_payload(1000),
    );
    let whole = outer_gre(&gre_hdr(false, Some(1001), None, 0x0800, &inner), &inner, 0);
    // What the unfragmented packet becomes.
    let (v, expect) = r.run(&whole, OUTSIDE);
    assert_eq!(v, Verdict::Tx(INSIDE));
    // The same datagram in two outer fragments, the second first.
    let payload = &whole[34..];
    let frag = |off: usize, len: usize, more: bool| {
        let mut f = whole[..34].to_vec();
        f[14 + 2..14 + 4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
        let word = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
        f[14 + 6..14 + 8].copy_from_slice(&word.to_be_bytes());
        f[14 + 10..14 + 12].fill(0);
        let ck = csum(&f[14..34]);
        f[14 + 10..14 + 12].copy_from_slice(&ck.to_be_bytes());
        f.extend_from_slice(&payload[off..off + len]);
        f
    };
    let first = frag(0, 520, true);
    let second = frag(520, payload.len() - 520, false);
    for f in [second, first] {
        let mut b = VecBuf::new(&f);
        let why = held(r.gw.handle(&mut b, OUTSIDE, &mut r.c));
        Processor::<VecBuf>::hold(&mut r.gw, b, why, &mut r.c);
    }
    let mut out = Vec::new();
    Processor::<VecBuf>::poll_deferred(
        &mut r.gw,
        2_000,
        &mut |p, b: VecBuf| {
            out.push((p, b.to_vec()));
            true
        },
        &mut r.c,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, INSIDE);
    assert_eq!(
        out[0].1, expect,
        "the reassembled datagram decapsulates like the unfragmented one"
    );
    assert_eq!(r.c.fragments_reassembled, 1);
    assert_eq!(r.c.drops[DropReason::FragmentReassembled as usize], 1);
    // A fragment whose partner never comes is dropped as outer_fragment after a second (1 GHz test clock).
    let mut b = VecBuf::new(&frag(0, 520, true));
    let why = held(r.gw.handle(&mut b, OUTSIDE, &mut r.c));
    Processor::<VecBuf>::hold(&mut r.gw, b, why, &mut r.c);
    Processor::<VecBuf>::poll_deferred(
        &mut r.gw,
        3_000_000_000,
        &mut |_, _b: VecBuf| true,
        &mut r.c,
    );
    assert_eq!(r.c.drops[DropReason::OuterFragment as usize], 1);
}

// -------------------------------------------------------------------------------------------------------------
// The IPv4 fast paths against the general rules
// -------------------------------------------------------------------------------------------------------------

/// Fix the IPv4 header checksum of a 20-byte header at `at` (when the frame still holds one).
fn fix_ipv4_checksum(f: &mut [u8], at: usize) {
    if f.len() >= at + 20 && f[at] == 0x45 {
        f[at + 10] = 0;
        f[at + 11] = 0;
        let ck = csum(&f[at..at + 20]);
        f[at + 10..at + 12].copy_from_slice(&ck.to_be_bytes());
    }
}

/// Frames near the fast paths' shape (encapsulation on the inside, decapsulation on the outside) and the offset
/// of their inner IPv4 header (0: none).
fn fast_path_frames() -> Vec<(usize, Vec<u8>, usize)> {
    let mut v = Vec::new();
    for dst in [
        [10, 20, 0, 5],
        [10, 60, 1, 1],
        [10, 0, 0, 2],
        [10, 0, 0, 9],
        [10, 0, 0, 1],
        [192, 0, 2, 1],
        [224, 0, 0, 5],
    ] {
        v.push((INSIDE, inside_v4(dst, 64, 0x03, true, 18), 0));
        v.push((INSIDE, inside_v4(dst, 2, 0xb8, false, 1400), 0));
    }
    // IPv6 from the host: routed (t1's 2001:db8:20::/48), ours, on-link, unrouted, multicast, link-local; the
    // large ones exceed t1's MTU (a Packet Too Big from the general rules).
    for dst in [
        "2001:db8:20::9",
        "2001:db8:1::1",
        "2001:db8:1::2",
        "2001:db8:99::1",
        "ff02::1",
        "ff0e::5",
        "fe80::7",
    ] {
        for (hop, tc, n) in [(64u8, 0x03u8, 18usize), (2, 0xb9, 1400), (9, 0, 1500)] {
            let mut f = eth(IN_MAC, HOST_MAC, 0x86dd);
            f.extend(ipv6(
                v6("2001:db8:1::2"),
                v6(dst),
                17,
                hop,
                tc,
                &udp_payload(n),
            ));
            v.push((INSIDE, f, 0));
        }
    }
    for key in [None, Some(1001), Some(7)] {
        for dst in [[10, 0, 0, 2], [10, 0, 0, 9], [10, 20, 0, 9], [192, 0, 2, 1]] {
            for (proto, ttl) in [(17u8, 60u8), (47, 60), (17, 1)] {
                let mut inner = inner_from_remote(dst, ttl, 0x02);
                inner[9] = proto;
                fix_ipv4_checksum(&mut inner, 0);
                let g = gre_hdr(false, key, None, 0x0800, &inner);
                let io = ETH_LEN + 20 + g.len();
                v.push((OUTSIDE, outer_gre(&g, &inner, 0x01), io));
                v.push((OUTSIDE, outer_gre(&g, &inner, 0x03), io));
            }
        }
        // IPv6 inside: to the inside neighbour, on-link without a neighbour, into a tunnel again, to a tunnel
        // endpoint of ours (t6's), routed outside, multicast; hop limits 60 and 1.
        for dst in [
            "2001:db8:1::2",
            "2001:db8:1::9",
            "2001:db8:20::9",
            "2001:db8:ffff::1",
            "2001:db8:eeee::5",
            "ff02::1",
        ] {
            for (next, hop, tc) in [(17u8, 60u8, 0x02u8), (47, 60, 0x01), (17, 1, 0)] {
                let inner = ipv6(
                    v6("2001:db8:20::5"),
                    v6(dst),
                    next,
                    hop,
                    tc,
                    &udp_payload(18),
                );
                let g = gre_hdr(false, key, None, 0x86dd, &inner);
                let io = ETH_LEN + 20 + g.len();
                v.push((OUTSIDE, outer_gre(&g, &inner, 0x01), io));
                v.push((OUTSIDE, outer_gre(&g, &inner, 0x03), io));
            }
        }
    }
    // Over IPv6 (t6: 2001:db8:eeee::7 -> 2001:db8:ffff::1, key 6), IPv4 and IPv6 inside.
    for key in [Some(6), None, Some(1001)] {
        let mut inners = Vec::new();
        for (dst, ttl) in [
            ([10, 0, 0, 2], 60u8),
            ([10, 60, 0, 9], 60),
            ([10, 0, 0, 2], 1),
        ] {
            inners.push((0x0800u16, inner_from_remote(dst, ttl, 0x02)));
        }
        for (dst, hop) in [
            ("2001:db8:1::2", 60u8),
            ("2001:db8:20::1", 60),
            ("2001:db8:1::2", 1),
        ] {
            let i = ipv6(
                v6("2001:db8:60::5"),
                v6(dst),
                17,
                hop,
                0x01,
                &udp_payload(18),
            );
            inners.push((0x86dd, i));
        }
        for (proto, inner) in inners {
            let g = gre_hdr(false, key, None, proto, &inner);
            let io = ETH_LEN + 40 + g.len();
            for tc in [0x01u8, 0x03] {
                v.push((OUTSIDE, outer_gre6(&g, &inner, tc), io));
            }
        }
    }
    v
}

const ETH_LEN: usize = 14;

const FAST_PATH_EXTRAS: [&str; 8] = [
    "",
    // A second tunnel that routes the multicast and reserved ranges (which are never routed).
    "key = 1001\n[[tunnel]]\nname = \"mc\"\nlocal = \"192.0.2.1\"\nremote = \"203.0.113.9\"\nroutes = [\"224.0.0.0/3\", \"ff00::/8\", \"fe80::/10\"]",
    "key = 1001",
    "key = 1001\nttl = \"inherit\"\ntos = \"inherit\"",
    "key = 1001\nchecksum = true",
    "key = 1001\nallowed_sources = [\"10.20.0.0/16\"]",
    "key = 1001\ntos = 0x20\nmtu = 1300",
    // A second tunnel whose routes cover our own addresses (inside 10.0.0.1, outside 192.0.2.1, and
    // 2001:db8:1::1): packets to them are ours, not the tunnel's, on the fast path as in the general rules.
    "key = 1001\n[[tunnel]]\nname = \"own\"\nlocal = \"192.0.2.1\"\nremote = \"203.0.113.9\"\nroutes = [\"10.0.0.0/30\", \"192.0.2.0/31\", \"2001:db8:1::/126\"]",
];

/// Run `f` through a gateway with the fast paths and one without; assert the same verdict, bytes and counters.
fn assert_fast_equals_general(fast: &mut Rig, slow: &mut Rig, f: &[u8], port: usize, what: &str) {
    let (vf, of) = fast.run(f, port);
    let (vs, os) = slow.run(f, port);
    assert_eq!(vf, vs, "verdict: {what}");
    assert_eq!(of, os, "bytes: {what}");
    assert_same_counters(&fast.c, &slow.c, what);
}

/// Equal counters, except `general_path`: the gateway without fast paths takes every packet the general way.
fn assert_same_counters(fast: &Counters, slow: &Counters, what: &str) {
    let mut slow = slow.clone();
    slow.general_path = fast.general_path;
    assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "counters: {what}");
}

fn fast_and_general(extra: &str) -> (Rig, Rig) {
    let fast = rig(extra);
    let mut slow = rig(extra);
    slow.gw.set_fast_path(false);
    (fast, slow)
}

/// The fast paths only take packets the general rules treat the same way. Sweep: every frame near their
/// shape, under several tunnel settings, with every byte of its headers changed in turn (three ways, with
/// the IPv4 checksums recomputed so the change reaches the later checks, and once without), gives the same
/// verdict, bytes and counters with the fast paths as without.
#[test]
fn fast_path_equals_general_rules() {
    let frames = fast_path_frames();
    for extra in FAST_PATH_EXTRAS {
        let (mut fast, mut slow) = fast_and_general(extra);
        for (port, base, io) in &frames {
            assert_fast_equals_general(&mut fast, &mut slow, base, *port, "unchanged");
            let end = if *io != 0 {
                io + if base[*io] >> 4 == 6 { 40 } else { 20 }
            } else if base[12] == 0x86 {
                ETH_LEN + 40 + 8
            } else {
                ETH_LEN + 20 + 8
            };
            for at in 0..end.min(base.len()) {
                for x in [0x01u8, 0x40, 0x80, 0xff] {
                    let mut f = base.clone();
                    f[at] ^= x;
                    if x != 0xff {
                        fix_ipv4_checksum(&mut f, ETH_LEN);
                        if *io != 0 {
                            fix_ipv4_checksum(&mut f, *io);
                        }
                    }
                    let what = format!("{extra:?} port {port} byte {at} ^ {x:#x}");
                    assert_fast_equals_general(&mut fast, &mut slow, &f, *port, &what);
                }
            }
            for resize in [-2i32, -1, 1, 6] {
                let mut f = base.clone();
                if resize < 0 {
                    f.truncate(f.len() - (-resize) as usize);
                } else {
                    f.extend(std::iter::repeat_n(0, resize as usize));
                }
                let what = format!("{extra:?} port {port} resized {resize}");
                assert_fast_equals_general(&mut fast, &mut slow, &f, *port, &what);
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// The same with several random changes at once.
    #[test]
    fn fast_path_equals_general_rules_random(
        extra in 0usize..8,
        pick in 0usize..1000,
        edits in proptest::collection::vec((0usize..80, 1u8..=255), 1..4),
        resize in -3i32..8,
        fix in 0u8..4,
    ) {
        let frames = fast_path_frames();
        let (port, base, io) = &frames[pick % frames.len()];
        let mut f = base.clone();
        for (at, x) in &edits {
            if let Some(b) = f.get_mut(*at) {
                *b ^= x;
            }
        }
        if resize < 0 {
            f.truncate(f.len().saturating_sub((-resize) as usize));
        } else {
            f.extend(std::iter::repeat_n(0, resize as usize));
        }
        if fix & 1 != 0 {
            fix_ipv4_checksum(&mut f, ETH_LEN);
        }
        if fix & 2 != 0 && *io != 0 {
            fix_ipv4_checksum(&mut f, *io);
        }
        let (mut fast, mut slow) = fast_and_general(FAST_PATH_EXTRAS[extra]);
        // Twice: the second time with the caches the first filled.
        for _ in 0..2 {
            assert_fast_equals_general(&mut fast, &mut slow, &f, *port, "random edits");
        }
    }
}

/// The worker's way: `prepare_burst` stages the burst's encap lookups, then `process` takes each packet. Bursts
/// of every frame of the sweep's shapes (and changed copies, some now to other tunnels or none), per port,
/// give the same verdicts, bytes and counters as the general rules one packet at a time.
#[test]
fn staged_bursts_equal_general_rules() {
    let frames = fast_path_frames();
    for extra in FAST_PATH_EXTRAS {
        let (mut fast, mut slow) = fast_and_general(extra);
        for port in [INSIDE, OUTSIDE] {
            let mut all: Vec<Vec<u8>> = Vec::new();
            for (p, base, _) in &frames {
                if *p != port {
                    continue;
                }
                all.push(base.clone());
                for (at, x) in [
                    (12usize, 0x01u8),
                    (14, 0x01),
                    (30, 0x01),
                    (31, 0x80),
                    (33, 0x07),
                    // IPv6: the destination's /48 and its last byte (IPv4: payload bytes).
                    (40, 0x01),
                    (53, 0x80),
                ] {
                    let mut f = base.clone();
                    f[at] ^= x;
                    fix_ipv4_checksum(&mut f, ETH_LEN);
                    all.push(f);
                }
                let mut short = base.clone();
                short.truncate(ETH_LEN + 19);
                all.push(short);
            }
            for burst in [1usize, 7, 32] {
                for chunk in all.chunks(burst) {
                    let mut bufs: Vec<VecBuf> = chunk.iter().map(|f| VecBuf::new(f)).collect();
                    fast.gw.prepare_burst(&bufs, port, &fast.c);
                    let mut got = Vec::new();
                    for b in bufs.iter_mut() {
                        got.push(fast.gw.process(b, port, &mut fast.c));
                    }
                    for ((f, b), v) in chunk.iter().zip(&bufs).zip(got) {
                        let (vs, os) = slow.run(f, port);
                        let what = format!("{extra:?} port {port} burst {burst} frame {f:02x?}");
                        assert_eq!(v, vs, "verdict: {what}");
                        assert_eq!(b.to_vec(), os, "bytes: {what}");
                    }
                    assert_same_counters(
                        &fast.c,
                        &slow.c,
                        &format!("{extra:?} port {port} burst {burst}"),
                    );
                }
            }
        }
    }
}

#[test]
fn fast_paths_take_the_common_shapes() {
    // The shapes the fast paths exist for do go through them: the results equal the general rules' (above),
    // and here the counters show the packets forwarded, so a fast path that silently declined everything
    // would still pass the equivalence test but not this one's timing-free check of its caches.
    let mut r = rig("key = 1001");
    let (v, out) = r.run(&inside_v4([10, 20, 0, 5], 64, 0, true, 18), INSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    assert_eq!(out.len(), 14 + 20 + 8 + 20 + 26);
    let inner = inner_from_remote([10, 0, 0, 2], 60, 0);
    let g = gre_hdr(false, Some(1001), None, 0x0800, &inner);
    let (v, out) = r.run(&outer_gre(&g, &inner, 0), OUTSIDE);
    assert_eq!(v, Verdict::Tx(INSIDE));
    assert_eq!(
        &out[14..],
        &{
            let mut i = inner.clone();
            i[8] -= 1;
            fix_ipv4_checksum(&mut i, 0);
            i
        }[..]
    );
    assert_eq!(r.c.tunnels[0].encap, 1);
    assert_eq!(r.c.tunnels[0].decap, 1);
    assert_eq!(r.gw.fast_path_hits(), 2, "both packets took a fast path");
    // IPv6 into the tunnel: its own fast path, the inner hop limit decremented, protocol type IPv6.
    let mut f = eth(IN_MAC, HOST_MAC, 0x86dd);
    f.extend(ipv6(
        v6("2001:db8:1::2"),
        v6("2001:db8:20::9"),
        17,
        64,
        0x02,
        &udp_payload(18),
    ));
    let (v, out) = r.run(&f, INSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    assert_eq!(out.len(), f.len() + 20 + 8);
    let g = gre::Packet::new_checked(&out[34..]).unwrap();
    assert_eq!((g.key(), g.protocol()), (Some(1001), 0x86dd));
    assert_eq!(g.payload()[7], 63);
    assert_eq!(r.c.tunnels[0].encap, 2);
    assert_eq!(
        r.gw.fast_path_hits(),
        3,
        "the IPv6 packet took the fast path"
    );
    // IPv6 out of the tunnel, to the inside neighbour: the decap fast path's IPv6 branch.
    let inner = ipv6(
        v6("2001:db8:20::5"),
        v6("2001:db8:1::2"),
        17,
        60,
        0,
        &udp_payload(18),
    );
    let g = gre_hdr(false, Some(1001), None, 0x86dd, &inner);
    let (v, out) = r.run(&outer_gre(&g, &inner, 0), OUTSIDE);
    assert_eq!(v, Verdict::Tx(INSIDE));
    assert_eq!(&out[..14], &eth(HOST_MAC, IN_MAC, 0x86dd)[..]);
    let mut expect = inner.clone();
    expect[7] -= 1;
    assert_eq!(&out[14..], &expect[..]);
    assert_eq!(r.c.tunnels[0].decap, 2);
    assert_eq!(
        r.gw.fast_path_hits(),
        4,
        "the IPv6 inner packet took the fast path"
    );
    // Over IPv6 (t6), IPv4 and IPv6 inside: the IPv6-outer decap fast path.
    for (proto, inner) in [
        (0x0800u16, inner_from_remote([10, 0, 0, 2], 60, 0)),
        (
            0x86dd,
            ipv6(
                v6("2001:db8:60::5"),
                v6("2001:db8:1::2"),
                17,
                60,
                0,
                &udp_payload(18),
            ),
        ),
    ] {
        let f = outer_gre6(&gre_hdr(false, Some(6), None, proto, &inner), &inner, 0);
        let (v, out) = r.run(&f, OUTSIDE);
        assert_eq!(v, Verdict::Tx(INSIDE));
        assert_eq!(out.len(), 14 + inner.len());
        assert_eq!(&out[12..14], &proto.to_be_bytes());
    }
    assert_eq!(r.c.tunnels[1].decap, 2);
    assert_eq!(
        r.gw.fast_path_hits(),
        6,
        "both took the IPv6-outer fast path"
    );
    assert_eq!(r.c.general_path, 0, "nothing took the general rules");
    // A shape the fast paths leave alone (TTL 1: an ICMP error) is counted as general-path traffic.
    let _ = r.run(&inside_v4([10, 20, 0, 5], 1, 0, true, 18), INSIDE);
    assert_eq!(r.c.general_path, 1);
}

/// A NIC's rx IPv4 checksum verdict (`PacketBuf::rx_ipv4_cksum_good`): GOOD lets the fast paths skip their own
/// check of the received header; without it the same bytes are checked in software (and a wrong checksum is
/// dropped as bad_ip_header). The header here is deliberately wrong so the two cases differ.
#[test]
fn nic_verified_ipv4_header_skips_the_software_check() {
    let mut r = rig("key = 1001");
    let mut bad_encap = inside_v4([10, 20, 0, 5], 64, 0, true, 18);
    bad_encap[14 + 10] ^= 0x5a;
    let inner = inner_from_remote([10, 0, 0, 2], 60, 0);
    let g = gre_hdr(false, Some(1001), None, 0x0800, &inner);
    let mut bad_decap = outer_gre(&g, &inner, 0);
    bad_decap[14 + 10] ^= 0x5a;
    for (frame, port, out_port) in [(&bad_encap, INSIDE, OUTSIDE), (&bad_decap, OUTSIDE, INSIDE)] {
        // Software: dropped (a header checksum error counts as bad_ip_header).
        let mut b = VecBuf::new(frame);
        assert_eq!(
            r.gw.handle(&mut b, port, &mut r.c),
            Verdict::Drop(DropReason::BadIpHeader)
        );
        // Verified by the NIC: forwarded on the fast path.
        let hits = r.gw.fast_path_hits();
        let mut b = VecBuf::new(frame);
        b.set_rx_ipv4_cksum_good(true);
        assert_eq!(r.gw.handle(&mut b, port, &mut r.c), Verdict::Tx(out_port));
        assert_eq!(r.gw.fast_path_hits(), hits + 1);
    }
    assert_eq!((r.c.tunnels[0].encap, r.c.tunnels[0].decap), (1, 1));
    // The verdict is about the received header only: a wrong inner header is still found in software.
    let mut bad_inner = inner.clone();
    bad_inner[10] ^= 0x5a;
    let g = gre_hdr(false, Some(1001), None, 0x0800, &bad_inner);
    let mut b = VecBuf::new(&outer_gre(&g, &bad_inner, 0));
    b.set_rx_ipv4_cksum_good(true);
    assert!(matches!(
        r.gw.handle(&mut b, OUTSIDE, &mut r.c),
        Verdict::Drop(_)
    ));
}
