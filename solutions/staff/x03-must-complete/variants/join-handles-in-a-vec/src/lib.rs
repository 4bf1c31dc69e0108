//! `boxoffice`: ticket sales for one concert.
//!
//! `POST /orders` with the body `seats=2` buys two seats. Placing an order is a commit across
//! two services: hold the seats at the venue's inventory, then record the charge in the
//! payments ledger. The answer is `201 Created` with `order 7: 2 seats`, `409 Conflict` when
//! the show is sold out, or `503` when the ledger is gone.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod backends;
pub use backends::{Charge, Inventory, Ledger, LedgerClosed, SoldOut};

/// The most seats one order may buy.
pub const MAX_SEATS: u32 = 8;

/// How long shutdown may wait for work in flight: the orchestrator kills the process 30 s
/// after SIGTERM, and draining the connections takes its own share of that.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The box office: the services an order touches, shared by every connection.
#[derive(Debug, Clone)]
pub struct BoxOffice {
    inventory: Inventory,
    ledger: Ledger,
    next_order: Arc<AtomicU64>,
    /// Every commit the box office started, owned by the service rather than by the requests
    /// that asked for them. Shutdown takes the list and awaits each one.
    commits: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// Why an order was not placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    SoldOut,
    LedgerClosed,
}

impl BoxOffice {
    /// A box office selling from `inventory` and charging through `ledger`.
    pub fn new(inventory: Inventory, ledger: Ledger) -> Self {
        Self {
            inventory,
            ledger,
            next_order: Arc::new(AtomicU64::new(1)),
            commits: Arc::default(),
        }
    }

    /// Places an order: both halves or neither. Returns the order's number.
    async fn place(&self, seats: u32) -> Result<u64, Refused> {
        self.inventory
            .hold(seats)
            .await
            .map_err(|SoldOut| Refused::SoldOut)?;
        let order = self.next_order.fetch_add(1, Ordering::SeqCst);
        if let Err(LedgerClosed) = self.ledger.append(Charge { order, seats }).await {
            self.inventory.release(seats);
            return Err(Refused::LedgerClosed);
        }
        Ok(order)
    }

    /// Places an order in a task whose handle the box office keeps; the answer comes back on
    /// a oneshot, which a client that hangs up merely stops waiting on.
    async fn commit(&self, seats: u32) -> Result<u64, Refused> {
        let (reply, answer) = oneshot::channel();
        let office = self.clone();
        let commit = tokio::spawn(async move {
            let _ = reply.send(office.place(seats).await);
        });
        self.commits.lock().unwrap().push(commit);
        answer.await.expect("the commit panicked")
    }

    /// The last step of shutdown, once the listener is closed and the connections drained:
    /// awaits every commit started (for at most [`SHUTDOWN_GRACE`]), then closes the ledger.
    pub async fn shutdown(&self) {
        let commits = std::mem::take(&mut *self.commits.lock().unwrap());
        let drained = async {
            for commit in commits {
                let _ = commit.await;
            }
        };
        // Past the grace, the handles not yet awaited are dropped, which detaches their tasks:
        // the stragglers fail against the closed ledger and give their seats back.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, drained).await;
        self.ledger.close();
    }
}

/// Serves one client connection until the client goes away.
pub async fn serve_connection<IO>(io: IO, office: BoxOffice) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(request, office.clone()));
    http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
}

async fn handle(
    request: Request<Incoming>,
    office: BoxOffice,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::POST || request.uri().path() != "/orders" {
        return Ok(answer(StatusCode::NOT_FOUND, "not found\n".into()));
    }
    let Ok(body) = request.into_body().collect().await else {
        return Ok(answer(StatusCode::BAD_REQUEST, "unreadable body\n".into()));
    };
    let Some(seats) = seats_param(&body.to_bytes()) else {
        let hint = format!("expected seats=N with N from 1 to {MAX_SEATS}\n");
        return Ok(answer(StatusCode::BAD_REQUEST, hint));
    };
    Ok(match office.commit(seats).await {
        Ok(order) => answer(
            StatusCode::CREATED,
            format!("order {order}: {seats} seats\n"),
        ),
        Err(Refused::SoldOut) => answer(StatusCode::CONFLICT, "sold out\n".into()),
        Err(Refused::LedgerClosed) => {
            answer(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into())
        }
    })
}

fn answer(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(text));
    *response.status_mut() = status;
    response
}

fn seats_param(body: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(body).ok()?;
    let seats = text.trim().strip_prefix("seats=")?.parse().ok()?;
    (1..=MAX_SEATS).contains(&seats).then_some(seats)
}
