//! The synchronisation types the drain is built from.
//!
//! Normally these are the standard library's. With the crate feature `loom` they are loom's
//! look-alikes, which let `tests/loom.rs` run the drain under every possible interleaving of
//! threads. `drain.rs` imports from here, never from `std::sync` directly, so that the model
//! checks exactly the code the server runs. (A busy-wait must call `hint::spin_loop` from here
//! too: loom can only switch away from a waiting thread at an operation it sees.)

#[cfg(feature = "loom")]
pub use loom::{
    hint,
    sync::{Arc, Mutex, atomic},
};

#[cfg(not(feature = "loom"))]
pub use std::{
    hint,
    sync::{Arc, Mutex, atomic},
};

/// The waiter list is touched only for a moment, never across an await, and loom's mutex makes
/// the model slow: the same lock in both builds.
pub mod list {
    pub use std::sync::{Mutex, atomic};
}
