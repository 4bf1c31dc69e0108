//! The cache every request shares: the stored values and the journal of writes.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
};

use bytes::Bytes;

use crate::sync::{Arc, Mutex, hint};

/// The state every request shares. Cloning it clones the `Arc`s, not the data.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    /// The stored values, by key.
    entries: Arc<Mutex<HashMap<String, Bytes>>>,
    /// One `set {key} {value}` line per write, in the order the writes were applied: the
    /// nightly backup replays it to rebuild the cache.
    journal: Arc<Mutex<String>>,
    /// Raised while a request is writing, so that the next writer waits its turn.
    busy: Arc<AtomicBool>,
}

impl Cache {
    /// Stores `value` under `key` and records the write in the journal.
    pub fn put(&self, key: &str, value: Bytes) {
        let line = format!("set {key} {}\n", String::from_utf8_lossy(&value));
        while self.busy.load(Ordering::Acquire) {
            hint::spin_loop();
        }
        self.busy.store(true, Ordering::Release);
        self.entries.lock().unwrap().insert(key.to_owned(), value);
        self.journal.lock().unwrap().push_str(&line);
        self.busy.store(false, Ordering::Release);
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
