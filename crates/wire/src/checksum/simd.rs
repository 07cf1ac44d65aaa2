//! x86_64 SIMD kernels for the RFC 1071 sum: the only `unsafe` code of `wire`.
//!
//! Contract: every kernel returns a `u64` that is congruent, modulo 0xffff, to the sum of the *little-endian*
//! 16-bit words of `data` (an odd tail byte is the low byte of a zero-padded word), and that is zero only if every
//! byte is zero. [`finish`] folds it and byte-swaps it into the big-endian (network order) sum: the one's-complement
//! sum is byte-order independent (RFC 1071 section 2(B)), so summing native little-endian lanes and swapping the
//! folded result once is exact.
//!
//! Technique (all widths): `vpmaddwd` multiplies signed 16-bit lanes by 1 and adds neighbouring pairs into 32-bit
//! lanes. The lanes hold *unsigned* words, so each word is first biased with `xor 0x8000` (`w - 32768` as `i16`)
//! and the bias is added back once per chunk, `32768 * words`. The VNNI variant fuses multiply-add-accumulate into
//! one `vpdpwssd`. Four independent accumulators hide the add latency. A lane gains at most 65536 in magnitude per
//! vector, and chunks of [`CHUNK`] bytes are widened into an `i64` total, so no 32-bit lane can overflow whatever
//! the length.
//!
//! Edges: AVX-512 ends with a masked load (no scalar tail) and sums inputs of up to 64 bytes with one masked vector;
//! SSE2/AVX2 use plain 64-bit loads below 32 bytes and for their tail. Long inputs first align their loads to the
//! vector size (a split cache line costs a second L1 access): AVX-512 loads the head from the aligned line below
//! with a mask, so words are paired by address parity and the total is byte-swapped once if `data` starts at an odd
//! address; AVX2 sums a scalar head and byte-swaps the rest's sum after an odd-length head.
//!
//! Kernels are `#[target_feature]` functions: calling one is sound only once the CPU feature was detected. The safe
//! entry points handed out by [`entry`] are only reachable through that detection.

use super::Variant;
use core::arch::x86_64::*;

/// Bytes summed into 32-bit lanes before widening into the `i64` total. A lane gains at most 65536 in magnitude
/// per vector, so after a chunk a lane is bounded by `CHUNK / V * 65536` for `V`-byte vectors, and the sum of all
/// `V / 4` lanes by `CHUNK * 16384` = 2^30 < 2^31 whatever `V`: lanes *and* their horizontal sum fit an `i32`.
const CHUNK: usize = 64 * 1024;

/// Shortest input for which the AVX-512 kernels first align their loads with a masked head vector: below it the
/// head costs more than the cache-line splits it avoids (measured on Zen 4: +45% at 9000 B, -30% at 256 B).
const ALIGN_MIN: usize = 512;

/// The same for AVX2, whose head is scalar (up to 31 bytes) and so pays off later (+7% at 9000 B, -10% at 1500 B).
const ALIGN_MIN_AVX2: usize = 2048;

/// Bias removed from each word by `xor 0x8000`, added back per word.
const BIAS: i64 = 32768;

/// A safe `sum` entry point: `fn(data, initial) -> u32` with the module contract of `checksum::sum`.
pub(super) type SumFn = fn(&[u8], u32) -> u32;

/// The variants this CPU runs, slowest first.
pub(super) fn detected() -> Vec<Variant> {
    let mut v = vec![Variant::Scalar];
    if is_x86_feature_detected!("sse2") {
        v.push(Variant::Sse2);
    }
    if is_x86_feature_detected!("avx2") {
        v.push(Variant::Avx2);
    }
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
        v.push(Variant::Avx512bw);
        if is_x86_feature_detected!("avx512vnni") {
            v.push(Variant::Avx512vnni);
        }
    }
    v
}

