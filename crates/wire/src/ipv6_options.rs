//! IPv6 options headers (Destination Options, RFC 8200 section 4.6; Hop-by-Hop Options share the format,
//! section 4.3), their TLV-encoded options (section 4.2), and the Tunnel Encapsulation Limit option of RFC 2473
//! section 5.1.
//!
//! ```text
//!  RFC 8200 section 4.6:
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |  Next Header  |  Hdr Ext Len  |                               |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//!  .                            Options                            .
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  Hdr Ext Len: length in 8-octet units, not including the first 8 octets.
//!
//!  Each option (section 4.2):  | Option Type | Opt Data Len | Option Data ... |
//!  except Pad1, a single zero octet.
//!
//!  RFC 2473 section 5.1, as Linux ip6_tunnel.c (init_tel_txopt) sends it, 8 bytes:
//!  | Next Header | 0 | 4 (Tunnel Encap Limit) | 1 | limit | 1 (PadN) | 1 | 0 |
//! ```
//!
//! Receiver rules implemented (RFC 8200 section 4.2, then what this module does):
//! - "The Option Type identifiers are internally encoded such that their highest-order 2 bits specify the
//!   action that must be taken if the processing IPv6 node does not recognize the Option Type": 00 skip, 01
//!   discard, 10 discard and send an ICMP Parameter Problem, Code 2, pointing to the option type, 11 the same
//!   only when the destination is not multicast. [`UnrecognizedAction::of`] decodes them; the caller acts.
//! - An option whose data runs past the end of the header, a run of padding longer than 7 bytes, or a PadN
//!   whose data is not all zero is malformed ([`Error::Malformed`]): the packet is discarded without an ICMP
//!   error. These are the checks of Linux's `ip6_parse_tlv` (net/ipv6/exthdrs.c), which follows RFC 4942 section
//!   2.1.9.5 for padding.
//! - The Tunnel Encapsulation Limit option is recognised as Linux's `ip6_tnl_parse_tlv_enc_lim` recognises it:
//!   type 4 with data length 1. Its type's high bits are 00, so on receipt any other type-4 option is skipped.

use super::{need, Error, Layer};
use crate::ip::protocol as next_header;

/// Option Type values (IANA "Destination Options and Hop-by-Hop Options").
pub mod option_type {
    /// One byte of padding, no length or data (RFC 8200 section 4.2).
    pub const PAD1: u8 = 0;
    /// N bytes of padding: type, length, N - 2 zero bytes (RFC 8200 section 4.2).
    pub const PADN: u8 = 1;
    /// RFC 2473 section 5.1 Tunnel Encapsulation Limit: one byte of data, how many more levels of
    /// encapsulation the packet may go through.
    pub const TUNNEL_ENCAP_LIMIT: u8 = 4;
}

mod field {
    pub const NEXT_HEADER: usize = 0;
    pub const HDR_EXT_LEN: usize = 1;
    /// The first option.
    pub const OPTIONS: usize = 2;
    /// In an option: the type, the data length, the data.
    pub const OPT_TYPE: usize = 0;
    pub const OPT_LEN: usize = 1;
    pub const OPT_DATA: usize = 2;
}

/// The shortest options header (Hdr Ext Len 0).
pub const MIN_HEADER_LEN: usize = 8;

/// Longest run of padding an options header needs (RFC 4942 section 2.1.9.5: padding only aligns the next
/// option or the header's end to 8 bytes).
pub const MAX_PADDING: usize = 7;

/// The length of an options header whose Hdr Ext Len is `hdr_ext_len`.
#[inline]
pub const fn header_len_for(hdr_ext_len: u8) -> usize {
    (hdr_ext_len as usize + 1) * 8
}

/// What a node does with an option it does not recognise: the two high-order bits of its type (RFC 8200
/// section 4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnrecognizedAction {
    /// 00: skip over this option and continue processing the header.
    Skip,
    /// 01: discard the packet.
    Discard,
    /// 10: discard the packet and send an ICMP Parameter Problem, Code 2, to the source, pointing to the
    /// unrecognised Option Type, whatever the destination.
    DiscardAndReport,
    /// 11: as 10, but only if the destination was not a multicast address.
    DiscardAndReportUnlessMulticast,
}

