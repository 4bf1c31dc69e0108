//! The fan-out feed's subscriber count, over `std`'s atomics, on real threads: the racy
//! `leave` closes the upstream twice only when two threads happen to interleave inside it,
//! which real threads do rarely and unpredictably. The loom model finds it on every run.
//!
//! ```console
//! cargo run -p lessons-senior --example loom_subscribers
//! ```
use std::sync::Arc;
use std::thread;

use tracing::info;

/// The shim: this program (the server's build) uses `std`'s atomics; the loom models mount
/// the same file over loom's.
mod sync {
    pub use std::sync::atomic;
}

#[path = "../tests/support/loom.rs"]
mod subscribers;

use subscribers::Subscribers;

const ROUNDS: usize = 20_000;

/// Two real threads leave at once, `ROUNDS` times; returns how many rounds closed twice.
fn double_closes(leave: fn(&Subscribers)) -> usize {
    (0..ROUNDS)
        .filter(|_| {
            let feed = Arc::new(Subscribers::default());
            feed.join();
            feed.join();
            let other = Arc::clone(&feed);
            let second = thread::spawn(move || leave(&other));
            leave(&feed);
            second.join().unwrap();
            feed.closes() != 1
        })
        .count()
}

fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let racy = double_closes(Subscribers::leave_racy);
    info!(
        rounds = ROUNDS,
        double_closes = racy,
        "leave_racy on real threads"
    );
    let fixed = double_closes(Subscribers::leave);
    info!(
        rounds = ROUNDS,
        double_closes = fixed,
        "leave on real threads"
    );
}
