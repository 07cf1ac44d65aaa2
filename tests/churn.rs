//! Churn: tunnels deleted and re-added through the control socket as fast as it answers, while replayed traffic
//! flows on a sequenced and a plain tunnel, on real DPDK virtual ports with two workers (issue 19).
//!
//! Run it (a release build; the test itself takes about 20 s):
//!
//! ```text
//! cargo test --release --test churn -- --nocapture
//! ```
//!
//! Before handed-off packets, keepalives and held packets named their tunnel by run-unique id (commit 7283ff7),
//! every run of this test on this 2-core VM (10 runs, 2,600-4,100 changes in 15 s, 50-80 M packets in) sent
//! 0.5-1.1 M packets with a decoy's key to a decoy's remote, and the stats counted packets on decoys.
//! It needs root (EAL's runtime directory), `tcpdump` and `tshark` (scripts/install-deps.sh installs them).
//!
//! Setup:
//! - inside: `net_pcap` replaying a capture forever on two rx queues (`infinite_rx=1`, the file twice), so both
//!   workers receive packets of both tunnels: UDP/IPv4 frames alternating between the sequenced tunnel's route
//!   (10.30.0.0/16) and the plain tunnel's (10.20.0.0/16). A sequenced tunnel's packets are numbered and sent
//!   by one owner worker: the other worker hands them off through the owner's ring (`pending_handoff`).
//! - outside: `net_pcap` with one tx queue per worker, each written into a FIFO read by `tcpdump`, whose BPF
//!   filter keeps only frames that are not exactly one of the two live tunnels' encapsulations (IPv4, GRE, its
//!   remote, its flags and key); `tshark` then decodes what was kept. The FIFO's back-pressure is also what
//!   paces the workers (no frame is stored but the suspicious ones), leaving CPU to the control thread on this
//!   2-core machine (worker 1 shares core 0 with it).
//! - tunnels: the sequenced one ("seq"), the plain one ("plain") and six decoys, each with a key and a remote
//!   of its own and a route no packet matches. The churn rotates the table: delete the first tunnel, add it
//!   again (it goes to the end), over and over, so every index shifts under the live tunnels' packets, and
//!   "seq" and "plain" themselves are deleted and re-added in turn (their packets are dropped as `no_route`
//!   meanwhile, which is accounted). Between the pairs of changes the test reads `stats` over the same socket.
//!   After 15 s it stops (SIGINT) at a point of the rotation where "seq" is owned by worker 0 (alone on core 1)
//!   and handed off by worker 1 (sharing core 0 with the control thread), so handoffs are in flight at the stop.
//!
//! What it asserts (invariants, nothing timed; the rate is reported, not asserted):
//! - every change was accepted and the table's tunnel order is the one the test expects;
//! - greway did not die and stopped cleanly on SIGINT (exit status 0, final stats written);
//! - no mbuf leaked (`mempool.free_at_start == mempool.free_at_end`);
//! - every packet accounted for: rx == tx + the sum of drops over all reasons (the final stats count what was
//!   held at the stop as drops);
//! - nothing on any decoy: the final stats' counters of every decoy (its last incarnation), every sample of
//!   them read during the churn (each incarnation), and, since the stats forget a deleted tunnel, an
//!   independent decoder on the outside port's whole tx: no GRE packet with a decoy's key or remote, and no
//!   frame other than the live tunnels' encapsulations.
mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const HOST: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const GWIN: [u8; 6] = [2, 0, 0, 0, 0, 1];
const LOCAL: &str = "192.0.2.1";

/// How long the tunnels are churned while traffic flows.
const CHURN: Duration = Duration::from_secs(15);
const DECOYS: usize = 6;

#[derive(Clone, Debug)]
struct Tun {
    name: String,
    remote: String,
    key: u32,
    sequence: bool,
    route: String,
}

impl Tun {
    fn spec(&self) -> Value {
        json!({
            "name": self.name,
            "local": LOCAL,
            "remote": self.remote,
            "key": self.key,
            "sequence": self.sequence,
            "routes": [self.route],
        })
    }

