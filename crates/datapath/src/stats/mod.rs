//! Per-worker counters (one writer each), the drop-reason table, and the snapshot handoff to the control thread.
//!
//! Contract: a worker owns its [`Counters`] and writes them with plain stores (no atomics, no locks). At a fixed
//! cadence it copies them into a recycled [`Snapshot`] and pushes that through a lock-free ring
//! ([`crossbeam::queue::ArrayQueue`]); the control thread keeps the newest snapshot per worker and sums them.
//! Snapshots are cumulative, so a lost or late one only delays what is shown, never corrupts it.
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a packet was dropped. Every drop in greway has exactly one of these and a counter.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Frame shorter than its headers or than its length fields say.
    Truncated,
    /// EtherType greway does not handle on this port.
    UnsupportedEthertype,
    /// IPv4/IPv6 header invalid (version, IHL, length, header checksum).
    BadIpHeader,
    /// An IPv6 Destination Options header before GRE with malformed options (an option past the header's end,
    /// more than 7 bytes of padding, PadN with non-zero data).
    BadIpv6Options,
    /// An IPv6 Destination Options header before GRE with an option greway does not know whose type says
    /// discard (RFC 8200 4.2: 01, or 10/11 when the Parameter Problem was not sent).
    UnknownIpv6Option,
    /// Not addressed to us and nothing to route it to.
    NoRoute,
    /// Next hop MAC unknown and the resolution queue is full.
    NoNeighbor,
    /// TTL / hop limit reached zero.
    TtlExpired,
    /// Larger than the tunnel MTU with DF set (an ICMP error was sent when allowed).
    TooBig,
    /// An inner IPv6 packet whose Tunnel Encapsulation Limit is 0, for a tunnel with `encap_limit` (RFC 2473
    /// 4.1.1; the ICMPv6 Parameter Problem was suppressed by the rate limiter).
    EncapLimitExceeded,
    /// GRE packet for no configured tunnel (local, remote, key).
    UnknownTunnel,
    /// GRE version not 0 (other than PPTP).
    BadGreVersion,
    /// GRE version 1 (PPTP enhanced GRE): recognised, not decapsulated.
    Pptp,
    /// GRE version 1 with protocol type 0x6400 (MikroTik EoIP): recognised, not decapsulated.
    Eoip,
    /// GRE R, s or Recur bits set (RFC 1701 routing/recursion).
    GreReservedBits,
    /// GRE checksum present and wrong.
    BadChecksum,
    /// Tunnel requires a checksum; packet has none.
    MissingChecksum,
    /// Tunnel requires a key; packet has none, or the key differs.
    KeyMismatch,
    /// Tunnel requires sequence numbers; packet has none.
    MissingSequence,
    /// Sequence number not later than the last one delivered (RFC 2890 late or duplicate).
    LateSequence,
    /// GRE protocol type greway does not forward (CDP, ERSPAN, TEB, MPLS...).
    UnsupportedGreProtocol,
    /// RFC 6040: outer CE on a Not-ECT inner packet.
    EcnCeOnNotEct,
    /// Decapsulated packet addressed to our own tunnel endpoint (loop).
    TunnelLoop,
    /// Tunnel is down (keepalives missed).
    TunnelDown,
    /// Inner source not in the tunnel's allowed source prefixes (anti-spoofing).
    SpoofedSource,
    /// Outer IPv4 fragment not reassembled: incomplete within its time, voided (overlap, past the end), or
    /// beyond the reassembly table's fixed capacity (`reasm::MAX_DATAGRAMS`, `reasm::MAX_FRAGMENTS`).
    OuterFragment,
    /// An IP fragment we cannot handle on this path.
    Fragment,
    /// ARP/ND packet not for us, or malformed.
    ArpIgnored,
    /// The egress queue did not take the packet.
    TxFull,
    /// No headroom left to prepend headers.
    NoHeadroom,
    /// A chained (multi-segment) mbuf on a path that needs contiguous data.
    Segmented,
    /// Packet to a local address and protocol greway does not serve.
    LocalUnhandled,
    /// Handoff ring to the owner worker of a sequenced tunnel was full.
    HandoffFull,
    /// Keepalive reply consumed (not an error: accounts for every packet).
    KeepaliveConsumed,
    /// ARP reply / neighbour advertisement consumed after learning from it (not an error).
    NeighborLearned,
    /// An outer fragment merged into a reassembled datagram, which goes on in its place (not an error).
    FragmentReassembled,
    /// ARP reply or neighbour advertisement suppressed by the reply rate limiter (no amplification).
    ReplyRateLimited,
    /// ICMP fragmentation needed / packet too big about one of our tunnels' packets: the tunnel's path MTU was
    /// lowered or refreshed (consumed, not an error).
    PmtuLearned,
    /// ICMP fragmentation needed / packet too big about one of our tunnels' packets whose MTU is not below the
    /// tunnel's current path MTU: nothing changed.
    PmtuNotLower,
    /// ICMP fragmentation needed / packet too big about a tunnel whose path MTU changed less than 100 ms ago.
    PmtuRateLimited,
    /// ICMP fragmentation needed / packet too big that quotes no packet of any tunnel of ours.
    PmtuNoTunnel,
    /// A packet for a host interface over the worker's punt rate (`host.punt_pps`).
    PuntRateLimited,
    /// A packet for a host interface that found the worker's punt ring to the control thread full.
    PuntQueueFull,
    /// A frame received on an l2 port (`role = "l2"`) that no bridge takes: the port is a member of none, or the
    /// frame is tagged with a VLAN that is no member (and the port as a whole is none either).
    L2NoBridge,
    /// ERSPAN from a tunnel's peer for another session than the tunnel's `erspan.session`.
    ErspanSessionMismatch,
    /// ERSPAN for an ERSPAN tunnel with a truncated header, a wrong version, a type III frame type other than
    /// Ethernet, or less than an Ethernet header inside.
    ErspanMalformed,
    /// An Ethernet frame bridged into a TEB tunnel that is longer than the tunnel MTU plus its 14-byte Ethernet
    /// header: Ethernet payloads are not fragmented.
    FrameTooBig,
    /// A bridged frame whose destination MAC was learned on the member it came from: it is not sent back.
    BridgeSameMember,
    /// A bridged frame whose source MAC is a group (multicast/broadcast) or all-zero address: not learned, not
    /// forwarded (IEEE 802.1Q 8.7.1).
    BridgeBadSource,
    /// ERSPAN of the right session from the peer of an ERSPAN tunnel that only sends (a `[[mirror]]` target
    /// without `deliver`): there is no port to deliver it to.
    ErspanNoDeliver,
}

