//! Go's "goroutine pool to limit concurrency" in Rust: a semaphore in the handler.
//! Waiting for a permit (`acquire`) still bounds the downstream work, but it does not bound
//! connections or tasks: requests queue inside the server. Trying for a permit
//! (`try_acquire`) turns overload into an immediate 503 with a `retry-after` header.
//!
//! Run it: `cargo run -p lessons-junior --example anti_semaphore`, then run several
//! `curl -i http://127.0.0.1:3000/` at once: beyond 2 in flight, 503.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::RETRY_AFTER;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Stands for the expensive part: a database query, a render.
pub async fn expensive_work(took: Duration) -> String {
    tokio::time::sleep(took).await;
    "done\n".to_owned()
}

// ANCHOR: queue
/// Waits for a permit: at most N run `expensive_work` at once, the others wait in line,
/// each holding its connection, task and request while it waits.
pub async fn queued(limit: Arc<Semaphore>, took: Duration) -> Response<Full<Bytes>> {
    let _permit = limit
        .acquire()
        .await
        .expect("the semaphore is never closed");
    Response::new(Full::new(Bytes::from(expensive_work(took).await)))
}
// ANCHOR_END: queue

// ANCHOR: shed
/// Sheds: when all permits are taken, answer 503 at once and say when to come back.
pub async fn shed(limit: Arc<Semaphore>, took: Duration) -> Response<Full<Bytes>> {
    let Ok(_permit) = limit.try_acquire() else {
        let mut busy = Response::new(Full::new(Bytes::from("busy, retry later\n")));
        *busy.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        // Headers are part of the value we return: there is no "after the body was written".
        busy.headers_mut()
            .insert(RETRY_AFTER, "1".parse().expect("a valid header value"));
        return busy;
    };
    Response::new(Full::new(Bytes::from(expensive_work(took).await)))
}
// ANCHOR_END: shed

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without timestamps or module names, at INFO and above.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let limit = Arc::new(Semaphore::new(2));
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000");
    tracing::info!(
        "try: for i in 1 2 3 4; do curl -si http://127.0.0.1:3000/ | head -1 & done; wait"
    );
    loop {
        let (stream, _) = listener.accept().await?;
        let limit = Arc::clone(&limit);
        tokio::spawn(async move {
            let service = service_fn(move |_request| {
                let limit = Arc::clone(&limit);
                async move { Ok::<_, Infallible>(shed(limit, Duration::from_secs(2)).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
