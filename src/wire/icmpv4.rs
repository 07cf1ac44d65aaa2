//! Placeholder: not written yet.
