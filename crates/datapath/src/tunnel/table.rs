//! The immutable forwarding state workers read: ports, tunnels with precomputed encapsulation templates, route
//! tables (LPM), neighbours. The control thread builds a new [`Tables`] on every change and publishes it
//! (arc-swap); workers pick it up between bursts. Route LPMs are shared by `Arc` between generations, so a
//! neighbour change does not rebuild them.
use super::lpm::{Lpm4, LpmError};
use super::lpm6::Lpm6;
use crate::pmtu::{MtuCell, PmtuParams, PmtuState};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::Arc;

/// A small, fast hasher for fixed-size keys (FxHash): the decap lookup is per packet.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);
impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Longest headers an encapsulation adds: Ethernet 14 + IPv6 40 + Destination Options 8 (`encap_limit`) +
/// GRE 16. (An ERSPAN sender's template holds Ethernet, IP and an 8-byte GRE header; its ERSPAN header is
/// written per copy after it, see [`ErspanTx`].)
pub const MAX_ENCAP_HEADER: usize = 14 + 40 + 8 + 16;

/// Bits of [`Tunnel::inner_checks`]: what the fast paths must look for in the inner packet before they may
/// take it (the general rules do the work).
pub mod inner_check {
    /// `mss_clamp`: TCP SYN and SYN-ACK segments (and IPv6 packets with extension headers, which may hide one).
    pub const MSS_CLAMP: u8 = 1;
    /// `encap_limit` on an IPv6-outer tunnel: inner IPv6 packets with extension headers (which may carry an
    /// RFC 2473 Tunnel Encapsulation Limit).
    pub const ENCAP_LIMIT: u8 = 2;
    /// An ERSPAN tunnel (`mode = "erspan"`): every packet it receives takes the general rules.
    pub const ERSPAN: u8 = 4;
    /// A TEB tunnel (`mode = "teb"`, Ethernet inside): what it receives takes the general rules (its Ethernet
    /// frames never reach the IP fast path, whose GRE check takes IPv4 and IPv6 only; this bit keeps the rest,
    /// a peer's keepalives, off it too), and it is sent frames by its bridge, not routed IP.
    pub const TEB: u8 = 8;
}

/// Bits of [`Tunnel::fast`].
pub mod fast {
    /// The encapsulation fast path's header shape, or 0 when the tunnel needs the full checks (sequence
    /// numbers, an unresolved next hop, keepalives, inner-packet rules, an IPv6 outer header with GRE checksum
    /// or `encap_limit`). `ENCAP4_*`: an IPv4 outer header; `ENCAP6_*`: an IPv6 one.
    pub const ENCAP_MASK: u8 = 7;
    /// 38 bytes: no key, no checksum.
    pub const ENCAP4_PLAIN: u8 = 1;
    /// 42 bytes: a key.
    pub const ENCAP4_KEY: u8 = 2;
    /// 42 bytes: a checksum.
    pub const ENCAP4_CSUM: u8 = 3;
    /// 46 bytes: checksum and key.
    pub const ENCAP4_CSUM_KEY: u8 = 4;
    /// IPv6 outside, 58 bytes: no key, no checksum, no Destination Options.
    pub const ENCAP6_PLAIN: u8 = 5;
    /// IPv6 outside, 62 bytes: a key.
    pub const ENCAP6_KEY: u8 = 6;
    /// The decapsulation fast path takes this tunnel's packets without testing its settings: no checksum,
    /// sequence numbers or source filter, no inner-packet rule on the way out, not an ERSPAN or TEB tunnel.
    pub const DECAP: u8 = 8;
    /// With an [`ENCAP_MASK`] shape: the outer TTL or hop limit is fixed (`ttl_set != 0`), not inherited. The
    /// encap pass's loop over packets into many tunnels takes it as part of the header's shape.
    pub const TTL_FIXED: u8 = 16;
    /// A TEB tunnel's frames (from its bridge) take the template write: the [`ENCAP_MASK`] shape without a
    /// GRE checksum (`ENCAP4_PLAIN`, `ENCAP4_KEY`, `ENCAP6_PLAIN` or `ENCAP6_KEY`), shifted by [`TEB_SHIFT`].
    /// Bits of their own, so that no IP path ever takes a TEB tunnel's shape. 0: the general write (an
    /// unresolved next hop, keepalives, a checksum, sequence numbers, `encap_limit`).
    pub const TEB_MASK: u8 = 7 << TEB_SHIFT;
    pub const TEB_SHIFT: u32 = 5;
}

