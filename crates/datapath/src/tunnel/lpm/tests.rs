use super::*;
use proptest::prelude::*;

fn ip(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().unwrap())
}

fn r(s: &str, len: u8, nh: u32) -> (Ipv4Addr, u8, u32) {
    (s.parse().unwrap(), len, nh)
}

/// Linear-scan reference: longest matching prefix, last one among equals.
fn naive(routes: &[(Ipv4Addr, u8, u32)], addr: u32) -> Option<u32> {
    let mut best: Option<(u8, u32)> = None;
    for &(a, len, nh) in routes {
        if mask4(addr, len) == mask4(u32::from(a), len) && best.is_none_or(|(l, _)| len >= l) {
            best = Some((len, nh));
        }
    }
    best.map(|(_, nh)| nh)
}

#[test]
fn empty_table_matches_nothing() {
    let t = Lpm4::new(&[]).unwrap();
    assert!(t.is_empty());
    assert_eq!(t.lookup(0), None);
    assert_eq!(t.lookup(u32::MAX), None);
    assert_eq!(t.lookup(ip("10.1.2.3")), None);
    assert_eq!(t.tbl8_groups(), 0);
}

#[test]
fn default_route() {
    let t = Lpm4::new(&[r("0.0.0.0", 0, 7)]).unwrap();
    for a in [0, 1, ip("10.0.0.1"), ip("255.255.255.255"), 0x8000_0000] {
        assert_eq!(t.lookup(a), Some(7));
    }
    // Host bits of a /0 are ignored.
    let t = Lpm4::new(&[r("1.2.3.4", 0, 9)]).unwrap();
    assert_eq!(t.lookup(ip("200.1.1.1")), Some(9));
}

#[test]
fn host_routes_and_default() {
    let t = Lpm4::new(&[
        r("10.0.0.1", 32, 1),
        r("0.0.0.0", 0, 100),
        r("10.0.0.255", 32, 2),
        r("255.255.255.255", 32, 3),
        r("0.0.0.0", 32, 4),
    ])
    .unwrap();
    assert_eq!(t.lookup(ip("10.0.0.1")), Some(1));
    assert_eq!(t.lookup(ip("10.0.0.255")), Some(2));
    assert_eq!(t.lookup(ip("10.0.0.0")), Some(100));
    assert_eq!(t.lookup(ip("10.0.0.2")), Some(100));
    assert_eq!(t.lookup(ip("10.0.0.254")), Some(100));
    assert_eq!(t.lookup(u32::MAX), Some(3));
    assert_eq!(t.lookup(u32::MAX - 1), Some(100));
    assert_eq!(t.lookup(0), Some(4));
    assert_eq!(t.lookup(1), Some(100));
    // 10.0.0.0/24 and 255.255.255.0/24 and 0.0.0.0/24 each got one group.
    assert_eq!(t.tbl8_groups(), 3);
    assert_eq!(t.len(), 5);
}

#[test]
fn nested_prefixes_any_order() {
    let routes = [
        r("10.0.0.0", 8, 1),
        r("10.1.0.0", 16, 2),
        r("10.1.2.0", 24, 3),
        r("10.1.2.128", 25, 4),
        r("10.1.2.192", 26, 5),
        r("10.1.2.200", 30, 6),
        r("10.1.2.201", 32, 7),
    ];
    let probes = [
        ("9.255.255.255", None),
        ("10.0.0.0", Some(1)),
        ("10.255.255.255", Some(1)),
        ("10.1.0.0", Some(2)),
        ("10.1.1.255", Some(2)),
        ("10.1.2.0", Some(3)),
        ("10.1.2.127", Some(3)),
        ("10.1.2.128", Some(4)),
        ("10.1.2.191", Some(4)),
        ("10.1.2.192", Some(5)),
        ("10.1.2.199", Some(5)),
        ("10.1.2.200", Some(6)),
        ("10.1.2.201", Some(7)),
        ("10.1.2.202", Some(6)),
        ("10.1.2.203", Some(6)),
        ("10.1.2.204", Some(5)),
        ("10.1.2.255", Some(5)),
        ("10.1.3.0", Some(2)),
        ("10.2.0.0", Some(1)),
        ("11.0.0.0", None),
    ];
    // Every rotation and the reversal give the same table.
    let mut orders: Vec<Vec<_>> = (0..routes.len())
        .map(|k| {
            let mut v = routes.to_vec();
            v.rotate_left(k);
            v
        })
        .collect();
    orders.push(routes.iter().rev().copied().collect());
    for order in &orders {
        let t = Lpm4::new(order).unwrap();
        for (a, want) in probes {
            assert_eq!(t.lookup(ip(a)), want, "{a} in {order:?}");
        }
    }
}

