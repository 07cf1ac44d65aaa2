//! Ethernet II frames (IEEE 802.3 with an EtherType), optionally with one IEEE 802.1Q VLAN tag.
//!
//! Contract: [`Frame::new_checked`] guarantees the 14-byte header, and the 4-byte tag when the outer EtherType
//! is 0x8100; after it, [`Frame::ethertype`] is the inner EtherType and [`Frame::payload`] starts after the tag.
//! Only one tag is understood (stacked 802.1ad tags are left in the payload with EtherType 0x88A8). The frame
//! check sequence is not part of the view (NICs strip it).

use core::fmt;
use core::str::FromStr;

use super::{need, Error, Layer};

/// EtherType values greway knows by name.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86DD;
    /// Transparent Ethernet Bridging (an Ethernet frame inside GRE).
    pub const TEB: u16 = 0x6558;
    pub const MPLS: u16 = 0x8847;
    pub const ERSPAN: u16 = 0x88BE;
    pub const ERSPAN3: u16 = 0x22EB;
    pub const CISCO_METADATA: u16 = 0x8909;
}

/// A 48-bit MAC address; prints and parses as `02:00:00:00:00:01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xFF; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// From the first six bytes of `bytes`. Panics if shorter.
    pub fn from_bytes(bytes: &[u8]) -> MacAddr {
        let mut a = [0u8; 6];
        a.copy_from_slice(&bytes[..6]);
        MacAddr(a)
    }

    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// I/G bit: group (multicast or broadcast) address.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// RFC 2464 section 7: the MAC an IPv6 multicast address maps to (33:33 + low 32 bits).
    pub fn ipv6_multicast(addr: core::net::Ipv6Addr) -> MacAddr {
        let o = addr.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Why a MAC address string did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address (expected six hex octets separated by ':', like 02:00:00:00:00:01)")]
pub struct ParseMacError;

impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in out.iter_mut() {
            let part = parts.next().ok_or(ParseMacError)?;
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(ParseMacError);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| ParseMacError)?;
        }
        if parts.next().is_some() {
            return Err(ParseMacError);
        }
        Ok(MacAddr(out))
    }
}

mod field {
    use core::ops::Range;
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const TCI: Range<usize> = 14..16;
    pub const INNER_ETHERTYPE: Range<usize> = 16..18;
}

/// Length of an untagged header.
pub const HEADER_LEN: usize = 14;
/// Length of a header with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = 18;
/// Length of the 802.1Q tag (TPID 0x8100 and the TCI) between the source address and the inner EtherType.
pub const VLAN_TAG_LEN: usize = VLAN_HEADER_LEN - HEADER_LEN;

/// Remove the 802.1Q tag of a tagged frame in place, first half: move both addresses [`VLAN_TAG_LEN`] bytes
/// on, over the tag, so that the frame from byte [`VLAN_TAG_LEN`] on is the untagged frame (the caller then
/// drops the first [`VLAN_TAG_LEN`] bytes from its buffer). Panics if `frame` is shorter than
/// [`VLAN_HEADER_LEN`] bytes.
pub fn move_addresses_over_vlan_tag(frame: &mut [u8]) {
    frame[..VLAN_HEADER_LEN].copy_within(field::DESTINATION.start..field::SOURCE.end, VLAN_TAG_LEN);
}

/// Insert an 802.1Q tag in place, the inverse of [`move_addresses_over_vlan_tag`]: `frame` is an untagged frame
/// behind [`VLAN_TAG_LEN`] new bytes at its front (the caller grew its buffer by that much); both addresses move
/// to the front and the tag (TPID 0x8100 and `tag`'s TCI) takes their old place before the EtherType. Panics if
/// `frame` is shorter than [`VLAN_HEADER_LEN`] bytes.
pub fn insert_vlan_tag(frame: &mut [u8], tag: VlanTag) {
    frame[..VLAN_HEADER_LEN].copy_within(VLAN_TAG_LEN..VLAN_TAG_LEN + field::SOURCE.end, 0);
    frame[field::ETHERTYPE].copy_from_slice(&ethertype::VLAN.to_be_bytes());
    frame[field::TCI].copy_from_slice(&tag.tci().to_be_bytes());
}

/// An 802.1Q Tag Control Information word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// Priority code point (3 bits).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier (12 bits).
    pub vid: u16,
}

impl VlanTag {
    pub fn from_tci(tci: u16) -> VlanTag {
        VlanTag {
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0FFF,
        }
    }

    pub fn tci(&self) -> u16 {
        (u16::from(self.pcp & 0x7) << 13)
            | (if self.dei { 0x1000 } else { 0 })
            | (self.vid & 0x0FFF)
    }
}

