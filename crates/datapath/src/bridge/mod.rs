//! Bridges (`[[bridge]]`) as the datapath sees them: members, the ports' and tunnels' way into them, and the
//! shared MAC table ([`mac_table`]). The forwarding rules themselves are the gateway's (`gateway/bridge.rs`).
//!
//! A bridge's members are l2 ports (every frame of the port as it is), one 802.1Q VLAN of an l2 port (`PORT.VLAN`:
//! the tag is removed on the way in and put back on the way out) and TEB tunnels (`mode = "teb"`, Ethernet over
//! GRE). Members are numbered in configuration order; the MAC table stores that number, which does not change
//! between table generations (bridges are configured, not changed at run time).
pub mod mac_table;

use mac_table::MacTable;
use std::sync::Arc;

/// Where a bridge sends a frame for one of its members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member {
    /// Port index `port`; with `vlan`, the frame leaves with that 802.1Q tag (1..=4094).
    Port { port: u16, vlan: Option<u16> },
    /// Tunnel index `tunnel` of the table generation (a TEB tunnel).
    Tunnel { tunnel: u32 },
}

/// A member as its port or tunnel names it: bridge index and member number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemberRef {
    pub bridge: u16,
    pub member: u16,
}

/// How the frames of one port enter bridges: the VLANs that are members of their own, and the port as a whole
/// (every other frame).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortBridging {
    pub whole: Option<MemberRef>,
    /// (VLAN ID, member), sorted by VLAN ID.
    pub vlans: Box<[(u16, MemberRef)]>,
}

impl PortBridging {
    /// The member a frame tagged with VLAN `vid` enters by, when that VLAN is a member of its own.
    #[inline]
    pub fn vlan(&self, vid: u16) -> Option<MemberRef> {
        self.vlans
            .binary_search_by_key(&vid, |&(v, _)| v)
            .ok()
            .map(|i| self.vlans[i].1)
    }
}

/// One bridge of a table generation. The MAC table is shared between generations (and workers).
#[derive(Clone, Debug)]
pub struct Bridge {
    pub name: String,
    pub members: Box<[Member]>,
    /// The members as configured (`lan`, `lan.10`, `l2-b`), for `greway ctl bridge show`.
    pub member_names: Box<[String]>,
    /// `learning = false`: every frame is flooded (a pseudowire with two members).
    pub learning: bool,
    /// At most one member is a tunnel: what a tunnel member sends into the bridge leaves by ports only, sent
    /// or dropped but never held for a next hop (the decap pass's TEB way, `Worker::fast_teb`, takes only such
    /// bridges).
    pub one_tunnel: bool,
    /// No member can hold a frame sent to it: every tunnel member has its next hop resolved and no sequence
    /// numbers (whose packets another worker may own). Decided when the table is built, as the tunnels'
    /// `resolved`; an l2 port's bursts take the fast pass only while every bridge it is in is so
    /// (`Worker::l2_pass`).
    pub never_holds: bool,
    /// Where the bridge's counters are in `Counters::bridges`: its run-unique id, so that counters stay with
    /// their bridge when a reload adds or removes others (never reused within a run).
    pub counters: u32,
    pub macs: Arc<MacTable>,
}

/// The clock of the MAC tables: whole seconds of the TSC (workers and the control thread read the same one).
#[inline]
pub fn clock_s(tsc: u64, tsc_hz: u64) -> u32 {
    (tsc / tsc_hz.max(1)) as u32
}
