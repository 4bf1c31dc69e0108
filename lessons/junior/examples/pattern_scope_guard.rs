//! Scope guards before `.await`: bookkeeping that must be undone however the request ends
//! (answer, early return, panic, or hyper dropping the handler because the client left) goes
//! into a value whose `Drop` undoes it, created before the first `.await`.
//!
//! Run it: `cargo run -p lessons-junior --example pattern_scope_guard`, then
//! `curl http://127.0.0.1:3000/report`, press Ctrl-C in curl before 5 s,
//! and `curl http://127.0.0.1:3000/metrics`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// What `/metrics` reports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Reports being built right now.
    pub in_flight: AtomicI64,
    /// Reports that were built to the end.
    pub finished: AtomicU64,
}

// ANCHOR: guard
/// Counts one report in flight for as long as it is alive.
pub struct InFlight(Arc<Metrics>);

impl InFlight {
    pub fn enter(metrics: &Arc<Metrics>) -> Self {
        metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(metrics))
    }
}

impl Drop for InFlight {
    // Runs on every way out: return, `?`, panic, and the future being dropped mid-`.await`.
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
// ANCHOR_END: guard

/// Stands for the slow part of the request: a query, an upstream call.
async fn build_report(took: Duration) -> String {
    tokio::time::sleep(took).await;
    "report ready\n".to_owned()
}

// ANCHOR: with_guard
/// Right: the guard exists before the first `.await`.
pub async fn report(metrics: Arc<Metrics>, took: Duration) -> String {
    let _in_flight = InFlight::enter(&metrics);
    let report = build_report(took).await; // the client may leave while we wait here
    metrics.finished.fetch_add(1, Ordering::Relaxed); // only if we got this far
    report
}
// ANCHOR_END: with_guard

// ANCHOR: without_guard
/// Wrong: the decrement sits after an `.await`. If this future is dropped while it waits,
/// the line never runs and `in_flight` stays one too high forever.
pub async fn report_drifting(metrics: Arc<Metrics>, took: Duration) -> String {
    metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let report = build_report(took).await;
    metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    report
}
// ANCHOR_END: without_guard

async fn handle(
    request: Request<Incoming>,
    metrics: Arc<Metrics>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match request.uri().path() {
        "/report" => report(metrics, Duration::from_secs(5)).await,
        _ => format!(
            "in_flight={} finished={}\n",
            metrics.in_flight.load(Ordering::Relaxed),
            metrics.finished.load(Ordering::Relaxed)
        ),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without timestamps or module names, at INFO and above.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000");
    tracing::info!("try: curl http://127.0.0.1:3000/report (Ctrl-C it), then curl .../metrics");
    let metrics = Arc::new(Metrics::default());
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&metrics)));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
