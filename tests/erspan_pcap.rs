//! ERSPAN termination on real DPDK pcap ports, fed with real ERSPAN captures of other people's equipment
//! (tcpdump's test suite, in `shared/peer-captures`: types I, II and III): greway, with one `mode = "erspan"`
//! tunnel per mirroring source, must send each mirrored frame of the configured session out of the tunnel's
//! `deliver` port (an l2 port) byte for byte, and drop and count the rest. scapy (tests/scapy/erspan_inner.py)
//! decodes the captures independently and gives the expected frames; tshark decodes what greway wrote.
mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;

const CAPTURES: [&str; 5] = [
    "erspan-type-i-1.pcap",
    "erspan-type-ii-1.pcap",
    "erspan-type-ii-2.pcap",
    "erspan-type-iii-ft-0.pcap",
    "erspan-type-iii-pb-1.pcap",
];

/// One frame of the captures as scapy decodes it.
struct Scapy {
    src: Option<String>,
    session: Option<u64>,
    kind: Option<u64>,
    inner: Option<Vec<u8>>,
}

fn scapy_decode(paths: &[std::path::PathBuf]) -> Vec<Scapy> {
    let args: Vec<&dyn AsRef<std::ffi::OsStr>> = paths.iter().map(|p| p as _).collect();
    let out = run_scapy("erspan_inner.py", &args);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Scapy {
                src: v["src"].as_str().map(str::to_string),
                session: v["session"].as_u64(),
                kind: v["type"].as_u64(),
                inner: v["inner"].as_str().map(unhex),
            }
        })
        .collect()
}

fn config(dir: &Path) -> String {
    format!(
        r#"
{head}
# A pure ERSPAN receiver: no inside port.
{outside}
address = ["192.168.255.5/24", "192.168.195.196/24", "10.29.11.13/24"]
{probe}
role = "l2"
{probe3}
role = "l2"
# erspan-type-i-1: type I from 1.1.1.1 (no session: session 0).
[[tunnel]]
name = "type-i"
mode = "erspan"
local = "192.168.255.5"
remote = "1.1.1.1"
erspan = {{ session = 0 }}
deliver = "probe"
# erspan-type-ii-1: type II session 666 from 1.1.1.2.
[[tunnel]]
name = "type-ii"
mode = "erspan"
local = "192.168.255.5"
remote = "1.1.1.2"
erspan = {{ session = 666, version = 1, index = 32760 }}
deliver = "probe"
# erspan-type-ii-2: two switches mirror session 1; the second is configured with session 2 and is refused.
[[tunnel]]
name = "sw67"
mode = "erspan"
local = "192.168.195.196"
remote = "192.168.195.67"
erspan = {{ session = 1 }}
deliver = "probe"
[[tunnel]]
name = "sw73"
mode = "erspan"
local = "192.168.195.196"
remote = "192.168.195.73"
erspan = {{ session = 2 }}
deliver = "probe"
# erspan-type-iii-ft-0: type III session 0 from 10.29.30.104, to its own port.
[[tunnel]]
name = "type-iii"
mode = "erspan"
local = "10.29.11.13"
remote = "10.29.30.104"
erspan = {{ session = 0, version = 2, hwid = 0 }}
deliver = "probe3"
[[route]]
prefix = "0.0.0.0/0"
via = "192.168.255.1"
port = "outside"
"#,
        head = config_head("erspan"),
        outside = pcap_port("outside", 1, dir, "outside.pcap", "out-outside.pcap"),
        probe = pcap_port("probe", 2, dir, "probe.pcap", "out-probe.pcap"),
        probe3 = pcap_port("probe3", 3, dir, "empty.pcap", "out-probe3.pcap"),
    )
}

/// tshark's (eth.src, ip.src, ip.dst) of each frame, the innermost IP addresses.
fn tshark_inner(pcap: &Path) -> Vec<(String, String, String)> {
    tshark_fields(pcap, None, &["eth.src", "ip.src", "ip.dst"], &[])
        .into_iter()
        .map(|f| {
            let last = |s: &String| s.rsplit(',').next().unwrap_or("").to_string();
            (last(&f[0]), last(&f[1]), last(&f[2]))
        })
        .collect()
}

