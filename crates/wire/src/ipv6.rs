//! IPv6 fixed header (RFC 8200 section 3) and a bounded walk over extension headers (section 4).
//!
//! Contract: [`Packet::new_checked`] guarantees the 40-byte header, version 6, and `40 + payload_len` bytes
//! (a Jumbo Payload, `payload_len == 0` with a hop-by-hop option, is not supported: the payload is then empty).
//! [`walk_extension_headers`] never reads outside the slice it is given and stops after
//! [`MAX_EXTENSION_HEADERS`] headers, so a hostile chain costs a bounded amount of work.

use core::net::Ipv6Addr;

use super::{need, Error, Layer};

/// Next Header values for the extension headers the walk understands, and upper layers greway uses: the IP
/// protocol numbers (one registry for both families, defined once in [`crate::ip::protocol`]).
pub use crate::ip::protocol as next_header;

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

pub const HEADER_LEN: usize = 40;

/// The Fragment header's length (RFC 8200 section 4.5).
pub const FRAGMENT_HEADER_LEN: usize = 8;

/// More extension headers than any sane packet carries (RFC 8200 section 4.1 lists at most 8 kinds, each once
/// except Destination Options twice).
pub const MAX_EXTENSION_HEADERS: usize = 8;

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[..16]);
    Ipv6Addr::from(o)
}

/// RFC 8200 section 8.1 pseudo-header sum (source, destination, upper-layer length as 32 bits, next header),
/// unfolded: pass it as `initial` to `checksum::sum` over the upper-layer bytes.
pub fn pseudo_header_sum(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, upper_len: u32) -> u32 {
    let mut sum = 0u32;
    for a in [src, dst] {
        for w in a.segments() {
            sum += u32::from(w);
        }
    }
    sum + (upper_len >> 16) + (upper_len & 0xFFFF) + u32::from(next_header)
}

// The accessors shared by [`Header`] and [`HeaderMut`]: every field of the 40-byte fixed header at its `field`
// offset. The view holds a `[u8; 40]`, so each index is a constant below the array length and compiles to a
// plain load (no bounds check after the one in the constructor).
macro_rules! fixed_header_getters {
    () => {
        #[inline(always)]
        pub fn version(&self) -> u8 {
            self.0[field::VER_TC_FLOW.start] >> 4
        }
        /// DSCP (6 bits) and ECN (2 bits).
        #[inline(always)]
        pub fn traffic_class(&self) -> u8 {
            let at = field::VER_TC_FLOW.start;
            ((u16::from_be_bytes([self.0[at], self.0[at + 1]]) >> 4) & 0xFF) as u8
        }
        /// The ECN codepoint (RFC 3168): `0b11` is CE.
        #[inline(always)]
        pub fn ecn(&self) -> u8 {
            (self.0[field::VER_TC_FLOW.start + 1] >> 4) & 0x03
        }
        #[inline(always)]
        pub fn flow_label(&self) -> u32 {
            let at = field::VER_TC_FLOW.start;
            u32::from_be_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
                & 0x000F_FFFF
        }
        /// Bytes after the fixed header (extension headers included).
        #[inline(always)]
        pub fn payload_len(&self) -> u16 {
            let at = field::PAYLOAD_LEN.start;
            u16::from_be_bytes([self.0[at], self.0[at + 1]])
        }
        #[inline(always)]
        pub fn next_header(&self) -> u8 {
            self.0[field::NEXT_HEADER]
        }
        #[inline(always)]
        pub fn hop_limit(&self) -> u8 {
            self.0[field::HOP_LIMIT]
        }
        #[inline(always)]
        pub fn src(&self) -> [u8; 16] {
            let mut a = [0u8; 16];
            a.copy_from_slice(&self.0[field::SRC]);
            a
        }
        #[inline(always)]
        pub fn dst(&self) -> [u8; 16] {
            let mut a = [0u8; 16];
            a.copy_from_slice(&self.0[field::DST]);
            a
        }
        /// The source address as a host-order `u128` (the LPM key).
        #[inline(always)]
        pub fn src_u128(&self) -> u128 {
            u128::from_be_bytes(self.src())
        }
        /// The destination address as a host-order `u128` (the LPM key).
        #[inline(always)]
        pub fn dst_u128(&self) -> u128 {
            u128::from_be_bytes(self.dst())
        }
        #[inline(always)]
        pub fn src_addr(&self) -> Ipv6Addr {
            Ipv6Addr::from(self.src())
        }
        #[inline(always)]
        pub fn dst_addr(&self) -> Ipv6Addr {
            Ipv6Addr::from(self.dst())
        }
    };
}

