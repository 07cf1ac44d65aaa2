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

/// MINIMAL with addresses on tunnel "a" and two `[[route]]`s into it: via a peer on its subnet, and by name.
fn with_tunnel_addresses() -> String {
    MINIMAL.replace(
        "key = 7\n",
        "key = 7\naddress = [\"169.254.100.1/29\", \"fd00:100::1/125\"]\n",
    ) + r#"[[route]]
prefix = "10.60.0.0/16"
via = "169.254.100.2"
[[route]]
prefix = "10.61.0.0/16"
tunnel = "a"
"#
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_with(text: &str, needle: &str) -> usize {
    1 + text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the text"))
}

/// `text` must fail at `field`, on the line holding `at`, with a message containing `msg`.
fn fails_at(text: &str, field: &str, at: &str, msg: &str) {
    let e = Config::from_str_named(text, "t.toml").unwrap_err();
    let line = line_with(text, at);
    assert_eq!((e.field(), e.line()), (field, Some(line)), "{e}");
    assert!(e.message().contains(msg), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("t.toml:{line}: {field}: ")),
        "{e}"
    );
}

#[test]
fn tunnel_addresses_and_routes_into_tunnels_load() {
    let c = Config::from_str_named(&with_tunnel_addresses(), "t.toml").unwrap();
    let t = &c.tunnels[0];
    assert_eq!(t.address.len(), 2);
    let subnets: Vec<String> = t.subnets().map(|n| n.to_string()).collect();
    assert_eq!(subnets, ["169.254.100.0/29", "fd00:100::/125"]);
    assert!(t.has_address("169.254.100.1".parse().unwrap()));
    assert!(t.peer_on_link("169.254.100.2".parse().unwrap()));
    assert!(!t.peer_on_link("169.254.100.1".parse().unwrap()), "own");
    assert!(!t.peer_on_link("169.254.100.9".parse().unwrap()));
    assert_eq!(c.route_tunnel(&c.routes[0]), Some(0));
    assert_eq!(c.route_tunnel(&c.routes[1]), Some(0));
    assert_eq!(
        t.min_mtu(),
        1280,
        "an IPv6 address makes the tunnel carry IPv6"
    );
    // One CIDR as a string, like a port's; /31, /32 (no peer subnet), /127 and /128 are host addresses.
    for a in [
        "\"169.254.100.1/29\"",
        "[\"169.254.100.0/31\"]",
        "[\"169.254.100.1/31\"]",
        "\"169.254.100.1/32\"",
        "[\"fd00:100::/127\", \"fd00:200::/128\"]",
    ] {
        let text = MINIMAL.replace("key = 7\n", &format!("key = 7\naddress = {a}\n"));
        let c = Config::from_str_named(&text, "t.toml").unwrap_or_else(|e| panic!("{a}: {e}"));
        assert!(!c.tunnels[0].address.is_empty());
    }
    let text = MINIMAL.replace("key = 7\n", "key = 7\naddress = \"169.254.100.1/32\"\n");
    let c = Config::from_str_named(&text, "t.toml").unwrap();
    assert_eq!(
        c.tunnels[0].subnets().count(),
        0,
        "a /32 has no peer subnet"
    );
    // Round trip through serde.
    let c = Config::from_str_named(&with_tunnel_addresses(), "t.toml").unwrap();
    let back = toml::to_string(&c).unwrap();
    assert_eq!(Config::from_str_named(&back, "back").unwrap(), c, "{back}");
}

