//! `statsd-lite`: a small service that reports how busy it is.
//!
//! `GET /stats` answers `connections=N requests=M`: how many TCP connections the server has
//! accepted, and how many HTTP requests it has served (the `/stats` request included). Every
//! other path answers `hello`. The operations team reads these two numbers to size the
//! connection pool of the load balancer in front of us, so they have to be right.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// Counters shared by every connection task, behind one lock so that `/stats` reads both
/// numbers at the same instant.
#[derive(Debug, Default)]
pub struct Stats {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    connections: u64,
    requests: u64,
}

impl Stats {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A panic elsewhere cannot leave two plain counters half-updated.
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Accepts connections on `listener` forever, one task per connection.
pub async fn serve(listener: TcpListener, stats: Arc<Stats>) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        stats.counts().connections += 1;

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
    // Once per request: count it and, for `/stats`, read both numbers under the same lock.
    let (connections, requests) = {
        let mut counts = stats.counts();
        counts.requests += 1;
        (counts.connections, counts.requests)
    };
    let body = match request.uri().path() {
        "/stats" => format!("connections={connections} requests={requests}\n"),
        _ => "hello\n".to_owned(),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}
