//! Packet views and representations: pure Rust, no DPDK, no `unsafe` outside `checksum/simd`.
//!
//! Contract, for every protocol module (modelled on smoltcp's `wire`):
//! - `Packet<T: AsRef<[u8]>>` (or `Frame`) is a zero-copy view. `new_checked` runs `check_len` once; after it,
//!   no accessor panics. `new_unchecked` skips the check (accessors may then panic on short buffers).
//!   Setters exist only where `T: AsMut<[u8]>`.
//! - `*Repr` is the typed, host-order summary. `parse` never panics, whatever the bytes; `emit` writes straight
//!   into a caller-provided buffer, never allocates, and panics only if the buffer is shorter than
//!   `header_len()`/`buffer_len()` (the caller reserved that room; this is a programming error, not input).
//! - Errors are small `Copy` values naming the layer, the length needed and the length present, because the hot
//!   path turns them into drop counters.
/// The fixed-size header views' shared part, generated once per header: `Header<'a>` over `&'a [u8; $len]`
/// and `HeaderMut<'a>` over `&'a mut [u8; $len]`, each built from a slice by one length check (`from_prefix`,
/// `split_prefix`, `TryFrom`, the error from `$truncated(actual_len)`), with the module's
/// `fixed_header_getters!` accessors (loads at constant offsets: no bounds check after the constructor).
/// Each module adds its setters (and any extra accessor) in an `impl` of its own.
macro_rules! fixed_header_views {
    (
        len: $len:ident,
        error: $err:ty,
        truncated: $truncated:expr,
        $(#[$hdoc:meta])*
        header;
        $(#[$mdoc:meta])*
        header_mut;
    ) => {
        $(#[$hdoc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct Header<'a>(&'a [u8; $len]);

        impl<'a> Header<'a> {
            #[inline(always)]
            pub const fn new(bytes: &'a [u8; $len]) -> Header<'a> {
                Header(bytes)
            }

            /// The header at the start of `bytes`, or `None` when it is shorter.
            #[inline(always)]
            pub fn from_prefix(bytes: &'a [u8]) -> Option<Header<'a>> {
                bytes.first_chunk().map(Header)
            }

            /// [`Header::from_prefix`] and the bytes after the header.
            #[inline(always)]
            pub fn split_prefix(bytes: &'a [u8]) -> Option<(Header<'a>, &'a [u8])> {
                bytes.split_first_chunk().map(|(h, rest)| (Header(h), rest))
            }

            #[inline(always)]
            pub const fn as_bytes(&self) -> &'a [u8; $len] {
                self.0
            }

            fixed_header_getters!();
        }

        impl<'a> TryFrom<&'a [u8]> for Header<'a> {
            type Error = $err;
            #[inline(always)]
            fn try_from(bytes: &'a [u8]) -> Result<Self, $err> {
                Header::from_prefix(bytes).ok_or_else(|| $truncated(bytes.len()))
            }
        }

        $(#[$mdoc])*
        #[derive(Debug, PartialEq, Eq)]
        pub struct HeaderMut<'a>(&'a mut [u8; $len]);

        impl<'a> HeaderMut<'a> {
            #[inline(always)]
            pub fn new(bytes: &'a mut [u8; $len]) -> HeaderMut<'a> {
                HeaderMut(bytes)
            }

            /// The header at the start of `bytes`, or `None` when it is shorter.
            #[inline(always)]
            pub fn from_prefix(bytes: &'a mut [u8]) -> Option<HeaderMut<'a>> {
                bytes.first_chunk_mut().map(HeaderMut)
            }

            /// [`HeaderMut::from_prefix`] and the bytes after the header.
            #[inline(always)]
            pub fn split_prefix(bytes: &'a mut [u8]) -> Option<(HeaderMut<'a>, &'a mut [u8])> {
                bytes
                    .split_first_chunk_mut()
                    .map(|(h, rest)| (HeaderMut(h), rest))
            }

            /// A read-only view of the same bytes.
            #[inline(always)]
            pub fn as_header(&self) -> Header<'_> {
                Header(self.0)
            }

            #[inline(always)]
            pub fn as_bytes_mut(&mut self) -> &mut [u8; $len] {
                self.0
            }

            fixed_header_getters!();
        }

        impl<'a> TryFrom<&'a mut [u8]> for HeaderMut<'a> {
            type Error = $err;
            #[inline(always)]
            fn try_from(bytes: &'a mut [u8]) -> Result<Self, $err> {
                let actual = bytes.len();
                HeaderMut::from_prefix(bytes).ok_or_else(|| $truncated(actual))
            }
        }
    };
}

pub mod checksum;
pub mod cpu;

pub mod arp;
pub mod erspan;
pub mod ethernet;
pub mod gre;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod ipv6_options;
pub mod tcp;

/// What IPv4 and IPv6 share.
pub mod ip {
    /// The ECN codepoints (RFC 3168 section 5): the low two bits of the IPv4 TOS byte and of the IPv6 traffic
    /// class.
    pub mod ecn {
        pub const NOT_ECT: u8 = 0b00;
        pub const ECT1: u8 = 0b01;
        pub const ECT0: u8 = 0b10;
        /// Congestion Experienced.
        pub const CE: u8 = 0b11;
    }

    /// IANA Assigned Internet Protocol Numbers: the IPv4 Protocol field and the IPv6 Next Header field (RFC 8200
    /// section 4 uses the same registry), defined once for both ([`crate::ipv4::protocol`] and
    /// [`crate::ipv6::next_header`] are this module).
    pub mod protocol {
        /// IPv6 Hop-by-Hop Options (RFC 8200 4.3).
        pub const HOP_BY_HOP: u8 = 0;
        pub const ICMP: u8 = 1;
        pub const TCP: u8 = 6;
        pub const UDP: u8 = 17;
        /// IPv6 encapsulated (RFC 2473; 6in4).
        pub const IPV6: u8 = 41;
        /// IPv6 Routing header (RFC 8200 4.4).
        pub const ROUTING: u8 = 43;
        /// IPv6 Fragment header (RFC 8200 4.5).
        pub const FRAGMENT: u8 = 44;
        pub const GRE: u8 = 47;
        /// IPsec Authentication Header (RFC 4302).
        pub const AUTHENTICATION: u8 = 51;
        pub const ICMPV6: u8 = 58;
        /// IPv6 No Next Header (RFC 8200 4.7).
        pub const NO_NEXT_HEADER: u8 = 59;
        /// IPv6 Destination Options (RFC 8200 4.6).
        pub const DESTINATION_OPTIONS: u8 = 60;
    }
}

pub use ethernet::MacAddr;
pub use gre::{GreError, GreRepr};

/// Which header an [`Error`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Ethernet,
    Vlan,
    Arp,
    Ipv4,
    Ipv6,
    Ipv6Extension,
    Icmpv4,
    Icmpv6,
    Gre,
    CiscoMetaData,
    Erspan,
    Tcp,
}

impl core::fmt::Display for Layer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self {
            Layer::Ethernet => "Ethernet",
            Layer::Vlan => "802.1Q",
            Layer::Arp => "ARP",
            Layer::Ipv4 => "IPv4",
            Layer::Ipv6 => "IPv6",
            Layer::Ipv6Extension => "IPv6 extension header",
            Layer::Icmpv4 => "ICMPv4",
            Layer::Icmpv6 => "ICMPv6",
            Layer::Gre => "GRE",
            Layer::CiscoMetaData => "Cisco MetaData",
            Layer::Erspan => "ERSPAN",
            Layer::Tcp => "TCP",
        };
        f.write_str(name)
    }
}

