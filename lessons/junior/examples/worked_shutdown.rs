//! Worked example 5: graceful shutdown with a background worker.
//!
//! `POST /jobs` queues the body for a background worker and answers 202 (503 when the queue is
//! full). `GET /export` is slow. On shutdown the server stops accepting, lets in-flight
//! requests finish within a grace period, closes the connections that are still busy after it,
//! and only then lets the worker drain the queue and stop.
//!
//! Run it: `cargo run -p lessons-junior --example worked_shutdown`, then
//! `curl -d 'job' http://127.0.0.1:3000/jobs`, start `curl http://127.0.0.1:3000/export`
//! and press Ctrl-C in the server's terminal (or send it SIGTERM) while the export runs.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Timings and sizes.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long in-flight requests get to finish once shutdown starts.
    pub grace: Duration,
    /// How long `GET /export` takes.
    pub export_time: Duration,
    /// How long the worker spends on one job.
    pub job_time: Duration,
    /// Jobs the queue holds before `POST /jobs` answers 503.
    pub queue: usize,
}

/// What an operator watches.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests being handled right now.
    pub in_flight: watch::Sender<usize>,
    /// Jobs the worker has finished.
    pub jobs_done: AtomicU64,
}

/// How shutdown went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Whether the grace period ran out and busy connections were closed.
    pub forced: bool,
    /// Jobs the worker finished in total, queue drained.
    pub jobs_done: u64,
}

/// A job owns its data: nothing in it borrows from the request.
struct Job {
    payload: Bytes,
}

/// What every handler shares.
struct App {
    jobs: mpsc::Sender<Job>,
    config: Config,
    metrics: Arc<Metrics>,
}

/// Counts one request in flight until dropped.
struct InFlight(Arc<Metrics>);

impl InFlight {
    fn enter(metrics: &Arc<Metrics>) -> Self {
        metrics.in_flight.send_modify(|n| *n += 1);
        Self(Arc::clone(metrics))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.send_modify(|n| *n -= 1);
    }
}

async fn handle(
    request: Request<Incoming>,
    app: Arc<App>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _in_flight = InFlight::enter(&app.metrics);
    let response = match (request.method(), request.uri().path()) {
        (&Method::POST, "/jobs") => {
            let Ok(body) = Limited::new(request.into_body(), 64 * 1024).collect().await else {
                return Ok(text(StatusCode::BAD_REQUEST, "bad or oversized body\n"));
            };
            let job = Job {
                payload: body.to_bytes(),
            };
            // `try_send`: a full queue is an answer (503), not a reason to wait.
            match app.jobs.try_send(job) {
                Ok(()) => text(StatusCode::ACCEPTED, "queued\n"),
                Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "queue full\n"),
            }
        }
        (&Method::GET, "/export") => {
            tokio::time::sleep(app.config.export_time).await;
            text(StatusCode::OK, "export done\n")
        }
        _ => text(StatusCode::NOT_FOUND, "POST /jobs or GET /export\n"),
    };
    Ok(response)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

// ANCHOR: worker
/// Works through the queue until every `Sender` is gone and the queue is empty.
async fn worker(mut queue: mpsc::Receiver<Job>, job_time: Duration, metrics: Arc<Metrics>) {
    while let Some(job) = queue.recv().await {
        tokio::time::sleep(job_time).await; // stands for the real work on `job.payload`
        drop(job.payload);
        metrics.jobs_done.fetch_add(1, Ordering::Relaxed);
    }
}
// ANCHOR_END: worker

// ANCHOR: run
/// Serves until `shutdown` is cancelled, then shuts down in order.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
) -> Report {
    // Every task we start goes into the tracker, so that we can wait for all of them.
    let tracker = TaskTracker::new();
    // Cancelled only if the grace period runs out: closes the connections still busy.
    let force_close = CancellationToken::new();

    let (jobs, queue) = mpsc::channel(config.queue);
    tracker.spawn(worker(queue, config.job_time, Arc::clone(&metrics)));

    let grace = config.grace;
    let app = Arc::new(App {
        jobs,
        config,
        metrics: Arc::clone(&metrics),
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();

    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let app = Arc::clone(&app);
                let service = service_fn(move |request| handle(request, Arc::clone(&app)));
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                let force_close = force_close.clone();
                tracker.spawn(async move {
                    // Dropping the connection future (on force_close) closes the socket.
                    let _ = force_close.run_until_cancelled(connection).await;
                });
            }
        }
    }

    // 1. Stop accepting. The accept loop's `App` goes too: from now on only the connections
    //    still open hold a `Sender` of the job queue.
    drop(listener);
    drop(app);
    // 2. Let in-flight requests finish, within the grace period.
    let forced = tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err();
    // 3. Past the deadline, close what is left.
    if forced {
        force_close.cancel();
    }
    // 4. Every connection task ends and drops its `Sender`; the queue closes; the worker
    //    finishes the jobs already queued and returns. Wait for all of it.
    tracker.close();
    tracker.wait().await;
    Report {
        forced,
        jobs_done: metrics.jobs_done.load(Ordering::Relaxed),
    }
}
// ANCHOR_END: run

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without timestamps or module names, at INFO and above.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000");
    tracing::info!(
        "try: curl -d 'job' http://127.0.0.1:3000/jobs; curl http://127.0.0.1:3000/export"
    );
    tracing::info!("and press Ctrl-C here (or kill -TERM this process) while the export runs");
    let config = Config {
        grace: Duration::from_secs(10),
        export_time: Duration::from_secs(5),
        job_time: Duration::from_millis(500),
        queue: 100,
    };
    // ANCHOR: signal
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        // Ctrl-C, or SIGTERM from `kill`, systemd, Docker or Kubernetes.
        lessons_junior::shutdown_signal().await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    // ANCHOR_END: signal
    let report = run(listener, config, shutdown, Arc::new(Metrics::default())).await;
    tracing::info!("{report:?}");
    Ok(())
}
