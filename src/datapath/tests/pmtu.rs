//! Outer path MTU discovery through the whole gateway: ICMP fragmentation needed / packet too big quoting our
//! GRE packets lower the tunnel's MTU for the inner traffic (frag-needed, packet-too-big, fragmentation), in
//! the fast paths and the general rules alike, shared by all workers and kept across table rebuilds; quotes of
//! other packets change nothing.
use super::rig::*;
use crate::buf::VecBuf;
use crate::config::TunnelCfg;
use crate::datapath::gateway::Gateway;
use crate::datapath::{Processor, Verdict};
use crate::pmtu::{self, EXPIRES_MS};
use crate::stats::DropReason;
use crate::wire::{gre, icmpv4, icmpv6};
use std::sync::Arc;
use std::time::Instant;

const ROUTER: [u8; 4] = [192, 0, 2, 254];
const LOCAL: [u8; 4] = [192, 0, 2, 1];
const REMOTE: [u8; 4] = [198, 51, 100, 7];
/// TSC ticks per ms in the rig (1 GHz).
const MS: u64 = 1_000_000;

/// Our GRE packet from `src` to `dst` with GRE header `g`, as a router's ICMP error quotes it: the first
/// `quote` bytes (of 1400 + headers).
fn our_packet(src: [u8; 4], dst: [u8; 4], g: &[u8], quote: usize) -> Vec<u8> {
    let inner = ipv4(
        [10, 0, 0, 2],
        [10, 20, 1, 1],
        17,
        63,
        0,
        true,
        &udp_payload(1372),
    );
    let mut p = g.to_vec();
    p.extend(inner);
    let mut ip = ipv4(src, dst, 47, 64, 0, true, &p);
    ip.truncate(quote);
    ip
}

/// An ICMP fragmentation needed from the router to `to`, next-hop MTU `mtu`, quoting `quote`.
fn frag_needed(to: [u8; 4], mtu: u16, quote: &[u8]) -> Vec<u8> {
    let mut icmp = vec![3, 4, 0, 0, 0, 0];
    icmp.extend_from_slice(&mtu.to_be_bytes());
    icmp.extend_from_slice(quote);
    let ck = csum(&icmp);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    f.extend(ipv4(ROUTER, to, 1, 60, 0, false, &icmp));
    f
}

/// The usual case: t1 (key 1001) quoted in full, next-hop MTU `mtu`.
fn t1_frag_needed(mtu: u16) -> Vec<u8> {
    let g = gre_hdr(false, Some(1001), None, 0x0800, &[]);
    frag_needed(LOCAL, mtu, &our_packet(LOCAL, REMOTE, &g, 548))
}

fn next_hop_mtu(icmp_error: &[u8]) -> u16 {
    icmpv4::Packet::new_checked(&icmp_error[34..])
        .unwrap()
        .next_hop_mtu()
}

fn set_now(gw: &mut Gateway<VecBuf>, ticks: u64) {
    Processor::<VecBuf>::begin_burst(gw, ticks);
}

#[test]
fn frag_needed_lowers_the_tunnel_mtu_and_df_traffic_gets_it_back() {
    for fast in [true, false] {
        let mut r = rig("key = 1001");
        r.gw.set_fast_path(fast);
        assert_eq!(r.gw.tables().tunnels[0].mtu.get(), 1472);
        // 1400 bytes fit the configured 1472.
        let (v, _) = r.run(&inside_v4([10, 20, 1, 1], 64, 0, true, 1372), INSIDE);
        assert_eq!(v, Verdict::Tx(OUTSIDE));
        let (v, _) = r.run(&t1_frag_needed(1400), OUTSIDE);
        assert_eq!(v, Verdict::Drop(DropReason::PmtuLearned));
        // Outer 1400 = inner 1372 + IPv4 20 + GRE with key 8.
        assert_eq!(r.gw.tables().tunnels[0].mtu.get(), 1372);
        let (v, out) = r.run(&inside_v4([10, 20, 1, 1], 64, 0, true, 1372), INSIDE);
        assert_eq!(v, Verdict::Tx(INSIDE), "fast path {fast}");
        assert_eq!(&out[34..36], &[3, 4], "fragmentation needed");
        assert_eq!(next_hop_mtu(&out), 1372, "the learned inner MTU");
        // Exactly the new MTU still passes, and leaves as a 1400-byte outer packet.
        let (v, out) = r.run(&inside_v4([10, 20, 1, 1], 64, 0, true, 1344), INSIDE);
        assert_eq!(v, Verdict::Tx(OUTSIDE));
        assert_eq!(out.len() - 14, 1400);
        // Inner IPv6: packet too big with the same MTU.
        let mut f = eth(IN_MAC, HOST_MAC, 0x86dd);
        f.extend(ipv6(
            v6("2001:db8:1::2"),
            v6("2001:db8:20::9"),
            17,
            9,
            0,
            &udp_payload(1372 - 40),
        ));
        let (v, out) = r.run(&f, INSIDE);
        assert_eq!(v, Verdict::Tx(INSIDE));
        let icmp = icmpv6::Packet::new_checked(&out[54..]).unwrap();
        assert_eq!(icmp.msg_type(), icmpv6::message_type::PACKET_TOO_BIG);
        assert_eq!(u32::from_be_bytes(icmp.rest_of_header()), 1372);
    }
}

