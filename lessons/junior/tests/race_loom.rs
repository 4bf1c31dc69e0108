//! loom on the last-seat booking of `examples/race.rs`: no `pause` callback, no idea where the
//! window is. loom runs the model under every interleaving of its threads and finds the
//! double booking by itself; it finds nothing wrong with the booking under one guard. It also
//! shows loom's blind spot: code built from `std` types runs unseen, and passes.
//!
//! loom replays each model many times, so these are kept to two threads and one call each;
//! they take milliseconds even unoptimised.

use harness::watchdog::check;
use loom::sync::Arc;

#[allow(dead_code)]
#[path = "../examples/race.rs"]
mod example;

const HANG: &str = "a loom model did not finish: does a booking wait on a lock that is never \
                    released?";

// ANCHOR: room
/// The room of [Shared state], built from loom's `Mutex` so that loom sees every
/// lock and unlock. (In a crate that also runs for real, the `Mutex` comes from a
/// small `sync` module that is std's normally and loom's under a cargo feature.)
mod booking {
    use loom::sync::Mutex;

    pub struct Room {
        capacity: usize,
        guests: Mutex<Vec<&'static str>>,
    }

    impl Room {
        pub fn new(capacity: usize) -> Self {
            Self {
                capacity,
                guests: Mutex::new(Vec::new()),
            }
        }

        /// BUG: check under one lock, act under another; no pause callback here.
        pub fn book_racy(&self, guest: &'static str) -> bool {
            let has_room = self.guests.lock().unwrap().len() < self.capacity;
            if has_room {
                self.guests.lock().unwrap().push(guest);
            }
            has_room
        }

        /// Check and act under one guard.
        pub fn book(&self, guest: &'static str) -> bool {
            let mut guests = self.guests.lock().unwrap();
            let has_room = guests.len() < self.capacity;
            if has_room {
                guests.push(guest);
            }
            has_room
        }
    }
}
// ANCHOR_END: room

use booking::Room;

// ANCHOR: model
/// Two guests ask for the last seat at the same moment, under every interleaving
/// loom can find: at most one of them may get it.
fn last_seat(book: fn(&Room, &'static str) -> bool) {
    // loom runs this closure once per interleaving of the two threads.
    loom::model(move || {
        let room = Arc::new(Room::new(1));
        let other = Arc::clone(&room);
        let bob = loom::thread::spawn(move || book(&other, "bob"));
        let ada = book(&room, "ada");
        let bob = bob.join().unwrap();
        assert!(!(ada && bob), "both guests got the last seat");
    });
}

#[test]
#[should_panic(expected = "both guests got the last seat")]
fn loom_finds_the_double_booking() {
    check(HANG).run(|| last_seat(Room::book_racy));
}

#[test]
fn loom_finds_no_double_booking_under_one_guard() {
    check(HANG).run(|| last_seat(Room::book));
}
// ANCHOR_END: model

// ANCHOR: blind_spot
/// The same model on the room of `examples/race.rs`, whose `Mutex` is std's. loom
/// switches threads only at operations on its own types, so each booking runs start
/// to finish without a switch: the racy booking passes, every time.
#[test]
fn loom_cannot_see_std_types() {
    check(HANG).run(|| {
        loom::model(|| {
            let room = std::sync::Arc::new(example::Room::new(1));
            let other = std::sync::Arc::clone(&room);
            let bob = loom::thread::spawn(move || other.book_racy("bob", || {}));
            let ada = room.book_racy("ada", || {});
            let bob = bob.join().unwrap();
            // The race is still there (tests/race.rs forces it), but loom never
            // schedules it.
            assert!(
                !(ada && bob),
                "unreachable under loom: it cannot see std's Mutex"
            );
        });
    });
}
// ANCHOR_END: blind_spot

// ANCHOR: plain_thread
/// loom's types work only on the threads loom runs; on any other thread they panic.
/// A check can use that to make sure a core really is built from them.
#[test]
fn loom_types_panic_on_a_plain_thread() {
    check(HANG).run(|| {
        loom::model(|| {
            let room = Room::new(1);
            let outcome = std::thread::scope(|plain| plain.spawn(|| room.book("ada")).join());
            let payload = outcome.expect_err("loom's Mutex worked on a thread loom does not run");
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or(payload.downcast_ref::<String>().map(String::as_str));
            assert!(
                message.is_some_and(|m| m.contains("outside a Loom model")),
                "loom's Mutex failed on a plain thread, but not with loom's complaint: {message:?}"
            );
        });
    });
}
// ANCHOR_END: plain_thread
