//! Runtime tunnel changes while packets are in flight between table generations (issue: packets went into the
//! wrong tunnel). Two gateways share one control plane; tunnels are removed and added between a packet's
//! decision and its release, so the tunnel's index shifts or its slot is taken by another tunnel.
use super::gateway::{owner_of, Gateway, Handoff, Shared};
use super::{HoldReason, Processor, Verdict};
use crate::buf::VecBuf;
use crate::config::Config;
use crate::control::plane::ControlPlane;
use crate::stats::{Counters, DropReason};
use crate::wire::gre;
use std::sync::Arc;
use std::time::Instant;

const INSIDE: usize = 0;
const OUTSIDE: usize = 1;

/// Ports of the test kit, the outside next hop as a static neighbour (or not: then it is resolved at run
/// time); tunnel "decoy" (key 1) first, then "seq" (key 2, sequenced).
fn config(static_neighbor: bool) -> Config {
    let text = "[eal]\nargs = [\"-l\", \"0-2\"]\n[dataplane]\nworkers = [1, 2]\n\
        [[port]]\nname = \"inside\"\ndevice = \"net_null0\"\naddress = \"10.0.0.1/24\"\nmac = \"02:00:00:00:00:01\"\n\
        [[port]]\nname = \"outside\"\ndevice = \"net_null1\"\naddress = \"192.0.2.1/24\"\nmac = \"02:00:00:00:00:02\"\n\
        [[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"192.0.2.254\"\nport = \"outside\"\n\
        [[tunnel]]\nname = \"decoy\"\nlocal = \"192.0.2.1\"\nremote = \"198.51.100.1\"\nkey = 1\nroutes = [\"10.10.0.0/16\"]\n\
        [[tunnel]]\nname = \"seq\"\nlocal = \"192.0.2.1\"\nremote = \"198.51.100.2\"\nkey = 2\nsequence = true\n\
        routes = [\"10.20.0.0/16\"]\n";
    let neighbor =
        "[[neighbor]]\nport = \"outside\"\nip = \"192.0.2.254\"\nmac = \"02:00:00:00:00:fe\"\n";
    let text = format!("{text}{}", if static_neighbor { neighbor } else { "" });
    Config::from_str_named(&text, "generations.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn inside_packet(dst: [u8; 4]) -> VecBuf {
    let mut f = vec![0u8; 14 + 20 + 8];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x0a]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = crate::wire::ipv4::Ipv4Repr {
        src_addr: [10, 0, 0, 2].into(),
        dst_addr: dst.into(),
        protocol: 17,
        payload_len: 8,
        ttl: 64,
        dscp_ecn: 0,
        ident: 1,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    };
    ip.emit(&mut f[14..34]);
    VecBuf::new(&f)
}

struct Rig {
    cp: ControlPlane,
    shared: Shared<VecBuf>,
    gws: Vec<Gateway<VecBuf>>,
    counters: Vec<Counters>,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(config(true))
    }

    fn with(cfg: Config) -> Rig {
        let mut cp = ControlPlane::new(
            &cfg,
            &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]],
            Instant::now(),
            1,
        )
        .expect("tables");
        let shared = Shared::new(cp.tables(), 2);
        let gws = (0..2)
            .map(|w| Gateway::new(w, 2, shared.clone(), 1_000_000_000))
            .collect();
        let counters = (0..2).map(|_| Counters::new(2, 2)).collect();
        Rig {
            cp,
            shared,
            gws,
            counters,
        }
    }

    /// Apply a change to the configuration's tunnels and publish the new generation, as `ctl` does.
    fn change(&mut self, f: impl FnOnce(&mut Config)) {
        let mut cfg = self.cp.config().clone();
        f(&mut cfg);
        self.cp
            .reconfigure(cfg, Instant::now(), 0)
            .expect("reconfigure");
        self.shared.tables.store(Arc::new(self.cp.tables()));
    }

    /// A poll round of worker `w` at `now` with no received packets, as the worker loop runs it: the table
    /// picked up and the counters laid out for it first, then the deferred work.
    fn round(&mut self, w: usize, now: u64) -> Vec<(usize, Vec<u8>)> {
        let gw = &mut self.gws[w];
        let c = &mut self.counters[w];
        Processor::<VecBuf>::begin_burst(gw, now);
        let ids = Processor::<VecBuf>::tunnel_ids(gw)
            .expect("tunnel ids")
            .clone();
        if ids[..] != c.tunnel_ids[..] {
            c.relayout(&ids);
        }
        let mut sent = Vec::new();
        Processor::<VecBuf>::poll_deferred(
            gw,
            now,
            &mut |p, b: VecBuf| {
                sent.push((p, b.to_vec()));
                true
            },
            c,
        );
        sent
    }

    /// Worker `w` receives `pkt` on the inside; a hold is handed over as the worker loop does.
    fn receive(&mut self, w: usize, mut pkt: VecBuf) -> Verdict {
        self.round(w, 1_000);
        let v = self.gws[w].handle(&mut pkt, INSIDE, &mut self.counters[w]);
        if let Verdict::Hold(why) = v {
            Processor::<VecBuf>::hold(&mut self.gws[w], pkt, why, &mut self.counters[w]);
        }
        v
    }

    fn tunnel_counters(&self, w: usize, name: &str) -> crate::stats::TunnelCounters {
        let i = self
            .cp
            .config()
            .tunnels
            .iter()
            .position(|t| t.name == name)
            .expect("tunnel");
        let id = self.cp.tunnel_ids()[i];
        let c = &self.counters[w];
        let j = c
            .tunnel_ids
            .iter()
            .position(|&x| x == id)
            .expect("laid out");
        c.tunnels[j]
    }
}

