//! ICMPv6 (RFC 4443) and the Neighbor Discovery messages greway needs to resolve next hops (RFC 4861).
//!
//! Contract: the checksum covers the IPv6 pseudo-header (RFC 4443 section 2.3), so `parse` and `emit` take the
//! source and destination addresses of the enclosing IPv6 header. [`Icmpv6Repr::parse`] verifies the checksum,
//! then the per-message rules: ND messages need code 0 and at least 24 bytes (RFC 4861 section 7.1), an option
//! of length zero is malformed ("nodes MUST silently discard an ND packet that contains an option with length
//! zero", section 4.6), and unknown options are skipped ("Receivers MUST silently ignore any options they do
//! not recognize", section 4.6). The hop limit 255 check of section 7.1 belongs to the caller, which has the
//! IPv6 header. Handled: echo request/reply, destination unreachable, packet too big (MTU), time exceeded,
//! neighbor solicitation/advertisement with the link-layer address option.

use core::net::Ipv6Addr;

use super::checksum;
use super::ethernet::MacAddr;
use super::ipv6::{next_header, pseudo_header_sum, Ipv6Repr};
use super::{need, Error, Layer};

/// ICMPv6 type values handled here.
pub mod message_type {
    pub const DST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    /// RFC 4443 section 3.4: the second word is a pointer to the offending octet of the invoking packet.
    pub const PARAMETER_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;

    /// RFC 4443 section 2.1: "Error messages are identified as such by a zero in the high-order bit of their
    /// message Type field values" (types 0 to 127).
    pub const fn is_error(msg_type: u8) -> bool {
        msg_type < 128
    }
}

/// Parameter Problem codes (RFC 4443 section 3.4).
pub mod param_problem_code {
    pub const ERRONEOUS_HEADER_FIELD: u8 = 0;
    pub const UNRECOGNIZED_NEXT_HEADER: u8 = 1;
    pub const UNRECOGNIZED_OPTION: u8 = 2;
}

/// ND option types (RFC 4861 section 4.6).
pub mod nd_option {
    pub const SOURCE_LLADDR: u8 = 1;
    pub const TARGET_LLADDR: u8 = 2;
}

/// RFC 4861 section 7.1: neighbour discovery messages are sent, and accepted, with hop limit 255 only, so the
/// receiver knows they were not forwarded.
pub const ND_HOP_LIMIT: u8 = 255;

/// The all-nodes multicast address ff02::1 (RFC 4291 section 2.7.1): where an advertisement answering a
/// solicitation from the unspecified address goes (RFC 4861 section 7.2.4).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The solicited-node multicast address of `target` (RFC 4291 section 2.7.1: ff02::1:ff00:0/104 and the low 24
/// bits of the address), where a neighbour solicitation goes (RFC 4861 section 7.2.2).
pub fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let t = target.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, t[13], t[14], t[15],
    ])
}

/// RFC 4443 section 2.4 (c): an error message includes "as much of invoking packet as possible without the
/// ICMPv6 packet exceeding the minimum IPv6 MTU" (1280 bytes, IPv6 header included).
pub const MAX_ERROR_PACKET_LEN: usize = 1280;

pub const HEADER_LEN: usize = 8;
/// Type, code, checksum, reserved/flags, target address.
const ND_LEN: usize = 24;
const OPTION_SOURCE_LLADDR: u8 = nd_option::SOURCE_LLADDR;
const OPTION_TARGET_LLADDR: u8 = nd_option::TARGET_LLADDR;
const LLADDR_OPTION_LEN: usize = 8;

const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const TARGET: Range<usize> = 8..24;
}

use crate::be16;

