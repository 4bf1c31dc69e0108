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
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

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
            // A panic in a handler becomes a 500 for that request, instead of ending the
            // connection task (hyper itself never catches a panic).
            let service = ServiceBuilder::new()
                .layer(CatchPanicLayer::new())
                .service_fn(move |request| handle(request, Arc::clone(&tally)));
            // A client that hangs up mid-request is routine, not a server error.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    tally: SharedTally,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match request.uri().path() {
        "/record" => match record(&tally, request.uri().query().unwrap_or("")) {
            Ok(()) => text(StatusCode::OK, "recorded\n".to_owned()),
            Err(error) => text(StatusCode::UNPROCESSABLE_ENTITY, format!("{error}\n")),
        },
        "/count" => text(StatusCode::OK, tally.lock().unwrap().to_string()),
        _ => text(StatusCode::NOT_FOUND, "not found\n".to_owned()),
    };
    Ok(response)
}

/// Adds one batch from the beacon: `home=3&pricing=1` (a page without `=` counts one view).
/// The batch is applied to a copy of the totals, and the copy replaces them only if every
/// pair fitted: a rejected batch leaves the tally as it was.
fn record(tally: &Mutex<Tally>, batch: &str) -> Result<(), BadBatch> {
    let mut tally = tally.lock().unwrap();
    let mut views = tally.views.clone();
    for pair in batch.split('&').filter(|pair| !pair.is_empty()) {
        let (page, count) = pair.split_once('=').unwrap_or((pair, "1"));
        let count: u64 = count.parse().map_err(|_| BadBatch(pair.to_owned()))?;
        let total = views.entry(page.to_owned()).or_default();
        *total = total
            .checked_add(count)
            .ok_or_else(|| BadBatch(pair.to_owned()))?;
    }
    tally.views = views;
    tally.batches += 1;
    Ok(())
}

/// A batch with a count that is not a whole number, or that its total cannot hold; holds the
/// offending `page=count` pair.
#[derive(Debug)]
struct BadBatch(String);

impl fmt::Display for BadBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "batch not recorded: `{}` is not a whole number its total can hold",
            self.0
        )
    }
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
