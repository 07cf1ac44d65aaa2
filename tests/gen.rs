//! `greway gen` on real ports: (1) its GRE output, written by net_pcap, decodes in tshark with good IPv4, GRE
//! and UDP checksums, the configured keys and increasing GRE sequence numbers; (2) gen -> greway -> gen over
//! veth pairs (net_af_packet in both processes) and over memif: zero loss at a modest rate, exact counts,
//! latency present, and a short RFC 2544 search through greway;
//! (3) a `[generator]` config error names its field;
//! (4) TEB (`encap = "teb"`): its GRE/Ethernet output decodes in tshark, and gen -> greway -> gen through a TEB
//! tunnel bridged to an l2 port has zero loss both ways (into the tunnel and out of it).
mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn gre_output_decodes_in_tshark_with_good_checksums_keys_and_sequences() {
    let (dir, out, r) = gen_to_pcap(
        "gen-tshark",
        r#"address = "192.0.2.1/24""#,
        r#"encap = "gre"
outer_src = "192.0.2.2"
outer_dst = "192.0.2.1"
key = 100
checksum = true
sequence = true
tunnels = 2
flows = 3
sizes = [128, 300, 1500]
count = 300"#,
    );
    assert_eq!(r["sent"], 300, "{r}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sent 300"), "{text}");
    let rows = tshark_fields(
        &dir.join("gen.pcap"),
        None,
        &[
            "ip.checksum.status",
            "gre.checksum.status",
            "gre.key",
            "gre.sequence_number",
            "udp.checksum.status",
            "frame.len",
            "ip.src",
        ],
        &TSHARK_CHECK_IP_UDP,
    );
    assert_eq!(rows.len(), 300);
    let mut last_seq = [None::<u64>; 2];
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(
            r[0], "1,1",
            "outer and inner IPv4 checksums good, packet {i}: {r:?}"
        );
        assert_eq!(r[1], "1", "GRE checksum good, packet {i}: {r:?}");
        assert_eq!(r[4], "1", "UDP checksum good, packet {i}: {r:?}");
        let key = u64::from_str_radix(r[2].trim_start_matches("0x"), 16).unwrap();
        assert!(key == 100 || key == 101, "{r:?}");
        let t = (key - 100) as usize;
        assert_eq!(
            r[6],
            format!("192.0.2.{},10.20.0.{}", 2 + t, 1 + (i % 6) % 3),
            "{r:?}"
        );
        let seq: u64 = r[3].parse().unwrap();
        if let Some(prev) = last_seq[t] {
            assert_eq!(seq, prev + 1, "GRE sequence increases per tunnel: {r:?}");
        } else {
            assert_eq!(seq, 0);
        }
        last_seq[t] = Some(seq);
        let expect_len = [124, 296, 1496][i % 3];
        assert_eq!(
            r[5],
            expect_len.to_string(),
            "frame size without FCS: {r:?}"
        );
    }
}

#[test]
fn generator_config_errors_name_the_field() {
    let dir = scratch("gen-badcfg");
    let cfg = format!(
        r#"
{head}
[[port]]
name = "outside"
device = "net_null0"
address = "192.0.2.1/24"
[generator]
tx_port = "outside"
rx_port = "nowhere"
"#,
        head = config_head("gen-badcfg")
    );
    let p = dir.join("g.toml");
    std::fs::write(&p, cfg).unwrap();
    let out = Command::new(greway_bin())
        .args(["gen", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":12: generator.rx_port: unknown port \"nowhere\""),
        "{err}"
    );
    let out = Command::new(greway_bin())
        .args(["check-config"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "check-config validates [generator] too"
    );
}

/// A veth pair, deleted on drop.
struct Veth(String);
impl Veth {
    fn new(a: &str, b: &str) -> Option<Veth> {
        let ok = Command::new("ip")
            .args(["link", "add", a, "type", "veth", "peer", "name", b])
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        for i in [a, b] {
            let _ = Command::new("sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{i}.disable_ipv6=1")])
                .status();
            let _ = Command::new("ip").args(["link", "set", i, "up"]).status();
        }
        Some(Veth(a.to_string()))
    }
}
impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