/// The GRE key of an encapsulated IPv4 frame.
fn gre_key(frame: &[u8]) -> Option<u32> {
    gre::Packet::new_checked(&frame[34..]).expect("GRE").key()
}

#[test]
fn a_handed_off_packet_follows_its_tunnel_when_the_indices_shift() {
    let mut r = Rig::new();
    let seq_id = r.cp.tunnel_ids()[1];
    let owner = owner_of(seq_id, 2);
    let other = 1 - owner;
    let v = r.receive(other, inside_packet([10, 20, 0, 9]));
    assert!(
        matches!(v, Verdict::Hold(HoldReason::Handoff { owner: o, tunnel: 1 }) if usize::from(o) == owner),
        "{v:?}"
    );
    // The decoy before it goes away: "seq" moves from index 1 to 0 while its packet is on the ring.
    r.change(|c| c.tunnels.retain(|t| t.name != "decoy"));
    let sent = r.round(owner, 2_000);
    assert_eq!(sent.len(), 1, "the handed-off packet is sent");
    assert_eq!(sent[0].0, OUTSIDE);
    assert_eq!(
        gre_key(&sent[0].1),
        Some(2),
        "in its own tunnel (key 2), not the decoy's (key 1)"
    );
    assert_eq!(r.tunnel_counters(owner, "seq").encap, 1);
    assert_eq!(r.counters[owner].drops.iter().sum::<u64>(), 0);
}

#[test]
fn a_handed_off_packet_whose_tunnel_was_replaced_is_dropped_as_unknown_tunnel() {
    let mut r = Rig::new();
    let seq_id = r.cp.tunnel_ids()[1];
    let owner = owner_of(seq_id, 2);
    let other = 1 - owner;
    assert!(r.receive(other, inside_packet([10, 20, 0, 9])).is_hold());
    // "seq" removed and another tunnel added in its slot (index 1) with the same routes: the packet was meant
    // for the old tunnel and must not leave through the new one.
    r.change(|c| {
        let mut t = c.tunnels.pop().expect("seq");
        t.name = "other".into();
        t.key = Some(7);
        t.ikey = None;
        t.okey = None;
        c.tunnels.push(t);
    });
    let sent = r.round(owner, 2_000);
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(
        r.counters[owner].drops[DropReason::UnknownTunnel as usize],
        1
    );
}

#[test]
fn a_keepalive_handoff_names_its_tunnel_by_id() {
    let mut r = Rig::new();
    let seq_id = r.cp.tunnel_ids()[1];
    let owner = owner_of(seq_id, 2);
    // The control thread hands a keepalive for "seq" (index 1) over; then the decoy goes away.
    let h = Handoff {
        tunnel: crate::tunnel::table::TunnelRef {
            index: 1,
            id: seq_id,
        },
        keepalive: true,
    };
    assert!(r.shared.handoff[owner]
        .push((h, inside_packet([198, 51, 100, 2])))
        .is_ok());
    r.change(|c| c.tunnels.retain(|t| t.name != "decoy"));
    let sent = r.round(owner, 2_000);
    assert_eq!(sent.len(), 1);
    assert_eq!(gre_key(&sent[0].1), Some(2));
}

#[test]
fn a_packet_held_for_its_tunnels_next_hop_follows_the_tunnel_across_generations() {
    // No neighbour for the next hop: the first packet of "decoy" waits for it.
    let mut r = Rig::with(config(false));
    let w = 0;
    let v = r.receive(w, inside_packet([10, 10, 0, 9]));
    assert!(matches!(v, Verdict::Hold(HoldReason::Neighbor(_))), "{v:?}");
    // A tunnel is added before it (indices shift), then the neighbour is learned.
    r.change(|c| {
        let mut t = c.tunnels[1].clone();
        t.name = "first".into();
        t.key = Some(9);
        t.routes = vec!["10.99.0.0/16".parse().unwrap()];
        c.tunnels.insert(0, t);
    });
    let _ = r.cp.on_event(
        super::gateway::Event::Neighbor {
            port: OUTSIDE,
            ip: "192.0.2.254".parse().unwrap(),
            mac: [2, 0, 0, 0, 0, 0xfe],
        },
        Instant::now(),
    );
    r.shared.tables.store(Arc::new(r.cp.tables()));
    let sent = r.round(w, 2_000);
    assert_eq!(sent.len(), 1, "released once the next hop is known");
    assert_eq!(
        gre_key(&sent[0].1),
        Some(1),
        "into the decoy tunnel it was routed to"
    );
    assert_eq!(r.tunnel_counters(w, "decoy").encap, 1);
    assert_eq!(r.tunnel_counters(w, "first").encap, 0);
}

#[test]
fn a_published_table_is_picked_up_by_its_generation_at_the_next_round() {
    let mut r = Rig::new();
    let before = r.shared.tables.generation();
    assert_eq!(before, r.gws[0].tables().generation);
    r.change(|c| c.tunnels.retain(|t| t.name != "decoy"));
    let after = r.shared.tables.generation();
    assert_ne!(after, before, "publishing moves the generation");
    assert_eq!(after, r.shared.tables.load().generation);
    assert_eq!(r.gws[0].tables().generation, before, "not before a round");
    let _ = r.round(0, 1_000);
    assert_eq!(r.gws[0].tables().generation, after);
    assert_eq!(r.gws[0].tables().tunnels.len(), r.cp.tunnel_ids().len());
}
