//! TCP header (RFC 9293 section 3.1) and its options, as far as a router that clamps the Maximum Segment Size
//! needs them: the fixed header, a bounded walk over the options, and [`clamp_mss`].
//!
//! ```text
//!   0                   1                   2                   3
//!   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |          Source Port          |       Destination Port        |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                        Sequence Number                        |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                    Acknowledgment Number                      |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |  Data |       |C|E|U|A|P|R|S|F|                               |
//!  | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |           Checksum            |         Urgent Pointer        |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                           [Options]                           |
//! ```
//!
//! Options (RFC 9293 section 3.2): kind 0 ends the list, kind 1 is one byte of padding, every other kind has a
//! length byte counting kind and length. Maximum Segment Size is kind 2, length 4, sent only in SYN segments.
//! [`clamp_mss`] leaves a segment whose options are malformed (a length below 2, an option past the data
//! offset, an MSS option of another length) untouched: a router must not guess.

use super::checksum;
use super::{need, Error, Layer};

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    /// Data offset (high 4 bits, in 32-bit words) and reserved bits.
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
    /// In an option: kind, length, data.
    pub const OPT_KIND: usize = 0;
    pub const OPT_LEN: usize = 1;
    pub const OPT_DATA: usize = 2;
}

/// The fixed header (data offset 5).
pub const HEADER_LEN: usize = 20;

/// Control bits (the byte at offset 13).
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// Option kinds (RFC 9293 section 3.2).
pub mod option_kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
}

/// Length of the Maximum Segment Size option (kind, length, 16-bit value).
pub const MSS_OPTION_LEN: usize = 4;

// The accessors shared by [`Header`] and [`HeaderMut`], each a load at a constant `field` offset of the
// 20-byte array.
macro_rules! fixed_header_getters {
    () => {
        #[inline(always)]
        pub fn src_port(&self) -> u16 {
            u16::from_be_bytes([
                self.0[field::SRC_PORT.start],
                self.0[field::SRC_PORT.start + 1],
            ])
        }
        #[inline(always)]
        pub fn dst_port(&self) -> u16 {
            u16::from_be_bytes([
                self.0[field::DST_PORT.start],
                self.0[field::DST_PORT.start + 1],
            ])
        }
        #[inline(always)]
        pub fn seq(&self) -> u32 {
            let at = field::SEQ.start;
            u32::from_be_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
        }
        #[inline(always)]
        pub fn ack(&self) -> u32 {
            let at = field::ACK.start;
            u32::from_be_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
        }
        /// The header length the data offset gives, options included (20..=60; below 20 is malformed).
        #[inline(always)]
        pub fn header_len(&self) -> usize {
            usize::from(self.0[field::DATA_OFFSET] >> 4) * 4
        }
        /// The control bits ([`flags`]).
        #[inline(always)]
        pub fn flags(&self) -> u8 {
            self.0[field::FLAGS]
        }
        #[inline(always)]
        pub fn syn(&self) -> bool {
            self.flags() & flags::SYN != 0
        }
        #[inline(always)]
        pub fn window(&self) -> u16 {
            u16::from_be_bytes([self.0[field::WINDOW.start], self.0[field::WINDOW.start + 1]])
        }
        #[inline(always)]
        pub fn checksum(&self) -> u16 {
            u16::from_be_bytes([
                self.0[field::CHECKSUM.start],
                self.0[field::CHECKSUM.start + 1],
            ])
        }
        #[inline(always)]
        pub fn urgent(&self) -> u16 {
            u16::from_be_bytes([self.0[field::URGENT.start], self.0[field::URGENT.start + 1]])
        }
    };
}

fixed_header_views! {
    len: HEADER_LEN,
    error: Error,
    truncated: |actual| Error::Truncated { layer: Layer::Tcp, needed: HEADER_LEN, actual },
    /// A fixed-size view of the 20-byte TCP header (the fast paths' SYN check).
    header;
    /// The writable [`Header`].
    header_mut;
}

impl HeaderMut<'_> {
    #[inline(always)]
    pub fn set_checksum(&mut self, value: u16) {
        self.0[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }
    #[inline(always)]
    pub fn set_flags(&mut self, value: u8) {
        self.0[field::FLAGS] = value;
    }
}