impl UnrecognizedAction {
    #[inline]
    pub const fn of(option_type: u8) -> UnrecognizedAction {
        match option_type >> 6 {
            0 => UnrecognizedAction::Skip,
            1 => UnrecognizedAction::Discard,
            2 => UnrecognizedAction::DiscardAndReport,
            _ => UnrecognizedAction::DiscardAndReportUnlessMulticast,
        }
    }
}

/// A view over an options header at the start of `buffer` (what follows it may be the rest of the packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wrap without checking; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Header<T> {
        Header { buffer }
    }

    /// Wrap and check that the whole header (Hdr Ext Len) is in the buffer.
    pub fn new_checked(buffer: T) -> Result<Header<T>, Error> {
        let h = Header::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        need(Layer::Ipv6Extension, field::OPTIONS, b.len())?;
        need(Layer::Ipv6Extension, self.header_len(), b.len())
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    #[inline]
    pub fn hdr_ext_len(&self) -> u8 {
        self.buffer.as_ref()[field::HDR_EXT_LEN]
    }

    /// The header's length in bytes.
    #[inline]
    pub fn header_len(&self) -> usize {
        header_len_for(self.hdr_ext_len())
    }

    /// The options, in order, each checked by the rules of the module docs.
    pub fn options(&self) -> Options<'_> {
        Options {
            header: &self.buffer.as_ref()[..self.header_len()],
            at: field::OPTIONS,
            padding: 0,
            done: false,
        }
    }

    /// What follows the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    /// Overwrite the data byte of the option at `offset` (from the start of the header, as [`TlvOption::offset`]
    /// gave it) whose data is one byte long: the Tunnel Encapsulation Limit.
    pub fn set_option_byte(&mut self, offset: usize, value: u8) {
        self.buffer.as_mut()[offset + field::OPT_DATA] = value;
    }
}

/// One option of an options header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlvOption<'a> {
    /// Where the Option Type byte is, from the start of the options header.
    pub offset: usize,
    pub option_type: u8,
    /// The Option Data (empty for Pad1).
    pub data: &'a [u8],
}

impl TlvOption<'_> {
    /// Padding (Pad1 or PadN).
    #[inline]
    pub fn is_padding(&self) -> bool {
        matches!(self.option_type, option_type::PAD1 | option_type::PADN)
    }

    /// The RFC 2473 limit, when this is a Tunnel Encapsulation Limit option (type 4, one byte of data).
    #[inline]
    pub fn tunnel_encap_limit(&self) -> Option<u8> {
        match (self.option_type, self.data) {
            (option_type::TUNNEL_ENCAP_LIMIT, [limit]) => Some(*limit),
            _ => None,
        }
    }
}

/// The options of a header, in order; after the first error it yields nothing more.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    header: &'a [u8],
    at: usize,
    /// Bytes of padding since the last option that was not padding.
    padding: usize,
    done: bool,
}

fn malformed(reason: &'static str) -> Error {
    Error::Malformed {
        layer: Layer::Ipv6Extension,
        reason,
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<TlvOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.at >= self.header.len() {
            return None;
        }
        let h = self.header;
        let offset = self.at;
        let option_type = h[offset + field::OPT_TYPE];
        let (len, data): (usize, &[u8]) = if option_type == option_type::PAD1 {
            (1, &[])
        } else {
            let Some(&dlen) = h.get(offset + field::OPT_LEN) else {
                self.done = true;
                return Some(Err(malformed("option runs past the end of the header")));
            };
            let start = offset + field::OPT_DATA;
            let end = start + usize::from(dlen);
            if end > h.len() {
                self.done = true;
                return Some(Err(malformed("option runs past the end of the header")));
            }
            (end - offset, &h[start..end])
        };
        if option_type == option_type::PAD1 || option_type == option_type::PADN {
            self.padding += len;
            if self.padding > MAX_PADDING {
                self.done = true;
                return Some(Err(malformed("more than 7 bytes of padding")));
            }
            if data.iter().any(|&b| b != 0) {
                self.done = true;
                return Some(Err(malformed("PadN with non-zero data")));
            }
        } else {
            self.padding = 0;
        }
        self.at += len;
        Some(Ok(TlvOption {
            offset,
            option_type,
            data,
        }))
    }
}

