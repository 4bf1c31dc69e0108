//! Graceful shutdown: stop accepting, let in-flight requests finish within a grace period,
//! force the rest closed, then stop the background workers.
//!
//! Run it, start a slow request, and stop the server while the request is in flight, with
//! Ctrl-C or with SIGTERM as a deploy would:
//!
//! ```console
//! cargo run -p lessons-junior --example shutdown
//! curl -i http://127.0.0.1:3000/slow      # answers after 3 s, even if the server is stopped
//! kill -TERM $(pgrep -x shutdown)         # from a third terminal, or Ctrl-C in the first
//! ```
use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing_subscriber::EnvFilter;

/// How the HTTP side of the server stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Every connection finished its work within the grace period.
    Gracefully,
    /// The grace period ran out; this many connections were cut.
    Forced { cut: usize },
}

// ANCHOR: serve
/// Serves `handler` on `listener` until `shutdown` completes, then drains.
pub async fn serve<H, Fut>(
    listener: TcpListener,
    handler: H,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> Stopped
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    // The connection tasks live in a JoinSet so that we can abort them if the grace runs out.
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let handler = handler.clone();
                let service = service_fn(move |request| {
                    let response = handler(request);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                // `watch` lets `graceful` tell this connection to finish up later.
                let connection = graceful.watch(connection);
                connections.spawn(async move {
                    let _ = connection.await;
                });
            }
            () = &mut shutdown => break,
        }
        // Forget the connections that are already over, so the set does not grow forever.
        while connections.try_join_next().is_some() {}
    }

    // 1. Stop accepting: new clients are refused from now on.
    drop(listener);
    // 2. Idle connections close now; busy ones finish their response, then close.
    //    `shutdown()` has no deadline of its own: the timeout is ours.
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => Stopped::Gracefully,
        Err(_elapsed) => {
            // 3. Forced close: aborting a task drops its connection future, which closes
            //    the socket and drops the handler future inside it.
            while connections.try_join_next().is_some() {}
            let cut = connections.len();
            connections.shutdown().await;
            Stopped::Forced { cut }
        }
    }
}
// ANCHOR_END: serve

// ANCHOR: workers
/// Writes every audit line it receives, until every `Sender` is gone and the queue is empty.
pub async fn audit_writer(mut lines: mpsc::Receiver<String>, mut write: impl FnMut(&str)) {
    while let Some(line) = lines.recv().await {
        write(&line);
    }
}

/// Flushes metrics every 10 s until `stop` is cancelled, then flushes one last time.
pub async fn metrics_flusher(stop: CancellationToken, mut flush: impl FnMut()) {
    let mut every = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = every.tick() => flush(),
            () = stop.cancelled() => break,
        }
    }
    flush();
}
// ANCHOR_END: workers

async fn demo(request: Request<Incoming>, audit: mpsc::Sender<String>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    // A full queue drops the line rather than stalling the request.
    let _ = audit.try_send(format!("served {path}"));
    Response::new(Full::new(Bytes::from(format!("done {path}\n"))))
}

// ANCHOR: main
#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log INFO and above unless RUST_LOG says otherwise (`fmt::init()` alone shows errors only).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000; try: curl -i http://127.0.0.1:3000/slow");

    let stop_workers = CancellationToken::new();
    let workers = TaskTracker::new();
    let (audit, audit_lines) = mpsc::channel(1024);
    workers.spawn(audit_writer(audit_lines, |line| {
        tracing::info!("audit: {line}")
    }));
    workers.spawn(metrics_flusher(stop_workers.clone(), || {
        tracing::info!("metrics flushed");
    }));

    let handler = move |request| demo(request, audit.clone());
    // Ctrl-C in a terminal, SIGTERM from a deploy: either one starts the drain.
    let signal = async {
        lessons_junior::shutdown_signal().await;
        tracing::info!("shutting down: no new connections, 10 s for the rest");
    };
    // `serve` owns the handler, and with it the last `audit` sender: when it returns,
    // no request can enqueue anything any more.
    let stopped = serve(listener, handler, signal, Duration::from_secs(10)).await;
    tracing::info!("http stopped: {stopped:?}");

    // HTTP first, workers second: the audit queue closes now that every sender is gone,
    // and the writer drains what is left before it returns.
    stop_workers.cancel();
    workers.close();
    if tokio::time::timeout(Duration::from_secs(5), workers.wait())
        .await
        .is_err()
    {
        tracing::warn!("workers did not stop in 5 s; exiting anyway");
    }
    Ok(())
}
// ANCHOR_END: main
