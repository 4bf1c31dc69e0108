//! A task that keeps a std mutex locked while it waits.
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ANCHOR: task
pub fn start_flusher(pending: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        let mut lines = pending.lock().unwrap();
        // Stands for writing the lines somewhere slow.
        tokio::time::sleep(Duration::from_millis(100)).await;
        lines.clear();
    });
}
// ANCHOR_END: task
