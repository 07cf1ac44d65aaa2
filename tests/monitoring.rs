//! The Grafana dashboard and the Prometheus alerting rules under dist/ name only metrics greway exports: the
//! names are scraped from a running greway's Prometheus endpoint (on DPDK null ports, with a tunnel), not kept
//! in a list; `reason` label values the rules and panels match must be drop reasons greway reports. promtool
//! checks the rules and runs their unit tests (dist/prometheus/greway-alerts.test.yml).
mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// What a running greway exports: (metric names: families and sample names, the drop reasons).
fn exported() -> (BTreeSet<String>, BTreeSet<String>) {
    let dir = scratch("monitoring");
    let port = free_tcp_port();
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
keepalive = {{ interval_s = 10 }}
routes = ["10.20.0.0/16"]
[metrics]
prometheus = "127.0.0.1:{port}"
"#,
        eal = eal_args("monitoring")
    );
    let path = dir.join("greway.toml");
    std::fs::write(&path, cfg).unwrap();
    let mut child = Command::new(greway_bin())
        .args(["run", "--quiet", "--duration-s", "60", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let text = loop {
        // The first exposition is rendered once the workers run; it names every family from then on.
        match scrape(port) {
            Some(b) if b.contains("greway_tunnel_up{") => break Some(b),
            _ if t.elapsed() > Duration::from_secs(30) => break None,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = text.unwrap_or_else(|| {
        panic!(
            "no /metrics answer: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut names = BTreeSet::new();
    let mut reasons = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            names.insert(rest.split(' ').next().unwrap().to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            if name == "greway_drops_total" {
                let r = line.split("reason=\"").nth(1).unwrap().split('"').next();
                reasons.insert(r.unwrap().to_string());
            }
            names.insert(name);
        }
    }
    for must in [
        "greway_tunnel_up",
        "greway_drops_total",
        "greway_mempool_available_mbufs",
        "greway_latency_seconds_bucket",
    ] {
        assert!(names.contains(must), "{must} not scraped:\n{text}");
    }
    assert!(
        reasons.contains("tx_full") && reasons.len() > 30,
        "{reasons:?}"
    );
    (names, reasons)
}

/// Every `greway_*` identifier in a text (PromQL, or a whole rules file: comments and annotations too).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("greway_") {
        // An identifier's start: not in the middle of another name.
        if text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        out.insert(name);
    }
    out
}

/// The values a `reason` matcher names: `reason="a"`, `reason!~"a|b"` (each alternative of a regex).
fn reason_values(promql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for part in promql.split("reason").skip(1) {
        let p = part.trim_start();
        let Some(op) = ["=~", "!~", "!=", "="]
            .iter()
            .find(|op| p.starts_with(**op))
        else {
            continue;
        };
        let Some(v) = p[op.len()..].trim_start().strip_prefix('"') else {
            continue;
        };
        let v = v.split('"').next().unwrap();
        out.extend(v.split('|').map(str::to_string));
    }
    out
}

/// Every string under an `expr`, `query` or `definition` key of the dashboard, at any depth.
fn dashboard_queries(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "query" | "definition", serde_json::Value::String(s)) => {
                        out.push(s.clone())
                    }
                    _ => dashboard_queries(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| dashboard_queries(v, out)),
        _ => {}
    }
}

#[test]
fn dashboard_and_alerts_name_only_exported_metrics_and_drop_reasons() {
    let (names, reasons) = exported();
    let dash: serde_json::Value =
        serde_json::from_str(&read("dist/grafana/greway-dashboard.json")).expect("valid JSON");
    let mut queries = Vec::new();
    dashboard_queries(&dash, &mut queries);
    assert!(queries.len() >= 15, "{queries:?}");
    let rules = read("dist/prometheus/greway-alerts.yml");
    let mut used = metric_names(&rules);
    let mut used_reasons = reason_values(&rules);
    for q in &queries {
        used.extend(metric_names(q));
        used_reasons.extend(reason_values(q));
    }
    for must in [
        "greway_tunnel_up",
        "greway_drops_total",
        "greway_mempool_available_mbufs",
    ] {
        assert!(used.contains(must), "{must} is in neither file");
    }
    let unknown: Vec<&String> = used.iter().filter(|n| !names.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "metrics that greway does not export: {unknown:?} (exported: {names:?})"
    );
    let unknown: Vec<&String> = used_reasons
        .iter()
        .filter(|r| !reasons.contains(*r))
        .collect();
    assert!(
        unknown.is_empty(),
        "drop reasons greway does not report: {unknown:?}"
    );
    // Every panel with queries reads the dashboard's data source variable.
    for p in dash["panels"].as_array().unwrap() {
        if let Some(t) = p["targets"].as_array() {
            assert!(!t.is_empty(), "{p}");
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }
}

/// The checker itself: a made-up metric or reason is caught.
#[test]
fn the_name_checks_catch_what_they_look_for() {
    assert_eq!(
        metric_names("rate(greway_drops_total[5m]) / greway_x_total and not my_greway_y"),
        ["greway_drops_total", "greway_x_total"]
            .map(String::from)
            .into()
    );
    assert_eq!(
        reason_values(r#"greway_drops_total{reason!~"a|b", instance="i"} + x{reason = "c"}"#),
        ["a", "b", "c"].map(String::from).into()
    );
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let o = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect(
            "promtool is required (scripts/install-deps.sh installs Debian's prometheus package)",
        );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn promtool_checks_the_rules_and_their_unit_tests_pass() {
    let dir = root().join("dist/prometheus");
    let out = promtool(&["check", "rules", "greway-alerts.yml"], &dir);
    assert!(out.contains("SUCCESS: 5 rules found"), "{out}");
    let out = promtool(&["test", "rules", "greway-alerts.test.yml"], &dir);
    assert!(out.contains("SUCCESS"), "{out}");
}