/// A Destination Options header holding only the Tunnel Encapsulation Limit option, laid out as Linux's
/// ip6_tunnel sends it: the option, then a 1-byte PadN (`01 01 00`) to 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncapLimitRepr {
    pub next_header: u8,
    pub limit: u8,
}

impl EncapLimitRepr {
    /// The emitted header's length.
    pub const HEADER_LEN: usize = MIN_HEADER_LEN;
    /// Where the option is, from the start of the header.
    pub const OPTION_OFFSET: usize = field::OPTIONS;
    /// Where the limit byte is, from the start of the header.
    pub const LIMIT_OFFSET: usize = field::OPTIONS + field::OPT_DATA;

    /// The header's next header and the first Tunnel Encapsulation Limit option in it (whatever else the header
    /// holds); `Ok(None)` when it has none.
    pub fn parse<T: AsRef<[u8]>>(header: &Header<T>) -> Result<Option<EncapLimitRepr>, Error> {
        header.check_len()?;
        for opt in header.options() {
            if let Some(limit) = opt?.tunnel_encap_limit() {
                return Ok(Some(EncapLimitRepr {
                    next_header: header.next_header(),
                    limit,
                }));
            }
        }
        Ok(None)
    }

    pub const fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    /// Write the 8-byte header; returns 8. Panics if `buf` is shorter.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let b = &mut buf[..Self::HEADER_LEN];
        b[field::NEXT_HEADER] = self.next_header;
        b[field::HDR_EXT_LEN] = 0;
        let opt = field::OPTIONS;
        b[opt + field::OPT_TYPE] = option_type::TUNNEL_ENCAP_LIMIT;
        b[opt + field::OPT_LEN] = 1;
        b[opt + field::OPT_DATA] = self.limit;
        let pad = opt + field::OPT_DATA + 1;
        b[pad + field::OPT_TYPE] = option_type::PADN;
        b[pad + field::OPT_LEN] = 1;
        b[pad + field::OPT_DATA] = 0;
        Self::HEADER_LEN
    }
}

/// Where an IPv6 packet carries a Tunnel Encapsulation Limit: the offset of the option's type byte from the
/// start of the IPv6 header, and the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncapLimitAt {
    pub offset: usize,
    pub limit: u8,
}

impl EncapLimitAt {
    /// The offset of the limit byte itself: what an ICMPv6 Parameter Problem about it points to (Linux's
    /// `ip6gre` sends `offset + 2`).
    pub const fn limit_offset(&self) -> usize {
        self.offset + field::OPT_DATA
    }
}

