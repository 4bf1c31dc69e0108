//! Admission: a spin lock around the look and the step.
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::hint;

#[derive(Debug)]
pub struct Admission {
    busy: AtomicBool,
    in_flight: AtomicUsize,
    limit: AtomicUsize,
}

#[derive(Debug)]
pub struct Permit<'a> {
    admission: &'a Admission,
}

impl Admission {
    pub fn new(limit: usize) -> Self {
        Self {
            busy: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
        }
    }
    fn locked<T>(&self, f: impl FnOnce(&AtomicUsize) -> T) -> T {
        while self
            .busy
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            hint::spin_loop();
        }
        let out = f(&self.in_flight);
        self.busy.store(false, Ordering::Release);
        out
    }
    pub fn try_admit(&self) -> Option<Permit<'_>> {
        let limit = self.limit();
        self.locked(|count| {
            let running = count.load(Ordering::Relaxed);
            if running >= limit {
                return None;
            }
            count.store(running + 1, Ordering::Relaxed);
            Some(Permit { admission: self })
        })
    }
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.admission
            .locked(|count| count.store(count.load(Ordering::Relaxed) - 1, Ordering::Relaxed));
    }
}
