//! Claims of the chapter "Body and header limits", measured against hyper 1.12, hyper-util
//! 0.1.21, http-body-util 0.1.5 and tower-http 0.7.
//!
//! All run on a paused clock over in-memory pipes whose server end counts the bytes hyper
//! reads: a limit is a bound on what the server reads and holds, so that is what they measure.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, stream};
use harness::watchdog::check;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use harness::counting::{BytesRead, pipe};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/limits_server.rs"]
mod example;

use example::MAX_BODY;

/// Long enough, in virtual time, for everything that can happen to have happened.
const QUIET: Duration = Duration::from_secs(60);
const HANG: &str = "the server never answered: is a handler waiting for a body that never comes?";
const MIB: usize = 1024 * 1024;

/// A connection to the example's server (its builder and its tower stack).
fn connect_example(capacity: usize) -> (DuplexStream, BytesRead) {
    let (client, server, read) = pipe(capacity);
    tokio::spawn(async move {
        let _ = example::builder()
            .serve_connection(TokioIo::new(server), example::app())
            .await;
    });
    (client, read)
}

/// Writes `request` while reading the answer (the server may answer before it has read
/// everything), and returns the answer once the server closes the connection.
async fn exchange(client: DuplexStream, request: Vec<u8>) -> String {
    let (mut reader, mut writer) = tokio::io::split(client);
    let writing = tokio::spawn(async move {
        // The server may stop reading and close: a failed write is part of the answer.
        let _ = writer.write_all(&request).await;
        writer
    });
    let mut answer = Vec::new();
    tokio::time::timeout(QUIET, reader.read_to_end(&mut answer))
        .await
        .expect("the server should answer and close")
        .unwrap();
    drop(writing);
    String::from_utf8_lossy(&answer).into_owned()
}

fn post(framing: &str) -> Vec<u8> {
    format!("POST /store HTTP/1.1\r\nhost: workshop.test\r\nconnection: close\r\n{framing}\r\n")
        .into_bytes()
}

