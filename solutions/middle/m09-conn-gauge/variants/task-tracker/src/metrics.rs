//! The server's own numbers, scraped from `GET /metrics` by the monitoring system.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::task::TaskTracker;

/// Counters shared by every connection task.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Tracks every connection being served; its length is the `connections_open` gauge.
    pub(crate) connections: TaskTracker,
    /// Connections accepted since the server started.
    pub(crate) accepted: AtomicU64,
    /// Requests answered since the server started.
    pub(crate) requests: AtomicU64,
}

impl Metrics {
    /// Connections being served right now.
    pub fn open_connections(&self) -> u64 {
        self.connections.len() as u64
    }

    /// The body of `GET /metrics`, in the Prometheus text format.
    pub fn render(&self) -> String {
        format!(
            "connections_open {}\nconnections_accepted_total {}\nrequests_total {}\n",
            self.open_connections(),
            self.accepted.load(Ordering::Relaxed),
            self.requests.load(Ordering::Relaxed),
        )
    }
}
