//! Claims of the deadlines-and-retries chapter: a deadline that travels with the call, retries
//! that multiply across layers, a budget that bounds them, jitter that spreads them.
//!
//! Upstreams are in-process functions on the paused clock: what is checked is the arithmetic
//! of time and attempts, which needs no sockets.

mod support {
    pub mod deadlines;
}

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::watchdog::check;
use hyper::header::HeaderMap;
use hyper::{Method, StatusCode};
use support::deadlines::{
    BUDGET, Budgeted, Call, Random, Upstream, call_before, deadline_from, full_jitter, with_tries,
};
use tokio::time::Instant;
use tower::ServiceExt;
use tower::retry::Retry;
use tower::retry::budget::TpsBudget;

const HANG: &str = "a call never returned: is a retry loop ignoring its deadline?";

fn get() -> Call {
    Call {
        method: Method::GET,
        headers: HeaderMap::new(),
    }
}

fn post(key: Option<&str>) -> Call {
    let mut headers = HeaderMap::new();
    if let Some(key) = key {
        headers.insert("idempotency-key", key.parse().unwrap());
    }
    Call {
        method: Method::POST,
        headers,
    }
}

/// What the bottom of a chain saw: when each attempt started, and the budget it was sent.
type Seen = Arc<Mutex<Vec<(Duration, u64)>>>;

/// An upstream that takes `work` and then answers `status`, recording each attempt.
fn recording(start: Instant, work: Duration, status: StatusCode) -> (Upstream, Seen) {
    let seen = Seen::default();
    let record = seen.clone();
    let upstream: Upstream = Arc::new(move |call: Call| {
        let budget = call.headers[BUDGET].to_str().unwrap().parse().unwrap();
        record.lock().unwrap().push((start.elapsed(), budget));
        Box::pin(async move {
            tokio::time::sleep(work).await;
            status
        })
    });
    (upstream, seen)
}

/// A hop: reads its deadline from the caller, works for `work`, then calls `next` with what
/// is left.
fn hop(work: Duration, next: Upstream) -> Upstream {
    Arc::new(move |call: Call| {
        let next = next.clone();
        Box::pin(async move {
            let deadline = deadline_from(&call.headers, Duration::from_secs(1));
            tokio::time::sleep(work).await;
            call_before(&next, get(), deadline)
                .await
                .unwrap_or(StatusCode::GATEWAY_TIMEOUT)
        })
    })
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn each_hop_sends_its_upstream_the_budget_that_is_left() {
    check(HANG).paused(|| async {
        let start = Instant::now();
        let (bottom, seen) = recording(start, ms(10), StatusCode::OK);
        let (middle, seen_by_middle) = recording(start, ms(0), StatusCode::OK);
        let b = hop(ms(300), bottom);
        // The middle hop is observed on its way in: a recording wrapper in front of it.
        let b_observed: Upstream = Arc::new(move |call: Call| {
            let seen = middle(call.clone());
            let b = b.clone();
            Box::pin(async move {
                seen.await;
                b(call).await
            })
        });
        let a = hop(ms(200), b_observed);
        let mut edge = get();
        edge.headers.insert(BUDGET, 1000u64.into());
        assert_eq!(a(edge).await, StatusCode::OK);
        // A spent 200 ms of the caller's 1000, so B was sent 800; B spent 300, so the bottom
        // was sent 500.
        assert_eq!(*seen_by_middle.lock().unwrap(), [(ms(200), 800)]);
        assert_eq!(*seen.lock().unwrap(), [(ms(500), 500)]);
    });
}

#[test]
fn no_upstream_attempt_starts_after_the_callers_deadline() {
    check(HANG).paused(|| async {
        let start = Instant::now();
        let (upstream, seen) = recording(start, ms(300), StatusCode::SERVICE_UNAVAILABLE);
        let answer = call_before(&upstream, get(), start + ms(1000)).await;
        assert_eq!(
            answer, None,
            "the call ends as a deadline, not as a late 503"
        );
        assert_eq!(start.elapsed(), ms(1000), "and it ends at the deadline");
        // Attempts at 0, 400 (after 300 ms of work and 100 ms of back-off) and 900 ms, each
        // sent what was left; the fourth would have started at 1300 ms and never did.
        assert_eq!(
            *seen.lock().unwrap(),
            [(ms(0), 1000), (ms(400), 600), (ms(900), 100)]
        );
    });
}

#[test]
fn an_attempt_that_cannot_finish_in_what_is_left_is_not_started() {
    check(HANG).paused(|| async {
        let start = Instant::now();
        let (upstream, seen) = recording(start, ms(300), StatusCode::SERVICE_UNAVAILABLE);
        // The second back-off ends at 900 ms with 5 ms left: too little for any attempt.
        let answer = call_before(&upstream, get(), start + ms(905)).await;
        assert_eq!(answer, None);
        assert_eq!(
            start.elapsed(),
            ms(900),
            "the call ends at once, not at the deadline"
        );
        assert_eq!(*seen.lock().unwrap(), [(ms(0), 905), (ms(400), 505)]);
    });
}

#[test]
fn three_tries_at_each_of_three_layers_make_27_calls_to_the_bottom() {
    check(HANG).paused(|| async {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let bottom: Upstream = Arc::new(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { StatusCode::SERVICE_UNAVAILABLE })
        });
        let gateway = with_tries(with_tries(with_tries(bottom, 3), 3), 3);
        assert_eq!(gateway(get()).await, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(calls.load(Ordering::SeqCst), 27);
    });
}

