//! Claims of the chapter "Futures, tasks and the runtime": what polling does, what a task is,
//! how worker threads share work, and when a task gives its thread back.
//!
//! No check here sleeps and then looks: each waits for an event under a generous deadline, and
//! "has not run" is asserted only where the scheduler makes it certain (a one-thread runtime
//! whose only thread is busy, or a task in the LIFO slot of a worker that is blocked).

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use harness::watchdog::check;
use tokio::sync::{mpsc, oneshot};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/poll_by_hand.rs"]
mod poll_by_hand;

use poll_by_hand::{CountingWaker, Steps, handler};

/// Long enough, on the real clock, for anything that is going to happen to have happened.
const GENEROUS: Duration = Duration::from_secs(10);

#[test]
fn a_future_does_nothing_until_polled() {
    check("building a future hung").run(|| {
        let steps = Steps::default();
        let (_send_price, price) = oneshot::channel();

        let future = handler(price, steps.clone());
        assert!(
            steps.all().is_empty(),
            "building the future ran {:?}",
            steps.all()
        );

        // Dropped without a poll: none of its code ever runs.
        drop(future);
        assert!(
            steps.all().is_empty(),
            "dropping the future ran {:?}",
            steps.all()
        );
    });
}

#[test]
fn poll_returns_pending_and_the_waker_asks_for_another_poll() {
    check("polling by hand hung").run(|| {
        let steps = Steps::default();
        let (send_price, price) = oneshot::channel();
        let mut future = pin!(handler(price, steps.clone()));
        let waker = Arc::new(CountingWaker::default());
        let as_waker = Waker::from(Arc::clone(&waker));
        let mut cx = Context::from_waker(&as_waker);

        assert_eq!(future.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(waker.wake_ups(), 0, "woken before the price was sent");

        // What the future waits on calls the waker it was given: "poll me again".
        send_price.send(100).unwrap();
        assert_eq!(waker.wake_ups(), 1);
        assert_eq!(future.as_mut().poll(&mut cx), Poll::Ready(120));
    });
}

#[test]
fn await_passes_pending_up_and_the_next_poll_resumes_where_it_stopped() {
    check("polling by hand hung").run(|| {
        let steps = Steps::default();
        let (send_price, price) = oneshot::channel();
        let mut future = pin!(handler(price, steps.clone()));
        let mut cx = Context::from_waker(Waker::noop());

        // The inner future is pending, so the outer one returns Pending from its `.await`.
        assert_eq!(future.as_mut().poll(&mut cx), Poll::Pending);
        let first = ["handler: started", "with_tax: waiting for the price"];
        assert_eq!(steps.all(), first);

        // Polled again too early: it goes straight back to the same `.await`; no step reruns.
        assert_eq!(future.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(steps.all(), first);

        send_price.send(100).unwrap();
        assert_eq!(future.as_mut().poll(&mut cx), Poll::Ready(120));
        let rest = ["with_tax: got the price", "handler: after its .await"];
        assert_eq!(steps.all(), [&first[..], &rest[..]].concat());
    });
}

#[test]
fn a_spawned_task_runs_to_completion_without_being_awaited() {
    check("the spawned task never ran").paused(|| async {
        let (done_tx, done_rx) = oneshot::channel();
        // The `JoinHandle` is dropped at once: nobody awaits the task, the runtime polls it.
        drop(tokio::spawn(async move {
            tokio::task::yield_now().await;
            done_tx.send("finished").unwrap();
        }));
        assert_eq!(done_rx.await.unwrap(), "finished");
    });
}

// ANCHOR: cooperative
/// A busy task spawns a second task that sets a flag, then checks that flag many times,
/// yielding to the scheduler between checks only if `yield_between_checks` is true.
/// Returns whether the busy task ever saw the flag set.
async fn busy_task_sees_the_other_task(yield_between_checks: bool) -> bool {
    let busy = tokio::spawn(async move {
        let flag = Arc::new(AtomicBool::new(false));
        tokio::spawn({
            let flag = Arc::clone(&flag);
            async move { flag.store(true, Ordering::SeqCst) }
        });

        for _ in 0..100_000 {
            if flag.load(Ordering::SeqCst) {
                return true;
            }
            if yield_between_checks {
                // An `.await` that is not ready hands the thread back to the scheduler.
                tokio::task::yield_now().await;
            }
        }
        false
    });
    busy.await.unwrap()
}
// ANCHOR_END: cooperative

#[test]
fn a_task_that_never_yields_keeps_other_tasks_off_its_thread() {
    check("the current-thread runtime hung").run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // One thread, so only one task runs at a time: the other task runs only when the
        // busy one reaches an `.await` that yields.
        let saw_without_yield = runtime.block_on(busy_task_sees_the_other_task(false));
        let saw_with_yield = runtime.block_on(busy_task_sees_the_other_task(true));
        assert!(
            !saw_without_yield,
            "the other task ran while the busy one never yielded"
        );
        assert!(
            saw_with_yield,
            "the other task never ran although the busy one yielded"
        );
    });
}

