//! The operator documentation keeps up with the code: every command-line flag is in docs/cli.md, every
//! configuration key in docs/configuration.md, every drop reason in docs/packet-handling.md; the annotated example
//! `dpdk-config/all-keys.toml` uses every key and passes `greway check-config`; `greway man` writes one page per
//! command. Nothing here starts EAL: `--help`, `check-config` and `man` return before it.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_reflection::{ContainerFormat, Tracer, TracerConfig};

const BIN: &str = env!("CARGO_BIN_EXE_greway");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn greway(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(root())
        .output()
        .expect("run greway")
}

/// The `--help` text of `greway PATH...`.
fn help(path: &[String]) -> String {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let out = greway(&args);
    assert!(out.status.success(), "greway {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8 help")
}

/// The subcommand names listed under `Commands:` (without clap's own `help`).
fn subcommands(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            if !line.starts_with("  ") {
                if line.trim().is_empty() {
                    continue;
                }
                break;
            }
            // A command line is `  NAME  description`; continuation lines of a description are indented further.
            if line.starts_with("   ") {
                continue;
            }
            let name = line.split_whitespace().next().unwrap_or_default();
            if !name.is_empty() && name != "help" {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// The long flags an option line of a help text starts with (`  -c, --config <CONFIG>`, `      --quiet`).
fn long_flags(help: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in help.lines() {
        let t = line.trim_start();
        let t = match t.strip_prefix('-') {
            // `-c, --config`: skip the short form.
            Some(rest) if !rest.starts_with('-') => match t.split_once(", ") {
                Some((_, long)) => long,
                None => continue,
            },
            _ => t,
        };
        if let Some(rest) = t.strip_prefix("--") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !name.is_empty() {
                out.insert(format!("--{name}"));
            }
        }
    }
    out
}

/// Every command path (`[]`, `["run"]`, `["ctl", "tunnel", "add"]`, ...) reachable from the top-level help, plus
/// the hidden `man`.
fn command_paths() -> Vec<Vec<String>> {
    let mut paths = vec![vec!["man".to_string()]];
    let mut todo = vec![Vec::<String>::new()];
    while let Some(p) = todo.pop() {
        for s in subcommands(&help(&p)) {
            let mut q = p.clone();
            q.push(s);
            todo.push(q);
        }
        paths.push(p);
    }
    paths
}

/// True if `doc` has `` `FLAG`` followed by something that cannot continue a flag name (`` `--key` ``,
/// `` `--key N` ``; not `` `--key-x` ``).
fn mentions_flag(doc: &str, flag: &str) -> bool {
    let pat = format!("`{flag}");
    doc.match_indices(&pat).any(|(i, _)| {
        doc[i + pat.len()..]
            .chars()
            .next()
            .is_some_and(|c| !(c.is_ascii_alphanumeric() || c == '-'))
    })
}

#[test]
fn every_cli_flag_is_in_docs_cli_md() {
    let doc = read("docs/cli.md");
    let paths = command_paths();
    for must in [
        "run",
        "check-config",
        "gen",
        "ctl",
        "bench",
        "man",
        "tunnel",
        "route",
    ] {
        assert!(
            paths
                .iter()
                .any(|p| p.last().map(String::as_str) == Some(must)),
            "the help texts list no `{must}` command: {paths:?}"
        );
    }
    let mut missing = Vec::new();
    let mut seen = 0;
    for p in &paths {
        let cmd = format!("greway {}", p.join(" "));
        assert!(
            doc.contains(cmd.trim_end()),
            "docs/cli.md does not mention `{}`",
            cmd.trim_end()
        );
        for f in long_flags(&help(p)) {
            seen += 1;
            if !mentions_flag(&doc, &f) {
                missing.push(format!("{} {f}", cmd.trim_end()));
            }
        }
    }
    assert!(seen > 50, "only {seen} flags found in the help texts");
    assert!(
        missing.is_empty(),
        "flags missing from docs/cli.md: {missing:?}"
    );
}

/// Every field name of the configuration structs, as serde spells it, traced from `greway::config::Config`
/// filled from `dpdk-config/all-keys.toml` (the config structs' Deserialize impls use `deserialize_any`, which
/// tracing a type cannot follow, so the value is traced through its Serialize impl). A struct reached only
/// through an `Option` that the file leaves out would be missing: the all-keys checks below catch that.
fn config_keys() -> BTreeSet<String> {
    let mut cfg = greway::config::Config::load(&root().join("dpdk-config/all-keys.toml"))
        .expect("dpdk-config/all-keys.toml loads");
    // `ttl` and `tos` serialize as an integer or as "inherit", `mss_clamp` as a bool or an integer; the file shows
    // both forms on different tunnels, which the tracer would report as two formats of one field. One form is
    // enough for the field names.
    for t in &mut cfg.tunnels {
        t.ttl = greway::config::Ttl::default();
        t.tos = greway::config::Tos::default();
        t.mss_clamp = greway::config::MssClamp::default();
    }
    let mut tracer = Tracer::new(TracerConfig::default().is_human_readable(true));
    let mut samples = serde_reflection::Samples::new();
    tracer
        .trace_value(&mut samples, &cfg)
        .expect("trace the config");
    let registry = tracer.registry_unchecked();
    let mut keys = BTreeSet::new();
    for (name, c) in &registry {
        if let ContainerFormat::Struct(fields) = c {
            for f in fields {
                keys.insert(f.name.clone());
            }
        } else if name.ends_with("Cfg") || name == "Config" {
            panic!("{name} is not traced as a struct: {c:?}");
        }
    }
    for must in [
        "eal",
        "workers",
        "port",
        "tunnel",
        "allowed_sources",
        "rfc2544",
    ] {
        assert!(keys.contains(must), "{must} not traced: {keys:?}");
    }
    keys
}

/// Every key of a TOML document, at any depth.
fn toml_keys(v: &toml::Value, out: &mut BTreeSet<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                out.insert(k.clone());
                toml_keys(v, out);
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| toml_keys(v, out)),
        _ => {}
    }
}