/// The entry point for `variant`, or `None` if this CPU lacks its features.
pub(super) fn entry(variant: Variant) -> Option<SumFn> {
    match variant {
        Variant::Scalar => Some(super::scalar::sum),
        Variant::Sse2 if is_x86_feature_detected!("sse2") => Some(sum_sse2),
        Variant::Avx2 if is_x86_feature_detected!("avx2") => Some(sum_avx2),
        Variant::Avx512bw
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") =>
        {
            Some(sum_avx512bw)
        }
        Variant::Avx512vnni
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni") =>
        {
            Some(sum_avx512vnni)
        }
        _ => None,
    }
}

fn sum_sse2(data: &[u8], initial: u32) -> u32 {
    // SAFETY: `entry` hands this function out only after `is_x86_feature_detected!("sse2")`.
    finish(unsafe { le_sse2(data) }, initial)
}

fn sum_avx2(data: &[u8], initial: u32) -> u32 {
    // SAFETY: `entry` hands this function out only after `is_x86_feature_detected!("avx2")`.
    finish(unsafe { le_avx2(data) }, initial)
}

fn sum_avx512bw(data: &[u8], initial: u32) -> u32 {
    // SAFETY: `entry` hands this function out only after detecting avx512f and avx512bw.
    finish(unsafe { le_avx512bw(data) }, initial)
}

fn sum_avx512vnni(data: &[u8], initial: u32) -> u32 {
    // SAFETY: `entry` hands this function out only after detecting avx512f, avx512bw and avx512vnni.
    finish(unsafe { le_avx512vnni(data) }, initial)
}

use super::{finish, le_tail};

/// `i32` lanes summed (lanes may be negative because of the bias; no overflow within a [`CHUNK`]).
#[inline]
#[target_feature(enable = "sse2")]
fn hsum_128(v: __m128i) -> i64 {
    let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b01_00_11_10>(v));
    let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b10_11_00_01>(v));
    i64::from(_mm_cvtsi128_si32(v))
}

/// SSE2 kernel: 16-byte vectors, four accumulators (64 bytes per iteration), scalar tail.
///
/// # Safety
/// The CPU must support SSE2 (always true on x86_64; kept explicit for symmetry with the other kernels).
#[target_feature(enable = "sse2")]
unsafe fn le_sse2(data: &[u8]) -> u64 {
    if data.len() < 32 {
        // Shorter than two vectors: plain 64-bit loads beat a vector pass and its horizontal sum.
        return le_tail(data);
    }
    let bias = _mm_set1_epi16(i16::MIN);
    let ones = _mm_set1_epi16(1);
    let mut total: i64 = 0;
    let mut tail_sum = 0u64;
    for chunk in data.chunks(CHUNK) {
        let (mut a0, mut a1, mut a2, mut a3) = (
            _mm_setzero_si128(),
            _mm_setzero_si128(),
            _mm_setzero_si128(),
            _mm_setzero_si128(),
        );
        let mut blocks = chunk.chunks_exact(64);
        for b in &mut blocks {
            let p = b.as_ptr();
            // SAFETY: `b` is exactly 64 bytes, so the four unaligned 16-byte loads at 0, 16, 32, 48 are in bounds.
            let (v0, v1, v2, v3) = unsafe {
                (
                    _mm_loadu_si128(p.cast()),
                    _mm_loadu_si128(p.add(16).cast()),
                    _mm_loadu_si128(p.add(32).cast()),
                    _mm_loadu_si128(p.add(48).cast()),
                )
            };
            a0 = _mm_add_epi32(a0, _mm_madd_epi16(_mm_xor_si128(v0, bias), ones));
            a1 = _mm_add_epi32(a1, _mm_madd_epi16(_mm_xor_si128(v1, bias), ones));
            a2 = _mm_add_epi32(a2, _mm_madd_epi16(_mm_xor_si128(v2, bias), ones));
            a3 = _mm_add_epi32(a3, _mm_madd_epi16(_mm_xor_si128(v3, bias), ones));
        }
        let mut vecs = blocks.remainder().chunks_exact(16);
        let mut nvec = chunk.len() / 64 * 4;
        for v in &mut vecs {
            // SAFETY: `v` is exactly 16 bytes.
            let x = unsafe { _mm_loadu_si128(v.as_ptr().cast()) };
            a0 = _mm_add_epi32(a0, _mm_madd_epi16(_mm_xor_si128(x, bias), ones));
            nvec += 1;
        }
        tail_sum += le_tail(vecs.remainder());
        let acc = _mm_add_epi32(_mm_add_epi32(a0, a1), _mm_add_epi32(a2, a3));
        total += hsum_128(acc) + BIAS * 8 * nvec as i64;
    }
    total as u64 + tail_sum
}

