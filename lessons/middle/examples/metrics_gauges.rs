//! Connection metrics without a connection-state hook: gauges held by drop guards in the
//! connection task and in each request's future, and the connection future's `Result`
//! counted by kind.
//!
//! Run it with `cargo run -p lessons-middle --example metrics_gauges`, then:
//!
//! ```console
//! curl http://127.0.0.1:3000/metrics
//! curl http://127.0.0.1:3000/slow & curl http://127.0.0.1:3000/metrics
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

// ANCHOR: guard
/// One unit of a gauge, handed back when the guard is dropped: whatever ends its owner
/// (a return, `?`, a panic, or the owner's future being dropped) ends the count too.
#[derive(Debug)]
#[must_use = "the gauge counts only while the guard is alive"]
pub struct GaugeGuard(Arc<AtomicUsize>);

impl GaugeGuard {
    pub fn new(gauge: &Arc<AtomicUsize>) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(gauge))
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
// ANCHOR_END: guard

/// The server's metrics, cloned into every connection task.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub open_connections: Arc<AtomicUsize>,
    pub in_flight: Arc<AtomicUsize>,
    pub endings: Arc<Endings>,
}

// ANCHOR: endings
/// How connections ended, by kind: the error log as counters.
#[derive(Debug, Default)]
pub struct Endings {
    /// `Ok(())`: the client closed an idle connection, or keep-alive ended normally.
    pub clean: AtomicU64,
    /// The client left in the middle of a request, or before our answer could be written.
    pub client_left: AtomicU64,
    /// The bytes were not HTTP (hyper answered 400 itself).
    pub malformed: AtomicU64,
    /// The header-read timer fired.
    pub timed_out: AtomicU64,
    /// Anything else, such as our service returning `Err`: worth a look.
    pub other: AtomicU64,
}

impl Endings {
    pub fn record(&self, result: &Result<(), hyper::Error>) {
        let counter = match result {
            Ok(()) => &self.clean,
            Err(e) if client_went_away(e) => &self.client_left,
            Err(e) if e.is_parse() || e.is_parse_status() => &self.malformed,
            Err(e) if e.is_timeout() => &self.timed_out,
            Err(e) => {
                tracing::warn!(error = %e, "connection failed");
                &self.other
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A head cut short, or a write that found the peer gone.
fn client_went_away(error: &hyper::Error) -> bool {
    let io_kind = std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    error.is_incomplete_message()
        || matches!(
            io_kind,
            Some(ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted)
        )
}
// ANCHOR_END: endings

/// How long a client may take to send a request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The routes: `/slow` takes a second, `/upload` reads the body, `/metrics` reports.
pub async fn handle(metrics: Metrics, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let text = match request.uri().path() {
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            "slow\n".to_owned()
        }
        "/upload" => match Limited::new(request.into_body(), 64 * 1024).collect().await {
            Ok(body) => format!("{} bytes\n", body.to_bytes().len()),
            Err(_) => {
                let mut response = Response::new(Full::new(Bytes::from("bad upload\n")));
                *response.status_mut() = StatusCode::BAD_REQUEST;
                return response;
            }
        },
        "/metrics" => format!(
            "open_connections {}\nin_flight {}\n",
            metrics.open_connections.load(Ordering::Relaxed),
            metrics.in_flight.load(Ordering::Relaxed),
        ),
        _ => "ok\n".to_owned(),
    };
    Response::new(Full::new(Bytes::from(text)))
}

// ANCHOR: wrapper
/// Serves one connection with `handler` and keeps the metrics right however it ends.
pub async fn serve_tracked<IO, H, Fut>(io: IO, metrics: Metrics, handler: H) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> Fut,
    Fut: Future<Output = Response<Full<Bytes>>>,
{
    // Owned by the connection task: dropped when the task returns, unwinds or is aborted.
    let _open = GaugeGuard::new(&metrics.open_connections);
    let in_flight = Arc::clone(&metrics.in_flight);
    let service = service_fn(move |request| {
        // Created when hyper calls the service, owned by the request's future.
        let guard = GaugeGuard::new(&in_flight);
        let response = handler(request);
        async move {
            let _in_flight = guard;
            Ok::<_, Infallible>(response.await)
        }
    });
    let result = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .await;
    metrics.endings.record(&result);
    result
}
// ANCHOR_END: wrapper

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without a timestamp, so that they read like the book's transcripts.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let metrics = Metrics::default();
    loop {
        let (stream, _peer) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let handler = |request| handle(metrics.clone(), request);
            // The result is already counted in `metrics.endings`.
            let _ = serve_tracked(stream, metrics.clone(), handler).await;
        });
    }
}
