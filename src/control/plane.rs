//! The gateway's control plane, as pure logic: it owns the configuration-derived state (ports, routes,
//! neighbours, tunnel states), absorbs worker events (neighbours seen, next hops to resolve), ages learned
//! neighbours, drives Cisco keepalives and tunnel up/down, and says which frames to send. `app` turns those
//! frames into mbufs; tests drive it directly.
use super::prefixes::{overlapping, overlaps_any, prefix_key, PrefixKey};
pub use super::probes::{arp_request, neighbor_solicitation};
use super::tables::{
    build_routes, build_tables, mac_tables, port_infos, static_neighbors, RouteSlots,
};
use crate::config::{Config, RouteCfg};
use crate::datapath::gateway::Event;
use crate::tunnel::table::{FxMap, Neighbor, PortInfo, Route, TableError, Tables, TunnelState};
use crate::tunnel::update::{RouteChange, RouteTablesWriter};
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::{gre, ipv4, MacAddr};
use greway_datapath::bridge::mac_table::MacTable;
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
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

/// A route change asked for at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteTarget {
    /// An inner prefix into the named tunnel (one of the tunnel's `routes`).
    Tunnel(String),
    /// An underlay `[[route]]`.
    Port { port: String, via: Option<IpAddr> },
    /// A `[[route]]` via a peer on a tunnel's subnet: into that tunnel, resolved when it is installed.
    Via(IpAddr),
}

/// Where an installed route came from, kept with every route (`greway ctl route show`).
///
/// Precedence on one prefix: a prefix holds one route of each table (one into a tunnel, one out of a port; the
/// route into a tunnel wins in forwarding). A route added on a prefix that already has one is refused, and a
/// kernel route is also refused on a prefix where a config route exists in either table, so that config
/// routes always win over kernel routes; removing kernel routes ([`ControlPlane::del_route_of`]) never
/// touches a config or ctl route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteOrigin {
    /// The configuration file (the tunnel's `routes`, `[[route]]`).
    Config,
    /// `greway ctl route add` (or a tunnel added with `greway ctl tunnel add --route`).
    Ctl,
    /// Learned from the kernel's routing table.
    Kernel,
}

impl RouteOrigin {
    pub fn name(self) -> &'static str {
        match self {
            RouteOrigin::Config => "config",
            RouteOrigin::Ctl => "ctl",
            RouteOrigin::Kernel => "kernel",
        }
    }
}

impl std::fmt::Display for RouteOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The two route tables of a prefix: into a tunnel (`encap4`/`encap6`) or out of a port (`routes4`/`routes6`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteTable {
    Tunnel,
    Port,
}

/// What put a prefix into a tunnel's route table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EncapKind {
    /// The subnet of one of the tunnel's own addresses (changes only with the tunnel).
    Connected,
    /// One of the tunnel's `routes`.
    TunnelRoute,
    /// A `[[route]]` with `tunnel = NAME` or `via` a peer on the tunnel's subnet.
    Route,
}

/// A prefix in a tunnel's route table: the tunnel's index and why it is there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EncapEntry {
    tunnel: usize,
    kind: EncapKind,
}

pub struct ControlPlane {
    cfg: Config,
    ports: Vec<PortInfo>,
    /// The route tables, changed in place and double-buffered (see `tunnel::update`).
    routes: RouteTablesWriter,
    /// Where each underlay route lives in the route tables.
    slots: RouteSlots,
    /// Every prefix into a tunnel (tunnel subnets, tunnel routes, `[[route]]`s into tunnels) -> its tunnel.
    tunnel_prefixes: BTreeMap<PrefixKey, EncapEntry>,
    /// The origin of every installed route but connected subnets, by table and prefix.
    origins: HashMap<(RouteTable, IpNet), RouteOrigin>,
    /// Every underlay prefix (connected subnets and `[[route]]`s).
    underlay: BTreeMap<PrefixKey, ()>,
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
    /// One MAC table per `[[bridge]]` (config order), shared with the workers through every table generation;
    /// aged entries are given up once a second (`next_mac_expiry`).
    mac_tables: Vec<Arc<MacTable>>,
    /// Run-unique id of each bridge (config order): the slot of its counters (`Counters::bridges`).
    bridge_ids: Arc<[u32]>,
    next_bridge_id: u32,
    next_mac_expiry: Instant,
    /// Run-unique id of each `[[mirror]]` entry (config order): the slot of its counters (`Counters::mirrors`).
    mirror_ids: Arc<[u32]>,
    next_mirror_id: u32,
}

