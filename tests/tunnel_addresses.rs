//! Tunnel addresses and routes into tunnels on real DPDK pcap ports: scapy builds the inputs
//! (tests/scapy/tunnel_addresses.py) and tshark decodes what greway wrote. An echo request from the tunnel's
//! peer to the tunnel address comes back encapsulated to the peer; packets to routes via the peer, to
//! `tunnel = NAME` routes and to the tunnel's subnet are encapsulated into the tunnel; `greway ctl` adds a
//! route via the peer, shows every route's origin, adds a tunnel with `--address` that then answers echo
//! requests, and removes a tunnel together with the routes into it.
mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn scapy_inputs(dir: &Path) {
    run_scapy("tunnel_addresses.py", &[&dir]);
}

fn config(tag: &str, inside: &str, outside: &str, extra: &str) -> String {
    format!(
        r#"
[eal]
args = {eal}
[dataplane]
workers = [1]
[[port]]
name = "inside"
device = "{inside}"
address = "10.0.0.1/24"
mac = "02:00:00:00:00:01"
[[port]]
name = "outside"
device = "{outside}"
address = "192.0.2.1/24"
mac = "02:00:00:00:00:02"
[[tunnel]]
name = "tun"
local = "192.0.2.1"
remote = "198.51.100.7"
key = 1001
address = ["169.254.100.1/29", "fd00:100::1/125"]
[[neighbor]]
port = "outside"
ip = "192.0.2.254"
mac = "02:00:00:00:00:fe"
[[neighbor]]
port = "inside"
ip = "10.0.0.2"
mac = "02:00:00:00:00:0a"
[[route]]
prefix = "198.51.100.0/24"
via = "192.0.2.254"
port = "outside"
[[route]]
prefix = "10.60.0.0/16"
via = "169.254.100.2"
[[route]]
prefix = "10.61.0.0/16"
tunnel = "tun"
{extra}
"#,
        eal = eal_args(tag)
    )
}

