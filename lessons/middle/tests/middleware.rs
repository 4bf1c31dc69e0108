//! The middleware chapter's claims: what `examples/middleware_timing.rs` adds to a response,
//! that its drop guard counts a client that hangs up, why `call` must use the instance that
//! was polled ready, and what tower's closures cover without a type of your own.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use harness::duplex;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::{Request, Response};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

#[allow(dead_code)]
#[path = "../examples/middleware_timing.rs"]
mod example;

// The tower chapter's held handler; not all of it is needed here.
#[allow(dead_code)]
mod support {
    pub mod tower;
}

use example::ServerTimingLayer;
use support::tower::{Held, serve_h1};

const DEADLINE: Duration = Duration::from_secs(10);
const HANG: &str = "a request never finished: is the middleware waiting on an inner service \
                    that was never polled ready?";

/// A handler that takes `delay` of tokio time.
fn takes(
    delay: Duration,
) -> impl Service<
    Request<hyper::body::Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |_| async move {
        tokio::time::sleep(delay).await;
        Ok(Response::new(Full::new(Bytes::from("report\n"))))
    })
}

#[test]
fn every_response_carries_its_server_timing() {
    check(HANG).paused(|| async {
        let stack = ServiceBuilder::new()
            .layer(ServerTimingLayer::new())
            .service(takes(Duration::from_millis(250)));
        let (mut client, _server) = duplex::http1(|io| serve_h1(io, stack)).await;
        let response = client.get("/report").await.unwrap();
        // Virtual time: exactly the handler's 250 ms, every run.
        assert_eq!(response.header("server-timing"), Some("app;dur=250.0"));
    });
}

// ANCHOR: hang_up
#[test]
fn a_client_that_hangs_up_is_counted_as_abandoned() {
    check(HANG).paused(|| async {
        let held = Held::new();
        let timing = ServerTimingLayer::new();
        let stack = ServiceBuilder::new()
            .layer(timing.clone())
            .service(held.service());
        let (mut client, server) = duplex::raw(|io| serve_h1(io, stack));
        client
            .write_all(b"GET /hold HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        assert!(held.entered.reaches_started(1, DEADLINE).await);
        assert_eq!(timing.abandoned(), 0);

        drop(client); // the client hangs up with its GET unanswered
        assert!(
            held.entered.settles_to(0, DEADLINE).await,
            "handler not dropped"
        );
        assert_eq!(
            timing.abandoned(),
            1,
            "the stopwatch's drop guard did not run"
        );
        tokio::time::timeout(DEADLINE, server.task)
            .await
            .unwrap()
            .unwrap()
            .ok();
    });
}
// ANCHOR_END: hang_up

// ANCHOR: naive
/// The tempting version: call a fresh clone inside the future.
#[derive(Clone)]
struct NaiveTiming<S> {
    inner: S,
}

impl<S, R> Service<R> for NaiveTiming<S>
where
    S: Service<R> + Clone + Send + 'static,
    S::Future: Send,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx) // polls `self.inner` ...
    }

    fn call(&mut self, request: R) -> Self::Future {
        let mut inner = self.inner.clone(); // ... but calls a clone that was never polled
        Box::pin(async move {
            let started = Instant::now();
            let response = inner.call(request).await;
            tracing::info!(took = ?started.elapsed());
            response
        })
    }
}
// ANCHOR_END: naive

fn ok_service()
-> impl Service<Request<()>, Response = Response<()>, Error = Infallible, Future: Send> + Clone + Send
{
    tower::service_fn(|_: Request<()>| async { Ok(Response::new(())) })
}

// ANCHOR: not_ready
#[test]
fn calling_a_clone_that_was_not_polled_ready_breaks_the_limit_below() {
    check(HANG).paused(|| async {
        let naive = ServiceBuilder::new()
            .layer_fn(|inner| NaiveTiming { inner })
            .concurrency_limit(1)
            .service(ok_service());
        // `oneshot` does it by the book: poll_ready, then call.
        let failed = tokio::spawn(naive.oneshot(Request::new(()))).await;
        let panic = failed.unwrap_err().into_panic();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(
            message.contains("poll_ready must be called first"),
            "{message}"
        );

        // Served by hyper the same: the adapter polls a clone of the stack, and the naive
        // middleware then calls a clone of that clone. The connection task panics.
        let served = ServiceBuilder::new()
            .layer_fn(|inner| NaiveTiming { inner })
            .concurrency_limit(1)
            .service(Held::new().service());
        let (mut client, server) = duplex::http1(|io| serve_h1(io, served)).await;
        assert!(
            client.get("/").await.is_err(),
            "no response from a panicked connection"
        );
        assert!(server.task.await.unwrap_err().is_panic());

        // The same stack with the clone-and-swap middleware.
        let swapped = ServiceBuilder::new()
            .layer(ServerTimingLayer::new())
            .concurrency_limit(1)
            .service(ok_service());
        assert!(swapped.oneshot(Request::new(())).await.is_ok());
    });
}
// ANCHOR_END: not_ready

#[test]
fn the_swap_leaves_a_clone_that_must_be_polled_again() {
    check(HANG).paused(|| async {
        let mut service =
            ServerTimingLayer::new().layer(tower::limit::ConcurrencyLimit::new(ok_service(), 1));
        // One poll_ready buys one call; the instance left behind starts unready.
        let first = service.ready().await.unwrap().call(Request::new(()));
        let mut second = tokio_test::task::spawn(service.ready());
        assert!(second.poll().is_pending(), "the one permit is in `first`");
        first.await.unwrap();
        assert!(
            second.is_woken(),
            "finishing `first` frees the permit and wakes the waiter"
        );
        assert!(matches!(second.poll(), Poll::Ready(Ok(_))));
    });
}

// ANCHOR: closures
#[test]
fn closures_cover_the_cases_that_need_no_type() {
    check(HANG).paused(|| async {
        let served_by = hyper::header::HeaderValue::from_static("api-1");
        let stack = ServiceBuilder::new()
            // Nothing to remember between request and response: a closure will do.
            .map_response(move |mut response: Response<Full<Bytes>>| {
                response
                    .headers_mut()
                    .insert("x-served-by", served_by.clone());
                response
            })
            // Timing wraps the future; still no type of our own.
            .map_future(|future| async move {
                let started = Instant::now();
                let mut response: Response<Full<Bytes>> = future.await?;
                let millis = started.elapsed().as_millis();
                let value = format!("app;dur={millis}").parse().unwrap();
                response.headers_mut().insert("server-timing", value);
                Ok::<_, Infallible>(response)
            })
            .service(takes(Duration::from_millis(40)));
        let (mut client, _server) = duplex::http1(|io| serve_h1(io, stack)).await;
        let response = client.get("/").await.unwrap();
        assert_eq!(response.header("x-served-by"), Some("api-1"));
        assert_eq!(response.header("server-timing"), Some("app;dur=40"));
    });
}
// ANCHOR_END: closures
