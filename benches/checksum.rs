//! RFC 1071 checksum throughput: every variant this CPU runs on warm (L1/L2-resident) buffers, plus the fixed
//! 20-byte IPv4 header routine. Buffers start at an odd address, the worst case for alignment.
//!
//! Run: `cargo bench --bench checksum -- --warm-up-time 1 --measurement-time 2`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use greway::wire::checksum::{available_variants, ipv4_header_checksum, sum, sum_with};
use std::hint::black_box;

const SIZES: [usize; 5] = [20, 64, 256, 1500, 9000];

fn buffer(len: usize) -> Vec<u8> {
    (0..len + 1)
        .map(|i| (i as u8).wrapping_mul(151).wrapping_add(7))
        .collect()
}

fn variants(c: &mut Criterion) {
    for len in SIZES {
        let buf = buffer(len);
        let data = &buf[1..];
        let mut g = c.benchmark_group(format!("checksum-{len}"));
        g.throughput(Throughput::Bytes(len as u64));
        for v in available_variants() {
            g.bench_with_input(BenchmarkId::new(v.name(), len), data, |b, d| {
                b.iter(|| sum_with(v, black_box(d), black_box(0)))
            });
        }
        // The dispatched entry point, to see the cost of the indirect call at small sizes.
        g.bench_with_input(BenchmarkId::new("dispatch", len), data, |b, d| {
            b.iter(|| sum(black_box(d), black_box(0)))
        });

        // DPDK's own rte_raw_cksum (static inline C, through the shim; needs no EAL): the baseline.
        g.bench_with_input(BenchmarkId::new("rte_raw_cksum", len), data, |b, d| {
            b.iter(|| greway::dpdk::raw_cksum(black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("rte_raw_cksum_o2", len), data, |b, d| {
            b.iter(|| greway::dpdk::raw_cksum_o2(black_box(d)))
        });
        // ---------------------------------------------------------------------------------------------------------
        g.finish();
    }
}

fn ipv4_header(c: &mut Criterion) {
    let hdr: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];
    let mut g = c.benchmark_group("ipv4-header-20");
    g.throughput(Throughput::Bytes(20));
    g.bench_function("ipv4_header_checksum", |b| {
        b.iter(|| ipv4_header_checksum(black_box(&hdr)))
    });
    g.finish();
}

criterion_group!(benches, variants, ipv4_header);
criterion_main!(benches);
