//! Configuration reload (`greway ctl reload`, SIGHUP) on the real binary and real DPDK virtual ports, under
//! endless streams in both directions.
//!
//! Setup: one worker; the inside port replays a capture forever (`net_pcap`, `infinite_rx=1`) of UDP frames into
//! four tunnels' routes and a `[[route]]` into a tunnel; the outside port replays GRE from the four tunnels' peers
//! forever. A replayed capture is received in order, cycle after cycle, so the number of frames each tunnel got is
//! known exactly from the port's rx count: that is what every unchanged tunnel's encap and decap counters must
//! equal at the end (zero loss, exact).
//!
//! - [`reload_under_streams_changes_only_what_changed`]: `ctl reload` of a file that adds a tunnel, removes one,
//!   changes one's key, moves a route to the added tunnel and adds a neighbour; then SIGHUP with the first file
//!   again. The outside port's output goes through a FIFO to tcpdump, which keeps the frames of the changed tunnel
//!   and the added one: on the wire there are exactly three runs (before, between, after the reloads: each reload
//!   switches at one packet), and every frame of the changed tunnel's and the moved route's streams is there.
//! - [`refused_reloads_change_nothing`]: a changed port, workers, EAL arguments, and an invalid file, through
//!   `ctl reload` (exit 1, the reason on stderr; the invalid file's error is check-config's) and SIGHUP (logged):
//!   the tunnels are the same and every tunnel's counters are exact at the end.
mod common;
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HOST: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const GWIN: [u8; 6] = [2, 0, 0, 0, 0, 1];
const LOCAL: [u8; 4] = [192, 0, 2, 1];

/// The inside capture, by label: "a", "b", "old", "c" (into those tunnels' routes) and "r24" (the `[[route]]`
/// 10.24.0.0/16, into "c" or into "d").
const INSIDE: &[&str] = &["a", "b", "a", "b", "old", "a", "b", "c", "a", "b", "r24"];
/// The outside capture: GRE from each tunnel's peer with its key; "c2004" is the key "c" has in the second file.
const OUTSIDE: &[&str] = &["a", "b", "old", "a", "b", "c", "c2004"];

fn inside_dst(label: &str) -> [u8; 4] {
    match label {
        "a" => [10, 20, 0, 1],
        "b" => [10, 21, 0, 1],
        "old" => [10, 22, 0, 1],
        "c" => [10, 23, 0, 1],
        _ => [10, 24, 0, 1],
    }
}

/// (peer, key, inner source) of an outside label.
fn outside_gre(label: &str) -> ([u8; 4], u32, [u8; 4]) {
    match label {
        "a" => ([198, 51, 100, 7], 1001, [10, 20, 3, 4]),
        "b" => ([198, 51, 100, 8], 1002, [10, 21, 3, 4]),
        "old" => ([198, 51, 100, 9], 1003, [10, 22, 3, 4]),
        "c" => ([198, 51, 100, 10], 1004, [10, 23, 3, 4]),
        _ => ([198, 51, 100, 10], 2004, [10, 23, 3, 4]),
    }
}

/// Frames of `label` among the first `n` frames of an endless replay of `pattern`.
fn expected(pattern: &[&str], n: u64, label: &str) -> u64 {
    let per_cycle = pattern.iter().filter(|l| **l == label).count() as u64;
    let len = pattern.len() as u64;
    let rest = pattern[..(n % len) as usize]
        .iter()
        .filter(|l| **l == label)
        .count() as u64;
    n / len * per_cycle + rest
}

/// An Ethernet + IPv4 + GRE (key) frame from `src` to us carrying `inner` (an IPv4 packet).
fn gre_frame(src: [u8; 4], key: u32, inner: &[u8]) -> Vec<u8> {
    gre4_frame(src, LOCAL, &gre_header(0, 0x0800, Some(key), inner))
}

