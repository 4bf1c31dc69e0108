//! Claims of "Overload policy": a queue that outlasts its callers' deadline does work nobody
//! receives, a queue that knows the deadline sheds instead, and a global limit lets one client
//! take every permit while a per-client cap keeps the others served. Paused clock, no sockets.

mod support {
    pub mod overload_policy;
}

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::future::join_all;
use harness::watchdog::check;
use tokio::time::Instant;

use support::overload_policy::{FairLimit, Policy, Refused, WorkQueue};

const HANG: &str = "a caller waited past its deadline: is the queue bounded by time?";
const SERVICE: Duration = Duration::from_millis(100);
const BUDGET: Duration = Duration::from_millis(250);

/// Five callers arrive together, each willing to wait `BUDGET`; one worker takes `SERVICE`
/// per job. Returns each caller's outcome and when it had it.
async fn burst(queue: &WorkQueue) -> Vec<(Result<(), Refused>, Duration)> {
    let start = Instant::now();
    let calls = (0..5).map(|_| async {
        let outcome = queue.call(BUDGET).await;
        (outcome, start.elapsed())
    });
    join_all(calls).await
}

// ANCHOR: wasted
#[test]
fn a_queue_longer_than_the_callers_deadline_only_does_wasted_work() {
    check(HANG).paused(|| async {
        let queue = WorkQueue::start(Policy::Fifo, 100, SERVICE);
        let outcomes = burst(&queue).await;

        let served = outcomes.iter().filter(|(o, _)| o.is_ok()).count();
        assert_eq!(served, 2, "100 ms and 200 ms fit in the 250 ms budget");
        for (outcome, at) in &outcomes[2..] {
            assert_eq!((outcome, *at), (&Err(Refused::TimedOut), BUDGET));
        }
        // The worker carries on with the three jobs whose callers left at 250 ms: it
        // finishes them at 300, 400 and 500 ms, for nobody.
        tokio::time::sleep(SERVICE * 3).await;
        assert_eq!(queue.wasted.load(Ordering::SeqCst), 3);
    });
}
// ANCHOR_END: wasted

#[test]
fn a_queue_that_knows_the_deadline_sheds_at_once_and_wastes_nothing() {
    check(HANG).paused(|| async {
        let queue = WorkQueue::start(Policy::Deadline, 100, SERVICE);
        let outcomes = burst(&queue).await;

        let served = outcomes.iter().filter(|(o, _)| o.is_ok()).count();
        assert_eq!(served, 2, "the same two are served, as fast");
        for (outcome, at) in &outcomes[2..] {
            // Told at once, with the whole budget left to try another instance.
            assert_eq!((outcome, *at), (&Err(Refused::Shed), Duration::ZERO));
        }
        tokio::time::sleep(SERVICE * 3).await;
        assert_eq!(queue.wasted.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn a_job_whose_caller_left_while_it_waited_is_skipped_by_the_worker() {
    check(HANG).paused(|| async {
        let queue = WorkQueue::start(Policy::Deadline, 100, SERVICE);
        // An unusually slow job (300 ms where 100 ms is usual) arrives first...
        let slow = tokio::spawn({
            let queue = queue.clone();
            async move { queue.call_with(SERVICE * 3, Duration::from_secs(1)).await }
        });
        tokio::task::yield_now().await;
        // ...so admission's estimate for the next one (200 ms) is wrong: its caller leaves
        // at 250 ms, while the worker is still busy with the slow job.
        assert_eq!(queue.call(BUDGET).await, Err(Refused::TimedOut));
        slow.await.unwrap().unwrap();
        // At 300 ms the worker reaches the abandoned job, sees its deadline, and skips it.
        tokio::time::sleep(SERVICE * 2).await;
        assert_eq!(queue.wasted.load(Ordering::SeqCst), 0);

        // The FIFO queue, given the same two jobs, serves the second for nobody.
        let fifo = WorkQueue::start(Policy::Fifo, 100, SERVICE);
        let slow = tokio::spawn({
            let fifo = fifo.clone();
            async move { fifo.call_with(SERVICE * 3, Duration::from_secs(1)).await }
        });
        tokio::task::yield_now().await;
        assert_eq!(fifo.call(BUDGET).await, Err(Refused::TimedOut));
        slow.await.unwrap().unwrap();
        tokio::time::sleep(SERVICE * 2).await;
        assert_eq!(fifo.wasted.load(Ordering::SeqCst), 1);
    });
}

// ANCHOR: fairness
#[test]
fn one_client_can_take_every_permit_of_a_global_limit() {
    let limit = FairLimit::new(4, 4);
    let greedy: Vec<_> = (0..4).map(|_| limit.try_admit("crawler")).collect();
    assert!(greedy.iter().all(Option::is_some));
    // Every other client is shed while the crawler's four requests run.
    assert!(limit.try_admit("checkout").is_none());
}

#[test]
fn a_per_client_limit_keeps_the_other_clients_served() {
    let limit = FairLimit::new(4, 2);
    let greedy: Vec<_> = (0..4).map(|_| limit.try_admit("crawler")).collect();
    let admitted = greedy.iter().filter(|a| a.is_some()).count();
    assert_eq!(admitted, 2, "the crawler gets its share and no more");
    let (checkout, search) = (limit.try_admit("checkout"), limit.try_admit("search"));
    assert!(checkout.is_some() && search.is_some());
    // The global limit still holds: the pool is now full for everyone.
    assert!(limit.try_admit("billing").is_none());
}
// ANCHOR_END: fairness

#[test]
fn a_client_with_nothing_in_flight_is_forgotten() {
    let limit = FairLimit::new(4, 2);
    let first = limit.try_admit("crawler");
    assert!(first.is_some());
    drop(first);
    // The next admission sweeps the crawler's idle entry: the map holds active clients only.
    let _second = limit.try_admit("checkout").unwrap();
    assert_eq!(limit.active_clients(), 1);
}