#[test]
fn boundaries_around_24() {
    let t = Lpm4::new(&[
        r("192.168.1.0", 24, 24),
        r("192.168.2.0", 23, 23),
        r("192.168.1.0", 25, 25),
        r("192.168.1.255", 32, 32),
    ])
    .unwrap();
    assert_eq!(t.lookup(ip("192.168.0.255")), None);
    assert_eq!(t.lookup(ip("192.168.1.0")), Some(25));
    assert_eq!(t.lookup(ip("192.168.1.127")), Some(25));
    assert_eq!(t.lookup(ip("192.168.1.128")), Some(24));
    assert_eq!(t.lookup(ip("192.168.1.254")), Some(24));
    assert_eq!(t.lookup(ip("192.168.1.255")), Some(32));
    assert_eq!(t.lookup(ip("192.168.2.0")), Some(23));
    assert_eq!(t.lookup(ip("192.168.3.255")), Some(23));
    assert_eq!(t.lookup(ip("192.168.4.0")), None);
    assert_eq!(t.tbl8_groups(), 1);
}

#[test]
fn every_length_25_to_32_in_tbl8() {
    // 172.16.5.0/24 covered by /16; then one prefix of each length 25..=32 nested at .0.
    let mut routes = vec![r("172.16.0.0", 16, 16)];
    for len in 25..=32u8 {
        routes.push(r("172.16.5.0", len, u32::from(len)));
    }
    let t = Lpm4::new(&routes).unwrap();
    assert_eq!(t.tbl8_groups(), 1);
    assert_eq!(t.lookup(ip("172.16.5.0")), Some(32));
    for len in 25..32u8 {
        // The first address covered by /len but not by /(len+1).
        let a = ip("172.16.5.0") + (1 << (32 - len - 1));
        assert_eq!(t.lookup(a), Some(u32::from(len)), "/{len}");
    }
    assert_eq!(t.lookup(ip("172.16.5.128")), Some(16));
    assert_eq!(t.lookup(ip("172.16.5.255")), Some(16));
    assert_eq!(t.lookup(ip("172.16.4.0")), Some(16));
    for a in 0..=255u32 {
        let addr = ip("172.16.5.0") + a;
        assert_eq!(t.lookup(addr), naive(&routes, addr));
    }
}

#[test]
fn tbl8_group_without_covering_route() {
    let t = Lpm4::new(&[r("8.8.8.8", 32, 1), r("8.8.8.16", 28, 2)]).unwrap();
    assert_eq!(t.lookup(ip("8.8.8.8")), Some(1));
    assert_eq!(t.lookup(ip("8.8.8.7")), None);
    assert_eq!(t.lookup(ip("8.8.8.16")), Some(2));
    assert_eq!(t.lookup(ip("8.8.8.31")), Some(2));
    assert_eq!(t.lookup(ip("8.8.8.32")), None);
    assert_eq!(t.lookup(ip("8.8.9.8")), None);
}

#[test]
fn duplicates_last_wins_and_host_bits_ignored() {
    let t = Lpm4::new(&[
        r("10.0.0.0", 8, 1),
        r("10.9.9.9", 8, 2),
        r("10.1.1.1", 32, 3),
        r("10.1.1.1", 32, 4),
    ])
    .unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t.lookup(ip("10.200.0.0")), Some(2));
    assert_eq!(t.lookup(ip("10.1.1.1")), Some(4));
}

