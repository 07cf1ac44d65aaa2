//! IPv4 headers (RFC 791), with options and fragments.
//!
//! Contract: [`Packet::new_checked`] accepts a buffer holding at least the header (IHL words, IHL >= 5) and
//! `total_len` bytes, with `total_len >= IHL * 4` and version 4; bytes after `total_len` (Ethernet padding) are
//! outside [`Packet::payload`]. It does not verify the checksum: call [`Packet::verify_checksum`].
//! [`Ipv4Repr`] has no options: `emit` always writes a 20-byte header with its checksum filled.

use core::net::Ipv4Addr;

use super::checksum;
use super::{need, Error, Layer};

/// IP protocol numbers greway uses (defined once, in [`crate::ip::protocol`]).
pub use crate::ip::protocol;

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// A header without options.
pub const HEADER_LEN: usize = 20;

/// RFC 791 flag bits in the flags/fragment-offset word.
pub const FLAG_DONT_FRAGMENT: u16 = 0x4000;
pub const FLAG_MORE_FRAGMENTS: u16 = 0x2000;
pub const FRAGMENT_OFFSET_MASK: u16 = 0x1FFF;

use crate::be16;

fn addr(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// RFC 793/768 pseudo-header sum (source, destination, zero + protocol, upper-layer length), unfolded: pass it as
/// `initial` to [`checksum::sum`] over the upper-layer bytes.
#[inline]
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    u32::from(u16::from_be_bytes([s[0], s[1]]))
        + u32::from(u16::from_be_bytes([s[2], s[3]]))
        + u32::from(u16::from_be_bytes([d[0], d[1]]))
        + u32::from(u16::from_be_bytes([d[2], d[3]]))
        + u32::from(protocol)
        + u32::from(len)
}