    fn toml(&self) -> String {
        format!(
            "[[tunnel]]\nname = \"{}\"\nlocal = \"{LOCAL}\"\nremote = \"{}\"\nkey = {}\nsequence = {}\n\
             routes = [\"{}\"]\n",
            self.name, self.remote, self.key, self.sequence, self.route
        )
    }
}

fn seq_tunnel() -> Tun {
    Tun {
        name: "seq".into(),
        remote: "198.51.100.7".into(),
        key: 1001,
        sequence: true,
        route: "10.30.0.0/16".into(),
    }
}

fn plain_tunnel() -> Tun {
    Tun {
        name: "plain".into(),
        remote: "198.51.100.9".into(),
        key: 2002,
        sequence: false,
        route: "10.20.0.0/16".into(),
    }
}

fn decoy(i: usize) -> Tun {
    Tun {
        name: format!("decoy{i}"),
        remote: format!("198.51.100.{}", 101 + i),
        key: 5000 + i as u32,
        // Decoys 1 and 4 are sequenced too: a stale index may land on either kind.
        sequence: i % 3 == 1,
        route: format!("10.{}.0.0/16", 100 + i),
    }
}

/// Kills what is still running if the test fails before the end, and removes EAL's runtime directory.
struct Guard {
    children: Vec<Child>,
    prefix: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

/// One connection to the control socket: a JSON request per line, a JSON answer per line.
struct Ctl {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Ctl {
    fn connect(path: &Path) -> std::io::Result<Ctl> {
        let s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        Ok(Ctl {
            w: s.try_clone()?,
            r: BufReader::new(s),
        })
    }

    fn call(&mut self, req: &Value) -> std::io::Result<Value> {
        let mut line = req.to_string();
        line.push('\n');
        self.w.write_all(line.as_bytes())?;
        let mut ans = String::new();
        if self.r.read_line(&mut ans)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the control socket closed",
            ));
        }
        serde_json::from_str(&ans).map_err(std::io::Error::other)
    }
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The packets a tunnel's counters hold (any of them non-zero means the tunnel was used).
fn tunnel_packets(t: &Value) -> u64 {
    [
        "encap",
        "decap",
        "drops",
        "keepalives_rx",
        "keepalives_reflected",
    ]
    .iter()
    .map(|k| n(&t[*k]))
    .sum()
}