// The accessors shared by [`Header`] and [`HeaderMut`], each a load at a constant `field` offset of the
// 14-byte array (no bounds check after the one in the constructor).
macro_rules! fixed_header_getters {
    () => {
        #[inline(always)]
        pub fn dst(&self) -> [u8; 6] {
            let mut a = [0u8; 6];
            a.copy_from_slice(&self.0[field::DESTINATION]);
            a
        }
        #[inline(always)]
        pub fn src(&self) -> [u8; 6] {
            let mut a = [0u8; 6];
            a.copy_from_slice(&self.0[field::SOURCE]);
            a
        }
        /// The EtherType at offset 12 (0x8100 for a tagged frame: the tag is outside this view).
        #[inline(always)]
        pub fn ethertype(&self) -> u16 {
            let at = field::ETHERTYPE.start;
            u16::from_be_bytes([self.0[at], self.0[at + 1]])
        }
        /// Whether the EtherType is `et`: the field compared as it lies in memory with `et` in network order
        /// (a constant), no byte swap of the field.
        #[inline(always)]
        pub fn ethertype_is(&self, et: u16) -> bool {
            let at = field::ETHERTYPE.start;
            [self.0[at], self.0[at + 1]] == et.to_be_bytes()
        }
    };
}

fixed_header_views! {
    len: HEADER_LEN,
    error: Error,
    truncated: |actual| Error::Truncated { layer: Layer::Ethernet, needed: HEADER_LEN, actual },
    /// A fixed-size view of the 14-byte untagged Ethernet header for the fast paths: built by one length check
    /// ([`Header::from_prefix`], `TryFrom<&[u8]>`), after which every accessor is a load at a constant offset.
    /// [`Frame`] is the checked view that understands an 802.1Q tag.
    header;
    /// The writable [`Header`]: the same accessors plus a setter per field, each a store at a constant offset.
    header_mut;
}

impl HeaderMut<'_> {
    /// The whole header at once (destination, source, EtherType as on the wire): one copy of 14 bytes.
    #[inline(always)]
    pub fn set_all(&mut self, header: &[u8; HEADER_LEN]) {
        self.0.copy_from_slice(header);
    }
    #[inline(always)]
    pub fn set_dst(&mut self, value: [u8; 6]) {
        self.0[field::DESTINATION].copy_from_slice(&value);
    }
    #[inline(always)]
    pub fn set_src(&mut self, value: [u8; 6]) {
        self.0[field::SOURCE].copy_from_slice(&value);
    }
    #[inline(always)]
    pub fn set_ethertype(&mut self, value: u16) {
        self.0[field::ETHERTYPE].copy_from_slice(&value.to_be_bytes());
    }
}