fixed_header_views! {
    len: HEADER_LEN,
    error: Error,
    truncated: |actual| Error::Truncated { layer: Layer::Ipv6, needed: HEADER_LEN, actual },
    /// A fixed-size view of the 40-byte IPv6 fixed header for the fast paths: built by one length check
    /// ([`Header::from_prefix`], `TryFrom<&[u8]>`), after which every accessor is a load at a constant offset. It
    /// checks nothing else (version and payload length are the caller's rules); [`Packet`] is the checked view.
    header;
    /// The writable [`Header`]: the same accessors plus a setter per field, each a store at a constant offset.
    header_mut;
}

impl<'a> Header<'a> {
    /// The destination address bytes, borrowed (the LPM walks them in place).
    #[inline(always)]
    pub fn dst_bytes(&self) -> &'a [u8; 16] {
        let (_, dst) = self
            .0
            .split_last_chunk::<16>()
            .expect("DST is the last field");
        dst
    }
}

impl HeaderMut<'_> {
    /// The whole first word: version 6, `traffic_class`, and `flow_label` (its low 20 bits), in one store.
    #[inline(always)]
    pub fn set_ver_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let word = (6 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000F_FFFF);
        self.0[field::VER_TC_FLOW].copy_from_slice(&word.to_be_bytes());
    }
    /// The traffic class only (version and flow label kept).
    #[inline(always)]
    pub fn set_traffic_class(&mut self, traffic_class: u8) {
        let at = field::VER_TC_FLOW.start;
        self.0[at] = (self.0[at] & 0xF0) | (traffic_class >> 4);
        self.0[at + 1] = (self.0[at + 1] & 0x0F) | (traffic_class << 4);
    }
    #[inline(always)]
    pub fn set_payload_len(&mut self, value: u16) {
        self.0[field::PAYLOAD_LEN].copy_from_slice(&value.to_be_bytes());
    }
    #[inline(always)]
    pub fn set_next_header(&mut self, value: u8) {
        self.0[field::NEXT_HEADER] = value;
    }
    #[inline(always)]
    pub fn set_hop_limit(&mut self, value: u8) {
        self.0[field::HOP_LIMIT] = value;
    }
    /// The hop limit one lower (forwarded, RFC 8200): the IPv6 twin of `ipv4::HeaderMut::decrement_ttl`, with no
    /// checksum to update. The caller saw a hop limit above 0.
    #[inline(always)]
    pub fn decrement_hop_limit(&mut self) {
        self.0[field::HOP_LIMIT] = self.0[field::HOP_LIMIT].wrapping_sub(1);
    }
    #[inline(always)]
    pub fn set_src(&mut self, value: [u8; 16]) {
        self.0[field::SRC].copy_from_slice(&value);
    }
    #[inline(always)]
    pub fn set_dst(&mut self, value: [u8; 16]) {
        self.0[field::DST].copy_from_slice(&value);
    }
}

/// A view over an IPv6 packet.
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
        need(Layer::Ipv6, HEADER_LEN, len)?;
        if self.version() != 6 {
            return Err(Error::Malformed {
                layer: Layer::Ipv6,
                reason: "version is not 6",
            });
        }
        need(
            Layer::Ipv6,
            HEADER_LEN + usize::from(self.payload_len()),
            len,
        )
    }

    fn word0(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    pub fn version(&self) -> u8 {
        (self.word0() >> 28) as u8
    }

    pub fn traffic_class(&self) -> u8 {
        (self.word0() >> 20) as u8
    }

    pub fn flow_label(&self) -> u32 {
        self.word0() & 0x000F_FFFF
    }

    pub fn payload_len(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::PAYLOAD_LEN.start], b[field::PAYLOAD_LEN.start + 1]])
    }

    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub fn src_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::SRC])
    }

    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::DST])
    }

    /// The `payload_len` bytes after the fixed header (extension headers included).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }

    /// Walk the extension headers of this packet (see [`walk_extension_headers`]); offsets are from the start
    /// of the payload.
    pub fn upper_layer(&self) -> Result<UpperLayer, Error> {
        walk_extension_headers(self.next_header(), self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }

    pub fn set_payload_len(&mut self, value: u16) {
        self.buffer.as_mut()[field::PAYLOAD_LEN].copy_from_slice(&value.to_be_bytes());
    }
}

/// RFC 8200 section 4.5 fragment header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentInfo {
    /// In 8-byte units.
    pub offset: u16,
    pub more_fragments: bool,
    pub identification: u32,
}

