//! Body timeouts in tower-http 0.7: per frame, or one deadline for the whole body.
//!
//! Backs Q13, Q23 and R6 of the bank: `RequestBodyTimeoutLayer` and
//! `ResponseBodyTimeoutLayer` restart their timer at every frame, so a peer that trickles one
//! frame just inside the timeout is never cut off; `RequestBodyDeadlineLayer` and
//! `ResponseBodyDeadlineLayer` start one timer when the body is wrapped and end it there.
//! Everything runs on the paused clock, over an in-memory connection where a socket is needed.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use harness::duplex;
use harness::watchdog::check;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Body, Frame};
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::timeout::{
    RequestBodyDeadlineLayer, RequestBodyTimeoutLayer, ResponseBodyDeadlineLayer,
    ResponseBodyTimeoutLayer,
};

const HANG: &str = "a paused-clock check spun without yielding";
/// The body limit both kinds of layer are given.
const LIMIT: Duration = Duration::from_secs(10);
/// How often the slow peer sends one byte: always just inside `LIMIT`.
const TRICKLE: Duration = Duration::from_secs(9);
/// How many bytes the slow peer sends: 60 of them take nine virtual minutes.
const BYTES: usize = 60;

/// Reads the whole request body; a body error (the layer's timeout) becomes a 408, which is the
/// right status for a client too slow to send its request.
async fn upload<B>(request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible>
where
    B: Body,
{
    let response = match request.into_body().collect().await {
        Ok(body) => Response::new(Full::new(Bytes::from(format!(
            "received {} bytes\n",
            body.to_bytes().len()
        )))),
        Err(_) => {
            let mut response = Response::new(Full::new(Bytes::from("body too slow\n")));
            *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
            response
        }
    };
    Ok(response)
}

/// Serves `service` on an in-memory HTTP/1 connection, sends it a chunked body one byte every
/// `TRICKLE`, and returns the response's status line and when it arrived.
async fn trickle_upload<S>(service: S) -> (String, Duration)
where
    S: tower::Service<Request<hyper::body::Incoming>, Response = Response<Full<Bytes>>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (client, _server) = duplex::raw(|io| async move {
        http1::Builder::new()
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
            .await
    });
    let (mut reader, mut writer) = tokio::io::split(client);
    let start = Instant::now();
    // The slow client: it never stops for longer than TRICKLE.
    let sender = tokio::spawn(async move {
        let head = "POST /upload HTTP/1.1\r\nhost: bank.test\r\ntransfer-encoding: chunked\r\n\r\n";
        writer.write_all(head.as_bytes()).await?;
        for _ in 0..BYTES {
            tokio::time::sleep(TRICKLE).await;
            writer.write_all(b"1\r\nx\r\n").await?;
        }
        writer.write_all(b"0\r\n\r\n").await?;
        Ok::<_, std::io::Error>(writer)
    });
    let mut buf = vec![0; 1024];
    let n = reader.read(&mut buf).await.unwrap();
    let arrived = start.elapsed();
    sender.abort();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    (status, arrived)
}

#[test]
fn a_per_frame_request_body_timeout_lets_a_trickling_client_go_on_for_ever() {
    check(HANG).paused(|| async {
        let service = ServiceBuilder::new()
            .layer(RequestBodyTimeoutLayer::new(LIMIT))
            .service_fn(upload);
        let (status, arrived) = trickle_upload(service).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        // Sixty frames, each 9 s apart: the 10 s timeout restarted at every one of them.
        assert_eq!(arrived, TRICKLE * BYTES as u32);
    });
}

#[test]
fn a_request_body_deadline_ends_the_trickle_at_the_deadline() {
    check(HANG).paused(|| async {
        let service = ServiceBuilder::new()
            .layer(RequestBodyDeadlineLayer::new(LIMIT))
            .service_fn(upload);
        let (status, arrived) = trickle_upload(service).await;
        assert_eq!(status, "HTTP/1.1 408 Request Timeout");
        assert_eq!(arrived, LIMIT);
    });
}

