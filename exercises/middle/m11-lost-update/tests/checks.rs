//! Checks for M11 over a real server. The race itself is caught by the loom models in
//! `tests/loom.rs`: a lost view on a real server shows up only now and then, so no check here
//! relies on one. This check pins down what a correct counter must keep doing.

use std::sync::Arc;
use std::time::Duration;

use harness::server::TestServer;
use harness::watchdog::check;
use m11_lost_update::{ViewCounter, serve};

const HANG: &str = "the server stopped answering: does `record` take the write lock while it \
                    still holds the read lock?";

/// One reader views one article three times and another once: the dashboard shows 3 and 1,
/// and 0 for an article nobody opened.
#[test]
fn views_are_counted_per_article() {
    // Seven requests on loopback take milliseconds; a `record` that waits for itself never
    // finishes, and five seconds is long enough to be sure of that.
    check(HANG).limit(Duration::from_secs(5)).real(|| async {
        let server = TestServer::start(|listener| async move {
            let _ = serve(listener, Arc::new(ViewCounter::new())).await;
        })
        .await;
        let mut reader = server.connect().await;
        for slug in ["budget", "budget", "budget", "transfers"] {
            reader.get(&format!("/articles/{slug}")).await.unwrap();
        }
        for (slug, expected) in [("budget", 3), ("transfers", 1), ("obituaries", 0)] {
            let stats = reader.get(&format!("/stats/{slug}")).await.unwrap();
            assert_eq!(
                stats.text(),
                format!("views={expected}\n"),
                "views of `{slug}`, one after another on one connection: the count must be \
                 exact (0 for an article never opened)"
            );
        }
    });
}