/// A view over an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Frame<T>, Error> {
        let frame = Frame::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        need(Layer::Ethernet, HEADER_LEN, len)?;
        if self.outer_ethertype() == ethertype::VLAN {
            need(Layer::Vlan, VLAN_HEADER_LEN, len)?;
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn dst_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::DESTINATION])
    }

    pub fn src_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SOURCE])
    }

    /// The EtherType at offset 12 (0x8100 for a tagged frame).
    pub fn outer_ethertype(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::ETHERTYPE.start], b[field::ETHERTYPE.start + 1]])
    }

    pub fn is_vlan_tagged(&self) -> bool {
        self.outer_ethertype() == ethertype::VLAN
    }

    /// The 802.1Q tag, if the frame has one.
    pub fn vlan_tag(&self) -> Option<VlanTag> {
        self.is_vlan_tagged().then(|| {
            let b = self.buffer.as_ref();
            VlanTag::from_tci(u16::from_be_bytes([
                b[field::TCI.start],
                b[field::TCI.start + 1],
            ]))
        })
    }

    /// The EtherType of the payload, after the VLAN tag if any.
    pub fn ethertype(&self) -> u16 {
        if self.is_vlan_tagged() {
            let b = self.buffer.as_ref();
            u16::from_be_bytes([
                b[field::INNER_ETHERTYPE.start],
                b[field::INNER_ETHERTYPE.start + 1],
            ])
        } else {
            self.outer_ethertype()
        }
    }

    /// 14, or 18 with a VLAN tag.
    pub fn header_len(&self) -> usize {
        if self.is_vlan_tagged() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Set the payload EtherType (after the tag when tagged).
    pub fn set_ethertype(&mut self, value: u16) {
        let range = if self.is_vlan_tagged() {
            field::INNER_ETHERTYPE
        } else {
            field::ETHERTYPE
        };
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// An Ethernet II header, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    pub src_addr: MacAddr,
    pub dst_addr: MacAddr,
    pub vlan: Option<VlanTag>,
    /// The payload EtherType (inner one when tagged).
    pub ethertype: u16,
}

impl EthernetRepr {
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<EthernetRepr, Error> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            vlan: frame.vlan_tag(),
            ethertype: frame.ethertype(),
        })
    }

    pub fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Write the header into `buf[..header_len()]`; returns `header_len()`. Panics if `buf` is shorter.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.header_len();
        let buf = &mut buf[..len];
        buf[field::DESTINATION].copy_from_slice(&self.dst_addr.0);
        buf[field::SOURCE].copy_from_slice(&self.src_addr.0);
        match self.vlan {
            Some(tag) => {
                buf[field::ETHERTYPE].copy_from_slice(&ethertype::VLAN.to_be_bytes());
                buf[field::TCI].copy_from_slice(&tag.tci().to_be_bytes());
                buf[field::INNER_ETHERTYPE].copy_from_slice(&self.ethertype.to_be_bytes());
            }
            None => buf[field::ETHERTYPE].copy_from_slice(&self.ethertype.to_be_bytes()),
        }
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// various_gre.pcap frame 12: VLAN 1213 (0x4bd), IPv4 inside.
    const TAGGED: [u8; 19] = [
        0xaa, 0xbb, 0xcc, 0x00, 0x02, 0x00, 0xaa, 0xbb, 0xcc, 0x00, 0x01, 0x00, 0x81, 0x00, 0x04,
        0xbd, 0x08, 0x00, 0x45,
    ];

    #[test]
    fn tagged_fixture() {
        let frame = Frame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(frame.dst_addr().to_string(), "aa:bb:cc:00:02:00");
        assert_eq!(frame.src_addr(), "aa:bb:cc:00:01:00".parse().unwrap());
        assert_eq!(
            frame.vlan_tag(),
            Some(VlanTag {
                pcp: 0,
                dei: false,
                vid: 0x4bd
            })
        );
        assert_eq!(frame.ethertype(), ethertype::IPV4);
        assert_eq!(frame.header_len(), 18);
        assert_eq!(frame.payload(), &[0x45]);
        let repr = EthernetRepr::parse(&frame).unwrap();
        let mut out = [0u8; 18];
        assert_eq!(repr.emit(&mut out), 18);
        assert_eq!(out, TAGGED[..18]);
    }

    #[test]
    fn untagged_round_trip_and_setters() {
        let repr = EthernetRepr {
            src_addr: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_addr: MacAddr::BROADCAST,
            vlan: None,
            ethertype: ethertype::ARP,
        };
        let mut b = [0u8; 14];
        repr.emit(&mut b);
        assert_eq!(&b[12..], &[0x08, 0x06]);
        let mut frame = Frame::new_checked(&mut b[..]).unwrap();
        assert_eq!(EthernetRepr::parse(&frame).unwrap(), repr);
        frame.set_ethertype(ethertype::IPV6);
        frame.set_src_addr(MacAddr([2, 0, 0, 0, 0, 2]));
        frame.set_dst_addr(MacAddr([2, 0, 0, 0, 0, 3]));
        assert_eq!(frame.ethertype(), ethertype::IPV6);
        assert_eq!(frame.src_addr().0[5], 2);
        assert_eq!(frame.dst_addr().0[5], 3);
    }

    #[test]
    fn truncation_at_every_boundary() {
        for len in 0..14 {
            assert_eq!(
                Frame::new_checked(&TAGGED[..len]).unwrap_err(),
                Error::Truncated {
                    layer: Layer::Ethernet,
                    needed: 14,
                    actual: len
                }
            );
        }
        for len in 14..18 {
            assert_eq!(
                Frame::new_checked(&TAGGED[..len]).unwrap_err(),
                Error::Truncated {
                    layer: Layer::Vlan,
                    needed: 18,
                    actual: len
                }
            );
        }
        assert!(Frame::new_checked(&TAGGED[..18]).is_ok());
    }

    #[test]
    fn mac_parse_and_print() {
        let mac: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        assert_eq!(mac, MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(mac.to_string(), "02:00:00:00:00:01");
        assert_eq!(
            "AA:bb:CC:0:1:ff".parse::<MacAddr>().unwrap(),
            MacAddr([0xaa, 0xbb, 0xcc, 0, 1, 0xff])
        );
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "02:00:00:00:00:0g",
            "002:00:00:00:00:01",
            "+2:0:0:0:0:1",
            "02::00:00:00:01",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(ParseMacError), "{bad}");
        }
        assert!(MacAddr::BROADCAST.is_broadcast() && MacAddr::BROADCAST.is_multicast());
        assert!(mac.is_unicast());
        assert_eq!(
            MacAddr::ipv6_multicast("ff02::1:ff00:1".parse().unwrap()),
            MacAddr([0x33, 0x33, 0xff, 0x00, 0x00, 0x01])
        );
    }

    proptest! {
        /// `ethertype_is` (the raw compare of the fast paths) agrees with `ethertype`.
        #[test]
        fn ethertype_is_agrees_with_ethertype(
            h in proptest::array::uniform14(any::<u8>()),
            et in any::<u16>(),
        ) {
            let v = Header::new(&h);
            prop_assert_eq!(v.ethertype_is(et), v.ethertype() == et);
            prop_assert!(v.ethertype_is(v.ethertype()));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(frame) = Frame::new_checked(&bytes[..]) {
                let repr = EthernetRepr::parse(&frame).unwrap();
                let _ = frame.payload();
                let mut out = [0u8; 18];
                let len = repr.emit(&mut out);
                // Canonical: emit(parse(x)) == x for the header bytes.
                prop_assert_eq!(&out[..len], &bytes[..len]);
            }
        }

        #[test]
        fn mac_display_parse_round_trip(octets in any::<[u8; 6]>()) {
            let mac = MacAddr(octets);
            prop_assert_eq!(mac.to_string().parse::<MacAddr>().unwrap(), mac);
        }
    }
}

