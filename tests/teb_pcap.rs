//! TEB bridging (gretap) on real DPDK pcap ports, two greways back to back: A bridges an l2 port and VLANs of a
//! trunk into TEB tunnels; B, fed what A sent to the transport network, bridges them out of its own l2 ports.
//! The frames are built by scapy (tests/scapy/teb_frames.py); tshark decodes the GRE/TEB packets between the
//! two; every frame that crosses is compared byte for byte with the one that entered. Also checked on real
//! ports: flooding with copies, learning, no reflection, VLAN tags removed and put back, a pseudowire with GRE
//! checksums and sequence numbers, the MTU of Ethernet payloads, a full MAC table, and every drop's reason.
mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;

const A_MAC: &str = "02:00:00:00:0a:01";
const B_MAC: &str = "02:00:00:00:0b:01";

fn config_a(dir: &Path) -> String {
    format!(
        r#"
{head}
{outside}
address = "192.0.2.1/24"
mac = "{A_MAC}"
{lan}
role = "l2"
{trunk}
role = "l2"
[[tunnel]]
name = "l2-b"
mode = "teb"
local = "192.0.2.1"
remote = "192.0.2.2"
key = 7
[[tunnel]]
name = "l2-pw"
mode = "teb"
local = "192.0.2.1"
remote = "192.0.2.2"
key = 8
checksum = true
sequence = true
[[bridge]]
name = "office"
members = ["lan", "trunk.10", "l2-b"]
[[bridge]]
name = "pw"
members = ["trunk.20", "l2-pw"]
learning = false
[[bridge]]
name = "tiny"
members = ["trunk.30", "trunk.31"]
mac_table_size = 2
[[neighbor]]
port = "outside"
ip = "192.0.2.2"
mac = "{B_MAC}"
"#,
        head = config_head("teb-a"),
        outside = pcap_port("outside", 0, dir, "empty.pcap", "a-outside.pcap"),
        lan = pcap_port("lan", 1, dir, "lan.pcap", "a-lan.pcap"),
        trunk = pcap_port("trunk", 2, dir, "trunk.pcap", "a-trunk.pcap"),
    )
}

fn config_b(dir: &Path) -> String {
    format!(
        r#"
{head}
{outside}
address = "192.0.2.2/24"
mac = "{B_MAC}"
{lan}
role = "l2"
{trunk}
role = "l2"
[[tunnel]]
name = "l2-b"
mode = "teb"
local = "192.0.2.2"
remote = "192.0.2.1"
key = 7
[[tunnel]]
name = "l2-pw"
mode = "teb"
local = "192.0.2.2"
remote = "192.0.2.1"
key = 8
checksum = true
sequence = true
[[bridge]]
name = "office"
members = ["lan", "l2-b"]
[[bridge]]
name = "pw"
members = ["trunk.20", "l2-pw"]
learning = false
[[neighbor]]
port = "outside"
ip = "192.0.2.1"
mac = "{A_MAC}"
"#,
        head = config_head("teb-b"),
        outside = pcap_port("outside", 0, dir, "a-outside.pcap", "b-outside.pcap"),
        lan = pcap_port("lan", 1, dir, "empty.pcap", "b-lan.pcap"),
        trunk = pcap_port("trunk", 2, dir, "empty.pcap", "b-trunk.pcap"),
    )
}

/// `f` without its 802.1Q tag.
fn untag(f: &[u8]) -> Vec<u8> {
    [&f[..12], &f[16..]].concat()
}

/// `f` (tagged) with VLAN `vid` instead (priority 0, as scapy wrote it).
fn retag(f: &[u8], vid: u16) -> Vec<u8> {
    [&f[..14], &vid.to_be_bytes()[..], &f[16..]].concat()
}

