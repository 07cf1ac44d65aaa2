//! ERSPAN out (`[[mirror]]`) on real DPDK pcap ports. greway encapsulates inside traffic into an IP tunnel while
//! two mirrors copy it: the inside port's received frames into an ERSPAN type II session, and the outside
//! port's sent frames (the GRE packets, as sent) into a type III session. Then:
//! - tshark decodes the ERSPAN sessions greway wrote (version, session ID, GRE sequence numbers, index,
//!   hardware ID, direction, truncation, outer IPv4 checksums), and scapy (tests/scapy/erspan_inner.py)
//!   decodes them again and gives the mirrored frames, which must be the inside frames and the sent GRE
//!   packets byte for byte (cut to the session's MTU, with the T bit, when longer);
//! - the same input without the mirrors gives the same originals, byte for byte, and the same counters;
//! - a second greway whose ERSPAN tunnels deliver those sessions to l2 ports (greway's ERSPAN in) sends out
//!   exactly the mirrored frames.
mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
/// The next hop's MAC, which is also the far end's outside port MAC.
const NH_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
/// Session of the type II mirror (inside rx) and of the type III mirror (outside tx).
const S2: u64 = 123;
const S3: u64 = 321;
/// Largest frame each session carries whole: the port MTU 1500 - IPv4 20 - GRE 8 - ERSPAN 8 / 12.
const MTU2: usize = 1500 - 36;
const MTU3: usize = 1500 - 40;

fn config(dir: &Path, tag: &str, mirrors: bool) -> String {
    let spans = if mirrors {
        [
            erspan_sender(
                "span2",
                "198.51.100.50",
                "session = 123, version = 1, index = 7",
            ),
            erspan_sender(
                "span3",
                "198.51.100.60",
                "session = 321, version = 2, hwid = 5",
            ),
            mirror("inside", "rx", "span2"),
            mirror("outside", "tx", "span3"),
        ]
        .join("\n")
            + "\n"
    } else {
        String::new()
    };
    format!(
        "\n{}\n{}\n{spans}",
        config_head(tag),
        encap_gateway(dir, "inside.pcap")
    )
}

/// The far end: greway's ERSPAN in, one tunnel per session, each delivering to an l2 port.
fn far_config(dir: &Path) -> String {
    format!(
        r#"
{head}
{outside}
address = ["198.51.100.50/24", "198.51.100.60/24"]
mac = "02:00:00:00:00:fe"
{probe2}
role = "l2"
{probe3}
role = "l2"
{from_span2}
{from_span3}
[[neighbor]]
port = "outside"
ip = "198.51.100.1"
mac = "02:00:00:00:00:02"
[[route]]
prefix = "0.0.0.0/0"
via = "198.51.100.1"
port = "outside"
"#,
        head = config_head("mirror-far"),
        outside = pcap_port("outside", 0, dir, "outside.pcap", "out-outside.pcap"),
        probe2 = pcap_port("probe2", 1, dir, "empty.pcap", "out-probe2.pcap"),
        probe3 = pcap_port("probe3", 2, dir, "empty.pcap", "out-probe3.pcap"),
        from_span2 = erspan_receiver(
            "from-span2",
            "198.51.100.50",
            "192.0.2.1",
            "session = 123",
            "probe2"
        ),
        from_span3 = erspan_receiver(
            "from-span3",
            "198.51.100.60",
            "192.0.2.1",
            "session = 321",
            "probe3"
        ),
    )
}

/// The inside input: UDP frames to the tunnel's prefix of many sizes (the largest longer than both sessions'
/// MTUs, but not the IP tunnel's 1472), an 802.1Q-tagged one, and an LLDP frame greway drops (mirrored
/// anyway: the rx mirror copies frames as received).
fn inside_frames() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = (0..40usize)
        .map(|i| {
            let n = [18, 100, 400, 1000, 1440][i % 5];
            let payload: Vec<u8> = (0..n).map(|b| (b + i) as u8).collect();
            udp4_frame(
                HOST_MAC,
                GW_MAC,
                [10, 0, 0, 2],
                [10, 20, (i / 256) as u8, i as u8],
                4000 + i as u16,
                &payload,
            )
        })
        .collect();
    assert_eq!(v[4].len(), 14 + 20 + 8 + 1440);
    assert!(v[4].len() > MTU2 && v[4].len() + 28 > MTU3);
    let mut tagged = v[0].clone();
    tagged.splice(12..12, [0x81, 0x00, 0xa0, 0x64]);
    v.insert(7, tagged);
    let mut lldp = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e];
    lldp.extend_from_slice(&HOST_MAC);
    lldp.extend_from_slice(&[0x88, 0xcc]);
    lldp.extend_from_slice(&[0x02, 0x07, 0x04, 2, 0, 0, 0, 0, 0x0a, 0, 0]);
    lldp.resize(60, 0);
    v.insert(12, lldp);
    v
}

