//! GRE (RFC 2784) with the key and sequence number extensions (RFC 2890).
//!
//! Contract: [`Packet`] is a view over one whole GRE packet (header + payload, as delimited by the outer IP
//! length), because the GRE checksum covers both. [`Packet::new_checked`] applies every receiver rule below
//! and returns a distinct [`GreError`] for each; after it succeeds no accessor panics. [`GreRepr::emit`] writes
//! the header only; when the checksum is on, call [`fill_checksum`] once the payload is in place.
//!
//! ```text
//!  RFC 2784 section 2.1, with the RFC 2890 section 2 extensions (K and S bits, Key and Sequence fields):
//!
//!   0                   1                   2                   3
//!   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |C| |K|S| Reserved0       | Ver |         Protocol Type         |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |      Checksum (optional)      |       Reserved1 (Optional)    |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                         Key (optional)                        |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                 Sequence Number (Optional)                    |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//!  The same first 16 bits as laid out by RFC 1701 section 3 (which RFC 2784 obsoletes):
//!
//!   bit  0   1   2   3   4   5 6 7    8 9 10 11 12   13 14 15
//!       |C | R | K | S | s | Recur  |  Flags        |  Ver    |
//!  mask 8000 4000 2000 1000 0800 0700  00F8            0007
//! ```
//!
//! Receiver rules implemented (quotations from the RFCs, then what this module does):
//!
//! - RFC 2784 section 2.3: "A receiver MUST discard a packet where any of bits 1-5 are non-zero, unless that
//!   receiver implements RFC 1701. Bits 6-12 are reserved for future use. These bits MUST be sent as zero and
//!   MUST be ignored on receipt." RFC 2890 then gives bits 2 (K) and 3 (S) a meaning, so the bits that still
//!   force a discard are bit 1 (R, 0x4000), bit 4 (s, strict source route, 0x0800) and bit 5 (0x0400, the most
//!   significant bit of RFC 1701's 3-bit Recursion Control): mask [`flags::DISCARD_MASK`] = `0x4C00`, reported
//!   as [`GreError::RoutingOrRecursion`]. Bits 6-12 (`0x03F8`: the two low Recur bits and the five RFC 1701
//!   Flags bits) are ignored as section 2.3 says, and never emitted.
//! - RFC 2784 section 2.3.1: "The Version Number field MUST contain the value zero." Version 1 is the
//!   "enhanced GRE" of PPTP (RFC 2637 section 4.1): recognised and reported as [`GreError::Pptp`] carrying its
//!   call id, payload length, sequence and acknowledgment numbers, never decapsulated. MikroTik's EoIP is
//!   version 1 too, with protocol type 0x6400 ([`protocol::EOIP`]): recognised first and reported as
//!   [`GreError::Eoip`] with its tunnel id. Any other version is [`GreError::UnsupportedVersion`].
//! - RFC 2784 section 2.5: "The Checksum field contains the IP (one's complement) checksum sum of the all the
//!   16 bit words in the GRE header and the payload packet. For purposes of computing the checksum, the value
//!   of the checksum field is zero." Section 2.6: Reserved1 "MUST be transmitted as zero"; it is ignored on
//!   receipt. [`Packet::verify_checksum`] checks the checksum; the caller decides whether a bad one is a drop.
//! - RFC 2890 section 2: the optional fields appear in the order Checksum(+Reserved1), Key, Sequence Number.
//!   A header whose flags announce fields the buffer does not hold is [`GreError::Truncated`] with the length
//!   needed and the length present.
//! - RFC 2890 section 2.2 compares sequence numbers with serial number arithmetic (RFC 1982): see
//!   [`seq_is_later`]. Senders number the first packet 0; a receiver starting from
//!   [`RECEIVER_INITIAL_SEQUENCE`] (2^32 - 1) accepts it as later. Whether an out-of-order packet is dropped
//!   is the tunnel layer's decision, not this module's.
//!
//! Cisco keepalives (protocol 0, see [`protocol::KEEPALIVE`]) and the Cisco MetaData shim (protocol 0x8909,
//! see [`CiscoMetaData::parse`]) are documented from `shared/peer-captures/various_gre.pcap`.

use super::checksum;
use super::{need, Error, Layer};

/// Bits of the first 16-bit word (flags and version).
pub mod flags {
    /// C: Checksum and Reserved1 present (RFC 2784).
    pub const CHECKSUM: u16 = 0x8000;
    /// R: RFC 1701 routing present. Must be zero (RFC 2784 section 2.3).
    pub const ROUTING: u16 = 0x4000;
    /// K: Key present (RFC 2890 section 2.1).
    pub const KEY: u16 = 0x2000;
    /// S: Sequence Number present (RFC 2890 section 2.2).
    pub const SEQUENCE: u16 = 0x1000;
    /// s: RFC 1701 strict source route. Must be zero.
    pub const STRICT_SOURCE_ROUTE: u16 = 0x0800;
    /// RFC 1701 Recursion Control (3 bits). Only its top bit is inside RFC 2784's "bits 1-5".
    pub const RECURSION: u16 = 0x0700;
    /// RFC 2784 bits 1, 4 and 5 non-zero: discard.
    pub const DISCARD_MASK: u16 = ROUTING | STRICT_SOURCE_ROUTE | 0x0400;
    /// RFC 2784 bits 6-12: ignored on receipt.
    pub const IGNORED_MASK: u16 = 0x03F8;
    /// PPTP enhanced GRE (RFC 2637 section 4.1): Acknowledgment Number present.
    pub const PPTP_ACK: u16 = 0x0080;
    /// Version, low three bits.
    pub const VERSION: u16 = 0x0007;
}

mod field {
    use core::ops::Range;
    pub const FLAGS_VERSION: Range<usize> = 0..2;
    pub const PROTOCOL: Range<usize> = 2..4;
    /// Checksum, when present, is the first optional field.
    pub const CHECKSUM: Range<usize> = 4..6;
    pub const BASE_LEN: usize = 4;
}

