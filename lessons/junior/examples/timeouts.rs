//! Server timeouts: the header timeout (which needs a timer) and a deadline for the handler.
//!
//! ```console
//! cargo run -p lessons-junior --example timeouts
//! curl -i http://127.0.0.1:3000/slow          # 504 after 2 s
//! (printf 'GET / HTTP/1.1\r\nHost: x\r\n'; sleep 10) | nc 127.0.0.1 3000   # closed after 5 s
//! ```
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

// ANCHOR: builder
/// The connection builder every connection of this server uses.
pub fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // Without a timer hyper cannot measure time, and its HTTP/1 timeouts are off.
        .timer(TokioTimer::new())
        // The whole request head must arrive within 5 s. The same timer closes a
        // keep-alive connection that stays idle for 5 s after a response.
        .header_read_timeout(Duration::from_secs(5));
    builder
}
// ANCHOR_END: builder

// ANCHOR: http1_only
/// The same settings for a server that speaks HTTP/1 only: hyper starts the header timer
/// as soon as the connection is served, before the client has sent a single byte.
pub fn http1_only_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5));
    builder
}
// ANCHOR_END: http1_only

// ANCHOR: deadline
/// Runs `work` under a deadline. Past it, the work is dropped and the client gets a 504.
pub async fn with_deadline(
    deadline: Duration,
    work: impl Future<Output = Response<Full<Bytes>>>,
) -> Response<Full<Bytes>> {
    match tokio::time::timeout(deadline, work).await {
        Ok(response) => response,
        Err(_elapsed) => {
            let mut response = Response::new(Full::new(Bytes::from("the report took too long\n")));
            *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
            response
        }
    }
}
// ANCHOR_END: deadline

async fn report(request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() == "/slow" {
        // Stands for an upstream call that hangs.
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    Response::new(Full::new(Bytes::from("report ready\n")))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log INFO and above unless RUST_LOG says otherwise (`fmt::init()` alone shows errors only).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000; try: curl -i http://127.0.0.1:3000/slow");
    let builder = builder();
    loop {
        let (stream, _peer) = listener.accept().await?;
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(|request| async move {
                let response = with_deadline(Duration::from_secs(2), report(request)).await;
                Ok::<_, Infallible>(response)
            });
            if let Err(error) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::info!("connection ended: {error}");
            }
        });
    }
}
