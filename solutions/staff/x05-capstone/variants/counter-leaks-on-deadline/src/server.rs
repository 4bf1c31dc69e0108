//! The accept loop, the connections and the shutdown, in the order the spec promises.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{Config, Listener, Store, routes};

type Connection = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// Serves `listener` until `shutdown` completes, then shuts down and returns.
pub async fn serve<L: Listener>(
    mut listener: L,
    config: Config,
    store: Store,
    shutdown: impl Future<Output = ()> + Send,
) {
    let commits = TaskTracker::new();
    let app = routes::app(&config, store.clone(), commits.clone());
    let stats = Background::start(store);

    // Clause 1: hyper's header timeout runs only with a timer.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout);

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
        let conn =
            builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(app.clone()));
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
    stats.stop().await;
}

/// Logs the size of the catalogue once a minute, until it is stopped.
struct Background {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Background {
    fn start(store: Store) -> Self {
        let (stop, tasks) = (CancellationToken::new(), TaskTracker::new());
        let token = stop.clone();
        tasks.spawn(async move {
            let period = Duration::from_secs(60);
            let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tokio::select! {
                    () = token.cancelled() => return,
                    _ = every.tick() => eprintln!("stockroom: {} items", store.committed()),
                }
            }
        });
        tasks.close();
        Background { stop, tasks }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.tasks.wait().await;
    }
}