fn write_captures(dir: &Path) {
    let inside: Vec<Vec<u8>> = INSIDE
        .iter()
        .enumerate()
        .map(|(i, l)| {
            udp4_frame(
                HOST,
                GWIN,
                [10, 0, 0, 2],
                inside_dst(l),
                i as u16,
                &[7; 100],
            )
        })
        .collect();
    write_pcap(&dir.join("inside.pcap"), &inside);
    let outside: Vec<Vec<u8>> = OUTSIDE
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let (peer, key, src) = outside_gre(l);
            let inner = udp4_frame(HOST, GWIN, src, [10, 0, 0, 2], i as u16, &[9; 60]);
            gre_frame(peer, key, &inner[14..])
        })
        .collect();
    write_pcap(&dir.join("outside.pcap"), &outside);
}

/// The two configuration files. `first`: tunnels "old", "a", "b", "c" (key 1004), the `[[route]]` 10.24.0.0/16
/// into "c". The second: "old" removed, "d" added between "a" and "b", "c" with key 2004, the route into "d", a
/// neighbour more.
fn config(dir: &Path, tag: &str, outside_tx: &str, first: bool) -> String {
    let d = dir.display();
    let (c_key, r24, tunnels_extra, neighbor) = if first {
        (1004, "c", "", "")
    } else {
        (
            2004,
            "d",
            r#"
[[tunnel]]
name = "d"
local = "192.0.2.1"
remote = "198.51.100.11"
key = 1005
"#,
            r#"
[[neighbor]]
port = "outside"
ip = "192.0.2.253"
mac = "02:00:00:00:00:fd"
"#,
        )
    };
    let old = if first {
        r#"
[[tunnel]]
name = "old"
local = "192.0.2.1"
remote = "198.51.100.9"
key = 1003
routes = ["10.22.0.0/16"]
"#
    } else {
        ""
    };
    format!(
        r#"
[eal]
args = {eal}
[dataplane]
workers = [1]
[control]
socket = "{d}/ctl.sock"
[[port]]
name = "inside"
device = "net_pcap0,rx_pcap={d}/inside.pcap,infinite_rx=1"
address = "10.0.0.1/24"
mac = "02:00:00:00:00:01"
[[port]]
name = "outside"
device = "net_pcap1,rx_pcap={d}/outside.pcap,infinite_rx=1{outside_tx}"
address = "192.0.2.1/24"
mac = "02:00:00:00:00:02"
{old}
[[tunnel]]
name = "a"
local = "192.0.2.1"
remote = "198.51.100.7"
key = 1001
routes = ["10.20.0.0/16"]
{tunnels_extra}
[[tunnel]]
name = "b"
local = "192.0.2.1"
remote = "198.51.100.8"
key = 1002
ttl = 100
routes = ["10.21.0.0/16"]
[[tunnel]]
name = "c"
local = "192.0.2.1"
remote = "198.51.100.10"
key = {c_key}
routes = ["10.23.0.0/16"]
[[route]]
prefix = "10.24.0.0/16"
tunnel = "{r24}"
[[route]]
prefix = "198.51.100.0/24"
via = "192.0.2.254"
port = "outside"
[[neighbor]]
port = "outside"
ip = "192.0.2.254"
mac = "02:00:00:00:00:fe"
[[neighbor]]
port = "inside"
ip = "10.0.0.2"
mac = "02:00:00:00:00:0a"
{neighbor}
"#,
        eal = eal_args(tag),
    )
}

