//! Host interfaces: the kernel exception path, owned by the control thread.
pub mod learn;
