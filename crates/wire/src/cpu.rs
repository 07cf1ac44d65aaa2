//! The two CPU instructions the packet code needs beyond plain Rust: a cache prefetch and the time-stamp
//! counter. With the SIMD checksum these are the only `unsafe` outside the binary's `dpdk` module; each is an
//! instruction with no memory effect, wrapped once here as a safe function.

/// Start loading the cache line at `p` into L1; never faults, whatever the address (a hint only).
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is in SSE (baseline on x86_64), has no architectural effect and never faults, for any
    // address, valid or not.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p.cast::<i8>(), core::arch::x86_64::_MM_HINT_T0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The CPU's time-stamp counter (the clock DPDK's `rte_rdtsc` reads); elsewhere, nanoseconds since first use.
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no memory effects and is available on every x86_64 CPU.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        static T0: OnceLock<std::time::Instant> = OnceLock::new();
        T0.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
    }
}