/// Protocol Type values (an EtherType, RFC 2784 section 2.4) that greway knows by name.
pub mod protocol {
    /// Cisco GRE keepalive. The sender wraps, in its ordinary outer GRE header (protocol IPv4, or 0x8909 with
    /// the metadata shim), an IPv4 packet addressed from the peer back to itself whose own GRE header has
    /// protocol 0 and no payload. The peer decapsulates it like any packet and routes the inner packet back,
    /// so the sender receives GRE with protocol 0: the reply (various_gre.pcap frames 11 and 12).
    pub const KEEPALIVE: u16 = 0x0000;
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86DD;
    /// Transparent Ethernet Bridging: the payload is an Ethernet frame.
    pub const TEB: u16 = 0x6558;
    pub const MPLS: u16 = 0x8847;
    /// ERSPAN type II (and type I, which has no GRE sequence number).
    pub const ERSPAN: u16 = 0x88BE;
    pub const ERSPAN3: u16 = 0x22EB;
    /// Cisco MetaData (TrustSec SGT): a shim precedes the inner packet, see [`super::CiscoMetaData`].
    pub const CISCO_METADATA: u16 = 0x8909;
    /// PPP, the payload of PPTP's enhanced GRE.
    pub const PPP: u16 = 0x880B;
    /// Cisco Discovery Protocol over a GRE tunnel.
    pub const CDP: u16 = 0x2000;
    /// WCCP redirect (WCCP v2 redirect header then IPv4).
    pub const WCCP: u16 = 0x883E;
    /// MikroTik EoIP (Ethernet over IP), carried in a version-1 header, see [`super::EoipHeader`].
    pub const EOIP: u16 = 0x6400;

    /// Human name for logs and counters; `None` for values greway has no name for.
    pub fn name(protocol: u16) -> Option<&'static str> {
        Some(match protocol {
            KEEPALIVE => "keepalive",
            IPV4 => "IPv4",
            IPV6 => "IPv6",
            TEB => "TEB",
            MPLS => "MPLS",
            ERSPAN => "ERSPAN",
            ERSPAN3 => "ERSPAN3",
            CISCO_METADATA => "CiscoMetaData",
            PPP => "PPP",
            CDP => "CDP",
            WCCP => "WCCP",
            EOIP => "EoIP",
            _ => return None,
        })
    }
}

/// The fields of a PPTP enhanced GRE header (RFC 2637 section 4.1), reported instead of decapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PptpHeader {
    /// Key high half: "Payload Length: Size of the payload, not including the GRE header".
    pub payload_len: u16,
    /// Key low half: "Call ID: Contains the Peer's Call ID for the session to which this packet belongs."
    pub call_id: u16,
    pub sequence: Option<u32>,
    pub ack: Option<u32>,
}

/// The fields of a MikroTik EoIP header, reported instead of decapsulated. EoIP is a version-1 GRE header with
/// the K bit set (`0x2001`) and protocol type [`protocol::EOIP`], whose "key" holds the length of the Ethernet
/// frame it carries (big-endian) and the tunnel id (little-endian, as RouterOS writes it).
///
/// ```text
///  | 0x20 0x01 (K, version 1)      | 0x64 0x00 (protocol)          |
///  | frame length (big-endian)     | tunnel id (little-endian)     |
///  | Ethernet frame ...
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EoipHeader {
    pub payload_len: u16,
    pub tunnel_id: u16,
}

/// A GRE receiver rule failed; each rule has its own variant so the data path counts them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GreError {
    /// The flags announce `needed` header bytes, the packet has `actual`.
    #[error("GRE: truncated, {needed} bytes needed, {actual} present")]
    Truncated { needed: usize, actual: usize },
    /// R, s or the top Recursion Control bit is set (RFC 2784 section 2.3: MUST discard).
    #[error("GRE: routing, strict source route or recursion bits set (flags {flags:#06x})")]
    RoutingOrRecursion { flags: u16 },
    /// Version 1: PPTP enhanced GRE (RFC 2637). Not decapsulated; the header is exposed for reporting.
    #[error("GRE: PPTP enhanced GRE (version 1), call id {}, payload length {}", .0.call_id, .0.payload_len)]
    Pptp(PptpHeader),
    /// Version 1 with protocol 0x6400: MikroTik EoIP (Ethernet over IP). Not decapsulated.
    #[error("GRE: MikroTik EoIP, tunnel id {}, frame length {}", .0.tunnel_id, .0.payload_len)]
    Eoip(EoipHeader),
    /// Version 2..=7 (RFC 2784 section 2.3.1: MUST be zero).
    #[error("GRE: unsupported version {version}")]
    UnsupportedVersion { version: u8 },
}

/// RFC 2890 section 2.2 receiver state before any packet: the "last" sequence number is 2^32 - 1, so the
/// first packet, numbered 0, is later.
pub const RECEIVER_INITIAL_SEQUENCE: u32 = u32::MAX;

/// RFC 2890 section 2.2 / RFC 1982 serial number comparison: `new` is later than `last` when
/// `(new - last) mod 2^32` lies in `1..2^31`. Equal numbers are not later (a duplicate); a distance of exactly
/// 2^31 is undefined by RFC 1982 and treated as not later.
#[inline]
pub fn seq_is_later(new: u32, last: u32) -> bool {
    let distance = new.wrapping_sub(last);
    distance != 0 && distance < 0x8000_0000
}

/// Header length implied by the flags of a version-0 header.
#[inline]
fn header_len_for(flags_version: u16) -> usize {
    field::BASE_LEN
        + if flags_version & flags::CHECKSUM != 0 {
            4
        } else {
            0
        }
        + if flags_version & flags::KEY != 0 {
            4
        } else {
            0
        }
        + if flags_version & flags::SEQUENCE != 0 {
            4
        } else {
            0
        }
}

use crate::be16;

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parse a version-1 (PPTP) header for reporting. Only called once `len >= 4`.
fn parse_pptp(b: &[u8], flags_version: u16) -> GreError {
    // RFC 2637 section 4.1: Key is always present (payload length + call id); S and A add 4 bytes each.
    let mut needed = 8;
    if flags_version & flags::SEQUENCE != 0 {
        needed += 4;
    }
    if flags_version & flags::PPTP_ACK != 0 {
        needed += 4;
    }
    if b.len() < needed {
        return GreError::Truncated {
            needed,
            actual: b.len(),
        };
    }
    let mut at = 8;
    let sequence = if flags_version & flags::SEQUENCE != 0 {
        at += 4;
        Some(be32(b, at - 4))
    } else {
        None
    };
    let ack = if flags_version & flags::PPTP_ACK != 0 {
        Some(be32(b, at))
    } else {
        None
    };
    GreError::Pptp(PptpHeader {
        payload_len: be16(b, 4),
        call_id: be16(b, 6),
        sequence,
        ack,
    })
}

