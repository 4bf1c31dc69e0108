//! A production-shaped tower stack served by hyper: tracing, panic catching, load shedding, a
//! concurrency limit and a timeout, all from tower and tower-http, built once and shared by
//! every connection.
//!
//! ```console
//! cargo run -p lessons-middle --example tower_stack
//! curl -i http://127.0.0.1:3000/hello
//! curl -i http://127.0.0.1:3000/slow      # 504 after 2 s: the timeout layer answers
//! curl -i http://127.0.0.1:3000/boom      # 500: the handler panicked, the server lives on
//! ```

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{BoxError, Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The limits of the stack; tests choose small ones.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests allowed inside the handler at once, across every connection.
    pub concurrency: usize,
    /// How long the handler gets before the client is told 504.
    pub timeout: Duration,
}

// ANCHOR: stack
/// Wraps `handler` in the layers every request goes through, outermost first.
pub fn stack<S, B>(
    limits: Limits,
    handler: S,
) -> impl Service<
    Request<Incoming>,
    Response = Response<impl Body<Data = Bytes, Error: Into<BoxError>> + Send + use<S, B>>,
    Error = BoxError,
    Future: Send,
> + Clone
+ Send
+ 'static
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>,
    S: Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes, Error: Into<BoxError>> + Default + Send + 'static,
{
    ServiceBuilder::new()
        // A span per request, with method, path, status and latency.
        .layer(TraceLayer::new_for_http())
        // A panic below becomes a 500 instead of a dead connection.
        .layer(CatchPanicLayer::new())
        // LoadShed reports overload as an error; turn it into a response.
        .map_result(shed_to_503)
        // If the limit below is not ready, fail at once instead of queueing.
        .load_shed()
        // One semaphore, shared by every clone of this stack.
        .concurrency_limit(limits.concurrency)
        // Drops the handler's future when time is up, and answers 504.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            limits.timeout,
        ))
        .service(handler)
}

/// `LoadShed`'s error is `Overloaded`; nothing below it fails (the handler's error type is
/// `Infallible`). The error type stays `BoxError` because `map_result` passes errors from
/// `poll_ready` through `From`, and nothing converts a `BoxError` into `Infallible`.
fn shed_to_503<B: Default>(result: Result<Response<B>, BoxError>) -> Result<Response<B>, BoxError> {
    Ok(result.unwrap_or_else(|err| {
        tracing::warn!("shedding a request: {err}");
        let mut response = Response::new(B::default());
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
    }))
}
// ANCHOR_END: stack

// ANCHOR: serve
/// The accept loop: the stack was built once; each connection gets a clone of it.
pub async fn serve<S, B>(listener: TcpListener, stack: S)
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = BoxError>,
    S: Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // The adapter clones this again for every request (see the chapter).
        let service = TowerToHyperService::new(stack.clone());
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
// ANCHOR_END: serve

/// The application itself: three routes.
async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    match request.uri().path() {
        "/slow" => tokio::time::sleep(Duration::from_secs(10)).await,
        "/boom" => panic!("the handler hit a bug"),
        _ => {}
    }
    Ok(Response::new(Full::new(Bytes::from("hello\n"))))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .with_env_filter("info,tower_http=debug")
        .init();
    let limits = Limits {
        concurrency: 64,
        timeout: Duration::from_secs(2),
    };
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    serve(listener, stack(limits, tower::service_fn(handle))).await;
    Ok(())
}
