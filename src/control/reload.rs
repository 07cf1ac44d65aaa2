//! A configuration reload on the control plane: the running configuration becomes a newly read file, through the
//! same replacement as runtime tunnel changes (`ControlPlane::replace_config`), and the routes learned from the
//! kernel are put back on top of it.
//!
//! The file's routes are all `config` routes afterwards; runtime changes made with `greway ctl` that the file does
//! not have are undone (the file is the configuration, as at a restart). Kernel routes stay, unless the new
//! configuration refuses them (a config route on their prefix wins, their tunnel is gone): those are dropped.
use super::plane::{ControlPlane, RouteOrigin, RouteTable, RouteTarget};
use crate::config::Config;
use crate::tunnel::table::TableError;
use ipnet::IpNet;
use std::time::Instant;

/// What happened to the kernel routes over a reload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KernelRoutes {
    /// Installed again over the new configuration.
    pub kept: usize,
    /// Refused by the new configuration.
    pub dropped: usize,
}

impl ControlPlane {
    /// The running configuration as a file gives it: the routes learned from the kernel left out.
    pub fn configured(&self) -> Config {
        let kernel = |table, p: &IpNet| self.route_origin(table, p) == Some(RouteOrigin::Kernel);
        let mut c = self.config().clone();
        for t in &mut c.tunnels {
            t.routes.retain(|p| !kernel(RouteTable::Tunnel, p));
        }
        c.routes
            .retain(|r| !kernel(route_table(r.port.is_some()), &r.prefix));
        c
    }

    /// The routes learned from the kernel, as route changes that install them again.
    fn kernel_route_changes(&self) -> Vec<(IpNet, RouteTarget)> {
        let kernel = |table, p: &IpNet| self.route_origin(table, p) == Some(RouteOrigin::Kernel);
        let cfg = self.config();
        let mut out: Vec<(IpNet, RouteTarget)> = cfg
            .tunnels
            .iter()
            .flat_map(|t| {
                t.routes
                    .iter()
                    .filter(|p| kernel(RouteTable::Tunnel, p))
                    .map(|p| (*p, RouteTarget::Tunnel(t.name.clone())))
            })
            .collect();
        for r in &cfg.routes {
            if !kernel(route_table(r.port.is_some()), &r.prefix) {
                continue;
            }
            let target = match (&r.port, &r.tunnel, r.via) {
                (Some(port), _, via) => RouteTarget::Port {
                    port: port.clone(),
                    via,
                },
                (None, Some(t), _) => RouteTarget::Tunnel(t.clone()),
                (None, None, Some(via)) => RouteTarget::Via(via),
                (None, None, None) => continue,
            };
            out.push((r.prefix, target));
        }
        out
    }

    /// Make `file` (a validated configuration, checked by [`crate::config::diff::ReloadDiff::between`] against
    /// [`ControlPlane::configured`]) the running configuration: one replacement (`ControlPlane::replace_config`:
    /// what keeps its state), then the kernel routes again. The caller publishes the tables once. On an error
    /// nothing has changed.
    pub fn reload(
        &mut self,
        file: Config,
        now: Instant,
        now_tsc: u64,
    ) -> Result<KernelRoutes, TableError> {
        let kernel = self.kernel_route_changes();
        self.replace_config(file, now, now_tsc, |_| RouteOrigin::Config)?;
        let mut k = KernelRoutes::default();
        for (p, target) in kernel {
            match self.add_route(p, target, RouteOrigin::Kernel) {
                Ok(()) => k.kept += 1,
                Err(e) => {
                    k.dropped += 1;
                    log::debug!("reload: kernel route {p} dropped: {e}");
                }
            }
        }
        Ok(k)
    }
}

