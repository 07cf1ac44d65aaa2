//! Routes from the host: greway follows the kernel's routing table over netlink (`[host] routes = "learn"`).
//!
//! # Contract
//! A thread of its own (never a worker, and not the control thread, which a dump of a large table would hold
//! up) lives in `[host] netns` and keeps [`KernelTable`], the kernel's view of table `[host] table`:
//! 1. It joins the multicast groups `RTNLGRP_IPV4_ROUTE` and `RTNLGRP_IPV6_ROUTE`, then dumps the table
//!    (IPv4 and IPv6) on the same socket, so that the dump and the changes arrive in the order they happened.
//! 2. It follows `RTM_NEWROUTE` / `RTM_DELROUTE` and sends every change of a prefix's *effective* route to the
//!    control thread as an [`Update`], which installs it through the same incremental path as
//!    `greway ctl route add/del` (origin `kernel`).
//! 3. When the kernel reports lost messages (`ENOBUFS`: the socket's queue overflowed) or a dump was
//!    interrupted (`NLM_F_DUMP_INTR`), it dumps again into a fresh table, replaying the changes that arrive
//!    meanwhile, and sends only the difference between the two tables: VPP's linux-cp (`lcp_nl.c`) does the
//!    same with a mark-and-sweep over its routes.
//!
//! Which routes count: those of the table (`RTA_TABLE`, or the header's table), of type unicast, with no TOS,
//! not cloned, and not made by the kernel itself (`proto kernel`: the subnets of the interfaces' own
//! addresses, which greway has from its configuration). Of the routes on one prefix (they differ in metric)
//! the one with the lowest metric is the kernel's, and only if it leaves through one of greway's host
//! interfaces is it learned: through a tunnel's interface into that tunnel, through a port's interface out of
//! that port, via its gateway or connected. A multipath route is learned by its first next hop that leaves
//! through one of greway's interfaces (greway installs one next hop per prefix).
use ipnet::IpNet;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteType,
    RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// `RTNLGRP_LINK`, `RTNLGRP_IPV4_ROUTE` and `RTNLGRP_IPV6_ROUTE` (linux/rtnetlink.h).
const RTNLGRP_LINK: u32 = 1;
const RTNLGRP_IPV4_ROUTE: u32 = 7;
const RTNLGRP_IPV6_ROUTE: u32 = 11;
/// The socket's receive queue: room for a burst of some 100,000 changes before the kernel drops (and says
/// so with `ENOBUFS`, which costs a resync).
const RECV_QUEUE_BYTES: usize = 64 << 20;
/// How often the thread looks at its stop flag while the kernel is silent.
const STOP_POLL: Duration = Duration::from_millis(200);

/// Where one of greway's host interfaces leads: the port or tunnel it stands for, by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostTarget {
    Port(String),
    Tunnel(String),
}

/// A kernel route's next hop through one of greway's host interfaces.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Hop {
    pub target: HostTarget,
    /// The route's gateway (`via`); None for a connected route.
    pub gateway: Option<IpAddr>,
}

/// A change of one prefix's learned route: `Some` installs or replaces it, `None` removes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub prefix: IpNet,
    pub hop: Option<Hop>,
}

/// One route of the table as the learner keeps it: its next hop through one of our interfaces, or None when
/// it leaves elsewhere (it still decides which route of the prefix the kernel uses).
type Entry = Option<Hop>;

/// The learner's copy of the kernel table: every counted route by prefix and metric, and the effective
/// (lowest-metric) route of each prefix that leaves through one of greway's interfaces.
#[derive(Debug, Default)]
pub struct KernelTable {
    table: u32,
    ifaces: HashMap<u32, HostTarget>,
    routes: HashMap<IpNet, BTreeMap<u32, Entry>>,
    effective: HashMap<IpNet, Hop>,
}

/// A route message reduced to what the learner keeps: prefix, metric and next hop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub prefix: IpNet,
    pub metric: u32,
    pub entry: Entry,
}

impl KernelTable {
    /// An empty table following kernel table `table`, with greway's host interfaces by kernel index.
    pub fn new(table: u32, ifaces: HashMap<u32, HostTarget>) -> KernelTable {
        KernelTable {
            table,
            ifaces,
            ..KernelTable::default()
        }
    }

