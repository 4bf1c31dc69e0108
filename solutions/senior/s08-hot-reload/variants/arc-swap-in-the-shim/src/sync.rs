//! The synchronisation types the live configuration is built from.
//!
//! Normally these are the standard library's, and arc-swap's `ArcSwap`. With the crate feature
//! `loom` they are loom's look-alikes, which let `tests/loom.rs` run a reload and a request
//! under every possible interleaving of threads. Code in `config.rs` imports from here, never
//! from `std::sync` directly, so that the model checks exactly the code the server runs.

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

#[cfg(not(feature = "loom"))]
pub use arc_swap::ArcSwap;

#[cfg(feature = "loom")]
pub use model::ArcSwap;

/// loom cannot see inside arc-swap (its atomics are `std`'s), and need not: arc-swap is tested
/// on its own. What the model must check is how the configuration *uses* it: one load per
/// request, one store per reload. This stand-in offers the same calls on a lock loom sees.
#[cfg(feature = "loom")]
mod model {
    use std::sync::Arc;

    #[derive(Debug)]
    pub struct ArcSwap<T>(loom::sync::Mutex<Arc<T>>);

    impl<T> ArcSwap<T> {
        pub fn from_pointee(value: T) -> Self {
            Self(loom::sync::Mutex::new(Arc::new(value)))
        }

        pub fn load_full(&self) -> Arc<T> {
            Arc::clone(&self.0.lock().unwrap())
        }

        pub fn store(&self, value: Arc<T>) {
            *self.0.lock().unwrap() = value;
        }
    }
}
