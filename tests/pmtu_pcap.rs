//! Outer path MTU discovery on real DPDK pcap ports: scapy (tests/scapy/pmtu.py) builds a router's ICMP
//! fragmentation needed / packet too big about greway's own GRE packets (and about packets greway never sent),
//! then big inner packets; scapy and tshark decode what greway sent back and into the tunnels.
mod common;
use common::*;
use std::path::Path;

fn scapy(mode: &str, dir: &Path) -> String {
    let out = run_scapy("pmtu.py", &[&mode, &dir]);
    String::from_utf8(out.stdout).unwrap()
}

/// The outside port is listed first: the worker polls ports in order, so the ICMP errors of a poll round are
/// handled before that round's inside packets.
fn config(dir: &Path) -> String {
    format!(
        r#"
{head}
{outside}
address = ["192.0.2.1/24", "2001:db8:ff::1/64"]
mac = "02:00:00:00:00:02"
{inside}
address = ["10.0.0.1/24", "2001:db8:1::1/64"]
mac = "02:00:00:00:00:01"
[[tunnel]]
name = "site-b"
local = "192.0.2.1"
remote = "198.51.100.7"
key = 1001
routes = ["10.20.0.0/16", "2001:db8:20::/48"]
[[tunnel]]
name = "site-c"
local = "192.0.2.1"
remote = "198.51.100.8"
key = 2002
routes = ["10.30.0.0/16"]
[[tunnel]]
name = "site-v6"
local = "2001:db8:ff::1"
remote = "2001:db8:ee::7"
routes = ["10.40.0.0/16"]
{next_hop}
[[neighbor]]
port = "outside"
ip = "2001:db8:ff::fe"
mac = "02:00:00:00:00:fe"
{inside_host}
[[neighbor]]
port = "inside"
ip = "2001:db8:1::2"
mac = "02:00:00:00:00:0a"
[[route]]
prefix = "2001:db8:ee::/48"
via = "2001:db8:ff::fe"
port = "outside"
"#,
        head = config_head("pmtu"),
        outside = pcap_port("outside", 0, dir, "outside.pcap", "out-outside.pcap"),
        inside = pcap_port("inside", 1, dir, "inside.pcap", "out-inside.pcap"),
        next_hop = outside_next_hop("198.51.100.0/24"),
        inside_host = inside_host(),
    )
}

#[test]
fn icmp_about_our_gre_packets_lowers_the_tunnel_mtu_for_inner_traffic() {
    let dir = scratch("pmtu");
    scapy("gen", &dir);
    let expect: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expect.json")).unwrap()).unwrap();
    let (_, s) = run_greway(&dir, &config(&dir), &[]);

    // Every ICMP error is counted under the reason scapy's model gives it, and nothing else was dropped.
    let want = expect["drops"].as_object().unwrap();
    for (reason, n) in s["drops"].as_object().unwrap() {
        let w = want.get(reason).and_then(|v| v.as_u64()).unwrap_or(0);
        assert_eq!(n.as_u64().unwrap(), w, "drop reason {reason}: {s}");
    }
    // The path MTU each tunnel ends with: lowered by the errors that quoted it, unchanged otherwise.
    for (t, pmtu) in expect["pmtu"].as_object().unwrap() {
        assert_eq!(&s["tunnels"][t]["pmtu"], pmtu, "{t}: {s}");
    }

    let got: serde_json::Value = serde_json::from_str(&scapy("check", &dir)).unwrap();
    // Back to the host: fragmentation needed with site-b's learned inner MTU (1400 - 20 - 8), packet too big
    // for the IPv6 packet into site-b, fragmentation needed with site-v6's (1400 - 40 - 4).
    let inside = got["inside"].as_array().unwrap();
    assert_eq!(inside.len(), 3, "{got}");
    let want_inside = [
        ("frag_needed", 1372, "10.20.1.1"),
        ("packet_too_big", 1372, "2001:db8:20::9"),
        ("frag_needed", 1356, "10.40.1.1"),
    ];
    for (g, (kind, mtu, quoted)) in inside.iter().zip(want_inside) {
        assert_eq!(g["kind"], kind, "{g}");
        assert_eq!(g["mtu"], mtu, "{g}");
        assert_eq!(g["quoted_dst"], quoted, "{g}");
        if kind == "frag_needed" {
            assert_eq!(g["checksum_ok"], true, "{g}");
            assert_eq!(g["to"], "10.0.0.2");
        }
    }
    // Into the tunnels: the non-DF packet in two fragments that fit, the packet of exactly the learned MTU,
    // and site-c's 1472-byte packet (its MTU untouched by the errors about other packets).
    let outside = got["outside"].as_array().unwrap();
    assert_eq!(outside.len(), 4, "{got}");
    // (The second fragment leaves with the worker's deferred packets, after the burst: match by destination.)
    let to = |dst: &str| -> Vec<&serde_json::Value> {
        outside.iter().filter(|p| p["inner_dst"] == dst).collect()
    };
    let frags = to("10.20.1.2");
    assert_eq!(frags.len(), 2, "{got}");
    for f in &frags {
        assert_eq!(f["dst"], "198.51.100.7");
        assert_eq!(f["key"], 1001);
        assert!(f["len"].as_u64().unwrap() <= 1400, "{f}");
    }
    assert_eq!(frags[0]["inner_mf"], true);
    assert_eq!(frags[1]["inner_mf"], false);
    assert_eq!(
        frags[0]["inner_len"].as_u64().unwrap() + frags[1]["inner_len"].as_u64().unwrap() - 20,
        1400,
        "the fragments carry the whole packet: {got}"
    );
    let exact = to("10.20.1.3");
    assert_eq!((exact.len(), &exact[0]["len"]), (1, &1400.into()), "{got}");
    let c = to("10.30.1.1");
    assert_eq!(c.len(), 1, "{got}");
    assert_eq!(
        (&c[0]["dst"], &c[0]["key"], &c[0]["len"]),
        (&"198.51.100.8".into(), &2002.into(), &1500.into())
    );

    // tshark's dissectors agree on the MTUs greway put in its errors.
    let rows = tshark_fields(
        &dir.join("out-inside.pcap"),
        None,
        &["icmp.mtu", "icmpv6.mtu", "icmp.checksum.status"],
        &[],
    );
    let mtus: Vec<(String, String)> = rows.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(
        mtus,
        [
            ("1372".into(), String::new()),
            (String::new(), "1372".into()),
            ("1356".into(), String::new())
        ],
        "{rows:?}"
    );
    assert_eq!(s["mempool"]["free_at_start"], s["mempool"]["free_at_end"]);
    let _ = std::fs::remove_dir_all(&dir);
}
