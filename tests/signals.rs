//! SIGTERM / SIGINT under load: the workers stop, tx is drained, the final report is written, exit 0.
mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn run_and_signal(sig: &str, tag: &str) {
    let dir = scratch(tag);
    let frames: Vec<Vec<u8>> = (0..64u16)
        .map(|i| {
            udp4_frame(
                [2, 0, 0, 0, 0, 0x10],
                [2, 0, 0, 0, 0, 1],
                [10, 0, 0, 2],
                [10, 20, 0, 1],
                i,
                &[0; 18],
            )
        })
        .collect();
    write_pcap(&dir.join("in.pcap"), &frames);
    let cfg = format!(
        r#"
[eal]
args = {eal}
[dataplane]
workers = [1]
mode = "forward"
[[port]]
name = "inside"
device = "net_pcap0,rx_pcap={d}/in.pcap,infinite_rx=1"
address = "10.0.0.1/24"
[[port]]
name = "outside"
device = "net_null0"
address = "192.0.2.1/24"
"#,
        eal = eal_args(tag),
        d = dir.display()
    );
    std::fs::write(dir.join("g.toml"), cfg).unwrap();
    let stats = dir.join("stats.json");
    let mut child = Command::new(greway_bin())
        .args(["run", "--quiet", "--config"])
        .arg(dir.join("g.toml"))
        .arg("--stats-json")
        .arg(&stats)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let st = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "greway did not stop within 10 s of {sig}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert!(
        status.success(),
        "exit status {status}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("mempool"),
        "final counters printed: {summary}"
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let rx = s["ports"]["inside"]["rx"].as_u64().unwrap();
    let tx = s["ports"]["outside"]["tx"].as_u64().unwrap();
    let drops: u64 = s["drops"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(rx > 100_000, "it was under load: {rx} packets");
    assert_eq!(rx, tx + drops, "every packet accounted for");
    assert_eq!(
        s["mempool"]["free_at_start"], s["mempool"]["free_at_end"],
        "no mbuf leaked: {s}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_under_load_exits_cleanly_with_final_stats() {
    run_and_signal("-TERM", "sigterm");
}

#[test]
fn sigint_under_load_exits_cleanly_with_final_stats() {
    run_and_signal("-INT", "sigint");
}
