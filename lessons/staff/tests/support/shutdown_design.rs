//! A server whose shutdown follows the fleet timeline: readiness fails first, the listener
//! stays open for a linger, then the HTTP drain, the upgraded sessions and the workers each get
//! a phase with its own deadline. Generic over where connections come from, so that the same
//! code runs on a real listener (real clock) and on in-memory pipes (paused clock).

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The milestones of a shutdown, each with the time since the log was made (virtual time on
/// a paused clock), so that a check can wait for one and read when it happened.
#[derive(Clone)]
pub struct Events {
    lines: Arc<Mutex<Vec<(Duration, String)>>>,
    changed: Arc<Notify>,
    start: Instant,
}

impl Events {
    pub fn new() -> Self {
        Self {
            lines: Arc::default(),
            changed: Arc::default(),
            start: Instant::now(),
        }
    }

    pub fn push(&self, line: impl Into<String>) {
        let (at, line) = (self.start.elapsed(), line.into());
        tracing::info!("{line}");
        self.lines.lock().unwrap().push((at, line));
        self.changed.notify_waiters();
    }

    /// When `line` was logged, if it was.
    pub fn at(&self, line: &str) -> Option<Duration> {
        let lines = self.lines.lock().unwrap();
        lines.iter().find(|(_, l)| l == line).map(|(at, _)| *at)
    }

    /// Waits until `line` is logged (the caller bounds the wait).
    pub async fn wait_for(&self, line: &str) -> Duration {
        loop {
            let changed = self.changed.notified();
            if let Some(at) = self.at(line) {
                return at;
            }
            changed.await;
        }
    }

    pub fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines.iter().map(|(_, l)| l.clone()).collect()
    }
}

// ANCHOR: deadlines
/// One deadline per phase after the linger. Their sum, plus the linger and a margin for the
/// flush, must stay under the orchestrator's grace period, or SIGKILL ends the shutdown.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// HTTP: requests in flight finish; past it, the connections are cut.
    pub drain: Duration,
    /// Upgraded sessions: told to close, given this long to say goodbye.
    pub sessions: Duration,
    /// Background workers: told to stop, given this long to finish.
    pub workers: Duration,
}

impl Deadlines {
    /// The longest the shutdown can take after the listener closes.
    pub fn total(&self) -> Duration {
        self.drain + self.sessions + self.workers
    }
}
// ANCHOR_END: deadlines

/// What the handlers share: the readiness flag the balancer polls, and the two groups of
/// long-lived work the HTTP drain does not see.
#[derive(Clone)]
pub struct App {
    ready: Arc<AtomicBool>,
    pub sessions: Group,
    pub workers: Group,
    /// Set by a check: `/slow` waits for it, and a handler nobody releases never finishes.
    pub release: Arc<Notify>,
    pub header_timeout: Duration,
}

/// A token to say "stop" and a tracker to wait, for one kind of work.
#[derive(Clone, Default)]
pub struct Group {
    pub stop: CancellationToken,
    pub tracker: TaskTracker,
}

impl App {
    pub fn new(header_timeout: Duration) -> Self {
        Self {
            ready: Arc::new(AtomicBool::new(true)),
            sessions: Group::default(),
            workers: Group::default(),
            release: Arc::new(Notify::new()),
            header_timeout,
        }
    }
}

async fn handle(app: App, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match request.uri().path() {
        // The balancer's health check: 503 from the moment the shutdown starts.
        "/ready" if app.ready.load(Ordering::SeqCst) => (StatusCode::OK, "ready\n"),
        "/ready" => (StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        "/slow" => {
            app.release.notified().await;
            (StatusCode::OK, "slow done\n")
        }
        _ => (StatusCode::OK, "order placed\n"),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}

/// A real listener as a stream of connections; dropping the stream closes the listener.
pub fn tcp(listener: TcpListener) -> impl Stream<Item = TcpStream> + Unpin {
    Box::pin(futures::stream::unfold(listener, |listener| async move {
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                return Some((stream, listener));
            }
        }
    }))
}

// ANCHOR: serve
/// Serves until `signal`, then shuts down in the fleet's order: readiness fails, the listener
/// keeps accepting until the future `linger()` makes completes (made at the signal, so that a
/// sleep counts from there), then each phase runs under its own deadline.
pub async fn serve<S, IO, L>(
    mut incoming: S,
    app: App,
    signal: impl Future<Output = ()>,
    linger: impl FnOnce() -> L,
    deadlines: Deadlines,
    events: Events,
) where
    S: Stream<Item = IO> + Unpin,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    L: Future<Output = ()>,
{
    let graceful = GracefulShutdown::new();
    let (cut, connections) = (CancellationToken::new(), TaskTracker::new());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The timer bounds a half-sent head during the drain, as it bounds a slowloris.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(app.header_timeout);
    let accept = |io: IO| {
        let app = app.clone();
        let service = service_fn(move |request| handle(app.clone(), request));
        let connection = builder.serve_connection(TokioIo::new(io), service);
        let connection = graceful.watch(connection.into_owned());
        connections.spawn(cut.clone().run_until_cancelled_owned(connection));
    };

    tokio::pin!(signal);
    loop {
        tokio::select! {
            Some(io) = incoming.next() => accept(io),
            () = &mut signal => break,
        }
    }
    // 1. Readiness fails at once; the balancer notices on its next check.
    app.ready.store(false, Ordering::SeqCst);
    events.push("readiness failing");
    // 2. Keep accepting: balancers that have not noticed yet still send.
    let linger = linger();
    tokio::pin!(linger);
    loop {
        tokio::select! {
            Some(io) = incoming.next() => accept(io),
            () = &mut linger => break,
        }
    }
    drop(incoming);
    events.push("stopped accepting");
    // 3. Drain HTTP; cut what is left at the deadline.
    if tokio::time::timeout(deadlines.drain, graceful.shutdown())
        .await
        .is_err()
    {
        cut.cancel();
        events.push("drain deadline: connections cut");
    }
    connections.close();
    connections.wait().await;
    events.push("http drained");
    // 4. and 5. The work the HTTP drain cannot see, in the order that feeds it.
    phase("sessions", &app.sessions, deadlines.sessions, &events).await;
    phase("workers", &app.workers, deadlines.workers, &events).await;
    events.push("exit");
}

async fn phase(name: &str, group: &Group, deadline: Duration, events: &Events) {
    group.stop.cancel();
    group.tracker.close();
    match tokio::time::timeout(deadline, group.tracker.wait()).await {
        Ok(()) => events.push(format!("{name} closed")),
        // Given up on, not stopped: the runtime drops them when `main` returns.
        Err(_) => events.push(format!(
            "{name} deadline: {} abandoned",
            group.tracker.len()
        )),
    }
}
// ANCHOR_END: serve