/// Fill the checksum of an option-less 20-byte header in place: the encapsulation hot path.
#[inline]
pub fn fill_checksum_20(header: &mut [u8; HEADER_LEN]) {
    header[field::CHECKSUM].copy_from_slice(&[0, 0]);
    let sum = checksum::checksum(header);
    header[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
}

/// The flags/fragment-offset word's bits, for code that holds the raw word ([`Header::flags_frag`]).
pub mod flags_frag {
    /// Reserved (evil) bit: MUST be zero (RFC 791).
    pub const RESERVED: u16 = 0x8000;
    pub const DONT_FRAGMENT: u16 = super::FLAG_DONT_FRAGMENT;
    pub const MORE_FRAGMENTS: u16 = super::FLAG_MORE_FRAGMENTS;
    /// In 8-byte units.
    pub const OFFSET_MASK: u16 = super::FRAGMENT_OFFSET_MASK;
}

/// `0x45`: the version/IHL byte of a header without options.
pub const VER_IHL_NO_OPTIONS: u8 = 0x45;

// The accessors shared by [`Header`] and [`HeaderMut`]: every field of the fixed 20-byte header at its
// `field` offset. The view holds a `[u8; 20]`, so each index is a constant below the array length and
// compiles to a plain load (no bounds check after the one in the constructor).
macro_rules! fixed_header_getters {
    () => {
        /// The version/IHL byte (`0x45` for a header without options).
        #[inline(always)]
        pub fn ver_ihl(&self) -> u8 {
            self.0[field::VER_IHL]
        }
        #[inline(always)]
        pub fn version(&self) -> u8 {
            self.0[field::VER_IHL] >> 4
        }
        /// IHL * 4 (may exceed 20: the options are outside this view).
        #[inline(always)]
        pub fn header_len(&self) -> usize {
            usize::from(self.0[field::VER_IHL] & 0x0F) * 4
        }
        /// DSCP (6 bits) and ECN (2 bits): the old TOS byte.
        #[inline(always)]
        pub fn dscp_ecn(&self) -> u8 {
            self.0[field::DSCP_ECN]
        }
        /// The ECN codepoint (RFC 3168): `0b11` is CE.
        #[inline(always)]
        pub fn ecn(&self) -> u8 {
            self.0[field::DSCP_ECN] & 0x03
        }
        #[inline(always)]
        pub fn total_len(&self) -> u16 {
            u16::from_be_bytes(self.word(field::TOTAL_LEN.start))
        }
        #[inline(always)]
        pub fn ident(&self) -> u16 {
            u16::from_be_bytes(self.word(field::IDENT.start))
        }
        /// The raw flags/fragment-offset word (bits in [`flags_frag`]).
        #[inline(always)]
        pub fn flags_frag(&self) -> u16 {
            u16::from_be_bytes(self.word(field::FLAGS_FRAG.start))
        }
        #[inline(always)]
        pub fn dont_frag(&self) -> bool {
            self.0[field::FLAGS_FRAG.start] & (FLAG_DONT_FRAGMENT >> 8) as u8 != 0
        }
        /// A fragment of a larger datagram: MF set or a non-zero offset (the reserved bit is not looked at).
        #[inline(always)]
        pub fn is_fragment(&self) -> bool {
            self.flags_frag() & (FLAG_MORE_FRAGMENTS | FRAGMENT_OFFSET_MASK) != 0
        }
        #[inline(always)]
        pub fn ttl(&self) -> u8 {
            self.0[field::TTL]
        }
        #[inline(always)]
        pub fn protocol(&self) -> u8 {
            self.0[field::PROTOCOL]
        }
        /// The header checksum field (host order of the big-endian word).
        #[inline(always)]
        pub fn checksum(&self) -> u16 {
            u16::from_be_bytes(self.word(field::CHECKSUM.start))
        }
        #[inline(always)]
        pub fn src(&self) -> [u8; 4] {
            self.quad(field::SRC.start)
        }
        #[inline(always)]
        pub fn dst(&self) -> [u8; 4] {
            self.quad(field::DST.start)
        }
        /// The source address as a host-order `u32` (the LPM key).
        #[inline(always)]
        pub fn src_u32(&self) -> u32 {
            u32::from_be_bytes(self.src())
        }
        /// The destination address as a host-order `u32` (the LPM key).
        #[inline(always)]
        pub fn dst_u32(&self) -> u32 {
            u32::from_be_bytes(self.dst())
        }
        #[inline(always)]
        pub fn src_addr(&self) -> Ipv4Addr {
            Ipv4Addr::from(self.src())
        }
        #[inline(always)]
        pub fn dst_addr(&self) -> Ipv4Addr {
            Ipv4Addr::from(self.dst())
        }
        /// The header bytes are a valid checksum (sum to 0xFFFF). Only meaningful without options.
        #[inline(always)]
        pub fn checksum_valid(&self) -> bool {
            checksum::ipv4_header_valid(&self.0)
        }
        /// [`Self::checksum_valid`] of a header whose first byte (version and IHL) the caller has found not zero:
        /// one instruction less ([`checksum::ipv4_header_valid_nonzero`]).
        #[inline(always)]
        pub fn checksum_valid_nonzero(&self) -> bool {
            checksum::ipv4_header_valid_nonzero(&self.0)
        }
        #[inline(always)]
        fn word(&self, at: usize) -> [u8; 2] {
            [self.0[at], self.0[at + 1]]
        }
        #[inline(always)]
        fn quad(&self, at: usize) -> [u8; 4] {
            let mut a = [0u8; 4];
            a.copy_from_slice(&self.0[at..at + 4]);
            a
        }
    };
}

fixed_header_views! {
    len: HEADER_LEN,
    error: Error,
    truncated: |actual| Error::Truncated { layer: Layer::Ipv4, needed: HEADER_LEN, actual },
    /// A fixed-size view of the first 20 bytes of an IPv4 header (all of it without options) for the fast
    /// paths: built by one length check ([`Header::from_prefix`], `TryFrom<&[u8]>`), after which every accessor
    /// is a load at a constant offset. It checks nothing else (version, IHL, lengths, checksum are the caller's
    /// rules to apply through the accessors); [`Packet`] is the checked view.
    header;
    /// The writable [`Header`]: the same accessors plus a setter per field, each a store at a constant offset.
    /// Setters write exactly their field: the header checksum is the caller's (see [`HeaderMut::fill_checksum`]).
    header_mut;
}

impl HeaderMut<'_> {
    #[inline(always)]
    pub fn set_ver_ihl(&mut self, value: u8) {
        self.0[field::VER_IHL] = value;
    }
    #[inline(always)]
    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.0[field::DSCP_ECN] = value;
    }
    #[inline(always)]
    pub fn set_total_len(&mut self, value: u16) {
        self.set_word(field::TOTAL_LEN.start, value);
    }
    #[inline(always)]
    pub fn set_ident(&mut self, value: u16) {
        self.set_word(field::IDENT.start, value);
    }
    /// The raw flags/fragment-offset word (bits in [`flags_frag`]).
    #[inline(always)]
    pub fn set_flags_frag(&mut self, value: u16) {
        self.set_word(field::FLAGS_FRAG.start, value);
    }
    #[inline(always)]
    pub fn set_ttl(&mut self, value: u8) {
        self.0[field::TTL] = value;
    }
    #[inline(always)]
    pub fn set_protocol(&mut self, value: u8) {
        self.0[field::PROTOCOL] = value;
    }
    /// The checksum field as given (host order of the big-endian word).
    #[inline(always)]
    pub fn set_checksum(&mut self, value: u16) {
        self.set_word(field::CHECKSUM.start, value);
    }
    #[inline(always)]
    pub fn set_src(&mut self, value: [u8; 4]) {
        self.0[field::SRC].copy_from_slice(&value);
    }
    #[inline(always)]
    pub fn set_dst(&mut self, value: [u8; 4]) {
        self.0[field::DST].copy_from_slice(&value);
    }
    /// The TTL one lower and the header checksum updated for it (RFC 1624 eqn. 3, `!(!HC + !m + m')`: the
    /// TTL/protocol word `m` drops by 0x0100, so `!m + m'` is 0xfeff), worked on the field as it lies in
    /// memory: a ones' complement sum does not depend on byte order (RFC 1071 2.B), so nothing is swapped.
    /// In closed form, with `K` the 0x0100 as it lies in memory: eqn. 3 gives `HC + K`, and one more where
    /// `!HC + !K` has no carry to fold in (`HC >= !K`): a compare and an add with carry, where the fold takes
    /// six instructions (`decrement_ttl_equals_the_rfc1624_update_for_every_checksum` checks every `HC`).
    /// The caller saw a TTL above 0.
    #[inline(always)]
    pub fn decrement_ttl(&mut self) {
        const K: u16 = u16::from_ne_bytes(0x0100u16.to_be_bytes());
        self.0[field::TTL] = self.0[field::TTL].wrapping_sub(1);
        let at = field::CHECKSUM.start;
        let hc = u16::from_ne_bytes([self.0[at], self.0[at + 1]]);
        let v = hc.wrapping_add(K).wrapping_add(u16::from(hc >= !K));
        self.0[field::CHECKSUM].copy_from_slice(&v.to_ne_bytes());
    }
    /// Zero the checksum field, then write the checksum of the 20 bytes (a header without options).
    #[inline(always)]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::ipv4_header_checksum(self.0);
        self.set_checksum(sum);
    }
    #[inline(always)]
    fn set_word(&mut self, at: usize, value: u16) {
        // One 16-bit store (two byte stores are not always merged).
        self.0[at..at + 2].copy_from_slice(&value.to_be_bytes());
    }
}

