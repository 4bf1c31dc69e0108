//! Admission to the report engine: at most `limit` reports run at once, and the limit can be
//! changed while the server runs.
//!
//! Why not a `tokio::sync::Semaphore`: during a database incident the on-call engineer lowers
//! the limit from the admin console, and it must bite at once. A semaphore grows with
//! `add_permits`, but `forget_permits` only removes permits that are free, and in an incident
//! they are all out. A count and a limit, compared on every admission, make a lower limit
//! apply to the very next request, and both numbers go straight to the dashboard.

use crate::sync::Mutex;
use crate::sync::atomic::{AtomicUsize, Ordering};

/// The shared admission state: one per server, shared by every connection.
#[derive(Debug)]
pub struct Admission {
    /// Reports running now.
    in_flight: AtomicUsize,
    /// How many may run at once.
    limit: AtomicUsize,
    /// Serialises admissions: one look-and-take at a time.
    admitting: Mutex<()>,
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
            admitting: Mutex::new(()),
        }
    }

    /// Admits one more report if fewer than the limit are running; `None` means "full, come
    /// back later".
    pub fn try_admit(&self) -> Option<Permit<'_>> {
        let _one_at_a_time = self.admitting.lock().unwrap();
        let running = self.in_flight.load(Ordering::Acquire);
        if running >= self.limit() {
            return None;
        }
        self.in_flight.store(running + 1, Ordering::Release);
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
        self.admission.in_flight.fetch_sub(1, Ordering::Release);
    }
}
