//! Loom models of the access log: every interleaving of two requests being logged at once,
//! and of a request being logged while the shipper collects the buffer, explored exhaustively.
//!
//! Run optimised (the workspace's `loom` profile), with the crate's `loom` feature (which swaps
//! `src/sync.rs` to loom's types):
//! `cargo test -p m10-log-tearing --profile loom --features loom --test loom`.
//!
//! loom explores only the operations it can see: those on its own types. The last check makes
//! sure the log is still built from them, or the models would pass whatever `record` does.

use std::path::Path;

use harness::loom_shim::{Forbid, sync_outside_the_shim};
use harness::watchdog::check;
use m10_log_tearing::access_log::{AccessLog, Entry};
use m10_log_tearing::sync::Arc;

const HANG: &str = "the loom model did not finish: does `record` wait for a flag or a lock that \
                    the other thread never releases?";

const PRODUCT: Entry<'static> = Entry {
    method: "GET",
    path: "/products/42",
    status: 200,
    bytes: 21,
};
const MISSING: Entry<'static> = Entry {
    method: "GET",
    path: "/favicon.ico",
    status: 404,
    bytes: 13,
};

// ANCHOR: model
/// Two connection tasks log a request at the same moment: the buffer then holds both lines,
/// each one whole.
#[test]
fn two_requests_log_two_whole_lines() {
    check(HANG).run(|| {
        // loom runs this closure once per possible interleaving of the two threads.
        loom::model(|| {
            let log = Arc::new(AccessLog::new());
            let other_task = Arc::clone(&log);
            let other = loom::thread::spawn(move || other_task.record(&MISSING));

            log.record(&PRODUCT);
            other.join().unwrap();

            let shipped = log.take_pending();
            let mut lines: Vec<&str> = shipped.split_inclusive('\n').collect();
            lines.sort_unstable();
            assert_eq!(
                lines,
                ["GET /favicon.ico 404 13\n", "GET /products/42 200 21\n"],
                "two requests were logged at the same time and the buffer holds {shipped:?}: \
                 one line was written in pieces, and the other request's line landed between \
                 them"
            );
        });
    });
}
// ANCHOR_END: model

/// The shipper collects the buffer while a request is being logged: whatever it collects ends
/// at a line boundary, and the line reaches the collector exactly once.
#[test]
fn the_shipper_never_collects_half_a_line() {
    check(HANG).run(|| {
        loom::model(|| {
            let log = Arc::new(AccessLog::new());
            let task_log = Arc::clone(&log);
            let task = loom::thread::spawn(move || task_log.record(&PRODUCT));

            let first_batch = log.take_pending();
            task.join().unwrap();
            let second_batch = log.take_pending();

            for batch in [&first_batch, &second_batch] {
                assert!(
                    batch.is_empty() || batch == "GET /products/42 200 21\n",
                    "the shipper collected {batch:?} while a request was being logged: a batch \
                     must hold whole lines only, or the collector parses half a line"
                );
            }
            assert_eq!(
                format!("{first_batch}{second_batch}"),
                "GET /products/42 200 21\n",
                "one request was logged: its line must reach the collector exactly once"
            );
        });
    });
}

/// loom switches threads only at operations on its own types. A log built from `std` types runs
/// unseen: every `record` runs start to finish without a switch inside it, and the models above
/// pass whatever it does. So no file of `src/` may name a `std` lock, atomic or spin hint
/// (`src/sync.rs` only in its items gated `#[cfg(not(feature = "loom"))]`, the normal build's side
/// of the switch, read whole statements at a time by `harness::loom_shim`); and since loom's types
/// refuse to run on a thread loom does not control (they panic there), every step of the log, tried
/// on a plain thread, must fail.
#[test]
fn loom_can_see_the_log() {
    let unseen = sync_outside_the_shim(Path::new(env!("CARGO_MANIFEST_DIR")), Forbid::STD);
    assert!(
        unseen.is_empty(),
        "the log uses synchronisation that is not the shim's:\n  {}\nloom switches threads \
         only at operations on its own types, the ones `src/sync.rs` exports under the `loom` \
         feature. A `std` atomic, lock or spin hint is invisible to it: a check-then-set on a \
         `std` flag runs as one step in every interleaving loom tries, so the models pass a race \
         they never see. Import every lock, atomic and `hint` from `crate::sync` (add what you \
         need there, for both the `loom` and the normal build: in \
         `src/sync.rs` a `std` type belongs only in an item marked \
         `#[cfg(not(feature = \"loom\"))]`, the normal build's side).",
        unseen.join("\n  ")
    );
    check(HANG).run(|| {
        loom::model(|| {
            let log = AccessLog::new();
            let unseen: Vec<&str> = [
                ("AccessLog::new", runs_unseen(AccessLog::new)),
                ("record", runs_unseen(|| log.record(&PRODUCT))),
                ("take_pending", runs_unseen(|| log.take_pending())),
            ]
            .into_iter()
            .filter_map(|(step, unseen)| unseen.then_some(step))
            .collect();
            assert!(
                unseen.is_empty(),
                "{unseen:?} ran on a thread loom does not control: the log is not built from \
                 the types of `crate::sync`, so loom cannot see inside `record` and the models \
                 prove nothing about it"
            );
        });
    });
}

/// Whether `step` runs to the end on a plain `std` thread, outside loom's control.
fn runs_unseen<T: Send>(step: impl FnOnce() -> T + Send) -> bool {
    std::thread::scope(|plain| plain.spawn(step).join().is_ok())
}
