//! Config validation: every bad config under tests/fixtures/bad-configs/ fails with the expected
//! field, line and message; every example under dpdk-config/ loads.

use std::collections::BTreeSet;
use std::path::PathBuf;

use greway::config::{validate_tunnel_addition, Config, PortRole, Tos, Ttl, TunnelCfg};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bad_dir() -> PathBuf {
    root().join("tests/fixtures/bad-configs")
}

/// (fixture, expected field, expected 1-based line, expected message substring)
const BAD: &[(&str, &str, usize, &str)] = &[
    (
        "unknown-key.toml",
        "tunnel[0].colour",
        24,
        "unknown key `colour`",
    ),
    ("unknown-table.toml", "logging", 36, "unknown key `logging`"),
    (
        "bad-cidr.toml",
        "port[0].address",
        12,
        "invalid CIDR \"10.0.0.300/24\"",
    ),
    (
        "bad-cidr-in-array.toml",
        "port[1].address[1]",
        17,
        "invalid CIDR \"2001:db8::1/129\"",
    ),
    (
        "bad-ip.toml",
        "tunnel[0].remote",
        22,
        "invalid IP address \"198.51.100\"",
    ),
    ("bad-mac.toml", "neighbor[0].mac", 29, "invalid MAC address"),
    (
        "bad-prometheus.toml",
        "metrics.prometheus",
        37,
        "invalid socket address",
    ),
    (
        "unknown-port-neighbor.toml",
        "neighbor[0].port",
        27,
        "unknown port \"wan\"",
    ),
    (
        "unknown-port-route.toml",
        "route[0].port",
        34,
        "unknown port \"wan\"",
    ),
    (
        "duplicate-port-name.toml",
        "port[1].name",
        16,
        "duplicate port name \"outside\"",
    ),
    (
        "duplicate-tunnel-name.toml",
        "tunnel[1].name",
        37,
        "duplicate tunnel name \"site-b\"",
    ),
    (
        "duplicate-tunnel-identity.toml",
        "tunnel[1]",
        36,
        "same identity",
    ),
    (
        "local-not-ours.toml",
        "tunnel[0].local",
        21,
        "not an address of any port",
    ),
    (
        "local-on-inside-port.toml",
        "tunnel[0].local",
        21,
        "must be an outside port's address",
    ),
    (
        "family-mismatch.toml",
        "tunnel[0].remote",
        22,
        "different address families",
    ),
    (
        "key-out-of-range.toml",
        "tunnel[0].key",
        23,
        "0..=4294967295",
    ),
    (
        "key-with-ikey.toml",
        "tunnel[0].key",
        23,
        "key cannot be combined with ikey/okey",
    ),
    (
        "reorder-without-sequence.toml",
        "tunnel[0].reorder",
        24,
        "reorder requires sequence = true",
    ),
    (
        "reorder-window-too-big.toml",
        "tunnel[0].reorder.window",
        25,
        "1..=64, got 65",
    ),
    (
        "ttl-zero.toml",
        "tunnel[0].ttl",
        24,
        "ttl must be 1..=255 or \"inherit\", got 0",
    ),
    ("ttl-too-big.toml", "tunnel[0].ttl", 24, "got 256"),
    (
        "tos-bad-string.toml",
        "tunnel[0].tos",
        24,
        "tos must be 0..=255",
    ),
    (
        "mtu-below-minimum.toml",
        "tunnel[0].mtu",
        24,
        "below the minimum 576",
    ),
    (
        "mtu-ipv6-below-1280.toml",
        "tunnel[0].mtu",
        24,
        "below the minimum 1280",
    ),
    ("mtu-above-port.toml", "tunnel[0].mtu", 24, "exceeds 1472"),
    (
        "same-route-two-tunnels.toml",
        "tunnel[1].routes[1]",
        41,
        "already points into tunnel[0]",
    ),
    (
        "route-host-bits.toml",
        "tunnel[0].routes[0]",
        24,
        "did you mean 10.20.0.0/16",
    ),
    (
        "workers-empty.toml",
        "dataplane.workers",
        6,
        "at least one worker",
    ),
    (
        "workers-duplicate.toml",
        "dataplane.workers[1]",
        6,
        "duplicate worker core 1",
    ),
    (
        "worker-main-lcore.toml",
        "dataplane.workers[0]",
        6,
        "EAL main lcore",
    ),
    (
        "burst-zero.toml",
        "dataplane.burst",
        7,
        "burst must be 1..=256, got 0",
    ),
    (
        "burst-too-big.toml",
        "dataplane.burst",
        7,
        "burst must be 1..=256, got 300",
    ),
    (
        "missing-required-field.toml",
        "tunnel[0].remote",
        19,
        "missing required key `remote`",
    ),
    (
        "missing-dataplane.toml",
        "dataplane",
        1,
        "missing required key `dataplane`",
    ),
    (
        "empty-device.toml",
        "port[1].device",
        16,
        "device must not be empty",
    ),
    (
        "role-not-inferable.toml",
        "port[1].role",
        14,
        "cannot infer the role",
    ),
    ("no-outside-port.toml", "port", 9, "role \"outside\""),
    (
        "remote-unreachable.toml",
        "tunnel[0].remote",
        22,
        "no route to remote",
    ),
    (
        "neighbor-off-subnet.toml",
        "neighbor[0].ip",
        28,
        "not a foreign host on a subnet",
    ),
    (
        "route-via-off-link.toml",
        "route[0].via",
        33,
        "not a foreign host on a subnet",
    ),
    (
        "port-mtu-too-small.toml",
        "port[1].mtu",
        18,
        "port mtu must be 576..=9216",
    ),
    ("syntax-error.toml", "", 16, "invalid TOML"),
];

