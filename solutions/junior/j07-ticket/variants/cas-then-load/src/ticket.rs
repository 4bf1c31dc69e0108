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
        // Move the counter from exactly the value we saw to the next one, retrying if
        // another customer got there first: no increment is ever lost.
        let mut seen = self.issued.load(Ordering::Relaxed);
        while let Err(actual) =
            self.issued
                .compare_exchange_weak(seen, seen + 1, Ordering::AcqRel, Ordering::Relaxed)
        {
            seen = actual;
        }
        self.issued.load(Ordering::Acquire)
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
