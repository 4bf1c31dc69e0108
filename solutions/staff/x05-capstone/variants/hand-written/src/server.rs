//! The accept loop, the connections and the shutdown, by hand: a token tells each connection
//! to finish, a `JoinSet` holds them so that the deadline can abort the rest.

use std::future::Future;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::routes::App;
use crate::{Config, Listener, Store};

/// Serves `listener` until `shutdown` completes, then shuts down and returns.
pub async fn serve<L: Listener>(
    mut listener: L,
    config: Config,
    store: Store,
    shutdown: impl Future<Output = ()> + Send,
) {
    let commits = TaskTracker::new();
    let app = App::new(config.clone(), store.clone(), commits.clone());
    let stop_stats = CancellationToken::new();
    let stats = tokio::spawn(report_stats(store, stop_stats.clone()));

    let draining = CancellationToken::new();
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(io) => {
                    let draining = draining.clone();
                    connections.spawn(connection(io, app.clone(), config.header_timeout, draining));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            // Reap finished connections, so the set holds only open ones.
            Some(_) = connections.join_next() => {}
        }
    }

    drop(listener);
    draining.cancel();
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        // Aborts what is left and waits until every connection task is gone.
        connections.shutdown().await;
    }
    commits.close();
    commits.wait().await;
    stop_stats.cancel();
    let _ = stats.await;
}

/// One connection: served until the client leaves, or until `draining`, then asked to finish
/// its request and close.
async fn connection<I>(io: I, app: App, header_timeout: Duration, draining: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| app.clone().handle(request));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut conn = std::pin::pin!(builder.serve_connection(TokioIo::new(io), service));
    tokio::select! {
        _ = conn.as_mut() => return,
        () = draining.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

/// Logs the size of the catalogue once a minute, until `stop`.
async fn report_stats(store: Store, stop: CancellationToken) {
    let period = Duration::from_secs(60);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => eprintln!("stockroom: {} items", store.committed()),
        }
    }
}