#[test]
fn non_df_traffic_is_fragmented_to_the_learned_mtu() {
    let mut r = rig("key = 1001");
    let (v, _) = r.run(&t1_frag_needed(1400), OUTSIDE);
    assert_eq!(v, Verdict::Drop(DropReason::PmtuLearned));
    let frame = inside_v4([10, 20, 1, 1], 64, 0, false, 1400);
    let (v, first) = r.run(&frame, INSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    let rest = deferred(&mut r.gw, 2_000, &mut r.c);
    assert_eq!(rest.len(), 1, "1428 bytes into 1372: two fragments");
    for out in std::iter::once(&first).chain(rest.iter().map(|(_, b)| b)) {
        assert!(out.len() - 14 <= 1400, "outer {} bytes", out.len() - 14);
        let g = gre::Packet::new_checked(&out[34..]).unwrap();
        assert_eq!(g.key(), Some(1001));
    }
}

#[test]
fn quotes_of_no_tunnel_change_nothing() {
    let mut r = rig("key = 1001");
    let keyed = |k| gre_hdr(false, Some(k), None, 0x0800, &[]);
    let cases = [
        // Wrong key, wrong remote, wrong local, no key at all, checksum the tunnel does not send.
        our_packet(LOCAL, REMOTE, &keyed(1002), 548),
        our_packet(LOCAL, [198, 51, 100, 8], &keyed(1001), 548),
        our_packet(LOCAL, REMOTE, &gre_hdr(false, None, None, 0x0800, &[]), 548),
        our_packet(
            LOCAL,
            REMOTE,
            &gre_hdr(true, Some(1001), None, 0x0800, &[]),
            548,
        ),
        // Cut inside the GRE base header.
        our_packet(LOCAL, REMOTE, &keyed(1001), 22),
    ];
    for q in &cases {
        let (v, _) = r.run(&frag_needed(LOCAL, 1300, q), OUTSIDE);
        assert_eq!(v, Verdict::Drop(DropReason::PmtuNoTunnel));
    }
    // Not about GRE from one of our tunnel endpoints (a foreign local, a quoted UDP packet): the kernel's
    // (`local_unhandled` without `[host]`), not path MTU discovery's.
    for q in [
        our_packet([192, 0, 2, 9], REMOTE, &keyed(1001), 548),
        ipv4(LOCAL, REMOTE, 17, 64, 0, true, &udp_payload(100)),
    ] {
        let (v, _) = r.run(&frag_needed(LOCAL, 1300, &q), OUTSIDE);
        assert_eq!(v, Verdict::Drop(DropReason::LocalUnhandled));
    }
    // A bad ICMP checksum is never read further.
    let mut bad = t1_frag_needed(1300);
    let at = bad.len() - 1;
    bad[at] ^= 0xff;
    let (v, _) = r.run(&bad, OUTSIDE);
    assert_eq!(v, Verdict::Drop(DropReason::BadChecksum));
    for t in &r.gw.tables().tunnels {
        assert_eq!(t.state.pmtu.learned(), None, "{}", t.name);
    }
    assert_eq!(r.gw.tables().tunnels[0].mtu.get(), 1472);
    let (v, _) = r.run(&inside_v4([10, 20, 1, 1], 64, 0, true, 1444), INSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE), "the configured MTU still holds");
}

