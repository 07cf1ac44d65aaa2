//! The IPv4 fast paths against the general rules: byte-for-byte equal results and counters, single packets and
//! staged bursts.
use super::rig::*;
use crate::buf::VecBuf;
use crate::datapath::{plan, Processor, Verdict};
use crate::stats::{Counters, DropReason};
use crate::wire::gre;

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
        // A tunnel's own address and its peer (with the `address` extra below).
        [169, 254, 100, 1],
        [169, 254, 100, 2],
        // Into the IPv6-outer tunnel p6 (with the extras that make it).
        [10, 80, 0, 5],
    ] {
        v.push((INSIDE, inside_v4(dst, 64, 0x03, true, 18), 0));
        v.push((INSIDE, inside_v4(dst, 2, 0xb8, false, 1400), 0));
    }
    // TCP from the host (SYN with an MSS option, SYN-ACK, ACK) into t1 and, with the e6 extra, into an IPv6
    // tunnel with mss_clamp and encap_limit: the shapes the inner-packet rules look at.
    for dst in [[10, 20, 0, 5], [10, 70, 0, 5]] {
        for flags in [0x02u8, 0x12, 0x10] {
            let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
            f.extend(ipv4(
                [10, 0, 0, 2],
                dst,
                6,
                64,
                0,
                true,
                &tcp_mss(flags, 1460),
            ));
            v.push((INSIDE, f, 0));
        }
    }
    for dst in ["2001:db8:20::9", "2001:db8:99::1"] {
        for (next, payload) in [
            (6u8, tcp_mss(0x02, 1440)),
            (6, tcp_mss(0x10, 1440)),
            (
                60,
                [&[17, 0, 4, 1, 0, 1, 1, 0][..], &udp_payload(18)].concat(),
            ),
            (
                60,
                [&[6, 0, 4, 1, 3, 1, 1, 0][..], &tcp_mss(0x02, 1440)].concat(),
            ),
        ] {
            let mut f = eth(IN_MAC, HOST_MAC, 0x86dd);
            f.extend(ipv6(v6("2001:db8:1::2"), v6(dst), next, 64, 0, &payload));
            v.push((INSIDE, f, 0));
        }
    }
    // IPv6 from the host: routed (t1's 2001:db8:20::/48), ours, on-link, unrouted, multicast, link-local; the
    // large ones exceed t1's MTU (a Packet Too Big from the general rules).
    for dst in [
        "2001:db8:20::9",
        "2001:db8:80::9",
        "2001:db8:1::1",
        "2001:db8:1::2",
        "2001:db8:99::1",
        "ff02::1",
        "ff0e::5",
        "fe80::7",
        "fd00:100::1",
        "fd00:100::2",
    ] {
        for (hop, tc, n) in [(64u8, 0x03u8, 18usize), (2, 0xb9, 1400), (9, 0, 1500)] {
            v.push((INSIDE, inside_udp6(dst, hop, tc, n), 0));
        }
    }
    for key in [None, Some(1001), Some(7)] {
        for dst in [
            [10, 0, 0, 2],
            [10, 0, 0, 9],
            [10, 20, 0, 9],
            [192, 0, 2, 1],
            [10, 0, 0, 1],
            [169, 254, 100, 1],
        ] {
            for (proto, ttl) in [(17u8, 60u8), (47, 60), (17, 1), (6, 60)] {
                let mut inner = if proto == 6 {
                    ipv4(
                        [10, 20, 0, 5],
                        dst,
                        6,
                        ttl,
                        0x02,
                        false,
                        &tcp_mss(0x12, 1460),
                    )
                } else {
                    inner_from_remote(dst, ttl, 0x02)
                };
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
            for (next, hop, tc) in [(17u8, 60u8, 0x02u8), (47, 60, 0x01), (17, 1, 0), (6, 60, 0)] {
                let payload = if next == 6 {
                    tcp_mss(0x02, 1440)
                } else {
                    udp_payload(18)
                };
                let inner = ipv6(v6("2001:db8:20::5"), v6(dst), next, hop, tc, &payload);
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

/// A TCP header with `flags` and options NOP, MSS `mss`, SACK permitted, End (the checksum is not filled: the
/// rules update it incrementally whatever it is).
fn tcp_mss(flags: u8, mss: u16) -> Vec<u8> {
    let mut s = vec![
        0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x70, flags, 0xff, 0xff, 0x12, 0x34, 0, 0,
    ];
    s.extend_from_slice(&[1, 2, 4]);
    s.extend_from_slice(&mss.to_be_bytes());
    s.extend_from_slice(&[4, 2, 0]);
    s
}

const FAST_PATH_EXTRAS: [&str; 13] = [
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
    // Addresses on t1: packets to them are ours (answered or local_unhandled), its subnet is routed into it.
    "key = 1001\naddress = [\"169.254.100.1/29\", \"fd00:100::1/125\"]",
    "key = 1001\n[[tunnel]]\nname = \"own\"\nlocal = \"192.0.2.1\"\nremote = \"203.0.113.9\"\nroutes = [\"10.0.0.0/30\", \"192.0.2.0/31\", \"2001:db8:1::/126\"]",
    // MSS clamping: TCP SYNs take the general rules, everything else the fast paths.
    "key = 1001\nmss_clamp = true",
    // And an IPv6 tunnel with both inner-packet rules (encap_limit: inner IPv6 with extension headers).
    "key = 1001\nmss_clamp = 1000\n[[tunnel]]\nname = \"e6\"\nlocal = \"2001:db8:ffff::1\"\nremote = \"2001:db8:eeee::8\"\nencap_limit = 2\nmss_clamp = true\nroutes = [\"10.70.0.0/16\", \"2001:db8:99::/48\"]",
    // IPv6-outer tunnels without key, TTL and TOS inherited; with a key, a fixed hop limit and DSCP, a small MTU.
    "key = 1001\n[[tunnel]]\nname = \"p6\"\nlocal = \"2001:db8:ffff::1\"\nremote = \"2001:db8:eeee::9\"\nttl = \"inherit\"\ntos = \"inherit\"\nroutes = [\"10.80.0.0/16\", \"2001:db8:80::/48\"]",
    "key = 1001\n[[tunnel]]\nname = \"p6\"\nlocal = \"2001:db8:ffff::1\"\nremote = \"2001:db8:eeee::9\"\nkey = 9\nttl = 9\ntos = 0x20\nmtu = 1300\nroutes = [\"10.80.0.0/16\", \"2001:db8:80::/48\"]",
];

/// Run `f` through a gateway with the fast paths (packet by packet, and as a burst of one through the fast pass
/// as the worker runs it) and one without; assert the same verdict, bytes and counters.
fn assert_fast_equals_general(rigs: &mut Rigs, f: &[u8], port: usize, what: &str) {
    let (vf, of) = rigs.fast.run(f, port);
    let (vs, os) = rigs.slow.run(f, port);
    assert_eq!(vf, vs, "verdict: {what}");
    assert_eq!(of, os, "bytes: {what}");
    assert_same_counters(&rigs.fast.c, &rigs.slow.c, what);
    let (vb, ob) = burst_run(&mut rigs.burst, &[f.to_vec()], port).remove(0);
    assert_eq!(vb, planned(vs), "verdict (fast pass): {what}");
    assert_eq!(ob, os, "bytes (fast pass): {what}");
    assert_same_counters(&rigs.burst.c, &rigs.slow.c, &format!("{what} (fast pass)"));
}

/// A verdict as the worker sees it after the fast pass: a plan code for a send or a drop, or the verdict.
#[derive(Debug, PartialEq)]
enum Planned {
    Code(u16),
    Verdict(Verdict),
}

fn planned(v: Verdict) -> Planned {
    match v {
        Verdict::Tx(_) | Verdict::Drop(_) => Planned::Code(plan::of(v)),
        v => Planned::Verdict(v),
    }
}

/// The worker's way with the fast pass: `fast_burst` over the burst, then `process` for each packet it left,
/// in order. The outcome and bytes of each packet.
fn burst_run(r: &mut Rig, frames: &[Vec<u8>], port: usize) -> Vec<(Planned, Vec<u8>)> {
    burst_run_bufs(r, frames.iter().map(|f| VecBuf::new(f)).collect(), port)
}

/// [`burst_run`] on buffers made by the caller (other headroom than a fresh mbuf's).
fn burst_run_bufs(r: &mut Rig, mut bufs: Vec<VecBuf>, port: usize) -> Vec<(Planned, Vec<u8>)> {
    let frames: Vec<Vec<u8>> = bufs.iter().map(VecBuf::to_vec).collect();
    let mut codes = vec![plan::SLOW; bufs.len()];
    let pass = if r.gw.has_fast_pass(port) {
        r.gw.fast_burst(&mut bufs, port, &mut codes, &mut r.c)
    } else {
        None
    };
    let planned_any = pass.is_some();
    if !planned_any {
        r.gw.prepare_burst(&bufs, port, &r.c);
    }
    // The bytes the pass says it took: those of every packet it planned, as received and as sent.
    if let Some(bytes) = pass {
        let (mut rx, mut tx) = (0, 0);
        for ((f, b), &code) in frames.iter().zip(&bufs).zip(&codes) {
            if code != plan::SLOW {
                rx += f.len() as u64;
            }
            if code < plan::DROP {
                tx += b.to_vec().len() as u64;
            }
        }
        assert_eq!((bytes.rx, bytes.tx), (rx, tx), "the pass's byte counts");
    }
    bufs.iter_mut()
        .zip(codes)
        .map(|(b, code)| {
            // (Drops are counted by the worker from the verdict or code: in neither rig here.)
            let out = if planned_any && code != plan::SLOW {
                Planned::Code(code)
            } else {
                planned(r.gw.process(b, port, &mut r.c))
            };
            (out, b.to_vec())
        })
        .collect()
}

/// Equal counters, except `general_path`: the gateway without fast paths takes every packet the general way.
fn assert_same_counters(fast: &Counters, slow: &Counters, what: &str) {
    let mut slow = slow.clone();
    slow.general_path = fast.general_path;
    assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "counters: {what}");
}

/// The same configuration three times: fast paths per packet, fast paths through the burst fast pass, and the
/// general rules alone.
struct Rigs {
    fast: Rig,
    burst: Rig,
    slow: Rig,
}

fn fast_and_general(extra: &str) -> Rigs {
    let fast = rig(extra);
    let burst = rig(extra);
    let mut slow = rig(extra);
    slow.gw.set_fast_path(false);
    Rigs { fast, burst, slow }
}

/// The fast paths only take packets the general rules treat the same way. Sweep: every frame near their
/// shape, under several tunnel settings, with every byte of its headers changed in turn (three ways, with
/// the IPv4 checksums recomputed so the change reaches the later checks, and once without), gives the same
/// verdict, bytes and counters with the fast paths as without.
#[test]
fn fast_path_equals_general_rules() {
    let frames = fast_path_frames();
    for extra in FAST_PATH_EXTRAS {
        let mut rigs = fast_and_general(extra);
        for (port, base, io) in &frames {
            assert_fast_equals_general(&mut rigs, base, *port, "unchanged");
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
                    assert_fast_equals_general(&mut rigs, &f, *port, &what);
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
                assert_fast_equals_general(&mut rigs, &f, *port, &what);
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// The same with several random changes at once.
    #[test]
    fn fast_path_equals_general_rules_random(
        extra in 0usize..FAST_PATH_EXTRAS.len(),
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
        let mut rigs = fast_and_general(FAST_PATH_EXTRAS[extra]);
        // Twice: the second time with the caches the first filled.
        for _ in 0..2 {
            assert_fast_equals_general(&mut rigs, &f, *port, "random edits");
        }
    }
}

/// The worker's ways: `prepare_burst` stages the burst's encap lookups, then `process` takes each packet; or the
/// fast pass (`fast_burst`) finishes what it can and `process` takes the rest. Bursts of every frame of the
/// sweep's shapes (and changed copies, some now to other tunnels or none), per port, give the same verdicts,
/// bytes and counters as the general rules one packet at a time.
#[test]
fn staged_bursts_equal_general_rules() {
    let frames = fast_path_frames();
    for extra in FAST_PATH_EXTRAS {
        let Rigs {
            mut fast,
            burst: mut burst_rig,
            mut slow,
        } = fast_and_general(extra);
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
                    let planned_burst = burst_run(&mut burst_rig, chunk, port);
                    for (((f, b), v), (vb, ob)) in
                        chunk.iter().zip(&bufs).zip(got).zip(planned_burst)
                    {
                        let (vs, os) = slow.run(f, port);
                        let what = format!("{extra:?} port {port} burst {burst} frame {f:02x?}");
                        assert_eq!(v, vs, "verdict: {what}");
                        assert_eq!(b.to_vec(), os, "bytes: {what}");
                        assert_eq!(vb, planned(vs), "verdict (fast pass): {what}");
                        assert_eq!(ob, os, "bytes (fast pass): {what}");
                    }
                    assert_same_counters(
                        &fast.c,
                        &slow.c,
                        &format!("{extra:?} port {port} burst {burst}"),
                    );
                    assert_same_counters(
                        &burst_rig.c,
                        &slow.c,
                        &format!("{extra:?} port {port} burst {burst} (fast pass)"),
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
    // IPv4 into t6: the IPv6-outer encapsulation (40 + 8 bytes of headers with its key), the inner TTL
    // decremented, the outer traffic class inherited, the hop limit the default 64.
    let f = inside_v4([10, 60, 0, 5], 64, 0xb9, true, 18);
    let (v, out) = r.run(&f, INSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    assert_eq!(out.len(), f.len() + 40 + 8);
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    assert_eq!((out[14], out[15]), (0x6b, 0x90), "traffic class 0xb9");
    assert_eq!(
        usize::from(u16::from_be_bytes([out[18], out[19]])),
        out.len() - 54
    );
    assert_eq!(out[21], 64, "hop limit");
    let g = gre::Packet::new_checked(&out[54..]).unwrap();
    assert_eq!((g.key(), g.protocol()), (Some(6), 0x0800));
    assert_eq!(g.payload()[8], 63);
    assert_eq!(r.c.tunnels[1].encap, 1);
    assert_eq!(r.gw.fast_path_hits(), 7, "the IPv6-outer encap fast path");
    assert_eq!(r.c.general_path, 0, "nothing took the general rules");
    // A shape the fast paths leave alone (TTL 1: an ICMP error) is counted as general-path traffic.
    let _ = r.run(&inside_v4([10, 20, 0, 5], 1, 0, true, 18), INSIDE);
    assert_eq!(r.c.general_path, 1);
}

/// Both ports' NICs verify IPv4 header checksums (`PortInfo::rx_ipv4_cksum`), as the runtime says when the
/// offload is on.
fn with_nic_checksums(r: &mut Rig) {
    r.cp.set_rx_ipv4_cksum(INSIDE, true);
    r.cp.set_rx_ipv4_cksum(OUTSIDE, true);
    r.shared.tables.store(std::sync::Arc::new(r.cp.tables()));
    Processor::<VecBuf>::begin_burst(&mut r.gw, 2_000);
}

/// A NIC's rx IPv4 checksum verdict (`PacketBuf::rx_ipv4_cksum_good`) on a port whose NIC verifies them: GOOD
/// lets the fast paths skip their own check of the received header; without it the same bytes are checked in
/// software (and a wrong checksum is dropped as bad_ip_header). The header here is deliberately wrong so the two
/// cases differ.
#[test]
fn nic_verified_ipv4_header_skips_the_software_check() {
    let mut r = rig("key = 1001");
    with_nic_checksums(&mut r);
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

/// The decap pass takes a NIC's verdict only on a port whose NIC verifies IPv4 headers (one copy of the pass per
/// answer): there a GOOD mbuf with a wrong outer header checksum is planned; on a port without the offload
/// (virtual ports) the flags are not read, the header is checked in software, the pass leaves the packet and
/// the general rules drop it as bad_ip_header. (The encap pass reads the flags on every port.)
#[test]
fn the_decap_pass_reads_the_nic_verdict_only_where_the_nic_checks() {
    let inner = inner_from_remote([10, 0, 0, 2], 60, 0);
    let g = gre_hdr(false, Some(1001), None, 0x0800, &inner);
    let mut bad_decap = outer_gre(&g, &inner, 0);
    bad_decap[14 + 10] ^= 0x5a;
    for nic in [false, true] {
        let mut r = rig("key = 1001");
        if nic {
            with_nic_checksums(&mut r);
        }
        for (frame, port, out_port) in [(&bad_decap, OUTSIDE, INSIDE)] {
            let mut bufs = vec![VecBuf::new(frame), VecBuf::new(frame)];
            for b in &mut bufs {
                b.set_rx_ipv4_cksum_good(true);
            }
            let mut codes = vec![plan::SLOW; 2];
            let pass = r.gw.fast_burst(&mut bufs, port, &mut codes, &mut r.c);
            if nic {
                assert!(pass.is_some(), "port {port}: planned");
                assert_eq!(codes, vec![plan::tx(out_port); 2], "port {port}");
            } else {
                assert!(pass.is_none(), "port {port}: left to the general rules");
                assert_eq!(codes, vec![plan::SLOW; 2], "port {port}");
                for b in &mut bufs {
                    assert_eq!(
                        r.gw.handle(b, port, &mut r.c),
                        Verdict::Drop(DropReason::BadIpHeader),
                        "port {port}"
                    );
                }
            }
        }
    }
}

/// An inside frame: IPv6/UDP from the host to `dst` with hop limit `hop`, traffic class `tc`, `n` payload bytes.
fn inside_udp6(dst: &str, hop: u8, tc: u8, n: usize) -> Vec<u8> {
    let mut f = eth(IN_MAC, HOST_MAC, 0x86dd);
    f.extend(ipv6(
        v6("2001:db8:1::2"),
        v6(dst),
        17,
        hop,
        tc,
        &udp_payload(n),
    ));
    f
}

/// A gateway for the fast pass and one for the general rules, with `extra` tunnel settings, and with NIC IPv4
/// checksums on both (`nic`) or not.
fn burst_and_general(extra: &str, nic: bool) -> (Rig, Rig) {
    let mut burst_rig = rig(extra);
    let mut slow = rig(extra);
    slow.gw.set_fast_path(false);
    if nic {
        with_nic_checksums(&mut burst_rig);
        with_nic_checksums(&mut slow);
    }
    (burst_rig, slow)
}

/// One burst of `frames` (each with its headroom) on the inside port through the fast pass equals the general
/// rules one packet at a time: verdicts, bytes, counters (and the pass's byte counts, `burst_run_bufs`).
fn assert_inside_burst_equals_general(
    burst_rig: &mut Rig,
    slow: &mut Rig,
    frames: &[(Vec<u8>, usize)],
    case: &str,
) {
    let bufs = frames
        .iter()
        .map(|(f, h)| VecBuf::with_room(f, *h, 2048))
        .collect();
    let got = burst_run_bufs(burst_rig, bufs, INSIDE);
    for (i, ((f, h), (vb, ob))) in frames.iter().zip(got).enumerate() {
        let mut b = VecBuf::with_room(f, *h, 2048);
        let vs = slow.gw.handle(&mut b, INSIDE, &mut slow.c);
        assert_eq!(vb, planned(vs), "verdict of packet {i}: {case}");
        // (A packet dropped for want of headroom goes nowhere: the general rules have decremented its TTL by
        // then, the fast paths drop it as received.)
        if vs != Verdict::Drop(DropReason::NoHeadroom) {
            assert_eq!(ob, b.to_vec(), "bytes of packet {i}: {case}");
        }
    }
    assert_same_counters(&burst_rig.c, &slow.c, case);
}

/// The encap pass's runs (a burst's first packets into one tunnel, written in a loop of their own: `burst.rs`)
/// end at the first packet they do not take, whatever the reason, and that packet and every one after it go
/// the general rules' way. Bursts of 8 IPv4 or IPv6 packets into t1 (to several destinations), one of them
/// (first, second, middle or last) of another kind, under tunnels with a key or not, a fixed or inherited TTL
/// and TOS, and with the inside NIC verifying IPv4 headers or not: the same verdicts, bytes and counters as the
/// general rules one packet at a time, and the pass's byte counts right (`burst_run_bufs`).
#[test]
fn encap_runs_end_at_the_first_packet_they_do_not_take() {
    let to4 = |last: u8| inside_v4([10, 20, 0, last], 64, 0x03, true, 18);
    let to6 =
        |last: u8, hop: u8, n: usize| inside_udp6(&format!("2001:db8:20::{last:x}"), hop, 0x03, n);
    let mut bad_checksum = to4(9);
    bad_checksum[14 + 10] ^= 0x5a;
    // (frame, headroom): DEFAULT_HEADROOM is a fresh mbuf's.
    let room = crate::buf::DEFAULT_HEADROOM;
    let others: [(&str, Vec<u8>, usize); 11] = [
        (
            "IPv4 into another tunnel",
            inside_v4([10, 30, 0, 5], 64, 0, true, 18),
            room,
        ),
        (
            "IPv4 into an IPv6-outside tunnel",
            inside_v4([10, 60, 1, 1], 64, 0, true, 18),
            room,
        ),
        (
            "IPv4 over the MTU",
            inside_v4([10, 20, 0, 5], 64, 0, false, 1400),
            room,
        ),
        ("IPv4", to4(5), room),
        ("IPv4 with a bad header checksum", bad_checksum, room),
        (
            "IPv4 with TTL 1",
            inside_v4([10, 20, 0, 5], 1, 0, true, 18),
            room,
        ),
        ("IPv4 without headroom for the header", to4(7), 0),
        (
            "IPv4 to the inside",
            inside_v4([10, 0, 0, 2], 64, 0, true, 18),
            room,
        ),
        ("IPv6", to6(9, 64, 18), room),
        ("IPv6 with hop limit 1", to6(9, 1, 18), room),
        ("IPv6 over the MTU", to6(9, 64, 1300), room),
    ];
    let t2 = "[[tunnel]]\nname = \"t2\"\nlocal = \"192.0.2.1\"\nremote = \"203.0.113.9\"\nroutes = [\"10.30.0.0/16\"]";
    for extra in [
        "mtu = 1300",
        "key = 1001\nmtu = 1300",
        "key = 1001\nmtu = 1300\nttl = \"inherit\"\ntos = \"inherit\"",
        "mtu = 1300\nttl = \"inherit\"\ntos = 0x20",
    ] {
        let extra = format!("{extra}\n{t2}");
        for nic in [false, true] {
            let (mut burst_rig, mut slow) = burst_and_general(&extra, nic);
            for family in ["IPv4", "IPv6"] {
                for (what, other, other_room) in &others {
                    for at in [0usize, 1, 4, 7] {
                        let mut frames: Vec<(Vec<u8>, usize)> = (0..8u8)
                            .map(|i| match family {
                                "IPv4" => (to4(5 + i), room),
                                _ => (to6(5 + i, 64, 18), room),
                            })
                            .collect();
                        frames[at] = (other.clone(), *other_room);
                        let case = format!("{extra:?} nic {nic}: {family} with {what} at {at}");
                        assert_inside_burst_equals_general(
                            &mut burst_rig,
                            &mut slow,
                            &frames,
                            &case,
                        );
                    }
                }
            }
        }
    }
}

/// With many tunnels (the staged pass: stage 1 over the burst, the tunnels prefetched, then the writes) the
/// fast pass equals the general rules: bursts into 24 tunnels of every shape the fast paths know (with a key or
/// not, GRE checksum, fixed or inherited TTL and TOS, a small MTU, an IPv6 outside), IPv4 and IPv6 packets
/// mixed, each burst's packets into tunnels picked in a fixed pseudo-random order, with one packet of
/// another kind (over the MTU, TTL 1, no headroom, not routed, a bad checksum) at several places; verdicts,
/// bytes, counters and the pass's byte counts, packet by packet.
#[test]
fn staged_bursts_into_many_tunnels_equal_general_rules() {
    const TUNNELS: u8 = 24;
    let shapes = [
        "",
        "key = 7",
        "key = 7\nchecksum = true",
        "checksum = true",
        "key = 7\nttl = \"inherit\"\ntos = \"inherit\"",
        "ttl = \"inherit\"\ntos = 0x20",
        "key = 7\nmtu = 1300",
    ];
    let mut extra = String::from("key = 1001");
    for i in 0..TUNNELS {
        let (local, remote) = if i == 11 {
            (
                "2001:db8:ffff::1".to_string(),
                "2001:db8:eeee::8".to_string(),
            )
        } else {
            ("192.0.2.1".to_string(), format!("203.0.113.{}", 100 + i))
        };
        extra.push_str(&format!(
            "\n[[tunnel]]\nname = \"m{i}\"\nlocal = \"{local}\"\nremote = \"{remote}\"\nroutes = [\"10.{}.0.0/16\", \"2001:db8:{:x}::/48\"]\n{}",
            100 + u16::from(i),
            0x100 + u16::from(i),
            shapes[usize::from(i) % shapes.len()]
        ));
    }
    let room = crate::buf::DEFAULT_HEADROOM;
    let to4 =
        |t: u8, last: u8, ttl: u8, n: usize| inside_v4([10, 100 + t, 0, last], ttl, 0x03, true, n);
    let to6 = |t: u8, last: u8, hop: u8, n: usize| {
        inside_udp6(
            &format!("2001:db8:{:x}::{last:x}", 0x100 + u16::from(t)),
            hop,
            0x03,
            n,
        )
    };
    let mut bad_checksum = to4(3, 9, 64, 18);
    bad_checksum[14 + 10] ^= 0x5a;
    let others: [(&str, Vec<u8>, usize); 8] = [
        ("none", to4(1, 1, 64, 18), room),
        ("IPv4 over the small MTU", to4(6, 2, 64, 1400), room),
        ("IPv6 over the small MTU", to6(6, 2, 64, 1300), room),
        ("IPv4 with TTL 1", to4(2, 3, 1, 18), room),
        ("IPv4 without headroom", to4(1, 4, 64, 18), 0),
        (
            "IPv4 not routed",
            inside_v4([10, 99, 0, 1], 64, 0, true, 18),
            room,
        ),
        ("IPv4 with a bad checksum", bad_checksum, room),
        ("IPv6 without headroom", to6(1, 4, 64, 18), 0),
    ];
    for nic in [false, true] {
        let (mut burst_rig, mut slow) = burst_and_general(&extra, nic);
        let mut seed = 0x2545_f491_u32;
        let mut next = |m: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed % m) as u8
        };
        for mix in ["IPv4", "IPv6", "both"] {
            for (what, other, other_room) in &others {
                for at in [0usize, 1, 9, 31] {
                    let mut frames: Vec<(Vec<u8>, usize)> = (0..32u8)
                        .map(|i| {
                            let t = next(u32::from(TUNNELS));
                            let v6 = match mix {
                                "IPv4" => false,
                                "IPv6" => true,
                                _ => next(2) == 1,
                            };
                            let f = if v6 {
                                to6(t, 5 + i, 64, 18)
                            } else {
                                to4(t, 5 + i, 64, 18)
                            };
                            (f, room)
                        })
                        .collect();
                    if *what != "none" {
                        frames[at] = (other.clone(), *other_room);
                    }
                    let case = format!("nic {nic}: {mix} with {what} at {at}");
                    assert_inside_burst_equals_general(&mut burst_rig, &mut slow, &frames, &case);
                }
            }
        }
        // The bursts went through the fast pass, not around it.
        assert!(
            burst_rig.gw.fast_path_hits() > 1000,
            "fast pass hits: {}",
            burst_rig.gw.fast_path_hits()
        );
    }
}
