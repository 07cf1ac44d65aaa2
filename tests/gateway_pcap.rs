//! The GRE gateway on real DPDK pcap ports, judged by independent implementations: scapy builds the inputs and
//! the exact expected outputs (tests/scapy/gateway_vectors.py), tshark decodes what greway wrote, and the
//! tcpdump project's real Cisco captures run through greway configured as either router.
mod common;
use common::*;
use std::path::Path;

fn scapy_vectors(dir: &Path) -> serde_json::Value {
    run_scapy("gateway_vectors.py", &[&dir]);
    serde_json::from_str(&std::fs::read_to_string(dir.join("expect-drops.json")).unwrap()).unwrap()
}

fn gateway_config(dir: &Path, tag: &str, inside_rx: &str, outside_rx: &str) -> String {
    format!(
        r#"
{head}
{inside}
address = ["10.0.0.1/24", "2001:db8:1::1/64"]
mac = "02:00:00:00:00:01"
{outside}
address = "192.0.2.1/24"
mac = "02:00:00:00:00:02"
[[tunnel]]
name = "site-b"
local = "192.0.2.1"
remote = "198.51.100.7"
key = 1001
checksum = true
sequence = true
ttl = 64
tos = "inherit"
routes = ["10.20.0.0/16", "2001:db8:20::/48"]
{next_hop}
{inside_host}
[[neighbor]]
port = "inside"
ip = "2001:db8:1::2"
mac = "02:00:00:00:00:0a"
"#,
        head = config_head(tag),
        inside = pcap_port("inside", 0, dir, inside_rx, "out-inside.pcap"),
        outside = pcap_port("outside", 1, dir, outside_rx, "out-outside.pcap"),
        next_hop = outside_next_hop("198.51.100.0/24"),
        inside_host = inside_host(),
    )
}

