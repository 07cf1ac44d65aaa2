//! The gateway's control duties: worker events, keepalives and neighbours each loop iteration, and runtime
//! changes from `greway ctl` (add/delete tunnels and routes, reload: see `reload.rs`), validated like the file
//! and published as a new table.
use super::{ControlDuties, InjectRing};
use crate::buf::PacketBuf;
use crate::config::{Config, TunnelCfg};
use crate::control::ctl::{Request, Response};
use crate::control::plane::{ControlPlane, Notice, Outgoing, RouteOrigin, RouteTable, RouteTarget};
use crate::control::status::TunnelInfo;
use crate::control::tables::pmtu_params;
use crate::datapath::gateway::{owner_of, Handoff, Shared};
use crate::dpdk::{self, Mbuf, Mempool};
use crate::pmtu;
use crate::stats::{Counters, DropReason};
use crate::tunnel::table::TunnelRef;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Learned route changes applied per control round at most (some 100 ms of work).
const LEARNED_PER_ROUND: usize = 50_000;
/// and runtime changes from `greway ctl`, validated like the file and published as a new table.
pub(super) struct GatewayControl {
    /// The host interfaces (`[host]`), served from this thread.
    pub(super) host: Option<crate::host::HostIfaces>,
    /// The kernel route learner (`[host] routes = "learn"`) and what its routes did here.
    pub(super) learner: Option<crate::host::learn::Learner>,
    pub(super) learned: crate::control::learned::LearnedCounts,
    pub(super) cp: ControlPlane,
    pub(super) shared: Shared<Mbuf>,
    pub(super) pool: Arc<Mempool>,
    pub(super) next_tick: Instant,
    pub(super) tsc_hz: u64,
    pub(super) nworkers: usize,
    /// The configuration file the gateway was started with (`greway ctl reload`, SIGHUP).
    pub(super) config_path: Option<std::path::PathBuf>,
}

impl ControlDuties for GatewayControl {
    fn poll(&mut self, inject: &[InjectRing]) {
        let cp = &mut self.cp;
        let now = Instant::now();
        let mut out = Vec::new();
        while let Some(e) = self.shared.events.pop() {
            if let Some(o) = cp.on_event(e, now) {
                out.push(o);
            }
        }
        let refresh_pmtu = now >= self.next_tick;
        if now >= self.next_tick {
            self.next_tick = now + Duration::from_millis(100);
            let (frames, notices) = cp.tick(now, dpdk::rdtsc(), self.tsc_hz);
            out.extend(frames);
            for n in notices {
                match n {
                    Notice::TunnelUp(t) => log::info!("tunnel {t} is up"),
                    Notice::TunnelDown(t) => log::warn!("tunnel {t} is down (keepalives missed)"),
                }
            }
        }
        if let Some(l) = &mut self.learner {
            // Kernel route changes, a bounded number per round (a full table takes a few rounds, and the
            // host interfaces are served in between); published once with the rest of the round.
            let updates = l.take(LEARNED_PER_ROUND);
            if !updates.is_empty() {
                cp.apply_learned(&updates, &mut self.learned);
            }
        }
        if cp.take_dirty() {
            self.shared.tables.store(Arc::new(cp.tables()));
        }
        if refresh_pmtu {
            // Learned path MTUs: expire them after 10 minutes, and bring the newest table's tunnels in line with
            // what workers learned while reading an older one.
            let now_ms = pmtu::ticks_to_ms(dpdk::rdtsc(), self.tsc_hz);
            let expired = pmtu::refresh(&self.shared.tables.load(), now_ms);
            if expired > 0 {
                log::info!(
                    "path MTU: {expired} learned value(s) expired, back to the configured MTU"
                );
            }
        }
        if let Some(h) = &mut self.host {
            h.poll(&self.shared, &self.pool);
        }
        for o in out {
            let (bytes, dest) = match o {
                Outgoing::Frame { port, bytes } => (bytes, Ok(port)),
                Outgoing::Encap { tunnel, bytes } => (bytes, Err(tunnel)),
            };
            let Some(mut m) = self.pool.alloc() else {
                log::warn!("control: mempool empty, frame not sent");
                continue;
            };
            match m.append(bytes.len()) {
                Some(buf) => buf.copy_from_slice(&bytes),
                None => continue,
            }
            // A full ring drops the frame (freed here); the next tick sends another.
            match dest {
                Ok(port) => {
                    let _ = inject[0].push((port, m));
                }
                Err(tunnel) => {
                    // Named by run-unique id: the worker may already be on another table generation.
                    let id = self.cp.tunnel_ids()[tunnel as usize];
                    let h = Handoff {
                        tunnel: TunnelRef { index: tunnel, id },
                        keepalive: true,
                    };
                    let _ = self.shared.handoff[owner_of(id, self.nworkers)].push((h, m));
                }
            }
        }
    }

