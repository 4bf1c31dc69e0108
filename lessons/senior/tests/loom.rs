//! loom models of the fan-out feed's subscriber count: two subscribers leave at the same
//! moment, and the upstream must be closed exactly once.
//!
//! loom needs no global `--cfg loom` here: the core in `support/loom.rs` imports its atomics
//! from `super::sync`, and this file mounts it over loom's (module `seen`) and over `std`'s
//! (module `unseen`, to show what loom cannot see). Each model takes milliseconds even
//! unoptimised; bigger ones run in release:
//! `cargo test -p lessons-senior --profile loom --test loom`.

use harness::watchdog::check;
use loom::model::Builder;

const HANG: &str =
    "a loom model did not finish: is a thread spinning on a value that never changes?";

// ANCHOR: mount
/// The core, built from loom's atomics: loom sees every operation.
#[path = "support"]
mod seen {
    pub mod sync {
        pub use loom::sync::atomic;
    }
    #[path = "loom.rs"]
    pub mod subscribers;
}
// ANCHOR_END: mount

/// The same core, built from `std`'s atomics: invisible to loom.
#[path = "support"]
// The same file as `seen`, on purpose (clippy's `duplicate_mod`); only its racy `leave` runs.
#[allow(dead_code, clippy::duplicate_mod)]
mod unseen {
    pub mod sync {
        pub use std::sync::atomic;
    }
    #[path = "loom.rs"]
    pub mod subscribers;
}

// ANCHOR: model
/// Two subscribers, both joined, leave at the same moment: the upstream is closed once.
fn two_leave_at_once(leave: fn(&seen::subscribers::Subscribers)) {
    let feed = loom::sync::Arc::new(seen::subscribers::Subscribers::default());
    feed.join();
    feed.join();
    let other = loom::sync::Arc::clone(&feed);
    let second = loom::thread::spawn(move || leave(&other));
    leave(&feed);
    second.join().unwrap();
    assert_eq!(
        feed.closes(),
        1,
        "the upstream was closed {} times",
        feed.closes()
    );
}

#[test]
#[should_panic(expected = "the upstream was closed 2 times")]
fn loom_finds_the_double_close() {
    check(HANG).run(|| loom::model(|| two_leave_at_once(|f| f.leave_racy())));
}

#[test]
fn loom_finds_no_double_close_when_fetch_sub_decides() {
    check(HANG).run(|| loom::model(|| two_leave_at_once(|f| f.leave())));
}
// ANCHOR_END: model

// ANCHOR: budget
/// The same model with a budget: at most `preemptions` forced switches per interleaving.
fn bounded(preemptions: usize) {
    let mut builder = Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(|| two_leave_at_once(|f| f.leave_racy()));
}

#[test]
fn with_no_preemption_allowed_loom_misses_the_double_close() {
    check(HANG).run(|| bounded(0));
}

#[test]
#[should_panic(expected = "the upstream was closed 2 times")]
fn one_preemption_is_enough_to_find_it() {
    check(HANG).run(|| bounded(1));
}
// ANCHOR_END: budget

// ANCHOR: unseen
/// The racy core over `std`'s atomics, inside a loom model: loom switches threads only at its
/// own operations, so each `leave_racy` runs start to finish, and the model passes the bug.
#[test]
fn loom_cannot_see_std_atomics() {
    check(HANG).run(|| {
        loom::model(|| {
            let feed = loom::sync::Arc::new(unseen::subscribers::Subscribers::default());
            feed.join();
            feed.join();
            let other = loom::sync::Arc::clone(&feed);
            let second = loom::thread::spawn(move || other.leave_racy());
            feed.leave_racy();
            second.join().unwrap();
            assert_eq!(feed.closes(), 1);
        })
    });
}
// ANCHOR_END: unseen
