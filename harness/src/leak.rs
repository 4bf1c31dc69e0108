//! Counting work that outlives its request.
//!
//! A [`Gauge`] counts live [`Guard`]s. The code under test is handed a guard and keeps it
//! wherever the work lives (inside a spawned task, a stream, a session). A guard is released
//! when it is dropped, whether the work finished, returned early with `?`, panicked, or was
//! cancelled by dropping its future, so the gauge tells the truth in every one of those cases.
//!
//! Checks never sleep and then read the gauge: they wait for it to reach a value under a
//! deadline ([`Gauge::settles_to`]). On the paused clock the deadline costs no real time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::BoxFuture;

/// A count of live guards, shared by the check and the code under test.
#[derive(Debug, Clone, Default)]
pub struct Gauge {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    live: AtomicUsize,
    /// Total guards ever handed out, to tell "never started" from "finished".
    started: AtomicUsize,
    changed: Notify,
}

/// Keeps one unit of a [`Gauge`] alive until it is dropped.
#[derive(Debug)]
#[must_use = "a guard counts only while it is alive: bind it to a named variable"]
pub struct Guard {
    inner: Arc<Inner>,
}

impl Gauge {
    /// A gauge at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hands out a guard and counts it until it is dropped.
    pub fn guard(&self) -> Guard {
        self.inner.live.fetch_add(1, Ordering::SeqCst);
        self.inner.started.fetch_add(1, Ordering::SeqCst);
        self.inner.changed.notify_waiters();
        Guard {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Guards alive right now.
    pub fn live(&self) -> usize {
        self.inner.live.load(Ordering::SeqCst)
    }

    /// Guards handed out since the gauge was made.
    pub fn started(&self) -> usize {
        self.inner.started.load(Ordering::SeqCst)
    }

    /// Waits until `live() == n`. Returns `false` if that did not happen within `deadline`
    /// (measured on tokio's clock, so it is virtual time on a paused runtime).
    pub fn settles_to(&self, n: usize, deadline: Duration) -> BoxFuture<'_, bool> {
        self.wait_until(deadline, Box::new(move |g| g.live() == n))
    }

    /// Waits until at least `n` guards were ever handed out: "the work has started".
    /// Returns `false` if that did not happen within `deadline`.
    pub fn reaches_started(&self, n: usize, deadline: Duration) -> BoxFuture<'_, bool> {
        self.wait_until(deadline, Box::new(move |g| g.started() >= n))
    }

    fn wait_until(
        &self,
        deadline: Duration,
        done: Box<dyn Fn(&Self) -> bool + Send + Sync>,
    ) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            tokio::time::timeout(deadline, async {
                loop {
                    // Register interest before reading, or a change in between would be missed.
                    let changed = self.inner.changed.notified();
                    if done(self) {
                        return;
                    }
                    changed.await;
                }
            })
            .await
            .is_ok()
        })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.inner.live.fetch_sub(1, Ordering::SeqCst);
        self.inner.changed.notify_waiters();
    }
}