/// What an ERSPAN tunnel (`mode = "erspan"`) does with what it receives: the mirrored frames of `session` leave
/// port `deliver` as they were captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErspanRx {
    /// The session ID accepted (type I, which has none, counts as session 0).
    pub session: u16,
    /// The l2 port the inner frames leave by (`deliver`), as a port index. None for a tunnel that only sends
    /// (a `[[mirror]]` target without `deliver`): what it receives is dropped as `erspan_no_deliver`.
    pub deliver: Option<u16>,
}

/// What an ERSPAN tunnel that a `[[mirror]]` sends into puts after its GRE header (version 1: type II, GRE
/// protocol 0x88BE; version 2: type III, 0x22EB). The tunnel's template then holds the GRE header Linux's
/// `erspan_xmit` sends: S bit, protocol, sequence number (no key, no checksum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErspanTx {
    /// `greway_wire::erspan::VERSION_TYPE_II` or `VERSION_TYPE_III`.
    pub version: u8,
    pub session: u16,
    /// Type II port index.
    pub index: u32,
    /// Type III hardware ID.
    pub hwid: u8,
}

impl ErspanTx {
    /// Bytes of the ERSPAN header after GRE.
    pub fn header_len(&self) -> usize {
        if self.version == greway_wire::erspan::VERSION_TYPE_II {
            greway_wire::erspan::TYPE_II_LEN
        } else {
            greway_wire::erspan::TYPE_III_LEN
        }
    }
}

/// The direction a `[[mirror]]` copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MirrorDir {
    /// Frames as received on the port.
    Rx,
    /// Frames as sent on the port.
    Tx,
}

/// One `[[mirror]]` source as a table generation resolves it: its counter slot (the entry's run-unique id,
/// never reused within a run, so that an entry a reload keeps keeps its counters) and the index of its ERSPAN
/// tunnel in this generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorSource {
    pub entry: u32,
    pub tunnel: u32,
}

/// Every `[[mirror]]` by port and direction, and the ports that have any as bit masks (bit `i` for port index
/// `i`; at most 64 ports, validated): the poll loop tests a mask bit once per burst.
#[derive(Debug, Clone, Default)]
pub struct Mirrors {
    pub rx_ports: u64,
    pub tx_ports: u64,
    /// Per port index: the sessions its received frames are copied into.
    pub rx: Vec<Box<[MirrorSource]>>,
    /// Per port index: the sessions its sent frames are copied into.
    pub tx: Vec<Box<[MirrorSource]>>,
    /// Counter slots the entries need: their highest id + 1 (0 without mirrors).
    pub count: usize,
}

impl Mirrors {
    /// The sources of port `port` in direction `dir` (empty when none).
    #[inline]
    pub fn of(&self, port: usize, dir: MirrorDir) -> &[MirrorSource] {
        let v = match dir {
            MirrorDir::Rx => &self.rx,
            MirrorDir::Tx => &self.tx,
        };
        v.get(port).map_or(&[], |s| &s[..])
    }

    /// Add the entry with id `entry` on port `port`, copying `dir` into tunnel index `tunnel`.
    pub fn add(&mut self, entry: u32, port: usize, dir: MirrorDir, tunnel: u32) {
        let (mask, v) = match dir {
            MirrorDir::Rx => (&mut self.rx_ports, &mut self.rx),
            MirrorDir::Tx => (&mut self.tx_ports, &mut self.tx),
        };
        if port < 64 {
            *mask |= 1 << port;
        }
        if v.len() <= port {
            v.resize_with(port + 1, Default::default);
        }
        let mut list = std::mem::take(&mut v[port]).into_vec();
        list.push(MirrorSource { entry, tunnel });
        v[port] = list.into_boxed_slice();
        self.count = self.count.max(entry as usize + 1);
    }
}

/// The MSS a tunnel's `mss_clamp` lowers TCP SYN and SYN-ACK segments to, per inner family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MssClamp {
    pub v4: u16,
    pub v6: u16,
}

