//! GRE keepalives: reflecting the peer's, sending ours, tunnel state from missed and answered ones.
use super::rig::*;
use crate::buf::VecBuf;
use crate::control::plane::Outgoing;
use crate::datapath::{Processor, Verdict};
use crate::stats::DropReason;
use crate::wire::gre;
use std::time::Instant;

#[test]
fn keepalive_from_peer_is_reflected_and_our_reply_marks_alive() {
    let mut r = rig("key = 40\nkeepalive = { interval_s = 10, retries = 3 }");
    // The peer's keepalive: GRE(IPv4) carrying IP(us -> peer) / GRE(protocol 0).
    let mut ka_inner = vec![0u8; 28];
    let n = gre::emit_cisco_keepalive_inner(
        "198.51.100.7".parse().unwrap(),
        "192.0.2.1".parse().unwrap(),
        1,
        Some(40),
        &mut ka_inner,
    );
    ka_inner.truncate(n);
    // emit_cisco_keepalive_inner(peer, us) builds IP(peer -> us); the peer builds it from its side.
    let mut from_peer = vec![0u8; 28];
    let n = gre::emit_cisco_keepalive_inner(
        "192.0.2.1".parse().unwrap(),
        "198.51.100.7".parse().unwrap(),
        1,
        Some(40),
        &mut from_peer,
    );
    from_peer.truncate(n);
    let f = outer_gre(
        &gre_hdr(false, Some(40), None, 0x0800, &from_peer),
        &from_peer,
        0,
    );
    let (v, out) = r.run(&f, OUTSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE), "reflected");
    assert_eq!(&out[0..6], &GW_MAC);
    assert_eq!(
        &out[14..],
        &from_peer[..],
        "the inner packet goes back unchanged"
    );
    assert_eq!(r.c.tunnels[0].keepalives_reflected, 1);
    // The reply to our own keepalive: IP(peer -> us) / GRE(protocol 0) with nothing behind it.
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    f.extend_from_slice(&ka_inner);
    Processor::<VecBuf>::begin_burst(&mut r.gw, 5_000);
    assert_eq!(
        r.run(&f, OUTSIDE).0,
        Verdict::Drop(DropReason::KeepaliveConsumed)
    );
    assert_eq!(r.c.tunnels[0].keepalives_rx, 2);
    let st = &r.cp.tunnel_states()[0];
    assert_eq!(
        st.last_keepalive_tsc
            .load(std::sync::atomic::Ordering::Relaxed),
        5_000
    );
}

#[test]
fn keepalives_are_sent_and_missed_ones_take_the_tunnel_down() {
    let mut r = rig("key = 40\nkeepalive = { interval_s = 1, retries = 2 }");
    let t0 = Instant::now();
    let hz = 1_000_000_000u64;
    let (out, notices) = r.cp.tick(t0, 1, hz);
    let ka = out
        .iter()
        .find_map(|o| match o {
            Outgoing::Encap { tunnel: 0, bytes } => Some(bytes.clone()),
            _ => None,
        })
        .expect("a keepalive for tunnel 0");
    assert!(notices.is_empty());
    // The owner worker encapsulates it like data: outer GRE(IPv4, key 40) + IP(peer -> us) + GRE(0).
    let mut b = VecBuf::new(&ka);
    assert_eq!(r.gw.encap(&mut b, 0, 0, &mut r.c), Verdict::Tx(OUTSIDE));
    let out = b.to_vec();
    let g = gre::Packet::new_checked(&out[34..]).unwrap();
    assert_eq!(g.key(), Some(40));
    let inner = g.payload();
    assert_eq!(&inner[12..16], &[198, 51, 100, 7]);
    assert_eq!(&inner[16..20], &[192, 0, 2, 1]);
    assert_eq!(
        gre::Packet::new_checked(&inner[20..]).unwrap().protocol(),
        0
    );
    // 3 s without a reply > 1 s x 2 retries: down; traffic is dropped.
    let (_, notices) = r.cp.tick(t0, 3 * hz, hz);
    assert_eq!(
        notices,
        vec![crate::control::plane::Notice::TunnelDown("t1".into())]
    );
    let (v, _) = r.run(&inside_v4([10, 20, 1, 1], 64, 0, false, 10), INSIDE);
    assert_eq!(v, Verdict::Drop(DropReason::TunnelDown));
    // A reply arrives: up again.
    r.cp.tunnel_states()[0]
        .last_keepalive_tsc
        .store(3 * hz, std::sync::atomic::Ordering::Relaxed);
    let (_, notices) = r.cp.tick(t0, 3 * hz + 10, hz);
    assert_eq!(
        notices,
        vec![crate::control::plane::Notice::TunnelUp("t1".into())]
    );
}

