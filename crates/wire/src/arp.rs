//! ARP (RFC 826) for Ethernet hardware and IPv4 protocol addresses: the only combination greway resolves.
//!
//! Contract: [`Packet::new_checked`] guarantees the 28 bytes of an Ethernet/IPv4 ARP message; [`ArpRepr::parse`]
//! additionally requires hardware type 1, protocol type 0x0800, lengths 6 and 4, and operation request (1) or
//! reply (2). Bytes after the 28 (Ethernet padding) are ignored.

use core::net::Ipv4Addr;

use super::ethernet::{ethertype, MacAddr};
use super::{need, Error, Layer};

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP message.
pub const PACKET_LEN: usize = 28;
const HTYPE_ETHERNET: u16 = 1;

/// ARP operation codes (RFC 826).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Request,
    Reply,
}

impl Operation {
    pub const fn code(self) -> u16 {
        match self {
            Operation::Request => 1,
            Operation::Reply => 2,
        }
    }
}

use crate::be16;

fn ipv4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// A view over an ARP message.
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
        need(Layer::Arp, PACKET_LEN, self.buffer.as_ref().len())
    }

    pub fn hardware_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::HTYPE.start)
    }

    pub fn protocol_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PTYPE.start)
    }

    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    pub fn operation(&self) -> u16 {
        be16(self.buffer.as_ref(), field::OPER.start)
    }

    pub fn sender_hardware_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SHA])
    }

    pub fn sender_protocol_addr(&self) -> Ipv4Addr {
        ipv4(&self.buffer.as_ref()[field::SPA])
    }

    pub fn target_hardware_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::THA])
    }

    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        ipv4(&self.buffer.as_ref()[field::TPA])
    }
}