/// A gateway in the background whose log lines (stderr) are collected as they come; killed (with the other
/// processes) if the test fails before it stops.
struct Running {
    gw: Option<Child>,
    others: Vec<Child>,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for c in self.gw.iter_mut().chain(self.others.iter_mut()) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Running {
    fn start(dir: &Path, others: Vec<Child>) -> Running {
        let mut gw = Command::new(greway_bin())
            .args(["run", "--quiet", "--duration-s", "300", "--config"])
            .arg(dir.join("greway.toml"))
            .arg("--stats-json")
            .arg(dir.join("stats.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn greway");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(gw.stderr.take().unwrap());
        let l2 = log.clone();
        let reader = std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        Running {
            gw: Some(gw),
            others,
            log,
            reader: Some(reader),
        }
    }

    fn pid(&self) -> u32 {
        self.gw.as_ref().unwrap().id()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Log lines containing `s`.
    fn logged(&self, s: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(s))
            .count()
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGINT, then the exit status (must be success) and the final stats; the other processes are waited for
    /// (they end when greway closes what they read) and must succeed too.
    fn finish(mut self, dir: &Path) -> Value {
        self.signal("-INT");
        let st = wait_exit(self.gw.as_mut().unwrap(), Duration::from_secs(30));
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        assert!(
            st.is_some_and(|s| s.success()),
            "greway: {st:?}\n{}",
            self.log_text()
        );
        self.gw = None;
        for (i, c) in self.others.iter_mut().enumerate() {
            let st = wait_exit(c, Duration::from_secs(30));
            assert!(st.is_some_and(|s| s.success()), "process {i}: {st:?}");
        }
        self.others.clear();
        serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap()
    }
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

/// `greway ctl --socket SOCK reload`: (exit code, stdout JSON, stderr).
fn ctl_reload(sock: &Path) -> (i32, Value, String) {
    let out = Command::new(greway_bin())
        .arg("ctl")
        .arg("--socket")
        .arg(sock)
        .arg("reload")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A live counter of a tunnel (`ctl stats`), 0 when the tunnel is not there.
fn counter(sock: &Path, tunnel: &str, what: &str) -> u64 {
    ctl(sock, &["stats"]).1["tunnels"][tunnel][what]
        .as_u64()
        .unwrap_or(0)
}

/// (name, id) of every tunnel, and the whole `tunnel show` answer.
fn tunnel_ids(sock: &Path) -> (Vec<(String, u64)>, Value) {
    let (ok, v, err) = ctl(sock, &["tunnel", "show"]);
    assert!(ok, "{err}");
    let ids = v["tunnels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["id"].as_u64().unwrap(),
            )
        })
        .collect();
    (ids, v)
}

fn id_of(ids: &[(String, u64)], name: &str) -> Option<u64> {
    ids.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
}

/// More traffic on `tunnel`'s `what` counter than now.
fn wait_traffic(sock: &Path, tunnel: &str, what: &str) {
    let now = counter(sock, tunnel, what);
    wait_for(&format!("{what} on tunnel {tunnel}"), || {
        counter(sock, tunnel, what) > now
    });
}

/// `tunnels` (unchanged through the run; "c" with the first file) counted exactly the frames the replays gave
/// them, both ways, with no drop of theirs; the accounting adds up and no mbuf leaked.
fn assert_exact(s: &Value, tunnels: &[&str]) {
    let rx_in = s["ports"]["inside"]["rx"].as_u64().unwrap();
    let rx_out = s["ports"]["outside"]["rx"].as_u64().unwrap();
    assert!(
        rx_in > 10_000 && rx_out > 10_000,
        "streams, not trickles: {s}"
    );
    for t in tunnels {
        let c = &s["tunnels"][t];
        let (encap, decap) = (c["encap"].as_u64().unwrap(), c["decap"].as_u64().unwrap());
        // The first file's "c" also carries the [[route]] 10.24.0.0/16.
        let want = match *t {
            "c" => expected(INSIDE, rx_in, "c") + expected(INSIDE, rx_in, "r24"),
            _ => expected(INSIDE, rx_in, t),
        };
        eprintln!(
            "tunnel {t}: encap {encap} of {want}, decap {decap} of {}",
            expected(OUTSIDE, rx_out, t)
        );
        assert_eq!(encap, want, "tunnel {t} encap: {s}");
        assert_eq!(decap, expected(OUTSIDE, rx_out, t), "tunnel {t} decap: {s}");
        assert_eq!(c["drops"], 0, "tunnel {t}: {s}");
    }
    let tx: u64 = ["inside", "outside"]
        .iter()
        .map(|p| s["ports"][p]["tx"].as_u64().unwrap())
        .sum();
    assert_eq!(rx_in + rx_out, tx + total_drops(s), "rx = tx + drops: {s}");
    assert_eq!(
        s["mempool"]["free_at_start"], s["mempool"]["free_at_end"],
        "no mbuf leaked: {s}"
    );
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().expect("mkfifo");
    assert!(st.success(), "mkfifo {}", p.display());
}

/// Frames of a capture matching a BPF filter, counted by tcpdump (libpcap).
fn tcpdump_count(pcap: &Path, filter: &str) -> u64 {
    let out = Command::new("tcpdump")
        .args(["--count", "-r"])
        .arg(pcap)
        .arg(filter)
        .output()
        .expect("tcpdump");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tcpdump --count {filter}: {text}");
    text.split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("tcpdump --count output: {text}"))
}

#[test]
fn reload_under_streams_changes_only_what_changed() {
    let dir = scratch("reload-streams");
    write_captures(&dir);
    let sock = dir.join("ctl.sock");
    let cfg_path = dir.join("greway.toml");
    // The outside port's output into a FIFO read by tcpdump, which keeps the GRE frames to "c"'s and "d"'s peers
    // (the FIFO's back-pressure paces the worker: nothing is dropped on the way).
    let fifo = dir.join("outside-tx.fifo");
    mkfifo(&fifo);
    let kept = dir.join("kept.pcap");
    let tcpdump = Command::new("tcpdump")
        .args(["-Z", "root", "-r"])
        .arg(&fifo)
        .arg("-w")
        .arg(&kept)
        .arg("ip proto 47 and (dst host 198.51.100.10 or dst host 198.51.100.11)")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("tcpdump.log")).unwrap())
        .spawn()
        .expect("tcpdump is required by this test (scripts/install-deps.sh installs it)");
    let tx = format!(",tx_pcap={}", fifo.display());
    let first = config(&dir, "reload-streams", &tx, true);
    let second = config(&dir, "reload-streams", &tx, false);
    std::fs::write(&cfg_path, &first).unwrap();
    let g = Running::start(&dir, vec![tcpdump]);
    wait_for("the control socket", || ctl(&sock, &["stats"]).0);
    for t in ["a", "b", "old", "c"] {
        wait_traffic(&sock, t, "encap");
    }
    wait_traffic(&sock, "c", "decap");
    let (before, _) = tunnel_ids(&sock);

