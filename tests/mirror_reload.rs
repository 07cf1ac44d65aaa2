//! `[[mirror]]` entries through configuration reloads (`greway ctl reload`, SIGHUP) on the real binary, real DPDK
//! pcap ports and a stream that flows through every reload.
//!
//! The inside port reads a FIFO that a thread of the test writes numbered UDP frames into, steadily, until told
//! to stop (frame `n` carries `n` in its first four payload bytes): so the number of frames sent is known exactly
//! and the stream is slow enough for every copy to be kept. greway encapsulates them into tunnel "t1"; the mirror
//! "inside rx -> span1" (ERSPAN type II, session 10) is in every file; the files differ in "inside rx -> span2",
//! which goes through these reloads:
//!
//! 1. `ctl reload` adds it with its tunnel span2 (type III, session 20), first in the file (span1's entry moves to
//!    second place);
//! 2. SIGHUP changes span2's session to 21: the tunnel is replaced, and with it the entry;
//! 3. `ctl reload` removes both;
//! 4. `ctl reload` adds them again (session 21).
//!
//! Checked: each reload's answer or log line; `ctl mirror show` (the entries, their run-unique ids), `ctl stats`
//! and Prometheus after each; the final counters (span1's entry copied every frame; the re-added entry counted
//! from zero: exactly the copies of its last run); and the wire, decoded by tshark: session 10 has every frame, in
//! order, numbered on from 0 (its entry and tunnel were never touched); session 20 and then session 21 copy one
//! contiguous run of frames each, the change switching at one frame, each numbered from 0; no span2 copy while the
//! entry is gone; then a last run, numbered from 0 again. The originals are all sent, byte for byte, with no drop.
mod common;
use common::*;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOST: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const GWIN: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// Frames per write, and the pause between writes (about 8000 frames a second).
const CHUNK: u64 = 16;
const PAUSE: Duration = Duration::from_millis(2);
/// The session of span1, and of span2 before and after its change.
const S1: u64 = 10;
const S2: u64 = 20;
const S2B: u64 = 21;

/// Inside frame `n`: UDP from the inside host into t1's route, `n` in the payload's first four bytes.
fn frame(n: u64) -> Vec<u8> {
    let mut payload = (n as u32).to_be_bytes().to_vec();
    payload.extend((0..96u8).map(|i| i.wrapping_add(n as u8)));
    udp4_frame(HOST, GWIN, [10, 0, 0, 2], [10, 20, 0, 1], 4000, &payload)
}

/// The IPv4 packet of inside frame `n` as t1 carries it: its TTL one less (RFC 1812), the checksum to match.
fn forwarded(n: u64) -> Vec<u8> {
    let mut ip = frame(n)[14..].to_vec();
    ip[8] -= 1;
    ip[10..12].copy_from_slice(&[0, 0]);
    let ck = ipv4_checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    ip
}

/// The stream into the inside port: a thread writing numbered frames into a FIFO (a pcap stream) until `stop`;
/// `written` counts the frames written so far.
struct Stream {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Stream {
    fn start(fifo: &Path) -> Stream {
        let st = Command::new("mkfifo").arg(fifo).status().expect("mkfifo");
        assert!(st.success(), "mkfifo {}", fifo.display());
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let (s, w, path) = (stop.clone(), written.clone(), fifo.to_path_buf());
        let thread = std::thread::spawn(move || {
            // Opening blocks until greway opens the FIFO to read it.
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let hdr = PcapHeader {
                datalink: DataLink::ETHERNET,
                ..PcapHeader::default()
            };
            // Unbuffered: each frame is in the FIFO once written.
            let mut out = PcapWriter::with_header(&f, hdr).unwrap();
            let mut n = 0u64;
            // Relaxed: the flag carries no data.
            while !s.load(Ordering::Relaxed) {
                for _ in 0..CHUNK {
                    let fr = frame(n);
                    let p = PcapPacket::new(Duration::from_micros(n), fr.len() as u32, &fr);
                    if out.write_packet(&p).is_err() {
                        return n;
                    }
                    n += 1;
                }
                w.store(n, Ordering::Relaxed);
                std::thread::sleep(PAUSE);
            }
            n
        });
        Stream {
            stop,
            written,
            thread: Some(thread),
        }
    }

    fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Wait until `more` frames more than now have been written.
    fn wait_more(&self, more: u64) {
        let until = self.written() + more;
        wait_for(&format!("{more} frames more"), || self.written() >= until);
    }

