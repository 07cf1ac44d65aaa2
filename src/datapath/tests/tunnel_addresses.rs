//! A tunnel's own addresses and its connected subnet: echo requests answered with routed replies (back through
//! the tunnel for its peer), other traffic to them counted as `local_unhandled`, and the subnet routed into the
//! tunnel.
use super::rig::*;
use crate::datapath::gateway::{REPLY_BURST, REPLY_RATE_PER_S};
use crate::datapath::Verdict;
use crate::stats::DropReason;

/// t1 (no key, checksum or sequence) with an IPv4 and an IPv6 address; its peer is .2 / ::2.
const ADDRESSED: &str = "address = [\"169.254.100.1/29\", \"fd00:100::1/125\"]";
const TUN4: [u8; 4] = [169, 254, 100, 1];
const PEER4: [u8; 4] = [169, 254, 100, 2];

fn echo4(src: [u8; 4], dst: [u8; 4], ttl: u8) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x42, 0x42, 0, 7];
    icmp.extend_from_slice(b"health-check");
    let ck = csum(&icmp);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    ipv4(src, dst, 1, ttl, 0, false, &icmp)
}

fn echo6(src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
    let mut icmp = vec![128, 0, 0, 0, 0, 9, 0, 1, 1, 2, 3, 4];
    let mut ps = src.to_vec();
    ps.extend_from_slice(&dst);
    ps.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    ps.extend_from_slice(&[0, 0, 0, 58]);
    ps.extend_from_slice(&icmp);
    let ck = csum(&ps);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    ipv6(src, dst, 58, 64, 0, &icmp)
}

/// The outer IPv4 + GRE (4 bytes: no options on t1) of a frame t1 sent, and the inner packet after them.
fn sent_into_t1(out: &[u8]) -> &[u8] {
    assert_eq!(&out[12..14], &[8, 0], "outer IPv4");
    assert_eq!(out[14 + 9], 47, "GRE");
    assert_eq!(&out[14 + 12..14 + 20], &[192, 0, 2, 1, 198, 51, 100, 7]);
    assert_eq!(&out[0..6], &GW_MAC, "to the outer next hop");
    assert_eq!(csum(&out[14..34]), 0, "outer header checksum");
    &out[14 + 20 + 4..]
}

