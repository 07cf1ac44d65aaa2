use super::*;
use crate::tunnel::lpm::MAX_NEXT_HOP;
use proptest::prelude::*;

fn ip(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().unwrap())
}

fn r(s: &str, len: u8, nh: u32) -> (Ipv6Addr, u8, u32) {
    (s.parse().unwrap(), len, nh)
}

fn naive(routes: &[(Ipv6Addr, u8, u32)], addr: u128) -> Option<u32> {
    let mut best: Option<(u8, u32)> = None;
    for &(a, len, nh) in routes {
        if mask6(addr, len) == mask6(u128::from(a), len) && best.is_none_or(|(l, _)| len >= l) {
            best = Some((len, nh));
        }
    }
    best.map(|(_, nh)| nh)
}

#[test]
fn empty_and_default() {
    let t = Lpm6::new(&[]).unwrap();
    assert!(t.is_empty());
    assert_eq!(t.lookup(0), None);
    assert_eq!(t.lookup(u128::MAX), None);
    let t = Lpm6::new(&[r("::", 0, 5)]).unwrap();
    assert_eq!(t.lookup(0), Some(5));
    assert_eq!(t.lookup(u128::MAX), Some(5));
    assert_eq!(t.lookup(ip("2001:db8::1")), Some(5));
    assert_eq!(t.groups(), 0);
}

