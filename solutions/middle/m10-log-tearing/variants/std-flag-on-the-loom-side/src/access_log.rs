//! The access log: one line per request, buffered in memory until the shipper collects it.

use crate::sync::atomic::Ordering;
use crate::sync::{AtomicBool, Mutex, hint};

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
    /// Raised while a line is being written or the buffer collected.
    busy: AtomicBool,
}

impl AccessLog {
    pub fn new() -> Self {
        Self {
            pending: Mutex::new(String::new()),
            busy: AtomicBool::new(false),
        }
    }

    /// Records one request as `METHOD PATH STATUS BYTES`, one line per request.
    pub fn record(&self, entry: &Entry<'_>) {
        self.wait_turn();
        self.append(&format!("{} {}", entry.method, entry.path));
        self.append(&format!(" {} {}\n", entry.status, entry.bytes));
        self.busy.store(false, Ordering::Release);
    }

    /// Hands every line recorded so far to the shipper, which sends them to the log
    /// collector, and starts an empty buffer.
    pub fn take_pending(&self) -> String {
        self.wait_turn();
        let batch = std::mem::take(&mut *self.pending.lock().unwrap());
        self.busy.store(false, Ordering::Release);
        batch
    }

    fn wait_turn(&self) {
        while self.busy.load(Ordering::Acquire) {
            hint::spin_loop();
        }
        self.busy.store(true, Ordering::Release);
    }

    fn append(&self, text: &str) {
        self.pending.lock().unwrap().push_str(text);
    }
}

impl Default for AccessLog {
    fn default() -> Self {
        Self::new()
    }
}