#[test]
fn gen_through_greway_over_veth_has_zero_loss_and_latency() {
    let dir = scratch("gen-e2e");
    let n = std::process::id() % 100_000;
    let (a0, a1, b0, b1) = (
        format!("gg{n}a0"),
        format!("gg{n}a1"),
        format!("gg{n}b0"),
        format!("gg{n}b1"),
    );
    let (Some(_va), Some(_vb)) = (Veth::new(&a0, &a1), Veth::new(&b0, &b1)) else {
        panic!("cannot create veth pairs (the suite runs as root with CAP_NET_ADMIN)");
    };
    let devs = Devices {
        ready: vec![],
        gw_outside: format!("net_af_packet0,iface={a1}"),
        gw_inside: format!("net_af_packet1,iface={b1}"),
        gen_a: format!("net_af_packet0,iface={a0}"),
        gen_b: format!("net_af_packet1,iface={b0}"),
    };
    gen_through_greway(&dir, &devs, "veth");
}

/// The same over memif: shared-memory packet rings between the two DPDK processes (greway is the server). The
/// sockets are files (`socket-abstract=no`; DPDK 22.11's default is an abstract socket, with no file for
/// `Devices::ready` to wait for).
#[test]
fn gen_through_greway_over_memif_has_zero_loss_and_latency() {
    let dir = scratch("gen-memif");
    let d = dir.display();
    let devs = Devices {
        ready: vec![dir.join("out.sock"), dir.join("in.sock")],
        gw_outside: format!("net_memif0,role=server,socket={d}/out.sock,socket-abstract=no"),
        gw_inside: format!("net_memif1,role=server,socket={d}/in.sock,socket-abstract=no"),
        gen_a: format!("net_memif0,role=client,socket={d}/out.sock,socket-abstract=no"),
        gen_b: format!("net_memif1,role=client,socket={d}/in.sock,socket-abstract=no"),
    };
    gen_through_greway(&dir, &devs, "memif");
}

struct Devices {
    /// Files that exist once greway's ports are up (memif sockets).
    ready: Vec<std::path::PathBuf>,
    gw_outside: String,
    gw_inside: String,
    gen_a: String,
    gen_b: String,
}