#[test]
fn encap_and_decap_match_scapy_byte_for_byte_and_tshark_agrees() {
    let dir = scratch("gw-scapy");
    let expect = scapy_vectors(&dir);
    let d = dir.display().to_string();
    let cfg = gateway_config(
        &dir,
        "scapy",
        &format!("{d}/inside.pcap"),
        &format!("{d}/outside.pcap"),
    );
    let (_, s) = run_greway(&dir, &cfg, &[]);

    // Byte for byte what the independent implementation says.
    let got_out = read_pcap(&dir.join("out-outside.pcap"));
    let want_out = read_pcap(&dir.join("expect-outside.pcap"));
    assert_eq!(got_out.len(), want_out.len(), "encapsulated packet count");
    for (i, (g, w)) in got_out.iter().zip(&want_out).enumerate() {
        assert_eq!(g, w, "encapsulated frame {i} differs from scapy's");
    }
    let got_in = read_pcap(&dir.join("out-inside.pcap"));
    let want_in = read_pcap(&dir.join("expect-inside.pcap"));
    assert_eq!(got_in.len(), want_in.len(), "decapsulated packet count");
    for (i, (g, w)) in got_in.iter().zip(&want_in).enumerate() {
        assert_eq!(g, w, "decapsulated frame {i} differs from scapy's");
    }

    // Every malformed or foreign packet is counted under its reason, and nothing else was dropped.
    let want_drops = expect["drops"].as_object().unwrap();
    let got_drops = s["drops"].as_object().unwrap();
    for (reason, n) in got_drops {
        let want = want_drops.get(reason).and_then(|v| v.as_u64()).unwrap_or(0);
        assert_eq!(n.as_u64().unwrap(), want, "drop reason {reason}: {s}");
    }
    assert_eq!(s["tunnels"]["site-b"]["encap"], expect["encap"]);
    assert_eq!(s["tunnels"]["site-b"]["decap"], expect["decap"]);
    assert_eq!(
        s["mempool"]["free_at_start"], s["mempool"]["free_at_end"],
        "no mbuf leaked"
    );
    // Byte counters (the fast pass counts what it rewrites as received and as sent) against the frames and the
    // PMD's own counts.
    let bytes = |v: &[Vec<u8>]| v.iter().map(|f| f.len() as u64).sum::<u64>();
    let sent_in = read_pcap(&dir.join("inside.pcap"));
    let sent_out = read_pcap(&dir.join("outside.pcap"));
    assert_eq!(s["ports"]["inside"]["rx_bytes"], bytes(&sent_in), "{s}");
    assert_eq!(s["ports"]["outside"]["rx_bytes"], bytes(&sent_out), "{s}");
    assert_eq!(s["ports"]["outside"]["tx_bytes"], bytes(&got_out), "{s}");
    assert_eq!(s["ports"]["inside"]["tx_bytes"], bytes(&got_in), "{s}");
    assert_eq!(s["ports"]["outside"]["hw"]["obytes"], bytes(&got_out));

    // tshark (Wireshark's dissectors) on what greway wrote: valid outer IPv4 and GRE checksums, key, sequence.
    let rows = tshark_fields(
        &dir.join("out-outside.pcap"),
        None,
        &[
            "ip.checksum.status",
            "gre.checksum.status",
            "gre.key",
            "gre.sequence_number",
        ],
        &["-o", "ip.check_checksum:TRUE"],
    );
    assert_eq!(rows.len(), got_out.len());
    for (i, r) in rows.iter().enumerate() {
        assert!(
            r[0].split(',').all(|v| v == "1"),
            "frame {i}: IPv4 checksum status {:?} (1 = good)",
            r[0]
        );
        assert_eq!(r[1], "1", "frame {i}: GRE checksum status (1 = good)");
        assert_eq!(r[2], "0x000003e9", "frame {i}: key 1001");
        assert_eq!(
            r[3],
            i.to_string(),
            "frame {i}: sequence numbers 0, 1, 2, ..."
        );
    }
    let inner = tshark_fields(&dir.join("out-inside.pcap"), None, &["gre"], &[]);
    assert!(
        inner.iter().all(|r| r[0].is_empty()),
        "nothing GRE left on the inside"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Run various_gre.pcap (Cisco routers 10.172.64.6 <-> .7, key 0x28) on the outside port of a greway that
/// plays router `us`.
fn run_as_cisco_router(
    us: &str,
    peer: &str,
    tag: &str,
) -> (serde_json::Value, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let dir = scratch(tag);
    let cap = peer_captures().join("various_gre.pcap");
    let empty = dir.join("empty.pcap");
    write_pcap(&empty, &[]);
    let (host, far) = if us.ends_with(".6") {
        ("172.17.1.54", "172.17.1.55/32")
    } else {
        ("172.17.1.55", "172.17.1.54/32")
    };
    let cfg = format!(
        r#"
{head}
{inside}
address = "172.17.1.1/24"
mac = "02:00:00:00:00:01"
{outside}
address = "{us}/24"
mac = "02:00:00:00:00:02"
[[tunnel]]
name = "cisco"
local = "{us}"
remote = "{peer}"
key = 0x28
routes = ["{far}"]
[[neighbor]]
port = "outside"
ip = "{peer}"
mac = "02:00:00:00:00:fe"
[[neighbor]]
port = "inside"
ip = "{host}"
mac = "02:00:00:00:00:0a"
"#,
        head = config_head(tag),
        inside = pcap_port("inside", 0, &dir, &empty, "out-inside.pcap"),
        outside = pcap_port("outside", 1, &dir, &cap, "out-outside.pcap"),
    );
    let (_, s) = run_greway(&dir, &cfg, &[]);
    let out_in = read_pcap(&dir.join("out-inside.pcap"));
    let out_out = read_pcap(&dir.join("out-outside.pcap"));
    let _ = std::fs::remove_dir_all(&dir);
    (s, out_in, out_out)
}

#[test]
fn cisco_capture_as_router_6_reflects_keepalives_and_decapsulates_pings() {
    let (s, inside, outside) = run_as_cisco_router("10.172.64.6", "10.172.64.7", "cisco6");
    let t = &s["tunnels"]["cisco"];
    // Frames 11, 41, 64, 87: .7's keepalives (CiscoMetaData + IP(.6 -> .7)/GRE(0)) are reflected to .7.
    assert_eq!(t["keepalives_reflected"], 4, "{s}");
    // Frames 17, 47, 71, 93: replies to .6's own keepalives, consumed.
    assert_eq!(s["drops"]["keepalive_consumed"], 4, "{s}");
    // Frames 26..34: five echo replies 172.17.1.55 -> .54 inside CiscoMetaData, decapsulated; frame 73, a PIM
    // hello to 224.0.0.13, is decapsulated too but not routed (no multicast routing).
    assert_eq!(t["decap"], 6, "{s}");
    assert_eq!(inside.len(), 5);
    for f in &inside {
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(&f[14 + 12..14 + 20], &[172, 17, 1, 55, 172, 17, 1, 54]);
        assert_eq!(f[14 + 20], 0, "ICMP echo reply");
        assert_eq!(f[14 + 8], 254, "TTL 255 - 1");
    }
    // Frame 63: CDP from .7 over GRE.
    assert_eq!(s["drops"]["unsupported_gre_protocol"], 1, "{s}");
    // The reflected keepalives are the inner packets, unchanged, sent to the peer.
    assert_eq!(outside.len(), 4);
    for f in &outside {
        assert_eq!(&f[14 + 12..14 + 20], &[10, 172, 64, 6, 10, 172, 64, 7]);
        assert_eq!(&f[14 + 22..14 + 24], &[0, 0], "GRE protocol 0: a keepalive");
    }
    // STP and loopback frames are not IP; the 15 GRE frames sent by .6 itself are not for us.
    assert_eq!(s["drops"]["unsupported_ethertype"], 70, "{s}");
    assert_eq!(
        s["drops"]["no_route"], 16,
        "15 from .6 + the PIM hello: {s}"
    );
    assert_eq!(s["mempool"]["free_at_start"], s["mempool"]["free_at_end"]);
}

#[test]
fn cisco_capture_as_router_7_counts_cdp_as_unsupported() {
    let (s, inside, outside) = run_as_cisco_router("10.172.64.7", "10.172.64.6", "cisco7");
    let t = &s["tunnels"]["cisco"];
    assert_eq!(t["keepalives_reflected"], 4, "frames 16, 46, 70, 92: {s}");
    assert_eq!(
        s["drops"]["keepalive_consumed"], 4,
        "frames 12, 42, 65, 88: {s}"
    );
    assert_eq!(
        t["decap"], 6,
        "echo requests 25..33 and the PIM hello of frame 67: {s}"
    );
    assert_eq!(inside.len(), 5);
    assert!(inside.iter().all(|f| f[14 + 20] == 8), "echo requests");
    assert_eq!(
        s["drops"]["unsupported_gre_protocol"], 1,
        "frame 49: CDP over GRE: {s}"
    );
    assert_eq!(outside.len(), 4);
    assert_eq!(s["mempool"]["free_at_start"], s["mempool"]["free_at_end"]);
}

#[test]
fn malformed_peer_captures_never_crash_and_are_all_counted() {
    for name in [
        "gre-heapoverflow-1.pcap",
        "gre-heapoverflow-2.pcap",
        "pptp.pcap",
        "erspan-type-ii-1.pcap",
        "wccp_redirect_gre.pcap",
    ] {
        let dir = scratch(&format!("peer-{}", name.trim_end_matches(".pcap")));
        let cap = peer_captures().join(name);
        // Counted by tshark: these files have records pcap-file rejects (orig_len > snap_len).
        let frames = tshark_fields(&cap, None, &["frame.number"], &[]).len() as u64;
        let d = dir.display();
        let cfg = gateway_config(
            &dir,
            &format!("peer{}", name.len()),
            &format!("{d}/empty.pcap"),
            &cap.display().to_string(),
        );
        write_pcap(&dir.join("empty.pcap"), &[]);
        let (_, s) = run_greway(&dir, &cfg, &[]);
        let rx = s["ports"]["outside"]["rx"].as_u64().unwrap();
        let tx: u64 = ["inside", "outside"]
            .iter()
            .map(|p| s["ports"][p]["tx"].as_u64().unwrap())
            .sum();
        let drops: u64 = s["drops"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(rx, frames, "{name}: every frame received");
        assert_eq!(
            tx + drops,
            rx,
            "{name}: every frame is either sent or dropped with a reason: {s}"
        );
        assert_eq!(
            tx, 0,
            "{name}: nothing of these foreign captures is forwarded: {s}"
        );
        assert_eq!(
            s["mempool"]["free_at_start"], s["mempool"]["free_at_end"],
            "{name}: no leak"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn byte_counters_of_bursts_the_fast_pass_rewrites_match_the_frames_and_the_pmd() {
    // A plain keyed tunnel, the fast pass's shape both ways: 300 frames of every size into the tunnel, every
    // 29th one with TTL 1 (the general rules answer it: the bursts mix planned and processed packets), and 300
    // GRE frames from the peer to the inside host.
    let dir = scratch("gw-fast-bytes");
    let host = [0x02, 0, 0, 0, 0, 0x0a];
    let gw = [0x02, 0, 0, 0, 0, 0x01];
    let inside: Vec<Vec<u8>> = (0..300u16)
        .map(|i| {
            let payload = vec![i as u8; usize::from(i % 61)];
            let mut f = udp4_frame(host, gw, [10, 0, 0, 2], [10, 20, 1, i as u8], i, &payload);
            if i % 29 == 0 {
                f[14 + 8] = 1;
                f[14 + 10..14 + 12].fill(0);
                let ck = ipv4_checksum(&f[14..34]);
                f[14 + 10..14 + 12].copy_from_slice(&ck.to_be_bytes());
            }
            f
        })
        .collect();
    let outside: Vec<Vec<u8>> = (0..300u16)
        .map(|i| {
            let payload = vec![i as u8; usize::from(i % 53)];
            let inner = udp4_frame(gw, host, [10, 20, 2, i as u8], [10, 0, 0, 2], i, &payload);
            gre4_frame(
                [198, 51, 100, 7],
                [192, 0, 2, 1],
                &gre_header(0, 0x0800, Some(42), &inner[14..]),
            )
        })
        .collect();
    write_pcap(&dir.join("inside.pcap"), &inside);
    write_pcap(&dir.join("outside.pcap"), &outside);
    let cfg = format!(
        "{head}\n{inside}\naddress = \"10.0.0.1/24\"\nmac = \"02:00:00:00:00:01\"\n{outside}\n\
         address = \"192.0.2.1/24\"\nmac = \"02:00:00:00:00:02\"\n[[tunnel]]\nname = \"t1\"\n\
         local = \"192.0.2.1\"\nremote = \"198.51.100.7\"\nkey = 42\nroutes = [\"10.20.0.0/16\"]\n\
         {next_hop}\n{host}\n",
        head = config_head("gw-fast-bytes"),
        inside = pcap_port("inside", 0, &dir, "inside.pcap", "out-inside.pcap"),
        outside = pcap_port("outside", 1, &dir, "outside.pcap", "out-outside.pcap"),
        next_hop = outside_next_hop("198.51.100.0/24"),
        host = inside_host(),
    );
    let (_, s) = run_greway(&dir, &cfg, &[]);
    let got_out = read_pcap(&dir.join("out-outside.pcap"));
    let got_in = read_pcap(&dir.join("out-inside.pcap"));
    let ttl_1 = inside.len().div_ceil(29) as u64;
    assert_eq!(s["tunnels"]["t1"]["encap"], 300 - ttl_1, "{s}");
    assert_eq!(s["tunnels"]["t1"]["decap"], 300, "{s}");
    assert_eq!(s["general_path_packets"], ttl_1, "{s}");
    assert_eq!(got_out.len() as u64, 300 - ttl_1);
    // The inside port sent the decapsulated packets and the ICMP time-exceeded answers.
    assert_eq!(got_in.len() as u64, 300 + ttl_1);
    let bytes = |v: &[Vec<u8>]| v.iter().map(|f| f.len() as u64).sum::<u64>();
    for (port, rx, tx) in [
        ("inside", &inside, &got_in),
        ("outside", &outside, &got_out),
    ] {
        let p = &s["ports"][port];
        assert_eq!(p["rx_bytes"], bytes(rx), "{port} rx bytes: {s}");
        assert_eq!(p["tx_bytes"], bytes(tx), "{port} tx bytes: {s}");
        assert_eq!(p["hw"]["ibytes"], bytes(rx), "{port}: the PMD's rx bytes");
        assert_eq!(p["hw"]["obytes"], bytes(tx), "{port}: the PMD's tx bytes");
    }
    assert_eq!(s["mempool"]["free_at_start"], s["mempool"]["free_at_end"]);
}