/// One TCP option: where its kind byte is (from the start of the TCP header), its kind, its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpOption<'a> {
    pub offset: usize,
    pub kind: u8,
    pub data: &'a [u8],
}

/// The options of the TCP header at the start of `segment`, in order; NOPs are skipped, End of Option List
/// ends the walk. An error (data offset below 5 or past the segment, an option that does not fit) is yielded
/// once and ends it. At most 40 bytes of options, so the walk is bounded.
pub fn options(segment: &[u8]) -> Options<'_> {
    Options {
        segment,
        at: HEADER_LEN,
        end: 0,
        state: OptionsState::Start,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OptionsState {
    Start,
    Walking,
    Done,
}

/// See [`options`].
#[derive(Debug, Clone)]
pub struct Options<'a> {
    segment: &'a [u8],
    at: usize,
    end: usize,
    state: OptionsState,
}

fn malformed(reason: &'static str) -> Error {
    Error::Malformed {
        layer: Layer::Tcp,
        reason,
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<TcpOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == OptionsState::Start {
            let h = match Header::try_from(self.segment) {
                Ok(h) => h,
                Err(e) => {
                    self.state = OptionsState::Done;
                    return Some(Err(e));
                }
            };
            let hl = h.header_len();
            if hl < HEADER_LEN {
                self.state = OptionsState::Done;
                return Some(Err(malformed("data offset below 5")));
            }
            if let Err(e) = need(Layer::Tcp, hl, self.segment.len()) {
                self.state = OptionsState::Done;
                return Some(Err(e));
            }
            self.end = hl;
            self.state = OptionsState::Walking;
        }
        while self.state == OptionsState::Walking && self.at < self.end {
            let s = self.segment;
            let offset = self.at;
            match s[offset + field::OPT_KIND] {
                option_kind::END => break,
                option_kind::NOP => {
                    self.at += 1;
                    continue;
                }
                kind => {
                    let len = match s[..self.end].get(offset + field::OPT_LEN) {
                        Some(&l) if usize::from(l) >= field::OPT_DATA => usize::from(l),
                        Some(_) => {
                            self.state = OptionsState::Done;
                            return Some(Err(malformed("option length below 2")));
                        }
                        None => {
                            self.state = OptionsState::Done;
                            return Some(Err(malformed("option runs past the data offset")));
                        }
                    };
                    if offset + len > self.end {
                        self.state = OptionsState::Done;
                        return Some(Err(malformed("option runs past the data offset")));
                    }
                    self.at += len;
                    return Some(Ok(TcpOption {
                        offset,
                        kind,
                        data: &s[offset + field::OPT_DATA..offset + len],
                    }));
                }
            }
        }
        self.state = OptionsState::Done;
        None
    }
}

/// What [`clamp_mss`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MssClamp {
    /// Not a SYN (nor a SYN-ACK): untouched.
    NotSyn,
    /// A SYN without an MSS option: untouched.
    NoOption,
    /// The MSS was already at most the clamp: untouched.
    NotLarger { mss: u16 },
    /// Lowered from `from` to the clamp; the checksum was updated.
    Clamped { from: u16 },
    /// The header or its options are malformed or cut short: untouched.
    Malformed,
}

