//! Checks for M07: a real server on loopback, one bad batch from the beacon, then the requests
//! that follow it.

use harness::TestResponse;
use harness::server::TestServer;
use harness::watchdog::check;
use m07_panic_poison::{SharedTally, serve};

const HANG: &str = "the server stopped answering; is a request waiting for a lock that is never \
                    released?";

/// A batch whose third count is not a number: `home=2` and `about=1` come first and are valid,
/// and `about` is a page the checks' good batches never mention.
const BAD_BATCH: &str = "/record?home=2&about=1&pricing=lots";

/// A count that fits a `u64` on its own, but not once added to a total that is already 3.
const HUGE_BATCH: &str = "/record?home=18446744073709551615";

async fn start() -> TestServer {
    TestServer::start(|listener| async move {
        let _ = serve(listener, SharedTally::default()).await;
    })
    .await
}

/// Sends the bad batch on a connection of its own (which may not survive it) and waits for
/// whatever comes back: once it has, the server is done with the batch, panic or not.
async fn send_bad_batch(server: &TestServer) -> hyper::Result<TestResponse> {
    let mut conn = server.connect().await;
    conn.get(BAD_BATCH).await
}

/// A request that came after the bad batch: it must be answered, and answered 200.
fn expect_ok(what: &str, outcome: hyper::Result<TestResponse>) -> TestResponse {
    match outcome {
        Err(error) => panic!(
            "{what} after the bad batch got no response at all ({error}): its handler panicked \
             and took the connection down. The bad batch's panic poisoned the mutex, so every \
             later `lock().unwrap()` panics in turn"
        ),
        Ok(response) if response.status != 200 => panic!(
            "{what} after the bad batch answered {} (`{}`), expected 200: a panic caught on the \
             way out still left the mutex poisoned, so every later `lock().unwrap()` panics",
            response.status,
            response.text().trim_end(),
        ),
        Ok(response) => response,
    }
}

/// The bad batch is answered with an HTTP error status, not a connection closed mid-request.
#[test]
fn a_bad_batch_gets_an_error_response() {
    check(HANG).real(|| async {
        let server = start().await;
        let response = send_bad_batch(&server).await.unwrap_or_else(|error| {
            panic!(
                "the server closed the connection without answering the bad batch ({error}): \
                 the handler panicked, and hyper has no catch_unwind, so the panic ended the \
                 connection task and the client got no status at all"
            )
        });
        assert!(
            response.status.is_client_error() || response.status.is_server_error(),
            "a batch with `pricing=lots` was answered {} (`{}`): it was not recorded, so the \
             beacon must be told with an error status",
            response.status,
            response.text().trim_end(),
        );
    });
}

/// After the bad batch, other clients are served as before: a new batch and the totals.
#[test]
fn the_service_keeps_counting_after_a_bad_batch() {
    check(HANG).real(|| async {
        let server = start().await;
        let _ = send_bad_batch(&server).await;
        let mut conn = server.connect().await;
        expect_ok("a good batch", conn.get("/record?home=1").await);
        let mut conn = server.connect().await;
        expect_ok("`GET /count`", conn.get("/count").await);
    });
}

/// A rejected batch leaves no trace: the totals are those of the good batches only.
#[test]
fn a_rejected_batch_changes_nothing() {
    check(HANG).real(|| async {
        let server = start().await;
        let mut conn = server.connect().await;
        conn.get("/record?home=3&pricing=1").await.unwrap();
        let _ = send_bad_batch(&server).await;
        let mut conn = server.connect().await;
        let count = expect_ok("`GET /count`", conn.get("/count").await).text();
        assert_eq!(
            count, "batches=1 home=3 pricing=1\n",
            "one good batch (home=3, pricing=1) and one rejected batch (home=2, about=1, \
             pricing=lots) were sent; the totals must be those of the good batch alone, with no \
             `about` at all. A batch that stopped halfway through its update left in the tally \
             part of what it had already applied (or a page it had created)"
        );
    });
}

/// A count too big for its total is no reason to crash either: the batch is answered (rejected,
/// or recorded with the total capped), and the service goes on counting.
#[test]
fn a_count_too_big_for_its_total_takes_nothing_down() {
    check(HANG).real(|| async {
        let server = start().await;
        let mut conn = server.connect().await;
        conn.get("/record?home=3&pricing=1").await.unwrap();
        let mut conn = server.connect().await;
        let response = conn.get(HUGE_BATCH).await.unwrap_or_else(|error| {
            panic!(
                "`home=18446744073709551615` on a total of 3 got no response at all ({error}): \
                 the addition overflowed, and a `u64` that overflows panics in a debug build. \
                 That panic happened under the lock, so it also poisoned the mutex"
            )
        });
        let mut conn = server.connect().await;
        let count = match conn.get("/count").await {
            Ok(count) if count.status == 200 => count.text(),
            outcome => panic!(
                "`GET /count` after a batch whose count overflowed the total (answered {}) got \
                 {}: the overflow panicked while the lock was held and poisoned the mutex, so \
                 every later `lock().unwrap()` panics. Parsing first is not enough when the \
                 addition itself can panic",
                response.status,
                match outcome {
                    Ok(count) => format!("{} (`{}`)", count.status, count.text().trim_end()),
                    Err(error) => format!("no response ({error})"),
                },
            ),
        };
        if response.status.is_client_error() || response.status.is_server_error() {
            assert_eq!(
                count, "batches=1 home=3 pricing=1\n",
                "the batch `home=18446744073709551615` was rejected ({}), so it must leave no \
                 trace in the totals",
                response.status,
            );
        } else {
            assert!(
                response.status.is_success(),
                "a batch whose count overflows the total was answered {}: reject it with an \
                 error status, or record it",
                response.status,
            );
            assert!(
                count == "batches=2 home=18446744073709551615 pricing=1\n"
                    || count == "batches=2 home=18446744073709551618 pricing=1\n",
                "the batch `home=18446744073709551615` was accepted ({}) on top of home=3, but \
                 the totals read {:?}: an accepted batch is recorded whole, its total capped at \
                 u64::MAX if it does not fit (a wrapped total is a silent lie)",
                response.status,
                count.trim_end(),
            );
        }
    });
}