/// A view over an ICMPv6 message.
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
        need(Layer::Icmpv6, HEADER_LEN, self.buffer.as_ref().len())
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The second 32-bit word: the MTU of a packet too big (RFC 4443 section 3.2), else type-specific.
    pub fn rest_of_header(&self) -> [u8; 4] {
        let b = self.buffer.as_ref();
        [
            b[field::REST.start],
            b[field::REST.start + 1],
            b[field::REST.start + 2],
            b[field::REST.start + 3],
        ]
    }

    /// The message body after the 8-byte header (the invoking packet of an error).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Verify the checksum including the pseudo-header of `src` -> `dst`.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let initial = pseudo_header_sum(src, dst, next_header::ICMPV6, b.len() as u32);
        checksum::fold(checksum::sum(b, initial)) == 0xFFFF
    }

    /// The target address of a neighbour solicitation or advertisement; [`Error::Truncated`] when the message
    /// is shorter than the 24 bytes RFC 4861 section 7.1 requires.
    pub fn nd_target(&self) -> Result<Ipv6Addr, Error> {
        let b = self.buffer.as_ref();
        need(Layer::Icmpv6, ND_LEN, b.len())?;
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[field::TARGET]);
        Ok(Ipv6Addr::from(o))
    }

    /// The link-layer address option of type `wanted` ([`nd_option`]) after the 24 bytes of a neighbour
    /// solicitation or advertisement, by the option rules of RFC 4861 section 4.6 (see the module doc).
    pub fn nd_lladdr(&self, wanted: u8) -> Result<Option<MacAddr>, Error> {
        let b = self.buffer.as_ref();
        need(Layer::Icmpv6, ND_LEN, b.len())?;
        find_lladdr(&b[ND_LEN..], wanted)
    }
}

/// Setters, for messages built in place over a buffer that already holds their data (an echo reply made from
/// the request, an error written in front of the invoking packet): no copy of the data, no allocation.
impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_msg_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE] = value;
    }

    pub fn set_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Store a checksum computed elsewhere (an RFC 1624 incremental update).
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// The second 32-bit word: zero for time exceeded, the MTU for packet too big (RFC 4443 section 3.2).
    pub fn set_rest_of_header(&mut self, value: [u8; 4]) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&value);
    }

    /// Compute the checksum over the whole buffer and the pseudo-header of `src` -> `dst`, and store it.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let initial = pseudo_header_sum(src, dst, next_header::ICMPV6, b.len() as u32);
        let sum = !checksum::fold(checksum::sum(b, initial));
        self.set_checksum(sum);
    }
}

/// An ICMPv6 message, typed; slices borrow from the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    DstUnreachable {
        code: u8,
        invoking: &'a [u8],
    },
    /// RFC 4443 section 3.2: the MTU of the next-hop link.
    PacketTooBig {
        mtu: u32,
        invoking: &'a [u8],
    },
    TimeExceeded {
        code: u8,
        invoking: &'a [u8],
    },
    NeighborSolicit {
        target: Ipv6Addr,
        source_lladdr: Option<MacAddr>,
    },
    NeighborAdvert {
        router: bool,
        solicited: bool,
        override_: bool,
        target: Ipv6Addr,
        target_lladdr: Option<MacAddr>,
    },
}

/// Find the link-layer address option of `wanted` type among ND options (RFC 4861 section 4.6).
fn find_lladdr(mut options: &[u8], wanted: u8) -> Result<Option<MacAddr>, Error> {
    let mut found = None;
    while !options.is_empty() {
        need(Layer::Icmpv6, 2, options.len())?;
        let len = usize::from(options[1]) * 8;
        if len == 0 {
            return Err(Error::Malformed {
                layer: Layer::Icmpv6,
                reason: "ND option with length zero",
            });
        }
        need(Layer::Icmpv6, len, options.len())?;
        if options[0] == wanted && len == LLADDR_OPTION_LEN && found.is_none() {
            found = Some(MacAddr::from_bytes(&options[2..8]));
        }
        options = &options[len..];
    }
    Ok(found)
}

