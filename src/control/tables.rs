//! Building the datapath's tables from the configuration: ports, tunnels with their encapsulation templates,
//! route LPMs and static neighbours. The tables themselves (and every lookup) live in the pure datapath crate;
//! this is the one place that knows both the configuration and the table layout.
use crate::config::{BridgeMember, Config, Tos, Ttl, TunnelCfg, TunnelMode};
use greway_datapath::bridge::mac_table::MacTable;
use greway_datapath::bridge::{Bridge, Member, MemberRef, PortBridging};
use greway_datapath::pmtu::{MtuCell, PmtuParams};
use greway_datapath::tunnel::lpm::Lpm4;
use greway_datapath::tunnel::lpm6::Lpm6;
use greway_datapath::tunnel::table::*;
use greway_wire::ethernet::{self, ethertype};
use greway_wire::ip::protocol as ip_protocol;
use greway_wire::ipv6_options::EncapLimitRepr;
use greway_wire::{checksum, gre, ipv4, ipv6};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Build the route tables from the config's tunnels, routes and connected subnets.
pub fn build_routes(cfg: &Config) -> Result<RouteTables, TableError> {
    let mut e4 = Vec::new();
    let mut e6 = Vec::new();
    let mut into_tunnel = |p: IpNet, i: usize| match p {
        IpNet::V4(n) => e4.push((n, i as u32)),
        IpNet::V6(n) => e6.push((n, i as u32)),
    };
    for (i, t) in cfg.tunnels.iter().enumerate() {
        // The tunnel's connected subnets, like a port's: what lies beyond them is reached through the tunnel.
        for n in t.subnets() {
            into_tunnel(n, i);
        }
        for r in &t.routes {
            into_tunnel(*r, i);
        }
    }
    // `[[route]]`s into a tunnel (`tunnel = NAME`, or `via` a peer on a tunnel's subnet), resolved now.
    for r in &cfg.routes {
        if let Some(i) = cfg.route_tunnel(r) {
            into_tunnel(r.prefix.trunc(), i);
        }
    }
    let mut routes = Vec::new();
    let mut r4 = Vec::new();
    let mut r6 = Vec::new();
    // Connected subnets first; configured routes after, so a configured route for the same prefix wins.
    for (pi, p) in cfg.ports.iter().enumerate() {
        for a in &p.addresses {
            let idx = routes.len() as u32;
            routes.push(Route {
                port: pi,
                via: None,
                tunnel_overlap: false,
            });
            match a.trunc() {
                IpNet::V4(n) => r4.push((n, idx)),
                IpNet::V6(n) => r6.push((n, idx)),
            }
        }
    }
    for r in cfg.routes.iter().filter(|r| r.port.is_some()) {
        let name = r.port.as_deref().unwrap_or_default();
        let port = cfg
            .port_index(name)
            .ok_or_else(|| TableError::Other(format!("route {}: unknown port {name}", r.prefix)))?;
        let idx = routes.len() as u32;
        routes.push(Route {
            port,
            via: r.via,
            tunnel_overlap: false,
        });
        match r.prefix.trunc() {
            IpNet::V4(n) => r4.push((n, idx)),
            IpNet::V6(n) => r6.push((n, idx)),
        }
    }
    let overlap4 = PrefixOverlap::new(e4.iter().map(|(n, _)| {
        (
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
        )
    }));
    for (n, idx) in &r4 {
        routes[*idx as usize].tunnel_overlap = overlap4.any(
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
        );
    }
    let overlap6 = PrefixOverlap::new(
        e6.iter()
            .map(|(n, _)| (u128::from(n.network()), u128::from(n.broadcast()))),
    );
    for (n, idx) in &r6 {
        routes[*idx as usize].tunnel_overlap =
            overlap6.any(u128::from(n.network()), u128::from(n.broadcast()));
    }
    Ok(RouteTables {
        encap4: Lpm4::from_nets(&e4)?,
        encap6: Lpm6::from_nets(&e6)?,
        routes4: Lpm4::from_nets(&r4)?,
        routes6: Lpm6::from_nets(&r6)?,
        routes,
    })
}