#[test]
fn host_routes() {
    let t = Lpm6::new(&[
        r("2001:db8::1", 128, 1),
        r("::", 0, 100),
        r("2001:db8::2", 128, 2),
        r("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128, 3),
        r("::", 128, 4),
    ])
    .unwrap();
    assert_eq!(t.lookup(ip("2001:db8::1")), Some(1));
    assert_eq!(t.lookup(ip("2001:db8::2")), Some(2));
    assert_eq!(t.lookup(ip("2001:db8::3")), Some(100));
    assert_eq!(t.lookup(ip("2001:db8::")), Some(100));
    assert_eq!(t.lookup(u128::MAX), Some(3));
    assert_eq!(t.lookup(u128::MAX - 1), Some(100));
    assert_eq!(t.lookup(0), Some(4));
    assert_eq!(t.lookup(1), Some(100));
    assert_eq!(t.lookup_bytes(&ip("2001:db8::2").to_be_bytes()), Some(2));
    // The two 2001:db8:: hosts share their 13-group path.
    assert_eq!(t.groups(), 13 * 3);
}

#[test]
fn nested_prefixes_any_order() {
    let routes = [
        r("2001::", 16, 16),
        r("2001:db8::", 32, 32),
        r("2001:db8:1::", 48, 48),
        r("2001:db8:1:2::", 64, 64),
        r("2001:db8:1:2::", 63, 63),
        r("2001:db8:1:2:8000::", 65, 65),
        r("2001:db8:1:2::ff00", 120, 120),
        r("2001:db8:1:2::ff01", 128, 128),
        r("2000::", 3, 3),
        r("2001:db8:1:ff::", 60, 60),
    ];
    let probes = [
        "::",
        "2000::",
        "3fff:ffff::",
        "4000::",
        "2001::",
        "2001:ffff::",
        "2001:db8::",
        "2001:db8:1::",
        "2001:db8:1:1::",
        "2001:db8:1:2::",
        "2001:db8:1:3::",
        "2001:db8:1:4::",
        "2001:db8:1:2:7fff:ffff:ffff:ffff",
        "2001:db8:1:2:8000::",
        "2001:db8:1:2:ffff:ffff:ffff:ffff",
        "2001:db8:1:2::feff",
        "2001:db8:1:2::ff00",
        "2001:db8:1:2::ff01",
        "2001:db8:1:2::ff02",
        "2001:db8:1:2::ffff",
        "2001:db8:1:2::1:0",
        "2001:db8:1:f0::",
        "2001:db8:1:ff::",
        "2001:db8:1:ff:ffff::",
        "2001:db8:1:100::",
    ];
    let mut orders: Vec<Vec<_>> = (0..routes.len())
        .map(|k| {
            let mut v = routes.to_vec();
            v.rotate_left(k);
            v
        })
        .collect();
    orders.push(routes.iter().rev().copied().collect());
    for order in &orders {
        let t = Lpm6::new(order).unwrap();
        for p in probes {
            assert_eq!(t.lookup(ip(p)), naive(&routes, ip(p)), "{p} in {order:?}");
        }
    }
    let t = Lpm6::new(&routes).unwrap();
    assert_eq!(t.lookup(ip("2001:db8:1:2::ff01")), Some(128));
    assert_eq!(t.lookup(ip("2001:db8:1:2::ff02")), Some(120));
    assert_eq!(t.lookup(ip("2001:db8:1:2::1:0")), Some(64));
    assert_eq!(t.lookup(ip("2001:db8:1:3::")), Some(63));
    assert_eq!(t.lookup(ip("2001:db8:1:4::")), Some(48));
    assert_eq!(t.lookup(ip("2001:db8:1:2:8000::")), Some(65));
    assert_eq!(t.lookup(ip("2001:db8:1:ff:ffff::")), Some(60));
    assert_eq!(t.lookup(ip("2001:ffff::")), Some(16));
    assert_eq!(t.lookup(ip("3fff::")), Some(3));
    assert_eq!(t.lookup(ip("4000::")), None);
}

#[test]
fn every_length_at_stride_edges() {
    // One prefix of every length nested at the same address: each length must win exactly
    // on the addresses that differ from the base in the bit just past it.
    let base = ip("2001:db8:aaaa:5555:1234:5678:9abc:def0");
    let routes: Vec<_> = (0..=128u8)
        .map(|l| (Ipv6Addr::from(mask6(base, l)), l, u32::from(l)))
        .collect();
    let t = Lpm6::new(&routes).unwrap();
    assert_eq!(t.lookup(base), Some(128));
    for l in 0..128u8 {
        let a = base ^ (1u128 << (127 - l));
        assert_eq!(t.lookup(a), Some(u32::from(l)), "/{l}");
    }
}

#[test]
fn duplicates_bulk_builder_and_errors() {
    let t = Lpm6::new(&[r("2001:db8::", 32, 1), r("2001:db8:ffff::", 32, 2)]).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t.lookup(ip("2001:db8::1")), Some(2));
    assert_eq!(
        Lpm6::new(&[r("::", 129, 1)]).unwrap_err(),
        LpmError::PrefixLen { len: 129, max: 128 }
    );
    assert!(Lpm6::new(&[r("::", 1, MAX_NEXT_HOP + 1)]).is_err());

    let nets: Vec<(Ipv6Net, u32)> = vec![
        ("2001:db8::/32".parse().unwrap(), 1),
        ("2001:db8:1::/48".parse().unwrap(), 2),
    ];
    let t = Lpm6::from_nets(&nets).unwrap();
    assert_eq!(t.lookup_addr("2001:db8:1::5".parse().unwrap()), Some(2));
    assert_eq!(t.lookup_addr("2001:db8:2::5".parse().unwrap()), Some(1));
    let addrs: Vec<u128> = (0..70u128).map(|i| ip("2001:db8::") + (i << 80)).collect();
    let mut out = vec![None; addrs.len()];
    t.lookup_bulk(&addrs, &mut out);
    for (a, o) in addrs.iter().zip(&out) {
        assert_eq!(*o, t.lookup(*a));
    }

    let mut b = Lpm6Builder::new().with_max_groups(2);
    assert_eq!(b.insert_net("2001:db8::/32".parse().unwrap(), 1), Ok(None));
    assert_eq!(b.insert("2001:db8::".parse().unwrap(), 32, 3), Ok(Some(1)));
    assert_eq!(b.get("2001:db8::".parse().unwrap(), 32), Some(3));
    assert_eq!(b.build().unwrap().groups(), 1);
    b.insert("2001:db8::".parse().unwrap(), 48, 4).unwrap();
    assert_eq!(b.build().unwrap_err(), LpmError::Tbl8Exhausted { max: 2 });
    assert_eq!(b.remove("2001:db8::".parse().unwrap(), 48), Some(4));
    assert_eq!(b.len(), 1);
    assert_eq!(b.build().unwrap().lookup(ip("2001:db8::1")), Some(3));
}

