//! Claims of "Failure isolation": a shared limit lets one slow dependency starve requests that
//! never touch it, a bulkhead per dependency does not; a panic stays inside its task and comes
//! back as a `JoinError`; a supervisor restarts a worker if it, not the worker, owns the
//! queue; a std mutex is poisoned by a panic and tokio's is not. Paused clock, no sockets.

mod support {
    pub mod failure_isolation;
}

use std::sync::Arc;
use std::time::Duration;

use harness::watchdog::check;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

use support::failure_isolation::{CallError, Outbound, supervise};

const HANG: &str = "a call was never bounded: a limit without a timeout?";
const DEPENDENCIES: &[&str] = &["payments", "catalog"];
const CALLER_DEADLINE: Duration = Duration::from_secs(1);
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Payments hangs: four calls to it are stuck, as many as the limit allows. Then one request
/// that only needs the catalog (10 ms) arrives. Returns what that request got, and when.
async fn catalog_while_payments_hangs(outbound: Outbound) -> Option<Duration> {
    let outbound = Arc::new(outbound);
    for _ in 0..4 {
        let outbound = Arc::clone(&outbound);
        tokio::spawn(async move {
            let _ = outbound
                .call("payments", std::future::pending::<()>())
                .await;
        });
    }
    tokio::task::yield_now().await;
    let start = Instant::now();
    let catalog = outbound.call("catalog", tokio::time::sleep(Duration::from_millis(10)));
    match tokio::time::timeout(CALLER_DEADLINE, catalog).await {
        Ok(Ok(())) => Some(start.elapsed()),
        _ => None,
    }
}

// ANCHOR: starve
#[test]
fn a_shared_limit_lets_one_slow_dependency_starve_requests_that_never_touch_it() {
    check(HANG).paused(|| async {
        let shared = Outbound::shared(DEPENDENCIES, 4, CALL_TIMEOUT);
        // Every permit is held by a payments call: the catalog request waits for one until
        // its caller gives up, although the catalog is healthy.
        assert_eq!(catalog_while_payments_hangs(shared).await, None);
    });
}

#[test]
fn a_limit_per_dependency_keeps_the_other_requests_served() {
    check(HANG).paused(|| async {
        let bulkheads = Outbound::per_dependency(DEPENDENCIES, 4, CALL_TIMEOUT);
        let served = catalog_while_payments_hangs(bulkheads).await;
        assert_eq!(served, Some(Duration::from_millis(10)));
    });
}
// ANCHOR_END: starve

#[test]
fn the_per_dependency_timeout_gives_the_slow_dependencys_permits_back() {
    check(HANG).paused(|| async {
        let outbound = Outbound::per_dependency(DEPENDENCIES, 1, CALL_TIMEOUT);
        let start = Instant::now();
        let stuck = outbound.call("payments", std::future::pending::<()>());
        assert_eq!(stuck.await, Err(CallError::TimedOut));
        assert_eq!(start.elapsed(), CALL_TIMEOUT);
        // The permit came back with the timeout: the next call runs at once.
        let next = outbound.call("payments", async { "paid" });
        assert_eq!(next.await, Ok("paid"));
    });
}

// ---- Panics ----

#[test]
fn a_panic_in_a_spawned_task_is_a_join_error_and_the_process_goes_on() {
    check(HANG).paused(|| async {
        let crashed = tokio::spawn(async { panic!("malformed invoice") }).await;
        let error = crashed.unwrap_err();
        assert!(error.is_panic());
        let message = *error.into_panic().downcast::<&str>().unwrap();
        assert_eq!(message, "malformed invoice");
        // The runtime, and every other task on it, carries on.
        assert_eq!(tokio::spawn(async { 2 + 2 }).await.unwrap(), 4);
    });
}

