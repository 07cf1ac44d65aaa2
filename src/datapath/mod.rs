//! The datapath as the binary uses it: the pure crate's modules, plus the tests that drive the gateway together
//! with the control plane that builds its tables.
pub use greway_datapath::{
    frag, gateway, plan, reasm, reorder, worker, CrossConnect, HoldReason, MirrorCopy, MirrorDir,
    Processor, Verdict, Waiting,
};

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod generation_tests;
