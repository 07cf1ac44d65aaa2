//! Prefixes as ordered keys, for the control plane's overlap checks between route tables.
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A prefix as an ordered key: (IPv6, first address widened to 128 bits, length). Prefixes inside
/// a range of addresses are a range of keys.
pub(super) type PrefixKey = (bool, u128, u8);

pub(super) fn prefix_key(p: &IpNet) -> PrefixKey {
    match p {
        IpNet::V4(n) => (false, u128::from(u32::from(n.network())), n.prefix_len()),
        IpNet::V6(n) => (true, u128::from(n.network()), n.prefix_len()),
    }
}

pub(super) fn key_prefix((v6, first, len): PrefixKey) -> IpNet {
    if v6 {
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(first), len).expect("a valid length"))
    } else {
        IpNet::V4(Ipv4Net::new(Ipv4Addr::from(first as u32), len).expect("a valid length"))
    }
}

/// The prefixes of `set` that overlap `p` (one contains the other): those containing it, by one
/// exact look-up per shorter length, and those inside it, as a key range. O(len + log n + found).
pub(super) fn overlapping<V>(set: &BTreeMap<PrefixKey, V>, p: &IpNet) -> Vec<IpNet> {
    let (v6, first, len) = prefix_key(p);
    let mut out: Vec<IpNet> = (0..len)
        .filter_map(|l| {
            let k = prefix_key(&IpNet::new(p.addr(), l).expect("shorter").trunc());
            set.contains_key(&k).then(|| key_prefix(k))
        })
        .collect();
    let last = match p.broadcast() {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    out.extend(
        set.range((v6, first, 0)..=(v6, last, u8::MAX))
            .map(|(&k, _)| key_prefix(k)),
    );
    // A shorter prefix starting at `first` is found both ways.
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether some prefix of `set` overlaps `p`: [`overlapping`] without collecting (a default route
/// overlaps every tunnel route, and its flag is checked on every tunnel route removal).
pub(super) fn overlaps_any<V>(set: &BTreeMap<PrefixKey, V>, p: &IpNet) -> bool {
    let (v6, first, len) = prefix_key(p);
    let last = match p.broadcast() {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    set.range((v6, first, 0)..=(v6, last, u8::MAX))
        .next()
        .is_some()
        || (0..len).any(|l| {
            set.contains_key(&prefix_key(
                &IpNet::new(p.addr(), l).expect("shorter").trunc(),
            ))
        })
}
