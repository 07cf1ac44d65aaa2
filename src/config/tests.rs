use super::validate::parse_core_list;
use super::*;

const MINIMAL: &str = r#"
[eal]
args = ["-l", "0-1"]
[dataplane]
workers = [1]
[[port]]
name = "inside"
device = "net_null0"
address = "10.0.0.1/24"
[[port]]
name = "outside"
device = "net_null1"
address = ["192.0.2.1/24", "2001:db8::1/64"]
[[tunnel]]
name = "a"
local = "192.0.2.1"
remote = "192.0.2.7"
key = 7
routes = ["10.20.0.0/16"]
"#;

#[test]
fn mac_roundtrip() {
    let m: MacAddr = parse_mac("02:00:00:00:00:FE").unwrap();
    assert_eq!(m.0, [2, 0, 0, 0, 0, 0xfe]);
    assert_eq!(m.to_string(), "02:00:00:00:00:fe");
    assert_eq!(parse_mac("02-00-00-00-00-01").unwrap().0[5], 1);
    for bad in [
        "",
        "02:00:00:00:00",
        "02:00:00:00:00:00:00",
        "0g:00:00:00:00:00",
        "2:0:0:0:0:0",
    ] {
        assert!(parse_mac(bad).is_err(), "{bad}");
    }
}

#[test]
fn minimal_loads_with_defaults() {
    let c = Config::from_str_named(MINIMAL, "m.toml").unwrap();
    assert_eq!(c.dataplane.burst, 32);
    assert_eq!(c.dataplane.mbufs, 8191);
    assert_eq!(c.dataplane.idle_sleep_us, 0);
    assert_eq!(c.ports[0].role, Some(PortRole::Inside));
    assert_eq!(c.ports[1].addresses.len(), 2);
    assert_eq!(c.ports[1].mtu, 1500);
    let t = &c.tunnels[0];
    assert_eq!(t.ttl, Ttl::Fixed(64));
    assert_eq!(t.tos, Tos::Inherit);
    assert_eq!((t.in_key(), t.out_key()), (Some(7), Some(7)));
    assert_eq!(t.overhead(), 28);
    assert_eq!(t.effective_mtu(&c), 1472);
    assert_eq!(c.port_by_name("outside").unwrap().role(), PortRole::Outside);
}

#[test]
fn overhead_counts_options() {
    let mut t = TunnelCfg::new(
        "x",
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
    );
    assert_eq!(t.overhead(), 44);
    t.checksum = true;
    t.sequence = true;
    t.ikey = Some(1);
    assert_eq!(t.overhead(), 52); // ikey alone adds nothing on egress
    t.okey = Some(2);
    assert_eq!(t.overhead(), 56);
}

#[test]
fn error_has_file_line_field() {
    let text = MINIMAL.replace("key = 7", "key = 7\nikey = 8");
    let e = Config::from_str_named(&text, "m.toml").unwrap_err();
    assert_eq!(e.field(), "tunnel[0].key");
    assert_eq!(e.line(), Some(18));
    assert!(
        e.to_string()
            .starts_with("m.toml:18: tunnel[0].key: key cannot"),
        "{e}"
    );
}

#[test]
fn serde_errors_are_located() {
    let text = MINIMAL.replace("key = 7", "key = 7\ncolour = 1");
    let e = Config::from_str_named(&text, "m.toml").unwrap_err();
    assert_eq!((e.field(), e.line()), ("tunnel[0].colour", Some(19)), "{e}");
    let text = MINIMAL.replace("\"2001:db8::1/64\"", "\"2001:db8::zz/64\"");
    let e = Config::from_str_named(&text, "m.toml").unwrap_err();
    assert_eq!(
        (e.field(), e.line()),
        ("port[1].address[1]", Some(13)),
        "{e}"
    );
    let text = MINIMAL.replace("name = \"a\"\n", "");
    let e = Config::from_str_named(&text, "m.toml").unwrap_err();
    assert_eq!((e.field(), e.line()), ("tunnel[0].name", Some(14)), "{e}");
    let e = Config::from_str_named("[eal]\nargs = []\n", "m.toml").unwrap_err();
    assert_eq!(e.field(), "dataplane", "{e}");
    let e = Config::from_str_named("[eal\n", "m.toml").unwrap_err();
    assert_eq!((e.field(), e.line()), ("", Some(1)), "{e}");
}