/// Which side a port faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortRole {
    /// Faces the hosts: plain IP in, plain IP out.
    Inside,
    /// Faces the transport network: GRE in, GRE out.
    Outside,
    /// Carries Ethernet frames as they are (no address): frames received on it are not routed (dropped as
    /// `l2_no_bridge`), and no routed IP leaves by it. ERSPAN tunnels deliver their mirrored frames to one.
    L2,
}

impl PortRole {
    /// The role implied by a port name (`inside` / `outside`), if any.
    pub fn from_name(name: &str) -> Option<PortRole> {
        match name {
            "inside" => Some(PortRole::Inside),
            "outside" => Some(PortRole::Outside),
            _ => None,
        }
    }
}

impl fmt::Display for PortRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PortRole::Inside => "inside",
            PortRole::Outside => "outside",
            PortRole::L2 => "l2",
        })
    }
}

/// A port as the datapath sees it.
#[derive(Clone, Debug)]
pub struct PortInfo {
    pub name: String,
    pub role: PortRole,
    pub mac: [u8; 6],
    /// The NIC verifies received IPv4 header checksums (rx offload on): the decap fast paths take the mbuf's
    /// verdict on the outer header ([`crate::buf::PacketBuf::rx_ipv4_cksum_good`]) and check in software only
    /// what it does not call good. Off (virtual ports, most of them), they check every outer header in software
    /// and never read the flags. (The encap fast paths read the flags on every port: a GOOD verdict is the
    /// NIC's either way.)
    pub rx_ipv4_cksum: bool,
    pub v4: Vec<(Ipv4Addr, u8)>,
    pub v6: Vec<(Ipv6Addr, u8)>,
    pub mtu: u16,
}