#[test]
fn tunnel_address_errors_name_file_line_and_field() {
    let base = with_tunnel_addresses();
    let addr = |a: &str| base.replace("\"169.254.100.1/29\"", a);
    fails_at(
        &addr("\"169.254.100.0/29\""),
        "tunnel[0].address[0]",
        "169.254.100.0/29",
        "network address",
    );
    fails_at(
        &addr("\"169.254.100.7/29\""),
        "tunnel[0].address[0]",
        "169.254.100.7/29",
        "broadcast address",
    );
    fails_at(
        &base.replace("\"fd00:100::1/125\"", "\"fd00:100::/125\""),
        "tunnel[0].address[1]",
        "fd00:100::/125",
        "network address",
    );
    fails_at(
        &addr("\"10.0.0.1/32\""),
        "tunnel[0].address[0]",
        "10.0.0.1/32",
        "already used by port[0].address[0]",
    );
    fails_at(
        &addr("\"10.0.0.9/30\""),
        "tunnel[0].address[0]",
        "10.0.0.9/30",
        "overlaps the subnet 10.0.0.0/24 of port[0] \"inside\"",
    );
    fails_at(
        &addr("\"224.0.0.5/29\""),
        "tunnel[0].address[0]",
        "224.0.0.5/29",
        "not a usable unicast",
    );
    fails_at(
        &addr("\"169.254.100.1/0\""),
        "tunnel[0].address[0]",
        "169.254.100.1/0",
        "whole address space",
    );
    fails_at(
        &addr("\"169.254.100.1/29\", \"169.254.100.2/30\""),
        "tunnel[0].address[1]",
        "169.254.100.2/30",
        "overlaps the subnet 169.254.100.0/29 of another address of this tunnel",
    );
    // Against another tunnel: same address, overlapping subnet.
    let second = |a: &str| {
        base.clone()
            + &format!(
                "[[tunnel]]\nname = \"b\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.8\"\naddress = \"{a}\"\n"
            )
    };
    fails_at(
        &second("169.254.100.1/32"),
        "tunnel[1].address",
        "address = \"169.254.100.1/32\"",
        "already used by tunnel[0] \"a\"",
    );
    fails_at(
        &second("169.254.100.5/30"),
        "tunnel[1].address",
        "address = \"169.254.100.5/30\"",
        "overlaps the subnet 169.254.100.0/29 of tunnel[0] \"a\"",
    );
    Config::from_str_named(&second("169.254.101.1/29"), "t.toml").unwrap();
    // A subnet that is also a route prefix, or holds a tunnel's remote.
    fails_at(
        &base.replace(
            "routes = [\"10.20.0.0/16\"]",
            "routes = [\"169.254.100.0/29\"]",
        ),
        "tunnel[0].address[0]",
        "169.254.100.1/29",
        "also in this tunnel's routes",
    );
    // A subnet inside a tunnel route of another length is fine (the longest prefix wins).
    let text = addr("\"10.20.0.1/24\"").replace("via = \"169.254.100.2\"", "via = \"10.20.0.2\"");
    Config::from_str_named(&text, "t.toml").unwrap();
    fails_at(
        &addr("\"192.0.2.7/32\""),
        "tunnel[0].address[0]",
        "192.0.2.7/32",
        "overlaps the subnet 192.0.2.0/24 of port[1]",
    );
}

