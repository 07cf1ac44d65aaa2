//! THE ONLY FFI MODULE. Safe RAII wrappers over DPDK 22.11: [`Eal`], [`Mempool`], [`Port`], [`Mbuf`], bursts.
//!
//! Contract: every other module is safe Rust. Per-packet mbuf operations (data, prepend, adj, append, trim,
//! headroom) are done in Rust on the mbuf's own fields — no FFI call per packet; bursts (rx, tx, bulk free) are
//! one FFI call each. C return codes become `Result<_, DpdkError>` carrying the `rte_errno` text.
pub mod eal;
pub mod error;
pub mod mbuf;
pub mod mempool;
pub mod port;
pub mod queues;
pub mod sys;
pub mod telemetry;

pub use eal::{
    launch_on_lcore, register_thread, spawn_pinned, tsc_hz, unregister_thread, worker_lcore_on,
    Eal, LcoreTask, PinnedTask,
};
pub use error::DpdkError;
pub use mbuf::{Burst, Drain, Mbuf};
pub use mempool::Mempool;
pub use port::{LinkStatus, Port, PortConfig, PortStats};
pub use queues::{WorkerPort, WorkerQueues};

use std::fmt;

/// An ethdev port id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);
/// A queue index on a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub u16);
/// An EAL logical core id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LcoreId(pub u32);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port{}", self.0)
    }
}
impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "q{}", self.0)
    }
}
impl fmt::Display for LcoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lcore{}", self.0)
    }
}

/// Read the CPU's time-stamp counter (the clock DPDK's `rte_rdtsc` reads).
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no memory effects and is available on every x86_64 CPU.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: a plain call into DPDK's inline rdtsc through the shim.
        unsafe { sys::shim_rdtsc() }
    }
}

/// DPDK's own `rte_raw_cksum` (through the shim): the checksum benchmark's baseline. Returns the folded,
/// uncomplemented one's-complement sum in host byte order, as DPDK does.
pub fn raw_cksum(data: &[u8]) -> u16 {
    // SAFETY: the pointer and length describe a live slice; rte_raw_cksum only reads it.
    unsafe { sys::shim_raw_cksum(data.as_ptr().cast(), data.len()) }
}

/// [`raw_cksum`] compiled at -O2 with DPDK's pkg-config flags, as a DPDK application gets it by default (the
/// shim is built at -O3, where GCC vectorises `rte_raw_cksum`'s loop): the benchmark's second baseline.
pub fn raw_cksum_o2(data: &[u8]) -> u16 {
    // SAFETY: the pointer and length describe a live slice; rte_raw_cksum only reads it.
    unsafe { sys::shim_raw_cksum_o2(data.as_ptr().cast(), data.len()) }
}

/// The version of the DPDK libraries this process runs with (`rte_version()`, such as "DPDK 22.11.11"): the
/// shared libraries loaded at run time, which may be a newer stable release than the one built against
/// ([`DPDK_BUILD_VERSION`]). Needs no EAL.
pub fn runtime_version() -> String {
    // SAFETY: rte_version returns a pointer to a static NUL-terminated string (or NULL, checked).
    let p = unsafe { sys::rte_version() };
    if p.is_null() {
        return "unknown".into();
    }
    // SAFETY: non-null, NUL-terminated and static, as above.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// The DPDK version greway was built against (`pkg-config --modversion libdpdk` at build time).
pub const DPDK_BUILD_VERSION: &str = env!("GREWAY_DPDK_VERSION");

/// Serve every allocation of 1 MiB or more with a fresh mmap, for the whole run. glibc otherwise raises its mmap
/// threshold (up to 32 MiB) after the first large free, and then serves the route tables' zeroed arrays (16 MiB
/// each, rebuilt on every tunnel change) from the heap with a memset, instead of from fresh zero pages that are
/// faulted in only where routes are: a tunnel change then cost tens of milliseconds of memset.
pub fn large_allocations_from_mmap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation policy; called before any thread that allocates starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
