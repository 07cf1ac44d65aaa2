//! Kernel routes into the control plane: the [`Update`]s of the route learner (`crate::host::learn`) applied
//! through the same incremental path as `greway ctl route add/del`, with origin `kernel`.
//!
//! A learned route goes into a tunnel (its next hop leaves through the tunnel's host interface) or out of a
//! port, via the kernel route's gateway or connected. A prefix that has a route from the configuration keeps
//! it: the kernel's is not installed, only counted (and logged at debug), and so is one that the control plane
//! refuses for any other reason (the prefix already has a `ctl` route, a gateway outside the port's subnets).
use super::plane::{ControlPlane, RouteOrigin, RouteTable, RouteTarget};
use crate::host::learn::{HostTarget, Update};

/// What applying learned routes did (counters for the status and logs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LearnedCounts {
    /// Kernel routes installed or replaced.
    pub installed: u64,
    /// Kernel routes removed.
    pub removed: u64,
    /// Kernel routes not installed: the prefix has a config route (which wins) or the route was refused.
    pub refused: u64,
}

impl ControlPlane {
    /// Applies learned route updates in order; the caller publishes [`ControlPlane::tables`] once after them.
    pub fn apply_learned(&mut self, updates: &[Update], counts: &mut LearnedCounts) {
        for u in updates {
            let p = u.prefix;
            let had = [RouteTable::Tunnel, RouteTable::Port]
                .iter()
                .any(|&t| self.route_origin(t, &p) == Some(RouteOrigin::Kernel));
            // A replaced route goes first: one prefix has one learned route.
            if had {
                self.del_route_of(p, RouteOrigin::Kernel)
                    .expect("a kernel route it holds can be removed");
                if u.hop.is_none() {
                    counts.removed += 1;
                }
            }
            let Some(hop) = &u.hop else {
                continue;
            };
            let target = match &hop.target {
                HostTarget::Tunnel(name) => RouteTarget::Tunnel(name.clone()),
                HostTarget::Port(port) => RouteTarget::Port {
                    port: port.clone(),
                    via: hop.gateway,
                },
            };
            match self.add_route(p, target, RouteOrigin::Kernel) {
                Ok(()) => counts.installed += 1,
                Err(e) => {
                    counts.refused += 1;
                    log::debug!("kernel route {p} not installed: {e}");
                }
            }
        }
    }

