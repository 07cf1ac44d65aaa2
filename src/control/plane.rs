//! The gateway's control plane, as pure logic: it owns the configuration-derived state (ports, routes,
//! neighbours, tunnel states), absorbs worker events (neighbours seen, next hops to resolve), ages learned
//! neighbours, drives Cisco keepalives and tunnel up/down, and says which frames to send. `app` turns those
//! frames into mbufs; tests drive it directly.
use super::tables::{build_routes, build_tables, port_infos, static_neighbors};
use crate::config::Config;
use crate::datapath::gateway::Event;
use crate::tunnel::table::{
    FxMap, Neighbor, PortInfo, RouteTables, TableError, Tables, TunnelState,
};
use crate::wire::arp::ArpRepr;
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::icmpv6::{self, Icmpv6Repr};
use crate::wire::{gre, ipv4, MacAddr};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Learned neighbours expire after this long without being seen again.
pub const NEIGHBOR_TIMEOUT: Duration = Duration::from_secs(300);
/// Tunnel next hops are re-resolved this often, which also refreshes them before they age out.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// At most one resolution request per target per second.
pub const RESOLVE_HOLDOFF: Duration = Duration::from_secs(1);

/// A frame the control plane wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// A complete Ethernet frame for port index `port` (ARP request, neighbour solicitation).
    Frame { port: usize, bytes: Vec<u8> },
    /// An IP packet (behind a 14-byte Ethernet placeholder) to encapsulate into tunnel `tunnel` by its owner
    /// worker (keepalives: they take the tunnel's key and sequence numbers like data).
    Encap { tunnel: u32, bytes: Vec<u8> },
}

/// State changes worth a log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    TunnelUp(String),
    TunnelDown(String),
}

pub struct ControlPlane {
    cfg: Config,
    ports: Vec<PortInfo>,
    routes: Arc<RouteTables>,
    neighbors: FxMap<IpAddr, Neighbor>,
    learned_at: HashMap<IpAddr, Instant>,
    states: Vec<Arc<TunnelState>>,
    /// Run-unique id of each tunnel of `cfg` (see [`Tables::tunnel_ids`]); ids are never reused.
    ids: Arc<[u64]>,
    next_id: u64,
    generation: u64,
    last_resolve: HashMap<IpAddr, Instant>,
    next_keepalive: Vec<Instant>,
    next_refresh: Instant,
    started_tsc: u64,
    keepalive_ident: u16,
    dirty: bool,
}

impl ControlPlane {
    /// Build from a validated config and the ports' MACs (index order of `cfg.ports`).
    pub fn new(
        cfg: &Config,
        macs: &[[u8; 6]],
        now: Instant,
        now_tsc: u64,
    ) -> Result<Self, TableError> {
        let routes = Arc::new(build_routes(cfg)?);
        let states: Vec<Arc<TunnelState>> = cfg
            .tunnels
            .iter()
            .map(|_| Arc::new(TunnelState::default()))
            .collect();
        for s in &states {
            s.last_keepalive_tsc.store(now_tsc, Ordering::Relaxed);
        }
        Ok(ControlPlane {
            cfg: cfg.clone(),
            ports: port_infos(cfg, macs),
            routes,
            neighbors: static_neighbors(cfg),
            learned_at: HashMap::new(),
            next_keepalive: cfg.tunnels.iter().map(|_| now).collect(),
            states,
            ids: (0..cfg.tunnels.len() as u64).collect(),
            next_id: cfg.tunnels.len() as u64,
            generation: 0,
            last_resolve: HashMap::new(),
            next_refresh: now,
            started_tsc: now_tsc,
            keepalive_ident: 0,
            dirty: false,
        })
    }

    /// A new table generation from the current state.
    pub fn tables(&mut self) -> Tables {
        self.generation += 1;
        build_tables(
            &self.cfg,
            self.ports.clone(),
            self.routes.clone(),
            self.neighbors.clone(),
            &self.states,
            &self.ids,
            self.generation,
        )
    }

