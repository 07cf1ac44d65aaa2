//! What a configuration reload changes: the running configuration against a newly read file, section by section.
//!
//! # Contract
//! [`ReloadDiff::between`] either names every change that only a restart can apply ([`RestartNeeded`]: EAL
//! arguments, `[dataplane]`, ports, `[metrics]`, `[control]`, `[host]` but its `punt_pps`) or says, per section
//! that changes at run time, which items a reload adds, changes and removes. Items are matched by their identity:
//! tunnels and bridges by name, routes by (route table, prefix), static neighbours by (port, address), `[[mirror]]`
//! entries by (port, direction, tunnel) ([`MirrorCfg::identity`]). A tunnel whose only change is its `routes` is
//! not changed: the routes are (section `routes`). A mirror entry whose tunnel is replaced is changed
//! ([`mirror_kept`]): its session starts again.
//!
//! A section that becomes changeable at run time gets one line in [`ReloadDiff::between`] (its [`SectionDiff`]), a
//! field in [`ReloadDiff`] and in [`ReloadDiff::summary`], and its restart rule leaves [`restart_needed`]; if it
//! has run-time state that must survive a reload (as tunnels, bridges and mirror entries do), the carry-over goes
//! in `ControlPlane::replace_config` (`src/control/plane.rs`), the one step that applies a reload.
use super::{Config, MirrorCfg, RouteCfg, TunnelCfg};
use ipnet::IpNet;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// The items of one section that a reload adds, changes and removes (names as `greway ctl` shows them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SectionDiff {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl SectionDiff {
    /// `old` and `new` matched by `key` (its text is the item's name) and compared with `same`; names in key
    /// order.
    pub fn of<T, K: Ord + fmt::Display>(
        old: impl IntoIterator<Item = T>,
        new: impl IntoIterator<Item = T>,
        key: impl Fn(&T) -> K,
        same: impl Fn(&T, &T) -> bool,
    ) -> SectionDiff {
        let old: BTreeMap<K, T> = old.into_iter().map(|x| (key(&x), x)).collect();
        let mut new: BTreeMap<K, T> = new.into_iter().map(|x| (key(&x), x)).collect();
        let mut d = SectionDiff::default();
        for (k, o) in &old {
            match new.remove(k) {
                None => d.removed.push(k.to_string()),
                Some(n) if !same(o, &n) => d.changed.push(k.to_string()),
                Some(_) => {}
            }
        }
        d.added = new.keys().map(ToString::to_string).collect();
        d
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// What a reload changes, per section that changes at run time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReloadDiff {
    /// `[[tunnel]]` by name. A changed tunnel is replaced: it starts with fresh state and counters.
    pub tunnels: SectionDiff,
    /// The tunnels' `routes` and the `[[route]]`s, by route table and prefix.
    pub routes: SectionDiff,
    /// `[[neighbor]]` by port and address.
    pub neighbors: SectionDiff,
    /// `[[bridge]]` by name. A changed bridge starts with an empty MAC table and fresh counters.
    pub bridges: SectionDiff,
    /// `[[mirror]]` by port, direction and tunnel (`PORT DIRECTION -> TUNNEL`). A changed entry (its tunnel
    /// replaced) starts with fresh counters.
    pub mirrors: SectionDiff,
    /// `[host]` keys that change at run time (`punt_pps`).
    pub host: SectionDiff,
}

impl ReloadDiff {
    /// What reloading `new` over the running `old` changes, or every change that needs a restart.
    pub fn between(old: &Config, new: &Config) -> Result<ReloadDiff, RestartNeeded> {
        let restart = restart_needed(old, new);
        if !restart.is_empty() {
            return Err(RestartNeeded(restart));
        }
        Ok(ReloadDiff {
            tunnels: SectionDiff::of(
                &old.tunnels,
                &new.tunnels,
                |t| t.name.clone(),
                |a, b| a.same_settings(b),
            ),
            routes: SectionDiff::of(
                route_entries(old),
                route_entries(new),
                |r| r.0.clone(),
                |a, b| a.1 == b.1,
            ),
            neighbors: SectionDiff::of(
                &old.neighbors,
                &new.neighbors,
                |n| format!("{} {}", n.port, n.ip),
                |a, b| a == b,
            ),
            bridges: SectionDiff::of(
                &old.bridges,
                &new.bridges,
                |b| b.name.clone(),
                |a, b| a == b,
            ),
            mirrors: SectionDiff::of(
                &old.mirrors,
                &new.mirrors,
                |m| m.identity(),
                |a, b| mirror_kept(old, a, new, b),
            ),
            host: SectionDiff::of(
                old.host.iter().map(|h| ("punt_pps", h.punt_pps)),
                new.host.iter().map(|h| ("punt_pps", h.punt_pps)),
                |h| h.0,
                |a, b| a == b,
            ),
        })
    }

