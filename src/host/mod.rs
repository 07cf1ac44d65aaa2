//! Host interfaces: the kernel exception path, owned by the control thread.
//!
//! With `[host]`, greway creates one kernel TUN interface (`IFF_TUN | IFF_NO_PI`: raw IP packets) for each port
//! and each tunnel, in `[host] netns` (created like `ip netns add` when missing) or greway's own namespace,
//! carrying the port's or tunnel's addresses and MTU, up. A routing daemon on the host (BGP, BFD) talks
//! through them as if they were greway's interfaces:
//!
//! - Workers hand packets to our addresses that greway does not answer itself to the control thread over
//!   their bounded punt rings ([`greway_datapath::gateway::HostIf`] names the interface); [`HostIfaces::poll`]
//!   writes them to the interface (non-blocking: a packet the kernel does not take is counted, never waited
//!   for).
//! - It reads what the kernel sends out of each interface (non-blocking, a bounded number per round), copies it
//!   into an mbuf behind an Ethernet header and passes it to a worker over that worker's bounded `from_host`
//!   ring: a tunnel's to the tunnel's owner worker (which numbers sequenced tunnels), a port's round-robin.
//!
//! The interfaces are not persistent: they disappear when their file descriptors close, i.e. when
//! [`HostIfaces`] is dropped and, whatever happens, when the process ends.
pub mod learn;
mod link;
mod netns;

pub use netns::{Netns, NETNS_RUN_DIR};

use crate::buf::PacketBuf;
use crate::config::{Config, PortRole, TunnelMode};
use crate::datapath::gateway::{owner_of, HostIf, Shared};
use crate::dpdk::{Mbuf, Mempool};
use greway_wire::ethernet::{ethertype, EthernetRepr, HEADER_LEN as ETH};
use greway_wire::MacAddr;
use ipnet::IpNet;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;

/// Packets the control thread takes from each worker's punt ring per round.
pub const PUNT_PER_ROUND: usize = 1024;
/// Packets the control thread reads from each host interface per round.
pub const READ_PER_ROUND: usize = 256;

/// Counters of one host interface (control thread).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostIfCounters {
    /// Packets (and IP bytes) written to the kernel.
    pub to_kernel: u64,
    pub to_kernel_bytes: u64,
    /// Packets the kernel did not take (its queue full, or an error).
    pub to_kernel_dropped: u64,
    /// Packets (and IP bytes) the kernel sent out of the interface, passed to a worker.
    pub from_kernel: u64,
    pub from_kernel_bytes: u64,
    /// Packets the kernel sent that could not be passed on: the worker's ring full, no mbuf, larger than one
    /// mbuf, or left in the ring at stop.
    pub from_kernel_dropped: u64,
}

/// One host interface as the status shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostIfStatus {
    /// `port` or `tunnel`.
    pub kind: &'static str,
    /// The port or tunnel it stands for.
    pub name: String,
    /// Its kernel index (in `netns`).
    pub ifindex: u32,
    #[serde(flatten)]
    pub counters: HostIfCounters,
}

/// The host path as the status shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HostStatus {
    /// The namespace of the interfaces (None: greway's own).
    pub netns: Option<String>,
    /// Packets (and IP bytes) the workers handed to the control thread for a host interface.
    pub punted: u64,
    pub punted_bytes: u64,
    /// Packets from host interfaces the workers took and sent or dropped.
    pub from_host: u64,
    /// By interface name.
    pub interfaces: BTreeMap<String, HostIfStatus>,
    /// Routes learned from the kernel (`routes = "learn"`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<LearnStatus>,
}

/// Route learning as the status shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LearnStatus {
    /// The kernel table followed.
    pub table: u32,
    /// Kernel routes installed now (origin `kernel`).
    pub learned: u64,
    /// Kernel routes installed or replaced, removed, and not installed (the prefix has a config route, or the
    /// route was refused), since start.
    pub installed: u64,
    pub removed: u64,
    pub refused: u64,
    /// Dumps of the kernel table (the first, and one per resync) and lost-message reports that caused a resync.
    pub dumps: u64,
    pub overruns: u64,
}

/// A host interface could not be made: a clear start-up error.
#[derive(Debug, thiserror::Error)]
#[error("host interface {name}: {what}: {err}")]
pub struct HostError {
    pub name: String,
    pub what: &'static str,
    #[source]
    pub err: io::Error,
}

