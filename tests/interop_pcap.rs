//! Peers that are not greway, on real DPDK pcap ports: scapy models a Linux ip6gre peer with default settings
//! (the RFC 2473 encapsulation limit in a Destination Options header before GRE), MikroTik (EoIP,
//! `clamp-tcp-mss`) and Cisco (`ip tcp adjust-mss`), and builds the exact expected outputs
//! (tests/scapy/interop_vectors.py); tshark decodes what greway wrote, its TCP and ICMPv6 checksums included.
mod common;
use common::*;
use std::path::Path;

fn scapy_vectors(dir: &Path) -> serde_json::Value {
    run_scapy("interop_vectors.py", &[&dir]);
    serde_json::from_str(&std::fs::read_to_string(dir.join("expect.json")).unwrap()).unwrap()
}

fn config(dir: &Path) -> String {
    format!(
        r#"
{head}
{inside}
address = ["10.0.0.1/24", "2001:db8:1::1/64"]
mac = "02:00:00:00:00:01"
{outside}
address = ["192.0.2.1/24", "2001:db8:ffff::1/64"]
mac = "02:00:00:00:00:02"
# A Linux ip6gre peer with default settings: no key, encaplimit 4 (sent back the same way).
[[tunnel]]
name = "linux6"
local = "2001:db8:ffff::1"
remote = "2001:db8:ffff::7"
encap_limit = 4
routes = ["10.30.0.0/16", "2001:db8:30::/48"]
# MikroTik: clamp-tcp-mss.
[[tunnel]]
name = "mik"
local = "192.0.2.1"
remote = "198.51.100.7"
mss_clamp = true
routes = ["10.20.0.0/16", "2001:db8:20::/48"]
# Cisco: ip tcp adjust-mss 1300.
[[tunnel]]
name = "cisco6"
local = "2001:db8:ffff::1"
remote = "2001:db8:ffff::8"
key = 7
mss_clamp = 1300
routes = ["10.40.0.0/16"]
{next_hop}
[[neighbor]]
port = "outside"
ip = "2001:db8:ffff::7"
mac = "02:00:00:00:00:fe"
[[neighbor]]
port = "outside"
ip = "2001:db8:ffff::8"
mac = "02:00:00:00:00:fe"
{inside_host}
[[neighbor]]
port = "inside"
ip = "2001:db8:1::2"
mac = "02:00:00:00:00:0a"
"#,
        head = config_head("interop"),
        inside = pcap_port("inside", 0, dir, "inside.pcap", "out-inside.pcap"),
        outside = pcap_port("outside", 1, dir, "outside.pcap", "out-outside.pcap"),
        next_hop = outside_next_hop("198.51.100.0/24"),
        inside_host = inside_host(),
    )
}

/// The frames of two pcap files as multisets: each port's output interleaves what the two rx ports produced,
/// in an order the test does not fix.
fn assert_same_frames(got: &Path, want: &Path, what: &str) {
    let mut g = read_pcap(got);
    let mut w = read_pcap(want);
    assert_eq!(g.len(), w.len(), "{what}: frame count");
    g.sort();
    w.sort();
    for (a, b) in g.iter().zip(&w) {
        assert_eq!(
            a, b,
            "{what}: a frame differs from scapy's\n got {a:02x?}\nwant {b:02x?}"
        );
    }
}