impl PortInfo {
    /// The first IPv4 address (source of ICMP errors and ARP).
    pub fn first_v4(&self) -> Option<Ipv4Addr> {
        self.v4.first().map(|a| a.0)
    }
    pub fn first_v6(&self) -> Option<Ipv6Addr> {
        self.v6
            .iter()
            .find(|a| !is_link_local(&a.0))
            .or(self.v6.first())
            .map(|a| a.0)
    }
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Run-time state of a tunnel shared between workers and the control thread. It lives as long as the tunnel,
/// across table generations, so sequence numbers continue when another tunnel is added or removed.
#[derive(Debug)]
pub struct TunnelState {
    /// False once keepalives were missed `retries` times. Relaxed loads/stores: a flag, no data behind it.
    pub up: AtomicBool,
    /// TSC of the last keepalive reply seen (written by workers, read by control).
    pub last_keepalive_tsc: AtomicU64,
    /// Next sequence number to send. Single writer: the tunnel's owner worker (plain load + store, Relaxed:
    /// no other data is published through it).
    pub tx_seq: AtomicU32,
    /// Last sequence number delivered (RFC 2890 receiver state, starts at 2^32-1). Single writer: the worker
    /// whose rx queue the tunnel's packets hash to (RSS on the outer addresses keeps a tunnel on one queue).
    pub rx_seq: AtomicU32,
    /// The path MTU learned from ICMP errors about our packets (see [`crate::pmtu`]).
    pub pmtu: PmtuState,
}

impl Default for TunnelState {
    fn default() -> Self {
        TunnelState {
            up: AtomicBool::new(true),
            last_keepalive_tsc: AtomicU64::new(0),
            tx_seq: AtomicU32::new(0),
            rx_seq: AtomicU32::new(greway_wire::gre::RECEIVER_INITIAL_SEQUENCE),
            pmtu: PmtuState::default(),
        }
    }
}

/// One tunnel, ready for the fast path.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct Tunnel {
    // Hot: everything the encapsulation fast path reads per packet, at the start (the layout is fixed by
    // `repr(C)`; `hot_fields_layout` checks it): 21 bytes of fields, then the header template. For an IPv4
    // tunnel with a key (a 42-byte header) that is exactly the first cache line; every tunnel fits two. With
    // many tunnels the burst prefetches one line per packet, or two when some tunnel needs them
    // (`Tables::tunnel_lines`).
    /// IPv4 outer: the one's-complement sum (folded, of the 16-bit words as they lie in memory: native-endian)
    /// of the template's IPv4 header with every per-packet field (TOS, total length, identification, flags,
    /// checksum, and an inherited TTL) zero. A fixed TTL (`ttl_set` not 0) is in the template and in this sum:
    /// the fast paths neither write nor add it per packet. The encapsulation adds the per-packet words in
    /// registers (RFC 1071 associativity) instead of reading the header back from the packet, where the narrow
    /// stores that just wrote it would defeat store forwarding.
    pub ip4_base_sum: u32,
    /// The one's-complement sum (folded, big-endian words) of the template's GRE header with the checksum
    /// and sequence number fields zero: the GRE checksum of a fast-path packet starts from it instead of
    /// reading back the header it just wrote (see `encap_emit`).
    pub gre_base_sum: u16,
    /// Largest inner packet (bytes of the inner IP packet): the configured MTU, or less while a lower path MTU
    /// is learned (`crate::pmtu`). Read per packet like a plain `u16`.
    pub mtu: MtuCell,
    /// Egress port for the outer packet and its next hop (the remote, or the route's gateway).
    pub out_port: u16,
    pub checksum: bool,
    pub sequence: bool,
    /// True when the next hop's MAC is known and `template` is complete.
    pub resolved: bool,
    /// `keepalive.is_some()`, where the fast path reads it.
    pub keepalive_on: bool,
    /// The configured `ttl` and `tos`, decided per tunnel so the encapsulation does not branch on them per
    /// packet: outer TOS = (inner TOS & `tos_keep`) | `tos_set` (inherit: keep all; fixed DSCP: keep the ECN
    /// bits, RFC 6040 normal mode); outer TTL = `ttl_set`, or the inner TTL when it is 0 (inherit; a fixed TTL
    /// is 1..=255).
    pub tos_keep: u8,
    pub tos_set: u8,
    pub ttl_set: u8,
    /// Length of the encapsulation header (at most [`MAX_ENCAP_HEADER`]).
    pub header_len: u8,
    /// [`inner_check`] bits, decided when the table is built: 0 for a tunnel without `mss_clamp` or
    /// `encap_limit`, so its fast path tests one byte and nothing more.
    pub inner_checks: u8,
    /// Offsets within the template.
    pub gre_off: u8,
    pub seq_off: u8,
    /// The fast paths' per-tunnel decisions, made when the table is built ([`Tunnel::decide_fast`]) so a
    /// packet tests one byte instead of each setting: [`fast::ENCAP_MASK`] holds the
    /// encapsulation's header shape (0: the tunnel takes the full checks), [`fast::DECAP`] says the
    /// decapsulation fast path needs no per-tunnel check.
    pub fast: u8,
    /// Ethernet + outer IP + GRE header with every constant field filled; per-packet fields are patched.
    pub template: [u8; MAX_ENCAP_HEADER],
    // Cold: configuration and state read on the slower paths.
    pub state: Arc<TunnelState>,
    pub key_off: usize,
    /// Cisco keepalives: (interval s, retries).
    pub keepalive: Option<(u32, u32)>,
    pub index: u32,
    /// Run-unique id (see [`Tables::tunnel_ids`]).
    pub id: u64,
    pub name: String,
    pub local: IpAddr,
    pub remote: IpAddr,
    pub ikey: Option<u32>,
    pub okey: Option<u32>,
    /// RFC 2890 reordering: (window, timeout in ms).
    pub reorder: Option<(usize, u32)>,
    pub allowed_sources: Option<Vec<IpNet>>,
    pub next_hop: IpAddr,
    /// The configured MTU and the limits of path MTU discovery.
    pub pmtu: PmtuParams,
    /// `mss_clamp`, resolved to values.
    pub mss_clamp: Option<MssClamp>,
    /// `encap_limit` (IPv6 outer only): the template carries a Destination Options header with it.
    pub encap_limit: Option<u8>,
    /// `mode = "erspan"`: the session it accepts and the port it delivers to (with [`inner_check::ERSPAN`]).
    pub erspan: Option<ErspanRx>,
    /// A `[[mirror]]` sends into this ERSPAN tunnel: the header after GRE. The sequence number is
    /// `state.tx_seq`, taken by every worker that mirrors into the session (an atomic add per copy).
    pub erspan_tx: Option<ErspanTx>,
    /// `mode = "teb"` (with [`inner_check::TEB`]): the bridge member the tunnel is; None for a TEB tunnel in no
    /// bridge (what it receives is dropped as `l2_no_bridge`).
    pub teb: Option<crate::bridge::MemberRef>,
}

