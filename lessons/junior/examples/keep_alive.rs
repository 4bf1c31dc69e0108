//! Connections versus requests: where each kind of state lives.
//!
//! Every response says which connection carried it, how many requests that connection has
//! carried so far, and how many requests the server has served in total.
//!
//! Run it with `cargo run -p lessons-junior --example keep_alive`, then compare:
//!
//! ```console
//! curl http://127.0.0.1:3000/ http://127.0.0.1:3000/ http://127.0.0.1:3000/
//! for i in 1 2 3; do curl http://127.0.0.1:3000/; done
//! ```
//!
//! The first command reuses one connection for three requests; the second opens three.

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
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

// ANCHOR: state
/// Server-wide state: created once, before the accept loop, and shared by every
/// connection task through an `Arc`.
#[derive(Debug, Default)]
pub struct Totals {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
}

/// Per-connection state: created by the connection task, shared by the requests that
/// travel on that connection, dropped when the connection closes. Atomics, because over
/// HTTP/2 several requests of one connection run at the same time.
#[derive(Debug)]
struct Connection {
    number: u64,
    requests: AtomicU64,
}
// ANCHOR_END: state

// ANCHOR: accept_loop
pub async fn serve(listener: TcpListener, totals: Arc<Totals>) {
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        // Once per connection: this is the place to count connections.
        let number = totals.connections.fetch_add(1, Ordering::Relaxed) + 1;
        tokio::spawn(serve_connection(stream, number, Arc::clone(&totals)));
    }
}
// ANCHOR_END: accept_loop

// ANCHOR: connection
pub async fn serve_connection<IO>(io: IO, number: u64, totals: Arc<Totals>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = Arc::new(Connection {
        number,
        requests: AtomicU64::new(0),
    });
    // The service closure is called once per request; each call gets clones of the
    // two `Arc`s, so every request sees the same totals and the same connection.
    let service =
        service_fn(move |request| handle(request, Arc::clone(&totals), Arc::clone(&connection)));
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
    // `connection` is dropped here, with the service: per-connection state ends with it.
}
// ANCHOR_END: connection

// ANCHOR: handler
async fn handle(
    request: Request<Incoming>,
    totals: Arc<Totals>,
    connection: Arc<Connection>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // Per-request state is just local variables: nobody else can see them.
    let on_this_connection = connection.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let overall = totals.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let text = format!(
        "{} {}: connection {}, request {on_this_connection} on it, request {overall} overall\n",
        request.method(),
        request.uri().path(),
        connection.number,
    );
    Ok(Response::new(Full::new(Bytes::from(text))))
}
// ANCHOR_END: handler

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without timestamps or module names, at INFO and above.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    tracing::info!(
        "try: curl http://127.0.0.1:3000/ http://127.0.0.1:3000/ http://127.0.0.1:3000/"
    );
    serve(listener, Arc::new(Totals::default())).await;
    Ok(())
}
