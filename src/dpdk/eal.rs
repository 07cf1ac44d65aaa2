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

/// The enabled EAL worker lcore (any but the main one) that runs on CPU `core`, if there is one.
pub fn worker_lcore_on(core: u32) -> Option<u32> {
    // SAFETY: plain queries of EAL's lcore configuration after init.
    unsafe {
        let main = sys::rte_get_main_lcore();
        (0..sys::RTE_MAX_LCORE).find(|&l| {
            l != main
                && sys::rte_lcore_is_enabled(l) != 0
                && sys::rte_lcore_to_cpu_id(l as i32) == core as i32
        })
    }
}

/// A closure running on an EAL worker lcore (`rte_eal_remote_launch`); [`LcoreTask::join`] waits for it.
///
/// Workers run this way whenever their core is an EAL worker lcore: a plain thread would have to register
/// (`rte_thread_register`), and registering a non-EAL thread disables DPDK multi-process for good, which
/// refuses every secondary process (dpdk-dumpcap, dpdk-proc-info) with "Primary process refused secondary
/// attachment".
#[must_use = "join the task: its lcore stays busy until then"]
pub struct LcoreTask<T> {
    lcore: u32,
    result: std::sync::Arc<std::sync::Mutex<Option<std::thread::Result<T>>>>,
}

struct Launch {
    run: Box<dyn FnOnce() + Send>,
}

unsafe extern "C" fn launch_trampoline(arg: *mut std::os::raw::c_void) -> i32 {
    // SAFETY: `arg` is the Box<Launch> leaked by `launch_on_lcore`, handed to exactly one lcore.
    let l = unsafe { Box::from_raw(arg.cast::<Launch>()) };
    (l.run)();
    0
}

/// Run `f` on EAL worker lcore `lcore` (which must be idle: each lcore runs one task at a time).
pub fn launch_on_lcore<T, F>(lcore: u32, f: F) -> Result<LcoreTask<T>, DpdkError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let result = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = result.clone();
    let launch = Box::new(Launch {
        run: Box::new(move || {
            // No unwinding across the C frames of EAL's lcore loop: the panic is carried to `join`.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            if let Ok(mut s) = slot.lock() {
                *s = Some(r);
            }
        }),
    });
    let arg = Box::into_raw(launch).cast::<std::os::raw::c_void>();
    // SAFETY: the trampoline takes ownership of `arg` when the lcore runs it; on failure nothing ran it and
    // we take it back.
    let rc = unsafe { sys::rte_eal_remote_launch(Some(launch_trampoline), arg, lcore) };
    if rc != 0 {
        // SAFETY: the launch was refused, so `arg` is still ours.
        drop(unsafe { Box::from_raw(arg.cast::<Launch>()) });
        return Err(DpdkError::other(
            "rte_eal_remote_launch",
            format!("lcore {lcore} is busy or not a worker lcore (rc {rc})"),
        ));
    }
    Ok(LcoreTask { lcore, result })
}

impl<T> LcoreTask<T> {
    /// Wait for the task to return (`rte_eal_wait_lcore`); `Err` carries its panic, like
    /// `std::thread::JoinHandle::join`.
    pub fn join(self) -> std::thread::Result<T> {
        // SAFETY: waits for the lcore this task was launched on.
        unsafe { sys::rte_eal_wait_lcore(self.lcore) };
        let taken = self.result.lock().ok().and_then(|mut s| s.take());
        taken.unwrap_or_else(|| Err(Box::new("the lcore task left no result")))
    }
}

impl<T> LcoreTask<T> {
    /// The task has returned (or panicked); `join` will not wait.
    pub fn is_finished(&self) -> bool {
        self.result.lock().map_or(true, |s| s.is_some())
    }
}

/// A task pinned to a core: on the EAL worker lcore of that core when there is one, else on a thread pinned
/// there and registered with EAL (which turns DPDK multi-process off for the process: no dpdk-dumpcap).
#[must_use = "join the task"]
pub enum PinnedTask<T> {
    Lcore(LcoreTask<T>),
    Thread(std::thread::JoinHandle<T>),
}

impl<T> PinnedTask<T> {
    /// Wait for the task; `Err` carries its panic.
    pub fn join(self) -> std::thread::Result<T> {
        match self {
            PinnedTask::Lcore(t) => t.join(),
            PinnedTask::Thread(h) => h.join(),
        }
    }

    /// The task has returned (or panicked).
    pub fn is_finished(&self) -> bool {
        match self {
            PinnedTask::Lcore(t) => t.is_finished(),
            PinnedTask::Thread(h) => h.is_finished(),
        }
    }
}

/// Run `f` pinned to CPU `core` (see [`PinnedTask`]); `name` labels the log lines (and the thread, if one is
/// needed).
pub fn spawn_pinned<T, F>(name: &str, core: u32, f: F) -> Result<PinnedTask<T>, DpdkError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if let Some(lcore) = worker_lcore_on(core) {
        let task = launch_on_lcore(lcore, f)?;
        log::info!("{name} on core {core} as EAL lcore {lcore}");
        return Ok(PinnedTask::Lcore(task));
    }
    let label = name.to_string();
    let h = std::thread::Builder::new()
        .name(format!("greway-{}", name.replace(' ', "-")))
        .spawn(move || {
            // Build the CoreId explicitly: after rte_eal_init a new thread inherits the main lcore's mask.
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core as usize }) {
                log::warn!("{label}: cannot pin to core {core}");
            }
            let reg = register_thread();
            match &reg {
                Ok(l) => log::info!(
                    "{label} on core {core} as {l} (a registered thread: core {core} is not an EAL worker \
                     lcore, so DPDK multi-process is off and dpdk-dumpcap cannot attach)"
                ),
                Err(e) => log::warn!("{label}: {e} (running unregistered, mempool cache bypassed)"),
            }
            let out = f();
            if reg.is_ok() {
                unregister_thread();
            }
            out
        })
        .map_err(|e| DpdkError::other("spawn", format!("{name}: {e}")))?;
    Ok(PinnedTask::Thread(h))
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
