//! The scalar reference every SIMD variant is tested against.

/// RFC 1071 sum, scalar reference: 16-bit big-endian words, odd tail byte padded with zero.
pub fn sum(data: &[u8], initial: u32) -> u32 {
    let mut acc: u64 = u64::from(initial);
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while acc >> 32 != 0 {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}
