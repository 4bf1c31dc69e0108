//! Checks for X02 over the real service, on the paused clock: each client on an in-memory
//! connection of its own (HTTP/1 sends one request at a time per connection), all admitted by
//! one shared `Admission`. The clock moves only once every task waits, so "refused at once"
//! is exact: before any virtual time passed. The race itself is left to the loom models in
//! `tests/loom.rs`: two admissions interleave only on several threads, which nothing here
//! could make certain.

use std::sync::Arc;
use std::time::Duration;

use harness::duplex;
use harness::response::TestResponse;
use harness::watchdog::check;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};
use x02_admission_core::{Admission, REPORT_TIME, serve_connection};

const HANG: &str = "the check never got past waiting on the server: does a report over the limit \
                    wait for a place (a spin or a retry loop that never gives up) instead of \
                    being refused?";

/// Far longer than a report, bounded so that a request that is never answered fails the
/// check instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(60);

/// One dashboard asks for a report on a connection of its own; the task hands back the
/// answer.
fn ask(admission: &Arc<Admission>, name: &str) -> JoinHandle<hyper::Result<TestResponse>> {
    let admission = Arc::clone(admission);
    let path = format!("/reports/{name}");
    tokio::spawn(async move {
        let (mut client, _server) = duplex::http1(move |io| serve_connection(io, admission)).await;
        client.get(&path).await
    })
}

/// Asks for a report and waits for the answer, under [`PATIENCE`]; returns it with the
/// virtual time it took.
async fn answer(admission: &Arc<Admission>, name: &str) -> (TestResponse, Duration) {
    let started = Instant::now();
    let response = timeout(PATIENCE, ask(admission, name))
        .await
        .unwrap_or_else(|_| panic!("the report {name} was not answered within a minute"))
        .expect("the client task does not panic")
        .expect("the server answers instead of closing the connection");
    (response, started.elapsed())
}

/// Waits (in virtual time, well under a report's duration) until `running` reports run.
async fn wait_for_running(admission: &Admission, running: usize) {
    let deadline = Instant::now() + REPORT_TIME / 4;
    while admission.in_flight() != running {
        assert!(
            Instant::now() < deadline,
            "{running} report(s) should be running, and the dashboard gauge shows {}: a report \
             within the limit must be admitted, and every admitted report counted",
            admission.in_flight()
        );
        sleep(Duration::from_millis(1)).await;
    }
}

fn assert_refused(response: &TestResponse, took: Duration, when: &str) {
    assert_eq!(
        response.status, 503,
        "a report {when} must be refused with 503 Service Unavailable"
    );
    assert_eq!(
        response.header("retry-after"),
        Some("1"),
        "a refusal {when} must carry `Retry-After: 1`, which the dashboard obeys"
    );
    assert_eq!(
        took,
        Duration::ZERO,
        "a report {when} must be refused at once, not after waiting for a place"
    );
}

fn assert_served(response: &TestResponse, when: &str) {
    assert_eq!(
        response.status,
        200,
        "a report {when} must be admitted and run (answered {}: {:?})",
        response.status,
        response.text()
    );
}

/// With the one place taken, a second report is refused at once with 503 and `Retry-After`;
/// once the first report has finished, the refused dashboard's retry is admitted, and so is
/// the next one: every place given back is really back.
#[test]
fn over_the_limit_is_refused_and_a_freed_place_is_reused() {
    check(HANG).paused(|| async {
        let admission = Arc::new(Admission::new(1));
        let first = ask(&admission, "revenue");
        wait_for_running(&admission, 1).await;
        let (refused, took) = answer(&admission, "churn").await;
        assert_refused(&refused, took, "while the limit's worth of reports run");
        let first = timeout(PATIENCE, first)
            .await
            .expect("the first report ends");
        assert_served(&first.unwrap().unwrap(), "within the limit");
        for attempt in ["the refused report's retry", "the report after that"] {
            let (response, _) = answer(&admission, "churn").await;
            assert_served(
                &response,
                &format!("({attempt}) once the running one finished"),
            );
        }
        assert_eq!(
            admission.in_flight(),
            0,
            "every report has finished, and the gauge still counts some as running: a place \
             taken and never given back (a refused report counted, and not uncounted?)"
        );
    });
}

/// The on-call engineer lowers the limit from 2 to 1 while two reports run: a third is
/// refused, and stays refused while one report is still running; once both finished it is
/// admitted. Raising the limit again admits a second report beside it at once.
#[test]
fn a_limit_changed_at_runtime_applies_to_the_next_request() {
    check(HANG).paused(|| async {
        let admission = Arc::new(Admission::new(2));
        let running = [ask(&admission, "revenue"), ask(&admission, "churn")];
        wait_for_running(&admission, 2).await;
        admission.set_limit(1);
        let (refused, took) = answer(&admission, "funnel").await;
        assert_refused(
            &refused,
            took,
            "after the limit was lowered below those running",
        );
        for report in running {
            let response = timeout(PATIENCE, report).await.expect("a report ends");
            assert_served(
                &response.unwrap().unwrap(),
                "admitted before the limit changed",
            );
        }
        let first = ask(&admission, "funnel");
        wait_for_running(&admission, 1).await;
        let (refused, took) = answer(&admission, "cohorts").await;
        assert_refused(&refused, took, "beyond the lowered limit of one");
        admission.set_limit(2);
        let second = ask(&admission, "cohorts");
        wait_for_running(&admission, 2).await;
        for report in [first, second] {
            let response = timeout(PATIENCE, report).await.expect("a report ends");
            assert_served(&response.unwrap().unwrap(), "after the limit was raised");
        }
    });
}
