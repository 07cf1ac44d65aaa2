//! Hostile traffic on real DPDK pcap ports: thousands of truncated, malformed, spoofed, fragmented, jumbo,
//! storming and random frames (tests/scapy/hostile.py) mixed with good traffic in both directions. Afterwards
//! greway has exited 0, every received frame was transmitted or counted under one drop reason, the outputs hold
//! only what a gateway may send (checked with tshark), and no mbuf leaked.
mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const OUR_IN_MAC: &str = "02:00:00:00:00:01";
const OUR_OUT_MAC: &str = "02:00:00:00:00:02";

fn config(dir: &Path, tag: &str) -> String {
    format!(
        r#"
{head}
{inside}
address = ["10.0.0.1/24", "2001:db8:1::1/64"]
mac = "{OUR_IN_MAC}"
{outside}
address = "192.0.2.1/24"
mac = "{OUR_OUT_MAC}"
[[tunnel]]
name = "site-b"
local = "192.0.2.1"
remote = "198.51.100.7"
key = 1001
checksum = true
routes = ["10.20.0.0/16"]
allowed_sources = ["10.20.0.0/16"]
{next_hop}
{inside_host}
"#,
        head = config_head(tag),
        inside = pcap_port("inside", 0, dir, "inside.pcap", "out-inside.pcap"),
        outside = pcap_port("outside", 1, dir, "outside.pcap", "out-outside.pcap"),
        next_hop = outside_next_hop("198.51.100.0/24"),
        inside_host = inside_host(),
    )
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a counter: {v}"))
}

/// The first occurrence of a tshark field (outer header), "" when absent.
fn first(f: &str) -> &str {
    f.split(',').next().unwrap_or("")
}

