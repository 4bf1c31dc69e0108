//! The skeleton the patterns chapter builds on: state created once before the accept loop,
//! connections counted where they are accepted, requests counted in the service, and a timer
//! on the connection builder so that the header timeout is really on.
//!
//! Run it: `cargo run -p lessons-junior --example pattern_server`, then
//! `curl http://127.0.0.1:3000/ http://127.0.0.1:3000/stats` (two requests, one connection).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

// ANCHOR: state
/// Everything the handlers share. Created once, before the accept loop, and handed to every
/// connection as a clone of the same `Arc`.
#[derive(Debug, Default)]
pub struct AppState {
    /// Accepted TCP connections: moved by the accept loop.
    pub connections: AtomicU64,
    /// Served HTTP requests: moved by the service, once per call.
    pub requests: AtomicU64,
}
// ANCHOR_END: state

// ANCHOR: builder
/// One connection builder for the whole server. The timer is what makes hyper's HTTP/1
/// header timeout (and the idle keep-alive timeout that comes with it) take effect.
pub fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5));
    builder
}
// ANCHOR_END: builder

// ANCHOR: handle
/// The service: hyper calls it once per request, on whichever connection carried it.
pub async fn handle(
    request: Request<Incoming>,
    state: Arc<AppState>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // Per request, so per call: never in the accept loop.
    state.requests.fetch_add(1, Ordering::Relaxed);
    let body = match request.uri().path() {
        "/stats" => format!(
            "connections={} requests={}\n",
            state.connections.load(Ordering::Relaxed),
            state.requests.load(Ordering::Relaxed),
        ),
        _ => "hello\n".to_owned(),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}
// ANCHOR_END: handle

// ANCHOR: accept_loop
/// Accepts connections forever, one task per connection.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) {
    let builder = builder();
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, for instance: back off instead of spinning.
                tracing::warn!("accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Per connection: this line runs once per accepted TCP connection.
        state.connections.fetch_add(1, Ordering::Relaxed);

        let state = Arc::clone(&state);
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&state)));
            // A client that leaves mid-request ends its connection with an error; that is
            // routine for a server, not a reason to log loudly.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
// ANCHOR_END: accept_loop

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without timestamps or module names, at INFO and above.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000");
    tracing::info!("try: curl http://127.0.0.1:3000/ http://127.0.0.1:3000/stats");
    serve(listener, Arc::new(AppState::default())).await;
    Ok(())
}
