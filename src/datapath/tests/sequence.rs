//! Sequence numbers (RFC 2890): late and duplicate drops, numbering on the owning worker, the reorder buffer.
use super::rig::*;
use crate::buf::VecBuf;
use crate::config::Config;
use crate::datapath::{Processor, Verdict};
use crate::stats::DropReason;
use crate::wire::gre;
use std::time::Instant;

#[test]
fn decap_sequence_drops_late_and_duplicate_packets() {
    let mut r = rig("sequence = true");
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
    let mut results = Vec::new();
    for seq in [0u32, 1, 1, 3, 2, 4, u32::MAX] {
        let f = outer_gre(&gre_hdr(false, None, Some(seq), 0x0800, &inner), &inner, 0);
        results.push(r.run(&f, OUTSIDE).0);
    }
    let late = Verdict::Drop(DropReason::LateSequence);
    let ok = Verdict::Tx(INSIDE);
    assert_eq!(results, vec![ok, ok, late, ok, late, ok, late]);
}

#[test]
fn sequenced_tunnel_with_two_workers_numbers_in_order_on_its_owner() {
    let (mut gws, _shared, _cp, mut c) = rig_n("sequence = true", 2);
    let frame = inside_v4([10, 20, 1, 1], 64, 0, false, 10);
    let mut gw1 = gws.pop().unwrap();
    let mut gw0 = gws.pop().unwrap();
    // Tunnel 0 is owned by worker 0: worker 1 hands its packets over.
    let mut b = VecBuf::new(&frame);
    let why = held(gw1.handle(&mut b, INSIDE, &mut c));
    Processor::<VecBuf>::hold(&mut gw1, b, why, &mut c);
    let mut b = VecBuf::new(&frame);
    assert_eq!(gw0.handle(&mut b, INSIDE, &mut c), Verdict::Tx(OUTSIDE));
    let first = gre::Packet::new_checked(&b.to_vec()[34..])
        .unwrap()
        .sequence();
    let mut sent = Vec::new();
    Processor::<VecBuf>::poll_deferred(
        &mut gw0,
        10,
        &mut |p, b: VecBuf| {
            sent.push((p, b.to_vec()));
            true
        },
        &mut c,
    );
    assert_eq!(first, Some(0));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, OUTSIDE);
    assert_eq!(
        gre::Packet::new_checked(&sent[0].1[34..])
            .unwrap()
            .sequence(),
        Some(1)
    );
}

#[test]
fn reorder_buffer_releases_in_order_and_on_timeout() {
    let mut r = rig("sequence = true\nreorder = { window = 4, timeout_ms = 10 }");
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
    let frame = |seq: u32| outer_gre(&gre_hdr(false, None, Some(seq), 0x0800, &inner), &inner, 0);
    let send = |r: &mut Rig, seq: u32| -> Verdict {
        let mut b = VecBuf::new(&frame(seq));
        let v = r.gw.handle(&mut b, OUTSIDE, &mut r.c);
        if let Verdict::Hold(why) = v {
            Processor::<VecBuf>::hold(&mut r.gw, b, why, &mut r.c);
        }
        v
    };
    let drain = |r: &mut Rig, now: u64| -> usize {
        let mut n = 0;
        Processor::<VecBuf>::poll_deferred(
            &mut r.gw,
            now,
            &mut |p, _b: VecBuf| {
                assert_eq!(p, INSIDE);
                n += 1;
                true
            },
            &mut r.c,
        );
        n
    };
    assert_eq!(send(&mut r, 0), Verdict::Tx(INSIDE));
    assert!(send(&mut r, 2).is_hold(), "ahead of a gap: held");
    assert!(send(&mut r, 3).is_hold());
    assert_eq!(drain(&mut r, 1_000), 0, "1 is still missing");
    assert_eq!(send(&mut r, 1), Verdict::Tx(INSIDE), "the gap fills");
    assert_eq!(drain(&mut r, 1_000), 2, "2 and 3 follow in order");
    assert_eq!(r.c.tunnels[0].decap, 4);
    // A gap that never fills: 6 is released after the 10 ms timeout (clock: 1 GHz TSC in the rig).
    assert!(send(&mut r, 6).is_hold());
    assert_eq!(drain(&mut r, 2_000), 0);
    assert_eq!(drain(&mut r, 1_000 + 11_000_000), 1);
    assert_eq!(
        send(&mut r, 5),
        Verdict::Drop(DropReason::LateSequence),
        "5 is late once 6 went"
    );
    assert_eq!(r.c.tunnels[0].decap, 5);
}