    fn tunnels(&self) -> Vec<TunnelInfo> {
        tunnel_infos(&self.cp)
    }

    fn bridges(&self) -> Vec<crate::control::bridges::BridgeInfo> {
        crate::control::bridges::bridge_infos(
            self.cp.config(),
            self.cp.mac_tables(),
            self.cp.bridge_ids(),
        )
    }

    fn mirrors(&self, total: &crate::stats::Counters) -> Vec<crate::control::status::MirrorStatus> {
        crate::control::status::MirrorStatus::all(self.cp.config(), self.cp.mirror_ids(), total)
    }

    fn round(&self) -> Duration {
        // Host interfaces carry a routing daemon's packets: a 1 ms round keeps their latency low.
        if self.host.is_some() {
            Duration::from_millis(1)
        } else {
            Duration::from_millis(10)
        }
    }

    fn host_status(&self) -> Option<crate::host::HostStatus> {
        self.host.as_ref().map(|h| {
            let mut s = h.status();
            s.routes = self.learner.as_ref().map(|l| crate::host::LearnStatus {
                table: l.table,
                learned: self.cp.kernel_routes() as u64,
                installed: self.learned.installed,
                removed: self.learned.removed,
                refused: self.learned.refused,
                dumps: l.counters.dumps.load(Ordering::Relaxed),
                overruns: l.counters.overruns.load(Ordering::Relaxed),
            });
            s
        })
    }

    fn after_stop(&mut self, total: &mut Counters) {
        if let Some(h) = &mut self.host {
            h.after_stop(&self.shared);
        }
        for ring in &self.shared.handoff {
            while let Some((_, m)) = ring.pop() {
                drop(m);
                // As the owner's own `finish` counts what it finds on its ring.
                total.drop_pkt(DropReason::HandoffFull);
            }
        }
    }