    /// True when the reload changes nothing.
    pub fn is_empty(&self) -> bool {
        let ReloadDiff {
            tunnels,
            routes,
            neighbors,
            bridges,
            mirrors,
            host,
        } = self;
        [tunnels, routes, neighbors, bridges, mirrors, host]
            .iter()
            .all(|s| s.is_empty())
    }

    /// One line for the log: `tunnels +1 ~1 -1, routes ~1` (sections without a change left out; "no change").
    pub fn summary(&self) -> String {
        let sections = [
            ("tunnels", &self.tunnels),
            ("routes", &self.routes),
            ("neighbors", &self.neighbors),
            ("bridges", &self.bridges),
            ("mirrors", &self.mirrors),
            ("host", &self.host),
        ];
        let parts: Vec<String> = sections
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(name, s)| {
                let mut p = name.to_string();
                for (sign, list) in [("+", &s.added), ("~", &s.changed), ("-", &s.removed)] {
                    if !list.is_empty() {
                        p += &format!(" {sign}{}", list.join(&format!(" {sign}")));
                    }
                }
                p
            })
            .collect();
        if parts.is_empty() {
            "no change".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The changes of a reload that only a restart applies, each naming its section and item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartNeeded(pub Vec<String>);

impl fmt::Display for RestartNeeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|c| format!("{c}: needs a restart"))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for RestartNeeded {}

/// Every change from `old` to `new` that a running gateway cannot apply: the EAL, the workers and their
/// mempool, the ports (their order is every table's port index), the exporters' sockets and the host
/// interfaces' namespace and route learning. `[generator]` is not read by `greway run` and not compared.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if old.eal != new.eal {
        out.push("[eal] args changed".to_string());
    }
    let (a, b) = (&old.dataplane, &new.dataplane);
    for (key, differs) in [
        ("workers", a.workers != b.workers),
        ("burst", a.burst != b.burst),
        ("mbufs", a.mbufs != b.mbufs),
        ("idle_sleep_us", a.idle_sleep_us != b.idle_sleep_us),
        ("mode", a.mode != b.mode),
    ] {
        if differs {
            out.push(format!("[dataplane] {key} changed"));
        }
    }
    let ports = SectionDiff::of(&old.ports, &new.ports, |p| p.name.clone(), |a, b| a == b);
    for (what, names) in [
        ("added", &ports.added),
        ("changed", &ports.changed),
        ("removed", &ports.removed),
    ] {
        for n in names {
            out.push(format!("[[port]] {n:?} {what}"));
        }
    }
    let order = |c: &Config| c.ports.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    if ports.is_empty() && order(old) != order(new) {
        out.push("[[port]] order changed".to_string());
    }
    for (section, what) in [
        ("[metrics]", presence(&old.metrics, &new.metrics)),
        ("[control]", presence(&old.control, &new.control)),
    ] {
        if let Some(what) = what {
            out.push(format!("{section} {what}"));
        }
    }
    match (&old.host, &new.host) {
        (Some(a), Some(b)) => {
            for (key, differs) in [
                ("netns", a.netns != b.netns),
                ("routes", a.routes != b.routes),
                ("table", a.table != b.table),
            ] {
                if differs {
                    out.push(format!("[host] {key} changed"));
                }
            }
        }
        (a, b) => {
            if let Some(what) = presence(a, b) {
                out.push(format!("[host] {what}"));
            }
        }
    }
    out
}

/// "added", "removed" or "changed" for an optional section that differs; None when it does not.
fn presence<T: PartialEq>(old: &Option<T>, new: &Option<T>) -> Option<&'static str> {
    match (old, new) {
        (None, Some(_)) => Some("added"),
        (Some(_), None) => Some("removed"),
        (a, b) if a != b => Some("changed"),
        _ => None,
    }
}

