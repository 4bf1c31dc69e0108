//! The cache every request shares: the stored values and the journal of writes.

use std::collections::HashMap;

use bytes::Bytes;

use crate::sync::{Arc, Mutex, MutexGuard};

/// What the cache holds. The values and the journal sit behind one lock, so that a write and
/// its journal line happen together: the journal's order is the order the map saw the writes.
#[derive(Debug, Default)]
struct Store {
    /// The stored values, by key.
    entries: HashMap<String, Bytes>,
    /// One `set {key} {value}` line per write, in the order the writes were applied: the
    /// nightly backup replays it to rebuild the cache.
    journal: String,
}

/// The state every request shares. Cloning it clones the `Arc`, not the data. An `Arc` alone
/// only hands out shared (`&`) access; the `Mutex` is what lets one request at a time change
/// the store through it.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    store: Arc<Mutex<Store>>,
}

impl Cache {
    /// Stores `value` under `key` and records the write in the journal.
    pub fn put(&self, key: &str, value: Bytes) {
        // Everything that needs no lock happens before it is taken.
        let line = format!("set {key} {}\n", String::from_utf8_lossy(&value));
        // One guard for both changes: no other write can land between the insert and its
        // journal line.
        let mut store = self.lock();
        store.entries.insert(key.to_owned(), value);
        store.journal.push_str(&line);
    }

    /// The value stored under `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        // Cloning `Bytes` is a reference-count bump: the lock is held for no time at all.
        self.lock().entries.get(key).cloned()
    }

    /// The whole journal, oldest write first.
    pub fn journal(&self) -> String {
        self.lock().journal.clone()
    }

    /// Locks the store. Nothing panics while holding the lock, so it is never poisoned; if it
    /// were, the store itself is still consistent (every critical section is one insert plus
    /// one append, or a read), so we keep serving it.
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
