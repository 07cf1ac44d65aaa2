//! ERSPAN (Cisco Encapsulated Remote SPAN, draft-foschiano-erspan-03), the headers that follow GRE when a switch
//! mirrors frames to a remote probe. Field layouts as in Linux's `include/net/erspan.h`, Wireshark's
//! `packet-erspan.c` and tcpdump's `print-gre.c`:
//!
//! - **Type I**: GRE protocol [`gre::protocol::ERSPAN`](crate::gre::protocol::ERSPAN) without a GRE sequence
//!   number. No ERSPAN header: the mirrored Ethernet frame follows GRE directly. (Linux's `erspan_rcv` and
//!   Wireshark tell it from type II by the GRE S bit alone.)
//! - **Type II** (version 1): protocol [`ERSPAN`](crate::gre::protocol::ERSPAN) with a GRE sequence number and
//!   the 8-byte header [`TypeIIRepr`]:
//!   `Ver(4) VLAN(12) | COS(3) En(2) T(1) Session(10) | Reserved(12) Index(20)`.
//! - **Type III** (version 2): protocol [`ERSPAN3`](crate::gre::protocol::ERSPAN3) and the 12-byte header
//!   [`TypeIIIRepr`]:
//!   `Ver(4) VLAN(12) | COS(3) BSO(2) T(1) Session(10) | Timestamp(32) | SGT(16) | P(1) FT(5) HWID(6) D(1)
//!   Gra(2) O(1)`, followed by an 8-byte platform-specific subheader when O is set.
use crate::{be16, need, Error, Layer};

/// Version field of a type II header.
pub const VERSION_TYPE_II: u8 = 1;
/// Version field of a type III header.
pub const VERSION_TYPE_III: u8 = 2;
/// Largest session ID (10 bits).
pub const MAX_SESSION: u16 = 0x3ff;
/// Largest type II index (20 bits).
pub const MAX_INDEX: u32 = 0xf_ffff;
/// Largest type III hardware ID (6 bits).
pub const MAX_HWID: u8 = 0x3f;

/// Length of the type II header.
pub const TYPE_II_LEN: usize = 8;
/// Length of the type III header without the platform-specific subheader.
pub const TYPE_III_LEN: usize = 12;
/// Length of the type III platform-specific subheader (present when O is set).
pub const PLATFORM_SUBHEADER_LEN: usize = 8;

mod field {
    /// Version (high 4 bits) and VLAN (low 12) of both types.
    pub const VER_VLAN: usize = 0;
    /// COS (3), En/BSO (2), T (1), session (10).
    pub const COS_SESSION: usize = 2;
    /// Type II: reserved (12) and index (20).
    pub const INDEX: usize = 4;
    /// Type III: timestamp.
    pub const TIMESTAMP: usize = 4;
    /// Type III: security group tag.
    pub const SGT: usize = 8;
    /// Type III: P (1), FT (5), HWID (6), D (1), Gra (2), O (1).
    pub const FLAGS: usize = 10;
}

fn malformed(reason: &'static str) -> Error {
    Error::Malformed {
        layer: Layer::Erspan,
        reason,
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The version field of an ERSPAN type II or III header at the start of `b` (None when `b` is empty).
pub fn version(b: &[u8]) -> Option<u8> {
    b.first().map(|v| v >> 4)
}

/// The common first word and session word of types II and III.
fn word0(version: u8, vlan: u16) -> u16 {
    u16::from(version) << 12 | (vlan & 0x0fff)
}
fn word1(cos: u8, en: u8, truncated: bool, session: u16) -> u16 {
    u16::from(cos & 7) << 13
        | u16::from(en & 3) << 11
        | u16::from(truncated) << 10
        | (session & MAX_SESSION)
}

/// An ERSPAN type II header (version 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeIIRepr {
    /// The original VLAN of the mirrored frame (12 bits).
    pub vlan: u16,
    /// Class of service (3 bits).
    pub cos: u8,
    /// Trunk encapsulation type of the original frame (2 bits: 0 untagged, 1 ISL, 2 802.1Q, 3 VLAN preserved).
    pub en: u8,
    /// The mirrored frame was truncated.
    pub truncated: bool,
    /// Session ID (10 bits).
    pub session: u16,
    /// Port index (20 bits).
    pub index: u32,
}

impl TypeIIRepr {
    /// Parse the header at the start of `b`; the mirrored frame follows at [`TYPE_II_LEN`].
    pub fn parse(b: &[u8]) -> Result<TypeIIRepr, Error> {
        need(Layer::Erspan, TYPE_II_LEN, b.len())?;
        let w0 = be16(b, field::VER_VLAN);
        if (w0 >> 12) as u8 != VERSION_TYPE_II {
            return Err(malformed("type II version is not 1"));
        }
        let w1 = be16(b, field::COS_SESSION);
        Ok(TypeIIRepr {
            vlan: w0 & 0x0fff,
            cos: (w1 >> 13) as u8,
            en: (w1 >> 11) as u8 & 3,
            truncated: w1 & 0x0400 != 0,
            session: w1 & MAX_SESSION,
            index: be32(b, field::INDEX) & MAX_INDEX,
        })
    }

    /// Write the header into `buf[..8]` (fields are masked to their widths). Panics if `buf` is shorter.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let buf = &mut buf[..TYPE_II_LEN];
        buf[0..2].copy_from_slice(&word0(VERSION_TYPE_II, self.vlan).to_be_bytes());
        buf[2..4]
            .copy_from_slice(&word1(self.cos, self.en, self.truncated, self.session).to_be_bytes());
        buf[4..8].copy_from_slice(&(self.index & MAX_INDEX).to_be_bytes());
        TYPE_II_LEN
    }
}

