//! `statsd-lite`: a small service that reports how busy it is.
//!
//! `GET /stats` answers `connections=N requests=M`: how many TCP connections the server has
//! accepted, and how many HTTP requests it has served (the `/stats` request included). Every
//! other path answers `hello`. The operations team reads these two numbers to size the
//! connection pool of the load balancer in front of us, so they have to be right.

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

/// Counters shared by every connection task.
#[derive(Debug, Default)]
pub struct Stats {
    connections: AtomicU64,
    requests: AtomicU64,
}

/// Accepts connections on `listener` forever, one task per connection.
pub async fn serve(listener: TcpListener, stats: Arc<Stats>) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        stats.connections.fetch_add(1, Ordering::Relaxed);
        stats.requests.fetch_add(1, Ordering::Relaxed);

        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&stats)));
            // A client that hangs up mid-request is routine, not a server error.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    stats: Arc<Stats>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // hyper calls the service once per request, so count each one here.
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let body = match request.uri().path() {
        "/stats" => format!(
            "connections={} requests={}\n",
            stats.connections.load(Ordering::Relaxed),
            stats.requests.load(Ordering::Relaxed),
        ),
        _ => "hello\n".to_owned(),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}