impl<'a> Icmpv6Repr<'a> {
    /// Parse and verify the checksum against the pseudo-header of `src` -> `dst`.
    pub fn parse(
        packet: &Packet<&'a [u8]>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<Icmpv6Repr<'a>, Error> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum {
                layer: Layer::Icmpv6,
            });
        }
        let b: &'a [u8] = packet.buffer;
        let data = &b[HEADER_LEN..];
        let target = || -> Result<Ipv6Addr, Error> {
            let target = packet.nd_target()?;
            if packet.code() != 0 {
                return Err(Error::Malformed {
                    layer: Layer::Icmpv6,
                    reason: "ND code is not 0",
                });
            }
            Ok(target)
        };
        Ok(match (packet.msg_type(), packet.code()) {
            (message_type::ECHO_REQUEST, 0) => Icmpv6Repr::EchoRequest {
                ident: be16(b, 4),
                seq_no: be16(b, 6),
                data,
            },
            (message_type::ECHO_REPLY, 0) => Icmpv6Repr::EchoReply {
                ident: be16(b, 4),
                seq_no: be16(b, 6),
                data,
            },
            (message_type::DST_UNREACHABLE, code) => Icmpv6Repr::DstUnreachable {
                code,
                invoking: data,
            },
            (message_type::PACKET_TOO_BIG, 0) => Icmpv6Repr::PacketTooBig {
                mtu: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                invoking: data,
            },
            (message_type::TIME_EXCEEDED, code) => Icmpv6Repr::TimeExceeded {
                code,
                invoking: data,
            },
            (message_type::NEIGHBOR_SOLICIT, _) => {
                let target = target()?;
                Icmpv6Repr::NeighborSolicit {
                    target,
                    source_lladdr: find_lladdr(&b[ND_LEN..], OPTION_SOURCE_LLADDR)?,
                }
            }
            (message_type::NEIGHBOR_ADVERT, _) => {
                let target = target()?;
                let flags = b[4];
                Icmpv6Repr::NeighborAdvert {
                    router: flags & FLAG_ROUTER != 0,
                    solicited: flags & FLAG_SOLICITED != 0,
                    override_: flags & FLAG_OVERRIDE != 0,
                    target,
                    target_lladdr: find_lladdr(&b[ND_LEN..], OPTION_TARGET_LLADDR)?,
                }
            }
            _ => {
                return Err(Error::Malformed {
                    layer: Layer::Icmpv6,
                    reason: "unsupported type or code",
                })
            }
        })
    }

    pub fn parse_bytes(
        bytes: &'a [u8],
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<Icmpv6Repr<'a>, Error> {
        Icmpv6Repr::parse(&Packet::new_checked(bytes)?, src, dst)
    }

    /// The IPv6 header (no extension headers) that carries this message from `src` to `dst`.
    pub fn ipv6_repr(&self, src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8) -> Ipv6Repr {
        Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: next_header::ICMPV6,
            payload_len: self.buffer_len() as u16,
            hop_limit,
            traffic_class: 0,
            flow_label: 0,
        }
    }

    pub fn buffer_len(&self) -> usize {
        match *self {
            Icmpv6Repr::EchoRequest { data, .. } | Icmpv6Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            Icmpv6Repr::DstUnreachable { invoking, .. }
            | Icmpv6Repr::PacketTooBig { invoking, .. }
            | Icmpv6Repr::TimeExceeded { invoking, .. } => HEADER_LEN + invoking.len(),
            Icmpv6Repr::NeighborSolicit {
                source_lladdr: lladdr,
                ..
            }
            | Icmpv6Repr::NeighborAdvert {
                target_lladdr: lladdr,
                ..
            } => {
                ND_LEN
                    + if lladdr.is_some() {
                        LLADDR_OPTION_LEN
                    } else {
                        0
                    }
            }
        }
    }

    /// Write the message and its checksum (pseudo-header of `src` -> `dst`) into `buf[..buffer_len()]`;
    /// returns `buffer_len()`. Panics if `buf` is shorter.
    pub fn emit(&self, src: Ipv6Addr, dst: Ipv6Addr, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        buf[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let mut header = |msg_type: u8, code: u8, rest: [u8; 4]| {
            buf[field::TYPE] = msg_type;
            buf[field::CODE] = code;
            buf[4..8].copy_from_slice(&rest);
        };
        let word = |hi: u16, lo: u16| {
            let (h, l) = (hi.to_be_bytes(), lo.to_be_bytes());
            [h[0], h[1], l[0], l[1]]
        };
        let (body, lladdr): (&[u8], Option<(u8, MacAddr)>) = match *self {
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                header(message_type::ECHO_REQUEST, 0, word(ident, seq_no));
                (data, None)
            }
            Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                header(message_type::ECHO_REPLY, 0, word(ident, seq_no));
                (data, None)
            }
            Icmpv6Repr::DstUnreachable { code, invoking } => {
                header(message_type::DST_UNREACHABLE, code, [0; 4]);
                (invoking, None)
            }
            Icmpv6Repr::PacketTooBig { mtu, invoking } => {
                header(message_type::PACKET_TOO_BIG, 0, mtu.to_be_bytes());
                (invoking, None)
            }
            Icmpv6Repr::TimeExceeded { code, invoking } => {
                header(message_type::TIME_EXCEEDED, code, [0; 4]);
                (invoking, None)
            }
            Icmpv6Repr::NeighborSolicit {
                target,
                source_lladdr,
            } => {
                header(message_type::NEIGHBOR_SOLICIT, 0, [0; 4]);
                buf[field::TARGET].copy_from_slice(&target.octets());
                (&[], source_lladdr.map(|m| (OPTION_SOURCE_LLADDR, m)))
            }
            Icmpv6Repr::NeighborAdvert {
                router,
                solicited,
                override_,
                target,
                target_lladdr,
            } => {
                let flags = (if router { FLAG_ROUTER } else { 0 })
                    | (if solicited { FLAG_SOLICITED } else { 0 })
                    | (if override_ { FLAG_OVERRIDE } else { 0 });
                header(message_type::NEIGHBOR_ADVERT, 0, [flags, 0, 0, 0]);
                buf[field::TARGET].copy_from_slice(&target.octets());
                (&[], target_lladdr.map(|m| (OPTION_TARGET_LLADDR, m)))
            }
        };
        if let Some((option_type, mac)) = lladdr {
            buf[ND_LEN] = option_type;
            buf[ND_LEN + 1] = 1;
            buf[ND_LEN + 2..ND_LEN + 8].copy_from_slice(&mac.0);
        } else if !body.is_empty() {
            buf[HEADER_LEN..].copy_from_slice(body);
        }
        let initial = pseudo_header_sum(src, dst, next_header::ICMPV6, len as u32);
        let sum = !checksum::fold(checksum::sum(buf, initial));
        buf[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn src() -> Ipv6Addr {
        "fe80::200:ff:fe00:1".parse().unwrap()
    }
    fn dst() -> Ipv6Addr {
        "ff02::1:ff00:2".parse().unwrap()
    }

    /// Neighbor solicitation for fe80::200:ff:fe00:2 from 02:00:00:00:00:01, checksum from the RFC 4443
    /// pseudo-header computed by hand below.
    const NS: [u8; 32] = [
        135, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0x00, 0xff, 0xfe, 0x00,
        0x00, 0x02, 1, 1, 0x02, 0, 0, 0, 0, 0x01,
    ];

    fn ns_bytes() -> [u8; 32] {
        let mut b = NS;
        let mut sum: u32 = 0;
        for w in src().segments().iter().chain(dst().segments().iter()) {
            sum += u32::from(*w);
        }
        sum += 32 + 58;
        let csum = !checksum::fold(checksum::sum(&b, sum));
        b[2..4].copy_from_slice(&csum.to_be_bytes());
        b
    }

    #[test]
    fn neighbor_solicitation_fixture() {
        let b = ns_bytes();
        let repr = Icmpv6Repr::parse_bytes(&b, src(), dst()).unwrap();
        let expected = Icmpv6Repr::NeighborSolicit {
            target: "fe80::200:ff:fe00:2".parse().unwrap(),
            source_lladdr: Some(MacAddr([2, 0, 0, 0, 0, 1])),
        };
        assert_eq!(repr, expected);
        let mut out = [0u8; 32];
        assert_eq!(expected.emit(src(), dst(), &mut out), 32);
        assert_eq!(out, b);
        let ip = expected.ipv6_repr(src(), dst(), ND_HOP_LIMIT);
        assert_eq!(
            (ip.payload_len, ip.next_header, ip.hop_limit),
            (32, 58, 255)
        );
        // Another source address: the pseudo-header makes the checksum fail.
        assert_eq!(
            Icmpv6Repr::parse_bytes(&b, "fe80::9".parse().unwrap(), dst()),
            Err(Error::BadChecksum {
                layer: Layer::Icmpv6
            })
        );
    }

    #[test]
    fn neighbor_advertisement_round_trip_with_and_without_option() {
        for lladdr in [None, Some(MacAddr([2, 0, 0, 0, 0, 2]))] {
            let na = Icmpv6Repr::NeighborAdvert {
                router: false,
                solicited: true,
                override_: true,
                target: "2001:db8::2".parse().unwrap(),
                target_lladdr: lladdr,
            };
            let mut out = vec![0u8; na.buffer_len()];
            na.emit(dst(), src(), &mut out);
            assert_eq!(out[4], 0x60);
            assert_eq!(Icmpv6Repr::parse_bytes(&out, dst(), src()).unwrap(), na);
        }
    }

    #[test]
    fn nd_option_rules() {
        // Unknown option (type 14, nonce) before the link-layer one is skipped.
        let repr = Icmpv6Repr::NeighborSolicit {
            target: "2001:db8::1".parse().unwrap(),
            source_lladdr: None,
        };
        let mut b = vec![0u8; 24];
        repr.emit(src(), dst(), &mut b);
        b.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6, 1, 1, 2, 0, 0, 0, 0, 9]);
        let fix = |b: &mut Vec<u8>| {
            b[2] = 0;
            b[3] = 0;
            let initial = pseudo_header_sum(src(), dst(), 58, b.len() as u32);
            let c = !checksum::fold(checksum::sum(b, initial));
            b[2..4].copy_from_slice(&c.to_be_bytes());
        };
        fix(&mut b);
        assert!(matches!(
            Icmpv6Repr::parse_bytes(&b, src(), dst()).unwrap(),
            Icmpv6Repr::NeighborSolicit {
                source_lladdr: Some(MacAddr([2, 0, 0, 0, 0, 9])),
                ..
            }
        ));
        // Length zero: malformed.
        b[25] = 0;
        fix(&mut b);
        assert!(matches!(
            Icmpv6Repr::parse_bytes(&b, src(), dst()),
            Err(Error::Malformed { .. })
        ));
        // An option running past the end: truncated.
        b[25] = 3;
        fix(&mut b);
        assert!(matches!(
            Icmpv6Repr::parse_bytes(&b, src(), dst()),
            Err(Error::Truncated { .. })
        ));
        // ND code must be 0.
        let mut c = ns_bytes().to_vec();
        c[1] = 1;
        fix(&mut c);
        assert!(matches!(
            Icmpv6Repr::parse_bytes(&c, src(), dst()),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn errors_and_echo_round_trip() {
        let invoking = [0x60u8, 0, 0, 0, 0, 8, 47, 64];
        for repr in [
            Icmpv6Repr::PacketTooBig {
                mtu: 1456,
                invoking: &invoking,
            },
            Icmpv6Repr::TimeExceeded {
                code: 0,
                invoking: &invoking,
            },
            Icmpv6Repr::DstUnreachable {
                code: 3,
                invoking: &invoking,
            },
            Icmpv6Repr::EchoRequest {
                ident: 1,
                seq_no: 2,
                data: b"ping",
            },
            Icmpv6Repr::EchoReply {
                ident: 1,
                seq_no: 2,
                data: b"ping",
            },
        ] {
            let mut out = vec![0u8; repr.buffer_len()];
            repr.emit(src(), dst(), &mut out);
            assert_eq!(Icmpv6Repr::parse_bytes(&out, src(), dst()).unwrap(), repr);
        }
        let ptb = Icmpv6Repr::PacketTooBig {
            mtu: 1456,
            invoking: &invoking,
        };
        let mut out = vec![0u8; ptb.buffer_len()];
        ptb.emit(src(), dst(), &mut out);
        assert_eq!(&out[4..8], &1456u32.to_be_bytes());
        // The view reads what the Repr wrote: the MTU and the invoking packet.
        let view = Packet::new_checked(&out[..]).unwrap();
        assert_eq!(view.rest_of_header(), 1456u32.to_be_bytes());
        assert_eq!(view.data(), &invoking[..]);
    }

    #[test]
    fn truncation_at_every_boundary() {
        let b = ns_bytes();
        for len in 0..8 {
            assert_eq!(
                Icmpv6Repr::parse_bytes(&b[..len], src(), dst()).unwrap_err(),
                Error::Truncated {
                    layer: Layer::Icmpv6,
                    needed: 8,
                    actual: len
                }
            );
        }
        // A solicitation shorter than 24 bytes with a valid checksum.
        for len in 8..24 {
            let mut short = b[..len].to_vec();
            short[2] = 0;
            short[3] = 0;
            let c = !checksum::fold(checksum::sum(
                &short,
                pseudo_header_sum(src(), dst(), 58, len as u32),
            ));
            short[2..4].copy_from_slice(&c.to_be_bytes());
            assert_eq!(
                Icmpv6Repr::parse_bytes(&short, src(), dst()).unwrap_err(),
                Error::Truncated {
                    layer: Layer::Icmpv6,
                    needed: 24,
                    actual: len
                }
            );
        }
    }

    #[test]
    fn view_accessors_and_setters() {
        let b = ns_bytes();
        let packet = Packet::new_checked(&b[..]).unwrap();
        assert!(packet.verify_checksum(src(), dst()));
        assert_eq!(
            packet.nd_target().unwrap(),
            "fe80::200:ff:fe00:2".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            packet.nd_lladdr(nd_option::SOURCE_LLADDR),
            Ok(Some(MacAddr([2, 0, 0, 0, 0, 1])))
        );
        assert_eq!(packet.nd_lladdr(nd_option::TARGET_LLADDR), Ok(None));
        assert!(matches!(
            Packet::new_checked(&b[..20]).unwrap().nd_target(),
            Err(Error::Truncated { needed: 24, .. })
        ));
        // An error built in place over the invoking packet equals the emitted one.
        let invoking = [0x60u8, 0, 0, 0, 0, 8, 47, 64];
        let ptb = Icmpv6Repr::PacketTooBig {
            mtu: 1400,
            invoking: &invoking,
        };
        let mut expected = vec![0u8; ptb.buffer_len()];
        ptb.emit(src(), dst(), &mut expected);
        let mut built = vec![0xeeu8; 8];
        built.extend_from_slice(&invoking);
        let mut packet = Packet::new_checked(&mut built[..]).unwrap();
        packet.set_msg_type(message_type::PACKET_TOO_BIG);
        packet.set_code(0);
        packet.set_rest_of_header(1400u32.to_be_bytes());
        packet.fill_checksum(src(), dst());
        assert_eq!(built, expected);
        assert!(message_type::is_error(message_type::TIME_EXCEEDED));
        assert!(!message_type::is_error(message_type::ECHO_REQUEST));
        assert_eq!(
            solicited_node("fe80::200:ff:fe00:2".parse().unwrap()),
            dst()
        );
        assert_eq!(
            MacAddr::ipv6_multicast(ALL_NODES),
            MacAddr([0x33, 0x33, 0, 0, 0, 1])
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), s in any::<[u8; 16]>(), d in any::<[u8; 16]>()) {
            let (s, d) = (Ipv6Addr::from(s), Ipv6Addr::from(d));
            let _ = Icmpv6Repr::parse_bytes(&bytes, s, d);
            // Give random bodies a right checksum so the per-type parsing is exercised too.
            if bytes.len() >= 8 {
                let mut b = bytes.clone();
                b[2] = 0;
                b[3] = 0;
                let c = !checksum::fold(checksum::sum(&b, pseudo_header_sum(s, d, 58, b.len() as u32)));
                b[2..4].copy_from_slice(&c.to_be_bytes());
                if let Ok(repr) = Icmpv6Repr::parse_bytes(&b, s, d) {
                    let mut out = vec![0u8; repr.buffer_len()];
                    repr.emit(s, d, &mut out);
                    prop_assert_eq!(Icmpv6Repr::parse_bytes(&out, s, d).unwrap(), repr);
                }
            }
        }

        #[test]
        fn nd_emit_parse_round_trip(target in any::<[u8; 16]>(), mac in any::<Option<[u8; 6]>>(), flags in any::<(bool, bool, bool)>(), advert in any::<bool>()) {
            let repr = if advert {
                Icmpv6Repr::NeighborAdvert { router: flags.0, solicited: flags.1, override_: flags.2, target: target.into(), target_lladdr: mac.map(MacAddr) }
            } else {
                Icmpv6Repr::NeighborSolicit { target: target.into(), source_lladdr: mac.map(MacAddr) }
            };
            let mut out = vec![0u8; repr.buffer_len()];
            repr.emit(src(), dst(), &mut out);
            let parsed = Icmpv6Repr::parse_bytes(&out, src(), dst()).unwrap();
            prop_assert_eq!(parsed, repr);
            let mut again = vec![0u8; out.len()];
            parsed.emit(src(), dst(), &mut again);
            prop_assert_eq!(again, out);
        }
    }
}
