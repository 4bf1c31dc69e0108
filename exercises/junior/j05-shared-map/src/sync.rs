//! The synchronisation types the cache is built from.
//!
//! Normally these are the standard library's locks. With the crate feature `loom` they are
//! loom's look-alikes, which let `tests/loom.rs` run the cache under every possible
//! interleaving of two requests. Code in `cache.rs` imports from here, never from `std::sync`
//! directly, so that the model checks exactly the code the server runs. `Arc` is the standard
//! library's in both builds: the models check how writers take turns, not how the cache is
//! shared. (A busy-wait must call `hint::spin_loop` from here too: loom can only switch away
//! from a waiting thread at an operation it sees.)

pub use std::sync::Arc;

#[cfg(feature = "loom")]
pub use loom::{
    hint,
    sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

#[cfg(not(feature = "loom"))]
pub use std::{
    hint,
    sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard},
};
