//! Fragments: inner packets fragmented before encapsulation, outer fragments reassembled before decapsulation.
use super::rig::*;
use crate::buf::VecBuf;
use crate::datapath::{Processor, Verdict};
use crate::stats::DropReason;
use crate::wire::gre;

#[test]
fn too_big_without_df_is_fragmented_then_encapsulated() {
    let mut r = rig("mtu = 1400\nkey = 5");
    let frame = inside_v4([10, 20, 1, 1], 64, 0, false, 2000);
    let (v, first) = r.run(&frame, INSIDE);
    assert_eq!(v, Verdict::Tx(OUTSIDE));
    let mut rest = Vec::new();
    Processor::<VecBuf>::poll_deferred(
        &mut r.gw,
        2_000,
        &mut |p, b: VecBuf| {
            rest.push((p, b.to_vec()));
            true
        },
        &mut r.c,
    );
    assert_eq!(rest.len(), 1, "2028-byte packet, MTU 1400: two fragments");
    assert_eq!(r.c.fragments_created, 1);
    let mut payload = Vec::new();
    for (i, out) in std::iter::once(&first)
        .chain(rest.iter().map(|(_, b)| b))
        .enumerate()
    {
        assert!(
            out.len() - 14 - 28 <= 1400,
            "each inner fragment fits the tunnel MTU"
        );
        let g = gre::Packet::new_checked(&out[34..]).unwrap();
        assert_eq!(g.key(), Some(5));
        let ip = g.payload();
        assert_eq!(csum(&ip[..20]), 0);
        assert_eq!(ip[8], 63, "each fragment's TTL decremented once");
        assert_eq!(ip[6] & 0x20 != 0, i == 0, "MF on the first only");
        payload.extend_from_slice(&ip[20..]);
    }
    assert_eq!(
        payload,
        frame[34..].to_vec(),
        "fragments carry the whole payload in order"
    );
}

#[test]
fn outer_fragments_are_reassembled_then_decapsulated() {
    let mut r = rig("key = 1001");
    let inner = ipv4(
        [10, 20, 3, 4],
        [10, 0, 0, 2],
        17,
        30,
        0,
        false,
        &udp_payload(1000),
    );
    let whole = outer_gre(&gre_hdr(false, Some(1001), None, 0x0800, &inner), &inner, 0);
    // What the unfragmented packet becomes.
    let (v, expect) = r.run(&whole, OUTSIDE);
    assert_eq!(v, Verdict::Tx(INSIDE));
    // The same datagram in two outer fragments, the second first.
    let payload = &whole[34..];
    let frag = |off: usize, len: usize, more: bool| {
        let mut f = whole[..34].to_vec();
        f[14 + 2..14 + 4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
        let word = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
        f[14 + 6..14 + 8].copy_from_slice(&word.to_be_bytes());
        f[14 + 10..14 + 12].fill(0);
        let ck = csum(&f[14..34]);
        f[14 + 10..14 + 12].copy_from_slice(&ck.to_be_bytes());
        f.extend_from_slice(&payload[off..off + len]);
        f
    };
    let first = frag(0, 520, true);
    let second = frag(520, payload.len() - 520, false);
    for f in [second, first] {
        let mut b = VecBuf::new(&f);
        let why = held(r.gw.handle(&mut b, OUTSIDE, &mut r.c));
        Processor::<VecBuf>::hold(&mut r.gw, b, why, &mut r.c);
    }
    let mut out = Vec::new();
    Processor::<VecBuf>::poll_deferred(
        &mut r.gw,
        2_000,
        &mut |p, b: VecBuf| {
            out.push((p, b.to_vec()));
            true
        },
        &mut r.c,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, INSIDE);
    assert_eq!(
        out[0].1, expect,
        "the reassembled datagram decapsulates like the unfragmented one"
    );
    assert_eq!(r.c.fragments_reassembled, 1);
    assert_eq!(r.c.drops[DropReason::FragmentReassembled as usize], 1);
    // A fragment whose partner never comes is dropped as outer_fragment after a second (1 GHz test clock).
    let mut b = VecBuf::new(&frag(0, 520, true));
    let why = held(r.gw.handle(&mut b, OUTSIDE, &mut r.c));
    Processor::<VecBuf>::hold(&mut r.gw, b, why, &mut r.c);
    Processor::<VecBuf>::poll_deferred(
        &mut r.gw,
        3_000_000_000,
        &mut |_, _b: VecBuf| true,
        &mut r.c,
    );
    assert_eq!(r.c.drops[DropReason::OuterFragment as usize], 1);
}
