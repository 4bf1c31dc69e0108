//! The tower chapter's claims: what the stack of `examples/tower_stack.rs` does on a real
//! server, that hyper-util's adapter clones the service for every request, and that a layer's
//! state is shared exactly as far as the value holding it is cloned.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use harness::TestResponse;
use harness::duplex;
use harness::server::TestServer;
use harness::watchdog::check;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http::timeout::TimeoutLayer;

#[allow(dead_code)]
#[path = "../examples/tower_stack.rs"]
mod example;

mod support {
    pub mod tower;
}

use example::Limits;
use support::tower::{Held, serve_any, serve_h1};

// ANCHOR: traits
/// The three traits of the chapter, as tower-service 0.3, tower-layer 0.3 and hyper 1.12
/// declare them (their doc comments replaced by one line each), under names of their own so
/// they compile here.
#[allow(dead_code)]
mod shapes {
    use std::future::Future;
    use std::task::{Context, Poll};

    /// tower's `Service`.
    pub trait TowerService<Request> {
        type Response;
        type Error;
        type Future: Future<Output = Result<Self::Response, Self::Error>>;
        /// "Can you take a request now?" Pending means: not yet, I will wake you.
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>>;
        /// Only after `poll_ready` answered `Ready(Ok(()))`, on the same value.
        fn call(&mut self, req: Request) -> Self::Future;
    }

    /// tower's `Layer`: a function from one service to a service wrapping it.
    pub trait Layer<S> {
        type Service;
        fn layer(&self, inner: S) -> Self::Service;
    }

    /// hyper's `Service`: no readiness, and `call` takes `&self`.
    pub trait HyperService<Request> {
        type Response;
        type Error;
        type Future: Future<Output = Result<Self::Response, Self::Error>>;
        fn call(&self, req: Request) -> Self::Future;
    }
}
// ANCHOR_END: traits

const DEADLINE: Duration = Duration::from_secs(10);
const HANG: &str = "a request never finished: is a held request waiting on a gate nobody opens?";

fn limits(concurrency: usize) -> Limits {
    Limits {
        concurrency,
        timeout: Duration::from_secs(30),
    }
}

#[test]
fn a_panic_becomes_a_500_and_the_connection_survives() {
    check(HANG).real(|| async {
        let panics = tower::service_fn(|request: Request<Incoming>| async move {
            assert_ne!(request.uri().path(), "/boom", "the handler hit a bug");
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("fine\n"))))
        });
        let stack = example::stack(limits(4), panics);
        let server = TestServer::start(|listener| example::serve(listener, stack)).await;
        let mut client = server.connect().await;
        let boom = client.get("/boom").await.unwrap();
        assert_eq!(boom.status, StatusCode::INTERNAL_SERVER_ERROR);
        // Same connection: CatchPanicLayer caught it inside the response future.
        let next = client.get("/fine").await.unwrap();
        assert_eq!(next.status, StatusCode::OK);
    });
}

#[test]
fn the_timeout_layer_answers_504_and_drops_the_handler() {
    check(HANG).real(|| async {
        let held = Held::new();
        let short = Limits {
            concurrency: 4,
            timeout: Duration::from_millis(50),
        };
        let stack = example::stack(short, held.service());
        let server = TestServer::start(|listener| example::serve(listener, stack)).await;
        let response = reqwest::get(server.url("/hold")).await.unwrap();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        // The gate was never opened: the handler ended because its future was dropped.
        assert!(held.entered.settles_to(0, DEADLINE).await);
    });
}

// ANCHOR: shed
#[test]
fn a_full_limit_sheds_with_503_across_connections() {
    check(HANG).real(|| async {
        let held = Held::new();
        // Built once, outside the accept loop: one semaphore for every connection.
        let stack = example::stack(limits(1), held.service());
        let server = TestServer::start(|listener| example::serve(listener, stack)).await;

        let mut first = server.connect().await;
        let holding = tokio::spawn(async move { first.get("/hold").await.unwrap().status });
        assert!(held.entered.reaches_started(1, DEADLINE).await);

        // Another connection, while the only slot is taken: refused at once, not queued.
        let mut second = server.connect().await;
        let shed = second.get("/hello").await.unwrap();
        assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            held.entered.started(),
            1,
            "the shed request never reached the handler"
        );

        held.open();
        assert_eq!(holding.await.unwrap(), StatusCode::OK);
        assert_eq!(second.get("/hello").await.unwrap().status, StatusCode::OK);
    });
}
// ANCHOR_END: shed

