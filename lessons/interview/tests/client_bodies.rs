//! What hyper's client does with a response body that the caller drops without reading.
//!
//! Backs Q7 and Q14 of the bank. Over HTTP/1 the client reads what has already arrived of a
//! dropped body and keeps the connection for the next request; a body still arriving costs
//! the connection. Over HTTP/2 a dropped body resets its stream only: the server's producer
//! sees its receiver go, and the connection carries the next request. A call dropped before
//! its response (a caller's timeout) closes the HTTP/1 connection or resets the HTTP/2 stream,
//! and the next hop's handler is dropped with it.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use harness::leak::Gauge;
use harness::watchdog::check;
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::{http1 as client_h1, http2 as client_h2};
use hyper::server::conn::{http1 as server_h1, http2 as server_h2};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::Duration;

const HANG: &str = "the client waited for a connection or a response that never came";

type Body = BoxBody<Bytes, Infallible>;

/// `/small` answers a few bytes at once; `/endless` sends one chunk and then holds its body
/// open for ever, with a drop guard in the producer so the check can see when it goes.
fn service(
    gauge: Gauge,
    served: Arc<AtomicUsize>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
> + Clone {
    service_fn(move |request: Request<Incoming>| {
        served.fetch_add(1, Ordering::SeqCst);
        let guard = gauge.guard();
        async move {
            let body = if request.uri().path() == "/endless" {
                let first = futures::stream::once(async {
                    Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"first chunk\n")))
                });
                let rest = futures::stream::once(async move {
                    // The producer waits here for ever; its guard goes when the body is dropped.
                    let _guard = guard;
                    std::future::pending::<()>().await;
                    Ok(Frame::data(Bytes::new()))
                });
                StreamBody::new(futures::StreamExt::chain(first, rest)).boxed()
            } else {
                drop(guard);
                Full::new(Bytes::from_static(b"small\n")).boxed()
            };
            Ok(Response::new(body))
        }
    })
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(format!("http://bank.test{path}"))
        .body(Empty::new())
        .unwrap()
}

/// An HTTP/1 client connection to a fresh server, over an in-memory pipe.
async fn http1_pair(
    gauge: Gauge,
    served: Arc<AtomicUsize>,
) -> (
    client_h1::SendRequest<Empty<Bytes>>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(
        server_h1::Builder::new().serve_connection(TokioIo::new(server_io), service(gauge, served)),
    );
    let (sender, connection) = client_h1::handshake(TokioIo::new(client_io)).await.unwrap();
    (sender, tokio::spawn(connection))
}

#[test]
fn http1_drains_a_dropped_body_that_has_arrived_and_reuses_the_connection() {
    check(HANG).paused(|| async {
        let served = Arc::new(AtomicUsize::new(0));
        let (mut sender, connection) = http1_pair(Gauge::new(), served.clone()).await;
        let response = sender.send_request(get("/small")).await.unwrap();
        drop(response); // never read
        sender.ready().await.expect("the connection is reusable");
        let again = sender.send_request(get("/small")).await.unwrap();
        let text = again.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&text[..], b"small\n");
        assert_eq!(served.load(Ordering::SeqCst), 2);
        assert!(!connection.is_finished());
    });
}

#[test]
fn http1_closes_the_connection_when_a_dropped_body_is_still_arriving() {
    check(HANG).paused(|| async {
        let gauge = Gauge::new();
        let (mut sender, connection) = http1_pair(gauge.clone(), Arc::default()).await;
        let response = sender.send_request(get("/endless")).await.unwrap();
        drop(response);
        assert!(
            sender.ready().await.is_err(),
            "a connection with half a body in it cannot carry the next request"
        );
        connection.await.unwrap().unwrap();
        // Closing the connection also ends the server's producer.
        assert!(gauge.settles_to(0, Duration::from_secs(10)).await);
    });
}

#[test]
fn http2_resets_only_the_stream_of_a_dropped_body() {
    check(HANG).paused(|| async {
        let gauge = Gauge::new();
        let served = Arc::new(AtomicUsize::new(0));
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        tokio::spawn(
            server_h2::Builder::new(TokioExecutor::new()).serve_connection(
                TokioIo::new(server_io),
                service(gauge.clone(), served.clone()),
            ),
        );
        let (mut sender, connection) =
            client_h2::handshake(TokioExecutor::new(), TokioIo::new(client_io))
                .await
                .unwrap();
        let connection = tokio::spawn(connection);
        let response = sender.send_request(get("/endless")).await.unwrap();
        assert_eq!(gauge.live(), 1);
        drop(response);
        // The stream is reset: the server drops that body, and its producer with it...
        assert!(gauge.settles_to(0, Duration::from_secs(10)).await);
        // ...while the connection carries the next request.
        sender.ready().await.expect("the connection is still up");
        let again = sender.send_request(get("/small")).await.unwrap();
        let text = again.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&text[..], b"small\n");
        assert_eq!(served.load(Ordering::SeqCst), 2);
        assert!(!connection.is_finished());
    });
}

/// `/hang` answers nothing, ever; its guard shows whether the server still runs the handler.
fn hanging_service(
    gauge: Gauge,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
> + Clone {
    service_fn(move |_: Request<Incoming>| {
        let guard = gauge.guard();
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()).boxed()))
        }
    })
}

#[test]
fn http1_a_call_dropped_before_its_response_closes_the_connection_and_the_next_hops_handler() {
    check(HANG).paused(|| async {
        let handlers = Gauge::new();
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        tokio::spawn(
            server_h1::Builder::new()
                .serve_connection(TokioIo::new(server_io), hanging_service(handlers.clone())),
        );
        let (mut sender, connection) = client_h1::handshake(TokioIo::new(client_io)).await.unwrap();
        let connection = tokio::spawn(connection);
        let call = sender.send_request(get("/hang"));
        // The call is dropped (a caller's timeout, a client that left) once the next hop runs it.
        let dropped = tokio::time::timeout(Duration::from_secs(1), call).await;
        assert!(dropped.is_err(), "the upstream never answers");
        assert_eq!(handlers.started(), 1);
        assert!(sender.ready().await.is_err(), "the connection is gone");
        connection.await.unwrap().unwrap();
        // The next hop saw the connection close while it was reading it: its handler is dropped.
        assert!(handlers.settles_to(0, Duration::from_secs(10)).await);
    });
}

#[test]
fn http2_a_call_dropped_before_its_response_resets_only_its_stream() {
    check(HANG).paused(|| async {
        let handlers = Gauge::new();
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        tokio::spawn(
            server_h2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(server_io), hanging_service(handlers.clone())),
        );
        let (mut sender, connection) =
            client_h2::handshake(TokioExecutor::new(), TokioIo::new(client_io))
                .await
                .unwrap();
        let connection = tokio::spawn(connection);
        let call = sender.send_request(get("/hang"));
        assert!(
            tokio::time::timeout(Duration::from_secs(1), call)
                .await
                .is_err()
        );
        assert_eq!(handlers.started(), 1);
        // The stream is reset: the next hop drops that handler, and the connection stays up.
        assert!(handlers.settles_to(0, Duration::from_secs(10)).await);
        sender.ready().await.expect("the connection is still up");
        assert!(!connection.is_finished());
    });
}
