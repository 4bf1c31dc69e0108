//! Worked example 3: a shared cache.
//!
//! `PUT /key` stores the body under `key`, `GET /key` returns it, `GET /` counts the keys.
//! One map for the whole server, behind `Arc<RwLock<..>>`: many readers at once, one writer at
//! a time, and the lock is never held across an `.await`.
//!
//! Run it: `cargo run -p lessons-junior --example worked_cache`, then
//! `curl -X PUT --data-binary 'blue' http://127.0.0.1:3000/colour` and
//! `curl http://127.0.0.1:3000/colour`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// The largest value we store.
pub const MAX_VALUE: usize = 64 * 1024;

// ANCHOR: cache
/// The cache every connection shares. `Bytes` values make a read cheap: the clone taken
/// under the lock copies a pointer, not the value.
pub type Cache = Arc<RwLock<HashMap<String, Bytes>>>;
// ANCHOR_END: cache

// ANCHOR: handle
pub async fn handle(
    request: Request<Incoming>,
    cache: Cache,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let key = request.uri().path().trim_start_matches('/').to_owned();
    let response = match (request.method().clone(), key.as_str()) {
        (Method::GET, "") => {
            let keys = cache.read().expect("cache lock poisoned").len();
            text(StatusCode::OK, format!("{keys} keys\n"))
        }
        (Method::GET, _) => {
            // Clone out under the read lock; the guard is dropped at the end of the statement.
            let value = cache
                .read()
                .expect("cache lock poisoned")
                .get(&key)
                .cloned();
            match value {
                Some(value) => Response::new(Full::new(value)),
                None => text(StatusCode::NOT_FOUND, "no such key\n".to_owned()),
            }
        }
        (Method::PUT, _) => {
            // Read the body first, with a limit: no lock is held while we wait for the client.
            let value = match Limited::new(request.into_body(), MAX_VALUE).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) if error.is::<LengthLimitError>() => {
                    return Ok(text(StatusCode::PAYLOAD_TOO_LARGE, "too big\n".to_owned()));
                }
                Err(_) => return Ok(text(StatusCode::BAD_REQUEST, "bad body\n".to_owned())),
            };
            cache
                .write()
                .expect("cache lock poisoned")
                .insert(key, value);
            text(StatusCode::CREATED, "stored\n".to_owned())
        }
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "GET or PUT\n".to_owned()),
    };
    Ok(response)
}
// ANCHOR_END: handle

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

// ANCHOR: serve
pub async fn serve(listener: TcpListener, cache: Cache) {
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        let cache = Arc::clone(&cache);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&cache)));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
// ANCHOR_END: serve

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without timestamps or module names, at INFO and above.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000");
    tracing::info!("try: curl -X PUT --data-binary 'blue' http://127.0.0.1:3000/colour");
    tracing::info!("then: curl http://127.0.0.1:3000/colour");
    serve(listener, Cache::default()).await;
    Ok(())
}
