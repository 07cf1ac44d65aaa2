//! DPDK telemetry commands and the packet-capture (pdump) server.
//!
//! Contract: [`register`] adds a command (`/greway/...`) to DPDK's telemetry socket
//! (`/var/run/dpdk/PREFIX/dpdk_telemetry.v2`, read with `dpdk-telemetry.py -f PREFIX`). The command is answered
//! on DPDK's telemetry thread by calling the Rust provider registered for it, which must be cheap and must not
//! touch worker state (greway's providers read a snapshot the control thread publishes). A provider returns a
//! flat dictionary: DPDK 22.11 dictionaries nest arrays only, so greway uses `/`-separated keys.
use super::error::DpdkError;
use super::sys;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::sync::Mutex;

/// A telemetry dictionary value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TelValue {
    U64(u64),
    Str(String),
}

/// What a command answers: (key, value) pairs. Keys must be alphanumerics, `_` or `/`, under 128 bytes.
pub type Provider = Box<dyn Fn() -> Vec<(String, TelValue)> + Send + Sync>;

/// Registered providers by command. Locked only on the telemetry thread and at registration.
static PROVIDERS: Mutex<Vec<(CString, Provider)>> = Mutex::new(Vec::new());

/// Register `cmd` (e.g. `/greway/stats`) with a help text; `provider` answers it. EAL must be up.
pub fn register(cmd: &str, help: &str, provider: Provider) -> Result<(), DpdkError> {
    let c = CString::new(cmd).map_err(|_| DpdkError::other("rte_telemetry_register_cmd", "NUL"))?;
    let h =
        CString::new(help).map_err(|_| DpdkError::other("rte_telemetry_register_cmd", "NUL"))?;
    {
        let mut p = PROVIDERS.lock().unwrap_or_else(|e| e.into_inner());
        p.retain(|(k, _)| k != &c);
        p.push((c.clone(), provider));
    }
    // SAFETY: both strings are NUL-terminated; DPDK copies the command name and keeps the help pointer, so the
    // help string is leaked on purpose (a handful of commands per process). The callback is a plain function.
    let rc = unsafe {
        sys::rte_telemetry_register_cmd(c.as_ptr(), Some(answer), h.into_raw() as *const c_char)
    };
    if rc < 0 {
        return Err(DpdkError::other(
            "rte_telemetry_register_cmd",
            format!("{cmd}: error {rc}"),
        ));
    }
    Ok(())
}

/// The C callback of every greway command: look up the provider by command name and fill a dictionary.
unsafe extern "C" fn answer(
    cmd: *const c_char,
    _params: *const c_char,
    d: *mut sys::rte_tel_data,
) -> c_int {
    if cmd.is_null() || d.is_null() {
        return -1;
    }
    // SAFETY: DPDK passes the NUL-terminated command it matched.
    let cmd = unsafe { CStr::from_ptr(cmd) };
    let entries = {
        let p = PROVIDERS.lock().unwrap_or_else(|e| e.into_inner());
        match p.iter().find(|(k, _)| k.as_c_str() == cmd) {
            // Catch a panicking provider: unwinding into C is undefined behaviour.
            Some((_, f)) => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                Ok(v) => v,
                Err(_) => return -1,
            },
            None => return -1,
        }
    };
    // SAFETY: `d` is the response object DPDK handed to this callback.
    unsafe { sys::rte_tel_data_start_dict(d) };
    for (k, v) in entries
        .into_iter()
        .take(sys::RTE_TEL_MAX_DICT_ENTRIES as usize)
    {
        let Ok(k) = CString::new(k) else { continue };
        // SAFETY: `d` is a started dictionary; the strings are NUL-terminated and DPDK copies them.
        unsafe {
            match v {
                TelValue::U64(x) => {
                    sys::rte_tel_data_add_dict_u64(d, k.as_ptr(), x);
                }
                TelValue::Str(s) => {
                    if let Ok(s) = CString::new(s) {
                        sys::rte_tel_data_add_dict_string(d, k.as_ptr(), s.as_ptr());
                    }
                }
            }
        }
    }
    0
}

/// Start the packet-capture server so `dpdk-dumpcap` / `dpdk-pdump` (secondary processes) can attach. Needs a
/// primary with hugepages and shared config: with `--no-huge`/`--no-shconf` it fails and greway runs without it.
/// Built against DPDK 22.11 the server is greway's own (`capture.c`: DPDK's, plus the wait on a capture's end
/// that 22.11 lacks), and the answer is `true`; against a later DPDK it is the library's (`false`).
pub fn pdump_init() -> Result<bool, DpdkError> {
    // SAFETY: plain call after EAL init; registers multi-process handlers.
    let rc = unsafe { sys::shim_capture_init() };
    if rc < 0 {
        return Err(DpdkError::last("capture server (rte_pdump_init)"));
    }
    Ok(rc == 1)
}