fn routes_strategy() -> impl Strategy<Value = Vec<(Ipv6Addr, u8, u32)>> {
    (
        prop::collection::vec(any::<u128>(), 1..5),
        prop::collection::vec(
            (
                any::<usize>(),
                any::<u128>(),
                0u32..=128,
                0u8..=128,
                0u32..1000,
            ),
            0..200,
        ),
    )
        .prop_map(|(bases, raw)| {
            raw.into_iter()
                .map(|(b, noise, bits, len, nh)| {
                    let low = if bits == 0 {
                        0
                    } else {
                        u128::MAX >> (128 - bits)
                    };
                    (
                        Ipv6Addr::from(bases[b % bases.len()] ^ (noise & low)),
                        len,
                        nh,
                    )
                })
                .collect()
        })
}

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn insert_and_remove_in_place() {
    let mut t = Lpm6::new(&[r("2001:db8::", 32, 32)]).unwrap();
    assert_eq!(t.insert(ip6("2001:db8:1:2::ff00"), 120, 120), Ok(None));
    assert_eq!(t.insert(ip6("2001:db8:1::"), 48, 48), Ok(None));
    assert_eq!(t.insert(ip6("2001:db8:1:2::"), 64, 64), Ok(None));
    assert_eq!(t.insert(ip6("::"), 0, 0), Ok(None));
    assert_eq!(t.lookup(ip("2001:db8:1:2::ff05")), Some(120));
    assert_eq!(t.lookup(ip("2001:db8:1:2::1:0")), Some(64));
    assert_eq!(t.lookup(ip("2001:db8:1:3::")), Some(48));
    assert_eq!(t.lookup(ip("2001:db8:2::")), Some(32));
    assert_eq!(t.lookup(ip("3000::")), Some(0));
    let groups = t.groups();
    assert_eq!(t.insert(ip6("2001:db8:1::"), 48, 480), Ok(Some(48)));
    assert_eq!(t.lookup(ip("2001:db8:1:3::")), Some(480));
    assert_eq!(t.lookup(ip("2001:db8:1:2::ff05")), Some(120));
    assert_eq!(t.remove(ip6("2001:db8:1:2::"), 64), Some(64));
    assert_eq!(t.lookup(ip("2001:db8:1:2::1:0")), Some(480));
    assert_eq!(t.lookup(ip("2001:db8:1:2::ff05")), Some(120));
    assert_eq!(t.groups(), groups);
    // The /120 goes: the groups below the /48's (depth 3) fold back.
    assert_eq!(t.remove(ip6("2001:db8:1:2::ff00"), 120), Some(120));
    assert_eq!(
        t.groups(),
        Lpm6::new(&[r("2001:db8:1::", 48, 1)]).unwrap().groups()
    );
    assert_eq!(t.lookup(ip("2001:db8:1:2::ff05")), Some(480));
    assert_eq!(t.remove(ip6("2001:db8:1::"), 48), Some(480));
    assert_eq!(t.remove(ip6("2001:db8:1::"), 48), None);
    assert_eq!((t.groups(), t.len()), (1, 2));
    assert_eq!(t.lookup(ip("2001:db8:1:2::ff05")), Some(32));
    assert_eq!(t.remove(ip6("::"), 0), Some(0));
    assert_eq!(t.lookup(ip("3000::")), None);
    assert_eq!(t.get(ip6("2001:db8::"), 32), Some(32));
    // A failed insert leaves no group behind.
    let mut t = Lpm6Builder::new().with_max_groups(3).build().unwrap();
    assert_eq!(t.insert(ip6("2001:db8::"), 48, 1), Ok(None));
    assert_eq!(
        t.insert(ip6("2001:db8::1"), 128, 2),
        Err(LpmError::Tbl8Exhausted { max: 3 })
    );
    assert_eq!((t.groups(), t.len()), (3, 1));
    assert_eq!(t.lookup(ip("2001:db8::1")), Some(1));
    assert_eq!(
        t.insert(ip6("2001:db9::"), 40, 3),
        Err(LpmError::Tbl8Exhausted { max: 3 })
    );
    assert_eq!(t.remove(ip6("2001:db8::"), 48), Some(1));
    assert_eq!(t.groups(), 0);
    assert_eq!(t.insert(ip6("2001:db9::"), 40, 3), Ok(None));
}

