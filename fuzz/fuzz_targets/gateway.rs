//! The whole per-packet decision (encap, decap, ARP/ND, ICMP, keepalives) on arbitrary frames, arriving on
//! either port: never panics, and whatever it sends is a well-formed Ethernet frame of sane size. Each input
//! gets a fresh gateway (a finding reproduces alone); `gateway_stateful` drives one gateway through sequences.
#![no_main]
use greway::buf::{PacketBuf, VecBuf};
use greway::datapath::{testkit, Verdict};
use libfuzzer_sys::fuzz_target;

thread_local! {
    // Built once: the tables hold a 64 MiB IPv4 LPM, too big to rebuild per input. Each input gets a fresh
    // gateway over a copy of them (which shares the routes).
    static KIT: testkit::Kit<VecBuf> = testkit::Kit::new(testkit::tables_for(&testkit::demo_config()));
}

fuzz_target!(|data: &[u8]| {
    let Some((&port, frame)) = data.split_first() else { return };
    KIT.with(|kit| {
        let (mut gw, mut c) = kit.gateway();
        let mut b = VecBuf::new(frame);
        match gw.handle(&mut b, usize::from(port & 1), &mut c) {
            Verdict::Tx(p) => {
                assert!(p < 2);
                assert!(b.pkt_len() >= 14, "a sent frame has an Ethernet header");
                assert!(b.pkt_len() <= frame.len().max(86) + 128, "at most the headroom was added");
            }
            Verdict::Drop(_) | Verdict::Hold(_) => {}
        }
    });
});