    // 1. `ctl reload` of the second file, while both streams flow.
    std::fs::write(&cfg_path, &second).unwrap();
    let (code, v, err) = ctl_reload(&sock);
    assert_eq!(code, 0, "{err}");
    eprintln!("ctl reload: {v}");
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(v["file"], cfg_path.display().to_string());
    let list = |section: &str, what: &str| reload_names(&v, section, what);
    assert_eq!(list("tunnels", "added"), ["d"]);
    assert_eq!(list("tunnels", "changed"), ["c"]);
    assert_eq!(list("tunnels", "removed"), ["old"]);
    assert!(list("routes", "added").is_empty());
    assert_eq!(list("routes", "changed"), ["10.24.0.0/16"]);
    assert_eq!(list("routes", "removed"), ["10.22.0.0/16"]);
    assert_eq!(list("neighbors", "added"), ["outside 192.0.2.253"]);
    assert!(list("bridges", "added").is_empty() && list("host", "changed").is_empty());
    let (after, show) = tunnel_ids(&sock);
    let names: Vec<&str> = after.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "d", "b", "c"], "the file's order");
    for t in ["a", "b"] {
        assert_eq!(id_of(&after, t), id_of(&before, t), "{t} kept: {show}");
    }
    assert_ne!(id_of(&after, "c"), id_of(&before, "c"), "c replaced");
    assert_eq!(show["tunnels"][3]["okey"], 2004, "{show}");
    let (_, routes, _) = ctl(&sock, &["route", "show"]);
    assert!(
        routes["tunnel_routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["prefix"] == "10.24.0.0/16"
                && r["tunnel"] == "d"
                && r["origin"] == "config"),
        "{routes}"
    );
    // The changes took effect: the added tunnel carries the moved route, the changed one its new key both ways.
    wait_traffic(&sock, "d", "encap");
    wait_traffic(&sock, "c", "encap");
    wait_traffic(&sock, "c", "decap");
    wait_for("old's frames refused", || {
        ctl(&sock, &["stats"]).1["drops"]["unknown_tunnel"]
            .as_u64()
            .unwrap_or(0)
            > 0
    });

    // 2. SIGHUP with the first file again.
    std::fs::write(&cfg_path, &first).unwrap();
    g.signal("-HUP");
    wait_for("the SIGHUP reload", || g.logged("tunnels +old ~c -d") == 1);
    let (reverted, _) = tunnel_ids(&sock);
    let names: Vec<&str> = reverted.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["old", "a", "b", "c"]);
    for t in ["a", "b"] {
        assert_eq!(id_of(&reverted, t), id_of(&before, t), "{t} kept");
    }
    for t in ["old", "c"] {
        wait_traffic(&sock, t, "encap");
    }
    wait_traffic(&sock, "c", "decap");
    // Another SIGHUP of the same file changes nothing.
    g.signal("-HUP");
    wait_for("the second SIGHUP", || g.logged(": no change") == 1);
    assert_eq!(tunnel_ids(&sock).0, reverted);

    // tcpdump ends with the FIFO, when greway closes its tx pcap.
    let s = g.finish(&dir);
    assert_exact(&s, &["a", "b"]);
    // What the other streams met: "old"'s and "d"'s absence (no route, unknown tunnel) and "c"'s other key.
    let drops = s["drops"].as_object().unwrap();
    for (reason, n) in drops {
        if n.as_u64().unwrap() > 0 {
            assert!(
                ["no_route", "unknown_tunnel", "key_mismatch"].contains(&reason.as_str()),
                "{reason}: {s}"
            );
        }
    }

    // The wire, decoded by tcpdump: the frames to "c"'s and "d"'s peers. Every frame of the inside stream's "c" and
    // "r24" frames is there (the changed tunnel and the moved route lost nothing), in exactly three runs: "c" with
    // key 1004 for both; then "c" with key 2004 and "d" (key 1005) for the route; then key 1004 again.
    let rx_in = s["ports"]["inside"]["rx"].as_u64().unwrap();
    let want = expected(INSIDE, rx_in, "c") + expected(INSIDE, rx_in, "r24");
    let frames = read_pcap(&kept);
    let k1004 = tcpdump_count(&kept, "dst host 198.51.100.10 and ip[24:4] = 1004");
    let k2004 = tcpdump_count(&kept, "dst host 198.51.100.10 and ip[24:4] = 2004");
    let k1005 = tcpdump_count(&kept, "dst host 198.51.100.11 and ip[24:4] = 1005");
    eprintln!(
        "on the wire: {} frames to c and d ({want} expected): c key 1004 {k1004}, c key 2004 {k2004}, d {k1005}",
        frames.len()
    );
    assert_eq!(frames.len() as u64, want);
    assert_eq!(k1004 + k2004 + k1005, want, "nothing else to those peers");
    assert!(k2004 > 0 && k1005 > 0);
    // GRE with a key (no checksum) after a 20-byte outer IPv4 header: (peer's last byte, key) per frame.
    let tag = |f: &[u8]| -> (u8, u32) {
        let k = u32::from_be_bytes(f[14 + 24..14 + 28].try_into().unwrap());
        (f[14 + 19], k)
    };
    let mut runs: Vec<bool> = Vec::new();
    for f in &frames {
        let second_file = matches!(tag(f), (10, 2004) | (11, 1005));
        assert!(second_file || tag(f) == (10, 1004), "{:?}", tag(f));
        if runs.last() != Some(&second_file) {
            runs.push(second_file);
        }
    }
    assert_eq!(runs, [false, true, false], "one switch per reload");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refused_reloads_change_nothing() {
    let dir = scratch("reload-refused");
    write_captures(&dir);
    let sock = dir.join("ctl.sock");
    let cfg_path = dir.join("greway.toml");
    let first = config(&dir, "reload-refused", "", true);
    std::fs::write(&cfg_path, &first).unwrap();
    let g = Running::start(&dir, Vec::new());
    wait_for("the control socket", || ctl(&sock, &["stats"]).0);
    for t in ["a", "b", "old", "c"] {
        wait_traffic(&sock, t, "encap");
    }
    let (_, before) = tunnel_ids(&sock);

    // Each with a tunnel change beside it (the second file's), which must not be applied either.
    let second = config(&dir, "reload-refused", "", false);
    let outside_mtu = second.replace(
        "mac = \"02:00:00:00:00:02\"",
        "mac = \"02:00:00:00:00:02\"\nmtu = 1400",
    );
    let workers = second
        .replace("workers = [1]", "workers = [1, 0]")
        .replace(r#""-l", "0-1""#, r#""-c", "0x3""#);
    let eal = second.replace(r#""--log-level", "3""#, r#""--log-level", "4""#);
    for (text, why) in [
        (&outside_mtu, "reload refused: [[port]] \"outside\" changed: needs a restart"),
        (
            &workers,
            "reload refused: [eal] args changed: needs a restart; [dataplane] workers changed: needs a restart",
        ),
        (&eal, "reload refused: [eal] args changed: needs a restart"),
    ] {
        std::fs::write(&cfg_path, text).unwrap();
        let (code, v, err) = ctl_reload(&sock);
        assert_eq!((code, &v), (1, &Value::Null), "{err}");
        assert_eq!(err.trim(), format!("error: {why}"));
        assert_eq!(tunnel_ids(&sock).1, before, "nothing changed after {why}");
    }
    // An invalid file: refused with check-config's error (file, line, field).
    let invalid = second.replace("key = 2004", "key = 2004\nttl = 0");
    std::fs::write(&cfg_path, &invalid).unwrap();
    let check = Command::new(greway_bin())
        .arg("check-config")
        .arg(&cfg_path)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(2));
    let check_err = String::from_utf8_lossy(&check.stderr).trim().to_string();
    let located = check_err.strip_prefix("error: ").unwrap();
    assert!(
        located.starts_with(&format!("{}:", cfg_path.display()))
            && located.contains(": tunnel[3].ttl: "),
        "{located}"
    );
    let (code, _, err) = ctl_reload(&sock);
    assert_eq!(code, 1);
    assert_eq!(err.trim(), format!("error: reload refused: {located}"));
    assert_eq!(tunnel_ids(&sock).1, before);
    // SIGHUP: the same refusals, logged.
    std::fs::write(&cfg_path, &outside_mtu).unwrap();
    g.signal("-HUP");
    wait_for("the refused SIGHUP", || {
        g.logged("reload refused: [[port]] \"outside\" changed: needs a restart") == 2
    });
    std::fs::write(&cfg_path, &invalid).unwrap();
    g.signal("-HUP");
    wait_for("the invalid file's SIGHUP", || {
        g.logged(&format!("reload refused: {located}")) == 2
    });
    assert_eq!(tunnel_ids(&sock).1, before);
    // The file as it was: nothing to change.
    std::fs::write(&cfg_path, &first).unwrap();
    let (code, v, err) = ctl_reload(&sock);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["changed"], false, "{v}");
    for t in ["a", "b", "old", "c"] {
        wait_traffic(&sock, t, "encap");
    }

    let s = g.finish(&dir);
    // Nothing changed: every tunnel exact, and the only drops are "c"'s frames with the key it does not have.
    assert_exact(&s, &["a", "b", "old", "c"]);
    let rx_out = s["ports"]["outside"]["rx"].as_u64().unwrap();
    assert_eq!(
        s["drops"]["key_mismatch"].as_u64().unwrap(),
        expected(OUTSIDE, rx_out, "c2004")
    );
    assert_eq!(total_drops(&s), expected(OUTSIDE, rx_out, "c2004"), "{s}");
    let _ = std::fs::remove_dir_all(&dir);
}
