//! The ticket counter: the one piece of state every request handler shares.

use crate::sync::atomic::{AtomicU64, Ordering};

/// Hands out ticket numbers 1, 2, 3, ... like the paper-roll dispenser at a deli counter.
#[derive(Debug)]
pub struct Dispenser {
    /// How many tickets have been handed out so far, which is also the number printed on the
    /// most recent one.
    issued: AtomicU64,
}

impl Dispenser {
    /// A dispenser that has handed out nothing yet: the first ticket is number 1.
    pub fn new() -> Self {
        Self {
            issued: AtomicU64::new(0),
        }
    }

    /// Tears off the next ticket and returns its number.
    pub fn take(&self) -> u64 {
        // `fetch_update` retries the closure until its result is stored atomically, and
        // returns the value it replaced: the number before ours.
        let previous = self
            .issued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .expect("the deli will not hand out 2^64 tickets");
        previous + 1
    }

    /// How many tickets have been handed out so far, for the display board.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }
}

impl Default for Dispenser {
    fn default() -> Self {
        Self::new()
    }
}