#[test]
fn route_target_errors_name_file_line_and_field() {
    let base = with_tunnel_addresses();
    fails_at(
        &base.replace("via = \"169.254.100.2\"", "via = \"169.254.101.2\""),
        "route[0].via",
        "via = \"169.254.101.2\"",
        "on no tunnel's subnet",
    );
    fails_at(
        &base.replace("via = \"169.254.100.2\"", "via = \"169.254.100.1\""),
        "route[0].via",
        "via = \"169.254.100.1\"",
        "an address of tunnel \"a\" itself",
    );
    fails_at(
        &base.replace("via = \"169.254.100.2\"", "via = \"fd00:100::2\""),
        "route[0].via",
        "via = \"fd00:100::2\"",
        "not of the same family",
    );
    fails_at(
        &base.replace("tunnel = \"a\"", "tunnel = \"a\"\nport = \"inside\""),
        "route[1].tunnel",
        "tunnel = \"a\"",
        "either port or tunnel",
    );
    fails_at(
        &base.replace("tunnel = \"a\"", "tunnel = \"a\"\nvia = \"169.254.100.3\""),
        "route[1].via",
        "via = \"169.254.100.3\"",
        "cannot be combined with tunnel",
    );
    fails_at(
        &base.replace("tunnel = \"a\"", "tunnel = \"nope\""),
        "route[1].tunnel",
        "tunnel = \"nope\"",
        "unknown tunnel \"nope\" (tunnels: a)",
    );
    // Neither port, tunnel nor via: the route's table header.
    let text = base.replace("tunnel = \"a\"\n", "");
    let e = Config::from_str_named(&text, "t.toml").unwrap_err();
    let header = text
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == "[[route]]")
        .nth(1)
        .unwrap()
        .0
        + 1;
    assert_eq!((e.field(), e.line()), ("route[1]", Some(header)), "{e}");
    assert!(e.message().contains("needs port, tunnel, or a via"), "{e}");
    // A prefix goes into one tunnel only: a tunnel route, or another tunnel's subnet.
    fails_at(
        &base.replace("prefix = \"10.61.0.0/16\"", "prefix = \"10.20.0.0/16\""),
        "route[1].prefix",
        "prefix = \"10.20.0.0/16\"",
        "already points into tunnel[0] \"a\"",
    );
    fails_at(
        &base.replace("prefix = \"10.61.0.0/16\"", "prefix = \"169.254.100.0/29\""),
        "tunnel[0].address[0]",
        "169.254.100.1/29",
        "also the prefix of route[1]",
    );
    // A route through a port may still share a tunnel route's prefix (the tunnel route wins).
    let text = base.clone() + "[[route]]\nprefix = \"10.20.0.0/16\"\nport = \"inside\"\n";
    Config::from_str_named(&text, "t.toml").unwrap();
    // A tunnel whose remote lies in another tunnel's subnet would send its GRE packets into that tunnel.
    let text = base.clone()
        + "[[tunnel]]\nname = \"b\"\nlocal = \"192.0.2.1\"\nremote = \"169.254.100.4\"\n";
    let e = Config::from_str_named(&text, "t.toml").unwrap_err();
    assert_eq!(e.field(), "tunnel[1].remote", "{e}");
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

/// MINIMAL with an l2 port "probe" and an ERSPAN tunnel "span" delivering to it; `port_extra` and `span_extra`
/// are TOML lines added to the port and the tunnel.
fn erspan_text(port_extra: &str, span_extra: &str) -> String {
    format!(
        "{MINIMAL}[[port]]\nname = \"probe\"\ndevice = \"net_null2\"\nrole = \"l2\"\n{port_extra}\n\
         [[tunnel]]\nname = \"span\"\nmode = \"erspan\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.50\"\n{span_extra}\n"
    )
}

#[test]
fn erspan_tunnel_and_l2_port_are_accepted() {
    let c = Config::from_str_named(
        &erspan_text("", "erspan = { session = 1023, version = 2, index = 1048575, hwid = 63 }\ndeliver = \"probe\""),
        "m",
    )
    .unwrap();
    let probe = c.port_by_name("probe").unwrap();
    assert_eq!((probe.role(), probe.addresses.len()), (PortRole::L2, 0));
    let t = c.tunnel_by_name("span").unwrap();
    assert_eq!(t.mode, TunnelMode::Erspan);
    let rx = t.erspan_rx(&c).unwrap();
    assert_eq!((rx.session, rx.deliver), (1023, Some(2)));
    assert_eq!(c.tunnel_by_name("a").unwrap().erspan_rx(&c), None);
}

