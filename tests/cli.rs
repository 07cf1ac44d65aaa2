//! The command line of the real `greway` binary: exit statuses, error messages naming file, line and field,
//! help texts, and that a bad configuration is refused before EAL or any port starts.

mod common;

use common::bad_configs::BAD;
use common::greway_bin;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn greway(args: &[&str]) -> Output {
    Command::new(greway_bin())
        .args(args)
        .current_dir(root())
        .output()
        .expect("run greway")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// The EAL runtime directory for a file prefix.
fn runtime_dir(prefix: &str) -> PathBuf {
    Path::new("/var/run/dpdk").join(prefix)
}

#[test]
fn check_config_rejects_every_bad_fixture_with_status_2_file_line_and_field() {
    let mut failures = Vec::new();
    for &(file, field, line, _msg) in BAD {
        let path = format!("tests/fixtures/bad-configs/{file}");
        let o = greway(&["check-config", &path]);
        let err = text(&o.stderr);
        if o.status.code() != Some(2) {
            failures.push(format!("{file}: want exit 2, got {}", o.status));
        }
        let located = format!("{path}:{line}:");
        if !err.contains(&located) {
            failures.push(format!("{file}: stderr lacks {located:?}: {err:?}"));
        }
        if !field.is_empty() && !err.contains(&format!("{located} {field}")) {
            failures.push(format!("{file}: stderr lacks the field {field:?}: {err:?}"));
        }
        if !o.stdout.is_empty() {
            failures.push(format!("{file}: unexpected stdout {:?}", text(&o.stdout)));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn check_config_accepts_every_example() {
    let mut n = 0;
    for entry in std::fs::read_dir(root().join("dpdk-config")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let o = greway(&["check-config", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}: {}", path.display(), show(&o));
        assert!(
            text(&o.stdout).contains(": ok ("),
            "{}: {}",
            path.display(),
            show(&o)
        );
        n += 1;
    }
    assert!(n >= 4, "only {n} example configs found");
}

#[test]
fn check_config_on_a_missing_file_names_it() {
    let o = greway(&["check-config", "no/such/greway.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = text(&o.stderr);
    assert!(err.contains("no/such/greway.toml: "), "{err}");
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn help_mentions_every_command_and_flag() {
    let o = greway(&["--help"]);
    assert!(o.status.success(), "{}", show(&o));
    let top = text(&o.stdout);
    for want in ["run", "check-config", "--log", "--help", "--version"] {
        assert!(top.contains(want), "greway --help lacks {want}:\n{top}");
    }
    let o = greway(&["run", "--help"]);
    assert!(o.status.success(), "{}", show(&o));
    let run = text(&o.stdout);
    for want in [
        "--config",
        "--exit-idle-ms",
        "--stats-json",
        "--duration-s",
        "--quiet",
        "--log",
        "EXTRA_EAL_ARGS",
    ] {
        assert!(run.contains(want), "greway run --help lacks {want}:\n{run}");
    }
    let o = greway(&["check-config", "--help"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(text(&o.stdout).contains("<FILE>"), "{}", show(&o));
}

#[test]
fn bad_arguments_exit_2() {
    for args in [&["run"][..], &["frobnicate"], &["run", "--config"], &[]] {
        let o = greway(args);
        assert_eq!(o.status.code(), Some(2), "greway {args:?}: {}", show(&o));
    }
}

#[test]
fn run_with_a_bad_config_exits_2_before_eal_starts() {
    let dir = common::scratch("cli-bad-run");
    let prefix = format!("gwt-cli-bad-{}", std::process::id());
    let _ = std::fs::remove_dir_all(runtime_dir(&prefix));
    // demo.toml with this test's own EAL prefix and one invalid value.
    let demo = std::fs::read_to_string(root().join("dpdk-config/demo.toml")).unwrap();
    assert!(demo.contains("\"greway-demo\"") && demo.contains("ttl = 64"));
    let bad = demo
        .replace("\"greway-demo\"", &format!("\"{prefix}\""))
        .replace("ttl = 64", "ttl = 0");
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, bad).unwrap();
    let stats = dir.join("stats.json");
    let o = greway(&[
        "run",
        "--quiet",
        "--config",
        cfg.to_str().unwrap(),
        "--exit-idle-ms",
        "100",
        "--stats-json",
        stats.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("{}:", cfg.display())) && err.contains("tunnel[0].ttl"),
        "{err}"
    );
    assert!(!err.contains("EAL"), "EAL was started: {err}");
    assert!(
        !runtime_dir(&prefix).exists(),
        "{} was created: EAL ran",
        runtime_dir(&prefix).display()
    );
    assert!(!stats.exists(), "a stats file was written");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn run_with_a_missing_rx_pcap_fails_naming_the_file() {
    let dir = common::scratch("cli-missing-pcap");
    let present = dir.join("present.pcap");
    common::write_pcap(&present, &[]);
    let missing = dir.join("missing-input.pcap");
    let tag = "cli-missing-pcap";
    let cfg = format!(
        r#"
[eal]
args = {eal}

[dataplane]
workers = [1]
mbufs = 1023

[[port]]
name = "inside"
device = "net_pcap0,rx_pcap={missing},tx_pcap={out0}"
address = "10.0.0.1/24"

[[port]]
name = "outside"
device = "net_pcap1,rx_pcap={present},tx_pcap={out1}"
address = "192.0.2.1/24"
"#,
        eal = common::eal_args(tag),
        missing = missing.display(),
        present = present.display(),
        out0 = dir.join("out0.pcap").display(),
        out1 = dir.join("out1.pcap").display(),
    );
    let path = dir.join("greway.toml");
    std::fs::write(&path, cfg).unwrap();
    let o = greway(&[
        "run",
        "--quiet",
        "--config",
        path.to_str().unwrap(),
        "--exit-idle-ms",
        "100",
    ]);
    let prefix = format!("gwt-{tag}-{}", std::process::id());
    let _ = std::fs::remove_dir_all(runtime_dir(&prefix));
    // A missing input file is a configuration error: exit 2 before EAL starts, naming the field.
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(text(&o.stderr).contains("port[0].device"), "{}", show(&o));
    assert!(!runtime_dir(&prefix).exists(), "EAL must not have started");
    let err = text(&o.stderr);
    let named = err
        .lines()
        .any(|l| l.contains(&missing.display().to_string()));
    assert!(named, "no stderr line names {}:\n{err}", missing.display());
    assert!(
        err.lines().any(|l| l.starts_with("error: ")),
        "no final error line:\n{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn version_names_the_commit_and_the_dpdk_versions() {
    let o = greway(&["--version"]);
    assert!(o.status.success(), "{}", show(&o));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("greway {}", env!("CARGO_PKG_VERSION")),
        "{out}"
    );
    // The commit of this checkout (build.rs re-runs when HEAD moves), or "unknown" outside one.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(lines[1], format!("commit: {head}"), "{out}");
    let built = Command::new("pkg-config")
        .args(["--modversion", "libdpdk"])
        .output()
        .expect("pkg-config");
    let built = text(&built.stdout).trim().to_string();
    assert_eq!(lines[2], format!("DPDK (built against): {built}"), "{out}");
    // rte_version() of the libraries loaded now: "DPDK 22.11.x" on Debian 12.
    let running = lines[3]
        .strip_prefix("DPDK (running): DPDK ")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        running.split('.').take(2).collect::<Vec<_>>(),
        built.split('.').take(2).collect::<Vec<_>>(),
        "{out}"
    );
    // -V: the short form, the version alone.
    let o = greway(&["-V"]);
    assert_eq!(
        text(&o.stdout).trim(),
        format!("greway {}", env!("CARGO_PKG_VERSION"))
    );
}

/// A gateway on two null ports for one second, with this log format.
fn short_run(tag: &str, log_format: &str) -> Output {
    let dir = common::scratch(tag);
    let cfg = format!(
        r#"
[eal]
args = {eal}
[dataplane]
workers = [1]
mbufs = 1023
[[port]]
name = "inside"
device = "net_null0,no-rx=1"
address = "10.0.0.1/24"
[[port]]
name = "outside"
device = "net_null1,no-rx=1"
address = "192.0.2.1/24"
[[tunnel]]
name = "t"
local = "192.0.2.1"
remote = "192.0.2.7"
routes = ["10.20.0.0/16"]
"#,
        eal = common::eal_args(tag)
    );
    let path = dir.join("greway.toml");
    std::fs::write(&path, cfg).unwrap();
    let o = greway(&[
        "--log-format",
        log_format,
        "run",
        "--quiet",
        "--duration-s",
        "1",
        "--config",
        path.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_dir_all(dir);
    assert!(o.status.success(), "{}", show(&o));
    o
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let o = short_run("cli-log-json", "json");
    let err = text(&o.stderr);
    let mut levels = std::collections::BTreeSet::new();
    let mut n = 0;
    for line in err.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{err}"));
        for k in ["ts", "level", "target", "msg"] {
            assert!(v[k].is_string(), "{k} missing: {line}");
        }
        assert!(
            v["target"].as_str().unwrap().starts_with("greway"),
            "{line}"
        );
        levels.insert(v["level"].as_str().unwrap().to_string());
        n += 1;
    }
    assert!(
        n >= 2 && levels.contains("INFO"),
        "{n} lines, levels {levels:?}:\n{err}"
    );
    // The same run in the default format writes text lines.
    let o = short_run("cli-log-text", "text");
    let err = text(&o.stderr);
    assert!(err.lines().any(|l| l.contains(" INFO ")), "{err}");
    assert!(!err.lines().any(|l| l.starts_with('{')), "{err}");
}