/// Where [`build_routes`] puts each underlay route in [`RouteTables::routes`]: the control plane's
/// index for changing routes in place.
#[derive(Debug, Default, Clone)]
pub struct RouteSlots {
    /// Connected subnet -> slot (of its last port address, the one the LPM keeps).
    pub connected: HashMap<IpNet, u32>,
    /// `[[route]]` prefix -> slot.
    pub configured: HashMap<IpNet, u32>,
    /// Slots of removed routes, reused first.
    pub free: Vec<u32>,
    /// Slots ever used.
    pub next: u32,
}

impl RouteSlots {
    /// The slots [`build_routes`] gives `cfg`'s routes.
    pub fn of(cfg: &Config) -> Self {
        let mut s = RouteSlots::default();
        for p in &cfg.ports {
            for a in &p.addresses {
                s.connected.insert(a.trunc(), s.next);
                s.next += 1;
            }
        }
        for r in cfg.routes.iter().filter(|r| r.port.is_some()) {
            s.configured.insert(r.prefix.trunc(), s.next);
            s.next += 1;
        }
        s
    }

    /// A slot for a new route.
    pub fn alloc(&mut self) -> u32 {
        self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        })
    }

    /// Every slot holding a route for `p` (a configured route and the connected subnet it shadows).
    pub fn of_prefix(&self, p: &IpNet) -> impl Iterator<Item = u32> {
        self.configured
            .get(p)
            .copied()
            .into_iter()
            .chain(self.connected.get(p).copied())
    }
}

/// Static neighbours from the config.
pub fn static_neighbors(cfg: &Config) -> FxMap<IpAddr, Neighbor> {
    let mut m = FxMap::default();
    for n in &cfg.neighbors {
        if let Some(port) = cfg.ports.iter().position(|p| p.name == n.port) {
            m.insert(
                n.ip,
                Neighbor {
                    port,
                    mac: n.mac.0,
                    is_static: true,
                },
            );
        }
    }
    m
}

/// Ports as the datapath sees them, with their effective MACs.
pub fn port_infos(cfg: &Config, macs: &[[u8; 6]]) -> Vec<PortInfo> {
    cfg.ports
        .iter()
        .enumerate()
        .map(|(i, p)| PortInfo {
            name: p.name.clone(),
            role: p.role(),
            // Set by the runtime once the port is configured (`ControlPlane::set_rx_ipv4_cksum`).
            rx_ipv4_cksum: false,
            mac: p
                .mac
                .map(|m| m.0)
                .or(macs.get(i).copied())
                .unwrap_or([0; 6]),
            v4: p
                .addresses
                .iter()
                .filter_map(|a| match a {
                    IpNet::V4(n) => Some((n.addr(), n.prefix_len())),
                    _ => None,
                })
                .collect(),
            v6: p
                .addresses
                .iter()
                .filter_map(|a| match a {
                    IpNet::V6(n) => Some((n.addr(), n.prefix_len())),
                    _ => None,
                })
                .collect(),
            mtu: p.mtu,
        })
        .collect()
}

