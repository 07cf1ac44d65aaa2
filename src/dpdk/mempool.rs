//! A packet mbuf pool (`rte_pktmbuf_pool_create`), freed on drop.
use super::error::DpdkError;
use super::sys;
use std::ffi::CString;
use std::ptr::NonNull;

/// A pool of packet buffers.
#[derive(Debug)]
pub struct Mempool {
    raw: NonNull<sys::rte_mempool>,
    size: u32,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe; the pointer is shared, never mutated by Rust.
unsafe impl Send for Mempool {}
// SAFETY: as above; all operations are thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Create a pool of `n` mbufs with `data_room` bytes each (headroom included) and a per-lcore cache.
    pub fn new(
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool, DpdkError> {
        let cname =
            CString::new(name).map_err(|_| DpdkError::other("mempool", "name has a NUL"))?;
        // SAFETY: valid NUL-terminated name; DPDK validates the numbers and returns NULL with rte_errno set.
        let p =
            unsafe { sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket) };
        NonNull::new(p)
            .map(|raw| Mempool { raw, size: n })
            .ok_or_else(|| DpdkError::last(format!("rte_pktmbuf_pool_create({name}, n={n})")))
    }

    /// Mbufs currently free in the pool (ring plus per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive for &self.
        unsafe { sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs currently taken from the pool.
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is alive for &self.
        unsafe { sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    /// The number of mbufs the pool was created with.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The raw pool pointer, for queue setup.
    pub fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.raw.as_ptr()
    }

    /// Allocate one mbuf (control path: ARP replies, ICMP errors, keepalives).
    pub fn alloc(&self) -> Option<super::Mbuf> {
        // SAFETY: the pool is alive; a non-null return is a fresh mbuf we now own.
        let m = unsafe { sys::shim_pktmbuf_alloc(self.raw.as_ptr()) };
        NonNull::new(m).map(|p| {
            // SAFETY: fresh mbuf, owned by nobody else.
            unsafe { super::Mbuf::from_raw(p) }
        })
    }

    /// Allocate `n` mbufs with one `rte_pktmbuf_alloc_bulk` and add them to `into`, after what it holds: all
    /// of them or none. True when the `n` were added; false, with nothing taken from the pool and `into`
    /// unchanged, when the pool has fewer than `n` free or `into` has fewer than `n` free slots. The mbufs are
    /// reset like [`Mempool::alloc`]'s: one empty segment with the default headroom.
    pub fn alloc_bulk<const N: usize>(&self, into: &mut super::Burst<N>, n: usize) -> bool {
        if n == 0 || n > into.free_slots() {
            return n == 0;
        }
        // SAFETY: the pool is alive; spare_ptr has room for free_slots() >= n pointers, which DPDK fills with
        // fresh, reset mbufs only when it returns 0 (on failure it takes nothing and writes nothing we keep).
        let rc =
            unsafe { sys::shim_pktmbuf_alloc_bulk(self.raw.as_ptr(), into.spare_ptr(), n as u32) };
        if rc != 0 {
            return false;
        }
        // SAFETY: the call succeeded: the n slots hold fresh mbufs that only `into` refers to.
        unsafe { into.assume_added(n) };
        true
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: the pool was created by us; ports using it are stopped before the pool is dropped.
        unsafe { sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
