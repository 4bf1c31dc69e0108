//! Shutdown in the order a team ships it: stop accepting, drain the connections under a
//! deadline, let the queue close, stop the background work, flush.
//!
//! Run it, start a slow request, and stop the server while the request is in flight:
//!
//! ```console
//! cargo run -p lessons-professional --example shutdown_order
//! curl -i http://127.0.0.1:3000/orders     # answers after 3 s, even if the server is stopped
//! kill -TERM $(pgrep -x shutdown_order)    # from a third terminal, or Ctrl-C in the first
//! ```
use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
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
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The milestones of a shutdown, logged as they happen and kept for the tests to read.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    pub fn record(&self, line: impl Into<String>) {
        let line = line.into();
        tracing::info!("{line}");
        self.0.lock().unwrap().push(line);
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// How long each phase may take. Their sum must stay below the platform's wait between
/// SIGTERM and SIGKILL (Kubernetes: `terminationGracePeriodSeconds`, 30 s by default).
#[derive(Clone, Copy)]
pub struct Deadlines {
    /// For the requests in flight.
    pub drain: Duration,
    /// For the queue and the background workers, after HTTP.
    pub workers: Duration,
}

/// What every handler shares. It holds the audit queue's `Sender`: the queue closes when the
/// last clone of it is gone, so where `App` clones live decides when the writer can finish.
#[derive(Clone)]
struct App<W> {
    audit: mpsc::Sender<String>,
    /// The request's real work (a database call, say); a parameter so tests can hold it.
    work: W,
}

async fn place_order<W, F>(request: Request<Incoming>, app: App<W>) -> Response<Full<Bytes>>
where
    W: Fn() -> F,
    F: Future<Output = ()>,
{
    (app.work)().await;
    // Runs only if the request was not cut: a forced close drops this future at the await
    // above, and the line is never queued.
    let _ = app
        .audit
        .send(format!("order {}", request.uri().path()))
        .await;
    Response::new(Full::new(Bytes::from("order placed\n")))
}

// ANCHOR: run
/// Runs the service until `shutdown` completes, then stops it, step by step.
pub async fn run<W, F>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    deadlines: Deadlines,
    work: W,
    events: Events,
) where
    W: Fn() -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let workers = TaskTracker::new();
    let stop_workers = CancellationToken::new();
    let (audit, lines) = mpsc::channel(1024);
    workers.spawn(audit_writer(lines, events.clone()));
    workers.spawn(metrics_reporter(stop_workers.clone(), events.clone()));

    // 1 and 2: stop accepting, drain. `App`, and with it every `Sender`, moves into the HTTP
    // side and is dropped with its last connection task.
    serve_http(
        listener,
        App { audit, work },
        shutdown,
        deadlines.drain,
        &events,
    )
    .await;

    // 3. The queue is closed now: the writer empties it and returns on its own.
    // 4. Background work that has no queue to close is told to stop.
    stop_workers.cancel();
    workers.close();
    if timeout(deadlines.workers, workers.wait()).await.is_err() {
        events.record("workers: deadline passed, exiting without them");
    }
    // 5. Flush last: every line above must reach the log.
    events.record("flushed, exiting");
}
// ANCHOR_END: run

// ANCHOR: serve_http
async fn serve_http<W, F>(
    listener: TcpListener,
    app: App<W>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
    events: &Events,
) where
    W: Fn() -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let connections = TaskTracker::new();
    // Cancelled only when the drain deadline passes: the forced close.
    let cut = CancellationToken::new();
    let mut shutdown = pin!(shutdown);

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let app = app.clone();
                let service = service_fn(move |request| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(place_order(request, app).await) }
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection.into_owned());
                let cut = cut.clone();
                // Cancelling `cut` drops the connection future: socket, handler and its `App`.
                connections.spawn(async move { cut.run_until_cancelled(connection).await });
            }
            () = &mut shutdown => break,
        }
    }

    drop(listener);
    events.record("stopped accepting");
    match timeout(drain, graceful.shutdown()).await {
        Ok(()) => events.record("connections drained"),
        Err(_) => {
            events.record(format!("drain deadline: cutting {}", connections.len()));
            cut.cancel();
        }
    }
    // Wait for the tasks themselves, not only their connections: each one owns an `App`
    // clone, and the queue stays open until the last of them is dropped.
    connections.close();
    connections.wait().await;
}
// ANCHOR_END: serve_http

// ANCHOR: workers
async fn audit_writer(mut lines: mpsc::Receiver<String>, events: Events) {
    let mut written = 0;
    while let Some(line) = lines.recv().await {
        events.record(format!("audit: {line}"));
        written += 1;
    }
    events.record(format!("audit queue closed after {written} lines"));
}

async fn metrics_reporter(stop: CancellationToken, events: Events) {
    let mut every = tokio::time::interval(Duration::from_secs(10));
    every.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            _ = every.tick() => events.record("metrics: report"),
            () = stop.cancelled() => break,
        }
    }
    events.record("metrics: last report");
}
// ANCHOR_END: workers

// ANCHOR: signal
/// Ctrl-C (SIGINT) in a terminal, SIGTERM from `kill`, `docker stop` and Kubernetes.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.expect("installing a Ctrl-C handler"),
        _ = terminate.recv() => {}
    }
}
// ANCHOR_END: signal

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000; try: curl -i http://127.0.0.1:3000/orders");
    let deadlines = Deadlines {
        drain: Duration::from_secs(20),
        workers: Duration::from_secs(5),
    };
    let work = || tokio::time::sleep(Duration::from_secs(3));
    run(
        listener,
        shutdown_signal(),
        deadlines,
        work,
        Events::default(),
    )
    .await;
    Ok(())
}
