//! Claims of the chapter "Observability and leak hunting": a request id in every event of its
//! request, JSON lines that carry it, the per-clone trap of `MakeRequestId`, gauges on
//! `/metrics`, and a tracker per spawn site that names the site that leaks.
//!
//! The checks that capture events run everything on one thread (a current-thread runtime on the
//! check's thread), so the thread-local subscriber sees every task's events; servers are real,
//! on 127.0.0.1, with the real clock.

mod support {
    pub mod observability;
}

use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower::{ServiceBuilder, service_fn};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use support::observability::{Level, eventually, record};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/observability_server.rs"]
mod observability_server;

use observability_server::{Metrics, NextRequestId, request_span, serve};

const HANG: &str = "a request or a gauge never settled";
const SETTLE: Duration = Duration::from_secs(5);

/// Runs `body` on a current-thread runtime with the real clock, on the check's own thread.
fn on_one_thread<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    check(HANG).run(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
            .block_on(body());
    });
}

/// Starts the example's server on 127.0.0.1; returns its base URL and its gauges.
async fn start() -> (String, Metrics) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let metrics = Metrics::default();
    tokio::spawn(serve(listener, metrics.clone()));
    (url, metrics)
}

/// The `x-request-id` a response came back with.
fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn every_event_of_a_request_carries_its_id_and_the_response_echoes_it() {
    on_one_thread(|| async {
        let (events, _guard) = record(Level::INFO);
        let (url, _) = start().await;
        let client = reqwest::Client::new();
        // Two requests at once: their handlers interleave at the `.await` between the events.
        let (a, b) = tokio::join!(
            client.get(format!("{url}/work")).send(),
            client.get(format!("{url}/work")).send(),
        );
        let (a, b) = (request_id(&a.unwrap()), request_id(&b.unwrap()));
        assert_ne!(a, b, "two requests, two ids");
        for id in [a, b] {
            assert_eq!(
                events.messages_with_id(&id),
                ["looking up the order", "order found"],
                "the events recorded under id {id}"
            );
        }
    });
}

#[test]
fn a_request_id_sent_by_the_client_is_kept_and_logged() {
    on_one_thread(|| async {
        let (events, _guard) = record(Level::INFO);
        let (url, _) = start().await;
        let response = reqwest::Client::new()
            .get(format!("{url}/work"))
            .header("x-request-id", "checkout-7f3a")
            .send()
            .await
            .unwrap();
        assert_eq!(request_id(&response), "checkout-7f3a");
        assert_eq!(
            events.id_of("order found").as_deref(),
            Some("checkout-7f3a")
        );
    });
}

#[test]
fn trace_layer_logs_the_request_and_the_response_at_debug() {
    on_one_thread(|| async {
        let (events, _guard) = record(Level::DEBUG);
        let (url, _) = start().await;
        let response = reqwest::get(format!("{url}/work")).await.unwrap();
        response.text().await.unwrap();
        // The server may see its body end after the client has read the last byte: wait.
        let ended = || {
            events
                .messages_with_id("0")
                .contains(&"end of stream".to_owned())
        };
        assert!(
            eventually(ended, SETTLE).await,
            "{:?}",
            events.messages_with_id("0")
        );
        assert_eq!(
            events.messages_with_id("0"),
            [
                "started processing request",
                "looking up the order",
                "order found",
                "finished processing request",
                "end of stream",
            ]
        );
    });
}

/// Every write of the JSON formatter, kept for the check.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn json_lines_carry_the_request_span_and_its_id() {
    on_one_thread(|| async {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .with_target(false)
            .with_max_level(Level::TRACE) // no filter: see `support::observability::Events`
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let (url, _) = start().await;
        let response = reqwest::get(format!("{url}/work")).await.unwrap();
        assert_eq!(request_id(&response), "0");
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("order")).collect();
        assert_eq!(
            lines,
            [
                r#"{"level":"INFO","fields":{"message":"looking up the order"},"span":{"id":"0","method":"GET","path":"/work","name":"request"}}"#,
                r#"{"level":"INFO","fields":{"message":"order found"},"span":{"id":"0","method":"GET","path":"/work","name":"request"}}"#,
            ]
        );
    });
}

// ANCHOR: plain_counter
/// Wrong: the counter is a plain field, so every clone of the layer's service has its own.
#[derive(Clone, Default)]
struct PlainCounter(u64);