/// One host interface.
struct HostIface {
    /// Interface name.
    name: String,
    target: HostIf,
    kind: &'static str,
    /// The port's or tunnel's name.
    owner: String,
    ifindex: u32,
    tun: tun_tap::Iface,
    counters: HostIfCounters,
}

/// What one interface is made with.
struct Spec {
    name: String,
    target: HostIf,
    kind: &'static str,
    owner: String,
    mtu: u16,
    addresses: Vec<IpNet>,
}

/// The host interfaces of a run and the control thread's side of their rings.
pub struct HostIfaces {
    netns: Option<Netns>,
    ifaces: Vec<HostIface>,
    /// Next worker for a port's packets from the kernel (round-robin).
    next_worker: usize,
    buf: Vec<u8>,
}

impl HostIfaces {
    /// Create the host interfaces of `cfg` (which has `[host]`): one per port, one per tunnel (`tunnel_ids[i]`
    /// is tunnel `i`'s run-unique id). On an error the interfaces made so far are removed again.
    pub fn create(cfg: &Config, tunnel_ids: &[u64]) -> Result<HostIfaces, HostError> {
        let host = cfg.host.as_ref().expect("create is called with [host]");
        let mut specs: Vec<Spec> = cfg
            .ports
            .iter()
            .enumerate()
            // An l2 port carries frames, not IP: no host interface (nor for an erspan tunnel, below).
            .filter(|(_, p)| p.role() != PortRole::L2)
            .map(|(i, p)| Spec {
                name: p.host_if_name(),
                target: HostIf::Port(i as u16),
                kind: "port",
                owner: p.name.clone(),
                mtu: p.mtu,
                addresses: p.addresses.clone(),
            })
            .collect();
        specs.extend(tunnel_specs(cfg, tunnel_ids));
        let netns = match &host.netns {
            Some(name) => Some(Netns::open_or_create(name).map_err(|err| HostError {
                name: format!("(namespace {name})"),
                what: "cannot open or create the network namespace",
                err,
            })?),
            None => None,
        };
        let ifaces = match &netns {
            Some(ns) => ns.run(|| make_all(&specs)).map_err(|err| HostError {
                name: format!("(namespace {})", ns.name),
                what: "cannot enter the network namespace",
                err,
            })??,
            None => make_all(&specs)?,
        };
        for i in &ifaces {
            log::info!(
                "host interface {} ({} {}) index {}{}",
                i.name,
                i.kind,
                i.owner,
                i.ifindex,
                netns
                    .as_ref()
                    .map_or(String::new(), |n| format!(" in namespace {}", n.name))
            );
        }
        Ok(HostIfaces {
            netns,
            ifaces,
            next_worker: 0,
            buf: vec![0; 65536],
        })
    }

    /// The tunnels changed at run time (`tunnel_ids[i]` is tunnel `i`'s run-unique id): remove the host
    /// interfaces of tunnels that are gone and make those of new tunnels. True when anything changed.
    pub fn sync_tunnels(&mut self, cfg: &Config, tunnel_ids: &[u64]) -> Result<bool, HostError> {
        let keep: std::collections::HashSet<u64> = tunnel_ids.iter().copied().collect();
        let before = self.ifaces.len();
        // Dropping an interface closes its TUN device, which removes it from the kernel.
        self.ifaces.retain(|i| match i.target {
            HostIf::Tunnel(id) => keep.contains(&id),
            HostIf::Port(_) => true,
        });
        let removed = before - self.ifaces.len();
        let have: std::collections::HashSet<HostIf> =
            self.ifaces.iter().map(|i| i.target).collect();
        let specs: Vec<Spec> = tunnel_specs(cfg, tunnel_ids)
            .filter(|s| !have.contains(&s.target))
            .collect();
        if specs.is_empty() {
            return Ok(removed > 0);
        }
        let made = match &self.netns {
            Some(ns) => ns.run(|| make_all(&specs)).map_err(|err| HostError {
                name: format!("(namespace {})", ns.name),
                what: "cannot enter the network namespace",
                err,
            })??,
            None => make_all(&specs)?,
        };
        for i in &made {
            log::info!(
                "host interface {} ({} {}) index {}",
                i.name,
                i.kind,
                i.owner,
                i.ifindex
            );
        }
        self.ifaces.extend(made);
        Ok(true)
    }

    /// The kernel index of the host interface standing for `target`, if there is one: a kernel route's output
    /// interface maps back to a port or tunnel through this (and [`HostIfaces::target_of`]).
    pub fn ifindex_of(&self, target: HostIf) -> Option<u32> {
        self.ifaces
            .iter()
            .find(|i| i.target == target)
            .map(|i| i.ifindex)
    }

