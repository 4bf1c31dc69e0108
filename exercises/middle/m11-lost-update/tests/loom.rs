//! Loom models of the view counter: every interleaving of two readers viewing an article at
//! the same moment, explored exhaustively.
//!
//! Run optimised (the workspace's `loom` profile), with the crate's `loom` feature (which swaps
//! `src/sync.rs` to loom's types):
//! `cargo test -p m11-lost-update --profile loom --features loom --test loom`.
//!
//! loom explores only the operations it can see: those on its own types. The last check makes
//! sure the counter is still built from them, or the models would pass whatever `record` does.

use std::path::Path;
use std::process::Command;

use harness::loom_shim::{Forbid, sync_outside_the_shim};
use harness::watchdog::check;
use m11_lost_update::sync::Arc;
use m11_lost_update::views::ViewCounter;

const HANG: &str = "the loom model did not finish: does `record` take the write lock while it \
                    still holds the read lock?";

/// Two readers view `article` at the same moment; returns its count afterwards.
fn two_views_at_once(counter: Arc<ViewCounter>, article: &'static str) -> u64 {
    let other_reader = Arc::clone(&counter);
    let other = loom::thread::spawn(move || other_reader.record(article));
    counter.record(article);
    other.join().unwrap();
    counter.views(article)
}

// ANCHOR: model
/// A new article is published and its first two readers arrive at the same moment: it has
/// been viewed twice.
#[test]
fn two_first_views_count_two() {
    // loom runs this closure once per possible interleaving of the two threads.
    model_in_child("two_first_views_count_two", || {
        let counter = Arc::new(ViewCounter::new());
        let views = two_views_at_once(counter, "election-night");
        assert_eq!(
            views, 2,
            "the first two readers of an article viewed it at the same time, and it shows \
             {views} view(s): both saw it missing, and one view was lost between them (an \
             insert that replaced or ignored the other's count, or a count read and written \
             back in two steps)"
        );
    });
}
// ANCHOR_END: model

/// An article already viewed once gets two more views at the same moment: three in all.
#[test]
fn two_more_views_count_three() {
    model_in_child("two_more_views_count_three", || {
        let counter = Arc::new(ViewCounter::new());
        counter.record("weather");
        let views = two_views_at_once(counter, "weather");
        assert_eq!(
            views, 3,
            "an article viewed once got two more views at the same time, and it shows \
             {views}: a count was read and written back in separate steps, and one of the \
             two views was written over"
        );
    });
}

/// loom switches threads only at operations on its own types. A counter built from `std` types runs
/// unseen: every `record` runs start to finish without a switch inside it, and the models above
/// pass whatever it does. So no file of `src/` may name a `std` lock, atomic or spin hint
/// (`src/sync.rs` only in its items gated `#[cfg(not(feature = "loom"))]`, the normal build's side
/// of the switch, read whole statements at a time by `harness::loom_shim`); and since loom's types
/// refuse to run on a thread loom does not control (they panic there), every step of the counter,
/// tried on a plain thread, must fail.
#[test]
fn loom_can_see_the_counter() {
    let unseen = sync_outside_the_shim(Path::new(env!("CARGO_MANIFEST_DIR")), Forbid::STD);
    assert!(
        unseen.is_empty(),
        "the counter uses synchronisation that is not the shim's:\n  {}\nloom switches threads \
         only at operations on its own types, the ones `src/sync.rs` exports under the `loom` \
         feature. A `std` atomic, lock or spin hint is invisible to it: a check-then-set on a \
         `std` flag runs as one step in every interleaving loom tries, so the models pass a race \
         they never see. Import every lock, atomic and `hint` from `crate::sync` (add what you \
         need there, for both the `loom` and the normal build: in \
         `src/sync.rs` a `std` type belongs only in an item marked \
         `#[cfg(not(feature = \"loom\"))]`, the normal build's side).",
        unseen.join("\n  ")
    );
    model_in_child("loom_can_see_the_counter", || {
        let counter = ViewCounter::new();
        counter.record("sport");
        let unseen: Vec<&str> = [
            ("ViewCounter::new", runs_unseen(ViewCounter::new)),
            ("record", runs_unseen(|| counter.record("sport"))),
            ("views", runs_unseen(|| counter.views("sport"))),
        ]
        .into_iter()
        .filter_map(|(step, unseen)| unseen.then_some(step))
        .collect();
        assert!(
            unseen.is_empty(),
            "{unseen:?} ran on a thread loom does not control: the counter is not built \
             from the types of `crate::sync`, so loom cannot see inside `record` and the \
             models prove nothing about it"
        );
    });
}

/// Set in the child process that runs a model for its parent.
const IN_CHILD: &str = "M11_LOOM_MODEL_IN_CHILD";

/// Runs the loom `model` of the check `name` in a child process: this same test binary, asked
/// to run just that check. loom 0.7 reports a deadlock by panicking, and when a thread holding
/// one of its `RwLock` guards unwinds from that report, dropping the guard panics again and
/// aborts the whole process, report and all. The child may abort; the parent reads what it
/// printed and fails with a message that says what happened.
fn model_in_child(name: &str, model: impl Fn() + Sync + Send + 'static) {
    if std::env::var_os(IN_CHILD).is_some() {
        check(HANG).run(move || loom::model(model));
        return;
    }
    let child = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(IN_CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running the model in a child process");
    if child.status.success() {
        return;
    }
    let printed = String::from_utf8_lossy(&child.stderr);
    if let Some(report) = printed
        .lines()
        .find(|line| line.contains("deadlock; threads"))
    {
        panic!(
            "loom found a deadlock: in some interleaving every thread was waiting for a lock \
             that would never be released ({report}). A thread that asks for the write lock \
             while it still holds the read lock waits for itself: an `RwLock` cannot be \
             upgraded, and the write lock waits until every reader, this one included, has let \
             go. Release the read guard before taking the write lock (and look again under the \
             write lock). On a real server, the first view of a new article would hang."
        );
    }
    // The model's own assertion failed: its message is what follows `panicked at`.
    let message: Vec<&str> = printed
        .lines()
        .skip_while(|line| !line.contains("panicked at"))
        .skip(1)
        .take_while(|line| !line.starts_with("note:") && !line.is_empty())
        .collect();
    if message.is_empty() {
        panic!("the model failed in its child process:\n{printed}");
    }
    panic!("{}", message.join("\n"));
}

/// Whether `step` runs to the end on a plain `std` thread, outside loom's control.
fn runs_unseen<T: Send>(step: impl FnOnce() -> T + Send) -> bool {
    std::thread::scope(|plain| plain.spawn(step).join().is_ok())
}
