//! Value types of the configuration (MAC, TTL, TOS, port role) and the deserializers whose messages quote the
//! bad value (CIDRs, addresses, keys, socket addresses).
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The one MAC address type, [`greway_wire::MacAddr`]. In the configuration it is written `02:00:00:00:00:01`
/// (also `-` separated, two hex digits per byte: [`parse_mac`]) and displays lower-case with colons; fields of
/// this type carry `#[serde(with = "mac")]` (or `opt_mac`), because `wire` has no serde.
pub use greway_wire::MacAddr;

/// Error returned by [`parse_mac`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hex bytes like 02:00:00:00:00:01")]
pub struct MacParseError(pub String);

/// A MAC address as the configuration and the command line write it: six two-digit hex bytes separated by `:`
/// or `-` (stricter than [`MacAddr`]'s `FromStr`, which takes one-digit bytes).
pub fn parse_mac(s: &str) -> Result<MacAddr, MacParseError> {
    let err = || MacParseError(s.to_string());
    let sep = if s.contains('-') { '-' } else { ':' };
    let mut out = [0u8; 6];
    let mut n = 0;
    for part in s.split(sep) {
        if n == 6 || part.len() != 2 {
            return Err(err());
        }
        out[n] = u8::from_str_radix(part, 16).map_err(|_| err())?;
        n += 1;
    }
    if n != 6 {
        return Err(err());
    }
    Ok(MacAddr(out))
}

/// `#[serde(with = "mac")]`: a [`MacAddr`] as a string, parsed by [`parse_mac`].
pub mod mac {
    use super::{parse_mac, parse_str, MacAddr};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mac: &MacAddr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(mac)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MacAddr, D::Error> {
        parse_str(d, "a MAC address string", |s| {
            parse_mac(s).map_err(|e| e.to_string())
        })
    }
}

/// `#[serde(default, with = "opt_mac")]`: an optional [`MacAddr`] (absent is `None`).
pub mod opt_mac {
    use super::MacAddr;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mac: &Option<MacAddr>, s: S) -> Result<S::Ok, S::Error> {
        match mac {
            Some(m) => s.serialize_some(&Str(m)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MacAddr>, D::Error> {
        super::mac::deserialize(d).map(Some)
    }

    /// Serializes through `Display`.
    struct Str<'a>(&'a MacAddr);

    impl serde::Serialize for Str<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self.0)
        }
    }
}

/// Deserializes a string and parses it inside the deserializer's visitor, so that a parse error
/// carries the span of the value (and so its line and, within arrays, its index).
fn parse_str<'de, D: Deserializer<'de>, T>(
    d: D,
    what: &'static str,
    f: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct V<T> {
        what: &'static str,
        f: fn(&str) -> Result<T, String>,
    }
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.what)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.f)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V { what, f })
}

/// Outer TTL / hop limit: a fixed value 1..=255 or copied from the inner packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ttl {
    Fixed(u8),
    Inherit,
}

impl Default for Ttl {
    fn default() -> Self {
        Ttl::Fixed(64)
    }
}

/// Outer TOS / traffic class: a fixed value 0..=255 or copied from the inner packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Tos {
    Fixed(u8),
    #[default]
    Inherit,
}

/// Visitor for "integer in lo..=255 or the string \"inherit\"".
struct FixedOrInherit {
    what: &'static str,
    lo: i64,
}

impl FixedOrInherit {
    fn range_msg(&self, got: &dyn fmt::Display) -> String {
        format!(
            "{} must be {}..=255 or \"inherit\", got {got}",
            self.what, self.lo
        )
    }
}

impl Visitor<'_> for FixedOrInherit {
    type Value = Option<u8>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an integer {}..=255 or \"inherit\"", self.lo)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u8>, E> {
        if (self.lo..=255).contains(&v) {
            Ok(Some(v as u8))
        } else {
            Err(E::custom(self.range_msg(&v)))
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u8>, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(E::custom(self.range_msg(&v))),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<u8>, E> {
        if v == "inherit" {
            Ok(None)
        } else {
            Err(E::custom(self.range_msg(&format!("{v:?}"))))
        }
    }
}

impl<'de> Deserialize<'de> for Ttl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(FixedOrInherit { what: "ttl", lo: 1 })?;
        Ok(v.map_or(Ttl::Inherit, Ttl::Fixed))
    }
}

impl<'de> Deserialize<'de> for Tos {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(FixedOrInherit { what: "tos", lo: 0 })?;
        Ok(v.map_or(Tos::Inherit, Tos::Fixed))
    }
}

impl Serialize for Ttl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ttl::Fixed(v) => s.serialize_u8(*v),
            Ttl::Inherit => s.serialize_str("inherit"),
        }
    }
}