    fn request(&mut self, req: Request) -> Response {
        let cfg = self.cp.config();
        let changed = match req {
            Request::Stats => return Response::err("stats is answered by the socket thread"),
            Request::TunnelShow => {
                return Response::ok(Some(tunnels_json(
                    &self.cp,
                    pmtu::ticks_to_ms(dpdk::rdtsc(), self.tsc_hz),
                )))
            }
            Request::RouteShow => return Response::ok(Some(routes_json(&self.cp))),
            Request::MirrorShow => return Response::err("mirror show is answered by the socket thread"),
            Request::BridgeShow { name } => {
                let now_s = greway_datapath::bridge::clock_s(dpdk::rdtsc(), self.tsc_hz);
                return match crate::control::bridges::bridges_json(
                    cfg,
                    self.cp.mac_tables(),
                    name.as_deref(),
                    now_s,
                ) {
                    Ok(v) => Response::ok(Some(v)),
                    Err(e) => Response::err(e),
                };
            }
            Request::TunnelAdd { tunnel } => add_tunnel(cfg, &tunnel),
            Request::TunnelDel { name } => match cfg.tunnels.iter().position(|t| t.name == name) {
                None => Err(format!("no tunnel named {name:?}")),
                Some(_) if cfg.mirrors.iter().any(|m| m.tunnel == name) => Err(format!(
                    "tunnel {name:?} is the target of a [[mirror]]; remove the mirror and the tunnel from the configuration file and reload"
                )),
                Some(ti) => {
                    // Routes into the tunnel go with it (its own `routes`, and the `[[route]]`s with
                    // `tunnel = NAME` or via a peer on its subnet): their traffic is then `no_route`.
                    let mut c = cfg.clone();
                    c.routes.retain(|r| cfg.route_tunnel(r) != Some(ti));
                    c.tunnels.remove(ti);
                    Ok(c)
                }
            },
            Request::RouteAdd { .. } | Request::RouteDel { .. } => {
                return self.route_change(req);
            }
            Request::Reload => return self.reload(),
        };
        let new = match changed.and_then(|c| {
            crate::config::validate_runtime(&c)
                .map(|()| c)
                .map_err(|e| e.to_string())
        }) {
            Ok(c) => c,
            Err(e) => return Response::err(e),
        };
        if let Err(e) = self.cp.reconfigure(new, Instant::now(), dpdk::rdtsc()) {
            return Response::err(e.to_string());
        }
        // Workers pick the new table up between bursts; tunnels that kept their name keep their state and
        // counters (run-unique ids).
        self.cp.take_dirty();
        self.shared.tables.store(Arc::new(self.cp.tables()));
        if let Some(e) = self.sync_host() {
            log::warn!("host interfaces after the runtime change: {e}");
        }
        log::info!(
            "runtime change applied: {} tunnel(s), {} route(s)",
            self.cp.config().tunnels.len(),
            self.cp.config().routes.len()
        );
        Response::ok(Some(tunnels_json(
            &self.cp,
            pmtu::ticks_to_ms(dpdk::rdtsc(), self.tsc_hz),
        )))
    }
}

/// Name, id and state of the control plane's tunnels. A tunnel without keepalives is always up.
fn tunnel_infos(cp: &ControlPlane) -> Vec<TunnelInfo> {
    cp.config()
        .tunnels
        .iter()
        .zip(cp.tunnel_ids().iter())
        .zip(cp.tunnel_states())
        .map(|((t, id), st)| TunnelInfo {
            name: t.name.clone(),
            id: *id,
            up: t.keepalive.is_none() || st.up.load(Ordering::Relaxed),
            pmtu: st.pmtu.path_mtu(&pmtu_params(cp.config(), t)),
        })
        .collect()
}

fn tunnels_json(cp: &ControlPlane, now_ms: u64) -> serde_json::Value {
    let infos = tunnel_infos(cp);
    let list: Vec<serde_json::Value> = cp
        .config()
        .tunnels
        .iter()
        .zip(infos)
        .zip(cp.tunnel_states())
        .map(|((t, i), st)| {
            // Seconds until a learned path MTU expires; null when none is learned.
            let expires_s = st
                .pmtu
                .learned()
                .map(|(_, at)| at.saturating_sub(now_ms).div_ceil(1000));
            // Every key as the file spells it (unset ones as null), then the keys in effect and the state.
            let mut o = match serde_json::to_value(t) {
                Ok(serde_json::Value::Object(o)) => o,
                _ => serde_json::Map::new(),
            };
            for (k, v) in [
                ("id", serde_json::json!(i.id)),
                ("ikey", serde_json::json!(t.in_key())),
                ("okey", serde_json::json!(t.out_key())),
                ("up", serde_json::json!(i.up)),
                ("mtu", serde_json::json!(t.effective_mtu(cp.config()))),
                ("pmtu", serde_json::json!(i.pmtu)),
                ("pmtu_expires_s", serde_json::json!(expires_s)),
            ] {
                o.insert(k.into(), v);
            }
            serde_json::Value::Object(o)
        })
        .collect();
    serde_json::json!({ "tunnels": list })
}