/// A mail worker: sends what it takes from the queue, and panics on a malformed job.
async fn mailer(
    queue: Arc<Mutex<mpsc::Receiver<&'static str>>>,
    sent: mpsc::UnboundedSender<&'static str>,
) {
    loop {
        let Some(job) = queue.lock().await.recv().await else {
            return; // the queue closed: a clean exit
        };
        assert_ne!(job, "malformed", "cannot render this mail");
        sent.send(job).unwrap();
    }
}

#[test]
fn a_worker_that_owns_its_queue_closes_it_when_it_panics() {
    check(HANG).paused(|| async {
        let (jobs, queue) = mpsc::channel(8);
        let (sent, _outbox) = mpsc::unbounded_channel();
        let worker = tokio::spawn(mailer(Arc::new(Mutex::new(queue)), sent));
        jobs.send("malformed").await.unwrap();
        assert!(worker.await.unwrap_err().is_panic());
        // The receiver died with the worker: every later job is refused.
        assert!(jobs.send("welcome").await.is_err());
    });
}

// ANCHOR: restart
#[test]
fn a_supervisor_that_owns_the_queue_restarts_the_worker_and_the_queue_survives() {
    check(HANG).paused(|| async {
        let (jobs, queue) = mpsc::channel(8);
        let (sent, mut outbox) = mpsc::unbounded_channel();
        for job in ["welcome", "malformed", "receipt"] {
            jobs.send(job).await.unwrap();
        }
        drop(jobs);
        let worker = move |queue| mailer(queue, sent.clone());
        let restarts = supervise(queue, worker, 3, Duration::from_secs(1)).await;

        assert_eq!(restarts, Ok(1));
        // The job that crashed the worker is lost; the one after it is sent.
        assert_eq!(outbox.recv().await, Some("welcome"));
        assert_eq!(outbox.recv().await, Some("receipt"));
    });
}

#[test]
fn a_supervisor_gives_up_on_a_crash_loop() {
    check(HANG).paused(|| async {
        let (jobs, queue) = mpsc::channel(8);
        let (sent, _outbox) = mpsc::unbounded_channel();
        for _ in 0..5 {
            jobs.send("malformed").await.unwrap();
        }
        let worker = move |queue| mailer(queue, sent.clone());
        let start = Instant::now();
        let verdict = supervise(queue, worker, 3, Duration::from_secs(1)).await;
        assert!(
            verdict
                .unwrap_err()
                .starts_with("giving up after 3 restarts")
        );
        // Backing off 1 s, 2 s, 3 s between the restarts.
        assert_eq!(start.elapsed(), Duration::from_secs(6));
    });
}
// ANCHOR_END: restart

// ---- Poisoning ----

// ANCHOR: poison
#[test]
fn a_std_mutex_poisoned_by_a_panicking_task_fails_every_later_lock() {
    check(HANG).paused(|| async {
        let ledger = Arc::new(std::sync::Mutex::new(vec![100_i64]));
        let writer = Arc::clone(&ledger);
        let crashed = tokio::spawn(async move {
            let mut entries = writer.lock().unwrap();
            entries.push(-100); // the debit...
            panic!("credit failed"); // ...and never the credit
        });
        assert!(crashed.await.unwrap_err().is_panic());

        // Every later lock reports the panic; the data is still reachable, half updated.
        let poisoned = ledger.lock().unwrap_err();
        assert_eq!(*poisoned.into_inner(), vec![100, -100]);
    });
}

#[test]
fn a_tokio_mutex_is_not_poisoned_and_hides_the_half_update() {
    check(HANG).paused(|| async {
        let ledger = Arc::new(Mutex::new(vec![100_i64]));
        let writer = Arc::clone(&ledger);
        let crashed = tokio::spawn(async move {
            let mut entries = writer.lock().await;
            entries.push(-100);
            panic!("credit failed");
        });
        assert!(crashed.await.unwrap_err().is_panic());

        // The next lock succeeds and sees the debit without its credit, silently.
        assert_eq!(*ledger.lock().await, vec![100, -100]);
    });
}
// ANCHOR_END: poison