/// Which route table a route is in, for the route's name: into a tunnel, or out of a port.
fn route_name(prefix: &IpNet, out_of_port: bool) -> String {
    if out_of_port {
        format!("{prefix} (port)")
    } else {
        prefix.to_string()
    }
}

/// Every route of `cfg` as (name, where it goes): the tunnels' `routes` and the `[[route]]`s. A prefix holds one
/// route into a tunnel and one out of a port (validated); the latter's name says "(port)".
fn route_entries(cfg: &Config) -> Vec<(String, String)> {
    let tunnel_routes = cfg.tunnels.iter().flat_map(|t| {
        t.routes
            .iter()
            .map(move |p| (route_name(p, false), format!("tunnel {}", t.name)))
    });
    let routes = cfg.routes.iter().map(|r: &RouteCfg| {
        let target = match (&r.port, &r.tunnel, r.via) {
            (Some(port), _, via) => format!("port {port} via {via:?}"),
            (None, Some(t), _) => format!("tunnel {t}"),
            (None, None, via) => format!("via {via:?}"),
        };
        (route_name(&r.prefix, r.port.is_some()), target)
    });
    tunnel_routes.chain(routes).collect()
}

impl MirrorCfg {
    /// The entry's identity across reloads, as `greway ctl reload` names it: `PORT DIRECTION -> TUNNEL` (unique
    /// within a file: two entries whose directions overlap on one port and tunnel are an error).
    pub fn identity(&self) -> String {
        format!("{} {} -> {}", self.port, self.direction, self.tunnel)
    }
}

/// True when a reload from `old` to `new` keeps the mirror entry `o` (of `old`) as `m` (of `new`): the same entry,
/// into a tunnel the reload keeps ([`TunnelCfg::same_settings`]: its session, and its sequence numbers, go on).
/// The entry then keeps its run-unique id and counters; any other entry of `new` is new.
pub fn mirror_kept(old: &Config, o: &MirrorCfg, new: &Config, m: &MirrorCfg) -> bool {
    o == m
        && match (old.tunnel_by_name(&o.tunnel), new.tunnel_by_name(&m.tunnel)) {
            (Some(a), Some(b)) => a.same_settings(b),
            _ => false,
        }
}