/// One sample of a decoy's counters into (sum of earlier incarnations, latest sample); see `decoy_seen`.
fn sample(e: &mut (u64, u64), v: u64) {
    if v < e.1 {
        e.0 += e.1;
    }
    e.1 = v;
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `tcpdump` reading one FIFO (greway's tx pcap of one queue) and writing only the frames its filter keeps.
fn spawn_filter(fifo: &Path, out: &Path, log: &Path, keep: &str) -> Child {
    Command::new("tcpdump")
        .args(["-Z", "root", "-r"])
        .arg(fifo)
        .arg("-w")
        .arg(out)
        .arg(keep)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("tcpdump is required by this test (scripts/install-deps.sh installs it)")
}

/// Frames of the kept captures tshark decodes (it takes about 30 s per 1M frames here).
const TSHARK_SAMPLE: u64 = 5000;

/// Frames of a capture matching a BPF filter (all with ""), counted by tcpdump (libpcap).
fn tcpdump_count(pcap: &Path, filter: &str) -> u64 {
    let mut c = Command::new("tcpdump");
    c.args(["--count", "-r"]).arg(pcap);
    if !filter.is_empty() {
        c.arg(filter);
    }
    let out = c.output().expect("tcpdump");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tcpdump --count {filter}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("tcpdump --count output: {text}"))
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().expect("mkfifo");
    assert!(st.success(), "mkfifo {}", p.display());
}

#[test]
fn tunnels_churned_through_the_socket_under_traffic_with_two_workers() {
    let dir = scratch("churn");
    let prefix = format!("gwt-churn-{}", std::process::id());
    let mut guard = Guard {
        children: Vec::new(),
        prefix: prefix.clone(),
    };

    // Traffic: alternately to the sequenced and to the plain tunnel's route.
    let frames: Vec<Vec<u8>> = (0..64u16)
        .map(|i| {
            let dst = if i % 2 == 0 {
                [10, 30, 0, i as u8]
            } else {
                [10, 20, 0, i as u8]
            };
            udp4_frame(HOST, GWIN, [10, 0, 0, 2], dst, i, &[i as u8; 64])
        })
        .collect();
    write_pcap(&dir.join("inside.pcap"), &frames);

    let seq = seq_tunnel();
    let plain = plain_tunnel();
    let decoys: Vec<Tun> = (0..DECOYS).map(decoy).collect();
    // Initial order: decoys before, between and after the live tunnels.
    // "seq" at index 2: its run-unique id is even at the start, and stays even through the rotation (each
    // rotation re-adds all eight tunnels in order, ids + 8), so worker 0 owns it throughout.
    let mut order: Vec<Tun> = vec![
        decoys[0].clone(),
        decoys[1].clone(),
        seq.clone(),
        decoys[2].clone(),
        plain.clone(),
        decoys[3].clone(),
        decoys[4].clone(),
        decoys[5].clone(),
    ];

    // The outside port's tx: one FIFO per tx queue (one per worker), each filtered by tcpdump. Kept: anything
    // that is not exactly an encapsulation of "seq" (K and S flags, its key, to its remote) or "plain" (K flag,
    // its key, to its remote). Greway's outer IPv4 header has no options, so GRE starts at ip[20].
    let keep = format!(
        "not (ip proto 47 and ((dst host {} and ip[20:2] = 0x3000 and ip[24:4] = {}) or \
         (dst host {} and ip[20:2] = 0x2000 and ip[24:4] = {})))",
        seq.remote, seq.key, plain.remote, plain.key
    );
    let mut kept = Vec::new();
    for q in 0..2 {
        let fifo = dir.join(format!("outside-tx{q}.fifo"));
        mkfifo(&fifo);
        let out = dir.join(format!("kept{q}.pcap"));
        guard.children.push(spawn_filter(
            &fifo,
            &out,
            &dir.join(format!("tcpdump{q}.log")),
            &keep,
        ));
        kept.push(out);
    }
    let filters = guard.children.len();

    let d = dir.display();
    let sock = dir.join("ctl.sock");
    let cfg = format!(
        r#"
[eal]
args = ["-c", "0x3", "--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--file-prefix", "{prefix}", "--log-level", "3"]
[dataplane]
workers = [1, 0]
burst = 16
[control]
socket = "{sock}"
[[port]]
name = "inside"
device = "net_pcap0,rx_pcap={d}/inside.pcap,rx_pcap={d}/inside.pcap,infinite_rx=1"
address = "10.0.0.1/24"
mac = "02:00:00:00:00:01"
[[port]]
name = "outside"
device = "net_pcap1,tx_pcap={d}/outside-tx0.fifo,tx_pcap={d}/outside-tx1.fifo"
address = "192.0.2.1/24"
mac = "02:00:00:00:00:02"
{tunnels}
[[neighbor]]
port = "outside"
ip = "192.0.2.254"
mac = "02:00:00:00:00:fe"
[[route]]
prefix = "198.51.100.0/24"
via = "192.0.2.254"
port = "outside"
"#,
        sock = sock.display(),
        tunnels = order.iter().map(Tun::toml).collect::<String>(),
    );
    let cfg_path = dir.join("greway.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let stats_path = dir.join("stats.json");
    let log_path = dir.join("greway.log");
    let child = Command::new(greway_bin())
        .args(["run", "--quiet", "--config"])
        .arg(&cfg_path)
        .arg("--stats-json")
        .arg(&stats_path)
        // A bound in case the signal is lost; the test stops it long before.
        .args(["--duration-s", "120"])
        .stdout(std::fs::File::create(dir.join("greway.out")).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("spawn greway");
    let pid = child.id();
    guard.children.push(child);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // The socket, then traffic on both live tunnels.
    let t0 = Instant::now();
    let mut ctl = loop {
        if let Ok(c) = Ctl::connect(&sock) {
            break c;
        }
        if let Some(st) = guard.children[filters].try_wait().unwrap() {
            panic!("greway exited at start: {st}\n{}", log());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no control socket\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    loop {
        let s = ctl.call(&json!({"cmd": "stats"})).expect("stats");
        let t = &s["data"]["tunnels"];
        if n(&t["seq"]["encap"]) > 0 && n(&t["plain"]["encap"]) > 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no traffic on the live tunnels: {s}\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The churn: rotate the table (delete the first tunnel, add it again at the end) as fast as the socket
    // answers, reading the stats between the pairs.
    let mut changes = 0u64;
    let mut refused: Vec<String> = Vec::new();
    let mut order_wrong: Vec<String> = Vec::new();
    let mut socket_error: Option<String> = None;
    let mut change_time = Duration::ZERO;
    let mut slowest = Duration::ZERO;
    // Per decoy: the packets counted on its incarnations, from the samples. A counter only grows within an
    // incarnation and a new one starts at zero, so a sample lower than the one before means the earlier one was
    // the last seen of an incarnation: (sum of those, latest sample). A lower bound (what an incarnation
    // counted after its last sample is not seen), never counting an incarnation twice (a status published
    // before a change may still show the previous incarnation).
    let mut decoy_seen: BTreeMap<String, (u64, u64)> =
        decoys.iter().map(|t| (t.name.clone(), (0, 0))).collect();
    let mut samples = 0u64;
    let started = Instant::now();
    // Stop with "seq" owned by worker 0 (its run-unique id % workers, as `ctl tunnel show` gives it), alone on
    // core 1, and the worker handing its packets off is worker 1, which shares core 0 with the control thread
    // (see the module comment): the handoff is busy right up to the stop.
    let mut seq_id = 2u64;
    'churn: while started.elapsed() < CHURN {
        let t = order.remove(0);
        let ops = [
            json!({"cmd": "tunnel_del", "name": t.name}),
            json!({"cmd": "tunnel_add", "tunnel": t.spec()}),
        ];
        for (k, req) in ops.iter().enumerate() {
            let c0 = Instant::now();
            let ans = match ctl.call(req) {
                Ok(a) => a,
                Err(e) => {
                    socket_error = Some(format!("{req}: {e}"));
                    break 'churn;
                }
            };
            let dt = c0.elapsed();
            change_time += dt;
            slowest = slowest.max(dt);
            if ans["ok"] != true {
                refused.push(format!("{req} -> {ans}"));
                continue;
            }
            changes += 1;
            if k == 1 {
                order.push(t.clone());
            }
            if let Some(id) = ans["data"]["tunnels"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["name"] == "seq"))
                .and_then(|x| x["id"].as_u64())
            {
                seq_id = id;
            }
            let want: Vec<&str> = order.iter().map(|x| x.name.as_str()).collect();
            let got: Vec<&str> = ans["data"]["tunnels"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect())
                .unwrap_or_default();
            if got != want && order_wrong.len() < 5 {
                order_wrong.push(format!("after {req}: {got:?}, expected {want:?}"));
            }
        }
        match ctl.call(&json!({"cmd": "stats"})) {
            Ok(s) => {
                samples += 1;
                for (name, e) in decoy_seen.iter_mut() {
                    let t = &s["data"]["tunnels"][name];
                    if !t.is_null() {
                        sample(e, tunnel_packets(t));
                    }
                }
            }
            Err(e) => {
                socket_error = Some(format!("stats: {e}"));
                break 'churn;
            }
        }
    }
    let churn_s = started.elapsed().as_secs_f64();
    drop(ctl);
    let rate = changes as f64 / churn_s;

    // Stop it as an operator would (Ctrl-C) and read the final report.
    let died_during_churn = guard.children[filters].try_wait().unwrap();
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let status = wait_exit(&mut guard.children[filters], Duration::from_secs(20));
    if status.is_none() {
        let _ = guard.children[filters].kill();
        let _ = guard.children[filters].wait();
    }
    // The FIFOs reach their end when greway closes its tx pcaps (or dies): the filters finish.
    for q in 0..filters {
        let st = wait_exit(&mut guard.children[q], Duration::from_secs(20));
        assert!(
            st.is_some_and(|s| s.success()),
            "tcpdump {q}: {st:?}: {}",
            std::fs::read_to_string(dir.join(format!("tcpdump{q}.log"))).unwrap_or_default()
        );
    }

    // The independent decoders on what tcpdump kept (nothing, when greway is right): libpcap's BPF counts the
    // frames to each decoy's remote or with its key (decoys have no GRE checksum, so the key is at GRE offset
    // 4), and tshark decodes a sample of them (decoding them all takes tshark minutes).
    let decoy_by_key: BTreeMap<u32, &str> =
        decoys.iter().map(|t| (t.key, t.name.as_str())).collect();
    let decoy_by_remote: BTreeMap<&str, &str> = decoys
        .iter()
        .map(|t| (t.remote.as_str(), t.name.as_str()))
        .collect();
    let mut on_wire: BTreeMap<String, u64> = BTreeMap::new();
    let mut other: BTreeMap<String, u64> = BTreeMap::new();
    let mut kept_frames = 0u64;
    let mut decoded = 0u64;
    for p in &kept {
        if std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) == 0 {
            continue;
        }
        let total = tcpdump_count(p, "");
        kept_frames += total;
        let mut to_decoys = 0;
        for t in &decoys {
            let c = tcpdump_count(
                p,
                &format!(
                    "ip proto 47 and (dst host {} or ip[24:4] = {})",
                    t.remote, t.key
                ),
            );
            if c > 0 {
                *on_wire.entry(t.name.clone()).or_default() += c;
            }
            to_decoys += c;
        }
        if total > to_decoys {
            *other.entry("frames to no decoy (BPF)".into()).or_default() += total - to_decoys;
        }
        for row in tshark_fields(
            p,
            None,
            &["ip.dst", "gre.key", "frame.protocols"],
            &["-E", "occurrence=f", "-c", &TSHARK_SAMPLE.to_string()],
        ) {
            decoded += 1;
            let dst = row.first().map(String::as_str).unwrap_or("");
            let key = row
                .get(1)
                .and_then(|k| u32::from_str_radix(k.trim_start_matches("0x"), 16).ok());
            let protos = row.get(2).map(String::as_str).unwrap_or("");
            let by_key = key.and_then(|k| decoy_by_key.get(&k));
            let by_remote = decoy_by_remote.get(dst);
            if !protos.contains(":gre") || by_key.is_none() || by_key != by_remote {
                *other
                    .entry(format!(
                        "decoded by tshark: {protos} to {dst} key {key:?}, not one decoy's key and remote"
                    ))
                    .or_default() += 1;
            }
        }
    }

    // The final report.
    let fin: Option<Value> = std::fs::read_to_string(&stats_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let mut failures: Vec<String> = Vec::new();
    let mut report = format!(
        "churn: {changes} changes in {churn_s:.1} s through the socket = {rate:.1} changes/s (mean {:.1} ms, \
         slowest {:.1} ms per change), {samples} stats samples\n",
        change_time.as_secs_f64() * 1e3 / changes.max(1) as f64,
        slowest.as_secs_f64() * 1e3
    );
    if let Some(e) = &socket_error {
        failures.push(format!("the control socket failed during the churn: {e}"));
    }
    if !seq_id.is_multiple_of(2) {
        failures.push(format!(
            "setup: \"seq\" (id {seq_id}) is not owned by worker 0, so no handoff was in flight at the stop"
        ));
    }
    if let Some(st) = died_during_churn {
        failures.push(format!("greway died during the churn: {st}"));
    }
    if !refused.is_empty() {
        failures.push(format!(
            "{} changes refused, first: {}",
            refused.len(),
            refused[0]
        ));
    }
    if !order_wrong.is_empty() {
        failures.push(format!("tunnel order: {}", order_wrong.join("; ")));
    }
    match status {
        None => failures.push("greway did not stop within 20 s of SIGINT".into()),
        Some(st) if !st.success() => failures.push(format!("greway exit status {st}")),
        Some(st) => report += &format!("greway: {st}\n"),
    }
    match &fin {
        None => failures.push("no final stats (--stats-json) written".into()),
        Some(s) => {
            let port = |p: &str, k: &str| n(&s["ports"][p][k]);
            let rx = port("inside", "rx") + port("outside", "rx");
            let tx = port("inside", "tx") + port("outside", "tx");
            let drops: BTreeMap<String, u64> = s["drops"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(_, v)| n(v) > 0)
                        .map(|(k, v)| (k.clone(), n(v)))
                        .collect()
                })
                .unwrap_or_default();
            let dropped: u64 = drops.values().sum();
            let unaccounted = i128::from(rx) - i128::from(tx) - i128::from(dropped);
            let (start, end) = (
                n(&s["mempool"]["free_at_start"]),
                n(&s["mempool"]["free_at_end"]),
            );
            let leaked = i128::from(start) - i128::from(end);
            let tun = |name: &str| n(&s["tunnels"][name]["encap"]);
            report += &format!(
                "packets: rx {rx} (inside queues {}), tx {tx} (outside {}), drops {dropped} {drops:?}\n\
                 tunnels at the end: seq encap {}, plain encap {}\n\
                 unaccounted (rx - tx - drops): {unaccounted}\n\
                 mempool: free at start {start}, at end {end}: {leaked} leaked\n",
                s["ports"]["inside"]["hw"]["rx_queue_packets"],
                port("outside", "tx"),
                tun("seq"),
                tun("plain"),
            );
            if rx == 0 || tun("seq") == 0 || tun("plain") == 0 {
                failures.push(format!("traffic did not flow on both live tunnels: {s}"));
            }
            if unaccounted != 0 {
                failures.push(format!(
                    "{unaccounted} packets unaccounted for (rx {rx}, tx {tx}, drops {dropped})"
                ));
            }
            if leaked != 0 {
                failures.push(format!("{leaked} mbufs leaked"));
            }
            let mut fin_decoys = BTreeMap::new();
            for t in &decoys {
                let v = &s["tunnels"][&t.name];
                if v.is_null() {
                    failures.push(format!("{} missing from the final stats", t.name));
                    continue;
                }
                let p = tunnel_packets(v);
                fin_decoys.insert(t.name.clone(), p);
                if let Some(e) = decoy_seen.get_mut(&t.name) {
                    sample(e, p);
                }
            }
            report += &format!("decoys in the final stats (last incarnation): {fin_decoys:?}\n");
            if fin_decoys.values().any(|p| *p > 0) {
                failures.push(format!(
                    "decoys counted packets in the final stats: {fin_decoys:?}"
                ));
            }
        }
    }
    let sampled: BTreeMap<&String, u64> = decoy_seen.iter().map(|(k, e)| (k, e.0 + e.1)).collect();
    report += &format!(
        "decoys in the stats over all incarnations (sampled between changes): {sampled:?}\n\
         outside tx: {kept_frames} frames not of the live tunnels; GRE packets to a decoy's remote or with its \
         key (BPF) {on_wire:?}; {decoded} of them decoded by tshark; other {other:?}\n"
    );
    if sampled.values().any(|p| *p > 0) {
        failures.push(format!(
            "decoys counted packets during the churn: {sampled:?}"
        ));
    }
    if !on_wire.is_empty() {
        failures.push(format!(
            "GRE packets with a decoy's key or remote on the outside port: {on_wire:?}"
        ));
    }
    if !other.is_empty() {
        failures.push(format!(
            "frames on the outside port that are no live tunnel's encapsulation: {other:?}"
        ));
    }
    eprintln!("{report}");
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        failures.is_empty(),
        "churn test failed ({} problems; files in {}):\n- {}\n{report}\ngreway log (tail):\n{}",
        failures.len(),
        dir.display(),
        failures.join("\n- "),
        tail(&log(), 30)
    );
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}
