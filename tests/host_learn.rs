//! The route learner (`[host] routes = "learn"`) against the real kernel: a network namespace of its own with
//! a veth pair (one end stands for a port's host interface) and a TUN device (a tunnel's), routes made with
//! `ip route` there, and the learner's updates checked against what the kernel holds. One test makes the kernel
//! drop route messages (a tiny receive queue and a burst from `ip -batch`) and checks that the resync ends where
//! the kernel is.
use greway::host::learn::{Hop, HostTarget, LearnSpec, Learner, Update};
use ipnet::IpNet;
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The tests of this file one at a time: each drives the kernel's netlink hard (bursts of thousands of route
/// changes, a 100,000-route table), and one of them makes the learner's socket overflow on purpose and then
/// waits for a resync; a neighbour's burst running meanwhile would starve it of the CPU that resync needs.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A namespace of the test's own, deleted at the end (with its interfaces and routes).
struct Ns(String);

impl Ns {
    fn new() -> Ns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "gwlearn-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name]);
        let ns = Ns(name);
        ns.ip("link set lo up");
        ns.ip("link add p0 type veth peer name p1");
        ns.ip("addr add 192.0.2.1/24 dev p0");
        ns.ip("link set p0 up");
        ns.ip("link set p1 up");
        ns.ip("addr add 198.51.100.1/24 dev p1");
        ns.ip("-6 addr add 2001:db8:1::1/64 dev p0 nodad");
        ns.ip("tuntap add dev tgw mode tun");
        ns.ip("addr add 169.254.100.1/29 dev tgw");
        ns.ip("link set tgw up");
        ns
    }

    fn ip(&self, args: &str) {
        let mut a = vec!["-n", &self.0];
        a.extend(args.split_whitespace());
        run("ip", &a);
    }

    /// `ip -batch` of `lines` in the namespace.
    fn batch(&self, lines: &str) {
        let mut c = Command::new("ip")
            .args(["-n", &self.0, "-batch", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("ip");
        c.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
        assert!(c.wait().unwrap().success(), "ip -batch failed");
    }

    fn ifindex(&self, dev: &str) -> u32 {
        let out = Command::new("ip")
            .args(["-n", &self.0, "-j", "link", "show", "dev", dev])
            .output()
            .expect("ip");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j");
        v[0]["ifindex"].as_u64().expect("ifindex") as u32
    }

    fn spec(&self, table: u32) -> LearnSpec {
        LearnSpec {
            netns: Some(format!("/run/netns/{}", self.0).into()),
            table,
            ifaces: HashMap::from([
                (self.ifindex("p0"), HostTarget::Port("outside".into())),
                (self.ifindex("tgw"), HostTarget::Tunnel("aws-tgw".into())),
            ]),
            recv_queue_bytes: None,
            hold: None,
        }
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The learned routes, as the control thread would hold them after applying every update.
#[derive(Default)]
struct Learned(HashMap<IpNet, Hop>);

impl Learned {
    fn absorb(&mut self, updates: Vec<Update>) {
        for u in updates {
            match u.hop {
                Some(h) => self.0.insert(u.prefix, h),
                None => self.0.remove(&u.prefix),
            };
        }
    }

    /// Takes updates until `ok` holds of the learned routes; panics after `limit`.
    fn until(
        &mut self,
        l: &mut Learner,
        limit: Duration,
        ok: impl Fn(&HashMap<IpNet, Hop>) -> bool,
    ) {
        let end = Instant::now() + limit;
        while !ok(&self.0) {
            assert!(
                Instant::now() < end,
                "not reached within {limit:?}; learned {} route(s): {:?}",
                self.0.len(),
                self.0.iter().take(5).collect::<Vec<_>>()
            );
            let u = l.wait(Duration::from_millis(50));
            self.absorb(u);
        }
    }
}

fn hop(target: HostTarget, gw: Option<&str>) -> Hop {
    Hop {
        target,
        gateway: gw.map(|g| g.parse().unwrap()),
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn learns_the_dump_then_follows_changes() {
    let _serial = serial();
    let ns = Ns::new();
    let tunnel = HostTarget::Tunnel("aws-tgw".into());
    let port = HostTarget::Port("outside".into());
    // Before the learner starts: found by the dump.
    ns.ip("route add 10.2.0.0/24 via 169.254.100.2 dev tgw proto bgp");
    ns.ip("route add 10.9.0.0/16 via 198.51.100.9 dev p1");
    let mut l = Learner::spawn(ns.spec(254)).expect("learner");
    let mut learned = Learned::default();
    learned.until(&mut l, Duration::from_secs(5), |m| !m.is_empty());
    // Nothing else arrives: the route through p1 (not ours) and the kernel's own subnets are not learned.
    learned.absorb(l.wait(Duration::from_millis(200)));
    assert_eq!(
        learned.0,
        HashMap::from([(
            net("10.2.0.0/24"),
            hop(tunnel.clone(), Some("169.254.100.2"))
        )])
    );
    // Changes: a route out of the port via a gateway, IPv6 connected, a default route into the tunnel.
    ns.ip("route add 10.3.0.0/24 via 192.0.2.254 dev p0");
    ns.ip("-6 route add 2001:db8:77::/48 dev p0");
    ns.ip("route add default dev tgw");
    learned.until(&mut l, Duration::from_secs(2), |m| m.len() == 4);
    assert_eq!(
        learned.0[&net("10.3.0.0/24")],
        hop(port.clone(), Some("192.0.2.254"))
    );
    assert_eq!(learned.0[&net("2001:db8:77::/48")], hop(port.clone(), None));
    assert_eq!(learned.0[&net("0.0.0.0/0")], hop(tunnel.clone(), None));
    // Replace: the tunnel route now leaves through the port.
    ns.ip("route replace 10.2.0.0/24 via 192.0.2.7 dev p0 proto bgp");
    learned.until(&mut l, Duration::from_secs(2), |m| {
        m.get(&net("10.2.0.0/24")) == Some(&hop(port.clone(), Some("192.0.2.7")))
    });
    // Replaced through an interface that is not ours: it is no longer greway's.
    ns.ip("route replace 10.3.0.0/24 via 198.51.100.3 dev p1");
    learned.until(&mut l, Duration::from_secs(2), |m| {
        !m.contains_key(&net("10.3.0.0/24"))
    });
    // Deleted.
    ns.ip("route del 10.2.0.0/24");
    ns.ip("-6 route del 2001:db8:77::/48");
    learned.until(&mut l, Duration::from_secs(2), |m| m.len() == 1);
    assert_eq!(
        learned.0.keys().collect::<Vec<_>>(),
        vec![&net("0.0.0.0/0")]
    );
    // The interface goes away: the kernel removes its routes, and so does the learner.
    ns.ip("link del tgw");
    learned.until(&mut l, Duration::from_secs(2), |m| m.is_empty());
    // It learned that from a dump: no message per route comes for an interface that goes.
    assert!(l.counters.dumps.load(Ordering::Relaxed) > 1);
}

#[test]
fn follows_the_table_it_is_given() {
    let _serial = serial();
    let ns = Ns::new();
    let mut l = Learner::spawn(ns.spec(100)).expect("learner");
    ns.ip("route add 10.50.0.0/16 dev tgw");
    ns.ip("route add 10.51.0.0/16 dev tgw table 100");
    let mut learned = Learned::default();
    learned.until(&mut l, Duration::from_secs(2), |m| !m.is_empty());
    learned.absorb(l.wait(Duration::from_millis(200)));
    assert_eq!(
        learned.0.keys().collect::<Vec<_>>(),
        vec![&net("10.51.0.0/16")]
    );
}

/// Routes `10.C.B.0/24` for the `n` first (B, C).
fn batch_of(verb: &str, n: usize, tail: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "route {verb} 10.{}.{}.0/24 {tail}\n",
                100 + i / 256,
                i % 256
            )
        })
        .collect()
}

#[test]
fn lost_messages_resync_to_the_kernel_table() {
    let _serial = serial();
    let ns = Ns::new();
    let mut spec = ns.spec(254);
    // The smallest queue the kernel allows, not read during each burst: it overflows.
    spec.recv_queue_bytes = Some(1);
    let hold = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    spec.hold = Some(hold.clone());
    let mut l = Learner::spawn(spec).expect("learner");
    let mut learned = Learned::default();
    // Let the first dump finish: a route added now reaches the learner (in the dump or as a change).
    ns.ip("route add 10.99.0.0/24 dev tgw");
    learned.until(&mut l, Duration::from_secs(20), |m| {
        m.contains_key(&net("10.99.0.0/24"))
    });
    let n = 3000;
    hold.store(true, Ordering::Relaxed);
    ns.batch(&batch_of("add", n, "dev tgw"));
    hold.store(false, Ordering::Relaxed);
    learned.until(&mut l, Duration::from_secs(20), |m| m.len() == n + 1);
    assert!(
        l.counters.overruns.load(Ordering::Relaxed) > 0,
        "the burst was expected to overflow the queue"
    );
    assert!(l.counters.dumps.load(Ordering::Relaxed) > 1);
    // Half of them move to the port, the rest go: again through a resync.
    let half = n / 2;
    let mut b = batch_of("replace", half, "via 192.0.2.9 dev p0");
    b.push_str(
        &batch_of("del", n, "")
            .lines()
            .skip(half)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    let overruns = l.counters.overruns.load(Ordering::Relaxed);
    hold.store(true, Ordering::Relaxed);
    ns.batch(&b);
    hold.store(false, Ordering::Relaxed);
    let port = hop(HostTarget::Port("outside".into()), Some("192.0.2.9"));
    learned.until(&mut l, Duration::from_secs(20), |m| {
        m.len() == half + 1 && m.values().filter(|h| **h == port).count() == half
    });
    assert!(l.counters.overruns.load(Ordering::Relaxed) > overruns);
}

/// How fast the learner follows the kernel: a full table of 100,000 routes added with one `ip -batch`, then
/// single route adds one at a time. Measured and printed (`cargo test --test host_learn -- --nocapture`), not
/// asserted: every route must arrive, whatever the time.
#[test]
fn a_full_table_and_single_changes_reach_the_learner() {
    let _serial = serial();
    let ns = Ns::new();
    let mut l = Learner::spawn(ns.spec(254)).expect("learner");
    let mut learned = Learned::default();
    let n = 100_000;
    let lines: String = (0..n)
        .map(|i| {
            format!(
                "route add 100.{}.{}.{}/32 dev tgw\n",
                64 + (i >> 16),
                (i >> 8) & 255,
                i & 255
            )
        })
        .collect();
    let t0 = Instant::now();
    ns.batch(&lines);
    let batch_done = t0.elapsed();
    learned.until(&mut l, Duration::from_secs(120), |m| m.len() >= n);
    let full = t0.elapsed();
    assert_eq!(learned.0.len(), n);
    let mut single = Vec::new();
    for k in 0..20 {
        let p = format!("10.77.{k}.0/24");
        let t = Instant::now();
        ns.ip(&format!("route add {p} dev tgw"));
        let want = net(&p);
        learned.until(&mut l, Duration::from_secs(5), |m| m.contains_key(&want));
        single.push(t.elapsed());
    }
    single.sort();
    println!(
        "learner: {n} routes from one ip -batch in {} ms (the batch itself {} ms); single route add, ip command \
         included: median {:.2} ms, max {:.2} ms",
        full.as_millis(),
        batch_done.as_millis(),
        single[single.len() / 2].as_secs_f64() * 1e3,
        single[single.len() - 1].as_secs_f64() * 1e3
    );
}

/// Host interfaces made or removed at run time (tunnels added or deleted with `greway ctl`): the learner
/// follows routes through the interfaces it is given from then on, and withdraws those through one it loses.
#[test]
fn follows_interfaces_added_and_removed_at_run_time() {
    let _serial = serial();
    let ns = Ns::new();
    let mut spec = ns.spec(254);
    let all = spec.ifaces.clone();
    let tgw = ns.ifindex("tgw");
    spec.ifaces.remove(&tgw);
    let mut l = Learner::spawn(spec).expect("learner");
    ns.ip("route add 10.60.0.0/16 dev tgw");
    ns.ip("route add 10.61.0.0/16 via 192.0.2.9 dev p0");
    let mut learned = Learned::default();
    learned.until(&mut l, Duration::from_secs(5), |m| {
        m.contains_key(&net("10.61.0.0/16"))
    });
    learned.absorb(l.wait(Duration::from_millis(200)));
    assert!(
        !learned.0.contains_key(&net("10.60.0.0/16")),
        "not ours yet"
    );
    l.set_ifaces(all.clone());
    learned.until(&mut l, Duration::from_secs(5), |m| {
        m.contains_key(&net("10.60.0.0/16"))
    });
    assert_eq!(
        learned.0[&net("10.60.0.0/16")],
        hop(HostTarget::Tunnel("aws-tgw".into()), None)
    );
    let mut without = all;
    without.remove(&tgw);
    l.set_ifaces(without);
    learned.until(&mut l, Duration::from_secs(5), |m| {
        !m.contains_key(&net("10.60.0.0/16"))
    });
    assert!(
        learned.0.contains_key(&net("10.61.0.0/16")),
        "the port's route stays"
    );
}