/// An Ethernet/IPv4 ARP message, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    pub operation: Operation,
    pub sender_hardware_addr: MacAddr,
    pub sender_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: MacAddr,
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<ArpRepr, Error> {
        packet.check_len()?;
        let malformed = |reason| {
            Err(Error::Malformed {
                layer: Layer::Arp,
                reason,
            })
        };
        if packet.hardware_type() != HTYPE_ETHERNET || packet.hardware_len() != 6 {
            return malformed("hardware is not Ethernet");
        }
        if packet.protocol_type() != ethertype::IPV4 || packet.protocol_len() != 4 {
            return malformed("protocol is not IPv4");
        }
        let operation = match packet.operation() {
            1 => Operation::Request,
            2 => Operation::Reply,
            _ => return malformed("operation is neither request nor reply"),
        };
        Ok(ArpRepr {
            operation,
            sender_hardware_addr: packet.sender_hardware_addr(),
            sender_protocol_addr: packet.sender_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    pub fn parse_bytes(bytes: &[u8]) -> Result<ArpRepr, Error> {
        ArpRepr::parse(&Packet::new_checked(bytes)?)
    }

    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// A request for `target` from `sender_mac`/`sender_ip`; the target hardware address is left zero (RFC 826:
    /// the requester does not know it).
    pub fn request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            operation: Operation::Request,
            sender_hardware_addr: sender_mac,
            sender_protocol_addr: sender_ip,
            target_hardware_addr: MacAddr::ZERO,
            target_protocol_addr: target,
        }
    }

    /// The reply to this request, from `our_mac` (RFC 826 "swap the sender and target fields").
    pub fn reply_from(&self, our_mac: MacAddr) -> ArpRepr {
        ArpRepr {
            operation: Operation::Reply,
            sender_hardware_addr: our_mac,
            sender_protocol_addr: self.target_protocol_addr,
            target_hardware_addr: self.sender_hardware_addr,
            target_protocol_addr: self.sender_protocol_addr,
        }
    }

    /// Write the 28-byte message; returns 28. Panics if `buf` is shorter.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let buf = &mut buf[..PACKET_LEN];
        buf[field::HTYPE].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        buf[field::PTYPE].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        buf[field::HLEN] = 6;
        buf[field::PLEN] = 4;
        buf[field::OPER].copy_from_slice(&self.operation.code().to_be_bytes());
        buf[field::SHA].copy_from_slice(&self.sender_hardware_addr.0);
        buf[field::SPA].copy_from_slice(&self.sender_protocol_addr.octets());
        buf[field::THA].copy_from_slice(&self.target_hardware_addr.0);
        buf[field::TPA].copy_from_slice(&self.target_protocol_addr.octets());
        PACKET_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Who has 192.0.2.1? Tell 192.0.2.2 (02:00:00:00:00:02).
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 192, 0,
        2, 2, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1,
    ];

    fn request() -> ArpRepr {
        ArpRepr {
            operation: Operation::Request,
            sender_hardware_addr: MacAddr([2, 0, 0, 0, 0, 2]),
            sender_protocol_addr: Ipv4Addr::new(192, 0, 2, 2),
            target_hardware_addr: MacAddr::ZERO,
            target_protocol_addr: Ipv4Addr::new(192, 0, 2, 1),
        }
    }

    #[test]
    fn request_fixture_round_trip() {
        assert_eq!(ArpRepr::parse_bytes(&REQUEST).unwrap(), request());
        assert_eq!(
            ArpRepr::request(
                MacAddr([2, 0, 0, 0, 0, 2]),
                Ipv4Addr::new(192, 0, 2, 2),
                Ipv4Addr::new(192, 0, 2, 1)
            ),
            request()
        );
        let mut out = [0u8; 28];
        assert_eq!(request().emit(&mut out), 28);
        assert_eq!(out, REQUEST);
    }

    #[test]
    fn reply_swaps_addresses() {
        let ours = MacAddr([2, 0, 0, 0, 0, 1]);
        let reply = request().reply_from(ours);
        let mut out = [0u8; 28];
        reply.emit(&mut out);
        assert_eq!(&out[6..8], &[0, 2]);
        let parsed = ArpRepr::parse_bytes(&out).unwrap();
        assert_eq!(parsed.sender_hardware_addr, ours);
        assert_eq!(parsed.sender_protocol_addr, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(parsed.target_hardware_addr, MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(parsed.target_protocol_addr, Ipv4Addr::new(192, 0, 2, 2));
    }

    #[test]
    fn truncation_at_every_boundary() {
        for len in 0..28 {
            assert_eq!(
                ArpRepr::parse_bytes(&REQUEST[..len]).unwrap_err(),
                Error::Truncated {
                    layer: Layer::Arp,
                    needed: 28,
                    actual: len
                }
            );
        }
    }

    #[test]
    fn rejects_other_hardware_protocols_and_operations() {
        for (at, value) in [(1, 6u8), (3, 0x06), (4, 8), (5, 16), (7, 3)] {
            let mut b = REQUEST;
            b[at] = value;
            assert!(matches!(
                ArpRepr::parse_bytes(&b),
                Err(Error::Malformed {
                    layer: Layer::Arp,
                    ..
                })
            ));
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(repr) = ArpRepr::parse_bytes(&bytes) {
                let mut out = [0u8; 28];
                repr.emit(&mut out);
                prop_assert_eq!(&out[..], &bytes[..28]);
            }
        }

        #[test]
        fn emit_parse_round_trip(sha in any::<[u8; 6]>(), spa in any::<[u8; 4]>(), tha in any::<[u8; 6]>(), tpa in any::<[u8; 4]>(), reply in any::<bool>()) {
            let repr = ArpRepr {
                operation: if reply { Operation::Reply } else { Operation::Request },
                sender_hardware_addr: MacAddr(sha),
                sender_protocol_addr: spa.into(),
                target_hardware_addr: MacAddr(tha),
                target_protocol_addr: tpa.into(),
            };
            let mut out = [0u8; 28];
            repr.emit(&mut out);
            prop_assert_eq!(ArpRepr::parse_bytes(&out).unwrap(), repr);
        }
    }
}
