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
//!
//! Each entry point is generic only in a thin layer that boxes the body: the runtime, the
//! thread and the panic plumbing are compiled once, here, instead of once per check in every
//! checks crate. That is most of what a learner's one-line edit used to recompile.

use std::any::Any;
use std::future::Future;
use std::panic;
use std::pin::Pin;
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

/// A check's async body, made on the check's thread (it need not be `Send`).
type LocalBody = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;
/// A check's synchronous body, with its value type erased.
type AnyBody = Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>;

/// Which runtime an async body runs on.
#[derive(Clone, Copy)]
enum Clock {
    Paused,
    Real,
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
        Fut: Future<Output = ()> + 'static,
    {
        self.block_on(Clock::Paused, Box::new(move || Box::pin(body())));
    }

    /// Runs `body` on a two-worker runtime with the real clock, for checks against a real
    /// server on loopback. Two workers let a server keep serving while one task misbehaves.
    pub fn real<F, Fut>(self, body: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.block_on(Clock::Real, Box::new(move || Box::pin(body())));
    }

    /// Runs a synchronous `body` under the watchdog, for example a loom model.
    pub fn run<T, F>(self, body: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let value = self.run_any(Box::new(move || Box::new(body())));
        *value
            .downcast::<T>()
            .expect("the body's value comes back with its own type")
    }

    fn block_on(self, clock: Clock, body: LocalBody) {
        self.run_any(Box::new(move || {
            let runtime = match clock {
                Clock::Paused => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .start_paused(true)
                    .build()
                    .expect("building a paused runtime"),
                Clock::Real => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("building a runtime"),
            };
            runtime.block_on(body());
            Box::new(())
        }));
    }

    fn run_any(self, body: AnyBody) -> Box<dyn Any + Send> {
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
