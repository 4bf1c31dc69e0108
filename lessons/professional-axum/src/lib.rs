//! Serving an axum `Router` through our own accept loop, so that hyper's header timeout runs.
//!
//! `axum::serve` builds hyper-util's auto builder with no timer (tokio-rs/axum#2741), so a client
//! that sends half a request head holds its connection for ever. This loop is the fix: the same
//! `Router`, served by hyper's HTTP/1 builder with a timer and a header timeout.
//!
//! Run it: `cargo run -p lessons-professional-axum --example axum_loop`.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use axum::serve::Listener;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

// ANCHOR: app
/// The application: an ordinary axum `Router`, which knows nothing about how it is served.
pub fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "hello from axum\n" }))
        .route("/health", get(|| async { "ok\n" }))
}
// ANCHOR_END: app

// ANCHOR: builder
/// The connection builder: hyper's HTTP/1 builder, which starts the header timer as soon as
/// a connection is served (before its first byte), with the timer that makes it run.
pub fn builder(header_timeout: Duration) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
}
// ANCHOR_END: builder

// ANCHOR: serve
/// Accepts connections from `listener` for ever and serves `router` on each one.
///
/// Generic over axum's own `Listener` trait, so the same loop serves a `TcpListener` in
/// production and an in-memory listener in the tests.
pub async fn serve<L: Listener>(mut listener: L, router: Router, header_timeout: Duration) {
    let builder = builder(header_timeout);
    loop {
        let (io, _peer) = listener.accept().await;
        // Router is a tower `Service`; hyper wants its own `Service` trait: the adapter
        // clones the router for every request, which is cheap (an `Arc` inside).
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::spawn(async move {
            // `with_upgrades` keeps axum's WebSocket routes working, as `axum::serve` does.
            if let Err(error) = connection.with_upgrades().await {
                tracing::info!("connection closed: {error}");
            }
        });
    }
}
// ANCHOR_END: serve
