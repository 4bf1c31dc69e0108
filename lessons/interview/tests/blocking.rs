//! What blocking a worker costs, what `block_in_place` changes, and what happens when the
//! blocking pool is full (tokio 1.54).
//!
//! Backs R9 and R13 of the bank. Each check proves that something does *not* happen while a
//! thread is blocked by the check itself: the blocked thread is released only after a short
//! real-time wait has expired, so the outcome cannot depend on timing. The waits cost a few
//! hundred milliseconds; nothing here sleeps and then asserts on what happened meanwhile.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use harness::watchdog::check;
use tokio::runtime::{Builder, Runtime};

const HANG: &str = "a runtime deadlocked: a blocked thread was never released";
/// How long a check waits for something that cannot happen while a thread is blocked.
const CANNOT_HAPPEN: Duration = Duration::from_millis(300);

fn multi_thread(workers: usize) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_task_spawned_just_before_a_worker_blocks_waits_for_it_even_with_an_idle_worker() {
    check(HANG).run(|| {
        multi_thread(2).block_on(async {
            let outcome = tokio::spawn(async {
                let (tx, rx) = mpsc::channel();
                // Spawned from a worker, it lands in that worker's LIFO slot, which the other
                // worker does not steal from.
                tokio::spawn(async move { tx.send(()).unwrap() });
                rx.recv_timeout(CANNOT_HAPPEN) // blocks the worker thread
            })
            .await
            .unwrap();
            assert_eq!(outcome, Err(RecvTimeoutError::Timeout));
        });
    });
}

#[test]
fn block_in_place_hands_the_workers_queue_to_another_thread() {
    check(HANG).run(|| {
        multi_thread(1).block_on(async {
            let outcome = tokio::spawn(async {
                let (tx, rx) = mpsc::channel();
                tokio::spawn(async move { tx.send(()).unwrap() });
                // The only worker blocks, but first gives its queue (and LIFO slot) to a new
                // thread, which runs the task above.
                tokio::task::block_in_place(|| rx.recv_timeout(Duration::from_secs(10)))
            })
            .await
            .unwrap();
            assert_eq!(outcome, Ok(()));
        });
    });
}

#[test]
fn block_in_place_still_blocks_everything_joined_into_the_same_task() {
    check(HANG).run(|| {
        multi_thread(2).block_on(async {
            let (blocked, ()) = tokio::spawn(async {
                let (tx, rx) = mpsc::channel();
                // Two branches of one task: while the first blocks, the second cannot run,
                // block_in_place or not. (A whole HTTP/1 connection is one task like this.)
                tokio::join!(
                    async move { tokio::task::block_in_place(|| rx.recv_timeout(CANNOT_HAPPEN)) },
                    // Runs only once the first branch has given up (its receiver is gone then).
                    async move {
                        let _ = tx.send(());
                    },
                )
            })
            .await
            .unwrap();
            assert_eq!(blocked, Err(RecvTimeoutError::Timeout));
        });
    });
}

/// A runtime whose blocking pool has `threads` threads.
fn with_blocking_pool(threads: usize) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(threads)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn past_max_blocking_threads_spawn_blocking_queues_without_bound_and_without_waiting() {
    check(HANG).run(|| {
        with_blocking_pool(2).block_on(async {
            let (release_tx, release_rx) = gate::pair();
            let (started_tx, started_rx) = mpsc::channel();
            // Far more closures than threads: every spawn returns at once.
            let handles: Vec<_> = (0..1000)
                .map(|n| {
                    let started = started_tx.clone();
                    let release = release_rx.clone();
                    tokio::task::spawn_blocking(move || {
                        started.send(n).unwrap();
                        release.wait();
                    })
                })
                .collect();
            // Two threads: two closures start, and the third does not until one ends.
            let mut first = vec![
                started_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
                started_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            ];
            first.sort_unstable();
            assert_eq!(first, [0, 1]);
            assert_eq!(
                started_rx.recv_timeout(CANNOT_HAPPEN),
                Err(RecvTimeoutError::Timeout)
            );
            release_tx.open();
            for handle in handles {
                handle.await.unwrap();
            }
            assert_eq!(started_rx.try_iter().count(), 998);
        });
    });
}

#[test]
fn tokio_fs_waits_in_the_same_queue_as_spawn_blocking() {
    check(HANG).run(|| {
        with_blocking_pool(1).block_on(async {
            let (release_tx, release_rx) = gate::pair();
            let (started_tx, started_rx) = mpsc::channel();
            let busy = tokio::task::spawn_blocking(move || {
                started_tx.send(()).unwrap();
                release_rx.wait();
            });
            started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            // The pool's only thread is taken: a file-system call waits behind it.
            let metadata = tokio::fs::metadata(env!("CARGO_MANIFEST_DIR"));
            tokio::pin!(metadata);
            assert!(
                tokio::time::timeout(CANNOT_HAPPEN, &mut metadata)
                    .await
                    .is_err()
            );
            release_tx.open();
            assert!(metadata.await.unwrap().is_dir());
            busy.await.unwrap();
        });
    });
}

/// A gate that blocked threads wait on until the check opens it.
mod gate {
    use std::sync::{Arc, Condvar, Mutex};

    #[derive(Clone)]
    pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

    pub struct Opener(Gate);

    pub fn pair() -> (Opener, Gate) {
        let gate = Gate(Arc::new((Mutex::new(false), Condvar::new())));
        (Opener(gate.clone()), gate)
    }

    impl Gate {
        pub fn wait(&self) {
            let (open, changed) = &*self.0;
            let mut open = open.lock().unwrap();
            while !*open {
                open = changed.wait(open).unwrap();
            }
        }
    }

    impl Opener {
        pub fn open(&self) {
            let (open, changed) = &*(self.0).0;
            *open.lock().unwrap() = true;
            changed.notify_all();
        }
    }
}
