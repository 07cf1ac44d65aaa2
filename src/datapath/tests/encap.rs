//! Encapsulation: keys, checksum, sequence, TTL and TOS, IPv4/IPv6 inner over IPv4/IPv6 outer.
use super::rig::*;
use crate::datapath::Verdict;
use crate::wire::gre;

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