impl ControlPlane {
    /// Build from a validated config and the ports' MACs (index order of `cfg.ports`).
    pub fn new(
        cfg: &Config,
        macs: &[[u8; 6]],
        now: Instant,
        now_tsc: u64,
    ) -> Result<Self, TableError> {
        let routes = RouteTablesWriter::new(build_routes(cfg)?);
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
            slots: RouteSlots::of(cfg),
            tunnel_prefixes: tunnel_prefixes(cfg),
            origins: route_keys(cfg).map(|k| (k, RouteOrigin::Config)).collect(),
            underlay: underlay_prefixes(cfg),
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
            mac_tables: mac_tables(cfg),
            bridge_ids: (0..cfg.bridges.len() as u32).collect(),
            next_bridge_id: cfg.bridges.len() as u32,
            next_mac_expiry: now,
            mirror_ids: (0..cfg.mirrors.len() as u32).collect(),
            next_mirror_id: cfg.mirrors.len() as u32,
        })
    }

    /// Whether port `port`'s NIC verifies received IPv4 header checksums (the runtime knows once it configured
    /// the port): the fast paths then take the mbuf's verdict (see `PortInfo::rx_ipv4_cksum`). In the tables
    /// built from now on.
    pub fn set_rx_ipv4_cksum(&mut self, port: usize, on: bool) {
        if let Some(p) = self.ports.get_mut(port) {
            p.rx_ipv4_cksum = on;
        }
    }

    /// A new table generation from the current state.
    pub fn tables(&mut self) -> Tables {
        self.generation += 1;
        build_tables(
            &self.cfg,
            self.ports.clone(),
            self.routes.current().clone(),
            self.neighbors.clone(),
            &self.states,
            &self.ids,
            &self.mac_tables,
            &self.bridge_ids,
            &self.mirror_ids,
            self.generation,
        )
    }

    /// Run-unique ids of the current `[[mirror]]` entries, in `config().mirrors` order: where their counters are.
    pub fn mirror_ids(&self) -> &[u32] {
        &self.mirror_ids
    }

    /// Run-unique ids of the current bridges, in `config().bridges` order: where their counters are.
    pub fn bridge_ids(&self) -> &[u32] {
        &self.bridge_ids
    }

    /// The bridges' MAC tables, in `config().bridges` order.
    pub fn mac_tables(&self) -> &[Arc<MacTable>] {
        &self.mac_tables
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

    /// Replace the configuration (runtime tunnel changes from `greway ctl`): see `ControlPlane::replace_config`.
    /// Routes new to the tables are `ctl` routes; the others keep their origin.
    pub fn reconfigure(
        &mut self,
        cfg: Config,
        now: Instant,
        now_tsc: u64,
    ) -> Result<(), TableError> {
        self.replace_config(cfg, now, now_tsc, |old| old.unwrap_or(RouteOrigin::Ctl))
    }

    /// Replace the configuration with `cfg` (validated), rebuilding the route tables from it (not published: the
    /// caller publishes [`ControlPlane::tables`] once). What outlives the change:
    /// - a tunnel that keeps its name and its settings (all but its `routes`, [`TunnelCfg::same_settings`])
    ///   keeps its run-unique id, and with it its state (sequence numbers, keepalive clock and state, learned
    ///   path MTU), counters, reorder buffer and owner worker; any other tunnel is new, with a new id;
    /// - a bridge whose settings are unchanged keeps its MAC table and counters; a new or changed one starts
    ///   empty;
    /// - a `[[mirror]]` entry with the same port, direction and tunnel, into a tunnel kept as above, keeps its
    ///   run-unique id and counters (`control::mirrors::mirror_ids`); a new or changed one starts from zero;
    /// - learned neighbours stay; static ones follow `cfg` (a static entry removed is forgotten, to be learned
    ///   again).
    ///
    /// `origin` gives each route of `cfg` its origin from the one it had (None: a new route). On an error
    /// nothing has changed.
    ///
    /// [`TunnelCfg::same_settings`]: crate::config::TunnelCfg::same_settings
    pub(super) fn replace_config(
        &mut self,
        cfg: Config,
        now: Instant,
        now_tsc: u64,
        origin: impl Fn(Option<RouteOrigin>) -> RouteOrigin,
    ) -> Result<(), TableError> {
        let routes = build_routes(&cfg)?;
        let mut states = Vec::new();
        let mut next = Vec::new();
        let mut ids = Vec::new();
        for t in &cfg.tunnels {
            match self
                .cfg
                .tunnels
                .iter()
                .position(|o| o.name == t.name && o.same_settings(t))
            {
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
        let mut macs = Vec::new();
        let mut bridge_ids = Vec::new();
        for b in &cfg.bridges {
            match self.cfg.bridges.iter().position(|o| o == b) {
                Some(i) => {
                    macs.push(self.mac_tables[i].clone());
                    bridge_ids.push(self.bridge_ids[i]);
                }
                None => {
                    macs.push(Arc::new(MacTable::new(b.mac_table_size, b.aging_s)));
                    bridge_ids.push(self.next_bridge_id);
                    self.next_bridge_id += 1;
                }
            }
        }
        let mirror_ids =
            super::mirrors::mirror_ids(&self.cfg, &self.mirror_ids, &cfg, &mut self.next_mirror_id);
        if cfg.neighbors != self.cfg.neighbors {
            let statics = static_neighbors(&cfg);
            self.neighbors
                .retain(|ip, n| !n.is_static || statics.contains_key(ip));
            for (ip, n) in statics {
                self.learned_at.remove(&ip);
                self.neighbors.insert(ip, n);
            }
        }
        self.routes.replace(routes);
        self.slots = RouteSlots::of(&cfg);
        self.tunnel_prefixes = tunnel_prefixes(&cfg);
        let old = std::mem::take(&mut self.origins);
        self.origins = route_keys(&cfg)
            .map(|k| (k, origin(old.get(&k).copied())))
            .collect();
        self.underlay = underlay_prefixes(&cfg);
        self.states = states;
        self.ids = ids.into();
        self.mac_tables = macs;
        self.bridge_ids = bridge_ids.into();
        self.mirror_ids = mirror_ids.into();
        self.dirty = true;
        self.next_keepalive = next;
        self.cfg = cfg;
        Ok(())
    }

    /// Adds a route at run time in place (no table is rebuilt): validated like the file, then applied to
    /// the route tables, and remembered with its `origin`. The caller publishes [`ControlPlane::tables`].
    /// Routes learned from the kernel come through here too, with [`RouteOrigin::Kernel`]; see
    /// [`RouteOrigin`] for which route wins on one prefix.
    pub fn add_route(
        &mut self,
        p: IpNet,
        target: RouteTarget,
        origin: RouteOrigin,
    ) -> Result<(), String> {
        let key = prefix_key(&p);
        let entry = self.tunnel_prefixes.get(&key).copied();
        if origin == RouteOrigin::Kernel {
            let config = [RouteTable::Tunnel, RouteTable::Port]
                .iter()
                .any(|&t| self.origins.get(&(t, p)) == Some(&RouteOrigin::Config));
            if config || entry.is_some_and(|e| e.kind == EncapKind::Connected) {
                return Err(format!(
                    "{p} has a route from the configuration, which wins over kernel routes"
                ));
            }
        }
        match target {
            RouteTarget::Tunnel(name) => {
                let Some(ti) = self.cfg.tunnels.iter().position(|t| t.name == name) else {
                    return Err(format!("no tunnel named {name:?}"));
                };
                if let Some(e) = entry.filter(|e| e.kind == EncapKind::Route) {
                    return Err(format!(
                        "route {p} already goes into tunnel {:?} (a route via its subnet); a prefix can go \
                         to one tunnel only",
                        self.cfg.tunnels[e.tunnel].name
                    ));
                }
                crate::config::validate_tunnel_route_addition(
                    &self.cfg,
                    ti,
                    &p,
                    entry.map(|e| e.tunnel),
                )
                .map_err(|e| e.to_string())?;
                self.route_into_tunnel(p, ti)?;
                self.cfg.tunnels[ti].routes.push(p);
                self.tunnel_prefixes.insert(
                    key,
                    EncapEntry {
                        tunnel: ti,
                        kind: EncapKind::TunnelRoute,
                    },
                );
                self.origins.insert((RouteTable::Tunnel, p), origin);
            }
            RouteTarget::Via(via) => {
                let rc = RouteCfg {
                    prefix: p,
                    via: Some(via),
                    port: None,
                    tunnel: None,
                };
                let exists = self.slots.configured.contains_key(&p)
                    || entry.is_some_and(|e| e.kind == EncapKind::Route);
                crate::config::validate_route_addition(
                    &self.cfg,
                    &rc,
                    exists,
                    entry.map(|e| e.tunnel),
                )
                .map_err(|e| e.to_string())?;
                let ti = self
                    .cfg
                    .route_tunnel(&rc)
                    .expect("validated: via a tunnel's peer");
                self.route_into_tunnel(p, ti)?;
                self.cfg.routes.push(rc);
                self.tunnel_prefixes.insert(
                    key,
                    EncapEntry {
                        tunnel: ti,
                        kind: EncapKind::Route,
                    },
                );
                self.origins.insert((RouteTable::Tunnel, p), origin);
            }
            RouteTarget::Port { port, via } => {
                let rc = RouteCfg::through_port(p, port, via);
                let exists = self.slots.configured.contains_key(&p)
                    || entry.is_some_and(|e| e.kind == EncapKind::Route);
                crate::config::validate_route_addition(
                    &self.cfg,
                    &rc,
                    exists,
                    entry.map(|e| e.tunnel),
                )
                .map_err(|e| e.to_string())?;
                let port = self
                    .cfg
                    .port_index(rc.port.as_deref().unwrap_or_default())
                    .expect("validated");
                let slot = self.slots.alloc();
                let route = Route {
                    port,
                    via,
                    tunnel_overlap: overlaps_any(&self.tunnel_prefixes, &p),
                };
                let changes = [
                    RouteChange::Slot(slot, route),
                    RouteChange::Route(p, Some(slot)),
                ];
                if let Err(e) = self.apply(&changes) {
                    self.slots.free.push(slot);
                    return Err(e);
                }
                self.cfg.routes.push(rc);
                self.slots.configured.insert(p, slot);
                self.underlay.insert(key, ());
                self.origins.insert((RouteTable::Port, p), origin);
            }
        }
        Ok(())
    }

    /// Puts `p` into tunnel `ti`'s route table in place, and flags the underlay routes around or inside it as
    /// overlapping a tunnel route.
    fn route_into_tunnel(&mut self, p: IpNet, ti: usize) -> Result<(), String> {
        let mut changes = vec![RouteChange::Encap(p, Some(ti as u32))];
        let current = self.routes.current().clone();
        for u in overlapping(&self.underlay, &p) {
            for slot in self.slots.of_prefix(&u) {
                let r = current.routes[slot as usize];
                if !r.tunnel_overlap {
                    changes.push(RouteChange::Slot(
                        slot,
                        Route {
                            tunnel_overlap: true,
                            ..r
                        },
                    ));
                }
            }
        }
        // Not held across the change: an unpublished generation is then changed in place.
        drop(current);
        self.apply(&changes)
    }

    /// How many installed routes came from `origin`.
    pub fn origins_of(&self, origin: RouteOrigin) -> usize {
        self.origins.values().filter(|&&o| o == origin).count()
    }

    /// The origin of the route for `p` in `table`, if there is one (connected subnets have none).
    pub fn route_origin(&self, table: RouteTable, p: &IpNet) -> Option<RouteOrigin> {
        self.origins.get(&(table, *p)).copied()
    }

    /// Removes every route for `p` (a route into a tunnel and a route out of a port), whatever its origin, at
    /// run time, in place. A tunnel's connected subnet goes only with the tunnel.
    pub fn del_route(&mut self, p: IpNet) -> Result<(), String> {
        self.del_route_where(p, None)
    }

    /// Removes the routes for `p` that came from `origin` (a kernel route withdrawn leaves a config or ctl
    /// route on the same prefix alone).
    pub fn del_route_of(&mut self, p: IpNet, origin: RouteOrigin) -> Result<(), String> {
        self.del_route_where(p, Some(origin))
    }

    fn del_route_where(&mut self, p: IpNet, origin: Option<RouteOrigin>) -> Result<(), String> {
        let key = prefix_key(&p);
        let from = |t: RouteTable| origin.is_none() || self.route_origin(t, &p) == origin;
        let entry = self.tunnel_prefixes.get(&key).copied();
        let tunnel = entry.filter(|e| e.kind != EncapKind::Connected && from(RouteTable::Tunnel));
        let configured = self
            .slots
            .configured
            .get(&p)
            .copied()
            .filter(|_| from(RouteTable::Port));
        // Stored prefixes have no host bits (validated), and a prefix is matched exactly.
        if p.trunc() != p || (tunnel.is_none() && configured.is_none()) {
            if let Some(e) = entry.filter(|e| e.kind == EncapKind::Connected && p.trunc() == p) {
                return Err(format!(
                    "{p} is the connected subnet of tunnel {:?}: it goes with the tunnel's address",
                    self.cfg.tunnels[e.tunnel].name
                ));
            }
            return Err(match origin {
                Some(o) => format!("no {o} route {p}"),
                None => format!("no route {p}"),
            });
        }
        if configured.is_some() {
            crate::config::validate_route_removal(&self.cfg, &p).map_err(|e| e.to_string())?;
        }
        let mut changes = Vec::new();
        if let Some(EncapEntry { tunnel: ti, kind }) = tunnel {
            changes.push(RouteChange::Encap(p, None));
            self.tunnel_prefixes.remove(&key);
            self.origins.remove(&(RouteTable::Tunnel, p));
            let current = self.routes.current().clone();
            for u in overlapping(&self.underlay, &p) {
                let still = overlaps_any(&self.tunnel_prefixes, &u);
                for slot in self.slots.of_prefix(&u) {
                    let r = current.routes[slot as usize];
                    if r.tunnel_overlap != still {
                        changes.push(RouteChange::Slot(
                            slot,
                            Route {
                                tunnel_overlap: still,
                                ..r
                            },
                        ));
                    }
                }
            }
            if kind == EncapKind::TunnelRoute {
                let routes = &mut self.cfg.tunnels[ti].routes;
                if let Some(i) = routes.iter().position(|r| *r == p) {
                    routes.remove(i);
                }
            } else if let Some(i) = self
                .cfg
                .routes
                .iter()
                .position(|r| r.prefix == p && r.port.is_none())
            {
                self.cfg.routes.remove(i);
            }
        }
        if let Some(slot) = configured {
            // The connected subnet it shadowed (if any) takes the prefix back.
            let connected = self.slots.connected.get(&p).copied();
            changes.push(RouteChange::Route(p, connected));
            if connected.is_none() {
                self.underlay.remove(&key);
            }
            self.slots.configured.remove(&p);
            self.slots.free.push(slot);
            self.origins.remove(&(RouteTable::Port, p));
            if let Some(i) = self
                .cfg
                .routes
                .iter()
                .position(|r| r.prefix == p && r.port.is_some())
            {
                self.cfg.routes.remove(i);
            }
        }
        // Removals cannot run out of groups.
        self.apply(&changes)
    }

    fn apply(&mut self, changes: &[RouteChange]) -> Result<(), String> {
        self.dirty = true;
        self.routes
            .apply(changes)
            .map(drop)
            .map_err(|(_, e)| format!("route table: {e}"))
    }

    /// The current route tables (for tests comparing them with a fresh build).
    pub fn route_tables(&self) -> &Arc<crate::tunnel::table::RouteTables> {
        self.routes.current()
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
        if now >= self.next_mac_expiry {
            self.next_mac_expiry = now + Duration::from_secs(1);
            let now_s = greway_datapath::bridge::clock_s(now_tsc, tsc_hz);
            for t in &self.mac_tables {
                t.expire(now_s);
            }
        }
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
                .filter_map(|t| self.routes.current().next_hop(t.remote))
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

fn tunnel_prefixes(cfg: &Config) -> BTreeMap<PrefixKey, EncapEntry> {
    let mut m = BTreeMap::new();
    let mut put = |p: &IpNet, tunnel: usize, kind: EncapKind| {
        m.entry(prefix_key(&p.trunc()))
            .or_insert(EncapEntry { tunnel, kind });
    };
    for (i, t) in cfg.tunnels.iter().enumerate() {
        for n in t.subnets() {
            put(&n, i, EncapKind::Connected);
        }
        for r in &t.routes {
            put(r, i, EncapKind::TunnelRoute);
        }
    }
    for r in &cfg.routes {
        if let Some(i) = cfg.route_tunnel(r) {
            put(&r.prefix, i, EncapKind::Route);
        }
    }
    m
}

fn underlay_prefixes(cfg: &Config) -> BTreeMap<PrefixKey, ()> {
    let connected = cfg.ports.iter().flat_map(|p| p.addresses.iter());
    let routes = cfg.routes.iter().filter(|r| r.port.is_some());
    connected
        .chain(routes.map(|r| &r.prefix))
        .map(|p| (prefix_key(&p.trunc()), ()))
        .collect()
}

/// The (table, prefix) of every route of `cfg` but the connected subnets.
fn route_keys(cfg: &Config) -> impl Iterator<Item = (RouteTable, IpNet)> + '_ {
    let tunnel_routes = cfg
        .tunnels
        .iter()
        .flat_map(|t| t.routes.iter().map(|r| (RouteTable::Tunnel, r.trunc())));
    let routes = cfg.routes.iter().map(|r| {
        let table = if r.port.is_some() {
            RouteTable::Port
        } else {
            RouteTable::Tunnel
        };
        (table, r.prefix.trunc())
    });
    tunnel_routes.chain(routes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    /// Prefixes that overlap each other, the config's tunnel routes, its connected subnets and its
    /// underlay routes (whose removal would leave a tunnel's remote unreachable).
    const POOL: &[&str] = &[
        "10.0.0.0/8",
        "10.0.0.0/24",
        "10.20.0.0/16",
        "10.20.5.0/24",
        "10.20.5.64/26",
        "10.20.5.77/32",
        "10.60.0.0/16",
        "10.99.0.0/16",
        "0.0.0.0/0",
        "192.0.2.0/24",
        "203.0.113.0/24",
        "2001:db8:1::/64",
        "2001:db8:20::/48",
        "2001:db8:20:1::/64",
        "2001:db8:20:1::80/121",
        "2001:db8:eeee::/48",
        "2001:db8::/32",
        "10.20.5.1/24",
        "169.254.100.0/29",
        "169.254.100.0/24",
    ];

    /// The test kit's configuration with an address on t1: 169.254.100.1/29, its peer 169.254.100.2.
    fn addressed() -> Config {
        crate::datapath::testkit::config_with("address = \"169.254.100.1/29\"")
    }

    /// The change as the old path made it: on a copy of the config, validated as a whole.
    fn old_path(cfg: &Config, op: &(u8, IpNet)) -> Result<Config, ()> {
        let (kind, p) = *op;
        let mut c = cfg.clone();
        match kind {
            0 | 1 => {
                let t = if kind == 0 { "t1" } else { "t6" };
                c.tunnels
                    .iter_mut()
                    .find(|x| x.name == t)
                    .unwrap()
                    .routes
                    .push(p);
            }
            2 => c.routes.push(RouteCfg::through_port(p, "inside", None)),
            5 => c.routes.push(RouteCfg {
                prefix: p,
                via: Some("169.254.100.2".parse().unwrap()),
                port: None,
                tunnel: None,
            }),
            _ => {
                let mut found = false;
                for t in &mut c.tunnels {
                    let n = t.routes.len();
                    t.routes.retain(|r| *r != p);
                    found |= t.routes.len() != n;
                }
                let n = c.routes.len();
                c.routes.retain(|r| r.prefix != p);
                found |= c.routes.len() != n;
                if !found {
                    return Err(());
                }
            }
        }
        crate::config::validate_runtime(&c)
            .map(|()| c)
            .map_err(drop)
    }

    fn probes(p: &IpNet) -> Vec<IpAddr> {
        let one = |a: IpAddr, up: bool| match a {
            IpAddr::V4(a) => {
                let x = u32::from(a);
                IpAddr::V4(Ipv4Addr::from(if up {
                    x.wrapping_add(1)
                } else {
                    x.wrapping_sub(1)
                }))
            }
            IpAddr::V6(a) => {
                let x = u128::from(a);
                IpAddr::V6(Ipv6Addr::from(if up {
                    x.wrapping_add(1)
                } else {
                    x.wrapping_sub(1)
                }))
            }
        };
        let (n, b) = (p.network(), p.broadcast());
        vec![n, b, one(n, false), one(b, true), one(n, true)]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        /// Route changes applied in place (into tunnels by name or via a peer on a tunnel's subnet, out of a
        /// port, removals) accept and refuse exactly what the old path (a whole copy of the config, validated) did, keep the same configuration, and leave route tables that answer like
        /// tables built afresh from it: tunnel index, egress port, next hop and the tunnel-overlap flag.
        #[test]
        fn route_changes_in_place_equal_a_rebuild(
            ops in prop::collection::vec((0u8..6, 0..POOL.len()), 1..40),
        ) {
            let cfg = addressed();
            let now = Instant::now();
            let mut cp = ControlPlane::new(&cfg, &[[0; 6]; 2], now, 0).unwrap();
            let mut expect = cfg.clone();
            for &(kind, i) in &ops {
                let p: IpNet = POOL[i].parse().unwrap();
                let old = old_path(&expect, &(kind, p));
                let new = match kind {
                    0 => cp.add_route(p, RouteTarget::Tunnel("t1".into()), RouteOrigin::Ctl),
                    1 => cp.add_route(p, RouteTarget::Tunnel("t6".into()), RouteOrigin::Ctl),
                    2 => cp.add_route(
                        p,
                        RouteTarget::Port { port: "inside".into(), via: None },
                        RouteOrigin::Ctl,
                    ),
                    5 => cp.add_route(p, RouteTarget::Via("169.254.100.2".parse().unwrap()), RouteOrigin::Ctl),
                    _ => cp.del_route(p),
                };
                prop_assert_eq!(old.is_ok(), new.is_ok(), "{} {}: {:?}", kind, p, new);
                if let Ok(c) = old {
                    expect = c;
                }
                prop_assert_eq!(&expect, cp.config());
            }
            let fresh = build_routes(cp.config()).unwrap();
            let cur = cp.route_tables();
            for a in POOL.iter().flat_map(|p| probes(&p.parse().unwrap())) {
                let (e_cur, e_fresh, r_cur, r_fresh) = match a {
                    IpAddr::V4(x) => (
                        cur.encap4.lookup_addr(x),
                        fresh.encap4.lookup_addr(x),
                        cur.routes4.lookup_addr(x),
                        fresh.routes4.lookup_addr(x),
                    ),
                    IpAddr::V6(x) => (
                        cur.encap6.lookup_addr(x),
                        fresh.encap6.lookup_addr(x),
                        cur.routes6.lookup_addr(x),
                        fresh.routes6.lookup_addr(x),
                    ),
                };
                prop_assert_eq!(e_cur, e_fresh, "encap {}", a);
                let r_cur = r_cur.map(|i| cur.routes[i as usize]);
                let r_fresh = r_fresh.map(|i| fresh.routes[i as usize]);
                prop_assert_eq!(r_cur, r_fresh, "route {}", a);
            }
            // The published generation resolves tunnels through the changed routes.
            let t = cp.tables();
            prop_assert_eq!(t.tunnels.len(), 2);
        }
    }

    /// Every installed route keeps its origin; routes via a tunnel's peer resolve to that tunnel; a tunnel's
    /// connected subnet is no route to add or remove; a kernel route never displaces a config route, and
    /// removing kernel routes leaves the others alone.
    #[test]
    fn route_origins_and_routes_via_tunnel_peers() {
        let cfg = crate::datapath::testkit::config_with(
            "address = [\"169.254.100.1/29\", \"fd00:100::1/125\"]\n\
             [[route]]\nprefix = \"10.70.0.0/16\"\nvia = \"169.254.100.2\"\n\
             [[route]]\nprefix = \"2001:db8:70::/48\"\ntunnel = \"t1\"",
        );
        let mut cp = ControlPlane::new(&cfg, &[[0; 6]; 2], Instant::now(), 0).unwrap();
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let encap = |cp: &ControlPlane, a: &str| match a.parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => cp.route_tables().encap4.lookup_addr(a),
            IpAddr::V6(a) => cp.route_tables().encap6.lookup_addr(a),
        };
        let (t, port) = (RouteTable::Tunnel, RouteTable::Port);
        assert_eq!(
            cp.route_origin(t, &net("10.70.0.0/16")),
            Some(RouteOrigin::Config)
        );
        assert_eq!(
            cp.route_origin(t, &net("10.20.0.0/16")),
            Some(RouteOrigin::Config)
        );
        assert_eq!(
            cp.route_origin(port, &net("0.0.0.0/0")),
            Some(RouteOrigin::Config)
        );
        assert_eq!(
            cp.route_origin(t, &net("169.254.100.0/29")),
            None,
            "connected"
        );
        for a in [
            "10.70.1.1",
            "2001:db8:70::1",
            "169.254.100.6",
            "fd00:100::3",
        ] {
            assert_eq!(encap(&cp, a), Some(0), "{a} into t1");
        }
        assert_eq!(encap(&cp, "169.254.100.8"), None);

        let peer = RouteTarget::Via("169.254.100.2".parse().unwrap());
        cp.add_route(net("10.71.0.0/16"), peer.clone(), RouteOrigin::Ctl)
            .unwrap();
        assert_eq!(encap(&cp, "10.71.2.3"), Some(0));
        assert_eq!(
            cp.route_origin(t, &net("10.71.0.0/16")),
            Some(RouteOrigin::Ctl)
        );
        let e = cp
            .add_route(
                net("10.72.0.0/16"),
                RouteTarget::Via("169.254.101.2".parse().unwrap()),
                RouteOrigin::Ctl,
            )
            .unwrap_err();
        assert!(
            e.contains("route[5].via") && e.contains("on no tunnel's subnet"),
            "{e}"
        );
        let e = cp
            .add_route(
                net("10.71.0.0/16"),
                RouteTarget::Tunnel("t6".into()),
                RouteOrigin::Ctl,
            )
            .unwrap_err();
        assert!(e.contains("already goes into tunnel \"t1\""), "{e}");
        for target in [
            RouteTarget::Tunnel("t6".into()),
            RouteTarget::Port {
                port: "inside".into(),
                via: None,
            },
            peer.clone(),
        ] {
            let e = cp
                .add_route(net("169.254.100.0/29"), target, RouteOrigin::Ctl)
                .unwrap_err();
            assert!(e.contains("connected subnet of tunnel[0] \"t1\""), "{e}");
        }
        let e = cp.del_route(net("169.254.100.0/29")).unwrap_err();
        assert!(e.contains("connected subnet of tunnel \"t1\""), "{e}");

        // Kernel routes: never over a config route, and withdrawn without touching others.
        let e = cp
            .add_route(
                net("10.70.0.0/16"),
                RouteTarget::Port {
                    port: "inside".into(),
                    via: None,
                },
                RouteOrigin::Kernel,
            )
            .unwrap_err();
        assert!(e.contains("wins over kernel routes"), "{e}");
        cp.add_route(net("10.73.0.0/16"), peer, RouteOrigin::Kernel)
            .unwrap();
        assert_eq!(
            cp.route_origin(t, &net("10.73.0.0/16")),
            Some(RouteOrigin::Kernel)
        );
        let e = cp
            .del_route_of(net("10.70.0.0/16"), RouteOrigin::Kernel)
            .unwrap_err();
        assert!(e.contains("no kernel route 10.70.0.0/16"), "{e}");
        assert_eq!(encap(&cp, "10.70.0.1"), Some(0), "the config route stays");
        cp.del_route_of(net("10.73.0.0/16"), RouteOrigin::Kernel)
            .unwrap();
        assert_eq!(encap(&cp, "10.73.0.1"), None);
        assert_eq!(cp.route_origin(t, &net("10.73.0.0/16")), None);

        // ctl removes any route; what is left equals a fresh build of the configuration it leaves.
        cp.del_route(net("10.70.0.0/16")).unwrap();
        assert_eq!(encap(&cp, "10.70.0.1"), None);
        assert!(cp
            .config()
            .routes
            .iter()
            .all(|r| r.prefix != net("10.70.0.0/16")));
        let fresh = build_routes(cp.config()).unwrap();
        for a in [
            "10.70.0.1",
            "10.71.0.1",
            "10.73.0.1",
            "169.254.100.3",
            "10.20.0.1",
        ] {
            let IpAddr::V4(x) = a.parse().unwrap() else {
                unreachable!()
            };
            assert_eq!(encap(&cp, a), fresh.encap4.lookup_addr(x), "{a}");
        }
    }
}