/// AVX2 kernel: 32-byte vectors, four accumulators (128 bytes per iteration), scalar tail. Inputs of at least
/// `ALIGN_MIN_AVX2` bytes first sum a scalar head up to a 32-byte boundary so that no load splits a cache line.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn le_avx2(data: &[u8]) -> u64 {
    if data.len() < 32 {
        // Shorter than one vector: plain 64-bit loads beat a vector pass and its horizontal sum.
        return le_tail(data);
    }
    let mis = data.as_ptr() as usize % 32;
    if mis == 0 || data.len() < ALIGN_MIN_AVX2 {
        // SAFETY: same features as this function, which the caller guarantees.
        return unsafe { le_avx2_body(data) };
    }
    let (head, rest) = data.split_at(32 - mis);
    // SAFETY: same features as this function, which the caller guarantees.
    let r = unsafe { le_avx2_body(rest) };
    // After an odd-length head, `rest` pairs its bytes the other way round (RFC 1071 section 2(B)).
    let r = if head.len() % 2 == 1 {
        u64::from(super::fold64(r).swap_bytes())
    } else {
        r
    };
    le_tail(head) + r
}

/// The loop of [`le_avx2`], on any alignment.
///
/// # Safety
/// The CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn le_avx2_body(data: &[u8]) -> u64 {
    let bias = _mm256_set1_epi16(i16::MIN);
    let ones = _mm256_set1_epi16(1);
    let mut total: i64 = 0;
    let mut tail_sum = 0u64;
    for chunk in data.chunks(CHUNK) {
        let (mut a0, mut a1, mut a2, mut a3) = (
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
        );
        let mut blocks = chunk.chunks_exact(128);
        for b in &mut blocks {
            let p = b.as_ptr();
            // SAFETY: `b` is exactly 128 bytes, so the four unaligned 32-byte loads at 0, 32, 64, 96 are in bounds.
            let (v0, v1, v2, v3) = unsafe {
                (
                    _mm256_loadu_si256(p.cast()),
                    _mm256_loadu_si256(p.add(32).cast()),
                    _mm256_loadu_si256(p.add(64).cast()),
                    _mm256_loadu_si256(p.add(96).cast()),
                )
            };
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_xor_si256(v0, bias), ones));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_xor_si256(v1, bias), ones));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_xor_si256(v2, bias), ones));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_xor_si256(v3, bias), ones));
        }
        // Remainder (< 128 bytes): up to three whole vectors, each into its own accumulator so they do not
        // serialise on one dependency chain.
        let mut rest = blocks.remainder();
        let full = rest.len() / 32;
        let p = rest.as_ptr();
        // SAFETY (the three loads below): `rest` holds `full` whole 32-byte vectors, and each load is guarded by
        // `full` covering it, so every byte read is in bounds.
        if full >= 1 {
            a0 = _mm256_add_epi32(
                a0,
                _mm256_madd_epi16(
                    _mm256_xor_si256(unsafe { _mm256_loadu_si256(p.cast()) }, bias),
                    ones,
                ),
            );
        }
        if full >= 2 {
            a1 = _mm256_add_epi32(
                a1,
                _mm256_madd_epi16(
                    _mm256_xor_si256(unsafe { _mm256_loadu_si256(p.add(32).cast()) }, bias),
                    ones,
                ),
            );
        }
        if full >= 3 {
            a2 = _mm256_add_epi32(
                a2,
                _mm256_madd_epi16(
                    _mm256_xor_si256(unsafe { _mm256_loadu_si256(p.add(64).cast()) }, bias),
                    ones,
                ),
            );
        }
        let nvec = chunk.len() / 128 * 4 + full;
        rest = &rest[full * 32..];
        let acc = _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3));
        let mut acc = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256::<1>(acc),
        );
        let mut nwords = 16 * nvec as i64;
        if rest.len() >= 16 {
            // SAFETY: `rest` holds at least 16 bytes.
            let x = unsafe { _mm_loadu_si128(rest.as_ptr().cast()) };
            acc = _mm_add_epi32(
                acc,
                _mm_madd_epi16(
                    _mm_xor_si128(x, _mm_set1_epi16(i16::MIN)),
                    _mm_set1_epi16(1),
                ),
            );
            nwords += 8;
            rest = &rest[16..];
        }
        tail_sum += le_tail(rest);
        total += hsum_128(acc) + BIAS * nwords;
    }
    total as u64 + tail_sum
}

