//! ICMP errors the gateway sends: fragmentation needed / packet too big with the tunnel MTU, time exceeded, and
//! their rate limit.
use super::rig::*;
use crate::datapath::Verdict;

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
