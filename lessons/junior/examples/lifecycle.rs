//! The life of one request, made visible: the server logs each step, and every response
//! says which task ran the handler.
//!
//! Run it with `cargo run -p lessons-junior --example lifecycle`, then:
//!
//! ```console
//! curl -v http://127.0.0.1:3000/a http://127.0.0.1:3000/b
//! curl -v --http2-prior-knowledge http://127.0.0.1:3000/a
//! ```
//!
//! The first command sends two requests on one keep-alive connection: watch the server log
//! one "accepted" line and two "handler called" lines.

use std::convert::Infallible;
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
use tokio::task::Id;

// ANCHOR: connection
/// Serves one connection and reports each step of its life. Generic over the byte stream,
/// so a test can drive it over an in-memory pipe as well as over TCP.
pub async fn serve_connection<IO>(io: IO, conn_no: u64)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // We are inside the task the accept loop spawned for this connection.
    let connection_task = tokio::task::id();
    tracing::info!("[conn {conn_no}] accepted, served by task {connection_task}");

    let service = service_fn(move |request| handle(request, conn_no, connection_task));
    // This future reads request heads, calls the service, writes responses, and loops
    // for as long as the client keeps the connection alive.
    let result = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
    tracing::info!("[conn {conn_no}] closed: {result:?}");
}
// ANCHOR_END: connection

// ANCHOR: handler
/// Called once per request, after hyper has parsed the request head. The body has not
/// been read yet: it arrives through `request.into_body()` as the handler asks for it.
async fn handle(
    request: Request<Incoming>,
    conn_no: u64,
    connection_task: Id,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let where_it_runs = if tokio::task::id() == connection_task {
        "inside the connection task"
    } else {
        "in a task of its own"
    };
    tracing::info!(
        "[conn {conn_no}] handler called for {} {} ({:?}), running {where_it_runs}",
        request.method(),
        request.uri().path(),
        request.version(),
    );
    let text = format!(
        "{:?} {}: the handler ran {where_it_runs}\n",
        request.version(),
        request.uri().path()
    );
    // Returning the response is how the handler says "write this": hyper writes the head,
    // then the body, then (HTTP/1) goes back to reading the next request head.
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
    tracing::info!("try: curl http://127.0.0.1:3000/a http://127.0.0.1:3000/b");
    let connections = AtomicU64::new(0);
    loop {
        // A demo: `first_server.rs` shows an accept loop that survives accept errors.
        let (stream, _peer) = listener.accept().await?;
        let conn_no = connections.fetch_add(1, Ordering::Relaxed) + 1;
        tokio::spawn(serve_connection(stream, conn_no));
    }
}
