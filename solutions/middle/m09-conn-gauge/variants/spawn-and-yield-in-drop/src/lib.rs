//! `forecast`: a small weather API, with a gauge of open connections.
//!
//! `GET /forecast` answers today's forecast; `GET /metrics` answers the server's own numbers
//! ([`Metrics`]) for the monitoring system. The autoscaler and the deploy both read the
//! `connections_open` gauge.

pub mod metrics;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use metrics::Metrics;

/// Accepts connections until `shutdown` completes, one task per connection. On shutdown the
/// connection tasks are dropped with the `JoinSet`: every connection still open is closed.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let metrics = Arc::clone(&metrics);
        connections.spawn(async move {
            if let Err(err) = serve_connection(stream, metrics).await {
                eprintln!("connection from {peer}: {err}");
            }
        });
        // Reap finished tasks so the set does not grow with every connection ever served.
        while connections.try_join_next().is_some() {}
    }
}

/// Serves one accepted connection until it closes, keeping the metrics up to date.
pub async fn serve_connection<IO>(io: IO, metrics: Arc<Metrics>) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    metrics.accepted.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard::new(Arc::clone(&metrics));
    let service = {
        let metrics = Arc::clone(&metrics);
        service_fn(move |request| handle(request, Arc::clone(&metrics)))
    };
    http1::Builder::new()
        // Closes connections that send their headers too slowly or sit idle (30 s).
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), service)
        .await?;
    Ok(())
}

/// Counts one open connection for as long as it lives.
struct OpenGuard(Arc<Metrics>);

impl OpenGuard {
    fn new(metrics: Arc<Metrics>) -> Self {
        metrics.open.fetch_add(1, Ordering::Relaxed);
        Self(metrics)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        // Don't do work in a destructor: hand the bookkeeping to the runtime.
        let metrics = Arc::clone(&self.0);
        tokio::spawn(async move {
            // Let the connection's own teardown finish first.
            tokio::task::yield_now().await;
            metrics.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    metrics: Arc<Metrics>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    metrics.requests.fetch_add(1, Ordering::Relaxed);
    let (status, body) = match request.uri().path() {
        "/forecast" => (StatusCode::OK, "sunny, 21 °C\n".to_owned()),
        "/metrics" => (StatusCode::OK, metrics.render()),
        _ => (StatusCode::NOT_FOUND, "no such page\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}
