//! Coming from Go, a blocking call in a handler looks harmless: Go parks the goroutine and
//! runs others. A tokio task that blocks holds its worker thread; the tasks queued on that
//! worker wait until it lets go.
//!
//! Run it: `cargo run -p lessons-junior --example pitfall_blocking`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

// ANCHOR: blocking
/// Wrong in async code: the thread sleeps, and nothing else runs on it meanwhile.
pub async fn pause_blocking(log: Arc<Mutex<Vec<&'static str>>>) {
    std::thread::sleep(Duration::from_millis(50));
    log.lock().unwrap().push("slow done");
}

/// Right: the task is suspended, and the worker runs other tasks meanwhile.
pub async fn pause(log: Arc<Mutex<Vec<&'static str>>>) {
    tokio::time::sleep(Duration::from_millis(50)).await;
    log.lock().unwrap().push("slow done");
}
// ANCHOR_END: blocking

/// Runs `slow` and a quick task on one thread, and reports the order in which they finished.
pub fn race_on_one_thread(blocking: bool) -> Vec<&'static str> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let log = Arc::new(Mutex::new(Vec::new()));
        let slow = if blocking {
            tokio::spawn(pause_blocking(log.clone()))
        } else {
            tokio::spawn(pause(log.clone()))
        };
        let quick_log = log.clone();
        let quick = tokio::spawn(async move { quick_log.lock().unwrap().push("quick done") });
        let _ = tokio::join!(slow, quick);
        log.lock().unwrap().clone()
    })
}

fn main() {
    println!("std::thread::sleep:  {:?}", race_on_one_thread(true));
    println!("tokio::time::sleep:  {:?}", race_on_one_thread(false));
}
