//! The access log: one line per request, buffered in memory until the shipper collects it.

use crate::sync::Mutex;

/// What the log records about one request.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    /// Size of the response body, in bytes.
    pub bytes: usize,
}

/// Lines waiting to be shipped, in the order they were recorded. Every connection task
/// records into the same log.
#[derive(Debug)]
pub struct AccessLog {
    pending: Mutex<String>,
}

impl AccessLog {
    pub fn new() -> Self {
        Self {
            pending: Mutex::new(String::new()),
        }
    }

    /// Records one request as `METHOD PATH STATUS BYTES`, one line per request.
    pub fn record(&self, entry: &Entry<'_>) {
        // The whole line is built first and appended in one critical section: another task
        // can only append before it or after it, never inside it. Formatting outside the lock
        // keeps the critical section to a copy.
        let line = format!(
            "{} {} {} {}\n",
            entry.method, entry.path, entry.status, entry.bytes
        );
        // A task that panicked while holding the lock cannot have left half a line behind (the
        // line is one `push_str`), so a poisoned buffer is still a good one.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push_str(&line);
    }

    /// Hands every line recorded so far to the shipper, which sends them to the log
    /// collector, and starts an empty buffer.
    pub fn take_pending(&self) -> String {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *pending)
    }
}

impl Default for AccessLog {
    fn default() -> Self {
        Self::new()
    }
}
