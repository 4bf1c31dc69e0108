//! Shared state: one `Arc<AppState>` for the whole server, an atomic counter and a map
//! behind a mutex.
//!
//! ```console
//! cargo run -p lessons-junior --example shared_state
//! curl http://127.0.0.1:3000/docs; curl http://127.0.0.1:3000/docs; curl http://127.0.0.1:3000/
//! ```
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

// ANCHOR: state
// ANCHOR: state_struct
/// State shared by every connection and every request.
#[derive(Debug, Default)]
pub struct AppState {
    /// Requests served so far. A single number: an atomic is enough.
    requests: AtomicU64,
    /// Hits per path. A map is many values that change together: it needs a lock.
    hits: Mutex<HashMap<String, u64>>,
}
// ANCHOR_END: state_struct

impl AppState {
    /// Counts one request and returns its number (1 for the first, 2 for the next).
    pub fn next_request(&self) -> u64 {
        // `fetch_add` returns the value *before* the addition, atomically with it:
        // no other request can get the same number.
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    // ANCHOR: record_hit
    /// Counts a hit on `path` and returns how many hits it has had.
    pub fn record_hit(&self, path: &str) -> u64 {
        let mut hits = self.hits.lock().unwrap();
        let count = hits.entry(path.to_owned()).or_insert(0);
        *count += 1;
        *count
        // The guard is dropped here: the lock is held for one map update,
        // never across an .await.
    }
    // ANCHOR_END: record_hit
}
// ANCHOR_END: state

// ANCHOR: handler
pub async fn handle<B>(request: Request<B>, state: Arc<AppState>) -> Response<Full<Bytes>> {
    let number = state.next_request();
    let path = request.uri().path();
    let hits = state.record_hit(path);
    Response::new(Full::new(Bytes::from(format!(
        "request #{number}; {path} seen {hits} times\n"
    ))))
}
// ANCHOR_END: handler

// ANCHOR: serve
pub async fn serve(listener: TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    // `state` was created once, outside the loop (J02 shows the alternative).
    loop {
        let (stream, _peer) = listener.accept().await?;
        // One more handle to the same state, for this connection's task.
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = Arc::clone(&state); // and one per request
                async move { Ok::<_, Infallible>(handle(request, state).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
// ANCHOR_END: serve

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without a timestamp, so that they read like the book's transcripts.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000; try: curl http://127.0.0.1:3000/docs");
    serve(listener, Arc::new(AppState::default())).await
}