/// `f` (untagged) with an 802.1Q tag of VLAN `vid`.
fn tag(f: &[u8], vid: u16) -> Vec<u8> {
    [&f[..12], &[0x81, 0x00], &vid.to_be_bytes()[..], &f[12..]].concat()
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

/// Every drop reason of a stats JSON against `want` (reasons not listed must be zero).
fn assert_drops(s: &serde_json::Value, want: &[(&str, u64)]) {
    let mut want: BTreeMap<&str, u64> = want.iter().copied().collect();
    for (reason, n) in s["drops"].as_object().unwrap() {
        let w = want.remove(reason.as_str()).unwrap_or(0);
        assert_eq!(n.as_u64().unwrap(), w, "drop reason {reason}: {s}");
    }
    assert!(want.is_empty(), "reasons not reported: {want:?}");
}

#[test]
fn two_greways_bridge_frames_through_teb_tunnels_byte_for_byte() {
    let dir = scratch("teb");
    run_scapy("teb_frames.py", &[&dir]);
    let lan = read_pcap(&dir.join("lan.pcap"));
    let trunk = read_pcap(&dir.join("trunk.pcap"));
    assert_eq!((lan.len(), trunk.len()), (6, 11));
    assert_eq!((lan[4].len(), lan[5].len()), (1473, 1472));
    write_pcap(&dir.join("empty.pcap"), &[]);

    // greway A: the ports are polled in order, one burst each (outside: nothing; then "lan"; then "trunk").
    let (_, a) = run_greway(&dir, &config_a(&dir), &[]);

    // Into the tunnels, in order: "lan"'s broadcast, unknown unicast and largest frame (the 1473-byte one is
    // too big), then VLAN 10's broadcast untagged, then the pseudowire's two frames untagged.
    let into_tunnels = [
        lan[0].clone(),
        lan[1].clone(),
        lan[5].clone(),
        untag(&trunk[1]),
        untag(&trunk[2]),
        untag(&trunk[3]),
    ];
    let a_outside = read_pcap(&dir.join("a-outside.pcap"));
    assert_eq!(a_outside.len(), into_tunnels.len(), "{a}");
    // tshark decodes the GRE: TEB (0x6558) with each tunnel's key; the pseudowire's sequence numbers and
    // checksums; the inner Ethernet source addresses.
    let t = tshark_fields(
        &dir.join("a-outside.pcap"),
        None,
        &[
            "ip.dst",
            "ip.flags.df",
            "gre.proto",
            "gre.key",
            "gre.sequence_number",
            "gre.checksum.status",
            "eth.src",
            "frame.len",
        ],
        &["-o", "ip.check_checksum:TRUE"],
    );
    let srcs = [
        "02:aa:00:00:00:01",
        "02:aa:00:00:00:01",
        "02:aa:00:00:00:01",
        "02:cc:00:00:00:03",
        "02:dd:00:00:00:04",
        "02:ee:00:00:00:05",
    ];
    // (Fields with several occurrences, outer first: the inner frames carry IPv4 too.)
    let outer = |s: &String| s.split(',').next().unwrap_or("").to_string();
    for (i, f) in t.iter().enumerate() {
        assert_eq!(outer(&f[0]), "192.0.2.2", "{f:?}");
        assert!(outer(&f[1]) == "1" || outer(&f[1]) == "True", "DF: {f:?}");
        assert_eq!(f[2], "0x6558", "{f:?}");
        let pw = i >= 4;
        assert_eq!(f[3], if pw { "0x00000008" } else { "0x00000007" }, "{f:?}");
        assert_eq!(
            f[4],
            if pw {
                (i - 4).to_string()
            } else {
                String::new()
            },
            "{f:?}"
        );
        assert_eq!(f[5], if pw { "1" } else { "" }, "GRE checksum good: {f:?}");
        assert_eq!(
            f[6],
            format!("{A_MAC},{}", srcs[i]),
            "outer and inner Ethernet sources: {f:?}"
        );
    }
    // The largest frame fills the outside port's 1500-byte MTU exactly: 1472 + IPv4 20 + GRE with key 8.
    assert_eq!(t[2][7], (14 + 1500).to_string());

    // Out of A's own ports: C's frame to A forwarded (untagged), the broadcast's copy; the trunk: the "lan"
    // floods' copies tagged 10 (the too-big frame's included), "tiny"'s VLAN 30 <-> 31 traffic re-tagged.
    let a_lan = read_pcap(&dir.join("a-lan.pcap"));
    assert_eq!(a_lan, vec![untag(&trunk[0]), untag(&trunk[1])]);
    let a_trunk = read_pcap(&dir.join("a-trunk.pcap"));
    let want_trunk = vec![
        tag(&lan[0], 10),
        tag(&lan[1], 10),
        tag(&lan[4], 10),
        tag(&lan[5], 10),
        retag(&trunk[6], 31),
        retag(&trunk[7], 31),
        retag(&trunk[8], 31),
        retag(&trunk[9], 30),
        retag(&trunk[10], 30),
    ];
    assert_eq!(sorted(a_trunk), sorted(want_trunk));

    assert_drops(
        &a,
        &[
            ("bridge_bad_source", 1),
            ("bridge_same_member", 1),
            ("frame_too_big", 1),
            ("l2_no_bridge", 2),
        ],
    );
    let office = &a["bridges"]["office"];
    assert_eq!(office["rx"], 8, "{a}");
    assert_eq!(office["flooded"], 5, "{a}");
    assert_eq!(office["forwarded"], 1, "{a}");
    assert_eq!(office["flood_copies"], 5, "{a}");
    assert_eq!(office["flood_copy_failed"], 0, "{a}");
    // A, X and C (the bad source is not learned).
    assert_eq!(office["learned"], 3, "{a}");
    assert_eq!(office["mac_entries"], 3, "{a}");
    let tiny = &a["bridges"]["tiny"];
    assert_eq!(
        (
            &tiny["learned"],
            &tiny["table_full"],
            &tiny["flooded"],
            &tiny["forwarded"]
        ),
        (&2.into(), &3.into(), &4.into(), &1.into()),
        "{a}"
    );
    assert_eq!(tiny["mac_entries"], 2, "{a}");
    let pw = &a["bridges"]["pw"];
    assert_eq!(
        (&pw["flooded"], &pw["learned"]),
        (&2.into(), &0.into()),
        "{a}"
    );
    assert_eq!(a["tunnels"]["l2-b"]["encap"], 4, "{a}");
    assert_eq!(a["tunnels"]["l2-b"]["drops"], 1, "{a}");
    assert_eq!(a["tunnels"]["l2-pw"]["encap"], 2, "{a}");
    assert_eq!(
        a["mempool"]["free_at_start"], a["mempool"]["free_at_end"],
        "no mbuf leaked"
    );

    // greway B, fed what A sent: every frame leaves B's ports as it entered A's (VLAN 20 tagged again).
    let (_, b) = run_greway(&dir, &config_b(&dir), &[]);
    assert_eq!(
        read_pcap(&dir.join("b-lan.pcap")),
        into_tunnels[..4].to_vec(),
        "{b}"
    );
    assert_eq!(
        read_pcap(&dir.join("b-trunk.pcap")),
        vec![trunk[2].clone(), trunk[3].clone()],
        "{b}"
    );
    assert!(read_pcap(&dir.join("b-outside.pcap")).is_empty());
    assert_eq!(total_drops(&b), 0, "{b}");
    assert_eq!(b["tunnels"]["l2-b"]["decap"], 4, "{b}");
    assert_eq!(b["tunnels"]["l2-pw"]["decap"], 2, "{b}");
    assert_eq!(b["bridges"]["office"]["learned"], 2, "{b}");
    let _ = std::fs::remove_dir_all(&dir);
}