impl DropReason {
    /// Number of reasons (size of counter arrays).
    pub const COUNT: usize = DropReason::ErspanNoDeliver as usize + 1;

    /// All reasons, in counter order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::UnsupportedEthertype,
        DropReason::BadIpHeader,
        DropReason::BadIpv6Options,
        DropReason::UnknownIpv6Option,
        DropReason::NoRoute,
        DropReason::NoNeighbor,
        DropReason::TtlExpired,
        DropReason::TooBig,
        DropReason::EncapLimitExceeded,
        DropReason::UnknownTunnel,
        DropReason::BadGreVersion,
        DropReason::Pptp,
        DropReason::Eoip,
        DropReason::GreReservedBits,
        DropReason::BadChecksum,
        DropReason::MissingChecksum,
        DropReason::KeyMismatch,
        DropReason::MissingSequence,
        DropReason::LateSequence,
        DropReason::UnsupportedGreProtocol,
        DropReason::EcnCeOnNotEct,
        DropReason::TunnelLoop,
        DropReason::TunnelDown,
        DropReason::SpoofedSource,
        DropReason::OuterFragment,
        DropReason::Fragment,
        DropReason::ArpIgnored,
        DropReason::TxFull,
        DropReason::NoHeadroom,
        DropReason::Segmented,
        DropReason::LocalUnhandled,
        DropReason::HandoffFull,
        DropReason::KeepaliveConsumed,
        DropReason::NeighborLearned,
        DropReason::FragmentReassembled,
        DropReason::ReplyRateLimited,
        DropReason::PmtuLearned,
        DropReason::PmtuNotLower,
        DropReason::PmtuRateLimited,
        DropReason::PmtuNoTunnel,
        DropReason::PuntRateLimited,
        DropReason::PuntQueueFull,
        DropReason::L2NoBridge,
        DropReason::ErspanSessionMismatch,
        DropReason::ErspanMalformed,
        DropReason::FrameTooBig,
        DropReason::BridgeSameMember,
        DropReason::BridgeBadSource,
        DropReason::ErspanNoDeliver,
    ];

    /// The snake_case name used in JSON, Prometheus labels and logs.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::UnsupportedEthertype => "unsupported_ethertype",
            DropReason::BadIpHeader => "bad_ip_header",
            DropReason::BadIpv6Options => "bad_ipv6_options",
            DropReason::UnknownIpv6Option => "unknown_ipv6_option",
            DropReason::NoRoute => "no_route",
            DropReason::NoNeighbor => "no_neighbor",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::TooBig => "too_big",
            DropReason::EncapLimitExceeded => "encap_limit_exceeded",
            DropReason::UnknownTunnel => "unknown_tunnel",
            DropReason::BadGreVersion => "bad_gre_version",
            DropReason::Pptp => "pptp",
            DropReason::Eoip => "eoip",
            DropReason::GreReservedBits => "gre_reserved_bits",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::MissingChecksum => "missing_checksum",
            DropReason::KeyMismatch => "key_mismatch",
            DropReason::MissingSequence => "missing_sequence",
            DropReason::LateSequence => "late_sequence",
            DropReason::UnsupportedGreProtocol => "unsupported_gre_protocol",
            DropReason::EcnCeOnNotEct => "ecn_ce_on_not_ect",
            DropReason::TunnelLoop => "tunnel_loop",
            DropReason::TunnelDown => "tunnel_down",
            DropReason::SpoofedSource => "spoofed_source",
            DropReason::OuterFragment => "outer_fragment",
            DropReason::Fragment => "fragment",
            DropReason::ArpIgnored => "arp_ignored",
            DropReason::TxFull => "tx_full",
            DropReason::NoHeadroom => "no_headroom",
            DropReason::Segmented => "segmented",
            DropReason::LocalUnhandled => "local_unhandled",
            DropReason::HandoffFull => "handoff_full",
            DropReason::KeepaliveConsumed => "keepalive_consumed",
            DropReason::NeighborLearned => "neighbor_learned",
            DropReason::FragmentReassembled => "fragment_reassembled",
            DropReason::ReplyRateLimited => "reply_rate_limited",
            DropReason::PmtuLearned => "pmtu_learned",
            DropReason::PmtuNotLower => "pmtu_not_lower",
            DropReason::PmtuRateLimited => "pmtu_rate_limited",
            DropReason::PmtuNoTunnel => "pmtu_no_tunnel",
            DropReason::PuntRateLimited => "punt_rate_limited",
            DropReason::PuntQueueFull => "punt_queue_full",
            DropReason::L2NoBridge => "l2_no_bridge",
            DropReason::ErspanSessionMismatch => "erspan_session_mismatch",
            DropReason::ErspanMalformed => "erspan_malformed",
            DropReason::FrameTooBig => "frame_too_big",
            DropReason::BridgeSameMember => "bridge_same_member",
            DropReason::BridgeBadSource => "bridge_bad_source",
            DropReason::ErspanNoDeliver => "erspan_no_deliver",
        }
    }
}