/// Build the whole table generation. `states`, `ids`, `mac_tables`, `bridge_ids` and `mirror_ids` are what
/// outlives generations: the tunnels' run-time state and run-unique ids, the bridges' MAC tables and run-unique
/// ids, the `[[mirror]]` entries' run-unique ids.
#[allow(clippy::too_many_arguments)]
pub fn build_tables(
    cfg: &Config,
    ports: Vec<PortInfo>,
    routes: Arc<RouteTables>,
    neighbors: FxMap<IpAddr, Neighbor>,
    states: &[Arc<TunnelState>],
    ids: &Arc<[u64]>,
    mac_tables: &[Arc<MacTable>],
    bridge_ids: &[u32],
    mirror_ids: &[u32],
    generation: u64,
) -> Tables {
    assert_eq!(ids.len(), cfg.tunnels.len(), "one run-unique id per tunnel");
    let mut decap = FxMap::default();
    let mut peers = FxMap::default();
    let mut outer_paths: FxMap<(IpAddr, IpAddr), Vec<u32>> = FxMap::default();
    let (mut bridges, port_bridging, tunnel_members) = build_bridges(cfg, mac_tables, bridge_ids);
    let mut tunnels = Vec::with_capacity(cfg.tunnels.len());
    for (i, tc) in cfg.tunnels.iter().enumerate() {
        let state = states
            .get(i)
            .cloned()
            .unwrap_or_else(|| Arc::new(TunnelState::default()));
        let tref = TunnelRef {
            index: i as u32,
            id: ids[i],
        };
        let mut t = build_tunnel(cfg, tref, tc, &ports, &routes, &neighbors, state);
        t.teb = tunnel_members.get(&i).copied();
        decap.insert(
            DecapKey {
                local: t.local,
                remote: t.remote,
                key: t.ikey,
            },
            i as u32,
        );
        peers.insert((t.local, t.remote), i as u32);
        outer_paths
            .entry((t.local, t.remote))
            .or_default()
            .push(i as u32);
        tunnels.push(t);
    }
    for b in &mut bridges {
        b.never_holds = b.members.iter().all(|m| match *m {
            Member::Tunnel { tunnel } => tunnels
                .get(tunnel as usize)
                .is_some_and(|t| t.resolved && !t.sequence),
            Member::Port { .. } => true,
        });
    }
    let outer_paths = outer_paths
        .into_iter()
        .map(|(k, v)| (k, v.into_boxed_slice()))
        .collect();
    let mut tunnel_locals: Vec<IpAddr> = tunnels.iter().map(|t| t.local).collect();
    tunnel_locals.sort_unstable();
    tunnel_locals.dedup();
    let mut local4 = Vec::new();
    let mut local6 = Vec::new();
    for p in &ports {
        local4.extend(p.v4.iter().map(|a| a.0));
        local6.extend(p.v6.iter().map(|a| a.0));
    }
    // The tunnels' own addresses are ours too (after the ports': ICMP errors take the first port address).
    let tunnel_addrs: Vec<IpAddr> = cfg
        .tunnels
        .iter()
        .flat_map(|t| t.address.iter().map(|a| a.addr()))
        .collect();
    for a in &tunnel_addrs {
        match a {
            IpAddr::V4(a) => local4.push(*a),
            IpAddr::V6(a) => local6.push(*a),
        }
    }
    let local4_set = AddrSet4::new(local4.iter().map(|&a| u32::from(a)));
    let local4_tunneled = local4
        .iter()
        .any(|a| routes.encap4.lookup(u32::from(*a)).is_some());
    let local6_tunneled = local6
        .iter()
        .any(|a| routes.encap6.lookup(u128::from(*a)).is_some());
    let tunnel_lines = tunnels
        .iter()
        .map(|t| t.hot_bytes().div_ceil(64))
        .max()
        .unwrap_or(1);
    let mirrors = build_mirrors(cfg, mirror_ids);
    Tables {
        mirrors,
        tunnel_lines,
        ports,
        tunnels,
        decap,
        peers,
        outer_paths,
        routes,
        neighbors,
        local4,
        local6,
        local4_tunneled,
        local6_tunneled,
        tunnel_locals,
        tunnel_addrs,
        local4_set,
        generation,
        tunnel_ids: ids.clone(),
        punt_pps: cfg.host.as_ref().map_or(0, |h| h.punt_pps),
        bridges,
        port_bridging,
    }
}

/// The `[[mirror]]` entries by port and direction, each counting under its run-unique id (`ids`, config order)
/// and naming its tunnel by index in this generation (the configuration's tunnel order). An entry whose port or
/// tunnel is missing (not in a validated configuration) is left out.
fn build_mirrors(cfg: &Config, ids: &[u32]) -> Mirrors {
    debug_assert_eq!(ids.len(), cfg.mirrors.len(), "one run-unique id per mirror");
    let mut m = Mirrors::default();
    for (mc, &entry) in cfg.mirrors.iter().zip(ids) {
        let port = cfg.ports.iter().position(|p| p.name == mc.port);
        let tunnel = cfg.tunnels.iter().position(|t| t.name == mc.tunnel);
        let (Some(port), Some(tunnel)) = (port, tunnel) else {
            continue;
        };
        if mc.direction.rx() {
            m.add(entry, port, MirrorDir::Rx, tunnel as u32);
        }
        if mc.direction.tx() {
            m.add(entry, port, MirrorDir::Tx, tunnel as u32);
        }
    }
    m
}

/// One MAC table per bridge of `cfg`, in order (made once; every table generation shares them).
pub fn mac_tables(cfg: &Config) -> Vec<Arc<MacTable>> {
    cfg.bridges
        .iter()
        .map(|b| Arc::new(MacTable::new(b.mac_table_size, b.aging_s)))
        .collect()
}

