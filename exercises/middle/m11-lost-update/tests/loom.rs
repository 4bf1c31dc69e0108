//! Loom models of the view counter: every interleaving of two readers viewing an article at
//! the same moment, explored exhaustively.
//!
//! Run optimised (the workspace's `loom` profile), with the crate's `loom` feature (which swaps
//! `src/sync.rs` to loom's types):
//! `cargo test -p m11-lost-update --profile loom --features loom --test loom`.
//!
//! loom explores only the operations it can see: those on its own types. The last check makes
//! sure the counter is still built from them, or the models would pass whatever `record` does.

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
    check(HANG).run(|| {
        // loom runs this closure once per possible interleaving of the two threads.
        loom::model(|| {
            let counter = Arc::new(ViewCounter::new());
            let views = two_views_at_once(counter, "election-night");
            assert_eq!(
                views, 2,
                "the first two readers of an article viewed it at the same time, and it shows \
                 {views} view(s): both saw no entry yet, and the second to add it overwrote \
                 the first one's count"
            );
        });
    });
}
// ANCHOR_END: model

/// An article already viewed once gets two more views at the same moment: three in all.
#[test]
fn two_more_views_count_three() {
    check(HANG).run(|| {
        loom::model(|| {
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
    });
}

/// loom switches threads only at operations on its own types. A counter built from `std`
/// types runs unseen: every `record` runs start to finish without a switch inside it, and the
/// models above pass whatever it does. loom's types refuse to run on a thread loom does not
/// control (they panic there), so every step of the counter, tried on a plain thread, must
/// fail.
#[test]
fn loom_can_see_the_counter() {
    check(HANG).run(|| {
        loom::model(|| {
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
    });
}

/// Whether `step` runs to the end on a plain `std` thread, outside loom's control.
fn runs_unseen<T: Send>(step: impl FnOnce() -> T + Send) -> bool {
    std::thread::scope(|plain| plain.spawn(step).join().is_ok())
}
