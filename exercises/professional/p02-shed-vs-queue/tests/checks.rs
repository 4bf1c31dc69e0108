//! Checks for P02: several clients, each on an in-memory connection of its own (HTTP/1 sends
//! one request at a time per connection), against one shared app whose limit is two renders,
//! on the paused clock. The clock moves only once every task is waiting, so "answered at once"
//! is exact: answered before any virtual time passed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use harness::duplex;
use harness::leak::Gauge;
use harness::response::TestResponse;
use harness::watchdog::check;
use p02_shed_vs_queue::{App, RENDER_TIME, app, serve_connection};
use tokio::io::AsyncWriteExt;
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
             with a timeout (which can come later than its setting: tower's `timeout` starts \
             its clock only once the layers below it are ready)",
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
        // An HTTP date is judged against the real clock (the paused one is tokio's only).
        let now = SystemTime::now();
        let valid = retry_after.is_some_and(|value| {
            value.parse::<u64>().is_ok_and(|seconds| seconds > 0)
                || http_date(value).is_some_and(|date| later_second(date, now))
        });
        assert!(
            valid,
            "the 503 carries Retry-After {retry_after:?}: without a delay to honour, clients \
             and load balancers retry at once, into the same overload. Say when to come back: \
             a number of seconds (`Retry-After: 1`), or an HTTP date in the future \
             (`Sun, 06 Nov 2044 08:49:37 GMT`; a date already past means \"now\")"
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

/// Two clients hang up while their invoices render (hyper then drops their requests); once
/// those renders are gone, two new requests at once are both rendered.
#[test]
fn a_client_that_leaves_mid_render_gives_its_slot_back() {
    check(HANG).paused(|| async {
        let renders = Gauge::new();
        let app = app(LIMIT, renders.clone());
        let mut leaving = Vec::new();
        for id in 1..=LIMIT {
            let app = app.clone();
            let (mut client, _server) = duplex::raw(|io| serve_connection(io, app));
            let request = format!("GET /invoices/{id}.pdf HTTP/1.1\r\nhost: invoiced\r\n\r\n");
            client.write_all(request.as_bytes()).await.unwrap();
            leaving.push(client);
        }
        assert!(
            renders.settles_to(LIMIT, RENDER_TIME / 2).await,
            "two clients asked for an invoice and {} renders started: requests within the limit \
             must be rendered",
            renders.live()
        );
        // The portal's client gives up: it closes its connections mid-render.
        drop(leaving);
        assert!(
            renders.settles_to(0, 2 * RENDER_TIME).await,
            "two clients hung up mid-render and {} renders were still in progress long after",
            renders.live()
        );
        let later: Vec<_> = (3..3 + LIMIT as u32).map(|id| invoice(&app, id)).collect();
        for request in later {
            let (response, _) = answered(request).await;
            assert_eq!(
                response.status.as_u16(),
                200,
                "two clients hung up mid-render, nothing was rendering any more, and of {LIMIT} \
                 new requests at once one was answered {}: the slots of the abandoned renders \
                 were never given back. hyper drops a request whose client has gone, so code \
                 after its `.await`s never runs: give the slot back in a value's drop (a \
                 semaphore permit), which runs however the request ends",
                response.status
            );
        }
    });
}

/// Two apps in one process (a test, a second listener) each have their own limit: with the
/// first one's renders all in progress, the second still renders up to its own limit.
#[test]
fn every_app_has_a_limit_of_its_own() {
    check(HANG).paused(|| async {
        let busy = Gauge::new();
        let first = app(LIMIT, busy.clone());
        let _in_flight: Vec<_> = (1..=LIMIT as u32).map(|id| invoice(&first, id)).collect();
        assert!(
            busy.settles_to(LIMIT, RENDER_TIME / 2).await,
            "two clients asked the first app for an invoice and {} renders started: requests \
             within the limit must be rendered",
            busy.live()
        );
        let second = app(LIMIT, Gauge::new());
        let requests: Vec<_> = (3..3 + LIMIT as u32)
            .map(|id| invoice(&second, id))
            .collect();
        for request in requests {
            let (response, _) = answered(request).await;
            assert_eq!(
                response.status.as_u16(),
                200,
                "two apps were built, each with a limit of {LIMIT}; the first was rendering \
                 {LIMIT} invoices, the second nothing, and of {LIMIT} requests to the second \
                 one was answered {}: the two apps share one limit. The limit belongs to the \
                 app `app` builds (one per app, shared by every connection that serves it), \
                 not to the process: a `static` is shared by every app, and the first call's \
                 `max_renders` wins",
                response.status
            );
        }
    });
}

/// Parses an HTTP date in the format servers send (IMF-fixdate, RFC 9110 §5.6.7), such as
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(value: &str) -> Option<SystemTime> {
    let fields: Vec<&str> = value.split(' ').collect();
    let [weekday, day, month, year, time, "GMT"] = fields[..] else {
        return None;
    };
    if weekday.len() != 4 || !weekday.ends_with(',') {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let clock: Vec<i64> = time
        .split(':')
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let [hours, minutes, seconds] = clock[..] else {
        return None;
    };
    // Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let since_epoch = days * 86_400 + hours * 3_600 + minutes * 60 + seconds;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(since_epoch).ok()?))
}

/// Whether `date` (whole seconds) names a later second than `now`'s.
fn later_second(date: SystemTime, now: SystemTime) -> bool {
    let seconds = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    seconds(date) > seconds(now)
}
