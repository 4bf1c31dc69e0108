//! The ticket counter: the one piece of state every request handler shares.

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{TurnFlag, hint};

/// Hands out ticket numbers 1, 2, 3, ... like the paper-roll dispenser at a deli counter.
#[derive(Debug)]
pub struct Dispenser {
    /// How many tickets have been handed out so far, which is also the number printed on the
    /// most recent one.
    issued: AtomicU64,
    /// Raised while a customer is taking a ticket, so that the next one waits their turn.
    busy: TurnFlag,
}

impl Dispenser {
    /// A dispenser that has handed out nothing yet: the first ticket is number 1.
    pub fn new() -> Self {
        Self {
            issued: AtomicU64::new(0),
            busy: TurnFlag::new(false),
        }
    }

    /// Tears off the next ticket and returns its number.
    pub fn take(&self) -> u64 {
        while self.busy.load(Ordering::Acquire) {
            hint::spin_loop();
        }
        self.busy.store(true, Ordering::Release);
        self.issued.fetch_add(1, Ordering::Relaxed);
        // The counter now includes this ticket, so its value is this ticket's number.
        let ticket = self.issued.load(Ordering::Relaxed);
        self.busy.store(false, Ordering::Release);
        ticket
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
