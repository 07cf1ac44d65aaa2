//! The host exception path on byte buffers: what is punted to a host interface (and what is not), untouched
//! (TTL 255 stays 255), at most `punt_pps` per worker, into a bounded ring; and what the kernel sends out of a
//! host interface: encapsulated into its tunnel or routed from its port, never a router hop.
use super::rig::*;
use crate::buf::VecBuf;
use crate::config::{HostCfg, HostRoutes};
use crate::control::plane::ControlPlane;
use crate::datapath::gateway::{Gateway, HostIf, Shared, HOST_RING};
use crate::datapath::{HoldReason, Processor, Verdict};
use crate::stats::{Counters, DropReason};
use std::time::Instant;

const TSC_HZ: u64 = 1_000_000_000;

/// A one-worker gateway with `[host] punt_pps = pps` (None: no `[host]`) and tunnel t1 (no key, checksum or
/// sequence numbers, unless `tunnel_extra` says so) owning 169.254.100.1/29 and fd00:100::1/125.
fn host_rig(pps: Option<u32>, tunnel_extra: &str) -> Rig {
    let mut cfg = config(tunnel_extra);
    cfg.host = pps.map(|punt_pps| HostCfg {
        netns: None,
        routes: HostRoutes::Off,
        table: 254,
        punt_pps,
    });
    cfg.tunnels[0].address = vec![
        "169.254.100.1/29".parse().unwrap(),
        "fd00:100::1/125".parse().unwrap(),
    ];
    let mut cp = ControlPlane::new(&cfg, &[IN_MAC, OUT_MAC], Instant::now(), 1).unwrap();
    let shared = Shared::new(cp.tables(), 1);
    let mut gw = Gateway::new(0, 1, shared.clone(), TSC_HZ);
    Processor::<VecBuf>::begin_burst(&mut gw, 1_000);
    let c = Counters::new(2, cfg.tunnels.len());
    Rig { gw, cp, shared, c }
}

/// A TCP SYN (no options) from 10.0.0.2:40000 to `dst`:179 with TTL `ttl`.
fn tcp_syn(dst: [u8; 4], ttl: u8) -> Vec<u8> {
    let mut tcp = vec![
        0x9c, 0x40, 0, 179, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ];
    let mut pseudo = vec![10, 0, 0, 2];
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, 6, 0, tcp.len() as u8]);
    pseudo.extend_from_slice(&tcp);
    let ck = csum(&pseudo);
    tcp[16..18].copy_from_slice(&ck.to_be_bytes());
    let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
    f.extend(ipv4([10, 0, 0, 2], dst, 6, ttl, 0, true, &tcp));
    f
}

impl Rig {
    /// Process `frame` as the worker does (a hold is taken, a drop counted); the verdict.
    fn run_held(&mut self, frame: &[u8], port: usize) -> Verdict {
        let mut b = VecBuf::new(frame);
        let v = self.gw.handle(&mut b, port, &mut self.c);
        match v {
            Verdict::Hold(why) => Processor::hold(&mut self.gw, b, why, &mut self.c),
            Verdict::Drop(r) => self.c.drop_pkt(r),
            Verdict::Tx(_) => {}
        }
        v
    }

    /// Everything on the worker's punt ring.
    fn punted(&self) -> Vec<(HostIf, Vec<u8>)> {
        std::iter::from_fn(|| self.shared.punt[0].pop())
            .map(|(h, b)| (h, b.to_vec()))
            .collect()
    }
}

#[test]
fn tcp_to_a_port_address_is_punted_untouched_to_that_ports_host_interface() {
    let mut r = host_rig(Some(10_000), "");
    let mut syn = tcp_syn([10, 0, 0, 1], 255);
    let original = syn.clone();
    // Ethernet padding after the IP packet is not part of it.
    syn.extend_from_slice(&[0; 6]);
    let v = r.run_held(&syn, INSIDE);
    assert_eq!(v, Verdict::Hold(HoldReason::PuntPort { port: 0 }));
    let got = r.punted();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, HostIf::Port(0));
    assert_eq!(got[0].1, original, "byte for byte, TTL 255 included");
    assert_eq!(got[0].1[14 + 8], 255);
    assert_eq!((r.c.punted, r.c.punted_bytes), (1, 40));
    assert_eq!(r.c.total_drops(), 0);
}

