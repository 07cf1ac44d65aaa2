//! The whole per-packet decision (encap, decap, ARP/ND, ICMP, keepalives) on arbitrary frames, arriving on
//! either port: never panics, and whatever it sends is a well-formed Ethernet frame of sane size.
#![no_main]
use greway::buf::{PacketBuf, VecBuf};
use greway::datapath::gateway::Gateway;
use greway::datapath::{testkit, Verdict};
use greway::stats::Counters;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

thread_local! {
    // Built once: the tables hold a 64 MiB IPv4 LPM, too big to rebuild per input.
    static KIT: RefCell<(Gateway<VecBuf>, Counters)> = RefCell::new(testkit::demo_gateway());
}

fuzz_target!(|data: &[u8]| {
    let Some((&port, frame)) = data.split_first() else { return };
    KIT.with(|k| {
        let (gw, c) = &mut *k.borrow_mut();
        let mut b = VecBuf::new(frame);
        match gw.handle(&mut b, usize::from(port & 1), c) {
            Verdict::Tx(p) => {
                assert!(p < 2);
                assert!(b.pkt_len() >= 14, "a sent frame has an Ethernet header");
                assert!(b.pkt_len() <= frame.len().max(86) + 128, "at most the headroom was added");
            }
            Verdict::Drop(_) | Verdict::Hold(_) => {}
        }
    });
});