impl Tunnel {
    /// Outer IPv6 (from the template layout, a hot field, rather than `local`, a cold one).
    #[inline]
    pub fn outer_v6(&self) -> bool {
        self.gre_off >= 14 + 40
    }
    /// Offset in the template of the Destination Options header that carries `encap_limit` (right before GRE).
    #[inline]
    pub fn dest_opts_at(&self) -> Option<usize> {
        self.encap_limit
            .map(|_| self.gre_at() - greway_wire::ipv6_options::EncapLimitRepr::HEADER_LEN)
    }
    /// Offset of the GRE header in the template.
    #[inline]
    pub fn gre_at(&self) -> usize {
        usize::from(self.gre_off)
    }
    /// Length of the encapsulation header.
    #[inline]
    pub fn header_bytes(&self) -> usize {
        usize::from(self.header_len)
    }
    /// The bytes at the start of the tunnel the encapsulation fast path reads: its fields and the header
    /// part of the template.
    pub fn hot_bytes(&self) -> usize {
        std::mem::offset_of!(Tunnel, template) + self.header_bytes()
    }
    /// The C, K and S bits of the GRE header this tunnel sends (from its template).
    pub fn gre_optional_fields(&self) -> u16 {
        use greway_wire::gre;
        self.template
            .get(self.gre_at()..)
            .and_then(gre::Header::from_prefix)
            .map_or(0, |h| {
                h.flags_version() & (gre::flags::CHECKSUM | gre::flags::KEY | gre::flags::SEQUENCE)
            })
    }
    /// GRE header length.
    pub fn gre_len(&self) -> usize {
        self.header_bytes() - self.gre_at()
    }
    /// This tunnel's name across generations.
    #[inline]
    pub fn tref(&self) -> TunnelRef {
        TunnelRef {
            index: self.index,
            id: self.id,
        }
    }
    /// The encapsulation header shape ([`fast`]`::ENCAP4_*`, `ENCAP6_*`) by the tunnel's outer family,
    /// checksum and key; 0 for a sequenced tunnel, and for an IPv6 outer header with a GRE checksum or a
    /// Destination Options header (`encap_limit`).
    #[inline]
    pub fn encap_shape(&self) -> u8 {
        const HL: usize = 14 + 20 + 4;
        const HL6: usize = 14 + 40 + 4;
        if self.sequence {
            return 0;
        }
        if self.outer_v6() {
            return match (self.checksum, self.header_bytes()) {
                (false, HL6) => fast::ENCAP6_PLAIN,
                (false, l) if l == HL6 + 4 => fast::ENCAP6_KEY,
                _ => 0,
            };
        }
        match (self.checksum, self.header_bytes()) {
            (false, HL) => fast::ENCAP4_PLAIN,
            (false, l) if l == HL + 4 => fast::ENCAP4_KEY,
            (true, l) if l == HL + 4 => fast::ENCAP4_CSUM,
            (true, l) if l == HL + 8 => fast::ENCAP4_CSUM_KEY,
            _ => 0,
        }
    }
    /// Fill [`Tunnel::fast`] from the settings (call once the tunnel is complete). What can change at run time
    /// (the keepalive state, a learned path MTU) is still tested per packet. An ERSPAN sender never takes the
    /// encapsulation fast path: its template's GRE header carries a sequence number (and its copies are made by
    /// `gateway::mirror`, not encapsulated as routed IP).
    pub fn decide_fast(&mut self) {
        let encap = if self.resolved
            && !self.keepalive_on
            && self.inner_checks == 0
            && self.erspan_tx.is_none()
        {
            self.encap_shape()
        } else {
            0
        };
        let decap = !self.checksum
            && !self.sequence
            && self.allowed_sources.is_none()
            && self.inner_checks
                & (inner_check::MSS_CLAMP | inner_check::ERSPAN | inner_check::TEB)
                == 0;
        // (A TEB tunnel with no other inner-packet rule: no `encap_limit`.)
        let teb = if self.inner_checks == inner_check::TEB
            && self.resolved
            && !self.keepalive_on
            && !self.checksum
        {
            self.encap_shape()
        } else {
            0
        };
        self.fast = encap
            | teb << fast::TEB_SHIFT
            | if decap { fast::DECAP } else { 0 }
            | if encap != 0 && self.ttl_set != 0 {
                fast::TTL_FIXED
            } else {
                0
            };
    }
    /// A TEB tunnel (`mode = "teb"`): Ethernet frames inside.
    #[inline]
    pub fn is_teb(&self) -> bool {
        self.inner_checks & inner_check::TEB != 0
    }
    /// Whether keepalives gate traffic and the tunnel is down.
    #[inline]
    pub fn is_down(&self) -> bool {
        self.keepalive_on && !self.state.up.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A tunnel as named across table generations: its index in the generation the name was made in (a hint) and
/// its run-unique id (the truth). Indices shift when tunnels are added or removed at run time; ids never do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TunnelRef {
    pub index: u32,
    pub id: u64,
}

/// Identity of a tunnel on receive: (our address, peer address, key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecapKey {
    pub local: IpAddr,
    pub remote: IpAddr,
    pub key: Option<u32>,
}

