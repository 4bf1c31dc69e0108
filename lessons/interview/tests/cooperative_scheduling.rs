//! Cooperative scheduling (tokio 1.54): a task gives its thread back only when an `.await`
//! returns `Pending`.
//!
//! Backs R14 of the bank. A future that is always ready never yields, however many `.await`s
//! it goes through; tokio's own resources (channels, sockets, timers) spend a budget of 128
//! operations per poll of a task and then answer `Pending` once, so a busy loop on them still
//! lets other tasks in; `select!` with `biased;` polls its branches in order, so an
//! always-ready first branch starves the others, and the budget does not help: once it is
//! spent, `select!` yields before polling any branch, then starts from the first one again.
//!
//! Every check runs on a current-thread runtime: "another task ran" then means "this one
//! yielded", with no second thread to blur it.

use std::cell::Cell;
use std::rc::Rc;

use harness::watchdog::check;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

const HANG: &str = "a task never yielded its thread";
const ROUNDS: usize = 10_000;

/// Runs `busy` on a current-thread runtime, with a second task spawned first that reports how
/// far `busy` had counted when the second task first got the thread.
fn count_seen_by_a_neighbour<F>(busy: F) -> usize
where
    F: AsyncFnOnce(Rc<Cell<usize>>) + Send + 'static,
{
    check(HANG).run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            let counter = Rc::new(Cell::new(0));
            let (seen_tx, seen) = oneshot::channel();
            let watched = counter.clone();
            tokio::task::spawn_local(async move {
                let _ = seen_tx.send(watched.get());
            });
            busy(counter).await;
            seen.await.unwrap()
        })
    })
}

#[test]
fn a_future_that_is_always_ready_never_yields() {
    let seen = count_seen_by_a_neighbour(async |counter| {
        for _ in 0..ROUNDS {
            std::future::ready(()).await;
            counter.set(counter.get() + 1);
        }
        tokio::task::yield_now().await; // the only point where the neighbour can run
    });
    assert_eq!(
        seen, ROUNDS,
        "the neighbour ran only once the loop was over"
    );
}

#[test]
fn a_busy_loop_on_a_tokio_channel_yields_when_its_budget_is_spent() {
    let seen = count_seen_by_a_neighbour(async |counter| {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for n in 0..ROUNDS {
            tx.send(n).unwrap();
        }
        // Every `recv` is ready at once; tokio still makes the 129th return `Pending`.
        for _ in 0..ROUNDS {
            rx.recv().await.unwrap();
            counter.set(counter.get() + 1);
        }
    });
    assert_eq!(seen, 128, "tokio 1.54's budget is 128 operations per poll");
}

#[test]
fn biased_select_never_picks_a_later_branch_while_the_first_is_ready() {
    let (mut first, mut second) = (0, 0);
    check(HANG).run(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            for _ in 0..ROUNDS {
                tokio::select! {
                    biased;
                    _ = std::future::ready(()) => first += 1,
                    _ = std::future::ready(()) => second += 1,
                }
            }
        });
        assert_eq!((first, second), (ROUNDS, 0));
    });
}

/// Drains a queue of `ROUNDS` messages in a biased `select!` against a shutdown token that is
/// already cancelled; `shutdown_first` puts the shutdown branch first. How many messages were
/// handled before the loop stopped.
fn handled_before_shutdown(shutdown_first: bool) -> usize {
    check(HANG).run(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (tx, mut rx) = mpsc::unbounded_channel();
            for n in 0..ROUNDS {
                tx.send(n).unwrap();
            }
            let shutdown = CancellationToken::new();
            shutdown.cancel(); // asked to stop, with the queue full
            let mut handled = 0;
            loop {
                if shutdown_first {
                    tokio::select! {
                        biased;
                        _ = shutdown.cancelled() => break,
                        Some(_) = rx.recv() => handled += 1,
                    }
                } else {
                    tokio::select! {
                        biased;
                        Some(_) = rx.recv() => handled += 1,
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
            handled
        })
    })
}

#[test]
fn a_biased_select_sees_its_shutdown_only_once_a_busy_queue_is_empty() {
    // When the budget is spent, `select!` yields before polling any branch, and starts from
    // the first branch again: the budget does not rescue a starved later branch.
    assert_eq!(handled_before_shutdown(false), ROUNDS);
}

#[test]
fn a_biased_select_with_the_shutdown_branch_first_stops_at_once() {
    assert_eq!(handled_before_shutdown(true), 0);
}