/// Counters of one port, as seen by one worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortCounters {
    pub rx: u64,
    pub rx_bytes: u64,
    pub tx: u64,
    pub tx_bytes: u64,
}

/// Counters of one tunnel, as seen by one worker. One cache line each (`align(64)`): the 7 counters are 56
/// bytes, and at a 56-byte stride one tunnel in eight would straddle two lines, which the burst's one
/// prefetch per tunnel does not cover. A packet's count and bytes are not side by side: the compiler would
/// pack their two adds into one vector add, whose operands take more instructions (serialized in the
/// documented order all the same).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct TunnelCounters {
    pub encap: u64,
    pub decap: u64,
    pub encap_bytes: u64,
    pub decap_bytes: u64,
    pub drops: u64,
    pub keepalives_rx: u64,
    pub keepalives_reflected: u64,
}

impl Serialize for TunnelCounters {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("TunnelCounters", 7)?;
        st.serialize_field("encap", &self.encap)?;
        st.serialize_field("encap_bytes", &self.encap_bytes)?;
        st.serialize_field("decap", &self.decap)?;
        st.serialize_field("decap_bytes", &self.decap_bytes)?;
        st.serialize_field("drops", &self.drops)?;
        st.serialize_field("keepalives_rx", &self.keepalives_rx)?;
        st.serialize_field("keepalives_reflected", &self.keepalives_reflected)?;
        st.end()
    }
}