    /// A fresh, empty table with the same settings (for a resync).
    fn fresh(&self) -> KernelTable {
        KernelTable::new(self.table, self.ifaces.clone())
    }

    /// The learned routes: each prefix's effective next hop through one of our interfaces.
    pub fn effective(&self) -> &HashMap<IpNet, Hop> {
        &self.effective
    }

    /// `m` reduced to what the learner keeps, or None when it does not count (another table, not unicast,
    /// TOS, cloned, made by the kernel for an interface address, or not IP).
    pub fn parse(&self, m: &RouteMessage) -> Option<Parsed> {
        let h = &m.header;
        let table = m
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Table(t) => Some(*t),
                _ => None,
            })
            .unwrap_or(u32::from(h.table));
        if table != self.table
            || h.kind != RouteType::Unicast
            || h.protocol == RouteProtocol::Kernel
            || h.tos != 0
            || h.flags.contains(RouteFlags::Cloned)
        {
            return None;
        }
        let mut dst = None;
        let mut oif = None;
        let mut gateway = None;
        let mut metric = 0;
        let mut multipath = None;
        for a in &m.attributes {
            match a {
                RouteAttribute::Destination(d) => dst = address(d),
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::Gateway(g) => gateway = address(g),
                RouteAttribute::Via(v) => gateway = via(v),
                RouteAttribute::Priority(p) => metric = *p,
                RouteAttribute::MultiPath(hops) => multipath = Some(hops),
                _ => {}
            }
        }
        let len = h.destination_prefix_length;
        let prefix = match (h.address_family, dst) {
            (AddressFamily::Inet, None) => IpNet::new(IpAddr::from([0u8; 4]), 0).ok()?,
            (AddressFamily::Inet6, None) => IpNet::new(IpAddr::from([0u16; 8]), 0).ok()?,
            (AddressFamily::Inet | AddressFamily::Inet6, Some(a)) => IpNet::new(a, len).ok()?,
            _ => return None,
        }
        .trunc();
        let hop = |oif: Option<u32>, gateway: Option<IpAddr>| {
            let target = self.ifaces.get(&oif?)?.clone();
            Some(Hop { target, gateway })
        };
        let entry = match multipath {
            // The first next hop through one of our interfaces.
            Some(hops) => hops.iter().find_map(|nh| {
                let gw = nh.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Gateway(g) => address(g),
                    RouteAttribute::Via(v) => via(v),
                    _ => None,
                });
                hop(Some(nh.interface_index), gw)
            }),
            None => hop(oif, gateway),
        };
        Some(Parsed {
            prefix,
            metric,
            entry,
        })
    }

    /// Applies one route message (`add`: `RTM_NEWROUTE`, else `RTM_DELROUTE`; `replace`: its `NLM_F_REPLACE`
    /// flag) and returns the change of its prefix's effective route, if any.
    pub fn apply(&mut self, m: &RouteMessage, add: bool, replace: bool) -> Option<Update> {
        let p = self.parse(m)?;
        let by_metric = self.routes.entry(p.prefix).or_default();
        if add {
            // A new route on an existing (prefix, metric) without NLM_F_REPLACE adds a next hop to it (IPv6
            // multipath, IPv4 append); the kernel keeps using the route it had, and so does greway.
            if replace || !by_metric.contains_key(&p.metric) {
                by_metric.insert(p.metric, p.entry);
            } else if let Some(slot @ None) = by_metric.get_mut(&p.metric) {
                *slot = p.entry;
            }
        } else {
            by_metric.remove(&p.metric);
        }
        if by_metric.is_empty() {
            self.routes.remove(&p.prefix);
        }
        self.settle(p.prefix)
    }

    /// Recomputes `prefix`'s effective route; returns the change, if any.
    fn settle(&mut self, prefix: IpNet) -> Option<Update> {
        let now = self
            .routes
            .get(&prefix)
            .and_then(|m| m.values().next())
            .cloned()
            .flatten();
        let before = self.effective.get(&prefix);
        if before == now.as_ref() {
            return None;
        }
        match &now {
            Some(h) => self.effective.insert(prefix, h.clone()),
            None => self.effective.remove(&prefix),
        };
        Some(Update { prefix, hop: now })
    }

    /// The updates that turn `self`'s learned routes into `next`'s (a resync), in no particular order.
    pub fn diff(&self, next: &KernelTable) -> Vec<Update> {
        let mut out: Vec<Update> = self
            .effective
            .keys()
            .filter(|p| !next.effective.contains_key(p))
            .map(|&prefix| Update { prefix, hop: None })
            .collect();
        out.extend(
            next.effective
                .iter()
                .filter(|(p, h)| self.effective.get(p) != Some(h))
                .map(|(&prefix, h)| Update {
                    prefix,
                    hop: Some(h.clone()),
                }),
        );
        out
    }
}

