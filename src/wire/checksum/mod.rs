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
//! The implementation is chosen once, at first use, by CPU feature detection (see `simd.rs`).

mod scalar;

pub use scalar::sum as scalar_sum;

/// Fold a 32-bit accumulator into 16 bits with end-around carry.
#[inline(always)]
pub fn fold(mut s: u32) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// One's-complement sum of `data` added to `initial` (see the module contract).
#[inline]
pub fn sum(data: &[u8], initial: u32) -> u32 {
    scalar::sum(data, initial)
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
