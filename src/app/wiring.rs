//! Wiring: EAL arguments from the config, the EAL itself, the mempool and the ports ([`Runtime`]); the instance
//! lock and EAL's runtime directory.
use super::AppError;
use crate::config::Config;
use crate::dpdk::{self, Eal, Mempool, Port, PortConfig, PortId};
use std::sync::Arc;
/// EAL arguments for the config: the `[eal] args`, one `--vdev` or `-a` per port, then the extra ones.
pub fn eal_args(cfg: &Config, extra: &[String]) -> Vec<String> {
    let mut a = cfg.eal.args.clone();
    for p in &cfg.ports {
        if is_pci_address(&p.device) {
            a.push("-a".into());
        } else {
            a.push("--vdev".into());
        }
        a.push(p.device.clone());
    }
    a.extend(extra.iter().cloned());
    a
}

/// True for `0000:03:00.0` or `03:00.0` (optionally followed by `,devargs`).
pub fn is_pci_address(device: &str) -> bool {
    let id = device.split(',').next().unwrap_or("");
    let parts: Vec<&str> = id.split(':').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
    let devfn = |s: &str| {
        s.split_once('.').is_some_and(|(d, f)| {
            hex(d, 2) && f.len() == 1 && f.chars().all(|c| ('0'..='7').contains(&c))
        })
    };
    match parts.as_slice() {
        [dom, bus, df] => hex(dom, 4) && hex(bus, 2) && devfn(df),
        [bus, df] => hex(bus, 2) && devfn(df),
        _ => false,
    }
}

/// The ethdev name EAL gives the device.
pub fn device_name(device: &str) -> String {
    let id = device.split(',').next().unwrap_or(device);
    if is_pci_address(id) && id.len() == 7 {
        format!("0000:{id}")
    } else {
        id.to_string()
    }
}

/// Create the directories of any `tx_pcap=` output paths so the pcap PMD can open them.
fn prepare_pcap_outputs(cfg: &Config) {
    for p in &cfg.ports {
        for kv in p.device.split(',').skip(1) {
            if let Some(path) = kv.strip_prefix("tx_pcap=") {
                if let Some(dir) = std::path::Path::new(path).parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
            }
        }
    }
}

/// Everything that lives while the gateway runs. Field order is drop order: ports and pool before EAL.
pub struct Runtime {
    pub ports: Vec<Port>,
    pub macs: Vec<[u8; 6]>,
    pub pool: Arc<Mempool>,
    pub free_at_start: u32,
    pub eal: Eal,
    /// Held for the whole run: a second greway with the same `--file-prefix` fails before touching EAL.
    _instance_lock: Option<std::fs::File>,
}

