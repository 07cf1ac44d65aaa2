//! Every variant against the scalar reference (odd lengths, misaligned starts, chained segments), the fixed IPv4
//! routine, RFC 1624 updates and pseudo-headers against full recomputation.

use super::*;
use proptest::prelude::*;

fn folded_ref(data: &[u8], initial: u32) -> u16 {
    fold(scalar_sum(data, initial))
}

/// RFC 1071 section 3 example bytes: `00 01 f2 03 f4 f5 f6 f7` sum to `ddf2`.
#[test]
fn rfc1071_example_every_variant() {
    let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    for v in available_variants() {
        assert_eq!(fold(sum_with(v, &data, 0)), 0xddf2, "{v}");
    }
    assert_eq!(fold(sum(&data, 0)), 0xddf2);
    assert_eq!(checksum(&data), !0xddf2);
}

#[test]
fn best_is_available_and_last() {
    let avail = available_variants();
    assert_eq!(avail[0], Variant::Scalar);
    assert_eq!(Some(&best_variant()), avail.last());
    assert_eq!(Variant::Avx512vnni.to_string(), "avx512vnni");
}

/// Extreme inputs at every length up to a few vectors past the widest unroll, at every start offset mod 64:
/// all-0xff (largest lanes, bias extremes), all-zero (the +0/-0 distinction) and 0x80/0x7f sign boundaries.
#[test]
fn extremes_every_length_and_offset() {
    let mut buf = vec![0u8; 700];
    for fill in [0x00u8, 0xff, 0x80, 0x7f] {
        buf.iter_mut().for_each(|b| *b = fill);
        for off in [0usize, 1, 3, 17, 63] {
            for len in 0..600 {
                let d = &buf[off..off + len];
                for init in [0u32, 0xffff, u32::MAX] {
                    let want = folded_ref(d, init);
                    for v in available_variants() {
                        assert_eq!(
                            fold(sum_with(v, d, init)),
                            want,
                            "{v} fill={fill:#x} off={off} len={len}"
                        );
                    }
                    assert_eq!(
                        fold(sum_short(d, init)),
                        want,
                        "short fill={fill:#x} off={off} len={len}"
                    );
                    assert_eq!(
                        fold(sum(d, init)),
                        want,
                        "sum fill={fill:#x} off={off} len={len}"
                    );
                }
            }
        }
    }
}

/// 64 KiB-class buffers: the 65535-byte maximum IP datagram and beyond one `CHUNK`, all-ones and patterned.
#[test]
fn large_buffers() {
    for len in [65535usize, 65536, 300_001] {
        for pattern in [0xffu8, 0x5a] {
            let d: Vec<u8> = (0..len)
                .map(|i| {
                    if pattern == 0xff {
                        0xff
                    } else {
                        (i * 31) as u8 ^ pattern
                    }
                })
                .collect();
            let want = folded_ref(&d, 0);
            for v in available_variants() {
                assert_eq!(fold(sum_with(v, &d, 0)), want, "{v} len={len}");
            }
        }
    }
}

#[test]
fn sum_with_unavailable_panics() {
    // Only checkable on a CPU that lacks some variant.
    for v in Variant::ALL
        .into_iter()
        .filter(|v| !available_variants().contains(v))
    {
        assert!(
            std::panic::catch_unwind(|| sum_with(v, &[1, 2], 0)).is_err(),
            "{v}"
        );
    }
}

/// RFC 791 style header from a capture: `45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7`.
const HDR: [u8; 20] = [
    0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01,
    0xc0, 0xa8, 0x00, 0xc7,
];

#[test]
fn ipv4_header_fixture() {
    assert!(ipv4_header_valid(&HDR));
    assert_eq!(ipv4_header_checksum(&HDR), 0);
    assert_eq!(ipv4_header_checksum_skip_field(&HDR), 0xb861);
    let mut zeroed = HDR;
    zeroed[10..12].fill(0);
    assert_eq!(ipv4_header_checksum(&zeroed), 0xb861);
    assert!(!ipv4_header_valid(&zeroed));
}

/// RFC 1624 section 3: eqn. 3 gives +0 (0x0000) where eqn. 2 gave -0 (0xffff).
#[test]
fn rfc1624_minus_zero_corner() {
    assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
}

#[test]
fn ttl_decrement_fixture() {
    let mut h = HDR;
    let c = update_ttl(0xb861, h[8], h[8] - 1);
    h[8] -= 1;
    h[10..12].fill(0);
    assert_eq!(c, ipv4_header_checksum(&h));
}