/// Parse a version-1 header with the EoIP protocol type for reporting. Only called once `len >= 4`.
fn parse_eoip(b: &[u8]) -> GreError {
    const LEN: usize = field::BASE_LEN + 4;
    if b.len() < LEN {
        return GreError::Truncated {
            needed: LEN,
            actual: b.len(),
        };
    }
    GreError::Eoip(EoipHeader {
        payload_len: be16(b, field::BASE_LEN),
        tunnel_id: u16::from_le_bytes([b[field::BASE_LEN + 2], b[field::BASE_LEN + 3]]),
    })
}

/// Length of the base header (flags/version and protocol type).
pub const BASE_HEADER_LEN: usize = field::BASE_LEN;
/// Length of the base header followed by Checksum and Reserved1 (the C bit set).
pub const CHECKSUM_HEADER_LEN: usize = field::CHECKSUM.end + 2;

// The accessors shared by [`Header`] and [`HeaderMut`], each a load at a constant `field` offset of the
// 4-byte array (no bounds check after the one in the constructor).
macro_rules! fixed_header_getters {
    () => {
        /// The raw first word: flag bits ([`flags`]) and version.
        #[inline(always)]
        pub fn flags_version(&self) -> u16 {
            let at = field::FLAGS_VERSION.start;
            u16::from_be_bytes([self.0[at], self.0[at + 1]])
        }
        #[inline(always)]
        pub fn protocol(&self) -> u16 {
            let at = field::PROTOCOL.start;
            u16::from_be_bytes([self.0[at], self.0[at + 1]])
        }
    };
}

fixed_header_views! {
    len: BASE_HEADER_LEN,
    error: GreError,
    truncated: |actual| GreError::Truncated { needed: BASE_HEADER_LEN, actual },
    /// A fixed-size view of the 4-byte GRE base header for the fast paths: built by one length check
    /// ([`Header::from_prefix`], `TryFrom<&[u8]>`), after which each accessor is a load at a constant offset. It
    /// applies no receiver rule: [`Packet::new_checked`] does.
    header;
    /// The writable [`Header`].
    header_mut;
}

impl HeaderMut<'_> {
    #[inline(always)]
    pub fn set_flags_version(&mut self, value: u16) {
        self.0[field::FLAGS_VERSION].copy_from_slice(&value.to_be_bytes());
    }
    #[inline(always)]
    pub fn set_protocol(&mut self, value: u16) {
        self.0[field::PROTOCOL].copy_from_slice(&value.to_be_bytes());
    }
}

/// A fixed-size writable view of the first 8 bytes of a GRE header whose C bit is set: the base header, then
/// Checksum and Reserved1 (RFC 2784 2.1). The encapsulation writes the checksum through it at a constant
/// offset once the payload is summed.
#[derive(Debug, PartialEq, Eq)]
pub struct ChecksumHeaderMut<'a>(&'a mut [u8; CHECKSUM_HEADER_LEN]);