/// A response body that produces one byte every `TRICKLE`: a slow producer (an upstream, a
/// report) behind a handler that has already returned its response.
fn trickling_body() -> StreamBody<impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    let frames = futures::stream::unfold(0, |sent| async move {
        if sent == BYTES {
            return None;
        }
        tokio::time::sleep(TRICKLE).await;
        Some((Ok(Frame::data(Bytes::from_static(b"x"))), sent + 1))
    });
    StreamBody::new(frames)
}

#[test]
fn a_per_frame_response_body_timeout_lets_a_slow_producer_go_on_for_ever() {
    check(HANG).paused(|| async {
        let service = ServiceBuilder::new()
            .layer(ResponseBodyTimeoutLayer::new(LIMIT))
            .service_fn(|_: Request<()>| async {
                Ok::<_, Infallible>(Response::new(trickling_body()))
            });
        let start = Instant::now();
        let response = service.oneshot(Request::new(())).await.unwrap();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("never timed out");
        assert_eq!(body.to_bytes().len(), BYTES);
        assert_eq!(start.elapsed(), TRICKLE * BYTES as u32);
    });
}

#[test]
fn a_response_body_deadline_ends_a_slow_producer_at_the_deadline() {
    check(HANG).paused(|| async {
        let service = ServiceBuilder::new()
            .layer(ResponseBodyDeadlineLayer::new(LIMIT))
            .service_fn(|_: Request<()>| async {
                Ok::<_, Infallible>(Response::new(trickling_body()))
            });
        let start = Instant::now();
        let response = service.oneshot(Request::new(())).await.unwrap();
        let error = response.into_body().collect().await.unwrap_err();
        assert!(error.is::<tower_http::timeout::TimeoutError>(), "{error:?}");
        assert_eq!(start.elapsed(), LIMIT);
    });
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An endless, fast body: only the socket can slow it down.
fn endless_body() -> StreamBody<impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
    StreamBody::new(futures::stream::repeat_with(move || {
        Ok(Frame::data(chunk.clone()))
    }))
}

/// Serves `service` on an in-memory HTTP/1 connection whose client sends one request and then
/// reads nothing. Returns the client's end (kept open) and the connection's task.
async fn serve_a_client_that_stops_reading<S, B>(
    service: S,
) -> (
    tokio::io::DuplexStream,
    harness::duplex::ServerSide<hyper::Result<()>>,
)
where
    S: tower::Service<Request<hyper::body::Incoming>, Response = Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut client, server) = duplex::raw(|io| async move {
        http1::Builder::new()
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
            .await
    });
    client
        .write_all(b"GET /export HTTP/1.1\r\nhost: bank.test\r\n\r\n")
        .await
        .unwrap();
    (client, server)
}

#[test]
fn a_per_frame_response_body_timeout_never_ends_a_client_that_stops_reading() {
    check(HANG).paused(|| async {
        let service = ServiceBuilder::new()
            .layer(ResponseBodyTimeoutLayer::new(LIMIT))
            .service_fn(|_: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(Response::new(endless_body()))
            });
        let (_client, server) = serve_a_client_that_stops_reading(service).await;
        // Every frame the body was asked for was ready at once, so the per-frame timer never
        // ran out; once the pipe is full nobody asks for the next frame. A virtual day later
        // the connection is still there.
        let day = Duration::from_secs(24 * 3600);
        assert!(tokio::time::timeout(day, server.task).await.is_err());
    });
}

#[test]
fn a_response_body_deadline_ends_a_client_that_stops_reading_at_the_deadline() {
    check(HANG).paused(|| async {
        let service = ServiceBuilder::new()
            .layer(ResponseBodyDeadlineLayer::new(LIMIT))
            .service_fn(|_: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(Response::new(endless_body()))
            });
        let start = Instant::now();
        let (_client, server) = serve_a_client_that_stops_reading(service).await;
        let error = server.task.await.unwrap().unwrap_err();
        assert_eq!(start.elapsed(), LIMIT);
        let cause = std::error::Error::source(&error).expect("the body's error");
        assert!(cause.is::<tower_http::timeout::TimeoutError>(), "{error:?}");
    });
}