/// Counters of one `[[mirror]]` entry (an ERSPAN session's source), as seen by one worker. Every copy attempt
/// ends in exactly one of `packets` or a failure; the originals are counted as if no mirror existed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MirrorCounters {
    /// Copies sent (taken by the transmit queue) and their mirrored frame bytes (as captured, before any
    /// truncation; ERSPAN and outer headers not included).
    pub packets: u64,
    pub bytes: u64,
    /// Of `packets`: frames longer than the session's tunnel MTU, sent cut to it with the ERSPAN T bit set (as
    /// Linux's `erspan_xmit` does).
    pub truncated: u64,
    /// Copy failures: no buffer for the copy (mempool empty).
    pub no_mbuf: u64,
    /// The tunnel's next hop is not resolved yet (resolution is started; copies are never held).
    pub no_neighbor: u64,
    /// The worker's batch of copies for the egress port was full.
    pub queue_full: u64,
    /// The transmit queue refused the copy, or (tx mirror) refused the original, whose copy is then not sent.
    pub tx_full: u64,
}

impl MirrorCounters {
    /// Failed copies, all reasons.
    pub fn failures(&self) -> u64 {
        self.no_mbuf + self.no_neighbor + self.queue_full + self.tx_full
    }

    fn add(&mut self, o: &MirrorCounters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.truncated += o.truncated;
        self.no_mbuf += o.no_mbuf;
        self.no_neighbor += o.no_neighbor;
        self.queue_full += o.queue_full;
        self.tx_full += o.tx_full;
    }
}

/// Counters of one bridge, as seen by one worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BridgeCounters {
    /// Frames received from the bridge's members.
    pub rx: u64,
    /// Known unicast frames sent to the one member that learned their destination.
    pub forwarded: u64,
    /// Frames sent to every other member (broadcast, multicast, unknown unicast, or `learning = false`).
    pub flooded: u64,
    /// Copies made for flooding (a frame flooded to n members makes n - 1).
    pub flood_copies: u64,
    /// Copies that could not be made (no mbuf, a frame too long for one, the worker's deferred queue full): those
    /// members did not get the frame.
    pub flood_copy_failed: u64,
    /// Source MACs learned (new, or back after aging).
    pub learned: u64,
    /// Source MACs seen on another member than the one that had learned them.
    pub moved: u64,
    /// Source MACs not learned because the MAC table was full (`mac_table_size`); their frames are still
    /// forwarded, and frames to them flooded.
    pub table_full: u64,
}

impl BridgeCounters {
    fn add(&mut self, b: &BridgeCounters) {
        self.rx += b.rx;
        self.forwarded += b.forwarded;
        self.flooded += b.flooded;
        self.flood_copies += b.flood_copies;
        self.flood_copy_failed += b.flood_copy_failed;
        self.learned += b.learned;
        self.moved += b.moved;
        self.table_full += b.table_full;
    }
}

/// Spare per-tunnel slots a worker keeps past its table's tunnels, so a tunnel added at run time and met
/// before the worker re-lays out its counters lands in a slot (uncounted) instead of past the end.
pub const TUNNEL_SLACK: usize = 8;