fn address(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn via(v: &RouteVia) -> Option<IpAddr> {
    match v {
        RouteVia::Inet(a) => Some(IpAddr::V4(*a)),
        RouteVia::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// The learner's counters (shared with the status).
#[derive(Debug, Default)]
pub struct LearnCounters {
    /// Route messages read (dumps and changes).
    pub messages: AtomicU64,
    /// Table dumps made: the first, and one per resync.
    pub dumps: AtomicU64,
    /// Times the kernel reported lost messages (`ENOBUFS`) or an interrupted dump.
    pub overruns: AtomicU64,
    /// Updates handed to the control thread.
    pub updates: AtomicU64,
}

/// What the learner thread is started with.
#[derive(Clone, Debug)]
pub struct LearnSpec {
    /// The namespace to follow, as a path (`/run/netns/NAME`); None: the process's own.
    pub netns: Option<std::path::PathBuf>,
    /// The kernel table (`[host] table`).
    pub table: u32,
    /// greway's host interfaces by kernel index.
    pub ifaces: HashMap<u32, HostTarget>,
    /// The socket's receive queue in bytes; None: 64 MiB (tests make it small to make the kernel drop).
    pub recv_queue_bytes: Option<usize>,
    /// While this is set the thread does not read the socket (tests: a burst meanwhile overflows the
    /// queue, as it would behind a slow reader). None in greway.
    pub hold: Option<Arc<AtomicBool>>,
}

/// The running learner: the control thread takes its updates with [`Learner::take`].
pub struct Learner {
    /// The kernel table followed.
    pub table: u32,
    rx: Receiver<Vec<Update>>,
    /// Updates received but not yet taken (a batch is taken in parts when it is larger than asked for).
    pending: std::collections::VecDeque<Update>,
    pub counters: Arc<LearnCounters>,
    /// New interface maps for the thread (host interfaces made or removed at run time).
    ifaces_tx: Sender<HashMap<u32, HostTarget>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Learner {
    /// Opens the netlink socket in the namespace, joins the route groups and starts the thread, which dumps
    /// the table first. Errors opening the namespace or the socket are returned here.
    pub fn spawn(spec: LearnSpec) -> io::Result<Learner> {
        let (tx, rx) = mpsc::channel();
        let table = spec.table;
        let counters = Arc::new(LearnCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (ifaces_tx, ifaces_rx) = mpsc::channel();
        let c = counters.clone();
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("greway-learn".into())
            .spawn(move || {
                let socket = match open(&spec) {
                    Ok(sock) => {
                        let _ = ready_tx.send(Ok(()));
                        sock
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let (socket, port_id) = socket;
                let mut l = Loop {
                    socket,
                    port_id,
                    table: KernelTable::new(spec.table, spec.ifaces),
                    next: None,
                    seq: 0,
                    dump_families: Vec::new(),
                    interrupted: false,
                    tx,
                    ifaces_rx,
                    counters: c,
                    buf: vec![0; 1 << 20],
                };
                if let Err(e) = l.run(&s, spec.hold.as_deref()) {
                    log::error!("host route learning stopped: {e}");
                }
            })?;
        ready_rx
            .recv()
            .map_err(|_| io::Error::other("the learner thread ended at start"))??;
        Ok(Learner {
            table,
            rx,
            pending: Default::default(),
            counters,
            ifaces_tx,
            stop,
            thread: Some(thread),
        })
    }

    /// At most `max` updates, in the order they were made; never blocks.
    pub fn take(&mut self, max: usize) -> Vec<Update> {
        while self.pending.len() < max {
            match self.rx.try_recv() {
                Ok(batch) => self.pending.extend(batch),
                Err(_) => break,
            }
        }
        let n = self.pending.len().min(max);
        self.pending.drain(..n).collect()
    }

    /// greway's host interfaces changed (a tunnel added or removed at run time): follow routes through `ifaces`
    /// from now on. The thread dumps the table again and sends the difference: routes through a new interface
    /// are learned, those through a removed one withdrawn.
    pub fn set_ifaces(&self, ifaces: HashMap<u32, HostTarget>) {
        let _ = self.ifaces_tx.send(ifaces);
    }

    /// Waits up to `timeout` for updates (tests).
    pub fn wait(&mut self, timeout: Duration) -> Vec<Update> {
        if self.pending.is_empty() {
            if let Ok(batch) = self.rx.recv_timeout(timeout) {
                self.pending.extend(batch);
            }
        }
        self.take(usize::MAX)
    }
}

impl Drop for Learner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens the route socket in the namespace of `spec` (entered by the calling thread, which stays there).
fn open(spec: &LearnSpec) -> io::Result<(Socket, u32)> {
    if let Some(path) = &spec.netns {
        let ns = std::fs::File::open(path)?;
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
    }
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    let port_id = socket.bind_auto()?.port_number();
    socket.connect(&SocketAddr::new(0, 0))?;
    // Root may go past net.core.rmem_max; if not, a smaller queue only makes resyncs likelier.
    let queue = spec.recv_queue_bytes.unwrap_or(RECV_QUEUE_BYTES);
    if nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBufForce, &queue)
        .is_err()
    {
        socket.set_rx_buf_sz(queue)?;
    }
    nix::sys::socket::setsockopt(
        &socket,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(0, STOP_POLL.as_micros() as i64),
    )?;
    socket.add_membership(RTNLGRP_LINK)?;
    socket.add_membership(RTNLGRP_IPV4_ROUTE)?;
    socket.add_membership(RTNLGRP_IPV6_ROUTE)?;
    Ok((socket, port_id))
}

struct Loop {
    socket: Socket,
    /// Our socket's port id: replies to our dumps carry it (changes carry their requester's).
    port_id: u32,
    /// What the control thread has been told.
    table: KernelTable,
    /// While a dump runs: the table it builds (the dump and the changes that arrive meanwhile).
    next: Option<KernelTable>,
    seq: u32,
    /// Families still to dump in the current dump.
    dump_families: Vec<AddressFamily>,
    interrupted: bool,
    tx: Sender<Vec<Update>>,
    ifaces_rx: Receiver<HashMap<u32, HostTarget>>,
    counters: Arc<LearnCounters>,
    buf: Vec<u8>,
}

impl Loop {
    fn run(&mut self, stop: &AtomicBool, hold: Option<&AtomicBool>) -> io::Result<()> {
        self.start_dump()?;
        while !stop.load(Ordering::Relaxed) {
            if let Some(ifaces) = self.ifaces_rx.try_iter().last() {
                // The next dump builds its table with the new interfaces; its difference from what the control
                // thread was told goes out as updates.
                self.table.ifaces = ifaces;
                self.resync()?;
            }
            if hold.is_some_and(|h| h.load(Ordering::Relaxed)) {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let n = match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.counters.overruns.fetch_add(1, Ordering::Relaxed);
                    log::warn!("host routes: the kernel dropped route messages; resyncing");
                    self.resync()?;
                    continue;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            let mut updates = Vec::new();
            let mut at = 0;
            while at < n {
                let msg: NetlinkMessage<RouteNetlinkMessage> =
                    match NetlinkMessage::deserialize(&self.buf[at..n]) {
                        Ok(m) => m,
                        Err(e) => {
                            // One message the parser does not know: skip it by its length.
                            let len = u32::from_ne_bytes(
                                self.buf[at..at + 4].try_into().expect("4 bytes"),
                            ) as usize;
                            log::debug!("host routes: a message not parsed: {e}");
                            if len == 0 {
                                break;
                            }
                            at += len.next_multiple_of(4);
                            continue;
                        }
                    };
                let len = msg.header.length as usize;
                self.handle(msg, &mut updates)?;
                if len == 0 {
                    break;
                }
                at += len.next_multiple_of(4);
            }
            if !updates.is_empty() {
                self.counters
                    .updates
                    .fetch_add(updates.len() as u64, Ordering::Relaxed);
                if self.tx.send(updates).is_err() {
                    return Ok(()); // the control thread is gone
                }
            }
        }
        Ok(())
    }

    fn handle(
        &mut self,
        msg: NetlinkMessage<RouteNetlinkMessage>,
        updates: &mut Vec<Update>,
    ) -> io::Result<()> {
        let ours = msg.header.port_number == self.port_id && msg.header.sequence_number == self.seq;
        if ours && msg.header.flags & NLM_F_DUMP_INTR != 0 {
            self.interrupted = true;
        }
        let replace = msg.header.flags & NLM_F_REPLACE != 0;
        match msg.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(m)) => {
                self.counters.messages.fetch_add(1, Ordering::Relaxed);
                match &mut self.next {
                    // Dumped routes replace what the dump table has (a change that arrived first).
                    Some(next) => drop(next.apply(&m, true, replace || ours)),
                    None => updates.extend(self.table.apply(&m, true, replace)),
                }
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(m)) => {
                self.counters.messages.fetch_add(1, Ordering::Relaxed);
                match &mut self.next {
                    Some(next) => drop(next.apply(&m, false, false)),
                    None => updates.extend(self.table.apply(&m, false, false)),
                }
            }
            NetlinkPayload::InnerMessage(
                RouteNetlinkMessage::NewLink(m) | RouteNetlinkMessage::DelLink(m),
            ) if self.table.ifaces.contains_key(&m.header.index) => {
                // The kernel drops IPv4 routes through an interface that goes down or away without a
                // message per route: the dump says what is left.
                log::debug!(
                    "host routes: interface {} changed; resyncing",
                    m.header.index
                );
                self.resync()?;
            }
            NetlinkPayload::Done(_) if ours => self.dump_done(updates)?,
            NetlinkPayload::Error(e) if ours => {
                log::warn!("host routes: the dump failed: {:?}; dumping again", e.code);
                std::thread::sleep(Duration::from_millis(100));
                self.start_dump()?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The table is to be dumped again: now, or when the dump under way ends (the kernel runs one dump per
    /// socket at a time).
    fn resync(&mut self) -> io::Result<()> {
        if self.next.is_some() {
            self.interrupted = true;
            Ok(())
        } else {
            self.start_dump()
        }
    }

    /// Starts a dump of both families into a fresh table.
    fn start_dump(&mut self) -> io::Result<()> {
        self.counters.dumps.fetch_add(1, Ordering::Relaxed);
        self.next = Some(self.table.fresh());
        self.interrupted = false;
        self.dump_families = vec![AddressFamily::Inet6, AddressFamily::Inet];
        self.request_dump()
    }

    fn request_dump(&mut self) -> io::Result<()> {
        let Some(family) = self.dump_families.pop() else {
            return Ok(());
        };
        self.seq = self.seq.wrapping_add(1);
        let mut m = RouteMessage::default();
        m.header.address_family = family;
        m.header.table = RouteHeader::RT_TABLE_UNSPEC;
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | NLM_F_DUMP;
        hdr.sequence_number = self.seq;
        let mut req =
            NetlinkMessage::new(hdr, NetlinkPayload::from(RouteNetlinkMessage::GetRoute(m)));
        req.finalize();
        let mut out = vec![0; req.header.length as usize];
        req.serialize(&mut out);
        self.socket.send(&out, 0)?;
        Ok(())
    }

    /// One family's dump ended: dump the next one, or (both done) send the difference and switch tables.
    fn dump_done(&mut self, updates: &mut Vec<Update>) -> io::Result<()> {
        if !self.dump_families.is_empty() {
            return self.request_dump();
        }
        if self.interrupted {
            self.counters.overruns.fetch_add(1, Ordering::Relaxed);
            log::debug!("host routes: the table changed during the dump; dumping again");
            return self.start_dump();
        }
        let next = self.next.take().expect("a dump was running");
        updates.extend(self.table.diff(&next));
        log::info!(
            "host routes: table {} dumped, {} route(s) through greway's interfaces",
            next.table,
            next.effective.len()
        );
        self.table = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::route::{RouteNextHop, RouteScope};
    use std::net::Ipv4Addr;

    fn ifaces() -> HashMap<u32, HostTarget> {
        HashMap::from([
            (10, HostTarget::Tunnel("tgw".into())),
            (11, HostTarget::Port("outside".into())),
        ])
    }

    fn route(prefix: &str, oif: u32, gw: Option<&str>, metric: Option<u32>) -> RouteMessage {
        let p: IpNet = prefix.parse().unwrap();
        let mut m = RouteMessage::default();
        m.header.address_family = match p {
            IpNet::V4(_) => AddressFamily::Inet,
            IpNet::V6(_) => AddressFamily::Inet6,
        };
        m.header.destination_prefix_length = p.prefix_len();
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Bgp;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        if p.prefix_len() > 0 {
            m.attributes
                .push(RouteAttribute::Destination(p.addr().into()));
        }
        m.attributes.push(RouteAttribute::Oif(oif));
        if let Some(g) = gw {
            let g: IpAddr = g.parse().unwrap();
            m.attributes.push(RouteAttribute::Gateway(g.into()));
        }
        if let Some(x) = metric {
            m.attributes.push(RouteAttribute::Priority(x));
        }
        m
    }

    fn set(prefix: &str, target: HostTarget, gw: Option<&str>) -> Option<Update> {
        Some(Update {
            prefix: prefix.parse().unwrap(),
            hop: Some(Hop {
                target,
                gateway: gw.map(|g| g.parse().unwrap()),
            }),
        })
    }

    fn unset(prefix: &str) -> Option<Update> {
        Some(Update {
            prefix: prefix.parse().unwrap(),
            hop: None,
        })
    }

    #[test]
    fn routes_through_our_interfaces_are_learned_and_removed() {
        let mut t = KernelTable::new(254, ifaces());
        let tgw = HostTarget::Tunnel("tgw".into());
        let m = route("10.2.0.0/24", 10, Some("169.254.100.2"), None);
        assert_eq!(
            t.apply(&m, true, false),
            set("10.2.0.0/24", tgw.clone(), Some("169.254.100.2"))
        );
        // The same again changes nothing.
        assert_eq!(t.apply(&m, true, true), None);
        let out = HostTarget::Port("outside".into());
        let m6 = route("2001:db8:9::/48", 11, Some("fe80::1"), Some(1024));
        assert_eq!(
            t.apply(&m6, true, false),
            set("2001:db8:9::/48", out, Some("fe80::1"))
        );
        // A default route through us.
        let d = route("0.0.0.0/0", 10, None, None);
        assert_eq!(t.apply(&d, true, false), set("0.0.0.0/0", tgw, None));
        assert_eq!(t.effective().len(), 3);
        assert_eq!(t.apply(&m, false, false), unset("10.2.0.0/24"));
        assert_eq!(t.apply(&m, false, false), None);
    }

    #[test]
    fn routes_that_do_not_count_are_ignored() {
        let mut t = KernelTable::new(254, ifaces());
        // Another interface.
        assert_eq!(
            t.apply(&route("10.3.0.0/24", 99, None, None), true, false),
            None
        );
        // Made by the kernel for an interface address.
        let mut k = route("169.254.100.0/29", 10, None, None);
        k.header.protocol = RouteProtocol::Kernel;
        assert_eq!(t.parse(&k), None);
        // Local and broadcast routes, another table (by header or by attribute), a TOS, cloned.
        let mut l = route("169.254.100.1/32", 10, None, None);
        l.header.kind = RouteType::Local;
        assert_eq!(t.parse(&l), None);
        let mut b = route("169.254.100.7/32", 10, None, None);
        b.header.kind = RouteType::Broadcast;
        assert_eq!(t.parse(&b), None);
        let mut o = route("10.4.0.0/24", 10, None, None);
        o.header.table = 100;
        assert_eq!(t.parse(&o), None);
        let mut a = route("10.4.0.0/24", 10, None, None);
        a.attributes.push(RouteAttribute::Table(1000));
        assert_eq!(t.parse(&a), None);
        let mut s = route("10.4.0.0/24", 10, None, None);
        s.header.tos = 0x10;
        assert_eq!(t.parse(&s), None);
        let mut c = route("10.4.0.0/24", 10, None, None);
        c.header.flags = RouteFlags::Cloned;
        assert_eq!(t.parse(&c), None);
        // Table 1000 is followed when asked for.
        let t1000 = KernelTable::new(1000, ifaces());
        assert!(t1000.parse(&a).is_some());
        assert!(t.effective().is_empty());
    }

    #[test]
    fn the_lowest_metric_wins_even_through_another_interface() {
        let mut t = KernelTable::new(254, ifaces());
        let tgw = HostTarget::Tunnel("tgw".into());
        let out = HostTarget::Port("outside".into());
        assert_eq!(
            t.apply(&route("10.5.0.0/16", 10, None, Some(20)), true, false),
            set("10.5.0.0/16", tgw.clone(), None)
        );
        // A better route through us takes over.
        assert_eq!(
            t.apply(
                &route("10.5.0.0/16", 11, Some("192.0.2.9"), Some(10)),
                true,
                false
            ),
            set("10.5.0.0/16", out, Some("192.0.2.9"))
        );
        // A better one still, elsewhere: the kernel no longer uses ours.
        assert_eq!(
            t.apply(&route("10.5.0.0/16", 99, None, Some(5)), true, false),
            unset("10.5.0.0/16")
        );
        // It goes, and the metric-10 route is back; then that goes and metric 20 is back.
        assert_eq!(
            t.apply(&route("10.5.0.0/16", 99, None, Some(5)), false, false),
            set(
                "10.5.0.0/16",
                HostTarget::Port("outside".into()),
                Some("192.0.2.9")
            )
        );
        assert_eq!(
            t.apply(
                &route("10.5.0.0/16", 11, Some("192.0.2.9"), Some(10)),
                false,
                false
            ),
            set("10.5.0.0/16", tgw, None)
        );
    }

    #[test]
    fn replace_changes_the_next_hop_and_append_keeps_it() {
        let mut t = KernelTable::new(254, ifaces());
        t.apply(&route("10.6.0.0/24", 10, None, None), true, false);
        // Appended (no NLM_F_REPLACE): the kernel keeps the first.
        assert_eq!(
            t.apply(
                &route("10.6.0.0/24", 11, Some("192.0.2.1"), None),
                true,
                false
            ),
            None
        );
        assert_eq!(
            t.apply(
                &route("10.6.0.0/24", 11, Some("192.0.2.1"), None),
                true,
                true
            ),
            set(
                "10.6.0.0/24",
                HostTarget::Port("outside".into()),
                Some("192.0.2.1")
            )
        );
    }

    #[test]
    fn multipath_takes_the_first_hop_through_our_interfaces() {
        let t = KernelTable::new(254, ifaces());
        let mut m = route("10.7.0.0/24", 0, None, None);
        m.attributes
            .retain(|a| !matches!(a, RouteAttribute::Oif(_)));
        let hop = |oif: u32, gw: [u8; 4]| {
            let mut h = RouteNextHop::default();
            h.interface_index = oif;
            h.attributes
                .push(RouteAttribute::Gateway(Ipv4Addr::from(gw).into()));
            h
        };
        m.attributes.push(RouteAttribute::MultiPath(vec![
            hop(99, [192, 0, 2, 50]),
            hop(11, [192, 0, 2, 51]),
            hop(10, [169, 254, 100, 2]),
        ]));
        assert_eq!(
            t.parse(&m).unwrap().entry,
            Some(Hop {
                target: HostTarget::Port("outside".into()),
                gateway: Some("192.0.2.51".parse().unwrap()),
            })
        );
    }

    #[test]
    fn a_resync_sends_only_the_difference() {
        let tgw = HostTarget::Tunnel("tgw".into());
        let mut old = KernelTable::new(254, ifaces());
        old.apply(&route("10.1.0.0/24", 10, None, None), true, false);
        old.apply(&route("10.2.0.0/24", 10, None, None), true, false);
        old.apply(&route("10.3.0.0/24", 10, None, None), true, false);
        let mut new = old.fresh();
        new.apply(&route("10.1.0.0/24", 10, None, None), true, false);
        new.apply(
            &route("10.3.0.0/24", 11, Some("192.0.2.1"), None),
            true,
            false,
        );
        new.apply(&route("10.4.0.0/24", 10, None, None), true, false);
        let mut d = old.diff(&new);
        d.sort_by_key(|u| u.prefix);
        assert_eq!(
            d,
            vec![
                unset("10.2.0.0/24").unwrap(),
                set(
                    "10.3.0.0/24",
                    HostTarget::Port("outside".into()),
                    Some("192.0.2.1")
                )
                .unwrap(),
                set("10.4.0.0/24", tgw, None).unwrap(),
            ]
        );
    }
}