impl Serialize for Tos {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tos::Fixed(v) => s.serialize_u8(*v),
            Tos::Inherit => s.serialize_str("inherit"),
        }
    }
}

/// `mss_clamp`: off (`false`, the default), derived from the tunnel MTU (`true`: MTU - 40 for IPv4 inside, MTU -
/// 60 for IPv6), or a fixed MSS for both families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MssClamp {
    #[default]
    Off,
    Auto,
    Fixed(u16),
}

impl MssClamp {
    /// The smallest fixed MSS accepted: Linux's TCP_MIN_MSS (88), below which its TCP ignores the option.
    pub const MIN: u16 = 88;
}

struct MssClampVisitor;

impl MssClampVisitor {
    fn range_msg(got: &dyn fmt::Display) -> String {
        format!(
            "mss_clamp must be true, false or an MSS {}..=65535, got {got}",
            MssClamp::MIN
        )
    }
}

impl Visitor<'_> for MssClampVisitor {
    type Value = MssClamp;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "true, false or an integer {}..=65535", MssClamp::MIN)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<MssClamp, E> {
        Ok(if v { MssClamp::Auto } else { MssClamp::Off })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<MssClamp, E> {
        match u16::try_from(v) {
            Ok(m) if m >= MssClamp::MIN => Ok(MssClamp::Fixed(m)),
            _ => Err(E::custom(Self::range_msg(&v))),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<MssClamp, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(E::custom(Self::range_msg(&v))),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<MssClamp, E> {
        Err(E::custom(Self::range_msg(&format!("{v:?}"))))
    }
}

impl<'de> Deserialize<'de> for MssClamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MssClampVisitor)
    }
}

impl Serialize for MssClamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MssClamp::Off => s.serialize_bool(false),
            MssClamp::Auto => s.serialize_bool(true),
            MssClamp::Fixed(v) => s.serialize_u16(*v),
        }
    }
}

pub use greway_datapath::tunnel::table::PortRole;

// ---- deserializers with messages that quote the bad value --------------------------------------

struct Cidr(IpNet);

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a CIDR string", parse_cidr).map(Cidr)
    }
}

pub(crate) fn parse_cidr(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>().map_err(|_| {
        format!("invalid CIDR {s:?}: expected ADDRESS/PREFIX-LENGTH such as 10.0.0.0/24 or 2001:db8::/32")
    })
}

struct Ip(IpAddr);

impl<'de> Deserialize<'de> for Ip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "an IP address string", |s| {
            s.parse::<IpAddr>().map_err(|_| {
                format!(
                    "invalid IP address {s:?}: expected an IPv4 or IPv6 address such as 192.0.2.1"
                )
            })
        })
        .map(Ip)
    }
}

pub(crate) fn de_ip<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    Ip::deserialize(d).map(|i| i.0)
}

pub(crate) fn de_opt_ip<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    Ip::deserialize(d).map(|i| Some(i.0))
}

pub(crate) fn de_cidr<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
    Cidr::deserialize(d).map(|c| c.0)
}

pub(crate) fn de_cidrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<Cidr>::deserialize(d).map(|v| v.into_iter().map(|c| c.0).collect())
}

/// An array of CIDR strings; a JSON `null` (a `greway ctl` request leaving the key unset) is `None`.
pub(crate) fn de_opt_cidrs<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<IpNet>>, D::Error> {
    Option::<Vec<Cidr>>::deserialize(d).map(|v| v.map(|v| v.into_iter().map(|c| c.0).collect()))
}

/// A CIDR string or an array of CIDR strings.
pub(crate) fn de_one_or_many_cidrs<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<IpNet>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<IpNet>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a CIDR string or an array of CIDR strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<IpNet>, E> {
            parse_cidr(v).map(|n| vec![n]).map_err(E::custom)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<IpNet>, A::Error> {
            let mut out = Vec::new();
            while let Some(c) = seq.next_element::<Cidr>()? {
                out.push(c.0);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

pub(crate) fn de_opt_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a GRE key, an integer 0..=4294967295")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u32>, E> {
            u32::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("GRE key must be 0..=4294967295 (u32), got {v}")))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u32>, E> {
            u32::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("GRE key must be 0..=4294967295 (u32), got {v}")))
        }
        // JSON `null` (a `greway ctl` request leaving the key unset); TOML has no null.
        fn visit_unit<E: de::Error>(self) -> Result<Option<u32>, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

pub(crate) fn de_sockaddr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    parse_str(d, "a socket address string", |s| {
        s.parse::<SocketAddr>().map_err(|_| {
            format!("invalid socket address {s:?}: expected IP:PORT such as 127.0.0.1:9469")
        })
    })
}
