//! Worked example 1: counting connections and requests.
//!
//! Every answer says which connection carried the request, how many requests that connection
//! has carried so far, and the server-wide totals. Keep-alive makes the two totals differ.
//!
//! Run it: `cargo run -p lessons-junior --example worked_conn_vs_req`, then compare
//! `curl http://127.0.0.1:3000/ http://127.0.0.1:3000/ http://127.0.0.1:3000/`
//! (one connection, three requests) with three separate `curl` commands.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

// ANCHOR: totals
/// Server-wide totals: one value, created once, shared by every connection task.
#[derive(Debug, Default)]
pub struct Totals {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
}
// ANCHOR_END: totals

// ANCHOR: per_connection
/// What one connection knows about itself: created inside its task, dropped with it.
#[derive(Debug)]
pub struct ThisConnection {
    pub number: u64,
    pub requests: AtomicU64,
}
// ANCHOR_END: per_connection

// ANCHOR: handle
/// Called once per request.
pub async fn handle(
    _request: Request<Incoming>,
    totals: Arc<Totals>,
    this: Arc<ThisConnection>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let on_this = this.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let requests = totals.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let body = format!(
        "connection {} request {on_this}; totals: connections={} requests={requests}\n",
        this.number,
        totals.connections.load(Ordering::Relaxed),
    );
    Ok(Response::new(Full::new(Bytes::from(body))))
}
// ANCHOR_END: handle

// ANCHOR: accept_loop
/// Runs the accept loop: once per TCP connection.
pub async fn serve(listener: TcpListener, totals: Arc<Totals>) {
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        let number = totals.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let totals = Arc::clone(&totals);
        tokio::spawn(async move {
            let this = Arc::new(ThisConnection {
                number,
                requests: AtomicU64::new(0),
            });
            let service =
                service_fn(move |request| handle(request, Arc::clone(&totals), Arc::clone(&this)));
            let _ = auto::Builder::new(TokioExecutor::new())
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
    tracing::info!("one connection: curl http://127.0.0.1:3000/ http://127.0.0.1:3000/");
    tracing::info!("new connections: curl http://127.0.0.1:3000/; curl http://127.0.0.1:3000/");
    serve(listener, Arc::new(Totals::default())).await;
    Ok(())
}
