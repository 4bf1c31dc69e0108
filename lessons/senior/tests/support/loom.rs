//! The concurrent core of a fan-out feed: many subscribers share one upstream subscription,
//! and the last subscriber to leave closes it. Written against `super::sync`, a shim the
//! including module provides: the server and the plain tests mount it over `std`'s atomics,
//! the loom models over loom's. No lock, no tokio, no I/O: only what loom can see.

use super::sync::atomic::{AtomicUsize, Ordering};

// ANCHOR: core
/// Who is subscribed to the upstream feed, and how often it was closed.
#[derive(Default)]
pub struct Subscribers {
    count: AtomicUsize,
    closed: AtomicUsize,
}

impl Subscribers {
    pub fn join(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// BUG: decrements, then reads the count again in a second step. Two subscribers leaving
    /// at once can both read 0 (the upstream is closed twice), and the next `join` can be
    /// counted between the two steps.
    pub fn leave_racy(&self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
        if self.count.load(Ordering::SeqCst) == 0 {
            self.close_upstream();
        }
    }

    /// One read-modify-write: its result says whether this caller took the count to 0, and
    /// exactly one caller can.
    pub fn leave(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.close_upstream();
        }
    }

    fn close_upstream(&self) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }

    /// How many times the upstream subscription was closed.
    pub fn closes(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}
// ANCHOR_END: core