/// The Tunnel Encapsulation Limit of the IPv6 packet `packet` (from its fixed header on), as a tunnel entry
/// point looks for it (RFC 2473 section 4.1.1; Linux `ip6_tnl_parse_tlv_enc_lim`): the first type-4,
/// length-1 option in a Destination Options header among the extension headers before the upper layer. The
/// walk stops at a fragment header that is not an atomic fragment (offset and M flag zero), at a malformed
/// header, and after [`crate::ipv6::MAX_EXTENSION_HEADERS`] headers.
pub fn find_tunnel_encap_limit(packet: &[u8]) -> Option<EncapLimitAt> {
    let fixed = crate::ipv6::Header::from_prefix(packet)?;
    let mut protocol = fixed.next_header();
    let mut off = crate::ipv6::HEADER_LEN;
    for _ in 0..crate::ipv6::MAX_EXTENSION_HEADERS {
        let rest = packet.get(off..)?;
        let len = match protocol {
            next_header::HOP_BY_HOP | next_header::ROUTING | next_header::DESTINATION_OPTIONS => {
                Header::new_checked(rest).ok()?.header_len()
            }
            next_header::FRAGMENT => {
                let f = rest.get(..crate::ipv6::FRAGMENT_HEADER_LEN)?;
                if f[2..4] != [0, 0] {
                    return None;
                }
                crate::ipv6::FRAGMENT_HEADER_LEN
            }
            next_header::AUTHENTICATION => {
                need(Layer::Ipv6Extension, 2, rest.len()).ok()?;
                (usize::from(rest[1]) + 2) * 4
            }
            _ => return None,
        };
        if protocol == next_header::DESTINATION_OPTIONS {
            let h = Header::new_unchecked(rest);
            for opt in h.options() {
                let Ok(opt) = opt else { break };
                if let Some(limit) = opt.tunnel_encap_limit() {
                    return Some(EncapLimitAt {
                        offset: off + opt.offset,
                        limit,
                    });
                }
            }
        }
        protocol = *rest.first()?;
        off += len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What Linux ip6gre with the default `encaplimit 4` puts between IPv6 and GRE.
    const LINUX_DEFAULT: [u8; 8] = [47, 0, 4, 1, 4, 1, 1, 0];

    #[test]
    fn linux_default_header_round_trip() {
        let h = Header::new_checked(&LINUX_DEFAULT[..]).unwrap();
        assert_eq!(h.next_header(), next_header::GRE);
        assert_eq!(h.header_len(), 8);
        let opts: Vec<_> = h.options().map(Result::unwrap).collect();
        assert_eq!(
            opts,
            [
                TlvOption {
                    offset: 2,
                    option_type: option_type::TUNNEL_ENCAP_LIMIT,
                    data: &[4]
                },
                TlvOption {
                    offset: 5,
                    option_type: option_type::PADN,
                    data: &[0]
                },
            ]
        );
        let repr = EncapLimitRepr::parse(&h).unwrap().unwrap();
        assert_eq!(
            repr,
            EncapLimitRepr {
                next_header: 47,
                limit: 4
            }
        );
        let mut out = [0xAAu8; 8];
        assert_eq!(repr.emit(&mut out), 8);
        assert_eq!(out, LINUX_DEFAULT);
        assert_eq!(out[EncapLimitRepr::LIMIT_OFFSET], 4);
    }

    #[test]
    fn truncation_at_every_boundary() {
        let mut long = [0u8; 16];
        long[0] = 47;
        long[1] = 1; // 16 bytes
        long[2] = option_type::PADN;
        long[3] = 12;
        for len in 0..16 {
            let needed = if len < 2 { 2 } else { 16 };
            assert_eq!(
                Header::new_checked(&long[..len]).unwrap_err(),
                Error::Truncated {
                    layer: Layer::Ipv6Extension,
                    needed,
                    actual: len
                },
                "len {len}"
            );
        }
        // PadN of 14 bytes: too much padding.
        let h = Header::new_checked(&long[..]).unwrap();
        assert_eq!(
            h.options().next().unwrap(),
            Err(malformed("more than 7 bytes of padding"))
        );
    }

    #[test]
    fn malformed_options_are_errors() {
        // Option data past the header's end.
        let past = [47, 0, 0x3e, 7, 0, 0, 0, 0];
        let h = Header::new_checked(&past[..]).unwrap();
        assert_eq!(
            h.options().collect::<Vec<_>>(),
            [Err(malformed("option runs past the end of the header"))]
        );
        // A length byte past the end.
        let no_len = [47, 0, 1, 3, 0, 0, 0, 0x3e];
        let h = Header::new_checked(&no_len[..]).unwrap();
        let v: Vec<_> = h.options().collect();
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[1],
            Err(malformed("option runs past the end of the header"))
        );
        // Eight Pad1s after the header's two bytes are only six: fine; PadN with data: not.
        let pad1 = [47, 0, 0, 0, 0, 0, 0, 0];
        assert!(Header::new_checked(&pad1[..])
            .unwrap()
            .options()
            .all(|o| o.is_ok()));
        let dirty = [47, 0, 1, 4, 0, 0, 1, 0];
        assert_eq!(
            Header::new_checked(&dirty[..]).unwrap().options().next(),
            Some(Err(malformed("PadN with non-zero data")))
        );
        // Padding counts restart after a real option.
        let ok = [47, 1, 1, 4, 0, 0, 0, 0, 0x3e, 0, 1, 4, 0, 0, 0, 0];
        assert!(Header::new_checked(&ok[..])
            .unwrap()
            .options()
            .all(|o| o.is_ok()));
    }

    #[test]
    fn unrecognized_action_is_the_two_high_bits() {
        assert_eq!(UnrecognizedAction::of(0x1e), UnrecognizedAction::Skip);
        assert_eq!(UnrecognizedAction::of(0x04), UnrecognizedAction::Skip);
        assert_eq!(UnrecognizedAction::of(0x7f), UnrecognizedAction::Discard);
        assert_eq!(
            UnrecognizedAction::of(0x80),
            UnrecognizedAction::DiscardAndReport
        );
        assert_eq!(
            UnrecognizedAction::of(0xc2),
            UnrecognizedAction::DiscardAndReportUnlessMulticast
        );
    }

    fn ipv6_with(next: u8, ext: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&(ext.len() as u16).to_be_bytes());
        p[6] = next;
        p.extend_from_slice(ext);
        p
    }

    #[test]
    fn finds_the_encap_limit_behind_other_extension_headers() {
        let mut ext = vec![next_header::DESTINATION_OPTIONS, 0, 1, 4, 0, 0, 0, 0]; // hop-by-hop
        ext.extend_from_slice(&[next_header::ROUTING, 0, 0x1e, 1, 9, 4, 1, 7]); // dst opts: 0x1e skip, then 4/1=7
        ext.extend_from_slice(&[next_header::TCP, 0, 0, 0, 0, 0, 0, 0]); // routing
        let p = ipv6_with(next_header::HOP_BY_HOP, &ext);
        let at = find_tunnel_encap_limit(&p).unwrap();
        assert_eq!(
            at,
            EncapLimitAt {
                offset: 40 + 8 + 5,
                limit: 7
            }
        );
        assert_eq!(p[at.limit_offset()], 7);
        // A length-2 type 4 is not the option.
        let p = ipv6_with(
            next_header::DESTINATION_OPTIONS,
            &[next_header::TCP, 0, 4, 2, 9, 9, 1, 0],
        );
        assert_eq!(find_tunnel_encap_limit(&p), None);
        // No extension header, or a non-first fragment before it: none.
        assert_eq!(
            find_tunnel_encap_limit(&ipv6_with(next_header::TCP, &[])),
            None
        );
        let mut frag = vec![next_header::DESTINATION_OPTIONS, 0, 0, 8, 0, 0, 0, 1];
        frag.extend_from_slice(&LINUX_DEFAULT);
        assert_eq!(
            find_tunnel_encap_limit(&ipv6_with(next_header::FRAGMENT, &frag)),
            None
        );
        frag[2..4].copy_from_slice(&[0, 0]);
        assert_eq!(
            find_tunnel_encap_limit(&ipv6_with(next_header::FRAGMENT, &frag)),
            Some(EncapLimitAt {
                offset: 50,
                limit: 4
            })
        );
        // Truncated: nothing, no panic.
        let p = ipv6_with(next_header::DESTINATION_OPTIONS, &LINUX_DEFAULT);
        for cut in 0..p.len() {
            assert_eq!(find_tunnel_encap_limit(&p[..cut]), None, "cut {cut}");
        }
        assert!(find_tunnel_encap_limit(&p).is_some());
    }

    proptest! {
        #[test]
        fn options_never_panic_and_stay_inside(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(h) = Header::new_checked(&bytes[..]) {
                for o in h.options().flatten() {
                    prop_assert!(o.offset + 2 + o.data.len() <= h.header_len() || o.option_type == 0);
                }
                let _ = EncapLimitRepr::parse(&h);
            }
            let _ = find_tunnel_encap_limit(&bytes);
        }

        #[test]
        fn emit_parse_round_trip(nh in any::<u8>(), limit in any::<u8>()) {
            let r = EncapLimitRepr { next_header: nh, limit };
            let mut b = [0u8; 8];
            r.emit(&mut b);
            let h = Header::new_checked(&b[..]).unwrap();
            prop_assert!(h.options().all(|o| o.is_ok()));
            prop_assert_eq!(EncapLimitRepr::parse(&h).unwrap(), Some(r));
        }
    }
}
