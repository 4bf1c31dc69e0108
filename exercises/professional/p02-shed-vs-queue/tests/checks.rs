//! Checks for P02: several clients, each on an in-memory connection of its own (HTTP/1 sends
//! one request at a time per connection), against one shared app whose limit is two renders,
//! on the paused clock. The clock moves only once every task is waiting, so "answered at once"
//! is exact: answered before any virtual time passed.

use std::time::Duration;

use harness::duplex;
use harness::leak::Gauge;
use harness::response::TestResponse;
use harness::watchdog::check;
use p02_shed_vs_queue::{App, RENDER_TIME, app, serve_connection};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

const LIMIT: usize = 2;
const HANG: &str = "the check never got past waiting on the server; does a request wait for a \
                    render slot that is never given back?";
/// Long enough for anything the server could still do (a queue, a render), bounded so that a
/// request that is never answered fails the check instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(60);

/// One client on a connection of its own asks for an invoice; the task hands back the answer
/// and how long (in virtual time) it took.
fn invoice(app: &App, id: u32) -> JoinHandle<(hyper::Result<TestResponse>, Duration)> {
    let app = app.clone();
    tokio::spawn(async move {
        let (mut client, _server) = duplex::http1(|io| serve_connection(io, app)).await;
        let started = Instant::now();
        let answer = client.get(&format!("/invoices/{id}.pdf")).await;
        (answer, started.elapsed())
    })
}

/// Waits for a client's answer, under [`PATIENCE`].
async fn answered(
    request: JoinHandle<(hyper::Result<TestResponse>, Duration)>,
) -> (TestResponse, Duration) {
    let (answer, took) = timeout(PATIENCE, request)
        .await
        .expect("a request was not answered within a minute")
        .expect("the client task does not panic");
    let response = answer.unwrap_or_else(|err| {
        panic!(
            "the server closed a client's connection without an answer ({err}): a service \
             error reached hyper, which has no response to send for it. An error from the \
             middleware (tower's `Overloaded`) must be turned into a response"
        )
    });
    (response, took)
}

/// Two renders in progress (the limit), then a third client asks. Returns the two requests in
/// flight and the third's answer.
async fn a_third_while_two_render(
    app: &App,
    renders: &Gauge,
) -> (
    Vec<JoinHandle<(hyper::Result<TestResponse>, Duration)>>,
    TestResponse,
    Duration,
) {
    let in_flight: Vec<_> = (1..=LIMIT as u32).map(|id| invoice(app, id)).collect();
    assert!(
        renders.settles_to(LIMIT, RENDER_TIME / 2).await,
        "two clients asked for an invoice and {} renders started: requests within the limit \
         must be rendered",
        renders.live()
    );
    let (third, took) = answered(invoice(app, 3)).await;
    (in_flight, third, took)
}

/// With two renders in progress, a third request is refused with 503 before any time passes.
#[test]
fn a_request_over_the_limit_is_refused_at_once() {
    check(HANG).paused(|| async {
        let renders = Gauge::new();
        let app = app(LIMIT, renders.clone());
        let (_in_flight, third, took) = a_third_while_two_render(&app, &renders).await;
        assert_eq!(
            (third.status.as_u16(), took),
            (503, Duration::ZERO),
            "two renders were in progress (the limit is {LIMIT}); a third request was answered \
             {} after {took:?}. It must be refused with 503 Service Unavailable at once: a \
             request that waits in a queue for a render slot holds the client (and its \
             retries) for nothing, and a refusal that comes after a delay is the same queue \
             with a timeout",
            third.status
        );
    });
}

/// The refusal says when to come back: a `Retry-After` header in seconds (or an HTTP date).
#[test]
fn a_refusal_says_when_to_retry() {
    check(HANG).paused(|| async {
        let renders = Gauge::new();
        let app = app(LIMIT, renders.clone());
        let (_in_flight, third, _) = a_third_while_two_render(&app, &renders).await;
        assert_eq!(
            third.status.as_u16(),
            503,
            "two renders were in progress (the limit is {LIMIT}) and a third request was \
             answered {} instead of 503 Service Unavailable: it waited for a render slot",
            third.status
        );
        let retry_after = third.header("retry-after");
        let valid = retry_after.is_some_and(|value| {
            value.parse::<u64>().is_ok_and(|seconds| seconds > 0) || value.ends_with(" GMT")
        });
        assert!(
            valid,
            "the 503 carries Retry-After {retry_after:?}: without a delay to honour, clients \
             and load balancers retry at once, into the same overload. Say when to come back: \
             `Retry-After: 1` (seconds) or an HTTP date"
        );
    });
}

/// The renders in progress finish normally, and once they are done the server has its whole
/// capacity back: two new requests at once are both rendered.
#[test]
fn renders_in_flight_finish_and_capacity_returns() {
    check(HANG).paused(|| async {
        let renders = Gauge::new();
        let app = app(LIMIT, renders.clone());
        let (in_flight, _third, _) = a_third_while_two_render(&app, &renders).await;
        for (n, request) in in_flight.into_iter().enumerate() {
            let (response, _) = answered(request).await;
            assert_eq!(
                response.status.as_u16(),
                200,
                "render {} of the {LIMIT} in progress when the third request came was answered \
                 {}: refusing the overflow must not cut the work already admitted",
                n + 1,
                response.status
            );
        }
        let later: Vec<_> = (4..4 + LIMIT as u32).map(|id| invoice(&app, id)).collect();
        for request in later {
            let (response, _) = answered(request).await;
            assert_eq!(
                response.status.as_u16(),
                200,
                "the earlier renders were over, and of {LIMIT} new requests at once one was \
                 answered {}: a refused request (or a finished one) did not give its slot back",
                response.status
            );
        }
    });
}