#[test]
fn erspan_and_l2_errors_name_the_field() {
    let ok = "erspan = { session = 5 }\ndeliver = \"probe\"";
    let cases = [
        (
            erspan_text("address = \"10.9.0.1/24\"", ok),
            "port[2].address",
        ),
        (erspan_text("", "deliver = \"probe\""), "tunnel[1].erspan"),
        (
            erspan_text("", "erspan = { session = 5 }"),
            "tunnel[1].deliver",
        ),
        (
            erspan_text("", "erspan = { session = 1024 }\ndeliver = \"probe\""),
            "tunnel[1].erspan.session",
        ),
        (
            erspan_text(
                "",
                "erspan = { session = 5, version = 3 }\ndeliver = \"probe\"",
            ),
            "tunnel[1].erspan.version",
        ),
        (
            erspan_text(
                "",
                "erspan = { session = 5, index = 1048576 }\ndeliver = \"probe\"",
            ),
            "tunnel[1].erspan.index",
        ),
        (
            erspan_text(
                "",
                "erspan = { session = 5, hwid = 64 }\ndeliver = \"probe\"",
            ),
            "tunnel[1].erspan.hwid",
        ),
        (
            erspan_text("", "erspan = { session = 5 }\ndeliver = \"inside\""),
            "tunnel[1].deliver",
        ),
        (
            erspan_text("", "erspan = { session = 5 }\ndeliver = \"nope\""),
            "tunnel[1].deliver",
        ),
        (
            erspan_text("", &format!("{ok}\nroutes = [\"10.99.0.0/16\"]")),
            "tunnel[1].routes",
        ),
        (
            erspan_text("", &format!("{ok}\nsequence = true")),
            "tunnel[1].sequence",
        ),
        (
            MINIMAL.replace("key = 7", "key = 7\nerspan = { session = 5 }"),
            "tunnel[0].erspan",
        ),
        (
            MINIMAL.replace("key = 7", "key = 7\ndeliver = \"inside\""),
            "tunnel[0].deliver",
        ),
        (
            erspan_text(
                "",
                &format!("{ok}\n[[route]]\nprefix = \"10.99.0.0/16\"\nport = \"probe\""),
            ),
            "route[0].port",
        ),
        (
            erspan_text(
                "",
                &format!("{ok}\n[[route]]\nprefix = \"10.99.0.0/16\"\ntunnel = \"span\""),
            ),
            "route[0].tunnel",
        ),
    ];
    for (text, field) in cases {
        let e = Config::from_str_named(&text, "m").unwrap_err();
        assert_eq!(e.field(), field, "{e}\n{text}");
    }
}

#[test]
fn an_erspan_receiver_needs_no_inside_port() {
    let text = erspan_text("", "erspan = { session = 5 }\ndeliver = \"probe\"");
    // Without the inside port and the IP tunnel "a": an outside port, an l2 port, an ERSPAN tunnel.
    let text = text
        .replace("[[port]]\nname = \"inside\"\ndevice = \"net_null0\"\naddress = \"10.0.0.1/24\"\n", "")
        .replace(
            "[[tunnel]]\nname = \"a\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.7\"\nkey = 7\nroutes = [\"10.20.0.0/16\"]\n",
            "",
        );
    let c = Config::from_str_named(&text, "m").unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!((c.ports.len(), c.tunnels.len()), (2, 1));
    // An IP tunnel still needs an inside port.
    let with_ip =
        format!("{text}[[tunnel]]\nname = \"b\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.8\"\n");
    let e = Config::from_str_named(&with_ip, "m").unwrap_err();
    assert_eq!(e.field(), "port", "{e}");
}

/// [`erspan_text`] with `mirrors` ([[mirror]] tables) after it.
fn mirror_text(span_extra: &str, mirrors: &str) -> String {
    format!("{}{mirrors}\n", erspan_text("", span_extra))
}

