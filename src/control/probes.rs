//! The frames the control plane sends to resolve next hops: ARP requests and IPv6 neighbour solicitations,
//! built through `wire`'s Reprs.
use crate::wire::arp::ArpRepr;
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::icmpv6::{self, Icmpv6Repr};
use crate::wire::MacAddr;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A broadcast ARP request (RFC 826) for `target` from `mac`/`ip`.
pub fn arp_request(mac: MacAddr, ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: MacAddr::BROADCAST,
        vlan: None,
        ethertype: ethertype::ARP,
    };
    let arp = ArpRepr::request(mac, ip, target);
    let mut f = vec![0u8; eth.header_len() + arp.buffer_len()];
    let at = eth.emit(&mut f);
    arp.emit(&mut f[at..]);
    f
}

/// A neighbour solicitation (RFC 4861 4.3) for `target` to its solicited-node multicast address, with our
/// link-layer address as the source option (section 7.2.2).
pub fn neighbor_solicitation(mac: MacAddr, ip: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let group = icmpv6::solicited_node(target);
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: MacAddr::ipv6_multicast(group),
        vlan: None,
        ethertype: ethertype::IPV6,
    };
    let ns = Icmpv6Repr::NeighborSolicit {
        target,
        source_lladdr: Some(mac),
    };
    let ip6 = ns.ipv6_repr(ip, group, icmpv6::ND_HOP_LIMIT);
    let mut f = vec![0u8; eth.header_len() + ip6.header_len() + ns.buffer_len()];
    let at = eth.emit(&mut f);
    let at = at + ip6.emit(&mut f[at..]);
    ns.emit(ip, group, &mut f[at..]);
    f
}