#[cfg(test)]
mod header_tests {
    use super::*;

    /// 02:00:00:00:00:02 <- 02:00:00:00:00:01, IPv6.
    const HDR: [u8; 14] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];

    #[test]
    fn header_accessors_read_the_fixture() {
        let h = Header::new(&HDR);
        assert_eq!(h.dst(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(h.src(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(h.ethertype(), ethertype::IPV6);
        assert_eq!(h.as_bytes(), &HDR);
    }

    #[test]
    fn header_from_prefix_needs_14_bytes() {
        assert!(Header::from_prefix(&HDR[..13]).is_none());
        let (h, rest) = Header::split_prefix(&[HDR.as_slice(), &[1, 2]].concat())
            .map(|(h, rest)| (h.ethertype(), rest.to_vec()))
            .unwrap();
        assert_eq!((h, rest), (ethertype::IPV6, vec![1, 2]));
        assert_eq!(
            Header::try_from(&HDR[..2]),
            Err(Error::Truncated {
                layer: Layer::Ethernet,
                needed: 14,
                actual: 2
            })
        );
        let mut b = HDR;
        assert!(HeaderMut::from_prefix(&mut b[..13]).is_none());
        assert!(HeaderMut::try_from(&mut b[..13]).is_err());
        let (h, rest) = HeaderMut::split_prefix(&mut b).unwrap();
        assert_eq!((h.ethertype(), rest.len()), (ethertype::IPV6, 0));
    }

    #[test]
    fn header_setters_write_their_field_only() {
        let mut b = [0u8; 14];
        let mut h = HeaderMut::new(&mut b);
        h.set_dst([2, 0, 0, 0, 0, 2]);
        h.set_src([2, 0, 0, 0, 0, 1]);
        h.set_ethertype(ethertype::IPV6);
        assert_eq!(h.as_header().src(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(h.dst(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(b, HDR);
    }

    #[test]
    fn moving_the_addresses_over_the_tag_leaves_the_untagged_frame() {
        // dst, src, 802.1Q tag (VID 5), IPv4, one payload byte.
        let mut f = [
            2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x05, 0x08, 0x00, 0xaa,
        ];
        move_addresses_over_vlan_tag(&mut f);
        assert_eq!(
            &f[VLAN_TAG_LEN..],
            &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0xaa]
        );
    }

    #[test]
    fn inserting_a_tag_undoes_moving_the_addresses_over_it() {
        let tagged = [
            2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x0f, 0xfe, 0x08, 0x00, 0xaa,
        ];
        let mut f = tagged;
        move_addresses_over_vlan_tag(&mut f);
        // The four bytes in front are whatever the buffer held: the insertion writes all of them.
        f[..VLAN_TAG_LEN].fill(0x55);
        insert_vlan_tag(&mut f, VlanTag::from_tci(0x0ffe));
        assert_eq!(f, tagged);
        let mut short = [0u8; VLAN_HEADER_LEN - 1];
        assert!(std::panic::catch_unwind(move || insert_vlan_tag(
            &mut short,
            VlanTag::from_tci(1)
        ))
        .is_err());
    }
}
