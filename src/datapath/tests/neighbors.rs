//! Neighbour resolution: missing routes and neighbours counted, packets held until the neighbour is learned.
use super::rig::*;
use crate::buf::VecBuf;
use crate::config::Config;
use crate::control::plane::{ControlPlane, Outgoing};
use crate::datapath::gateway::{Event, Gateway, Shared};
use crate::datapath::{Processor, Verdict};
use crate::stats::DropReason;
use std::time::Instant;

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
    let hold_ticks = crate::datapath::gateway::HOLD_MS * 1_000_000;
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
    for _ in 0..crate::datapath::gateway::HOLD_MAX {
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
        1 + crate::datapath::gateway::HOLD_MAX as u64,
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

/// The decap fast paths keep each inner destination's next hop for the table generation (`Worker::hops4`,
/// `hops6`): a neighbour whose MAC changes, and one that is gone, are seen by the very next packet of a new
/// generation, for IPv4 and IPv6 inside.
#[test]
fn a_changed_or_removed_neighbour_is_seen_by_the_next_decapsulated_packet() {
    let inner4 = inner_from_remote([10, 0, 0, 77], 30, 0);
    let inner6 = ipv6(
        v6("2001:db8:20::5"),
        v6("2001:db8:1::77"),
        17,
        30,
        0,
        &udp_payload(18),
    );
    for (host, proto, inner) in [
        ("10.0.0.77", 0x0800, inner4),
        ("2001:db8:1::77", 0x86dd, inner6),
    ] {
        let mut r = rig("");
        let host = host.parse().unwrap();
        let frame = outer_gre(&gre_hdr(false, None, None, proto, &inner), &inner, 0);
        let mut now = 2_000;
        for mac in [[2, 0, 0, 0, 0, 0x77], [2, 0, 0, 0, 0, 0x78]] {
            r.cp.on_event(
                Event::Neighbor {
                    port: INSIDE,
                    ip: host,
                    mac,
                },
                Instant::now(),
            );
            assert!(r.cp.take_dirty());
            r.shared.tables.store(std::sync::Arc::new(r.cp.tables()));
            Processor::<VecBuf>::begin_burst(&mut r.gw, now);
            now += 1_000;
            let hits = r.gw.fast_path_hits();
            for _ in 0..3 {
                let (v, out) = r.run(&frame, OUTSIDE);
                assert_eq!(v, Verdict::Tx(INSIDE), "{host}");
                assert_eq!(
                    &out[0..6],
                    &mac,
                    "{host}: to the neighbour's MAC of this generation"
                );
            }
            assert_eq!(
                r.gw.fast_path_hits() - hits,
                3,
                "{host}: through the fast path"
            );
        }
        // A table without the neighbour: the packet waits for it (general rules), never to the old MAC.
        let mut cp =
            ControlPlane::new(r.cp.config(), &[IN_MAC, OUT_MAC], Instant::now(), 1).unwrap();
        r.shared.tables.store(std::sync::Arc::new(cp.tables()));
        Processor::<VecBuf>::begin_burst(&mut r.gw, now);
        let (v, _) = r.run(&frame, OUTSIDE);
        assert!(
            v.is_hold(),
            "{host}: held while the next hop is resolved again: {v:?}"
        );
    }
}
