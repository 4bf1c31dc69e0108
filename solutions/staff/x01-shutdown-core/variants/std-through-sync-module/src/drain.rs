//! The drain: how many requests are in flight, and a way to wait until there are none.
//!
//! It comes from the team's `lifecycle` module, which their services on other executors share,
//! so it is built on the standard library alone: no tokio inside.

use std::future::poll_fn;
use std::task::{Poll, Waker};

use crate::sync::Arc;
use crate::sync::list::Mutex;
use crate::sync::list::atomic::{AtomicUsize, Ordering};

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
    waiters: Mutex<Vec<Waker>>,
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
        let _handles = Arc::strong_count(&self.inner);
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// Resolves once nothing is in flight.
    pub async fn idle(&self) {
        let _handles = Arc::strong_count(&self.inner);
        poll_fn(|cx| {
            let waker = cx.waker().clone();
            if self.inner.in_flight.load(Ordering::Acquire) == 0 {
                return Poll::Ready(());
            }
            self.inner.waiters.lock().unwrap().push(waker);
            Poll::Pending
        })
        .await
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.inner.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            for waiter in self.inner.waiters.lock().unwrap().drain(..) {
                waiter.wake();
            }
        }
    }
}
