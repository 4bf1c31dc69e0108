//! A tower middleware written by hand: it stamps each response with a `server-timing` header
//! (browsers show it in their network panel) and counts the requests that were abandoned
//! before they had an answer, through a drop guard. tower-http 0.7 has neither.
//!
//! ```console
//! cargo run -p lessons-middle --example middleware_timing
//! curl -i http://127.0.0.1:3000/report          # server-timing: app;dur=300.4
//! curl -m 0.1 http://127.0.0.1:3000/report      # hangs up early: logged as abandoned
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceBuilder};

// ANCHOR: layer
/// Adds `server-timing: app;dur=<ms>` to every response.
#[derive(Debug, Clone, Default)]
pub struct ServerTimingLayer {
    /// Shared by every service this layer makes and every clone of them: created once, here.
    abandoned: Arc<AtomicU64>,
}

impl ServerTimingLayer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests whose future was dropped before the inner service answered.
    pub fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::Relaxed)
    }
}

impl<S> Layer<S> for ServerTimingLayer {
    type Service = ServerTiming<S>;

    fn layer(&self, inner: S) -> ServerTiming<S> {
        ServerTiming {
            inner,
            abandoned: Arc::clone(&self.abandoned),
        }
    }
}

/// The service the layer wraps around `S`.
#[derive(Debug, Clone)]
pub struct ServerTiming<S> {
    inner: S,
    abandoned: Arc<AtomicU64>,
}
// ANCHOR_END: layer

// ANCHOR: service
impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ServerTiming<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    // Boxed: simple to write, one allocation per request.
    type Future = BoxFuture<'static, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // Ready when the inner service is: a limit below us keeps working.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // `self.inner` was polled ready; a fresh clone was not. Keep the clone, and move
        // the ready instance into the future.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let stopwatch = Stopwatch::start(request.uri().path(), &self.abandoned);
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            let millis = stopwatch.stop().as_secs_f64() * 1000.0;
            let value = format!("app;dur={millis:.1}");
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append("server-timing", value);
            }
            Ok(response)
        })
    }
}
// ANCHOR_END: service

// ANCHOR: stopwatch
/// Started when the request comes in; if it is dropped before `stop`, the request was
/// abandoned: the client hung up, or a timeout above us gave up on it.
struct Stopwatch {
    started: Instant,
    path: String,
    abandoned: Option<Arc<AtomicU64>>,
}

impl Stopwatch {
    fn start(path: &str, abandoned: &Arc<AtomicU64>) -> Self {
        Self {
            started: Instant::now(),
            path: path.to_owned(),
            abandoned: Some(Arc::clone(abandoned)),
        }
    }

    /// The inner service answered: disarm the guard.
    fn stop(mut self) -> Duration {
        self.abandoned = None;
        self.started.elapsed()
    }
}

impl Drop for Stopwatch {
    fn drop(&mut self) {
        // Runs on every path out of the future: answered, `?`, panic or cancellation.
        if let Some(abandoned) = self.abandoned.take() {
            abandoned.fetch_add(1, Ordering::Relaxed);
            let after = self.started.elapsed();
            tracing::warn!(path = %self.path, ?after, "request abandoned before it was answered");
        }
    }
}
// ANCHOR_END: stopwatch

/// The application: a report that takes 300 ms.
async fn report(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(Response::new(Full::new(Bytes::from("report\n"))))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let timing = ServerTimingLayer::new();
    let stack = ServiceBuilder::new()
        .layer(timing.clone())
        .service_fn(report);
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(stack.clone());
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
