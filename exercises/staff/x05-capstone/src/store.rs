//! The catalogue. Every write goes to the journal first, is copied to the replica, and only
//! then becomes visible in the index: a write stopped half-way is journaled but never visible.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the replica takes to acknowledge a write.
pub const COMMIT_TIME: Duration = Duration::from_millis(200);

/// The catalogue, shared by every connection; clones share one store.
#[derive(Clone, Debug, Default)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    journal: Vec<u64>,
    index: HashMap<u64, String>,
}

impl Store {
    /// The description of item `id`, once its write is committed.
    pub fn get(&self, id: u64) -> Option<String> {
        self.inner.lock().unwrap().index.get(&id).cloned()
    }

    /// Writes begun: journaled, committed or not.
    pub fn journaled(&self) -> usize {
        self.inner.lock().unwrap().journal.len()
    }

    /// Writes committed: visible to readers.
    pub fn committed(&self) -> usize {
        self.inner.lock().unwrap().index.len()
    }

    /// Stores `description` as a new item and returns its id (the first is 1). Must run to
    /// its end: stopped after the journal and before the index, the item is lost half-written.
    pub async fn commit(&self, description: String) -> u64 {
        let id = {
            let mut inner = self.inner.lock().unwrap();
            let id = inner.journal.len() as u64 + 1;
            inner.journal.push(id);
            id
        };
        // The replica's acknowledgement.
        tokio::time::sleep(COMMIT_TIME).await;
        self.inner.lock().unwrap().index.insert(id, description);
        id
    }
}
