//! Stands in for the time-series store: it keeps what it is given, and counts the writes it
//! bills for.

use std::sync::{Arc, Mutex};

/// The time-series store, shared by every van's upload.
#[derive(Debug, Clone, Default)]
pub struct Store {
    inner: Arc<Mutex<Written>>,
}

#[derive(Debug, Default)]
struct Written {
    records: Vec<String>,
    writes: usize,
}

impl Store {
    /// Writes one batch of records, in order, as one billed write; an empty batch costs
    /// nothing. Returns how many records it wrote.
    pub fn write(&self, batch: Vec<String>) -> usize {
        if batch.is_empty() {
            return 0;
        }
        let mut written = self
            .inner
            .lock()
            .expect("the store's lock is never poisoned");
        written.writes += 1;
        let n = batch.len();
        written.records.extend(batch);
        n
    }

    /// Every record written so far, in the order written.
    pub fn records(&self) -> Vec<String> {
        self.inner
            .lock()
            .expect("the store's lock is never poisoned")
            .records
            .clone()
    }

    /// How many writes the store has billed.
    pub fn writes(&self) -> usize {
        self.inner
            .lock()
            .expect("the store's lock is never poisoned")
            .writes
    }
}
