//! The drain: how many requests are in flight, and a way to wait until there are none.
//!
//! It comes from the team's `lifecycle` module, which their services on other executors share,
//! so it is built on the standard library alone: no tokio inside.

use std::future::poll_fn;
use std::task::{Poll, Waker};

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{Arc, Mutex};

/// Counts work in flight. Cloning it gives another handle on the same count.
#[derive(Debug, Clone, Default)]
pub struct Drain {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Entered and left on every request, so it is an atomic: no lock on the hot path.
    in_flight: AtomicUsize,
    /// Whoever waits in [`Drain::idle`], to be woken when the count reaches zero.
    waiter: Mutex<Option<Waker>>,
}

/// One unit of work in flight; dropping it leaves the drain.
#[derive(Debug)]
pub struct InFlight {
    inner: Arc<Inner>,
}

impl Drain {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one unit of work until the returned guard is dropped.
    pub fn enter(&self) -> InFlight {
        self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight {
            inner: Arc::clone(&self.inner),
        }
    }

    /// How many units are in flight now (the readiness page shows it).
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// Resolves once nothing is in flight.
    pub async fn idle(&self) {
        poll_fn(|cx| {
            // One waiter slot, like an AtomicWaker: register, then look again.
            *self.inner.waiter.lock().unwrap() = Some(cx.waker().clone());
            if self.inner.in_flight.load(Ordering::Acquire) == 0 {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.inner.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(waiter) = self.inner.waiter.lock().unwrap().take() {
                waiter.wake();
            }
        }
    }
}