/// A view over an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        need(Layer::Ipv4, HEADER_LEN, len)?;
        if self.version() != 4 {
            return Err(Error::Malformed {
                layer: Layer::Ipv4,
                reason: "version is not 4",
            });
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::Malformed {
                layer: Layer::Ipv4,
                reason: "IHL below 5",
            });
        }
        need(Layer::Ipv4, header_len, len)?;
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(Error::Malformed {
                layer: Layer::Ipv4,
                reason: "total length below header length",
            });
        }
        need(Layer::Ipv4, total_len, len)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// IHL * 4, options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0F) * 4
    }

    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TOTAL_LEN.start)
    }

    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT.start)
    }

    fn flags_frag(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG.start)
    }

    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DONT_FRAGMENT != 0
    }

    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MORE_FRAGMENTS != 0
    }

    /// Fragment offset in 8-byte units, as on the wire.
    pub fn frag_offset(&self) -> u16 {
        self.flags_frag() & FRAGMENT_OFFSET_MASK
    }

    /// A fragment of a larger datagram (MF set or a non-zero offset): not decapsulated, reassembly is out of scope.
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        addr(self.buffer.as_ref(), field::SRC.start)
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        addr(self.buffer.as_ref(), field::DST.start)
    }

    /// The options, between the fixed header and the payload.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The header checksum, options included, sums to 0xFFFF.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(&self.buffer.as_ref()[..self.header_len()], 0)) == 0xFFFF
    }

    /// The bytes from the end of the header to `total_len` (padding after it excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    pub fn set_total_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::TOTAL_LEN].copy_from_slice(&len.to_be_bytes());
    }

    pub fn set_ident(&mut self, ident: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&ident.to_be_bytes());
    }

    /// The flags and fragment offset word (offset in 8-byte units).
    pub fn set_flags_frag(&mut self, value: u16) {
        self.buffer.as_mut()[field::FLAGS_FRAG].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }

    /// Store a header checksum computed elsewhere (an RFC 1624 incremental update); [`Packet::fill_checksum`]
    /// sums the header instead.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }

    /// Recompute the header checksum (options included).
    pub fn fill_checksum(&mut self) {
        let header_len = self.header_len();
        let b = self.buffer.as_mut();
        b[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let sum = checksum::checksum(&b[..header_len]);
        b[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        let end = usize::from(self.total_len());
        &mut self.buffer.as_mut()[start..end]
    }
}

/// An IPv4 header without options, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: u8,
    /// Bytes after the header.
    pub payload_len: u16,
    pub ttl: u8,
    /// DSCP (6 bits) and ECN (2 bits).
    pub dscp_ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// In 8-byte units (13 bits).
    pub frag_offset: u16,
}

