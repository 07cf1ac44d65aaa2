//! `greway ctl tunnel add` takes every key of a `[[tunnel]]`: each key has a flag (traced from the
//! configuration's own type, so a key added to the file without a flag fails here), the flags reach a running
//! gateway through its real control socket, `tunnel show` gives every value back, the gateway refuses wrong
//! values with the file's messages, and the keys act on packets: tshark decodes the outer TTL, TOS, key,
//! checksum and sequence number greway wrote for a tunnel added this way, and its keepalives; another tunnel's
//! in-key and allowed sources sort received packets into decapsulated and `spoofed_source`; the MTU turns
//! larger packets into `too_big`.
mod common;
use common::*;
use serde_json::Value;
use serde_reflection::{ContainerFormat, Format, Tracer, TracerConfig};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const HOST: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const GWIN: [u8; 6] = [2, 0, 0, 0, 0, 1];
const LOCAL: [u8; 4] = [192, 0, 2, 1];
/// The remote of the tunnel with every key ("full") and of the decapsulating one ("dec").
const FULL_REMOTE: &str = "198.51.100.9";
const DEC_REMOTE: [u8; 4] = [198, 51, 100, 10];

/// The `--help` text of `greway ctl tunnel add`.
fn add_help() -> String {
    let out = Command::new(greway_bin())
        .args(["ctl", "--socket", "/nonexistent", "tunnel", "add", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Every key of a `[[tunnel]]` with the flag that should set it: `key` -> `--key`; a list under a plural name
/// repeats a singular flag (`routes` -> `--route`); a key of an inline table is `--TABLE` for its first (the
/// required) key and `--TABLE-KEY` for the others (`keepalive.interval_s` -> `--keepalive`,
/// `keepalive.retries` -> `--keepalive-retries`). The keys are traced from `TunnelCfg` values, the tunnels of
/// dpdk-config/all-keys.toml (which uses every key: tests/docs.rs checks that).
fn tunnel_keys_and_flags() -> Vec<(String, Vec<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = greway::config::Config::load(&root.join("dpdk-config/all-keys.toml")).unwrap();
    let mut tracer = Tracer::new(TracerConfig::default().is_human_readable(true));
    let mut samples = serde_reflection::Samples::new();
    for t in &cfg.tunnels {
        // One form per field (ttl and tos are an integer or "inherit", mss_clamp a bool or an integer).
        let mut t = t.clone();
        t.ttl = greway::config::Ttl::default();
        t.tos = greway::config::Tos::default();
        t.mss_clamp = greway::config::MssClamp::default();
        tracer.trace_value(&mut samples, &t).unwrap();
    }
    let registry = tracer.registry_unchecked();
    let fields = |name: &str| match registry.get(name) {
        Some(ContainerFormat::Struct(f)) => f.clone(),
        other => panic!("{name} is not traced as a struct: {other:?}"),
    };
    let dash = |s: &str| s.replace('_', "-");
    let mut out = Vec::new();
    for f in fields("TunnelCfg") {
        let mut inner = &f.value;
        if let Format::Option(o) = inner {
            inner = o;
        }
        match inner {
            Format::TypeName(ty)
                if matches!(registry.get(ty), Some(ContainerFormat::Struct(_))) =>
            {
                for (i, g) in fields(ty).iter().enumerate() {
                    let mut flags = vec![format!("--{}-{}", dash(&f.name), dash(&g.name))];
                    if i == 0 {
                        flags.push(format!("--{}", dash(&f.name)));
                    }
                    out.push((format!("{}.{}", f.name, g.name), flags));
                }
            }
            _ => {
                let mut flags = vec![format!("--{}", dash(&f.name))];
                if let Some(one) = f.name.strip_suffix('s') {
                    flags.push(format!("--{}", dash(one)));
                }
                out.push((f.name.clone(), flags));
            }
        }
    }
    out
}

#[test]
fn every_tunnel_key_has_a_ctl_tunnel_add_flag() {
    let help = add_help();
    let keys = tunnel_keys_and_flags();
    assert!(keys.len() >= 25, "{keys:?}");
    let missing: Vec<&(String, Vec<String>)> = keys
        .iter()
        .filter(|(_, flags)| {
            !flags.iter().any(|f| {
                help.lines()
                    .any(|l| l.trim_start().split([' ', '=']).next() == Some(f.as_str()))
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "[[tunnel]] keys without a `greway ctl tunnel add` flag: {missing:?}"
    );
}

/// The inner IPv4 packet (no Ethernet header) of a UDP frame.
fn inner4(src: [u8; 4], dst: [u8; 4], n: u16) -> Vec<u8> {
    udp4_frame(HOST, GWIN, src, dst, n, &[n as u8; 30])[14..].to_vec()
}

fn config(tag: &str, inside: &str, outside: &str, sock: &Path) -> String {
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
[[port]]
name = "probe"
device = "net_null2,no-rx=1"
role = "l2"
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
[control]
socket = "{sock}"
"#,
        eal = eal_args(tag),
        sock = sock.display()
    )
}

/// A gateway running in the background; killed if the test fails before it is stopped.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn add(sock: &Path, flags: &[&str]) -> (bool, Value, String) {
    let mut args = vec!["tunnel", "add"];
    args.extend_from_slice(flags);
    ctl(sock, &args)
}

#[test]
fn ctl_tunnel_add_sets_every_key_through_the_control_socket() {
    let dir = scratch("ctl-keys");
    // Inside: a 100-byte packet into tunnel "full" (route 10.30.0.0/16), and one larger than its MTU of 1400
    // with DF set (too_big).
    write_pcap(
        &dir.join("inside.pcap"),
        &[
            udp4_frame(HOST, GWIN, [10, 0, 0, 2], [10, 30, 0, 5], 1, &[1; 72]),
            udp4_frame(HOST, GWIN, [10, 0, 0, 2], [10, 30, 0, 5], 2, &[2; 1420]),
        ],
    );
    // Outside, from the remote of tunnel "dec" (in-key 11, allowed sources 10.99.0.0/16): an allowed inner
    // source, a source it does not allow, and the wrong key.
    write_pcap(
        &dir.join("outside.pcap"),
        &[
            gre4_frame(
                DEC_REMOTE,
                LOCAL,
                &gre_header(
                    0,
                    0x0800,
                    Some(11),
                    &inner4([10, 99, 1, 1], [10, 0, 0, 2], 1),
                ),
            ),
            gre4_frame(
                DEC_REMOTE,
                LOCAL,
                &gre_header(
                    0,
                    0x0800,
                    Some(11),
                    &inner4([10, 98, 1, 1], [10, 0, 0, 2], 2),
                ),
            ),
            gre4_frame(
                DEC_REMOTE,
                LOCAL,
                &gre_header(
                    0,
                    0x0800,
                    Some(12),
                    &inner4([10, 99, 1, 1], [10, 0, 0, 2], 3),
                ),
            ),
        ],
    );
    let d = dir.display();
    let sock = dir.join("ctl.sock");
    let cfg = config(
        "ctl-keys",
        &format!("net_pcap0,rx_pcap={d}/inside.pcap,infinite_rx=1"),
        &format!("net_pcap1,rx_pcap={d}/outside.pcap,infinite_rx=1,tx_pcap={d}/out-outside.pcap"),
        &sock,
    );
    let path = dir.join("greway.toml");
    std::fs::write(&path, &cfg).unwrap();
    let child = Command::new(greway_bin())
        .args(["run", "--quiet", "--duration-s", "120", "--config"])
        .arg(&path)
        .arg("--stats-json")
        .arg(dir.join("stats.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut gw = Running(Some(child));
    let stats = || ctl(&sock, &["stats"]).1;
    let drops = |s: &Value, r: &str| s["drops"][r].as_u64().unwrap_or(0);
    wait_for("traffic with no tunnel yet (no_route)", || {
        drops(&stats(), "no_route") > 0
    });

    // Wrong values are refused with the file's messages, and change nothing.
    let base = [
        "--name",
        "full",
        "--local",
        "192.0.2.1",
        "--remote",
        FULL_REMOTE,
    ];
    let refused = |extra: &[&str], want: &str| {
        let mut f = base.to_vec();
        f.extend_from_slice(extra);
        let (ok, _, err) = add(&sock, &f);
        assert!(
            !ok && err.contains(want),
            "{extra:?}: want {want:?}, got {err}"
        );
    };
    refused(
        &["--reorder", "8"],
        "tunnel[0].reorder: reorder requires sequence = true",
    );
    refused(
        &["--sequence", "--reorder", "65"],
        "tunnel[0].reorder.window",
    );
    refused(&["--keepalive", "0"], "tunnel[0].keepalive");
    refused(&["--key", "1", "--ikey", "2"], "tunnel[0].key");
    refused(&["--mtu", "1480"], "tunnel[0].mtu");
    refused(&["--host-if", "gre-x"], "needs a [host] section");
    refused(
        &[
            "--mode",
            "erspan",
            "--erspan-session",
            "5",
            "--deliver",
            "nope",
        ],
        "tunnel[0].deliver",
    );
    // Refused by the command line itself, with the file's range message.
    let (ok, _, err) = add(&sock, &[&base[..], &["--ttl", "0"]].concat());
    assert!(!ok && err.contains("ttl must be 1..=255"), "{err}");
    assert_eq!(
        ctl(&sock, &["tunnel", "show"]).1["tunnels"],
        serde_json::json!([])
    );

    let (ok, v, err) = add(
        &sock,
        &[
            &base[..],
            &[
                "--okey",
                "22",
                "--ikey",
                "21",
                "--checksum",
                "--sequence",
                "--reorder",
                "8",
                "--reorder-timeout-ms",
                "20",
                "--ttl",
                "17",
                "--tos",
                "184",
                "--mtu",
                "1400",
                "--keepalive",
                "1",
                "--keepalive-retries",
                "250",
                "--route",
                "10.30.0.0/16",
                "--allowed-source",
                "10.30.0.0/16",
                "--allowed-source",
                "10.31.0.0/16",
                "--address",
                "169.254.50.1/30",
                "--mss-clamp",
                "1300",
                "--mode",
                "ip",
            ],
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = add(
        &sock,
        &[
            "--name",
            "dec",
            "--local",
            "192.0.2.1",
            "--remote",
            "198.51.100.10",
            "--key",
            "11",
            "--allowed-source",
            "10.99.0.0/16",
            "--ttl",
            "inherit",
            "--tos",
            "inherit",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = add(
        &sock,
        &[
            "--name",
            "mirror",
            "--local",
            "192.0.2.1",
            "--remote",
            "198.51.100.11",
            "--mode",
            "erspan",
            "--erspan-session",
            "55",
            "--erspan-version",
            "2",
            "--erspan-hwid",
            "1",
            "--erspan-index",
            "7",
            "--deliver",
            "probe",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(v["tunnels"].as_array().unwrap().len(), 1, "{v}");

    let (ok, v, _) = ctl(&sock, &["tunnel", "show"]);
    assert!(ok);
    let t = &v["tunnels"];
    eprintln!("tunnel show: {t:#}");
    let full = &t[0];
    for (k, want) in [
        ("name", serde_json::json!("full")),
        ("remote", serde_json::json!(FULL_REMOTE)),
        ("key", Value::Null),
        ("ikey", serde_json::json!(21)),
        ("okey", serde_json::json!(22)),
        ("checksum", serde_json::json!(true)),
        ("sequence", serde_json::json!(true)),
        (
            "reorder",
            serde_json::json!({"window": 8, "timeout_ms": 20}),
        ),
        ("ttl", serde_json::json!(17)),
        ("tos", serde_json::json!(184)),
        ("mtu", serde_json::json!(1400)),
        (
            "keepalive",
            serde_json::json!({"interval_s": 1, "retries": 250}),
        ),
        ("routes", serde_json::json!(["10.30.0.0/16"])),
        (
            "allowed_sources",
            serde_json::json!(["10.30.0.0/16", "10.31.0.0/16"]),
        ),
        ("address", serde_json::json!(["169.254.50.1/30"])),
        ("host_if", Value::Null),
        ("encap_limit", Value::Null),
        ("mss_clamp", serde_json::json!(1300)),
        ("mode", serde_json::json!("ip")),
        ("erspan", Value::Null),
        ("deliver", Value::Null),
        ("up", serde_json::json!(true)),
    ] {
        assert_eq!(full[k], want, "full.{k}: {full}");
    }
    let dec = &t[1];
    assert_eq!(
        (
            &dec["key"],
            &dec["ikey"],
            &dec["okey"],
            &dec["ttl"],
            &dec["tos"],
            &dec["keepalive"]
        ),
        (
            &11.into(),
            &11.into(),
            &11.into(),
            &"inherit".into(),
            &"inherit".into(),
            &Value::Null
        ),
        "{dec}"
    );
    assert_eq!(dec["allowed_sources"], serde_json::json!(["10.99.0.0/16"]));
    assert_eq!(dec["reorder"], Value::Null);
    let mirror = &t[2];
    assert_eq!(mirror["mode"], "erspan");
    assert_eq!(
        mirror["erspan"],
        serde_json::json!({"session": 55, "version": 2, "index": 7, "hwid": 1})
    );
    assert_eq!(mirror["deliver"], "probe");
    // Every key of the file is in the answer.
    let shown: BTreeSet<&str> = full
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for (k, _) in tunnel_keys_and_flags() {
        let top = k.split('.').next().unwrap().to_string();
        assert!(
            shown.contains(top.as_str()),
            "tunnel show lacks {top}: {full}"
        );
    }

    // The keys at work on packets.
    let tunnel = |s: &Value, n: &str, c: &str| s["tunnels"][n][c].as_u64().unwrap_or(0);
    wait_for(
        "encapsulation into full, too_big, decapsulation of dec, spoofed sources",
        || {
            let s = stats();
            tunnel(&s, "full", "encap") > 100
                && drops(&s, "too_big") > 0
                && tunnel(&s, "dec", "decap") > 100
                && drops(&s, "spoofed_source") > 0
        },
    );
    let ok = Command::new("kill")
        .args(["-INT", &gw.0.as_ref().unwrap().id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let out = gw.0.take().unwrap().wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap();
    eprintln!(
        "full: encap {}, dec: decap {}; drops too_big {}, spoofed_source {}, unknown_tunnel {}",
        s["tunnels"]["full"]["encap"],
        s["tunnels"]["dec"]["decap"],
        s["drops"]["too_big"],
        s["drops"]["spoofed_source"],
        s["drops"]["unknown_tunnel"]
    );
    // One packet of each kind of the outside capture, over and over: once "dec" is there, the packets it
    // decapsulates are the allowed source with its key, one for each packet of the source it does not allow.
    let (decap, spoofed) = (tunnel(&s, "dec", "decap"), drops(&s, "spoofed_source"));
    assert!(decap.abs_diff(spoofed) <= 1, "{s}");
    assert_eq!(tunnel(&s, "full", "decap"), 0);

    // tshark decodes what greway wrote into "full": out-key 22, TTL 17, TOS 0xb8, checksum and sequence
    // number present, the GRE checksum good.
    let pcap = dir.join("out-outside.pcap");
    let rows = tshark_fields(
        &pcap,
        Some(&format!("ip.dst == {FULL_REMOTE} && gre.key == 22")),
        &[
            "ip.ttl",
            "ip.dsfield",
            "gre.flags.checksum",
            "gre.flags.sequence_number",
            "gre.checksum.status",
            "ip.src",
        ],
        &[],
    );
    assert!(rows.len() > 100, "{} packets into full", rows.len());
    let mut keepalives = 0;
    for r in &rows {
        // Each field holds the outer value first (a keepalive's inner IPv4 and GRE headers follow a comma).
        let outer = |i: usize| r[i].split(',').next().unwrap().to_string();
        assert_eq!(outer(0), "17", "{r:?}");
        assert_eq!(outer(1), "0xb8", "{r:?}");
        assert_eq!(
            (outer(2), outer(3), outer(4)),
            ("1".into(), "1".into(), "1".into()),
            "{r:?}"
        );
        // A Cisco keepalive carries an IPv4 packet from the remote back to us.
        if r[5] == format!("192.0.2.1,{FULL_REMOTE}") {
            keepalives += 1;
        }
    }
    assert!(keepalives >= 1, "no keepalive sent into full");
    // Nothing over the tunnel MTU went out: 1400 inner bytes + 36 of encapsulation.
    let longest = tshark_fields(&pcap, Some("gre.key == 22"), &["ip.len"], &[])
        .iter()
        .map(|r| r[0].split(',').next().unwrap().parse::<u32>().unwrap())
        .max()
        .unwrap();
    assert!(longest <= 1436, "{longest}");
    let _ = std::fs::remove_dir_all(&dir);
}