/// Lower the Maximum Segment Size option of the SYN or SYN-ACK segment at the start of `segment` to `mss`,
/// only when it is larger, and update the TCP checksum incrementally (RFC 1624 eqn. 3, through
/// [`checksum::update16`]). The first MSS option counts; one of a length other than 4 is malformed. `segment`
/// needs to hold the TCP header only (the checksum update does not read the payload), so the first fragment
/// of a datagram will do.
pub fn clamp_mss(segment: &mut [u8], mss: u16) -> MssClamp {
    let Ok(h) = Header::try_from(&*segment) else {
        return MssClamp::Malformed;
    };
    if !h.syn() {
        return MssClamp::NotSyn;
    }
    let mut at = None;
    for o in options(segment) {
        match o {
            Ok(o) if o.kind == option_kind::MSS => {
                if o.data.len() != MSS_OPTION_LEN - field::OPT_DATA {
                    return MssClamp::Malformed;
                }
                at = Some(o.offset + field::OPT_DATA);
                break;
            }
            Ok(_) => {}
            Err(_) => return MssClamp::Malformed,
        }
    }
    let Some(at) = at else {
        return MssClamp::NoOption;
    };
    let old = u16::from_be_bytes([segment[at], segment[at + 1]]);
    if old <= mss {
        return MssClamp::NotLarger { mss: old };
    }
    segment[at..at + 2].copy_from_slice(&mss.to_be_bytes());
    // The checksum sums 16-bit words from the start of the TCP header. A value at an odd offset straddles two
    // words, adding its high byte to the low half of one and its low byte to the high half of the next: the
    // sum sees it byte-swapped (RFC 1071 section 2(B): byte order independence).
    let (o, n) = if at % 2 == 0 {
        (old, mss)
    } else {
        (old.swap_bytes(), mss.swap_bytes())
    };
    let mut hm = HeaderMut::from_prefix(segment).expect("checked above");
    let ck = checksum::update16(hm.checksum(), o, n);
    hm.set_checksum(ck);
    MssClamp::Clamped { from: old }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A SYN from 10.0.0.2:40000 to 10.20.7.7:80, options MSS 1460, SACK permitted, timestamps, NOP, window
    /// scale 7 (Linux's default SYN layout), checksum as Linux computes it over the pseudo header.
    fn linux_syn() -> Vec<u8> {
        let mut s = vec![
            0x9c,
            0x40,
            0x00,
            0x50,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0xa0,
            flags::SYN,
            0xfa,
            0xf0,
            0,
            0,
            0,
            0,
        ];
        s.extend_from_slice(&[
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ]);
        fill(&mut s);
        s
    }

    fn pseudo() -> u32 {
        checksum::pseudo_header_v4([10, 0, 0, 2], [10, 20, 7, 7], 6, 40)
    }

    fn fill(s: &mut [u8]) {
        s[16..18].copy_from_slice(&[0, 0]);
        let ck = !checksum::fold(checksum::sum(s, pseudo()));
        s[16..18].copy_from_slice(&ck.to_be_bytes());
    }

    fn valid(s: &[u8]) -> bool {
        checksum::fold(checksum::sum(s, pseudo())) == 0xffff
    }

    #[test]
    fn header_accessors_and_options() {
        let s = linux_syn();
        let h = Header::try_from(&s[..]).unwrap();
        assert_eq!(
            (h.src_port(), h.dst_port(), h.seq(), h.ack()),
            (40000, 80, 1, 0)
        );
        assert_eq!(
            (h.header_len(), h.flags(), h.window(), h.urgent()),
            (40, flags::SYN, 64240, 0)
        );
        assert!(h.syn());
        let kinds: Vec<(usize, u8, usize)> = options(&s)
            .map(|o| o.unwrap())
            .map(|o| (o.offset, o.kind, o.data.len()))
            .collect();
        assert_eq!(kinds, [(20, 2, 2), (24, 4, 0), (26, 8, 8), (37, 3, 1)]);
        assert!(valid(&s));
    }

    #[test]
    fn clamps_a_larger_mss_and_keeps_the_checksum_valid() {
        let mut s = linux_syn();
        assert_eq!(clamp_mss(&mut s, 1400), MssClamp::Clamped { from: 1460 });
        assert_eq!(&s[20..24], &[2, 4, 0x05, 0x78]);
        assert!(valid(&s));
        assert_eq!(clamp_mss(&mut s, 1400), MssClamp::NotLarger { mss: 1400 });
        assert_eq!(clamp_mss(&mut s, 1500), MssClamp::NotLarger { mss: 1400 });
        // SYN-ACK too; a plain ACK is not touched.
        let mut sa = linux_syn();
        sa[13] = flags::SYN | flags::ACK;
        fill(&mut sa);
        assert_eq!(clamp_mss(&mut sa, 536), MssClamp::Clamped { from: 1460 });
        assert!(valid(&sa));
        let mut ack = linux_syn();
        ack[13] = flags::ACK;
        assert_eq!(clamp_mss(&mut ack, 536), MssClamp::NotSyn);
    }

    #[test]
    fn clamps_an_mss_at_an_odd_offset() {
        // NOP, then MSS at offset 21: the value straddles two checksum words.
        let mut s = linux_syn();
        s[20..24].copy_from_slice(&[1, 2, 4, 0x05]);
        s[24..26].copy_from_slice(&[0xb4, 1]); // value low byte, then a NOP where SACK-permitted's kind was
        s[26] = 1; // NOP (was the SACK-permitted length byte)
        s[27] = 1;
        s[28..40].copy_from_slice(&[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
        fill(&mut s);
        assert_eq!(clamp_mss(&mut s, 1300), MssClamp::Clamped { from: 1460 });
        assert_eq!(&s[21..25], &[2, 4, 0x05, 0x14]);
        assert!(valid(&s));
    }

    #[test]
    fn malformed_options_leave_the_segment_alone() {
        let cases: [(&[u8], &str); 4] = [
            (&[2, 3, 0x05, 0xb4], "MSS of length 3"),
            (&[8, 1, 0, 0], "length below 2"),
            (&[1, 1, 1, 8], "option past the data offset"),
            (&[2, 4, 0x05], "cut short"),
        ];
        for (opts, what) in cases {
            let mut s = vec![
                0x9c,
                0x40,
                0,
                0x50,
                0,
                0,
                0,
                1,
                0,
                0,
                0,
                0,
                0x60,
                flags::SYN,
                0,
                0,
                0,
                0,
                0,
                0,
            ];
            s.extend_from_slice(opts);
            let before = s.clone();
            assert_eq!(clamp_mss(&mut s, 536), MssClamp::Malformed, "{what}");
            assert_eq!(s, before, "{what}");
        }
        // Data offset below 5, a short header, and a SYN without options.
        let mut s = linux_syn();
        s[12] = 0x40;
        assert_eq!(clamp_mss(&mut s, 536), MssClamp::Malformed);
        assert_eq!(clamp_mss(&mut linux_syn()[..19], 536), MssClamp::Malformed);
        let mut bare = linux_syn()[..20].to_vec();
        bare[12] = 0x50;
        assert_eq!(clamp_mss(&mut bare, 536), MssClamp::NoOption);
        // End of option list before the MSS.
        let mut eol = linux_syn();
        eol[20] = 0;
        assert_eq!(clamp_mss(&mut eol, 536), MssClamp::NoOption);
    }

    proptest! {
        /// Whatever the options and payload, the incremental update equals a full recomputation, and anything
        /// not clamped is left byte for byte.
        #[test]
        fn incremental_update_equals_recomputation(
            pre in proptest::collection::vec(prop_oneof![Just(1u8), Just(0x1e)], 0..8),
            mss in any::<u16>(),
            clamp in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..40),
            ck_seed in any::<u16>(),
        ) {
            // `pre`: NOPs and kind-0x1e bytes turned into 2-byte options below, shifting the MSS around.
            let mut opts = Vec::new();
            for b in &pre {
                if *b == 1 { opts.push(1) } else { opts.extend_from_slice(&[0x1e, 2]) }
            }
            opts.extend_from_slice(&[2, 4]);
            opts.extend_from_slice(&mss.to_be_bytes());
            while opts.len() % 4 != 0 { opts.push(1) }
            let hl = 20 + opts.len();
            let mut s = vec![0x9c, 0x40, 0, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, ((hl / 4) as u8) << 4, flags::SYN, 1, 0, 0, 0, 0, 0];
            s[14..16].copy_from_slice(&ck_seed.to_be_bytes());
            s.extend_from_slice(&opts);
            s.extend_from_slice(&payload);
            let ph = checksum::pseudo_header_v4([10, 0, 0, 2], [10, 20, 7, 7], 6, s.len() as u32);
            let ck = !checksum::fold(checksum::sum(&s, ph));
            s[16..18].copy_from_slice(&ck.to_be_bytes());
            let before = s.clone();
            let r = clamp_mss(&mut s, clamp);
            if mss > clamp {
                prop_assert_eq!(r, MssClamp::Clamped { from: mss });
                prop_assert_eq!(checksum::fold(checksum::sum(&s, ph)), 0xffff);
            } else {
                prop_assert_eq!(r, MssClamp::NotLarger { mss });
                prop_assert_eq!(&s, &before);
            }
        }

        #[test]
        fn never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..80), clamp in any::<u16>()) {
            let before = bytes.clone();
            let r = clamp_mss(&mut bytes, clamp);
            if !matches!(r, MssClamp::Clamped { .. }) {
                prop_assert_eq!(&bytes, &before);
            }
            for _ in options(&before) {}
        }
    }
}
