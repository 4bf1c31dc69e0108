//! The cache every request shares: the stored values and the journal of writes.

use std::collections::HashMap;

use bytes::Bytes;

use crate::sync::{Arc, Mutex, RwLock};

/// The state every request shares. Cloning it clones the `Arc`s, not the data.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    /// The stored values, by key: an immutable snapshot that writers replace, so that readers
    /// only ever hold the lock long enough to clone an `Arc`.
    entries: Arc<RwLock<Arc<HashMap<String, Bytes>>>>,
    /// One `set {key} {value}` line per write, in the order the writes were applied: the
    /// nightly backup replays it to rebuild the cache.
    journal: Arc<Mutex<String>>,
}

impl Cache {
    /// Stores `value` under `key` and records the write in the journal.
    pub fn put(&self, key: &str, value: Bytes) {
        let line = format!("set {key} {}\n", String::from_utf8_lossy(&value));
        // Copy the current snapshot, change the copy, publish it.
        let mut next = HashMap::clone(&self.snapshot());
        next.insert(key.to_owned(), value);
        let mut journal = self.journal.lock().unwrap();
        *self.entries.write().unwrap() = Arc::new(next);
        journal.push_str(&line);
    }

    /// The value stored under `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.snapshot().get(key).cloned()
    }

    /// The whole journal, oldest write first.
    pub fn journal(&self) -> String {
        self.journal.lock().unwrap().clone()
    }

    fn snapshot(&self) -> Arc<HashMap<String, Bytes>> {
        Arc::clone(&self.entries.read().unwrap())
    }
}
