//! Interoperation with real peers: a Destination Options header before GRE (Linux ip6gre's default
//! `encaplimit 4`) and the RFC 8200 rules for the options in it, `encap_limit` on sending, MikroTik EoIP, and
//! TCP MSS clamping in both directions. Frames are built here by hand; results are checked with an independent
//! checksum and the `wire` parsers.
use super::rig::*;
use crate::datapath::Verdict;
use crate::stats::DropReason;
use crate::wire::{gre, icmpv6};

/// What Linux ip6gre with its default `encaplimit 4` puts between IPv6 and GRE (net/ipv6/ip6_tunnel.c
/// `init_tel_txopt`): next header GRE, length 0, option 4 length 1 value 4, PadN length 1.
const LINUX_DEST_OPTS: [u8; 8] = [47, 0, 4, 1, 4, 1, 1, 0];

/// A GRE packet from t6's peer (2001:db8:eeee::7 -> `dst`) with `opts` (a Destination Options header) between
/// IPv6 and GRE.
fn outer_gre6_opts(dst: &str, opts: &[u8], gre_hdr: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut p = opts.to_vec();
    p.extend_from_slice(gre_hdr);
    p.extend_from_slice(inner);
    let mut f = eth(OUT_MAC, GW_MAC, 0x86dd);
    f.extend(ipv6(v6("2001:db8:eeee::7"), v6(dst), 60, 60, 0, &p));
    f
}

fn ttl_decremented(inner: &[u8]) -> Vec<u8> {
    let mut e = inner.to_vec();
    e[8] -= 1;
    e[10..12].fill(0);
    let ck = csum(&e[..20]);
    e[10..12].copy_from_slice(&ck.to_be_bytes());
    e
}

#[test]
fn linux_ip6gre_default_packets_are_decapsulated() {
    for fast in [true, false] {
        let mut r = rig("");
        r.gw.set_fast_path(fast);
        let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
        let f = outer_gre6_opts(
            "2001:db8:ffff::1",
            &LINUX_DEST_OPTS,
            &gre_hdr(false, Some(6), None, 0x0800, &inner),
            &inner,
        );
        let (v, out) = r.run(&f, OUTSIDE);
        assert_eq!(v, Verdict::Tx(INSIDE));
        assert_eq!(&out[..14], &eth(HOST_MAC, IN_MAC, 0x0800)[..]);
        assert_eq!(&out[14..], &ttl_decremented(&inner)[..]);
        assert_eq!(r.c.tunnels[1].decap, 1);
        assert_eq!(
            r.c.general_path, 1,
            "the fast path leaves next header 60 alone"
        );
    }
}