#[test]
fn measure_gbps_runs() {
    for v in available_variants() {
        let g = measure_gbps(v, 1500, 50);
        assert!(g.is_finite() && g > 0.0, "{v}: {g}");
    }
    assert_eq!(measure_gbps(Variant::Scalar, 0, 10), 0.0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn variants_equal_scalar(
        buf in prop::collection::vec(any::<u8>(), 9600 + 64),
        len in 0usize..9600,
        off in 0usize..64,
        initial in any::<u32>(),
    ) {
        let d = &buf[off..off + len];
        let want = folded_ref(d, initial);
        for v in available_variants() {
            prop_assert_eq!(fold(sum_with(v, d, initial)), want, "{} len={} off={}", v, len, off);
        }
        prop_assert_eq!(fold(sum(d, initial)), want);
        let short = &d[..d.len().min(3 * SHORT_MAX)];
        prop_assert_eq!(fold(sum_short(short, initial)), folded_ref(short, initial), "sum_short len={}", short.len());
    }

    #[test]
    fn accumulator_equals_contiguous(
        data in prop::collection::vec(any::<u8>(), 0..3000),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
        cuts.push(0);
        cuts.push(data.len());
        cuts.sort_unstable();
        let mut acc = Accumulator::new();
        for w in cuts.windows(2) {
            acc.add(&data[w[0]..w[1]]);
        }
        prop_assert_eq!(acc.finish(), folded_ref(&data, 0));
    }

    #[test]
    fn ipv4_fixed_equals_generic(mut hdr in any::<[u8; 20]>()) {
        prop_assert_eq!(ipv4_header_checksum(&hdr), checksum(&hdr));
        let skip = ipv4_header_checksum_skip_field(&hdr);
        hdr[10..12].fill(0);
        prop_assert_eq!(skip, checksum(&hdr));
        hdr[10..12].copy_from_slice(&skip.to_be_bytes());
        prop_assert!(ipv4_header_valid(&hdr));
    }

    /// The remainder test of `ipv4_header_valid` agrees with the folded sum for any header: random ones (almost
    /// all invalid), corrected ones, ones whose sum is +0 in the other representation (checksum 0x0000 against
    /// 0xffff), and the all-zero header (sum 0: invalid).
    #[test]
    fn ipv4_valid_equals_folded_sum(mut hdr in any::<[u8; 20]>(), fix in 0u8..4) {
        if fix >= 1 {
            hdr[10..12].fill(0);
            let c = checksum(&hdr);
            hdr[10..12].copy_from_slice(&c.to_be_bytes());
            if fix == 2 {
                // The same sum with the checksum written as the other zero (0x0000 <-> 0xffff).
                let alt = if c == 0 { 0xffff } else if c == 0xffff { 0 } else { c };
                hdr[10..12].copy_from_slice(&alt.to_be_bytes());
            }
            if fix == 3 {
                hdr = [0; 20];
            }
        }
        prop_assert_eq!(ipv4_header_valid(&hdr), checksum(&hdr) == 0);
        if hdr[0] != 0 {
            prop_assert_eq!(ipv4_header_valid_nonzero(&hdr), checksum(&hdr) == 0);
        }
    }

    /// Incremental equals full recomputation for any word of any buffer. The one exception is a buffer that
    /// becomes all zeros: full recomputation then gives -0 (0xffff), which only a sum of zeros can produce, while
    /// RFC 1624 eqn. 3 gives the equivalent +0; both verify.
    #[test]
    fn update16_equals_recompute(
        words in prop::collection::vec(any::<u16>(), 1..40),
        idx in any::<prop::sample::Index>(),
        new_word in any::<u16>(),
    ) {
        let i = idx.index(words.len());
        let bytes = |w: &[u16]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
        let old = checksum(&bytes(&words));
        let mut changed = words.clone();
        changed[i] = new_word;
        let full = checksum(&bytes(&changed));
        let inc = update16(old, words[i], new_word);
        if changed.iter().all(|&w| w == 0) {
            prop_assert_eq!(full, 0xffff);
            prop_assert_eq!(inc, 0);
        } else {
            prop_assert_eq!(inc, full);
        }
    }

    #[test]
    fn ttl_and_length_updates_equal_recompute(
        mut hdr in any::<[u8; 20]>(),
        new_ttl in any::<u8>(),
        new_len in any::<u16>(),
    ) {
        hdr[10..12].fill(0);
        let c = ipv4_header_checksum(&hdr);
        let old_ttl = hdr[8];
        let c = update_ttl(c, old_ttl, new_ttl);
        hdr[8] = new_ttl;
        let old_len = u16::from_be_bytes([hdr[2], hdr[3]]);
        let c = update_total_length(c, old_len, new_len);
        hdr[2..4].copy_from_slice(&new_len.to_be_bytes());
        let full = ipv4_header_checksum(&hdr);
        if hdr.iter().all(|&b| b == 0) {
            prop_assert_eq!(c, 0);
        } else {
            prop_assert_eq!(c, full);
        }
    }

    #[test]
    fn pseudo_headers_equal_explicit_bytes(
        src4 in any::<[u8; 4]>(), dst4 in any::<[u8; 4]>(),
        src6 in any::<[u8; 16]>(), dst6 in any::<[u8; 16]>(),
        proto in any::<u8>(), len in any::<u32>(),
        payload in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let len16 = len as u16;
        let mut p4 = Vec::new();
        p4.extend_from_slice(&src4);
        p4.extend_from_slice(&dst4);
        p4.extend_from_slice(&[0, proto]);
        p4.extend_from_slice(&len16.to_be_bytes());
        prop_assert_eq!(
            fold(sum(&payload, pseudo_header_v4(src4, dst4, proto, u32::from(len16)))),
            fold(scalar_sum(&[p4, payload.clone()].concat(), 0))
        );
        let mut p6 = Vec::new();
        p6.extend_from_slice(&src6);
        p6.extend_from_slice(&dst6);
        p6.extend_from_slice(&len.to_be_bytes());
        p6.extend_from_slice(&[0, 0, 0, proto]);
        prop_assert_eq!(
            fold(sum(&payload, pseudo_header_v6(&src6, &dst6, proto, len))),
            fold(scalar_sum(&[p6, payload].concat(), 0))
        );
    }
}
