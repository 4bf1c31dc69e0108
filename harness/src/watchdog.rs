//! Turning a hang into a failure with a message in the lesson's terms.
//!
//! A learner's fix can deadlock, block a worker thread or wait for an event that never comes.
//! Without a watchdog the check would hang, and so would the runner. [`check`] runs the check's
//! body on its own thread and waits for it on the real clock: past the limit, the check fails
//! with "did not finish in N s" plus what such a hang usually means for this exercise. The
//! stuck thread is abandoned; the test binary exits anyway once every check has a verdict.
//!
//! The limit is measured on the real clock even for paused-clock checks: a paused runtime
//! that is idle jumps its clock forward by itself, so only a real-time limit catches a body
//! that spins without ever yielding.

use std::future::Future;
use std::panic;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The real-time limit used when a check does not set its own.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(20);

/// How to run one check: its real-time limit and what a hang means.
#[derive(Debug, Clone)]
pub struct Check {
    limit: Duration,
    on_hang: String,
}

/// Starts describing a check. `on_hang` tells the learner what a hang usually means in this
/// exercise, for example "the handler is still waiting on the spawned work".
pub fn check(on_hang: &str) -> Check {
    Check {
        limit: DEFAULT_LIMIT,
        on_hang: on_hang.to_owned(),
    }
}

impl Check {
    /// Sets the real-time limit after which the check fails as hung.
    pub fn limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// Runs `body` on a current-thread runtime whose clock starts paused.
    ///
    /// Use it with in-memory IO ([`crate::duplex`]): timers then fire in virtual time, in a
    /// deterministic order, and a 30 s timeout costs no real time. Never combine it with real
    /// sockets: the clock would jump while the kernel is still delivering bytes.
    pub fn paused<F, Fut>(self, body: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        self.run(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .expect("building a paused runtime")
                .block_on(body())
        })
    }

    /// Runs `body` on a two-worker runtime with the real clock, for checks against a real
    /// server on loopback. Two workers let a server keep serving while one task misbehaves.
    pub fn real<F, Fut>(self, body: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        self.run(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("building a runtime")
                .block_on(body())
        })
    }

    /// Runs a synchronous `body` under the watchdog, for example a loom model.
    pub fn run<T, F>(self, body: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done_tx, done_rx) = mpsc::channel();
        let name = thread::current().name().unwrap_or("check").to_owned();
        thread::Builder::new()
            .name(name)
            .spawn(move || {
                let outcome = panic::catch_unwind(panic::AssertUnwindSafe(body));
                // The receiver is gone only if the watchdog already gave up on us.
                let _ = done_tx.send(outcome);
            })
            .expect("spawning the check thread");

        match done_rx.recv_timeout(self.limit) {
            Ok(Ok(value)) => value,
            // Re-raise the check's own panic so its message is the one reported.
            Ok(Err(payload)) => panic::resume_unwind(payload),
            Err(_) => panic!(
                "this check did not finish in {} s: {}",
                self.limit.as_secs(),
                self.on_hang
            ),
        }
    }
}
