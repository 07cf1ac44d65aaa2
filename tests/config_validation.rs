//! Config validation: every bad config under tests/fixtures/bad-configs/ fails with the expected
//! field, line and message; every example under dpdk-config/ loads.

use std::collections::BTreeSet;
use std::path::PathBuf;

use greway::config::{validate_tunnel_addition, Config, PortRole, Tos, Ttl, TunnelCfg};

mod common;
use common::bad_configs::BAD;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bad_dir() -> PathBuf {
    root().join("tests/fixtures/bad-configs")
}

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