/// The GRE protocol of an Ethernet + IPv4 (no options) + GRE frame (0 for anything else).
fn gre_proto(f: &[u8]) -> u16 {
    if f.len() < 38 || f[12..14] != [0x08, 0x00] || f[23] != 47 {
        return 0;
    }
    u16::from_be_bytes([f[36], f[37]])
}

struct Decoded {
    kind: u64,
    session: u64,
    seq: u64,
    t: u64,
    inner: Vec<u8>,
    v: Value,
}

fn scapy_erspan(pcap: &Path) -> Vec<Decoded> {
    let out = run_scapy("erspan_inner.py", &[&pcap]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"].is_u64())
        .map(|v| {
            let h = v["inner"].as_str().unwrap();
            Decoded {
                kind: v["type"].as_u64().unwrap(),
                session: v["session"].as_u64().unwrap(),
                seq: v["seq"].as_u64().expect("a GRE sequence number"),
                t: v["t"].as_u64().unwrap(),
                inner: unhex(h),
                v,
            }
        })
        .collect()
}

/// A mirror entry of the stats JSON by port.
fn mirror_of<'a>(s: &'a Value, port: &str) -> &'a Value {
    s["mirrors"]
        .as_array()
        .expect("mirrors in the stats")
        .iter()
        .find(|m| m["port"] == port)
        .unwrap_or_else(|| panic!("mirror of {port}: {s}"))
}

