//! The synchronisation types the ticket counter is built from.
//!
//! The standard library's, always: the server runs on them, so the checks should too.

pub use std::{
    hint,
    sync::{Arc, Mutex, atomic},
};