/// The bridges of `cfg` over their MAC tables, counting into the counter slots `bridge_ids`: the bridges, each
/// port's way into them (by port index), and each member tunnel's member (by tunnel index).
fn build_bridges(
    cfg: &Config,
    mac_tables: &[Arc<MacTable>],
    bridge_ids: &[u32],
) -> (Vec<Bridge>, Vec<PortBridging>, HashMap<usize, MemberRef>) {
    let mut bridges = Vec::with_capacity(cfg.bridges.len());
    // Per port: the member it is as a whole, and its VLAN members.
    let mut whole: Vec<Option<MemberRef>> = vec![None; cfg.ports.len()];
    let mut vlans: Vec<Vec<(u16, MemberRef)>> = vec![Vec::new(); cfg.ports.len()];
    let mut tunnels = HashMap::new();
    for (bi, bc) in cfg.bridges.iter().enumerate() {
        let mut members = Vec::with_capacity(bc.members.len());
        for (mi, name) in bc.members.iter().enumerate() {
            let r = MemberRef {
                bridge: bi as u16,
                member: mi as u16,
            };
            // Validated: every member resolves.
            let Ok(m) = cfg.bridge_member(name) else {
                continue;
            };
            members.push(match m {
                BridgeMember::Port { port, vlan } => {
                    match vlan {
                        Some(v) => vlans[port].push((v, r)),
                        None => whole[port] = Some(r),
                    }
                    Member::Port {
                        port: port as u16,
                        vlan,
                    }
                }
                BridgeMember::Tunnel(t) => {
                    tunnels.insert(t, r);
                    Member::Tunnel { tunnel: t as u32 }
                }
            });
        }
        let one_tunnel = members
            .iter()
            .filter(|m| matches!(m, Member::Tunnel { .. }))
            .count()
            <= 1;
        bridges.push(Bridge {
            name: bc.name.clone(),
            one_tunnel,
            // (Decided once the tunnels are built: `build_tables`.)
            never_holds: false,
            members: members.into(),
            member_names: bc.members.clone().into(),
            learning: bc.learning,
            counters: bridge_ids.get(bi).copied().unwrap_or(bi as u32),
            macs: mac_tables
                .get(bi)
                .cloned()
                .unwrap_or_else(|| Arc::new(MacTable::new(bc.mac_table_size, bc.aging_s))),
        });
    }
    let port_bridging = whole
        .into_iter()
        .zip(vlans)
        .map(|(whole, mut vlans)| {
            vlans.sort_unstable_by_key(|&(v, _)| v);
            PortBridging {
                whole,
                vlans: vlans.into(),
            }
        })
        .collect();
    (bridges, port_bridging, tunnels)
}

/// A tunnel's MTU limits for path MTU discovery: its configured inner MTU, the floor (576, or 1280 with IPv6
/// outside or IPv6 routes) and its overhead.
pub fn pmtu_params(cfg: &Config, tc: &TunnelCfg) -> PmtuParams {
    PmtuParams::new(
        tc.effective_mtu(cfg),
        tc.local.is_ipv6(),
        tc.routes.iter().any(|r| matches!(r, IpNet::V6(_))),
        tc.overhead_in(cfg),
    )
}

