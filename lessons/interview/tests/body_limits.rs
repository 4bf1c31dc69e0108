//! Body and header limits: which one refuses what, and who answers.
//!
//! Backs R18 and R23 of the bank (tower-http 0.7.1, http-body-util 0.1.5, hyper 1.12):
//! `RequestBodyLimitLayer` answers 413 itself only when `content-length` is over the limit;
//! a body without one reaches the handler wrapped in `Limited`, whose error the handler turns
//! into a status; `Limited` errors at the frame that crosses the limit, not before;
//! `max_headers` counts header lines, `max_header_size` bounds their bytes.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use harness::duplex;
use harness::watchdog::check;
use http_body_util::{BodyExt, Empty, Full, LengthLimitError, Limited, StreamBody};
use hyper::body::{Body, Frame};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::limit::RequestBodyLimitLayer;

const HANG: &str = "a limit check waited for a body that never came";
const LIMIT: usize = 1024;

/// A body of two 600-byte frames, with no length known in advance (a chunked upload).
fn two_frames() -> impl Body<Data = Bytes, Error = Infallible> {
    let frames = [600, 600].map(|n| Ok(Frame::data(Bytes::from(vec![b'x'; n]))));
    StreamBody::new(futures::stream::iter(frames))
}

/// Reads the body and says how much arrived; a body error becomes a 500, as an upload handler
/// that treats every error alike would answer.
async fn naive_upload<B>(request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible>
where
    B: Body,
    B::Error: std::fmt::Debug,
{
    let status = match request.into_body().collect().await {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    Ok(response)
}

#[test]
fn the_layer_answers_413_from_content_length_without_calling_the_handler() {
    check(HANG).paused(|| async {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let service = ServiceBuilder::new()
            .layer(RequestBodyLimitLayer::new(LIMIT))
            .service_fn(move |request: Request<_>| {
                counted.fetch_add(1, Ordering::SeqCst);
                naive_upload(request)
            });
        // The header claims 2 KiB; the body is empty and is never read.
        let request = Request::builder()
            .header("content-length", "2048")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler was called");
    });
}

#[test]
fn without_content_length_the_handler_gets_the_error_and_picks_the_status() {
    check(HANG).paused(|| async {
        let service = ServiceBuilder::new()
            .layer(RequestBodyLimitLayer::new(LIMIT))
            .service_fn(naive_upload);
        let response = service.oneshot(Request::new(two_frames())).await.unwrap();
        // Not a 413: the layer let the request through, and this handler maps every body
        // error to a 500. A handler has to recognise the limit's error to answer 413.
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

        let service = ServiceBuilder::new()
            .layer(RequestBodyLimitLayer::new(LIMIT))
            .service_fn(upload_with_413);
        let response = service.oneshot(Request::new(two_frames())).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    });
}

/// Reads the body; the limit's own error becomes a 413, any other body error a 400.
async fn upload_with_413<B>(request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let status = match request.into_body().collect().await.map_err(Into::into) {
        Ok(_) => StatusCode::OK,
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => StatusCode::PAYLOAD_TOO_LARGE,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    Ok(response)
}

#[test]
fn limited_errors_at_the_frame_that_crosses_the_limit() {
    check(HANG).paused(|| async {
        let mut body = Limited::new(two_frames(), LIMIT);
        let first = body.frame().await.unwrap();
        assert!(first.is_ok(), "600 of 1024 bytes: the first frame passes");
        let second = body.frame().await.unwrap();
        assert!(
            second.is_err(),
            "1200 of 1024 bytes: the second frame is refused"
        );
    });
}

/// Sends one request head with a single 20 KiB header to a server built by `builder`, and
/// returns the response's status line (empty if the server closed without answering).
async fn one_big_header(builder: http1::Builder) -> String {
    let (mut client, _server) = duplex::raw(move |io| {
        let service =
            service_fn(|_| async { Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new())) });
        async move { builder.serve_connection(TokioIo::new(io), service).await }
    });
    let big = "a".repeat(20 * 1024);
    let head = format!("GET / HTTP/1.1\r\nhost: x\r\ncookie: {big}\r\n\r\n");
    client.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn max_headers_counts_lines_so_one_huge_header_passes() {
    check(HANG).paused(|| async {
        let mut builder = http1::Builder::new();
        builder.max_headers(10).keep_alive(false);
        assert_eq!(one_big_header(builder).await, "HTTP/1.1 200 OK");
    });
}

#[test]
fn max_header_size_bounds_bytes_and_answers_431() {
    check(HANG).paused(|| async {
        let mut builder = http1::Builder::new();
        builder.max_header_size(16 * 1024).keep_alive(false);
        assert_eq!(
            one_big_header(builder).await,
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
    });
}