#[test]
fn the_key_is_matched_only_when_quoted() {
    // Checksum and key: an 8-byte quote ends before the key, a longer one holds it.
    let mut r = rig("key = 1001\nchecksum = true");
    let g = gre_hdr(true, Some(1001), None, 0x0800, &[]);
    let mut wrong = g.clone();
    wrong[8..12].copy_from_slice(&7u32.to_be_bytes());
    let (v, _) = r.run(
        &frag_needed(LOCAL, 1400, &our_packet(LOCAL, REMOTE, &wrong, 40)),
        OUTSIDE,
    );
    assert_eq!(v, Verdict::Drop(DropReason::PmtuNoTunnel), "key 7 quoted");
    let (v, _) = r.run(
        &frag_needed(LOCAL, 1400, &our_packet(LOCAL, REMOTE, &wrong, 28)),
        OUTSIDE,
    );
    assert_eq!(
        v,
        Verdict::Drop(DropReason::PmtuLearned),
        "the key not quoted: local, remote and fields match"
    );
    // IPv4 20 + GRE 12: inner 1368.
    assert_eq!(r.gw.tables().tunnels[0].mtu.get(), 1368);
}

#[test]
fn reports_are_floored_not_raised_and_rate_limited() {
    let mut r = rig("key = 1001");
    let (v, _) = r.run(&t1_frag_needed(9000), OUTSIDE);
    assert_eq!(v, Verdict::Drop(DropReason::PmtuNotLower));
    let (v, _) = r.run(&t1_frag_needed(68), OUTSIDE);
    assert_eq!(v, Verdict::Drop(DropReason::PmtuLearned));
    // t1 carries IPv6 routes: never below 1280 inner.
    assert_eq!(r.gw.tables().tunnels[0].mtu.get(), 1280);
    assert_eq!(
        r.gw.tables().tunnels[0].state.pmtu.learned().unwrap().0,
        1308
    );
    let mut r = rig("key = 1001");
    set_now(&mut r.gw, 10_000 * MS);
    let (v, _) = r.run(&t1_frag_needed(1400), OUTSIDE);
    assert_eq!(v, Verdict::Drop(DropReason::PmtuLearned));
    set_now(&mut r.gw, 10_050 * MS);
    let (v, _) = r.run(&t1_frag_needed(1350), OUTSIDE);
    assert_eq!(v, Verdict::Drop(DropReason::PmtuRateLimited));
    assert_eq!(r.gw.tables().tunnels[0].mtu.get(), 1372);
    set_now(&mut r.gw, 10_100 * MS);
    let (v, _) = r.run(&t1_frag_needed(1350), OUTSIDE);
    assert_eq!(v, Verdict::Drop(DropReason::PmtuLearned));
    assert_eq!(r.gw.tables().tunnels[0].mtu.get(), 1322);
}

#[test]
fn packet_too_big_lowers_an_ipv6_tunnel() {
    let mut r = rig("key = 1001");
    // t6: IPv6 outside, key 6 (overhead 40 + 8 = 48, configured 1500 - 48), floor 1280 inner.
    let t6 = &r.gw.tables().tunnels[1];
    assert_eq!(t6.mtu.get(), 1452);
    let mut p = gre_hdr(false, Some(6), None, 0x0800, &[]);
    p.extend(ipv4(
        [10, 0, 0, 2],
        [10, 60, 0, 1],
        17,
        63,
        0,
        true,
        &udp_payload(1400),
    ));
    let ours = ipv6(
        v6("2001:db8:ffff::1"),
        v6("2001:db8:eeee::7"),
        47,
        64,
        0,
        &p,
    );
    let mut icmp = vec![2, 0, 0, 0];
    icmp.extend_from_slice(&1400u32.to_be_bytes());
    icmp.extend_from_slice(&ours[..1232 - 8]);
    let router = v6("2001:db8:ffff::fe");
    let me = v6("2001:db8:ffff::1");
    let mut ps = router.to_vec();
    ps.extend_from_slice(&me);
    ps.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    ps.extend_from_slice(&[0, 0, 0, 58]);
    ps.extend_from_slice(&icmp);
    let ck = csum(&ps);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut f = eth(OUT_MAC, GW_MAC, 0x86dd);
    f.extend(ipv6(router, me, 58, 64, 0, &icmp));
    let (v, _) = r.run(&f, OUTSIDE);
    assert_eq!(v, Verdict::Drop(DropReason::PmtuLearned));
    assert_eq!(r.gw.tables().tunnels[1].mtu.get(), 1400 - 48);
    assert_eq!(r.gw.tables().tunnels[0].mtu.get(), 1472, "t1 untouched");
    let (v, out) = r.run(
        &inside_v4([10, 60, 0, 1], 64, 0, true, 1400 - 48 - 27),
        INSIDE,
    );
    assert_eq!(v, Verdict::Tx(INSIDE));
    assert_eq!(next_hop_mtu(&out), 1352);
}