impl TunnelCfg {
    /// Equal in everything but `routes` (which change without replacing the tunnel).
    pub fn same_settings(&self, o: &TunnelCfg) -> bool {
        // Every field named: a new key must be placed on one side of this rule.
        let TunnelCfg {
            name,
            local,
            remote,
            key,
            ikey,
            okey,
            checksum,
            sequence,
            reorder,
            ttl,
            tos,
            mtu,
            keepalive,
            routes: _,
            allowed_sources,
            address,
            host_if,
            encap_limit,
            mss_clamp,
            mode,
            erspan,
            deliver,
        } = self;
        *name == o.name
            && *local == o.local
            && *remote == o.remote
            && *key == o.key
            && *ikey == o.ikey
            && *okey == o.okey
            && *checksum == o.checksum
            && *sequence == o.sequence
            && *reorder == o.reorder
            && *ttl == o.ttl
            && *tos == o.tos
            && *mtu == o.mtu
            && *keepalive == o.keepalive
            && *allowed_sources == o.allowed_sources
            && *address == o.address
            && *host_if == o.host_if
            && *encap_limit == o.encap_limit
            && *mss_clamp == o.mss_clamp
            && *mode == o.mode
            && *erspan == o.erspan
            && *deliver == o.deliver
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> Config {
        crate::datapath::testkit::config_with(extra)
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let c = cfg("");
        let d = ReloadDiff::between(&c, &c.clone()).unwrap();
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(d.summary(), "no change");
    }

    #[test]
    fn tunnels_routes_neighbors_and_bridges_are_matched_by_identity() {
        let old = cfg(
            "[[tunnel]]\nname = \"gone\"\nlocal = \"192.0.2.1\"\nremote = \"198.51.100.50\"\n\
             routes = [\"10.50.0.0/16\"]\n\
             [[route]]\nprefix = \"10.51.0.0/16\"\ntunnel = \"t1\"\n\
             [[neighbor]]\nport = \"outside\"\nip = \"192.0.2.77\"\nmac = \"02:00:00:00:00:77\"",
        );
        let mut new = old.clone();
        new.tunnels.retain(|t| t.name != "gone");
        // t1: a route more (its settings unchanged); t6: a setting changed.
        new.tunnels[0].routes.push("10.52.0.0/16".parse().unwrap());
        new.tunnels[1].ttl = crate::config::Ttl::Fixed(9);
        let mut added = new.tunnels[0].clone();
        added.name = "new".into();
        added.remote = "198.51.100.60".parse().unwrap();
        added.key = Some(6060);
        added.routes = vec!["10.61.0.0/16".parse().unwrap()];
        new.tunnels.insert(0, added);
        // The [[route]] moves to another tunnel; the neighbour's MAC changes.
        let r = new.routes.iter_mut().find(|r| r.tunnel.is_some()).unwrap();
        r.tunnel = Some("t6".into());
        let n = new
            .neighbors
            .iter_mut()
            .find(|n| n.ip.to_string() == "192.0.2.77");
        n.unwrap().mac = crate::config::MacAddr([2, 0, 0, 0, 0, 0x78]);
        let d = ReloadDiff::between(&old, &new).unwrap();
        assert_eq!(d.tunnels.added, ["new"]);
        assert_eq!(d.tunnels.changed, ["t6"]);
        assert_eq!(d.tunnels.removed, ["gone"]);
        // t1's own routes stay: its new route is a route change, not a tunnel change.
        assert_eq!(
            d.routes.added,
            ["10.52.0.0/16".to_string(), "10.61.0.0/16".to_string()]
        );
        assert_eq!(d.routes.changed, ["10.51.0.0/16"]);
        assert_eq!(d.routes.removed, ["10.50.0.0/16"]);
        assert_eq!(d.neighbors.changed, ["outside 192.0.2.77"]);
        assert!(d.bridges.is_empty() && d.host.is_empty());
        assert_eq!(
            d.summary(),
            "tunnels +new ~t6 -gone, routes +10.52.0.0/16 +10.61.0.0/16 ~10.51.0.0/16 -10.50.0.0/16, \
             neighbors ~outside 192.0.2.77"
        );
        // Reordering tunnels is no change.
        let mut reordered = old.clone();
        reordered.tunnels.reverse();
        assert!(ReloadDiff::between(&old, &reordered).unwrap().is_empty());
    }

    #[test]
    fn a_route_out_of_a_port_is_named_apart_from_one_into_a_tunnel() {
        let old = cfg("");
        let mut new = old.clone();
        let r = new.routes.iter_mut().find(|r| r.port.is_some()).unwrap();
        let name = format!("{} (port)", r.prefix);
        r.via = Some("192.0.2.253".parse().unwrap());
        let d = ReloadDiff::between(&old, &new).unwrap();
        assert_eq!(d.routes.changed, [name]);
    }

    #[test]
    fn changes_that_need_a_restart_are_all_named() {
        let old = cfg("[metrics]\nprometheus = \"127.0.0.1:9400\"");
        let mut new = old.clone();
        new.ports[1].mtu = 9000;
        new.dataplane.workers = vec![1, 2];
        new.eal.args.push("--log-level=8".into());
        new.metrics = None;
        // A tunnel change beside them is not applied either.
        new.tunnels.clear();
        let e = ReloadDiff::between(&old, &new).unwrap_err();
        assert_eq!(
            e.to_string(),
            "[eal] args changed: needs a restart; [dataplane] workers changed: needs a restart; \
             [[port]] \"outside\" changed: needs a restart; [metrics] removed: needs a restart"
        );
        let mut swapped = old.clone();
        swapped.ports.swap(0, 1);
        assert_eq!(restart_needed(&old, &swapped), ["[[port]] order changed"]);
        let mut host = old.clone();
        host.host = Some(crate::config::HostCfg {
            netns: None,
            routes: crate::config::HostRoutes::Off,
            table: 254,
            punt_pps: 100,
        });
        assert_eq!(restart_needed(&old, &host), ["[host] added"]);
        let mut punt = host.clone();
        punt.host.as_mut().unwrap().punt_pps = 200;
        let d = ReloadDiff::between(&host, &punt).unwrap();
        assert_eq!(d.host.changed, ["punt_pps"]);
        punt.host.as_mut().unwrap().netns = Some("x".into());
        assert_eq!(restart_needed(&host, &punt), ["[host] netns changed"]);
        // Mirror entries change at run time, beside the changes that need a restart.
        let mirrored = mirrors("", 2);
        let mut both = mirrored.clone();
        both.ports[1].mtu = 9000;
        both.mirrors.clear();
        assert_eq!(
            ReloadDiff::between(&mirrored, &both)
                .unwrap_err()
                .to_string(),
            "[[port]] \"outside\" changed: needs a restart"
        );
        // The generator's settings are not greway run's.
        let mut g = old.clone();
        g.generator = Some(toml::from_str("rate_pps = 1000.0").unwrap());
        assert!(ReloadDiff::between(&old, &g).unwrap().is_empty());
    }

    /// The test kit with two ERSPAN senders, "s1" (session 1) and "s2" (session `s2`), three `[[mirror]]`s and
    /// `first` (mirror entries before them).
    fn mirrors(first: &str, s2: u16) -> Config {
        let spans = format!(
            "[[tunnel]]\nname = \"s1\"\nmode = \"erspan\"\nlocal = \"192.0.2.1\"\nremote = \"198.51.100.51\"\n\
             erspan = {{ session = 1, version = 1 }}\n\
             [[tunnel]]\nname = \"s2\"\nmode = \"erspan\"\nlocal = \"192.0.2.1\"\nremote = \"198.51.100.52\"\n\
             erspan = {{ session = {s2}, version = 2 }}\n"
        );
        let entry = |port: &str, direction: &str, tunnel: &str| {
            format!("[[mirror]]\nport = \"{port}\"\ndirection = \"{direction}\"\ntunnel = \"{tunnel}\"\n")
        };
        let list = if first.is_empty() {
            [
                entry("inside", "rx", "s1"),
                entry("outside", "tx", "s1"),
                entry("inside", "both", "s2"),
            ]
            .concat()
        } else {
            first.to_string()
        };
        cfg(&format!("{spans}{list}"))
    }

    /// Mirror entries are matched by port, direction and tunnel, not by their place in the file; an entry whose
    /// tunnel is replaced is changed; a changed direction is another entry.
    #[test]
    fn mirrors_are_matched_by_port_direction_and_tunnel() {
        let old = mirrors("", 2);
        let entry = |port: &str, direction: &str, tunnel: &str| {
            format!("[[mirror]]\nport = \"{port}\"\ndirection = \"{direction}\"\ntunnel = \"{tunnel}\"\n")
        };
        // "outside tx -> s1" becomes "outside rx -> s1", placed first; "inside rx -> s1" moves down, unchanged;
        // s2's session changes (the tunnel is replaced, so is its mirror).
        let new = mirrors(
            &[
                entry("outside", "rx", "s1"),
                entry("inside", "rx", "s1"),
                entry("inside", "both", "s2"),
            ]
            .concat(),
            3,
        );
        let d = ReloadDiff::between(&old, &new).unwrap();
        assert_eq!(d.mirrors.added, ["outside rx -> s1"]);
        assert_eq!(d.mirrors.changed, ["inside both -> s2"]);
        assert_eq!(d.mirrors.removed, ["outside tx -> s1"]);
        assert_eq!(d.tunnels.changed, ["s2"]);
        assert_eq!(
            d.summary(),
            "tunnels ~s2, mirrors +outside rx -> s1 ~inside both -> s2 -outside tx -> s1"
        );
        assert!(mirror_kept(&old, &old.mirrors[0], &new, &new.mirrors[1]));
        assert!(!mirror_kept(&old, &old.mirrors[2], &new, &new.mirrors[2]));
        // Every mirror removed, and their tunnels with them.
        let mut none = cfg("");
        none.mirrors.clear();
        let d = ReloadDiff::between(&old, &none).unwrap();
        assert_eq!(d.mirrors.removed.len(), 3);
        assert_eq!(d.tunnels.removed, ["s1", "s2"]);
        assert!(d.mirrors.added.is_empty() && d.mirrors.changed.is_empty());
        // The same entries in another order: no change.
        let mut reordered = old.clone();
        reordered.mirrors.reverse();
        assert!(ReloadDiff::between(&old, &reordered).unwrap().is_empty());
    }
}