impl<'a> ChecksumHeaderMut<'a> {
    #[inline(always)]
    pub fn new(bytes: &'a mut [u8; CHECKSUM_HEADER_LEN]) -> ChecksumHeaderMut<'a> {
        ChecksumHeaderMut(bytes)
    }

    /// The first 8 bytes of `bytes`, or `None` when it is shorter.
    #[inline(always)]
    pub fn from_prefix(bytes: &'a mut [u8]) -> Option<ChecksumHeaderMut<'a>> {
        bytes.first_chunk_mut().map(ChecksumHeaderMut)
    }

    fixed_header_getters!();

    /// The Checksum field as received or written.
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        let at = field::CHECKSUM.start;
        u16::from_be_bytes([self.0[at], self.0[at + 1]])
    }

    /// The Checksum field as given (the one's complement of the sum is the caller's: RFC 2784 2.5).
    #[inline(always)]
    pub fn set_checksum(&mut self, value: u16) {
        self.0[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }
}

/// A view over a whole GRE packet (header and payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap without checking; accessors may panic on a short or malformed buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap and apply every receiver rule (see the module docs).
    pub fn new_checked(buffer: T) -> Result<Packet<T>, GreError> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// The receiver rules of RFC 2784/2890, in this order: base header length, version (PPTP recognised),
    /// discard bits, optional fields' length.
    pub fn check_len(&self) -> Result<(), GreError> {
        let b = self.buffer.as_ref();
        if b.len() < field::BASE_LEN {
            return Err(GreError::Truncated {
                needed: field::BASE_LEN,
                actual: b.len(),
            });
        }
        let flags_version = be16(b, 0);
        match (flags_version & flags::VERSION) as u8 {
            0 => {}
            1 if be16(b, field::PROTOCOL.start) == protocol::EOIP => return Err(parse_eoip(b)),
            1 => return Err(parse_pptp(b, flags_version)),
            version => return Err(GreError::UnsupportedVersion { version }),
        }
        if flags_version & flags::DISCARD_MASK != 0 {
            return Err(GreError::RoutingOrRecursion {
                flags: flags_version,
            });
        }
        let needed = header_len_for(flags_version);
        if b.len() < needed {
            return Err(GreError::Truncated {
                needed,
                actual: b.len(),
            });
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The raw first 16-bit word.
    #[inline]
    pub fn flags_version(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS_VERSION.start)
    }

    #[inline]
    pub fn version(&self) -> u8 {
        (self.flags_version() & flags::VERSION) as u8
    }

    #[inline]
    pub fn protocol(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PROTOCOL.start)
    }

    #[inline]
    pub fn has_checksum(&self) -> bool {
        self.flags_version() & flags::CHECKSUM != 0
    }

    #[inline]
    pub fn has_key(&self) -> bool {
        self.flags_version() & flags::KEY != 0
    }

    #[inline]
    pub fn has_sequence(&self) -> bool {
        self.flags_version() & flags::SEQUENCE != 0
    }

    /// Header length including the optional fields the flags announce.
    #[inline]
    pub fn header_len(&self) -> usize {
        header_len_for(self.flags_version())
    }

    #[inline]
    fn key_offset(&self) -> usize {
        field::BASE_LEN + if self.has_checksum() { 4 } else { 0 }
    }

    #[inline]
    fn sequence_offset(&self) -> usize {
        self.key_offset() + if self.has_key() { 4 } else { 0 }
    }

    /// The Checksum field as received, when present.
    #[inline]
    pub fn checksum(&self) -> Option<u16> {
        self.has_checksum()
            .then(|| be16(self.buffer.as_ref(), field::CHECKSUM.start))
    }

    #[inline]
    pub fn key(&self) -> Option<u32> {
        self.has_key()
            .then(|| be32(self.buffer.as_ref(), self.key_offset()))
    }

    #[inline]
    pub fn sequence(&self) -> Option<u32> {
        self.has_sequence()
            .then(|| be32(self.buffer.as_ref(), self.sequence_offset()))
    }

    /// The encapsulated packet.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// RFC 2784 section 2.2: the one's-complement sum over header and payload (checksum field included) folds to
    /// 0xFFFF when the checksum is right. Returns `true` when no checksum is present (nothing to verify).
    pub fn verify_checksum(&self) -> bool {
        !self.has_checksum() || checksum::fold(checksum::sum(self.buffer.as_ref(), 0)) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_flags_version(&mut self, value: u16) {
        self.buffer.as_mut()[field::FLAGS_VERSION].copy_from_slice(&value.to_be_bytes());
    }

    #[inline]
    pub fn set_protocol(&mut self, value: u16) {
        self.buffer.as_mut()[field::PROTOCOL].copy_from_slice(&value.to_be_bytes());
    }

    /// Write the key. Panics if the K bit is clear (the field does not exist).
    pub fn set_key(&mut self, key: u32) {
        assert!(self.has_key(), "GRE: set_key without the K bit");
        let at = self.key_offset();
        self.buffer.as_mut()[at..at + 4].copy_from_slice(&key.to_be_bytes());
    }

    /// Write the sequence number. Panics if the S bit is clear.
    pub fn set_sequence(&mut self, sequence: u32) {
        assert!(self.has_sequence(), "GRE: set_sequence without the S bit");
        let at = self.sequence_offset();
        self.buffer.as_mut()[at..at + 4].copy_from_slice(&sequence.to_be_bytes());
    }

    /// Compute and write the checksum over the whole packet (no-op when the C bit is clear).
    pub fn fill_checksum(&mut self) {
        if self.has_checksum() {
            let b = self.buffer.as_mut();
            b[field::CHECKSUM].copy_from_slice(&[0, 0]);
            let sum = checksum::checksum(b);
            b[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
        }
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// Fill the checksum of a whole GRE packet (header written by [`GreRepr::emit`], payload in place).
/// A no-op when the C bit is clear; [`GreError::Truncated`] when the buffer cannot hold the checksum field.
pub fn fill_checksum(gre_packet: &mut [u8]) -> Result<(), GreError> {
    if gre_packet.len() < field::BASE_LEN {
        return Err(GreError::Truncated {
            needed: field::BASE_LEN,
            actual: gre_packet.len(),
        });
    }
    if be16(gre_packet, 0) & flags::CHECKSUM == 0 {
        return Ok(());
    }
    if gre_packet.len() < 8 {
        return Err(GreError::Truncated {
            needed: 8,
            actual: gre_packet.len(),
        });
    }
    Packet::new_unchecked(gre_packet).fill_checksum();
    Ok(())
}

/// A version-0 GRE header, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GreRepr {
    /// C bit. On parse the received value is in [`Packet::checksum`]; verify with [`Packet::verify_checksum`].
    pub checksum: bool,
    pub key: Option<u32>,
    pub sequence: Option<u32>,
    /// Protocol Type, an EtherType (see [`protocol`]).
    pub protocol: u16,
}

impl GreRepr {
    /// Parse a checked packet. Bits 6-12 are dropped (ignored on receipt), so `emit(parse(x))` equals `x` only
    /// when they are zero and Reserved1 is zero: the canonical form.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<GreRepr, GreError> {
        packet.check_len()?;
        Ok(GreRepr {
            checksum: packet.has_checksum(),
            key: packet.key(),
            sequence: packet.sequence(),
            protocol: packet.protocol(),
        })
    }

    /// Parse straight from bytes (the whole GRE packet).
    pub fn parse_bytes(bytes: &[u8]) -> Result<GreRepr, GreError> {
        GreRepr::parse(&Packet::new_checked(bytes)?)
    }

    #[inline]
    pub fn flags_version(&self) -> u16 {
        (if self.checksum { flags::CHECKSUM } else { 0 })
            | (if self.key.is_some() { flags::KEY } else { 0 })
            | (if self.sequence.is_some() {
                flags::SEQUENCE
            } else {
                0
            })
    }

    #[inline]
    pub fn header_len(&self) -> usize {
        header_len_for(self.flags_version())
    }

    /// Where the key field is (or would be), from the start of the GRE header.
    #[inline]
    pub fn key_offset(&self) -> usize {
        field::BASE_LEN + if self.checksum { 4 } else { 0 }
    }

    /// Where the sequence number field is (or would be), from the start of the GRE header.
    #[inline]
    pub fn sequence_offset(&self) -> usize {
        self.key_offset() + if self.key.is_some() { 4 } else { 0 }
    }

    /// Write the header into `buf[..header_len()]` with Checksum and Reserved1 zero; returns `header_len()`.
    /// When `checksum` is on, call [`fill_checksum`] on the whole packet once the payload is written.
    /// Panics if `buf` is shorter than `header_len()`.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.header_len();
        let buf = &mut buf[..len];
        buf[0..2].copy_from_slice(&self.flags_version().to_be_bytes());
        buf[2..4].copy_from_slice(&self.protocol.to_be_bytes());
        let mut at = field::BASE_LEN;
        if self.checksum {
            buf[at..at + 4].copy_from_slice(&[0, 0, 0, 0]);
            at += 4;
        }
        if let Some(key) = self.key {
            buf[at..at + 4].copy_from_slice(&key.to_be_bytes());
            at += 4;
        }
        if let Some(sequence) = self.sequence {
            buf[at..at + 4].copy_from_slice(&sequence.to_be_bytes());
        }
        len
    }
}

/// The key as an ICMP error's quote shows it (see [`QuotedHeader`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotedKey {
    /// The K bit is clear: the packet had no key.
    Absent,
    /// The K bit is set and the key is within the quote.
    Present(u32),
    /// The K bit is set but the quote ends before the key (RFC 792 promises only 8 bytes past the IP header:
    /// with a checksum the key is bytes 8..12).
    NotQuoted,
}

/// A GRE header as an ICMP error quotes it: the start of one of our own packets, possibly cut anywhere after
/// the base header. Only what the quote holds is read: the flags and the protocol type always, the key when
/// its four bytes are there. The receiver rules of [`Packet::check_len`] do not apply (the packet is ours, not a
/// peer's); a version other than 0 or the R/s/Recur bits are still refused, since we never send them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotedHeader {
    pub flags_version: u16,
    pub protocol: u16,
    pub key: QuotedKey,
}