    /// Stop writing and close the FIFO (greway reads its end); the number of frames written.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // On a failed test: stop writing (a thread blocked on a dead reader is left behind, not waited for).
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The configuration file: `span2` is span2's session, None for no span2 and no mirror into it.
fn config(dir: &Path, prom: u16, span2: Option<u64>) -> String {
    let d = dir.display();
    let (tunnel2, mirror2) = match span2 {
        Some(s) => (
            erspan_sender(
                "span2",
                "198.51.100.60",
                &format!("session = {s}, version = 2, hwid = 4"),
            ),
            mirror("inside", "rx", "span2"),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        r#"
{head}
[control]
socket = "{d}/ctl.sock"
[metrics]
prometheus = "127.0.0.1:{prom}"
{gateway}
{span1}
{tunnel2}
{mirror2}
{mirror1}
"#,
        head = config_head("mirror-reload"),
        gateway = encap_gateway(dir, "inside.fifo"),
        span1 = erspan_sender(
            "span1",
            "198.51.100.50",
            &format!("session = {S1}, version = 1, index = 3")
        ),
        mirror1 = mirror("inside", "rx", "span1"),
    )
}

/// The gateway, killed if the test fails before it stops.
struct Gateway(Option<Child>);

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Gateway {
    fn signal(&self, sig: &str) {
        let pid = self.0.as_ref().unwrap().id().to_string();
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success(), "kill {sig}");
    }
}

/// The `greway_mirror_packets_total` series of the exposition, by their labels.
fn mirror_series(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("greway_mirror_packets_total{"))
        .filter_map(|l| l.split_once('}').map(|(labels, _)| labels.to_string()))
        .collect();
    v.sort();
    v
}

fn series(tunnel: &str, session: u64) -> String {
    format!("port=\"inside\",direction=\"rx\",tunnel=\"{tunnel}\",session=\"{session}\"")
}

/// `ctl mirror show`: (tunnel, session, id, packets) per entry, in file order.
fn shown(sock: &Path) -> Vec<(String, u64, u64, u64)> {
    let (ok, v, err) = ctl(sock, &["mirror", "show"]);
    assert!(ok, "mirror show: {err}");
    v["mirrors"]
        .as_array()
        .unwrap_or_else(|| panic!("mirror show: {v}"))
        .iter()
        .map(|m| {
            assert_eq!(
                (&m["port"], &m["direction"]),
                (&Value::from("inside"), &Value::from("rx"))
            );
            let n = |k: &str| m[k].as_u64().unwrap_or_else(|| panic!("{k}: {m}"));
            (
                m["tunnel"].as_str().unwrap().to_string(),
                n("session"),
                n("id"),
                n("packets"),
            )
        })
        .collect()
}

/// (tunnel, session, id) of each entry of [`shown`].
fn ids(m: &[(String, u64, u64, u64)]) -> Vec<(&str, u64, u64)> {
    m.iter().map(|e| (e.0.as_str(), e.1, e.2)).collect()
}

/// `ctl reload`: the answer, which must be a success.
fn reload(sock: &Path) -> Value {
    let (ok, v, err) = ctl(sock, &["reload"]);
    assert!(ok, "ctl reload: {err}");
    eprintln!("ctl reload: {v}");
    assert_eq!(v["changed"], true, "{v}");
    v
}

/// Wait until Prometheus shows exactly span1's entry and, with `span2` (its session), span2's, and every entry
/// `ctl mirror show` lists has copied frames.
fn wait_state(sock: &Path, prom: u16, span2: Option<u64>) {
    let mut want = vec![series("span1", S1)];
    want.extend(span2.map(|s| series("span2", s)));
    want.sort();
    wait_for("Prometheus' mirror series", || {
        scrape(prom).is_some_and(|t| mirror_series(&t) == want)
    });
    wait_for("copies of every entry", || {
        shown(sock).iter().all(|m| m.3 > 0)
    });
}

/// An ERSPAN copy on the wire as tshark decodes it.
struct Copied {
    /// ERSPAN version (1: type II, 2: type III) and session ID.
    version: u64,
    session: u64,
    /// The GRE sequence number and the outer destination.
    seq: u64,
    dst: String,
    /// The mirrored frame's number and its UDP payload (hex).
    n: u64,
    payload: String,
}

/// The ERSPAN copies of `pcap`, in order.
fn decode(pcap: &Path) -> Vec<Copied> {
    tshark_fields(
        pcap,
        Some("erspan"),
        &[
            "erspan.version",
            "erspan.spanid",
            "gre.sequence_number",
            "ip.dst",
            "udp.payload",
        ],
        &[],
    )
    .into_iter()
    .map(|r| {
        let payload = r[4].replace(':', "");
        Copied {
            version: r[0].parse().unwrap(),
            session: r[1].parse().unwrap(),
            seq: r[2].parse().unwrap(),
            // The outer destination first, then the mirrored frame's.
            dst: r[3].split(',').next().unwrap().to_string(),
            n: u64::from_str_radix(&payload[..8], 16).unwrap(),
            payload,
        }
    })
    .collect()
}

/// The runs of consecutive frame numbers in `ns`: (first, end) each.
fn runs(ns: &[u64]) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = Vec::new();
    for &n in ns {
        match v.last_mut() {
            Some((_, end)) if *end == n => *end += 1,
            _ => v.push((n, n + 1)),
        }
    }
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn mirrors_come_change_and_go_with_reloads_under_a_stream() {
    let dir = scratch("mirror-reload");
    write_pcap(&dir.join("empty.pcap"), &[]);
    let sock = dir.join("ctl.sock");
    let cfg_path = dir.join("greway.toml");
    let prom = free_tcp_port();
    let first = config(&dir, prom, None);
    std::fs::write(&cfg_path, &first).unwrap();
    let stream = Stream::start(&dir.join("inside.fifo"));
    let log_path = dir.join("greway.log");
    let mut gw = Gateway(Some(
        Command::new(greway_bin())
            .args(["run", "--quiet", "--duration-s", "300", "--config"])
            .arg(&cfg_path)
            .arg("--stats-json")
            .arg(dir.join("stats.json"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("spawn greway"),
    ));
    let logged = |s: &str| {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(s))
            .count()
    };
    wait_for("the control socket", || ctl(&sock, &["stats"]).0);
    wait_state(&sock, prom, None);
    let m = shown(&sock);
    assert_eq!(
        (m.len(), m[0].0.as_str(), m[0].1, m[0].2),
        (1, "span1", S1, 0),
        "{m:?}"
    );
    let (_, tunnels0, _) = ctl(&sock, &["tunnel", "show"]);

    // 1. Added, first in the file.
    std::fs::write(&cfg_path, config(&dir, prom, Some(S2))).unwrap();
    let v = reload(&sock);
    assert_eq!(reload_names(&v, "mirrors", "added"), ["inside rx -> span2"]);
    assert_eq!(reload_names(&v, "tunnels", "added"), ["span2"]);
    assert!(
        reload_names(&v, "mirrors", "changed").is_empty()
            && reload_names(&v, "mirrors", "removed").is_empty()
    );
    wait_state(&sock, prom, Some(S2));
    assert_eq!(
        ids(&shown(&sock)),
        [("span2", S2, 1), ("span1", S1, 0)],
        "file order; span1 kept its id"
    );

    // 2. SIGHUP: span2's session changes; the tunnel is replaced, the entry with it.
    std::fs::write(&cfg_path, config(&dir, prom, Some(S2B))).unwrap();
    gw.signal("-HUP");
    wait_for("the SIGHUP reload", || {
        logged("tunnels ~span2, mirrors ~inside rx -> span2") == 1
    });
    wait_state(&sock, prom, Some(S2B));
    assert_eq!(
        ids(&shown(&sock)),
        [("span2", S2B, 2), ("span1", S1, 0)],
        "changed: a new id"
    );

    // 3. Removed, with its tunnel: gone from mirror show, the stats and Prometheus.
    std::fs::write(&cfg_path, &first).unwrap();
    let v = reload(&sock);
    assert_eq!(
        reload_names(&v, "mirrors", "removed"),
        ["inside rx -> span2"]
    );
    assert_eq!(reload_names(&v, "tunnels", "removed"), ["span2"]);
    wait_state(&sock, prom, None);
    let m = shown(&sock);
    assert_eq!((m.len(), m[0].0.as_str(), m[0].2), (1, "span1", 0), "{m:?}");
    let (_, stats, _) = ctl(&sock, &["stats"]);
    let listed: Vec<&Value> = stats["mirrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["tunnel"])
        .collect();
    assert_eq!(listed, [&Value::from("span1")], "{stats}");
    // Frames go by without span2 (the table switched within one burst of the reload's answer).
    stream.wait_more(2000);

    // 4. Added again: a new entry, counting from zero.
    std::fs::write(&cfg_path, config(&dir, prom, Some(S2B))).unwrap();
    let v = reload(&sock);
    assert_eq!(reload_names(&v, "mirrors", "added"), ["inside rx -> span2"]);
    wait_state(&sock, prom, Some(S2B));
    assert_eq!(
        ids(&shown(&sock)),
        [("span2", S2B, 3), ("span1", S1, 0)],
        "added again: a new id"
    );
    let (_, tunnels, _) = ctl(&sock, &["tunnel", "show"]);
    let id_of = |v: &Value, name: &str| {
        v["tunnels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["id"].clone())
    };
    for t in ["t1", "span1"] {
        assert_eq!(id_of(&tunnels, t), id_of(&tunnels0, t), "{t} untouched");
    }

    // The end of the stream: every frame taken, then stop.
    let sent = stream.finish();
    wait_for("the whole stream", || {
        ctl(&sock, &["stats"]).1["ports"]["inside"]["rx"].as_u64() == Some(sent)
    });
    gw.signal("-INT");
    let child = gw.0.as_mut().unwrap();
    let t = Instant::now();
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "greway did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    gw.0 = None;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(st.success(), "greway: {st:?}\n{log}");
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap();

    // The wire: the originals, all of them, byte for byte (behind t1's outer IPv4 and GRE with a key).
    let out = read_pcap(&dir.join("out-outside.pcap"));
    let originals: Vec<&Vec<u8>> = out.iter().filter(|f| f[36..38] == [0x08, 0x00]).collect();
    assert_eq!(originals.len() as u64, sent, "every frame sent: {s}");
    for (n, f) in originals.iter().enumerate() {
        assert_eq!(f[14 + 20 + 8..], forwarded(n as u64), "original {n}");
    }
    // The copies, by tshark: span1's session (type II) has every frame, numbered on from 0 through every reload.
    let copies = decode(&dir.join("out-outside.pcap"));
    let of = |s: u64| -> Vec<&Copied> { copies.iter().filter(|c| c.session == s).collect() };
    let s1 = of(S1);
    assert_eq!(
        s1.iter().map(|c| c.n).collect::<Vec<_>>(),
        (0..sent).collect::<Vec<_>>(),
        "session 10: every frame, in order"
    );
    assert!(
        s1.iter()
            .all(|c| (c.version, c.seq, c.dst.as_str()) == (1, c.n, "198.51.100.50")),
        "span1 numbered on"
    );
    for c in &copies {
        let want = hex(&frame(c.n)[14 + 20 + 8..]);
        assert_eq!(c.payload, want, "the mirrored frame {}", c.n);
    }
    // span2 (type III) before its change: one run of frames, numbered from 0.
    let s2 = of(S2);
    let r2 = runs(&s2.iter().map(|c| c.n).collect::<Vec<_>>());
    assert_eq!(r2.len(), 1, "session 20: one run: {r2:?}");
    assert!(s2
        .iter()
        .all(|c| (c.version, c.seq, c.dst.as_str()) == (2, c.n - r2[0].0, "198.51.100.60")));
    // After it: from the next frame on, numbered from 0; then, after the removal, a gap; then from 0 again
    // until the end.
    let s21 = of(S2B);
    let r21 = runs(&s21.iter().map(|c| c.n).collect::<Vec<_>>());
    eprintln!("sent {sent}; session 20 copied {r2:?}, session 21 {r21:?}");
    assert_eq!(r21.len(), 2, "session 21: two runs: {r21:?}");
    assert_eq!(r21[0].0, r2[0].1, "the change switched between two frames");
    assert!(r21[1].0 > r21[0].1 && r21[1].1 == sent, "{r21:?}");
    for c in &s21 {
        let from = if c.n < r21[0].1 { r21[0].0 } else { r21[1].0 };
        assert_eq!(
            (c.version, c.seq, c.dst.as_str()),
            (2, c.n - from, "198.51.100.60"),
            "frame {}",
            c.n
        );
    }
    assert_eq!(
        s1.len() + s2.len() + s21.len(),
        copies.len(),
        "no other session"
    );
    assert_eq!(
        copies.len() + originals.len(),
        out.len(),
        "nothing else sent"
    );

    // The final counters: no drop; span1's entry copied every frame; span2's entry of the last run counted
    // from zero; each tunnel counts what it sent (span2's since it came back).
    let last = r21[1].1 - r21[1].0;
    assert_eq!(total_drops(&s), 0, "{s}");
    assert_eq!(s["ports"]["inside"]["rx"], sent);
    assert_eq!(s["ports"]["outside"]["tx"], out.len() as u64);
    assert_eq!(s["tunnels"]["t1"]["encap"], sent);
    assert_eq!(s["tunnels"]["span1"]["encap"], sent);
    assert_eq!(s["tunnels"]["span2"]["encap"], last);
    let mirrors = s["mirrors"].as_array().unwrap();
    let got: Vec<(&Value, &Value, &Value)> = mirrors
        .iter()
        .map(|m| (&m["tunnel"], &m["id"], &m["packets"]))
        .collect();
    assert_eq!(
        got,
        [
            (&Value::from("span2"), &Value::from(3), &Value::from(last)),
            (&Value::from("span1"), &Value::from(0), &Value::from(sent)),
        ],
        "{s}"
    );
    for m in mirrors {
        for r in ["no_mbuf", "no_neighbor", "queue_full", "tx_full"] {
            assert_eq!(m[r], 0, "{r}: {m}");
        }
    }
    assert_eq!(
        s["mempool"]["free_at_start"], s["mempool"]["free_at_end"],
        "no mbuf leaked"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