#[test]
fn every_bad_config_fails_with_field_and_line() {
    let mut failures = Vec::new();
    for &(file, field, line, msg) in BAD {
        let path = bad_dir().join(file);
        match Config::load(&path) {
            Ok(_) => failures.push(format!("{file}: loaded, expected an error")),
            Err(e) => {
                let ok = e.field().contains(field)
                    && e.line() == Some(line)
                    && e.message().contains(msg)
                    && e.file() == path.display().to_string();
                if !ok {
                    failures.push(format!(
                        "{file}: want {field} at line {line} with {msg:?}, got: {e}"
                    ));
                }
                let shown = e.to_string();
                let want = if field.is_empty() {
                    format!("{}:{line}: ", path.display())
                } else {
                    format!("{}:{line}: {}: ", path.display(), e.field())
                };
                if !shown.starts_with(&want) {
                    failures.push(format!(
                        "{file}: display {shown:?} does not start with {want:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn table_covers_every_fixture() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(bad_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    let in_table: BTreeSet<String> = BAD.iter().map(|b| b.0.to_string()).collect();
    assert_eq!(in_table.len(), BAD.len(), "duplicate rows in BAD");
    assert_eq!(on_disk, in_table);
    assert!(BAD.len() >= 18);
}

#[test]
fn missing_file_names_the_path() {
    let path = bad_dir().join("does-not-exist.toml");
    let e = Config::load(&path).unwrap_err();
    assert_eq!(e.line(), None);
    assert_eq!(e.field(), "");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}: ", path.display())),
        "{shown}"
    );
    assert!(shown.contains("cannot read"), "{shown}");
}

#[test]
fn every_example_loads() {
    let dir = root().join("dpdk-config");
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            if let Err(e) = Config::load(&path) {
                panic!("{e}");
            }
            seen.insert(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    for want in ["demo.toml", "null-bench.toml", "tap-e2e.toml", "nic.toml"] {
        assert!(seen.contains(want), "missing example {want}");
    }
}

#[test]
fn demo_example_contents() {
    let c = Config::load(&root().join("dpdk-config/demo.toml")).unwrap();
    assert_eq!(
        c.eal.args,
        [
            "-l",
            "0-1",
            "--no-huge",
            "-m",
            "512",
            "--no-pci",
            "--no-shconf",
            "--file-prefix",
            "greway-demo"
        ]
    );
    let inside = c.port_by_name("inside").unwrap();
    let outside = c.port_by_name("outside").unwrap();
    assert_eq!(inside.role(), PortRole::Inside);
    assert_eq!(outside.role(), PortRole::Outside);
    assert!(inside
        .device
        .contains("rx_pcap=dpdk-config/pcap/inside.pcap"));
    assert!(inside.device.contains("tx_pcap=out/demo-inside.pcap"));
    assert!(outside
        .device
        .contains("rx_pcap=dpdk-config/pcap/outside.pcap"));
    assert!(outside.device.contains("tx_pcap=out/demo-outside.pcap"));
    assert_eq!(c.tunnels.len(), 1);
    let t = &c.tunnels[0];
    assert!(t.checksum && t.sequence);
    assert_eq!((t.in_key(), t.out_key()), (Some(1001), Some(1001)));
    assert_eq!(t.ttl, Ttl::Fixed(64));
    assert_eq!(t.tos, Tos::Inherit);
    assert_eq!(t.overhead(), 36);
    assert_eq!(t.effective_mtu(&c), 1464);
    assert_eq!(c.port_for_local(t.local).unwrap().name, "outside");
}

#[test]
fn tap_example_has_asymmetric_ipv6_tunnel() {
    let c = Config::load(&root().join("dpdk-config/tap-e2e.toml")).unwrap();
    let t = c.tunnel_by_name("peer-v6").unwrap();
    assert_eq!((t.in_key(), t.out_key()), (Some(201), Some(202)));
    assert_eq!(t.overhead(), 40 + 4 + 4 + 4);
    assert_eq!(t.effective_mtu(&c), 1448);
    assert_eq!(c.dataplane.idle_sleep_us, 50);
}

#[test]
fn runtime_addition_uses_file_rules() {
    let c = Config::load(&root().join("dpdk-config/demo.toml")).unwrap();
    let mut t = TunnelCfg::new(
        "site-c",
        "192.0.2.1".parse().unwrap(),
        "198.51.100.8".parse().unwrap(),
    );
    t.routes = vec!["10.30.0.0/16".parse().unwrap()];
    validate_tunnel_addition(&c, &t).unwrap();

    let mut dup = t.clone();
    dup.name = "site-b".into();
    let e = validate_tunnel_addition(&c, &dup).unwrap_err();
    assert_eq!(e.field(), "tunnel[1].name");
    assert_eq!(e.line(), None);

    let mut bad = t.clone();
    bad.reorder = Some(greway::config::ReorderCfg {
        window: 4,
        timeout_ms: 10,
    });
    assert_eq!(
        validate_tunnel_addition(&c, &bad).unwrap_err().field(),
        "tunnel[1].reorder"
    );

    let mut bad = t.clone();
    bad.local = "10.0.0.1".parse().unwrap();
    assert_eq!(
        validate_tunnel_addition(&c, &bad).unwrap_err().field(),
        "tunnel[1].local"
    );

    let mut bad = t;
    bad.routes.push("10.20.0.0/16".parse().unwrap());
    let e = validate_tunnel_addition(&c, &bad).unwrap_err();
    assert_eq!(e.field(), "tunnel[1].routes[1]");
    assert!(
        e.to_string()
            .starts_with("<runtime>: tunnel[1].routes[1]: "),
        "{e}"
    );
}

#[test]
fn from_str_named_uses_the_name() {
    let text = std::fs::read_to_string(bad_dir().join("ttl-zero.toml")).unwrap();
    let e = Config::from_str_named(&text, "inline.toml").unwrap_err();
    assert!(
        e.to_string().starts_with("inline.toml:24: tunnel[0].ttl: "),
        "{e}"
    );
}
