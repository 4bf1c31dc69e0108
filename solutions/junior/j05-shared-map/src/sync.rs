//! The synchronisation types the cache is built from.
//!
//! Normally these are the standard library's locks. With the crate feature `loom` they are
//! loom's look-alikes, which let `tests/loom.rs` run the cache under every possible
//! interleaving of two requests. Code in `cache.rs` imports from here, never from `std::sync`
//! directly, so that the model checks exactly the code the server runs. `Arc` is the standard
//! library's in both builds: the models check how writers take turns, not how the cache is
//! shared.

pub use std::sync::Arc;

#[cfg(feature = "loom")]
pub use loom::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[cfg(not(feature = "loom"))]
pub use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