impl Ipv4Repr {
    /// Parse a checked packet and verify its header checksum. Options are skipped (not represented), and the
    /// reserved flag bit is dropped, so `emit(parse(x)) == x` holds for option-less headers with it clear.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Ipv4Repr, Error> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum { layer: Layer::Ipv4 });
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: packet.total_len() - packet.header_len() as u16,
            ttl: packet.ttl(),
            dscp_ecn: packet.dscp_ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the 20-byte header, checksum filled; returns 20. Panics if `buf` is shorter than 20 bytes or if
    /// `payload_len` does not leave room for the header under 65535.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let header: &mut [u8; HEADER_LEN] =
            (&mut buf[..HEADER_LEN]).try_into().expect("20-byte slice");
        let total_len = self
            .payload_len
            .checked_add(HEADER_LEN as u16)
            .expect("IPv4 total length overflow");
        header[field::VER_IHL] = 0x45;
        header[field::DSCP_ECN] = self.dscp_ecn;
        header[field::TOTAL_LEN].copy_from_slice(&total_len.to_be_bytes());
        header[field::IDENT].copy_from_slice(&self.ident.to_be_bytes());
        let flags_frag = (if self.dont_frag {
            FLAG_DONT_FRAGMENT
        } else {
            0
        }) | (if self.more_frags {
            FLAG_MORE_FRAGMENTS
        } else {
            0
        }) | (self.frag_offset & FRAGMENT_OFFSET_MASK);
        header[field::FLAGS_FRAG].copy_from_slice(&flags_frag.to_be_bytes());
        header[field::TTL] = self.ttl;
        header[field::PROTOCOL] = self.protocol;
        header[field::SRC].copy_from_slice(&self.src_addr.octets());
        header[field::DST].copy_from_slice(&self.dst_addr.octets());
        fill_checksum_20(header);
        HEADER_LEN
    }

    /// Pseudo-header sum for this header's upper-layer payload.
    pub fn pseudo_header_sum(&self) -> u32 {
        pseudo_header_sum(
            self.src_addr,
            self.dst_addr,
            self.protocol,
            self.payload_len,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decrement_ttl_equals_the_rfc1624_update_for_every_checksum() {
        for hc in 0..=u16::MAX {
            for (ttl, proto) in [
                (2u8, 1u8),
                (2, 0x11),
                (5, 6),
                (0x40, 0x11),
                (0x40, 0x2f),
                (0xff, 0x2f),
            ] {
                let mut b = KEEPALIVE_IP;
                b[8] = ttl;
                b[9] = proto;
                b[10..12].copy_from_slice(&hc.to_be_bytes());
                let mut h = HeaderMut::new((&mut b[..HEADER_LEN]).try_into().unwrap());
                h.decrement_ttl();
                let old = u16::from_be_bytes([ttl, proto]);
                assert_eq!(b[8], ttl - 1);
                assert_eq!(
                    u16::from_be_bytes([b[10], b[11]]),
                    checksum::update16(hc, old, old - 0x0100),
                    "hc={hc:#06x} ttl={ttl} proto={proto}"
                );
            }
        }
    }

    /// various_gre.pcap frame 12: outer IPv4 of a keepalive reply, 10.172.64.6 -> 10.172.64.7, GRE, total 28.
    const KEEPALIVE_IP: [u8; 28] = [
        0x45, 0xc0, 0x00, 0x1c, 0x00, 0xa3, 0x00, 0x00, 0xfe, 0x2f, 0x25, 0xeb, 0x0a, 0xac, 0x40,
        0x06, 0x0a, 0xac, 0x40, 0x07, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28,
    ];

    fn keepalive_repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 172, 64, 6),
            dst_addr: Ipv4Addr::new(10, 172, 64, 7),
            protocol: protocol::GRE,
            payload_len: 8,
            ttl: 254,
            dscp_ecn: 0xc0,
            ident: 0xa3,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        }
    }

    #[test]
    fn capture_fixture_parses_and_re_emits() {
        let packet = Packet::new_checked(&KEEPALIVE_IP[..]).unwrap();
        assert!(packet.verify_checksum());
        assert_eq!(packet.checksum(), 0x25eb);
        assert_eq!(packet.payload(), &KEEPALIVE_IP[20..]);
        let repr = Ipv4Repr::parse(&packet).unwrap();
        assert_eq!(repr, keepalive_repr());
        let mut out = [0u8; 20];
        assert_eq!(repr.emit(&mut out), 20);
        assert_eq!(out, KEEPALIVE_IP[..20]);
    }

    #[test]
    fn options_and_fragments() {
        // IHL 6 (one 4-byte option: NOP NOP NOP EOL), DF clear, MF set, offset 185 (1480 bytes).
        let mut b = vec![
            0x46,
            0,
            0,
            28,
            0x12,
            0x34,
            0x20,
            0xb9,
            64,
            protocol::UDP,
            0,
            0,
            192,
            0,
            2,
            1,
            192,
            0,
            2,
            2,
        ];
        b.extend_from_slice(&[1, 1, 1, 0, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xEE]); // option, payload, padding
        let mut packet = Packet::new_checked(&mut b[..]).unwrap();
        packet.fill_checksum();
        assert!(packet.verify_checksum());
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.options(), &[1, 1, 1, 0]);
        assert!(packet.more_frags() && !packet.dont_frag());
        assert_eq!(packet.frag_offset(), 185);
        assert!(packet.is_fragment());
        assert_eq!(
            packet.payload(),
            &[0xAA, 0xBB, 0xCC, 0xDD],
            "padding after total length excluded"
        );
        let repr = Ipv4Repr::parse(&packet).unwrap();
        assert_eq!(repr.payload_len, 4);
        assert_eq!(repr.frag_offset, 185);
        packet.set_ttl(63);
        assert!(!packet.verify_checksum());
        assert_eq!(
            Ipv4Repr::parse(&packet),
            Err(Error::BadChecksum { layer: Layer::Ipv4 })
        );
    }

    #[test]
    fn malformed_headers() {
        let mut b = KEEPALIVE_IP;
        b[0] = 0x65;
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::Malformed {
                reason: "version is not 4",
                ..
            })
        ));
        b[0] = 0x44;
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::Malformed {
                reason: "IHL below 5",
                ..
            })
        ));
        let mut b = KEEPALIVE_IP;
        b[3] = 19;
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn truncation_at_every_boundary() {
        for len in 0..20 {
            assert_eq!(
                Packet::new_checked(&KEEPALIVE_IP[..len]).unwrap_err(),
                Error::Truncated {
                    layer: Layer::Ipv4,
                    needed: 20,
                    actual: len
                }
            );
        }
        for len in 20..28 {
            assert_eq!(
                Packet::new_checked(&KEEPALIVE_IP[..len]).unwrap_err(),
                Error::Truncated {
                    layer: Layer::Ipv4,
                    needed: 28,
                    actual: len
                }
            );
        }
        // IHL 15 announces 60 header bytes.
        let mut b = [0u8; 40];
        b[0] = 0x4f;
        b[3] = 60;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::Truncated {
                layer: Layer::Ipv4,
                needed: 60,
                actual: 40
            }
        );
    }

    #[test]
    fn pseudo_header_sum_matches_a_hand_sum() {
        let sum = pseudo_header_sum(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            protocol::UDP,
            12,
        );
        assert_eq!(sum, 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + 12);
        assert_eq!(
            keepalive_repr().pseudo_header_sum(),
            0x0aac + 0x4006 + 0x0aac + 0x4007 + 47 + 8
        );
    }

    #[test]
    fn fill_checksum_20_matches_the_capture() {
        let mut header: [u8; 20] = KEEPALIVE_IP[..20].try_into().unwrap();
        header[10] = 0x12;
        fill_checksum_20(&mut header);
        assert_eq!(&header[10..12], &[0x25, 0xeb]);
    }

    fn any_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            0u16..1500,
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            any::<(bool, bool)>(),
            0u16..0x2000,
        )
            .prop_map(
                |(
                    s,
                    d,
                    protocol,
                    payload_len,
                    ttl,
                    dscp_ecn,
                    ident,
                    (dont_frag, more_frags),
                    frag_offset,
                )| Ipv4Repr {
                    src_addr: s.into(),
                    dst_addr: d.into(),
                    protocol,
                    payload_len,
                    ttl,
                    dscp_ecn,
                    ident,
                    dont_frag,
                    more_frags,
                    frag_offset,
                },
            )
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = (packet.options(), packet.payload(), packet.verify_checksum(), packet.is_fragment());
                let _ = Ipv4Repr::parse(&packet);
            }
        }

        #[test]
        fn emit_of_parse_is_identity_on_canonical_bytes(mut bytes in proptest::collection::vec(any::<u8>(), 20..80)) {
            // Make random bytes a canonical header: version 4, IHL 5, reserved flag clear, right length and sum.
            bytes[0] = 0x45;
            bytes[6] &= 0x7F;
            let len = bytes.len() as u16;
            bytes[2..4].copy_from_slice(&len.to_be_bytes());
            let header: &mut [u8; 20] = (&mut bytes[..20]).try_into().unwrap();
            fill_checksum_20(header);
            let repr = Ipv4Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
            let mut out = [0u8; 20];
            repr.emit(&mut out);
            prop_assert_eq!(&out[..], &bytes[..20]);
        }

        #[test]
        fn emit_parse_emit_is_identity(repr in any_repr()) {
            let mut bytes = vec![0u8; 20 + usize::from(repr.payload_len)];
            repr.emit(&mut bytes);
            let parsed = Ipv4Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
            prop_assert_eq!(parsed, repr);
            let mut again = [0u8; 20];
            parsed.emit(&mut again);
            prop_assert_eq!(&again[..], &bytes[..20]);
        }
    }
}

