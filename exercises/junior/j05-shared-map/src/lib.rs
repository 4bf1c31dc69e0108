//! `kvcache`: a small in-memory cache that our other services share over HTTP.
//!
//! - `PUT /cache/{key}` stores the request body under `key` and answers `stored`.
//! - `GET /cache/{key}` answers the stored value, or 404 if there is none.
//! - `GET /journal` answers the write journal: one `set {key}` line per stored value, in the
//!   order the writes were applied. The nightly backup replays it.
//!
//! Every connection task, and every request on every connection, works on the same cache.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// The state every request shares. Cloning it clones the `Arc`s, not the data.
#[derive(Debug, Clone, Default)]
struct Cache {
    entries: Arc<HashMap<String, Bytes>>,
    journal: Arc<String>,
}

/// Accepts connections on `listener` forever, one task per connection, all sharing one cache.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let cache = Cache::default();
    loop {
        let (stream, _peer) = listener.accept().await?;
        let cache = cache.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, cache.clone()));
            // A client that hangs up mid-request is routine, not a server error.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    cache: Cache,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = request.uri().path().to_owned();
    if request.method() == Method::GET && path == "/journal" {
        return Ok(reply(StatusCode::OK, cache.journal.as_str().to_owned()));
    }
    let Some(key) = path.strip_prefix("/cache/").filter(|key| !key.is_empty()) else {
        return Ok(reply(StatusCode::NOT_FOUND, "no such endpoint\n"));
    };

    match *request.method() {
        Method::GET => Ok(match cache.entries.get(key) {
            Some(value) => Response::new(Full::new(value.clone())),
            None => reply(StatusCode::NOT_FOUND, "miss\n"),
        }),
        Method::PUT => {
            let value = request.into_body().collect().await?.to_bytes();
            cache.entries.insert(key.to_owned(), value);
            cache.journal.push_str(&format!("set {key}\n"));
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
