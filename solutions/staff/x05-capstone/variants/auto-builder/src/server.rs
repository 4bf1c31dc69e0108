//! The accept loop, the connections and the shutdown, in the order the spec promises.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};
use tower::BoxError;

use crate::{Config, Listener, Store, routes};

type Connection = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// Serves `listener` until `shutdown` completes, then shuts down and returns.
pub async fn serve<L: Listener>(
    mut listener: L,
    config: Config,
    store: Store,
    shutdown: impl Future<Output = ()> + Send,
) {
    let commits = TaskTracker::new();
    let app = routes::app(&config, store.clone(), commits.clone());
    // Aborted when dropped, at the end of `serve`.
    let stats = AbortOnDropHandle::new(tokio::spawn(report_stats(store)));

    // HTTP/1 and HTTP/2 on one port, as the production template serves. Clause 1: the
    // header timeout runs only with a timer. (A client that stalls within the first 24
    // bytes, before the protocol is known, needs the template's first-bytes deadline too.)
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout);
    builder.http2().timer(TokioTimer::new());

    let graceful = GracefulShutdown::new();
    let connections = TaskTracker::new();
    let force = CancellationToken::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let io = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(io) => io,
                Err(_) => {
                    // EMFILE and friends: back off instead of spinning on the error.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let conn = builder
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(app.clone()))
            .into_owned();
        // Boxed with `Send` spelled out, which the compiler cannot infer through the
        // stack's boxed error types inside the spawned block.
        let conn: Connection = Box::pin(graceful.watch(conn));
        let force = force.clone();
        connections.spawn(async move {
            tokio::select! {
                // A client that leaves mid-request is routine, not a server error.
                _ = conn => {}
                () = force.cancelled() => {}
            }
        });
    }

    // Clause 6: refuse new clients first, then ask every connection to finish its request
    // and close (idle ones close at once), for the grace period at most; then drop the rest.
    drop(listener);
    if tokio::time::timeout(config.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        force.cancel();
    }
    connections.close();
    connections.wait().await;
    // Clause 7: accepted writes finish, then the background work stops.
    commits.close();
    commits.wait().await;
    drop(stats);
}

/// Logs the size of the catalogue once a minute, for as long as its handle lives.
async fn report_stats(store: Store) {
    let period = Duration::from_secs(60);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        every.tick().await;
        eprintln!("stockroom: {} items", store.committed());
    }
}