// ANCHOR: per_connection_limit
#[test]
fn a_limit_built_per_connection_limits_nothing_across_connections() {
    check(HANG).real(|| async {
        let held = Held::new();
        let handler = held.service();
        let server = TestServer::start(|listener| async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // BUG: a new stack, so a new semaphore, for every connection.
                let stack = ServiceBuilder::new()
                    .load_shed()
                    .concurrency_limit(1)
                    .service(handler.clone());
                tokio::spawn(
                    auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(stack))
                        .into_owned(),
                );
            }
        })
        .await;
        let mut clients = Vec::new();
        for _ in 0..3 {
            let mut client = server.connect().await;
            clients.push(tokio::spawn(
                async move { client.get("/hold").await.unwrap() },
            ));
        }
        // "At most one at a time", and three handlers run at once.
        assert!(held.entered.reaches_started(3, DEADLINE).await);
        assert_eq!(held.entered.live(), 3);
        held.open();
        for client in clients {
            assert_eq!(client.await.unwrap().status, StatusCode::OK);
        }
    });
}
// ANCHOR_END: per_connection_limit

// ANCHOR: visits
/// A service that keeps a count in its own value, as a naive layer would.
#[derive(Clone, Default)]
struct Visits {
    seen: u64,
}

impl<B> Service<Request<B>> for Visits {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        self.seen += 1;
        ready(Ok(Response::new(Full::new(Bytes::from(
            self.seen.to_string(),
        )))))
    }
}
// ANCHOR_END: visits

// ANCHOR: clone_per_request
#[test]
fn the_adapter_calls_a_fresh_clone_for_every_request() {
    check(HANG).paused(|| async {
        // Called directly, one value counts 1, 2, 3.
        let mut visits = Visits::default();
        for expected in 1..=3 {
            let ready = ServiceExt::<Request<()>>::ready(&mut visits).await.unwrap();
            let response = ready.call(Request::new(())).await;
            let response = TestResponse::collect(response.unwrap()).await.unwrap();
            assert_eq!(response.text(), expected.to_string());
        }
        // Served by hyper, the value the connection holds is never called: each request
        // gets a clone, and the clone is dropped with its response future.
        let (mut client, _server) = duplex::http1(|io| serve_h1(io, Visits::default())).await;
        for _ in 0..3 {
            assert_eq!(client.get("/").await.unwrap().text(), "1");
        }
    });
}
// ANCHOR_END: clone_per_request

// ANCHOR: waits
#[test]
fn without_shedding_a_full_limit_makes_the_request_wait_in_its_future() {
    check(HANG).paused(|| async {
        let held = Held::new();
        let shared = ServiceBuilder::new()
            .concurrency_limit(1)
            .service(held.service());
        let (mut first, _a) = duplex::http1(|io| serve_h1(io, shared.clone())).await;
        let (mut second, _b) = duplex::http1(|io| serve_h1(io, shared.clone())).await;
        let holding = tokio::spawn(async move { first.get("/hold").await.unwrap() });
        assert!(held.entered.reaches_started(1, DEADLINE).await);

        let waiting = tokio::spawn(async move { second.get("/hello").await.unwrap() });
        // An hour of virtual time: every task has run until it waits.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!waiting.is_finished(), "the second request did not wait");
        assert_eq!(
            held.entered.started(),
            1,
            "it waits before the handler, in poll_ready"
        );

        held.open();
        assert_eq!(holding.await.unwrap().status, StatusCode::OK);
        assert_eq!(waiting.await.unwrap().status, StatusCode::OK);
    });
}
// ANCHOR_END: waits