/// A chunked body of `total` bytes in 8 KiB chunks, terminated.
fn chunked(total: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for _ in 0..total / 8192 {
        body.extend_from_slice(b"2000\r\n");
        body.extend_from_slice(&[b'x'; 8192]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

#[test]
fn the_layer_refuses_an_announced_oversized_body_before_reading_it() {
    check(HANG).paused(|| async {
        let (client, read) = connect_example(4 * MIB);
        // 1 MiB announced and sent: the layer answers from `content-length` alone.
        let mut request = post(&format!("content-length: {MIB}\r\n"));
        request.extend_from_slice(&vec![b'x'; MIB]);
        let answer = exchange(client, request).await;
        assert!(
            answer.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
            "{answer}"
        );
        // The layer's own body: the handler was never called.
        assert!(answer.ends_with("length limit exceeded"), "{answer}");
        assert!(read.get() < 64 * 1024, "hyper read {} bytes", read.get());
    });
}

#[test]
fn a_chunked_body_over_the_limit_reaches_the_handler_as_an_error() {
    check(HANG).paused(|| async {
        let (client, read) = connect_example(4 * MIB);
        let mut request = post("transfer-encoding: chunked\r\n");
        request.extend_from_slice(&chunked(2 * MIB));
        let answer = exchange(client, request).await;
        // No length to check up front: the layer let the request through, `Limited` failed
        // the handler's read, and the 413 is the handler's own.
        assert!(
            answer.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
            "{answer}"
        );
        assert!(answer.ends_with("body over the limit\n"), "{answer}");
        // hyper read the limit and a little more (120 KiB measured), not the 2 MiB sent.
        assert_eq!(read.get(), 120 * 1024, "bytes hyper read");
    });
}

#[test]
fn a_body_within_the_limit_is_stored() {
    check(HANG).paused(|| async {
        let (client, _read) = connect_example(64 * 1024);
        let mut request = post("content-length: 5\r\n");
        request.extend_from_slice(b"hello");
        let answer = exchange(client, request).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("stored 5 bytes\n"), "{answer}");
    });
}

#[test]
fn limited_alone_waits_for_the_bytes_of_an_announced_oversized_body() {
    check(HANG).paused(|| async {
        let answered = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&answered);
        let (mut client, server, _read) = pipe(64 * 1024);
        tokio::spawn(async move {
            // The handler limits its body with `Limited` and nothing else.
            let service = service_fn(move |request: Request<Incoming>| {
                let count = Arc::clone(&count);
                async move {
                    let limited = Limited::new(request.into_body(), MAX_BODY);
                    let status = match limited.collect().await {
                        Ok(_) => StatusCode::OK,
                        Err(_) => StatusCode::PAYLOAD_TOO_LARGE,
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = status;
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(server), service)
                .await;
        });

        // 100 MiB announced, not a byte sent: nothing for `Limited` to count.
        client
            .write_all(&post("content-length: 104857600\r\n"))
            .await
            .unwrap();
        let mut byte = [0; 1];
        let waited = tokio::time::timeout(QUIET, client.read(&mut byte)).await;
        assert!(waited.is_err(), "the server answered");
        assert_eq!(
            answered.load(Ordering::SeqCst),
            0,
            "the handler is still reading"
        );
    });
}

#[test]
fn an_unbounded_drain_reads_everything_the_client_cares_to_send() {
    check(HANG).paused(|| async {
        let (client, server, read) = pipe(64 * 1024);
        tokio::spawn(async move {
            // "Always drain the body", with no bound: read and discard every frame.
            let service = service_fn(|request: Request<Incoming>| async move {
                let mut body = request.into_body();
                while let Some(Ok(_)) = body.frame().await {}
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("drained\n"))))
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(server), service)
                .await;
        });

        let mut request = post("transfer-encoding: chunked\r\n");
        let body = chunked(8 * MIB);
        request.extend_from_slice(&body);
        let length = request.len();
        let answer = exchange(client, request).await;
        assert!(answer.ends_with("drained\n"), "{answer}");
        // Every one of the 8 MiB went through the server, to be thrown away.
        assert_eq!(read.get(), length);
    });
}

/// Serves one connection through the auto builder with `max_buf_size` (if any), answering
/// every request with a body of `chunks` chunks of 8 KiB, and counts the chunks hyper pulls.
fn serve_big_response(
    server: harness::counting::CountingIo,
    max_buf_size: Option<usize>,
    pulled: Arc<AtomicUsize>,
) {
    tokio::spawn(async move {
        let service = service_fn(move |_request: Request<Incoming>| {
            let pulled = Arc::clone(&pulled);
            async move {
                let chunks = stream::iter(0..1024).map(move |_| {
                    pulled.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'y'; 8192])))
                });
                Ok::<_, Infallible>(Response::new(StreamBody::new(chunks)))
            }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        if let Some(max) = max_buf_size {
            builder.http1().max_buf_size(max);
        }
        let _ = builder
            .serve_connection(TokioIo::new(server), service)
            .await;
    });
}

