//! The two isolation tools of the failure-isolation chapter: bulkheads for outbound calls
//! (a limit and a timeout per dependency, or one limit shared by all) and a supervisor that
//! restarts a worker after a panic, within a restart budget.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore, mpsc};

/// Why an outbound call failed.
#[derive(Debug, PartialEq, Eq)]
pub enum CallError {
    /// The dependency did not answer within its own timeout.
    TimedOut,
}

// ANCHOR: bulkheads
/// Outbound calls, each dependency behind a limit and a timeout. Whether dependencies share
/// one limit or get one each is the decision this chapter is about.
pub struct Outbound {
    limits: HashMap<&'static str, Arc<Semaphore>>,
    timeout: Duration,
}

impl Outbound {
    /// One pool of `permits` for every dependency: the common first version.
    pub fn shared(dependencies: &[&'static str], permits: usize, timeout: Duration) -> Self {
        let pool = Arc::new(Semaphore::new(permits));
        let limits = dependencies.iter().map(|d| (*d, Arc::clone(&pool)));
        Self {
            limits: limits.collect(),
            timeout,
        }
    }

    /// A bulkhead per dependency: each gets its own `permits`.
    pub fn per_dependency(
        dependencies: &[&'static str],
        permits: usize,
        timeout: Duration,
    ) -> Self {
        let own = dependencies
            .iter()
            .map(|d| (*d, Arc::new(Semaphore::new(permits))));
        Self {
            limits: own.collect(),
            timeout,
        }
    }

    /// Calls `dependency`: waits for one of its permits, then runs `call` under its timeout.
    /// The caller bounds the whole thing with its own deadline.
    pub async fn call<T>(
        &self,
        dependency: &str,
        call: impl Future<Output = T>,
    ) -> Result<T, CallError> {
        let _permit = self.limits[dependency]
            .acquire()
            .await
            .expect("never closed");
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| CallError::TimedOut)
    }
}
// ANCHOR_END: bulkheads

// ANCHOR: supervisor
/// Runs `worker` on the queue, restarting it after each panic, until the queue closes (a
/// clean exit) or the worker has panicked `max_restarts + 1` times (a crash loop: give up and
/// let whoever supervises the process decide). The receiver lives here, not in the worker, so
/// that a crash does not close the queue.
pub async fn supervise<J, W, F>(
    queue: mpsc::Receiver<J>,
    worker: W,
    max_restarts: usize,
    backoff: Duration,
) -> Result<usize, String>
where
    J: Send + 'static,
    W: Fn(Arc<Mutex<mpsc::Receiver<J>>>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let queue = Arc::new(Mutex::new(queue));
    let mut restarts = 0;
    loop {
        match tokio::spawn(worker(Arc::clone(&queue))).await {
            Ok(()) => return Ok(restarts),
            Err(crash) if crash.is_panic() && restarts < max_restarts => {
                restarts += 1;
                tracing::warn!(restarts, "worker panicked; restarting");
                tokio::time::sleep(backoff * restarts as u32).await;
            }
            Err(crash) => return Err(format!("giving up after {restarts} restarts: {crash}")),
        }
    }
}
// ANCHOR_END: supervisor
