//! `DpdkError`: a failed DPDK call, with the operation and the `rte_errno` text.
use super::sys;
use std::ffi::CStr;

/// A DPDK call that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op} failed: {message} (errno {errno})")]
pub struct DpdkError {
    /// What greway was doing.
    pub op: String,
    /// The positive errno value.
    pub errno: i32,
    /// `rte_strerror(errno)`.
    pub message: String,
}

impl DpdkError {
    /// Build from an explicit errno (positive or negative).
    pub fn from_errno(op: impl Into<String>, errno: i32) -> Self {
        let errno = errno.abs();
        // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string.
        let message = unsafe { CStr::from_ptr(sys::rte_strerror(errno)) }
            .to_string_lossy()
            .into_owned();
        DpdkError {
            op: op.into(),
            errno,
            message,
        }
    }

    /// Build from the current thread's `rte_errno`.
    pub fn last(op: impl Into<String>) -> Self {
        // SAFETY: reads a thread-local int through the shim.
        let errno = unsafe { sys::shim_rte_errno() };
        Self::from_errno(op, errno)
    }

    /// An error that did not come from a C call.
    pub fn other(op: impl Into<String>, message: impl Into<String>) -> Self {
        DpdkError {
            op: op.into(),
            errno: 0,
            message: message.into(),
        }
    }
}

/// Turn a C return code into a `Result` at the boundary.
pub(crate) trait ToResult {
    fn check(self, op: &str) -> Result<u32, DpdkError>;
}

impl ToResult for i32 {
    /// Negative values are `-errno` (most ethdev calls); others are returned as they are.
    fn check(self, op: &str) -> Result<u32, DpdkError> {
        if self < 0 {
            Err(DpdkError::from_errno(op, self))
        } else {
            Ok(self as u32)
        }
    }
}