    /// The port or tunnel whose host interface has kernel index `ifindex`.
    pub fn target_of(&self, ifindex: u32) -> Option<HostIf> {
        self.ifaces
            .iter()
            .find(|i| i.ifindex == ifindex)
            .map(|i| i.target)
    }

    /// What the route learner follows: the interfaces' namespace, kernel table `table`, and the interfaces by
    /// kernel index.
    pub fn learn_spec(&self, table: u32) -> learn::LearnSpec {
        learn::LearnSpec {
            netns: self
                .netns
                .as_ref()
                .map(|n| std::path::Path::new(NETNS_RUN_DIR).join(&n.name)),
            table,
            ifaces: self
                .ifaces
                .iter()
                .map(|i| {
                    let t = match i.target {
                        HostIf::Port(_) => learn::HostTarget::Port(i.owner.clone()),
                        HostIf::Tunnel(_) => learn::HostTarget::Tunnel(i.owner.clone()),
                    };
                    (i.ifindex, t)
                })
                .collect(),
            recv_queue_bytes: None,
            hold: None,
        }
    }

    /// The namespace of the interfaces (None: greway's own).
    pub fn netns(&self) -> Option<&Netns> {
        self.netns.as_ref()
    }

    /// One round of the exception path: the workers' punted packets to the kernel, then what the kernel sent
    /// out of each interface to the workers. Never blocks.
    pub fn poll(&mut self, shared: &Shared<Mbuf>, pool: &Mempool) {
        for ring in &shared.punt {
            for _ in 0..PUNT_PER_ROUND {
                let Some((hif, m)) = ring.pop() else {
                    break;
                };
                self.write_to_kernel(hif, &m);
            }
        }
        let nworkers = shared.from_host.len().max(1);
        for k in 0..self.ifaces.len() {
            for _ in 0..READ_PER_ROUND {
                let n = match self.ifaces[k].tun.recv(&mut self.buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        log::debug!("host interface {}: read: {e}", self.ifaces[k].name);
                        break;
                    }
                };
                let iface = &mut self.ifaces[k];
                let Some(m) = frame_of(pool, &self.buf[..n]) else {
                    iface.counters.from_kernel_dropped += 1;
                    continue;
                };
                let w = match iface.target {
                    // The owner numbers a sequenced tunnel's packets (and sends the others of the tunnel too).
                    HostIf::Tunnel(id) => owner_of(id, nworkers),
                    HostIf::Port(_) => {
                        self.next_worker = (self.next_worker + 1) % nworkers;
                        self.next_worker
                    }
                };
                match shared.from_host[w].push((iface.target, m)) {
                    Ok(()) => {
                        iface.counters.from_kernel += 1;
                        iface.counters.from_kernel_bytes += n as u64;
                    }
                    Err(_) => iface.counters.from_kernel_dropped += 1,
                }
            }
        }
    }

    /// Every worker has stopped: write what is still punted, and count what the kernel sent that no worker
    /// took as dropped.
    pub fn after_stop(&mut self, shared: &Shared<Mbuf>) {
        for ring in &shared.punt {
            while let Some((hif, m)) = ring.pop() {
                self.write_to_kernel(hif, &m);
            }
        }
        for ring in &shared.from_host {
            while let Some((hif, m)) = ring.pop() {
                drop(m);
                if let Some(i) = self.ifaces.iter_mut().find(|i| i.target == hif) {
                    i.counters.from_kernel -= 1;
                    i.counters.from_kernel_dropped += 1;
                }
            }
        }
    }

    /// The interfaces and their counters (the worker-side totals are filled in by the caller).
    pub fn status(&self) -> HostStatus {
        HostStatus {
            netns: self.netns.as_ref().map(|n| n.name.clone()),
            interfaces: self
                .ifaces
                .iter()
                .map(|i| {
                    (
                        i.name.clone(),
                        HostIfStatus {
                            kind: i.kind,
                            name: i.owner.clone(),
                            ifindex: i.ifindex,
                            counters: i.counters,
                        },
                    )
                })
                .collect(),
            ..HostStatus::default()
        }
    }

    fn write_to_kernel(&mut self, hif: HostIf, m: &Mbuf) {
        let Some(iface) = self.ifaces.iter_mut().find(|i| i.target == hif) else {
            // A tunnel without an interface (added at run time).
            return;
        };
        let ip = &m.data()[ETH..];
        match iface.tun.send(ip) {
            Ok(_) => {
                iface.counters.to_kernel += 1;
                iface.counters.to_kernel_bytes += ip.len() as u64;
            }
            Err(_) => iface.counters.to_kernel_dropped += 1,
        }
    }
}

