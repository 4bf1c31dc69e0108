//! The two policies of the overload chapter, as small cores: a work queue in front of a worker
//! (plain FIFO, or one that knows each caller's deadline), and an in-flight limit that is
//! either global or also per client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;

/// A job as the worker sees it: when its caller stops waiting, and where the answer goes.
struct Job {
    work: Duration,
    deadline: Instant,
    reply: oneshot::Sender<()>,
}

/// How the queue decides.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Policy {
    /// Accept while there is room; serve in order.
    Fifo,
    /// Refuse at once a job that cannot finish before its caller's deadline, and skip one
    /// whose deadline passed while it waited.
    Deadline,
}

/// Why a job got no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue said no at once: the caller can go elsewhere with its whole budget.
    Shed,
    /// The caller's deadline passed while it waited.
    TimedOut,
}

// ANCHOR: queue
/// One worker serving a bounded queue, `service` per job. `wasted` counts jobs the worker
/// finished for a caller that had already given up: work done, nobody to give it to.
#[derive(Clone)]
pub struct WorkQueue {
    jobs: mpsc::Sender<Job>,
    policy: Policy,
    service: Duration,
    /// Jobs accepted and not finished: queued, plus the one in service.
    outstanding: Arc<AtomicUsize>,
    pub wasted: Arc<AtomicUsize>,
}

impl WorkQueue {
    pub fn start(policy: Policy, capacity: usize, service: Duration) -> Self {
        let (jobs, mut queue) = mpsc::channel::<Job>(capacity);
        let outstanding = Arc::new(AtomicUsize::new(0));
        let wasted = Arc::new(AtomicUsize::new(0));
        let (done, lost) = (Arc::clone(&outstanding), Arc::clone(&wasted));
        tokio::spawn(async move {
            while let Some(job) = queue.recv().await {
                let late = Instant::now() + job.work > job.deadline;
                // Under the deadline policy, a job whose caller will be gone is skipped.
                if !(policy == Policy::Deadline && late) {
                    tokio::time::sleep(job.work).await; // the work itself
                    if job.reply.send(()).is_err() {
                        lost.fetch_add(1, Ordering::SeqCst);
                    }
                }
                done.fetch_sub(1, Ordering::SeqCst);
            }
        });
        Self {
            jobs,
            policy,
            service,
            outstanding,
            wasted,
        }
    }

    /// Submits a job of the usual size on behalf of a caller who waits at most `budget`.
    pub async fn call(&self, budget: Duration) -> Result<(), Refused> {
        self.call_with(self.service, budget).await
    }

    /// Submits a job that takes `work`; admission still estimates with the usual size, as a
    /// real queue must (it cannot know a job's cost before running it).
    pub async fn call_with(&self, work: Duration, budget: Duration) -> Result<(), Refused> {
        let deadline = Instant::now() + budget;
        if self.policy == Policy::Deadline {
            // Its answer comes after every job ahead of it, and its own.
            let ahead = self.outstanding.load(Ordering::SeqCst) as u32;
            if self.service * (ahead + 1) > budget {
                return Err(Refused::Shed);
            }
        }
        let (reply, answer) = oneshot::channel();
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        if self
            .jobs
            .try_send(Job {
                work,
                deadline,
                reply,
            })
            .is_err()
        {
            self.outstanding.fetch_sub(1, Ordering::SeqCst);
            return Err(Refused::Shed);
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Refused::TimedOut),
        }
    }
}
// ANCHOR_END: queue

// ANCHOR: keyed
/// An in-flight limit for the whole server that also caps each client's share of it.
/// `per_client == total` is the plain global limit.
pub struct FairLimit {
    total: Arc<Semaphore>,
    per_client: usize,
    clients: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Both permits of one admitted request; dropping it frees them.
pub struct Admitted {
    _client: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

impl FairLimit {
    pub fn new(total: usize, per_client: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total)),
            per_client,
            clients: Mutex::default(),
        }
    }

    /// Admits or sheds at once. The client's own permit is taken first, so a client at its
    /// cap is refused without touching the shared pool.
    pub fn try_admit(&self, client: &str) -> Option<Admitted> {
        let client = {
            let mut clients = self.clients.lock().unwrap();
            // A client with nothing in flight is forgotten, so the map holds only active
            // clients. The permit is taken under the lock: no other call can forget this
            // client's semaphore between the lookup and the acquire.
            clients.retain(|_, s| s.available_permits() < self.per_client);
            let fresh = || Arc::new(Semaphore::new(self.per_client));
            let semaphore = clients.entry(client.to_owned()).or_insert_with(fresh);
            Arc::clone(semaphore).try_acquire_owned().ok()?
        };
        let total = Arc::clone(&self.total).try_acquire_owned().ok()?;
        Some(Admitted {
            _client: client,
            _total: total,
        })
    }

    /// Clients with a request in flight (or just admitted).
    pub fn active_clients(&self) -> usize {
        self.clients.lock().unwrap().len()
    }
}
// ANCHOR_END: keyed