#[test]
fn a_mirror_makes_its_erspan_tunnel_a_sender_without_deliver() {
    let c = Config::from_str_named(
        &mirror_text(
            "erspan = { session = 123, version = 1, index = 9 }",
            "[[mirror]]\nport = \"inside\"\ntunnel = \"span\"\n[[mirror]]\nport = \"outside\"\ndirection = \"both\"\ntunnel = \"span\"",
        ),
        "m",
    )
    .unwrap();
    assert_eq!(c.mirrors.len(), 2);
    assert_eq!(c.mirrors[0].direction, MirrorDirection::Rx, "rx by default");
    assert!(c.mirrors[1].direction.rx() && c.mirrors[1].direction.tx());
    let t = c.tunnel_by_name("span").unwrap();
    let tx = t.erspan_tx(&c).unwrap();
    assert_eq!((tx.version, tx.session, tx.index, tx.hwid), (1, 123, 9, 0));
    // No deliver: what it receives is dropped, not delivered.
    assert_eq!(t.erspan_rx(&c).unwrap().deliver, None);
    // IPv4 20 + GRE with a sequence number 8 + type II 8.
    assert_eq!(t.overhead_in(&c), 36);
    assert_eq!(t.effective_mtu(&c), 1500 - 36);
    // A tunnel that also delivers: a Linux erspan device's both directions.
    let c = Config::from_str_named(
        &mirror_text(
            "erspan = { session = 5, version = 2 }\ndeliver = \"probe\"",
            "[[mirror]]\nport = \"probe\"\ndirection = \"tx\"\ntunnel = \"span\"",
        ),
        "m",
    )
    .unwrap();
    let t = c.tunnel_by_name("span").unwrap();
    assert_eq!(t.erspan_rx(&c).unwrap().deliver, Some(2));
    assert_eq!(t.overhead_in(&c), 20 + 8 + 12);
}

#[test]
fn mirror_errors_name_the_field() {
    let send = "erspan = { session = 5, version = 1 }";
    let delivers = format!("{send}\ndeliver = \"probe\"");
    let m = |port: &str, dir: &str, tunnel: &str| {
        format!("[[mirror]]\nport = \"{port}\"\ndirection = \"{dir}\"\ntunnel = \"{tunnel}\"\n")
    };
    let cases = [
        (
            mirror_text(send, &m("nope", "rx", "span")),
            "mirror[0].port",
            "unknown port",
        ),
        (
            mirror_text(&delivers, &m("inside", "rx", "nope")),
            "mirror[0].tunnel",
            "unknown tunnel",
        ),
        (
            mirror_text(&delivers, &m("inside", "rx", "a")),
            "mirror[0].tunnel",
            "mode = \"erspan\"",
        ),
        (
            mirror_text("erspan = { session = 5 }", &m("inside", "rx", "span")),
            "tunnel[1].erspan.version",
            "target of mirror[0]",
        ),
        (
            mirror_text(&format!("{send}\nkey = 3"), &m("inside", "rx", "span")),
            "tunnel[1].key",
            "no GRE key",
        ),
        (
            mirror_text(
                &format!("{send}\nchecksum = true"),
                &m("inside", "rx", "span"),
            ),
            "tunnel[1].checksum",
            "no GRE checksum",
        ),
        (
            mirror_text(
                send,
                &(m("inside", "both", "span") + &m("inside", "tx", "span")),
            ),
            "mirror[1].direction",
            "overlaps mirror[0]",
        ),
        (
            mirror_text(send, &m("inside", "sideways", "span")),
            "mirror[0].direction",
            "",
        ),
        (
            mirror_text(
                send,
                "[[mirror]]\nport = \"inside\"\ntunnel = \"span\"\nsession = 4",
            ),
            "mirror[0].session",
            "",
        ),
        // Without a mirror, a tunnel with no deliver has nothing to do.
        (
            mirror_text(send, ""),
            "tunnel[1].deliver",
            "or a [[mirror]]",
        ),
    ];
    for (text, field, msg) in cases {
        let e = Config::from_str_named(&text, "m").unwrap_err();
        assert_eq!(e.field(), field, "{e}\n{text}");
        assert!(e.message().contains(msg), "{e}");
    }
    // rx and tx of one port into one session are two entries, not a duplicate; two sessions may copy one port.
    let ok = mirror_text(
        send,
        &(m("inside", "rx", "span") + &m("inside", "tx", "span")),
    );
    Config::from_str_named(&ok, "m").unwrap();
}