/// `route show`: the routes into tunnels (the tunnels' `routes` and the `[[route]]`s into a tunnel) and the
/// routes out of ports, each with its origin (`config`, `ctl` or `kernel`). Connected subnets are not listed.
fn routes_json(cp: &ControlPlane) -> serde_json::Value {
    let cfg = cp.config();
    let origin = |table, p: &ipnet::IpNet| {
        cp.route_origin(table, p)
            .unwrap_or(RouteOrigin::Config)
            .name()
    };
    let mut tunnel_routes: Vec<serde_json::Value> = cfg
        .tunnels
        .iter()
        .flat_map(|t| {
            t.routes.iter().map(move |r| {
                serde_json::json!({
                    "prefix": r.to_string(),
                    "tunnel": t.name,
                    "origin": origin(RouteTable::Tunnel, r),
                })
            })
        })
        .collect();
    let mut routes = Vec::new();
    for r in &cfg.routes {
        match (&r.port, cfg.route_tunnel(r)) {
            (Some(port), _) => routes.push(serde_json::json!({
                "prefix": r.prefix.to_string(),
                "via": r.via.map(|v| v.to_string()),
                "port": port,
                "origin": origin(RouteTable::Port, &r.prefix),
            })),
            (None, Some(ti)) => tunnel_routes.push(serde_json::json!({
                "prefix": r.prefix.to_string(),
                "tunnel": cfg.tunnels[ti].name,
                "via": r.via.map(|v| v.to_string()),
                "origin": origin(RouteTable::Tunnel, &r.prefix),
            })),
            (None, None) => {}
        }
    }
    serde_json::json!({ "tunnel_routes": tunnel_routes, "routes": routes })
}

fn parse<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{what}: cannot parse {s:?}"))
}

/// The config with `t` appended, checked by [`crate::config::validate_tunnel_addition`] (the file's rules
/// against the existing tunnels).
fn add_tunnel(cfg: &Config, t: &TunnelCfg) -> Result<Config, String> {
    crate::config::validate_tunnel_addition(cfg, t).map_err(|e| e.to_string())?;
    let mut c = cfg.clone();
    c.tunnels.push(t.clone());
    Ok(c)
}

impl GatewayControl {
    /// Host interfaces for the tunnels added, none for those removed (by run-unique id: a replaced tunnel gets a
    /// new one); the route learner follows them. The error, if one could not be made.
    pub(super) fn sync_host(&mut self) -> Option<String> {
        let h = self.host.as_mut()?;
        match h.sync_tunnels(self.cp.config(), self.cp.tunnel_ids()) {
            Ok(true) => {
                if let (Some(l), Some(host)) = (&self.learner, &self.cp.config().host) {
                    l.set_ifaces(h.learn_spec(host.table).ifaces);
                }
                None
            }
            Ok(false) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// A route added or removed in place (no table rebuilt) and published at once: workers use it from
    /// their next poll round. `quiet` requests are answered without the tunnel list.
    fn route_change(&mut self, req: Request) -> Response {
        let (result, quiet) = match req {
            Request::RouteAdd {
                prefix,
                tunnel,
                port,
                via,
                quiet,
            } => (route_add(&mut self.cp, &prefix, tunnel, port, via), quiet),
            Request::RouteDel { prefix, quiet } => (
                parse("prefix", &prefix).and_then(|p| self.cp.del_route(p)),
                quiet,
            ),
            _ => unreachable!("route requests only"),
        };
        if let Err(e) = result {
            return Response::err(e);
        }
        self.cp.take_dirty();
        self.shared.tables.store(Arc::new(self.cp.tables()));
        log::debug!("route change applied");
        Response::ok(
            (!quiet).then(|| tunnels_json(&self.cp, pmtu::ticks_to_ms(dpdk::rdtsc(), self.tsc_hz))),
        )
    }
}

fn route_add(
    cp: &mut ControlPlane,
    prefix: &str,
    tunnel: Option<String>,
    port: Option<String>,
    via: Option<String>,
) -> Result<(), String> {
    let p: ipnet::IpNet = parse("prefix", prefix)?;
    let via = via.map(|v| parse("via", &v)).transpose()?;
    let target = match (tunnel, port, via) {
        (Some(t), None, None) => RouteTarget::Tunnel(t),
        (None, Some(port), via) => RouteTarget::Port { port, via },
        (None, None, Some(via)) => RouteTarget::Via(via),
        _ => return Err(
            "give --tunnel NAME, --port NAME [--via IP], or --via IP (a peer on a tunnel's subnet)"
                .into(),
        ),
    };
    cp.add_route(p, target, RouteOrigin::Ctl)
}
