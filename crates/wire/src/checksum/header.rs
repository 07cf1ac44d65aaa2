//! Fixed-size and incremental checksum helpers for the per-packet path: no dispatch, no loops, no `unsafe`.
//!
//! All `u16` checksums here are host-order values of the big-endian header field (write them with
//! `to_be_bytes`), exactly like [`super::checksum`].

use super::fold;

/// The plain sum of the five little-endian 32-bit words of an IPv4 header (the word at offset 8, which holds
/// the checksum field in its upper half, masked with `field_mask`): below 2^35.
#[inline(always)]
fn le_words_sum(hdr: &[u8; 20], field_mask: u32) -> u64 {
    let w = |i: usize| {
        u64::from(u32::from_le_bytes([
            hdr[i],
            hdr[i + 1],
            hdr[i + 2],
            hdr[i + 3],
        ]))
    };
    w(0) + w(4) + (w(8) & u64::from(field_mask)) + w(12) + w(16)
}

/// Sum of the five 32-bit little-endian words of an IPv4 header. A 32-bit value `lo + 65536 * hi` is congruent
/// to `lo + hi` modulo 0xffff, and little-endian lanes are swapped once at the end (RFC 1071 section 2(B)), so five
/// straight-line loads replace ten 16-bit ones.
#[inline(always)]
fn ipv4_le_sum(hdr: &[u8; 20], field_mask: u32) -> u16 {
    let s = le_words_sum(hdr, field_mask);
    // Five 32-bit words sum below 2^35: one 64->32 fold leaves at most 0xffff_ffff + 7, a second makes it fit.
    let s = (s & 0xffff_ffff) + (s >> 32);
    let s = (s & 0xffff_ffff) + (s >> 32);
    fold(s as u32).swap_bytes()
}

/// The Internet checksum of a 20-byte IPv4 header (no options), as [`super::checksum`] would compute it.
///
/// The checksum field (bytes 10..12) is summed as it is in the buffer: zero it first when *computing* a checksum
/// (or use [`ipv4_header_checksum_skip_field`]); leave it in place to *verify* one (a valid header gives 0, see
/// [`ipv4_header_valid`]).
#[inline]
pub fn ipv4_header_checksum(hdr: &[u8; 20]) -> u16 {
    !ipv4_le_sum(hdr, u32::MAX)
}

/// The checksum to write into a 20-byte IPv4 header, ignoring whatever bytes 10..12 currently hold.
#[inline]
pub fn ipv4_header_checksum_skip_field(hdr: &[u8; 20]) -> u16 {
    // Bytes 10 and 11 are the upper half of the little-endian word at offset 8.
    !ipv4_le_sum(hdr, 0x0000_ffff)
}

/// Whether a 20-byte IPv4 header's checksum field is correct (RFC 1071: the sum over the header, field included,
/// is all ones).
#[inline(always)]
pub fn ipv4_header_valid(hdr: &[u8; 20]) -> bool {
    let s = ipv4_header_word_sum(hdr);
    // `s` is a non-zero multiple of 0xffff iff `s * 0xffff^-1` (modulo 2^64) is in 1..=(2^64 - 1) / 0xffff (the
    // multiples map onto their quotients, everything else above them): one multiply and one compare, where
    // `s != 0 && s % 0xffff == 0` compiles to a widening multiply, shifts and a subtract.
    s.wrapping_mul(INV).wrapping_sub(1) < u64::MAX / 0xffff
}

/// [`ipv4_header_valid`] of a header whose first byte is not zero (the caller has checked its version): its sum
/// is not zero, so the remainder test needs no subtraction (one instruction less per packet in the fast paths,
/// which test the version and IHL byte first).
#[inline(always)]
pub fn ipv4_header_valid_nonzero(hdr: &[u8; 20]) -> bool {
    debug_assert_ne!(hdr[0], 0);
    ipv4_header_word_sum(hdr).wrapping_mul(INV) <= u64::MAX / 0xffff
}

/// 0xffff's inverse modulo 2^64.
const INV: u64 = 0xfffe_fffe_fffe_ffff;
const _: () = assert!(0xffff_u64.wrapping_mul(INV) == 1);

