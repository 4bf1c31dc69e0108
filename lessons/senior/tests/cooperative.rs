//! Cooperative scheduling (tokio 1.54): `consume_budget` as an optional yield point in a CPU
//! loop, and `select!`'s random branch order.
//!
//! The budget checks run on a current-thread runtime: "the neighbour ran" then means "the busy
//! task yielded", with no second thread to blur it.

use std::cell::Cell;
use std::rc::Rc;

use harness::watchdog::check;
use tokio::sync::oneshot;

const HANG: &str = "a task never yielded its thread";
const ROUNDS: usize = 10_000;

/// Runs `busy` on a current-thread runtime beside a neighbour spawned first, and returns how
/// many steps `busy` had made when the neighbour first got the thread.
fn steps_seen_by_a_neighbour<F>(busy: F) -> usize
where
    F: AsyncFnOnce(Rc<Cell<usize>>) + Send + 'static,
{
    check(HANG).run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            let steps = Rc::new(Cell::new(0));
            let (seen_tx, seen) = oneshot::channel();
            let watched = steps.clone();
            tokio::task::spawn_local(async move {
                let _ = seen_tx.send(watched.get());
            });
            busy(steps).await;
            seen.await.unwrap()
        })
    })
}

// ANCHOR: consume_budget
#[test]
fn consume_budget_lets_a_cpu_loop_yield_once_its_budget_is_spent() {
    let seen = steps_seen_by_a_neighbour(async |steps| {
        let mut checksum = 0u64;
        for n in 0..ROUNDS as u64 {
            tokio::task::coop::consume_budget().await; // yields only when the budget is spent
            checksum = checksum.wrapping_mul(31).wrapping_add(n); // the CPU work of one step
            steps.set(steps.get() + 1);
        }
        std::hint::black_box(checksum);
    });
    assert_eq!(seen, 128, "one yield per 128 steps, not one per step");
}
// ANCHOR_END: consume_budget

#[test]
fn yield_now_gives_the_thread_back_at_every_call() {
    let seen = steps_seen_by_a_neighbour(async |steps| {
        for _ in 0..ROUNDS {
            steps.set(steps.get() + 1);
            tokio::task::yield_now().await;
        }
    });
    assert_eq!(seen, 1);
}

#[test]
fn unconstrained_turns_consume_budget_into_a_no_op() {
    let seen = steps_seen_by_a_neighbour(async |steps| {
        tokio::task::coop::unconstrained(async {
            for _ in 0..ROUNDS {
                steps.set(steps.get() + 1);
                tokio::task::coop::consume_budget().await;
            }
        })
        .await;
        tokio::task::yield_now().await; // the only point where the neighbour can run
    });
    assert_eq!(seen, ROUNDS);
}

// ANCHOR: random_order
#[test]
fn an_unbiased_select_picks_each_ready_branch_some_of_the_time() {
    let (first, second) = check(HANG).run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (mut first, mut second) = (0, 0);
            for _ in 0..ROUNDS {
                tokio::select! {
                    _ = std::future::ready(()) => first += 1,
                    _ = std::future::ready(()) => second += 1,
                }
            }
            (first, second)
        })
    });
    // Each branch is checked first half of the time, so each wins about half the rounds.
    // A third is 33 standard deviations below half of 10,000: a fair coin never gets there.
    assert!(
        first > ROUNDS / 3 && second > ROUNDS / 3,
        "{first} / {second}"
    );
    assert_eq!(first + second, ROUNDS);
}
// ANCHOR_END: random_order
