//! Local answers: ARP, neighbour discovery and echo for the gateway's own addresses, and their rate limits.
use super::rig::*;
use crate::buf::VecBuf;
use crate::datapath::gateway::Event;
use crate::datapath::{Processor, Verdict};
use crate::stats::DropReason;

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
