//! Go's "sleep while holding a global lock" in Rust. With a std mutex, holding the guard
//! across `.await` in a spawned task does not compile (the future is not `Send`). With
//! tokio's async mutex it compiles, and every request queues behind the one holding the lock.
//!
//! Run it: `cargo run -p lessons-junior --example anti_lock_scope` (times both versions).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

/// Stands for a slow call made while handling a request.
async fn call_upstream() -> u64 {
    tokio::time::sleep(Duration::from_secs(1)).await;
    1
}

// ANCHOR: held
/// Wrong: the lock is held for the whole upstream call.
pub async fn record_held(total: Arc<Mutex<u64>>) {
    let mut total = total.lock().await;
    *total += call_upstream().await;
}
// ANCHOR_END: held

// ANCHOR: scoped
/// Right: the slow part runs without the lock; the lock covers the update only.
pub async fn record_scoped(total: Arc<Mutex<u64>>) {
    let amount = call_upstream().await;
    *total.lock().await += amount;
}
// ANCHOR_END: scoped

#[tokio::main]
async fn main() {
    for (name, held) in [
        ("held across the call", true),
        ("scoped to the update", false),
    ] {
        let total = Arc::new(Mutex::new(0));
        let start = tokio::time::Instant::now();
        let calls = (0..4).map(|_| {
            let total = Arc::clone(&total);
            tokio::spawn(async move {
                if held {
                    record_held(total).await
                } else {
                    record_scoped(total).await
                }
            })
        });
        futures::future::join_all(calls).await;
        println!("lock {name}: 4 requests took {:?}", start.elapsed());
    }
}
