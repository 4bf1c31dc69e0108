//! A small service written to be tested: the handler is generic over the request body,
//! background work is spawned on a `TaskTracker` the tests can wait on, the upstream can be
//! replaced by a fake, and every timeout runs on tokio's clock.
//!
//! ```console
//! cargo run -p lessons-junior --example testing
//! curl -i http://127.0.0.1:3000/health
//! curl -i -d 'cat.png' http://127.0.0.1:3000/thumbnails     # 202, rendered in the background
//! curl -i http://127.0.0.1:3000/report                      # 504 after 2 s
//! ```
use std::convert::Infallible;
use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tracing_subscriber::EnvFilter;

// ANCHOR: app
/// Where reports come from: an upstream service that takes its time. Tests inject a fake.
pub type Reports = Arc<dyn Fn() -> BoxFuture<'static, String> + Send + Sync>;

/// Everything the handlers share.
pub struct App {
    /// Background renders. Shutdown waits on it; so can a test.
    pub renders: TaskTracker,
    /// Thumbnails rendered so far.
    pub rendered: AtomicU64,
    /// The report upstream, called once per `GET /report`.
    pub reports: Reports,
}

impl Default for App {
    fn default() -> Self {
        Self {
            renders: TaskTracker::new(),
            rendered: AtomicU64::new(0),
            reports: Arc::new(report_upstream),
        }
    }
}

/// Stands for the real report service, which needs 5 s.
fn report_upstream() -> BoxFuture<'static, String> {
    Box::pin(async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "report\n".to_owned()
    })
}

/// Generic over the body: hyper passes `Incoming`, a test can pass `Full<Bytes>`.
pub async fn handle<B>(request: Request<B>, app: Arc<App>) -> Response<Full<Bytes>>
where
    B: Body,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/health") => reply(StatusCode::OK, "ok\n"),
        (&Method::POST, "/thumbnails") => {
            let Ok(body) = Limited::new(request.into_body(), 64 * 1024).collect().await else {
                return reply(StatusCode::PAYLOAD_TOO_LARGE, "image name too long\n");
            };
            if body.to_bytes().is_empty() {
                return reply(StatusCode::BAD_REQUEST, "which image?\n");
            }
            let worker = Arc::clone(&app);
            app.renders.spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await; // stands for the rendering
                worker.rendered.fetch_add(1, Ordering::Relaxed);
            });
            reply(StatusCode::ACCEPTED, "queued\n")
        }
        (&Method::GET, "/report") => {
            // The upstream gets 2 s to answer.
            match tokio::time::timeout(Duration::from_secs(2), (app.reports)()).await {
                Ok(report) => reply(StatusCode::OK, report),
                Err(_) => reply(StatusCode::GATEWAY_TIMEOUT, "report timed out\n"),
            }
        }
        _ => reply(StatusCode::NOT_FOUND, "no such page\n"),
    }
}
// ANCHOR_END: app

fn reply(status: StatusCode, text: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(text.into()));
    *response.status_mut() = status;
    response
}

/// The connection builder, shared by `main` and the in-memory tests.
pub fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5));
    builder
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log INFO and above unless RUST_LOG says otherwise (`fmt::init()` alone shows errors only).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000; try: curl -i http://127.0.0.1:3000/report");
    let app = Arc::new(App::default());
    let builder = builder();
    loop {
        let (stream, _peer) = listener.accept().await?;
        let (app, builder) = (Arc::clone(&app), builder.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(handle(request, app).await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