#[test]
fn hostile_traffic_is_contained_counted_and_leaks_nothing() {
    let dir = scratch("hostile");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scapy/hostile.py");
    let gen = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&dir)
        .output()
        .expect("/usr/bin/python3 with scapy is required (scripts/install-deps.sh installs python3-scapy)");
    assert!(
        gen.status.success(),
        "hostile.py failed: {}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let expect: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expect.json")).unwrap()).unwrap();
    let frames_in = u(&expect["inside_frames"]);
    let frames_out = u(&expect["outside_frames"]);
    assert!(frames_in + frames_out > 10_000, "thousands of frames");

    // run_greway asserts exit status 0.
    let (out, s) = run_greway(&dir, &config(&dir, "hostile"), &[]);
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("panick"), "no panic: {log}");

    // Every frame of the inputs was received (none lost before greway saw it).
    let p_in = &s["ports"]["inside"];
    let p_out = &s["ports"]["outside"];
    assert_eq!(u(&p_in["rx"]), frames_in, "inside rx: {s}");
    assert_eq!(u(&p_out["rx"]), frames_out, "outside rx: {s}");

    // Exact accounting: ARP/ND replies, echo replies and ICMP errors are the received packet rewritten and
    // sent (a tx of that packet), keepalive reflections too; greway creates no packet of its own here. So every
    // received packet is exactly one tx or one drop, across both ports.
    let drops: BTreeMap<String, u64> = s["drops"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), u(v)))
        .collect();
    let dropped: u64 = drops.values().sum();
    let rx = u(&p_in["rx"]) + u(&p_out["rx"]);
    let tx = u(&p_in["tx"]) + u(&p_out["tx"]);
    assert_eq!(rx, tx + dropped, "rx == tx + drops: {s}");
    // The device's own counters agree with greway's (what greway counted as tx really left).
    assert_eq!(
        u(&p_in["hw"]["opackets"]),
        u(&p_in["tx"]),
        "inside hw tx: {s}"
    );
    assert_eq!(
        u(&p_out["hw"]["opackets"]),
        u(&p_out["tx"]),
        "outside hw tx: {s}"
    );
    assert_eq!(u(&p_in["hw"]["ipackets"]), frames_in);
    assert_eq!(u(&p_out["hw"]["ipackets"]), frames_out);

    // Only the good traffic crossed the tunnel.
    let t = &s["tunnels"]["site-b"];
    assert_eq!(u(&t["encap"]), u(&expect["encap"]), "encapsulated: {s}");
    let decap_counted = u(&t["decap"]);
    assert!(
        (u(&expect["decap"])..=u(&expect["decap_counted_max"])).contains(&decap_counted),
        "decapsulated: {decap_counted} not in {}..={}: {s}",
        expect["decap"],
        expect["decap_counted_max"]
    );

    // Each hostile class was seen and counted under its reason (lower bounds from the generator).
    for (reason, min) in expect["must_drop"].as_object().unwrap() {
        let got = drops.get(reason).copied().unwrap_or(0);
        assert!(
            got >= u(min),
            "drop reason {reason}: {got} < {min} expected at least: {s}"
        );
    }
    // The ARP storm (3000 requests for us in well under a second) hit the reply limiter: at most the burst
    // plus what refilled at 10000/s during the run was answered.
    assert!(
        drops["reply_rate_limited"] > 0,
        "ARP storm rate limited: {s}"
    );
    let dur = s["duration_s"].as_f64().unwrap();
    let max_replies = 1000.0 + 10_000.0 * dur + 1.0;
    let arp_rows = tshark_fields(
        &dir.join("out-inside.pcap"),
        Some("arp.opcode == 2 || icmpv6.type == 136"),
        &["frame.number"],
        &[],
    );
    assert!(
        (arp_rows.len() as f64) <= max_replies,
        "{} ARP/ND replies in {dur} s",
        arp_rows.len()
    );
    // 300 TTL-1 packets into the tunnel: the ICMP error limiter (1000/s, burst 100) answered some, the rest
    // were dropped as ttl_expired.
    let icmp_errors = tshark_fields(
        &dir.join("out-inside.pcap"),
        Some("icmp.type == 11"),
        &["frame.number"],
        &[],
    )
    .len() as u64;
    assert!(icmp_errors > 0 && (icmp_errors as f64) <= 100.0 + 1000.0 * dur + 1.0);
    assert_eq!(icmp_errors + drops["ttl_expired"], 300, "TTL 1: {s}");
    assert_eq!(
        s["mempool"]["free_at_start"], s["mempool"]["free_at_end"],
        "no mbuf leaked: {s}"
    );

    // What went out of the inside port: from our MAC, never GRE, never a spoofed inner source: decapsulated
    // packets come from the tunnel's allowed sources, the rest is our own replies (ARP, ND, ICMP).
    let rows = tshark_fields(
        &dir.join("out-inside.pcap"),
        None,
        &[
            "eth.src",
            "eth.type",
            "ip.src",
            "ip.dst",
            "ip.proto",
            "arp.opcode",
            "arp.src.proto_ipv4",
            "ipv6.src",
            "icmpv6.type",
        ],
        &[],
    );
    assert_eq!(rows.len() as u64, u(&p_in["tx"]));
    let (mut decap, mut local_replies) = (0u64, 0u64);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], OUR_IN_MAC, "inside frame {i} from our MAC: {r:?}");
        let (src, dst, proto) = (first(&r[2]), first(&r[3]), first(&r[4]));
        assert_ne!(
            proto, "47",
            "inside frame {i}: GRE leaked to the inside: {r:?}"
        );
        if !src.is_empty() && src.starts_with("10.20.") {
            assert!(
                dst.starts_with("10.0.0."),
                "inside frame {i}: decap to the inside subnet: {r:?}"
            );
            decap += 1;
        } else if src == "10.0.0.1" {
            assert_eq!(
                proto, "1",
                "inside frame {i}: only ICMP from our address: {r:?}"
            );
            local_replies += 1;
        } else if r[5] == "2" {
            assert_eq!(
                r[6], "10.0.0.1",
                "inside frame {i}: ARP reply for our address only: {r:?}"
            );
            local_replies += 1;
        } else if r[8] == "136" {
            assert_eq!(
                r[7], "2001:db8:1::1",
                "inside frame {i}: NA from our address: {r:?}"
            );
            local_replies += 1;
        } else {
            panic!("inside frame {i}: greway must not send this: {r:?}");
        }
    }
    assert_eq!(
        decap,
        u(&expect["decap"]),
        "decapsulated frames on the inside"
    );
    assert_eq!(decap + local_replies, u(&p_in["tx"]));

    // What went out of the outside port: GRE from our local address to the remote with our key and valid
    // checksums, or our replies to what came in on the outside (ARP for 192.0.2.1).
    let rows = tshark_fields(
        &dir.join("out-outside.pcap"),
        None,
        &[
            "eth.src",
            "ip.src",
            "ip.dst",
            "ip.proto",
            "gre.key",
            "gre.checksum.status",
            "arp.opcode",
            "arp.src.proto_ipv4",
            "ip.checksum.status",
        ],
        &["-o", "ip.check_checksum:TRUE"],
    );
    assert_eq!(rows.len() as u64, u(&p_out["tx"]));
    let (mut encap, mut arp) = (0u64, 0u64);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], OUR_OUT_MAC, "outside frame {i} from our MAC: {r:?}");
        if r[6] == "2" {
            assert_eq!(
                r[7], "192.0.2.1",
                "outside frame {i}: ARP reply for our address: {r:?}"
            );
            arp += 1;
            continue;
        }
        assert_eq!(
            first(&r[1]),
            "192.0.2.1",
            "outside frame {i}: outer source: {r:?}"
        );
        if first(&r[3]) == "47" {
            assert_eq!(
                first(&r[2]),
                "198.51.100.7",
                "outside frame {i}: outer destination: {r:?}"
            );
            assert_eq!(
                first(&r[4]),
                "0x000003e9",
                "outside frame {i}: key 1001: {r:?}"
            );
            assert_eq!(
                first(&r[5]),
                "1",
                "outside frame {i}: good GRE checksum: {r:?}"
            );
            assert_eq!(
                first(&r[8]),
                "1",
                "outside frame {i}: good outer IPv4 checksum: {r:?}"
            );
            encap += 1;
        } else {
            panic!("outside frame {i}: greway must not send this: {r:?}");
        }
    }
    assert_eq!(
        encap,
        u(&expect["encap"]),
        "encapsulated frames on the outside"
    );
    assert_eq!(encap + arp, u(&p_out["tx"]));

    eprintln!(
        "hostile: {} frames in ({} inside, {} outside), {} cases, tx {} (encap {encap}, decap {decap}, \
         replies {}), drops {dropped}: {:?}",
        frames_in + frames_out,
        frames_in,
        frames_out,
        expect["cases"].as_object().unwrap().len(),
        tx,
        local_replies + arp,
        drops.iter().filter(|(_, v)| **v > 0).collect::<BTreeMap<_, _>>()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
