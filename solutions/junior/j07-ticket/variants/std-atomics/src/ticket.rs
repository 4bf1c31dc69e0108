//! The ticket counter: the one piece of state every request handler shares.

// Straight from the standard library, with the strongest ordering there is.
use std::sync::atomic::{AtomicU64, Ordering};

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
        self.issued.fetch_add(1, Ordering::SeqCst);
        // SeqCst: every thread sees the increments in one order, so this read is up to date.
        self.issued.load(Ordering::SeqCst)
    }

    /// How many tickets have been handed out so far, for the display board.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::SeqCst)
    }
}

impl Default for Dispenser {
    fn default() -> Self {
        Self::new()
    }
}
