//! Security basics: a bounded request head, a bounded body, a bounded number of connections.
//!
//! ```console
//! cargo run -p lessons-junior --example security
//! curl -i --data-binary @/etc/hostname http://127.0.0.1:3000/upload   # 200
//! head -c 2000000 /dev/zero | curl -i --data-binary @- http://127.0.0.1:3000/upload   # 413
//! ```
use std::convert::Infallible;
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing_subscriber::EnvFilter;

/// The largest upload this service accepts.
pub const MAX_UPLOAD: usize = 1024 * 1024;

// ANCHOR: header_limits
/// Connection settings that bound what one client can make the server hold.
pub fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Slowloris: the head must arrive within 5 s (see the timeouts chapter).
        .header_read_timeout(Duration::from_secs(5))
        // The read buffer: a request head that does not fit is refused (431).
        .max_buf_size(16 * 1024)
        // More header lines than this are refused (431).
        .max_headers(32);
    builder
}
// ANCHOR_END: header_limits

// ANCHOR: header_size
/// The same bounds for a server that speaks HTTP/1 only, built with hyper's own builder: it
/// has `max_header_size`, which hyper-util's auto builder does not expose.
pub fn http1_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5))
        // A complete request head (request line and headers) over 8 KiB is refused (431).
        .max_header_size(8 * 1024)
        .max_headers(32);
    builder
}
// ANCHOR_END: header_size

fn answer(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}

// ANCHOR: body_limit
/// Accepts an upload of at most `MAX_UPLOAD` bytes.
pub async fn upload<B>(request: Request<B>) -> Response<Full<Bytes>>
where
    B: Body,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let too_large = || answer(StatusCode::PAYLOAD_TOO_LARGE, "upload too large\n".into());
    // A client that announces a large body (content-length) is refused before we read it.
    if request.body().size_hint().lower() > MAX_UPLOAD as u64 {
        return too_large();
    }
    // A body without a length (chunked) is counted as it arrives, and we stop reading at
    // the limit: never collect a body you have not bounded.
    match Limited::new(request.into_body(), MAX_UPLOAD)
        .collect()
        .await
    {
        Ok(body) => {
            let received = body.to_bytes().len();
            answer(StatusCode::OK, format!("received {received} bytes\n"))
        }
        Err(error) if error.is::<LengthLimitError>() => too_large(),
        Err(_) => answer(StatusCode::BAD_REQUEST, "the upload was cut short\n".into()),
    }
}
// ANCHOR_END: body_limit

// ANCHOR: conn_limit
/// Serves at most `slots.available_permits()` connections at a time.
pub async fn serve(listener: TcpListener, slots: Arc<Semaphore>) -> std::io::Result<()> {
    let builder = builder();
    loop {
        // Take a slot *before* accepting: over the limit, new clients wait in the kernel's
        // accept backlog instead of costing us a task, buffers and a file descriptor.
        let permit = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (stream, _peer) = listener.accept().await?;
        let builder = builder.clone();
        tokio::spawn(async move {
            let service =
                service_fn(|request| async { Ok::<_, Infallible>(upload(request).await) });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
            // The permit was moved into this task: the slot frees when the connection ends.
            drop(permit);
        });
    }
}
// ANCHOR_END: conn_limit

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log INFO and above unless RUST_LOG says otherwise (`fmt::init()` alone shows errors only).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!(
        "listening on http://127.0.0.1:3000 (at most 1000 connections); try: \
         head -c 2000000 /dev/zero | curl -i --data-binary @- http://127.0.0.1:3000/upload"
    );
    serve(listener, Arc::new(Semaphore::new(1000))).await
}
