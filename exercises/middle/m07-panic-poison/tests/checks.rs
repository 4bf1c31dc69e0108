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

/// A batch whose second count is empty: no whole number either.
const EMPTY_COUNT_BATCH: &str = "/record?home=1&pricing=";

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

/// A rejected batch leaves no trace: the totals are those of the good batches only, a page
/// recorded at 0 before it included.
#[test]
fn a_rejected_batch_changes_nothing() {
    check(HANG).real(|| async {
        let server = start().await;
        for good in ["/record?blog=0", "/record?home=3&pricing=1"] {
            let mut conn = server.connect().await;
            conn.get(good).await.unwrap();
        }
        let _ = send_bad_batch(&server).await;
        // A count left empty is no whole number either.
        let mut conn = server.connect().await;
        let _ = conn.get(EMPTY_COUNT_BATCH).await;
        let mut conn = server.connect().await;
        let count = expect_ok("`GET /count`", conn.get("/count").await).text();
        assert_eq!(
            count, "batches=2 blog=0 home=3 pricing=1\n",
            "two good batches (blog=0; home=3, pricing=1) and two rejected ones (home=2, about=1, \
             pricing=lots; home=1, pricing=) were sent; the totals must be exactly those of the \
             good batches: no `about`, and `blog=0` still there. A batch that stopped halfway \
             through its update left part of what it had applied in the tally (or a page it had \
             created), or an undo removed more than the batch had added"
        );
    });
}

/// The batches of [`a_count_too_big_for_its_total_takes_nothing_down`], in order, after
/// `home=3&pricing=1`: an overflow in the first pair, one in a later pair, one from a page
/// named twice in the same batch, and a count too long for a `u64` at all.
const HUGE_BATCHES: [&str; 4] = [
    "home=18446744073709551615",
    "home=5&pricing=18446744073709551615",
    "signup=18446744073709551615&signup=1",
    "pricing=99999999999999999999",
];

/// Counts too big for their totals are no reason to crash either: each batch is answered
/// (rejected whole, or recorded whole with its totals capped at `u64::MAX` or kept exact in a
/// wider integer), and the service goes on counting.
#[test]
fn a_count_too_big_for_its_total_takes_nothing_down() {
    check(HANG).real(|| async {
        let server = start().await;
        let mut conn = server.connect().await;
        conn.get("/record?home=3&pricing=1").await.unwrap();
        // What the tally must hold, exactly, given which batches were accepted.
        let mut expected = Expected::default();
        expected.apply("home=3&pricing=1");
        let mut answers = Vec::new();
        for batch in HUGE_BATCHES {
            let mut conn = server.connect().await;
            let response = conn
                .get(&format!("/record?{batch}"))
                .await
                .unwrap_or_else(|error| {
                    panic!(
                        "`{batch}` (after {answers:?}) got no response at all ({error}): something \
                     panicked while the lock was held, which also poisoned the mutex: an \
                     addition that overflowed its total (a check of each pair against the \
                     total before the batch misses a page named twice), or an `unwrap` of a \
                     count too long for a `u64`. Nothing under the lock may be able to panic"
                    )
                });
            let accepted = response.status.is_success();
            assert!(
                accepted || response.status.is_client_error() || response.status.is_server_error(),
                "`{batch}` was answered {}: reject it with an error status, or record it",
                response.status,
            );
            if accepted {
                expected.apply(batch);
            }
            answers.push(format!("{batch} -> {}", response.status.as_u16()));
        }
        let mut conn = server.connect().await;
        let count = match conn.get("/count").await {
            Ok(count) if count.status == 200 => count.text(),
            outcome => panic!(
                "`GET /count` after {answers:?} got {}: an overflow panicked while the lock \
                 was held and poisoned the mutex, so every later `lock().unwrap()` panics. \
                 Parsing first is not enough when the addition itself can panic",
                match outcome {
                    Ok(count) => format!("{} (`{}`)", count.status, count.text().trim_end()),
                    Err(error) => format!("no response ({error})"),
                },
            ),
        };
        let (capped, exact) = (expected.render(true), expected.render(false));
        let allowed = if capped == exact {
            format!("{:?}", exact.trim_end())
        } else {
            format!(
                "{:?} (totals capped at u64::MAX) or {:?} (totals kept exact)",
                capped.trim_end(),
                exact.trim_end()
            )
        };
        assert!(
            count == capped || count == exact,
            "after `home=3&pricing=1` and {answers:?}, the totals read {:?}; the batches \
             answered 2xx, whole, and nothing else, make {allowed}. A rejected batch that leaves \
             behind the pairs before the one that overflowed is half a batch; a wrapped total is \
             a silent lie",
            count.trim_end(),
        );
    });
}

/// The tally the checks expect, with exact totals.
#[derive(Default)]
struct Expected {
    batches: u64,
    views: std::collections::BTreeMap<String, u128>,
}

impl Expected {
    fn apply(&mut self, batch: &str) {
        self.batches += 1;
        for pair in batch.split('&') {
            let (page, views) = pair
                .split_once('=')
                .expect("the checks' batches have counts");
            *self.views.entry(page.to_owned()).or_default() += views.parse::<u128>().unwrap();
        }
    }

    /// The `/count` line, each total capped at `u64::MAX` or not.
    fn render(&self, capped: bool) -> String {
        let mut line = format!("batches={}", self.batches);
        for (page, &views) in &self.views {
            let views = if capped {
                views.min(u64::MAX.into())
            } else {
                views
            };
            line.push_str(&format!(" {page}={views}"));
        }
        line + "\n"
    }
}
