//! A slow reader on greway's egress port, on real DPDK ports: greway (forward mode, a subprocess) is the
//! `net_memif` server of two ports; this test process is the client of both (EAL in this process, so this file
//! holds one test). It sends numbered frames into port `a` and reads what greway forwards to port `b` itself,
//! stalling and then reading slowly, so greway's tx into `b` meets a full ring.
//!
//! Why memif: its server-to-client ring is the reader's. It has exactly `1 << rsize` slots once the reader has
//! polled, and greway's `tx_burst` takes only the free ones, so a stalled reader makes the exact number of
//! `tx_full` drops known. (A TAP never pushes back, the kernel takes every write; a net_pcap tx file or FIFO
//! blocks the worker in `write` instead; a `net_ring` port's other end is polled by greway itself.)
//!
//! Asserted, all by counting (no timing threshold): a stalled reader costs exactly the frames beyond the ring
//! (`tx_full`); with a slow reader every frame is accounted for (`a` rx = `b` tx + `tx_full`, and the reader
//! gets exactly `b` tx, in order, none twice); after the reader speeds up, frames flow again with no new drop;
//! no mbuf leaked in greway (free at start == free at end in `--stats-json`) nor in this process.
mod common;
use common::*;
use greway::buf::PacketBuf;
use greway::control::ctl::{self, Request};
use greway::dpdk::{Burst, Mempool, Port, PortConfig};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// log2 of the memif ring size (64 slots).
const RSIZE: u32 = 6;
const RING: u64 = 1 << RSIZE;

/// greway's live counters through its control socket: (a rx, b tx, tx_full, all drops).
fn live(sock: &Path) -> (u64, u64, u64, u64) {
    let r = ctl::call(sock, &Request::Stats).expect("ctl stats");
    let s = r.data.expect("stats data");
    (
        s["ports"]["a"]["rx"].as_u64().unwrap(),
        s["ports"]["b"]["tx"].as_u64().unwrap(),
        s["drops"]["tx_full"].as_u64().unwrap(),
        total_drops(&s),
    )
}

