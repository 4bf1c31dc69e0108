//! Logic races: code that compiles, has no data race, and is still wrong when two requests
//! interleave. Each racy function takes a `pause` callback between its two steps: production
//! code passes `|| {}`, and the tests pass a handshake that forces the bad interleaving.
//!
//! ```console
//! cargo run -p lessons-junior --example race
//! ```
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

// ANCHOR: tickets
// ANCHOR: take_racy
/// Hands out ticket numbers to concurrent requests.
#[derive(Debug, Default)]
pub struct Tickets {
    issued: AtomicU64,
}

impl Tickets {
    /// BUG: two atomic steps are not one atomic step.
    pub fn take_racy(&self, pause: impl FnOnce()) -> u64 {
        self.issued.fetch_add(1, Ordering::SeqCst);
        pause(); // another request can take a ticket right here
        self.issued.load(Ordering::SeqCst)
    }
    // ANCHOR_END: take_racy

    /// The number comes from the `fetch_add` itself: nobody else can get it.
    pub fn take(&self) -> u64 {
        self.issued.fetch_add(1, Ordering::SeqCst) + 1
    }
}
// ANCHOR_END: tickets

// ANCHOR: room
/// A room with a fixed number of places.
#[derive(Debug)]
pub struct Room {
    capacity: usize,
    guests: Mutex<Vec<String>>,
}

impl Room {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            guests: Mutex::new(Vec::new()),
        }
    }

    /// BUG: check-then-act under two separate lock acquisitions.
    pub fn book_racy(&self, guest: &str, pause: impl FnOnce()) -> bool {
        let has_room = self.guests.lock().unwrap().len() < self.capacity;
        pause(); // another request can take the last place right here
        if has_room {
            self.guests.lock().unwrap().push(guest.to_owned());
        }
        has_room
    }

    /// Check and act under one guard: nobody can book in between.
    pub fn book(&self, guest: &str) -> bool {
        let mut guests = self.guests.lock().unwrap();
        let has_room = guests.len() < self.capacity;
        if has_room {
            guests.push(guest.to_owned());
        }
        has_room
    }

    pub fn booked(&self) -> usize {
        self.guests.lock().unwrap().len()
    }
}
// ANCHOR_END: room

// ANCHOR: stats
/// BUG: two numbers that belong together, each behind its own lock.
#[derive(Debug, Default)]
pub struct SplitStats {
    requests: Mutex<u64>,
    failures: Mutex<u64>,
}

impl SplitStats {
    pub fn record(&self, failed: bool) {
        *self.requests.lock().unwrap() += 1;
        if failed {
            *self.failures.lock().unwrap() += 1;
        }
    }

    /// Returns (requests, failures), read under two different locks.
    pub fn snapshot_racy(&self, pause: impl FnOnce()) -> (u64, u64) {
        let requests = *self.requests.lock().unwrap();
        pause(); // other requests are recorded right here
        let failures = *self.failures.lock().unwrap();
        (requests, failures)
    }
}

/// Numbers that belong together live under one lock.
#[derive(Debug, Default)]
pub struct Stats {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub failures: u64,
}

impl Stats {
    pub fn record(&self, failed: bool) {
        let mut counts = self.counts.lock().unwrap();
        counts.requests += 1;
        counts.failures += u64::from(failed);
    }

    pub fn snapshot(&self) -> Counts {
        *self.counts.lock().unwrap()
    }
}
// ANCHOR_END: stats

// ANCHOR: stress
/// Four threads take 100 000 tickets each: racy method first, then the fixed one.
fn main() {
    const THREADS: usize = 4;
    const EACH: usize = 100_000;
    let racy = Tickets::default();
    let fixed = Tickets::default();
    let distinct = |take: &(dyn Fn() -> u64 + Sync)| {
        let numbers: HashSet<u64> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..THREADS)
                .map(|_| scope.spawn(|| (0..EACH).map(|_| take()).collect::<Vec<_>>()))
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        numbers.len()
    };
    let total = THREADS * EACH;
    let racy_distinct = distinct(&|| racy.take_racy(|| {}));
    let fixed_distinct = distinct(&|| fixed.take());
    println!(
        "take_racy: {} duplicate tickets out of {total}",
        total - racy_distinct
    );
    println!(
        "take:      {} duplicate tickets out of {total}",
        total - fixed_distinct
    );
}
// ANCHOR_END: stress