impl QuotedHeader {
    /// Parse the quoted bytes from the start of the GRE header; `None` when the base header is not all there,
    /// the version is not 0 or a discard bit is set.
    pub fn parse(quote: &[u8]) -> Option<QuotedHeader> {
        let (base, _) = Header::split_prefix(quote)?;
        let flags_version = base.flags_version();
        if flags_version & flags::VERSION != 0 || flags_version & flags::DISCARD_MASK != 0 {
            return None;
        }
        let key = if flags_version & flags::KEY == 0 {
            QuotedKey::Absent
        } else {
            // RFC 2890 section 2: the key follows the checksum word when there is one.
            let at = field::BASE_LEN
                + if flags_version & flags::CHECKSUM != 0 {
                    4
                } else {
                    0
                };
            match quote.get(at..at + 4) {
                Some(k) => QuotedKey::Present(be32(k, 0)),
                None => QuotedKey::NotQuoted,
            }
        };
        Some(QuotedHeader {
            flags_version,
            protocol: base.protocol(),
            key,
        })
    }

    /// The C, K and S bits (what a sender chooses per tunnel).
    #[inline]
    pub fn optional_fields(&self) -> u16 {
        self.flags_version & (flags::CHECKSUM | flags::KEY | flags::SEQUENCE)
    }
}

/// Write the inner packet of a Cisco GRE keepalive into `buf[..20 + 4 + (key ? 4 : 0)]` and return its length:
/// an IPv4 header from `peer` to `us` (protocol GRE, TTL 255, DSCP CS6 as Cisco IOS sends it) and a GRE header
/// with protocol 0 and the tunnel's key. The caller sends it as the payload of the ordinary outer GRE header
/// (protocol IPv4) to `peer`, which routes it back as the keepalive reply. Panics if `buf` is shorter.
pub fn emit_cisco_keepalive_inner(
    peer: core::net::Ipv4Addr,
    us: core::net::Ipv4Addr,
    ident: u16,
    key: Option<u32>,
    buf: &mut [u8],
) -> usize {
    use super::ipv4::{protocol as ip_protocol, Ipv4Repr};
    let gre = GreRepr {
        checksum: false,
        key,
        sequence: None,
        protocol: protocol::KEEPALIVE,
    };
    let ip = Ipv4Repr {
        src_addr: peer,
        dst_addr: us,
        protocol: ip_protocol::GRE,
        payload_len: gre.header_len() as u16,
        ttl: 255,
        dscp_ecn: 0xC0,
        ident,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    };
    let at = ip.emit(buf);
    at + gre.emit(&mut buf[at..])
}

/// The Cisco MetaData shim at the start of a GRE payload with protocol 0x8909.
///
/// What the bytes of `various_gre.pcap` show (Cisco IOS 15.5, matching Wireshark's `dissect_cmd_gre`), 8 bytes:
///
/// ```text
///  0               1               2               3
///  +---------------+---------------+---------------+---------------+
///  |  Inner EtherType (0x0800)     | Version (1)   | Length (1)    |
///  +---------------+---------------+---------------+---------------+
///  | Option length/type (0x0001)   |  SGT (Security Group Tag)     |
///  +---------------+---------------+---------------+---------------+
///  e.g. 08 00 01 01 00 01 00 00, then the inner IPv4 packet.
/// ```
///
/// Over Ethernet the same CMD header puts the EtherType last; inside GRE it comes first. Option type 1 is the
/// SGT (low 13 bits of the option word). Only this observed form (version 1, length 1, one SGT option) is
/// accepted; anything else is [`Error::Malformed`] rather than a guess at the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CiscoMetaData {
    /// Bytes to skip to reach the inner packet.
    pub shim_len: usize,
    pub sgt: u16,
    pub inner_ethertype: u16,
}

impl CiscoMetaData {
    pub const LEN: usize = 8;
    const OPTION_TYPE_SGT: u16 = 0x0001;

    pub fn parse(payload: &[u8]) -> Result<CiscoMetaData, Error> {
        need(Layer::CiscoMetaData, Self::LEN, payload.len())?;
        if payload[2] != 1 {
            return Err(Error::Malformed {
                layer: Layer::CiscoMetaData,
                reason: "version is not 1",
            });
        }
        if payload[3] != 1 {
            return Err(Error::Malformed {
                layer: Layer::CiscoMetaData,
                reason: "length is not 1",
            });
        }
        if be16(payload, 4) & 0x1FFF != Self::OPTION_TYPE_SGT {
            return Err(Error::Malformed {
                layer: Layer::CiscoMetaData,
                reason: "option is not an SGT",
            });
        }
        Ok(CiscoMetaData {
            shim_len: Self::LEN,
            sgt: be16(payload, 6),
            inner_ethertype: be16(payload, 0),
        })
    }

    /// Write the shim into `buf[..8]`. Panics if `buf` is shorter.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let buf = &mut buf[..Self::LEN];
        buf[0..2].copy_from_slice(&self.inner_ethertype.to_be_bytes());
        buf[2] = 1;
        buf[3] = 1;
        buf[4..6].copy_from_slice(&Self::OPTION_TYPE_SGT.to_be_bytes());
        buf[6..8].copy_from_slice(&self.sgt.to_be_bytes());
        Self::LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// various_gre.pcap frame 12: Cisco keepalive reply, key 0x28, protocol 0x0000, no payload.
    const KEEPALIVE_KEY_28: [u8; 8] = [0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28];

