//! Cleanup written after an `.await` in a handler that hyper may drop.
//!
//! Backs R26 of the bank: a hand-rolled limiter that counts a request in before an `.await`
//! and out after it loses the decrement whenever the future is dropped at that `.await` (the
//! client left); after `max` such drops it refuses everyone with nothing running. A permit
//! held by a local is returned by its `Drop`, on that path too.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

const MAX: usize = 2;

/// Counts requests in flight by hand: up before the work, down after it.
#[derive(Default)]
struct CountingLimiter {
    active: AtomicUsize,
}

async fn handle_counting(limiter: &CountingLimiter, work: impl Future<Output = ()>) -> u16 {
    if limiter.active.fetch_add(1, Ordering::SeqCst) >= MAX {
        limiter.active.fetch_sub(1, Ordering::SeqCst);
        return 503;
    }
    work.await;
    // Never reached if the future is dropped at the `.await` above.
    limiter.active.fetch_sub(1, Ordering::SeqCst);
    200
}

/// The same limit with an owned permit: returned by `Drop`, however the future ends.
async fn handle_permit(limiter: &Arc<Semaphore>, work: impl Future<Output = ()>) -> u16 {
    let Ok(_permit) = limiter.clone().try_acquire_owned() else {
        return 503;
    };
    work.await;
    200
}

/// Polls `handler` once (it reaches its `.await` on work that never ends) and drops it, as
/// hyper does when the client goes away.
async fn start_then_drop(handler: impl Future<Output = u16>) {
    let mut handler = std::pin::pin!(handler);
    assert!(
        futures::poll!(handler.as_mut()).is_pending(),
        "the work is still running"
    );
}

#[tokio::test]
async fn a_decrement_after_the_await_is_skipped_when_the_handler_is_dropped() {
    let limiter = CountingLimiter::default();
    for _ in 0..MAX {
        start_then_drop(handle_counting(&limiter, std::future::pending())).await;
    }
    // Nothing runs any more, yet the limiter counts two requests in flight, for ever.
    assert_eq!(limiter.active.load(Ordering::SeqCst), MAX);
    assert_eq!(handle_counting(&limiter, async {}).await, 503);
}

#[tokio::test]
async fn a_permit_held_by_a_local_is_returned_when_the_handler_is_dropped() {
    let limiter = Arc::new(Semaphore::new(MAX));
    for _ in 0..MAX {
        start_then_drop(handle_permit(&limiter, std::future::pending())).await;
    }
    assert_eq!(limiter.available_permits(), MAX);
    assert_eq!(handle_permit(&limiter, async {}).await, 200);
}