#[test]
fn dotted_and_inline_tables_are_located() {
    let text = MINIMAL.replace("key = 7", "key = 7\nsequence = true\nreorder.window = 65");
    let e = Config::from_str_named(&text, "m.toml").unwrap_err();
    assert_eq!(
        (e.field(), e.line()),
        ("tunnel[0].reorder.window", Some(20)),
        "{e}"
    );
    let text = MINIMAL.replace(
        "key = 7",
        "key = 7\nkeepalive = { interval_s = 10, retriez = 1 }",
    );
    let e = Config::from_str_named(&text, "m.toml").unwrap_err();
    assert_eq!(
        (e.field(), e.line()),
        ("tunnel[0].keepalive.retriez", Some(19)),
        "{e}"
    );
}

#[test]
fn single_string_address_path_has_no_index() {
    let text = MINIMAL.replace("\"10.0.0.1/24\"", "\"192.0.2.1/24\"");
    let e = Config::from_str_named(&text, "m.toml").unwrap_err();
    assert_eq!(
        (e.field(), e.line()),
        ("port[1].address[0]", Some(13)),
        "{e}"
    );
    let text = MINIMAL.replace("address = \"10.0.0.1/24\"", "address = \"0.0.0.0/0\"");
    let e = Config::from_str_named(&text, "m.toml").unwrap_err();
    assert_eq!((e.field(), e.line()), ("port[0].address", Some(9)), "{e}");
}

#[test]
fn worker_cores_checked_against_eal_list() {
    let text = MINIMAL.replace("workers = [1]", "workers = [0]");
    let e = Config::from_str_named(&text, "m.toml").unwrap_err();
    assert_eq!(e.field(), "dataplane.workers[0]");
    assert!(e.message().contains("main lcore"), "{e}");
    let text = MINIMAL.replace("workers = [1]", "workers = [1, 2]");
    let e = Config::from_str_named(&text, "m.toml").unwrap_err();
    assert_eq!(e.field(), "dataplane.workers[1]");
    assert!(e.message().contains("not in the EAL core list"), "{e}");
    assert_eq!(parse_core_list("0-2,5").unwrap().len(), 4);
    assert!(parse_core_list("2-1").is_none());
}

#[test]
fn runtime_tunnel_addition() {
    let c = Config::from_str_named(MINIMAL, "m.toml").unwrap();
    let mut t = TunnelCfg::new(
        "b",
        "192.0.2.1".parse().unwrap(),
        "192.0.2.8".parse().unwrap(),
    );
    t.routes = vec!["10.30.0.0/16".parse().unwrap()];
    validate_tunnel_addition(&c, &t).unwrap();
    t.routes = vec!["10.20.0.0/16".parse().unwrap()];
    let e = validate_tunnel_addition(&c, &t).unwrap_err();
    assert_eq!(
        (e.field(), e.line(), e.file()),
        ("tunnel[1].routes[0]", None, "<runtime>")
    );
    t.routes.clear();
    t.name = "a".into();
    assert_eq!(
        validate_tunnel_addition(&c, &t).unwrap_err().field(),
        "tunnel[1].name"
    );
    t.name = "b".into();
    t.remote = "192.0.2.7".parse().unwrap();
    t.key = Some(7);
    assert_eq!(
        validate_tunnel_addition(&c, &t).unwrap_err().field(),
        "tunnel[1]"
    );
    t.key = Some(8);
    validate_tunnel_addition(&c, &t).unwrap();
}

#[test]
fn serializes_back_to_an_equal_config() {
    let text = MINIMAL.replace(
        "key = 7",
        "key = 7\nttl = \"inherit\"\ntos = 8\nmac_placeholder",
    );
    let text = text.replace(
        "mac_placeholder",
        "reorder = { window = 2 }\nsequence = true",
    );
    let c = Config::from_str_named(&text, "m").unwrap();
    let back = toml::to_string(&c).unwrap();
    let c2 = Config::from_str_named(&back, "back").unwrap();
    assert_eq!(c, c2, "{back}");
}

