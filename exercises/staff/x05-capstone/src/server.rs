//! The accept loop, the connections and the shutdown.

use std::future::Future;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;

use crate::{Config, Listener, Store, routes};

/// Serves `listener` until `shutdown` completes, then shuts down and returns.
pub async fn serve<L: Listener>(
    mut listener: L,
    _config: Config,
    store: Store,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::spawn(report_stats(store.clone()));

    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok(io) = accepted else { continue };
                let store = store.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| routes::handle(request, store.clone()));
                    // A client that leaves mid-request is routine, not a server error.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(io), service)
                        .await;
                });
            }
            // Reap finished connections, so the set holds only open ones.
            Some(_) = connections.join_next() => {}
        }
    }

    // Every connection finishes what it is doing.
    while connections.join_next().await.is_some() {}
}

/// Logs the size of the catalogue once a minute, for the dashboard.
async fn report_stats(store: Store) {
    let period = Duration::from_secs(60);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        every.tick().await;
        eprintln!("stockroom: {} items", store.committed());
    }
}
