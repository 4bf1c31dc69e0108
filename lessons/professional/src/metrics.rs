//! The template's gauges: connections open, requests in flight, WebSocket sessions, and the
//! runtime's alive tasks. Each gauge moves through a drop guard, so an early return, a `?`, a
//! panic or a cancelled future all give the count back.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Shared by every connection and request: hand out `Arc<Metrics>` clones.
#[derive(Debug, Default)]
pub struct Metrics {
    connections_open: AtomicUsize,
    connections_total: AtomicU64,
    requests_in_flight: AtomicUsize,
    requests_total: AtomicU64,
    websockets_open: AtomicUsize,
}

// ANCHOR: guard
/// Holds one unit of a gauge; dropping it gives the unit back.
#[derive(Debug)]
pub struct GaugeGuard {
    metrics: Arc<Metrics>,
    gauge: fn(&Metrics) -> &AtomicUsize,
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        (self.gauge)(&self.metrics).fetch_sub(1, Ordering::Relaxed);
    }
}
// ANCHOR_END: guard

impl Metrics {
    fn enter(self: &Arc<Self>, gauge: fn(&Metrics) -> &AtomicUsize) -> GaugeGuard {
        gauge(self).fetch_add(1, Ordering::Relaxed);
        GaugeGuard {
            metrics: Arc::clone(self),
            gauge,
        }
    }

    /// One more open connection, until the guard drops.
    pub fn connection(self: &Arc<Self>) -> GaugeGuard {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        self.enter(|m| &m.connections_open)
    }

    /// One more request in flight, until the guard drops.
    pub fn request(self: &Arc<Self>) -> GaugeGuard {
        self.requests_total.fetch_add(1, Ordering::Relaxed);
        self.enter(|m| &m.requests_in_flight)
    }

    /// One more WebSocket session, until the guard drops.
    pub fn websocket(self: &Arc<Self>) -> GaugeGuard {
        self.enter(|m| &m.websockets_open)
    }

    /// Connections being served now.
    pub fn connections_open(&self) -> usize {
        self.connections_open.load(Ordering::Relaxed)
    }

    /// Connections accepted since start.
    pub fn connections_total(&self) -> u64 {
        self.connections_total.load(Ordering::Relaxed)
    }

    /// Requests inside the service stack now.
    pub fn requests_in_flight(&self) -> usize {
        self.requests_in_flight.load(Ordering::Relaxed)
    }

    /// WebSocket sessions open now.
    pub fn websockets_open(&self) -> usize {
        self.websockets_open.load(Ordering::Relaxed)
    }

    // ANCHOR: render
    /// The plain-text page `GET /metrics` serves (Prometheus' text format, without help lines).
    /// Alive tasks come from the runtime itself: a number that creeps up under a steady load
    /// is a task leak.
    pub fn render(&self) -> String {
        let alive_tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        let mut page = String::new();
        let rows: [(&str, u64); 6] = [
            ("connections_open", self.connections_open() as u64),
            (
                "connections_total",
                self.connections_total.load(Ordering::Relaxed),
            ),
            ("requests_in_flight", self.requests_in_flight() as u64),
            (
                "requests_total",
                self.requests_total.load(Ordering::Relaxed),
            ),
            ("websockets_open", self.websockets_open() as u64),
            ("tokio_alive_tasks", alive_tasks as u64),
        ];
        for (name, value) in rows {
            let _ = writeln!(page, "{name} {value}");
        }
        page
    }
    // ANCHOR_END: render
}

// ANCHOR: in_flight
/// Counts requests inside the stack: the guard is taken in `call` and lives in the future,
/// so a finished, failed, panicking or cancelled request all give it back.
#[derive(Clone, Debug)]
pub struct InFlightLayer {
    metrics: Arc<Metrics>,
}
// ANCHOR_END: in_flight

impl InFlightLayer {
    /// Counts into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        InFlightLayer { metrics }
    }
}

impl<S> tower::Layer<S> for InFlightLayer {
    type Service = InFlight<S>;
    fn layer(&self, inner: S) -> InFlight<S> {
        InFlight {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// See [`InFlightLayer`].
#[derive(Clone, Debug)]
pub struct InFlight<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, R> tower::Service<R> for InFlight<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let guard = self.metrics.request();
        let future = self.inner.call(request);
        Box::pin(async move {
            let _in_flight = guard;
            future.await
        })
    }
}