#[cfg(test)]
mod header_tests {
    use super::*;

    /// various_gre.pcap frame 12's outer IPv4 header (the `tests` module's fixture): TOS 0xc0, total 28, ident
    /// 0xa3, no flags, TTL 254, GRE, checksum 0x25eb, 10.172.64.6 -> 10.172.64.7.
    const HDR: [u8; 20] = [
        0x45, 0xc0, 0x00, 0x1c, 0x00, 0xa3, 0x00, 0x00, 0xfe, 0x2f, 0x25, 0xeb, 0x0a, 0xac, 0x40,
        0x06, 0x0a, 0xac, 0x40, 0x07,
    ];

    #[test]
    fn header_accessors_read_the_fixture() {
        let h = Header::new(&HDR);
        assert_eq!(h.ver_ihl(), VER_IHL_NO_OPTIONS);
        assert_eq!(h.version(), 4);
        assert_eq!(h.header_len(), 20);
        assert_eq!(h.dscp_ecn(), 0xc0);
        assert_eq!(h.ecn(), 0);
        assert_eq!(h.total_len(), 28);
        assert_eq!(h.ident(), 0xa3);
        assert_eq!(h.flags_frag(), 0);
        assert!(!h.dont_frag());
        assert!(!h.is_fragment());
        assert_eq!(h.ttl(), 254);
        assert_eq!(h.protocol(), protocol::GRE);
        assert_eq!(h.checksum(), 0x25eb);
        assert!(h.checksum_valid());
        assert_eq!(h.src(), [10, 172, 64, 6]);
        assert_eq!(h.dst(), [10, 172, 64, 7]);
        assert_eq!(h.src_u32(), 0x0aac_4006);
        assert_eq!(h.dst_u32(), 0x0aac_4007);
        assert_eq!(h.src_addr(), Ipv4Addr::new(10, 172, 64, 6));
        assert_eq!(h.dst_addr(), Ipv4Addr::new(10, 172, 64, 7));
        assert_eq!(h.as_bytes(), &HDR);
        // The same values as the checked view.
        let p = Packet::new_checked(&HDR[..]).unwrap_err();
        assert!(matches!(p, Error::Truncated { needed: 28, .. }));
    }

