//! `signup-api`: sign-ups for the newsletter.
//!
//! - `POST /signup?email=ada@example.com` runs the fraud check ([`VERIFY_TIME`]), queues a
//!   welcome email and answers `202 Accepted`. A background worker hands queued emails to the
//!   mail [`Relay`], one at a time.
//! - `GET /export` streams every sign-up as CSV; on a big list it runs for an hour.
//!
//! Every request and every email sent is recorded in the [`AuditLog`], which a background
//! task writes out every [`FLUSH_EVERY`]. A deploy sends the shutdown signal; requests in
//! flight get [`GRACE`] to finish.

mod outside;

use std::convert::Infallible;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    Request, Response, StatusCode, body::Incoming, server::conn::http1, service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use outside::{AuditLog, Relay, SEND_TIME};

/// How long requests in flight may take to finish once shutdown begins.
pub const GRACE: Duration = Duration::from_secs(5);
/// How long the fraud check of a sign-up takes.
pub const VERIFY_TIME: Duration = Duration::from_secs(2);
/// How long an export of the whole list takes.
pub const EXPORT_TIME: Duration = Duration::from_secs(60 * 60);
/// How often the audit log is written out.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);
/// How many welcome emails may wait for the relay.
const QUEUE: usize = 64;

/// What every connection's handlers share.
#[derive(Clone)]
struct AppState {
    welcome_emails: mpsc::Sender<String>,
    audit: AuditLog,
}

/// Serves the connections that arrive on `incoming` until `shutdown` completes, then shuts
/// down. `incoming` stands for the listen socket.
pub async fn run<S>(
    mut incoming: mpsc::Receiver<S>,
    shutdown: impl Future<Output = ()>,
    relay: Relay,
    audit: AuditLog,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (welcome_emails, queue) = mpsc::channel(QUEUE);
    let stop = CancellationToken::new();
    let background = TaskTracker::new();
    let worker = tokio::spawn(send_welcome_emails(queue, relay, audit.clone()));
    background.spawn(flush_periodically(audit.clone(), stop.clone()));

    let state = AppState {
        welcome_emails,
        audit: audit.clone(),
    };
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            Some(stream) = incoming.recv() => {
                let state = state.clone();
                let service = service_fn(move |request| handle(request, state.clone()));
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .serve_connection(TokioIo::new(stream), service);
                connections.spawn(graceful.watch(conn));
            }
            Some(_) = connections.join_next() => {}
            () = &mut shutdown => break,
        }
    }

    // Stop accepting.
    drop(incoming);
    // Let the requests in flight finish; past the grace period, cut them off.
    if tokio::time::timeout(GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        // Already past the deadline: cut everything off and exit now.
        connections.shutdown().await;
        worker.abort();
        stop.cancel();
        background.close();
        background.wait().await;
        audit.flush();
        return;
    }
    // Close the queue: the last `Sender` goes, and the worker sends what is left.
    drop(state);
    let _ = worker.await;
    // Stop the background work and write out the audit log.
    stop.cancel();
    background.close();
    background.wait().await;
    audit.flush();
}

async fn send_welcome_emails(mut queue: mpsc::Receiver<String>, relay: Relay, audit: AuditLog) {
    while let Some(to) = queue.recv().await {
        relay.deliver(&to).await;
        audit.record(format!("welcome email sent to {to}"));
    }
}

async fn flush_periodically(audit: AuditLog, stop: CancellationToken) {
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + FLUSH_EVERY, FLUSH_EVERY);
    while stop.run_until_cancelled(ticks.tick()).await.is_some() {
        audit.flush();
    }
}

async fn handle(
    request: Request<Incoming>,
    state: AppState,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match request.uri().path() {
        "/signup" => match request.uri().query().and_then(|q| q.strip_prefix("email=")) {
            Some(email) => {
                // Stands in for the call to the fraud-check service.
                tokio::time::sleep(VERIFY_TIME).await;
                match state.welcome_emails.send(email.to_owned()).await {
                    Ok(()) => (StatusCode::ACCEPTED, "welcome email queued\n"),
                    Err(_) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "could not queue the welcome email\n",
                    ),
                }
            }
            None => (StatusCode::BAD_REQUEST, "missing email\n"),
        },
        "/export" => {
            tokio::time::sleep(EXPORT_TIME).await;
            (StatusCode::OK, "email\n")
        }
        _ => (StatusCode::NOT_FOUND, "not found\n"),
    };
    state.audit.record(format!(
        "{} {} -> {}",
        request.method(),
        request.uri(),
        status.as_u16()
    ));
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}