    /// Run-unique ids of the current tunnels, in `config().tunnels` order.
    pub fn tunnel_ids(&self) -> &Arc<[u64]> {
        &self.ids
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn tunnel_states(&self) -> &[Arc<TunnelState>] {
        &self.states
    }

    /// Replace the configuration (runtime tunnel/route changes): tunnels that keep their name keep their state
    /// (sequence numbers, keepalive clock).
    pub fn reconfigure(
        &mut self,
        cfg: Config,
        now: Instant,
        now_tsc: u64,
    ) -> Result<(), TableError> {
        let routes = Arc::new(build_routes(&cfg)?);
        let mut states = Vec::new();
        let mut next = Vec::new();
        let mut ids = Vec::new();
        for t in &cfg.tunnels {
            match self.cfg.tunnels.iter().position(|o| o.name == t.name) {
                Some(i) => {
                    states.push(self.states[i].clone());
                    next.push(self.next_keepalive[i]);
                    ids.push(self.ids[i]);
                }
                None => {
                    let s = Arc::new(TunnelState::default());
                    s.last_keepalive_tsc.store(now_tsc, Ordering::Relaxed);
                    states.push(s);
                    next.push(now);
                    ids.push(self.next_id);
                    self.next_id += 1;
                }
            }
        }
        self.routes = routes;
        self.states = states;
        self.ids = ids.into();
        self.dirty = true;
        self.next_keepalive = next;
        self.cfg = cfg;
        Ok(())
    }

    /// Absorb a worker event; returns a frame to send (a resolution request). Neighbour changes mark the tables
    /// dirty ([`ControlPlane::take_dirty`]).
    pub fn on_event(&mut self, e: Event, now: Instant) -> Option<Outgoing> {
        match e {
            Event::Neighbor { port, ip, mac } => {
                if self.neighbors.get(&ip).is_some_and(|n| n.is_static) {
                    return None;
                }
                self.learned_at.insert(ip, now);
                let n = Neighbor {
                    port,
                    mac,
                    is_static: false,
                };
                if self.neighbors.insert(ip, n) != Some(n) {
                    self.dirty = true;
                }
                None
            }
            Event::Resolve { port, ip } => self.resolve(port, ip, now),
        }
    }

    fn resolve(&mut self, port: usize, ip: IpAddr, now: Instant) -> Option<Outgoing> {
        if self
            .last_resolve
            .get(&ip)
            .is_some_and(|t| now.duration_since(*t) < RESOLVE_HOLDOFF)
        {
            return None;
        }
        self.last_resolve.insert(ip, now);
        let p = self.ports.get(port)?;
        match ip {
            IpAddr::V4(target) => Some(Outgoing::Frame {
                port,
                bytes: arp_request(MacAddr(p.mac), p.first_v4()?, target),
            }),
            IpAddr::V6(target) => Some(Outgoing::Frame {
                port,
                bytes: neighbor_solicitation(MacAddr(p.mac), p.first_v6()?, target),
            }),
        }
    }

    /// Periodic work: age neighbours, refresh tunnel next hops, send keepalives, judge tunnel state.
    /// Returns the frames to send and state changes; [`ControlPlane::take_dirty`] says whether to republish.
    pub fn tick(
        &mut self,
        now: Instant,
        now_tsc: u64,
        tsc_hz: u64,
    ) -> (Vec<Outgoing>, Vec<Notice>) {
        let mut out = Vec::new();
        let mut notices = Vec::new();
        let before = self.neighbors.len();
        let learned_at = &self.learned_at;
        self.neighbors.retain(|ip, n| {
            n.is_static
                || learned_at
                    .get(ip)
                    .is_some_and(|t| now.duration_since(*t) < NEIGHBOR_TIMEOUT)
        });
        if self.neighbors.len() != before {
            self.dirty = true;
        }
        if now >= self.next_refresh {
            self.next_refresh = now + REFRESH_INTERVAL;
            let hops: Vec<(usize, IpAddr)> = self
                .cfg
                .tunnels
                .iter()
                .filter_map(|t| self.routes.next_hop(t.remote))
                .collect();
            for (port, ip) in hops {
                if !self.neighbors.get(&ip).is_some_and(|n| n.is_static) {
                    if let Some(f) = self.resolve(port, ip, now) {
                        out.push(f);
                    }
                }
            }
        }
        for i in 0..self.cfg.tunnels.len() {
            let (ka, local, remote, okey) = {
                let t = &self.cfg.tunnels[i];
                match t.keepalive {
                    Some(k) => (k, t.local, t.remote, t.out_key()),
                    None => continue,
                }
            };
            let interval = Duration::from_secs(u64::from(ka.interval_s.max(1)));
            if now >= self.next_keepalive[i] {
                self.next_keepalive[i] = now + interval;
                if let (IpAddr::V4(local), IpAddr::V4(remote)) = (local, remote) {
                    out.push(Outgoing::Encap {
                        tunnel: i as u32,
                        bytes: self.keepalive_packet(local, remote, okey),
                    });
                }
            }
            // Down after `retries` intervals without a reply; up again on the first reply.
            let st = &self.states[i];
            let last = st
                .last_keepalive_tsc
                .load(Ordering::Relaxed)
                .max(self.started_tsc);
            let silent = now_tsc.saturating_sub(last);
            let limit = u64::from(ka.interval_s.max(1)) * u64::from(ka.retries.max(1)) * tsc_hz;
            let up = silent <= limit;
            if st.up.swap(up, Ordering::Relaxed) != up {
                if up {
                    // Back after silence: the peer may have restarted and numbers from 0 again (RFC 2890 has
                    // no reset); without this every packet would look late for up to 2^31 sequence numbers.
                    st.rx_seq
                        .store(gre::RECEIVER_INITIAL_SEQUENCE, Ordering::Relaxed);
                }
                let name = self.cfg.tunnels[i].name.clone();
                notices.push(if up {
                    Notice::TunnelUp(name)
                } else {
                    Notice::TunnelDown(name)
                });
            }
        }
        (out, notices)
    }

    /// The inner packet of our keepalive, behind a 14-byte Ethernet placeholder (IPv4 ethertype).
    fn keepalive_packet(&mut self, local: Ipv4Addr, remote: Ipv4Addr, key: Option<u32>) -> Vec<u8> {
        // The placeholder's addresses are written when the encapsulated packet is sent.
        let eth = EthernetRepr {
            src_addr: MacAddr::ZERO,
            dst_addr: MacAddr::ZERO,
            vlan: None,
            ethertype: ethertype::IPV4,
        };
        // IPv4 header and the longest keepalive GRE header (with a key).
        let mut b = vec![0u8; eth.header_len() + ipv4::HEADER_LEN + 8];
        let at = eth.emit(&mut b);
        self.keepalive_ident = self.keepalive_ident.wrapping_add(1);
        let n =
            gre::emit_cisco_keepalive_inner(remote, local, self.keepalive_ident, key, &mut b[at..]);
        b.truncate(at + n);
        b
    }

    /// True (once) when the tables changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Current neighbours (for `ctl` and tests).
    pub fn neighbors(&self) -> &FxMap<IpAddr, Neighbor> {
        &self.neighbors
    }
}

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
