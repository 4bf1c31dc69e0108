//! Why a stress test is not a model: the racy subscriber count of `support/loom.rs`, over
//! `std`'s atomics, run the way an async test naturally runs it, as tasks on tokio's
//! current-thread runtime. A task is switched only at an `.await`, and `leave_racy` has none
//! between its two steps, so ten thousand rounds never interleave them: the race loom finds
//! in milliseconds (`tests/loom.rs`) passes here every time.

use harness::watchdog::check;

mod sync {
    pub use std::sync::atomic;
}

#[path = "support/loom.rs"]
#[allow(dead_code)] // only the racy `leave` is stressed here
mod subscribers;

use std::sync::Arc;

use subscribers::Subscribers;

const HANG: &str = "the stress rounds did not finish";

// ANCHOR: stress
#[test]
fn tasks_on_one_thread_never_interleave_the_racy_leave() {
    check(HANG).paused(|| async {
        for _ in 0..10_000 {
            let feed = Arc::new(Subscribers::default());
            feed.join();
            feed.join();
            let leavers: Vec<_> = (0..2)
                .map(|_| {
                    let feed = Arc::clone(&feed);
                    tokio::spawn(async move { feed.leave_racy() })
                })
                .collect();
            for leaver in leavers {
                leaver.await.unwrap();
            }
            assert_eq!(feed.closes(), 1);
        }
    });
}
// ANCHOR_END: stress
