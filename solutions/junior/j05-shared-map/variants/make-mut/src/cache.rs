//! The cache every request shares: the stored values and the journal of writes.

use std::collections::HashMap;

use bytes::Bytes;

use crate::sync::Arc;

/// The state every request shares. Cloning it clones the `Arc`s, not the data.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    /// The stored values, by key.
    entries: Arc<HashMap<String, Bytes>>,
    /// One `set {key} {value}` line per write, in the order the writes were applied: the
    /// nightly backup replays it to rebuild the cache.
    journal: Arc<String>,
}

impl Cache {
    /// Stores `value` under `key` and records the write in the journal.
    pub fn put(&mut self, key: &str, value: Bytes) {
        let line = format!("set {key} {}\n", String::from_utf8_lossy(&value));
        Arc::make_mut(&mut self.entries).insert(key.to_owned(), value);
        Arc::make_mut(&mut self.journal).push_str(&line);
    }

    /// The value stored under `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.entries.get(key).cloned()
    }

    /// The whole journal, oldest write first.
    pub fn journal(&self) -> String {
        self.journal.as_str().to_owned()
    }
}