/// A parse error: small and `Copy`, so the data path can match on it and count it without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer ends before a field the header says is there.
    #[error("{layer}: truncated, {needed} bytes needed, {actual} present")]
    Truncated {
        layer: Layer,
        needed: usize,
        actual: usize,
    },
    /// A field holds a value this implementation does not accept; `reason` names the field and the rule.
    #[error("{layer}: malformed: {reason}")]
    Malformed { layer: Layer, reason: &'static str },
    /// The checksum does not verify.
    #[error("{layer}: bad checksum")]
    BadChecksum { layer: Layer },
    /// GRE has its own variants because RFC 2784/2890 receiver rules each need a distinct drop reason.
    #[error(transparent)]
    Gre(#[from] GreError),
}

impl Error {
    /// The layer the error is about.
    pub fn layer(&self) -> Layer {
        match self {
            Error::Truncated { layer, .. }
            | Error::Malformed { layer, .. }
            | Error::BadChecksum { layer } => *layer,
            Error::Gre(_) => Layer::Gre,
        }
    }
}

/// Shorthand used by every module's `check_len`.
#[inline]
pub(crate) fn need(layer: Layer, needed: usize, actual: usize) -> Result<(), Error> {
    if actual < needed {
        Err(Error::Truncated {
            layer,
            needed,
            actual,
        })
    } else {
        Ok(())
    }
}

/// The big-endian 16-bit word at `at` (the views' one reader of unaligned words; the caller checked the length).
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_small_and_print_the_lengths() {
        assert!(
            core::mem::size_of::<Error>() <= 32,
            "{}",
            core::mem::size_of::<Error>()
        );
        let e = Error::Truncated {
            layer: Layer::Ipv4,
            needed: 20,
            actual: 7,
        };
        assert_eq!(e.to_string(), "IPv4: truncated, 20 bytes needed, 7 present");
        assert_eq!(e.layer(), Layer::Ipv4);
    }
}
