//! An ethdev port: configure N rx/tx queues (RSS when N > 1), start/stop, link, MAC, stats and xstats.
use super::error::{DpdkError, ToResult};
use super::mempool::Mempool;
use super::{sys, PortId};
use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;

/// How to set a port up.
#[derive(Clone, Debug)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// Set the MTU (a port that cannot change it keeps its own, with a warning).
    pub mtu: Option<u16>,
    pub promiscuous: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            mtu: None,
            promiscuous: true,
        }
    }
}

/// Link state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
}

/// Basic counters of the port (`rte_eth_stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
    /// Packets received per rx queue (`q_ipackets`, one per configured queue; zeros where the driver does not
    /// count per queue): with several workers, what each worker's queue got.
    pub rx_queue_packets: Vec<u64>,
    /// The device verifies received IPv4 header checksums for us (rx offload on; see `Port::start`).
    pub rx_ipv4_cksum_offload: bool,
}

/// A configured port. Dropping it stops and closes the device.
#[derive(Debug)]
pub struct Port {
    id: PortId,
    name: String,
    started: bool,
    rx_queues: u16,
    tx_queues: u16,
    rx_ipv4_cksum: bool,
}

impl Port {
    /// Find the port that EAL probed under `name` (a vdev name such as `net_pcap0`, or a PCI address).
    pub fn lookup(name: &str) -> Result<PortId, DpdkError> {
        let c =
            CString::new(name).map_err(|_| DpdkError::other("port lookup", "name has a NUL"))?;
        let mut id = 0u16;
        // SAFETY: valid C string and out-pointer.
        unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) }
            .check(&format!("rte_eth_dev_get_port_by_name({name})"))?;
        Ok(PortId(id))
    }

    /// Probe a device at run time from devargs (`net_ring0`, `net_tap0,iface=x`, a PCI address...).
    pub fn probe(devargs: &str) -> Result<PortId, DpdkError> {
        let c =
            CString::new(devargs).map_err(|_| DpdkError::other("probe", "devargs have a NUL"))?;
        // SAFETY: valid C string.
        unsafe { sys::rte_dev_probe(c.as_ptr()) }.check(&format!("rte_dev_probe({devargs})"))?;
        Self::lookup(devargs.split(',').next().unwrap_or(devargs))
    }

    /// Configure queues on `id` with buffers from `pool`, and start it.
    pub fn start(
        id: PortId,
        name: &str,
        cfg: &PortConfig,
        pool: &Mempool,
    ) -> Result<Port, DpdkError> {
        let p = id.0;
        let mut info = MaybeUninit::<sys::rte_eth_dev_info>::zeroed();
        // SAFETY: out-pointer to a zeroed struct of the right type.
        unsafe { sys::rte_eth_dev_info_get(p, info.as_mut_ptr()) }.check("rte_eth_dev_info_get")?;
        // SAFETY: initialised by the successful call above.
        let info = unsafe { info.assume_init() };
        if cfg.rx_queues > info.max_rx_queues || cfg.tx_queues > info.max_tx_queues {
            return Err(DpdkError::other(
                format!("configure {name}"),
                format!(
                    "wants {} rx / {} tx queues, device has at most {} / {}",
                    cfg.rx_queues, cfg.tx_queues, info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        // SAFETY: rte_eth_conf is plain data; all-zero is DPDK's documented default.
        let mut conf: sys::rte_eth_conf = unsafe { MaybeUninit::zeroed().assume_init() };
        if cfg.rx_queues > 1 {
            let hf = u64::from(sys::RTE_ETH_RSS_IP | sys::RTE_ETH_RSS_UDP | sys::RTE_ETH_RSS_TCP)
                & info.flow_type_rss_offloads;
            if hf != 0 {
                conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_hf = hf;
            }
        }
        // IPv4 header checksums verified by the NIC where it can (the fast paths then skip their own check,
        // see `PacketBuf::rx_ipv4_cksum_good`); virtual ports mostly cannot, net_tap can.
        let rx_ipv4_cksum =
            info.rx_offload_capa & u64::from(sys::RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) != 0;
        if rx_ipv4_cksum {
            conf.rxmode.offloads |= u64::from(sys::RTE_ETH_RX_OFFLOAD_IPV4_CKSUM);
        }
        // SAFETY: valid port id and conf.
        unsafe { sys::rte_eth_dev_configure(p, cfg.rx_queues, cfg.tx_queues, &conf) }
            .check(&format!("rte_eth_dev_configure({name})"))?;
        let (mut nrx, mut ntx) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: valid port id and out-pointers.
        unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(p, &mut nrx, &mut ntx) }
            .check("rte_eth_dev_adjust_nb_rx_tx_desc")?;
        if let Some(mtu) = cfg.mtu {
            // SAFETY: valid port id.
            let rc = unsafe { sys::rte_eth_dev_set_mtu(p, mtu) };
            if rc == -(libc::ENOTSUP) {
                log::debug!("{name}: the device keeps its own MTU (set_mtu not supported)");
            } else if rc < 0 {
                log::warn!(
                    "{name}: cannot set MTU {mtu}: {}",
                    DpdkError::from_errno("set_mtu", rc).message
                );
            }
        }
        // SAFETY: plain query.
        let socket = unsafe { sys::rte_eth_dev_socket_id(p) };
        let socket = if socket < 0 { 0 } else { socket as u32 };
        for q in 0..cfg.rx_queues {
            // SAFETY: valid port/queue; NULL rxconf means the driver default; the pool outlives the port.
            unsafe {
                sys::rte_eth_rx_queue_setup(p, q, nrx, socket, std::ptr::null(), pool.as_ptr())
            }
            .check(&format!("rte_eth_rx_queue_setup({name}, {q})"))?;
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: valid port/queue; NULL txconf means the driver default.
            unsafe { sys::rte_eth_tx_queue_setup(p, q, ntx, socket, std::ptr::null()) }
                .check(&format!("rte_eth_tx_queue_setup({name}, {q})"))?;
        }
        if cfg.promiscuous {
            // SAFETY: valid port id. Failure (virtual ports without the notion) is harmless.
            let _ = unsafe { sys::rte_eth_promiscuous_enable(p) };
        }
        // SAFETY: configured port.
        unsafe { sys::rte_eth_dev_start(p) }.check(&format!("rte_eth_dev_start({name})"))?;
        Ok(Port {
            id,
            name: name.to_string(),
            started: true,
            rx_queues: cfg.rx_queues,
            tx_queues: cfg.tx_queues,
            rx_ipv4_cksum,
        })
    }

    pub fn id(&self) -> PortId {
        self.id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn rx_queues(&self) -> u16 {
        self.rx_queues
    }
    pub fn tx_queues(&self) -> u16 {
        self.tx_queues
    }
    /// The NIC verifies received IPv4 header checksums (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM is on).
    pub fn rx_ipv4_cksum_offload(&self) -> bool {
        self.rx_ipv4_cksum
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6], DpdkError> {
        let mut a = sys::rte_ether_addr::default();
        // SAFETY: valid port and out-pointer.
        unsafe { sys::rte_eth_macaddr_get(self.id.0, &mut a) }.check("rte_eth_macaddr_get")?;
        Ok(a.addr_bytes)
    }

    /// Link state without waiting.
    pub fn link(&self) -> Result<LinkStatus, DpdkError> {
        let mut l = sys::rte_eth_link::default();
        // SAFETY: valid port and out-pointer.
        unsafe { sys::rte_eth_link_get_nowait(self.id.0, &mut l) }
            .check("rte_eth_link_get_nowait")?;
        Ok(LinkStatus {
            up: u32::from(l.link_status()) == sys::RTE_ETH_LINK_UP,
            speed_mbps: l.link_speed,
        })
    }

    /// Basic counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid port and out-pointer.
        unsafe { sys::rte_eth_stats_get(self.id.0, &mut s) }.check("rte_eth_stats_get")?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
            rx_queue_packets: s
                .q_ipackets
                .iter()
                .take(usize::from(self.rx_queues()))
                .copied()
                .collect(),
            rx_ipv4_cksum_offload: self.rx_ipv4_cksum,
        })
    }

    /// Extended counters, by name.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>, DpdkError> {
        let p = self.id.0;
        // SAFETY: NULL/0 asks for the count.
        let n = unsafe { sys::rte_eth_xstats_get(p, std::ptr::null_mut(), 0) }
            .check("rte_eth_xstats_get")?;
        let mut vals = vec![sys::rte_eth_xstat::default(); n as usize];
        let mut names = vec![sys::rte_eth_xstat_name::default(); n as usize];
        // SAFETY: buffers sized to n.
        let got = unsafe { sys::rte_eth_xstats_get(p, vals.as_mut_ptr(), n) }
            .check("rte_eth_xstats_get")?;
        // SAFETY: buffers sized to n.
        unsafe { sys::rte_eth_xstats_get_names(p, names.as_mut_ptr(), n) }
            .check("rte_eth_xstats_get_names")?;
        Ok(vals
            .iter()
            .take(got.min(n) as usize)
            .map(|x| {
                // SAFETY: names are NUL-terminated within their 64-byte arrays.
                let nm = unsafe { CStr::from_ptr(names[x.id as usize].name.as_ptr()) };
                (nm.to_string_lossy().into_owned(), x.value)
            })
            .collect())
    }

    /// Stop the port (idempotent).
    pub fn stop(&mut self) {
        if self.started {
            // SAFETY: valid started port.
            let _ = unsafe { sys::rte_eth_dev_stop(self.id.0) };
            self.started = false;
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.stop();
        // SAFETY: stopped port owned by us; no queue is used after this.
        let _ = unsafe { sys::rte_eth_dev_close(self.id.0) };
    }
}
