//! `kvcache`: a small in-memory cache that our other services share over HTTP.
//!
//! - `PUT /cache/{key}` stores the request body under `key` and answers `stored`.
//! - `GET /cache/{key}` answers the stored value, or 404 if there is none.
//! - `GET /journal` answers the write journal: one `set {key}` line per stored value, in the
//!   order the writes were applied. The nightly backup replays it.
//!
//! Every connection task, and every request on every connection, works on the same cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// What the cache holds. The map and the journal sit behind one lock, so that a write and its
/// journal line happen together: the journal's order is the order the map saw the writes.
#[derive(Debug, Default)]
struct Store {
    entries: HashMap<String, Bytes>,
    journal: String,
}

/// The state every request shares. An `Arc` alone only hands out shared (`&`) access; the
/// `Mutex` is what lets one request at a time mutate the store through it.
type Cache = Arc<Mutex<Store>>;

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
        let journal = lock(&cache).journal.clone();
        return Ok(reply(StatusCode::OK, journal));
    }
    let Some(key) = path.strip_prefix("/cache/").filter(|key| !key.is_empty()) else {
        return Ok(reply(StatusCode::NOT_FOUND, "no such endpoint\n"));
    };

    match *request.method() {
        Method::GET => Ok(match lock(&cache).entries.get(key) {
            // Cloning `Bytes` is a reference-count bump: the lock is held for no time at all.
            Some(value) => Response::new(Full::new(value.clone())),
            None => reply(StatusCode::NOT_FOUND, "miss\n"),
        }),
        Method::PUT => {
            // Read the whole body before taking the lock: a slow client must not hold up
            // everybody else while its bytes trickle in. (A std guard held across this
            // `.await` would not even compile: the connection task must be `Send`.)
            let value = request.into_body().collect().await?.to_bytes();
            let line = format!("set {key}\n");
            let mut store = lock(&cache);
            store.entries.insert(key.to_owned(), value);
            store.journal.push_str(&line);
            Ok(reply(StatusCode::OK, "stored\n"))
        }
        _ => Ok(reply(StatusCode::METHOD_NOT_ALLOWED, "use GET or PUT\n")),
    }
}

/// Locks the store. Nothing panics while holding the lock, so it is never poisoned; if it
/// were, the store itself is still consistent (every critical section is one insert plus
/// one append), so we keep serving it.
fn lock(cache: &Cache) -> std::sync::MutexGuard<'_, Store> {
    cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}
