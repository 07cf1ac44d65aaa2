//! Decapsulation: the receiver rules each with its drop reason, ECN (RFC 6040), anti-spoofing, IPv6 outer, and
//! the frames that never reach them (padding, non-IP, truncated, VLAN).
use super::rig::*;
use crate::buf::VecBuf;
use crate::datapath::{Processor, Verdict};
use crate::stats::DropReason;
use crate::wire::gre;

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

/// The decap fast paths keep the last tunnel match per outer family (`Worker::last_decap4`, `last_decap6`) for
/// the table generation: when a runtime change gives both tunnels new keys, the very next packet with an old key
/// is refused as `key_mismatch` by the general rules and one with the new key is taken, over IPv4 and IPv6 outside.
#[test]
fn the_tunnel_match_caches_follow_a_key_change_at_once() {
    let mut r = rig("key = 5");
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
    let over4 = |k| outer_gre(&gre_hdr(false, Some(k), None, 0x0800, &inner), &inner, 0);
    let over6 = |k| outer_gre6(&gre_hdr(false, Some(k), None, 0x0800, &inner), &inner, 0);
    for _ in 0..3 {
        assert_eq!(r.run(&over4(5), OUTSIDE).0, Verdict::Tx(INSIDE));
        assert_eq!(r.run(&over6(6), OUTSIDE).0, Verdict::Tx(INSIDE));
    }
    let mut cfg = r.cp.config().clone();
    cfg.tunnels[0].key = Some(7);
    cfg.tunnels[1].key = Some(8);
    r.cp.reconfigure(cfg, std::time::Instant::now(), 2).unwrap();
    r.shared.tables.store(std::sync::Arc::new(r.cp.tables()));
    Processor::<VecBuf>::begin_burst(&mut r.gw, 2_000);
    assert_eq!(
        r.run(&over4(5), OUTSIDE).0,
        Verdict::Drop(DropReason::KeyMismatch)
    );
    assert_eq!(
        r.run(&over6(6), OUTSIDE).0,
        Verdict::Drop(DropReason::KeyMismatch)
    );
    let hits = r.gw.fast_path_hits();
    for _ in 0..3 {
        assert_eq!(r.run(&over4(7), OUTSIDE).0, Verdict::Tx(INSIDE));
        assert_eq!(r.run(&over6(8), OUTSIDE).0, Verdict::Tx(INSIDE));
    }
    assert_eq!(
        r.gw.fast_path_hits() - hits,
        6,
        "the new keys through the fast paths"
    );
}