/// An mbuf holding IP packet `ip` behind an Ethernet header of its EtherType (the addresses are written when
/// it is sent); None when the pool is empty, the packet is larger than an mbuf, or it is not IP.
fn frame_of(pool: &Mempool, ip: &[u8]) -> Option<Mbuf> {
    let et = match ip.first()? >> 4 {
        4 => ethertype::IPV4,
        6 => ethertype::IPV6,
        _ => return None,
    };
    let mut m = pool.alloc()?;
    let d = m.append(ETH + ip.len())?;
    EthernetRepr {
        src_addr: MacAddr::ZERO,
        dst_addr: MacAddr::ZERO,
        vlan: None,
        ethertype: et,
    }
    .emit(d);
    d[ETH..].copy_from_slice(ip);
    Some(m)
}

/// Make every interface in the calling thread's namespace; on an error those made so far close (and go).
/// The host interfaces of `cfg`'s tunnels (an erspan or teb tunnel carries frames, not IP: none).
fn tunnel_specs<'a>(cfg: &'a Config, tunnel_ids: &'a [u64]) -> impl Iterator<Item = Spec> + 'a {
    cfg.tunnels
        .iter()
        .zip(tunnel_ids)
        .filter(|(t, _)| t.mode == TunnelMode::Ip)
        .map(|(t, &id)| Spec {
            name: t.host_if_name(),
            target: HostIf::Tunnel(id),
            kind: "tunnel",
            owner: t.name.clone(),
            mtu: t.effective_mtu(cfg),
            addresses: t.address.clone(),
        })
}

fn make_all(specs: &[Spec]) -> Result<Vec<HostIface>, HostError> {
    let mut rtnl = link::Rtnl::new().map_err(|err| HostError {
        name: String::new(),
        what: "cannot open a netlink socket",
        err,
    })?;
    let made = specs.iter().map(make).collect::<Result<Vec<_>, _>>()?;
    // The addresses only after the kernel has announced the new links, and a routing daemon has had time to
    // take them in: FRR 8.4's zebra reads links and addresses on separate sockets, and an RTM_NEWADDR it handles
    // before the interface's RTM_NEWLINK is lost (FRR issue #13288), leaving the interface without addresses
    // in zebra after a greway restart.
    if !made.is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for (s, h) in specs.iter().zip(&made) {
        configure(&mut rtnl, s, h.ifindex)?;
    }
    Ok(made)
}

/// The addresses and MTU of a host interface just made, and the link up (addresses first: a daemon sees it
/// come up with them).
fn configure(rtnl: &mut link::Rtnl, s: &Spec, ifindex: u32) -> Result<(), HostError> {
    let fail = |what: &'static str| {
        let name = s.name.clone();
        move |err: io::Error| HostError { name, what, err }
    };
    for a in &s.addresses {
        rtnl.add_address(ifindex, a.addr(), a.prefix_len())
            .map_err(fail("cannot add an address"))?;
    }
    rtnl.link_up(ifindex, u32::from(s.mtu))
        .map_err(fail("cannot set its MTU and bring it up"))
}

fn make(s: &Spec) -> Result<HostIface, HostError> {
    let fail = |what: &'static str| {
        let name = s.name.clone();
        move |err: io::Error| HostError { name, what, err }
    };
    // TUNSETIFF on an existing TUN device would attach to it: refuse any existing name instead.
    if nix::net::if_::if_nametoindex(s.name.as_str()).is_ok() {
        return Err(HostError {
            name: s.name.clone(),
            what: "an interface of that name already exists",
            err: io::Error::from(io::ErrorKind::AlreadyExists),
        });
    }
    let tun = tun_tap::Iface::without_packet_info(&s.name, tun_tap::Mode::Tun)
        .map_err(fail("cannot create the TUN device"))?;
    tun.set_non_blocking()
        .map_err(fail("cannot make the TUN device non-blocking"))?;
    let ifindex = nix::net::if_::if_nametoindex(s.name.as_str())
        .map_err(|e| fail("cannot find the new interface")(io::Error::from(e)))?;
    Ok(HostIface {
        name: s.name.clone(),
        target: s.target,
        kind: s.kind,
        owner: s.owner.clone(),
        ifindex,
        tun,
        counters: HostIfCounters::default(),
    })
}
