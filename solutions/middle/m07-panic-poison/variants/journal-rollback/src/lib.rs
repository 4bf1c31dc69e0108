//! `beacon`: the page-view collector behind the marketing site's analytics.
//!
//! Every few seconds the site's JavaScript beacon sends the views it has batched up, as
//! `GET /record?home=3&pricing=1`. `GET /count` answers the totals on one line,
//! `batches=N` followed by every page and its views: the marketing dashboard polls it, and
//! divides views by batches to show how busy a visit is.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// The totals since the service started.
#[derive(Debug, Default)]
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
            let service = service_fn(move |request| handle(request, Arc::clone(&tally)));
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
            if let Err(reason) = record(&tally, request.uri().query().unwrap_or("")) {
                return Ok(text(StatusCode::UNPROCESSABLE_ENTITY, reason));
            }
            text(StatusCode::OK, "recorded\n".to_owned())
        }
        "/count" => text(StatusCode::OK, tally.lock().unwrap().to_string()),
        _ => text(StatusCode::NOT_FOUND, "not found\n".to_owned()),
    };
    Ok(response)
}

/// Adds one batch from the beacon: `home=3&pricing=1` (a page without `=` counts one view).
/// Applies as it goes and keeps a journal; a bad pair undoes everything the batch applied.
fn record(tally: &Mutex<Tally>, batch: &str) -> Result<(), String> {
    let mut tally = tally
        .lock()
        .expect("no code panics while holding the tally");
    let mut journal: Vec<(String, u64, bool)> = Vec::new();
    let mut failure = None;
    for pair in batch.split('&').filter(|pair| !pair.is_empty()) {
        let (page, views) = pair.split_once('=').unwrap_or((pair, "1"));
        let Ok(views) = views.parse::<u64>() else {
            failure = Some(format!("`{pair}`: views must be a whole number\n"));
            break;
        };
        let created = !tally.views.contains_key(page);
        let entry = tally.views.entry(page.to_owned()).or_default();
        let Some(sum) = entry.checked_add(views) else {
            failure = Some(format!("`{pair}`: too many views\n"));
            break;
        };
        *entry = sum;
        journal.push((page.to_owned(), views, created));
    }
    if let Some(reason) = failure {
        for (page, views, created) in journal.into_iter().rev() {
            if created {
                tally.views.remove(&page);
            } else if let Some(entry) = tally.views.get_mut(&page) {
                *entry -= views;
            }
        }
        return Err(reason);
    }
    tally.batches += 1;
    Ok(())
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
