//! The cache every request shares: the stored values and the journal of writes.

use std::collections::HashMap;

use bytes::Bytes;

use crate::sync::Mutex;

#[derive(Debug, Default)]
struct Store {
    entries: HashMap<String, Bytes>,
    journal: String,
}

/// The state every request shares, once: the server hands out clones of an `Arc<Cache>`.
#[derive(Debug, Default)]
pub struct Cache {
    store: Mutex<Store>,
}

impl Cache {
    /// Stores `value` under `key` and records the write in the journal.
    pub fn put(&self, key: &str, value: Bytes) {
        let line = format!("set {key} {}\n", String::from_utf8_lossy(&value));
        let mut store = self.store.lock().unwrap();
        store.entries.insert(key.to_owned(), value);
        store.journal.push_str(&line);
    }

    /// The value stored under `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.store.lock().unwrap().entries.get(key).cloned()
    }

    /// The whole journal, oldest write first.
    pub fn journal(&self) -> String {
        self.store.lock().unwrap().journal.clone()
    }
}
