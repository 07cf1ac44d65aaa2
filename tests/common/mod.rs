//! Shared helpers of the integration tests: pcap files in and out, running the real `greway` binary on real
//! DPDK virtual ports with a per-test EAL file prefix, reading `--stats-json`.
#![allow(dead_code)]
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::DataLink;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The built binary under test.
pub fn greway_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_greway"))
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("greway-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Write Ethernet frames to a pcap file.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let f = std::fs::File::create(path).unwrap();
    let hdr = PcapHeader {
        datalink: DataLink::ETHERNET,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(f, hdr).unwrap();
    for (i, fr) in frames.iter().enumerate() {
        let ts = Duration::from_micros(i as u64);
        w.write_packet(&PcapPacket::new(ts, fr.len() as u32, fr))
            .unwrap();
    }
}

/// Read every frame of a pcap file.
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut r = PcapReader::new(f).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.unwrap().data.into_owned());
    }
    out
}

/// EAL arguments for a test: no hugepages, no PCI, one worker core, a unique file prefix.
pub fn eal_args(tag: &str) -> String {
    format!(
        r#"["-l", "0-1", "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--file-prefix", "gwt-{tag}-{}", "--log-level", "3"]"#,
        std::process::id()
    )
}

/// Run `greway run --config CFG --exit-idle-ms 300 --stats-json OUT`; returns the process output and the JSON.
pub fn run_greway(dir: &Path, config: &str, extra: &[&str]) -> (Output, serde_json::Value) {
    let cfg = dir.join("greway.toml");
    std::fs::write(&cfg, config).unwrap();
    let stats = dir.join("stats.json");
    let out = Command::new(greway_bin())
        .args(["run", "--quiet", "--config"])
        .arg(&cfg)
        .args(["--exit-idle-ms", "300", "--stats-json"])
        .arg(&stats)
        .args(extra)
        .output()
        .expect("run greway");
    assert_success("greway", &out);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).expect("stats json"))
            .expect("valid json");
    (out, json)
}

/// Fail the test unless `out` (of the process `what`) exited successfully, showing its output.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Start `greway run --quiet --config CFG --stats-json STATS` in the background, its output piped.
pub fn spawn_greway(config: &Path, stats: &Path) -> Child {
    Command::new(greway_bin())
        .args(["run", "--quiet", "--config"])
        .arg(config)
        .arg("--stats-json")
        .arg(stats)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start greway")
}