    /// How many kernel routes are installed.
    pub fn kernel_routes(&self) -> usize {
        self.origins_of(RouteOrigin::Kernel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::learn::Hop;
    use ipnet::IpNet;
    use std::net::IpAddr;
    use std::time::Instant;

    fn cp() -> ControlPlane {
        let cfg = crate::datapath::testkit::config_with("");
        ControlPlane::new(&cfg, &[[0; 6]; 2], Instant::now(), 0).unwrap()
    }

    fn into(prefix: &str, target: HostTarget, gw: Option<&str>) -> Update {
        Update {
            prefix: prefix.parse().unwrap(),
            hop: Some(Hop {
                target,
                gateway: gw.map(|g| g.parse().unwrap()),
            }),
        }
    }

    fn gone(prefix: &str) -> Update {
        Update {
            prefix: prefix.parse().unwrap(),
            hop: None,
        }
    }

    fn encap(cp: &ControlPlane, a: &str) -> Option<u32> {
        match a.parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => cp.route_tables().encap4.lookup_addr(a),
            IpAddr::V6(a) => cp.route_tables().encap6.lookup_addr(a),
        }
    }

    #[test]
    fn learned_routes_go_into_tunnels_and_out_of_ports_and_leave() {
        let mut cp = cp();
        let mut n = LearnedCounts::default();
        let t6 = HostTarget::Tunnel("t6".into());
        let inside = HostTarget::Port("inside".into());
        cp.apply_learned(
            &[
                into("10.70.0.0/16", t6.clone(), Some("169.254.0.2")),
                into("2001:db8:70::/48", t6.clone(), None),
                into("172.16.0.0/12", inside.clone(), Some("10.0.0.2")),
            ],
            &mut n,
        );
        assert_eq!(
            n,
            LearnedCounts {
                installed: 3,
                removed: 0,
                refused: 0
            }
        );
        assert_eq!(encap(&cp, "10.70.1.1"), Some(1));
        assert_eq!(encap(&cp, "2001:db8:70::1"), Some(1));
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        assert_eq!(
            cp.route_tables().next_hop("172.16.5.5".parse().unwrap()),
            Some((0, "10.0.0.2".parse().unwrap()))
        );
        for (t, p) in [
            (RouteTable::Tunnel, "10.70.0.0/16"),
            (RouteTable::Tunnel, "2001:db8:70::/48"),
            (RouteTable::Port, "172.16.0.0/12"),
        ] {
            assert_eq!(
                cp.route_origin(t, &net(p)),
                Some(RouteOrigin::Kernel),
                "{p}"
            );
        }
        assert_eq!(cp.kernel_routes(), 3);
        // Replaced: the tunnel route now leaves through a port, and back.
        cp.apply_learned(&[into("10.70.0.0/16", inside.clone(), None)], &mut n);
        assert_eq!(encap(&cp, "10.70.1.1"), None);
        assert_eq!(
            cp.route_tables().next_hop("10.70.1.1".parse().unwrap()),
            Some((0, "10.70.1.1".parse().unwrap()))
        );
        cp.apply_learned(&[into("10.70.0.0/16", t6, None)], &mut n);
        assert_eq!(encap(&cp, "10.70.1.1"), Some(1));
        // Withdrawn.
        cp.apply_learned(
            &[
                gone("10.70.0.0/16"),
                gone("2001:db8:70::/48"),
                gone("172.16.0.0/12"),
            ],
            &mut n,
        );
        assert_eq!(encap(&cp, "10.70.1.1"), None);
        assert_eq!(cp.kernel_routes(), 0);
        assert_eq!(
            n,
            LearnedCounts {
                installed: 5,
                removed: 3,
                refused: 0
            }
        );
        // Equal to the configuration it started from.
        assert_eq!(cp.config(), &crate::datapath::testkit::config_with(""));
    }

    #[test]
    fn config_routes_win_and_stay() {
        let mut cp = cp();
        let mut n = LearnedCounts::default();
        // 10.20.0.0/16 is t1's in the file; 0.0.0.0/0 is a [[route]] of the file.
        cp.apply_learned(
            &[
                into("10.20.0.0/16", HostTarget::Tunnel("t6".into()), None),
                into(
                    "0.0.0.0/0",
                    HostTarget::Port("inside".into()),
                    Some("10.0.0.2"),
                ),
            ],
            &mut n,
        );
        assert_eq!(n.refused, 2);
        assert_eq!(encap(&cp, "10.20.1.1"), Some(0));
        assert_eq!(
            cp.route_tables().next_hop("8.8.8.8".parse().unwrap()),
            Some((1, "192.0.2.254".parse().unwrap()))
        );
        // Their withdrawal leaves the config's routes alone.
        cp.apply_learned(&[gone("10.20.0.0/16"), gone("0.0.0.0/0")], &mut n);
        assert_eq!(encap(&cp, "10.20.1.1"), Some(0));
        assert_eq!(n.removed, 0);
        assert_eq!(cp.config(), &crate::datapath::testkit::config_with(""));
    }

    /// 100,000 learned routes land in the control plane's tables in well under a second (the budget of the
    /// whole path, kernel to forwarding, is a few seconds), and one more change then costs microseconds.
    #[test]
    fn a_full_table_lands_at_once() {
        let mut cp = cp();
        let mut n = LearnedCounts::default();
        let t6 = HostTarget::Tunnel("t6".into());
        let updates: Vec<Update> = (0..100_000u32)
            .map(|i| {
                let p = format!("100.{}.{}.0/24", 64 + (i >> 16), (i >> 8) & 0xff);
                let p = if i & 0xff == 0 {
                    p
                } else {
                    format!("101.{}.{}.{}/32", i >> 16, (i >> 8) & 0xff, i & 0xff)
                };
                into(&p, t6.clone(), None)
            })
            .collect();
        let t = Instant::now();
        cp.apply_learned(&updates, &mut n);
        let full = t.elapsed();
        assert_eq!(n.installed, 100_000, "{n:?}");
        let t = Instant::now();
        cp.apply_learned(&[gone("101.0.0.5/32")], &mut n);
        let one = t.elapsed();
        eprintln!("100,000 learned routes applied in {full:?}; one withdrawal in {one:?}");
        assert!(full.as_secs_f64() < 3.0, "{full:?}");
        assert!(one.as_secs_f64() < 0.01, "{one:?}");
    }
}
