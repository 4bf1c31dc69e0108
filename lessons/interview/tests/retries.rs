//! Retries against a failing upstream: a per-request cap multiplies the load, a retry budget
//! bounds it, and the caller's deadline stops the attempts.
//!
//! Backs R12 of the bank (tower 0.5.3: `tower::retry::Retry`, `TpsBudget`, the budget reqwest
//! 0.13's retry policies use too). Everything runs on the paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use harness::watchdog::check;
use tokio::time::Instant;
use tower::retry::budget::{Budget, TpsBudget};
use tower::retry::{Policy, Retry};
use tower::{Service, ServiceExt};

const HANG: &str = "a retry loop never ended";

/// The upstream is down: every attempt fails after `latency`.
fn failing_upstream(
    attempts: Arc<AtomicUsize>,
    latency: Duration,
) -> impl Service<(), Response = (), Error = &'static str, Future: Send> + Clone {
    tower::service_fn(move |()| {
        attempts.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(latency).await;
            Err::<(), _>("503 from upstream")
        }
    })
}

/// Retries an error up to `left` more times, if the budget (when there is one) allows it.
#[derive(Clone)]
struct RetryErrors {
    left: u32,
    first: bool,
    budget: Option<Arc<TpsBudget>>,
}

impl RetryErrors {
    fn new(left: u32, budget: Option<Arc<TpsBudget>>) -> Self {
        Self {
            left,
            first: true,
            budget,
        }
    }
}

impl Policy<(), (), &'static str> for RetryErrors {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut (), result: &mut Result<(), &'static str>) -> Option<Self::Future> {
        let allowed = self.budget.as_ref().is_none_or(|budget| budget.withdraw());
        (result.is_err() && self.left > 0 && allowed).then(|| {
            self.left -= 1;
            std::future::ready(())
        })
    }

    fn clone_request(&mut self, _: &()) -> Option<()> {
        // Every original request earns the budget a fraction of a retry.
        if std::mem::take(&mut self.first)
            && let Some(budget) = &self.budget
        {
            budget.deposit();
        }
        Some(())
    }
}

/// Sends `requests` requests through a retrying client: how many attempts the upstream saw.
async fn upstream_attempts(requests: usize, budget: Option<Arc<TpsBudget>>) -> usize {
    let attempts = Arc::new(AtomicUsize::new(0));
    let upstream = failing_upstream(attempts.clone(), Duration::from_millis(10));
    for _ in 0..requests {
        let client = Retry::new(RetryErrors::new(2, budget.clone()), upstream.clone());
        assert!(client.oneshot(()).await.is_err());
    }
    attempts.load(Ordering::SeqCst)
}

#[test]
fn two_retries_per_request_triple_the_load_on_a_failing_upstream() {
    check(HANG).paused(|| async {
        assert_eq!(upstream_attempts(100, None).await, 300);
    });
}

#[test]
fn a_retry_budget_bounds_the_extra_load_to_its_percentage_and_reserve() {
    check(HANG).paused(|| async {
        // 20 % of the requests, plus a reserve of one retry per second of its 10 s window.
        let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 1, 0.2));
        let attempts = upstream_attempts(100, Some(budget)).await;
        // Retries do happen (the reserve alone allows ten), but far fewer than 200.
        assert!(
            (110..=100 + 20 + 10).contains(&attempts),
            "{attempts} attempts for 100 requests"
        );
    });
}

#[test]
fn the_callers_deadline_stops_the_attempts() {
    check(HANG).paused(|| async {
        let attempts = Arc::new(AtomicUsize::new(0));
        // Each attempt takes 300 ms; the policy alone would try a hundred times.
        let upstream = failing_upstream(attempts.clone(), Duration::from_millis(300));
        let client = Retry::new(RetryErrors::new(100, None), upstream);
        let start = Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(1), client.oneshot(())).await;
        assert!(outcome.is_err(), "the deadline ended it");
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        // Attempts at 0, 300, 600 and 900 ms; the fourth is dropped at the deadline, and no
        // attempt starts after it.
        assert_eq!(attempts.load(Ordering::SeqCst), 4);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(attempts.load(Ordering::SeqCst), 4);
    });
}
