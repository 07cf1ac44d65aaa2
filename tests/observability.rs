//! Observability and runtime changes, on the real binary and real DPDK virtual ports: the counters the control
//! thread reports (over `greway ctl stats`, Prometheus and DPDK telemetry) against packets the test sent, per drop
//! reason, and tunnels added and removed while traffic flows on another tunnel without losing a packet of it.
mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const HOST: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const GWIN: [u8; 6] = [2, 0, 0, 0, 0, 1];
const LOCAL: [u8; 4] = [192, 0, 2, 1];
const REMOTE: [u8; 4] = [198, 51, 100, 7];

/// A router's ICMP fragmentation needed (RFC 1191) to us, next-hop MTU `mtu`, quoting the start of our GRE packet
/// into site-b (key 1001).
fn frag_needed_frame(mtu: u16) -> Vec<u8> {
    let ours = gre4_frame(
        LOCAL,
        REMOTE,
        &gre_header(0, 0x0800, Some(1001), &inner4(LOCAL, REMOTE, 1)),
    );
    let mut icmp = vec![3, 4, 0, 0, 0, 0];
    icmp.extend_from_slice(&mtu.to_be_bytes());
    icmp.extend_from_slice(&ours[14..14 + 28]);
    let ck = ipv4_checksum(&icmp);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let mut f = gre4_frame([192, 0, 2, 254], LOCAL, &icmp);
    // The same IPv4 header with protocol ICMP.
    f[14 + 9] = 1;
    f[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let ck = ipv4_checksum(&f[14..34]);
    f[14 + 10..14 + 12].copy_from_slice(&ck.to_be_bytes());
    f
}

/// The inner IPv4 packet (no Ethernet header) of a UDP frame.
fn inner4(src: [u8; 4], dst: [u8; 4], n: u16) -> Vec<u8> {
    udp4_frame(HOST, GWIN, src, dst, n, &[n as u8; 30])[14..].to_vec()
}

fn config(
    dir: &Path,
    tag: &str,
    inside: &str,
    outside: &str,
    tunnels: &str,
    extra: &str,
) -> String {
    let _ = dir;
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
{tunnels}
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
{extra}
"#,
        eal = eal_args(tag)
    )
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

/// `greway run` in the background with `--stats-json DIR/stats.json`.
fn spawn_greway(dir: &Path, cfg: &str, args: &[&str]) -> Running {
    let path = dir.join("greway.toml");
    std::fs::write(&path, cfg).unwrap();
    Command::new(greway_bin())
        .args(["run", "--quiet", "--config"])
        .arg(&path)
        .arg("--stats-json")
        .arg(dir.join("stats.json"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(|c| Running(Some(c)))
        .expect("spawn greway")
}

/// Ask the gateway to stop (SIGINT, as Ctrl-C): it stops the workers and writes its final report.
fn interrupt(g: &Running) {
    let id = g.0.as_ref().expect("running").id();
    let ok = Command::new("kill")
        .args(["-INT", &id.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -INT {id}");
}

/// Wait for the gateway to exit successfully; its final `--stats-json`.
fn finish(mut g: Running, dir: &Path) -> Value {
    let out = g.0.take().expect("running").wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "greway failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap()
}

fn socket_path(dir: &Path) -> PathBuf {
    dir.join("ctl.sock")
}

#[test]
fn reported_counters_match_sent_packets_per_drop_reason() {
    let dir = scratch("obs-counters");
    // Inside: 40 to the tunnel route, 3 to nowhere, 2 non-IP frames.
    let mut inside = Vec::new();
    for i in 0..40u16 {
        inside.push(udp4_frame(
            HOST,
            GWIN,
            [10, 0, 0, 2],
            [10, 20, 1, (i % 200) as u8],
            i,
            &[1; 64],
        ));
    }
    for i in 0..3u16 {
        inside.push(udp4_frame(
            HOST,
            GWIN,
            [10, 0, 0, 2],
            [172, 16, 5, 5],
            i,
            b"nowhere",
        ));
    }
    for _ in 0..2 {
        let mut f = Vec::new();
        f.extend_from_slice(&GWIN);
        f.extend_from_slice(&HOST);
        f.extend_from_slice(&[0x88, 0xcc]);
        f.extend_from_slice(&[0u8; 46]);
        inside.push(f);
    }
    // Outside: 25 good GRE (key 1001) and known bad ones.
    let mut outside = Vec::new();
    for i in 0..25u16 {
        let inner = inner4([10, 20, 3, 4], [10, 0, 0, 2], i);
        outside.push(gre4_frame(
            REMOTE,
            LOCAL,
            &gre_header(0, 0x0800, Some(1001), &inner),
        ));
    }
    let bad = inner4([10, 20, 3, 4], [10, 0, 0, 2], 999);
    let mut expect_drops = std::collections::BTreeMap::new();
    let mut add = |frames: &mut Vec<Vec<u8>>, reason: &'static str, n: u64, f: Vec<u8>| {
        for _ in 0..n {
            frames.push(f.clone());
        }
        *expect_drops.entry(reason).or_insert(0u64) += n;
    };
    add(
        &mut outside,
        "key_mismatch",
        3,
        gre4_frame(REMOTE, LOCAL, &gre_header(0, 0x0800, Some(999), &bad)),
    );
    add(
        &mut outside,
        "unknown_tunnel",
        2,
        gre4_frame(
            [203, 0, 113, 9],
            LOCAL,
            &gre_header(0, 0x0800, Some(1001), &bad),
        ),
    );
    add(
        &mut outside,
        "pptp",
        1,
        gre4_frame(REMOTE, LOCAL, &unhex("3001880b0000002a00000001")),
    );
    add(
        &mut outside,
        "bad_gre_version",
        2,
        gre4_frame(REMOTE, LOCAL, &gre_header(2, 0x0800, None, &bad)),
    );
    add(
        &mut outside,
        "gre_reserved_bits",
        1,
        gre4_frame(REMOTE, LOCAL, &gre_header(0x4000, 0x0800, Some(1001), &bad)),
    );
    add(
        &mut outside,
        "unsupported_gre_protocol",
        4,
        gre4_frame(REMOTE, LOCAL, &gre_header(0, 0x2000, Some(1001), &bad)),
    );
    add(
        &mut outside,
        "truncated",
        1,
        gre4_frame(REMOTE, LOCAL, &unhex("b0000800000000")),
    );
    expect_drops.insert("no_route", 3);
    expect_drops.insert("unsupported_ethertype", 2);
    write_pcap(&dir.join("inside.pcap"), &inside);
    write_pcap(&dir.join("outside.pcap"), &outside);

    let d = dir.display();
    let sock = socket_path(&dir);
    let cfg = config(
        &dir,
        "obs-cnt",
        &format!("net_pcap0,rx_pcap={d}/inside.pcap,tx_pcap={d}/out-inside.pcap"),
        &format!("net_pcap1,rx_pcap={d}/outside.pcap,tx_pcap={d}/out-outside.pcap"),
        r#"
[[tunnel]]
name = "a"
local = "192.0.2.1"
remote = "198.51.100.7"
key = 1001
routes = ["10.20.0.0/16"]
"#,
        &format!("[control]\nsocket = \"{}\"\n", sock.display()),
    );
    // --duration-s bounds a stuck run; the test stops it with SIGINT once it has seen what it needs.
    let child = spawn_greway(&dir, &cfg, &["--duration-s", "60"]);
    let total_in = (inside.len() + outside.len()) as u64;
    // The control thread's view while the gateway runs: every packet accounted for.
    let mut live = Value::Null;
    wait_for("ctl stats to account for every packet", || {
        let (ok, v, _) = ctl(&sock, &["stats"]);
        let seen = ok
            && v["ports"]["inside"]["rx"].as_u64().unwrap_or(0)
                + v["ports"]["outside"]["rx"].as_u64().unwrap_or(0)
                == total_in
            && v["ports"]["inside"]["tx"].as_u64().unwrap_or(0) == 25;
        live = v;
        seen
    });
    interrupt(&child);
    let fin = finish(child, &dir);
    for s in [&live, &fin] {
        assert_eq!(s["ports"]["inside"]["rx"], inside.len() as u64, "{s}");
        assert_eq!(s["ports"]["outside"]["rx"], outside.len() as u64);
        assert_eq!(
            s["ports"]["outside"]["tx"], 40,
            "every routed inside packet encapsulated: {s}"
        );
        assert_eq!(
            s["ports"]["inside"]["tx"], 25,
            "every good GRE packet decapsulated"
        );
        assert_eq!(s["tunnels"]["a"]["encap"], 40);
        assert_eq!(s["tunnels"]["a"]["decap"], 25);
        assert_eq!(s["tunnels"]["a"]["up"], true);
        let drops = s["drops"].as_object().unwrap();
        for (reason, n) in drops {
            let want = expect_drops.get(reason.as_str()).copied().unwrap_or(0);
            assert_eq!(n.as_u64().unwrap(), want, "drop reason {reason}: {s}");
        }
        assert_eq!(
            s["latency"]["count"], 65,
            "one latency sample per forwarded packet"
        );
    }
    assert!(fin["latency"]["p50_us"].as_f64().unwrap() > 0.0);
    assert!(
        fin["latency"]["p99_us"].as_f64().unwrap() >= fin["latency"]["p50_us"].as_f64().unwrap()
    );
    assert_eq!(read_pcap(&dir.join("out-outside.pcap")).len(), 40);
    assert!(!sock.exists(), "the socket is removed at exit");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tunnels_added_and_removed_at_run_time_lose_no_packet_of_another_tunnel() {
    runtime_changes(1);
}

/// The same with two workers, each polling its own rx queue of the inside port (so both pick up every table
/// change while packets flow), the sequenced tunnel added and removed owned by one of them. The machine this
/// runs on may have only 2 cores: worker 1 then shares core 0 with the control thread (`-c 0x3`).
#[test]
fn tunnels_added_and_removed_at_run_time_with_two_workers() {
    runtime_changes(2);
}

fn runtime_changes(workers: usize) {
    let dir = scratch(&format!("obs-runtime-{workers}"));
    // Tunnel "a" gets an endless stream (infinite_rx, tx to nowhere); "old" sits before it in the table, so
    // deleting "old" shifts "a"'s index while its packets flow.
    let inside: Vec<Vec<u8>> = (0..64u16)
        .map(|i| {
            udp4_frame(
                HOST,
                GWIN,
                [10, 0, 0, 2],
                [10, 20, 0, i as u8],
                i,
                &[7; 100],
            )
        })
        .collect();
    write_pcap(&dir.join("inside.pcap"), &inside);
    let inner = inner4([10, 20, 3, 4], [10, 0, 0, 2], 1);
    write_pcap(
        &dir.join("outside.pcap"),
        &[gre4_frame(
            REMOTE,
            LOCAL,
            &gre_header(0, 0x0800, Some(1001), &inner),
        )],
    );
    let d = dir.display();
    let sock = socket_path(&dir);
    // Two workers: two rx queues on the inside (the capture twice), and an outside port with a tx queue per
    // worker (net_null; the GRE frame from the peer is then not sent in).
    let (inside_dev, outside_dev) = if workers == 1 {
        (
            format!("net_pcap0,rx_pcap={d}/inside.pcap,infinite_rx=1"),
            format!("net_pcap1,rx_pcap={d}/outside.pcap,tx_pcap={d}/out-outside.pcap"),
        )
    } else {
        (
            format!("net_pcap0,rx_pcap={d}/inside.pcap,rx_pcap={d}/inside.pcap,infinite_rx=1"),
            "net_null1,no-rx=1".to_string(),
        )
    };
    let cfg = config(
        &dir,
        &format!("obs-rt{workers}"),
        &inside_dev,
        &outside_dev,
        r#"
[[tunnel]]
name = "old"
local = "192.0.2.1"
remote = "198.51.100.8"
routes = ["10.40.0.0/16"]
[[tunnel]]
name = "a"
local = "192.0.2.1"
remote = "198.51.100.7"
key = 1001
routes = ["10.20.0.0/16"]
"#,
        &format!("[control]\nsocket = \"{}\"\n", sock.display()),
    );
    let cfg = if workers == 1 {
        cfg
    } else {
        cfg.replace("workers = [1]", "workers = [1, 0]")
            .replace(r#""-l", "0-1""#, r#""-c", "0x3""#)
    };
    let child = spawn_greway(&dir, &cfg, &["--duration-s", "60"]);
    wait_for("the control socket", || ctl(&sock, &["stats"]).0);
    let encap_a = || {
        ctl(&sock, &["stats"]).1["tunnels"]["a"]["encap"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = encap_a();
    wait_for("traffic on tunnel a", || encap_a() > before);

    let (ok, v, err) = ctl(&sock, &["tunnel", "del", "--name", "old"]);
    assert!(ok, "{err}");
    assert_eq!(v["tunnels"].as_array().unwrap().len(), 1);
    for round in 0..3 {
        let (ok, v, err) = ctl(
            &sock,
            &[
                "tunnel",
                "add",
                "--name",
                "b",
                "--local",
                "192.0.2.1",
                "--remote",
                "198.51.100.9",
                "--key",
                "5",
                "--checksum",
                "--sequence",
                "--mss-clamp",
                "--route",
                "10.30.0.0/16",
            ],
        );
        assert!(ok, "round {round}: {err}");
        let names: Vec<&str> = v["tunnels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let (ok, v, _) = ctl(&sock, &["tunnel", "show"]);
        assert!(ok);
        // "a": key 1001 over IPv4 (overhead 28), nothing learned from ICMP: the configured path MTU.
        assert_eq!(
            (&v["tunnels"][0]["mtu"], &v["tunnels"][0]["pmtu"]),
            (&1472.into(), &1500.into()),
            "{v}"
        );
        assert!(v["tunnels"][0]["pmtu_expires_s"].is_null(), "{v}");
        assert_eq!(v["tunnels"][1]["sequence"], true);
        assert_eq!(v["tunnels"][1]["mss_clamp"], true, "{v}");
        assert_eq!(
            v["tunnels"][1]["encap_limit"],
            serde_json::Value::Null,
            "{v}"
        );
        assert_eq!(v["tunnels"][0]["mss_clamp"], false, "{v}");
        assert_eq!(v["tunnels"][1]["routes"][0], "10.30.0.0/16");
        let (ok, v, _) = ctl(&sock, &["route", "show"]);
        assert!(ok);
        assert_eq!(v["tunnel_routes"].as_array().unwrap().len(), 2, "{v}");
        std::thread::sleep(Duration::from_millis(200));
        let (ok, _, err) = ctl(&sock, &["tunnel", "del", "--name", "b"]);
        assert!(ok, "{err}");
    }
    // Refused changes: validated like the file, and nothing changes.
    let (ok, _, err) = ctl(
        &sock,
        &[
            "tunnel",
            "add",
            "--name",
            "a",
            "--local",
            "192.0.2.1",
            "--remote",
            "198.51.100.20",
        ],
    );
    assert!(
        !ok && err.contains("tunnel[1].name"),
        "duplicate name refused: {err}"
    );
    let (ok, _, err) = ctl(
        &sock,
        &[
            "tunnel",
            "add",
            "--name",
            "c",
            "--local",
            "192.0.2.99",
            "--remote",
            "198.51.100.20",
        ],
    );
    assert!(!ok && err.contains("not an address of any port"), "{err}");
    let (ok, _, err) = ctl(
        &sock,
        &[
            "tunnel",
            "add",
            "--name",
            "c",
            "--local",
            "192.0.2.1",
            "--remote",
            "198.51.100.20",
            "--encap-limit",
            "4",
        ],
    );
    assert!(
        !ok && err.contains("tunnel[1].encap_limit"),
        "encap_limit on an IPv4 tunnel refused: {err}"
    );
    let (ok, _, err) = ctl(&sock, &["tunnel", "del", "--name", "nope"]);
    assert!(!ok && err.contains("no tunnel named"), "{err}");
    let (ok, _, _) = ctl(
        &sock,
        &["route", "add", "--prefix", "10.50.0.0/16", "--tunnel", "a"],
    );
    assert!(ok);
    let (ok, _, _) = ctl(&sock, &["route", "del", "--prefix", "10.50.0.0/16"]);
    assert!(ok);
    let (ok, _, err) = ctl(
        &sock,
        &[
            "route",
            "add",
            "--prefix",
            "203.0.113.0/24",
            "--port",
            "outside",
            "--via",
            "192.0.2.254",
        ],
    );
    assert!(ok, "{err}");
    let (_, v, _) = ctl(&sock, &["route", "show"]);
    assert!(
        v["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["prefix"] == "203.0.113.0/24" && r["port"] == "outside"),
        "{v}"
    );
    let (ok, _, err) = ctl(
        &sock,
        &[
            "route",
            "add",
            "--prefix",
            "203.0.114.0/24",
            "--port",
            "nope",
        ],
    );
    assert!(!ok && err.contains("route"), "unknown port refused: {err}");
    let (ok, _, err) = ctl(&sock, &["route", "del", "--prefix", "203.0.113.0/24"]);
    assert!(ok, "{err}");
    let (ok, _, err) = ctl(&sock, &["route", "del", "--prefix", "203.0.113.0/24"]);
    assert!(!ok && err.contains("no route"), "{err}");
    let after = encap_a();
    wait_for("more traffic after the changes", || encap_a() > after);
    interrupt(&child);
    let s = finish(child, &dir);
    let a = &s["tunnels"]["a"];
    let rx = s["ports"]["inside"]["rx"].as_u64().unwrap();
    eprintln!(
        "tunnel a: {rx} packets in, encap {}, {before} before the changes, {after} after",
        a["encap"]
    );
    assert!(after > before, "traffic flowed during the changes");
    assert!(rx > 1000, "a stream, not a trickle: {s}");
    assert_eq!(
        a["encap"].as_u64().unwrap(),
        rx,
        "every packet of tunnel a encapsulated: {s}"
    );
    assert_eq!(
        s["ports"]["outside"]["tx"].as_u64().unwrap(),
        rx,
        "and sent: {s}"
    );
    assert_eq!(a["drops"], 0);
    assert!(
        s["drops"].as_object().unwrap().values().all(|v| v == 0),
        "no drop of any kind: {s}"
    );
    assert!(s["tunnels"].get("old").is_none() && s["tunnels"].get("b").is_none());
    assert_eq!(s["tunnels"].as_object().unwrap().len(), 1);
    // Every packet's latency is recorded (plus the peer's GRE frame with one worker).
    let extra = u64::from(workers == 1);
    assert_eq!(s["latency"]["count"].as_u64().unwrap(), rx + extra);
    // Each worker polled its own inside queue, and both got traffic through all the changes.
    let per_queue: Vec<u64> = s["ports"]["inside"]["hw"]["rx_queue_packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    eprintln!("inside rx per queue: {per_queue:?}");
    assert_eq!(per_queue.len(), workers, "{s}");
    assert!(per_queue.iter().all(|&n| n > 1000), "{per_queue:?}");
    assert_eq!(per_queue.iter().sum::<u64>(), rx);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn prometheus_and_dpdk_telemetry_answer_while_running() {
    let dir = scratch("obs-export");
    let mut frames: Vec<Vec<u8>> = (0..30u16)
        .map(|i| udp4_frame(HOST, GWIN, [10, 0, 0, 2], [10, 20, 0, 9], i, &[3; 50]))
        .collect();
    frames.push(udp4_frame(
        HOST,
        GWIN,
        [10, 0, 0, 2],
        [172, 16, 5, 5],
        1,
        b"nowhere",
    ));
    write_pcap(&dir.join("inside.pcap"), &frames);
    let inner = inner4([10, 20, 3, 4], [10, 0, 0, 2], 1);
    write_pcap(
        &dir.join("outside.pcap"),
        &[
            gre4_frame(REMOTE, LOCAL, &gre_header(0, 0x0800, Some(1001), &inner)),
            frag_needed_frame(1400),
        ],
    );
    let d = dir.display();
    let port = free_tcp_port();
    let tag = "obs-exp";
    let cfg = config(
        &dir,
        tag,
        &format!("net_pcap0,rx_pcap={d}/inside.pcap,tx_pcap={d}/o1.pcap"),
        &format!("net_pcap1,rx_pcap={d}/outside.pcap,tx_pcap={d}/o2.pcap"),
        r#"
[[tunnel]]
name = "site-b"
local = "192.0.2.1"
remote = "198.51.100.7"
key = 1001
routes = ["10.20.0.0/16"]
"#,
        &format!("[metrics]\nprometheus = \"127.0.0.1:{port}\"\n"),
    );
    let child = spawn_greway(&dir, &cfg, &["--duration-s", "60"]);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut text = String::new();
    wait_for("the Prometheus endpoint with every packet counted", || {
        let out = Command::new("curl")
            .args(["-sf", &url])
            .output()
            .expect("curl is needed");
        text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("greway_tunnel_encap_packets_total{tunnel=\"site-b\"} 30\n")
            && text.contains("greway_drops_total{reason=\"pmtu_learned\"} 1\n")
    });
    for want in [
        "# TYPE greway_port_rx_packets_total counter",
        "greway_port_rx_packets_total{port=\"inside\"} 31\n",
        "greway_tunnel_decap_packets_total{tunnel=\"site-b\"} 1\n",
        "greway_port_tx_packets_total{port=\"outside\"} 30\n",
        "greway_drops_total{reason=\"no_route\"} 1\n",
        "greway_drops_total{reason=\"bad_checksum\"} 0\n",
        "greway_tunnel_up{tunnel=\"site-b\"} 1\n",
        // Lowered from 1500 (inner 1472 + IPv4 20 + GRE with key 8) by the fragmentation needed.
        "# TYPE greway_tunnel_pmtu_bytes gauge",
        "greway_tunnel_pmtu_bytes{tunnel=\"site-b\"} 1400\n",
        "# TYPE greway_latency_seconds histogram",
        "greway_latency_seconds_bucket{le=\"+Inf\"} 31\n",
        "greway_latency_seconds_count 31\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // Exposition format: every non-comment line is `name{labels} value`.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = l.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{l}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{l}"
        );
    }
    let prefix = format!("gwt-{tag}-{}", std::process::id());
    let query = |cmd: &str| -> Value {
        let mut p = Command::new("dpdk-telemetry.py")
            .args(["-f", &prefix])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dpdk-telemetry.py (package dpdk) is needed");
        use std::io::Write;
        p.stdin
            .take()
            .unwrap()
            .write_all(format!("{cmd}\n").as_bytes())
            .unwrap();
        let out = p.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        // The script prints its banner, then one JSON object per command.
        let line = text
            .lines()
            .find(|l| l.starts_with('{') && l.contains(cmd))
            .unwrap_or_else(|| {
                panic!(
                    "no answer to {cmd}: {text}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        serde_json::from_str::<Value>(line).unwrap()[cmd].clone()
    };
    let st = query("/greway/stats");
    assert_eq!(st["port/inside/rx"], 31, "{st}");
    assert_eq!(st["port/outside/tx"], 30);
    assert_eq!(st["drops/no_route"], 1, "{st}");
    assert_eq!(st["latency/count"], 31);
    assert_eq!(st["tunnels_up"], 1);
    let tu = query("/greway/tunnels");
    assert_eq!(tu["site_b/encap"], 30, "{tu}");
    assert_eq!(tu["site_b/up"], 1);
    assert_eq!(tu["site_b/pmtu"], 1400, "{tu}");
    let la = query("/greway/latency");
    assert_eq!(la["latency/count"], 31, "{la}");
    assert!(la["latency/p99_ns"].as_u64().unwrap() >= la["latency/p50_ns"].as_u64().unwrap());
    interrupt(&child);
    let s = finish(child, &dir);
    assert_eq!(s["tunnels"]["site-b"]["encap"], 30);
    assert_eq!(s["tunnels"]["site-b"]["pmtu"], 1400);
    let _ = std::fs::remove_dir_all(&dir);
}
