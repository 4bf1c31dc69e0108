//! `kvcache`: a small in-memory cache that our other services share over HTTP.
//!
//! - `PUT /cache/{key}` stores the request body under `key` and answers `stored`.
//! - `GET /cache/{key}` answers the stored value, or 404 if there is none.
//! - `GET /journal` answers the write journal: one `set {key} {value}` line per stored value,
//!   in the order the writes were applied. The nightly backup replays it.
//!
//! Every connection task, and every request on every connection, works on the same
//! [`Cache`], which lives in [`cache`] and is built from the types in [`sync`], so that a loom
//! model can check it on its own (loom cannot model sockets or tokio).

pub mod cache;
pub mod sync;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub use cache::Cache;

/// Accepts connections on `listener` forever, one task per connection, all sharing one cache.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let cache = Arc::new(Cache::default());
    loop {
        let (stream, _peer) = listener.accept().await?;
        let cache = Arc::clone(&cache);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&cache)));
            // A client that hangs up mid-request is routine, not a server error.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    cache: Arc<Cache>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = request.uri().path().to_owned();
    if request.method() == Method::GET && path == "/journal" {
        return Ok(reply(StatusCode::OK, cache.journal()));
    }
    let Some(key) = path.strip_prefix("/cache/").filter(|key| !key.is_empty()) else {
        return Ok(reply(StatusCode::NOT_FOUND, "no such endpoint\n"));
    };

    match *request.method() {
        Method::GET => Ok(match cache.get(key) {
            Some(value) => Response::new(Full::new(value)),
            None => reply(StatusCode::NOT_FOUND, "miss\n"),
        }),
        Method::PUT => {
            // The whole body first: the cache is touched only once the value is complete.
            let value = request.into_body().collect().await?.to_bytes();
            cache.put(key, value);
            Ok(reply(StatusCode::OK, "stored\n"))
        }
        _ => Ok(reply(StatusCode::METHOD_NOT_ALLOWED, "use GET or PUT\n")),
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}
