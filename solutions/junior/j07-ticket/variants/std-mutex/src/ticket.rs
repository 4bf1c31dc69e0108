//! The ticket counter: the one piece of state every request handler shares.

use std::sync::Mutex;

/// Hands out ticket numbers 1, 2, 3, ... like the paper-roll dispenser at a deli counter.
#[derive(Debug)]
pub struct Dispenser {
    /// How many tickets have been handed out so far, which is also the number printed on the
    /// most recent one. One lock around the count: nobody can get in between.
    issued: Mutex<u64>,
}

impl Dispenser {
    /// A dispenser that has handed out nothing yet: the first ticket is number 1.
    pub fn new() -> Self {
        Self {
            issued: Mutex::new(0),
        }
    }

    /// Tears off the next ticket and returns its number.
    pub fn take(&self) -> u64 {
        let mut issued = self.issued.lock().unwrap();
        *issued += 1;
        *issued
    }

    /// How many tickets have been handed out so far, for the display board.
    pub fn issued(&self) -> u64 {
        *self.issued.lock().unwrap()
    }
}

impl Default for Dispenser {
    fn default() -> Self {
        Self::new()
    }
}
