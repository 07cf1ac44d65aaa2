//! Configuration reload (`greway ctl reload`, SIGHUP): the configuration file the gateway was started with is read
//! and validated again, compared with the running configuration, and the difference applied as one runtime change.
//!
//! 1. The file is loaded and validated like `check-config` (errors name the file, line and field).
//! 2. [`ReloadDiff::between`] compares it with the running configuration ([`ControlPlane::configured`]): a change
//!    that only a restart applies refuses the whole reload, naming every such change.
//! 3. [`ControlPlane::reload`] replaces the configuration (tunnels, routes, neighbours, bridges, `[[mirror]]`
//!    entries, `[host] punt_pps`) in one step; the tables are rebuilt and published once; the host interfaces
//!    follow the tunnels.
//!
//! Nothing changes before step 3, and step 3 changes everything or nothing. Runtime changes made with `greway
//! ctl` since the start are replaced by the file's configuration; routes learned from the kernel stay.
//!
//! [`ControlPlane::configured`]: crate::control::plane::ControlPlane::configured
//! [`ControlPlane::reload`]: crate::control::plane::ControlPlane::reload
use super::changes::GatewayControl;
use crate::config::diff::ReloadDiff;
use crate::config::Config;
use crate::control::ctl::Response;
use crate::dpdk;
use std::sync::Arc;
use std::time::Instant;

impl GatewayControl {
    /// Reload the configuration file; the answer lists what changed per section, or says why nothing did. Logged
    /// either way.
    pub(super) fn reload(&mut self) -> Response {
        match self.try_reload() {
            Ok(v) => Response::ok(Some(v)),
            Err(e) => {
                log::error!("{e}");
                Response::err(e)
            }
        }
    }

    fn try_reload(&mut self) -> Result<serde_json::Value, String> {
        let Some(path) = self.config_path.clone() else {
            return Err(
                "reload refused: the gateway was not started from a configuration file".into(),
            );
        };
        let file = Config::load(&path).map_err(|e| format!("reload refused: {e}"))?;
        let diff = ReloadDiff::between(&self.cp.configured(), &file)
            .map_err(|e| format!("reload refused: {e}"))?;
        let mut warnings = Vec::new();
        let mut kernel = Default::default();
        if !diff.is_empty() {
            kernel = self
                .cp
                .reload(file, Instant::now(), dpdk::rdtsc())
                .map_err(|e| format!("reload refused: {e}"))?;
            // One table generation for the whole reload; workers take it between two bursts.
            self.cp.take_dirty();
            self.shared.tables.store(Arc::new(self.cp.tables()));
            if let Some(e) = self.sync_host() {
                log::warn!("host interfaces after the reload: {e}");
                warnings.push(format!("host interfaces: {e}"));
            }
            if kernel.dropped > 0 {
                warnings.push(format!(
                    "{} route(s) learned from the kernel no longer fit the configuration and were dropped",
                    kernel.dropped
                ));
            }
        }
        log::info!("reload of {}: {}", path.display(), diff.summary());
        let mut v = serde_json::to_value(&diff).map_err(|e| e.to_string())?;
        if let Some(o) = v.as_object_mut() {
            o.insert("file".into(), path.display().to_string().into());
            o.insert("changed".into(), (!diff.is_empty()).into());
            o.insert(
                "kernel_routes".into(),
                serde_json::to_value(kernel).unwrap_or_default(),
            );
            o.insert("warnings".into(), warnings.into());
        }
        Ok(v)
    }
}