/// Wait until greway has handled every frame sent so far (a rx == sent and each one sent or dropped).
fn settle(sock: &Path, sent: u64) -> (u64, u64, u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = live(sock);
        if c.0 == sent && c.1 + c.3 == sent {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "greway did not handle {sent} frames: {c:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The frames: UDP/IPv4 with a 64-bit sequence number as payload.
struct Sender {
    port: u16,
    next: u64,
}

impl Sender {
    /// Send `n` frames, retrying what the ring refuses (the sender never drops).
    fn send(&mut self, pool: &Mempool, n: u64) {
        let mut left = n;
        while left > 0 {
            let mut b: Burst<32> = Burst::new();
            let k = left.min(32) as usize;
            assert!(pool.alloc_bulk(&mut b, k), "test pool short");
            for i in 0..k {
                let f = udp4_frame(
                    [2, 0, 0, 0, 0, 1],
                    [2, 0, 0, 0, 0, 2],
                    [10, 0, 0, 1],
                    [10, 0, 0, 2],
                    4000,
                    &self.next.to_be_bytes(),
                );
                self.next += 1;
                b.get_mut(i).append(f.len()).unwrap().copy_from_slice(&f);
            }
            while !b.is_empty() {
                b.tx(self.port, 0);
            }
            left -= k as u64;
        }
    }
}

/// The reader: checks each frame is the next one greway forwarded (in order, none twice).
struct Reader {
    port: u16,
    got: u64,
    last: Option<u64>,
}

impl Reader {
    /// One rx call of at most `max` frames; returns how many.
    fn read(&mut self, max: usize) -> usize {
        let mut b: Burst<64> = Burst::new();
        let n = b.rx_n(self.port, 0, max);
        for m in b.drain() {
            let d = m.data();
            let seq = u64::from_be_bytes(d[d.len() - 8..].try_into().unwrap());
            assert!(
                self.last.is_none_or(|l| seq > l),
                "frame {seq} after {:?}",
                self.last
            );
            self.last = Some(seq);
        }
        self.got += n as u64;
        n
    }

    /// Read until `total` frames have arrived.
    fn read_until(&mut self, total: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.got < total {
            if self.read(64) == 0 {
                assert!(
                    Instant::now() < deadline,
                    "reader got {} of {total}",
                    self.got
                );
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }
}

fn start_greway(dir: &Path) -> Child {
    let d = dir.display();
    let cfg = format!(
        r#"
[eal]
args = {eal}
[dataplane]
workers = [1]
mode = "forward"
idle_sleep_us = 20
[[port]]
name = "a"
role = "outside"
device = "net_memif0,role=server,rsize={RSIZE},socket={d}/a.sock"
address = "192.0.2.1/24"
[[port]]
name = "b"
role = "inside"
device = "net_memif1,role=server,rsize={RSIZE},socket={d}/b.sock"
address = "198.51.100.1/24"
[control]
socket = "{d}/ctl.sock"
"#,
        eal = eal_args("slowrd-gw"),
    );
    std::fs::write(dir.join("gw.toml"), cfg).unwrap();
    spawn_greway(&dir.join("gw.toml"), &dir.join("stats.json"))
}

#[test]
fn slow_reader_on_egress_counts_tx_full_leaks_nothing_and_recovers() {
    let dir = scratch("slow-reader");
    let mut gw = start_greway(&dir);
    let sock = dir.join("ctl.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    // The control socket is bound once the ports are started (the memif listeners are abstract sockets,
    // with no file to wait for).
    while !sock.exists() {
        if let Some(st) = gw.try_wait().unwrap() {
            let out = gw.wait_with_output().unwrap();
            panic!(
                "greway exited ({st}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "greway's sockets did not appear");
        std::thread::sleep(Duration::from_millis(50));
    }

    let eal = init_eal("slowrd", "0");
    let pool = Mempool::new("slowrd", 2047, 0, 2048 + 128, 0).expect("pool");
    let free0 = pool.available();
    let mut ports = Vec::new();
    for (i, f) in ["a.sock", "b.sock"].iter().enumerate() {
        let dev = format!(
            "net_memif{i},role=client,rsize={RSIZE},socket={}",
            dir.join(f).display()
        );
        let id = Port::probe(&dev).expect("memif client");
        ports.push(Port::start(id, &dev, &PortConfig::default(), &pool).expect("start"));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ports.iter().all(|p| p.link().is_ok_and(|l| l.up)) {
        assert!(Instant::now() < deadline, "memif links did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut tx = Sender {
        port: ports[0].id().0,
        next: 0,
    };
    let mut rx = Reader {
        port: ports[1].id().0,
        got: 0,
        last: None,
    };

    // 1. A stalled reader: it has polled once (the ring is armed: RING free slots), then reads nothing.
    //    greway's tx takes exactly RING frames; the rest are tx_full.
    assert_eq!(rx.read(64), 0);
    tx.send(&pool, 3 * RING);
    let (a_rx, b_tx, tx_full, drops) = settle(&sock, tx.next);
    assert_eq!(
        (a_rx, b_tx, tx_full, drops),
        (3 * RING, RING, 2 * RING, 2 * RING)
    );

    // 2. A slow reader: at most 8 frames per rx call, one call per 32 frames sent, with pauses.
    for _ in 0..20 {
        tx.send(&pool, 32);
        rx.read(8);
        std::thread::sleep(Duration::from_millis(2));
    }
    let (_, b_tx, tx_full, drops) = settle(&sock, tx.next);
    println!(
        "slow reader: {} frames sent, {b_tx} forwarded, {tx_full} tx_full",
        tx.next
    );
    assert!(tx_full >= 2 * RING, "{tx_full}");
    assert_eq!(drops, tx_full, "only tx_full drops");
    assert_eq!(b_tx + tx_full, tx.next, "every frame sent or counted");
    // The reader gets exactly what greway sent.
    rx.read_until(b_tx);
    assert_eq!(rx.read(64), 0, "nothing more than greway's tx");

    // 3. Recovery: the reader keeps up. Rounds of RING frames into an empty ring: none can be refused.
    let before = (b_tx, tx_full);
    for _ in 0..10 {
        tx.send(&pool, RING);
        rx.read_until(rx.got + RING);
    }
    let (_, b_tx, tx_full, drops) = settle(&sock, tx.next);
    assert_eq!(tx_full, before.1, "no new drop after the reader sped up");
    assert_eq!(drops, tx_full);
    assert_eq!(b_tx, before.0 + 10 * RING);
    assert_eq!(rx.got, b_tx);

    drop(ports);
    assert_eq!(
        pool.available(),
        free0,
        "no mbuf leaked in the test process"
    );
    drop(pool);
    drop(eal);

    // greway's final counters: every frame accounted for, no mbuf leaked.
    let out = stop_greway(gw);
    assert!(
        out.status.success(),
        "greway: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap())
            .expect("stats json");
    let (a_rx, b_tx) = (
        s["ports"]["a"]["rx"].as_u64().unwrap(),
        s["ports"]["b"]["tx"].as_u64().unwrap(),
    );
    let tx_full_end = s["drops"]["tx_full"].as_u64().unwrap();
    assert_eq!(a_rx, tx.next, "{text}");
    assert_eq!(a_rx, b_tx + tx_full_end, "rx = tx + drops: {s}");
    assert_eq!(tx_full_end, tx_full, "{s}");
    assert_eq!(b_tx, rx.got, "{s}");
    assert_eq!(
        s["mempool"]["free_at_start"], s["mempool"]["free_at_end"],
        "no mbuf leaked in greway: {s}"
    );
}