fn build_tunnel(
    cfg: &Config,
    tref: TunnelRef,
    tc: &TunnelCfg,
    ports: &[PortInfo],
    routes: &RouteTables,
    neighbors: &FxMap<IpAddr, Neighbor>,
    state: Arc<TunnelState>,
) -> Tunnel {
    let (out_port, next_hop) = routes.next_hop(tc.remote).unwrap_or_else(|| {
        // No route: fall back to the port that owns `local`, next hop = remote (validated configs always route).
        let p = cfg
            .ports
            .iter()
            .position(|p| p.has_address(tc.local))
            .unwrap_or(0);
        (p, tc.remote)
    });
    let nb = neighbors.get(&next_hop).filter(|n| n.port == out_port);
    let ttl = match tc.ttl {
        Ttl::Fixed(t) => t,
        Ttl::Inherit => 64,
    };
    // The outer headers, written once here and copied in front of every packet: lengths, checksums, the TTL and
    // the sequence number are filled per packet (zero here).
    let mut tpl = [0u8; MAX_ENCAP_HEADER];
    let mut eth =
        ethernet::HeaderMut::from_prefix(&mut tpl).expect("an Ethernet header fits the template");
    eth.set_dst(nb.map(|n| n.mac).unwrap_or_default());
    eth.set_src(ports.get(out_port).map(|p| p.mac).unwrap_or_default());
    let ip_off = ethernet::HEADER_LEN;
    let gre_off = match (tc.local, tc.remote) {
        (IpAddr::V4(l), IpAddr::V4(r)) => {
            eth.set_ethertype(ethertype::IPV4);
            let mut ip = ipv4::HeaderMut::from_prefix(&mut tpl[ip_off..]).expect("fits");
            ip.set_ver_ihl(0x45);
            ip.set_ttl(ttl);
            ip.set_protocol(ipv4::protocol::GRE);
            ip.set_src(l.octets());
            ip.set_dst(r.octets());
            ip_off + ipv4::HEADER_LEN
        }
        (l, r) => {
            let (IpAddr::V6(l), IpAddr::V6(r)) = (l, r) else {
                unreachable!("validated: local and remote are of one family")
            };
            eth.set_ethertype(ethertype::IPV6);
            let mut ip = ipv6::HeaderMut::from_prefix(&mut tpl[ip_off..]).expect("fits");
            ip.set_ver_tc_flow(0, 0);
            ip.set_next_header(if tc.encap_limit.is_some() {
                ip_protocol::DESTINATION_OPTIONS
            } else {
                ip_protocol::GRE
            });
            ip.set_hop_limit(ttl);
            ip.set_src(l.octets());
            ip.set_dst(r.octets());
            let at = ip_off + ipv6::HEADER_LEN;
            match tc.encap_limit {
                // RFC 2473 4.1.1, as Linux ip6_tunnel sends it: a Destination Options header with the Tunnel
                // Encapsulation Limit between IPv6 and GRE.
                Some(limit) => {
                    at + EncapLimitRepr {
                        next_header: ip_protocol::GRE,
                        limit,
                    }
                    .emit(&mut tpl[at..])
                }
                None => at,
            }
        }
    };
    // Protocol type: IPv4, the common inner protocol; the encapsulation rewrites it only for IPv6. The checksum
    // field (present only when enabled) is zero in the template; so is the sequence number.
    let erspan_tx = tc.erspan_tx(cfg);
    let gre = match erspan_tx {
        // An ERSPAN sender: the GRE header of Linux's erspan_xmit (S bit, no key, no checksum).
        Some(e) => gre::GreRepr {
            checksum: false,
            key: None,
            sequence: Some(0),
            protocol: if e.version == greway_wire::erspan::VERSION_TYPE_II {
                gre::protocol::ERSPAN
            } else {
                gre::protocol::ERSPAN3
            },
        },
        None => gre::GreRepr {
            checksum: tc.checksum,
            key: tc.out_key(),
            sequence: tc.sequence.then_some(0),
            protocol: ethertype::IPV4,
        },
    };
    let off = gre_off + gre.emit(&mut tpl[gre_off..]);
    let key_off = gre_off + gre.key_offset();
    let seq_off = gre_off + gre.sequence_offset();
    let ip4_base_sum = if gre_off == ip_off + ipv4::HEADER_LEN {
        let mut h = [0u8; ipv4::HEADER_LEN];
        h.copy_from_slice(&tpl[ip_off..gre_off]);
        // An inherited TTL is per packet; a fixed one is the template's, and in the sum (see
        // `Tunnel::ip4_base_sum`).
        if matches!(tc.ttl, Ttl::Inherit) {
            ipv4::HeaderMut::from_prefix(&mut h)
                .expect("20 bytes")
                .set_ttl(0);
        }
        // As the words lie in memory (see `Tunnel::ip4_base_sum`).
        u32::from(u16::from_ne_bytes(
            checksum::fold(checksum::sum(&h, 0)).to_be_bytes(),
        ))
    } else {
        0
    };
    let gre_base_sum = checksum::fold(checksum::sum(&tpl[gre_off..off], 0));
    // Path MTU discovery: the limits, and the inner MTU the tunnel's state gives now (a learned path MTU
    // survives the rebuild).
    let pmtu = pmtu_params(cfg, tc);
    // (An ERSPAN sender's overhead also counts its ERSPAN header; a TEB tunnel's MTU also leaves out the frames'
    // own Ethernet header.)
    let inner_ethernet = if tc.mode == TunnelMode::Teb { 14 } else { 0 };
    debug_assert_eq!(
        usize::from(pmtu.overhead),
        off - 14 + erspan_tx.map_or(0, |e| e.header_len()) + inner_ethernet
    );
    let mtu = MtuCell::new(state.pmtu.inner_mtu(&pmtu));
    let mss_clamp = tc.mss_clamp_values(cfg).map(|(v4, v6)| MssClamp { v4, v6 });
    // The Destination Options header only exists with an IPv6 outer header (validated).
    let encap_limit = tc.encap_limit.filter(|_| tc.local.is_ipv6());
    let erspan = tc.erspan_rx(cfg);
    let inner_checks = if mss_clamp.is_some() {
        inner_check::MSS_CLAMP
    } else {
        0
    } | if encap_limit.is_some() {
        inner_check::ENCAP_LIMIT
    } else {
        0
    } | if erspan.is_some() {
        inner_check::ERSPAN
    } else {
        0
    } | if tc.mode == TunnelMode::Teb {
        inner_check::TEB
    } else {
        0
    };
    let mut t = Tunnel {
        index: tref.index,
        id: tref.id,
        name: tc.name.clone(),
        local: tc.local,
        remote: tc.remote,
        ikey: tc.in_key(),
        okey: tc.out_key(),
        checksum: tc.checksum,
        sequence: tc.sequence,
        reorder: tc.reorder.map(|r| (usize::from(r.window), r.timeout_ms)),
        mtu,
        pmtu,
        keepalive: tc.keepalive.map(|k| (k.interval_s, k.retries)),
        keepalive_on: tc.keepalive.is_some(),
        tos_keep: match tc.tos {
            Tos::Inherit => 0xff,
            Tos::Fixed(_) => 0x03,
        },
        tos_set: match tc.tos {
            Tos::Inherit => 0,
            Tos::Fixed(v) => v & 0xfc,
        },
        ttl_set: match tc.ttl {
            Ttl::Inherit => 0,
            Ttl::Fixed(v) => v,
        },
        allowed_sources: tc.allowed_sources.clone(),
        out_port: u16::try_from(out_port).expect("a port index fits 16 bits"),
        next_hop,
        resolved: nb.is_some(),
        template: tpl,
        ip4_base_sum,
        gre_base_sum,
        // At most MAX_ENCAP_HEADER (78).
        header_len: off as u8,
        inner_checks,
        mss_clamp,
        encap_limit,
        erspan,
        erspan_tx,
        teb: None,
        gre_off: gre_off as u8,
        key_off,
        seq_off: seq_off as u8,
        fast: 0,
        state,
    };
    t.decide_fast();
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Route::tunnel_overlap` from a real configuration: set where a tunnel route lies inside the route's prefix
    /// or contains it, clear where they are disjoint, for both families.
    #[test]
    fn routes_know_which_tunnel_routes_overlap_them() {
        // The test kit's ports and routes, plus a tunnel routing into the inside's subnets.
        let cfg = crate::datapath::testkit::config_with(
            "[[tunnel]]\nname = \"t9\"\nlocal = \"192.0.2.1\"\nremote = \"198.51.100.9\"\n\
             routes = [\"10.0.0.128/25\", \"2001:db8:1::/126\"]",
        );
        let rt = build_routes(&cfg).expect("routes");
        let flag = |a: &str| {
            let idx = match a.parse::<IpAddr>().unwrap() {
                IpAddr::V4(a) => rt.routes4.lookup(u32::from(a)),
                IpAddr::V6(a) => rt.routes6.lookup(u128::from(a)),
            };
            rt.routes[idx.expect("routed") as usize].tunnel_overlap
        };
        // The connected 10.0.0.0/24 holds 10.0.0.128/25; the default route holds every tunnel route.
        assert!(flag("10.0.0.5"));
        assert!(flag("172.16.3.4"));
        // The connected 192.0.2.0/24: no tunnel route in it or around it.
        assert!(!flag("192.0.2.9"));
        // The connected 2001:db8:1::/64 holds the /126; 2001:db8:ffff::/64 and the 2001:db8:eeee::/48 route
        // are disjoint from every tunnel route.
        assert!(flag("2001:db8:1::9"));
        assert!(!flag("2001:db8:ffff::9"));
        assert!(!flag("2001:db8:eeee::1"));
    }
}