// ANCHOR: untimed_wait
#[test]
fn a_timeout_does_not_cover_the_wait_for_a_permit() {
    check(HANG).paused(|| async {
        let start = Instant::now();
        let held = Held::new();
        // The timeout sits above the limit, and still does not time the wait.
        let shared = ServiceBuilder::new()
            .layer(TimeoutLayer::with_status_code(
                StatusCode::GATEWAY_TIMEOUT,
                Duration::from_secs(10),
            ))
            .concurrency_limit(1)
            .service(held.service());
        let (mut first, _a) = duplex::http1(|io| serve_h1(io, shared.clone())).await;
        let (mut second, _b) = duplex::http1(|io| serve_h1(io, shared.clone())).await;
        let first = tokio::spawn(async move { first.get("/hold").await.unwrap() });
        assert!(held.entered.reaches_started(1, DEADLINE).await);
        let second = tokio::spawn(async move { second.get("/hold").await.unwrap() });

        assert_eq!(first.await.unwrap().status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(start.elapsed().as_secs(), 10);
        // Sent at 0 s, it waited 10 s for the permit, untimed, then got its own 10 s.
        assert_eq!(second.await.unwrap().status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(start.elapsed().as_secs(), 20);
    });
}
// ANCHOR_END: untimed_wait

#[test]
fn a_concurrency_limit_counts_response_futures_not_response_bodies() {
    check(HANG).paused(|| async {
        // The first response's body streams until the test drops `chunks`.
        let (chunks, body) = futures::channel::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
        let body = std::sync::Arc::new(std::sync::Mutex::new(Some(StreamBody::new(body))));
        let streaming = tower::service_fn(move |_: Request<Incoming>| {
            let body = body.lock().unwrap().take().map(Either::Left);
            let body = body.unwrap_or_else(|| Either::Right(Full::new(Bytes::from("done\n"))));
            async move { Ok::<_, Infallible>(Response::new(body)) }
        });
        let shared = ServiceBuilder::new()
            .concurrency_limit(1)
            .service(streaming);

        let (first, _a) = duplex::raw(|io| serve_any(io, shared.clone()));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(first))
            .await
            .unwrap();
        tokio::spawn(connection);
        let head = sender
            .send_request(harness::server::get("/export"))
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::OK); // the body is still open

        // The limit is 1, the first body is still streaming, and the second request is served.
        let (mut second, _b) = duplex::http1(|io| serve_any(io, shared.clone())).await;
        assert_eq!(second.get("/").await.unwrap().text(), "done\n");
        drop(chunks);
    });
}

// ANCHOR: rate
/// Two requests a minute, behind a buffer: `RateLimit` is not `Clone`, `Buffer` is.
fn two_a_minute() -> impl Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = tower::BoxError,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    ServiceBuilder::new()
        .buffer(16)
        .rate_limit(2, Duration::from_secs(60))
        .service(Held::new().service())
}

#[test]
fn a_rate_limit_built_once_is_shared_by_every_connection() {
    check(HANG).paused(|| async {
        let start = Instant::now();
        let shared = two_a_minute();
        let (mut a, _a) = duplex::http1(|io| serve_h1(io, shared.clone())).await;
        let (mut b, _b) = duplex::http1(|io| serve_h1(io, shared.clone())).await;
        a.get("/").await.unwrap();
        a.get("/").await.unwrap();
        // The budget is spent: the other connection's request waits for the next minute.
        b.get("/").await.unwrap();
        assert_eq!(start.elapsed().as_secs(), 60);
    });
}

#[test]
fn a_rate_limit_built_per_connection_lets_each_connection_do_the_rate() {
    check(HANG).paused(|| async {
        let start = Instant::now();
        let mut clients = Vec::new();
        for _ in 0..3 {
            // BUG: one limiter per connection, as when the stack is built in the loop.
            let (client, _server) = duplex::http1(|io| serve_h1(io, two_a_minute())).await;
            clients.push((client, _server));
        }
        for (client, _) in &mut clients {
            client.get("/").await.unwrap();
            client.get("/").await.unwrap();
        }
        // Six requests in no time at all, with a limit of two a minute.
        assert_eq!(start.elapsed(), Duration::ZERO);
    });
}
// ANCHOR_END: rate
