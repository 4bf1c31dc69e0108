//! An orders service whose endpoints make three different promises about the work a request
//! starts: `POST /orders/inline` commits inside the request future (a disconnect can cut the
//! commit in half), `POST /orders` hands the commit to a tracked task and answers retries of
//! the same idempotency key with the first answer, and `GET /preview` runs work only its caller
//! wants, in a task aborted when the caller leaves.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use harness::leak::Gauge;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::DuplexStream;
use tokio::sync::{OnceCell, watch};
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

/// How long the payment call inside a commit takes: the window in which a disconnect lands.
pub const PAYMENT_CALL: Duration = Duration::from_millis(50);

/// The database stand-in. A commit writes two rows with an `.await` between them, the way a
/// real one reserves stock, calls the payment service, then records the charge.
#[derive(Default)]
pub struct Ledger {
    rows: Mutex<Vec<String>>,
    /// The number of rows, so a check can wait for "the commit has started".
    written: watch::Sender<usize>,
}

impl Ledger {
    fn write(&self, row: String) {
        let mut rows = self.rows.lock().unwrap();
        rows.push(row);
        self.written.send_replace(rows.len());
    }

    /// Every row written so far.
    pub fn rows(&self) -> Vec<String> {
        self.rows.lock().unwrap().clone()
    }

    /// Waits until at least `n` rows are written.
    pub async fn written(&self, n: usize) {
        let mut written = self.written.subscribe();
        written.wait_for(|rows| *rows >= n).await.unwrap();
    }
}

/// An answer as the endpoint sends it, kept so that a retry can be answered with it again.
#[derive(Clone, Debug)]
pub struct Reply {
    status: StatusCode,
    body: String,
}

// ANCHOR: commit
/// Reserves stock, charges, records the charge. Both rows or neither is the invariant a
/// disconnect must not break.
async fn commit(ledger: Arc<Ledger>, order: usize) -> Reply {
    ledger.write(format!("reserve order {order}"));
    tokio::time::sleep(PAYMENT_CALL).await; // the payment service
    ledger.write(format!("charge order {order}"));
    Reply {
        status: StatusCode::CREATED,
        body: format!("order {order} committed"),
    }
}
// ANCHOR_END: commit

// ANCHOR: orders
/// The state the endpoints share.
#[derive(Clone, Default)]
pub struct Orders {
    pub ledger: Arc<Ledger>,
    /// Must-complete work: shutdown closes it and waits for it (after the HTTP drain).
    pub commits: TaskTracker,
    /// One cell per idempotency key: the first request fills it, every retry reads it.
    replies: Arc<Mutex<HashMap<String, Arc<OnceCell<Reply>>>>>,
    next_order: Arc<Mutex<usize>>,
    /// Counts previews in progress, for the checks.
    pub previews: Gauge,
}

impl Orders {
    /// `POST /orders`: the commit belongs to the service, not to the request.
    async fn create(&self, key: Option<String>) -> Reply {
        let cell = match key {
            // A retry of the same key finds the same cell: it waits for the commit already
            // under way, or replays its answer; it never starts a second one.
            Some(key) => self.replies.lock().unwrap().entry(key).or_default().clone(),
            None => Arc::default(),
        };
        let this = self.clone();
        let commit = self.commits.spawn(async move {
            let first = || commit(this.ledger.clone(), this.order_number());
            cell.get_or_init(first).await.clone()
        });
        // If the client leaves, this future is dropped and with it the JoinHandle, which
        // detaches the task: the commit goes on, and shutdown still waits for it.
        commit.await.expect("the commit task panicked")
    }
    // ANCHOR_END: orders

    /// `POST /orders/inline`: the commit lives in the request future and dies with it.
    async fn create_inline(&self) -> Reply {
        commit(self.ledger.clone(), self.order_number()).await
    }

    // ANCHOR: preview
    /// `GET /preview`: work only this caller wants. Dropping the handle aborts the task, so a
    /// caller that leaves takes the work with it.
    async fn preview(&self) -> Reply {
        let running = self.previews.guard();
        let work = AbortOnDropHandle::new(tokio::spawn(async move {
            let _running = running;
            tokio::time::sleep(Duration::from_secs(10)).await; // an expensive render
            "preview ready".to_owned()
        }));
        let body = work.await.expect("the preview task panicked");
        Reply {
            status: StatusCode::OK,
            body,
        }
    }
    // ANCHOR_END: preview

    fn order_number(&self) -> usize {
        let mut next = self.next_order.lock().unwrap();
        *next += 1;
        *next
    }
}

async fn route(orders: Orders, request: Request<Incoming>) -> Reply {
    let key = request
        .headers()
        .get("idempotency-key")
        .and_then(|key| key.to_str().ok())
        .map(str::to_owned);
    match (request.method().as_str(), request.uri().path()) {
        ("POST", "/orders") => orders.create(key).await,
        ("POST", "/orders/inline") => orders.create_inline().await,
        ("GET", "/preview") => orders.preview().await,
        _ => Reply {
            status: StatusCode::NOT_FOUND,
            body: String::new(),
        },
    }
}

/// Serves one HTTP/1 connection.
pub async fn serve(io: DuplexStream, orders: Orders) -> hyper::Result<()> {
    let service = service_fn(move |request| {
        let orders = orders.clone();
        async move {
            let reply = route(orders, request).await;
            let mut response = Response::new(Full::new(Bytes::from(reply.body)));
            *response.status_mut() = reply.status;
            Ok::<_, Infallible>(response)
        }
    });
    http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
}