type Change6 = (bool, Ipv6Addr, u8, u32);

fn changes_strategy() -> impl Strategy<Value = Vec<Change6>> {
    (
        routes_strategy(),
        prop::collection::vec((any::<bool>(), any::<usize>()), 0..200),
    )
        .prop_map(|(routes, picks)| {
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

fn probes_for(routes: &[(Ipv6Addr, u8, u32)], random: Vec<u128>) -> Vec<u128> {
    let mut probes = random;
    for &(a, len, _) in routes {
        let net = mask6(u128::from(a), len);
        let last = net | !mask6(u128::MAX, len);
        probes.extend([
            net,
            last,
            net.wrapping_sub(1),
            last.wrapping_add(1),
            u128::from(a),
        ]);
        if len < 128 {
            probes.push(net | (1 << (127 - len)));
        }
    }
    probes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// After any sequence of in-place inserts and removes, the table answers like a fresh build
    /// of the surviving rules and like a linear scan over them, with as many groups.
    #[test]
    fn changes_in_place_match_a_fresh_build(
        changes in changes_strategy(),
        random in prop::collection::vec(any::<u128>(), 64),
    ) {
        let mut t = Lpm6::new(&[]).unwrap();
        let mut model: BTreeMap<(u8, u128), u32> = BTreeMap::new();
        let mut all = Vec::new();
        for &(add, a, len, nh) in &changes {
            let key = (len, mask6(u128::from(a), len));
            if add {
                prop_assert_eq!(t.insert(a, len, nh).unwrap(), model.insert(key, nh));
            } else {
                prop_assert_eq!(t.remove(a, len), model.remove(&key));
            }
            all.push((a, len, nh));
        }
        let survivors: Vec<(Ipv6Addr, u8, u32)> =
            model.iter().map(|(&(len, a), &nh)| (Ipv6Addr::from(a), len, nh)).collect();
        let fresh = Lpm6::new(&survivors).unwrap();
        prop_assert_eq!(t.len(), fresh.len());
        prop_assert_eq!(t.groups(), fresh.groups());
        let copy = t.rebuilt();
        for a in probes_for(&all, random) {
            let want = naive(&survivors, a);
            prop_assert_eq!(t.lookup(a), want, "addr {}", Ipv6Addr::from(a));
            prop_assert_eq!(fresh.lookup(a), want);
            prop_assert_eq!(copy.lookup(a), want);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn matches_linear_scan(routes in routes_strategy(), random in prop::collection::vec(any::<u128>(), 64)) {
        let t = Lpm6::new(&routes).unwrap();
        let mut probes = random;
        for &(a, len, _) in &routes {
            let net = mask6(u128::from(a), len);
            let last = net | !mask6(u128::MAX, len);
            probes.extend([net, last, net.wrapping_sub(1), last.wrapping_add(1), u128::from(a)]);
            if len < 128 {
                probes.push(net | (1 << (127 - len)));
            }
        }
        for &a in &probes {
            prop_assert_eq!(t.lookup(a), naive(&routes, a), "addr {}", Ipv6Addr::from(a));
        }
        let mut out = vec![None; probes.len()];
        t.lookup_bulk(&probes, &mut out);
        for (&a, &o) in probes.iter().zip(&out) {
            prop_assert_eq!(o, naive(&routes, a));
        }
        let mut b = Lpm6Builder::new();
        for &(a, len, nh) in &routes {
            b.insert(a, len, nh).unwrap();
        }
        let t2 = b.build().unwrap();
        prop_assert_eq!(t2.len(), t.len());
        prop_assert_eq!(t2.groups(), t.groups());
        for &a in &probes {
            prop_assert_eq!(t2.lookup(a), t.lookup(a));
        }
    }
}