/// A route of the outer or inside network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub port: usize,
    /// None: directly connected (the destination itself is the next hop).
    pub via: Option<IpAddr>,
    /// Some tunnel route overlaps this route's prefix (one contains the other). A tunnel route takes precedence
    /// over any route, so a destination this route matches can go into a tunnel only when this is set: without
    /// it the decap fast paths skip the tunnel-route lookup (for IPv6 a walk of several dependent loads).
    pub tunnel_overlap: bool,
}

/// The route tables: rebuilt only when routes or tunnels change.
#[derive(Debug)]
pub struct RouteTables {
    /// Inner destination -> tunnel index.
    pub encap4: Lpm4,
    pub encap6: Lpm6,
    /// Destination -> index into `routes` (configured routes plus connected subnets).
    pub routes4: Lpm4,
    pub routes6: Lpm6,
    pub routes: Vec<Route>,
}

/// A neighbour entry: MAC on a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbor {
    pub port: usize,
    pub mac: [u8; 6],
    /// Static entries never age.
    pub is_static: bool,
}

/// A small set of IPv4 addresses (host order) with a 64-bit filter in front, for the per-packet "is this
/// address ours" checks: an address outside the set almost always costs a multiply, a shift and a bit test
/// (one bit of 64 per member, picked by a multiplicative hash), where a slice search costs a call and a loop.
#[derive(Clone, Debug, Default)]
pub struct AddrSet4 {
    filter: u64,
    addrs: Vec<u32>,
}

impl AddrSet4 {
    pub fn new(addrs: impl IntoIterator<Item = u32>) -> Self {
        let mut addrs: Vec<u32> = addrs.into_iter().collect();
        addrs.sort_unstable();
        addrs.dedup();
        let filter = addrs.iter().fold(0, |f, &a| f | Self::bit(a));
        AddrSet4 { filter, addrs }
    }

    #[inline(always)]
    fn bit(a: u32) -> u64 {
        // Fibonacci hashing: the top 6 bits of the product depend on every bit of the address.
        1u64 << (a.wrapping_mul(0x9e37_79b9) >> 26)
    }

    #[inline(always)]
    // `contains` on a `u32` slice is an out-of-line vectorised search: a call and set-up that cost more than
    // the loop over the few members a gateway has.
    #[allow(clippy::manual_contains)]
    pub fn contains(&self, a: u32) -> bool {
        self.filter & Self::bit(a) != 0 && self.addrs.iter().any(|&x| x == a)
    }

    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }
}

