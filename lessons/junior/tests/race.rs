//! Logic races, forced. Each racy function of `examples/race.rs` pauses between its two
//! steps; `interleave` parks thread A at that pause, runs thread B to completion, then lets
//! A finish. That is one interleaving, chosen by hand and reproduced every time. loom (see
//! the race-detector chapter) explores all of them instead.

use std::collections::HashSet;
use std::sync::mpsc;
use std::thread;

use harness::watchdog::check;

#[allow(dead_code)]
#[path = "../examples/race.rs"]
mod example;

use example::{Counts, Room, SplitStats, Stats, Tickets};

const HANG: &str = "a forced interleaving never finished: does the racy function call its pause?";

// ANCHOR: interleave
/// Runs `a` on one thread until it calls its pause callback, then runs `b` on
/// another thread to completion, then lets `a` finish. Returns both results.
fn interleave<A, B>(
    a: impl FnOnce(&mut dyn FnMut()) -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B)
where
    A: Send,
    B: Send,
{
    let (paused_tx, paused) = mpsc::channel();
    let (resume, resume_rx) = mpsc::channel();
    thread::scope(|scope| {
        let first = scope.spawn(move || {
            a(&mut || {
                paused_tx.send(()).unwrap(); // "I am between my two steps"
                resume_rx.recv().unwrap(); // wait until told to go on
            })
        });
        paused.recv().expect("a never reached its pause");
        let second = scope.spawn(b).join().unwrap();
        resume.send(()).unwrap();
        (first.join().unwrap(), second)
    })
}
// ANCHOR_END: interleave

// ANCHOR: duplicate_ticket_test
#[test]
fn fetch_add_then_load_can_hand_out_the_same_ticket() {
    check(HANG).run(|| {
        let tickets = Tickets::default();
        let (a, b) = interleave(
            |pause| tickets.take_racy(pause),
            || tickets.take_racy(|| {}),
        );
        // A added 1, B added 1 and read 2, A read 2: two requests, one ticket.
        assert_eq!((a, b), (2, 2));
    });
}
// ANCHOR_END: duplicate_ticket_test

#[test]
fn the_value_fetch_add_returns_is_never_handed_out_twice() {
    check(HANG).run(|| {
        let tickets = Tickets::default();
        let numbers: Vec<u64> = thread::scope(|scope| {
            let workers: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| (0..1000).map(|_| tickets.take()).collect::<Vec<_>>()))
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let distinct: HashSet<u64> = numbers.into_iter().collect();
        assert_eq!(distinct, (1..=8000).collect());
    });
}

#[test]
fn check_then_act_under_two_locks_overbooks() {
    check(HANG).run(|| {
        let room = Room::new(1);
        let (a, b) = interleave(
            |pause| room.book_racy("ada", pause),
            || room.book_racy("bob", || {}),
        );
        assert!(a && b, "both were told yes");
        assert_eq!(room.booked(), 2, "two guests in a room for one");
    });
}

#[test]
fn check_and_act_under_one_guard_never_overbooks() {
    check(HANG).run(|| {
        let room = Room::new(10);
        let accepted: usize = thread::scope(|scope| {
            let guests: Vec<_> = (0..8)
                .map(|i| {
                    let room = &room;
                    scope.spawn(move || (0..100).filter(|j| room_book(room, i, *j)).count())
                })
                .collect();
            guests.into_iter().map(|g| g.join().unwrap()).sum()
        });
        assert_eq!(accepted, 10);
        assert_eq!(room.booked(), 10);
    });
}

fn room_book(room: &Room, thread: usize, attempt: usize) -> bool {
    room.book(&format!("guest {thread}-{attempt}"))
}

#[test]
fn numbers_read_under_separate_locks_can_disagree() {
    check(HANG).run(|| {
        let stats = SplitStats::default();
        let ((requests, failures), ()) =
            interleave(|pause| stats.snapshot_racy(pause), || stats.record(true));
        // More failures than requests: an error rate above 100 %.
        assert_eq!((requests, failures), (0, 1));
    });
}

#[test]
fn numbers_under_one_lock_always_agree() {
    check(HANG).run(|| {
        let stats = Stats::default();
        thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| (0..1000).for_each(|i| stats.record(i % 3 == 0)));
            }
            // Snapshots taken while the writers run are always consistent.
            scope.spawn(|| {
                for _ in 0..1000 {
                    let Counts { requests, failures } = stats.snapshot();
                    assert!(
                        failures <= requests,
                        "{failures} failures, {requests} requests"
                    );
                }
            });
        });
        assert_eq!(
            stats.snapshot(),
            Counts {
                requests: 4000,
                failures: 4 * 334
            }
        );
    });
}