/// `i32` lanes of a 512-bit accumulator summed (no overflow within a [`CHUNK`]).
#[inline]
#[target_feature(enable = "avx512f")]
fn hsum_512(v: __m512i) -> i64 {
    i64::from(_mm512_reduce_add_epi32(v))
}

/// Generates a 64-byte-vector kernel; `$acc(acc, biased)` accumulates one biased vector into `acc`.
macro_rules! avx512_kernel {
    ($(#[$doc:meta])* $name:ident, $body:ident, $features:literal, $acc:expr) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        unsafe fn $name(data: &[u8]) -> u64 {
            if data.len() <= 64 {
                // One masked vector, no loop: the common short-header case.
                let mask: __mmask64 = if data.len() == 64 { u64::MAX } else { (1u64 << data.len()) - 1 };
                // SAFETY: the mask sets exactly the bits of `data`'s bytes, which are in bounds; a masked load neither
                // reads nor faults on bytes whose mask bit is clear (AVX-512 fault suppression). Cleared lanes load as
                // zero: the zero padding of an odd last byte (RFC 1071).
                let x = unsafe { _mm512_maskz_loadu_epi8(mask, data.as_ptr().cast()) };
                // Plain `vpmaddwd` even for VNNI: with a zero accumulator the fused form only adds latency.
                let acc = _mm512_madd_epi16(_mm512_xor_si512(x, _mm512_set1_epi16(i16::MIN)), _mm512_set1_epi16(1));
                return (hsum_512(acc) + BIAS * 32) as u64;
            }
            let mis = data.as_ptr() as usize % 64;
            if mis == 0 || data.len() < ALIGN_MIN {
                // SAFETY: same features as this function, which the caller guarantees.
                return unsafe { $body(data, _mm512_setzero_si512(), 0) };
            }
            // Head alignment (see `ALIGN_MIN`): the bytes before the next 64-byte boundary are loaded from that
            // line with a mask, so every word is paired by *address* parity and every later load is aligned.
            let base = data.as_ptr().wrapping_sub(mis);
            // SAFETY: the mask sets exactly the bits of bytes `base + mis .. base + 64`, which are `data[..64 - mis]`,
            // in bounds because `data.len() >= ALIGN_MIN > 64`. A masked load neither reads nor faults on bytes whose
            // mask bit is clear (AVX-512 fault suppression), and `base` is formed with `wrapping_sub`, so no
            // out-of-bounds pointer offset is created.
            let x = unsafe { _mm512_maskz_loadu_epi8(u64::MAX << mis, base.cast()) };
            let head = $acc(_mm512_setzero_si512(), _mm512_xor_si512(x, _mm512_set1_epi16(i16::MIN)), _mm512_set1_epi16(1));
            // SAFETY: same features as this function, which the caller guarantees.
            let le = unsafe { $body(&data[64 - mis..], head, 1) };
            // Words were paired from an even (64-byte aligned) address: if `data` starts at an odd one, its own
            // pairing is the byte-swapped one (RFC 1071 section 2(B)).
            if mis % 2 == 1 {
                u64::from(super::fold64(le).swap_bytes())
            } else {
                le
            }
        }

        /// The loop of the kernel above: `carry` (holding `carry_vecs` biased vectors) seeds the first chunk.
        ///
        /// # Safety
        /// Same CPU features as the kernel above.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn $body(data: &[u8], carry: __m512i, carry_vecs: usize) -> u64 {
            let bias = _mm512_set1_epi16(i16::MIN);
            let ones = _mm512_set1_epi16(1);
            let step = |acc: __m512i, v: __m512i| -> __m512i { $acc(acc, _mm512_xor_si512(v, bias), ones) };
            let (mut carry, mut carry_vecs) = (carry, carry_vecs);
            let mut total: i64 = 0;
            for chunk in data.chunks(CHUNK) {
                let (mut a0, mut a1, mut a2) = (_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512());
                // One extra vector in the first chunk keeps every lane within the `CHUNK` bound.
                let mut a3 = carry;
                carry = _mm512_setzero_si512();
                let extra = carry_vecs;
                carry_vecs = 0;
                let mut blocks = chunk.chunks_exact(256);
                for b in &mut blocks {
                    let p = b.as_ptr();
                    // SAFETY: `b` is exactly 256 bytes, so the four unaligned 64-byte loads at 0, 64, 128, 192 are
                    // in bounds.
                    let (v0, v1, v2, v3) = unsafe {
                        (
                            _mm512_loadu_si512(p.cast()),
                            _mm512_loadu_si512(p.add(64).cast()),
                            _mm512_loadu_si512(p.add(128).cast()),
                            _mm512_loadu_si512(p.add(192).cast()),
                        )
                    };
                    a0 = step(a0, v0);
                    a1 = step(a1, v1);
                    a2 = step(a2, v2);
                    a3 = step(a3, v3);
                }
                // The remainder (< 256 bytes): up to three whole vectors and a masked tail, each into its own
                // accumulator so they do not serialise on one dependency chain; no scalar tail.
                let rest = blocks.remainder();
                let full = rest.len() / 64;
                let tail = rest.len() % 64;
                let p = rest.as_ptr();
                // SAFETY (the three loads below): `rest` holds `full` whole 64-byte vectors, and each load is guarded
                // by `full` covering it, so every byte read is in bounds.
                if full >= 1 {
                    a0 = step(a0, unsafe { _mm512_loadu_si512(p.cast()) });
                }
                if full >= 2 {
                    a1 = step(a1, unsafe { _mm512_loadu_si512(p.add(64).cast()) });
                }
                if full >= 3 {
                    a2 = step(a2, unsafe { _mm512_loadu_si512(p.add(128).cast()) });
                }
                if tail != 0 {
                    // `tail < 64`: the shift is in range and the mask selects exactly the tail's bytes.
                    let mask: __mmask64 = (1u64 << tail) - 1;
                    // SAFETY: `p + 64 * full` is inside `rest` (tail bytes follow the whole vectors). A masked load
                    // neither reads nor faults on bytes whose mask bit is clear (AVX-512 fault suppression), and the
                    // set bits cover exactly the tail. Cleared lanes load as zero: the zero padding of an odd last
                    // byte (RFC 1071).
                    let x = unsafe { _mm512_maskz_loadu_epi8(mask, p.add(64 * full).cast()) };
                    a3 = step(a3, x);
                }
                // Every vector, the zero-padded tail included, carried the -32768 bias in all 32 of its words.
                let nvec = chunk.len() / 256 * 4 + full + usize::from(tail != 0) + extra;
                let words = nvec as i64 * 32;
                let acc = _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3));
                total += hsum_512(acc) + BIAS * words;
            }
            total as u64
        }
    };
}

avx512_kernel!(
    /// AVX-512BW kernel: 64-byte vectors, `vpmaddwd` + `vpaddd`, four accumulators, masked-load remainder.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX-512BW.
    le_avx512bw,
    le_avx512bw_body,
    "avx512f,avx512bw",
    |acc, v, ones| _mm512_add_epi32(acc, _mm512_madd_epi16(v, ones))
);

avx512_kernel!(
    /// AVX-512 VNNI kernel: as [`le_avx512bw`] with the multiply-add-accumulate fused into `vpdpwssd`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, AVX-512BW and AVX-512 VNNI.
    le_avx512vnni,
    le_avx512vnni_body,
    "avx512f,avx512bw,avx512vnni",
    |acc, v, ones| _mm512_dpwssd_epi32(acc, v, ones)
);
