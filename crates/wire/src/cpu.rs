//! The CPU instruction the packet code needs beyond plain Rust: a cache prefetch. With the SIMD checksum this is
//! the only `unsafe` outside the binary's `dpdk` module (which also owns the clock, `dpdk::rdtsc`): an instruction
//! with no memory effect, wrapped once here as a safe function.

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