#[test]
fn echo_to_a_tunnel_address_and_routes_into_the_tunnel_decoded_by_tshark() {
    let dir = scratch("tunaddr-pcap");
    scapy_inputs(&dir);
    let d = dir.display();
    let cfg = config(
        "tunaddr",
        &format!("net_pcap0,rx_pcap={d}/inside.pcap,tx_pcap={d}/out-inside.pcap"),
        &format!("net_pcap1,rx_pcap={d}/outside.pcap,tx_pcap={d}/out-outside.pcap"),
        "",
    );
    let (_, s) = run_greway(&dir, &cfg, &[]);
    let out = dir.join("out-outside.pcap");
    let gre_key = "0x000003e9";
    // The echo reply, encapsulated to the peer: outer 192.0.2.1 -> 198.51.100.7 with the tunnel's key, inner
    // from the tunnel address to the peer's.
    let rows = tshark_fields(
        &out,
        Some("gre && icmp.type == 0"),
        &[
            "ip.src",
            "ip.dst",
            "gre.key",
            "icmp.ident",
            "icmp.seq",
            "icmp.checksum.status",
        ],
        &[],
    );
    assert_eq!(
        rows,
        [[
            "192.0.2.1,169.254.100.1",
            "198.51.100.7,169.254.100.2",
            gre_key,
            "16962",
            "7",
            "1"
        ]],
        "one IPv4 echo reply back through the tunnel"
    );
    let rows = tshark_fields(
        &out,
        Some("gre && icmpv6.type == 129"),
        &[
            "ip.dst",
            "ipv6.src",
            "ipv6.dst",
            "icmpv6.echo.identifier",
            "icmpv6.checksum.status",
        ],
        &[],
    );
    assert_eq!(
        rows,
        [["198.51.100.7", "fd00:100::1", "fd00:100::2", "0x4343", "1"]],
        "one IPv6 echo reply back through the tunnel"
    );
    // Routed into the tunnel: via its peer, by name, and its subnet; each a router hop (TTL 63 inside).
    let rows = tshark_fields(
        &out,
        Some("gre && udp"),
        &["ip.dst", "gre.key", "ip.ttl"],
        &[],
    );
    let got: Vec<(String, String, String)> = rows
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect();
    let want: Vec<(String, String, String)> = ["10.60.0.5", "10.61.0.5", "169.254.100.2"]
        .iter()
        .map(|dst| {
            (
                format!("198.51.100.7,{dst}"),
                gre_key.to_string(),
                "64,63".to_string(),
            )
        })
        .collect();
    assert_eq!(
        got, want,
        "three inside packets encapsulated into the tunnel"
    );
    assert_eq!(
        read_pcap(&out).len(),
        5,
        "and nothing else left on the outside"
    );
    // The inside host's echo to the tunnel address: answered, routed back to it.
    let rows = tshark_fields(
        &dir.join("out-inside.pcap"),
        None,
        &[
            "eth.dst",
            "ip.src",
            "ip.dst",
            "icmp.type",
            "icmp.ident",
            "icmp.checksum.status",
        ],
        &[],
    );
    assert_eq!(
        rows,
        [[
            "02:00:00:00:00:0a",
            "169.254.100.1",
            "10.0.0.2",
            "0",
            "17476",
            "1"
        ]]
    );
    // The UDP datagram to the tunnel address (BFD) is not served yet: counted.
    assert_eq!(s["drops"]["local_unhandled"], 1, "{s}");
    assert_eq!(total_drops(&s), 1, "{s}");
    assert_eq!(s["tunnels"]["tun"]["decap"], 3, "{s}");
    assert_eq!(s["tunnels"]["tun"]["encap"], 5, "{s}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A gateway running in the background; killed if the test fails before [`finish`].
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn finish(mut g: Running, dir: &Path) -> Value {
    let child = g.0.take().expect("running");
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "greway failed: {}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap()
}

fn route_entry<'a>(show: &'a Value, list: &str, prefix: &str) -> Option<&'a Value> {
    show[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["prefix"] == prefix)
}