/// Where the upper-layer header starts, after the extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// The Next Header value that is not an extension header (may be 59, No Next Header).
    pub protocol: u8,
    /// Byte offset of the upper-layer header in the slice given to the walk.
    pub offset: usize,
    /// Set when a fragment header was crossed. With a non-zero offset the bytes at `offset` are the middle of
    /// a datagram, not an upper-layer header: the caller must not decapsulate them.
    pub fragment: Option<FragmentInfo>,
}

/// Walk extension headers starting with `first` (the fixed header's Next Header) over `payload`.
///
/// Understood: hop-by-hop (0, only first, RFC 8200 section 4.1), routing (43), destination options (60),
/// their length being `(Hdr Ext Len + 1) * 8`; fragment (44), 8 bytes; authentication (51, RFC 4302 section
/// 2.2), `(Payload Len + 2) * 4`. Any other value ends the walk. At most [`MAX_EXTENSION_HEADERS`] headers.
pub fn walk_extension_headers(first: u8, payload: &[u8]) -> Result<UpperLayer, Error> {
    let mut protocol = first;
    let mut offset = 0usize;
    let mut fragment = None;
    for count in 0..=MAX_EXTENSION_HEADERS {
        let len = match protocol {
            next_header::HOP_BY_HOP if count > 0 => {
                return Err(Error::Malformed {
                    layer: Layer::Ipv6Extension,
                    reason: "hop-by-hop options not first",
                })
            }
            next_header::HOP_BY_HOP | next_header::ROUTING | next_header::DESTINATION_OPTIONS => {
                need(Layer::Ipv6Extension, offset + 2, payload.len())?;
                (usize::from(payload[offset + 1]) + 1) * 8
            }
            next_header::FRAGMENT => FRAGMENT_HEADER_LEN,
            next_header::AUTHENTICATION => {
                need(Layer::Ipv6Extension, offset + 2, payload.len())?;
                (usize::from(payload[offset + 1]) + 2) * 4
            }
            _ => {
                return Ok(UpperLayer {
                    protocol,
                    offset,
                    fragment,
                })
            }
        };
        if count == MAX_EXTENSION_HEADERS {
            break;
        }
        need(Layer::Ipv6Extension, offset + len, payload.len())?;
        if protocol == next_header::FRAGMENT {
            let b = &payload[offset..offset + FRAGMENT_HEADER_LEN];
            let word = u16::from_be_bytes([b[2], b[3]]);
            fragment = Some(FragmentInfo {
                offset: word >> 3,
                more_fragments: word & 1 != 0,
                identification: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            });
        }
        protocol = payload[offset];
        offset += len;
    }
    Err(Error::Malformed {
        layer: Layer::Ipv6Extension,
        reason: "too many extension headers",
    })
}

/// An IPv6 fixed header, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    pub src_addr: Ipv6Addr,
    pub dst_addr: Ipv6Addr,
    pub next_header: u8,
    pub payload_len: u16,
    pub hop_limit: u8,
    pub traffic_class: u8,
    /// 20 bits.
    pub flow_label: u32,
}

impl Ipv6Repr {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Ipv6Repr, Error> {
        packet.check_len()?;
        Ok(Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: packet.payload_len(),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the 40-byte header; returns 40. Panics if `buf` is shorter.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let buf = &mut buf[..HEADER_LEN];
        let word0 =
            (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0x000F_FFFF);
        buf[field::VER_TC_FLOW].copy_from_slice(&word0.to_be_bytes());
        buf[field::PAYLOAD_LEN].copy_from_slice(&self.payload_len.to_be_bytes());
        buf[field::NEXT_HEADER] = self.next_header;
        buf[field::HOP_LIMIT] = self.hop_limit;
        buf[field::SRC].copy_from_slice(&self.src_addr.octets());
        buf[field::DST].copy_from_slice(&self.dst_addr.octets());
        HEADER_LEN
    }