/// Stop a background greway with SIGTERM, as an operator would; kill it if it has not exited after 10 s.
pub fn stop_greway(mut gw: Child) -> Output {
    let _ = Command::new("kill")
        .args(["-TERM", &gw.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = gw.kill();
    gw.wait_with_output().unwrap()
}

/// The sum of a stats JSON's `drops` (every reason).
pub fn total_drops(stats: &serde_json::Value) -> u64 {
    stats["drops"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum()
}

/// A 64-byte-ish UDP/IPv4 frame (valid IPv4 header checksum, zero UDP checksum).
pub fn udp4_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    // Identification 1, DF, TTL 64, UDP.
    f.extend_from_slice(&ipv4_header(
        20 + 8 + payload.len(),
        1,
        0x4000,
        64,
        17,
        src,
        dst,
    ));
    let ulen = 8 + payload.len();
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&[0x07, 0xd0, (ulen >> 8) as u8, ulen as u8, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// An Ethernet + IPv4 frame from the outside next hop (02:00:00:00:00:fe) to the gateway's outside port
/// (02:00:00:00:00:02), IPv4 `src` to `dst` (TTL 60, identification 9, valid header checksum), carrying `gre`: a
/// GRE header and its payload ([`gre_header`]).
pub fn gre4_frame(src: [u8; 4], dst: [u8; 4], gre: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 0xfe, 0x08, 0x00];
    f.extend_from_slice(&ipv4_header(20 + gre.len(), 9, 0, 60, 47, src, dst));
    f.extend_from_slice(gre);
    f
}

/// A GRE header (RFC 2784/2890): `flags_ver` (the K bit is set for a `key`), protocol type `proto`, the key if
/// any, then `payload`.
pub fn gre_header(flags_ver: u16, proto: u16, key: Option<u32>, payload: &[u8]) -> Vec<u8> {
    let flags = flags_ver | if key.is_some() { 0x2000 } else { 0 };
    let mut g = Vec::new();
    g.extend_from_slice(&flags.to_be_bytes());
    g.extend_from_slice(&proto.to_be_bytes());
    if let Some(k) = key {
        g.extend_from_slice(&k.to_be_bytes());
    }
    g.extend_from_slice(payload);
    g
}

/// An option-less IPv4 header of a packet of `total` bytes, with its checksum.
pub fn ipv4_header(
    total: usize,
    ident: u16,
    flags_frag: u16,
    ttl: u8,
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
) -> [u8; 20] {
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&ident.to_be_bytes());
    ip[6..8].copy_from_slice(&flags_frag.to_be_bytes());
    ip[8] = ttl;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let ck = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    ip
}

/// An independent RFC 1071 checksum for test fixtures.
pub fn ipv4_checksum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// The directory holding the tcpdump project's GRE captures (`shared/` beside the repository).
pub fn peer_captures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/peer-captures")
}

/// tshark options that make it verify the IPv4 header and UDP checksums (their `.checksum.status` fields: 1 good).
pub const TSHARK_CHECK_IP_UDP: [&str; 4] = [
    "-o",
    "ip.check_checksum:TRUE",
    "-o",
    "udp.check_checksum:TRUE",
];

/// Run tshark on a pcap with `-T fields`; fails the test with a clear message if tshark is missing.
pub fn tshark_fields(
    pcap: &Path,
    filter: Option<&str>,
    fields: &[&str],
    extra: &[&str],
) -> Vec<Vec<String>> {
    let mut c = Command::new("tshark");
    c.arg("-r")
        .arg(pcap)
        .args(["-T", "fields", "-E", "separator=|", "-E", "occurrence=a"]);
    c.args(extra);
    if let Some(f) = filter {
        c.args(["-Y", f]);
    }
    for f in fields {
        c.args(["-e", f]);
    }
    let out = c
        .output()
        .expect("tshark is required by the test suite (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

/// The table of bad-config fixtures (tests/fixtures/bad-configs/) and their expected errors.
pub mod bad_configs;

mod config;
#[allow(unused_imports)]
pub use config::*;
mod generator;
#[allow(unused_imports)]
pub use generator::*;

/// EAL in this test process (once per process: one test per file uses it), without hugepages, PCI or shared
/// config, on the cores of `lcores` (e.g. "0" or "0-1"), with a file prefix of its own. Drop it after every
/// pool and port; its runtime directory goes with it.
pub struct TestEal {
    eal: Option<greway::dpdk::Eal>,
    prefix: String,
}

pub fn init_eal(tag: &str, lcores: &str) -> TestEal {
    let prefix = format!("greway-{tag}-{}", std::process::id());
    let eal = greway::dpdk::Eal::init(&[
        "-l",
        lcores,
        "--no-huge",
        "-m",
        "128",
        "--no-pci",
        "--no-shconf",
        "--file-prefix",
        &prefix,
        "--log-level",
        "1",
    ])
    .expect("EAL init");
    TestEal {
        eal: Some(eal),
        prefix,
    }
}

impl Drop for TestEal {
    fn drop(&mut self) {
        drop(self.eal.take());
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

/// Run `tests/scapy/SCRIPT` with `args` under /usr/bin/python3 (scapy, installed by scripts/install-deps.sh) and
/// return its output, after checking that it succeeded.
pub fn run_scapy(script: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scapy")
        .join(script);
    let out = Command::new("/usr/bin/python3")
        .arg(&path)
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("/usr/bin/python3 with scapy is required (scripts/install-deps.sh installs python3-scapy)");
    assert!(
        out.status.success(),
        "scapy {script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `greway ctl --socket SOCK ARGS...`: (success, stdout JSON or Null, stderr).
pub fn ctl(sock: &Path, args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = Command::new(greway_bin())
        .arg("ctl")
        .arg("--socket")
        .arg(sock)
        .args(args)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.success(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Poll `ok` every 50 ms until it holds; fails the test, naming `what`, after 60 s.
pub fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a gateway's Prometheus exporter).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET /metrics from 127.0.0.1:`port` over plain HTTP/1.0: the body; None until the exporter answers 200.
pub fn scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    let (head, body) = r.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_string())
}

/// The bytes of a hex string ("0a1b..."), as scapy and tshark print them.
pub fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

/// The names a `ctl reload` answer lists under `section` (tunnels, routes, mirrors...) as `what` (added, changed,
/// removed).
pub fn reload_names(v: &serde_json::Value, section: &str, what: &str) -> Vec<String> {
    v[section][what]
        .as_array()
        .unwrap_or_else(|| panic!("{section}.{what}: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}
