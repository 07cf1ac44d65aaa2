//! ICMPv4 (RFC 792): echo request/reply, destination unreachable (with the RFC 1191 next-hop MTU of code 4,
//! "fragmentation needed and DF set") and time exceeded; the messages a tunnel gateway answers or sends.
//!
//! Contract: [`Packet::new_checked`] guarantees the 8-byte header; [`Icmpv4Repr::parse`] verifies the checksum
//! over the whole message and refuses other types with [`Error::Malformed`]. [`Icmpv4Repr::emit`] writes
//! header, data and checksum into `buf[..buffer_len()]`. Error messages carry the invoking datagram's
//! beginning; RFC 1812 section 4.3.2.3 caps the whole ICMP datagram at [`MAX_ERROR_DATAGRAM_LEN`] bytes, which
//! the caller honours when choosing `invoking`.

use super::checksum;
use super::{need, Error, Layer};

/// ICMPv4 type values handled here.
pub mod message_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const TIMESTAMP: u8 = 13;
    pub const TIMESTAMP_REPLY: u8 = 14;
    pub const INFO_REQUEST: u8 = 15;
    pub const INFO_REPLY: u8 = 16;
    pub const ADDRESS_MASK_REQUEST: u8 = 17;
    pub const ADDRESS_MASK_REPLY: u8 = 18;

    /// A query or its reply (echo, timestamp, information, address mask): the messages an ICMP error may be
    /// sent about. RFC 1122 section 3.2.2: "An ICMP error message MUST NOT be sent as the result of receiving
    /// ... an ICMP error message"; every type that is not a query is treated as one.
    pub const fn is_query(msg_type: u8) -> bool {
        matches!(
            msg_type,
            ECHO_REPLY
                | ECHO_REQUEST
                | TIMESTAMP
                | TIMESTAMP_REPLY
                | INFO_REQUEST
                | INFO_REPLY
                | ADDRESS_MASK_REQUEST
                | ADDRESS_MASK_REPLY
        )
    }
}

/// Destination unreachable codes (RFC 792, RFC 1191).
pub mod unreachable_code {
    pub const NET: u8 = 0;
    pub const HOST: u8 = 1;
    pub const PROTOCOL: u8 = 2;
    pub const PORT: u8 = 3;
    /// "Fragmentation needed and DF set": the next-hop MTU is in the low 16 bits of the second word.
    pub const FRAGMENTATION_NEEDED: u8 = 4;
}

/// Time exceeded codes (RFC 792).
pub mod time_exceeded_code {
    pub const TTL_EXCEEDED_IN_TRANSIT: u8 = 0;
    pub const FRAGMENT_REASSEMBLY: u8 = 1;
}

/// RFC 1812 section 4.3.2.3: an ICMP error "SHOULD contain as much of the original datagram as possible
/// without the length of the ICMP datagram exceeding 576 bytes" (IP header included).
pub const MAX_ERROR_DATAGRAM_LEN: usize = 576;

pub const HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
}

/// A view over an ICMPv4 message.
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
        need(Layer::Icmpv4, HEADER_LEN, self.buffer.as_ref().len())
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::CHECKSUM.start], b[field::CHECKSUM.start + 1]])
    }

    /// The second 32-bit word (identifier + sequence, or unused + next-hop MTU).
    pub fn rest_of_header(&self) -> [u8; 4] {
        let b = self.buffer.as_ref();
        [
            b[field::REST.start],
            b[field::REST.start + 1],
            b[field::REST.start + 2],
            b[field::REST.start + 3],
        ]
    }

    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// The next-hop MTU of a "fragmentation needed" (RFC 1191 section 4: the low-order 16 bits of the second
    /// word; zero from routers older than RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        let [_, _, hi, lo] = self.rest_of_header();
        u16::from_be_bytes([hi, lo])
    }

    /// The sum over the whole message, checksum field included, folds to 0xFFFF.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref(), 0)) == 0xFFFF
    }
}

/// Setters, for messages built in place over a buffer that already holds their data (an echo reply made from
/// the request, an error written in front of the invoking datagram): no copy of the data, no allocation.
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

    /// The second 32-bit word: zero for time exceeded, `u32::from(mtu)` for fragmentation needed (RFC 1191).
    pub fn set_rest_of_header(&mut self, value: [u8; 4]) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&value);
    }

    /// Compute the checksum over the whole buffer (header and data) and store it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(sum);
    }
}

