//! Go's "store the *Request in a queue" in Rust: `Request<Incoming>` is `Send + 'static`, so
//! queueing it compiles. But its body is still a live stream tied to the connection: until
//! the worker reads it, the connection cannot move on to the next request.
//! The fix is the same as in Go: take what you need inside the handler, queue owned data.
//!
//! Run it: `cargo run -p lessons-junior --example anti_stored_request`, then
//! `curl -d 'resize me' http://127.0.0.1:3000/thumbnails`.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

// ANCHOR: wrong
/// Wrong: the request, live body included, goes to a worker that reads it "later".
pub async fn enqueue_request(
    request: Request<Incoming>,
    queue: mpsc::UnboundedSender<Request<Incoming>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _ = queue.send(request);
    Ok(accepted())
}
// ANCHOR_END: wrong

// ANCHOR: job
/// What the worker needs, owned: no reference to the connection left in it.
#[derive(Debug)]
pub struct Job {
    pub uri: Uri,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// Right: read the body here, with a limit, and queue a `Job`.
pub async fn enqueue_job(
    request: Request<Incoming>,
    queue: mpsc::UnboundedSender<Job>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, 1024 * 1024).collect().await else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    let job = Job {
        uri: parts.uri,
        content_type: parts
            .headers
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        body: body.to_bytes(),
    };
    let _ = queue.send(job);
    Ok(accepted())
}
// ANCHOR_END: job

fn accepted() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from("queued\n")));
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}

fn status(status: StatusCode) -> Response<Full<Bytes>> {
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
    let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
    tokio::spawn(async move {
        while let Some(job) = jobs.recv().await {
            tracing::info!("job for {}: {} bytes", job.uri, job.body.len());
        }
    });
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000");
    tracing::info!("try: curl -d 'resize me' http://127.0.0.1:3000/thumbnails");
    loop {
        let (stream, _) = listener.accept().await?;
        let queue = queue.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| enqueue_job(request, queue.clone()));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
