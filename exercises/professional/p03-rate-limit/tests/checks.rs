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
use p03_rate_limit::{BURST, PER_SECOND, QuotesApi, serve_connection};

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

/// At three moments before the next token (right away, 0.3 s and 0.7 s after the bucket ran
/// dry) the 429 says `Retry-After: 1`: the next token is under a second away, so rounded up it
/// is 1, never 0 (come back now and be refused) nor 2 (wait longer than the limit asks). A
/// client that waits what it was told is served.
#[test]
fn retry_after_says_when_to_come_back() {
    check(HANG).paused(|| async {
        let api = QuotesApi::new();
        let mut conn = connect(&api).await;
        spend_burst(&mut conn).await;
        let mut seconds = 0;
        for (after_ms, step_ms) in [(0, 0), (300, 300), (700, 400)] {
            advance(Duration::from_millis(step_ms)).await;
            let refused = quote(&mut conn).await;
            assert_eq!(
                refused.status, 429,
                "{after_ms} ms after the bucket ran dry it holds less than one token: the request \
                 should be refused"
            );
            seconds = retry_after(&refused);
            assert_eq!(
                seconds,
                1,
                "{after_ms} ms after the bucket ran dry, the next token is {} ms away: \
                 `Retry-After` should be 1 (whole seconds, rounded up), not {seconds}.\n\
                 0 sends the client back before the token is there; 2 makes it wait longer than \
                 the limit asks; rounding to the nearest second says 0 once less than half a \
                 second is left",
                1000 - after_ms
            );
        }
        advance(Duration::from_secs(seconds)).await;
        let response = quote(&mut conn).await;
        assert_eq!(
            response.status, 200,
            "the client waited the `Retry-After` it was given (on tokio's clock) and was refused \
             again.\nA bucket that reads `std::time::Instant` never sees the paused clock move, so \
             no token ever comes back in a check"
        );
    });
}

/// A client that polls every 0.75 s, faster than the rate, still earns one token a second:
/// over 6 s it is served 6 times (5 if rounding eats a sliver). A refill that counts only
/// whole seconds since the last request, and forgets the rest, never gives it one.
#[test]
fn a_client_polling_faster_than_the_rate_still_earns_tokens() {
    check(HANG).paused(|| async {
        let api = QuotesApi::new();
        let mut conn = connect(&api).await;
        spend_burst(&mut conn).await;
        let mut served = 0;
        for _ in 0..8 {
            advance(Duration::from_millis(750)).await;
            if quote(&mut conn).await.status == 200 {
                served += 1;
            }
        }
        assert!(
            served >= 5,
            "a client polling every 0.75 s was served {served} times in the 6 s after the bucket \
             ran dry; at {PER_SECOND} token a second it earned 6.\nThe refill throws away the part \
             of a second that had passed since the last request, so a client that asks more \
             often than once a second never lets a whole second add up (or, if it was served \
             0 times, the bucket reads a clock the paused runtime does not move)"
        );
        assert!(
            served <= 6,
            "a client polling every 0.75 s was served {served} times in the 6 s after the bucket \
             ran dry: at {PER_SECOND} token a second only 6 tokens came back.\nIf every request \
             finds a full bucket, look at which copy of the bucket each request takes its token \
             from"
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
            "one second later (on tokio's clock), a token should be back for any connection: \
             does the bucket read `std::time::Instant`, which the paused clock does not move?"
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

/// A second `QuotesApi` (another listener, or one built on a config reload) has a bucket of
/// its own: building it neither refills the first one nor shares its tokens.
#[test]
fn each_service_has_its_own_bucket() {
    check(HANG).paused(|| async {
        let public = QuotesApi::new();
        let mut conn = connect(&public).await;
        spend_burst(&mut conn).await;
        let partner = QuotesApi::new();
        assert_eq!(
            quote(&mut conn).await.status,
            429,
            "building a second `QuotesApi` refilled the first one's bucket: the bucket is not the \
             service's own (a `static` or a `thread_local!` that `new` resets), so every service \
             built resets everyone's limit"
        );
        let mut other = connect(&partner).await;
        spend_burst(&mut other).await;
        assert_eq!(
            quote(&mut conn).await.status,
            429,
            "the first service's bucket is still empty: no time has passed"
        );
    });
}

/// `main` runs a multi-thread runtime: a connection is served on whichever worker thread picks
/// it up. Here one connection is pinned to one thread and a second to another, on the real
/// clock: the second one gets no more than the tokens that really came back meanwhile.
#[test]
fn the_limit_holds_across_threads() {
    check(HANG).run(|| {
        let api = QuotesApi::new();
        let started = std::time::Instant::now();
        let on_a_thread = |api: QuotesApi| {
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building a runtime");
                runtime.block_on(async {
                    let mut conn = connect(&api).await;
                    let mut served = 0;
                    for _ in 0..BURST {
                        if quote(&mut conn).await.status == 200 {
                            served += 1;
                        }
                    }
                    served
                })
            })
            .join()
            .expect("a serving thread panicked")
        };
        let first = on_a_thread(api.clone());
        assert_eq!(first, BURST, "a full bucket lets the whole burst through");
        let second = on_a_thread(api);
        // Honest on any machine: a slow run gets the tokens its slowness earned.
        let came_back = (started.elapsed().as_secs_f64() * f64::from(PER_SECOND)).floor() as u32;
        assert!(
            second <= came_back,
            "after the burst was spent on one thread, a connection served on another thread got \
             {second} more requests in {:?}, when {came_back} tokens came back.\nEach thread (or each connection) has \
             a bucket of its own (`thread_local!`): the runtime spreads connections over its \
             worker threads, so the limit is multiplied by their number",
            started.elapsed()
        );
    });
}