/// A reload that changes a reordering tunnel replaces it: the packets its buffer held are dropped and counted as
/// `unknown_tunnel` in the next poll round (never sent through the new tunnel, never lost uncounted); an unchanged
/// reordering tunnel keeps its buffer when other tunnels shift its index.
#[test]
fn reordered_packets_of_a_replaced_tunnel_are_counted() {
    let mut r = rig("sequence = true\nreorder = { window = 4, timeout_ms = 10 }");
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
    let frame = |seq: u32| outer_gre(&gre_hdr(false, None, Some(seq), 0x0800, &inner), &inner, 0);
    let send = |r: &mut Rig, seq: u32| {
        let mut b = VecBuf::new(&frame(seq));
        match r.gw.handle(&mut b, OUTSIDE, &mut r.c) {
            Verdict::Hold(why) => Processor::<VecBuf>::hold(&mut r.gw, b, why, &mut r.c),
            v => assert_eq!(v, Verdict::Tx(INSIDE)),
        }
    };
    let reload = |r: &mut Rig, f: &dyn Fn(&mut Config)| {
        let mut cfg = r.cp.config().clone();
        f(&mut cfg);
        r.cp.reload(cfg, Instant::now(), 1).unwrap();
        r.shared.tables.store(std::sync::Arc::new(r.cp.tables()));
    };
    for seq in [0, 2, 3] {
        send(&mut r, seq);
    }
    // t6 changes and moves before t1: t1's index shifts, its buffer follows it.
    reload(&mut r, &|c| {
        c.tunnels.swap(0, 1);
        c.tunnels[0].ttl = crate::config::Ttl::Fixed(7);
    });
    assert!(
        deferred(&mut r.gw, 2_000, &mut r.c).is_empty(),
        "1 is still missing"
    );
    assert_eq!(r.c.drops.iter().sum::<u64>(), 0);
    // t1 changes (its reorder window): replaced, its 2 held packets counted.
    reload(&mut r, &|c| {
        c.tunnels[1].reorder = Some(crate::config::ReorderCfg {
            window: 8,
            timeout_ms: 10,
        })
    });
    assert!(deferred(&mut r.gw, 3_000, &mut r.c).is_empty());
    assert_eq!(r.c.drops[DropReason::UnknownTunnel as usize], 2);
    assert_eq!(r.c.drops.iter().sum::<u64>(), 2);
    assert!(
        deferred(&mut r.gw, 20_000_000, &mut r.c).is_empty(),
        "nothing left"
    );
}

#[test]
fn test_kit_gateways_start_fresh() {
    // A fuzz input must reproduce alone: a gateway from the test kit carries no tunnel state (here the RFC 2890
    // receive sequence) over from the one before it.
    let kit = crate::datapath::testkit::Kit::<VecBuf>::new(crate::datapath::testkit::tables_for(
        &config("sequence = true"),
    ));
    let inner = inner_from_remote([10, 0, 0, 2], 30, 0);
    let f = outer_gre(&gre_hdr(false, None, Some(7), 0x0800, &inner), &inner, 0);
    for _ in 0..2 {
        let (mut gw, mut c) = kit.gateway();
        let mut results = Vec::new();
        for _ in 0..2 {
            results.push(gw.handle(&mut VecBuf::new(&f), OUTSIDE, &mut c));
        }
        let late = Verdict::Drop(DropReason::LateSequence);
        assert_eq!(results, vec![Verdict::Tx(INSIDE), late]);
    }
}
