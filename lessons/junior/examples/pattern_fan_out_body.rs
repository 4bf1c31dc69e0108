//! Collecting a request body once, with a limit, into `Bytes`, then handing a cheap clone of
//! it to every task that needs it. The body itself (`Incoming`) is a stream: it can be read
//! once, by one owner. `Bytes` is an immutable, reference-counted buffer: clones share it.
//!
//! Run it: `cargo run -p lessons-junior --example pattern_fan_out_body`, then
//! `curl --data-binary 'hello' http://127.0.0.1:3000/upload`.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// The largest upload we accept.
pub const MAX_UPLOAD: usize = 64 * 1024;

// ANCHOR: collect
/// Reads the whole body, but never more than `limit` bytes.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, StatusCode> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(StatusCode::PAYLOAD_TOO_LARGE),
        // The client went away or sent a malformed body.
        Err(_) => Err(StatusCode::BAD_REQUEST),
    }
}
// ANCHOR_END: collect

/// Stands for a write to one replica; here it only reports what it received.
async fn store(replica: usize, data: Bytes) -> (usize, Bytes) {
    tokio::task::yield_now().await;
    (replica, data)
}

// ANCHOR: fan_out
/// Stores the upload on three replicas at once.
pub async fn upload(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let data = match read_body(request.into_body(), MAX_UPLOAD).await {
        Ok(data) => data,
        Err(status) => return Ok(status_only(status)),
    };
    let mut writes = JoinSet::new();
    for replica in 0..3 {
        // A clone of `Bytes` copies a pointer and bumps a count, not the data.
        writes.spawn(store(replica, data.clone()));
    }
    let mut stored = 0;
    while let Some(written) = writes.join_next().await {
        let (_replica, copy) = written.expect("a replica write panicked");
        stored += usize::from(copy == data);
    }
    let body = format!("stored {stored} copies of {} bytes\n", data.len());
    Ok(Response::new(Full::new(Bytes::from(body))))
}
// ANCHOR_END: fan_out

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without timestamps or module names, at INFO and above.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000");
    tracing::info!("try: curl --data-binary 'hello' http://127.0.0.1:3000/upload");
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service_fn(upload))
                .await;
        });
    }
}