/// Everything a worker reads per packet. Immutable once published. A clone shares the route tables and each
/// tunnel's [`TunnelState`] (`Arc`s) and copies the rest.
#[derive(Clone, Debug)]
pub struct Tables {
    pub ports: Vec<PortInfo>,
    pub tunnels: Vec<Tunnel>,
    pub decap: FxMap<DecapKey, u32>,
    /// (local, remote) pairs with any tunnel: tells a key mismatch from an unknown peer.
    pub peers: FxMap<(IpAddr, IpAddr), u32>,
    /// Every tunnel of each (local, remote) pair: the tunnels an ICMP error about our packets can be about.
    pub outer_paths: FxMap<(IpAddr, IpAddr), Box<[u32]>>,
    pub routes: Arc<RouteTables>,
    pub neighbors: FxMap<IpAddr, Neighbor>,
    /// Our own addresses: every port's (the tunnel endpoints among them) and every tunnel's own.
    pub local4: Vec<Ipv4Addr>,
    pub local6: Vec<Ipv6Addr>,
    /// Some tunnel route covers one of `local4`: only then can a destination routed into a tunnel be ours.
    pub local4_tunneled: bool,
    /// The same for `local6`.
    pub local6_tunneled: bool,
    /// The distinct tunnel endpoint addresses of ours (`local` of every tunnel): the decap loop check.
    pub tunnel_locals: Vec<IpAddr>,
    /// The tunnels' own interface addresses (also in `local4` / `local6`): an echo request to one of them is
    /// answered with a reply routed by the tables, not turned around on the port it came in on.
    pub tunnel_addrs: Vec<IpAddr>,
    /// `local4` as an [`AddrSet4`] (the fast paths' "is it ours" checks).
    pub local4_set: AddrSet4,
    /// Cache lines of the largest tunnel's hot part ([`Tunnel::hot_bytes`]): what the encap stage prefetches
    /// per packet with many tunnels (1 when every tunnel is IPv4 with at most a key).
    pub tunnel_lines: usize,
    pub generation: u64,
    /// Run-unique id of each tunnel (`tunnel_ids[i]` for `tunnels[i]`), never reused within a run: workers
    /// key their per-tunnel counters by it so runtime additions and removals do not mix counters up.
    pub tunnel_ids: Arc<[u64]>,
    /// Packets per second each worker may hand to the host interfaces (`[host] punt_pps`); 0 without `[host]`:
    /// nothing is punted and what greway does not answer itself is `local_unhandled`.
    pub punt_pps: u32,
    /// The `[[mirror]]` sessions (ERSPAN out).
    pub mirrors: Mirrors,
    /// The bridges (`[[bridge]]`), in configuration order.
    pub bridges: Vec<crate::bridge::Bridge>,
    /// Per port index: the bridge members its frames enter by (empty for ports in no bridge).
    pub port_bridging: Vec<crate::bridge::PortBridging>,
}

impl Tables {
    /// The index of `r`'s tunnel in this generation, if it still exists: the index it was named with when that
    /// slot still holds the same tunnel (the common case), else a search by id (rare: after a runtime change).
    #[inline]
    pub fn resolve(&self, r: TunnelRef) -> Option<u32> {
        if self.tunnel_ids.get(r.index as usize) == Some(&r.id) {
            return Some(r.index);
        }
        self.tunnel_ids
            .iter()
            .position(|&id| id == r.id)
            .map(|i| i as u32)
    }
}

/// Building tables failed (after config validation this means a resource limit).
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("route table: {0}")]
    Lpm(#[from] LpmError),
    #[error("{0}")]
    Other(String),
}
/// Which address ranges (prefixes, as first..=last address; IPv4 widened to `u128`) a set of prefixes overlaps,
/// in O(log n) per query: two prefixes overlap iff one contains the other, i.e. iff one's first address lies in
/// the other's range. Sorted by first address, with a running maximum of the last addresses, a query range
/// [f, l] overlaps some prefix iff a prefix starts inside it, or the prefixes starting before f reach f.
pub struct PrefixOverlap {
    /// (first, max last of this and every earlier entry), sorted by first.
    sorted: Vec<(u128, u128)>,
}

impl PrefixOverlap {
    pub fn new(ranges: impl IntoIterator<Item = (u128, u128)>) -> Self {
        let mut v: Vec<(u128, u128)> = ranges.into_iter().collect();
        v.sort_unstable();
        let mut reach = 0u128;
        for (i, e) in v.iter_mut().enumerate() {
            reach = if i == 0 { e.1 } else { reach.max(e.1) };
            e.1 = reach;
        }
        PrefixOverlap { sorted: v }
    }

