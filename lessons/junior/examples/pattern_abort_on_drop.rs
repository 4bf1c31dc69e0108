//! Background work owned by a value: the task lives exactly as long as its owner. A plain
//! `JoinHandle` does not give you that (dropping it detaches the task);
//! `tokio_util::task::AbortOnDropHandle` does.
//!
//! Run it: `cargo run -p lessons-junior --example pattern_abort_on_drop`.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::task::AbortOnDropHandle;

// ANCHOR: owned_task
/// A price that refreshes itself in the background while someone holds it.
pub struct LivePrice {
    current: Arc<RwLock<u64>>,
    // Dropping `LivePrice` drops this handle, which aborts the refresher.
    _refresher: AbortOnDropHandle<()>,
}

impl LivePrice {
    /// Calls `fetch` every `every` until the `LivePrice` is dropped.
    pub fn start<F>(every: Duration, mut fetch: F) -> Self
    where
        F: FnMut() -> u64 + Send + 'static,
    {
        let current = Arc::new(RwLock::new(0));
        let shared = Arc::clone(&current);
        let refresher = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                let price = fetch();
                *shared.write().expect("price lock poisoned") = price;
            }
        });
        Self {
            current,
            _refresher: AbortOnDropHandle::new(refresher),
        }
    }

    /// The latest price.
    pub fn get(&self) -> u64 {
        *self.current.read().expect("price lock poisoned")
    }
}
// ANCHOR_END: owned_task

#[tokio::main]
async fn main() {
    // Stands for asking an upstream service: here, a price that goes up by one each time.
    let mut upstream = 100;
    let price = LivePrice::start(Duration::from_millis(100), move || {
        upstream += 1;
        upstream
    });
    tokio::time::sleep(Duration::from_millis(350)).await;
    println!("price after 350 ms: {}", price.get());
    drop(price);
    println!("dropped: the refresher task was aborted with it");
}