    /// All three optional fields, IPv4 payload "E" + 3 bytes; checksum computed by hand below.
    fn full_header_packet() -> Vec<u8> {
        let mut p = vec![
            0xB0, 0x00, 0x08, 0x00, // C K S, IPv4
            0x00, 0x00, 0x00, 0x00, // checksum, reserved1
            0x01, 0x02, 0x03, 0x04, // key
            0x00, 0x00, 0x00, 0x07, // sequence
            0x45, 0x00, 0x00, 0x14, // payload
        ];
        fill_checksum(&mut p).unwrap();
        p
    }

    #[test]
    fn parses_the_keepalive_reply_fixture() {
        let packet = Packet::new_checked(&KEEPALIVE_KEY_28[..]).unwrap();
        assert_eq!(packet.key(), Some(0x28));
        assert_eq!(packet.sequence(), None);
        assert_eq!(packet.checksum(), None);
        assert_eq!(packet.protocol(), protocol::KEEPALIVE);
        assert_eq!(packet.header_len(), 8);
        assert!(packet.payload().is_empty());
        assert!(packet.verify_checksum());
        let repr = GreRepr::parse(&packet).unwrap();
        assert_eq!(
            repr,
            GreRepr {
                checksum: false,
                key: Some(0x28),
                sequence: None,
                protocol: 0
            }
        );
        let mut out = [0u8; 8];
        assert_eq!(repr.emit(&mut out), 8);
        assert_eq!(out, KEEPALIVE_KEY_28);
    }

    #[test]
    fn full_header_round_trips_and_checksum_verifies() {
        let p = full_header_packet();
        // Hand-computed: words b000 0800 0000 0000 0102 0304 0000 0007 4500 0014.
        let sum: u32 = 0xb000 + 0x0800 + 0x0102 + 0x0304 + 0x0007 + 0x4500 + 0x0014;
        let expected = !checksum::fold(sum);
        assert_eq!(u16::from_be_bytes([p[4], p[5]]), expected);
        let packet = Packet::new_checked(&p[..]).unwrap();
        assert!(packet.verify_checksum());
        assert_eq!(packet.checksum(), Some(expected));
        assert_eq!(packet.key(), Some(0x0102_0304));
        assert_eq!(packet.sequence(), Some(7));
        assert_eq!(packet.payload(), &[0x45, 0x00, 0x00, 0x14]);
        let repr = GreRepr::parse(&packet).unwrap();
        assert_eq!(
            repr,
            GreRepr {
                checksum: true,
                key: Some(0x0102_0304),
                sequence: Some(7),
                protocol: 0x0800
            }
        );
        let mut out = vec![0u8; 16];
        repr.emit(&mut out);
        out.extend_from_slice(&p[16..]);
        fill_checksum(&mut out).unwrap();
        assert_eq!(out, p);
    }

    #[test]
    fn corrupted_payload_fails_the_checksum() {
        let mut p = full_header_packet();
        p[19] ^= 0x01;
        assert!(!Packet::new_checked(&p[..]).unwrap().verify_checksum());
    }

    #[test]
    fn odd_length_payload_checksum() {
        let repr = GreRepr {
            checksum: true,
            key: None,
            sequence: None,
            protocol: 0x6558,
        };
        let mut p = vec![0u8; 8 + 3];
        repr.emit(&mut p);
        p[8..].copy_from_slice(&[0xAB, 0xCD, 0xEF]);
        fill_checksum(&mut p).unwrap();
        assert!(Packet::new_checked(&p[..]).unwrap().verify_checksum());
    }

    #[test]
    fn truncation_at_every_boundary() {
        let p = full_header_packet();
        for len in 0..16 {
            let needed = if len < 4 { 4 } else { 16 };
            assert_eq!(
                Packet::new_checked(&p[..len]).unwrap_err(),
                GreError::Truncated {
                    needed,
                    actual: len
                },
                "len {len}"
            );
        }
        assert!(Packet::new_checked(&p[..16]).is_ok());
        // Each optional field alone: the boundary is 4 + 4.
        for first in [0x80u8, 0x20, 0x10] {
            let mut b = [0u8; 8];
            b[0] = first;
            for len in 4..8 {
                assert_eq!(
                    Packet::new_checked(&b[..len]).unwrap_err(),
                    GreError::Truncated {
                        needed: 8,
                        actual: len
                    }
                );
            }
            assert!(Packet::new_checked(&b[..]).is_ok());
        }
    }

    #[test]
    fn discard_bits_each_rejected_and_ignored_bits_accepted() {
        for bit in [flags::ROUTING, flags::STRICT_SOURCE_ROUTE, 0x0400] {
            let b = [(bit >> 8) as u8, bit as u8, 0x08, 0x00];
            assert_eq!(
                Packet::new_checked(&b[..]).unwrap_err(),
                GreError::RoutingOrRecursion { flags: bit }
            );
        }
        // Bits 6-12, one at a time: RFC 2784 section 2.3 says ignore them.
        for shift in 3..=9 {
            let bit = 1u16 << shift;
            assert_eq!(bit & flags::IGNORED_MASK, bit);
            let b = [(bit >> 8) as u8, bit as u8, 0x08, 0x00];
            let repr = GreRepr::parse_bytes(&b).unwrap();
            assert_eq!(repr.flags_version(), 0, "ignored bits are not re-emitted");
        }
        assert_eq!(flags::DISCARD_MASK, 0x4C00);
        assert_eq!(
            flags::DISCARD_MASK | flags::IGNORED_MASK | 0xB000 | flags::VERSION,
            0xFFFF
        );
    }

    #[test]
    fn versions() {
        for version in 2..=7u8 {
            let b = [0, version, 0x08, 0x00];
            assert_eq!(
                Packet::new_checked(&b[..]).unwrap_err(),
                GreError::UnsupportedVersion { version }
            );
        }
    }