#[test]
fn linux_mikrotik_and_cisco_peers_match_scapy_and_tshark_agrees() {
    let dir = scratch("interop");
    let expect = scapy_vectors(&dir);
    let (_, s) = run_greway(&dir, &config(&dir), &[]);

    assert_same_frames(
        &dir.join("out-outside.pcap"),
        &dir.join("expect-outside.pcap"),
        "outside",
    );
    assert_same_frames(
        &dir.join("out-inside.pcap"),
        &dir.join("expect-inside.pcap"),
        "inside",
    );
    // Every drop under its reason, nothing else dropped.
    let want = expect["drops"].as_object().unwrap();
    for (reason, n) in s["drops"].as_object().unwrap() {
        let w = want.get(reason).and_then(|v| v.as_u64()).unwrap_or(0);
        assert_eq!(n.as_u64().unwrap(), w, "drop reason {reason}: {s}");
    }
    for (name, t) in expect["tunnels"].as_object().unwrap() {
        assert_eq!(s["tunnels"][name]["encap"], t["encap"], "{name}: {s}");
        assert_eq!(s["tunnels"][name]["decap"], t["decap"], "{name}: {s}");
    }
    // The inner packet with encapsulation limit 0 was refused (its ICMPv6 error is among the frames above) and
    // counted against the tunnel.
    assert_eq!(s["tunnels"]["linux6"]["drops"], 1, "{s}");
    assert_eq!(
        s["mempool"]["free_at_start"], s["mempool"]["free_at_end"],
        "no mbuf leaked"
    );

    // tshark on the inputs: the Linux model's header is what Wireshark calls a Tunnel Encapsulation Limit, and
    // the EoIP frame is what it calls MikroTik EoIP.
    let inputs = tshark_fields(
        &dir.join("outside.pcap"),
        Some("ipv6.dstopts"),
        &["ipv6.dstopts.nxt", "ipv6.opt.tel"],
        &[],
    );
    assert!(
        inputs.iter().any(|r| r[0] == "47" && r[1] == "4"),
        "{inputs:?}"
    );
    let eoip = tshark_fields(
        &dir.join("outside.pcap"),
        Some("gre.proto == 0x6400"),
        &["gre.flags.version", "_ws.col.Protocol"],
        &[],
    );
    assert_eq!(eoip.len(), 1, "{eoip:?}");
    assert_eq!(eoip[0][0], "1", "EoIP is GRE version 1");

    // tshark on what greway sent toward the Linux peer: a Destination Options header before GRE carrying the
    // Tunnel Encapsulation Limit (4, or 2 for the inner packet that carried 3).
    let out_outside = dir.join("out-outside.pcap");
    let rows = tshark_fields(
        &out_outside,
        Some("ipv6.dst == 2001:db8:ffff::7 && gre && !icmpv6"),
        &["ipv6.dstopts.nxt", "ipv6.opt.tel", "ipv6.opt.padn"],
        &[],
    );
    assert_eq!(rows.len(), 4, "{rows:?}");
    let mut limits: Vec<&str> = rows
        .iter()
        .map(|r| {
            assert_eq!(r[0].split(',').next(), Some("47"), "next header GRE: {r:?}");
            assert_eq!(
                r[2].split(',').next(),
                Some("00"),
                "PadN of one zero byte: {r:?}"
            );
            r[1].split(',').next().unwrap()
        })
        .collect();
    limits.sort();
    assert_eq!(limits, ["2", "4", "4", "4"]);

    // TCP checksums verified by tshark (not by greway's code) on both sides, and the MSS each SYN carries.
    let tcp = |pcap: &Path| {
        let rows = tshark_fields(
            pcap,
            Some("tcp"),
            &[
                "tcp.checksum.status",
                "tcp.flags.syn",
                "tcp.options.mss_val",
            ],
            &["-o", "tcp.check_checksum:TRUE"],
        );
        for r in &rows {
            assert_eq!(r[0], "1", "TCP checksum good in {}: {r:?}", pcap.display());
        }
        let mut mss: Vec<String> = rows.iter().map(|r| r[2].clone()).collect();
        mss.sort();
        mss
    };
    assert_eq!(
        tcp(&out_outside),
        ["1200", "1300", "1416", "1436", "1460", "1460", "1460"],
        "into the tunnels: clamped SYNs (1436 and 1416 on mik, 1300 on cisco6), ACKs (mik, cisco6) and smaller \
         or unclamped SYNs as they were"
    );
    assert_eq!(
        tcp(&dir.join("out-inside.pcap")),
        ["1300", "1416", "1436"],
        "out of the tunnels"
    );

    // The two ICMPv6 Parameter Problems, as tshark reads them.
    let icmp = |pcap: &Path| {
        tshark_fields(
            pcap,
            Some("icmpv6.type == 4"),
            &["icmpv6.code", "icmpv6.pointer", "icmpv6.checksum.status"],
            &[],
        )
    };
    assert_eq!(
        icmp(&out_outside),
        [vec!["2", "42", "1"]],
        "to the Linux peer: unrecognized option at its type byte"
    );
    assert_eq!(
        icmp(&dir.join("out-inside.pcap")),
        [vec!["0", "44", "1"]],
        "to the host: its encapsulation limit 0, pointing at the limit byte"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