#[test]
fn every_config_key_is_in_docs_configuration_md() {
    let doc = read("docs/configuration.md");
    let keys = config_keys();
    assert!(keys.len() > 60, "only {} keys traced: {keys:?}", keys.len());
    let missing: Vec<_> = keys
        .iter()
        .filter(|k| {
            !(doc.contains(&format!("`{k}`"))
                || doc.contains(&format!("[{k}]"))
                || doc.contains(&format!("[[{k}]]")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "config keys missing from docs/configuration.md: {missing:?}"
    );
}

#[test]
fn all_keys_toml_uses_every_key_and_passes_check_config() {
    let text = read("dpdk-config/all-keys.toml");
    let out = greway(&["check-config", "dpdk-config/all-keys.toml"]);
    assert!(
        out.status.success(),
        "greway check-config dpdk-config/all-keys.toml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut used = BTreeSet::new();
    toml_keys(&text.parse::<toml::Value>().expect("toml"), &mut used);
    let keys = config_keys();
    // check-config accepted the file and every config struct denies unknown fields, so `used` is within `keys`;
    // the other way round, a key the file cannot set next to another (`rate_gbps` beside `rate_pps`) is shown
    // in a comment as `# KEY = VALUE`.
    let unused: Vec<_> = keys
        .iter()
        .filter(|k| !used.contains(*k) && !text.contains(&format!("# {k} = ")))
        .collect();
    assert!(
        unused.is_empty(),
        "keys not used in dpdk-config/all-keys.toml: {unused:?}"
    );
    assert!(
        used.is_subset(&keys),
        "keys in the file that the code does not define: {:?}",
        used.difference(&keys).collect::<Vec<_>>()
    );
    assert!(
        read("docs/configuration.md").contains(&text),
        "docs/configuration.md does not embed dpdk-config/all-keys.toml verbatim"
    );
}

#[test]
fn readme_minimal_config_passes_check_config() {
    let readme = read("README.md");
    let start = readme
        .find("```toml\n")
        .expect("README.md has a ```toml block")
        + "```toml\n".len();
    let len = readme[start..].find("```").expect("the block ends");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("minimal.toml");
    std::fs::write(&path, &readme[start..start + len]).expect("write");
    let out = greway(&["check-config", path.to_str().expect("utf-8 path")]);
    assert!(
        out.status.success(),
        "README.md's minimal configuration: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_drop_reason_is_in_docs_packet_handling_md() {
    let doc = read("docs/packet-handling.md");
    let missing: Vec<_> = greway::stats::DropReason::ALL
        .iter()
        .map(|r| r.name())
        .filter(|n| !doc.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "drop reasons missing from docs/packet-handling.md: {missing:?}"
    );
}

#[test]
fn man_writes_one_page_per_command_with_its_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("man1");
    let out = greway(&["man", "--out", out_dir.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "greway man: {out:?}");
    for p in command_paths() {
        if p.first().map(String::as_str) == Some("man") {
            continue; // hidden: no page of its own
        }
        let page_name = std::iter::once("greway".to_string())
            .chain(p.iter().cloned())
            .collect::<Vec<_>>()
            .join("-")
            + ".1";
        let page_path: &Path = &out_dir.join(&page_name);
        let page = std::fs::read_to_string(page_path)
            .unwrap_or_else(|e| panic!("{}: {e}", page_path.display()));
        // roff escapes '-' as '\-'.
        let page = page.replace("\\-", "-");
        for f in long_flags(&help(&p)) {
            assert!(page.contains(&f), "{page_name} does not mention {f}");
        }
    }
    assert!(
        !out_dir.join("greway-man.1").exists(),
        "a page for the hidden man command"
    );
}