#[test]
fn rejects_bad_input() {
    assert_eq!(
        Lpm4::new(&[r("1.0.0.0", 33, 1)]).unwrap_err(),
        LpmError::PrefixLen { len: 33, max: 32 }
    );
    assert_eq!(
        Lpm4::new(&[r("1.0.0.0", 8, MAX_NEXT_HOP + 1)]).unwrap_err(),
        LpmError::NextHop {
            next_hop: MAX_NEXT_HOP + 1
        }
    );
    let t = Lpm4::new(&[r("1.0.0.0", 8, MAX_NEXT_HOP)]).unwrap();
    assert_eq!(t.lookup(ip("1.2.3.4")), Some(MAX_NEXT_HOP));
    let mut b = Lpm4Builder::new().with_max_tbl8_groups(1);
    b.insert("1.1.1.1".parse().unwrap(), 32, 1).unwrap();
    b.insert("1.1.1.2".parse().unwrap(), 32, 2).unwrap();
    assert!(b.build().is_ok());
    b.insert("1.1.2.1".parse().unwrap(), 32, 3).unwrap();
    assert_eq!(b.build().unwrap_err(), LpmError::Tbl8Exhausted { max: 1 });
    assert!(b.insert("1.1.1.1".parse().unwrap(), 40, 1).is_err());
    assert!(b.insert("1.1.1.1".parse().unwrap(), 4, u32::MAX).is_err());
}

#[test]
fn builder_insert_replace_remove() {
    let mut b = Lpm4Builder::new();
    assert_eq!(b.insert_net("10.0.0.0/8".parse().unwrap(), 1), Ok(None));
    assert_eq!(b.insert_net("10.1.0.0/16".parse().unwrap(), 2), Ok(None));
    assert_eq!(b.insert_net("10.1.2.3/16".parse().unwrap(), 3), Ok(Some(2)));
    assert_eq!(b.get("10.1.0.0".parse().unwrap(), 16), Some(3));
    let t1 = b.build().unwrap();
    assert_eq!(t1.lookup(ip("10.1.5.5")), Some(3));
    assert_eq!(b.remove("10.1.9.9".parse().unwrap(), 16), Some(3));
    assert_eq!(b.remove("10.1.9.9".parse().unwrap(), 16), None);
    assert_eq!(b.len(), 1);
    let t2 = b.build().unwrap();
    assert_eq!(t2.lookup(ip("10.1.5.5")), Some(1));
    // The earlier table is unaffected.
    assert_eq!(t1.lookup(ip("10.1.5.5")), Some(3));
}

#[test]
fn from_nets_matches_new() {
    let nets: Vec<(Ipv4Net, u32)> = [
        ("0.0.0.0/0", 0),
        ("10.0.0.0/8", 1),
        ("10.1.2.128/25", 2),
        ("10.1.2.129/32", 3),
    ]
    .iter()
    .map(|&(n, h)| (n.parse().unwrap(), h))
    .collect();
    let t = Lpm4::from_nets(&nets).unwrap();
    assert_eq!(t.lookup(ip("1.1.1.1")), Some(0));
    assert_eq!(t.lookup(ip("10.1.2.127")), Some(1));
    assert_eq!(t.lookup(ip("10.1.2.128")), Some(2));
    assert_eq!(t.lookup(ip("10.1.2.129")), Some(3));
    assert_eq!(t.lookup_addr("10.1.2.130".parse().unwrap()), Some(2));
}

#[test]
fn bulk_and_burst_agree_with_lookup() {
    let t = Lpm4::new(&[
        r("0.0.0.0", 1, 1),
        r("10.0.0.0", 8, 2),
        r("10.0.0.64", 26, 3),
        r("10.0.0.65", 32, 4),
    ])
    .unwrap();
    let addrs: Vec<u32> = (0..100u32)
        .map(|i| ip("10.0.0.0") + i)
        .chain((0..50u32).map(|i| i.wrapping_mul(0x9e37_79b9)))
        .collect();
    let mut out = vec![None; addrs.len()];
    t.lookup_bulk(&addrs, &mut out);
    for (a, o) in addrs.iter().zip(&out) {
        assert_eq!(*o, t.lookup(*a));
    }
    let burst: [u32; 32] = addrs[50..82].try_into().unwrap();
    let got = t.lookup_burst(&burst);
    for (a, o) in burst.iter().zip(got) {
        assert_eq!(o, t.lookup(*a));
    }
    t.lookup_bulk(&[], &mut []);
}