#[test]
fn the_learned_mtu_is_shared_by_workers_survives_rebuilds_and_expires() {
    let (mut gws, shared, mut cp, mut c) = rig_n("key = 1001", 2);
    for gw in &mut gws {
        set_now(gw, 5_000 * MS);
    }
    let mut b = VecBuf::new(&t1_frag_needed(1400));
    assert_eq!(
        gws[0].handle(&mut b, OUTSIDE, &mut c),
        Verdict::Drop(DropReason::PmtuLearned)
    );
    // Worker 1 encapsulates into the same tunnel: it sees the new MTU at once.
    let mut b = VecBuf::new(&inside_v4([10, 20, 1, 1], 64, 0, true, 1372));
    assert_eq!(gws[1].handle(&mut b, INSIDE, &mut c), Verdict::Tx(INSIDE));
    assert_eq!(next_hop_mtu(&b.to_vec()), 1372);
    // A runtime tunnel addition rebuilds every table; t1 keeps its learned MTU.
    let mut cfg = cp.config().clone();
    let mut t9 = TunnelCfg::new(
        "t9",
        "192.0.2.1".parse().unwrap(),
        "203.0.113.9".parse().unwrap(),
    );
    t9.routes = vec!["10.90.0.0/16".parse().unwrap()];
    cfg.tunnels.insert(0, t9);
    cp.reconfigure(cfg, Instant::now(), 0).unwrap();
    shared.tables.store(Arc::new(cp.tables()));
    set_now(&mut gws[1], 5_001 * MS);
    let t1 = gws[1]
        .tables()
        .tunnels
        .iter()
        .find(|t| t.name == "t1")
        .unwrap();
    assert_eq!(t1.mtu.get(), 1372, "kept across the rebuild");
    let t9 = gws[1]
        .tables()
        .tunnels
        .iter()
        .find(|t| t.name == "t9")
        .unwrap();
    // No key: IPv4 20 + GRE 4.
    assert_eq!(
        t9.mtu.get(),
        1476,
        "a new tunnel starts from its configured MTU"
    );
    // The control thread's refresh: nothing to expire yet, then back to the configured MTU after 10 minutes.
    let tables = shared.tables.load();
    assert_eq!(pmtu::refresh(&tables, 5_000 + EXPIRES_MS - 1), 0);
    assert_eq!(tables.tunnels[1].mtu.get(), 1372);
    assert_eq!(pmtu::refresh(&tables, 5_000 + EXPIRES_MS), 1);
    assert_eq!(tables.tunnels[1].mtu.get(), 1472);
    let mut b = VecBuf::new(&inside_v4([10, 20, 1, 1], 64, 0, true, 1444));
    set_now(&mut gws[0], 5_000 * MS + EXPIRES_MS * MS);
    let c2 = &mut crate::stats::Counters::new(2, 3);
    assert_eq!(gws[0].handle(&mut b, INSIDE, c2), Verdict::Tx(OUTSIDE));
}

#[test]
fn refresh_brings_a_newer_table_in_line_with_a_worker_on_an_older_one() {
    let (mut gws, shared, mut cp, mut c) = rig_n("key = 1001", 1);
    set_now(&mut gws[0], 1_000 * MS);
    // A newer generation is published before the worker picks it up; the worker learns on the old one.
    shared.tables.store(Arc::new(cp.tables()));
    let mut b = VecBuf::new(&t1_frag_needed(1400));
    assert_eq!(
        gws[0].handle(&mut b, OUTSIDE, &mut c),
        Verdict::Drop(DropReason::PmtuLearned)
    );
    let newest = shared.tables.load();
    assert_eq!(newest.tunnels[0].mtu.get(), 1472, "built before the report");
    assert_eq!(pmtu::refresh(&newest, 1_001), 0);
    assert_eq!(newest.tunnels[0].mtu.get(), 1372);
}
