//! One fresh gateway per input, driven through a sequence of operations the way the worker loop drives it:
//! frames on either port (held ones handed to `hold` with their reason), time advancing, `poll_deferred`.
//! The tunnel is sequenced with a reorder window (4 packets, 10 ms), so reassembly, reorder timeouts and
//! packets held for a neighbour-less next hop (any inside host but 10.0.0.2) all run, with their deadlines.
//!
//! After every step: nothing panicked; every packet is accounted, exactly once (received + fragments the
//! gateway made == sent + dropped + held now, where "held now" is the live buffers, counted by the buffer
//! type); every sent frame is sane. At the end `finish` leaves nothing held and nothing leaked.
//!
//! Input: operations back to back. The low two bits of an op byte say which, bit 2 the port:
//! 0 frame (2-byte big-endian length, then the bytes), 3 the same with the IPv4 header checksums (outer,
//! inner behind GRE) and the GRE checksum made valid first, 1 advance the clock (2-byte big-endian ms),
//! 2 `poll_deferred`.
#![no_main]
use greway::buf::{PacketBuf, VecBuf};
use greway::datapath::gateway::Gateway;
use greway::datapath::{testkit, Processor, Verdict};
use greway::stats::Counters;
use greway::wire::checksum::checksum;
use libfuzzer_sys::fuzz_target;
use std::cell::Cell;

/// The test kit's TSC rate.
const TSC_HZ: u64 = 2_000_000_000;
/// Operations per input (bounds the time an input takes).
const MAX_STEPS: usize = 256;

thread_local! {
    // Built once (a 64 MiB IPv4 LPM); each input gets a fresh gateway over a copy.
    static KIT: testkit::Kit<Tracked> = testkit::Kit::new(testkit::tables_for(&testkit::config_with(
        "key = 1001\nsequence = true\nreorder = { window = 4, timeout_ms = 10 }",
    )));
    // Buffers alive: the harness holds none between steps, so these are the gateway's.
    static LIVE: Cell<u64> = const { Cell::new(0) };
}

fn live() -> u64 {
    LIVE.with(Cell::get)
}

/// A `VecBuf` that counts the live buffers, so what the gateway holds can be counted from outside (and a
/// packet freed without being counted shows).
struct Tracked(VecBuf);

impl Tracked {
    fn new(b: VecBuf) -> Self {
        LIVE.with(|l| l.set(l.get() + 1));
        Tracked(b)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        LIVE.with(|l| l.set(l.get() - 1));
    }
}

impl PacketBuf for Tracked {
    fn data(&self) -> &[u8] {
        self.0.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }
    fn pkt_len(&self) -> usize {
        self.0.pkt_len()
    }
    fn headroom(&self) -> usize {
        self.0.headroom()
    }
    fn tailroom(&self) -> usize {
        self.0.tailroom()
    }
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        self.0.prepend(n)
    }
    fn adj(&mut self, n: usize) -> bool {
        self.0.adj(n)
    }
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        self.0.append(n)
    }
    fn trim(&mut self, n: usize) -> bool {
        self.0.trim(n)
    }
    fn alloc_sibling(&self) -> Option<Self> {
        self.0.alloc_sibling().map(Tracked::new)
    }
}

/// A sent frame: to a port, with an Ethernet header, no larger than a buffer can be (the largest frame in,
/// or a reassembled datagram in one 2 KiB buffer, plus the headroom), and IPv4 with a whole header whose
/// checksum is right.
fn check_sent(port: usize, b: &Tracked, largest_in: usize) {
    assert!(port < 2, "sent to port {port}");
    let d = b.data();
    assert!(d.len() >= 14, "a sent frame has an Ethernet header");
    assert!(d.len() <= largest_in.max(2048) + 128, "sent frame of {} bytes", d.len());
    if d[12..14] == [0x08, 0x00] {
        assert!(d.len() >= 34, "sent IPv4 frame of {} bytes", d.len());
        let ihl = usize::from(d[14] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([d[16], d[17]]));
        assert!(ihl >= 20 && total >= ihl && 14 + total <= d.len(), "sent IPv4 lengths");
        assert_eq!(checksum(&d[14..14 + ihl]), 0, "sent IPv4 header checksum");
    }
}

fn set_checksum(bytes: &mut [u8], at: usize) {
    bytes[at..at + 2].fill(0);
    let ck = checksum(bytes);
    bytes[at..at + 2].copy_from_slice(&ck.to_be_bytes());
}