#[test]
fn keepalive_reply_on_a_checksummed_tunnel_needs_no_gre_checksum() {
    // Found end to end: the reply to our keepalive is the inner header we built (key, no checksum); a tunnel
    // with `checksum = true` dropped it as missing_checksum, so keepalives never came back and the tunnel went
    // down 3 intervals after start.
    let mut r = rig("key = 40\nchecksum = true\nkeepalive = { interval_s = 1, retries = 3 }");
    let mut ka = vec![0u8; 28];
    let n = gre::emit_cisco_keepalive_inner(
        "198.51.100.7".parse().unwrap(),
        "192.0.2.1".parse().unwrap(),
        1,
        Some(40),
        &mut ka,
    );
    ka.truncate(n);
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    f.extend_from_slice(&ka);
    Processor::<VecBuf>::begin_burst(&mut r.gw, 7_000);
    assert_eq!(
        r.run(&f, OUTSIDE).0,
        Verdict::Drop(DropReason::KeepaliveConsumed)
    );
    assert_eq!(
        r.cp.tunnel_states()[0]
            .last_keepalive_tsc
            .load(std::sync::atomic::Ordering::Relaxed),
        7_000
    );
    // Data without a checksum on that tunnel is still refused.
    let inner = inner_from_remote([10, 0, 0, 2], 64, 0);
    let f = outer_gre(&gre_hdr(false, Some(40), None, 0x0800, &inner), &inner, 0);
    assert_eq!(
        r.run(&f, OUTSIDE).0,
        Verdict::Drop(DropReason::MissingChecksum)
    );
    // A keepalive with a wrong checksum is still refused.
    let mut bad = gre_hdr(true, Some(40), None, 0, &[]);
    bad[4] ^= 0xff;
    let f = outer_gre(&bad, &[], 0);
    assert_eq!(r.run(&f, OUTSIDE).0, Verdict::Drop(DropReason::BadChecksum));
}

#[test]
fn keepalives_are_sent_while_the_tunnel_is_down_and_bring_it_back_with_fresh_sequence_state() {
    // Found end to end: keepalives went through the data path's tunnel-down check, so a tunnel that went down
    // never sent another keepalive and never came back up.
    use std::sync::atomic::Ordering;
    let mut r = rig("key = 40\nsequence = true\nkeepalive = { interval_s = 1, retries = 2 }");
    let t0 = Instant::now();
    let hz = 1_000_000_000u64;
    let _ = r.cp.tick(t0, 1, hz);
    let (_, notices) =
        r.cp.tick(t0 + std::time::Duration::from_secs(3), 3 * hz, hz);
    assert_eq!(
        notices,
        vec![crate::control::plane::Notice::TunnelDown("t1".into())]
    );
    let (out, _) =
        r.cp.tick(t0 + std::time::Duration::from_secs(4), 4 * hz, hz);
    let ka = out
        .iter()
        .find_map(|o| match o {
            Outgoing::Encap { tunnel: 0, bytes } => Some(bytes.clone()),
            _ => None,
        })
        .expect("a keepalive while down");
    // Data is dropped while down ...
    let (v, _) = r.run(&inside_v4([10, 20, 1, 1], 64, 0, false, 10), INSIDE);
    assert_eq!(v, Verdict::Drop(DropReason::TunnelDown));
    // ... the keepalive, handed over as the control thread does, is sent.
    assert!(r.shared.handoff[0]
        .push((keepalive_handoff(&r.gw), VecBuf::new(&ka)))
        .is_ok());
    let mut sent = Vec::new();
    Processor::<VecBuf>::poll_deferred(
        &mut r.gw,
        10,
        &mut |p, b: VecBuf| {
            sent.push((p, b.to_vec()));
            true
        },
        &mut r.c,
    );
    assert_eq!(sent.len(), 1, "keepalive sent while the tunnel is down");
    assert_eq!(sent[0].0, OUTSIDE);
    let g = gre::Packet::new_checked(&sent[0].1[34..]).unwrap();
    assert_eq!(g.key(), Some(40));
    // The peer had delivered up to 1000 before it restarted; its reply brings the tunnel up and resets the
    // receive sequence state, so its restarted numbering (from 0) is accepted.
    let st = r.cp.tunnel_states()[0].clone();
    st.rx_seq.store(1000, Ordering::Relaxed);
    st.last_keepalive_tsc.store(5 * hz, Ordering::Relaxed);
    let (_, notices) =
        r.cp.tick(t0 + std::time::Duration::from_secs(5), 5 * hz, hz);
    assert_eq!(
        notices,
        vec![crate::control::plane::Notice::TunnelUp("t1".into())]
    );
    assert_eq!(
        st.rx_seq.load(Ordering::Relaxed),
        gre::RECEIVER_INITIAL_SEQUENCE
    );
    let inner = inner_from_remote([10, 0, 0, 2], 64, 0);
    let f = outer_gre(
        &gre_hdr(false, Some(40), Some(0), 0x0800, &inner),
        &inner,
        0,
    );
    assert_eq!(r.run(&f, OUTSIDE).0, Verdict::Tx(INSIDE));
}
