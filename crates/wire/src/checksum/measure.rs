//! In-product throughput probe behind `greway bench checksum`
//! (prints e.g. `checksum-1500 best=avx512vnni gbps=80.1`).

use super::{entry, Variant};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Timed repeats; the best (shortest) one is reported, which filters out preemption and frequency ramp-up.
const REPEATS: usize = 7;

/// Throughput of `variant` in GB/s (10^9 bytes per second) summing one warm `len`-byte buffer `iters` times,
/// best of several repeats.
///
/// The buffer starts at an odd address (worst case for alignment) and is filled with a fixed non-trivial pattern.
/// Returns `0.0` when `len` or `iters` is zero.
///
/// # Panics
/// If this CPU cannot run `variant` (check [`super::available_variants`]).
pub fn measure_gbps(variant: Variant, len: usize, iters: u64) -> f64 {
    let Some(f) = entry(variant) else {
        panic!("checksum variant {variant} is not available on this CPU");
    };
    measure_fn_gbps(|d| f(d, 0), len, iters)
}

/// [`measure_gbps`] for any checksum function `f` (e.g. DPDK's `rte_raw_cksum` as a baseline): the same buffer,
/// warm-up and best-of-repeats timing, so the numbers compare.
pub fn measure_fn_gbps<R, F: Fn(&[u8]) -> R>(f: F, len: usize, iters: u64) -> f64 {
    if len == 0 || iters == 0 {
        return 0.0;
    }
    let buf: Vec<u8> = (0..len + 1)
        .map(|i| (i as u8).wrapping_mul(151).wrapping_add(7))
        .collect();
    let data = &buf[1..];
    // Warm the cache, the branch predictors and the vector units (AVX-512 licence transitions).
    let warm = iters.clamp(1, 1000);
    for _ in 0..warm {
        black_box(f(black_box(data)));
    }
    let mut best = Duration::MAX;
    for _ in 0..REPEATS {
        let t = Instant::now();
        for _ in 0..iters {
            black_box(f(black_box(data)));
        }
        best = best.min(t.elapsed());
    }
    let secs = best.as_secs_f64().max(1e-9);
    (len as f64 * iters as f64) / secs / 1e9
}
