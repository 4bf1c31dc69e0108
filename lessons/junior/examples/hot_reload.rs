//! Hot reload of configuration: swap an `Arc<Config>` while requests are in flight, and take
//! one snapshot of it per request.
//!
//! ```console
//! cargo run -p lessons-junior --example hot_reload
//! curl http://127.0.0.1:3000/greet           # version 1
//! curl -X POST http://127.0.0.1:3000/reload  # installs version 2
//! curl http://127.0.0.1:3000/greet           # version 2
//! ```
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The part of the configuration this service reloads at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub version: u32,
    pub greeting: String,
    pub signature: String,
}

impl Config {
    pub fn version(version: u32) -> Self {
        Self {
            version,
            greeting: format!("Hello (v{version})"),
            signature: format!("the v{version} team"),
        }
    }
}

// ANCHOR: store
/// The current configuration. Readers clone the `Arc` (a counter increment) and let
/// go of the lock at once; a reload swaps in a new `Arc`.
#[derive(Debug)]
pub struct ConfigStore {
    current: RwLock<Arc<Config>>,
}

impl ConfigStore {
    pub fn new(config: Config) -> Self {
        Self {
            current: RwLock::new(Arc::new(config)),
        }
    }

    /// A snapshot: it stays the same for as long as the caller holds it.
    pub fn current(&self) -> Arc<Config> {
        Arc::clone(&self.current.read().unwrap())
    }

    /// Installs a new configuration. Requests holding the old `Arc` keep it until
    /// they end.
    pub fn replace(&self, config: Config) {
        *self.current.write().unwrap() = Arc::new(config);
    }
}
// ANCHOR_END: store

/// Stands for an upstream call in the middle of the request (a profile lookup).
async fn lookup_name(user: &str) -> String {
    tokio::time::sleep(Duration::from_millis(100)).await;
    user.to_uppercase()
}

// ANCHOR: read_twice
/// BUG: reads the configuration twice, with an `.await` in between.
pub async fn greet_reading_twice(store: &ConfigStore, user: &str) -> String {
    let greeting = store.current().greeting.clone();
    let name = lookup_name(user).await; // a reload can land here
    let signature = store.current().signature.clone();
    format!("{greeting}, {name}! -- {signature}")
}
// ANCHOR_END: read_twice

// ANCHOR: read_once
/// One snapshot per request: every part of the answer comes from the same version.
pub async fn greet(store: &ConfigStore, user: &str) -> String {
    let config = store.current();
    let name = lookup_name(user).await;
    format!("{}, {name}! -- {}", config.greeting, config.signature)
}
// ANCHOR_END: read_once

// ANCHOR: watch
/// The same snapshot from a `watch` channel: the reloader owns the `Sender`, and
/// each request clones the `Arc` out of the latest value with `borrow()`.
pub async fn greet_watched(config: &watch::Receiver<Arc<Config>>, user: &str) -> String {
    // Clone at once: the `Ref` returned by `borrow()` holds a read lock.
    let config = Arc::clone(&config.borrow());
    let name = lookup_name(user).await;
    format!("{}, {name}! -- {}", config.greeting, config.signature)
}
// ANCHOR_END: watch

// ANCHOR: arc_swap
/// The same snapshot from an `ArcSwap`, the counterpart of Go's `atomic.Pointer`:
/// a reload calls `store`, and a request takes one `load_full()`.
pub async fn greet_swapped(config: &ArcSwap<Config>, user: &str) -> String {
    // One atomic load of the pointer and a reference-count increment; no lock.
    let config: Arc<Config> = config.load_full();
    let name = lookup_name(user).await;
    format!("{}, {name}! -- {}", config.greeting, config.signature)
}
// ANCHOR_END: arc_swap

async fn handle(
    request: Request<hyper::body::Incoming>,
    store: Arc<ConfigStore>,
) -> Response<Full<Bytes>> {
    let text = match (request.method(), request.uri().path()) {
        (&Method::POST, "/reload") => {
            let next = store.current().version + 1;
            store.replace(Config::version(next));
            format!("installed version {next}\n")
        }
        _ => greet(&store, "reader").await + "\n",
    };
    Response::new(Full::new(Bytes::from(text)))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without a timestamp, so that they read like the book's transcripts.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000; try: curl http://127.0.0.1:3000/greet");
    let store = Arc::new(ConfigStore::new(Config::version(1)));
    loop {
        let (stream, _peer) = listener.accept().await?;
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let store = Arc::clone(&store);
                async move { Ok::<_, Infallible>(handle(request, store).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