    #[test]
    fn pptp_is_reported_not_decapsulated() {
        // pptp.pcap frame 16: flags 0x3001 (K S, version 1), PPP, payload length 48, call id 0, sequence 0.
        let b = [
            0x30, 0x01, 0x88, 0x0b, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x03,
        ];
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            GreError::Pptp(PptpHeader {
                payload_len: 48,
                call_id: 0,
                sequence: Some(0),
                ack: None
            })
        );
        // With the acknowledgment bit and no sequence.
        let b = [
            0x20, 0x81, 0x88, 0x0b, 0x00, 0x10, 0x12, 0x34, 0x00, 0x00, 0x00, 0x09,
        ];
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            GreError::Pptp(PptpHeader {
                payload_len: 16,
                call_id: 0x1234,
                sequence: None,
                ack: Some(9)
            })
        );
        for len in 4..12 {
            assert_eq!(
                Packet::new_checked(&b[..len]).unwrap_err(),
                GreError::Truncated {
                    needed: 12,
                    actual: len
                }
            );
        }
        assert!(Error::from(GreError::Pptp(PptpHeader {
            payload_len: 1,
            call_id: 2,
            sequence: None,
            ack: None
        }))
        .to_string()
        .contains("call id 2"));
    }

    #[test]
    fn eoip_is_reported_apart_from_pptp() {
        // RouterOS EoIP, tunnel id 100 (little-endian 0x64 0x00), a 60-byte Ethernet frame.
        let b = [0x20, 0x01, 0x64, 0x00, 0x00, 0x3c, 0x64, 0x00, 0xff, 0xff];
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            GreError::Eoip(EoipHeader {
                payload_len: 60,
                tunnel_id: 100
            })
        );
        for len in 4..8 {
            assert_eq!(
                Packet::new_checked(&b[..len]).unwrap_err(),
                GreError::Truncated {
                    needed: 8,
                    actual: len
                }
            );
        }
        // Version 0 with the same protocol type is not EoIP (an unknown protocol for the caller to count).
        let v0 = [0x20, 0x00, 0x64, 0x00, 0, 0, 0, 1];
        assert_eq!(
            Packet::new_checked(&v0[..]).unwrap().protocol(),
            protocol::EOIP
        );
        assert_eq!(protocol::name(protocol::EOIP), Some("EoIP"));
        assert!(Error::from(GreError::Eoip(EoipHeader {
            payload_len: 1,
            tunnel_id: 7
        }))
        .to_string()
        .contains("tunnel id 7"));
    }

    #[test]
    fn setters_write_the_optional_fields() {
        let repr = GreRepr {
            checksum: true,
            key: Some(1),
            sequence: Some(2),
            protocol: protocol::TEB,
        };
        let mut b = [0u8; 16];
        repr.emit(&mut b);
        let mut packet = Packet::new_checked(&mut b[..]).unwrap();
        packet.set_key(0xdead_beef);
        packet.set_sequence(0x0102_0304);
        packet.set_protocol(protocol::IPV6);
        packet.fill_checksum();
        assert!(packet.verify_checksum());
        assert_eq!(packet.key(), Some(0xdead_beef));
        assert_eq!(packet.sequence(), Some(0x0102_0304));
        assert_eq!(packet.protocol(), protocol::IPV6);
    }

    #[test]
    fn fill_checksum_without_c_bit_is_a_no_op_and_short_buffers_are_errors() {
        let mut b = KEEPALIVE_KEY_28;
        fill_checksum(&mut b).unwrap();
        assert_eq!(b, KEEPALIVE_KEY_28);
        assert_eq!(
            fill_checksum(&mut [0x80, 0, 0, 0, 0]),
            Err(GreError::Truncated {
                needed: 8,
                actual: 5
            })
        );
        assert_eq!(
            fill_checksum(&mut [0x80]),
            Err(GreError::Truncated {
                needed: 4,
                actual: 1
            })
        );
    }

    #[test]
    fn serial_number_arithmetic_around_the_wrap() {
        assert!(
            seq_is_later(0, RECEIVER_INITIAL_SEQUENCE),
            "first packet 0 is later than the initial state"
        );
        assert!(seq_is_later(1, 0));
        assert!(!seq_is_later(0, 0), "a duplicate is not later");
        assert!(!seq_is_later(0, 1));
        assert!(seq_is_later(0, u32::MAX));
        assert!(seq_is_later(5, u32::MAX - 5));
        assert!(!seq_is_later(u32::MAX - 5, 5));
        assert!(seq_is_later(0x7FFF_FFFF, 0), "distance 2^31 - 1 is later");
        assert!(
            !seq_is_later(0x8000_0000, 0),
            "distance 2^31 is undefined, not later"
        );
        assert!(!seq_is_later(0x8000_0001, 0));
        assert!(seq_is_later(0x8000_0000, 1));
    }

    #[test]
    fn cisco_metadata_shim_from_the_capture() {
        // various_gre.pcap frame 25, first 8 payload bytes after the GRE header, then IPv4.
        let b = [0x08, 0x00, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0x45];
        let cmd = CiscoMetaData::parse(&b).unwrap();
        assert_eq!(
            cmd,
            CiscoMetaData {
                shim_len: 8,
                sgt: 0,
                inner_ethertype: 0x0800
            }
        );
        let mut out = [0u8; 8];
        let sgt = CiscoMetaData { sgt: 0x1234, ..cmd };
        sgt.emit(&mut out);
        assert_eq!(CiscoMetaData::parse(&out).unwrap(), sgt);
        for len in 0..8 {
            assert_eq!(
                CiscoMetaData::parse(&b[..len]).unwrap_err(),
                Error::Truncated {
                    layer: Layer::CiscoMetaData,
                    needed: 8,
                    actual: len
                }
            );
        }
        let mut bad = b;
        bad[2] = 2;
        assert!(matches!(
            CiscoMetaData::parse(&bad),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn cisco_keepalive_inner_packet_matches_the_capture() {
        // various_gre.pcap frame 11, after the metadata shim: 10.172.64.6 -> 10.172.64.7, GRE key 0x28, proto 0.
        let captured = [
            0x45, 0xc0, 0x00, 0x1c, 0x00, 0xa3, 0x00, 0x00, 0xff, 0x2f, 0x24, 0xeb, 0x0a, 0xac,
            0x40, 0x06, 0x0a, 0xac, 0x40, 0x07, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28,
        ];
        let mut out = [0u8; 28];
        let len = emit_cisco_keepalive_inner(
            core::net::Ipv4Addr::new(10, 172, 64, 6),
            core::net::Ipv4Addr::new(10, 172, 64, 7),
            0xa3,
            Some(0x28),
            &mut out,
        );
        assert_eq!(len, 28);
        assert_eq!(out, captured);
    }

    fn any_repr() -> impl Strategy<Value = GreRepr> {
        (
            any::<bool>(),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<u16>(),
        )
            .prop_map(|(checksum, key, sequence, protocol)| GreRepr {
                checksum,
                key,
                sequence,
                protocol,
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = (packet.key(), packet.sequence(), packet.checksum(), packet.payload(), packet.verify_checksum());
                GreRepr::parse(&packet).unwrap();
            }
            let _ = CiscoMetaData::parse(&bytes);
        }

        #[test]
        fn emit_parse_round_trip(repr in any_repr(), payload in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut bytes = vec![0u8; repr.header_len() + payload.len()];
            let len = repr.emit(&mut bytes);
            bytes[len..].copy_from_slice(&payload);
            fill_checksum(&mut bytes).unwrap();
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert!(packet.verify_checksum());
            prop_assert_eq!(packet.payload(), &payload[..]);
            let parsed = GreRepr::parse(&packet).unwrap();
            prop_assert_eq!(parsed, repr);
            let mut again = vec![0u8; len];
            parsed.emit(&mut again);
            prop_assert_eq!(&again[..], &{
                let mut header = bytes[..len].to_vec();
                if repr.checksum { header[4] = 0; header[5] = 0; }
                header
            }[..]);
        }

        #[test]
        fn seq_is_later_is_antisymmetric(a in any::<u32>(), b in any::<u32>()) {
            prop_assert!(!(seq_is_later(a, b) && seq_is_later(b, a)));
            if a.wrapping_sub(b) != 0x8000_0000 && a != b {
                prop_assert!(seq_is_later(a, b) || seq_is_later(b, a));
            }
        }
    }
}

#[cfg(test)]
mod header_tests {
    use super::*;

    /// C and K set, version 0, IPv6; checksum 0x1234, Reserved1 0.
    const HDR: [u8; 8] = [0xa0, 0x00, 0x86, 0xdd, 0x12, 0x34, 0x00, 0x00];

    #[test]
    fn header_accessors_read_the_fixture() {
        let base: &[u8; 4] = HDR[..4].try_into().unwrap();
        let h = Header::new(base);
        assert_eq!(h.flags_version(), flags::CHECKSUM | flags::KEY);
        assert_eq!(h.protocol(), protocol::IPV6);
        let mut b = HDR;
        let c = ChecksumHeaderMut::new(&mut b);
        assert_eq!(c.flags_version(), 0xa000);
        assert_eq!(c.protocol(), protocol::IPV6);
        assert_eq!(c.checksum(), 0x1234);
    }

    #[test]
    fn header_from_prefix_needs_the_base_header() {
        assert!(Header::from_prefix(&HDR[..3]).is_none());
        let (h, rest) = Header::split_prefix(&HDR).unwrap();
        assert_eq!((h.protocol(), rest), (protocol::IPV6, &HDR[4..]));
        assert_eq!(
            Header::try_from(&HDR[..1]),
            Err(GreError::Truncated {
                needed: 4,
                actual: 1
            })
        );
        let mut b = HDR;
        assert!(HeaderMut::from_prefix(&mut b[..3]).is_none());
        assert!(HeaderMut::try_from(&mut b[..3]).is_err());
        assert!(ChecksumHeaderMut::from_prefix(&mut b[..7]).is_none());
        assert!(ChecksumHeaderMut::from_prefix(&mut b).is_some());
    }

    /// What an ICMP error quotes of our packets: the key when the quote reaches it, never past the quote.
    #[test]
    fn quoted_header_reads_only_what_the_quote_holds() {
        // K only: the 8 bytes RFC 792 promises hold the key.
        let k = [0x20, 0x00, 0x08, 0x00, 0x00, 0x00, 0x03, 0xe9];
        let q = QuotedHeader::parse(&k).unwrap();
        assert_eq!(q.key, QuotedKey::Present(1001));
        assert_eq!(q.protocol, protocol::IPV4);
        assert_eq!(q.optional_fields(), flags::KEY);
        // C and K: the key is bytes 8..12, cut off by an 8-byte quote, read from a 12-byte one.
        let ck = [0xa0, 0x00, 0x86, 0xdd, 0x12, 0x34, 0, 0, 0, 0, 0x03, 0xe9];
        assert_eq!(
            QuotedHeader::parse(&ck[..8]).unwrap().key,
            QuotedKey::NotQuoted
        );
        assert_eq!(
            QuotedHeader::parse(&ck[..11]).unwrap().key,
            QuotedKey::NotQuoted
        );
        assert_eq!(
            QuotedHeader::parse(&ck).unwrap().key,
            QuotedKey::Present(1001)
        );
        // No K bit: no key, however long the quote.
        let plain = [0x00, 0x00, 0x08, 0x00, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(QuotedHeader::parse(&plain).unwrap().key, QuotedKey::Absent);
        // The base header must be there; PPTP (version 1) and routing bits are never ours.
        assert!(QuotedHeader::parse(&k[..3]).is_none());
        assert!(QuotedHeader::parse(&[0x30, 0x01, 0x88, 0x0b]).is_none());
        assert!(QuotedHeader::parse(&[0x40, 0x00, 0x08, 0x00]).is_none());
    }

    #[test]
    fn header_setters_write_their_field_only() {
        let mut b = [0u8; 8];
        {
            let mut h = HeaderMut::from_prefix(&mut b).unwrap();
            h.set_flags_version(flags::CHECKSUM | flags::KEY);
            h.set_protocol(protocol::IPV6);
            assert_eq!(h.protocol(), protocol::IPV6);
        }
        ChecksumHeaderMut::from_prefix(&mut b)
            .unwrap()
            .set_checksum(0x1234);
        assert_eq!(b, HDR);
        // The checksum the view writes is the one `Packet` reads.
        assert_eq!(Packet::new_unchecked(&b[..]).checksum(), Some(0x1234));
    }
}