/// Make the outer IPv4 header checksum valid and, behind GRE (not a later fragment), the GRE checksum and
/// the inner IPv4 header checksum: what a fuzzer cannot find alone.
fn fix_checksums(f: &mut [u8]) {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return;
    }
    let ihl = usize::from(f[14] & 0x0f) * 4;
    if ihl < 20 || f.len() < 14 + ihl {
        return;
    }
    let later_fragment = u16::from_be_bytes([f[20], f[21]]) & 0x1fff != 0;
    let g = 14 + ihl;
    if f[23] == 47 && !later_fragment && f.len() >= g + 4 {
        let flags = u16::from_be_bytes([f[g], f[g + 1]]);
        let glen = 4 + 4 * [0x8000, 0x2000, 0x1000]
            .iter()
            .filter(|&&bit| flags & bit != 0)
            .count();
        let i = g + glen;
        if f[g + 2..g + 4] == [0x08, 0x00] && f.len() >= i + 20 {
            let iihl = usize::from(f[i] & 0x0f) * 4;
            if iihl >= 20 && f.len() >= i + iihl {
                set_checksum(&mut f[i..i + iihl], 10);
            }
        }
        let end = (14 + usize::from(u16::from_be_bytes([f[16], f[17]]))).min(f.len());
        if flags & 0x8000 != 0 && end >= g + 8 {
            set_checksum(&mut f[g..end], 4);
        }
    }
    set_checksum(&mut f[14..14 + ihl], 10);
}

/// One input's gateway and what went in and out of it.
struct Run {
    gw: Gateway<Tracked>,
    c: Counters,
    now: u64,
    packets_in: u64,
    sent: u64,
    largest_in: usize,
    live_before: u64,
}

impl Run {
    fn frame(&mut self, port: usize, bytes: &[u8]) {
        self.packets_in += 1;
        self.largest_in = self.largest_in.max(bytes.len());
        let mut pkt = Tracked::new(VecBuf::new(bytes));
        // As the worker: a new table and its counter layout first (the same table here), then the burst.
        self.gw.begin_burst(self.now);
        if let Some(ids) = self.gw.tunnel_ids() {
            if ids[..] != self.c.tunnel_ids[..] {
                let ids = ids.clone();
                self.c.relayout(&ids);
            }
        }
        self.gw.prepare_burst(std::slice::from_ref(&pkt), port, &self.c);
        match self.gw.process(&mut pkt, port, &mut self.c) {
            Verdict::Tx(out) => {
                check_sent(out, &pkt, self.largest_in);
                self.sent += 1;
            }
            Verdict::Drop(r) => self.c.drop_pkt(r),
            Verdict::Hold(why) => self.gw.hold(pkt, why, &mut self.c),
        }
    }

    fn poll(&mut self) {
        let (sent, largest) = (&mut self.sent, self.largest_in);
        self.gw.poll_deferred(
            self.now,
            &mut |out, pkt| {
                check_sent(out, &pkt, largest);
                *sent += 1;
                true
            },
            &mut self.c,
        );
    }

    /// Received + made == sent + dropped + held now.
    fn check_accounting(&self, step: usize) {
        let held = live() - self.live_before;
        assert_eq!(
            self.packets_in + self.c.fragments_created,
            self.sent + self.c.total_drops() + held,
            "step {step}: in {} + made {} != sent {} + dropped {} + held {held}",
            self.packets_in,
            self.c.fragments_created,
            self.sent,
            self.c.total_drops(),
        );
    }
}

fuzz_target!(|data: &[u8]| {
    KIT.with(|kit| {
        let (gw, c) = kit.gateway();
        let mut run = Run {
            gw,
            c,
            now: TSC_HZ,
            packets_in: 0,
            sent: 0,
            largest_in: 0,
            live_before: live(),
        };
        let mut rest = data;
        for step in 0..MAX_STEPS {
            let Some((&op, tail)) = rest.split_first() else {
                break;
            };
            rest = tail;
            let port = usize::from(op >> 2 & 1);
            let arg = |rest: &mut &[u8]| -> usize {
                let v = match rest {
                    [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
                    _ => 0,
                };
                *rest = rest.get(2..).unwrap_or(&[]);
                v
            };
            match op & 3 {
                0 | 3 => {
                    let len = arg(&mut rest).min(rest.len());
                    let mut frame = rest[..len].to_vec();
                    rest = &rest[len..];
                    if op & 3 == 3 {
                        fix_checksums(&mut frame);
                    }
                    run.frame(port, &frame);
                }
                1 => run.now += arg(&mut rest) as u64 * (TSC_HZ / 1000),
                _ => run.poll(),
            }
            run.check_accounting(step);
        }
        run.gw.finish(&mut run.c);
        run.check_accounting(MAX_STEPS);
        assert_eq!(live(), run.live_before, "packets left held after finish");
    });
});
