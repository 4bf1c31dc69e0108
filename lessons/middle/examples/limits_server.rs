//! A server with a limit at every place a request can make it hold memory: the head (hyper's
//! HTTP/1 builder), the body (tower-http's `RequestBodyLimitLayer`, plus the handler's own
//! answer to a chunked body over the limit).
//!
//! Run it with `cargo run -p lessons-middle --example limits_server`. It starts the server on
//! a free port, sends it one request of each kind over raw TCP, logs each answer, and exits.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceBuilder;
use tower_http::body::Limited;
use tower_http::limit::RequestBodyLimitLayer;

/// The largest request body the service accepts.
pub const MAX_BODY: usize = 64 * 1024;
/// The largest request head (request line and headers) the server accepts.
pub const MAX_HEAD: usize = 16 * 1024;

// ANCHOR: builder
/// hyper's own HTTP/1 builder: the only one with `max_header_size` (the auto builder of
/// hyper-util 0.1.21 does not expose it).
pub fn builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        // Request line plus headers: over this, hyper answers 431 and closes.
        .max_header_size(MAX_HEAD)
        // Header lines: over this, 431 too.
        .max_headers(64);
    builder
}
// ANCHOR_END: builder

/// The service: every request's body goes through the limit layer before the handler.
pub fn app() -> TowerToHyperService<
    impl tower::Service<
        Request<Incoming>,
        Response = Response<impl hyper::body::Body<Data = Bytes, Error: Into<tower::BoxError>>>,
        Error = Infallible,
        Future: Send,
    > + Clone
    + Send,
> {
    // ANCHOR: stack
    let stack = ServiceBuilder::new()
        // A `content-length` over the limit: 413 at once, the handler is never called.
        // Otherwise the body reaches the handler wrapped in `Limited`.
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .service_fn(store);
    // hyper calls a clone of the stack per request: see the tower chapter.
    TowerToHyperService::new(stack)
    // ANCHOR_END: stack
}

// ANCHOR: handler
/// Reads the body, which the layer has limited, and answers how much it got.
async fn store(request: Request<Limited<Incoming>>) -> Result<Response<Full<Bytes>>, Infallible> {
    match request.into_body().collect().await {
        Ok(body) => Ok(answer(
            StatusCode::OK,
            format!("stored {} bytes\n", body.to_bytes().len()),
        )),
        // A chunked body has no length to check up front: the layer cannot answer for it,
        // and the limit shows up here, as an error of the body.
        Err(error) if error.is::<LengthLimitError>() => Ok(answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body over the limit\n".to_owned(),
        )),
        Err(_) => Ok(answer(
            StatusCode::BAD_REQUEST,
            "incomplete body\n".to_owned(),
        )),
    }
}
// ANCHOR_END: handler

fn answer(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}

/// Sends the head `head` and then `body` on a new connection; returns the answer's status
/// line and its last line, read until the server closes or ends its response.
async fn ask(addr: std::net::SocketAddr, head: String, body: Vec<u8>) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before reading everything: ignore write errors.
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    // No `shutdown()` of our write half here: hyper would take it for a client that left
    // (`half_close` is off) and drop the handler before it answers.
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .lines()
        .next()
        .unwrap_or("(closed, no answer)")
        .to_owned();
    let last = answer.lines().last().unwrap_or_default().to_owned();
    format!("{status} | {last}")
}

/// A chunked body of `total` bytes, in 8 KiB chunks, with its terminating chunk.
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

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = builder()
                    .serve_connection(TokioIo::new(stream), app())
                    .await;
            });
        }
    });

    let post = |length: &str| {
        format!("POST /store HTTP/1.1\r\nhost: demo\r\nconnection: close\r\n{length}\r\n")
    };
    let small = ask(addr, post("content-length: 5\r\n"), b"hello".to_vec()).await;
    tracing::info!("5 bytes:                  {small}");
    let announced = ask(addr, post("content-length: 10485760\r\n"), Vec::new()).await;
    tracing::info!("10 MiB announced:         {announced}");
    let streamed = ask(
        addr,
        post("transfer-encoding: chunked\r\n"),
        chunked(256 * 1024),
    )
    .await;
    tracing::info!("256 KiB chunked:          {streamed}");
    let cookie = format!("cookie: {}\r\n", "a".repeat(20 * 1024));
    let big_head = ask(addr, post(&cookie), Vec::new()).await;
    tracing::info!("20 KiB of headers:        {big_head}");
}