/// An ICMPv4 message, typed; the data/invoking slices borrow from the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
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
    /// `next_hop_mtu` is meaningful for code 4 (RFC 1191 section 4) and zero otherwise.
    DstUnreachable {
        code: u8,
        next_hop_mtu: u16,
        invoking: &'a [u8],
    },
    TimeExceeded {
        code: u8,
        invoking: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parse and verify the checksum. Unused fields are not kept, so the canonical form has them zero.
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Icmpv4Repr<'a>, Error> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum {
                layer: Layer::Icmpv4,
            });
        }
        let b: &'a [u8] = packet.buffer;
        let word_hi = u16::from_be_bytes([b[4], b[5]]);
        let word_lo = u16::from_be_bytes([b[6], b[7]]);
        let data = &b[HEADER_LEN..];
        Ok(match (packet.msg_type(), packet.code()) {
            (message_type::ECHO_REQUEST, 0) => Icmpv4Repr::EchoRequest {
                ident: word_hi,
                seq_no: word_lo,
                data,
            },
            (message_type::ECHO_REPLY, 0) => Icmpv4Repr::EchoReply {
                ident: word_hi,
                seq_no: word_lo,
                data,
            },
            (message_type::DST_UNREACHABLE, code) => Icmpv4Repr::DstUnreachable {
                code,
                next_hop_mtu: word_lo,
                invoking: data,
            },
            (message_type::TIME_EXCEEDED, code) => Icmpv4Repr::TimeExceeded {
                code,
                invoking: data,
            },
            _ => {
                return Err(Error::Malformed {
                    layer: Layer::Icmpv4,
                    reason: "unsupported type or code",
                })
            }
        })
    }

    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Icmpv4Repr<'a>, Error> {
        Icmpv4Repr::parse(&Packet::new_checked(bytes)?)
    }

    /// A "fragmentation needed and DF set" error (RFC 1191) quoting `invoking`.
    pub fn fragmentation_needed(next_hop_mtu: u16, invoking: &'a [u8]) -> Icmpv4Repr<'a> {
        Icmpv4Repr::DstUnreachable {
            code: unreachable_code::FRAGMENTATION_NEEDED,
            next_hop_mtu,
            invoking,
        }
    }

    fn body(&self) -> &'a [u8] {
        match *self {
            Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => data,
            Icmpv4Repr::DstUnreachable { invoking, .. }
            | Icmpv4Repr::TimeExceeded { invoking, .. } => invoking,
        }
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.body().len()
    }

    /// Write the message with its checksum into `buf[..buffer_len()]`; returns `buffer_len()`.
    /// Panics if `buf` is shorter.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        let (msg_type, code, hi, lo) = match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. } => {
                (message_type::ECHO_REQUEST, 0, ident, seq_no)
            }
            Icmpv4Repr::EchoReply { ident, seq_no, .. } => {
                (message_type::ECHO_REPLY, 0, ident, seq_no)
            }
            Icmpv4Repr::DstUnreachable {
                code, next_hop_mtu, ..
            } => (message_type::DST_UNREACHABLE, code, 0, next_hop_mtu),
            Icmpv4Repr::TimeExceeded { code, .. } => (message_type::TIME_EXCEEDED, code, 0, 0),
        };
        buf[field::TYPE] = msg_type;
        buf[field::CODE] = code;
        buf[field::CHECKSUM].copy_from_slice(&[0, 0]);
        buf[field::REST.start..field::REST.start + 2].copy_from_slice(&hi.to_be_bytes());
        buf[field::REST.start + 2..field::REST.end].copy_from_slice(&lo.to_be_bytes());
        buf[HEADER_LEN..].copy_from_slice(self.body());
        let sum = checksum::checksum(buf);
        buf[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// various_gre.pcap frame 25, the inner ping: echo request id 1 seq 0 (first 16 bytes of its 80).
    const ECHO_HEAD: [u8; 16] = [
        0x08, 0x00, 0x64, 0xfe, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x19,
        0x3f,
    ];

    fn capture_echo() -> Vec<u8> {
        let mut b = ECHO_HEAD.to_vec();
        b.extend(std::iter::repeat_n([0xab, 0xcd], 32).flatten());
        b
    }

    #[test]
    fn echo_request_from_the_capture() {
        let b = capture_echo();
        assert_eq!(b.len(), 80);
        let repr = Icmpv4Repr::parse_bytes(&b).unwrap();
        assert!(
            matches!(repr, Icmpv4Repr::EchoRequest { ident: 1, seq_no: 0, data } if data.len() == 72)
        );
        let mut out = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut out), 80);
        assert_eq!(out, b, "checksum 0x64fe reproduced");
    }

    #[test]
    fn echo_reply_round_trip_and_bad_checksum() {
        let reply = Icmpv4Repr::EchoReply {
            ident: 0x1234,
            seq_no: 7,
            data: b"hello",
        };
        let mut out = [0u8; 13];
        reply.emit(&mut out);
        assert_eq!(Icmpv4Repr::parse_bytes(&out).unwrap(), reply);
        out[12] ^= 1;
        assert_eq!(
            Icmpv4Repr::parse_bytes(&out),
            Err(Error::BadChecksum {
                layer: Layer::Icmpv4
            })
        );
    }

    #[test]
    fn fragmentation_needed_carries_the_mtu() {
        let invoking = [
            0x45u8, 0, 0x05, 0xdc, 0, 0, 0x40, 0, 64, 47, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 1, 2, 3,
            4,
        ];
        let repr = Icmpv4Repr::fragmentation_needed(1476, &invoking);
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut out);
        assert_eq!(&out[..8], &[3, 4, out[2], out[3], 0, 0, 0x05, 0xc4]);
        assert_eq!(Icmpv4Repr::parse_bytes(&out).unwrap(), repr);
        // The view reads what the Repr wrote: the RFC 1191 MTU and the quoted datagram.
        let view = Packet::new_checked(&out[..]).unwrap();
        assert_eq!(view.next_hop_mtu(), 1476);
        assert_eq!(view.data(), &invoking);
        let te = Icmpv4Repr::TimeExceeded {
            code: time_exceeded_code::TTL_EXCEEDED_IN_TRANSIT,
            invoking: &invoking,
        };
        let mut out = vec![0u8; te.buffer_len()];
        te.emit(&mut out);
        assert_eq!(out[0], 11);
        assert_eq!(Icmpv4Repr::parse_bytes(&out).unwrap(), te);
    }

    #[test]
    fn truncation_and_unsupported_types() {
        let b = capture_echo();
        for len in 0..8 {
            assert_eq!(
                Icmpv4Repr::parse_bytes(&b[..len]).unwrap_err(),
                Error::Truncated {
                    layer: Layer::Icmpv4,
                    needed: 8,
                    actual: len
                }
            );
        }
        // Cut inside the data: the checksum no longer verifies (ICMP has no length field of its own).
        assert_eq!(
            Icmpv4Repr::parse_bytes(&b[..79]),
            Err(Error::BadChecksum {
                layer: Layer::Icmpv4
            })
        );
        let mut timestamp = [13u8, 0, 0, 0, 0, 0, 0, 0];
        let sum = checksum::checksum(&timestamp);
        timestamp[2..4].copy_from_slice(&sum.to_be_bytes());
        assert!(matches!(
            Icmpv4Repr::parse_bytes(&timestamp),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn setters_build_in_place_what_emit_builds() {
        let invoking = [
            0x45u8, 0, 0, 24, 0, 0, 0, 0, 1, 47, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 1, 2, 3, 4,
        ];
        let repr = Icmpv4Repr::fragmentation_needed(1400, &invoking);
        let mut expected = vec![0u8; repr.buffer_len()];
        repr.emit(&mut expected);
        let mut b = vec![0xeeu8; 8];
        b.extend_from_slice(&invoking);
        let mut packet = Packet::new_checked(&mut b[..]).unwrap();
        packet.set_msg_type(message_type::DST_UNREACHABLE);
        packet.set_code(unreachable_code::FRAGMENTATION_NEEDED);
        packet.set_rest_of_header(u32::from(1400u16).to_be_bytes());
        packet.fill_checksum();
        assert_eq!(b, expected);
        // Echo request -> reply by an RFC 1624 update of the checksum, as the data path does it.
        let mut echo = capture_echo();
        let mut packet = Packet::new_checked(&mut echo[..]).unwrap();
        let old = u16::from_be_bytes([packet.msg_type(), packet.code()]);
        packet.set_msg_type(message_type::ECHO_REPLY);
        let new = u16::from_be_bytes([packet.msg_type(), packet.code()]);
        packet.set_checksum(checksum::update16(packet.checksum(), old, new));
        assert!(packet.verify_checksum());
        assert!(matches!(
            Icmpv4Repr::parse_bytes(&echo),
            Ok(Icmpv4Repr::EchoReply {
                ident: 1,
                seq_no: 0,
                ..
            })
        ));
        assert!(message_type::is_query(message_type::ECHO_REQUEST));
        assert!(!message_type::is_query(message_type::DST_UNREACHABLE));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(repr) = Icmpv4Repr::parse_bytes(&bytes) {
                let mut out = vec![0u8; repr.buffer_len()];
                repr.emit(&mut out);
                prop_assert_eq!(Icmpv4Repr::parse_bytes(&out).unwrap(), repr);
            }
        }

        #[test]
        fn emit_parse_round_trip(kind in 0u8..4, a in any::<u16>(), b in any::<u16>(), code in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let repr = match kind {
                0 => Icmpv4Repr::EchoRequest { ident: a, seq_no: b, data: &data },
                1 => Icmpv4Repr::EchoReply { ident: a, seq_no: b, data: &data },
                2 => Icmpv4Repr::DstUnreachable { code, next_hop_mtu: b, invoking: &data },
                _ => Icmpv4Repr::TimeExceeded { code, invoking: &data },
            };
            let mut out = vec![0u8; repr.buffer_len()];
            repr.emit(&mut out);
            let parsed = Icmpv4Repr::parse_bytes(&out).unwrap();
            prop_assert_eq!(parsed, repr);
            let mut again = vec![0u8; out.len()];
            parsed.emit(&mut again);
            prop_assert_eq!(again, out);
        }
    }
}