    /// Pseudo-header sum for an upper layer directly after this header.
    pub fn pseudo_header_sum(&self) -> u32 {
        pseudo_header_sum(
            self.src_addr,
            self.dst_addr,
            self.next_header,
            u32::from(self.payload_len),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn repr() -> Ipv6Repr {
        Ipv6Repr {
            src_addr: "2001:db8::1".parse().unwrap(),
            dst_addr: "2001:db8::2".parse().unwrap(),
            next_header: next_header::GRE,
            payload_len: 4,
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0x12345,
        }
    }

    const FIXTURE: [u8; 44] = [
        0x6b, 0x81, 0x23, 0x45, 0x00, 0x04, 47, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 1, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x00, 0x00, 0x86,
        0xdd,
    ];

    #[test]
    fn fixture_round_trip() {
        let packet = Packet::new_checked(&FIXTURE[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&packet).unwrap(), repr());
        assert_eq!(packet.payload(), &[0x00, 0x00, 0x86, 0xdd]);
        let mut out = [0u8; 40];
        assert_eq!(repr().emit(&mut out), 40);
        assert_eq!(out, FIXTURE[..40]);
        assert_eq!(
            packet.upper_layer().unwrap(),
            UpperLayer {
                protocol: 47,
                offset: 0,
                fragment: None
            }
        );
    }

    #[test]
    fn truncation_at_every_boundary() {
        for len in 0..40 {
            assert_eq!(
                Packet::new_checked(&FIXTURE[..len]).unwrap_err(),
                Error::Truncated {
                    layer: Layer::Ipv6,
                    needed: 40,
                    actual: len
                }
            );
        }
        for len in 40..44 {
            assert_eq!(
                Packet::new_checked(&FIXTURE[..len]).unwrap_err(),
                Error::Truncated {
                    layer: Layer::Ipv6,
                    needed: 44,
                    actual: len
                }
            );
        }
        let mut v4 = FIXTURE;
        v4[0] = 0x4b;
        assert!(matches!(
            Packet::new_checked(&v4[..]),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn walks_a_chain_of_extension_headers() {
        let mut chain = Vec::new();
        // Each header's first byte is the Next Header of the one after it.
        // Hop-by-hop, 8 bytes (PadN).
        chain.extend_from_slice(&[next_header::DESTINATION_OPTIONS, 0, 1, 4, 0, 0, 0, 0]);
        // Destination options, Hdr Ext Len 1: 16 bytes.
        chain.extend_from_slice(&[
            next_header::ROUTING,
            1,
            1,
            12,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ]);
        // Routing, 8 bytes.
        chain.extend_from_slice(&[next_header::AUTHENTICATION, 0, 0, 0, 0, 0, 0, 0]);
        // Authentication, Payload Len 1: (1 + 2) * 4 = 12 bytes.
        chain.extend_from_slice(&[next_header::FRAGMENT, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        // Fragment: offset 1, M set, identification 0xdeadbeef.
        chain.extend_from_slice(&[next_header::GRE, 0, 0x00, 0x09, 0xde, 0xad, 0xbe, 0xef]);
        chain.extend_from_slice(&[0x00, 0x00, 0x08, 0x00]);
        let upper = walk_extension_headers(next_header::HOP_BY_HOP, &chain).unwrap();
        assert_eq!(upper.protocol, next_header::GRE);
        assert_eq!(upper.offset, 8 + 16 + 8 + 12 + 8);
        assert_eq!(
            upper.fragment,
            Some(FragmentInfo {
                offset: 1,
                more_fragments: true,
                identification: 0xdead_beef
            })
        );
        for cut in 0..upper.offset {
            assert!(
                matches!(
                    walk_extension_headers(next_header::HOP_BY_HOP, &chain[..cut]),
                    Err(Error::Truncated {
                        layer: Layer::Ipv6Extension,
                        ..
                    })
                ),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn hostile_chains_are_bounded() {
        let mut chain = Vec::new();
        for _ in 0..20 {
            chain.extend_from_slice(&[next_header::DESTINATION_OPTIONS, 0, 1, 4, 0, 0, 0, 0]);
        }
        assert_eq!(
            walk_extension_headers(next_header::DESTINATION_OPTIONS, &chain),
            Err(Error::Malformed {
                layer: Layer::Ipv6Extension,
                reason: "too many extension headers"
            })
        );
        let late_hop_by_hop = [
            next_header::HOP_BY_HOP,
            0,
            1,
            4,
            0,
            0,
            0,
            0,
            59,
            0,
            1,
            4,
            0,
            0,
            0,
            0,
        ];
        assert!(matches!(
            walk_extension_headers(next_header::DESTINATION_OPTIONS, &late_hop_by_hop),
            Err(Error::Malformed {
                reason: "hop-by-hop options not first",
                ..
            })
        ));
    }

    #[test]
    fn pseudo_header_sum_matches_a_hand_sum() {
        let sum = repr().pseudo_header_sum();
        assert_eq!(sum, 0x2001 + 0x0db8 + 1 + 0x2001 + 0x0db8 + 2 + 4 + 47);
        assert_eq!(
            pseudo_header_sum(
                Ipv6Addr::UNSPECIFIED,
                Ipv6Addr::UNSPECIFIED,
                58,
                0x0001_0002
            ),
            1 + 2 + 58
        );
    }

    proptest! {
        #[test]
        fn parse_and_walk_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120), first in any::<u8>()) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let repr = Ipv6Repr::parse(&packet).unwrap();
                let _ = packet.upper_layer();
                let mut out = [0u8; 40];
                repr.emit(&mut out);
                prop_assert_eq!(&out[..], &bytes[..40]);
            }
            if let Ok(upper) = walk_extension_headers(first, &bytes) {
                prop_assert!(upper.offset <= bytes.len());
            }
        }

        #[test]
        fn emit_parse_round_trip(src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), nh in any::<u8>(), hl in any::<u8>(), tc in any::<u8>(), fl in 0u32..0x10_0000, len in 0u16..64) {
            let repr = Ipv6Repr { src_addr: src.into(), dst_addr: dst.into(), next_header: nh, payload_len: len, hop_limit: hl, traffic_class: tc, flow_label: fl };
            let mut out = vec![0u8; 40 + usize::from(len)];
            repr.emit(&mut out);
            prop_assert_eq!(Ipv6Repr::parse(&Packet::new_checked(&out[..]).unwrap()).unwrap(), repr);
        }
    }
}

#[cfg(test)]
mod header_tests {
    use super::*;

    /// The `tests` module's fixture: traffic class 0xb8, flow label 0x12345, payload 4, GRE, hop limit 64,
    /// 2001:db8::1 -> 2001:db8::2.
    const HDR: [u8; 40] = [
        0x6b, 0x81, 0x23, 0x45, 0x00, 0x04, 47, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 1, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    ];
    const SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const DST: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    #[test]
    fn header_accessors_read_the_fixture() {
        let h = Header::new(&HDR);
        assert_eq!(h.version(), 6);
        assert_eq!(h.traffic_class(), 0xb8);
        assert_eq!(h.ecn(), 0);
        assert_eq!(h.flow_label(), 0x12345);
        assert_eq!(h.payload_len(), 4);
        assert_eq!(h.next_header(), next_header::GRE);
        assert_eq!(h.hop_limit(), 64);
        assert_eq!(h.src(), SRC);
        assert_eq!(h.dst(), DST);
        assert_eq!(h.dst_bytes(), &DST);
        assert_eq!(h.src_u128(), 0x2001_0db8_u128 << 96 | 1);
        assert_eq!(h.dst_u128(), 0x2001_0db8_u128 << 96 | 2);
        assert_eq!(h.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(h.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(h.as_bytes(), &HDR);
        let mut b = HDR;
        b[1] = 0xb1; // traffic class 0xbb: ECN CE
        assert_eq!(Header::new(&b).ecn(), crate::ip::ecn::CE);
    }

    #[test]
    fn header_from_prefix_needs_40_bytes() {
        assert!(Header::from_prefix(&HDR[..39]).is_none());
        let mut long = [0u8; 44];
        long[..40].copy_from_slice(&HDR);
        let (h, rest) = Header::split_prefix(&long).unwrap();
        assert_eq!((h.hop_limit(), rest.len()), (64, 4));
        assert_eq!(
            Header::try_from(&HDR[..3]),
            Err(Error::Truncated {
                layer: Layer::Ipv6,
                needed: 40,
                actual: 3
            })
        );
        assert!(HeaderMut::from_prefix(&mut long[..39]).is_none());
        assert!(HeaderMut::try_from(&mut long[..39]).is_err());
        assert!(HeaderMut::split_prefix(&mut long).is_some());
    }

    #[test]
    fn header_setters_write_their_field_only() {
        let mut b = [0u8; 40];
        let mut h = HeaderMut::new(&mut b);
        h.set_ver_tc_flow(0xb8, 0x12345);
        h.set_payload_len(4);
        h.set_next_header(next_header::GRE);
        h.set_hop_limit(64);
        h.set_src(SRC);
        h.set_dst(DST);
        assert_eq!(h.as_header().flow_label(), 0x12345);
        assert_eq!(b, HDR);
        let mut h = HeaderMut::new(&mut b);
        h.decrement_hop_limit();
        assert_eq!(h.hop_limit(), 63);
        h.set_hop_limit(64);
        assert_eq!(b, HDR, "nothing else written");
        let mut h = HeaderMut::new(&mut b);
        h.set_traffic_class(0x03);
        assert_eq!(h.version(), 6);
        assert_eq!(h.traffic_class(), 0x03);
        assert_eq!(h.flow_label(), 0x12345, "flow label kept");
        assert_eq!(&b[..4], &[0x60, 0x31, 0x23, 0x45]);
        let mut h = HeaderMut::new(&mut b);
        h.set_ver_tc_flow(0xff, 0xfff_ffff);
        assert_eq!(
            &b[..4],
            &[0x6f, 0xff, 0xff, 0xff],
            "flow label cut to 20 bits"
        );
    }
}