#[test]
fn without_host_interfaces_nothing_is_punted() {
    let mut r = host_rig(None, "");
    assert_eq!(
        r.run_held(&tcp_syn([10, 0, 0, 1], 64), INSIDE),
        Verdict::Drop(DropReason::LocalUnhandled)
    );
    assert!(r.punted().is_empty());
}

#[test]
fn udp_to_an_ipv6_port_address_is_punted_but_not_to_a_multicast_group() {
    let mut r = host_rig(Some(10_000), "");
    let udp = udp_payload(10);
    let mut f = eth(IN_MAC, HOST_MAC, 0x86dd);
    f.extend(ipv6(
        v6("2001:db8:1::2"),
        v6("2001:db8:1::1"),
        17,
        255,
        0,
        &udp,
    ));
    assert_eq!(
        r.run_held(&f, INSIDE),
        Verdict::Hold(HoldReason::PuntPort { port: 0 })
    );
    let got = r.punted();
    assert_eq!(got[0].1, f);
    assert_eq!(got[0].1[14 + 7], 255, "hop limit untouched");
    // The solicited-node group of our address is ours for ND only.
    let mut g = eth(IN_MAC, HOST_MAC, 0x86dd);
    let group = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1];
    g.extend(ipv6(v6("2001:db8:1::2"), group, 17, 255, 0, &udp));
    assert_eq!(
        r.run_held(&g, INSIDE),
        Verdict::Drop(DropReason::LocalUnhandled)
    );
}

/// An ICMP message of `icmp_type` to 10.0.0.1 quoting an IPv4 header from `quoted_src` with protocol `proto`.
fn icmp_error_to_us(icmp_type: u8, quoted_src: [u8; 4], proto: u8) -> Vec<u8> {
    let quoted = ipv4(quoted_src, [198, 51, 100, 7], proto, 64, 0, false, &[0; 8]);
    let mut icmp = vec![icmp_type, 4, 0, 0, 0, 0, 0x05, 0xdc];
    icmp.extend_from_slice(&quoted);
    let ck = csum(&icmp);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
    f.extend(ipv4([10, 0, 0, 2], [10, 0, 0, 1], 1, 64, 0, false, &icmp));
    f
}