fn policy(budget: TpsBudget) -> Budgeted {
    Budgeted {
        budget: Arc::new(budget),
        max_attempts: 3,
        attempts: 0,
        random: Arc::new(Mutex::new(Random::seeded(7))),
    }
}

/// Sends `calls` one after another through tower's `Retry` to an upstream that answers 503
/// to everything, and returns how many attempts reached it.
async fn attempts_under_total_failure(policy: Budgeted, calls: Vec<Call>) -> u32 {
    let attempts = Arc::new(AtomicU32::new(0));
    let counted = attempts.clone();
    let upstream = tower::service_fn(move |_: Call| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(StatusCode::SERVICE_UNAVAILABLE) }
    });
    let client = Retry::new(policy, upstream);
    for call in calls {
        let answer = client.clone().oneshot(call).await.unwrap();
        assert_eq!(answer, StatusCode::SERVICE_UNAVAILABLE);
    }
    attempts.load(Ordering::SeqCst)
}

#[test]
fn under_total_failure_a_retry_budget_keeps_attempts_near_requests_times_one_plus_ratio() {
    check(HANG).paused(|| async {
        // 20% of requests may be retried, plus a reserve of 1 retry a second over 10 s.
        let budget = TpsBudget::new(Duration::from_secs(10), 1, 0.2);
        let attempts = attempts_under_total_failure(policy(budget), vec![get(); 1000]).await;
        // Without the budget: 3 attempts each, 3000. With it: 1000 first attempts, 200 retries
        // earned by the deposits, 10 more from the reserve.
        assert_eq!(attempts, 1210);
    });
}

#[test]
fn only_calls_that_may_be_repeated_are_retried() {
    check(HANG).paused(|| async {
        let generous = || policy(TpsBudget::new(Duration::from_secs(10), 100, 1000.0));
        let attempts = |call| attempts_under_total_failure(generous(), vec![call]);
        assert_eq!(attempts(get()).await, 3, "GET is idempotent");
        assert_eq!(
            attempts(post(None)).await,
            1,
            "a bare POST is never sent twice"
        );
        assert_eq!(attempts(post(Some("k1"))).await, 3, "a keyed POST may be");
    });
}

#[test]
fn the_hand_written_loop_does_not_retry_a_bare_post_either() {
    check(HANG).paused(|| async {
        let start = Instant::now();
        let (upstream, seen) = recording(start, ms(10), StatusCode::SERVICE_UNAVAILABLE);
        let answer = call_before(&upstream, post(None), start + ms(1000)).await;
        assert_eq!(answer, Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(seen.lock().unwrap().len(), 1);
    });
}

#[test]
fn full_jitter_spreads_retries_that_failed_together() {
    // 100 clients failed at the same instant and retry for the third time: without jitter all
    // 100 come back at 200 ms exactly; with full jitter they spread over [0, 200 ms).
    let (base, cap) = (ms(25), ms(1000));
    let mut buckets = [0u32; 10]; // 20 ms each
    for client in 0..100 {
        let delay = full_jitter(3, base, cap, &mut Random::seeded(client));
        assert!(delay < ms(200), "{delay:?} is past the exponential bound");
        buckets[(delay.as_millis() / 20) as usize] += 1;
    }
    let busiest = *buckets.iter().max().unwrap();
    assert!(
        busiest <= 20,
        "{buckets:?}: the retries still arrive in a clump"
    );
    assert!(
        buckets.iter().all(|&n| n > 0),
        "{buckets:?}: part of the window is unused"
    );
}
