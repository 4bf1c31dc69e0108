//! Concurrency inside one task (`join!`, `FuturesUnordered`, `buffer_unordered`) versus tasks
//! of their own (`spawn`, `JoinSet`): who runs in parallel, who is bounded, who is cancelled.
//!
//! Backs R15 of the bank (tokio 1.54, futures 0.3). Futures polled by one task take turns on
//! one thread and are dropped with that task, as a handler is when its client leaves; spawned
//! tasks run on any worker, and outlive their spawner unless a `JoinSet` (or an abort) ties
//! them to it.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use harness::leak::Gauge;
use harness::watchdog::check;
use tokio::task::JoinSet;
use tokio::time::Instant;

const HANG: &str = "a child future or task never finished";
/// How long a check waits for something that cannot happen while a thread is blocked.
const CANNOT_HAPPEN: Duration = Duration::from_millis(300);
const SETTLE: Duration = Duration::from_secs(10);

/// Two children: the first blocks its thread until the second has run. Returns what the first
/// saw. Spawned on two workers they run in parallel; joined in one task they cannot.
fn first_child_sees_the_second(spawn: bool) -> Result<(), RecvTimeoutError> {
    check(HANG).run(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (tx, rx) = mpsc::channel();
            let first = async move { rx.recv_timeout(CANNOT_HAPPEN) };
            let second = async move {
                let _ = tx.send(());
            };
            if spawn {
                let first = tokio::spawn(first);
                tokio::spawn(second);
                first.await.unwrap()
            } else {
                tokio::join!(first, second).0
            }
        })
    })
}

#[test]
fn spawned_tasks_run_in_parallel() {
    assert_eq!(first_child_sees_the_second(true), Ok(()));
}

#[test]
fn joined_futures_take_turns_on_one_thread() {
    assert_eq!(
        first_child_sees_the_second(false),
        Err(RecvTimeoutError::Timeout)
    );
}

#[test]
fn buffer_unordered_keeps_at_most_n_children_in_flight() {
    check(HANG).paused(|| async {
        let in_flight = Gauge::new();
        let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start = Instant::now();
        let done: Vec<u32> = futures::stream::iter(0..10)
            .map(|n| {
                let in_flight = in_flight.clone();
                let most = most.clone();
                async move {
                    let _guard = in_flight.guard();
                    most.fetch_max(in_flight.live(), std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    n
                }
            })
            .buffer_unordered(3)
            .collect()
            .await;
        assert_eq!(done.len(), 10);
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 3);
        // Ten one-second calls, three at a time: four rounds.
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    });
}

#[test]
fn dropping_a_futures_unordered_drops_every_child_at_once() {
    check(HANG).paused(|| async {
        let work = Gauge::new();
        let mut children: FuturesUnordered<_> = (0..5)
            .map(|_| {
                let guard = work.guard();
                async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                }
            })
            .collect();
        // Polled once, every child is started and waiting.
        assert!(
            futures::FutureExt::now_or_never(children.next()).is_none(),
            "all pending"
        );
        assert_eq!(work.live(), 5);
        drop(children); // what happens to them when the handler that owns them is dropped
        assert_eq!(work.live(), 0);
    });
}

#[test]
fn dropping_a_joinset_aborts_its_tasks() {
    check(HANG).paused(|| async {
        let work = Gauge::new();
        let mut set = JoinSet::new();
        for _ in 0..5 {
            let guard = work.guard();
            set.spawn(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            });
        }
        drop(set);
        assert!(work.settles_to(0, SETTLE).await);
    });
}

#[test]
fn dropping_a_join_handle_detaches_the_task() {
    check(HANG).paused(|| async {
        let work = Gauge::new();
        let (finished_tx, finished) = tokio::sync::oneshot::channel();
        let guard = work.guard();
        let handle = tokio::spawn(async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(60)).await;
            finished_tx.send(()).unwrap();
        });
        drop(handle);
        // The task runs to its end for nobody: a minute later it finishes its work.
        finished.await.unwrap();
        assert!(work.settles_to(0, SETTLE).await);
    });
}
