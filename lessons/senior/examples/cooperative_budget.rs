//! Cooperative scheduling: a CPU loop (a checksum over an upload) beside a heartbeat task, on
//! one thread. How far the loop got before the heartbeat could run, for three ways of writing
//! the loop.
//!
//! Run it with `cargo run -p lessons-senior --example cooperative_budget`.

use std::cell::Cell;
use std::rc::Rc;

const BLOCKS: u64 = 100_000;

/// One step of CPU work: mixing one block into the checksum.
fn mix(checksum: u64, block: u64) -> u64 {
    checksum.rotate_left(5) ^ block.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

// ANCHOR: loops
/// Never yields: there is no `.await` in the loop at all.
async fn plain(done: &Cell<u64>) -> u64 {
    let mut checksum = 0;
    for block in 0..BLOCKS {
        checksum = mix(checksum, block);
        done.set(block + 1);
    }
    checksum
}

/// Yields at every block: fair, and it pays a trip through the scheduler per block.
async fn yield_every_block(done: &Cell<u64>) -> u64 {
    let mut checksum = 0;
    for block in 0..BLOCKS {
        checksum = mix(checksum, block);
        done.set(block + 1);
        tokio::task::yield_now().await;
    }
    checksum
}

/// Yields only when tokio's budget for this poll is spent.
async fn consume_budget(done: &Cell<u64>) -> u64 {
    let mut checksum = 0;
    for block in 0..BLOCKS {
        tokio::task::coop::consume_budget().await;
        checksum = mix(checksum, block);
        done.set(block + 1);
    }
    checksum
}
// ANCHOR_END: loops

/// Runs `checksum` on a one-thread runtime with a heartbeat task spawned just before it, and
/// logs how many blocks were done when the heartbeat first ran.
fn race(name: &str, checksum: impl AsyncFnOnce(&Cell<u64>) -> u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let done = Rc::new(Cell::new(0));
    let seen = Rc::new(Cell::new(None));
    local.block_on(&runtime, async {
        let (done_seen, seen_set) = (done.clone(), seen.clone());
        tokio::task::spawn_local(async move { seen_set.set(Some(done_seen.get())) });
        std::hint::black_box(checksum(&done).await);
        tokio::task::yield_now().await; // in case the loop never yielded
    });
    let seen = seen.get().unwrap();
    tracing::info!("{name}: the heartbeat ran after {seen} of {BLOCKS} blocks");
}

fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    race("plain loop", plain);
    race("yield_now every block", yield_every_block);
    race("consume_budget", consume_budget);
}