#[test]
fn erspan_sessions_carry_the_frames_as_received_and_as_sent() {
    let input = inside_frames();
    let n = input.len();
    let routed = n - 1;

    // Without mirrors: the reference output.
    let plain = scratch("mirror-plain");
    write_pcap(&plain.join("inside.pcap"), &input);
    write_pcap(&plain.join("empty.pcap"), &[]);
    let (_, s0) = run_greway(&plain, &config(&plain, "mirror-plain", false), &[]);
    let reference = read_pcap(&plain.join("out-outside.pcap"));
    assert_eq!(reference.len(), routed, "{s0}");
    assert!(reference.iter().all(|f| gre_proto(f) == 0x0800));

    // With them.
    let dir = scratch("mirror");
    write_pcap(&dir.join("inside.pcap"), &input);
    write_pcap(&dir.join("empty.pcap"), &[]);
    let (_, s) = run_greway(&dir, &config(&dir, "mirror", true), &[]);
    let out_path = dir.join("out-outside.pcap");
    let out = read_pcap(&out_path);
    let originals: Vec<Vec<u8>> = out
        .iter()
        .filter(|f| gre_proto(f) == 0x0800)
        .cloned()
        .collect();
    assert_eq!(
        originals, reference,
        "the originals are sent as without mirrors, byte for byte"
    );
    assert_eq!(out.iter().filter(|f| gre_proto(f) == 0x88be).count(), n);
    assert_eq!(
        out.iter().filter(|f| gre_proto(f) == 0x22eb).count(),
        routed
    );
    assert_eq!(out.len(), routed + n + routed, "nothing else leaves: {s}");

    // Counters: the originals' as without mirrors; the copies per mirror; the port counts everything sent.
    assert_eq!(
        s["drops"], s0["drops"],
        "the same drops: only the LLDP frame's"
    );
    assert_eq!(total_drops(&s), 1, "{s}");
    assert_eq!(s["tunnels"]["t1"]["encap"], routed as u64);
    assert_eq!(s["ports"]["outside"]["tx"], out.len() as u64);
    let m2 = mirror_of(&s, "inside");
    let m3 = mirror_of(&s, "outside");
    assert_eq!(
        (
            &m2["direction"],
            &m2["tunnel"],
            &m2["session"],
            &m2["version"]
        ),
        (
            &Value::from("rx"),
            &Value::from("span2"),
            &Value::from(S2),
            &Value::from(1)
        )
    );
    assert_eq!(
        (&m3["direction"], &m3["version"]),
        (&Value::from("tx"), &Value::from(2))
    );
    let big = input.iter().filter(|f| f.len() > MTU2).count() as u64;
    assert_eq!(m2["packets"], n as u64, "{s}");
    assert_eq!(
        m2["bytes"],
        input.iter().map(|f| f.len() as u64).sum::<u64>()
    );
    assert_eq!(m2["truncated"], big);
    assert_eq!(m3["packets"], routed as u64);
    assert_eq!(
        m3["bytes"],
        reference.iter().map(|f| f.len() as u64).sum::<u64>()
    );
    assert_eq!(m3["truncated"], big);
    for m in [m2, m3] {
        for r in ["no_mbuf", "no_neighbor", "queue_full", "tx_full"] {
            assert_eq!(m[r], 0, "{r}: {s}");
        }
    }
    assert_eq!(s["tunnels"]["span2"]["encap"], n as u64);
    assert_eq!(
        s["mempool"]["free_at_start"], s["mempool"]["free_at_end"],
        "no mbuf leaked"
    );

    // tshark: both sessions, in order, numbered from 0, with their header fields; every outer IPv4 header
    // checksum good.
    let rows = tshark_fields(
        &out_path,
        Some("erspan"),
        &[
            "erspan.version",
            "erspan.spanid",
            "gre.sequence_number",
            "erspan.index",
            "erspan.hw",
            "erspan.direction",
            "erspan.truncated",
            "ip.checksum.status",
            "ip.dst",
        ],
        &["-o", "ip.check_checksum:TRUE"],
    );
    assert_eq!(rows.len(), n + routed);
    let first = |s: &String| s.split(',').next().unwrap_or("").to_string();
    let (mut seq2, mut seq3) = (0u64, 0u64);
    for r in &rows {
        let ip_dst = first(&r[8]);
        assert_eq!(first(&r[7]), "1", "outer IPv4 checksum: {r:?}");
        let seq: u64 = r[2].parse().unwrap();
        match r[1].as_str() {
            "123" => {
                assert_eq!((r[0].as_str(), r[3].as_str()), ("1", "7"), "{r:?}");
                assert_eq!(ip_dst, "198.51.100.50");
                assert_eq!(seq, seq2, "type II numbered in order");
                seq2 += 1;
            }
            "321" => {
                assert_eq!((r[0].as_str(), r[4].as_str()), ("2", "5"), "{r:?}");
                assert_eq!(r[5], "1", "egress: {r:?}");
                assert_eq!(ip_dst, "198.51.100.60");
                assert_eq!(seq, seq3, "type III numbered in order");
                seq3 += 1;
            }
            other => panic!("unexpected session {other}: {r:?}"),
        }
    }
    assert_eq!((seq2, seq3), (n as u64, routed as u64));
    let truncated = rows
        .iter()
        .filter(|r| r[6] == "1" || r[6] == "True")
        .count() as u64;
    assert_eq!(
        truncated,
        2 * big,
        "tshark sees the T bit of the cut copies"
    );

    // scapy: the mirrored frames, byte for byte (cut to the session's MTU when longer).
    let dec = scapy_erspan(&out_path);
    let d2: Vec<&Decoded> = dec.iter().filter(|d| d.kind == 2).collect();
    let d3: Vec<&Decoded> = dec.iter().filter(|d| d.kind == 3).collect();
    assert_eq!((d2.len(), d3.len()), (n, routed));
    for (i, (d, f)) in d2.iter().zip(&input).enumerate() {
        assert_eq!(
            (d.session, d.seq, d.v["index"].as_u64()),
            (S2, i as u64, Some(7))
        );
        assert_eq!(d.inner, f[..f.len().min(MTU2)], "type II copy {i}");
        assert_eq!(d.t, u64::from(f.len() > MTU2));
        // The tagged frame keeps its tag, and the header says so (En 3, its VLAN).
        let tagged = f[12..14] == [0x81, 0x00];
        assert_eq!(d.v["en"].as_u64(), Some(if tagged { 3 } else { 0 }));
        assert_eq!(d.v["vlan"].as_u64(), Some(if tagged { 100 } else { 0 }));
    }
    for (i, (d, f)) in d3.iter().zip(&reference).enumerate() {
        assert_eq!((d.session, d.seq), (S3, i as u64));
        assert_eq!(
            (d.v["hwid"].as_u64(), d.v["d"].as_u64()),
            (Some(5), Some(1))
        );
        assert_eq!(
            (d.v["ft"].as_u64(), d.v["gra"].as_u64()),
            (Some(0), Some(0))
        );
        assert_eq!(
            d.inner,
            f[..f.len().min(MTU3)],
            "type III copy {i}: the GRE packet as sent"
        );
        assert_eq!(d.t, u64::from(f.len() > MTU3));
    }
    // Timestamps: 100 us units of the wall clock now (within a day), non-decreasing.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
        / 100;
    let ts: Vec<u64> = d3
        .iter()
        .map(|d| d.v["timestamp"].as_u64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
    let day = 24 * 3600 * 10_000u64;
    assert!(
        (now & 0xffff_ffff).abs_diff(ts[0]) < day || now.abs_diff(ts[0]) > (1 << 32) - day,
        "timestamp {} against now {}",
        ts[0],
        now & 0xffff_ffff
    );

    // greway's ERSPAN out into greway's ERSPAN in: the far end delivers the mirrored frames unchanged.
    let far = scratch("mirror-far");
    let erspan: Vec<Vec<u8>> = out
        .iter()
        .filter(|f| matches!(gre_proto(f), 0x88be | 0x22eb))
        .cloned()
        .collect();
    assert!(erspan.iter().all(|f| f[..6] == NH_MAC));
    write_pcap(&far.join("outside.pcap"), &erspan);
    write_pcap(&far.join("empty.pcap"), &[]);
    let (_, fs) = run_greway(&far, &far_config(&far), &[]);
    let got2 = read_pcap(&far.join("out-probe2.pcap"));
    let got3 = read_pcap(&far.join("out-probe3.pcap"));
    let want2: Vec<Vec<u8>> = d2.iter().map(|d| d.inner.clone()).collect();
    let want3: Vec<Vec<u8>> = d3.iter().map(|d| d.inner.clone()).collect();
    assert_eq!(got2, want2, "session 123 out of probe2: {fs}");
    assert_eq!(got3, want3, "session 321 out of probe3: {fs}");
    // Whole frames are the originals themselves.
    for (g, f) in got2.iter().zip(&input).filter(|(_, f)| f.len() <= MTU2) {
        assert_eq!(g, f);
    }
    assert_eq!(total_drops(&fs), 0, "{fs}");
    assert_eq!(fs["tunnels"]["from-span2"]["decap"], n as u64);
    assert_eq!(fs["tunnels"]["from-span3"]["decap"], routed as u64);
}

/// `greway gen --encap erspan`: its type II and III sessions decode in tshark (session, version, GRE sequence
/// numbers per tunnel, good IPv4 and UDP checksums of the mirrored frame), and greway's ERSPAN in delivers the
/// mirrored UDP frames.
#[test]
fn gen_sends_erspan_that_tshark_decodes_and_greway_delivers() {
    for (version, session) in [(1u64, 300u64), (2, 301)] {
        let tag = format!("mirror-gen{version}");
        let (dir, _, _) = gen_to_pcap(
            &tag,
            r#"address = "198.51.100.7/24""#,
            &format!(
                r#"encap = "erspan"
erspan_version = {version}
erspan_session = {session}
outer_src = "198.51.100.60"
outer_dst = "192.0.2.1"
dst_mac = "02:00:00:00:00:02"
tunnels = 2
flows = 2
sizes = [128, 700]
count = 100"#
            ),
        );
        let sent = read_pcap(&dir.join("gen.pcap"));
        assert_eq!(sent.len(), 100);
        let rows = tshark_fields(
            &dir.join("gen.pcap"),
            None,
            &[
                "erspan.version",
                "erspan.spanid",
                "gre.sequence_number",
                "ip.src",
                "ip.checksum.status",
                "udp.checksum.status",
            ],
            &TSHARK_CHECK_IP_UDP,
        );
        assert_eq!(rows.len(), 100);
        let mut next = [0u64; 2];
        for r in &rows {
            assert_eq!(r[0], version.to_string(), "{r:?}");
            assert_eq!(r[1], session.to_string(), "{r:?}");
            let outer = r[3].split(',').next().unwrap();
            let t = match outer {
                "198.51.100.60" => 0,
                "198.51.100.61" => 1,
                other => panic!("outer source {other}"),
            };
            assert_eq!(r[2], next[t].to_string(), "sequence per tunnel: {r:?}");
            next[t] += 1;
            assert_eq!(r[4], "1,1", "outer and mirrored IPv4 checksums: {r:?}");
            assert_eq!(r[5], "1", "UDP checksum: {r:?}");
        }

        // greway's ERSPAN in: tunnel 0's session out of the l2 port, the mirrored UDP frames as sent.
        let rx = scratch(&format!("{tag}-rx"));
        write_pcap(&rx.join("outside.pcap"), &sent);
        write_pcap(&rx.join("empty.pcap"), &[]);
        let gw = format!(
            r#"
{head}
{outside}
address = "192.0.2.1/24"
mac = "02:00:00:00:00:02"
{probe}
role = "l2"
{from_gen}
{next_hop}
"#,
            head = config_head(&format!("{tag}-rx")),
            outside = pcap_port("outside", 0, &rx, "outside.pcap", "out-outside.pcap"),
            probe = pcap_port("probe", 1, &rx, "empty.pcap", "out-probe.pcap"),
            from_gen = erspan_receiver(
                "from-gen",
                "192.0.2.1",
                "198.51.100.60",
                &format!("session = {session}"),
                "probe"
            ),
            next_hop = outside_next_hop("0.0.0.0/0"),
        );
        let (_, s) = run_greway(&rx, &gw, &[]);
        let got = read_pcap(&rx.join("out-probe.pcap"));
        let el = if version == 1 { 8 } else { 12 };
        let want: Vec<Vec<u8>> = sent
            .iter()
            .filter(|f| f[26..30] == [198, 51, 100, 60])
            .map(|f| f[34 + 8 + el..].to_vec())
            .collect();
        assert_eq!(want.len(), 50);
        assert_eq!(got, want, "{s}");
        assert_eq!(s["drops"]["unknown_tunnel"], 50, "the other tunnel's: {s}");
    }
}

/// The control socket: `ctl mirror show` lists the mirrors with their counters, `ctl tunnel add --mode erspan`
/// adds an ERSPAN receiver, and a mirror's tunnel cannot be removed.
#[test]
fn ctl_shows_mirrors_adds_erspan_receivers_and_keeps_mirror_tunnels() {
    let dir = scratch("mirror-ctl");
    let input = inside_frames();
    // The input replayed forever: the counters keep moving while the socket is asked.
    write_pcap(&dir.join("inside.pcap"), &input);
    write_pcap(&dir.join("empty.pcap"), &[]);
    let sock = dir.join("ctl.sock");
    let cfg = config(&dir, "mirror-ctl", true)
        .replace("inside.pcap,tx_pcap", "inside.pcap,infinite_rx=1,tx_pcap")
        .replace(&format!("{}/out-outside.pcap", dir.display()), "/dev/null")
        + "[[port]]\nname = \"probe\"\ndevice = \"net_null0\"\nrole = \"l2\"\n"
        + &format!("[control]\nsocket = \"{}\"\n", sock.display());
    let cfg_path = dir.join("greway.toml");
    std::fs::write(&cfg_path, &cfg).unwrap();
    let gw = spawn_greway(&cfg_path, &dir.join("stats.json"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut shown = Value::Null;
    while std::time::Instant::now() < deadline {
        let (ok, v, _) = ctl(&sock, &["mirror", "show"]);
        if ok && v["mirrors"][0]["packets"].as_u64().unwrap_or(0) > 0 {
            shown = v;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let added = ctl(
        &sock,
        &[
            "tunnel",
            "add",
            "--name",
            "from-probe",
            "--local",
            "192.0.2.1",
            "--remote",
            "198.51.100.70",
            "--mode",
            "erspan",
            "--erspan-session",
            "9",
            "--deliver",
            "probe",
        ],
    );
    let refused = ctl(&sock, &["tunnel", "del", "--name", "span2"]);
    let no_deliver = ctl(
        &sock,
        &[
            "tunnel",
            "add",
            "--name",
            "x",
            "--local",
            "192.0.2.1",
            "--remote",
            "198.51.100.71",
            "--mode",
            "erspan",
            "--erspan-session",
            "9",
        ],
    );
    let (_, tunnels, _) = ctl(&sock, &["tunnel", "show"]);
    let out = stop_greway(gw);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let m = shown["mirrors"]
        .as_array()
        .unwrap_or_else(|| panic!("mirror show: {shown}"));
    assert_eq!(m.len(), 2, "{shown}");
    assert_eq!(
        (&m[0]["port"], &m[0]["tunnel"]),
        (&Value::from("inside"), &Value::from("span2"))
    );
    assert_eq!(
        (&m[1]["direction"], &m[1]["session"]),
        (&Value::from("tx"), &Value::from(S3))
    );
    assert!(added.0, "tunnel add --mode erspan: {}", added.2);
    assert!(
        !refused.0 && refused.2.contains("target of a [[mirror]]"),
        "{}",
        refused.2
    );
    assert!(
        !no_deliver.0 && no_deliver.2.contains("deliver"),
        "{}",
        no_deliver.2
    );
    let t = tunnels["tunnels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "from-probe")
        .unwrap_or_else(|| panic!("{tunnels}"));
    assert_eq!(
        (&t["mode"], &t["erspan"]["session"], &t["deliver"]),
        (
            &Value::from("erspan"),
            &Value::from(9),
            &Value::from("probe")
        )
    );
    assert!(tunnels["tunnels"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "span2"));
}