#[test]
fn ctl_routes_via_the_tunnel_peer_origins_and_a_tunnel_added_with_an_address() {
    let dir = scratch("tunaddr-ctl");
    scapy_inputs(&dir);
    let d = dir.display();
    let sock: PathBuf = dir.join("ctl.sock");
    // An endless stream from the inside host: an echo request to 169.254.200.1 and UDP to 10.70.0.5, neither
    // routable until the changes below. The inside's output is kept: the echo replies (rate limited).
    let cfg = config(
        "tunaddr-ctl",
        &format!("net_pcap0,rx_pcap={d}/stream.pcap,infinite_rx=1,tx_pcap={d}/out-inside.pcap"),
        &format!("net_pcap1,rx_pcap={d}/outside.pcap"),
        &format!("[control]\nsocket = \"{}\"\n", sock.display()),
    );
    let path = dir.join("greway.toml");
    std::fs::write(&path, cfg).unwrap();
    let child = Running(Some(
        Command::new(greway_bin())
            .args(["run", "--quiet", "--config"])
            .arg(&path)
            .arg("--stats-json")
            .arg(dir.join("stats.json"))
            .args(["--duration-s", "60"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let stats = || ctl(&sock, &["stats"]).1;
    wait_for("the stream", || {
        stats()["drops"]["no_route"].as_u64().unwrap_or(0) > 100
    });
    let encap = || stats()["tunnels"]["tun"]["encap"].as_u64().unwrap_or(0);
    let inside_tx = || stats()["ports"]["inside"]["tx"].as_u64().unwrap_or(0);
    assert_eq!(inside_tx(), 0, "no echo reply before the tunnel exists");

    // Every route's origin; the file's route via the peer shows its resolved tunnel.
    let (ok, show, err) = ctl(&sock, &["route", "show"]);
    assert!(ok, "{err}");
    let r = route_entry(&show, "tunnel_routes", "10.60.0.0/16").expect("10.60.0.0/16");
    assert_eq!(
        (&r["tunnel"], &r["via"], &r["origin"]),
        (
            &Value::from("tun"),
            &Value::from("169.254.100.2"),
            &Value::from("config")
        ),
        "{show}"
    );
    let r = route_entry(&show, "routes", "198.51.100.0/24").expect("outer route");
    assert_eq!(r["origin"], "config");

    // A route via the tunnel's peer, added over the control socket.
    let before = encap();
    let (ok, _, err) = ctl(
        &sock,
        &[
            "route",
            "add",
            "--prefix",
            "10.70.0.0/16",
            "--via",
            "169.254.100.2",
        ],
    );
    assert!(ok, "{err}");
    wait_for("the stream to 10.70.0.5 encapsulated", || {
        encap() > before + 100
    });
    let (_, show, _) = ctl(&sock, &["route", "show"]);
    let r = route_entry(&show, "tunnel_routes", "10.70.0.0/16").expect("the new route");
    assert_eq!(
        (&r["tunnel"], &r["origin"]),
        (&Value::from("tun"), &Value::from("ctl")),
        "{show}"
    );
    let (ok, _, err) = ctl(
        &sock,
        &[
            "route",
            "add",
            "--prefix",
            "10.71.0.0/16",
            "--via",
            "169.254.101.2",
        ],
    );
    assert!(!ok && err.contains("on no tunnel's subnet"), "{err}");

    // A tunnel added with an address: echo requests to it are answered from then on.
    let (ok, v, err) = ctl(
        &sock,
        &[
            "tunnel",
            "add",
            "--name",
            "t2",
            "--local",
            "192.0.2.1",
            "--remote",
            "198.51.100.9",
            "--address",
            "169.254.200.1/29",
            "--address",
            "fd00:200::1/64",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        v["tunnels"][1]["address"],
        serde_json::json!(["169.254.200.1/29", "fd00:200::1/64"])
    );
    wait_for("echo replies", || inside_tx() > 100);
    // Its address may not collide with another tunnel's subnet.
    let (ok, _, err) = ctl(
        &sock,
        &[
            "tunnel",
            "add",
            "--name",
            "t3",
            "--local",
            "192.0.2.1",
            "--remote",
            "198.51.100.10",
            "--address",
            "169.254.200.5/30",
        ],
    );
    assert!(
        !ok && err.contains("tunnel[2].address[0]") && err.contains("overlaps"),
        "{err}"
    );

    // Removing the tunnel removes the routes into it; their traffic is then no_route.
    let (ok, _, err) = ctl(&sock, &["tunnel", "del", "--name", "tun"]);
    assert!(ok, "{err}");
    let (_, show, _) = ctl(&sock, &["route", "show"]);
    for p in ["10.60.0.0/16", "10.61.0.0/16", "10.70.0.0/16"] {
        assert!(
            route_entry(&show, "tunnel_routes", p).is_none(),
            "{p}: {show}"
        );
    }
    let no_route = stats()["drops"]["no_route"].as_u64().unwrap();
    wait_for("no_route again", || {
        stats()["drops"]["no_route"].as_u64().unwrap() > no_route + 100
    });
    let s = finish(child, &dir);
    assert!(s["tunnels"].get("tun").is_none(), "{s}");

    // What left on the inside: echo replies from the new tunnel address to the host, decoded by tshark.
    let rows = tshark_fields(
        &dir.join("out-inside.pcap"),
        None,
        &[
            "ip.src",
            "ip.dst",
            "icmp.type",
            "icmp.ident",
            "icmp.checksum.status",
        ],
        &[],
    );
    assert!(rows.len() > 100, "{} replies", rows.len());
    assert!(
        rows.iter()
            .all(|r| r == &["169.254.200.1", "10.0.0.2", "0", "17733", "1"]),
        "{:?}",
        &rows[..3]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