/// How the task in [`tasks_run_while_a_task_blocks`] waits for its release.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// A blocking call right on the worker thread.
    Blocking,
    /// The same call inside `tokio::task::block_in_place`.
    BlockInPlace,
    /// The same call on the blocking pool, awaited through `spawn_blocking`.
    SpawnBlocking,
}

/// The number of small tasks the blocking task spawns before it blocks.
const QUEUED: usize = 8;

/// On a runtime with two worker threads, a task spawns `QUEUED` small tasks (they go to its
/// own worker's queue) and then waits for a release in the way `wait` says. Waits until
/// `expected` of the small tasks have run, checks that no other one has, and returns which
/// ones ran while the task was still waiting. Then releases it and lets everything finish.
fn tasks_run_while_a_task_blocks(wait: Wait, expected: usize) -> BTreeSet<usize> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (ran_tx, mut ran_rx) = mpsc::unbounded_channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();

        // Spawned from outside the runtime's threads: it starts on one of the two workers.
        let blocker = tokio::spawn(async move {
            for i in 0..QUEUED {
                let ran_tx = ran_tx.clone();
                // Spawned from a worker: onto that worker's own queue (the last one spawned
                // sits in its LIFO slot, to run next).
                tokio::spawn(async move { ran_tx.send(i).unwrap() });
            }
            match wait {
                Wait::Blocking => release_rx.recv().unwrap(),
                Wait::BlockInPlace => tokio::task::block_in_place(|| release_rx.recv().unwrap()),
                Wait::SpawnBlocking => tokio::task::spawn_blocking(move || release_rx.recv())
                    .await
                    .unwrap()
                    .unwrap(),
            }
        });

        let mut ran = BTreeSet::new();
        while ran.len() < expected {
            let i = tokio::time::timeout(GENEROUS, ran_rx.recv())
                .await
                .unwrap_or_else(|_| panic!("only {ran:?} ran while the task was blocked"))
                .unwrap();
            ran.insert(i);
        }
        // Certain, not timing: a task that cannot run yet cannot have sent anything.
        assert!(
            ran_rx.try_recv().is_err(),
            "more than {expected} small tasks ran while the task was blocked"
        );
        let ran_while_blocked = ran.clone();

        release_tx.send(()).unwrap();
        blocker.await.unwrap();
        while ran.len() < QUEUED {
            ran.insert(ran_rx.recv().await.unwrap());
        }
        ran_while_blocked
    })
}

#[test]
fn other_workers_steal_a_blocked_workers_queue_but_not_its_lifo_slot() {
    check("the blocked worker's queue was never stolen").run(|| {
        let ran = tasks_run_while_a_task_blocks(Wait::Blocking, QUEUED - 1);
        // Every small task but the last one spawned ran on the other worker; the last one
        // sat in the blocked worker's LIFO slot, which no other worker may take.
        assert_eq!(ran, (0..QUEUED - 1).collect());
    });
}

#[test]
fn block_in_place_hands_the_workers_queue_to_another_thread() {
    check("the queue behind block_in_place never ran").run(|| {
        let ran = tasks_run_while_a_task_blocks(Wait::BlockInPlace, QUEUED);
        assert_eq!(ran, (0..QUEUED).collect());
    });
}

#[test]
fn spawn_blocking_keeps_the_worker_free() {
    check("the queue behind spawn_blocking never ran").run(|| {
        let ran = tasks_run_while_a_task_blocks(Wait::SpawnBlocking, QUEUED);
        assert_eq!(ran, (0..QUEUED).collect());
    });
}

/// Messages waiting in the channel before the busy task starts reading.
const MESSAGES: usize = 1_000;

/// On a one-thread runtime, a task spawns a second task and then receives `MESSAGES` messages
/// that are all already in the channel, so every `recv` is ready. Returns how many messages the
/// busy task had received when the second task ran. With `budgeted` false, the loop runs
/// under `tokio::task::coop::unconstrained`, which opts it out of the budget.
fn messages_received_before_the_other_task_ran(budgeted: bool) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..MESSAGES {
            tx.send(i).unwrap();
        }
        drop(tx);

        let received = Arc::new(AtomicUsize::new(0));
        let busy = tokio::spawn({
            let received = Arc::clone(&received);
            async move {
                let other = tokio::spawn({
                    let received = Arc::clone(&received);
                    async move { received.load(Ordering::SeqCst) }
                });
                let drain = async {
                    // No `yield_now` in this loop: every `recv` has a message ready.
                    while rx.recv().await.is_some() {
                        received.fetch_add(1, Ordering::SeqCst);
                    }
                };
                if budgeted {
                    drain.await;
                } else {
                    tokio::task::coop::unconstrained(drain).await;
                }
                other.await.unwrap()
            }
        });
        busy.await.unwrap()
    })
}

#[test]
fn the_coop_budget_makes_a_loop_over_a_ready_channel_yield() {
    check("the current-thread runtime hung").run(|| {
        // 128 ready `recv`s use up the task's budget; the 129th returns Pending, the task
        // yields, and the other task runs.
        assert_eq!(messages_received_before_the_other_task_ran(true), 128);
        // Opted out of the budget, the loop never yields: the other task runs only after it.
        assert_eq!(messages_received_before_the_other_task_ran(false), MESSAGES);
    });
}