/// All counters of one worker. Written by that worker only.
///
/// `tunnels[i]` counts the tunnel at index `i` of the table the worker uses; `tunnel_ids[i]` is that tunnel's
/// run-unique id (never reused within a run), so counters survive index shifts when tunnels are added or
/// removed at run time ([`Counters::relayout`]) and merge by id, not by index.
#[derive(Debug)]
pub struct Counters {
    pub ports: Vec<PortCounters>,
    pub tunnels: Vec<TunnelCounters>,
    pub tunnel_ids: Arc<[u64]>,
    /// `bridges[i]` counts the bridge whose run-unique id (`Bridge::counters`) is `i`: ids are never reused, so a
    /// bridge's counters stay its own when a reload adds, changes or removes bridges.
    pub bridges: Vec<BridgeCounters>,
    pub drops: [u64; DropReason::COUNT],
    /// Packets whose TSC latency was recorded.
    pub latency_samples: u64,
    /// Worker loop iterations and those that received nothing (for the idle ratio).
    pub polls: u64,
    pub empty_polls: u64,
    /// ICMP errors sent (the offending packet became the error) and suppressed by the rate limiter (dropped
    /// under the offending packet's reason).
    pub icmp_errors_sent: u64,
    pub icmp_errors_suppressed: u64,
    /// Extra packets made by fragmenting inner IPv4 packets larger than a tunnel MTU (DF clear).
    pub fragments_created: u64,
    /// Outer IPv4 datagrams reassembled from fragments addressed to us (the other fragments of each are
    /// accounted under `fragment_reassembled`).
    pub fragments_reassembled: u64,
    /// Packets the general rules handled because no fast path took them (the fast paths take the common shapes,
    /// see README "How greway handles packets"): the share of traffic paying the slower path.
    pub general_path: u64,
    /// Packets (and their IP bytes) handed to the control thread for a host interface: with `tx` and the drops
    /// they account for every received packet.
    pub punted: u64,
    pub punted_bytes: u64,
    /// Packets from host interfaces (the kernel's) this worker took from its ring and sent or dropped.
    pub from_host: u64,
    /// `mirrors[i]` counts the `[[mirror]]` entry whose run-unique id (`MirrorSource::entry`) is `i`: ids are
    /// never reused, so an entry's counters stay its own when a reload adds, changes or removes entries (empty
    /// without mirrors).
    pub mirrors: Vec<MirrorCounters>,
}

impl Clone for Counters {
    fn clone(&self) -> Self {
        let mut c = Counters::new(0, 0);
        c.clone_from(self);
        c
    }

    /// Reuses the vectors' capacity: the worker's snapshot copy allocates nothing once warmed up.
    fn clone_from(&mut self, o: &Self) {
        self.ports.clone_from(&o.ports);
        self.tunnels.clone_from(&o.tunnels);
        if !Arc::ptr_eq(&self.tunnel_ids, &o.tunnel_ids) {
            self.tunnel_ids = o.tunnel_ids.clone();
        }
        self.bridges.clone_from(&o.bridges);
        self.drops = o.drops;
        self.latency_samples = o.latency_samples;
        self.polls = o.polls;
        self.empty_polls = o.empty_polls;
        self.icmp_errors_sent = o.icmp_errors_sent;
        self.icmp_errors_suppressed = o.icmp_errors_suppressed;
        self.fragments_created = o.fragments_created;
        self.fragments_reassembled = o.fragments_reassembled;
        self.general_path = o.general_path;
        self.punted = o.punted;
        self.punted_bytes = o.punted_bytes;
        self.from_host = o.from_host;
        self.mirrors.clone_from(&o.mirrors);
    }
}

impl Counters {
    /// Counters for `ports` ports and `tunnels` tunnels with ids `0..tunnels` (the configuration file's order).
    pub fn new(ports: usize, tunnels: usize) -> Self {
        Counters {
            ports: vec![PortCounters::default(); ports],
            tunnels: vec![TunnelCounters::default(); tunnels],
            tunnel_ids: (0..tunnels as u64).collect(),
            bridges: Vec::new(),
            drops: [0; DropReason::COUNT],
            latency_samples: 0,
            polls: 0,
            empty_polls: 0,
            icmp_errors_sent: 0,
            icmp_errors_suppressed: 0,
            fragments_created: 0,
            fragments_reassembled: 0,
            general_path: 0,
            punted: 0,
            punted_bytes: 0,
            from_host: 0,
            mirrors: Vec::new(),
        }
    }