#[test]
fn icmp_is_the_kernels_unless_it_is_an_echo_request_or_about_our_gre() {
    let mut r = host_rig(Some(10_000), "");
    // Fragmentation needed about one of our GRE packets (from our tunnel endpoint 192.0.2.1): greway's (path
    // MTU discovery, which finds no tunnel to this remote).
    assert_eq!(
        r.run_held(&icmp_error_to_us(3, [192, 0, 2, 1], 47), INSIDE),
        Verdict::Drop(DropReason::PmtuNoTunnel)
    );
    // The same error about a UDP packet the kernel sent: the kernel's.
    assert_eq!(
        r.run_held(&icmp_error_to_us(3, [10, 0, 0, 1], 17), INSIDE),
        Verdict::Hold(HoldReason::PuntPort { port: 0 })
    );
    // An echo reply (to the kernel's ping): the kernel's; an echo request: answered by greway.
    let mut reply = vec![0, 0, 0, 0, 0, 1, 0, 1];
    let ck = csum(&reply);
    reply[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
    f.extend(ipv4([10, 0, 0, 2], [10, 0, 0, 1], 1, 64, 0, false, &reply));
    assert_eq!(
        r.run_held(&f, INSIDE),
        Verdict::Hold(HoldReason::PuntPort { port: 0 })
    );
    let mut req = vec![8, 0, 0, 0, 0, 1, 0, 1];
    let ck = csum(&req);
    req[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
    f.extend(ipv4([10, 0, 0, 2], [10, 0, 0, 1], 1, 64, 0, false, &req));
    assert_eq!(r.run_held(&f, INSIDE), Verdict::Tx(INSIDE));
    assert_eq!(r.punted().len(), 2);
}

#[test]
fn punting_is_limited_to_punt_pps_per_worker_and_refills_with_time() {
    // 100/s: a burst of 10 (a tenth of a second), then 100 more per second.
    let mut r = host_rig(Some(100), "");
    let syn = tcp_syn([10, 0, 0, 1], 64);
    let count = |r: &mut Rig, n: usize| {
        let mut punted = 0;
        for _ in 0..n {
            match r.run_held(&syn, INSIDE) {
                Verdict::Hold(HoldReason::PuntPort { port: 0 }) => punted += 1,
                Verdict::Drop(DropReason::PuntRateLimited) => {}
                v => panic!("unexpected verdict {v:?}"),
            }
        }
        punted
    };
    assert_eq!(count(&mut r, 50), 10, "the burst at a fixed clock");
    assert_eq!(r.c.drops[DropReason::PuntRateLimited as usize], 40);
    // Half a second later: 50 tokens earned, capped at the burst of 10.
    Processor::<VecBuf>::begin_burst(&mut r.gw, 1_000 + TSC_HZ / 2);
    assert_eq!(count(&mut r, 50), 10);
    // 30 ms later: 3 more.
    Processor::<VecBuf>::begin_burst(&mut r.gw, 1_000 + TSC_HZ / 2 + TSC_HZ * 3 / 100);
    assert_eq!(count(&mut r, 50), 3);
    assert_eq!(r.c.punted, 23);
    assert_eq!(
        r.c.punted + r.c.total_drops(),
        150,
        "every packet accounted"
    );
}

#[test]
fn a_flood_toward_one_host_interface_leaves_the_others_their_budget() {
    // 100/s per host interface: a SYN flood to the inside port's address uses up that interface's budget
    // only; the tunnel's control traffic (BGP, BFD to the tunnel address) still gets its own.
    let mut r = host_rig(Some(100), "");
    let syn = tcp_syn([10, 0, 0, 1], 64);
    for _ in 0..50 {
        r.run_held(&syn, INSIDE);
    }
    assert_eq!(r.c.punted, 10, "the inside port's burst");
    assert_eq!(r.c.drops[DropReason::PuntRateLimited as usize], 40);
    assert_eq!(
        r.run_held(&syn, INSIDE),
        Verdict::Drop(DropReason::PuntRateLimited)
    );
    let inner = ipv4(
        [169, 254, 100, 2],
        [169, 254, 100, 1],
        17,
        255,
        0,
        false,
        &udp_payload(12),
    );
    let f = outer_gre(&gre_hdr(false, None, None, 0x0800, &inner), &inner, 0);
    for _ in 0..10 {
        assert_eq!(
            r.run_held(&f, OUTSIDE),
            Verdict::Hold(HoldReason::PuntTunnel { tunnel: 0 }),
            "the tunnel's budget is its own"
        );
    }
    assert_eq!(
        r.run_held(&f, OUTSIDE),
        Verdict::Drop(DropReason::PuntRateLimited),
        "and limited in its turn"
    );
}

#[test]
fn a_full_punt_ring_drops_and_counts() {
    let mut r = host_rig(Some(1_000_000), "");
    let syn = tcp_syn([10, 0, 0, 1], 64);
    let mut full = 0;
    for _ in 0..HOST_RING + 5 {
        match r.run_held(&syn, INSIDE) {
            Verdict::Hold(_) => {}
            Verdict::Drop(DropReason::PuntRateLimited) => {
                // Refill: this test is about the ring.
                Processor::<VecBuf>::begin_burst(&mut r.gw, 1_000 + TSC_HZ);
            }
            v => panic!("unexpected {v:?}"),
        }
        full = r.c.drops[DropReason::PuntQueueFull as usize];
    }
    assert_eq!(r.c.punted, HOST_RING as u64);
    assert_eq!(full, 5);
}

#[test]
fn gre_to_a_tunnel_address_is_decapsulated_and_punted_with_its_ttl() {
    for fast in [true, false] {
        let mut r = host_rig(Some(10_000), "");
        r.gw.set_fast_path(fast);
        let inner = ipv4(
            [169, 254, 100, 2],
            [169, 254, 100, 1],
            17,
            255,
            0,
            false,
            &udp_payload(12),
        );
        let f = outer_gre(&gre_hdr(false, None, None, 0x0800, &inner), &inner, 0);
        let v = r.run_held(&f, OUTSIDE);
        assert_eq!(v, Verdict::Hold(HoldReason::PuntTunnel { tunnel: 0 }));
        let got = r.punted();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, HostIf::Tunnel(r.gw.tables().tunnels[0].id));
        assert_eq!(&got[0].1[14..], &inner[..], "the inner packet, TTL 255");
        assert_eq!(r.c.tunnels[0].decap, 1);
        // A packet through the tunnel to someone else is routed as before (TTL - 1).
        let other = inner_from_remote([10, 0, 0, 2], 64, 0);
        let f = outer_gre(&gre_hdr(false, None, None, 0x0800, &other), &other, 0);
        let (v, out) = r.run(&f, OUTSIDE);
        assert_eq!(v, Verdict::Tx(INSIDE));
        assert_eq!(out[14 + 8], 63);
    }
}

/// The frame the control thread makes of an IP packet read from a host interface: an Ethernet header with no
/// addresses yet.
fn from_kernel(ip: &[u8]) -> VecBuf {
    let et = if ip[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
    let mut f = eth([0; 6], [0; 6], et);
    f.extend_from_slice(ip);
    VecBuf::new(&f)
}

#[test]
fn the_kernels_packets_leave_through_the_tunnel_or_are_routed_from_the_port() {
    let mut r = host_rig(Some(10_000), "key = 7");
    let id = r.gw.tables().tunnels[0].id;
    // Out of the tunnel's host interface: encapsulated into it, inner TTL as the kernel set it.
    let reply = ipv4(
        [169, 254, 100, 1],
        [169, 254, 100, 2],
        17,
        255,
        0,
        false,
        &udp_payload(12),
    );
    r.shared.from_host[0]
        .push((HostIf::Tunnel(id), from_kernel(&reply)))
        .unwrap();
    // Out of the inside port's host interface to a host on its subnet: routed there, TTL untouched.
    let to_host = ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, 64, 0, true, &[0; 20]);
    r.shared.from_host[0]
        .push((HostIf::Port(0), from_kernel(&to_host)))
        .unwrap();
    // Out of the inside port's host interface to a tunnel route: into that tunnel.
    let into_tunnel = ipv4(
        [10, 0, 0, 1],
        [10, 20, 1, 1],
        17,
        64,
        0,
        false,
        &udp_payload(4),
    );
    r.shared.from_host[0]
        .push((HostIf::Port(0), from_kernel(&into_tunnel)))
        .unwrap();
    let sent = deferred(&mut r.gw, 2_000, &mut r.c);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(r.c.from_host, 3);
    let (port, gre) = &sent[0];
    assert_eq!(*port, OUTSIDE);
    // Ethernet 14 + outer IPv4 20 + GRE with key 8, then the kernel's packet unchanged.
    assert_eq!(&gre[14 + 9..14 + 10], &[47]);
    assert_eq!(&gre[14 + 20 + 4..14 + 20 + 8], &7u32.to_be_bytes());
    assert_eq!(&gre[14 + 28..], &reply[..]);
    let (port, plain) = &sent[1];
    assert_eq!(*port, INSIDE);
    assert_eq!(&plain[..6], &HOST_MAC);
    assert_eq!(&plain[6..12], &IN_MAC);
    assert_eq!(&plain[14..], &to_host[..], "not a router hop: TTL 64 stays");
    let (port, gre) = &sent[2];
    assert_eq!(*port, OUTSIDE);
    assert_eq!(&gre[14 + 28..], &into_tunnel[..]);
    assert_eq!(r.c.total_drops(), 0);
}
