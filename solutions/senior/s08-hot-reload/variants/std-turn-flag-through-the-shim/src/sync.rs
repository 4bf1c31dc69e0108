//! The synchronisation types the live configuration is built from.
//!
//! Normally these are the standard library's. With the crate feature `loom` they are loom's
//! look-alikes, which let `tests/loom.rs` run a reload and a request under every possible
//! interleaving of threads. Code in `config.rs` imports from here, never from `std::sync`
//! directly, so that the model checks exactly the code the server runs. (A busy-wait must call
//! `hint::spin_loop` from here too: loom can only switch away from a waiting thread at an
//! operation it sees.)

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

/// The configuration's turn flag only says who goes next; the configuration itself is behind
/// the shim's lock. The same flag in both builds.
pub use std::sync::atomic::AtomicBool as TurnFlag;
