//! `storefront`: the product pages of a small web shop, with an access log.
//!
//! Every request is answered, then written to the [`AccessLog`] as one line
//! (`GET /products/42 200 27`). A shipper collects the buffered lines every second and sends
//! them to the log collector, where a parser turns each line into a row of the traffic
//! dashboard.
//!
//! The log lives in [`access_log`], built from the types in [`sync`], so that a loom model
//! can check it in isolation (loom cannot model sockets or tokio).

pub mod access_log;
pub mod sync;

use std::convert::Infallible;
// The server's own sharing is plain `std`: only the log's insides switch to loom.
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub use access_log::{AccessLog, Entry};

/// Accepts connections on `listener` forever, one task per connection; every request of every
/// connection is recorded in `log`.
pub async fn serve(listener: TcpListener, log: Arc<AccessLog>) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&log)));
            // A browser closing its tab mid-request is routine, not a server error.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    log: Arc<AccessLog>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    let (status, body) = match path.strip_prefix("/products/") {
        Some(id) if !id.is_empty() => (StatusCode::OK, format!("product {id}: in stock\n")),
        _ => (StatusCode::NOT_FOUND, "no such page\n".to_owned()),
    };
    log.record(&Entry {
        method: request.method().as_str(),
        path,
        status: status.as_u16(),
        bytes: body.len(),
    });
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}