    #[test]
    fn header_flag_bits_and_ecn() {
        let mut b = HDR;
        b[1] = 0x03;
        b[6] = 0x40;
        let h = Header::new(&b);
        assert_eq!(h.ecn(), crate::ip::ecn::CE);
        assert!(h.dont_frag());
        assert!(!h.is_fragment(), "DF alone is not a fragment");
        assert_eq!(h.flags_frag(), flags_frag::DONT_FRAGMENT);
        for (hi, lo) in [(0x20, 0x00), (0x00, 0x01), (0x1f, 0x00)] {
            b[6] = hi;
            b[7] = lo;
            assert!(Header::new(&b).is_fragment(), "{hi:#x} {lo:#x}");
        }
        b[6] = 0x80;
        b[7] = 0;
        assert!(!Header::new(&b).is_fragment(), "the reserved bit is not MF");
        b[0] = 0x46;
        assert_eq!(Header::new(&b).header_len(), 24);
    }

    #[test]
    fn header_from_prefix_needs_20_bytes() {
        assert!(Header::from_prefix(&HDR[..19]).is_none());
        assert_eq!(Header::from_prefix(&HDR).unwrap().ttl(), 254);
        let mut long = [0u8; 30];
        long[..20].copy_from_slice(&HDR);
        let (h, rest) = Header::split_prefix(&long).unwrap();
        assert_eq!((h.total_len(), rest.len()), (28, 10));
        assert_eq!(
            Header::try_from(&HDR[..7]),
            Err(Error::Truncated {
                layer: Layer::Ipv4,
                needed: 20,
                actual: 7
            })
        );
        let mut short = [0u8; 19];
        assert!(HeaderMut::from_prefix(&mut short).is_none());
        assert!(HeaderMut::try_from(&mut short[..]).is_err());
        assert!(HeaderMut::split_prefix(&mut long).is_some());
    }

