//! The synchronisation types the access log is built from.
//!
//! Normally these are the standard library's. With the crate feature `loom` they are loom's
//! look-alikes, which let `tests/loom.rs` run the log under every possible interleaving of
//! threads. Code in `access_log.rs` imports from here, never from `std::sync` directly, so that
//! the model checks exactly the code the server runs. (A busy-wait must call `hint::spin_loop`
//! from here too: loom can only switch away from a waiting thread at an operation it sees.)

#[cfg(feature = "loom")]
pub use loom::{
    hint,
    sync::{Arc, Mutex, atomic},
};

// The log's `busy` flag, for both builds.
#[cfg(feature = "loom")]
pub use std::sync::atomic::AtomicBool;

#[cfg(not(feature = "loom"))]
pub use std::{
    hint,
    sync::{Arc, Mutex, atomic},
};

#[cfg(not(feature = "loom"))]
pub use std::sync::atomic::AtomicBool;