/// An ERSPAN type III header (version 2), with its optional platform-specific subheader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeIIIRepr {
    pub vlan: u16,
    pub cos: u8,
    /// Bad/short/oversized frame indication (2 bits).
    pub bso: u8,
    pub truncated: bool,
    pub session: u16,
    /// Timestamp in units of the granularity `gra`.
    pub timestamp: u32,
    /// Security group tag.
    pub sgt: u16,
    /// P (1 bit): set by the sender for a PDU frame; carried as is.
    pub p: bool,
    /// Frame type (5 bits): 0 Ethernet, 2 IP.
    pub ft: u8,
    /// Hardware ID (6 bits).
    pub hwid: u8,
    /// Direction: false ingress, true egress.
    pub d: bool,
    /// Timestamp granularity (2 bits).
    pub gra: u8,
    /// The platform-specific subheader (present when O is set).
    pub platform: Option<[u8; PLATFORM_SUBHEADER_LEN]>,
}

impl TypeIIIRepr {
    /// Frame type of a mirrored Ethernet frame.
    pub const FT_ETHERNET: u8 = 0;

    /// Bytes from the start of the header to the mirrored frame.
    pub fn header_len(&self) -> usize {
        TYPE_III_LEN + self.platform.map_or(0, |_| PLATFORM_SUBHEADER_LEN)
    }

    /// Parse the header (and the subheader when O is set) at the start of `b`.
    pub fn parse(b: &[u8]) -> Result<TypeIIIRepr, Error> {
        need(Layer::Erspan, TYPE_III_LEN, b.len())?;
        let w0 = be16(b, field::VER_VLAN);
        if (w0 >> 12) as u8 != VERSION_TYPE_III {
            return Err(malformed("type III version is not 2"));
        }
        let w1 = be16(b, field::COS_SESSION);
        let fl = be16(b, field::FLAGS);
        let platform = if fl & 1 != 0 {
            need(
                Layer::Erspan,
                TYPE_III_LEN + PLATFORM_SUBHEADER_LEN,
                b.len(),
            )?;
            let mut p = [0u8; PLATFORM_SUBHEADER_LEN];
            p.copy_from_slice(&b[TYPE_III_LEN..TYPE_III_LEN + PLATFORM_SUBHEADER_LEN]);
            Some(p)
        } else {
            None
        };
        Ok(TypeIIIRepr {
            vlan: w0 & 0x0fff,
            cos: (w1 >> 13) as u8,
            bso: (w1 >> 11) as u8 & 3,
            truncated: w1 & 0x0400 != 0,
            session: w1 & MAX_SESSION,
            timestamp: be32(b, field::TIMESTAMP),
            sgt: be16(b, field::SGT),
            p: fl & 0x8000 != 0,
            ft: (fl >> 10) as u8 & 0x1f,
            hwid: (fl >> 4) as u8 & MAX_HWID,
            d: fl & 0x0008 != 0,
            gra: (fl >> 1) as u8 & 3,
            platform,
        })
    }

