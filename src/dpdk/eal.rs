//! The Environment Abstraction Layer: initialised once per process, cleaned up on drop.
use super::error::{DpdkError, ToResult};
use super::{sys, LcoreId};
use std::ffi::CString;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, Ordering};

static EAL_UP: AtomicBool = AtomicBool::new(false);

/// An initialised EAL. Dropping it calls `rte_eal_cleanup`; drop every port and mempool first.
#[derive(Debug)]
pub struct Eal {
    _private: (),
}

impl Eal {
    /// `rte_eal_init` with `args` (without the program name). EAL can only be initialised once per process:
    /// a second call fails.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal, DpdkError> {
        // Relaxed is enough: the flag only refuses a second init, it publishes no data.
        if EAL_UP.swap(true, Ordering::Relaxed) {
            return Err(DpdkError::other(
                "rte_eal_init",
                "EAL is already initialised in this process",
            ));
        }
        let mut owned = vec![CString::new("greway").expect("static")];
        for a in args {
            owned.push(CString::new(a.as_ref()).map_err(|_| {
                DpdkError::other(
                    "rte_eal_init",
                    format!("argument {:?} has a NUL", a.as_ref()),
                )
            })?);
        }
        // rte_eal_init may permute argv: hand it a private pointer array and keep the strings alive.
        let mut argv: Vec<*mut c_char> = owned.iter().map(|s| s.as_ptr() as *mut c_char).collect();
        // SAFETY: argv points at NUL-terminated strings that outlive the call; argc matches.
        let rc = unsafe { sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
        if rc < 0 {
            EAL_UP.store(false, Ordering::Relaxed);
            return Err(DpdkError::last("rte_eal_init"));
        }
        Ok(Eal { _private: () })
    }

    /// Number of lcores EAL knows.
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: plain query after init.
        unsafe { sys::rte_lcore_count() }
    }

    /// The socket (NUMA node) of the calling thread.
    pub fn socket_id(&self) -> i32 {
        // SAFETY: plain query after init.
        unsafe { sys::rte_socket_id() as i32 }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: EAL was initialised by this value; callers drop ports and pools before it.
        unsafe { sys::rte_eal_cleanup() };
    }
}

/// Register the calling (non-EAL) thread with DPDK so it gets an lcore id and the mempool per-lcore cache.
pub fn register_thread() -> Result<LcoreId, DpdkError> {
    // SAFETY: registers the current thread; EAL must be up (callers hold an `Eal`).
    unsafe { sys::rte_thread_register() }.check("rte_thread_register")?;
    Ok(current_lcore())
}

/// Unregister the calling thread (before it exits).
pub fn unregister_thread() {
    // SAFETY: releases the calling thread's lcore id; harmless if it has none.
    unsafe { sys::rte_thread_unregister() }
}

/// The calling thread's lcore id (`u32::MAX` when unregistered).
pub fn current_lcore() -> LcoreId {
    // SAFETY: reads a thread-local through the shim.
    LcoreId(unsafe { sys::shim_lcore_id() })
}

/// TSC ticks per second as DPDK measured it.
pub fn tsc_hz() -> u64 {
    // SAFETY: plain query; valid after EAL init.
    unsafe { sys::rte_get_tsc_hz() }
}