/// The sum of [`ipv4_header_valid`]: modulo 2^64 - 1, 256 times the sum of the header's 16-bit words.
#[inline(always)]
fn ipv4_header_word_sum(hdr: &[u8; 20]) -> u64 {
    // The one's-complement sum is all ones (-0) iff the plain integer sum of the 16-bit words is a non-zero
    // multiple of 0xffff (2^16 = 1 modulo 0xffff). Two little-endian 64-bit words and one 32-bit word, added
    // with end-around carry (modulo 2^64 - 1, a multiple of 0xffff), sum to 256 times that modulo 0xffff (a
    // byte swap multiplies by 256, which is invertible modulo 0xffff): three loads and an add-with-carry chain,
    // then one remainder (a multiply by a constant) instead of the folds. Only the all-zero header sums to 0.
    let (w0, rest) = hdr.split_first_chunk::<8>().expect("20 bytes");
    let (w1, w2) = rest.split_first_chunk::<8>().expect("12 bytes");
    let w2: &[u8; 4] = w2.try_into().expect("4 bytes");
    let (s, c1) = u64::from_le_bytes(*w0).overflowing_add(u64::from_le_bytes(*w1));
    let (s, c2) = s.overflowing_add(u64::from(u32::from_le_bytes(*w2)));
    let (s, c3) = s.overflowing_add(u64::from(c1) + u64::from(c2));
    // With a third carry `s` is at most 1: adding it cannot carry again.
    s + u64::from(c3)
}

/// RFC 1624 incremental update: the checksum after one 16-bit word of the covered data changes from `old_word`
/// to `new_word`.
///
/// Uses eqn. 3, `HC' = ~(~HC + ~m + m')`, which never produces the -0 (0xffff) that eqn. 2 can yield for a
/// header whose true checksum is +0 (RFC 1624 section 3).
#[inline]
pub fn update16(old_cksum: u16, old_word: u16, new_word: u16) -> u16 {
    let s = u32::from(!old_cksum) + u32::from(!old_word) + u32::from(new_word);
    !fold(s)
}

/// Incremental update of an IPv4 header checksum for a TTL change (TTL is the high byte of the word at offset 8;
/// the protocol byte beside it is unchanged, so it cancels out of `~m + m'`).
///
/// Forwarding decrements with `update_ttl(c, ttl, ttl - 1)` after dropping `ttl <= 1`.
#[inline]
pub fn update_ttl(old_cksum: u16, old_ttl: u8, new_ttl: u8) -> u16 {
    update16(old_cksum, u16::from(old_ttl) << 8, u16::from(new_ttl) << 8)
}

/// Incremental update of an IPv4 header checksum for a Total Length change (offset 2).
#[inline]
pub fn update_total_length(old_cksum: u16, old_len: u16, new_len: u16) -> u16 {
    update16(old_cksum, old_len, new_len)
}

/// Unfolded sum of the IPv4 pseudo-header (RFC 768, RFC 793 section 3.1): source, destination, zero + protocol,
/// upper-layer length. Pass it as `initial` to [`super::sum`] over the upper-layer header and payload.
///
/// `len` is the upper-layer length; both of its 16-bit halves are summed, so a `u32` length gives the same result
/// as its 16-bit wire field whenever it fits.
#[inline]
pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u32) -> u32 {
    let w = |a: [u8; 4]| {
        u32::from(u16::from_be_bytes([a[0], a[1]])) + u32::from(u16::from_be_bytes([a[2], a[3]]))
    };
    w(src) + w(dst) + u32::from(proto) + (len >> 16) + (len & 0xffff)
}

/// Unfolded sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source, destination, 32-bit upper-layer length,
/// three zero bytes and Next Header. Pass it as `initial` to [`super::sum`].
#[inline]
pub fn pseudo_header_v6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, len: u32) -> u32 {
    let w = |a: &[u8; 16]| -> u32 {
        a.chunks_exact(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum()
    };
    // 16 words of at most 0xffff plus 3 more stay below 2^21: no overflow.
    w(src) + w(dst) + (len >> 16) + (len & 0xffff) + u32::from(next_header)
}
