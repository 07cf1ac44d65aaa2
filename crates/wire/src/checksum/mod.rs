//! RFC 1071 Internet checksum: one's-complement sum of 16-bit big-endian words.
//!
//! Contract (shared by every variant):
//! - `sum(data, initial)` returns a 32-bit *unfolded-or-folded* accumulator whose value, once folded with
//!   [`fold`], equals the RFC 1071 one's-complement sum of `data` (an odd trailing byte is padded with zero)
//!   added to `initial`. Callers only ever rely on the folded value.
//! - `checksum(data)` is `!fold(sum(data, 0))`, the value written into a header.
//! - Chained buffers: use [`Accumulator`], which tracks odd-length segment boundaries (RFC 1071 section 2(B):
//!   a segment that starts at an odd offset contributes its byte-swapped sum).
//!
//! The implementation is chosen once, at first use, by CPU feature detection (see `simd.rs`): [`sum`] then costs
//! one atomic load and one indirect call. [`sum_with`] runs a named [`Variant`] (tests, benchmarks), and
//! [`measure_gbps`] times one for `greway bench checksum`.
//!
//! Fixed-size and incremental helpers live in `header.rs`: [`ipv4_header_checksum`] (straight-line, no dispatch),
//! RFC 1624 incremental updates ([`update16`], [`update_ttl`], [`update_total_length`]) and the pseudo-header sums
//! that seed `initial` for UDP/TCP/ICMPv6 ([`pseudo_header_v4`], [`pseudo_header_v6`]).

mod header;
mod measure;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod simd;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::OnceLock;

pub use header::{
    ipv4_header_checksum, ipv4_header_checksum_skip_field, ipv4_header_valid,
    ipv4_header_valid_nonzero, pseudo_header_v4, pseudo_header_v6, update16, update_total_length,
    update_ttl,
};
pub use measure::{measure_fn_gbps, measure_gbps};
pub use scalar::sum as scalar_sum;

/// A `sum` implementation: `fn(data, initial) -> u32` with the module contract.
type SumFn = fn(&[u8], u32) -> u32;

/// An implementation of [`sum`], named for tests, benchmarks and `greway bench checksum`.
///
/// Declaration order is expected speed order: [`best_variant`] is the last available one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// The portable reference in `scalar.rs`.
    Scalar,
    /// 128-bit `pmaddwd`.
    Sse2,
    /// 256-bit `vpmaddwd`.
    Avx2,
    /// 512-bit `vpmaddwd`, masked-load tail.
    Avx512bw,
    /// 512-bit fused `vpdpwssd` (AVX-512 VNNI), masked-load tail.
    Avx512vnni,
}

impl Variant {
    /// Every variant, available or not, in speed order.
    pub const ALL: [Variant; 5] = [
        Variant::Scalar,
        Variant::Sse2,
        Variant::Avx2,
        Variant::Avx512bw,
        Variant::Avx512vnni,
    ];

    /// Lower-case name as printed by `greway bench checksum` (`avx512vnni`).
    pub fn name(self) -> &'static str {
        match self {
            Variant::Scalar => "scalar",
            Variant::Sse2 => "sse2",
            Variant::Avx2 => "avx2",
            Variant::Avx512bw => "avx512bw",
            Variant::Avx512vnni => "avx512vnni",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The variants this CPU can run, slowest first; always starts with [`Variant::Scalar`].
pub fn available_variants() -> Vec<Variant> {
    #[cfg(target_arch = "x86_64")]
    {
        simd::detected()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        vec![Variant::Scalar]
    }
}

/// The entry point of `variant`, or `None` if this CPU cannot run it (feature detection, uncached).
fn detect_entry(variant: Variant) -> Option<SumFn> {
    #[cfg(target_arch = "x86_64")]
    {
        simd::entry(variant)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        match variant {
            Variant::Scalar => Some(scalar::sum as SumFn),
            _ => None,
        }
    }
}

/// Every variant's entry point, detected once, indexed by `Variant as usize`.
fn entries() -> &'static [Option<SumFn>; Variant::ALL.len()] {
    static ENTRIES: OnceLock<[Option<SumFn>; Variant::ALL.len()]> = OnceLock::new();
    ENTRIES.get_or_init(|| Variant::ALL.map(detect_entry))
}

/// The entry point of `variant`, or `None` if this CPU cannot run it.
fn entry(variant: Variant) -> Option<SumFn> {
    entries()[variant as usize]
}

/// The variant [`sum`] dispatches to, detected once.
fn best() -> &'static (Variant, SumFn) {
    static BEST: OnceLock<(Variant, SumFn)> = OnceLock::new();
    BEST.get_or_init(|| {
        let v = available_variants()
            .into_iter()
            .max()
            .unwrap_or(Variant::Scalar);
        (v, entry(v).unwrap_or(scalar::sum))
    })
}

