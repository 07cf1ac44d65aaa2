//! `greway gen` from the tests: a run with its JSON report, and a run into a capture.
use super::{assert_success, config_head, greway_bin, pcap_port, scratch, write_pcap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run `greway gen --quiet --config DIR/gen.toml --report-json DIR/report.json EXTRA...` with `config`; returns
/// the process output and the report, after checking that it succeeded.
pub fn run_gen(dir: &Path, config: &str, extra: &[&str]) -> (Output, serde_json::Value) {
    let cfg = dir.join("gen.toml");
    std::fs::write(&cfg, config).unwrap();
    let report = dir.join("report.json");
    let mut attempts = 0;
    let out = loop {
        attempts += 1;
        let out = Command::new(greway_bin())
            .args(["gen", "--quiet", "--config"])
            .arg(&cfg)
            .arg("--report-json")
            .arg(&report)
            .args(extra)
            .output()
            .expect("run greway gen");
        // DPDK 22.11's af_packet PMD names its PACKET_FANOUT group pid ^ ifindex; when that equals the group of
        // the gateway's socket on another interface the kernel refuses it (EINVAL) and the port does not come
        // up. A new process (pid) gets a new group: retry that start-up failure, and only that one. At the
        // tests' EAL log level the PMD's own message is not printed; what shows is greway's error for the
        // af_packet port that was never created.
        let err = String::from_utf8_lossy(&out.stderr);
        let fanout = err.contains("could not set PACKET_FANOUT")
            || (err.contains("rte_eth_dev_get_port_by_name(net_af_packet")
                && err.contains("No such device"));
        if out.status.success() || !fanout || attempts == 3 {
            break out;
        }
    };
    assert_success("greway gen", &out);
    let json = serde_json::from_str(&std::fs::read_to_string(&report).expect("report json"))
        .expect("valid json");
    (out, json)
}

/// `greway gen` into a capture, in a fresh scratch directory `tag`: one port, `outside` (its other keys in
/// `port`), on net_pcap with an empty input, writing `gen.pcap`; `generator` is the `[generator]` section's keys.
/// Returns the directory (`gen.pcap` in it), the output and the report.
pub fn gen_to_pcap(tag: &str, port: &str, generator: &str) -> (PathBuf, Output, serde_json::Value) {
    let dir = scratch(tag);
    write_pcap(&dir.join("empty.pcap"), &[]);
    let cfg = format!(
        "{head}\n{outside}\n{port}\n[generator]\n{generator}\n",
        head = config_head(tag),
        outside = pcap_port("outside", 0, &dir, "empty.pcap", "gen.pcap"),
    );
    let (out, report) = run_gen(&dir, &cfg, &[]);
    (dir, out, report)
}