/// An outside port, l2 ports "lan" and "trunk", TEB tunnels "l2-b" and "l2-c", an IP tunnel "ip", and
/// `bridges` (TOML) after them; no inside port (a TEB-only gateway needs none... but "ip" needs one: it is there).
fn teb_text(tunnel_extra: &str, bridges: &str) -> String {
    format!(
        "[eal]\nargs = [\"-l\", \"0-1\"]\n[dataplane]\nworkers = [1]\n\
         [[port]]\nname = \"outside\"\ndevice = \"net_null1\"\naddress = \"192.0.2.1/24\"\n\
         [[port]]\nname = \"lan\"\ndevice = \"net_null2\"\nrole = \"l2\"\n\
         [[port]]\nname = \"trunk\"\ndevice = \"net_null3\"\nrole = \"l2\"\n\
         [[port]]\nname = \"inside\"\ndevice = \"net_null0\"\naddress = \"10.0.0.1/24\"\n\
         [[tunnel]]\nname = \"l2-b\"\nmode = \"teb\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.7\"\nkey = 7\n{tunnel_extra}\n\
         [[tunnel]]\nname = \"l2-c\"\nmode = \"teb\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.8\"\n\
         [[tunnel]]\nname = \"ip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.9\"\nroutes = [\"10.9.0.0/16\"]\n\
         {bridges}"
    )
}

const TWO_BRIDGES: &str = "[[bridge]]\nname = \"office\"\nmembers = [\"lan\", \"trunk.10\", \"l2-b\"]\n\
                           [[bridge]]\nname = \"pw\"\nmembers = [\"trunk.20\", \"l2-c\"]\nlearning = false\n";

#[test]
fn teb_tunnels_and_bridges_load_with_defaults_and_an_mtu_for_ethernet_payloads() {
    let c = Config::from_str_named(&teb_text("", TWO_BRIDGES), "m").unwrap();
    let b = &c.bridges[0];
    assert_eq!((b.learning, b.mac_table_size, b.aging_s), (true, 4096, 300));
    assert!(!c.bridges[1].learning);
    let t = c.tunnel_by_name("l2-b").unwrap();
    assert_eq!(t.mode, TunnelMode::Teb);
    // 1500 - IPv4 20 - GRE with a key 8 - the frames' Ethernet header 14, as Linux gretap's 1462 without key.
    assert_eq!((t.overhead(), t.effective_mtu(&c)), (42, 1458));
    assert_eq!(c.tunnel_by_name("l2-c").unwrap().effective_mtu(&c), 1462);
    assert_eq!(
        c.bridge_member("trunk.10"),
        Ok(BridgeMember::Port {
            port: 2,
            vlan: Some(10)
        })
    );
    assert_eq!(c.bridge_member("l2-b"), Ok(BridgeMember::Tunnel(0)));
    // A TEB-only gateway needs no inside port.
    let teb_only = teb_text("", TWO_BRIDGES)
        .replace("[[port]]\nname = \"inside\"\ndevice = \"net_null0\"\naddress = \"10.0.0.1/24\"\n", "")
        .replace("[[tunnel]]\nname = \"ip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.9\"\nroutes = [\"10.9.0.0/16\"]\n", "");
    Config::from_str_named(&teb_only, "m").unwrap_or_else(|e| panic!("{e}\n{teb_only}"));
}