    pub fn any(&self, first: u128, last: u128) -> bool {
        // Entries starting at or before `last`.
        let n = self.sorted.partition_point(|&(f, _)| f <= last);
        // The last of them starts inside [first, last], or some earlier one reaches `first`.
        n > 0 && self.sorted[n - 1].1 >= first
    }
}

impl RouteTables {
    /// Route lookup: (egress port, next-hop address).
    #[inline]
    pub fn next_hop(&self, dst: IpAddr) -> Option<(usize, IpAddr)> {
        let idx = match dst {
            IpAddr::V4(a) => self.routes4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.routes6.lookup(u128::from(a)),
        }?;
        let r = self.routes[idx as usize];
        Some((r.port, r.via.unwrap_or(dst)))
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `PrefixOverlap` answers like a check against every prefix (two prefixes overlap iff one contains the
        /// other), for IPv4-sized prefixes of any length and queries among, inside and around them.
        #[test]
        fn prefix_overlap_equals_pairwise_check(
            set in prop::collection::vec((any::<u32>(), 0u8..=32), 0..30),
            queries in prop::collection::vec((any::<u32>(), 0u8..=32), 1..30),
        ) {
            let range = |(a, len): (u32, u8)| {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
                (u128::from(a & mask), u128::from(a | !mask))
            };
            let set: Vec<(u128, u128)> = set.into_iter().map(range).collect();
            let po = PrefixOverlap::new(set.iter().copied());
            let mut qs: Vec<(u128, u128)> = queries.into_iter().map(range).collect();
            qs.extend(set.iter().copied());
            for (f, l) in qs {
                let nested = set.iter().any(|&(sf, sl)| (sf <= f && l <= sl) || (f <= sf && sl <= l));
                prop_assert_eq!(po.any(f, l), nested, "{:#x}..{:#x} in {:x?}", f, l, set);
            }
        }

        /// The filter never hides a member: `AddrSet4` answers like a slice search, for members, for addresses
        /// one bit away from one, and for any other address.
        #[test]
        fn addr_set4_equals_slice_search(
            addrs in prop::collection::vec(any::<u32>(), 0..40),
            probes in prop::collection::vec(any::<u32>(), 1..40),
            flip in 0u32..32,
        ) {
            let set = AddrSet4::new(addrs.iter().copied());
            let mut all = probes.clone();
            all.extend(addrs.iter().copied());
            all.extend(addrs.iter().map(|a| a ^ (1 << flip)));
            for a in all {
                prop_assert_eq!(set.contains(a), addrs.contains(&a), "{:#x}", a);
            }
            let mut distinct = addrs.clone();
            distinct.sort_unstable();
            distinct.dedup();
            prop_assert_eq!(set.len(), distinct.len());
        }
    }

    #[test]
    fn hot_fields_layout() {
        use std::mem::offset_of;
        assert_eq!(std::mem::align_of::<Tunnel>(), 64);
        // Every hot field before the template, the template last of them.
        let fields = [
            offset_of!(Tunnel, ip4_base_sum) + 4,
            offset_of!(Tunnel, gre_base_sum) + 2,
            offset_of!(Tunnel, mtu) + 2,
            offset_of!(Tunnel, out_port) + 2,
            offset_of!(Tunnel, checksum) + 1,
            offset_of!(Tunnel, sequence) + 1,
            offset_of!(Tunnel, resolved) + 1,
            offset_of!(Tunnel, keepalive_on) + 1,
            offset_of!(Tunnel, tos_keep) + 1,
            offset_of!(Tunnel, tos_set) + 1,
            offset_of!(Tunnel, ttl_set) + 1,
            offset_of!(Tunnel, header_len) + 1,
            offset_of!(Tunnel, inner_checks) + 1,
            offset_of!(Tunnel, gre_off) + 1,
            offset_of!(Tunnel, seq_off) + 1,
            offset_of!(Tunnel, fast) + 1,
        ];
        let tpl = offset_of!(Tunnel, template);
        assert!(
            fields.iter().all(|&e| e <= tpl),
            "{fields:?} / template at {tpl}"
        );
        // IPv4 with a key: Ethernet 14 + IPv4 20 + GRE 8 in the first line; any tunnel in two.
        assert!(tpl + 14 + 20 + 8 <= 64, "template at {tpl}");
        assert!(tpl + MAX_ENCAP_HEADER <= 128, "template at {tpl}");
    }
}