/// greway: outside (GRE from gen), inside (decapsulated packets back to gen); gen sends 5000 GRE packets at
/// 5 kpps on `a` and measures them on `b`, then runs a short RFC 2544 search through greway.
fn gen_through_greway(dir: &Path, devs: &Devices, tag: &str) {
    // greway: outside on a1 (GRE from gen), inside on b1 (decapsulated packets back to gen).
    let gw_cfg = format!(
        r#"
{head}
idle_sleep_us = 20
[[port]]
name = "outside"
device = "{gw_out}"
address = "192.0.2.1/24"
mac = "02:00:00:00:01:02"
[[port]]
name = "inside"
device = "{gw_in}"
address = "10.0.0.1/24"
mac = "02:00:00:00:01:01"
[[tunnel]]
name = "gen"
local = "192.0.2.1"
remote = "192.0.2.2"
key = 100
checksum = true
sequence = true
routes = ["10.20.0.0/16"]
[[neighbor]]
port = "inside"
ip = "10.0.0.2"
mac = "02:00:00:00:00:0a"
[[neighbor]]
port = "outside"
ip = "192.0.2.2"
mac = "02:00:00:00:00:0b"
"#,
        head = config_head(&format!("{tag}-gw")),
        gw_out = devs.gw_outside,
        gw_in = devs.gw_inside,
    );
    std::fs::write(dir.join("gw.toml"), gw_cfg).unwrap();
    let stats = dir.join("gw-stats.json");
    let gw = spawn_greway(&dir.join("gw.toml"), &stats);
    std::thread::sleep(Duration::from_millis(2500));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !devs.ready.iter().all(|p| p.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let gen_cfg = format!(
        r#"
{head}
[[port]]
name = "a"
role = "outside"
device = "{gen_a}"
address = "192.0.2.2/24"
mac = "02:00:00:00:00:0b"
[[port]]
name = "b"
role = "inside"
device = "{gen_b}"
address = "10.0.0.2/24"
mac = "02:00:00:00:00:0a"
[generator]
tx_port = "a"
rx_port = "b"
encap = "gre"
outer_src = "192.0.2.2"
outer_dst = "192.0.2.1"
dst_mac = "02:00:00:00:01:02"
key = 100
checksum = true
sequence = true
flows = 4
inner_src = "10.20.0.1"
inner_dst = "10.0.0.2"
sizes = [128, 512]
rate_pps = 5000
count = 5000
drain_ms = 500
"#,
        head = config_head(&format!("{tag}-gen")),
        gen_a = devs.gen_a,
        gen_b = devs.gen_b,
    );
    let gen = std::panic::catch_unwind(|| {
        let first = run_gen(dir, &gen_cfg, &[]);
        let rfc = run_gen(
            dir,
            &gen_cfg,
            &[
                "--rfc2544",
                "--trials",
                "3",
                "--trial-s",
                "0.5",
                "--max-pps",
                "4000",
                // greway keeps RFC 2890 state: continue above the first run's sequence numbers.
                "--sequence-start",
                "10000",
            ],
        );
        (first, rfc)
    });
    let gw_out = stop_greway(gw);
    let ((out, r), (rfc_out, rfc)) = match gen {
        Ok(x) => x,
        Err(e) => {
            eprintln!(
                "greway stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&gw_out.stdout),
                String::from_utf8_lossy(&gw_out.stderr)
            );
            std::panic::resume_unwind(e)
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    let gw_stats = std::fs::read_to_string(&stats).unwrap_or_default();
    assert_eq!(r["sent"], 5000, "{r}\ngreway: {gw_stats}");
    assert_eq!(r["received"], 5000, "{r}\ngreway: {gw_stats}");
    assert_eq!(r["lost"], 0, "{r}");
    assert_eq!(r["duplicates"], 0, "{r}");
    assert_eq!(r["stale"], 0, "{r}");
    assert_eq!(r["latency"]["count"], 5000, "{r}");
    for p in ["p50_us", "p99_us", "p999_us", "max_us"] {
        assert!(r["latency"][p].as_f64().unwrap() > 0.0, "{p}: {r}");
    }
    assert!(text.contains("lost 0 (0.0000 %)"), "{text}");
    let s: serde_json::Value = serde_json::from_str(&gw_stats).expect("greway stats");
    let decap = s["tunnels"]["gen"]["decap"].as_u64().unwrap();
    let rfc_sent: u64 = rfc["rfc2544"]["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["sent"].as_u64().unwrap())
        .sum();
    assert_eq!(
        decap,
        5000 + rfc_sent,
        "greway decapsulated every packet: {s}"
    );
    // The search ran through greway: bounded trials, each offered and measured.
    let rfc_text = String::from_utf8_lossy(&rfc_out.stdout);
    println!("{rfc_text}");
    let trials = rfc["rfc2544"]["trials"].as_array().unwrap();
    assert!((1..=3).contains(&trials.len()), "{rfc}");
    assert!(
        trials.iter().all(|t| t["sent"].as_u64().unwrap() > 0),
        "{rfc}"
    );
    assert!(
        rfc_text.contains("rfc2544 trial 1/3: offered 0.004 Mpps"),
        "{rfc_text}"
    );
}

/// `encap = "teb"`: Ethernet frames inside GRE protocol 0x6558 with the GRE options, decoded by tshark: the
/// outer and inner Ethernet headers (one inner source MAC per flow), good GRE, IPv4 and UDP checksums, keys
/// and sequence numbers per tunnel.
#[test]
fn teb_output_decodes_in_tshark_with_inner_ethernet_and_good_checksums() {
    let (dir, out, r) = gen_to_pcap(
        "gen-teb-tshark",
        r#"address = "192.0.2.2/24"
mac = "02:00:00:00:00:0b""#,
        r#"encap = "teb"
outer_src = "192.0.2.2"
outer_dst = "192.0.2.1"
dst_mac = "02:00:00:00:01:02"
inner_src_mac = "02:00:00:00:aa:01"
inner_dst_mac = "02:00:00:00:bb:02"
key = 7
checksum = true
sequence = true
tunnels = 2
flows = 2
sizes = [64, 1518]
count = 200"#,
    );
    assert_eq!(r["sent"], 200, "{r}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "GRE/IPv4 key 7 csum seq carrying Ethernet (TEB) with IPv4 UDP, 2 tunnels x 2 flows"
        ),
        "{text}"
    );
    let rows = tshark_fields(
        &dir.join("gen.pcap"),
        None,
        &[
            "gre.proto",
            "gre.checksum.status",
            "gre.key",
            "gre.sequence_number",
            "eth.src",
            "eth.dst",
            "ip.checksum.status",
            "udp.checksum.status",
            "frame.len",
        ],
        &TSHARK_CHECK_IP_UDP,
    );
    assert_eq!(rows.len(), 200);
    let mut last_seq = [None::<u64>; 2];
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(
            r[0], "0x6558",
            "GRE carries Ethernet (TEB), packet {i}: {r:?}"
        );
        assert_eq!(r[1], "1", "GRE checksum good, packet {i}: {r:?}");
        let key = u64::from_str_radix(r[2].trim_start_matches("0x"), 16).unwrap();
        assert!(key == 7 || key == 8, "{r:?}");
        let t = (key - 7) as usize;
        let seq: u64 = r[3].parse().unwrap();
        assert_eq!(seq, last_seq[t].map_or(0, |s| s + 1), "{r:?}");
        last_seq[t] = Some(seq);
        // Streams go tunnel-major: packet i is stream i % 4 = tunnel * 2 + flow (one size per stream and
        // pattern step: sizes alternate packet by packet).
        let flow = i % 4 % 2;
        assert_eq!(
            r[4],
            format!("02:00:00:00:00:0b,02:00:00:00:aa:0{}", 1 + flow),
            "outer source MAC, then the flow's inner source MAC: {r:?}"
        );
        assert_eq!(r[5], "02:00:00:00:01:02,02:00:00:00:bb:02", "{r:?}");
        assert_eq!(r[6], "1,1", "outer and inner IPv4 checksums good: {r:?}");
        assert_eq!(r[7], "1", "UDP checksum good: {r:?}");
        // 64 is raised to the smallest TEB frame that holds the signature: 114 with the FCS.
        assert_eq!(r[8], ["110", "1514"][i % 2], "{r:?}");
    }
}

/// gen -> greway -> gen through a TEB tunnel bridged to an l2 port, over veth pairs: gen sends TEB on `a` that
/// greway decapsulates and bridges out of its l2 port to `b` (the inner frames, measured there), then plain
/// frames on `b` that greway bridges into the tunnel, measured inside GRE/TEB on `a`. Zero loss both ways,
/// latency present; greway learned the generator's inner MACs on the tunnel and forwards the reverse traffic to
/// the tunnel as known unicast.
#[test]
fn gen_through_greway_teb_bridge_both_ways_over_veth() {
    let dir = scratch("gen-teb-e2e");
    let n = std::process::id() % 100_000;
    let (a0, a1, b0, b1) = (
        format!("gt{n}a0"),
        format!("gt{n}a1"),
        format!("gt{n}b0"),
        format!("gt{n}b1"),
    );
    let (Some(_va), Some(_vb)) = (Veth::new(&a0, &a1), Veth::new(&b0, &b1)) else {
        panic!("cannot create veth pairs (the suite runs as root with CAP_NET_ADMIN)");
    };
    let gw_cfg = format!(
        r#"
{head}
idle_sleep_us = 20
[[port]]
name = "outside"
device = "net_af_packet0,iface={a1}"
address = "192.0.2.1/24"
mac = "02:00:00:00:01:02"
[[port]]
name = "lan"
device = "net_af_packet1,iface={b1}"
role = "l2"
[[tunnel]]
name = "gen"
mode = "teb"
local = "192.0.2.1"
remote = "192.0.2.2"
key = 100
checksum = true
sequence = true
[[bridge]]
name = "office"
members = ["lan", "gen"]
[[neighbor]]
port = "outside"
ip = "192.0.2.2"
mac = "02:00:00:00:00:0b"
"#,
        head = config_head("gen-teb-gw"),
    );
    std::fs::write(dir.join("gw.toml"), gw_cfg).unwrap();
    let stats = dir.join("gw-stats.json");
    let gw = spawn_greway(&dir.join("gw.toml"), &stats);
    std::thread::sleep(Duration::from_millis(2500));
    let gen_cfg = |tx: &str, rx: &str, encap: &str, extra: &str| {
        format!(
            r#"
{head}
[[port]]
name = "a"
role = "outside"
device = "net_af_packet0,iface={a0}"
address = "192.0.2.2/24"
mac = "02:00:00:00:00:0b"
[[port]]
name = "b"
device = "net_af_packet1,iface={b0}"
role = "l2"
mac = "02:00:00:00:00:0a"
[generator]
tx_port = "{tx}"
rx_port = "{rx}"
encap = "{encap}"
key = 100
checksum = true
sequence = true
flows = 4
inner_src = "10.9.0.1"
inner_dst = "10.9.0.2"
sizes = [128, 512]
rate_pps = 5000
count = 5000
drain_ms = 500
{extra}
"#,
            head = config_head("gen-teb-gen"),
        )
    };
    // Into greway's outside port: TEB from the tunnel's remote, inner frames from 02:00:00:00:20:01..04 to the
    // host on the l2 port (02:00:00:00:00:0a), which the bridge has not seen yet: flooded to the only other
    // member.
    let teb_in = gen_cfg(
        "a",
        "b",
        "teb",
        "outer_src = \"192.0.2.2\"\nouter_dst = \"192.0.2.1\"\ndst_mac = \"02:00:00:00:01:02\"\ninner_dst_mac = \"02:00:00:00:00:0a\"",
    );
    // From the l2 port: frames to the first inner source MAC above, learned on the tunnel: forwarded into it.
    let frames_in = gen_cfg("b", "a", "udp", "dst_mac = \"02:00:00:00:20:01\"");
    let runs = std::panic::catch_unwind(|| {
        let decap = run_gen(&dir, &teb_in, &[]);
        let encap = run_gen(&dir, &frames_in, &[]);
        (decap, encap)
    });
    let gw_out = stop_greway(gw);
    let ((out_d, d), (out_e, e)) = match runs {
        Ok(x) => x,
        Err(err) => {
            eprintln!(
                "greway stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&gw_out.stdout),
                String::from_utf8_lossy(&gw_out.stderr)
            );
            std::panic::resume_unwind(err)
        }
    };
    println!("{}", String::from_utf8_lossy(&out_d.stdout));
    println!("{}", String::from_utf8_lossy(&out_e.stdout));
    let gw_stats = std::fs::read_to_string(&stats).unwrap_or_default();
    for (what, r) in [("TEB -> l2 port", &d), ("l2 port -> TEB", &e)] {
        assert_eq!(r["sent"], 5000, "{what}: {r}\ngreway: {gw_stats}");
        assert_eq!(r["received"], 5000, "{what}: {r}\ngreway: {gw_stats}");
        assert_eq!(r["lost"], 0, "{what}: {r}");
        assert_eq!(r["duplicates"], 0, "{what}: {r}");
        assert_eq!(r["reordered"], 0, "{what}: {r}");
        assert_eq!(r["latency"]["count"], 5000, "{what}: {r}");
        assert!(
            r["latency"]["max_us"].as_f64().unwrap() > 0.0,
            "{what}: {r}"
        );
    }
    assert!(
        String::from_utf8_lossy(&out_d.stdout).contains("carrying Ethernet (TEB) with IPv4 UDP"),
        "{}",
        String::from_utf8_lossy(&out_d.stdout)
    );
    let s: serde_json::Value = serde_json::from_str(&gw_stats).expect("greway stats");
    assert_eq!(s["tunnels"]["gen"]["decap"], 5000, "{s}");
    assert_eq!(s["tunnels"]["gen"]["encap"], 5000, "{s}");
    let office = &s["bridges"]["office"];
    assert_eq!(office["rx"], 10000, "{s}");
    // The generator's four inner source MACs (on the tunnel) and its l2 port's MAC (on lan).
    assert_eq!(office["learned"], 5, "{s}");
    assert_eq!(
        office["forwarded"], 5000,
        "the reverse traffic goes to the learned MAC: {s}"
    );
    assert_eq!(office["flooded"], 5000, "{s}");
    assert_eq!(total_drops(&s), 0, "{s}");
}