#[test]
fn destination_options_follow_rfc8200_option_type_bits() {
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
    let g = gre_hdr(false, Some(6), None, 0x0800, &inner);
    // (option type in front of Linux's options, destination, expected outcome)
    enum Want {
        Decap,
        Drop(DropReason),
        ParamProblem,
    }
    let cases = [
        (0x1e, "2001:db8:ffff::1", Want::Decap),
        (
            0x5e,
            "2001:db8:ffff::1",
            Want::Drop(DropReason::UnknownIpv6Option),
        ),
        (0x9e, "2001:db8:ffff::1", Want::ParamProblem),
        (0xde, "2001:db8:ffff::1", Want::ParamProblem),
        // To a multicast group we listen on: 11 stays silent, 10 reports anyway.
        (0xde, "ff02::1", Want::Drop(DropReason::UnknownIpv6Option)),
        (0x9e, "ff02::1", Want::ParamProblem),
    ];
    for (ty, dst, want) in cases {
        let mut r = rig("");
        // Hdr Ext Len 1: the unknown option (2 bytes of data), then Linux's option and padding.
        let opts = [47, 1, ty, 2, 0xaa, 0xbb, 4, 1, 4, 1, 4, 0, 0, 0, 0, 0];
        let f = outer_gre6_opts(dst, &opts, &g, &inner);
        let (v, out) = r.run(&f, OUTSIDE);
        let what = format!("option {ty:#x} to {dst}");
        match want {
            Want::Decap => assert_eq!(v, Verdict::Tx(INSIDE), "{what}"),
            Want::Drop(reason) => assert_eq!(v, Verdict::Drop(reason), "{what}"),
            Want::ParamProblem => {
                assert_eq!(v, Verdict::Tx(OUTSIDE), "{what}");
                assert_eq!(&out[..14], &eth(GW_MAC, OUT_MAC, 0x86dd)[..], "{what}");
                let ip = &out[14..];
                assert_eq!(ip[6], 58, "{what}: ICMPv6");
                let src = if dst == "ff02::1" {
                    v6("2001:db8:ffff::1")
                } else {
                    v6(dst)
                };
                assert_eq!(&ip[8..24], &src, "{what}: from our address");
                assert_eq!(
                    &ip[24..40],
                    &v6("2001:db8:eeee::7"),
                    "{what}: to the sender"
                );
                let icmp = icmpv6::Packet::new_checked(&ip[40..]).unwrap();
                assert!(
                    icmp.verify_checksum(src.into(), v6("2001:db8:eeee::7").into()),
                    "{what}"
                );
                assert_eq!(
                    (icmp.msg_type(), icmp.code()),
                    (4, 2),
                    "{what}: unrecognized option"
                );
                assert_eq!(
                    &ip[44..48],
                    &42u32.to_be_bytes(),
                    "{what}: pointer at the option type"
                );
                assert_eq!(
                    &ip[48..48 + 40],
                    &f[14..54],
                    "{what}: the invoking packet quoted"
                );
                assert_eq!(r.c.icmp_errors_sent, 1);
            }
        }
    }
}

#[test]
fn malformed_destination_options_are_dropped_with_their_reason() {
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
    let g = gre_hdr(false, Some(6), None, 0x0800, &inner);
    let mut r = rig("");
    for (what, opts, reason) in [
        (
            "option past the end",
            vec![47, 0, 0x1e, 9, 0, 0, 0, 0],
            DropReason::BadIpv6Options,
        ),
        (
            "PadN with data",
            vec![47, 0, 4, 1, 4, 1, 1, 7],
            DropReason::BadIpv6Options,
        ),
        (
            "8 bytes of padding",
            vec![47, 1, 1, 4, 0, 0, 0, 0, 0, 0, 4, 1, 4, 1, 1, 0],
            DropReason::BadIpv6Options,
        ),
        (
            "not GRE after it",
            vec![59, 0, 4, 1, 4, 1, 1, 0],
            DropReason::LocalUnhandled,
        ),
    ] {
        let f = outer_gre6_opts("2001:db8:ffff::1", &opts, &g, &inner);
        assert_eq!(r.run(&f, OUTSIDE).0, Verdict::Drop(reason), "{what}");
    }
    // A header longer than the packet.
    let mut f = eth(OUT_MAC, GW_MAC, 0x86dd);
    f.extend(ipv6(
        v6("2001:db8:eeee::7"),
        v6("2001:db8:ffff::1"),
        60,
        60,
        0,
        &[47, 5, 4, 1, 4, 1, 1, 0],
    ));
    assert_eq!(r.run(&f, OUTSIDE).0, Verdict::Drop(DropReason::Truncated));
    // Two Destination Options headers: only one before GRE is accepted.
    let mut two = vec![60, 0, 1, 4, 0, 0, 0, 0];
    two.extend_from_slice(&LINUX_DEST_OPTS);
    let mut p = two.clone();
    p.extend_from_slice(&g);
    p.extend_from_slice(&inner);
    let mut f = eth(OUT_MAC, GW_MAC, 0x86dd);
    f.extend(ipv6(
        v6("2001:db8:eeee::7"),
        v6("2001:db8:ffff::1"),
        60,
        60,
        0,
        &p,
    ));
    assert_eq!(
        r.run(&f, OUTSIDE).0,
        Verdict::Drop(DropReason::LocalUnhandled)
    );
}