#[test]
fn teb_and_bridge_errors_name_file_line_and_field() {
    let one = |members: &str, extra: &str| {
        format!("[[bridge]]\nname = \"office\"\nmembers = {members}\n{extra}\n[[bridge]]\nname = \"pw\"\nmembers = [\"trunk.20\", \"l2-c\"]\n")
    };
    let cases = [
        (
            teb_text("", &one("[\"lan\", \"nope\"]", "")),
            "bridge[0].members[1]",
            "is no port",
        ),
        (
            teb_text("", &one("[\"lan\", \"outside\", \"l2-b\"]", "")),
            "bridge[0].members[1]",
            "role = \"l2\"",
        ),
        (
            teb_text("", &one("[\"lan\", \"ip\", \"l2-b\"]", "")),
            "bridge[0].members[1]",
            "mode = \"teb\"",
        ),
        (
            teb_text("", &one("[\"lan\", \"trunk.0\", \"l2-b\"]", "")),
            "bridge[0].members[1]",
            "1..=4094",
        ),
        (
            teb_text("", &one("[\"lan\", \"trunk.4095\", \"l2-b\"]", "")),
            "bridge[0].members[1]",
            "1..=4094",
        ),
        (
            teb_text("", &one("[\"lan\", \"trunk.x\", \"l2-b\"]", "")),
            "bridge[0].members[1]",
            "1..=4094",
        ),
        (
            teb_text("", &one("[\"lan\", \"trunk.20\", \"l2-b\"]", "")),
            "bridge[1].members[0]",
            "already a member of bridge \"office\"",
        ),
        (
            teb_text("", &one("[\"lan\", \"l2-b\", \"lan\"]", "")),
            "bridge[0].members[2]",
            "twice",
        ),
        (
            teb_text("", &one("[\"trunk\", \"trunk.10\", \"l2-b\"]", "")),
            "bridge[0].members[1]",
            "as a whole or by VLAN",
        ),
        (
            teb_text("", &one("[\"lan\"]", "")),
            "bridge[0].members",
            "at least two",
        ),
        (
            teb_text("", &one("[\"lan\", \"l2-b\"]", "mac_table_size = 0")),
            "bridge[0].mac_table_size",
            "1..=",
        ),
        (
            teb_text("", &one("[\"lan\", \"l2-b\"]", "mac_table_size = 2000000")),
            "bridge[0].mac_table_size",
            "1..=",
        ),
        (
            teb_text("", &one("[\"lan\", \"l2-b\"]", "aging_s = 0")),
            "bridge[0].aging_s",
            "1..=",
        ),
        (
            teb_text("", &one("[\"lan\", \"l2-b\"]", "colour = 1")),
            "bridge[0].colour",
            "unknown key",
        ),
        (
            teb_text(
                "",
                &format!(
                    "{}[[bridge]]\nname = \"office\"\nmembers = [\"trunk.30\", \"lan.5\"]\n",
                    TWO_BRIDGES
                ),
            ),
            "bridge[2].name",
            "duplicate",
        ),
        // A TEB tunnel in no bridge.
        (
            teb_text(
                "",
                "[[bridge]]\nname = \"office\"\nmembers = [\"lan\", \"l2-b\"]\n",
            ),
            "tunnel[1].mode",
            "no bridge",
        ),
        // Options of IP tunnels.
        (
            teb_text("routes = [\"10.8.0.0/16\"]", TWO_BRIDGES),
            "tunnel[0].routes",
            "carry IP",
        ),
        (
            teb_text("address = \"10.77.0.1/30\"", TWO_BRIDGES),
            "tunnel[0].address",
            "carry IP",
        ),
        (
            teb_text("mss_clamp = true", TWO_BRIDGES),
            "tunnel[0].mss_clamp",
            "carry IP",
        ),
        (
            teb_text("mtu = 1459", TWO_BRIDGES),
            "tunnel[0].mtu",
            "exceeds 1458",
        ),
        (
            teb_text("deliver = \"lan\"", TWO_BRIDGES),
            "tunnel[0].deliver",
            "erspan",
        ),
        (
            format!(
                "{}[[route]]\nprefix = \"10.7.0.0/16\"\ntunnel = \"l2-b\"\n",
                teb_text("", TWO_BRIDGES)
            ),
            "route[0].tunnel",
            "teb tunnel",
        ),
    ];
    for (text, field, msg) in cases {
        let e = Config::from_str_named(&text, "m.toml").unwrap_err();
        assert_eq!(e.field(), field, "{e}\n{text}");
        assert!(e.to_string().contains(msg), "{e}");
        assert!(e.to_string().starts_with("m.toml:"), "{e}");
    }
    // Keepalives, sequence numbers and checksums are for TEB tunnels too.
    let ok = teb_text(
        "keepalive = { interval_s = 5 }\nsequence = true\nchecksum = true\nttl = 9\ntos = 32",
        TWO_BRIDGES,
    );
    Config::from_str_named(&ok, "m").unwrap_or_else(|e| panic!("{e}"));
}
