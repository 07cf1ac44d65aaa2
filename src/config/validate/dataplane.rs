//! `[dataplane]` against `[eal]`: worker cores, burst, mbufs, idle sleep.
use std::collections::BTreeSet;

use crate::config::{issue, Check, Config};

/// Parses an EAL core list such as `0-3,6,8-9`.
pub(crate) fn parse_core_list(s: &str) -> Option<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?);
                if a > b || b - a > 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(part.parse::<u32>().ok()?);
            }
        }
    }
    Some(out)
}

pub(super) fn check_dataplane(cfg: &Config) -> Check {
    let dp = &cfg.dataplane;
    if dp.workers.is_empty() {
        return Err(issue(
            "dataplane.workers",
            "at least one worker core is required",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, w) in dp.workers.iter().enumerate() {
        if !seen.insert(*w) {
            return Err(issue(
                format!("dataplane.workers[{i}]"),
                format!("duplicate worker core {w}"),
            ));
        }
    }
    if !(1..=256).contains(&dp.burst) {
        return Err(issue(
            "dataplane.burst",
            format!("burst must be 1..=256, got {}", dp.burst),
        ));
    }
    if !(512..=16_777_215).contains(&dp.mbufs) {
        return Err(issue(
            "dataplane.mbufs",
            format!("mbufs must be 512..=16777215, got {}", dp.mbufs),
        ));
    }
    if dp.idle_sleep_us > 1_000_000 {
        return Err(issue(
            "dataplane.idle_sleep_us",
            format!(
                "idle_sleep_us must be 0..=1000000 (0 = busy poll), got {}",
                dp.idle_sleep_us
            ),
        ));
    }

    // Worker cores against the EAL core list, when given as `-l LIST`.
    let args = &cfg.eal.args;
    let mut cores: Option<(usize, BTreeSet<u32>)> = None;
    let mut main_lcore: Option<u32> = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let (val, idx) = if a == "-l" || a == "--main-lcore" {
            (args.get(i + 1).map(String::as_str), i + 1)
        } else if let Some(rest) = a.strip_prefix("-l").filter(|r| !r.is_empty()) {
            (Some(rest), i)
        } else if let Some(rest) = a.strip_prefix("--main-lcore=") {
            (Some(rest), i)
        } else {
            i += 1;
            continue;
        };
        let Some(val) = val else {
            return Err(issue(
                format!("eal.args[{i}]"),
                format!("{a} needs a value"),
            ));
        };
        if a.starts_with("-l") {
            match parse_core_list(val) {
                Some(set) if !set.is_empty() => cores = Some((idx, set)),
                _ => {
                    return Err(issue(
                        format!("eal.args[{idx}]"),
                        format!("cannot parse EAL core list {val:?} (expected e.g. 0-3,6)"),
                    ))
                }
            }
        } else {
            match val.parse::<u32>() {
                Ok(v) => main_lcore = Some(v),
                Err(_) => {
                    return Err(issue(
                        format!("eal.args[{idx}]"),
                        format!("cannot parse --main-lcore value {val:?}"),
                    ))
                }
            }
        }
        i = idx + 1;
    }
    if let Some((idx, set)) = cores {
        let main = main_lcore.or_else(|| set.first().copied());
        let list = &args[idx];
        for (i, w) in dp.workers.iter().enumerate() {
            if !set.contains(w) {
                return Err(issue(
                    format!("dataplane.workers[{i}]"),
                    format!(
                        "worker core {w} is not in the EAL core list {list:?} (eal.args[{idx}])"
                    ),
                ));
            }
            if Some(*w) == main {
                return Err(issue(
                    format!("dataplane.workers[{i}]"),
                    format!(
                        "worker core {w} is the EAL main lcore, which runs the control thread; \
                         pick another core from {list:?}"
                    ),
                ));
            }
        }
    }
    Ok(())
}