#[test]
fn echo_from_the_peer_through_the_tunnel_is_answered_back_through_it() {
    let mut r = rig(ADDRESSED);
    let inner = echo4(PEER4, TUN4, 64);
    let f = outer_gre(&gre_hdr(false, None, None, 0x0800, &inner), &inner, 0);
    let (v, out) = r.run(&f, OUTSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    let reply = sent_into_t1(&out);
    assert_eq!(&out[14 + 20 + 2..14 + 20 + 4], &[8, 0], "GRE protocol IPv4");
    assert_eq!(&reply[12..20], &[169, 254, 100, 1, 169, 254, 100, 2]);
    assert_eq!(reply[8], 64, "a fresh TTL, not decremented");
    assert_eq!(csum(&reply[..20]), 0);
    assert_eq!(reply[20], 0, "echo reply");
    assert_eq!(csum(&reply[20..]), 0, "ICMP checksum");
    assert_eq!(
        &reply[24..],
        &inner[24..],
        "identifier, sequence and data echoed"
    );
    assert_eq!((r.c.tunnels[0].decap, r.c.tunnels[0].encap), (1, 1));

    // IPv6 inside the same tunnel.
    let inner = echo6(v6("fd00:100::2"), v6("fd00:100::1"));
    let f = outer_gre(&gre_hdr(false, None, None, 0x86dd, &inner), &inner, 0);
    let (v, out) = r.run(&f, OUTSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    let reply = sent_into_t1(&out);
    assert_eq!(
        &out[14 + 20 + 2..14 + 20 + 4],
        &[0x86, 0xdd],
        "GRE protocol IPv6"
    );
    assert_eq!(&reply[8..24], &v6("fd00:100::1"));
    assert_eq!(&reply[24..40], &v6("fd00:100::2"));
    assert_eq!(reply[40], 129, "echo reply");
    let mut ps = reply[8..40].to_vec();
    ps.extend_from_slice(&((reply.len() - 40) as u32).to_be_bytes());
    ps.extend_from_slice(&[0, 0, 0, 58]);
    ps.extend_from_slice(&reply[40..]);
    assert_eq!(csum(&ps), 0, "ICMPv6 checksum");
}

#[test]
fn echo_from_an_inside_host_to_a_tunnel_address_is_routed_back_to_it() {
    let mut r = rig(ADDRESSED);
    let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
    f.extend(echo4([10, 0, 0, 2], TUN4, 64));
    let (v, out) = r.run(&f, INSIDE);
    assert_eq!(v, Verdict::Tx(INSIDE));
    assert_eq!((&out[0..6], &out[6..12]), (&HOST_MAC[..], &IN_MAC[..]));
    assert_eq!(&out[14 + 12..14 + 20], &[169, 254, 100, 1, 10, 0, 0, 2]);
    assert_eq!(out[34], 0, "echo reply");
    // The same through the fast path's inside entry: declined there, answered by the general rules.
    r.gw.set_fast_path(false);
    assert_eq!(r.run(&f, INSIDE).0, Verdict::Tx(INSIDE));
}

#[test]
fn other_traffic_to_a_tunnel_address_is_local_unhandled() {
    let mut r = rig(ADDRESSED);
    // UDP (think BFD) from the peer through the tunnel.
    let inner = ipv4(PEER4, TUN4, 17, 255, 0, false, &udp_payload(24));
    let f = outer_gre(&gre_hdr(false, None, None, 0x0800, &inner), &inner, 0);
    assert_eq!(
        r.run(&f, OUTSIDE).0,
        Verdict::Drop(DropReason::LocalUnhandled)
    );
    // An echo reply (not a request) and TCP from an inside host.
    let mut icmp = vec![0, 0, 0, 0, 0, 1, 0, 1];
    let ck = csum(&icmp);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
    f.extend(ipv4([10, 0, 0, 2], TUN4, 1, 64, 0, false, &icmp));
    assert_eq!(
        r.run(&f, INSIDE).0,
        Verdict::Drop(DropReason::LocalUnhandled)
    );
    let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
    f.extend(ipv4([10, 0, 0, 2], TUN4, 6, 64, 0, false, &[0; 20]));
    assert_eq!(
        r.run(&f, INSIDE).0,
        Verdict::Drop(DropReason::LocalUnhandled)
    );
    // A packet decapsulated to a port address is for us as well, not routed to ourselves.
    let inner = echo4(PEER4, [10, 0, 0, 1], 64);
    let f = outer_gre(&gre_hdr(false, None, None, 0x0800, &inner), &inner, 0);
    let (v, out) = r.run(&f, OUTSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE), "answered back into the tunnel");
    assert_eq!(
        &sent_into_t1(&out)[12..20],
        &[10, 0, 0, 1, 169, 254, 100, 2]
    );
}

#[test]
fn the_tunnel_subnet_is_routed_into_the_tunnel() {
    let mut r = rig(ADDRESSED);
    for fast in [true, false] {
        r.gw.set_fast_path(fast);
        let f = inside_v4(PEER4, 64, 0, false, 32);
        let (v, out) = r.run(&f, INSIDE);
        assert_eq!(v, Verdict::Tx(OUTSIDE), "fast path {fast}");
        let inner = sent_into_t1(&out);
        assert_eq!(&inner[16..20], &PEER4);
        assert_eq!(inner[8], 63, "a router hop");
    }
    // Past the /29: not into the tunnel (the default route is an outer route: no plain IP there).
    let f = inside_v4([169, 254, 100, 9], 64, 0, false, 32);
    assert_eq!(r.run(&f, INSIDE).0, Verdict::Drop(DropReason::NoRoute));
}

#[test]
fn routed_echo_replies_take_the_reply_rate_limit() {
    let mut r = rig(ADDRESSED);
    let inner = echo4(PEER4, TUN4, 64);
    let f = outer_gre(&gre_hdr(false, None, None, 0x0800, &inner), &inner, 0);
    let burst = REPLY_BURST as usize;
    let mut sent = 0;
    for _ in 0..burst + 100 {
        match r.run(&f, OUTSIDE).0 {
            Verdict::Tx(OUTSIDE) => sent += 1,
            Verdict::Drop(DropReason::ReplyRateLimited) => {}
            v => panic!("unexpected {v:?}"),
        }
    }
    assert_eq!(
        sent, burst,
        "a burst of {burst} at a fixed clock ({REPLY_RATE_PER_S}/s after)"
    );
}
