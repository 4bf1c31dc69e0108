//! The cache every request shares: the stored values and the journal of writes.

use std::collections::HashMap;

use bytes::Bytes;

use crate::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The values and the journal, changed together under one lock.
#[derive(Debug, Default)]
struct Store {
    entries: HashMap<String, Bytes>,
    journal: String,
}

/// The state every request shares. Cloning it clones the `Arc`, not the data. Reads are far
/// more frequent than writes in a cache, so readers share the lock.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    store: Arc<RwLock<Store>>,
}

impl Cache {
    /// Stores `value` under `key` and records the write in the journal.
    pub fn put(&self, key: &str, value: Bytes) {
        let line = format!("set {key} {}\n", String::from_utf8_lossy(&value));
        let mut store = self.write();
        store.entries.insert(key.to_owned(), value);
        store.journal.push_str(&line);
    }

    /// The value stored under `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.read().entries.get(key).cloned()
    }

    /// The whole journal, oldest write first.
    pub fn journal(&self) -> String {
        self.read().journal.clone()
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