    /// Write the header (and the subheader, when present) into `buf[..header_len()]`. Panics if `buf` is
    /// shorter.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.header_len();
        let buf = &mut buf[..len];
        buf[0..2].copy_from_slice(&word0(VERSION_TYPE_III, self.vlan).to_be_bytes());
        buf[2..4].copy_from_slice(
            &word1(self.cos, self.bso, self.truncated, self.session).to_be_bytes(),
        );
        buf[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        buf[8..10].copy_from_slice(&self.sgt.to_be_bytes());
        let fl = u16::from(self.p) << 15
            | u16::from(self.ft & 0x1f) << 10
            | u16::from(self.hwid & MAX_HWID) << 4
            | u16::from(self.d) << 3
            | u16::from(self.gra & 3) << 1
            | u16::from(self.platform.is_some());
        buf[10..12].copy_from_slice(&fl.to_be_bytes());
        if let Some(p) = self.platform {
            buf[TYPE_III_LEN..].copy_from_slice(&p);
        }
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erspan-type-ii-1.pcap frame 1 (tcpdump: "erspan type2 session 666 cos 6 index 32760"), the 8 bytes after
    /// GRE.
    const II_666: [u8; 8] = [0x10, 0x00, 0xc2, 0x9a, 0x00, 0x00, 0x7f, 0xf8];

    #[test]
    fn type_ii_parses_a_real_header() {
        let h = TypeIIRepr::parse(&II_666).unwrap();
        assert_eq!(
            h,
            TypeIIRepr {
                vlan: 0,
                cos: 6,
                en: 0,
                truncated: false,
                session: 666,
                index: 32760
            }
        );
        let mut b = [0u8; 8];
        assert_eq!(h.emit(&mut b), 8);
        assert_eq!(b, II_666);
    }

    #[test]
    fn type_ii_round_trips_every_field_at_its_width() {
        let h = TypeIIRepr {
            vlan: 0xabc,
            cos: 5,
            en: 2,
            truncated: true,
            session: MAX_SESSION,
            index: MAX_INDEX,
        };
        let mut b = [0u8; 8];
        h.emit(&mut b);
        assert_eq!(b, [0x1a, 0xbc, 0xb7, 0xff, 0x00, 0x0f, 0xff, 0xff]);
        assert_eq!(TypeIIRepr::parse(&b), Ok(h));
        assert_eq!(version(&b), Some(VERSION_TYPE_II));
    }

    #[test]
    fn type_ii_rejects_short_and_wrong_version() {
        assert!(matches!(
            TypeIIRepr::parse(&II_666[..7]),
            Err(Error::Truncated {
                layer: Layer::Erspan,
                needed: 8,
                actual: 7
            })
        ));
        let mut b = II_666;
        b[0] = 0x20;
        assert!(matches!(
            TypeIIRepr::parse(&b),
            Err(Error::Malformed { .. })
        ));
    }

    /// erspan-type-iii-ft-0.pcap frame 1 (tcpdump: "erspan type3 session 0 bso Good/unknown cos 0 ft Ethernet"),
    /// the 12 bytes after GRE.
    const III_0: [u8; 12] = [
        0x20, 0x14, 0x00, 0x00, 0xa3, 0x59, 0x5b, 0xff, 0x00, 0x00, 0x00, 0x06,
    ];

    #[test]
    fn type_iii_parses_a_real_header() {
        let h = TypeIIIRepr::parse(&III_0).unwrap();
        assert_eq!((h.vlan, h.cos, h.bso, h.session), (20, 0, 0, 0));
        assert_eq!((h.timestamp, h.sgt, h.ft, h.hwid), (0xa359_5bff, 0, 0, 0));
        assert_eq!((h.p, h.d, h.gra, h.platform), (false, false, 3, None));
        let mut b = [0u8; 12];
        h.emit(&mut b);
        assert_eq!(b, III_0);
    }

    /// Every field away from zero.
    fn iii_sample() -> TypeIIIRepr {
        TypeIIIRepr {
            vlan: 7,
            cos: 3,
            bso: 1,
            truncated: false,
            session: 55,
            timestamp: 0x0102_0304,
            sgt: 0xbeef,
            p: false,
            ft: TypeIIIRepr::FT_ETHERNET,
            hwid: 0x2a,
            d: true,
            gra: 3,
            platform: None,
        }
    }

    #[test]
    fn type_iii_round_trips_with_and_without_subheader() {
        let h = iii_sample();
        let mut b = [0u8; 20];
        assert_eq!(h.emit(&mut b), 12);
        assert_eq!(
            &b[..12],
            &[0x20, 0x07, 0x68, 0x37, 1, 2, 3, 4, 0xbe, 0xef, 0x02, 0xae]
        );
        assert_eq!(TypeIIIRepr::parse(&b[..12]), Ok(h));
        let p = TypeIIIRepr {
            platform: Some([9, 8, 7, 6, 5, 4, 3, 2]),
            ..h
        };
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.emit(&mut b), 20);
        assert_eq!(b[11] & 1, 1, "O flag");
        assert_eq!(TypeIIIRepr::parse(&b), Ok(p));
        assert!(matches!(
            TypeIIIRepr::parse(&b[..19]),
            Err(Error::Truncated { needed: 20, .. })
        ));
    }

    #[test]
    fn type_iii_rejects_short_and_wrong_version() {
        let mut b = [0u8; 12];
        iii_sample().emit(&mut b);
        assert!(matches!(
            TypeIIIRepr::parse(&b[..11]),
            Err(Error::Truncated { needed: 12, .. })
        ));
        b[0] = 0x10;
        assert!(matches!(
            TypeIIIRepr::parse(&b),
            Err(Error::Malformed { .. })
        ));
        assert_eq!(version(&[]), None);
    }

    #[test]
    fn parse_never_panics() {
        for len in 0..24 {
            for fill in [0u8, 0x10, 0x20, 0xff] {
                let b = vec![fill; len];
                let _ = TypeIIRepr::parse(&b);
                let _ = TypeIIIRepr::parse(&b);
            }
        }
    }
}
