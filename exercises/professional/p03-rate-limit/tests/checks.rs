//! Checks for P03: the free tier's rate limit, on a paused clock with in-memory connections.
//!
//! Every connection gets a clone of one `QuotesApi`, as `main`'s accept loop does. On the
//! paused clock no time passes between two requests unless the check advances it, so "the
//! sixth request in the same second" and "one second later" are exact.

use std::time::Duration;

use harness::TestResponse;
use harness::duplex;
use harness::server::H1Connection;
use harness::watchdog::check;
use p03_rate_limit::{BURST, QuotesApi, serve_connection};

const HANG: &str =
    "a request was never answered; does the service wait for a token instead of answering 429?";

/// A new client connection to `api`, served by a clone of it.
async fn connect(api: &QuotesApi) -> H1Connection {
    let api = api.clone();
    duplex::http1(move |io| serve_connection(io, api)).await.0
}

async fn quote(conn: &mut H1Connection) -> TestResponse {
    conn.get("/quote?symbol=ACME")
        .await
        .expect("the connection failed instead of answering")
}

/// Spends the whole burst, checking that each request is served.
async fn spend_burst(conn: &mut H1Connection) {
    for n in 1..=BURST {
        let response = quote(conn).await;
        assert_eq!(
            response.status, 200,
            "request {n} of the first {BURST} was refused: a full bucket lets the whole burst through"
        );
    }
}

/// `Retry-After` as whole seconds (the form a token bucket can compute without a clock of
/// dates), or a failure saying what is wrong with it.
fn retry_after(response: &TestResponse) -> u64 {
    let value = response.header("retry-after").unwrap_or_else(|| {
        panic!("a 429 without `Retry-After`: the client cannot know when to come back, so it retries at once, again and again")
    });
    value
        .parse()
        .unwrap_or_else(|_| panic!("`Retry-After: {value}` is not a whole number of seconds"))
}

async fn advance(by: Duration) {
    tokio::time::advance(by).await;
}

/// Five requests in the same instant are served; the next five are refused with 429.
#[test]
fn the_sixth_request_in_a_second_is_refused() {
    check(HANG).paused(|| async {
        let api = QuotesApi::new();
        let mut conn = connect(&api).await;
        spend_burst(&mut conn).await;
        for n in 1..=5 {
            let response = quote(&mut conn).await;
            assert_eq!(
                response.status,
                429,
                "request {} in the same instant was served: the bucket held only {BURST} tokens.\n\
                 If every request finds a full bucket, look at which copy of the bucket each \
                 request takes its token from",
                BURST + n
            );
            retry_after(&response);
        }
    });
}

/// Half a second after the bucket ran dry, the 429 tells the client to come back in one
/// second (rounded up, never down to "now"), and one second later it is served.
#[test]
fn retry_after_says_when_to_come_back() {
    check(HANG).paused(|| async {
        let api = QuotesApi::new();
        let mut conn = connect(&api).await;
        spend_burst(&mut conn).await;
        advance(Duration::from_millis(500)).await;
        let refused = quote(&mut conn).await;
        assert_eq!(
            refused.status, 429,
            "half a token is not a token: the request should be refused"
        );
        let seconds = retry_after(&refused);
        assert_eq!(
            seconds, 1,
            "half a second after the bucket ran dry, the next token is half a second away: \
             `Retry-After` should be 1 (whole seconds, rounded up), not {seconds}"
        );
        advance(Duration::from_secs(seconds)).await;
        let response = quote(&mut conn).await;
        assert_eq!(
            response.status, 200,
            "the client waited the `Retry-After` it was given and was refused again"
        );
    });
}

/// One second after the bucket ran dry, one token is back: one request is served, the next
/// is refused again.
#[test]
fn a_token_comes_back_after_a_second() {
    check(HANG).paused(|| async {
        let api = QuotesApi::new();
        let mut conn = connect(&api).await;
        spend_burst(&mut conn).await;
        assert_eq!(
            quote(&mut conn).await.status,
            429,
            "the bucket should be empty after the burst"
        );
        advance(Duration::from_secs(1)).await;
        assert_eq!(
            quote(&mut conn).await.status,
            200,
            "one second (on tokio's clock) after the bucket ran dry, a token should be back.\n\
             A bucket that reads `std::time::Instant` never sees tokio's clock move: in \
             production that clock is the same, in a test it is paused and advanced by hand"
        );
        assert_eq!(
            quote(&mut conn).await.status,
            429,
            "one second brings back one token, not more"
        );
    });
}

/// The free tier is one bucket for the service: a client that opens a second connection does
/// not get a second burst.
#[test]
fn the_limit_holds_across_connections() {
    check(HANG).paused(|| async {
        let api = QuotesApi::new();
        let mut first = connect(&api).await;
        let mut second = connect(&api).await;
        for _ in 0..3 {
            assert_eq!(
                quote(&mut first).await.status,
                200,
                "the burst should be served"
            );
        }
        for _ in 0..2 {
            assert_eq!(
                quote(&mut second).await.status,
                200,
                "the burst should be served"
            );
        }
        for (name, conn) in [("second", &mut second), ("first", &mut first)] {
            assert_eq!(
                quote(conn).await.status,
                429,
                "{BURST} requests spread over two connections emptied the bucket, yet the {name} \
                 connection was served: each connection has a bucket of its own, so a client \
                 that opens ten connections gets ten times the limit"
            );
        }
        advance(Duration::from_secs(1)).await;
        assert_eq!(
            quote(&mut second).await.status,
            200,
            "one second later, a token should be back for any connection"
        );
        assert_eq!(
            quote(&mut first).await.status,
            429,
            "one token, one request"
        );
    });
}

/// A quiet minute fills the bucket to the burst, not beyond: sixty tokens saved up would let
/// a client fire sixty requests at once.
#[test]
fn a_quiet_minute_does_not_bank_a_burst() {
    check(HANG).paused(|| async {
        let api = QuotesApi::new();
        let mut conn = connect(&api).await;
        advance(Duration::from_secs(60)).await;
        spend_burst(&mut conn).await;
        assert_eq!(
            quote(&mut conn).await.status,
            429,
            "after a quiet minute, request {} in the same instant was served: the bucket kept \
             filling past its capacity of {BURST}, so a client that waits can save up a burst \
             as big as it likes",
            BURST + 1
        );
    });
}