    /// Make room for the `[[mirror]]` entries with ids below `n`.
    pub fn ensure_mirrors(&mut self, n: usize) {
        if self.mirrors.len() < n {
            self.mirrors.resize(n, MirrorCounters::default());
        }
    }

    /// Count a drop.
    #[inline(always)]
    pub fn drop_pkt(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }

    /// Make room for more tunnels (a runtime table change added some).
    pub fn ensure_tunnels(&mut self, n: usize) {
        if self.tunnels.len() < n {
            self.tunnels.resize(n, TunnelCounters::default());
        }
    }

    /// Make room for `n` bridges (done once, before a worker's first bridged frame).
    pub fn ensure_bridges(&mut self, n: usize) {
        if self.bridges.len() < n {
            self.bridges.resize(n, BridgeCounters::default());
        }
    }

    /// Re-index the per-tunnel counters for a new table whose tunnel `i` has id `ids[i]`: counters of tunnels
    /// that stay move to their new index, removed tunnels' counters are dropped, new tunnels start at zero.
    /// Allocates: called by a worker only when it picks up a table with a different tunnel set.
    pub fn relayout(&mut self, ids: &Arc<[u64]>) {
        let mut t = vec![TunnelCounters::default(); ids.len() + TUNNEL_SLACK];
        for (j, id) in ids.iter().enumerate() {
            if let Some(i) = self.tunnel_ids.iter().position(|x| x == id) {
                t[j] = self.tunnels.get(i).copied().unwrap_or_default();
            }
        }
        self.tunnels = t;
        self.tunnel_ids = ids.clone();
    }

    /// The counters of the tunnel with run-unique id `id`.
    pub fn tunnel_by_id(&self, id: u64) -> Option<&TunnelCounters> {
        let i = self.tunnel_ids.iter().position(|x| *x == id)?;
        self.tunnels.get(i)
    }

    /// Add another worker's counters into these. Tunnels are matched by id (a tunnel unknown here is appended).
    pub fn merge(&mut self, o: &Counters) {
        if self.ports.len() < o.ports.len() {
            self.ports.resize(o.ports.len(), PortCounters::default());
        }
        for (a, b) in self.ports.iter_mut().zip(&o.ports) {
            a.rx += b.rx;
            a.rx_bytes += b.rx_bytes;
            a.tx += b.tx;
            a.tx_bytes += b.tx_bytes;
        }
        // Only the first `tunnel_ids.len()` slots are meaningful (the rest is slack).
        self.tunnels.truncate(self.tunnel_ids.len());
        let mut ids: Vec<u64> = self.tunnel_ids.to_vec();
        for (id, b) in o.tunnel_ids.iter().zip(&o.tunnels) {
            let i = match ids.iter().position(|x| x == id) {
                Some(i) => i,
                None => {
                    ids.push(*id);
                    self.tunnels.push(TunnelCounters::default());
                    ids.len() - 1
                }
            };
            let a = &mut self.tunnels[i];
            a.encap += b.encap;
            a.encap_bytes += b.encap_bytes;
            a.decap += b.decap;
            a.decap_bytes += b.decap_bytes;
            a.drops += b.drops;
            a.keepalives_rx += b.keepalives_rx;
            a.keepalives_reflected += b.keepalives_reflected;
        }
        if ids.len() != self.tunnel_ids.len() {
            self.tunnel_ids = ids.into();
        }
        self.ensure_bridges(o.bridges.len());
        for (a, b) in self.bridges.iter_mut().zip(&o.bridges) {
            a.add(b);
        }
        for (a, b) in self.drops.iter_mut().zip(o.drops.iter()) {
            *a += b;
        }
        self.latency_samples += o.latency_samples;
        self.polls += o.polls;
        self.empty_polls += o.empty_polls;
        self.icmp_errors_sent += o.icmp_errors_sent;
        self.icmp_errors_suppressed += o.icmp_errors_suppressed;
        self.fragments_created += o.fragments_created;
        self.fragments_reassembled += o.fragments_reassembled;
        self.general_path += o.general_path;
        self.punted += o.punted;
        self.punted_bytes += o.punted_bytes;
        self.from_host += o.from_host;
        self.ensure_mirrors(o.mirrors.len());
        for (a, b) in self.mirrors.iter_mut().zip(&o.mirrors) {
            a.add(b);
        }
    }

