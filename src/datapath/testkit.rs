//! A ready-made gateway on plain buffers, for fuzzing and benchmarks of the pure datapath (no EAL).
//!
//! Ports: 0 "inside" 10.0.0.1/24 + 2001:db8:1::1/64, 1 "outside" 192.0.2.1/24 + 2001:db8:ffff::1/64.
//! Tunnels: "t1" 192.0.2.1 -> 198.51.100.7 (key 1001, checksum, sequence; 10.20.0.0/16, 2001:db8:20::/48) and
//! "t6" over IPv6 (key 6; 10.60.0.0/16). Static neighbours for the next hops and the host 10.0.0.2.
use crate::buf::{PacketBuf, VecBuf};
use crate::config::Config;
use crate::control::plane::ControlPlane;
use crate::stats::Counters;
use greway_datapath::gateway::{Gateway, Shared};
use greway_datapath::tunnel::table::{Tables, TunnelState};
use std::sync::Arc;
use std::time::Instant;

/// `[eal]` and `[dataplane]` (one worker) of the configurations of the tests on buffers.
pub const EAL_ONE_WORKER: &str = "[eal]\nargs = [\"-l\", \"0-1\"]\n[dataplane]\nworkers = [1]";

/// [`EAL_ONE_WORKER`] and the two ports of the routed gateways of the tests on buffers: 0 "inside" (net_null0,
/// 02:00:00:00:00:01) and 1 "outside" (net_null1, 02:00:00:00:00:02), with these `address` values (TOML).
pub fn two_ports(inside_address: &str, outside_address: &str) -> String {
    format!(
        r#"{EAL_ONE_WORKER}
[[port]]
name = "inside"
device = "net_null0"
address = {inside_address}
mac = "02:00:00:00:00:01"
[[port]]
name = "outside"
device = "net_null1"
address = {outside_address}
mac = "02:00:00:00:00:02""#
    )
}

/// The outside port's next hop, 192.0.2.254 at 02:00:00:00:00:fe, and the default route through it.
pub const DEFAULT_ROUTE: &str = "[[neighbor]]\nport = \"outside\"\nip = \"192.0.2.254\"\nmac = \"02:00:00:00:00:fe\"\n\
                                 [[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"192.0.2.254\"\nport = \"outside\"";

/// The configuration described in the module docs.
pub fn demo_config() -> Config {
    config_with("key = 1001\nchecksum = true\nsequence = true\nkeepalive = { interval_s = 10, retries = 3 }")
}

/// The same ports, neighbours and routes, with `tunnel_extra` (TOML lines) added to tunnel "t1", which
/// otherwise has no key, checksum or sequence numbers.
pub fn config_with(tunnel_extra: &str) -> Config {
    let text = format!(
        r#"
{ports}
[[tunnel]]
name = "t1"
local = "192.0.2.1"
remote = "198.51.100.7"
routes = ["10.20.0.0/16", "2001:db8:20::/48"]
{tunnel_extra}
[[tunnel]]
name = "t6"
local = "2001:db8:ffff::1"
remote = "2001:db8:eeee::7"
key = 6
routes = ["10.60.0.0/16"]
[[neighbor]]
port = "outside"
ip = "192.0.2.254"
mac = "02:00:00:00:00:fe"
[[neighbor]]
port = "outside"
ip = "2001:db8:ffff::fe"
mac = "02:00:00:00:00:fe"
[[neighbor]]
port = "inside"
ip = "10.0.0.2"
mac = "02:00:00:00:00:0a"
[[neighbor]]
port = "inside"
ip = "2001:db8:1::2"
mac = "02:00:00:00:00:0a"
[[route]]
prefix = "0.0.0.0/0"
via = "192.0.2.254"
port = "outside"
[[route]]
prefix = "2001:db8:eeee::/48"
via = "2001:db8:ffff::fe"
port = "outside"
"#,
        ports = two_ports(
            r#"["10.0.0.1/24", "2001:db8:1::1/64"]"#,
            r#"["192.0.2.1/24", "2001:db8:ffff::1/64"]"#
        )
    );
    Config::from_str_named(&text, "testkit").unwrap_or_else(|e| panic!("testkit config: {e}"))
}

/// The tables of `cfg` (the slow part of a gateway: the IPv4 routes are a 64 MiB DIR-24-8). Build them once and
/// make gateways over them with a [`Kit`].
pub fn tables_for(cfg: &Config) -> Tables {
    let mut cp = ControlPlane::new(
        cfg,
        &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]],
        Instant::now(),
        1,
    )
    .expect("tables build");
    cp.tables()
}

/// Fresh gateways over one set of tables, cheaply enough for a fuzz target to make one per input. Each
/// gateway starts as if it were the first: its own copy of the tables (fresh tunnel sequence and keepalive
/// state; the read-only route tables are shared), fresh counters, reassembly, reorder and hold state. The
/// queues around it (control events, handoff ring: 4096 entries each, most of the cost of a new gateway) are
/// reused, emptied: drop one gateway before making the next.
pub struct Kit<B> {
    tables: Tables,
    shared: Shared<B>,
}

impl<B: PacketBuf + Send> Kit<B> {
    /// A kit over `tables` (see [`tables_for`]).
    pub fn new(tables: Tables) -> Self {
        let shared = Shared::new(tables.clone(), 1);
        Kit { tables, shared }
    }

    /// A fresh gateway for worker 0 of 1 (TSC at 2 GHz), with fresh counters.
    pub fn gateway(&self) -> (Gateway<B>, Counters) {
        while self.shared.events.pop().is_some() {}
        for ring in &self.shared.handoff {
            while ring.pop().is_some() {}
        }
        let mut t = self.tables.clone();
        for tunnel in &mut t.tunnels {
            tunnel.state = Arc::new(TunnelState::default());
        }
        let c = Counters::new(t.ports.len(), t.tunnels.len());
        self.shared.tables.store(Arc::new(t));
        (Gateway::new(0, 1, self.shared.clone(), 2_000_000_000), c)
    }
}

/// A gateway for worker 0 of 1 over the demo config, with fresh counters.
pub fn demo_gateway() -> (Gateway<VecBuf>, Counters) {
    Kit::new(tables_for(&demo_config())).gateway()
}
