//! The drain: how many requests are in flight, and a way to wait until there are none.
//!
//! It comes from the team's `lifecycle` module, which their services on other executors share,
//! so it is built on the standard library alone: no tokio inside.

use std::{
    future::poll_fn,
    sync::Mutex,
    task::{Poll, Waker},
};

use crate::sync::Arc;

/// Counts work in flight. Cloning it gives another handle on the same count.
#[derive(Debug, Clone, Default)]
pub struct Drain {
    inner: Arc<Mutex<State>>,
}

/// The count and its waiters under one lock: a waiter's "is anything in flight?" and its
/// "wake me" are one step, and so are a leaver's "I was the last" and its wake-up call, so
/// neither can fall between the other's two halves.
#[derive(Debug, Default)]
struct State {
    in_flight: usize,
    /// Whoever waits in [`Drain::idle`], to be woken when the count reaches zero.
    waiters: Vec<Waker>,
}

/// One unit of work in flight; dropping it leaves the drain.
#[derive(Debug)]
pub struct InFlight {
    inner: Arc<Mutex<State>>,
}

impl Drain {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one unit of work until the returned guard is dropped.
    pub fn enter(&self) -> InFlight {
        self.inner.lock().unwrap().in_flight += 1;
        InFlight {
            inner: Arc::clone(&self.inner),
        }
    }

    /// How many units are in flight now (the readiness page shows it).
    pub fn in_flight(&self) -> usize {
        self.inner.lock().unwrap().in_flight
    }

    /// Resolves once nothing is in flight.
    pub async fn idle(&self) {
        poll_fn(|cx| {
            let mut state = self.inner.lock().unwrap();
            if state.in_flight == 0 {
                return Poll::Ready(());
            }
            // Registered before the lock is released: the last leaver, who needs the same
            // lock to decrement, will find this waker.
            if !state.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                state.waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let waiters = {
            let mut state = self.inner.lock().unwrap();
            state.in_flight -= 1;
            if state.in_flight > 0 {
                return;
            }
            std::mem::take(&mut state.waiters)
        };
        // Woken after the lock is released, so a waiter that runs at once does not block on it.
        for waiter in waiters {
            waiter.wake();
        }
    }
}
