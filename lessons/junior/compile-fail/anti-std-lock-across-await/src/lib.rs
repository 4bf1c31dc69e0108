//! A rate card refreshed under a global lock, the Go way: lock, do slow work, unlock.
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ANCHOR: refresh
pub fn refresh_in_background(rates: Arc<Mutex<Vec<u64>>>) {
    tokio::spawn(async move {
        let mut rates = rates.lock().unwrap();
        // Slow upstream call while every handler that reads `rates` waits for the lock.
        tokio::time::sleep(Duration::from_secs(1)).await;
        rates.push(42);
    });
}
// ANCHOR_END: refresh
