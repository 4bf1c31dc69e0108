//! A server whose every log line names its request: a request id set by tower-http, a span per
//! request made from it, spans carried into HTTP/2 stream tasks by the executor, and three
//! gauges (connections open, requests in flight, tasks alive) on `/metrics`.
//!
//! Run it with `cargo run -p lessons-professional --example observability_server`: it serves
//! three requests to itself and prints the logs. `LOG_FORMAT=json` prints them as JSON.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower::service_fn;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::{Instrument, Span, info, info_span};

// ANCHOR: make_id
/// Request ids from one counter. The counter sits behind an `Arc` because tower-http clones
/// `SetRequestId`, and this with it, for every request: a plain `u64` would restart each time.
#[derive(Clone, Debug, Default)]
pub struct NextRequestId(Arc<AtomicU64>);

impl MakeRequestId for NextRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = self.0.fetch_add(1, Ordering::Relaxed);
        Some(RequestId::new(HeaderValue::from(id)))
    }
}
// ANCHOR_END: make_id

// ANCHOR: span
/// The span every event of one request is recorded in. `SetRequestId` runs first, so the id
/// is already in the request's extensions (the client's own `x-request-id`, or a new one).
pub fn request_span<B>(request: &Request<B>) -> Span {
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("none");
    info_span!("request", id, method = %request.method(), path = request.uri().path())
}
// ANCHOR_END: span

// ANCHOR: guard
/// One unit of a gauge, given back when the guard is dropped, however its owner ends.
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

/// The server's gauges, cloned into every connection and every request.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub connections_open: Arc<AtomicUsize>,
    pub requests_in_flight: Arc<AtomicUsize>,
}

impl Metrics {
    /// The gauges in Prometheus' text format, plus the runtime's own count of tasks.
    pub fn render(&self) -> String {
        let alive = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        format!(
            "connections_open {}\nrequests_in_flight {}\ntokio_alive_tasks {alive}\n",
            self.connections_open.load(Ordering::Relaxed),
            self.requests_in_flight.load(Ordering::Relaxed),
        )
    }
}
// ANCHOR_END: guard

/// The application: `/work` logs around an `.await`, `/metrics` reports the gauges.
async fn handle(metrics: Metrics, request: Request<Incoming>) -> Response<Full<Bytes>> {
    match request.uri().path() {
        "/metrics" => Response::new(Full::new(Bytes::from(metrics.render()))),
        _ => {
            info!("looking up the order");
            tokio::time::sleep(Duration::from_millis(5)).await; // an upstream call, say
            info!("order found");
            Response::new(Full::new(Bytes::from("order 42\n")))
        }
    }
}

// ANCHOR: executor
/// hyper's executor for HTTP/2 stream tasks: `tokio::spawn`, inside the span that is current
/// when hyper hands the stream over (the connection's, since hyper does it while polling the
/// connection). With plain `TokioExecutor` a stream's handler starts outside every span.
#[derive(Clone, Copy, Debug)]
pub struct SpanExecutor;

impl<F> hyper::rt::Executor<F> for SpanExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(future.in_current_span());
    }
}
// ANCHOR_END: executor

// ANCHOR: serve
/// The accept loop: a span and a gauge per connection, the tower stack per request.
pub async fn serve(listener: TcpListener, metrics: Metrics) {
    let ids = NextRequestId::default();
    let mut connection_number = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // EMFILE and friends: pause instead of spinning on the same error.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        connection_number += 1;
        let open = GaugeGuard::new(&metrics.connections_open);
        let app_metrics = metrics.clone();
        let service = ServiceBuilder::new()
            // Outermost: the id must exist before the span is made from it.
            .layer(SetRequestIdLayer::x_request_id(ids.clone()))
            .layer(TraceLayer::new_for_http().make_span_with(request_span::<Incoming>))
            .layer(PropagateRequestIdLayer::x_request_id())
            .service(service_fn(move |request| {
                // Created in `call`, moved into the future: counts until the future ends.
                let in_flight = GaugeGuard::new(&app_metrics.requests_in_flight);
                let response = handle(app_metrics.clone(), request);
                async move {
                    let _in_flight = in_flight;
                    Ok::<_, Infallible>(response.await)
                }
            }));
        let connection = info_span!("connection", n = connection_number);
        tokio::spawn(
            async move {
                let _open = open;
                let mut builder = auto::Builder::new(SpanExecutor);
                builder.http1().timer(TokioTimer::new());
                builder.http2().timer(TokioTimer::new());
                let io = TokioIo::new(stream);
                if let Err(error) = builder
                    .serve_connection(io, TowerToHyperService::new(service))
                    .await
                {
                    info!(%error, "connection ended");
                }
            }
            .instrument(connection),
        );
    }
}
// ANCHOR_END: serve

#[tokio::main]
async fn main() {
    // ANCHOR: json
    if std::env::var("LOG_FORMAT").as_deref() == Ok("json") {
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true) // the request's span and its fields, on every line
            .with_span_list(false)
            .without_time()
            .with_target(false)
            .init();
    } else {
        tracing_subscriber::fmt()
            .without_time()
            .with_target(false)
            .init();
    }
    // ANCHOR_END: json
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let url = format!("http://{}", listener.local_addr().expect("bound address"));
    tokio::spawn(serve(listener, Metrics::default()));

    let client = reqwest::Client::new();
    let response = client.get(format!("{url}/work")).send().await.unwrap();
    println!("x-request-id: {:?}", response.headers()["x-request-id"]);
    let response = client
        .get(format!("{url}/work"))
        .header("x-request-id", "checkout-7f3a")
        .send()
        .await
        .unwrap();
    println!("x-request-id: {:?}", response.headers()["x-request-id"]);
    let metrics = client.get(format!("{url}/metrics")).send().await.unwrap();
    print!("{}", metrics.text().await.unwrap());
}
