//! `[[mirror]]`: ERSPAN out. Each entry names a port, a direction and the ERSPAN tunnel (the session) its
//! copies go into; the tunnel becomes an ERSPAN sender.
//!
//! Rules: `port` is any configured port among the first 64 (the poll loop keeps mirrored ports in a 64-bit
//! mask); `tunnel` is a tunnel with `mode = "erspan"` and an `erspan.version` (1: type II, 2: type III) to
//! send; a sender sends no GRE key and no GRE checksum (as Linux's erspan: the session is the key), so `key`,
//! `okey` and `checksum` are errors on it (`ikey` still matches what it receives when it also delivers);
//! one port and direction go into one tunnel at most once (`both` overlaps `rx` and `tx`). A tunnel may both
//! deliver and send, like a Linux `erspan` device: it sends its session and delivers what its peer sends of
//! the same session.
use super::super::{issue, Check, Config, TunnelMode};
use super::ports::unknown_port;

/// The most ports a mirror can name (bit masks of 64 ports).
pub const MAX_MIRRORED_PORT: usize = 64;

pub(super) fn check_mirrors(cfg: &Config) -> Check {
    for (i, m) in cfg.mirrors.iter().enumerate() {
        let at = format!("mirror[{i}]");
        let Some(port) = cfg.ports.iter().position(|p| p.name == m.port) else {
            return Err(unknown_port(cfg, format!("{at}.port"), &m.port));
        };
        if port >= MAX_MIRRORED_PORT {
            return Err(issue(
                format!("{at}.port"),
                format!(
                    "port {:?} is port {port}: only the first {MAX_MIRRORED_PORT} ports can be mirrored",
                    m.port
                ),
            ));
        }
        let Some(ti) = cfg.tunnels.iter().position(|t| t.name == m.tunnel) else {
            let known: Vec<&str> = cfg
                .tunnels
                .iter()
                .filter(|t| t.mode == TunnelMode::Erspan)
                .map(|t| t.name.as_str())
                .collect();
            return Err(issue(
                format!("{at}.tunnel"),
                format!(
                    "unknown tunnel {:?} (erspan tunnels: {})",
                    m.tunnel,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        let t = &cfg.tunnels[ti];
        if t.mode != TunnelMode::Erspan {
            return Err(issue(
                format!("{at}.tunnel"),
                format!(
                    "tunnel {:?} has mode = \"{}\"; a mirror sends into a tunnel with mode = \"erspan\"",
                    t.name, t.mode
                ),
            ));
        }
        let tat = format!("tunnel[{ti}]");
        match t.erspan {
            Some(e) if e.version.is_none() => {
                return Err(issue(
                    format!("{tat}.erspan.version"),
                    format!(
                        "tunnel {:?} is the target of {at}: it needs erspan.version (1: type II, 2: type III) to send",
                        t.name
                    ),
                ))
            }
            // Without `erspan` the tunnel's own check reports it.
            _ => {}
        }
        for (set, key) in [
            (t.key.is_some(), "key"),
            (t.okey.is_some(), "okey"),
            (t.checksum, "checksum"),
        ] {
            if set {
                return Err(issue(
                    format!("{tat}.{key}"),
                    format!(
                        "tunnel {:?} is the target of {at}: an ERSPAN sender sends no GRE {} (the session identifies it, as with Linux's erspan)",
                        t.name,
                        if key == "checksum" { "checksum" } else { "key" }
                    ),
                ));
            }
        }
        if let Some((j, _)) = cfg.mirrors[..i].iter().enumerate().find(|(_, o)| {
            o.port == m.port
                && o.tunnel == m.tunnel
                && ((o.direction.rx() && m.direction.rx())
                    || (o.direction.tx() && m.direction.tx()))
        }) {
            return Err(issue(
                format!("{at}.direction"),
                format!(
                    "port {:?} direction {} into tunnel {:?} overlaps mirror[{j}] (direction {}): each frame would be copied twice",
                    m.port, m.direction, m.tunnel, cfg.mirrors[j].direction
                ),
            ));
        }
    }
    Ok(())
}