    #[test]
    fn header_setters_write_their_field_only() {
        let mut b = HDR;
        let mut h = HeaderMut::new(&mut b);
        h.set_dscp_ecn(0x2e);
        h.set_total_len(0x0102);
        h.set_ident(0x0304);
        h.set_flags_frag(0x4005);
        h.set_ttl(9);
        h.set_protocol(protocol::UDP);
        h.set_checksum(0xbeef);
        h.set_src([1, 2, 3, 4]);
        h.set_dst([5, 6, 7, 8]);
        assert_eq!(h.ttl(), 9);
        assert_eq!(h.as_header().ident(), 0x0304);
        assert_eq!(
            b,
            [
                0x45, 0x2e, 0x01, 0x02, 0x03, 0x04, 0x40, 0x05, 9, 17, 0xbe, 0xef, 1, 2, 3, 4, 5,
                6, 7, 8
            ]
        );
        let mut h = HeaderMut::new(&mut b);
        h.set_ver_ihl(0x46);
        assert_eq!(h.header_len(), 24);
        assert_eq!(h.as_bytes_mut()[0], 0x46);
    }

    #[test]
    fn header_fill_checksum_matches_the_capture() {
        let mut b = HDR;
        b[10] = 0x12;
        b[11] = 0x34;
        let mut h = HeaderMut::new(&mut b);
        h.fill_checksum();
        assert_eq!(h.checksum(), 0x25eb);
        assert_eq!(b, HDR);
    }
}