#[test]
fn max_buf_size_also_bounds_how_much_response_hyper_queues_for_a_client_that_does_not_read() {
    check(HANG).paused(|| async {
        let pulled_at = |max_buf_size: Option<usize>| async move {
            let pulled = Arc::new(AtomicUsize::new(0));
            let (mut client, server, _read) = pipe(64 * 1024);
            serve_big_response(server, max_buf_size, Arc::clone(&pulled));
            client
                .write_all(b"GET /export HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
                .await
                .unwrap();
            // The client never reads: a quiet minute later, hyper has stopped pulling.
            tokio::time::sleep(QUIET).await;
            let kib = pulled.load(Ordering::SeqCst) * 8;
            drop(client);
            kib
        };
        let small = pulled_at(Some(16 * 1024)).await;
        let default = pulled_at(None).await;
        // Measured with hyper 1.12: with a small `max_buf_size`, no more than the 64 KiB pipe
        // took; with the default (about 400 KiB), hundreds of KiB queued in hyper's buffer.
        assert_eq!(small, 64, "KiB pulled with max_buf_size(16 KiB)");
        assert_eq!(default, 408, "KiB pulled with the default max_buf_size");
    });
}

#[test]
fn http2_headers_over_hypers_default_list_size_are_refused_with_431() {
    check(HANG).paused(|| async {
        let calls = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&calls);
        let (client, server) = tokio::io::duplex(256 * 1024);
        tokio::spawn(async move {
            let service = service_fn(move |_request: Request<Incoming>| {
                count.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok\n")))) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(server), service)
                .await;
        });
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client))
                .await
                .unwrap();
        tokio::spawn(connection);

        // 20 KiB of headers: over the 16 KiB hyper's server sets (h2's own default is 16 MiB).
        let mut request = harness::server::get("/");
        let cookie = "a".repeat(20 * 1024);
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
        let refused = sender.send_request(request).await.unwrap();
        assert_eq!(
            refused.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler was called");

        // Only that stream is refused: the connection carries the next request.
        let next = sender
            .send_request(harness::server::get("/"))
            .await
            .unwrap();
        assert_eq!(next.status(), StatusCode::OK);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}

/// Stores the whole body, or answers 408 with the error when reading it fails.
async fn store_or_408<B>(request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible>
where
    B: hyper::body::Body,
    B::Error: std::fmt::Display,
{
    let (status, text) = match request.into_body().collect().await {
        Ok(body) => (
            StatusCode::OK,
            format!("stored {} bytes", body.to_bytes().len()),
        ),
        Err(err) => (StatusCode::REQUEST_TIMEOUT, err.to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    Ok(response)
}

/// Sends a 10-byte body one byte every 5 virtual seconds, then reads the answer; returns the
/// status line and when (in virtual time since the head) the answer came.
async fn trickle(mut client: DuplexStream) -> (String, Duration) {
    let start = tokio::time::Instant::now();
    client
        .write_all(&post("content-length: 10\r\n"))
        .await
        .unwrap();
    let (mut reader, mut writer) = tokio::io::split(client);
    let _writer = tokio::spawn(async move {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            // The server may have answered and closed: a failed write ends the trickle.
            if writer.write_all(b"x").await.is_err() {
                break;
            }
        }
        writer
    });
    let mut answer = vec![0; 1024];
    let n = tokio::time::timeout(QUIET, reader.read(&mut answer))
        .await
        .expect("the server never answered")
        .unwrap();
    let status = String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    (status, start.elapsed())
}

#[test]
fn an_idle_timeout_lets_a_trickle_through_and_a_body_deadline_does_not() {
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceBuilder;
    use tower_http::timeout::{RequestBodyDeadlineLayer, RequestBodyTimeoutLayer};

    check(HANG).paused(|| async {
        let limit = Duration::from_secs(10);

        // A timeout between frames: a byte every 5 s restarts it every time.
        let (client, server) = tokio::io::duplex(64 * 1024);
        let stack = ServiceBuilder::new()
            .layer(RequestBodyTimeoutLayer::new(limit))
            .service_fn(store_or_408);
        tokio::spawn(
            auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(server), TowerToHyperService::new(stack))
                .into_owned(),
        );
        let (status, after) = trickle(client).await;
        assert_eq!(status, "HTTP/1.1 200 OK", "the idle timeout tripped");
        assert_eq!(
            after,
            Duration::from_secs(50),
            "the whole trickle was waited for"
        );

        // One deadline for the whole body: the same trickle fails at exactly 10 s.
        let (client, server) = tokio::io::duplex(64 * 1024);
        let stack = ServiceBuilder::new()
            .layer(RequestBodyDeadlineLayer::new(limit))
            .service_fn(store_or_408);
        tokio::spawn(
            auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(server), TowerToHyperService::new(stack))
                .into_owned(),
        );
        let (status, after) = trickle(client).await;
        assert_eq!(
            status, "HTTP/1.1 408 Request Timeout",
            "the deadline did not trip"
        );
        assert_eq!(after, limit, "the deadline fired late or early");
    });
}
