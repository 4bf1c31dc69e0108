//! tower under hyper 1.x: a clone per request, what clones share, and a hand-written layer.
//!
//! Backs Q28, Q31 and R11 of the bank (tower 0.5.3, hyper-util 0.1.21):
//! `TowerToHyperService` clones the tower service for every request and drives the clone with
//! `poll_ready` then `call`; `ConcurrencyLimit`'s clones share one semaphore; `RateLimit` is not
//! `Clone` (see the crate's doc examples), so it is shared through a `Buffer` or it limits
//! nothing across connections; `LoadShed` turns "not ready" into an `Overloaded` error, which
//! `lessons_interview::overload` answers with a 503.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use harness::duplex;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use lessons_interview::overload::OverloadAs503Layer;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tower::limit::{ConcurrencyLimit, RateLimit};
use tower::{Service, ServiceBuilder, ServiceExt};

const HANG: &str = "a request waited for a permit or a gate that never opened";

fn ok() -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from("ok\n")))
}

/// A service that counts how many times it is cloned.
#[derive(Default)]
struct CountsClones {
    clones: Arc<AtomicUsize>,
}

impl Clone for CountsClones {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Self {
            clones: self.clones.clone(),
        }
    }
}

impl Service<Request<Incoming>> for CountsClones {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Incoming>) -> Self::Future {
        std::future::ready(Ok(ok()))
    }
}

#[test]
fn hyper_utils_adapter_clones_the_tower_service_for_every_request() {
    check(HANG).paused(|| async {
        let service = CountsClones::default();
        let clones = service.clones.clone();
        let (mut client, _server) = duplex::http1(|io| async move {
            http1::Builder::new()
                .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
                .await
        })
        .await;
        for _ in 0..3 {
            assert_eq!(client.get("/").await.unwrap().status, StatusCode::OK);
        }
        // One clone per request: state kept in the service value lives for one request.
        assert_eq!(clones.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn concurrency_limit_clones_share_one_semaphore() {
    check(HANG).paused(|| async {
        let inner = tower::service_fn(|_: ()| async { Ok::<_, Infallible>(()) });
        let mut a = ConcurrencyLimit::new(inner, 1);
        let mut b = a.clone();
        // `a` takes the only permit in `poll_ready`...
        a.ready().await.unwrap();
        // ...so its clone cannot become ready until `a`'s request is done.
        assert!(b.ready().now_or_never().is_none());
        a.call(()).await.unwrap();
        assert!(b.ready().now_or_never().is_some());
    });
}

/// Four calls through `services` (two each), on the paused clock, with a limit of two per
/// second: when each call was let through.
async fn four_calls<S>(mut services: [S; 2]) -> Vec<Duration>
where
    S: Service<(), Response = (), Error = tower::BoxError>,
{
    let start = Instant::now();
    let mut times = Vec::new();
    for _ in 0..2 {
        for service in &mut services {
            service.ready().await.unwrap().call(()).await.unwrap();
            times.push(start.elapsed());
        }
    }
    times
}

/// The service behind the rate limit: answers at once.
type Ready = fn(()) -> std::future::Ready<Result<(), tower::BoxError>>;

/// Two calls a second.
fn rate_limited() -> RateLimit<tower::util::ServiceFn<Ready>> {
    let inner: Ready = |_| std::future::ready(Ok(()));
    ServiceBuilder::new()
        .rate_limit(2, Duration::from_secs(1))
        .service(tower::service_fn(inner))
}

#[test]
fn one_rate_limit_shared_through_a_buffer_limits_every_clone() {
    check(HANG).paused(|| async {
        let shared = tower::buffer::Buffer::new(rate_limited(), 16);
        let times = four_calls([shared.clone(), shared]).await;
        let second = Duration::from_secs(1);
        assert_eq!(times, [Duration::ZERO, Duration::ZERO, second, second]);
    });
}

#[test]
fn a_rate_limit_built_per_connection_limits_each_connection_separately() {
    check(HANG).paused(|| async {
        // What a stack built inside the accept loop does: one limiter per connection.
        let per_connection = [rate_limited(), rate_limited()];
        let times = four_calls(per_connection.map(|limit| limit.map_err(Into::into))).await;
        assert_eq!(
            times,
            [Duration::ZERO; 4],
            "four calls let through in the first second"
        );
    });
}

#[test]
fn load_shed_over_a_concurrency_limit_answers_503_with_retry_after() {
    check(HANG).paused(|| async {
        let gate = Arc::new(Semaphore::new(0));
        let (entered_tx, mut entered) = mpsc::unbounded_channel();
        let handler_gate = gate.clone();
        let service = ServiceBuilder::new()
            .layer(OverloadAs503Layer)
            .load_shed()
            .concurrency_limit(1)
            .service_fn(move |_: Request<Incoming>| {
                let gate = handler_gate.clone();
                let entered = entered_tx.clone();
                async move {
                    entered.send(()).unwrap();
                    let _permit = gate.acquire().await.unwrap();
                    Ok::<_, Infallible>(ok())
                }
            });
        let connect = || {
            let service = TowerToHyperService::new(service.clone());
            duplex::http1(move |io| async move {
                http1::Builder::new()
                    .serve_connection(TokioIo::new(io), service)
                    .await
            })
        };
        let (mut first, _a) = connect().await;
        let (mut second, _b) = connect().await;
        let slow = tokio::spawn(async move { first.get("/report").await.unwrap().status });
        entered.recv().await.unwrap(); // the first request holds the only slot
        let shed = second.get("/report").await.unwrap();
        assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(shed.header("retry-after"), Some("1"));
        gate.add_permits(1);
        assert_eq!(slow.await.unwrap(), StatusCode::OK);
    });
}

/// A middleware that clones the inner service in `call` and calls the clone: the clone is not
/// the service `poll_ready` prepared.
#[derive(Clone)]
struct CallsAClone<S>(S);

impl<S, R> Service<R> for CallsAClone<S>
where
    S: Service<R> + Clone + Send + 'static,
    S::Future: Send,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let mut clone = self.0.clone();
        Box::pin(async move { clone.call(request).await })
    }
}

#[test]
fn calling_a_clone_that_was_not_made_ready_breaks_concurrency_limit() {
    check(HANG).paused(|| async {
        let inner = tower::service_fn(|_: ()| async { Ok::<_, Infallible>(()) });
        let mut service = CallsAClone(ConcurrencyLimit::new(inner, 1));
        service.ready().await.unwrap();
        let call = service.call(());
        // The clone holds no permit: ConcurrencyLimit panics rather than exceed its limit.
        let outcome = tokio::spawn(call).await;
        assert!(outcome.unwrap_err().is_panic());
    });
}
