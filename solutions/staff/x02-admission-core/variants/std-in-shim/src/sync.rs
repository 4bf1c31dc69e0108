//! The synchronisation types the admission counter is built from.
//!
//! Normally these are the standard library's. With the crate feature `loom` they are loom's
//! look-alikes, which let `tests/loom.rs` run requests being admitted and released under every
//! possible interleaving of threads. Code in `admission.rs` imports from here, never from
//! `std::sync` directly, so that the model checks exactly the code the server runs. (A
//! busy-wait must call `hint::spin_loop` from here too: loom can only switch away from a
//! waiting thread at an operation it sees.)

#[cfg(feature = "loom")]
pub use loom::{
    hint,
    sync::{Arc, Mutex, RwLock, atomic},
};

#[cfg(not(feature = "loom"))]
pub use std::{
    hint,
    sync::{Arc, Mutex, RwLock, atomic},
};

/// The gauge's counter: plain `std` in both builds (it is only a number for the dashboard).
pub use std::sync::atomic as gauge;
