//! Claims made by the senior level's review pages (pitfalls, mental models) that no chapter's
//! test covers on its own.
//!
//! The futures are polled by hand with `tokio_test::task::spawn`: each step is one poll, so
//! "the reader waits behind the writer" is an observed `Pending`, not a guess about timing.

use tokio::sync::RwLock;
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

/// tokio's `RwLock` is write-preferring: once a writer waits behind a read guard, a new reader
/// queues behind the writer instead of sharing the read lock. So a reader that holds its guard
/// for as long as a slow client takes (an export) stalls the writers and, through them, every
/// later reader too.
#[test]
fn a_waiting_writer_makes_new_readers_wait_behind_a_held_read_guard() {
    let board = RwLock::new(vec!["first event"]);

    // The export: a read guard held while it streams to a client that stopped reading.
    let export = board.try_read().expect("nobody holds the lock yet");

    // A request that records an event waits, as it must.
    let mut record = task::spawn(board.write());
    assert_pending!(record.poll());

    // A second export now waits too: read guards are not shared past a waiting writer.
    assert!(
        board.try_read().is_err(),
        "a new reader shared the lock with the export although a writer was waiting"
    );
    let mut second_export = task::spawn(board.read());
    assert_pending!(second_export.poll());

    // The first export ends: the writer is woken and served first, the reader after it.
    drop(export);
    assert!(
        record.is_woken(),
        "the writer was not woken when the read guard went"
    );
    assert!(
        !second_export.is_woken(),
        "the queued reader was woken before the writer that asked first"
    );
    let mut guard = assert_ready!(record.poll());
    guard.push("second event");
    drop(guard);

    assert!(second_export.is_woken());
    let seen = assert_ready!(second_export.poll());
    assert_eq!(*seen, ["first event", "second event"]);
}
