//! `beacon`: the page-view collector behind the marketing site's analytics.
//!
//! Every few seconds the site's JavaScript beacon sends the views it has batched up, as
//! `GET /record?home=3&pricing=1`. `GET /count` answers the totals on one line,
//! `batches=N` followed by every page and its views: the marketing dashboard polls it, and
//! divides views by batches to show how busy a visit is.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::task::AbortOnDropHandle;

/// The totals since the service started.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Batches recorded: the dashboard's denominator.
    batches: u64,
    /// Views per page; a `BTreeMap` so `/count` lists pages in a stable order.
    views: BTreeMap<String, u64>,
}

/// The one tally every connection task updates.
pub type SharedTally = Arc<Mutex<Tally>>;

/// Accepts connections on `listener` forever, one task per connection.
pub async fn serve(listener: TcpListener, tally: SharedTally) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        let tally = Arc::clone(&tally);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                // The handler runs as a task of its own: if it panics, only that task ends,
                // and its handle says so. The handle aborts the task if hyper drops us.
                let handler =
                    AbortOnDropHandle::new(tokio::spawn(handle(request, Arc::clone(&tally))));
                async move {
                    match handler.await {
                        Ok(response) => response,
                        Err(_) => Ok(text(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "internal error\n".to_owned(),
                        )),
                    }
                }
            });
            // A client that hangs up mid-request is routine, not a server error.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    tally: SharedTally,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match request.uri().path() {
        "/record" => {
            record(&tally, request.uri().query().unwrap_or(""));
            text(StatusCode::OK, "recorded\n".to_owned())
        }
        "/count" => text(StatusCode::OK, lock(&tally).to_string()),
        _ => text(StatusCode::NOT_FOUND, "not found\n".to_owned()),
    };
    Ok(response)
}

/// Adds one batch from the beacon: `home=3&pricing=1` (a page without `=` counts one view).
fn record(tally: &Mutex<Tally>, batch: &str) {
    let mut tally = lock(tally);
    // The batch is applied to a copy and committed with one assignment: a panic halfway
    // leaves the shared tally exactly as it was, so a poisoned lock holds whole data.
    let mut next = tally.clone();
    next.batches += 1;
    for pair in batch.split('&').filter(|pair| !pair.is_empty()) {
        let (page, views) = pair.split_once('=').unwrap_or((pair, "1"));
        let views: u64 = views.parse().expect("the beacon sends whole numbers");
        *next.views.entry(page.to_owned()).or_default() += views;
    }
    *tally = next;
}

/// Every update commits whole (see `record`), so the data behind a poisoned lock is sound.
fn lock(tally: &Mutex<Tally>) -> MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(PoisonError::into_inner)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// `batches=2 home=5 pricing=1`, the line the dashboard parses.
impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batches={}", self.batches)?;
        for (page, views) in &self.views {
            write!(f, " {page}={views}")?;
        }
        writeln!(f)
    }
}
