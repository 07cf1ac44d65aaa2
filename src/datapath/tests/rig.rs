//! The shared rig: a gateway whose tables the control plane builds from a small config, and frame builders.
use crate::buf::VecBuf;
use crate::config::Config;
use crate::control::plane::ControlPlane;
use crate::datapath::gateway::{Gateway, Handoff, Shared};
use crate::datapath::{HoldReason, Processor, Verdict};
use crate::stats::Counters;
use std::time::Instant;

pub(super) const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];

pub(super) const IN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

pub(super) const OUT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

pub(super) const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

pub(super) const INSIDE: usize = 0;

pub(super) const OUTSIDE: usize = 1;

pub(super) fn config(tunnel_extra: &str) -> Config {
    crate::datapath::testkit::config_with(tunnel_extra)
}

pub(super) struct Rig {
    pub(super) gw: Gateway<VecBuf>,
    pub(super) cp: ControlPlane,
    pub(super) shared: Shared<VecBuf>,
    pub(super) c: Counters,
}

pub(super) fn rig_n(
    tunnel_extra: &str,
    workers: usize,
) -> (Vec<Gateway<VecBuf>>, Shared<VecBuf>, ControlPlane, Counters) {
    let cfg = config(tunnel_extra);
    let mut cp = ControlPlane::new(&cfg, &[IN_MAC, OUT_MAC], Instant::now(), 1).unwrap();
    let shared = Shared::new(cp.tables(), workers);
    let gws = (0..workers)
        .map(|w| Gateway::new(w, workers, shared.clone(), 1_000_000_000))
        .collect();
    let c = Counters::new(2, cfg.tunnels.len());
    (gws, shared, cp, c)
}

pub(super) fn rig(tunnel_extra: &str) -> Rig {
    let (mut gws, shared, cp, c) = rig_n(tunnel_extra, 1);
    let mut gw = gws.remove(0);
    Processor::<VecBuf>::begin_burst(&mut gw, 1_000);
    Rig { gw, cp, shared, c }
}

impl Rig {
    pub(super) fn run(&mut self, frame: &[u8], port: usize) -> (Verdict, Vec<u8>) {
        let mut b = VecBuf::new(frame);
        let v = self.gw.handle(&mut b, port, &mut self.c);
        (v, b.to_vec())
    }
}

pub(super) fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

pub(super) fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// IPv4 header + payload with a valid header checksum.
pub(super) fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    ttl: u8,
    tos: u8,
    df: bool,
    payload: &[u8],
) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut h = vec![
        0x45,
        tos,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        if df { 0x40 } else { 0 },
        0,
        ttl,
        proto,
        0,
        0,
    ];
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let ck = csum(&h);
    h[10..12].copy_from_slice(&ck.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

pub(super) fn ipv6(
    src: [u8; 16],
    dst: [u8; 16],
    next: u8,
    hop: u8,
    tc: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut h = vec![0x60 | (tc >> 4), tc << 4, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.push(next);
    h.push(hop);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

pub(super) fn v6(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

pub(super) fn udp_payload(n: usize) -> Vec<u8> {
    let mut p = vec![0x13, 0x88, 0x07, 0xd0, 0, (8 + n) as u8, 0, 0];
    p.extend((0..n).map(|i| i as u8));
    p
}

pub(super) fn inside_v4(dst: [u8; 4], ttl: u8, tos: u8, df: bool, n: usize) -> Vec<u8> {
    let mut f = eth(IN_MAC, HOST_MAC, 0x0800);
    f.extend(ipv4([10, 0, 0, 2], dst, 17, ttl, tos, df, &udp_payload(n)));
    f
}

/// A GRE packet from the peer of t1 (outer 198.51.100.7 -> 192.0.2.1).
pub(super) fn outer_gre(gre_hdr: &[u8], inner: &[u8], outer_tos: u8) -> Vec<u8> {
    let mut g = gre_hdr.to_vec();
    g.extend_from_slice(inner);
    let mut f = eth(OUT_MAC, GW_MAC, 0x0800);
    f.extend(ipv4(
        [198, 51, 100, 7],
        [192, 0, 2, 1],
        47,
        60,
        outer_tos,
        false,
        &g,
    ));
    f
}

/// A GRE packet from the peer of t6 over IPv6 (outer 2001:db8:eeee::7 -> 2001:db8:ffff::1, hop limit 60).
pub(super) fn outer_gre6(gre_hdr: &[u8], inner: &[u8], outer_tc: u8) -> Vec<u8> {
    let mut g = gre_hdr.to_vec();
    g.extend_from_slice(inner);
    let mut f = eth(OUT_MAC, GW_MAC, 0x86dd);
    f.extend(ipv6(
        v6("2001:db8:eeee::7"),
        v6("2001:db8:ffff::1"),
        47,
        60,
        outer_tc,
        &g,
    ));
    f
}

pub(super) fn gre_hdr(
    csum_on: bool,
    key: Option<u32>,
    seq: Option<u32>,
    proto: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut flags = 0u16;
    let mut h = Vec::new();
    if csum_on {
        flags |= 0x8000;
    }
    if key.is_some() {
        flags |= 0x2000;
    }
    if seq.is_some() {
        flags |= 0x1000;
    }
    h.extend_from_slice(&flags.to_be_bytes());
    h.extend_from_slice(&proto.to_be_bytes());
    if csum_on {
        h.extend_from_slice(&[0, 0, 0, 0]);
    }
    if let Some(k) = key {
        h.extend_from_slice(&k.to_be_bytes());
    }
    if let Some(s) = seq {
        h.extend_from_slice(&s.to_be_bytes());
    }
    if csum_on {
        let mut all = h.clone();
        all.extend_from_slice(payload);
        let ck = csum(&all);
        h[4..6].copy_from_slice(&ck.to_be_bytes());
    }
    h
}

pub(super) fn inner_from_remote(dst: [u8; 4], ttl: u8, tos: u8) -> Vec<u8> {
    ipv4([10, 20, 0, 5], dst, 17, ttl, tos, false, &udp_payload(18))
}

/// Run `poll_deferred` at `now` and return what it sent.
/// The reason of a verdict that must be a hold.
pub(super) fn held(v: Verdict) -> HoldReason {
    match v {
        Verdict::Hold(why) => why,
        v => panic!("expected a hold, got {v:?}"),
    }
}

/// How the control thread hands a keepalive for the gateway's first tunnel to its owner.
pub(super) fn keepalive_handoff(gw: &Gateway<VecBuf>) -> Handoff {
    Handoff {
        tunnel: gw.tables().tunnels[0].tref(),
        keepalive: true,
    }
}

pub(super) fn deferred(
    gw: &mut Gateway<VecBuf>,
    now: u64,
    c: &mut Counters,
) -> Vec<(usize, Vec<u8>)> {
    // A poll round with no received packets, as the worker runs it: the round's table picked up first, then
    // the deferred work.
    let mut sent = Vec::new();
    Processor::<VecBuf>::begin_burst(gw, now);
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
