//! The queue of "Overload policy" under a burst: five callers at once, each waiting at most
//! 250 ms, one worker at 100 ms a job, once with a FIFO queue and once with a queue that knows
//! the deadline. Runs on tokio's paused clock, so the times it prints are exact.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::future::join_all;
use tokio::time::Instant;
use tracing::info;

#[allow(dead_code)]
#[path = "../tests/support/overload_policy.rs"]
mod policy;

use policy::{Policy, WorkQueue};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    for kind in [Policy::Fifo, Policy::Deadline] {
        let queue = WorkQueue::start(kind, 100, Duration::from_millis(100));
        let start = Instant::now();
        let calls = (1..=5).map(|caller| {
            let queue = queue.clone();
            async move {
                let outcome = queue.call(Duration::from_millis(250)).await;
                info!(?kind, caller, at = ?start.elapsed(), ?outcome);
            }
        });
        join_all(calls).await;
        // Let the worker finish whatever is still queued before counting.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let wasted = queue.wasted.load(Ordering::SeqCst);
        info!(?kind, wasted, "jobs finished after their caller left");
    }
}