#[test]
fn eoip_is_counted_apart_from_pptp() {
    let mut r = rig("");
    let mut g = vec![0x20, 0x01, 0x64, 0x00, 0x00, 0x2a, 0x64, 0x00];
    g.extend_from_slice(&[0u8; 42]);
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    f.extend(ipv4(
        [198, 51, 100, 7],
        [192, 0, 2, 1],
        47,
        60,
        0,
        false,
        &g,
    ));
    assert_eq!(r.run(&f, OUTSIDE).0, Verdict::Drop(DropReason::Eoip));
    let pptp = [0x30, 0x01, 0x88, 0x0b, 0x00, 0x00, 0x00, 0x2a, 0, 0, 0, 1];
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    f.extend(ipv4(
        [198, 51, 100, 7],
        [192, 0, 2, 1],
        47,
        60,
        0,
        false,
        &pptp,
    ));
    assert_eq!(r.run(&f, OUTSIDE).0, Verdict::Drop(DropReason::Pptp));
}

/// A third tunnel over IPv6 with `extra`, routing 10.70.0.0/16 and 2001:db8:70::/48.
fn e6(extra: &str) -> String {
    format!(
        "[[tunnel]]\nname = \"e6\"\nlocal = \"2001:db8:ffff::1\"\nremote = \"2001:db8:eeee::8\"\n\
         routes = [\"10.70.0.0/16\", \"2001:db8:70::/48\"]\n{extra}"
    )
}

#[test]
fn encap_limit_sends_the_destination_options_linux_sends() {
    let mut r = rig(&e6("encap_limit = 4"));
    let e = &r.gw.tables().tunnels[1];
    assert_eq!(e.name, "e6");
    // 1500 - IPv6 40 - Destination Options 8 - GRE 4.
    assert_eq!(e.mtu.get(), 1448);
    let f = inside_v4([10, 70, 0, 5], 64, 0, true, 100);
    let (v, out) = r.run(&f, INSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    let ip = &out[14..];
    assert_eq!(ip[6], 60, "next header: Destination Options");
    assert_eq!(
        usize::from(u16::from_be_bytes([ip[4], ip[5]])),
        ip.len() - 40,
        "payload length covers the options header"
    );
    assert_eq!(&ip[40..48], &LINUX_DEST_OPTS);
    let g = gre::Packet::new_checked(&ip[48..]).unwrap();
    assert_eq!((g.key(), g.protocol()), (None, 0x0800));
    assert_eq!(g.payload(), &ttl_decremented(&f[14..])[..]);
    // Too big for the 1448-byte MTU: the 8 bytes count.
    let (v, out) = r.run(
        &inside_v4([10, 70, 0, 5], 64, 0, true, 1449 - 20 - 8),
        INSIDE,
    );
    assert_eq!(v, Verdict::Tx(INSIDE));
    assert_eq!(&out[14 + 20..14 + 20 + 2], &[3, 4], "fragmentation needed");
    assert_eq!(u16::from_be_bytes([out[14 + 26], out[14 + 27]]), 1448);
}

/// An IPv6 packet from the inside host to `dst` whose Destination Options header carries an encapsulation
/// limit of `limit`.
fn inside_v6_with_limit(dst: &str, limit: u8) -> Vec<u8> {
    let mut p = vec![17, 0, 4, 1, limit, 1, 1, 0];
    p.extend(udp_payload(20));
    let mut f = eth(IN_MAC, HOST_MAC, 0x86dd);
    f.extend(ipv6(v6("2001:db8:1::2"), v6(dst), 60, 64, 0, &p));
    f
}

#[test]
fn inner_encapsulation_limits_follow_linux() {
    let mut r = rig(&e6("encap_limit = 4"));
    // Limit 3 inside: 2 outside (Linux: the inner limit minus one).
    let f = inside_v6_with_limit("2001:db8:70::5", 3);
    let (v, out) = r.run(&f, INSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    assert_eq!(&out[14 + 40..14 + 48], &[47, 0, 4, 1, 2, 1, 1, 0]);
    assert_eq!(
        out[14 + 48 + 4 + 40 + 4],
        3,
        "the inner option is untouched"
    );
    // Limit 0 inside: not encapsulated; ICMPv6 Parameter Problem, code 0, pointing at the limit byte.
    let f = inside_v6_with_limit("2001:db8:70::5", 0);
    let (v, out) = r.run(&f, INSIDE);
    assert_eq!(v, Verdict::Tx(INSIDE));
    assert_eq!(&out[..14], &eth(HOST_MAC, IN_MAC, 0x86dd)[..]);
    let ip = &out[14..];
    assert_eq!(&ip[24..40], &v6("2001:db8:1::2"));
    let icmp = icmpv6::Packet::new_checked(&ip[40..]).unwrap();
    assert!(icmp.verify_checksum(
        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap()),
        v6("2001:db8:1::2").into()
    ));
    assert_eq!((icmp.msg_type(), icmp.code()), (4, 0));
    assert_eq!(&ip[44..48], &44u32.to_be_bytes());
    assert_eq!(
        &ip[48..],
        &f[14..],
        "the packet as received, hop limit and all"
    );
    assert_eq!(r.c.tunnels[1].drops, 1);
    // A tunnel without encap_limit does not look (t1 carries 2001:db8:20::/48).
    let f = inside_v6_with_limit("2001:db8:20::5", 0);
    assert_eq!(r.run(&f, INSIDE).0, Verdict::Tx(OUTSIDE));
}

/// A TCP segment from `src`:40000 to `dst`:80 with `flags` and an MSS option of `mss` after a NOP, and a valid
/// checksum over `pseudo` (the pseudo-header's sum).
fn tcp_syn(flags: u8, mss: u16, pseudo: &[u8]) -> Vec<u8> {
    let mut s = vec![
        0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x70, flags, 0xff, 0xff, 0, 0, 0, 0,
    ];
    s.extend_from_slice(&[1, 2, 4]);
    s.extend_from_slice(&mss.to_be_bytes());
    s.extend_from_slice(&[4, 2, 0]);
    let mut all = pseudo.to_vec();
    all.extend_from_slice(&s);
    let ck = csum(&all);
    s[16..18].copy_from_slice(&ck.to_be_bytes());
    s
}

fn pseudo4(src: [u8; 4], dst: [u8; 4], len: usize) -> Vec<u8> {
    let mut p = src.to_vec();
    p.extend_from_slice(&dst);
    p.extend_from_slice(&[0, 6]);
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p
}

fn pseudo6(src: [u8; 16], dst: [u8; 16], len: usize) -> Vec<u8> {
    let mut p = src.to_vec();
    p.extend_from_slice(&dst);
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 6]);
    p
}

