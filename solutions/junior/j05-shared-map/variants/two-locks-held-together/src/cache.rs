//! The cache every request shares: the stored values and the journal of writes.

use std::collections::HashMap;

use bytes::Bytes;

use crate::sync::{Arc, Mutex};

/// The state every request shares. Cloning it clones the `Arc`s, not the data.
///
/// Readers of values and readers of the journal take only the lock they need; a writer takes
/// both, always journal first, and holds both until its write is complete, so the journal's
/// order is the map's order and no two writers can deadlock.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    /// The stored values, by key.
    entries: Arc<Mutex<HashMap<String, Bytes>>>,
    /// One `set {key} {value}` line per write, in the order the writes were applied.
    journal: Arc<Mutex<String>>,
}

impl Cache {
    /// Stores `value` under `key` and records the write in the journal.
    pub fn put(&self, key: &str, value: Bytes) {
        let line = format!("set {key} {}\n", String::from_utf8_lossy(&value));
        let mut journal = self.journal.lock().unwrap();
        let mut entries = self.entries.lock().unwrap();
        entries.insert(key.to_owned(), value);
        journal.push_str(&line);
    }

    /// The value stored under `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.entries.lock().unwrap().get(key).cloned()
    }

    /// The whole journal, oldest write first.
    pub fn journal(&self) -> String {
        self.journal.lock().unwrap().clone()
    }
}