    /// Total drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Drops by reason name (non-zero only, sorted).
    pub fn drops_by_name(&self) -> BTreeMap<&'static str, u64> {
        DropReason::ALL
            .iter()
            .filter(|r| self.drops[**r as usize] != 0)
            .map(|r| (r.name(), self.drops[*r as usize]))
            .collect()
    }
}

/// Latency histogram in nanoseconds: 1 ns .. 10 s, 3 significant digits.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("static histogram bounds")
}

/// What a worker hands to the control thread: its cumulative counters and latency histogram.
pub struct Snapshot {
    pub worker: usize,
    pub counters: Counters,
    pub latency_ns: Histogram<u64>,
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let us = |v: u64| v as f64 / 1000.0;
        LatencySummary {
            count: h.len(),
            p50_us: us(h.value_at_quantile(0.50)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// Upper bounds (ns) of the latency histogram buckets exported to Prometheus (plus `+Inf`).
pub const LATENCY_BUCKETS_NS: [u64; 16] = [
    250,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    100_000_000,
];

/// A latency histogram in Prometheus form: cumulative counts per upper bound (ns), the sum (ns) and count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatencyBuckets {
    pub le_ns: Vec<(u64, u64)>,
    pub sum_ns: u64,
    pub count: u64,
}

impl LatencyBuckets {
    /// Fold an HDR histogram into [`LATENCY_BUCKETS_NS`]. A value counts in a bucket when the lowest value of
    /// its HDR bucket (3 significant digits) is within the bound.
    pub fn of(h: &Histogram<u64>) -> Self {
        let mut per = [0u64; LATENCY_BUCKETS_NS.len()];
        let mut sum: u64 = 0;
        for v in h.iter_recorded() {
            let n = v.count_since_last_iteration();
            let value = v.value_iterated_to();
            let low = h.lowest_equivalent(value);
            sum = sum.saturating_add(h.median_equivalent(value).saturating_mul(n));
            if let Some(i) = LATENCY_BUCKETS_NS.iter().position(|b| low <= *b) {
                per[i] += n;
            }
        }
        let mut acc = 0;
        let le_ns = LATENCY_BUCKETS_NS
            .iter()
            .zip(per)
            .map(|(b, n)| {
                acc += n;
                (*b, acc)
            })
            .collect();
        LatencyBuckets {
            le_ns,
            sum_ns: sum,
            count: h.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_table_is_complete_and_names_unique() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "ALL must be in discriminant order");
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn merge_sums_everything() {
        let mut a = Counters::new(2, 1);
        let mut b = Counters::new(2, 3);
        a.ports[0].rx = 5;
        b.ports[0].rx = 7;
        b.tunnels[2].encap = 4;
        a.drop_pkt(DropReason::BadChecksum);
        b.drop_pkt(DropReason::BadChecksum);
        b.drop_pkt(DropReason::NoRoute);
        a.merge(&b);
        assert_eq!(a.ports[0].rx, 12);
        assert_eq!(a.tunnels.len(), 3);
        assert_eq!(&a.tunnel_ids[..], &[0, 1, 2]);
        assert_eq!(a.tunnels[2].encap, 4);
        assert_eq!(a.drops_by_name()["bad_checksum"], 2);
        assert!(a.bridges.is_empty());
        let mut w = Counters::new(2, 1);
        w.ensure_bridges(2);
        w.bridges[1].flooded = 3;
        a.merge(&w);
        a.merge(&w);
        assert_eq!(a.bridges[1].flooded, 6);
        assert_eq!(a.total_drops(), 3);
    }

    #[test]
    fn mirror_counters_merge_by_entry_and_clone() {
        let mut w0 = Counters::new(1, 0);
        let mut w1 = Counters::new(1, 0);
        w1.ensure_mirrors(2);
        w1.mirrors[1] = MirrorCounters {
            packets: 3,
            bytes: 300,
            truncated: 1,
            no_mbuf: 1,
            no_neighbor: 2,
            queue_full: 3,
            tx_full: 4,
        };
        w0.ensure_mirrors(1);
        w0.mirrors[0].packets = 5;
        let mut t = Counters::new(1, 0);
        t.merge(&w0);
        t.merge(&w1);
        t.merge(&w1);
        assert_eq!(t.mirrors.len(), 2);
        assert_eq!(t.mirrors[0].packets, 5);
        assert_eq!((t.mirrors[1].packets, t.mirrors[1].bytes), (6, 600));
        assert_eq!((t.mirrors[1].truncated, t.mirrors[1].failures()), (2, 20));
        let mut c = Counters::new(0, 0);
        c.clone_from(&t);
        assert_eq!(c.mirrors, t.mirrors);
    }

    #[test]
    fn latency_summary_reads_percentiles() {
        let mut h = new_latency_histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.count, 1000);
        assert!((s.p50_us - 500.0).abs() < 2.0, "{s:?}");
        assert!((s.p99_us - 990.0).abs() < 2.0, "{s:?}");
    }

    #[test]
    fn relayout_keeps_counters_by_id_across_index_shifts() {
        let mut c = Counters::new(1, 3);
        c.tunnels[0].encap = 10;
        c.tunnels[1].encap = 11;
        c.tunnels[2].encap = 12;
        // Tunnel 1 removed, tunnel 7 added: ids [0, 2, 7].
        let ids: Arc<[u64]> = vec![0, 2, 7].into();
        c.relayout(&ids);
        assert_eq!(c.tunnels[0].encap, 10);
        assert_eq!(c.tunnels[1].encap, 12);
        assert_eq!(c.tunnels[2].encap, 0);
        assert!(c.tunnels.len() >= 3 + TUNNEL_SLACK);
        assert_eq!(c.tunnel_by_id(2).unwrap().encap, 12);
        assert!(c.tunnel_by_id(1).is_none());
    }

    #[test]
    fn merge_matches_tunnels_by_id_and_ignores_slack() {
        let mut w0 = Counters::new(1, 2);
        w0.tunnels[0].decap = 1;
        w0.tunnels[1].decap = 2;
        let mut w1 = Counters::new(1, 2);
        w1.relayout(&vec![1u64, 5].into());
        w1.tunnels[0].decap = 20;
        w1.tunnels[1].decap = 50;
        w1.tunnels[2].decap = 999; // slack: not a tunnel
        let mut t = Counters::new(1, 0);
        t.merge(&w0);
        t.merge(&w1);
        assert_eq!(&t.tunnel_ids[..], &[0, 1, 5]);
        assert_eq!(t.tunnel_by_id(0).unwrap().decap, 1);
        assert_eq!(t.tunnel_by_id(1).unwrap().decap, 22);
        assert_eq!(t.tunnel_by_id(5).unwrap().decap, 50);
        assert_eq!(t.tunnels.len(), 3);
    }

    #[test]
    fn clone_from_reuses_and_copies_everything() {
        let mut a = Counters::new(2, 2);
        a.ports[1].tx = 3;
        a.drop_pkt(DropReason::NoRoute);
        let mut b = Counters::new(0, 0);
        b.clone_from(&a);
        assert_eq!(b.ports, a.ports);
        assert_eq!(b.drops, a.drops);
        assert_eq!(&b.tunnel_ids[..], &[0, 1]);
    }

    #[test]
    fn latency_buckets_are_cumulative() {
        let mut h = new_latency_histogram();
        h.record_n(300, 5).unwrap();
        h.record_n(3_000, 2).unwrap();
        h.record_n(9_000_000_000, 1).unwrap();
        let b = LatencyBuckets::of(&h);
        assert_eq!(b.count, 8);
        assert_eq!(b.le_ns[0], (250, 0));
        assert_eq!(b.le_ns[1], (500, 5));
        assert_eq!(b.le_ns[4], (5_000, 7));
        assert_eq!(
            b.le_ns.last().unwrap().1,
            7,
            "the 9 s sample is only in +Inf"
        );
        assert!(
            b.sum_ns.abs_diff(9_000_000_000 + 5 * 300 + 2 * 3000) < 20_000_000,
            "{}",
            b.sum_ns
        );
    }
}
