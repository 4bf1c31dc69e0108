//! The cache every request shares: the stored values and the journal of writes.

use std::collections::HashMap;
use std::fmt::Write;

use bytes::Bytes;

use crate::sync::{Arc, Mutex};

/// The state every request shares. Cloning it clones the `Arc`, not the data.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    /// The stored values, by key. The journal is written from them when it is asked for, so
    /// it can never disagree with them.
    entries: Arc<Mutex<HashMap<String, Bytes>>>,
}

impl Cache {
    /// Stores `value` under `key` and records the write in the journal.
    pub fn put(&self, key: &str, value: Bytes) {
        self.entries.lock().unwrap().insert(key.to_owned(), value);
    }

    /// The value stored under `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.entries.lock().unwrap().get(key).cloned()
    }

    /// The whole journal, oldest write first.
    pub fn journal(&self) -> String {
        let entries = self.entries.lock().unwrap();
        let mut journal = String::new();
        for (key, value) in entries.iter() {
            let _ = writeln!(journal, "set {key} {}", String::from_utf8_lossy(value));
        }
        journal
    }
}
