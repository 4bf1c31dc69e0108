//! Go's "http.Get without the request context" in Rust. Awaiting the upstream call inline is
//! already tied to the request: if hyper drops the handler, the call is dropped with it. The
//! Rust way to lose that is to move the call into `tokio::spawn` and await its handle. And
//! like Go's default client, a call with no deadline can wait forever.
//!
//! Run it: `cargo run -p lessons-junior --example anti_detached_upstream`, then
//! `curl -i http://127.0.0.1:3000/quote` (answers 504 after 2 s).

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// How long we wait for the upstream before answering 504.
pub const UPSTREAM_DEADLINE: Duration = Duration::from_secs(2);

// ANCHOR: detached
/// Wrong: the spawned call is detached from the handler. If the client leaves, hyper drops
/// this future, but dropping the `JoinHandle` does not stop the call. No deadline either.
pub async fn quote_detached<F>(upstream: F) -> Response<Full<Bytes>>
where
    F: Future<Output = String> + Send + 'static,
{
    match tokio::spawn(upstream).await {
        Ok(quote) => text(StatusCode::OK, quote),
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "upstream task failed\n".into(),
        ),
    }
}
// ANCHOR_END: detached

// ANCHOR: inline
/// Right: awaited inline, so it is dropped with the handler, and bounded by a deadline.
pub async fn quote<F>(upstream: F) -> Response<Full<Bytes>>
where
    F: Future<Output = String>,
{
    match tokio::time::timeout(UPSTREAM_DEADLINE, upstream).await {
        Ok(quote) => text(StatusCode::OK, quote),
        // The upstream was too slow: 504 Gateway Timeout (not 408, which blames the client).
        Err(_elapsed) => text(StatusCode::GATEWAY_TIMEOUT, "upstream too slow\n".into()),
    }
}
// ANCHOR_END: inline

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// Stands for an upstream that has stopped answering.
async fn stuck_upstream() -> String {
    std::future::pending().await
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
    tracing::info!("try: curl -i http://127.0.0.1:3000/quote");
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service =
                service_fn(|_request| async { Ok::<_, Infallible>(quote(stuck_upstream()).await) });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