/// The fastest variant this CPU runs: the one [`sum`] uses.
pub fn best_variant() -> Variant {
    best().0
}

/// [`sum`] computed by a named variant.
///
/// # Panics
/// If this CPU cannot run `variant` (check [`available_variants`]).
pub fn sum_with(variant: Variant, data: &[u8], initial: u32) -> u32 {
    match entry(variant) {
        Some(f) => f(data, initial),
        None => panic!("checksum variant {variant} is not available on this CPU"),
    }
}

/// Fold a 64-bit accumulator into 16 bits with end-around carry (same residue mod 0xffff, zero only if zero).
#[inline(always)]
pub(crate) fn fold64(mut s: u64) -> u16 {
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    fold(s as u32)
}

/// Fold a 32-bit accumulator into 16 bits with end-around carry.
#[inline(always)]
pub fn fold(s: u32) -> u16 {
    // The upper half of `s + rotl(s, 16)` is hi + lo plus the carry out of lo + hi below it: the end-around
    // carry, in one add (Linux's `csum_fold`).
    (s.wrapping_add(s.rotate_left(16)) >> 16) as u16
}

/// One's-complement sum of `data` added to `initial` (see the module contract). Buffers up to
/// [`SHORT_MAX`] bytes are summed inline ([`sum_short`]); longer ones by the best SIMD variant.
#[inline]
pub fn sum(data: &[u8], initial: u32) -> u32 {
    if data.len() <= SHORT_MAX {
        return sum_short(data, initial);
    }
    (best().1)(data, initial)
}

/// The longest buffer [`sum`] sums inline rather than through the SIMD entry point.
pub const SHORT_MAX: usize = 128;

/// RFC 1071 sum of a short buffer, inline: 8-byte native-endian loads, each split into two 32-bit halves added
/// into a 64-bit accumulator, folded and byte-swapped once at the end (the one's-complement sum is byte-order
/// independent, RFC 1071 section 2(B)); the SIMD variants' head and tail routine. In the encapsulation of a
/// small packet with a GRE checksum this replaced the SIMD entry point's call and masked 64-byte load.
#[inline(always)]
pub fn sum_short(data: &[u8], initial: u32) -> u32 {
    finish(le_tail(data), initial)
}

/// Little-endian word sum (see the module contract) into the big-endian `sum` result plus `initial`.
#[inline(always)]
fn finish(le: u64, initial: u32) -> u32 {
    let be = fold64(le).swap_bytes();
    let mut acc = u64::from(initial) + u64::from(be);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc as u32
}

/// Little-endian sum of a short input with plain 64-bit loads, congruent mod 0xffff: a 32-bit little-endian
/// value `lo + 65536 * hi` is congruent to `lo + hi` (no carry is lost below 2^32 loads).
#[inline(always)]
fn le_tail(tail: &[u8]) -> u64 {
    let mut acc = 0u64;
    let mut quads = tail.chunks_exact(8);
    for q in &mut quads {
        let x = u64::from_le_bytes([q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]]);
        acc += (x & 0xffff_ffff) + (x >> 32);
    }
    let mut rest = quads.remainder();
    if rest.len() >= 4 {
        acc += u64::from(u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]));
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        acc += u64::from(u16::from_le_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let [last] = rest {
        // At an even offset: the high byte of its big-endian word, the low byte of a native one.
        acc += u64::from(*last);
    }
    acc
}

/// The Internet checksum of `data`: the complement of the folded one's-complement sum.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// Sum over a chain of segments, as if they were one contiguous buffer.
#[derive(Debug, Default, Clone, Copy)]
pub struct Accumulator {
    acc: u32,
    odd: bool,
}

impl Accumulator {
    /// An empty sum.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the next segment.
    pub fn add(&mut self, seg: &[u8]) {
        let s = fold(sum(seg, 0));
        // A segment that starts at an odd offset of the whole has its bytes in swapped lanes.
        let s = if self.odd { s.swap_bytes() } else { s };
        self.acc = u32::from(fold(self.acc + u32::from(s)));
        if seg.len() % 2 == 1 {
            self.odd = !self.odd;
        }
    }

    /// The folded sum (not complemented).
    pub fn finish(&self) -> u16 {
        fold(self.acc)
    }
}