#[test]
fn enum_and_type_errors_are_located() {
    let text = MINIMAL.replace(
        "name = \"inside\"\n",
        "name = \"inside\"\nrole = \"transit\"\n",
    );
    let e = Config::from_str_named(&text, "m").unwrap_err();
    assert_eq!((e.field(), e.line()), ("port[0].role", Some(8)), "{e}");
    let text = MINIMAL.replace("key = 7", "key = \"seven\"");
    let e = Config::from_str_named(&text, "m").unwrap_err();
    assert_eq!((e.field(), e.line()), ("tunnel[0].key", Some(18)), "{e}");
    let text = MINIMAL.replace("workers = [1]", "workers = [1]\nburst = 70000");
    let e = Config::from_str_named(&text, "m").unwrap_err();
    assert_eq!((e.field(), e.line()), ("dataplane.burst", Some(6)), "{e}");
}

#[test]
fn ttl_tos_values() {
    for (v, want) in [
        ("1", Ttl::Fixed(1)),
        ("255", Ttl::Fixed(255)),
        ("\"inherit\"", Ttl::Inherit),
    ] {
        let text = MINIMAL.replace("key = 7", &format!("key = 7\nttl = {v}"));
        assert_eq!(
            Config::from_str_named(&text, "m").unwrap().tunnels[0].ttl,
            want
        );
    }
    for v in ["0", "256", "-1", "\"copy\""] {
        let text = MINIMAL.replace("key = 7", &format!("key = 7\nttl = {v}"));
        let e = Config::from_str_named(&text, "m").unwrap_err();
        assert_eq!((e.field(), e.line()), ("tunnel[0].ttl", Some(19)), "{e}");
    }
    let text = MINIMAL.replace("key = 7", "key = 7\ntos = 0");
    assert_eq!(
        Config::from_str_named(&text, "m").unwrap().tunnels[0].tos,
        Tos::Fixed(0)
    );
}

#[test]
fn host_defaults_and_interface_names() {
    let text = format!("{MINIMAL}[host]\n");
    let c = Config::from_str_named(&text, "m.toml").unwrap();
    let h = c.host.as_ref().unwrap();
    assert_eq!(
        (h.netns.as_deref(), h.routes, h.table, h.punt_pps),
        (None, HostRoutes::Learn, 254, 10_000)
    );
    assert_eq!(c.ports[0].host_if_name(), "inside");
    // A tunnel address as a single CIDR, like a port's.
    let text = MINIMAL.replace("key = 7", "key = 7\naddress = \"169.254.100.1/29\"");
    let c = Config::from_str_named(&text, "m.toml").unwrap();
    assert_eq!(
        c.tunnels[0].address,
        vec!["169.254.100.1/29".parse::<ipnet::IpNet>().unwrap()]
    );
}

#[test]
fn host_rules_are_located() {
    let err = |text: &str| Config::from_str_named(text, "m.toml").unwrap_err();
    // host_if needs [host].
    let e = err(&MINIMAL.replace("key = 7", "key = 7\nhost_if = \"t\""));
    assert_eq!(e.field(), "tunnel[0].host_if");
    // Two names that agree on their first 15 characters collide once cut.
    let long = MINIMAL
        .replace("name = \"a\"", "name = \"tunnel-to-site-1\"")
        .replace(
            "name = \"inside\"",
            "name = \"tunnel-to-site-2\"\nrole = \"inside\"",
        );
    let e = err(&format!("{long}[host]\n"));
    assert_eq!(e.field(), "tunnel[0].name");
    assert!(e.to_string().contains("already used by port[0]"), "{e}");
    let e = err(&format!("{MINIMAL}[host]\npunt_pps = 0\n"));
    assert_eq!(e.field(), "host.punt_pps");
    let e = err(&format!("{MINIMAL}[host]\nnetns = \"a/b\"\n"));
    assert_eq!(e.field(), "host.netns");
    let e = err(&format!("{MINIMAL}[host]\nroutes = \"maybe\"\n"));
    assert_eq!(e.field(), "host.routes");
    // A tunnel address already used by a port (a single string is reported without an index, as a port's).
    let e = err(&MINIMAL.replace("key = 7", "key = 7\naddress = \"192.0.2.1/24\""));
    assert_eq!(e.field(), "tunnel[0].address");
    assert!(e.to_string().contains("already used by port[1]"), "{e}");
}
