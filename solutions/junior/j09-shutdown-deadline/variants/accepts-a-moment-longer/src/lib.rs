//! `billing-edge`: the HTTP front door of the billing service.
//!
//! - `GET /health` answers `ok`.
//! - `GET /report` builds this month's report, which takes [`REPORT_TIME`].
//! - `GET /updates` is a long-poll: it answers when the next invoice update arrives, which in
//!   the quiet hours can take up to [`LONG_POLL`].
//!
//! A deploy sends the shutdown signal and kills the process ten seconds later. Requests in
//! flight get [`GRACE`] to finish, so the process exits on its own, its [`EventLog`] complete.

use std::convert::Infallible;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    Request, Response, StatusCode, body::Incoming, server::conn::http1, service::service_fn,
};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long requests in flight may take to finish once shutdown begins.
pub const GRACE: Duration = Duration::from_secs(5);
/// How long building a report takes.
pub const REPORT_TIME: Duration = Duration::from_secs(2);
/// How long a long-poll waits for an update before it answers `no updates`.
pub const LONG_POLL: Duration = Duration::from_secs(60 * 60);

/// What the server did, in order. Clones share one log.
#[derive(Debug, Clone, Default)]
pub struct EventLog(Arc<Mutex<Vec<String>>>);

impl EventLog {
    /// The lines logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn record(&self, line: impl Into<String>) {
        self.0.lock().unwrap().push(line.into());
    }
}

/// Serves the connections that arrive on `incoming` until `shutdown` completes, then shuts down.
///
/// `incoming` is the listen socket: in production a small task accepts from a `TcpListener`
/// and sends every stream here, so a connection sent into the channel is one the kernel has
/// already accepted on our behalf.
pub async fn serve<S>(
    mut incoming: mpsc::Receiver<S>,
    shutdown: impl Future<Output = ()>,
    events: EventLog,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let stop = CancellationToken::new();
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            Some(stream) = incoming.recv() => {
                connections.spawn(serve_connection(stream, stop.clone(), events.clone()));
            }
            // Reap finished connections, so that the set holds only open ones.
            Some(_) = connections.join_next() => {}
            () = &mut shutdown => break,
        }
    }

    events.record("shutdown signal received");
    // Every connection finishes the request it is serving, then closes.
    stop.cancel();
    events.record(format!("draining, open connections: {}", connections.len()));
    // Clients already on their way get a moment to land before the door closes.
    let deadline = tokio::time::Instant::now() + GRACE;
    let close_at = tokio::time::Instant::now() + Duration::from_millis(900);
    let mut listening = true;
    loop {
        tokio::select! {
            Some(stream) = incoming.recv(), if listening => {
                connections.spawn(serve_connection(stream, stop.child_token(), events.clone()));
            }
            () = tokio::time::sleep_until(close_at), if listening => {
                incoming.close();
                listening = false;
            }
            next = connections.join_next() => {
                if next.is_none() && !listening {
                    break;
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                connections.abort_all();
                break;
            }
        }
    }
    events.record("all connections closed");
    events.record("shutdown complete");
}

async fn serve_connection<S>(stream: S, stop: CancellationToken, events: EventLog)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(request, events.clone()));
    let mut conn = pin!(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
    tokio::select! {
        _ = conn.as_mut() => return,
        () = stop.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    // Keep-alive is off now: the connection closes once its current response is sent.
    let _ = conn.await;
}

async fn handle(
    request: Request<Incoming>,
    events: EventLog,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match request.uri().path() {
        "/health" => (StatusCode::OK, "ok\n"),
        "/report" => {
            tokio::time::sleep(REPORT_TIME).await;
            (StatusCode::OK, "report ready\n")
        }
        "/updates" => {
            // Stands in for waiting on the invoice feed, which is silent in the quiet hours.
            tokio::time::sleep(LONG_POLL).await;
            (StatusCode::OK, "no updates\n")
        }
        _ => (StatusCode::NOT_FOUND, "not found\n"),
    };
    let line = format!("{} {} -> {status}", request.method(), request.uri());
    events.record(line);
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}
