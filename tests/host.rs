//! The host exception path on real DPDK ports (`net_af_packet` on veth pairs) with real TUN host interfaces in
//! a test namespace: a TCP SYN to the gateway's port address reaches a listener in the namespace and its
//! SYN-ACK leaves through greway's port; UDP to a tunnel address (GRE-encapsulated) reaches a listener with its
//! TTL of 255 and the answer leaves encapsulated in the tunnel; a SYN flood is limited to `punt_pps` and
//! counted; the interfaces are gone when greway stops. Packets are built and decoded by scapy
//! (tests/scapy/host_peer.py). Namespaces and veths are removed on drop, also when an assertion fails.
mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scapy/host_peer.py");

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The wire (a namespace holding the far ends of two veth pairs) and greway's host namespace; all removed on
/// drop.
struct Net {
    wire: String,
    host: String,
    inside: (String, String),
    outside: (String, String),
}

impl Net {
    fn new(tag: &str) -> Net {
        let n = std::process::id() % 100_000;
        let net = Net {
            wire: format!("gwt-{tag}-w{n}"),
            host: format!("gwt-{tag}-h{n}"),
            inside: (format!("{tag}{n}i0"), format!("{tag}{n}i1")),
            outside: (format!("{tag}{n}o0"), format!("{tag}{n}o1")),
        };
        assert!(
            sh(&["ip", "netns", "add", &net.wire]),
            "ip netns add (the suite runs as root)"
        );
        for ((gw_end, far_end), mac) in [
            (&net.inside, "02:00:00:00:00:0a"),
            (&net.outside, "02:00:00:00:00:0b"),
        ] {
            assert!(sh(&[
                "ip", "link", "add", gw_end, "type", "veth", "peer", "name", far_end
            ]));
            assert!(sh(&["ip", "link", "set", far_end, "netns", &net.wire]));
            // No IPv6 chatter from either end: every frame on the wire is the test's or greway's.
            let _ = sh(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{gw_end}.disable_ipv6=1"),
            ]);
            assert!(sh(&["ip", "link", "set", gw_end, "up"]));
            let w = |args: &[&str]| {
                let mut v = vec!["ip", "netns", "exec", &net.wire];
                v.extend_from_slice(args);
                sh(&v)
            };
            let _ = w(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{far_end}.disable_ipv6=1"),
            ]);
            assert!(w(&["ip", "link", "set", far_end, "address", mac]));
            assert!(w(&["ip", "link", "set", far_end, "up"]));
        }
        net
    }

    /// A process in namespace `ns`.
    fn exec(ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(args);
        c
    }

    /// Whether interface `name` exists in greway's host namespace.
    fn host_has(&self, name: &str) -> bool {
        sh(&[
            "ip", "netns", "exec", &self.host, "ip", "link", "show", name,
        ])
    }

    /// Host interface `name` is up with an address (greway configures its interfaces' addresses a moment
    /// after creating them, then brings them up).
    fn host_ready(&self, name: &str) -> bool {
        let out = Net::exec(&self.host, &["ip", "-o", "addr", "show", "dev", name, "up"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.contains(" inet ")
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = sh(&["ip", "link", "del", &self.inside.0]);
        let _ = sh(&["ip", "link", "del", &self.outside.0]);
        let _ = sh(&["ip", "netns", "del", &self.wire]);
        let _ = sh(&["ip", "netns", "del", &self.host]);
    }
}

fn config(net: &Net, tag: &str, punt_pps: u32) -> String {
    format!(
        r#"
[eal]
args = {eal}
[dataplane]
workers = [1]
[[port]]
name = "inside"
device = "net_af_packet0,iface={ii}"
address = "10.0.0.1/24"
mac = "02:00:00:00:00:01"
[[port]]
name = "outside"
device = "net_af_packet1,iface={oi}"
address = "192.0.2.1/24"
mac = "02:00:00:00:00:02"
[[tunnel]]
name = "to-peer"
local = "192.0.2.1"
remote = "192.0.2.7"
address = "169.254.100.1/29"
host_if = "tun-peer"
[[neighbor]]
port = "inside"
ip = "10.0.0.2"
mac = "02:00:00:00:00:0a"
[[neighbor]]
port = "outside"
ip = "192.0.2.7"
mac = "02:00:00:00:00:0b"
[host]
netns = "{ns}"
routes = "off"
punt_pps = {punt_pps}
[control]
socket = "/run/greway-test-{tag}.sock"
"#,
        eal = eal_args(tag),
        ii = net.inside.0,
        oi = net.outside.0,
        ns = net.host,
    )
}

/// A running greway, killed if a failing assertion unwinds past it (its TUN interfaces go with it).
struct Running(Option<Child>);

impl Running {
    fn stop(mut self) -> std::process::Output {
        stop_greway(self.0.take().expect("running"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// greway, started and waited for until its host interfaces exist (at most 30 s).
fn start(net: &Net, dir: &Path, cfg: &str) -> Running {
    let path = dir.join("greway.toml");
    std::fs::write(&path, cfg).unwrap();
    for attempt in 1.. {
        let mut gw = spawn_greway(&path, &dir.join("stats.json"));
        let deadline = Instant::now() + Duration::from_secs(30);
        let exited = loop {
            if net.host_ready("inside") && net.host_ready("tun-peer") {
                return Running(Some(gw));
            }
            if gw.try_wait().unwrap().is_some() {
                break gw.wait_with_output().unwrap();
            }
            assert!(Instant::now() < deadline, "no host interfaces after 30 s");
            std::thread::sleep(Duration::from_millis(50));
        };
        // DPDK 22.11's af_packet PMD names its PACKET_FANOUT group pid ^ ifindex, which can equal another
        // process's group (tests/gen.rs): a new pid gets a new group. Retry that start-up failure only.
        let err = String::from_utf8_lossy(&exited.stderr);
        let fanout = err.contains("could not set PACKET_FANOUT")
            || (err.contains("rte_eth_dev_get_port_by_name(net_af_packet")
                && err.contains("No such device"));
        assert!(
            fanout && attempt < 3,
            "greway exited ({}) before its host interfaces appeared:\n{err}",
            exited.status
        );
    }
    unreachable!()
}

/// A listener in the host namespace, once it has printed "ready"; its stdout for what follows.
fn listener(net: &Net, args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut all = vec!["/usr/bin/python3", PEER];
    all.extend_from_slice(args);
    let mut c = Net::exec(&net.host, &all)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the listener");
    let mut out = BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "listener {args:?} did not start");
    (c, out)
}

/// Run the scapy peer on the wire; its JSON answer.
fn peer(net: &Net, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["/usr/bin/python3", PEER];
    all.extend_from_slice(args);
    let out = Net::exec(&net.wire, &all).output().expect("run scapy");
    assert!(
        out.status.success(),
        "host_peer.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn stats(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).expect("stats json"))
        .unwrap()
}

#[test]
fn tcp_and_tunnel_udp_reach_the_kernel_and_its_answers_leave_through_greway() {
    let net = Net::new("hp");
    let dir = scratch("host-path");
    let cfg = config(&net, "hostpath", 10_000);
    let gw = start(&net, &dir, &cfg);

    // The interfaces carry the ports' and tunnel's addresses and MTUs, up.
    let show = Net::exec(&net.host, &["ip", "-o", "addr", "show"])
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("inside    inet 10.0.0.1/24"), "{show}");
    assert!(show.contains("tun-peer    inet 169.254.100.1/29"), "{show}");
    let link = Net::exec(&net.host, &["ip", "-o", "link", "show", "tun-peer"])
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(link.contains("mtu 1476") && link.contains(",UP"), "{link}");

    // A SYN to the port address: the kernel's SYN-ACK comes back out of greway's inside port.
    let (mut tcp, _) = listener(&net, &["listen-tcp", "10.0.0.1", "179"]);
    let a = peer(&net, &["syn", &net.inside.1]);
    let _ = tcp.kill();
    let _ = tcp.wait();
    assert_eq!(a["answer"], true, "no SYN-ACK: {a}");
    assert_eq!(a["flags"], "SA");
    assert_eq!(a["ack"], 1001);
    assert_eq!(
        (a["src"].as_str(), a["dst"].as_str()),
        (Some("10.0.0.1"), Some("10.0.0.2"))
    );
    assert_eq!(
        (a["sport"].as_u64(), a["dport"].as_u64()),
        (Some(179), Some(40000))
    );
    assert_eq!(a["eth_src"], "02:00:00:00:00:01");
    assert_eq!(a["eth_dst"], "02:00:00:00:00:0a");

    // UDP to the tunnel address, through the tunnel, TTL 255: the listener sees 255; its answer leaves
    // encapsulated in the tunnel.
    let (mut udp, mut said) = listener(&net, &["listen-udp", "169.254.100.1", "3784"]);
    let a = peer(&net, &["udp-gre", &net.outside.1]);
    let mut line = String::new();
    said.read_line(&mut line).unwrap();
    let _ = udp.wait();
    let got: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(got["ttl"], 255, "TTL untouched: {got}");
    assert_eq!(got["data"], "ping");
    assert_eq!(got["from"][0], "169.254.100.2");
    assert_eq!(a["answer"], true, "no encapsulated answer: {a}");
    assert_eq!(
        (a["outer_src"].as_str(), a["outer_dst"].as_str()),
        (Some("192.0.2.1"), Some("192.0.2.7"))
    );
    assert_eq!(a["gre_proto"], 0x0800);
    assert_eq!(
        (a["inner_src"].as_str(), a["inner_dst"].as_str()),
        (Some("169.254.100.1"), Some("169.254.100.2"))
    );
    assert_eq!(
        (a["sport"].as_u64(), a["dport"].as_u64()),
        (Some(3784), Some(3784))
    );
    assert_eq!(a["data"], "pong");

    // A tunnel added at run time gets its host interface, with its address; removed, it loses it.
    let sock = std::path::PathBuf::from("/run/greway-test-hostpath.sock");
    let (ok, _, err) = ctl(
        &sock,
        &[
            "tunnel",
            "add",
            "--name",
            "rt",
            "--local",
            "192.0.2.1",
            "--remote",
            "192.0.2.9",
            "--address",
            "169.254.101.1/29",
        ],
    );
    assert!(ok, "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !net.host_ready("rt") {
        assert!(Instant::now() < deadline, "no host interface for tunnel rt");
        std::thread::sleep(Duration::from_millis(50));
    }
    let show = Net::exec(&net.host, &["ip", "-o", "addr", "show", "dev", "rt"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&show.stdout).contains("inet 169.254.101.1/29"),
        "{}",
        String::from_utf8_lossy(&show.stdout)
    );
    let (ok, _, err) = ctl(&sock, &["tunnel", "del", "--name", "rt"]);
    assert!(ok, "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while net.host_has("rt") {
        assert!(
            Instant::now() < deadline,
            "tunnel rt's host interface stayed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        net.host_has("tun-peer"),
        "the configured tunnel's interface stays"
    );

    // A reload: a tunnel added to the file gets its host interface; changed (its address), it is replaced and its
    // interface made again with the new address; removed from the file, the interface goes. The unchanged
    // tunnel's interface is the same one throughout (its index), and `punt_pps` changes without a restart.
    let ifindex = |name: &str| {
        let out = Net::exec(&net.host, &["ip", "-o", "link", "show", name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let peer_index = ifindex("tun-peer");
    let has_addr = |name: &str, addr: &str| {
        let out = Net::exec(&net.host, &["ip", "-o", "addr", "show", "dev", name, "up"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&format!("inet {addr}"))
    };
    let with_rt2 = |addr: &str| {
        format!(
            "{}\n[[tunnel]]\nname = \"rt2\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.10\"\naddress = \"{addr}\"\n",
            cfg.replace("punt_pps = 10000", "punt_pps = 20000")
        )
    };
    for (text, section, what, addr) in [
        (
            with_rt2("169.254.102.1/29"),
            "tunnels",
            "added",
            Some("169.254.102.1/29"),
        ),
        (
            with_rt2("169.254.103.1/29"),
            "tunnels",
            "changed",
            Some("169.254.103.1/29"),
        ),
        (cfg.clone(), "tunnels", "removed", None),
    ] {
        std::fs::write(dir.join("greway.toml"), &text).unwrap();
        let (ok, v, err) = ctl(&sock, &["reload"]);
        assert!(ok, "{err}");
        assert_eq!(v[section][what], serde_json::json!(["rt2"]), "{v}");
        let punt = what != "changed";
        assert_eq!(
            v["host"]["changed"].as_array().unwrap().len(),
            usize::from(punt),
            "{v}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !match addr {
            Some(a) => has_addr("rt2", a),
            None => !net.host_has("rt2"),
        } {
            assert!(Instant::now() < deadline, "rt2 after the reload: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(
        ifindex("tun-peer"),
        peer_index,
        "the unchanged tunnel's interface stays"
    );

    let out = gw.stop();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Gone with greway.
    assert!(!net.host_has("inside") && !net.host_has("outside") && !net.host_has("tun-peer"));
    let s = stats(&dir);
    let h = &s["host"];
    let inside = &h["interfaces"]["inside"];
    let tunnel = &h["interfaces"]["tun-peer"];
    assert_eq!(
        (inside["kind"].as_str(), inside["name"].as_str()),
        (Some("port"), Some("inside"))
    );
    assert_eq!(
        (tunnel["kind"].as_str(), tunnel["name"].as_str()),
        (Some("tunnel"), Some("to-peer"))
    );
    assert!(inside["to_kernel"].as_u64() >= Some(1), "{h}");
    assert!(inside["from_kernel"].as_u64() >= Some(1), "{h}");
    assert_eq!(tunnel["to_kernel"], 1, "{h}");
    assert!(tunnel["from_kernel"].as_u64() >= Some(1), "{h}");
    assert_eq!(
        s["tunnels"]["to-peer"]["encap"], tunnel["from_kernel"],
        "{s}"
    );
    assert_eq!(s["tunnels"]["to-peer"]["decap"], 1);
}

#[test]
fn a_syn_flood_is_limited_to_punt_pps_and_every_packet_is_counted() {
    let net = Net::new("hf");
    let dir = scratch("host-flood");
    let pps = 200u64;
    let gw = start(&net, &dir, &config(&net, "hostflood", pps as u32));
    let (mut tcp, _) = listener(&net, &["listen-tcp", "10.0.0.1", "179"]);
    let sent = 3000u64;
    let a = peer(&net, &["flood", &net.inside.1, &sent.to_string()]);
    assert_eq!(a["sent"], sent);
    let _ = tcp.kill();
    let _ = tcp.wait();
    let out = gw.stop();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = stats(&dir);
    let h = &s["host"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"));
    let punted = n(&h["punted"]);
    let limited = n(&s["drops"]["punt_rate_limited"]);
    let duration = s["duration_s"].as_f64().unwrap();
    let rx: u64 = s["ports"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| n(&p["rx"]))
        .sum();
    let tx: u64 = s["ports"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| n(&p["tx"]))
        .sum();
    assert!(rx >= sent, "rx {rx} of {sent} sent");
    assert!(limited > 0, "nothing limited: {s}");
    // At most punt_pps per second plus the burst of a tenth of a second.
    assert!(
        (punted as f64) <= pps as f64 * duration + pps as f64 / 10.0 + 1.0,
        "punted {punted} in {duration} s at {pps}/s"
    );
    assert!(punted > 0);
    // Every packet received is sent, dropped or punted; what the kernel sent is sent or dropped too.
    assert_eq!(
        rx + n(&h["from_host"]),
        tx + total_drops(&s) + punted,
        "rx {rx} + from_host = tx {tx} + drops + punted {punted}: {s}"
    );
    let inside = &h["interfaces"]["inside"];
    assert_eq!(
        n(&inside["to_kernel"]) + n(&inside["to_kernel_dropped"]),
        punted,
        "{h}"
    );
}