/// Random route sets biased towards nested prefixes: each address is one of a few bases with
/// some low bits flipped. A third of the sets have no prefix shorter than /8 and a third none
/// shorter than /16, which keeps most cases from touching all 64 MiB of `tbl24`.
fn routes_strategy() -> impl Strategy<Value = Vec<(Ipv4Addr, u8, u32)>> {
    (
        prop::collection::vec(any::<u32>(), 1..5),
        prop_oneof![Just(0u8), Just(8u8), Just(16u8)],
        prop::collection::vec(
            (
                any::<usize>(),
                any::<u32>(),
                0u32..=32,
                0u8..=32,
                0u32..1000,
            ),
            0..300,
        ),
    )
        .prop_map(|(bases, min_len, raw)| {
            raw.into_iter()
                .map(|(b, noise, bits, len, nh)| {
                    let len = min_len + len % (33 - min_len);
                    let low = if bits == 0 {
                        0
                    } else {
                        u32::MAX >> (32 - bits)
                    };
                    let addr = bases[b % bases.len()] ^ (noise & low);
                    (Ipv4Addr::from(addr), len, nh)
                })
                .collect()
        })
}

#[test]
fn insert_and_remove_in_place() {
    let mut t = Lpm4::new(&[r("10.0.0.0", 8, 1)]).unwrap();
    assert_eq!(t.insert(ip4("10.1.2.0"), 24, 3), Ok(None));
    assert_eq!(t.insert(ip4("10.1.2.128"), 25, 4), Ok(None));
    assert_eq!(t.insert(ip4("10.1.0.0"), 16, 2), Ok(None));
    assert_eq!(t.tbl8_groups(), 1);
    assert_eq!(t.lookup(ip("10.1.2.200")), Some(4));
    assert_eq!(t.lookup(ip("10.1.2.1")), Some(3));
    assert_eq!(t.lookup(ip("10.1.3.1")), Some(2));
    // Replacing a value keeps the longer rules beneath it.
    assert_eq!(t.insert(ip4("10.1.0.0"), 16, 20), Ok(Some(2)));
    assert_eq!(t.lookup(ip("10.1.3.1")), Some(20));
    assert_eq!(t.lookup(ip("10.1.2.1")), Some(3));
    // Removing the /24 hands its entries (also those in the group) to the /16.
    assert_eq!(t.remove(ip4("10.1.2.0"), 24), Some(3));
    assert_eq!(t.lookup(ip("10.1.2.1")), Some(20));
    assert_eq!(t.lookup(ip("10.1.2.129")), Some(4));
    // The last rule longer than /24 goes: the group folds back and is reused.
    assert_eq!(t.remove(ip4("10.1.2.128"), 25), Some(4));
    assert_eq!(t.tbl8_groups(), 0);
    assert_eq!(t.lookup(ip("10.1.2.129")), Some(20));
    assert_eq!(t.remove(ip4("10.1.2.128"), 25), None);
    assert_eq!(t.insert(ip4("10.9.9.9"), 32, 9), Ok(None));
    assert_eq!((t.tbl8_groups(), t.next_group), (1, 1));
    assert_eq!(t.remove(ip4("10.0.0.0"), 8), Some(1));
    assert_eq!(t.lookup(ip("10.9.9.8")), None);
    assert_eq!(t.lookup(ip("10.9.9.9")), Some(9));
    assert_eq!(t.len(), 2);
    assert_eq!(t.get(ip4("10.1.0.0"), 16), Some(20));
    // Errors leave the table as it was.
    let mut t = Lpm4Builder::new().with_max_tbl8_groups(1).build().unwrap();
    assert_eq!(t.insert(ip4("1.1.1.1"), 32, 1), Ok(None));
    assert_eq!(
        t.insert(ip4("1.1.2.1"), 32, 2),
        Err(LpmError::Tbl8Exhausted { max: 1 })
    );
    assert!(t.insert(ip4("1.1.2.1"), 33, 2).is_err());
    assert!(t.insert(ip4("1.1.2.1"), 8, MAX_NEXT_HOP + 1).is_err());
    assert_eq!((t.len(), t.lookup(ip("1.1.2.1"))), (1, None));
    assert_eq!(t.remove(ip4("1.1.1.1"), 32), Some(1));
    assert_eq!(t.insert(ip4("1.1.2.1"), 32, 2), Ok(None));
    assert_eq!(t.lookup(ip("1.1.2.1")), Some(2));
}

fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// One change of a random sequence: insert (true) or remove (false) the prefix.
type Change4 = (bool, Ipv4Addr, u8, u32);

fn changes_strategy() -> impl Strategy<Value = Vec<Change4>> {
    (
        routes_strategy(),
        prop::collection::vec((any::<bool>(), any::<usize>()), 0..300),
    )
        .prop_map(|(routes, picks)| {
            // Inserts of the random routes, interleaved with removes of earlier ones (some of
            // them already removed, or never inserted: those are no-ops).
            let mut out = Vec::new();
            for (k, &(a, len, nh)) in routes.iter().enumerate() {
                out.push((true, a, len, nh));
                if let Some(&(del, pick)) = picks.get(k) {
                    if del {
                        let (a, len, _) = routes[pick % (k + 1)];
                        out.push((false, a, len, 0));
                    }
                }
            }
            out
        })
}

/// Probes around every prefix of `routes` plus `random`.
fn probes_for(routes: &[(Ipv4Addr, u8, u32)], random: Vec<u32>) -> Vec<u32> {
    let mut probes = random;
    for &(a, len, _) in routes {
        let net = mask4(u32::from(a), len);
        let last = net | !mask4(u32::MAX, len);
        probes.extend([
            net,
            last,
            net.wrapping_sub(1),
            last.wrapping_add(1),
            u32::from(a),
        ]);
        if len < 32 {
            probes.push(net | (1 << (31 - len)));
        }
    }
    probes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// After any sequence of in-place inserts and removes, the table answers like a table built
    /// afresh from the surviving rules and like a linear scan over them, with as many groups.
    #[test]
    fn changes_in_place_match_a_fresh_build(
        changes in changes_strategy(),
        random in prop::collection::vec(any::<u32>(), 64),
    ) {
        let mut t = Lpm4::new(&[]).unwrap();
        let mut model: BTreeMap<(u8, u32), u32> = BTreeMap::new();
        let mut all = Vec::new();
        for &(add, a, len, nh) in &changes {
            let key = (len, mask4(u32::from(a), len));
            if add {
                prop_assert_eq!(t.insert(a, len, nh).unwrap(), model.insert(key, nh));
            } else {
                prop_assert_eq!(t.remove(a, len), model.remove(&key));
            }
            all.push((a, len, nh));
        }
        let survivors: Vec<(Ipv4Addr, u8, u32)> =
            model.iter().map(|(&(len, a), &nh)| (Ipv4Addr::from(a), len, nh)).collect();
        let fresh = Lpm4::new(&survivors).unwrap();
        prop_assert_eq!(t.len(), fresh.len());
        prop_assert_eq!(t.tbl8_groups(), fresh.tbl8_groups());
        let copy = t.rebuilt();
        for a in probes_for(&all, random) {
            let want = naive(&survivors, a);
            prop_assert_eq!(t.lookup(a), want, "addr {}", Ipv4Addr::from(a));
            prop_assert_eq!(fresh.lookup(a), want);
            prop_assert_eq!(copy.lookup(a), want);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn matches_linear_scan(routes in routes_strategy(), random in prop::collection::vec(any::<u32>(), 64)) {
        let t = Lpm4::new(&routes).unwrap();
        // Around every prefix: its ends, just outside, and just inside on the far side of the
        // next bit.
        let probes = probes_for(&routes, random);
        for &a in &probes {
            prop_assert_eq!(t.lookup(a), naive(&routes, a), "addr {}", Ipv4Addr::from(a));
        }
        let mut out = vec![None; probes.len()];
        t.lookup_bulk(&probes, &mut out);
        for (&a, &o) in probes.iter().zip(&out) {
            prop_assert_eq!(o, naive(&routes, a));
        }
        // The builder (replace semantics) gives the same table.
        let mut b = Lpm4Builder::new();
        for &(a, len, nh) in &routes {
            b.insert(a, len, nh).unwrap();
        }
        let t2 = b.build().unwrap();
        prop_assert_eq!(t2.len(), t.len());
        prop_assert_eq!(t2.tbl8_groups(), t.tbl8_groups());
        for &a in &probes {
            prop_assert_eq!(t2.lookup(a), t.lookup(a));
        }
    }
}