impl MakeRequestId for PlainCounter {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        self.0 += 1;
        Some(RequestId::new(self.0.into()))
    }
}
// ANCHOR_END: plain_counter

/// Serves one in-memory HTTP/1 connection with `make_id` in `SetRequestId`, sends three
/// requests on it, and returns the ids the responses carried.
async fn three_ids<M>(make_id: M) -> Vec<String>
where
    M: MakeRequestId + Clone + Send + Sync + 'static,
{
    let service = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(make_id))
        .layer(PropagateRequestIdLayer::x_request_id())
        .service(service_fn(|_: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok\n"))))
        }));
    let (mut connection, _server) = harness::duplex::http1(|io| {
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let response = connection.get("/").await.unwrap();
        ids.push(response.header("x-request-id").unwrap().to_owned());
    }
    ids
}

#[test]
fn a_span_made_before_the_id_is_set_carries_no_id() {
    check(HANG).paused(|| async {
        let (events, _guard) = record(Level::INFO);
        // The wrong order: `TraceLayer` outside, so it makes the span before the id exists.
        let service = ServiceBuilder::new()
            .layer(TraceLayer::new_for_http().make_span_with(request_span::<Incoming>))
            .layer(SetRequestIdLayer::x_request_id(NextRequestId::default()))
            .layer(PropagateRequestIdLayer::x_request_id())
            .service(service_fn(|_: Request<Incoming>| async {
                tracing::info!("handled");
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok\n"))))
            }));
        let (mut connection, _server) = harness::duplex::http1(|io| {
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        })
        .await;
        let response = connection.get("/").await.unwrap();
        assert_eq!(response.header("x-request-id"), Some("0"), "the id is set");
        assert_eq!(
            events.id_of("handled").as_deref(),
            Some("none"),
            "but not logged"
        );
    });
}

#[test]
fn a_counter_without_an_arc_restarts_for_every_request() {
    check(HANG).paused(|| async {
        // hyper-util's `TowerToHyperService` clones the whole stack for each request.
        assert_eq!(three_ids(PlainCounter::default()).await, ["1", "1", "1"]);
        assert_eq!(three_ids(NextRequestId::default()).await, ["0", "1", "2"]);
    });
}

#[test]
fn the_metrics_endpoint_reports_the_gauges_and_they_return_to_zero() {
    on_one_thread(|| async {
        let baseline = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        let (url, metrics) = start().await;
        let client = reqwest::Client::new();
        let body = client
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // The request that reads the gauges is itself open and in flight.
        assert!(
            body.starts_with("connections_open 1\nrequests_in_flight 1\ntokio_alive_tasks "),
            "{body}"
        );
        drop(client);
        let open = metrics.connections_open.clone();
        assert!(eventually(|| open.load(Ordering::Relaxed) == 0, SETTLE).await);
        assert_eq!(metrics.requests_in_flight.load(Ordering::Relaxed), 0);
        // What is left is the accept loop: one task more than before the server started.
        let alive = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        assert!(
            eventually(|| alive() == baseline + 1, SETTLE).await,
            "alive tasks: {} (baseline {baseline})",
            alive()
        );
    });
}

// ANCHOR: trackers
/// One tracker per place that spawns background work: each place gets its own count.
#[derive(Clone, Default)]
struct Background {
    audit: TaskTracker,
    cache_refresh: TaskTracker,
}

/// What a handler runs after it placed an order.
fn after_order(background: &Background, config: &watch::Receiver<u32>) {
    background.audit.spawn(async {
        tokio::task::yield_now().await; // writes the audit record, then ends
    });
    let mut config = config.clone();
    // The leak: meant to be spawned once at start-up, it is spawned per order, and it waits for
    // a configuration change that may never come.
    background
        .cache_refresh
        .spawn(async move { while config.changed().await.is_ok() {} });
}
// ANCHOR_END: trackers

#[test]
fn a_tracker_per_spawn_site_names_the_site_that_leaks() {
    check(HANG).paused(|| async {
        let (_config_tx, config) = watch::channel(1);
        let background = Background::default();
        let alive = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        let baseline = alive();
        for _ in 0..3 {
            after_order(&background, &config);
        }
        let audit = background.audit.clone();
        assert!(eventually(|| audit.is_empty(), SETTLE).await);
        // The runtime says three tasks too many; the trackers say where they came from.
        assert_eq!(alive() - baseline, 3);
        assert_eq!(background.audit.len(), 0);
        assert_eq!(background.cache_refresh.len(), 3);
    });
}
