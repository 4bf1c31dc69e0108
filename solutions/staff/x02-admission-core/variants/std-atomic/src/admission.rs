//! Admission to the report engine: at most `limit` reports run at once, and the limit can be
//! changed while the server runs.
//!
//! Why not a `tokio::sync::Semaphore`: during a database incident the on-call engineer lowers
//! the limit from the admin console, and it must bite at once. A semaphore grows with
//! `add_permits`, but `forget_permits` only removes permits that are free, and in an incident
//! they are all out. A count and a limit, compared on every admission, make a lower limit
//! apply to the very next request, and both numbers go straight to the dashboard.

// One `use` over several lines: the scan reads whole statements, not lines.
use std::{
    fmt,
    sync::atomic::{AtomicUsize, Ordering},
};

/// The shared admission state: one per server, shared by every connection.
///
/// Every ordering is `Relaxed`: the count guards no other memory (a report's data does not
/// travel through it), and read-modify-writes on one atomic always act on its latest value,
/// whatever the ordering. What makes admission exact is that the check and the increment are
/// one such operation, not which ordering it uses.
#[derive(Debug)]
pub struct Admission {
    /// Reports running now.
    in_flight: AtomicUsize,
    /// How many may run at once.
    limit: AtomicUsize,
}

/// A running report's place. Dropping it, however the request ends (answered, failed, or
/// cancelled because the client left), gives the place back.
#[derive(Debug)]
pub struct Permit<'a> {
    admission: &'a Admission,
}

impl Admission {
    pub fn new(limit: usize) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
        }
    }

    /// Admits one more report if fewer than the limit are running; `None` means "full, come
    /// back later".
    ///
    /// The look at the count and the step up are one atomic read-modify-write: `fetch_update`
    /// retries its compare-and-swap with the count it just saw whenever another admission or
    /// release got in first, and gives up only when that fresh count is at the limit.
    pub fn try_admit(&self) -> Option<Permit<'_>> {
        let limit = self.limit();
        self.in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |running| {
                (running < limit).then_some(running + 1)
            })
            .ok()?;
        Some(Permit { admission: self })
    }

    /// Changes the limit for every admission from now on. Reports already running finish;
    /// no new one starts until fewer than the new limit are running.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Reports running now, for the dashboard.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.admission.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// "running/limit", as the dashboard shows it.
impl fmt::Display for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.in_flight(), self.limit())
    }
}