/// The MSS option's value and whether the checksum verifies, of the TCP segment `seg` under `pseudo`.
fn mss_and_valid(seg: &[u8], pseudo: &[u8]) -> (u16, bool) {
    let mut all = pseudo.to_vec();
    all.extend_from_slice(seg);
    (u16::from_be_bytes([seg[23], seg[24]]), csum(&all) == 0)
}

#[test]
fn mss_is_clamped_both_ways_with_a_valid_checksum() {
    const SYN: u8 = 0x02;
    const SYN_ACK: u8 = 0x12;
    const ACK: u8 = 0x10;
    // t1: MTU 1500 - 24 = 1476: MSS 1436 for IPv4, 1416 for IPv6.
    for (extra, want4, want6) in [
        ("mss_clamp = true", 1436u16, 1416u16),
        ("mss_clamp = 1300", 1300, 1300),
    ] {
        let mut r = rig(extra);
        // Into the tunnel: IPv4 SYN from the host.
        let (src, dst) = ([10, 0, 0, 2], [10, 20, 0, 5]);
        let seg = tcp_syn(SYN, 1460, &pseudo4(src, dst, 28));
        let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
        f.extend(ipv4(src, dst, 6, 64, 0, true, &seg));
        let (v, out) = r.run(&f, INSIDE);
        assert_eq!(v, Verdict::Tx(OUTSIDE), "{extra}");
        let got = &out[14 + 20 + 4 + 20..];
        assert_eq!(
            mss_and_valid(got, &pseudo4(src, dst, 28)),
            (want4, true),
            "{extra}"
        );
        // Out of the tunnel: IPv4 SYN-ACK to the host.
        let seg = tcp_syn(SYN_ACK, 1460, &pseudo4(dst, src, 28));
        let inner = ipv4(dst, src, 6, 60, 0, true, &seg);
        let (v, out) = r.run(
            &outer_gre(&gre_hdr(false, None, None, 0x0800, &inner), &inner, 0),
            OUTSIDE,
        );
        assert_eq!(v, Verdict::Tx(INSIDE), "{extra}");
        assert_eq!(
            mss_and_valid(&out[14 + 20..], &pseudo4(dst, src, 28)),
            (want4, true),
            "{extra}"
        );
        // IPv6 both ways.
        let (s6, d6) = (v6("2001:db8:1::2"), v6("2001:db8:20::9"));
        let seg = tcp_syn(SYN, 1440, &pseudo6(s6, d6, 28));
        let mut f = eth(IN_MAC, HOST_MAC, 0x86dd);
        f.extend(ipv6(s6, d6, 6, 64, 0, &seg));
        let (v, out) = r.run(&f, INSIDE);
        assert_eq!(v, Verdict::Tx(OUTSIDE), "{extra}");
        assert_eq!(
            mss_and_valid(&out[14 + 20 + 4 + 40..], &pseudo6(s6, d6, 28)),
            (want6, true),
            "{extra}"
        );
        let seg = tcp_syn(SYN_ACK, 1440, &pseudo6(d6, s6, 28));
        let inner = ipv6(d6, s6, 6, 60, 0, &seg);
        let (v, out) = r.run(
            &outer_gre(&gre_hdr(false, None, None, 0x86dd, &inner), &inner, 0),
            OUTSIDE,
        );
        assert_eq!(v, Verdict::Tx(INSIDE), "{extra}");
        assert_eq!(
            mss_and_valid(&out[14 + 40..], &pseudo6(d6, s6, 28)),
            (want6, true),
            "{extra}"
        );
        // A smaller MSS stays; a segment without SYN is not touched (and takes the fast path).
        let seg = tcp_syn(SYN, 1200, &pseudo4(src, dst, 28));
        let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
        f.extend(ipv4(src, dst, 6, 64, 0, true, &seg));
        let (_, out) = r.run(&f, INSIDE);
        assert_eq!(&out[14 + 20 + 4 + 20..], &seg[..], "{extra}");
        let general = r.c.general_path;
        let seg = tcp_syn(ACK, 1460, &pseudo4(src, dst, 28));
        let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
        f.extend(ipv4(src, dst, 6, 64, 0, true, &seg));
        let (_, out) = r.run(&f, INSIDE);
        assert_eq!(&out[14 + 20 + 4 + 20..], &seg[..], "{extra}");
        assert_eq!(
            r.c.general_path, general,
            "{extra}: a non-SYN segment takes the fast path"
        );
    }
    // Without mss_clamp nothing changes.
    let mut r = rig("");
    let (src, dst) = ([10, 0, 0, 2], [10, 20, 0, 5]);
    let seg = tcp_syn(SYN, 1460, &pseudo4(src, dst, 28));
    let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
    f.extend(ipv4(src, dst, 6, 64, 0, true, &seg));
    let (_, out) = r.run(&f, INSIDE);
    assert_eq!(&out[14 + 20 + 4 + 20..], &seg[..]);
    assert_eq!(r.c.general_path, 0);
}

#[test]
fn mss_clamp_skips_later_fragments() {
    let mut r = rig("mss_clamp = 1000");
    let (src, dst) = ([10, 0, 0, 2], [10, 20, 0, 5]);
    // A non-first fragment whose payload happens to look like a SYN: left alone.
    let seg = tcp_syn(0x02, 1460, &pseudo4(src, dst, 28));
    let mut ip = ipv4(src, dst, 6, 64, 0, false, &seg);
    ip[6..8].copy_from_slice(&[0x00, 0x10]);
    ip[10..12].fill(0);
    let ck = csum(&ip[..20]);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
    f.extend(&ip);
    let (v, out) = r.run(&f, INSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    assert_eq!(&out[14 + 20 + 4 + 20..], &seg[..]);
}
