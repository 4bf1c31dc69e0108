//! The server's own numbers, scraped from `GET /metrics` by the monitoring system.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by every connection task. Each is a lone number read on its own, so
/// `Relaxed` is enough: no other data is published along with them.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Connections being served right now. The autoscaler adds a replica when the average
    /// over the fleet goes above 800, and the deploy waits for it to reach 0 before it stops a
    /// replica.
    pub(crate) open: AtomicU64,
    /// Connections accepted since the server started.
    pub(crate) accepted: AtomicU64,
    /// Requests answered since the server started.
    pub(crate) requests: AtomicU64,
}

impl Metrics {
    /// Connections being served right now.
    pub fn open_connections(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// The body of `GET /metrics`, in the Prometheus text format.
    pub fn render(&self) -> String {
        format!(
            "connections_open {}\nconnections_accepted_total {}\nrequests_total {}\n",
            self.open.load(Ordering::Relaxed),
            self.accepted.load(Ordering::Relaxed),
            self.requests.load(Ordering::Relaxed),
        )
    }
}