impl Runtime {
    /// Initialise EAL, create the pool and start every port with one rx queue per worker (as the device allows)
    /// and one tx queue per worker.
    pub fn start(cfg: &Config, extra_eal: &[String]) -> Result<Runtime, AppError> {
        let args = eal_args(cfg, extra_eal);
        // Before EAL and before the pcap outputs: a second instance must not truncate the first one's files,
        // take over its telemetry socket, or remove its runtime directory.
        let instance_lock = lock_instance(&file_prefix(&args))?;
        prepare_pcap_outputs(cfg);
        log::info!("EAL args: {}", args.join(" "));
        let eal = Eal::init(&args)?;
        // Packet capture for dpdk-dumpcap: needs a primary with hugepages and shared config.
        match dpdk::telemetry::pdump_init() {
            Ok(own) => log::info!(
                "pdump server ready (dpdk-dumpcap can attach){}",
                if own {
                    "; greway's, which waits for the workers when a capture ends"
                } else {
                    ""
                }
            ),
            Err(e) => log::info!("pdump not available ({e}): dpdk-dumpcap needs hugepages"),
        }
        let nworkers = cfg.dataplane.workers.len() as u16;
        // Per-lcore cache: DPDK's rule of thumb, capped so small pools still work.
        let cache = (cfg.dataplane.mbufs / 16).clamp(0, 256);
        let pool = Arc::new(Mempool::new(
            "greway_pkts",
            cfg.dataplane.mbufs,
            cache,
            dpdk::sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
            eal.socket_id().max(0),
        )?);
        let mut ports = Vec::new();
        let mut macs = Vec::new();
        for p in &cfg.ports {
            let id: PortId = Port::lookup(&device_name(&p.device))?;
            let pc = PortConfig {
                rx_queues: nworkers,
                tx_queues: nworkers,
                mtu: Some(p.mtu),
                ..PortConfig::default()
            };
            let port = match Port::start(id, &p.name, &pc, &pool) {
                Ok(port) => port,
                Err(e) if nworkers > 1 => {
                    // Devices with a single rx queue (pcap) are polled by worker 0 only; tx still needs one
                    // queue per worker.
                    log::warn!("{}: {e}; trying 1 rx queue", p.name);
                    let pc1 = PortConfig { rx_queues: 1, ..pc };
                    Port::start(id, &p.name, &pc1, &pool).map_err(|e2| {
                        AppError::Setup(format!(
                            "port {}: needs {nworkers} tx queues (one per worker): {e2}",
                            p.name
                        ))
                    })?
                }
                Err(e) => return Err(e.into()),
            };
            let mac = match p.mac {
                Some(m) => m.0,
                None => port.mac()?,
            };
            log::info!(
                "port {} ({}) up: {} rx / {} tx queues, mac {}, rx IPv4 checksum offload {}",
                p.name,
                id,
                port.rx_queues(),
                port.tx_queues(),
                crate::config::MacAddr(mac),
                if port.rx_ipv4_cksum_offload() {
                    "on"
                } else {
                    "off (checked in software)"
                }
            );
            ports.push(port);
            macs.push(mac);
        }
        let free_at_start = pool.available();
        Ok(Runtime {
            ports,
            macs,
            pool,
            free_at_start,
            eal,
            _instance_lock: instance_lock,
        })
    }
}

/// The EAL `--file-prefix` in `args` (EAL's default is "rte").
fn file_prefix(args: &[String]) -> String {
    args.iter()
        .position(|a| a == "--file-prefix")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--file-prefix=").map(str::to_string))
        })
        .unwrap_or_else(|| "rte".to_string())
}

/// EAL's runtime directory for a prefix: /var/run/dpdk/PREFIX for root, else under $XDG_RUNTIME_DIR or /tmp.
fn runtime_dir(prefix: &str) -> std::path::PathBuf {
    // The owner of /proc/self is our effective uid (no FFI outside dpdk/).
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let base = if root {
        std::path::PathBuf::from("/var/run")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from("/tmp"))
    };
    base.join("dpdk").join(prefix)
}

/// Take an exclusive lock on `greway.lock` in the prefix's runtime directory. With `--no-shconf` EAL itself
/// does not notice a second primary process with the same prefix, so greway does. A directory that cannot be
/// created (read-only system) only warns; a lock held by another process is an error.
fn lock_instance(prefix: &str) -> Result<Option<std::fs::File>, AppError> {
    let dir = runtime_dir(prefix);
    let path = dir.join("greway.lock");
    let file = match std::fs::create_dir_all(&dir).and_then(|_| {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
    }) {
        Ok(f) => f,
        Err(e) => {
            log::warn!("{}: {e}; no single-instance check", path.display());
            return Ok(None);
        }
    };
    match file.try_lock() {
        Ok(()) => {
            use std::io::Write;
            let _ = file.set_len(0);
            let _ = writeln!(&file, "{}", std::process::id());
            Ok(Some(file))
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let owner = std::fs::read_to_string(&path).unwrap_or_default();
            Err(AppError::Setup(format!(
                "another greway (pid {}) is running with --file-prefix {prefix} (lock {}): give each \
                 instance its own file prefix",
                owner.trim(),
                path.display()
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => {
            log::warn!("{}: {e}; no single-instance check", path.display());
            Ok(None)
        }
    }
}

/// EAL leaves /var/run/dpdk/PREFIX behind even with --no-shconf: remove it after a clean exit.
pub fn remove_runtime_dir(cfg: &Config, extra: &[String]) {
    let args = eal_args(cfg, extra);
    let _ = std::fs::remove_dir_all(runtime_dir(&file_prefix(&args)));
}