#[test]
fn real_erspan_captures_are_terminated_byte_for_byte() {
    let dir = scratch("erspan");
    let caps = peer_captures();
    let paths: Vec<_> = CAPTURES.iter().map(|c| caps.join(c)).collect();
    let decoded = scapy_decode(&paths);
    let mut outside = Vec::new();
    for p in &paths {
        if p.ends_with("erspan-type-iii-pb-1.pcap") {
            // Raw IPv6 (link type 101): on an Ethernet port it arrives behind an Ethernet header.
            outside.extend(read_pcap(p).into_iter().map(|ip| {
                let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x86, 0xdd];
                f.extend(ip);
                f
            }));
        } else {
            outside.extend(read_pcap(p));
        }
    }
    assert_eq!(outside.len(), decoded.len());
    assert_eq!(outside.len(), 2 + 1 + 16 + 9 + 1, "the captures as stored");

    // What each tunnel should deliver, from scapy's decoding and the configuration above.
    let mut want_probe = Vec::new();
    let mut want_probe3 = Vec::new();
    let mut want_decap: BTreeMap<&str, u64> = BTreeMap::new();
    let mut mismatched = 0;
    for s in &decoded {
        let (tunnel, session) = match s.src.as_deref() {
            Some("1.1.1.1") => ("type-i", 0),
            Some("1.1.1.2") => ("type-ii", 666),
            Some("192.168.195.67") => ("sw67", 1),
            Some("192.168.195.73") => ("sw73", 2),
            Some("10.29.30.104") => ("type-iii", 0),
            _ => continue,
        };
        // Type I carries no session: it is session 0.
        if s.session.unwrap_or(0) != session {
            mismatched += 1;
            continue;
        }
        *want_decap.entry(tunnel).or_default() += 1;
        let inner = s.inner.clone().expect("scapy found the mirrored frame");
        if tunnel == "type-iii" {
            want_probe3.push(inner);
        } else {
            want_probe.push(inner);
        }
    }
    assert_eq!(mismatched, 8, "sw73's frames are all session 1");
    assert_eq!(decoded[0].kind, Some(1));
    assert_eq!(decoded[2].kind, Some(2));
    assert_eq!(decoded[19].kind, Some(3));

    write_pcap(&dir.join("outside.pcap"), &outside);
    write_pcap(&dir.join("empty.pcap"), &[]);
    // A frame arriving on the l2 port: nothing bridges it.
    write_pcap(&dir.join("probe.pcap"), &want_probe[..1]);
    let (_, s) = run_greway(&dir, &config(&dir), &[]);

    let got_probe = read_pcap(&dir.join("out-probe.pcap"));
    let got_probe3 = read_pcap(&dir.join("out-probe3.pcap"));
    assert_eq!(got_probe.len(), 2 + 1 + 8, "{s}");
    assert_eq!(
        got_probe, want_probe,
        "probe: the mirrored frames, byte for byte"
    );
    assert_eq!(got_probe3.len(), 9, "{s}");
    assert_eq!(
        got_probe3, want_probe3,
        "probe3: the mirrored frames, byte for byte"
    );
    // Toward the transport side only the control plane's ARP requests for the tunnels' next hops.
    let outside_tx = read_pcap(&dir.join("out-outside.pcap"));
    assert!(
        outside_tx.iter().all(|f| f[12..14] == [0x08, 0x06]),
        "only ARP leaves the outside port: {outside_tx:02x?}"
    );

    for (name, n) in &want_decap {
        assert_eq!(s["tunnels"][name]["decap"], *n, "{name}: {s}");
        assert_eq!(s["tunnels"][name]["drops"], 0, "{name}: {s}");
    }
    assert_eq!(s["tunnels"]["sw73"]["decap"], 0, "{s}");
    assert_eq!(s["tunnels"]["sw73"]["drops"], 8, "{s}");
    // Every drop under its reason: sw73's wrong session, the snapped type III fuzz frame (its IPv6 header
    // announces 288 bytes, 79 were captured), the frame received on the l2 port.
    let mut want_drops = BTreeMap::from([
        ("erspan_session_mismatch", 8u64),
        ("truncated", 1),
        ("l2_no_bridge", 1),
    ]);
    for (reason, n) in s["drops"].as_object().unwrap() {
        let w = want_drops.remove(reason.as_str()).unwrap_or(0);
        assert_eq!(n.as_u64().unwrap(), w, "drop reason {reason}: {s}");
    }
    assert!(
        want_drops.is_empty(),
        "reasons not reported: {want_drops:?}"
    );
    assert_eq!(
        s["mempool"]["free_at_start"], s["mempool"]["free_at_end"],
        "no mbuf leaked"
    );

    // tshark, on both sides: the frames leaving the probe ports are the Ethernet frames it finds inside the
    // ERSPAN packets of the delivered sessions, in order.
    let inputs: Vec<(String, String, String)> = CAPTURES[..4]
        .iter()
        .flat_map(|c| tshark_inner(&caps.join(c)))
        .collect();
    let sessions: Vec<Vec<String>> = CAPTURES[..4]
        .iter()
        .flat_map(|c| tshark_fields(&caps.join(c), None, &["ip.src", "erspan.spanid"], &[]))
        .collect();
    let mut want_tshark = Vec::new();
    let mut want_tshark3 = Vec::new();
    for (i, (frame, sess)) in inputs.iter().zip(&sessions).enumerate() {
        let outer_src = sess[0].split(',').next().unwrap();
        match (outer_src, sess.get(1).map(String::as_str).unwrap_or("")) {
            ("192.168.195.73", id) => assert_eq!(id, "1", "frame {i}"),
            ("10.29.30.104", _) => want_tshark3.push(frame.clone()),
            _ => want_tshark.push(frame.clone()),
        }
    }
    assert_eq!(tshark_inner(&dir.join("out-probe.pcap")), want_tshark);
    assert_eq!(tshark_inner(&dir.join("out-probe3.pcap")), want_tshark3);
}