fn route_table(out_of_port: bool) -> RouteTable {
    if out_of_port {
        RouteTable::Port
    } else {
        RouteTable::Tunnel
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::diff::ReloadDiff;
    use crate::control::learned::LearnedCounts;
    use crate::host::learn::{Hop, HostTarget, Update};
    use std::net::IpAddr;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    fn encap(cp: &ControlPlane, a: &str) -> Option<u32> {
        match a.parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => cp.route_tables().encap4.lookup_addr(a),
            IpAddr::V6(a) => cp.route_tables().encap6.lookup_addr(a),
        }
    }

    fn name_of(cp: &ControlPlane, a: &str) -> Option<String> {
        encap(cp, a).map(|i| cp.config().tunnels[i as usize].name.clone())
    }

    /// The test kit's configuration with a third tunnel "t3", a route into t1 and a bridge-free neighbour.
    fn file() -> Config {
        crate::datapath::testkit::config_with(
            "[[tunnel]]\nname = \"t3\"\nlocal = \"192.0.2.1\"\nremote = \"198.51.100.30\"\nkey = 30\n\
             routes = [\"10.30.0.0/16\"]\n\
             [[route]]\nprefix = \"10.31.0.0/16\"\ntunnel = \"t1\"",
        )
    }

    /// Unchanged tunnels keep their id and the very state object (sequence numbers, keepalive clock, learned path
    /// MTU); a changed tunnel and an added one get new ids and fresh state; a removed one is gone; routes follow the
    /// file; static neighbours follow the file; one replacement, published once.
    #[test]
    fn unchanged_tunnels_keep_their_state_and_changed_ones_are_replaced() {
        let old = file();
        let mut cp = ControlPlane::new(
            &old,
            &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]],
            Instant::now(),
            0,
        )
        .unwrap();
        let t = cp.tables();
        let id = |cp: &ControlPlane, n: &str| {
            let i = cp.config().tunnels.iter().position(|t| t.name == n);
            i.map(|i| cp.tunnel_ids()[i])
        };
        let state = |cp: &ControlPlane, n: &str| {
            let i = cp
                .config()
                .tunnels
                .iter()
                .position(|t| t.name == n)
                .unwrap();
            cp.tunnel_states()[i].clone()
        };
        // Some state on t1 and t6: the next sequence number and a keepalive seen.
        state(&cp, "t1").tx_seq.store(77, Ordering::Relaxed);
        state(&cp, "t6").tx_seq.store(66, Ordering::Relaxed);
        let (t1, t6, t3) = (id(&cp, "t1"), id(&cp, "t6"), id(&cp, "t3"));
        let s1 = state(&cp, "t1");
        drop(t);

        let mut new = old.clone();
        // t3 removed, t6 changed (its TTL), "t4" added before t1 (t1's index shifts), t1 gets a route more, the
        // [[route]] moves to t4, a neighbour's MAC changes.
        new.tunnels.retain(|t| t.name != "t3");
        new.tunnels[1].ttl = crate::config::Ttl::Fixed(9);
        new.tunnels[0].routes.push("10.21.0.0/16".parse().unwrap());
        let mut t4 = new.tunnels[0].clone();
        t4.name = "t4".into();
        t4.remote = "198.51.100.40".parse().unwrap();
        t4.key = Some(40);
        t4.routes = vec!["10.40.0.0/16".parse().unwrap()];
        new.tunnels.insert(0, t4);
        new.routes
            .iter_mut()
            .find(|r| r.tunnel.is_some())
            .unwrap()
            .tunnel = Some("t4".into());
        new.neighbors[2].mac = crate::config::MacAddr([2, 0, 0, 0, 0, 0x0b]);
        crate::config::validate_runtime(&new).unwrap();
        let d = ReloadDiff::between(&cp.configured(), &new).unwrap();
        assert_eq!(d.summary(), "tunnels +t4 ~t6 -t3, routes +10.21.0.0/16 +10.40.0.0/16 ~10.31.0.0/16 -10.30.0.0/16, neighbors ~inside 10.0.0.2");

        let k = cp.reload(new.clone(), Instant::now(), 5).unwrap();
        assert_eq!(k, KernelRoutes::default());
        assert!(cp.take_dirty(), "one publication for the whole reload");
        assert_eq!(cp.config(), &new);
        assert_eq!(id(&cp, "t1"), t1, "unchanged: same id");
        assert!(Arc::ptr_eq(&state(&cp, "t1"), &s1), "and the same state");
        assert_eq!(state(&cp, "t1").tx_seq.load(Ordering::Relaxed), 77);
        assert_ne!(id(&cp, "t6"), t6, "changed: replaced");
        assert_eq!(state(&cp, "t6").tx_seq.load(Ordering::Relaxed), 0);
        assert!(id(&cp, "t3").is_none());
        let t4 = id(&cp, "t4").unwrap();
        assert!(
            [t1, t6, t3].iter().all(|&x| x != Some(t4)),
            "ids are never reused"
        );
        assert_eq!(name_of(&cp, "10.31.1.1").as_deref(), Some("t4"));
        assert_eq!(name_of(&cp, "10.21.1.1").as_deref(), Some("t1"));
        assert_eq!(name_of(&cp, "10.30.1.1"), None);
        assert_eq!(
            cp.neighbors()[&"10.0.0.2".parse::<IpAddr>().unwrap()].mac,
            [2, 0, 0, 0, 0, 0x0b]
        );
        for (table, p) in [
            (RouteTable::Tunnel, "10.21.0.0/16"),
            (RouteTable::Tunnel, "10.31.0.0/16"),
        ] {
            assert_eq!(
                cp.route_origin(table, &p.parse().unwrap()),
                Some(RouteOrigin::Config)
            );
        }
        // The published generation: t1 with its id at its new index.
        let tables = cp.tables();
        let i = tables.tunnels.iter().position(|t| t.name == "t1").unwrap();
        assert_eq!((i, tables.tunnels[i].id), (1, t1.unwrap()));
        // Reloading the same file again changes nothing.
        assert!(ReloadDiff::between(&cp.configured(), &new)
            .unwrap()
            .is_empty());
    }

    /// Routes learned from the kernel survive a reload (they are not the file's), unless the file now has a route
    /// on their prefix or their tunnel is gone; routes added with `ctl` that the file lacks are undone.
    #[test]
    fn kernel_routes_stay_and_ctl_changes_are_undone() {
        let old = file();
        let mut cp = ControlPlane::new(&old, &[[0; 6]; 2], Instant::now(), 0).unwrap();
        let learned = |p: &str, t: &str| Update {
            prefix: p.parse().unwrap(),
            hop: Some(Hop {
                target: HostTarget::Tunnel(t.into()),
                gateway: None,
            }),
        };
        let mut n = LearnedCounts::default();
        cp.apply_learned(
            &[
                learned("10.70.0.0/16", "t1"),
                learned("10.71.0.0/16", "t3"),
                learned("10.72.0.0/16", "t6"),
            ],
            &mut n,
        );
        assert_eq!(n.installed, 3);
        cp.add_route(
            "10.80.0.0/16".parse().unwrap(),
            RouteTarget::Tunnel("t1".into()),
            RouteOrigin::Ctl,
        )
        .unwrap();
        // The file as it was, but for the ctl route: kernel routes are not part of it.
        let running = cp.configured();
        let d = ReloadDiff::between(&running, &old).unwrap();
        assert_eq!(d.routes.removed, ["10.80.0.0/16"], "{d:?}");
        assert!(d.tunnels.is_empty());

        let mut new = old.clone();
        new.tunnels.retain(|t| t.name != "t3");
        new.tunnels[1].routes.push("10.72.0.0/16".parse().unwrap());
        let k = cp.reload(new.clone(), Instant::now(), 0).unwrap();
        assert_eq!(
            k,
            KernelRoutes {
                kept: 1,
                dropped: 2
            }
        );
        assert_eq!(name_of(&cp, "10.70.1.1").as_deref(), Some("t1"));
        assert_eq!(
            cp.route_origin(RouteTable::Tunnel, &"10.70.0.0/16".parse().unwrap()),
            Some(RouteOrigin::Kernel)
        );
        assert_eq!(name_of(&cp, "10.71.1.1"), None, "its tunnel is gone");
        assert_eq!(
            cp.route_origin(RouteTable::Tunnel, &"10.72.0.0/16".parse().unwrap()),
            Some(RouteOrigin::Config),
            "the file's route wins"
        );
        assert_eq!(name_of(&cp, "10.80.1.1"), None, "the ctl route is undone");
        assert_eq!(cp.kernel_routes(), 1);
        assert_eq!(&cp.configured(), &new);
    }

    /// A bridge left alone keeps its MAC table and counter slot when another bridge is removed before it; a changed
    /// bridge starts afresh under a new id.
    #[test]
    fn bridges_keep_their_mac_tables_and_counter_slots() {
        let text = |b1_learning: bool, with_b0: bool| {
            let b0 = if with_b0 {
                "[[bridge]]\nname = \"b0\"\nmembers = [\"l2a\", \"l2b\"]\n"
            } else {
                ""
            };
            format!(
                r#"
[eal]
args = ["-l", "0-1"]
[dataplane]
workers = [1]
[[port]]
name = "l2a"
device = "net_null0"
role = "l2"
[[port]]
name = "l2b"
device = "net_null1"
role = "l2"
[[port]]
name = "l2c"
device = "net_null2"
role = "l2"
{b0}
[[bridge]]
name = "b1"
members = ["l2c.10", "l2c.20"]
learning = {b1_learning}
[[bridge]]
name = "b2"
members = ["l2c.30", "l2c.40"]
"#
            )
        };
        let cfg = |l, b| text(l, b).parse::<Config>().unwrap();
        let mut cp = ControlPlane::new(&cfg(true, true), &[[0; 6]; 3], Instant::now(), 0).unwrap();
        cp.mac_tables()[2].learn([2, 0, 0, 0, 0, 9], 1, 0);
        let b2 = cp.mac_tables()[2].clone();
        assert_eq!(cp.bridge_ids(), [0, 1, 2]);
        cp.reload(cfg(false, false), Instant::now(), 0).unwrap();
        assert_eq!(
            cp.bridge_ids(),
            [3, 2],
            "b1 changed: a new id; b2 kept its own"
        );
        assert!(Arc::ptr_eq(&cp.mac_tables()[1], &b2));
        assert_eq!(cp.mac_tables()[1].len(), 1);
        let t = cp.tables();
        assert_eq!(
            t.bridges.iter().map(|b| b.counters).collect::<Vec<_>>(),
            [3, 2]
        );
    }

    /// A `[[mirror]]` entry the reload leaves alone keeps its id (its counter slot) and its tunnel's sequence
    /// numbers wherever it moves in the file; one whose tunnel changes and one added get new ids; a removed one's
    /// counters are not shown again. The published tables count each entry under its id.
    #[test]
    fn mirror_entries_keep_their_counter_slots() {
        use crate::control::status::MirrorStatus;
        use crate::stats::Counters;
        use crate::tunnel::table::MirrorDir;
        let file = |s2: u16, entries: &[(&str, &str, &str)]| {
            let mut extra = format!(
                "[[tunnel]]\nname = \"s1\"\nmode = \"erspan\"\nlocal = \"192.0.2.1\"\n\
                 remote = \"198.51.100.51\"\nerspan = {{ session = 1, version = 1 }}\n\
                 [[tunnel]]\nname = \"s2\"\nmode = \"erspan\"\nlocal = \"192.0.2.1\"\n\
                 remote = \"198.51.100.52\"\nerspan = {{ session = {s2}, version = 2 }}\n"
            );
            for (port, direction, tunnel) in entries {
                extra += &format!(
                    "[[mirror]]\nport = \"{port}\"\ndirection = \"{direction}\"\ntunnel = \"{tunnel}\"\n"
                );
            }
            crate::datapath::testkit::config_with(&extra)
        };
        let old = file(
            2,
            &[
                ("inside", "rx", "s1"),
                ("outside", "tx", "s1"),
                ("inside", "both", "s2"),
            ],
        );
        let mut cp = ControlPlane::new(&old, &[[0; 6]; 2], Instant::now(), 0).unwrap();
        assert_eq!(cp.mirror_ids(), [0, 1, 2]);
        let seq = |cp: &ControlPlane, n: &str| {
            let i = cp.config().tunnels.iter().position(|t| t.name == n);
            cp.tunnel_states()[i.unwrap()]
                .tx_seq
                .load(Ordering::Relaxed)
        };
        for (i, t) in cp.config().tunnels.clone().iter().enumerate() {
            cp.tunnel_states()[i]
                .tx_seq
                .store(if t.name == "s1" { 500 } else { 600 }, Ordering::Relaxed);
        }
        // "outside tx -> s1" gives way to "outside rx -> s1", first in the file; s2's session changes.
        let new = file(
            3,
            &[
                ("outside", "rx", "s1"),
                ("inside", "rx", "s1"),
                ("inside", "both", "s2"),
            ],
        );
        cp.reload(new, Instant::now(), 0).unwrap();
        assert_eq!(
            cp.mirror_ids(),
            [3, 0, 4],
            "kept: its id; added, changed: new ids"
        );
        assert_eq!(seq(&cp, "s1"), 500, "the kept session numbers on");
        assert_eq!(seq(&cp, "s2"), 0, "the changed session starts again");
        let t = cp.tables();
        let s1 = t.tunnels.iter().position(|t| t.name == "s1").unwrap() as u32;
        let s2 = t.tunnels.iter().position(|t| t.name == "s2").unwrap() as u32;
        let sources = |port, dir| -> Vec<(u32, u32)> {
            t.mirrors
                .of(port, dir)
                .iter()
                .map(|m| (m.entry, m.tunnel))
                .collect()
        };
        assert_eq!(sources(0, MirrorDir::Rx), [(0, s1), (4, s2)]);
        assert_eq!(sources(0, MirrorDir::Tx), [(4, s2)]);
        assert_eq!(sources(1, MirrorDir::Rx), [(3, s1)]);
        assert!(sources(1, MirrorDir::Tx).is_empty());
        assert_eq!(t.mirrors.count, 5, "counter slots up to the highest id");
        // The status: each entry its own slot's counters; the removed entry's (slot 1) and the changed entry's old
        // ones (slot 2) are gone.
        let mut total = Counters::new(2, 0);
        total.ensure_mirrors(5);
        for (i, n) in [10, 11, 12, 13, 14].into_iter().enumerate() {
            total.mirrors[i].packets = n;
        }
        let st = MirrorStatus::all(cp.config(), cp.mirror_ids(), &total);
        let shown: Vec<(String, u32, u64)> = st
            .iter()
            .map(|m| {
                (
                    format!("{} {} -> {}", m.port, m.direction, m.tunnel),
                    m.id,
                    m.counters.packets,
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("outside rx -> s1".to_string(), 3, 13),
                ("inside rx -> s1".to_string(), 0, 10),
                ("inside both -> s2".to_string(), 4, 14),
            ]
        );
        // Every mirror removed (their tunnels too); added again, they are new entries.
        let mut none = old.clone();
        none.mirrors.clear();
        none.tunnels.retain(|t| !t.name.starts_with('s'));
        cp.reload(none, Instant::now(), 0).unwrap();
        assert!(cp.mirror_ids().is_empty());
        assert_eq!(
            cp.tables().mirrors.rx_ports | cp.tables().mirrors.tx_ports,
            0
        );
        cp.reload(old, Instant::now(), 0).unwrap();
        assert_eq!(cp.mirror_ids(), [5, 6, 7]);
    }
}
